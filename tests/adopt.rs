//! Adopting a cluster set up by hand (`ssh-copy-id`, `ssh-keyscan`), in
//! memory: the lines trustmesh did not write that already grant a wanted
//! edge are reported, not changed; `--adopt` takes them over in place
//! (only the comment, and an edge's policy in the options, change),
//! collapses duplicates, and from then on prune manages them.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{self, Change, FileEdit, FileRole, LiveState, NodeFiles, Plan, PlanScope};
use trustmesh::TrustGraph;

use support::{inv, LAB as INV};

fn ak(f: &NodeFiles) -> &String {
    &f.authorized_keys
}

fn kh(f: &NodeFiles) -> &String {
    &f.known_hosts
}

fn file_of(
    live: &mut LiveState,
    inv: &Inventory,
    node: &str,
    which: fn(&NodeFiles) -> &String,
) -> String {
    let files = NodeFiles::of(inv, inv.find(node).unwrap());
    content(account_of(live, inv, node), which(&files)).to_string()
}

fn set(
    live: &mut LiveState,
    inv: &Inventory,
    node: &str,
    which: fn(&NodeFiles) -> &String,
    text: &str,
) {
    let files = NodeFiles::of(inv, inv.find(node).unwrap());
    set_file(account_of(live, inv, node), which(&files), 0o600, text);
}

/// The cluster as a person would have built it: the lines of a converged
/// cluster, with `ssh-copy-id`'s comments (`w1@hand`) in authorized_keys
/// and `ssh-keyscan`'s bare lines in known_hosts, between lines of the
/// person's own.
fn hand_built(inv: &Inventory) -> LiveState {
    let mut live = converged(inv);
    let names: Vec<String> = inv.nodes.iter().map(|n| n.name.clone()).collect();
    for node in &names {
        let text = file_of(&mut live, inv, node, ak);
        let mut by_hand = String::from("# keys set up by hand\n");
        for l in text.lines() {
            let (head, who) = l.rsplit_once(" trustmesh:lab/").unwrap();
            by_hand.push_str(&format!("{head} {who}@hand\n"));
        }
        by_hand.push_str(&format!(
            "ssh-ed25519 {} alice@laptop\n",
            fake_key("alice-laptop")
        ));
        set(&mut live, inv, node, ak, &by_hand);
        let text = file_of(&mut live, inv, node, kh);
        let mut by_hand = format!("10.9.9.9 ssh-ed25519 {}\n", fake_key("elsewhere"));
        for l in text.lines() {
            let (head, _) = l.rsplit_once(" trustmesh:lab/").unwrap();
            by_hand.push_str(&format!("{head}\n"));
        }
        set(&mut live, inv, node, kh, &by_hand);
    }
    live
}

fn adopting(inv: &Inventory, live: &LiveState) -> Plan {
    let scope = PlanScope {
        adopt: true,
        ..PlanScope::default()
    };
    plan::plan(inv, &TrustGraph::build(inv), live, &scope)
}

fn edits<'p>(p: &'p Plan, node: &str) -> Vec<&'p FileEdit> {
    node_plan(p, node)
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::EditFile(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn edit<'p>(p: &'p Plan, node: &str, file: FileRole) -> &'p FileEdit {
    edits(p, node)
        .into_iter()
        .find(|e| e.file == file)
        .unwrap_or_else(|| panic!("no {file:?} edit on {node}:\n{}", text(p)))
}

#[test]
fn lines_written_by_hand_that_grant_wanted_edges_are_reported_not_changed() {
    let inv = inv(INV);
    let live = hand_built(&inv);
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
    assert_eq!(p.summary(), Default::default());
    let granted = |node: &str| -> Vec<(String, FileRole)> {
        let mut v: Vec<(String, FileRole)> = node_plan(&p, node)
            .granted_by_hand
            .iter()
            .map(|h| (h.node.to_string(), h.file))
            .collect();
        v.sort_by_key(|(n, f)| (n.clone(), *f == FileRole::KnownHosts));
        v
    };
    use FileRole::{AuthorizedKeys as Ak, KnownHosts as Kh};
    assert_eq!(
        granted("manager"),
        vec![("w1".into(), Ak), ("w1".into(), Kh), ("w2".into(), Kh)]
    );
    assert_eq!(
        granted("w2"),
        vec![("manager".into(), Ak), ("w1".into(), Ak), ("w1".into(), Kh)]
    );
    // The lines as they are, with their place in the file.
    let w2 = node_plan(&p, "w2");
    let manager_line = w2
        .granted_by_hand
        .iter()
        .find(|h| &*h.node == "manager")
        .unwrap();
    assert_eq!(manager_line.path, "~/.ssh/authorized_keys");
    assert!(
        manager_line.text.ends_with(" manager@hand"),
        "{manager_line:?}"
    );
    assert!(
        manager_line.index >= 1,
        "after the comment line: {manager_line:?}"
    );
    // Not the person's own lines that grant nothing wanted.
    assert!(!w2
        .granted_by_hand
        .iter()
        .any(|h| h.text.contains("laptop") || h.text.contains("10.9.9.9")));
    let shown = text(&p);
    assert!(
        shown.contains("~/.ssh/authorized_keys line 2: manager's key, granted by a line trustmesh did not write"),
        "{shown}"
    );
    assert!(shown.contains("No changes"), "{shown}");
    let json = serde_json::to_value(&p).unwrap();
    let w2_json = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "w2")
        .unwrap();
    assert_eq!(
        w2_json["granted_by_hand"].as_array().unwrap().len(),
        3,
        "{w2_json}"
    );
}

#[test]
fn adopt_takes_the_lines_over_in_place_and_changes_nothing_else() {
    let inv = inv(INV);
    let mut before = hand_built(&inv);
    let p = adopting(&inv, &before);
    let mut adopted = 0;
    for n in &p.nodes {
        for c in &n.changes {
            let Change::EditFile(e) = c else {
                panic!("{}: only adoptions: {c:?}", n.node)
            };
            assert!(e.add.is_empty() && e.remove.is_empty() && e.remove_on_request.is_empty());
            assert!(!e.adopt.is_empty());
            for a in &e.adopt {
                let comment = match e.file {
                    FileRole::AuthorizedKeys => Some(format!("{}@hand", a.node)),
                    FileRole::KnownHosts => None,
                };
                assert_eq!(a.old_comment, comment, "{a:?}");
                assert!(
                    a.new.ends_with(&format!(" trustmesh:lab/{}", a.node)),
                    "{a:?}"
                );
                assert!(a.duplicates.is_empty());
                adopted += 1;
            }
        }
    }
    // 2 + 3 + 3 authorized_keys lines' worth of edges: manager (w1),
    // w1 (manager, w2), w2 (manager, w1); known_hosts: manager (w1, w2),
    // w1 (manager, w2), w2 (w1).
    assert_eq!(adopted, 10, "{}", text(&p));
    let s = p.summary();
    assert_eq!((s.add, s.change, s.remove), (0, 10, 0));
    let shown = text(&p);
    assert!(
        shown.contains("(manager's key, written by hand, comment `manager@hand`): adopted"),
        "{shown}"
    );
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains(r#""old_comment":"manager@hand""#), "{json}");

    let mut after = apply_on_memory(&inv, &p, &before);
    for node in ["manager", "w1", "w2"] {
        for which in [ak as fn(&NodeFiles) -> &String, kh] {
            let old = file_of(&mut before, &inv, node, which);
            let new = file_of(&mut after, &inv, node, which);
            assert_eq!(
                old.lines().count(),
                new.lines().count(),
                "{node}:\n{old}\n{new}"
            );
            for (o, n) in old.lines().zip(new.lines()) {
                if o == n {
                    assert!(!o.contains("trustmesh:"), "{node}: {o}");
                    continue;
                }
                // Adopted: the same key (and names), only the comment new.
                let (head, who) = n.rsplit_once(" trustmesh:lab/").expect(n);
                assert!(
                    o == head || o == format!("{head} {who}@hand"),
                    "{node}: {o} -> {n}"
                );
            }
        }
    }
    // Managed now: nothing by hand, nothing to change, with or without
    // the flag.
    let again = run(&inv, &after);
    assert!(again.is_empty(), "{}", text(&again));
    assert!(again.nodes.iter().all(|n| n.granted_by_hand.is_empty()));
    assert!(adopting(&inv, &after).is_empty());
}

#[test]
fn duplicate_lines_of_one_grant_collapse_to_the_first_in_its_place() {
    let inv = inv(INV);
    let mut live = hand_built(&inv);
    let w2_ak = file_of(&mut live, &inv, "w2", ak);
    let again = format!("ssh-ed25519 {} alice@second-copy", fake_key("manager"));
    set(&mut live, &inv, "w2", ak, &format!("{w2_ak}{again}\n"));
    let manager_kh = file_of(&mut live, &inv, "manager", kh);
    let host_again = format!("10.0.0.12 ssh-ed25519 {}", fake_key("host-w2"));
    set(
        &mut live,
        &inv,
        "manager",
        kh,
        &format!("{manager_kh}{host_again}\n"),
    );

    // Without the flag nothing changes, duplicates included.
    assert!(run(&inv, &live).is_empty());

    let p = adopting(&inv, &live);
    let e = edit(&p, "w2", FileRole::AuthorizedKeys);
    let a = e.adopt.iter().find(|a| &*a.node == "manager").unwrap();
    assert_eq!(a.duplicates, vec![(w2_ak.lines().count(), again.clone())]);
    let e = edit(&p, "manager", FileRole::KnownHosts);
    let a = e.adopt.iter().find(|a| &*a.node == "w2").unwrap();
    assert_eq!(
        a.duplicates,
        vec![(manager_kh.lines().count(), host_again.clone())]
    );
    assert_eq!(p.summary().remove, 2);
    let shown = text(&p);
    assert!(
        shown.contains("the same grant again, written by hand; removed"),
        "{shown}"
    );

    let mut after = apply_on_memory(&inv, &p, &live);
    let now = file_of(&mut after, &inv, "w2", ak);
    let first = w2_ak
        .lines()
        .position(|l| l.ends_with(" manager@hand"))
        .unwrap();
    let lines: Vec<&str> = now.lines().collect();
    assert_eq!(lines.len(), w2_ak.lines().count(), "{now}");
    assert!(lines[first].ends_with(" trustmesh:lab/manager"), "{now}");
    assert_eq!(now.matches(&fake_key("manager")).count(), 1, "{now}");
    let now = file_of(&mut after, &inv, "manager", kh);
    assert_eq!(now.matches(&fake_key("host-w2")).count(), 1, "{now}");
    assert!(run(&inv, &after).is_empty());
}

#[test]
fn an_adopted_line_gets_the_edges_policy_merged_into_its_options() {
    let sftp = INV.replace(
        "reverse: [w1]",
        "reverse: [{ worker: w1, sftp_only: true }]",
    );
    let inv = inv(&sftp);
    let mut live = hand_built(&inv);
    // By hand: w1's key on the manager with `pty`, no restriction.
    let text_now = file_of(&mut live, &inv, "manager", ak);
    let w1_key = fake_key("w1");
    let rewritten: String = text_now
        .lines()
        .map(|l| {
            if l.contains(&w1_key) {
                format!("pty ssh-ed25519 {w1_key} w1@hand\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    set(&mut live, &inv, "manager", ak, &rewritten);
    let p = run(&inv, &live);
    assert!(
        node_plan(&p, "manager").warnings.iter().any(|w| w
            .contains("w1's key is let in by a line trustmesh did not write")
            && w.contains("--adopt")),
        "{}",
        text(&p)
    );

    let p = adopting(&inv, &live);
    let e = edit(&p, "manager", FileRole::AuthorizedKeys);
    let a = e.adopt.iter().find(|a| &*a.node == "w1").unwrap();
    assert_eq!(a.old, format!("pty ssh-ed25519 {w1_key} w1@hand"));
    assert_eq!(
        a.new,
        format!(r#"restrict,command="internal-sftp" ssh-ed25519 {w1_key} trustmesh:lab/w1"#)
    );
    assert!(
        node_plan(&p, "manager")
            .warnings
            .iter()
            .any(|w| w.contains("`pty`") && w.contains("left out when the line is adopted")),
        "{}",
        text(&p)
    );
    let after = apply_on_memory(&inv, &p, &live);
    assert!(run(&inv, &after).is_empty(), "{}", text(&run(&inv, &after)));
}

#[test]
fn a_restriction_written_by_hand_is_never_lifted_by_adopting() {
    let inv = inv(INV);
    let mut live = hand_built(&inv);
    let w2_ak = file_of(&mut live, &inv, "w2", ak);
    let m = fake_key("manager");
    let restricted = w2_ak.replace(
        &format!("ssh-ed25519 {m} manager@hand"),
        &format!(r#"restrict,command="internal-sftp" ssh-ed25519 {m} manager@hand"#),
    );
    set(&mut live, &inv, "w2", ak, &restricted);
    let p = adopting(&inv, &live);
    let e = edit(&p, "w2", FileRole::AuthorizedKeys);
    assert!(
        !e.adopt.iter().any(|a| &*a.node == "manager"),
        "{}",
        text(&p)
    );
    let w2 = node_plan(&p, "w2");
    assert!(w2.granted_by_hand.iter().any(|h| &*h.node == "manager"));
    assert!(
        w2.warnings
            .iter()
            .any(|w| w.contains("not adopted, since trustmesh would lift it")),
        "{:?}",
        w2.warnings
    );
}

#[test]
fn a_known_hosts_line_naming_other_hosts_too_is_not_adopted() {
    let inv = inv(INV);
    let mut live = hand_built(&inv);
    let manager_kh = file_of(&mut live, &inv, "manager", kh);
    let both = manager_kh.replace("10.0.0.11 ", "10.0.0.11,w1 ");
    set(&mut live, &inv, "manager", kh, &both);
    let p = adopting(&inv, &live);
    let e = edit(&p, "manager", FileRole::KnownHosts);
    assert!(!e.adopt.iter().any(|a| &*a.node == "w1"), "{}", text(&p));
    let manager = node_plan(&p, "manager");
    assert!(manager
        .granted_by_hand
        .iter()
        .any(|h| &*h.node == "w1" && h.file == FileRole::KnownHosts));
    assert!(
        manager
            .warnings
            .iter()
            .any(|w| w.contains("names the host otherwise")),
        "{:?}",
        manager.warnings
    );
}

#[test]
fn another_clusters_line_is_not_adopted() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    let w2_ak = file_of(&mut live, &inv, "w2", ak);
    let other = format!("ssh-ed25519 {} trustmesh:other/boss", fake_key("boss"));
    set(&mut live, &inv, "w2", ak, &format!("{w2_ak}{other}\n"));
    assert!(adopting(&inv, &live).is_empty());
}

#[test]
fn prune_after_adoption_removes_exactly_the_dropped_pairs_lines() {
    let inv_all = inv(INV);
    let before = hand_built(&inv_all);
    let mut live = apply_on_memory(&inv_all, &adopting(&inv_all, &before), &before);
    let smaller = inv(&INV.replace("mesh:\n  - [w1, w2]\n", ""));
    let p = run(&smaller, &live);
    let mut removed: Vec<(String, FileRole, String)> = Vec::new();
    for n in &p.nodes {
        for c in &n.changes {
            let Change::EditFile(e) = c else {
                panic!("{}: {c:?}", n.node)
            };
            assert!(e.add.is_empty() && e.adopt.is_empty());
            for (_, t) in &e.remove {
                removed.push((
                    n.node.clone(),
                    e.file,
                    t.rsplit_once(' ').unwrap().1.to_string(),
                ));
            }
        }
    }
    removed.sort_by_key(|(n, f, _)| (n.clone(), *f == FileRole::KnownHosts));
    use FileRole::{AuthorizedKeys as Ak, KnownHosts as Kh};
    assert_eq!(
        removed,
        vec![
            ("w1".into(), Ak, "trustmesh:lab/w2".into()),
            ("w1".into(), Kh, "trustmesh:lab/w2".into()),
            ("w2".into(), Ak, "trustmesh:lab/w1".into()),
            ("w2".into(), Kh, "trustmesh:lab/w1".into()),
        ],
        "{}",
        text(&p)
    );
    let after = apply_on_memory(&smaller, &p, &live);
    assert!(run(&smaller, &after).is_empty());
    // The person's own lines are all still there.
    let mut after = after;
    for node in ["manager", "w1", "w2"] {
        assert!(file_of(&mut after, &smaller, node, ak).contains("alice@laptop"));
        assert!(file_of(&mut after, &smaller, node, kh).contains("10.9.9.9 "));
        let _ = file_of(&mut live, &smaller, node, ak);
    }
}
