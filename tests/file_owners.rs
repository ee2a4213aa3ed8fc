//! Files of another account (an admin's lock: `~/.ssh` given to root): a
//! plan proposes only what the account can do. Not root: the node is
//! blocked with the command an admin runs, never a `chown` or `chmod` that
//! must fail. Root: the owner is given back, as before.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::{FileKind, LiveState, Privilege};
use trustmesh::plan::{Change, NodeFiles, NodePlan, NodeStatus};

fn demo() -> Inventory {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/demo.yaml");
    Inventory::load(&path).unwrap()
}

/// A converged demo cluster, with node2's `~/.ssh` handed to root (0755)
/// and, when `files`, its authorized_keys too (0644).
fn locked(inv: &Inventory, files: bool) -> LiveState {
    let mut live = converged(inv);
    let ak = NodeFiles::of(inv, inv.find("node2").unwrap()).authorized_keys;
    let acc = account_of(&mut live, inv, "node2");
    let d = acc.ssh_dir.as_mut().unwrap();
    (d.uid, d.gid, d.mode) = (0, 0, 0o755);
    if files {
        let f = acc.files.iter_mut().find(|f| f.name == ak).unwrap();
        let s = f.stat.as_mut().unwrap();
        (s.uid, s.gid, s.mode) = (0, 0, 0o644);
    }
    live
}

fn owner_or_mode(n: &NodePlan) -> bool {
    n.changes
        .iter()
        .any(|c| matches!(c, Change::Owner { .. } | Change::Mode { .. }))
}

/// The reason and hint of a blocked node.
fn blocked(n: &NodePlan) -> (&str, String) {
    match &n.status {
        NodeStatus::Blocked(trustmesh::model::finding::Finding { reason, hint, .. }) => (
            reason,
            hint.as_ref().map(|h| h.to_string()).unwrap_or_default(),
        ),
        s => panic!("{} is not blocked: {s:?}\n{:?}", n.node, n.changes),
    }
}

#[test]
fn a_root_owned_ssh_folder_blocks_the_node_with_the_admins_command() {
    let inv = demo();
    let live = locked(&inv, true);
    let p = run(&inv, &live);
    let n = node_plan(&p, "node2");
    let (reason, hint) = blocked(n);
    assert!(
        reason.contains("~/.ssh (uid 0, mode 0755)")
            && reason.contains("~/.ssh/authorized_keys (uid 0, mode 0644)")
            && reason.contains("agilab (uid 1000) is not root"),
        "{reason}"
    );
    assert!(
        hint.contains("`chown -R agilab: /home/node2/.ssh`"),
        "one recursive chown gives everything back: {hint}"
    );
    assert!(n.changes.is_empty(), "{:?}", n.changes);
    // The other nodes are planned as usual (nothing to do).
    for other in p.nodes.iter().filter(|n| n.node != "node2") {
        assert_eq!(other.status, NodeStatus::Planned, "{}", other.node);
    }
    let shown = text(&p);
    assert!(
        shown.contains("chown -R agilab: /home/node2/.ssh"),
        "{shown}"
    );
    assert!(!shown.contains("owner uid 0"), "{shown}");
}

#[test]
fn a_file_of_another_account_alone_gets_its_own_chown() {
    let inv = demo();
    let mut live = locked(&inv, true);
    let acc = account_of(&mut live, &inv, "node2");
    let d = acc.ssh_dir.as_mut().unwrap();
    (d.uid, d.gid, d.mode) = (UID, UID, 0o700);
    let p = run(&inv, &live);
    let (reason, hint) = blocked(node_plan(&p, "node2"));
    assert!(!reason.contains("~/.ssh ("), "{reason}");
    assert!(
        hint.contains("`chown agilab: /home/node2/.ssh/authorized_keys`"),
        "{hint}"
    );
}

#[test]
fn a_write_to_a_file_of_another_account_is_blocked_too() {
    // Its mode is right, but a line must be added: the replace script
    // would refuse a file this account does not own.
    let inv = demo();
    let mut live = converged(&inv);
    let node2 = inv.find("node2").unwrap();
    let ak = NodeFiles::of(&inv, node2).authorized_keys;
    let acc = account_at(&mut live, node2);
    let f = acc.files.iter_mut().find(|f| f.name == ak).unwrap();
    f.stat.as_mut().unwrap().uid = 0;
    f.content = Some(b"# emptied by hand\n".to_vec());
    let p = run(&inv, &live);
    let (reason, _) = blocked(node_plan(&p, "node2"));
    assert!(
        reason.contains("~/.ssh/authorized_keys (uid 0, mode 0600)"),
        "{reason}"
    );
}

#[test]
fn a_passwordless_sudo_is_named_in_the_hint() {
    let inv = demo();
    let mut live = locked(&inv, false);
    account_of(&mut live, &inv, "node2").privilege = Some(Privilege::Sudo);
    let p = run(&inv, &live);
    let (_, hint) = blocked(node_plan(&p, "node2"));
    assert!(
        hint.contains("`sudo sh -c 'chown -R agilab: /home/node2/.ssh'`"),
        "{hint}"
    );
}

#[test]
fn root_gets_the_owner_given_back_and_a_mode_of_its_own_stays_planned() {
    let inv = demo();
    // Root may chown: planned as before.
    let mut live = locked(&inv, false);
    let acc = account_of(&mut live, &inv, "node2");
    acc.uid = 0;
    let d = acc.ssh_dir.as_mut().unwrap();
    d.uid = 1002;
    let p = run(&inv, &live);
    let n = node_plan(&p, "node2");
    assert_eq!(n.status, NodeStatus::Planned);
    assert!(
        n.changes.iter().any(|c| matches!(
            c,
            Change::Owner {
                from: 1002,
                to: 0,
                ..
            }
        )),
        "{:?}",
        n.changes
    );
    // The account's own folder, too open: the chmod stays planned.
    let mut live = converged(&inv);
    let acc = account_of(&mut live, &inv, "node2");
    acc.ssh_dir = Some(stat(FileKind::Dir, 0o755));
    let p = run(&inv, &live);
    let n = node_plan(&p, "node2");
    assert_eq!(n.status, NodeStatus::Planned);
    assert!(owner_or_mode(n), "{:?}", n.changes);
    assert!(!n.changes.iter().any(|c| matches!(c, Change::Owner { .. })));
}
