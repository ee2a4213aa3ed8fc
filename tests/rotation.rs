//! `--rotate-keys` in memory: a rotation is planned only when the new key
//! can be proven on every node the key opens (otherwise refused, nothing
//! planned for it), and a key a rotation retired is removed by later plans
//! when its removal did not happen.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::FileKind;
use trustmesh::plan::{self, Change, LiveState, NodeFiles, Plan, PlanScope};
use trustmesh::TrustGraph;

const INV: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: w1, address: 10.0.0.11 }
  - { name: w2, address: 10.0.0.12 }
  - { name: w3, address: 10.0.0.13 }
reverse: [w1]
mesh:
  - [w1, w2, w3]
";

fn inv() -> Inventory {
    Inventory::from_str_named("inventory.yaml", INV).unwrap()
}

fn plan_with(inv: &Inventory, live: &LiveState, scope: &PlanScope) -> Plan {
    plan::plan(inv, &TrustGraph::build(inv), live, scope)
}

fn rotate(inv: &Inventory, node: &str) -> PlanScope {
    PlanScope {
        rotate: [inv.find(node).unwrap()].into_iter().collect(),
        ..PlanScope::default()
    }
}

/// Nothing of a rotation anywhere in the plan: no new key, no line of a
/// key known only after apply, no removal waiting for a rotation.
#[track_caller]
fn no_rotation_planned(p: &Plan) {
    for n in &p.nodes {
        for c in &n.changes {
            match c {
                Change::RotateKey { .. } => {
                    panic!("{}: a rotation is planned:\n{}", n.node, text(p))
                }
                Change::EditFile(e) => {
                    assert!(e.after_rotation_of.is_none(), "{}:\n{}", n.node, text(p));
                    assert!(
                        e.add.iter().all(|l| l.base64.is_some()),
                        "{}: a key known after apply:\n{}",
                        n.node,
                        text(p)
                    );
                }
                _ => {}
            }
        }
    }
}

/// Issue 19: `--limit w1 --rotate-keys manager` rotated the manager's key,
/// proved it on w1 only, and locked the manager out of the others. The
/// manager's key opens every node: with --limit, it is refused.
#[test]
fn a_rotation_with_a_node_it_opens_out_of_limit_is_refused() {
    let inv = inv();
    let live = converged(&inv);
    let mut scope = rotate(&inv, "manager");
    scope.limit = Some([inv.find("w1").unwrap()].into_iter().collect());
    let p = plan_with(&inv, &live, &scope);
    no_rotation_planned(&p);
    let refused = node_plan(&p, "manager")
        .rotation_refused
        .clone()
        .unwrap_or_else(|| panic!("not refused:\n{}", text(&p)));
    assert_eq!(
        refused.missing,
        ["w2 (not in --limit)", "w3 (not in --limit)"],
        "{refused:?}"
    );
    assert!(refused
        .finding
        .hint
        .map(|h| h.to_string())
        .unwrap_or_default()
        .contains("drop --limit"));
    assert!(
        p.incomplete(),
        "a refused rotation leaves the plan incomplete"
    );
    let t = text(&p);
    assert!(
        t.contains("rotation refused: manager's key is not rotated"),
        "{t}"
    );
    assert!(
        t.contains("w2 (not in --limit), w3 (not in --limit)"),
        "{t}"
    );
    assert!(!t.contains("No changes"), "{t}");

    // A worker's key opens the manager and its mesh peers: the same.
    let mut scope = rotate(&inv, "w1");
    scope.limit = Some(
        [inv.find("w1").unwrap(), inv.find("w2").unwrap()]
            .into_iter()
            .collect(),
    );
    let p = plan_with(&inv, &live, &scope);
    no_rotation_planned(&p);
    let refused = node_plan(&p, "w1").rotation_refused.clone().unwrap();
    assert_eq!(refused.missing, ["w3 (not in --limit)"]);

    // Every node it opens in scope: rotated, proven on every one of them.
    let p = plan_with(&inv, &live, &rotate(&inv, "manager"));
    assert!(node_plan(&p, "manager").rotation_refused.is_none());
    let targets = node_plan(&p, "manager")
        .changes
        .iter()
        .find_map(|c| match c {
            Change::RotateKey { targets, .. } => Some(targets.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rotation:\n{}", text(&p)));
    assert_eq!(targets, ["w1", "w2", "w3"]);
    assert!(!p.incomplete());
}

/// A node the key opens that was not read, or is blocked (nothing can be
/// written there, so the new key could never be proven): refused, and
/// nothing of the rotation is planned on the other nodes.
#[test]
fn a_rotation_with_a_node_it_opens_unread_or_blocked_is_refused() {
    let inv = inv();
    let live = converged(&inv);
    let mut down = live.clone();
    down.nodes[inv.find("w3").unwrap()] = plan::NodeState::Unreachable(
        trustmesh::model::finding::Finding::new("connect", "down".into(), None),
    );
    let p = plan_with(&inv, &down, &rotate(&inv, "manager"));
    no_rotation_planned(&p);
    let refused = node_plan(&p, "manager").rotation_refused.clone().unwrap();
    assert_eq!(refused.missing, ["w3 (unreachable)"]);

    let mut blocked = live.clone();
    account_of(&mut blocked, &inv, "w2").ssh_dir = Some(stat(FileKind::Dir, 0o777));
    let p = plan_with(&inv, &blocked, &rotate(&inv, "manager"));
    assert!(matches!(
        node_plan(&p, "w2").status,
        plan::NodeStatus::Blocked { .. }
    ));
    no_rotation_planned(&p);
    let refused = node_plan(&p, "manager").rotation_refused.clone().unwrap();
    assert_eq!(refused.missing, ["w2 (blocked)"]);
    // w1 and w3 get nothing for it.
    assert!(node_plan(&p, "w1").changes.is_empty(), "{}", text(&p));
    assert!(node_plan(&p, "w3").changes.is_empty(), "{}", text(&p));
}

/// The lines of `node`'s authorized_keys.
fn authorized(live: &mut LiveState, inv: &Inventory, node: &str) -> String {
    content(account_of(live, inv, node), "authorized_keys").to_string()
}

/// A manager rotation whose removal of the old key failed on w2 (a
/// conflict, w2 down): the old pair is aside on the manager, w2 still lets
/// the old key in with trustmesh's own marker. The next plan removes it;
/// without the aside, the line is another operator's key and is kept.
#[test]
fn a_retired_key_left_behind_is_removed_by_the_next_plan() {
    let inv = inv();
    let live = converged(&inv);
    let p = plan_with(&inv, &live, &rotate(&inv, "manager"));
    let aside = node_plan(&p, "manager")
        .changes
        .iter()
        .find_map(|c| match c {
            Change::RotateKey { aside_path, .. } => Some(aside_path.clone()),
            _ => None,
        })
        .unwrap();
    let mut after = apply_on_memory(&inv, &p, &live);
    let old = fake_key("manager");
    let old_line = format!("ssh-ed25519 {old} trustmesh:lab/manager");
    assert!(!authorized(&mut after, &inv, "w2").contains(&old));
    // The removal on w2 did not happen.
    let w2_ak = format!("{}{old_line}\n", authorized(&mut after, &inv, "w2"));
    set_file(
        account_of(&mut after, &inv, "w2"),
        "authorized_keys",
        0o600,
        &w2_ak,
    );
    let without_aside = after.clone();
    // The old pair, moved aside on the manager by the swap.
    let aside_pub = format!("{}.pub", aside.trim_start_matches("~/.ssh/"));
    assert!(plan::is_aside_public(
        &NodeFiles::of(&inv, 0).key,
        &aside_pub
    ));
    set_file(
        account_of(&mut after, &inv, "manager"),
        &aside_pub,
        0o644,
        &format!("ssh-ed25519 {old} trustmesh:lab/manager\n"),
    );

    let p = run(&inv, &after);
    let removed: Vec<String> = node_plan(&p, "w2")
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::EditFile(e) => Some(e.remove.iter().map(|(_, l)| l.clone())),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(removed, [old_line], "{}", text(&p));
    assert!(node_plan(&p, "w2").warnings.is_empty(), "{}", text(&p));
    for n in ["manager", "w1", "w3"] {
        assert!(node_plan(&p, n).changes.is_empty(), "{n}:\n{}", text(&p));
    }
    let mut done = apply_on_memory(&inv, &p, &after);
    assert!(!authorized(&mut done, &inv, "w2").contains(&old));
    assert!(authorized(&mut done, &inv, "w2").contains(&fake_key("manager-rotated")));
    assert!(run(&inv, &done).is_empty());

    // No aside: a key trustmesh did not rotate itself is never removed.
    let p = run(&inv, &without_aside);
    assert!(p.is_empty(), "{}", text(&p));
    assert!(node_plan(&p, "w2")
        .warnings
        .iter()
        .any(|w| w.contains("marked as this cluster's manager")));
}

/// Aside names: `<key>.old-<letters and digits>.pub` and an unfinished
/// rotation's `<key>.trustmesh-new.pub`, nothing else.
#[test]
fn aside_names_are_recognised_exactly() {
    assert!(plan::is_aside_public(
        "id_ed25519",
        "id_ed25519.old-AbC123xy.pub"
    ));
    assert!(plan::is_aside_public("/k/id", "/k/id.old-Q1.pub"));
    // The new key of a rotation whose proof failed: not in use either.
    assert!(plan::is_aside_public(
        "id_ed25519",
        "id_ed25519.trustmesh-new.pub"
    ));
    for name in [
        "id_ed25519.old-AbC123xy",
        "id_ed25519.old-.pub",
        "id_ed25519.old-a/b.pub",
        "id_ed25519.old-a.b.pub",
        "id_rsa.old-Ab.pub",
        "id_ed25519.pub",
        "id_ed25519.trustmesh-new",
    ] {
        assert!(!plan::is_aside_public("id_ed25519", name), "{name}");
    }
    assert_eq!(plan::aside_tag("SHA256:a+b/cdefghijk"), "abcdefgh");
}
