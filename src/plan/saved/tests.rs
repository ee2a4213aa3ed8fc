use super::*;
use crate::formats::known_hosts;
use crate::model::finding::Finding;
use crate::model::inventory::{Inventory, InventoryError};
use crate::plan::{Change, FileBase, Login, NodeStatus};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn node(name: &str) -> NodePlan {
    NodePlan {
        node: name.into(),
        target: format!("u@{name}"),
        access: Login::Key,
        status: NodeStatus::Planned,
        changes: vec![Change::Mode {
            path: "~/.ssh".into(),
            from: 0o755,
            to: 0o700,
        }],
        warnings: Vec::new(),
        base: vec![FileBase {
            path: "~/.ssh/authorized_keys".into(),
            content: Some("k\n".into()),
        }],
        granted_by_hand: Vec::new(),
        rotation_refused: None,
        signing_blocked: None,
    }
}

fn plan_of(nodes: Vec<NodePlan>) -> Plan {
    Plan {
        format_version: PLAN_FORMAT_VERSION,
        nodes,
        notes: Vec::new(),
        header: Vec::new(),
    }
}

const INVENTORY: &str = "version: 1\nmanager: { name: manager }\nworkers:\n  - { name: node1, address: 10.0.0.1 }\n  - { name: node2, address: 10.0.0.2, port: 2222 }\n";

/// An inventory file in a temporary folder, read.
fn inventory_file(dir: &Path, text: &str) -> InventoryBytes {
    let path = dir.join("inventory.yaml");
    std::fs::write(&path, text).unwrap();
    InventoryBytes::read(&path).unwrap()
}

fn flags() -> PlanFlags {
    PlanFlags {
        limit: vec!["node2".into(), "node1".into()],
        accept_new_host_keys: true,
        ask_pass: true,
        ..PlanFlags::default()
    }
}

/// A saved plan made an hour ago, with node1's host key accepted on first
/// use.
fn saved_plan(inv: &InventoryBytes) -> SavedPlan {
    SavedPlan::new(
        &plan_of(vec![node("manager"), node("node1")]),
        SystemTime::now() - Duration::from_secs(3600),
        inv,
        flags(),
        vec![AcceptedHostKey {
            node: "node1".into(),
            fingerprints: vec!["SHA256:old".into()],
        }],
    )
}

/// What apply has when nothing changed and no flag is given.
fn current(saved: &SavedPlan) -> Current {
    Current {
        inventory_sha256: saved.inventory_sha256.clone(),
        flags: PlanFlags::default(),
        now: SystemTime::now(),
        max_age: DEFAULT_MAX_AGE,
    }
}

fn refusals(saved: &SavedPlan, now: &Current) -> Vec<Refusal> {
    match saved.check(Path::new("/p/saved.plan"), now) {
        Err(PlanFileError::Refused { refusals, .. }) => refusals,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn an_identical_fresh_plan_has_no_difference() {
    let nodes = vec![node("a"), node("b")];
    assert!(differences(&nodes, &nodes).is_empty());
}

#[test]
fn every_edit_of_a_saved_plan_is_a_difference() {
    let fresh = vec![node("a")];
    let edits: [fn(&mut NodePlan); 7] = [
        |n| {
            n.changes[0] = Change::Mode {
                path: "~/.ssh/rc".into(),
                from: 0o755,
                to: 0o700,
            }
        },
        |n| {
            n.changes[0] = Change::Mode {
                path: "~/.ssh".into(),
                from: 0o755,
                to: 0o777,
            }
        },
        |n| n.changes.push(n.changes[0].clone()),
        |n| n.base[0].content = Some("other\n".into()),
        |n| n.access = Login::Password,
        |n| n.target = "u@elsewhere".into(),
        |n| n.node = "z".into(),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let mut saved = fresh.clone();
        edit(&mut saved[0]);
        assert!(
            !differences(&saved, &fresh).is_empty(),
            "edit {i} was not seen"
        );
    }
    // A node with changes left out of the saved plan is a difference.
    let fresh2 = vec![node("a"), node("b")];
    assert!(!differences(&fresh, &fresh2).is_empty());
}

#[test]
fn plan_files_are_private_and_never_written_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "precious").unwrap();
    let path = dir.path().join("plan.json");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    saved.save(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    let meta = std::fs::symlink_metadata(&path).unwrap();
    assert!(meta.is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let mut back = SavedPlan::load(&path).unwrap();
    // The time is kept to the second.
    assert_eq!(
        humantime::format_rfc3339_seconds(back.created).to_string(),
        humantime::format_rfc3339_seconds(saved.created).to_string()
    );
    back.created = saved.created;
    assert_eq!(back, saved);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
    let e = SavedPlan::load(&path).unwrap_err();
    assert!(matches!(e, PlanFileError::Unsafe { .. }), "{e}");
}

#[test]
fn the_file_binds_the_inventory_the_flags_the_host_keys_and_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory_file(dir.path(), INVENTORY);
    let saved = saved_plan(&inv);
    let path = dir.path().join("saved.plan");
    saved.save(&path).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(json["plan_file_version"], FILE_VERSION);
    assert_eq!(json["format_version"], PLAN_FORMAT_VERSION);
    assert_eq!(json["inventory_sha256"], inv.sha256.as_str());
    assert_eq!(inv.sha256.len(), 64);
    // The flags as given, lists in one order.
    assert_eq!(
        json["flags"]["limit"],
        serde_json::json!(["node1", "node2"])
    );
    assert_eq!(json["flags"]["ask_pass"], true);
    assert_eq!(json["flags"]["accept_new_host_keys"], true);
    assert_eq!(json["flags"]["rotate_keys"], serde_json::json!([]));
    assert_eq!(
        json["host_keys"],
        serde_json::json!([{"node": "node1", "fingerprints": ["SHA256:old"]}])
    );
    let created = json["created"].as_str().unwrap();
    assert!(
        created.ends_with('Z') && humantime::parse_rfc3339(created).is_ok(),
        "{created}"
    );
}

#[test]
fn the_inventory_hash_is_sha256_of_the_bytes_and_they_are_what_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let abc = inventory_file(dir.path(), "abc");
    assert_eq!(
        abc.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let inv = inventory_file(dir.path(), INVENTORY);
    // Edited after it was read: the bytes read are what is parsed.
    std::fs::write(dir.path().join("inventory.yaml"), "not: [an inventory").unwrap();
    let parsed = inv.parse().unwrap();
    assert_eq!(parsed.nodes.len(), 3);
    std::fs::write(dir.path().join("inventory.yaml"), [0xffu8]).unwrap();
    let bad = InventoryBytes::read(&dir.path().join("inventory.yaml")).unwrap();
    assert!(matches!(bad.parse(), Err(InventoryError::NotUtf8 { .. })));
}

#[test]
fn an_older_or_newer_plan_file_is_refused_with_plan_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.plan");
    let write = |text: &str| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    // What the trustmesh before this one saved: format 1, no binding.
    write(&format!(
        r#"{{"format_version": {PLAN_FORMAT_VERSION}, "inventory": "/inv.yaml", "nodes": [], "notes": []}}"#
    ));
    let e = SavedPlan::load(&path).unwrap_err();
    assert!(
        matches!(e, PlanFileError::Version { found: 1, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("format 1, made by an older trustmesh") && text.contains("reads format 2"),
        "{text}"
    );
    // What to do (plan again) is said by the command line, with the flag
    // to plan with: src/cli/error.rs.

    write(r#"{"plan_file_version": 3, "format_version": 9}"#);
    let e = SavedPlan::load(&path).unwrap_err();
    assert!(e.to_string().contains("a newer trustmesh"), "{e}");

    write(r#"{"plan_file_version": 2, "format_version": 1}"#);
    let e = SavedPlan::load(&path).unwrap_err();
    assert!(
        matches!(e, PlanFileError::PlanVersion { found: 1, .. }),
        "{e:?}"
    );

    write("[]");
    let e = SavedPlan::load(&path).unwrap_err();
    assert!(matches!(e, PlanFileError::NotAPlan { .. }), "{e:?}");
}

#[test]
fn an_untouched_plan_passes_and_its_flags_are_the_ones_applied() {
    let dir = tempfile::tempdir().unwrap();
    let saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    // No flag given: every one taken from the plan.
    let applied = saved.check(Path::new("p"), &current(&saved)).unwrap();
    assert_eq!(applied, flags().normalized());
    // The same flags given again, in another order: the same.
    let mut now = current(&saved);
    now.flags = PlanFlags {
        limit: vec!["node1".into(), " node2".into(), "node1".into()],
        ask_pass: true,
        accept_new_host_keys: true,
        ..PlanFlags::default()
    };
    assert_eq!(saved.check(Path::new("p"), &now).unwrap(), applied);
}

#[test]
fn an_edited_inventory_is_refused_naming_its_path_and_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    let edited = inventory_file(
        dir.path(),
        &format!("{INVENTORY}  - {{ name: node3, address: 10.0.0.3, jump: node1 }}\n"),
    );
    let mut now = current(&saved);
    now.inventory_sha256 = edited.sha256.clone();
    let r = refusals(&saved, &now);
    assert_eq!(
        r,
        vec![Refusal::InventoryChanged {
            path: saved.inventory.clone(),
            saved: saved.inventory_sha256.clone(),
            now: edited.sha256.clone(),
        }]
    );
    let e = saved
        .check(Path::new("/p/saved.plan"), &now)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the saved plan is refused, nothing was changed")
            && e.contains("/p/saved.plan")
            && e.contains(&saved.inventory)
            && e.contains(&saved.inventory_sha256)
            && e.contains(&edited.sha256),
        "{e}"
    );
}

/// A flag given to `apply --plan`.
type FlagEdit = fn(&mut PlanFlags);

#[test]
fn a_flag_given_with_another_value_is_refused_naming_both_values() {
    let dir = tempfile::tempdir().unwrap();
    let saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    let cases: [(FlagEdit, PlanFlag, &str, &str); 7] = [
        (
            |f| f.limit = vec!["node1".into()],
            PlanFlag::Limit,
            "node1",
            "node1,node2",
        ),
        (
            |f| f.rotate_keys = vec!["node1".into()],
            PlanFlag::RotateKeys,
            "node1",
            "not given",
        ),
        (
            |f| f.remove_stale_host_keys = vec!["node2".into()],
            PlanFlag::RemoveStaleHostKeys,
            "node2",
            "not given",
        ),
        (
            |f| f.accept_changed_host_key = vec!["node1=SHA256:x".into()],
            PlanFlag::AcceptChangedHostKey,
            "node1=SHA256:x",
            "not given",
        ),
        (
            |f| f.accept_new_host_keys = true,
            PlanFlag::AcceptNewHostKeys,
            "given",
            "not given",
        ),
        (
            |f| f.ask_pass = true,
            PlanFlag::AskPass,
            "given",
            "not given",
        ),
        (|f| f.adopt = true, PlanFlag::Adopt, "given", "not given"),
    ];
    for (edit, flag, given, was) in cases {
        // Saved without the switches, so that giving one differs.
        let mut saved = saved.clone();
        saved.flags.ask_pass = false;
        saved.flags.accept_new_host_keys = false;
        let mut now = current(&saved);
        edit(&mut now.flags);
        let r = refusals(&saved, &now);
        assert_eq!(
            r,
            vec![Refusal::Flag {
                flag,
                given: given.into(),
                saved: was.into()
            }],
            "{flag:?}"
        );
        let text = r[0].to_string();
        assert!(
            text.contains(&format!("{flag:?}")) && text.contains(given) && text.contains(was),
            "{text}"
        );
    }
}

#[test]
fn a_plan_past_its_age_is_refused_and_the_age_is_a_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    saved.created = SystemTime::now() - Duration::from_secs(25 * 3600);
    let now = current(&saved);
    let r = refusals(&saved, &now);
    assert_eq!(r.len(), 1, "{r:?}");
    let text = r[0].to_string();
    assert!(
        matches!(r[0], Refusal::TooOld { .. })
            && text.contains("1day 1h")
            && text.contains("maximum age 1day"),
        "{text}"
    );
    // A longer age takes it; a shorter one refuses a younger plan.
    let mut longer = now.clone();
    longer.max_age = Duration::from_secs(48 * 3600);
    assert!(saved.check(Path::new("p"), &longer).is_ok());
    saved.created = SystemTime::now() - Duration::from_secs(3 * 3600);
    assert!(saved.check(Path::new("p"), &now).is_ok());
    let mut shorter = now.clone();
    shorter.max_age = Duration::from_secs(2 * 3600);
    assert!(matches!(
        refusals(&saved, &shorter)[..],
        [Refusal::TooOld { .. }]
    ));
    // Made in the future (beyond a little clock drift): refused too.
    saved.created = SystemTime::now() + Duration::from_secs(3600);
    assert!(matches!(
        refusals(&saved, &now)[..],
        [Refusal::FromTheFuture { .. }]
    ));
    saved.created = SystemTime::now() + Duration::from_secs(60);
    assert!(saved.check(Path::new("p"), &now).is_ok());
}

#[test]
fn every_difference_is_said_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    saved.created = SystemTime::now() - Duration::from_secs(30 * 3600);
    let mut now = current(&saved);
    now.inventory_sha256 = "0".repeat(64);
    now.flags.limit = vec!["node1".into()];
    assert_eq!(refusals(&saved, &now).len(), 3);
}

#[test]
fn host_keys_accepted_on_first_use_are_found_by_node() {
    let inv = Inventory::from_str_named("inv", INVENTORY).unwrap();
    let ed = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    let fp = known_hosts::fingerprint_sha256(ed).unwrap();
    let accepted = vec![
        format!("10.0.0.1 ssh-ed25519 {ed}"),
        format!("10.0.0.1 ssh-ed25519 {ed}"),
        format!("[10.0.0.2]:2222 ssh-ed25519 {ed}"),
        // Not a node's name as known_hosts holds it (port 22 is bare).
        format!("[10.0.0.1]:22 ssh-ed25519 {ed}"),
        "broken".to_string(),
    ];
    assert_eq!(
        accepted_host_keys(&inv, &accepted),
        vec![
            AcceptedHostKey {
                node: "node1".into(),
                fingerprints: vec![fp.clone()]
            },
            AcceptedHostKey {
                node: "node2".into(),
                fingerprints: vec![fp]
            },
        ]
    );
    assert!(accepted_host_keys(&inv, &[]).is_empty());
}

#[test]
fn a_node_refused_by_its_pinned_host_key_is_named_with_both_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let saved = saved_plan(&inventory_file(dir.path(), INVENTORY));
    // Read as saved: nothing differs.
    assert!(saved.differences(&saved.nodes).is_empty());
    let mut fresh = saved.nodes.clone();
    fresh[1].status = NodeStatus::Unreachable(Finding::new(
        "host key",
        "the host presents SHA256:new (ssh-ed25519), not the pinned SHA256:old".into(),
        None,
    ));
    fresh[1].changes.clear();
    fresh[1].base.clear();
    let d = saved.differences(&fresh);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].node, "node1");
    assert!(
        d[0].what.contains("accepted on first use")
            && d[0].what.contains("SHA256:old")
            && d[0].what.contains("SHA256:new"),
        "{}",
        d[0].what
    );
    // Unreachable for another reason: said too, with the saved key.
    fresh[1].status = NodeStatus::Unreachable(Finding::new("connect", "timed out".into(), None));
    let d = saved.differences(&fresh);
    assert!(
        d.len() == 1 && d[0].what.contains("timed out") && d[0].what.contains("SHA256:old"),
        "{d:?}"
    );
}
