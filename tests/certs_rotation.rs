//! Rotation in certificate mode (issue #22), in memory at a fixed "now":
//! `--rotate-keys @ca` (the plan's steps, the order apply takes them, a
//! failed proof that keeps the old CA trusted, convergence with no line
//! trusting the old CA), the CLI's name for the CA, and a node's key
//! rotated with a certificate for the new key before its proofs.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use trustmesh::apply::ApplyReport;
use trustmesh::model::inventory::Inventory;
use trustmesh::node::memory::MemoryDoor;
use trustmesh::node::{Door, SignRequest};
use trustmesh::plan::{
    Change, FileRole, LiveState, NodeFiles, NodeState, Plan, PlanScope, CA_NODE,
};

const CA: &str = "~/.ssh/trustmesh_ca";
const NEW_CA: &str = "~/.ssh/trustmesh_ca.trustmesh-new";

fn cluster(workers: usize) -> Inventory {
    let mut s = String::from(
        "version: 1\ncluster: lab\ndefaults: { user: agilab }\nmanager: { name: manager, address: 10.0.0.1, user: alice }\nworkers:\n",
    );
    for i in 1..=workers {
        s.push_str(&format!(
            "  - {{ name: w{i:02}, address: 10.0.0.{}, groups: [g] }}\n",
            10 + i
        ));
    }
    s.push_str("mesh:\n  - group: g\ncertificates: { ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }\n");
    Inventory::from_str_at("inventory.yaml", &s, day(0)).unwrap()
}

/// A real ed25519 key from a name.
fn key(name: &str) -> ssh_key::PrivateKey {
    let mut seed = [7u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    ssh_key::PrivateKey::new(ssh_key::private::KeypairData::Ed25519(pair), "").unwrap()
}

/// `type base64` of a key.
fn public(k: &ssh_key::PrivateKey) -> String {
    let line = k.public_key().to_openssh().unwrap();
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keys every door makes: the CA and the new CA, each node's key and
/// its rotated key, all real (they are signed).
fn keygen(node: String) -> Box<trustmesh::node::memory::Keygen> {
    Box::new(move |path: &str, _: &str, marker: &str| {
        let who = match path {
            CA => "ca-old".to_string(),
            NEW_CA => "ca-new".to_string(),
            p if p.ends_with(".trustmesh-new") => format!("{node}-rotated"),
            _ => node.clone(),
        };
        format!("{} {marker}", public(&key(&who)))
    })
}

/// The manager's signing: with the CA its request names.
fn sign_by_path(req: &SignRequest) -> Result<String, trustmesh::node::memory::SignError> {
    let ca = if req.ca.as_plan() == NEW_CA {
        key("ca-new")
    } else {
        key("ca-old")
    };
    sign_with(&ca, req)
}

/// Apply `plan` on logging memory doors with real keys and CAs, each door
/// passed through `adjust` (a failing proof): the report, the log, and the
/// state read back.
fn apply(
    inv: &Inventory,
    plan: &Plan,
    live: &LiveState,
    adjust: impl Fn(&str, MemoryDoor) -> MemoryDoor,
) -> (ApplyReport, Vec<String>, LiveState) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let doors = memory_doors(inv, live, |name, d| {
        let d = d.with_keygen(keygen(name.to_string()));
        let d = if name == "manager" {
            d.with_signer(Box::new(sign_by_path))
        } else {
            d
        };
        adjust(name, d)
    });
    let doors = logged(doors, &log);
    let run_dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let graph = trustmesh::TrustGraph::build(inv);
    let report = rt.block_on(trustmesh::apply::apply_on(
        inv,
        &graph,
        plan,
        &as_doors(&doors),
        &memory_options(Some(run_dir.path().to_path_buf())),
    ));
    let mut after = live.clone();
    for (id, d) in doors.iter().enumerate() {
        if let (Some(d), NodeState::Read { account, .. }) = (d, &mut after.nodes[id]) {
            *account = rt.block_on(d.read_state(&NodeFiles::of(inv, id))).unwrap();
        }
    }
    let log = each_op(&log.lock().unwrap());
    (report, log, after)
}

fn plan_with(inv: &Inventory, live: &LiveState, scope: PlanScope) -> Plan {
    let scope = PlanScope {
        now: Some(day(0)),
        ..scope
    };
    trustmesh::plan::plan(inv, &trustmesh::TrustGraph::build(inv), live, &scope)
}

fn rotate_ca() -> PlanScope {
    PlanScope {
        rotate_ca: true,
        ..Default::default()
    }
}

/// A cluster in certificate mode, converged with the old CA.
fn converged(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for _ in 0..4 {
        let p = plan_with(inv, &live, PlanScope::default());
        if p.is_empty() {
            return live;
        }
        let (report, _, after) = apply(inv, &p, &live, |_, d| d);
        assert!(!report.failed(), "{report:#?}");
        live = after;
    }
    panic!("not converged")
}

fn authorized_keys(live: &mut LiveState, inv: &Inventory, node: &str) -> String {
    let name = NodeFiles::of(inv, inv.find(node).unwrap()).authorized_keys;
    content(account_of(live, inv, node), &name).to_string()
}

fn ca_public(live: &mut LiveState, inv: &Inventory) -> String {
    let name = NodeFiles::of(inv, Inventory::MANAGER).user_ca.unwrap().0;
    content(account_of(live, inv, "manager"), &name).to_string()
}

fn certificate(live: &mut LiveState, inv: &Inventory, node: &str) -> ssh_key::Certificate {
    let name = NodeFiles::of(inv, inv.find(node).unwrap())
        .certificate
        .unwrap();
    let text = content(account_of(live, inv, node), &name).to_string();
    ssh_key::Certificate::from_openssh(text.trim()).unwrap()
}

#[test]
fn the_ca_rotation_plan_shows_every_step_and_keeps_the_old_ca_until_the_end() {
    let i = cluster(3);
    let live = converged(&i);
    let p = plan_with(&i, &live, rotate_ca());
    let shown = text(&p);
    for s in [
        "~ rotate the user CA ~/.ssh/trustmesh_ca (SHA256:",
        "1. create the new CA ~/.ssh/trustmesh_ca.trustmesh-new on the manager",
        "4. prove 6 certificate edges with a fresh connection each: w01 -> w02, w01 -> w03, w02 -> w01",
        "5. only then put the new CA in place as ~/.ssh/trustmesh_ca and archive the old pair as ~/.ssh/trustmesh_ca.old-",
        "re-issue certificate",
        "~/.ssh/authorized_keys once the new user CA is proven:",
    ] {
        assert!(shown.contains(s), "no `{s}` in:\n{shown}");
    }
    let old = public(&key("ca-old"));
    for w in ["w01", "w02", "w03"] {
        let changes = &node_plan(&p, w).changes;
        let kinds: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::EditFile(e) if e.after_rotation_of.is_some() => {
                    assert_eq!(e.after_rotation_of.as_deref(), Some(CA_NODE));
                    assert_eq!(e.remove.len(), 1, "{shown}");
                    assert!(e.remove[0].1.contains(&old), "{shown}");
                    "remove old CA".into()
                }
                Change::EditFile(e) if e.file == FileRole::AuthorizedKeys => {
                    assert!(e.remove.is_empty(), "the old CA stays: {shown}");
                    assert!(e
                        .add
                        .iter()
                        .all(|l| l.node.as_ref() == CA_NODE && l.base64.is_none()));
                    "add new CA".into()
                }
                Change::IssueCertificate(c) => {
                    assert_eq!(c.ca, NEW_CA);
                    format!("certificate ({})", c.reason)
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "certificate (re-issue: signed by the new user CA)",
                "add new CA",
                "remove old CA"
            ],
            "{w}: {shown}"
        );
    }
}

#[test]
fn apply_trusts_the_new_ca_everywhere_then_writes_then_proves_then_swaps_then_removes() {
    let i = cluster(3);
    let live = converged(&i);
    let p = plan_with(&i, &live, rotate_ca());
    let (report, log, mut after) = apply(&i, &p, &live, |_, d| d);
    assert!(!report.failed(), "{report:#?}");
    let at = |what: &str| -> Vec<usize> {
        let v: Vec<usize> = (0..log.len()).filter(|&k| log[k] == what).collect();
        assert!(!v.is_empty(), "no `{what}` in {log:#?}");
        v
    };
    let mut trusts = Vec::new();
    let mut retires = Vec::new();
    let mut writes = Vec::new();
    let mut proofs = Vec::new();
    for w in ["w01", "w02", "w03"] {
        let ak = at(&format!("{w} replace ~/.ssh/authorized_keys"));
        assert_eq!(ak.len(), 2, "{log:#?}");
        trusts.push(ak[0]);
        retires.push(ak[1]);
        writes.extend(at(&format!("{w} replace ~/.ssh/id_ed25519-cert.pub")));
        for t in ["w01", "w02", "w03"].iter().filter(|t| **t != w) {
            proofs.extend(at(&format!("{w} prove {t}")));
        }
    }
    let swap = at("manager swap")[0];
    let max = |v: &[usize]| *v.iter().max().unwrap();
    let min = |v: &[usize]| *v.iter().min().unwrap();
    assert!(max(&trusts) < min(&writes), "{log:#?}");
    assert!(max(&writes) < min(&proofs), "{log:#?}");
    assert!(max(&proofs) < swap, "{log:#?}");
    assert!(swap < min(&retires), "{log:#?}");
    // The end: the new CA in place, trusted alone, every certificate
    // signed by it, and nothing left to do.
    let (old, new) = (public(&key("ca-old")), public(&key("ca-new")));
    assert!(ca_public(&mut after, &i).starts_with(&new));
    for w in ["w01", "w02", "w03"] {
        let ak = authorized_keys(&mut after, &i, w);
        assert!(!ak.contains(&old) && ak.contains(&new), "{w}:\n{ak}");
        let c = certificate(&mut after, &i, w);
        assert_eq!(c.signature_key(), key("ca-new").public_key().key_data());
    }
    let again = plan_with(&i, &after, PlanScope::default());
    assert!(again.is_empty(), "{}", text(&again));
}

#[test]
fn a_failed_proof_keeps_the_old_ca_trusted_and_in_place() {
    let i = cluster(3);
    let live = converged(&i);
    let p = plan_with(&i, &live, rotate_ca());
    let (report, log, mut after) = apply(&i, &p, &live, |name, d| {
        if name == "w01" {
            d.failing_proof("w02")
        } else {
            d
        }
    });
    assert!(report.failed(), "{report:#?}");
    assert!(!log.iter().any(|l| l == "manager swap"), "{log:#?}");
    let old = public(&key("ca-old"));
    assert!(ca_public(&mut after, &i).starts_with(&old));
    for w in ["w01", "w02", "w03"] {
        let ak = authorized_keys(&mut after, &i, w);
        assert!(ak.contains(&old), "{w} lost the old CA:\n{ak}");
    }
    // The next plan (no rotation asked) goes back to the old CA: it signs
    // again with it before it removes the new CA's lines.
    let again = plan_with(&i, &after, PlanScope::default());
    assert!(!again.is_empty());
    let (report, _, mut fixed) = apply(&i, &again, &after, |_, d| d);
    assert!(!report.failed(), "{report:#?}");
    let c = certificate(&mut fixed, &i, "w01");
    assert_eq!(c.signature_key(), key("ca-old").public_key().key_data());
    let new = public(&key("ca-new"));
    for w in ["w01", "w02", "w03"] {
        let ak = authorized_keys(&mut fixed, &i, w);
        assert!(ak.contains(&old) && !ak.contains(&new), "{w}:\n{ak}");
    }
}

#[test]
fn the_ca_is_not_rotated_in_a_limited_run_nor_with_node_keys() {
    let i = cluster(2);
    let live = converged(&i);
    let limited = PlanScope {
        limit: Some([i.find("w01").unwrap()].into_iter().collect()),
        ..rotate_ca()
    };
    let w01 = i.find("w01").unwrap();
    let with_keys = PlanScope {
        rotate: [w01].into_iter().collect(),
        ..rotate_ca()
    };
    for scope in [limited, with_keys] {
        let p = plan_with(&i, &live, scope);
        let m = node_plan(&p, "manager");
        let refused = m
            .rotation_refused
            .as_ref()
            .map(|r| r.finding.reason.as_str());
        assert!(
            refused.is_some_and(|r| r.starts_with("the user CA is not rotated")),
            "{}",
            text(&p)
        );
        // Said, and the plan is not complete (plan and apply exit 1).
        assert!(text(&p).contains("rotation refused: the user CA is not rotated"));
        assert!(p.incomplete());
        assert!(p
            .nodes
            .iter()
            .flat_map(|n| &n.changes)
            .all(|c| !matches!(c, Change::RotateUserCa { .. })));
    }
}

#[test]
fn the_ca_is_not_rotated_when_a_certificate_source_has_no_shell_for_its_proofs() {
    let i = Inventory::from_str_at(
        "inventory.yaml",
        "version: 1\ncluster: lab\ndefaults: { user: agilab }\nmanager: { name: manager, address: 10.0.0.1, user: alice }\n\
         workers:\n  - { name: w01, address: 10.0.0.11, groups: [g] }\n  - { name: w02, address: 10.0.0.12, groups: [g], access: sftp }\n\
         mesh:\n  - group: g\ncertificates: {}\n",
        day(0),
    )
    .unwrap();
    let mut live = fresh_cluster(&i);
    for id in 0..i.nodes.len() {
        with_key(&i, id, account_at(&mut live, id));
    }
    let ca = NodeFiles::of(&i, Inventory::MANAGER).user_ca.unwrap();
    let acc = account_at(&mut live, Inventory::MANAGER);
    set_file(acc, &ca.1, 0o600, "private");
    set_file(
        acc,
        &ca.0,
        0o644,
        &format!("{} trustmesh-ca:lab\n", public(&key("ca-old"))),
    );
    let p = plan_with(&i, &live, rotate_ca());
    let refused = node_plan(&p, "manager").rotation_refused.clone();
    assert!(
        refused.is_some_and(|r| r.finding.reason.contains("w02 is reached over SFTP only")),
        "{}",
        text(&p)
    );
}

#[test]
fn rotate_keys_names_the_ca_as_at_ca_and_as_ca_unless_a_node_is_so_named() {
    let flags = |names: &[&str]| trustmesh::plan::saved::PlanFlags {
        rotate_keys: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let i = cluster(2);
    for name in ["@ca", "ca"] {
        let s = trustmesh::ops::scope(&i, &flags(&[name])).unwrap();
        assert!(s.rotate_ca && s.rotate.is_empty(), "{name}");
    }
    let named = Inventory::from_str_at(
        "inventory.yaml",
        "version: 1\ncluster: lab\nmanager: { name: manager, address: 10.0.0.1 }\nworkers:\n  - { name: ca, address: 10.0.0.2 }\nreverse: all\ncertificates: {}\n",
        day(0),
    )
    .unwrap();
    let s = trustmesh::ops::scope(&named, &flags(&["ca"])).unwrap();
    assert!(!s.rotate_ca && s.rotate.contains(&1));
    let s = trustmesh::ops::scope(&named, &flags(&["@ca"])).unwrap();
    assert!(s.rotate_ca && s.rotate.is_empty());
    let plain =
        support::inv("version: 1\ncluster: lab\nmanager: { name: manager, address: 10.0.0.1 }\n");
    assert!(trustmesh::ops::scope(&plain, &flags(&["@ca"])).is_err());
}

#[test]
fn a_rotated_key_in_certificate_mode_is_signed_before_its_proofs_and_converges() {
    let i = cluster(3);
    let live = converged(&i);
    let w01 = i.find("w01").unwrap();
    let scope = PlanScope {
        rotate: [w01].into_iter().collect(),
        ..Default::default()
    };
    let p = plan_with(&i, &live, scope);
    let issue = node_plan(&p, "w01")
        .changes
        .iter()
        .find_map(|c| match c {
            Change::IssueCertificate(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no certificate for the new key:\n{}", text(&p)));
    assert_eq!(issue.path, "~/.ssh/id_ed25519.trustmesh-new-cert.pub");
    assert_eq!(issue.reason, "issue: for the rotated key");
    let (report, log, mut after) = apply(&i, &p, &live, |_, d| d);
    assert!(!report.failed(), "{report:#?}");
    let pos = |what: &str| {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("no `{what}` in {log:#?}"))
    };
    let write = pos("w01 replace ~/.ssh/id_ed25519.trustmesh-new-cert.pub");
    assert!(
        write < pos("w01 prove w02") && write < pos("w01 prove w03"),
        "{log:#?}"
    );
    assert!(pos("w01 prove w02") < pos("w01 swap"), "{log:#?}");
    let c = certificate(&mut after, &i, "w01");
    assert_eq!(c.public_key(), key("w01-rotated").public_key().key_data());
    let again = plan_with(&i, &after, PlanScope::default());
    assert!(again.is_empty(), "{}", text(&again));
}

/// A new CA a failed rotation left on the manager (`<ca>.trustmesh-new`,
/// trustmesh's by its comment, still trusted on w02): the next rotation
/// moves it aside (kept, not deleted) before it makes the new CA, says so
/// in the plan, keeps w02's line of it until the new CA is proven and then
/// removes it with the old CA's. One trustmesh did not make refuses the
/// rotation.
#[test]
fn a_new_ca_left_by_a_failed_rotation_is_moved_aside_by_the_next_one() {
    let i = cluster(3);
    let mut live = converged(&i);
    let (old, stale) = (public(&key("ca-old")), public(&key("ca-stale")));
    let m = account_of(&mut live, &i, "manager");
    set_file(
        m,
        "trustmesh_ca.trustmesh-new",
        0o600,
        "PRIVATE (never read)",
    );
    let stale_pub = format!("{stale} trustmesh-ca:lab\n");
    set_file(m, "trustmesh_ca.trustmesh-new.pub", 0o644, &stale_pub);
    let w02 = account_of(&mut live, &i, "w02");
    let ak = content(w02, "authorized_keys").to_string();
    let line = ak
        .lines()
        .find(|l| l.contains(&old))
        .unwrap()
        .replace(&old, &stale);
    set_file(w02, "authorized_keys", 0o600, &format!("{ak}{line}\n"));

    let p = plan_with(&i, &live, rotate_ca());
    let m = node_plan(&p, "manager");
    assert!(m.rotation_refused.is_none(), "{}", text(&p));
    match &m.changes[..] {
        [Change::MoveAside {
            path,
            aside_path,
            why,
            ..
        }, Change::RotateUserCa { new_path, .. }, ..] => {
            assert_eq!((path.as_str(), new_path.as_str()), (NEW_CA, NEW_CA));
            assert!(
                aside_path.starts_with("~/.ssh/trustmesh_ca.old-"),
                "{aside_path}"
            );
            assert!(why.contains("w02 still trust it"), "{why}");
        }
        other => panic!("{other:#?}"),
    }
    assert!(
        text(&p).contains(
            "left by a rotation that did not finish: moved aside to ~/.ssh/trustmesh_ca.old-"
        ),
        "{}",
        text(&p)
    );
    let (report, log, mut after) = apply(&i, &p, &live, |_, d| d);
    assert!(!report.failed(), "{report:#?}");
    let pos = |what: &str| log.iter().position(|l| l == what);
    let (moved, made) = (pos("manager swap"), pos("manager keygen"));
    assert!(moved.is_some() && moved < made, "{log:#?}");
    let new = public(&key("ca-new"));
    assert!(ca_public(&mut after, &i).starts_with(&new));
    for w in ["w01", "w02", "w03"] {
        let ak = authorized_keys(&mut after, &i, w);
        assert!(
            !ak.contains(&old) && !ak.contains(&stale) && ak.contains(&new),
            "{w}:\n{ak}"
        );
    }
    let again = plan_with(&i, &after, PlanScope::default());
    assert!(again.is_empty(), "{}", text(&again));

    // Not trustmesh's (another comment): left alone, the rotation refused.
    let m = account_of(&mut live, &i, "manager");
    set_file(
        m,
        "trustmesh_ca.trustmesh-new.pub",
        0o644,
        &format!("{stale} alice@laptop\n"),
    );
    let p = plan_with(&i, &live, rotate_ca());
    let m = node_plan(&p, "manager");
    let why = m
        .rotation_refused
        .as_ref()
        .map(|r| r.finding.reason.clone());
    assert!(
        why.as_deref()
            .is_some_and(|w| w.contains("is not a key trustmesh made")),
        "{why:?}"
    );
    assert!(!m
        .changes
        .iter()
        .any(|c| matches!(c, Change::MoveAside { .. } | Change::RotateUserCa { .. })));
}

/// A node key rotation in certificate mode that failed left the new pair
/// and its certificate on w01: the next rotation of w01 moves them aside
/// first and writes the new certificate where none is; converged.
#[test]
fn a_node_keys_leftover_pair_and_certificate_are_moved_aside_by_the_next_rotation() {
    let i = cluster(3);
    let mut live = converged(&i);
    let w01 = account_of(&mut live, &i, "w01");
    let stale = public(&key("w01-stale"));
    set_file(
        w01,
        "id_ed25519.trustmesh-new",
        0o600,
        "PRIVATE (never read)",
    );
    set_file(
        w01,
        "id_ed25519.trustmesh-new.pub",
        0o644,
        &format!("{stale} trustmesh:lab/w01\n"),
    );
    let cert = content(w01, "id_ed25519-cert.pub").to_string();
    set_file(w01, "id_ed25519.trustmesh-new-cert.pub", 0o644, &cert);
    let scope = PlanScope {
        rotate: [i.find("w01").unwrap()].into_iter().collect(),
        ..Default::default()
    };
    let p = plan_with(&i, &live, scope);
    let w = node_plan(&p, "w01");
    assert!(w.rotation_refused.is_none(), "{}", text(&p));
    let at = |f: &dyn Fn(&Change) -> bool| w.changes.iter().position(f);
    let moved = at(
        &|c| matches!(c, Change::MoveAside { path, .. } if path == "~/.ssh/id_ed25519.trustmesh-new"),
    );
    let rotate = at(&|c| matches!(c, Change::RotateKey { .. }));
    assert!(moved.is_some() && moved < rotate, "{}", text(&p));
    let issue = w.changes.iter().find_map(|c| match c {
        Change::IssueCertificate(c) => Some(c),
        _ => None,
    });
    assert!(issue.is_some_and(|c| c.create), "{issue:#?}");
    let (report, log, mut after) = apply(&i, &p, &live, |_, d| d);
    assert!(!report.failed(), "{report:#?}\n{log:#?}");
    let c = certificate(&mut after, &i, "w01");
    assert_eq!(c.public_key(), key("w01-rotated").public_key().key_data());
    let again = plan_with(&i, &after, PlanScope::default());
    assert!(again.is_empty(), "{}", text(&again));
}
