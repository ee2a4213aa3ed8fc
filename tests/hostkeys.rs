//! Host keys as the node's sshd proves them (issue 19): the planner writes
//! only the keys a node's sshd proved to trustmesh's own verified
//! connection (`proven_host_keys`); what the node's account reports
//! (`host_keys`) is a hint, and a reported key that was not proven is
//! written nowhere and named in that node's plan.

mod support;

use support::*;
use trustmesh::formats::known_hosts::fingerprint_sha256;
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{Change, FileRole, Plan, PlannedLine};

const INV: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: w1, address: 10.0.0.11 }
  - { name: w2, address: 10.0.0.12, port: 2222 }
  - { name: w3, address: 10.0.0.13 }
mesh:
  - [w1, w2, w3]
";

fn inv(text: &str) -> Inventory {
    Inventory::from_str_named("inventory.yaml", text).unwrap()
}

/// Every known_hosts line the plan adds, with the node whose file it is.
fn host_lines(p: &Plan) -> Vec<(String, PlannedLine)> {
    p.nodes
        .iter()
        .flat_map(|n| {
            n.changes.iter().filter_map(move |c| match c {
                Change::EditFile(e) if e.file == FileRole::KnownHosts => Some(
                    e.add
                        .iter()
                        .map(|l| (n.node.clone(), l.clone()))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
        })
        .flatten()
        .collect()
}

fn planned_blobs(p: &Plan) -> Vec<String> {
    host_lines(p)
        .into_iter()
        .filter_map(|(_, l)| l.base64.as_deref().map(str::to_string))
        .collect()
}

#[test]
fn a_reported_host_key_that_was_not_proven_is_not_planned_and_is_named() {
    let inv = inv(INV);
    let mut live = fresh_cluster(&inv);
    // The wrapper attack: the account's probe output gains a host key.
    let attacker = fake_key("attacker");
    account_of(&mut live, &inv, "w1")
        .host_keys
        .push(format!("ssh-ed25519 {attacker} trustmesh:lab/w1"));
    let p = run(&inv, &live);
    let blobs = planned_blobs(&p);
    assert!(!blobs.is_empty(), "{}", text(&p));
    assert!(
        !blobs.contains(&attacker),
        "an unproven key is planned:\n{}",
        text(&p)
    );
    // The proven key of w1 is still written on its peers.
    assert!(blobs.contains(&fake_key("host-w1")), "{}", text(&p));
    let fp = fingerprint_sha256(&attacker).unwrap();
    let w1 = node_plan(&p, "w1");
    assert!(
        w1.warnings
            .iter()
            .any(|w| w.contains("unproven host key") && w.contains(&fp)),
        "{:?}",
        w1.warnings
    );
    // Said under that node only.
    for other in ["manager", "w2", "w3"] {
        assert!(
            !node_plan(&p, other)
                .warnings
                .iter()
                .any(|w| w.contains(&fp)),
            "{other}"
        );
    }
    assert!(text(&p).contains(&fp), "{}", text(&p));
}

#[test]
fn only_proven_keys_are_planned_each_with_its_fingerprint() {
    let inv = inv(INV);
    let mut live = fresh_cluster(&inv);
    let rsa = fake_key("w2-rsa");
    // An account that cannot read /etc/ssh reports nothing: the proof is
    // what counts.
    let w2 = account_of(&mut live, &inv, "w2");
    w2.host_keys.clear();
    w2.proven_host_keys.push(format!("ssh-rsa {rsa}"));
    // Nothing proven for w3: nothing written for it, whatever it reports.
    account_of(&mut live, &inv, "w3").proven_host_keys.clear();
    let p = run(&inv, &live);
    let lines = host_lines(&p);
    for node in ["manager", "w1"] {
        let of_w2: Vec<&PlannedLine> = lines
            .iter()
            .filter(|(n, l)| n == node && &*l.node == "w2")
            .map(|(_, l)| l)
            .collect();
        assert_eq!(of_w2.len(), 2, "{node}: {}", text(&p));
        for l in of_w2 {
            let b64 = l.base64.as_deref().unwrap();
            let fp = fingerprint_sha256(b64).unwrap();
            assert_eq!(l.fingerprint.as_deref(), Some(fp.as_str()));
            assert!(text(&p).contains(&format!("  ({fp})")), "{}", text(&p));
        }
    }
    assert!(!lines.iter().any(|(_, l)| &*l.node == "w3"), "{}", text(&p));
    assert!(node_plan(&p, "w3")
        .warnings
        .iter()
        .any(|w| w.contains("unproven host key")));
    // plan --json carries the fingerprint.
    let mut out = Vec::new();
    trustmesh::output::render_json(&p, &mut out).unwrap();
    let json = String::from_utf8(out).unwrap();
    let fp = fingerprint_sha256(&rsa).unwrap();
    assert!(
        json.contains(&format!("\"fingerprint\": \"{fp}\"")),
        "{json}"
    );
}

const SHARED: &str = "\
version: 1
cluster: lab
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: a1, address: 10.0.0.11, user: one }
  - { name: a2, address: 10.0.0.11, user: two }
";

#[test]
fn two_accounts_on_one_host_must_agree_on_the_proven_keys() {
    let inv = inv(SHARED);
    let mut live = fresh_cluster(&inv);
    let key = fake_key("the-host");
    for node in ["a1", "a2"] {
        let a = account_of(&mut live, &inv, node);
        a.host_keys = vec![format!("ssh-ed25519 {key}")];
        a.proven_host_keys = vec![format!("ssh-ed25519 {key}")];
    }
    // Agreeing: written once per node (each line carries its node's marker).
    let p = run(&inv, &live);
    let blobs = planned_blobs(&p);
    assert_eq!(
        blobs.iter().filter(|b| **b == key).count(),
        2,
        "{}",
        text(&p)
    );
    // One connection proved nothing: it takes the other's proof.
    account_of(&mut live, &inv, "a2").proven_host_keys.clear();
    let p = run(&inv, &live);
    assert_eq!(
        planned_blobs(&p).iter().filter(|b| **b == key).count(),
        2,
        "{}",
        text(&p)
    );
    // Disagreeing: nothing for either, and both plans say why.
    let other = fake_key("someone-else");
    account_of(&mut live, &inv, "a2").proven_host_keys = vec![format!("ssh-ed25519 {other}")];
    let p = run(&inv, &live);
    let blobs = planned_blobs(&p);
    assert!(
        !blobs.contains(&key) && !blobs.contains(&other),
        "{}",
        text(&p)
    );
    for node in ["a1", "a2"] {
        assert!(
            node_plan(&p, node)
                .warnings
                .iter()
                .any(|w| w.contains("proved different host keys")),
            "{node}: {}",
            text(&p)
        );
    }
}
