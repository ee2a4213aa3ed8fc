//! `options.hash_known_hosts`: managed known_hosts lines written hashed
//! (`|1|salt|hash`, the salt derived from the name and key so a re-plan
//! is empty), the clear name shown beside each in the plan, and switching
//! the option on or off rewriting only managed lines.

mod support;

use support::*;
use trustmesh::formats::known_hosts::{host_name, KnownHostsFile};
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{Change, LiveState, NodeFiles, NodeState};

const INV: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: w1, address: 10.0.0.11 }
  - { name: w2, address: 10.0.0.12, port: 2222 }
  - { name: w3, address: w3.Example.org }
reverse: [w1]
mesh:
  - [w1, w2, w3]
";

fn inv(hash: bool) -> Inventory {
    let text = format!("{INV}options: {{ hash_known_hosts: {hash} }}\n");
    Inventory::from_str_named("inventory.yaml", &text).unwrap()
}

/// Every node's known_hosts text, by node name.
fn known_hosts(inv: &Inventory, live: &LiveState) -> Vec<(String, String)> {
    inv.nodes
        .iter()
        .enumerate()
        .map(|(id, n)| {
            let NodeState::Read { account, .. } = &live.nodes[id] else {
                panic!("{} not read", n.name)
            };
            let name = NodeFiles::of(inv, id).known_hosts;
            (n.name.clone(), content(account, &name).to_string())
        })
        .collect()
}

/// The managed lines of a known_hosts text.
fn managed(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains(" trustmesh:lab/"))
        .collect()
}

/// The lines trustmesh did not write, in order (the final empty piece
/// after the last newline included, so a lost ending shows).
fn unmanaged(text: &str) -> Vec<&str> {
    text.split('\n')
        .filter(|l| !l.contains(" trustmesh:lab/"))
        .collect()
}

/// The host key line of `node` in the in-memory cluster: (type, base64).
fn host_key(inv: &Inventory, node: &str) -> (String, String) {
    let n = &inv.nodes[inv.find(node).unwrap()];
    (
        "ssh-ed25519".to_string(),
        fake_key(&format!("host-{}", n.name)),
    )
}

/// Lines trustmesh did not write, in every file: a hand-written clear
/// line, a hand-hashed line, another cluster's line, a comment.
fn add_foreign_lines(inv: &Inventory, live: &mut LiveState) -> Vec<String> {
    let foreign = vec![
        "# kept by hand\r".to_string(),
        format!("198.51.100.7 ssh-ed25519 {}", fake_key("other")),
        format!(
            "{} ssh-ed25519 {} bob@laptop",
            trustmesh::formats::known_hosts::hash_host_name("198.51.100.8", [3u8; 20]),
            fake_key("other2")
        ),
        format!("10.0.0.11 ssh-ed25519 {} trustmesh:other/w1", fake_key("x")),
    ];
    for n in ["manager", "w1", "w2", "w3"] {
        let id = inv.find(n).unwrap();
        let name = NodeFiles::of(inv, id).known_hosts;
        let acc = account_of(live, inv, n);
        let old = content(acc, &name).to_string();
        // Foreign lines before and after the managed ones.
        let text = format!(
            "{}\n{}\n{old}{}\n{}\n",
            foreign[0], foreign[1], foreign[2], foreign[3]
        );
        set_file(acc, &name, 0o600, &text);
    }
    foreign
}

#[test]
fn hashed_lines_hold_no_clear_name_and_are_found_by_their_hash() {
    let inv = inv(true);
    let live = fresh_cluster(&inv);
    let p = run(&inv, &live);
    assert!(
        p.notes.iter().all(|n| !n.contains("hash_known_hosts")),
        "{:?}",
        p.notes
    );
    // The plan shows the clear name beside each hashed line.
    let t = text(&p);
    assert!(t.contains("  (hashed: [10.0.0.12]:2222)"), "{t}");
    assert!(t.contains("  (hashed: 10.0.0.1)"), "{t}");
    assert!(t.contains("  (hashed: w3.Example.org)"), "{t}");
    assert!(!t.contains("+ 10.0.0."), "{t}");
    let json = {
        let mut out = Vec::new();
        trustmesh::output::render_json(&p, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert!(
        json.contains("\"clear_name\": \"[10.0.0.12]:2222\""),
        "{json}"
    );

    let after = apply_on_memory(&inv, &p, &live);
    let again = run(&inv, &after);
    assert!(again.is_empty(), "second plan not empty:\n{}", text(&again));
    // The planner is pure: the same state gives the same plan.
    assert_eq!(run(&inv, &live), p);

    // Which node must know which: the manager every worker, w1 the
    // manager (reverse) and its mesh peers.
    let wants: &[(&str, &[&str])] = &[
        ("manager", &["w1", "w2", "w3"]),
        ("w1", &["manager", "w2", "w3"]),
        ("w2", &["w1", "w3"]),
        ("w3", &["w1", "w2"]),
    ];
    let files = known_hosts(&inv, &after);
    for (node, targets) in wants {
        let text = &files.iter().find(|(n, _)| n == node).unwrap().1;
        let lines = managed(text);
        assert_eq!(lines.len(), targets.len(), "{node}:\n{text}");
        for l in &lines {
            assert!(l.starts_with("|1|"), "{node}: {l}");
            for addr in ["10.0.0.", "Example", "example"] {
                assert!(!l.contains(addr), "{node}: clear name in {l}");
            }
        }
        let file = KnownHostsFile::parse(text);
        for t in *targets {
            let n = &inv.nodes[inv.find(t).unwrap()];
            let addr = n.address.as_deref().unwrap();
            let (kt, b64) = host_key(&inv, t);
            assert_eq!(
                file.keys_for(addr, n.port),
                vec![(kt.as_str(), b64.as_str())],
                "{node} -> {t}"
            );
            // The hash is of `[addr]:port`, not of the address alone.
            if n.port != 22 {
                assert!(file.keys_for(addr, 22).is_empty());
            }
            // Each line is the hashed name trustmesh derives.
            let hashed = trustmesh::formats::known_hosts::managed_hashed_name(
                &host_name(addr, n.port),
                &kt,
                &b64,
            );
            assert!(
                lines.iter().any(|l| l.starts_with(&format!("{hashed} "))),
                "{node} -> {t}"
            );
        }
    }
}

#[test]
fn switching_on_then_off_rewrites_only_managed_lines() {
    let clear_inv = inv(false);
    let hashed_inv = inv(true);
    let mut live = converged(&clear_inv);
    let foreign = add_foreign_lines(&clear_inv, &mut live);
    assert!(
        run(&clear_inv, &live).is_empty(),
        "foreign lines change nothing"
    );
    let before = known_hosts(&clear_inv, &live);

    // On: every managed line is replaced by its hashed form (a change,
    // not an add and a remove), nothing else.
    let p = run(&hashed_inv, &live);
    let s = p.summary();
    let managed_count: usize = before.iter().map(|(_, t)| managed(t).len()).sum();
    assert_eq!(
        (s.add, s.change, s.remove),
        (0, managed_count, 0),
        "{}",
        text(&p)
    );
    for n in &p.nodes {
        for c in &n.changes {
            assert!(
                matches!(c, Change::EditFile(e) if e.path.ends_with("known_hosts")),
                "{}: {c:?}",
                n.node
            );
        }
    }
    let on = apply_on_memory(&hashed_inv, &p, &live);
    assert!(
        run(&hashed_inv, &on).is_empty(),
        "{}",
        text(&run(&hashed_inv, &on))
    );
    let hashed_files = known_hosts(&hashed_inv, &on);
    for ((node, old), (_, new)) in before.iter().zip(&hashed_files) {
        // Foreign lines stay byte for byte, in their order.
        assert_eq!(unmanaged(old), unmanaged(new), "{node}");
        for f in &foreign {
            assert!(new.contains(&format!("{f}\n")), "{node}: {f:?} lost");
        }
        assert_eq!(managed(old).len(), managed(new).len(), "{node}");
        assert!(
            managed(new).iter().all(|l| l.starts_with("|1|")),
            "{node}:\n{new}"
        );
    }

    // Off again: the managed lines come back in clear, the foreign ones
    // (the hand-hashed one included) stay.
    let p = run(&clear_inv, &on);
    let s = p.summary();
    assert_eq!(
        (s.add, s.change, s.remove),
        (0, managed_count, 0),
        "{}",
        text(&p)
    );
    let off = apply_on_memory(&clear_inv, &p, &on);
    assert!(run(&clear_inv, &off).is_empty());
    for ((node, old), (_, new)) in before.iter().zip(known_hosts(&clear_inv, &off)) {
        let mut a = managed(old);
        let mut b = managed(&new);
        a.sort();
        b.sort();
        assert_eq!(a, b, "{node}: the same clear lines as before");
        assert_eq!(unmanaged(old), unmanaged(&new), "{node}");
    }
}

#[test]
fn a_hashed_managed_line_is_kept_only_for_its_own_name_and_key() {
    let inv = inv(true);
    let mut live = converged(&inv);
    let kh = NodeFiles::of(&inv, 0).known_hosts;
    let (kt, w1_key) = host_key(&inv, "w1");
    let (_, w2_key) = host_key(&inv, "w2");
    let salt = [5u8; 20];
    // The manager's lines, each re-hashed with another salt (as
    // `ssh-keygen -H` would): kept as they are. Then w1's line hashed with
    // w2's name, and w2's line with w1's key: both replaced.
    let acc = account_of(&mut live, &inv, "manager");
    let rehashed: String = content(acc, &kh)
        .lines()
        .map(|l| {
            let rest = l.split_once(' ').unwrap().1;
            let name = if rest.ends_with("/w1") {
                "10.0.0.11"
            } else if rest.ends_with("/w2") {
                "[10.0.0.12]:2222"
            } else {
                "w3.example.org"
            };
            format!(
                "{} {rest}\n",
                trustmesh::formats::known_hosts::hash_host_name(name, salt)
            )
        })
        .collect();
    set_file(acc, &kh, 0o600, &rehashed);
    let p = run(&inv, &live);
    assert!(p.is_empty(), "re-salted lines are kept:\n{}", text(&p));

    let wrong = format!(
        "{} {kt} {w1_key} trustmesh:lab/w1\n{} {kt} {w1_key} trustmesh:lab/w2\n",
        trustmesh::formats::known_hosts::hash_host_name("[10.0.0.12]:2222", salt),
        trustmesh::formats::known_hosts::hash_host_name("[10.0.0.12]:2222", salt),
    );
    let keep_w3: String = rehashed
        .lines()
        .filter(|l| l.ends_with("/w3"))
        .map(|l| format!("{l}\n"))
        .collect();
    let acc = account_of(&mut live, &inv, "manager");
    set_file(acc, &kh, 0o600, &format!("{keep_w3}{wrong}"));
    let p = run(&inv, &live);
    let s = p.summary();
    assert_eq!((s.add, s.change, s.remove), (0, 2, 0), "{}", text(&p));
    let after = apply_on_memory(&inv, &p, &live);
    assert!(run(&inv, &after).is_empty());
    let text = &known_hosts(&inv, &after)[0].1;
    let file = KnownHostsFile::parse(text);
    assert_eq!(
        file.keys_for("10.0.0.11", 22),
        vec![(kt.as_str(), w1_key.as_str())]
    );
    assert_eq!(
        file.keys_for("10.0.0.12", 2222),
        vec![(kt.as_str(), w2_key.as_str())]
    );
    assert!(
        text.starts_with(&keep_w3),
        "the kept line stays first:\n{text}"
    );
}
