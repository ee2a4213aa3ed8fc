use super::*;
use crate::plan::{NodePlan, NodeStatus, PlannedLine};
use std::sync::Arc;

pub(super) fn node(name: &str, changes: Vec<Change>) -> NodePlan {
    NodePlan {
        node: name.into(),
        target: name.into(),
        access: Login::Key,
        status: NodeStatus::Planned,
        changes,
        warnings: Vec::new(),
        base: Vec::new(),
        granted_by_hand: Vec::new(),
        rotation_refused: None,
        signing_blocked: None,
    }
}

/// A plan of `nodes`, in format `version`.
fn plan(version: u32, nodes: Vec<NodePlan>) -> Plan {
    Plan {
        format_version: version,
        nodes,
        notes: Vec::new(),
        header: Vec::new(),
    }
}

/// A line for `node`'s ed25519 key, `base64` when the key is known.
fn line(node: &str, base64: Option<&str>) -> PlannedLine {
    PlannedLine {
        names: None,
        clear_name: None,
        fingerprint: None,
        key_type: "ssh-ed25519".into(),
        base64: base64.map(Arc::from),
        node: node.into(),
        marker: format!("trustmesh:c/{node}").into(),
        replaces: false,
        options: None,
    }
}

/// An edit of `path` that adds and removes nothing (yet).
fn file_edit(path: &str, file: FileRole, create: bool) -> FileEdit {
    FileEdit::empty(path, file, create)
}

/// Make the folder `path`, 0700.
fn mkdir(path: &str) -> Change {
    Change::CreateDir {
        path: path.into(),
        mode: 0o700,
    }
}

/// Generate an ed25519 key at `path`.
fn keygen(path: &str) -> Change {
    Change::GenerateKey {
        path: path.into(),
        key_type: "ed25519".into(),
    }
}

/// The wave each action of `plan` runs in, by its description.
fn wave_of(plan: &Plan) -> HashMap<String, usize> {
    let ag = ActionGraph::build(plan);
    let mut at = HashMap::new();
    for (w, wave) in ag.waves().iter().enumerate() {
        for ix in wave {
            let a = &ag.graph[*ix];
            at.insert(
                format!("{} {}", plan.nodes[a.plan_node].node, describe(plan, a)),
                w,
            );
        }
    }
    at
}

#[test]
fn keys_come_before_their_lines_and_edits_before_modes() {
    let a = node("a", vec![mkdir("~/.ssh"), keygen("~/.ssh/id_ed25519")]);
    let chmod = |path: &str, from, to| Change::Mode {
        path: path.into(),
        from,
        to,
    };
    let b = node(
        "b",
        vec![
            Change::EditFile(FileEdit {
                add: vec![line("a", None)],
                ..file_edit("~/.ssh/authorized_keys", FileRole::AuthorizedKeys, false)
            }),
            chmod("~/.ssh/authorized_keys", 0o644, 0o600),
            chmod("~/.ssh", 0o755, 0o700),
        ],
    );
    let plan = plan(1, vec![a, b]);
    let at = wave_of(&plan);
    assert_eq!(at.len(), 5, "{at:?}");
    let mkdir = at["a create ~/.ssh (0700)"];
    let keygen = at["a generate ~/.ssh/id_ed25519 (ed25519)"];
    let edit = at["b write ~/.ssh/authorized_keys (1 added)"];
    let chmod_file = at["b chmod 0600 ~/.ssh/authorized_keys"];
    let chmod_dir = at["b chmod 0700 ~/.ssh"];
    assert!(
        mkdir < keygen && keygen < edit && edit < chmod_file,
        "{at:?}"
    );
    // Independent work does not wait.
    assert_eq!(chmod_dir, 0, "{at:?}");
}

#[test]
fn a_file_beside_a_new_key_waits_for_its_folder() {
    let edit = |path: &str| Change::EditFile(file_edit(path, FileRole::KnownHosts, true));
    let plan = plan(
        1,
        vec![node(
            "manager",
            vec![
                keygen("~/keys/cluster_ed25519"),
                edit("~/keys/known_hosts"),
                edit("~/.ssh/known_hosts"),
            ],
        )],
    );
    let at = wave_of(&plan);
    let keygen = at["manager generate ~/keys/cluster_ed25519 (ed25519)"];
    assert!(keygen < at["manager write ~/keys/known_hosts ()"], "{at:?}");
    assert_eq!(at["manager write ~/.ssh/known_hosts ()"], 0, "{at:?}");
}

#[test]
fn a_rotation_is_made_before_it_is_broken() {
    let edit = |add: Vec<PlannedLine>, remove: Vec<(usize, String)>, after: Option<&str>| {
        Change::EditFile(FileEdit {
            remove,
            add,
            after_rotation_of: after.map(str::to_string),
            ..file_edit("~/.ssh/authorized_keys", FileRole::AuthorizedKeys, false)
        })
    };
    let plan = plan(
        2,
        vec![
            node(
                "a",
                vec![Change::RotateKey {
                    path: "~/.ssh/id_ed25519".into(),
                    key_type: "ed25519".into(),
                    new_path: "~/.ssh/id_ed25519.trustmesh-new".into(),
                    aside_path: "~/.ssh/id_ed25519.old-x".into(),
                    old_fingerprint: "SHA256:x".into(),
                    targets: vec!["b".into(), "c".into()],
                }],
            ),
            node(
                "b",
                vec![
                    edit(vec![line("a", None)], Vec::new(), None),
                    edit(Vec::new(), vec![(0, "old a".into())], Some("a")),
                ],
            ),
            // c's edit is missing (blocked there, say): its proof is
            // still made, and fails, keeping the old key.
            node("c", Vec::new()),
        ],
    );
    let at = wave_of(&plan);
    let keygen = at["a generate ~/.ssh/id_ed25519.trustmesh-new (ed25519)"];
    let add = at["b write ~/.ssh/authorized_keys (1 added)"];
    let prove_b = at["a prove the new key with a fresh connection to b"];
    let prove_c = at["a prove the new key with a fresh connection to c"];
    let swap = at["a put the new key in place as ~/.ssh/id_ed25519, the old one moved to ~/.ssh/id_ed25519.old-x"];
    let remove = at["b write ~/.ssh/authorized_keys (1 removed)"];
    assert!(
        keygen < add && add < prove_b && prove_b < swap && swap < remove,
        "{at:?}"
    );
    assert!(keygen < prove_c && prove_c < swap, "{at:?}");
}

#[test]
fn nodes_not_planned_get_no_actions() {
    let mut n = node("c", vec![mkdir("~/.ssh")]);
    n.status = NodeStatus::Skipped { reason: "x".into() };
    assert!(ActionGraph::build(&plan(1, vec![n])).is_empty());
}

/// options.ssh_config: `~/.ssh`, then `~/.ssh/config.d`, then the aliases
/// file, then the Include that names it; when the option goes off, the
/// Include goes before the file.
#[test]
fn the_aliases_file_comes_before_its_include_and_goes_after_it() {
    use crate::plan::{BlockRole, BlockWrite};
    let block = |path: &str, role, new: Option<Vec<String>>| {
        Change::WriteBlock(BlockWrite {
            path: path.into(),
            role,
            marker: "trustmesh:c/a".into(),
            create: true,
            old: Vec::new(),
            new: new.map(|v| v.into()),
            sudo: false,
        })
    };
    let on = Some(vec!["x".to_string()]);
    let aliases = "~/.ssh/config.d/trustmesh-c";
    let a = node(
        "a",
        vec![
            mkdir("~/.ssh"),
            mkdir("~/.ssh/config.d"),
            block(aliases, BlockRole::SshConfigFile, on.clone()),
            block("~/.ssh/config", BlockRole::SshConfigInclude, on.clone()),
            block("/etc/hosts", BlockRole::HostsBlock, on),
        ],
    );
    let b = node(
        "b",
        vec![
            block("~/.ssh/config", BlockRole::SshConfigInclude, None),
            block(aliases, BlockRole::SshConfigFile, None),
        ],
    );
    let plan = plan(1, vec![a, b]);
    let at = wave_of(&plan);
    let ssh = at["a create ~/.ssh (0700)"];
    let dir = at["a create ~/.ssh/config.d (0700)"];
    let file = at["a write ~/.ssh/config.d/trustmesh-c"];
    let include = at["a write trustmesh's block in ~/.ssh/config"];
    assert!(ssh < dir && dir < file && file < include, "{at:?}");
    assert!(at.contains_key("a write trustmesh's block in /etc/hosts"));
    let gone_include = at["b remove trustmesh's block from ~/.ssh/config"];
    let gone_file = at["b remove ~/.ssh/config.d/trustmesh-c"];
    assert!(gone_include < gone_file, "{at:?}");
}

#[test]
fn a_windows_acl_is_set_after_the_write_of_its_file() {
    let admin = crate::transport::windows::ADMIN_AUTHORIZED_KEYS;
    let plan = plan(
        1,
        vec![node(
            "win1",
            vec![
                Change::EditFile(FileEdit {
                    add: vec![line("manager", Some("AAAA"))],
                    ..file_edit(admin, FileRole::AuthorizedKeys, true)
                }),
                Change::SetAcl {
                    path: admin.into(),
                    command: crate::transport::windows::acl_command(admin).unwrap(),
                },
            ],
        )],
    );
    let at = wave_of(&plan);
    let edit = at[&format!("win1 write {admin} (1 added)")];
    let acl = at[&format!("win1 set the ACL of {admin} (SYSTEM and Administrators only)")];
    assert!(edit < acl, "{at:?}");
}
