//! The door trait on the in-memory account: each operation, the whole
//! list in one call, and what a protocol cannot do.

use super::memory::MemoryDoor;
use super::*;
use crate::model::state::{FileKind, FileStat, LiveFile};
use crate::transport::files::tests::block_on;
use crate::transport::scripts::cksum;

fn stat(kind: FileKind, mode: u32) -> Option<FileStat> {
    Some(FileStat {
        kind,
        mode,
        uid: 1000,
        gid: 1000,
    })
}

/// NodeFiles of a plain node: authorized_keys, known_hosts, id_ed25519.
fn files() -> NodeFiles {
    NodeFiles {
        key: "id_ed25519".into(),
        public_key: "id_ed25519.pub".into(),
        authorized_keys: "authorized_keys".into(),
        known_hosts: "known_hosts".into(),
        ssh_config: None,
        etc_hosts: false,
        privilege: false,
        certificate: None,
        user_ca: None,
        user_ca_agent: None,
        sshd: false,
        host_ca: None,
        sshd_version: false,
        sshd_leftovers: false,
    }
}

/// A fresh account: home 0755, no ~/.ssh.
fn fresh() -> LiveAccount {
    LiveAccount {
        user: "alice".into(),
        uid: 1000,
        gid: 1000,
        home: "/home/alice".into(),
        hostname: "w1".into(),
        client_address: None,
        sshd_version: None,
        ca_agent: None,
        home_stat: stat(FileKind::Dir, 0o755),
        ssh_dir: None,
        files: Vec::new(),
        host_keys: vec!["ssh-ed25519 HOST root@w1".into()],
        proven_host_keys: vec!["ssh-ed25519 HOST".into()],
        leftovers: Vec::new(),
        privilege: None,
        windows_admin: false,
        windows_acl: None,
    }
}

/// An edit that writes `content` (mode 0600) to `path` (as the plan
/// names it), planned from a file whose checksum was `expected` (shared
/// with the SFTP door's tests).
pub(super) fn write(path: &str, expected: &str, content: &str) -> Op {
    Op::Replace(Write {
        path: path.into(),
        expected: expected.into(),
        content: content.as_bytes().to_vec(),
        mode: "0600".into(),
        remove: false,
        sudo: false,
    })
}

#[test]
fn an_account_in_memory_reads_back_as_it_was_seeded() {
    let mut acc = fresh();
    acc.ssh_dir = stat(FileKind::Dir, 0o700);
    acc.files = vec![
        LiveFile {
            name: "authorized_keys".into(),
            stat: stat(FileKind::File, 0o640),
            content: Some(b"ssh-ed25519 AAAA x\n".to_vec()),
            unreadable: false,
        },
        LiveFile {
            name: "known_hosts".into(),
            stat: None,
            content: None,
            unreadable: false,
        },
        LiveFile {
            name: "id_ed25519.pub".into(),
            stat: stat(FileKind::File, 0o644),
            content: None,
            unreadable: true,
        },
        LiveFile {
            name: "id_ed25519".into(),
            stat: stat(FileKind::File, 0o600),
            content: None,
            unreadable: false,
        },
    ];
    acc.leftovers = vec![".trustmesh.AbC123".into()];
    let door = MemoryDoor::new("w1", &acc);
    let mut back = block_on(door.read_state(&files())).unwrap();
    // Also asked for: what a rotation that did not finish would have
    // left (`plan::leftovers`), not there.
    back.files
        .retain(|f| f.stat.is_some() || !f.name.starts_with("id_ed25519.trustmesh-new"));
    assert_eq!(back, acc);
}

#[test]
fn the_memory_door_makes_writes_and_refuses_like_a_node() {
    let door = MemoryDoor::new("w1", &fresh());
    let run = |op: Op| block_on(door.run(&op)).unwrap();
    assert_eq!(
        run(Op::MkDir {
            path: "~/.ssh".into()
        }),
        Outcome::Ok
    );
    let ak = "~/.ssh/authorized_keys";
    assert_eq!(run(write(ak, "absent", "a\n")), Outcome::Ok);
    // Planned from another text: a conflict, the file kept.
    assert_eq!(
        run(write(ak, "absent", "b\n")),
        Outcome::Conflict(cksum(b"a\n"))
    );
    let key = run(Op::Keygen {
        path: "~/.ssh/id_ed25519".into(),
        key_type: "ed25519".into(),
        marker: "trustmesh:c/w1".into(),
    });
    assert!(
        matches!(&key, Outcome::PublicKey(l) if l.starts_with("ssh-ed25519 ") && l.ends_with(" trustmesh:c/w1")),
        "{key:?}"
    );
    // A key is never overwritten.
    assert!(matches!(
        run(Op::Keygen {
            path: "~/.ssh/id_ed25519".into(),
            key_type: "ed25519".into(),
            marker: "trustmesh:c/w1".into(),
        }),
        Outcome::Failed(_)
    ));
    assert_eq!(
        run(Op::Chmod {
            path: ak.into(),
            mode: 0o644
        }),
        Outcome::Ok
    );
    let state = block_on(door.read_state(&files())).unwrap();
    let f = state.file("authorized_keys").unwrap();
    assert_eq!(f.content.as_deref(), Some(&b"a\n"[..]));
    assert_eq!(f.stat.as_ref().unwrap().mode, 0o644);
    let private = state.file("id_ed25519").unwrap();
    assert!(private.stat.is_some() && private.content.is_none());
    assert_eq!(state.ssh_dir.as_ref().unwrap().mode, 0o700);
    // What the account is besides its files stays.
    assert_eq!(state.host_keys, fresh().host_keys);
}

#[test]
fn a_rotation_swaps_the_pairs_in_memory() {
    let door = MemoryDoor::new("w1", &fresh());
    let run = |op: Op| block_on(door.run(&op)).unwrap();
    for path in ["~/.ssh/id_ed25519", "~/.ssh/id_ed25519.new"] {
        assert!(matches!(
            run(Op::Keygen {
                path: path.into(),
                key_type: "ed25519".into(),
                marker: "m".into(),
            }),
            Outcome::PublicKey(_)
        ));
    }
    let swap = || Op::Swap {
        path: "~/.ssh/id_ed25519".into(),
        new_path: "~/.ssh/id_ed25519.new".into(),
        aside_path: "~/.ssh/id_ed25519.old-1".into(),
    };
    let fs = block_on(door.files());
    let new_pub = fs.content(".ssh/id_ed25519.new.pub").unwrap().to_vec();
    let old_pub = fs.content(".ssh/id_ed25519.pub").unwrap().to_vec();
    assert_eq!(run(swap()), Outcome::Ok);
    let fs = block_on(door.files());
    assert_eq!(fs.content(".ssh/id_ed25519.pub"), Some(&new_pub[..]));
    assert_eq!(fs.content(".ssh/id_ed25519.old-1.pub"), Some(&old_pub[..]));
    assert!(fs.stat(".ssh/id_ed25519.new").is_none());
    // Done once: the new pair is gone, so a second swap is refused.
    assert!(matches!(run(swap()), Outcome::Failed(_)));
}

#[test]
fn a_whole_list_is_answered_in_order_and_the_state_read_back() {
    let door = MemoryDoor::new("w1", &fresh());
    let ak = "~/.ssh/authorized_keys";
    let ops = vec![
        Op::MkDir {
            path: "~/.ssh".into(),
        },
        write(ak, "absent", "a\n"),
        // Planned from a file that was not there: a conflict.
        write(ak, &cksum(b"other\n"), "b\n"),
        Op::Chmod {
            path: ak.into(),
            mode: 0o640,
        },
    ];
    let f = files();
    let list: Vec<Queued> = ops.into_iter().map(Queued::new).collect();
    let out = block_on(door.run_all(&list, &f));
    let answers: Vec<Outcome> = out
        .results
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(
        answers,
        [
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Conflict(cksum(b"a\n")),
            Outcome::Ok
        ]
    );
    let state = out.state.unwrap();
    let ak = state.file("authorized_keys").unwrap();
    assert_eq!(ak.content.as_deref(), Some(&b"a\n"[..]));
    assert_eq!(ak.stat.as_ref().unwrap().mode, 0o640);
}

#[test]
fn a_door_error_names_the_node_and_the_step() {
    let e = DoorError::new(
        "w1",
        Op::Chmod {
            path: "x".into(),
            mode: 0o600,
        }
        .step(),
        Reason::Unsupported("not possible over SFTP".into()),
    );
    assert_eq!(e.to_string(), "w1: chmod: not possible over SFTP");
}

#[test]
fn nodes_without_a_shell_are_reached_over_sftp() {
    let inv = crate::model::inventory::Inventory::from_str_named(
        "inventory.yaml",
        "version: 1\nmanager: {name: m, address: 127.0.0.1}\nworkers:\n  - {name: w1, address: 127.0.0.2}\n",
    )
    .unwrap();
    let mut node = inv.nodes[1].clone();
    assert!(!uses_sftp(&node));
    node.access = Reach::Sftp;
    assert!(uses_sftp(&node));
    node.access = Reach::Shell;
    node.os = Os::Windows;
    assert!(uses_sftp(&node));
}

/// A node's access and OS pick its door and its abilities here, once: the
/// stages that plan, read, apply and try edges ask [`abilities`] and never
/// name an access or an OS themselves, so a fourth way to reach a node is
/// a file in `src/node/` and its lines in `open` and `abilities`.
#[test]
fn no_stage_outside_the_node_module_branches_on_access_or_os() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                if !["node", "model"].contains(&rel.as_str()) {
                    dirs.push(path);
                }
                continue;
            }
            if rel.ends_with("tests.rs") || !rel.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                if ["Os::", "Access::Sftp", "Access::Shell", "uses_sftp("]
                    .iter()
                    .any(|w| line.contains(w))
                {
                    found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    // Gather hands the connection its file protocol before a door exists.
    found.retain(|l| !l.starts_with("gather/reach.rs"));
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn a_nodes_abilities_follow_its_access_and_os() {
    let inv = crate::Inventory::from_str_named(
        "i.yaml",
        "version: 1\nmanager: { name: m, address: 10.0.0.1 }\nworkers:\n  - { name: a, address: 10.0.0.2 }\n  - { name: b, address: 10.0.0.3, access: sftp }\n  - { name: w, address: 10.0.0.4, os: windows }\n",
    )
    .unwrap();
    let of = |name: &str| abilities(&inv.nodes[inv.find(name).unwrap()]);
    assert!(of("a").scripts && of("a").keygen && of("a").commands && !of("a").sftp);
    assert!(!of("b").scripts && !of("b").keygen && !of("b").commands && of("b").sftp);
    assert!(of("w").acls && of("w").keygen && of("w").sftp && !of("w").scripts);
}
