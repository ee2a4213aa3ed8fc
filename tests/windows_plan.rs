//! The plan for Windows workers, on live state as gather gives it (read
//! over SFTP, the administrator check done): the files, the key
//! generation and the ACL step. No Windows machine runs here: this is the
//! planner's side, exactly.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::FileKind;
use trustmesh::plan::{Change, LiveState, NodeFiles, NodeState, NodeStatus};

const INVENTORY: &str = "version: 1
cluster: lab
defaults:
  user: agilab
manager:
  name: manager
  address: 192.0.2.10
workers:
  - name: node1
    address: 192.0.2.11
  - name: win1
    address: 192.0.2.30
    os: windows
    user: Administrator
  - name: win2
    address: 192.0.2.31
    os: windows
mesh:
  - [node1, win1]
";

/// The live state gather gives: win1 an administrator, win2 not; both
/// read over SFTP, whose Windows server makes mode bits up (0777).
fn live(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for (name, admin) in [("win1", true), ("win2", false)] {
        let id = inv.find(name).unwrap();
        let NodeState::Read { account, .. } = &mut live.nodes[id] else {
            panic!()
        };
        let files = NodeFiles::of(inv, id).for_windows_admin(admin);
        let (read, stat_only) = files.probe_names();
        account.files = read.iter().chain(&stat_only).map(|n| missing(n)).collect();
        account.windows_admin = admin;
        account.home = format!("C:\\Users\\{name}");
        account.home_stat = Some(stat(FileKind::Dir, 0o777));
        account.ssh_dir = Some(stat(FileKind::Dir, 0o777));
    }
    live
}

#[test]
fn a_windows_plan_names_the_files_the_key_generation_and_the_acl_step() {
    let inv = Inventory::from_str_named("windows.yaml", INVENTORY).unwrap();
    let live = live(&inv);
    let p = run(&inv, &live);
    let out = text(&p);
    let win1 = p.nodes.iter().find(|n| n.node == "win1").unwrap();
    assert_eq!(win1.status, NodeStatus::Planned, "{out}");
    let admin_file = r"C:\ProgramData\ssh\administrators_authorized_keys";
    // The key, generated on the node (its mesh edge to node1 needs it).
    assert!(
        win1.changes.iter().any(|c| matches!(c,
            Change::GenerateKey { path, key_type } if path == "~/.ssh/id_ed25519" && key_type == "ed25519")),
        "{out}"
    );
    // The administrators' file, not ~/.ssh/authorized_keys: the manager's
    // and node1's keys.
    let edit = win1
        .changes
        .iter()
        .find_map(|c| match c {
            Change::EditFile(e) if e.path == admin_file => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(edit.add.len(), 2, "{out}");
    assert!(!win1
        .changes
        .iter()
        .any(|c| matches!(c, Change::EditFile(e) if e.path == "~/.ssh/authorized_keys")));
    // Then its ACL, right after the write.
    let acl = r#"icacls "C:\ProgramData\ssh\administrators_authorized_keys" /inheritance:r /grant *S-1-5-18:F /grant *S-1-5-32-544:F"#;
    let at = |f: &dyn Fn(&Change) -> bool| win1.changes.iter().position(f).unwrap();
    let acl_at = at(
        &|c| matches!(c, Change::SetAcl { path, command } if path == admin_file && command == acl),
    );
    let edit_at = at(&|c| matches!(c, Change::EditFile(e) if e.path == admin_file));
    assert_eq!(acl_at, edit_at + 1, "{out}");
    // No chmod on Windows: its modes are made up.
    assert!(
        !p.nodes
            .iter()
            .filter(|n| n.node.starts_with("win"))
            .flat_map(|n| &n.changes)
            .any(|c| matches!(c, Change::Mode { .. } | Change::Owner { .. })),
        "{out}"
    );
    // As the operator reads it.
    assert!(out.contains("+ key ~/.ssh/id_ed25519 (ed25519)"), "{out}");
    assert!(out.contains(admin_file), "{out}");
    assert!(
        out.contains(&format!(
            "~ acl {admin_file}: SYSTEM and Administrators only ({acl})"
        )),
        "{out}"
    );

    // A user that is not an administrator: its own ~/.ssh/authorized_keys,
    // no ACL step.
    let win2 = p.nodes.iter().find(|n| n.node == "win2").unwrap();
    assert!(win2
        .changes
        .iter()
        .any(|c| matches!(c, Change::EditFile(e) if e.path == "~/.ssh/authorized_keys")));
    assert!(!win2
        .changes
        .iter()
        .any(|c| matches!(c, Change::SetAcl { .. } | Change::GenerateKey { .. })));

    // Once applied, nothing is left to do (the ACL step comes only with a
    // write of the file).
    let after = apply_on_memory(&inv, &p, &live);
    let again = run(&inv, &after);
    assert!(again.is_empty(), "{}", text(&again));
}

#[test]
fn a_linux_account_without_a_shell_gets_no_key_but_its_files_are_planned() {
    let inv = Inventory::from_str_named(
        "sftp.yaml",
        &INVENTORY.replace(
            "  - name: node1\n    address: 192.0.2.11\n",
            "  - name: node1\n    address: 192.0.2.11\n    access: sftp\n",
        ),
    )
    .unwrap();
    let p = run(&inv, &live(&inv));
    let node1 = p.nodes.iter().find(|n| n.node == "node1").unwrap();
    assert_eq!(node1.status, NodeStatus::Planned);
    assert!(!node1
        .changes
        .iter()
        .any(|c| matches!(c, Change::GenerateKey { .. })));
    assert!(
        node1
            .warnings
            .iter()
            .any(|w| w.starts_with("blocked:") && w.contains("access: sftp")),
        "{:?}",
        node1.warnings
    );
    // The manager's key and win1's still go into its authorized_keys.
    let edit = node1
        .changes
        .iter()
        .find_map(|c| match c {
            Change::EditFile(e) if e.path == "~/.ssh/authorized_keys" => Some(e),
            _ => None,
        })
        .unwrap();
    assert_eq!(edit.add.len(), 2);

    // A key whose proof would need `ssh NODE true` on an SFTP-only node
    // is not rotated: said, not tried.
    let mut live = live(&inv);
    let win1 = inv.find("win1").unwrap();
    if let NodeState::Read { account, .. } = &mut live.nodes[win1] {
        with_key(&inv, win1, account);
    }
    let scope = trustmesh::plan::PlanScope {
        rotate: [win1].into_iter().collect(),
        ..Default::default()
    };
    let p = trustmesh::plan::plan(&inv, &trustmesh::TrustGraph::build(&inv), &live, &scope);
    let w = p.nodes.iter().find(|n| n.node == "win1").unwrap();
    assert!(!w
        .changes
        .iter()
        .any(|c| matches!(c, Change::RotateKey { .. })));
    let refused = w.rotation_refused.as_ref().expect("refused");
    assert!(refused.finding.reason.contains("SFTP only"), "{refused:?}");
}

/// The ACL of `administrators_authorized_keys` is read back on every plan:
/// one that is not what sshd demands (an `icacls` that failed in an
/// earlier apply, a change by hand) is set again, with nothing else to do.
#[test]
fn a_wrong_acl_read_back_is_repaired_by_the_next_apply() {
    use trustmesh::transport::windows::AclReadBack;
    let inv = Inventory::from_str_named("windows.yaml", INVENTORY).unwrap();
    let mut live = live(&inv);
    for _ in 0..3 {
        let p = run(&inv, &live);
        live = apply_on_memory(&inv, &p, &live);
    }
    let admin_file = r"C:\ProgramData\ssh\administrators_authorized_keys";
    let win1 = inv.find("win1").unwrap();
    let set = |live: &mut LiveState, acl: Option<AclReadBack>| {
        let acc = account_at(live, win1);
        assert!(acc.file(admin_file).unwrap().stat.is_some());
        acc.windows_acl = acl;
    };
    let acl_changes =
        |p: &trustmesh::plan::Plan| -> Vec<Change> { node_plan(p, "win1").changes.clone() };
    // What icacls leaves: nothing to do.
    set(
        &mut live,
        Some(AclReadBack::Sddl(
            "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)".into(),
        )),
    );
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
    // Inherited from C:\ProgramData\ssh (what a failed icacls leaves):
    // the ACL step alone, shown as in any plan.
    for wrong in [
        "O:BAG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;BA)(A;ID;0x1200a9;;;AU)",
        "O:BAG:SYD:PAI(A;;FA;;;BA)",
        "O:BAG:SYD:PAI(A;;0x1200a9;;;SY)(A;;FA;;;BA)",
    ] {
        set(&mut live, Some(AclReadBack::Sddl(wrong.into())));
        let p = run(&inv, &live);
        let out = text(&p);
        let changes = acl_changes(&p);
        assert_eq!(changes.len(), 1, "{wrong}: {out}");
        assert!(
            matches!(&changes[0], Change::SetAcl { path, command }
                if path == admin_file && command.starts_with("icacls ")),
            "{wrong}: {out}"
        );
        assert!(out.contains(&format!("~ acl {admin_file}")), "{out}");
        assert!(
            node_plan(&p, "win1")
                .warnings
                .iter()
                .any(|w| w.contains("not the one sshd demands")),
            "{out}"
        );
        // Once icacls ran, the ACL read back is the wanted one.
        let mut after = apply_on_memory(&inv, &p, &live);
        set(
            &mut after,
            Some(AclReadBack::Sddl(
                "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)".into(),
            )),
        );
        assert!(run(&inv, &after).is_empty());
    }
    // An explicit entry for another account: icacls leaves it, so it is
    // reported, never planned over and over.
    set(
        &mut live,
        Some(AclReadBack::Sddl(
            "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;S-1-5-21-1-2-3-1001)".into(),
        )),
    );
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
    assert!(node_plan(&p, "win1")
        .warnings
        .iter()
        .any(|w| w.contains("S-1-5-21-1-2-3-1001")));
    // Not readable: said, not guessed.
    set(
        &mut live,
        Some(AclReadBack::Unreadable("Get-Acl: access denied".into())),
    );
    let p = run(&inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
    assert!(node_plan(&p, "win1")
        .warnings
        .iter()
        .any(|w| w.contains("could not be read back")));
}
