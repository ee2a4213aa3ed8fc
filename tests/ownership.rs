//! Which lines are trustmesh's: only those whose whole comment is this
//! cluster's marker. Everything else (a hand-written line that mentions a
//! marker, another cluster's lines, an admin's `@revoked` made out of a
//! managed line) is never changed or removed; the manager's keys are never
//! pruned; markers written before clusters were named are taken over once.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{self, Change, LiveState, NodeFiles, Plan, PlanScope};
use trustmesh::TrustGraph;

use support::{inv, LAB as INV};

/// Append `line` to `node`'s file `name` (authorized_keys or known_hosts).
fn append(
    live: &mut LiveState,
    inv: &Inventory,
    node: &str,
    which: fn(&NodeFiles) -> &String,
    line: &str,
) {
    let files = NodeFiles::of(inv, inv.find(node).unwrap());
    let name = which(&files).clone();
    let acc = account_of(live, inv, node);
    let text = format!("{}{line}\n", content(acc, &name));
    set_file(acc, &name, 0o600, &text);
}

/// Rewrite every line of `node`'s file `which`, as an admin would by hand.
fn rewrite_lines(
    live: &mut LiveState,
    inv: &Inventory,
    node: &str,
    which: fn(&NodeFiles) -> &String,
    f: impl Fn(&str) -> String,
) {
    let files = NodeFiles::of(inv, inv.find(node).unwrap());
    let name = which(&files).clone();
    let acc = account_of(live, inv, node);
    let text: String = content(acc, &name)
        .lines()
        .map(|l| format!("{}\n", f(l)))
        .collect();
    set_file(acc, &name, 0o600, &text);
}

fn ak(f: &NodeFiles) -> &String {
    &f.authorized_keys
}

fn kh(f: &NodeFiles) -> &String {
    &f.known_hosts
}

#[test]
fn lines_are_marked_with_the_cluster() {
    let inv = inv(INV);
    let live = converged(&inv);
    let mut live = live;
    let acc = account_of(&mut live, &inv, "w2");
    let text = content(acc, "authorized_keys");
    assert!(
        text.lines()
            .all(|l| l.ends_with(" trustmesh:lab/manager") || l.ends_with(" trustmesh:lab/w1")),
        "{text}"
    );
    // Without `cluster:`, the manager's name is the cluster.
    let unnamed = self::inv(&INV.replace("cluster: lab\n", ""));
    assert_eq!(unnamed.cluster, "manager");
    assert_eq!(unnamed.marker("w1"), "trustmesh:manager/w1");
}

#[test]
fn a_line_that_only_mentions_a_marker_is_never_removed() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    // A key alice added by hand on w2, whose comment mentions a marker, and
    // a marker-looking comment naming a node that is not in the inventory.
    let by_hand = format!(
        "ssh-ed25519 {} alice laptop, set up like trustmesh:w09",
        fake_key("alice")
    );
    let w09 = format!("ssh-ed25519 {} trustmesh:lab/w09 and more", fake_key("w09"));
    append(&mut live, &inv, "w2", ak, &by_hand);
    append(&mut live, &inv, "w2", ak, &w09);
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
}

#[test]
fn another_clusters_lines_are_never_touched() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    // Cluster `other` manages w2 too: its manager's key and a host key
    // line, with the other cluster's markers.
    let other_manager = format!("ssh-ed25519 {} trustmesh:other/boss", fake_key("boss"));
    let other_w1 = format!("ssh-ed25519 {} trustmesh:other/w1", fake_key("other-w1"));
    let other_host = format!(
        "10.9.9.9 ssh-ed25519 {} trustmesh:other/far",
        fake_key("far")
    );
    append(&mut live, &inv, "w2", ak, &other_manager);
    append(&mut live, &inv, "w2", ak, &other_w1);
    append(&mut live, &inv, "w2", kh, &other_host);
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
}

#[test]
fn this_clusters_lines_of_a_retired_node_are_pruned() {
    let inv_all = inv(INV);
    let live = converged(&inv_all);
    // w2 leaves the inventory: its lines on w1 and the manager go.
    let smaller = inv(&INV
        .replace("  - { name: w2, address: 10.0.0.12 }\n", "")
        .replace("  - [w1, w2]\n", "")
        .replace("mesh:\n", ""));
    let p = run(&smaller, &live);
    let removed: usize = p
        .nodes
        .iter()
        .flat_map(|n| &n.changes)
        .map(|c| match c {
            Change::EditFile(e) => e.remove.len(),
            _ => 0,
        })
        .sum();
    // w1: w2's key and w2's host key; manager: w2's host key.
    assert_eq!(removed, 3, "{}", text(&p));
    assert!(p.nodes.iter().all(|n| n.node != "w2"));
}

#[test]
fn old_markers_are_taken_over_once() {
    let inv = inv(INV);
    let live = converged(&inv);
    // The same cluster, as an earlier trustmesh wrote it: `trustmesh:<node>`.
    let mut old = live.clone();
    for node in ["manager", "w1", "w2"] {
        for which in [ak, kh] {
            rewrite_lines(&mut old, &inv, node, which, |l| {
                l.replace("trustmesh:lab/", "trustmesh:")
            });
        }
    }
    let p = run(&inv, &old);
    // Every line is rewritten in place, key for key: a change, not a loss.
    let s = p.summary();
    assert_eq!((s.add, s.remove), (0, 0), "{}", text(&p));
    assert!(s.change > 0, "{}", text(&p));
    let after = apply_on_memory(&inv, &p, &old);
    assert!(run(&inv, &after).is_empty());
    assert_eq!(
        after, live,
        "the migration gives back exactly the converged files"
    );
    // An old marker naming a node this inventory does not know is someone
    // else's: kept.
    let mut other = live.clone();
    append(
        &mut other,
        &inv,
        "w2",
        ak,
        &format!("ssh-ed25519 {} trustmesh:stranger", fake_key("stranger")),
    );
    assert!(run(&inv, &other).is_empty());
}

#[test]
fn a_manager_key_is_never_pruned() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    // A second operator's key for this cluster's manager on w2.
    let second = format!(
        "ssh-ed25519 {} trustmesh:lab/manager",
        fake_key("second-operator")
    );
    append(&mut live, &inv, "w2", ak, &second);
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
    let w2 = p.nodes.iter().find(|n| n.node == "w2").unwrap();
    assert!(
        w2.warnings
            .iter()
            .any(|w| w.contains("marked as this cluster's manager: kept")),
        "{:?}",
        w2.warnings
    );
}

#[test]
fn an_admins_revoked_line_is_respected() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    // On w1, an admin turned the managed line for w2's host key into a
    // @revoked one.
    rewrite_lines(&mut live, &inv, "w1", kh, |l| {
        if l.ends_with("trustmesh:lab/w2") {
            format!("@revoked {l}")
        } else {
            l.to_string()
        }
    });
    let p = run(&inv, &live);
    assert!(
        p.is_empty(),
        "the @revoked line is not undone:\n{}",
        text(&p)
    );
    let w1 = p.nodes.iter().find(|n| n.node == "w1").unwrap();
    assert!(
        w1.warnings.iter().any(|w| w.contains("@revoked")),
        "{:?}",
        w1.warnings
    );
}

#[test]
fn a_hashed_managed_line_is_matched_as_such() {
    // With hashed names asked for (tests/hash_known_hosts.rs has the
    // switching; with the option off, managed lines are written in clear).
    let inv = inv(&format!("{INV}options: {{ hash_known_hosts: true }}\n"));
    let mut live = converged(&inv);
    // w1's lines, hashed (as `ssh-keygen -H` would), keep their marker.
    rewrite_lines(&mut live, &inv, "w1", kh, |l| {
        let (hashed_by_us, rest) = l.split_once(' ').unwrap();
        assert!(hashed_by_us.starts_with("|1|"), "{l}");
        let host = match rest.split(' ').next_back().unwrap() {
            "trustmesh:lab/manager" => "10.0.0.1",
            "trustmesh:lab/w2" => "10.0.0.12",
            other => panic!("{other}"),
        };
        let hashed = trustmesh::formats::known_hosts::hash_host_name(host, [9u8; 20]);
        format!("{hashed} {rest}")
    });
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
}

/// w2 reinstalled: new host key. Lines trustmesh wrote for it are
/// replaced everywhere; a line written by hand is reported, and removed
/// only when the operator names the node.
#[test]
fn a_new_host_key_replaces_managed_lines_and_hand_written_ones_on_request() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    let old_key = fake_key("host-w2");
    let hand = format!("10.0.0.12 ssh-ed25519 {old_key}");
    let shared = format!("10.0.0.12,w2.lab ssh-ed25519 {old_key}");
    append(&mut live, &inv, "manager", kh, &hand);
    append(&mut live, &inv, "manager", kh, &shared);
    let w2 = account_of(&mut live, &inv, "w2");
    w2.host_keys = vec![format!(
        "ssh-ed25519 {} root@w2",
        fake_key("w2-reinstalled")
    )];
    w2.proven_host_keys = vec![format!("ssh-ed25519 {}", fake_key("w2-reinstalled"))];

    let p = run(&inv, &live);
    let edits = |p: &Plan, node: &str| -> Vec<trustmesh::plan::FileEdit> {
        node_plan(p, node)
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::EditFile(e) if e.path.ends_with("known_hosts") => Some(e.clone()),
                _ => None,
            })
            .collect()
    };
    // The manager and w1 (mesh) replace their managed line for w2.
    for node in ["manager", "w1"] {
        let e = &edits(&p, node)[0];
        assert_eq!(
            (e.remove.len(), e.add.len()),
            (1, 1),
            "{node}: {}",
            text(&p)
        );
        assert!(e.remove[0].1.contains(&old_key) && e.add[0].replaces);
        assert!(e.remove_on_request.is_empty());
    }
    let manager = p.nodes.iter().find(|n| n.node == "manager").unwrap();
    assert!(
        manager
            .warnings
            .iter()
            .any(|w| w.contains("ssh-keygen -R '10.0.0.12'")
                && w.contains("--remove-stale-host-keys w2")),
        "{:?}",
        manager.warnings
    );

    // Asked by name: the hand-written line about w2 alone goes too, shown
    // as such; the line that also names another host stays (reported).
    let scope = PlanScope {
        remove_stale_host_keys: [inv.find("w2").unwrap()].into_iter().collect(),
        ..PlanScope::default()
    };
    let p = plan::plan(&inv, &TrustGraph::build(&inv), &live, &scope);
    let e = &edits(&p, "manager")[0];
    assert_eq!(e.remove_on_request.len(), 1, "{}", text(&p));
    assert_eq!(e.remove_on_request[0].1, hand);
    assert!(
        text(&p).contains("(written by hand; removed on request)"),
        "{}",
        text(&p)
    );
    let after = apply_on_memory(&inv, &p, &live);
    let acc = match &after.nodes[0] {
        trustmesh::plan::NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    let now = content(acc, &NodeFiles::of(&inv, 0).known_hosts);
    assert!(now.lines().all(|l| l != hand), "{now}");
    assert!(now.contains(&shared), "{now}");
}

#[test]
fn a_plan_with_an_unread_node_never_says_no_changes() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    live.nodes[inv.find("w2").unwrap()] = trustmesh::plan::NodeState::Unreachable(
        trustmesh::model::finding::Finding::new("connect", "timed out".into(), None),
    );
    let p = run(&inv, &live);
    assert!(p.is_empty() && p.incomplete());
    let t = text(&p);
    assert!(!t.contains("No changes"), "{t}");
    assert!(t.contains("not complete"), "{t}");
}

/// `--rotate-keys w1`: a new key beside the old one, added where the old
/// one is, the old lines removed last; planned only when every node the key
/// opens was read.
#[test]
fn a_rotation_is_planned_make_before_break() {
    let inv = inv(INV);
    let live = converged(&inv);
    let w1 = inv.find("w1").unwrap();
    let scope = PlanScope {
        rotate: [w1].into_iter().collect(),
        ..PlanScope::default()
    };
    let p = plan::plan(&inv, &TrustGraph::build(&inv), &live, &scope);
    let changes = |node: &str| node_plan(&p, node).changes.clone();
    let Some(Change::RotateKey {
        targets,
        new_path,
        aside_path,
        ..
    }) = changes("w1")
        .into_iter()
        .find(|c| matches!(c, Change::RotateKey { .. }))
    else {
        panic!("no rotation: {}", text(&p))
    };
    assert_eq!(targets, vec!["manager".to_string(), "w2".to_string()]);
    assert_eq!(new_path, "~/.ssh/id_ed25519.trustmesh-new");
    assert!(
        aside_path.starts_with("~/.ssh/id_ed25519.old-"),
        "{aside_path}"
    );
    // On each node the key opens: the new key added (the old line kept),
    // then the old line removed once the rotation is in place.
    for node in ["manager", "w2"] {
        let edits: Vec<trustmesh::plan::FileEdit> = changes(node)
            .into_iter()
            .filter_map(|c| match c {
                Change::EditFile(e) if e.path.ends_with("authorized_keys") => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(edits.len(), 2, "{node}: {}", text(&p));
        assert!(
            edits[0].remove.is_empty()
                && edits[0]
                    .add
                    .iter()
                    .any(|l| &*l.node == "w1" && l.base64.is_none())
        );
        assert_eq!(edits[1].after_rotation_of.as_deref(), Some("w1"));
        assert_eq!(edits[1].remove.len(), 1);
        assert!(edits[1].remove[0].1.ends_with("trustmesh:lab/w1"));
    }
    let t = text(&p);
    assert!(
        t.contains("~ rotate key ~/.ssh/id_ed25519 (ed25519): SHA256:"),
        "{t}"
    );
    assert!(t.contains("once w1's new key is proven"), "{t}");
    // Carried out, the cluster holds only the new key, and is converged.
    let after = apply_on_memory(&inv, &p, &live);
    assert!(run(&inv, &after).is_empty(), "{}", text(&run(&inv, &after)));
    let mut after = after;
    let manager_ak =
        content(account_of(&mut after, &inv, "manager"), "authorized_keys").to_string();
    assert!(
        manager_ak.contains(&fake_key("w1-rotated")) && !manager_ak.contains(&fake_key("w1")),
        "{manager_ak}"
    );

    // A node the key opens was not read: no rotation, and said so.
    let mut partial = live.clone();
    partial.nodes[inv.find("w2").unwrap()] = trustmesh::plan::NodeState::Unreachable(
        trustmesh::model::finding::Finding::new("connect", "down".into(), None),
    );
    let p = plan::plan(&inv, &TrustGraph::build(&inv), &partial, &scope);
    let w1_plan = p.nodes.iter().find(|n| n.node == "w1").unwrap();
    assert!(w1_plan
        .changes
        .iter()
        .all(|c| !matches!(c, Change::RotateKey { .. })));
    let refused = w1_plan.rotation_refused.as_ref().expect("refused");
    assert_eq!(refused.missing, ["w2 (unreachable)"], "{refused:?}");
}

/// A temporary file a killed apply left in ~/.ssh is removed by the next
/// apply, shown in the plan first.
#[test]
fn leftovers_of_a_killed_apply_are_planned_for_removal() {
    let inv = inv(INV);
    let mut live = converged(&inv);
    account_of(&mut live, &inv, "w2").leftovers = vec![".trustmesh.AbC123".into()];
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(
        t.contains("- ~/.ssh/.trustmesh.AbC123 (left by an interrupted run)"),
        "{t}"
    );
    assert_eq!(p.summary().remove, 1, "{t}");
    let after = apply_on_memory(&inv, &p, &live);
    assert!(run(&inv, &after).is_empty());
}
