//! Certificate mode at scale and in mixed clusters (issue #22): one group
//! of thousands of workers plans, every worker's files hold a constant
//! number of managed lines (the same at N and 2N), and a node whose sshd
//! cannot take certificates keeps plain key lines, the plan saying why.

mod support;

use std::time::{Duration, Instant};

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{Change, FileRole, LiveState, Plan};

/// Lines the plan adds to `role` on each node, by node name.
fn added(p: &Plan, role: FileRole) -> Vec<(String, usize)> {
    p.nodes
        .iter()
        .map(|n| {
            let lines = n
                .changes
                .iter()
                .filter_map(|c| match c {
                    Change::EditFile(e) if e.file == role => Some(e.add.len()),
                    _ => None,
                })
                .sum();
            (n.node.clone(), lines)
        })
        .collect()
}

/// The distinct line counts of the workers' files, and the manager's.
fn counts(p: &Plan, role: FileRole) -> (Vec<usize>, usize) {
    let all = added(p, role);
    let mut workers: Vec<usize> = all
        .iter()
        .filter(|(n, _)| n != "m")
        .map(|(_, c)| *c)
        .collect();
    workers.sort_unstable();
    workers.dedup();
    let manager = all.iter().find(|(n, _)| n == "m").map_or(0, |(_, c)| *c);
    (workers, manager)
}

#[test]
fn a_group_of_thousands_plans_with_a_constant_count_of_lines_per_worker() {
    let mut seen = Vec::new();
    for workers in [2_000, 4_000] {
        let inv = Inventory::from_str_named("inventory.yaml", &one_group(workers, true))
            .unwrap_or_else(|e| panic!("{workers} workers in one group do not load: {e:?}"));
        let live = rooted(&inv);
        let t = Instant::now();
        let p = run(&inv, &live);
        let took = t.elapsed();
        assert!(p
            .nodes
            .iter()
            .all(|n| n.warnings.is_empty() || n.node == "m"));
        let ak = counts(&p, FileRole::AuthorizedKeys);
        let kh = counts(&p, FileRole::KnownHosts);
        // A worker: the manager's own plain line and one cert-authority
        // line; one @cert-authority line and the manager's pinned key.
        assert_eq!(ak, (vec![2], 1), "{workers} workers: authorized_keys");
        // The manager pins every host it manages (its pins prove the keys
        // the host CA signs), beside the CA line: linear in all.
        assert_eq!(kh, (vec![2], workers + 1), "{workers} workers: known_hosts");
        seen.push((workers, took));
    }
    // Linear, not quadratic: twice the workers takes well under four
    // times as long (generous: a loaded machine, a debug build).
    let (small, large) = (seen[0].1, seen[1].1);
    assert!(
        large < small * 3 + Duration::from_secs(2),
        "2,000 workers: {small:?}, 4,000: {large:?}"
    );
}

/// Why `text` does not load (it must not).
fn refused(text: &str) -> String {
    match Inventory::from_str_named("inventory.yaml", text) {
        Ok(_) => panic!("the inventory loads"),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn a_plain_mesh_keeps_its_edge_cap() {
    let text = one_group(2_100, false);
    let err = refused(&text);
    assert!(
        err.contains("trust edges; trustmesh plans at most 4,000,000"),
        "{err}"
    );
}

#[test]
fn plain_members_of_a_certificate_group_count_their_edges() {
    // 2,100 workers of which 1,500 keep plain key lines: 1,500 × 2,099
    // lines from them and 600 × 1,500 to them, over the cap even in
    // certificate mode.
    let mut text = one_group(2_100, true);
    for i in 0..1_500 {
        text = text.replacen(
            &format!(
                "name: w{i:05}, address: 10.1.{}.{}, groups: [g] }}",
                i / 256,
                i % 256
            ),
            &format!(
                "name: w{i:05}, address: 10.1.{}.{}, groups: [g], certificates: false }}",
                i / 256,
                i % 256
            ),
            1,
        );
    }
    let err = refused(&text);
    assert!(err.contains("trustmesh plans at most 4,000,000"), "{err}");
}

/// A small mixed group: w2's sshd is dropbear, w3's an old OpenSSH.
fn mixed() -> (Inventory, LiveState) {
    let inv = Inventory::from_str_named("inventory.yaml", &one_group(4, true)).unwrap();
    let mut live = rooted(&inv);
    for (name, version) in [
        ("w00000", "OpenSSH_9.2p1"),
        ("w00001", "OpenSSH_9.6"),
        ("w00002", "dropbear_2022.83"),
        ("w00003", "OpenSSH_5.3p1"),
    ] {
        account_of(&mut live, &inv, name).sshd_version = Some(version.into());
    }
    (inv, live)
}

#[test]
fn a_node_whose_sshd_cannot_take_certificates_keeps_plain_key_lines() {
    let (inv, live) = mixed();
    let p = run(&inv, &live);
    let shown = text(&p);
    assert!(
        shown.contains(
            "certificates: w00002 keeps plain key lines: its sshd is dropbear, not OpenSSH"
        ),
        "{shown}"
    );
    assert!(
        shown.contains(
            "certificates: w00003 keeps plain key lines: its sshd is OpenSSH 5.3, older than 6.5"
        ),
        "{shown}"
    );
    let edit = |node: &str| {
        node_plan(&p, node)
            .changes
            .iter()
            .find_map(|c| match c {
                Change::EditFile(e) if e.file == FileRole::AuthorizedKeys => Some(e.clone()),
                _ => None,
            })
            .unwrap()
    };
    let sources = |node: &str| {
        let mut s: Vec<String> = edit(node).add.iter().map(|l| l.node.to_string()).collect();
        s.sort();
        s
    };
    // The dropbear node: one plain line per peer (and the manager's), no
    // cert-authority line.
    assert_eq!(sources("w00002"), ["m", "w00000", "w00001", "w00003"]);
    assert!(edit("w00002").add.iter().all(|l| l
        .options
        .as_deref()
        .is_none_or(|o| !o.contains("cert-authority"))));
    // An able node: the manager's line, the CA line for its able peer,
    // and plain lines from the two that cannot hold certificates.
    assert_eq!(sources("w00000"), ["(user CA)", "m", "w00002", "w00003"]);
    // No certificate is issued for them; the able ones get theirs.
    let issued = |node: &str| {
        node_plan(&p, node)
            .changes
            .iter()
            .any(|c| matches!(c, Change::IssueCertificate(_)))
    };
    assert!(issued("w00000") && issued("w00001"));
    assert!(!issued("w00002") && !issued("w00003"));
}
