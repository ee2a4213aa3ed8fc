//! The planner on live state held in memory, and the plan as users read it.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::FileKind;
use trustmesh::output::render_json;
use trustmesh::plan::{self, Change, NodeFiles, NodeState, NodeStatus, PlanScope};
use trustmesh::TrustGraph;

fn demo() -> Inventory {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/demo.yaml");
    Inventory::load(&path).unwrap()
}

#[test]
fn fresh_cluster_plans_every_edge() {
    let inv = demo();
    let p = run(&inv, &fresh_cluster(&inv));
    insta::assert_snapshot!("fresh_cluster", text(&p));
    let s = p.summary();
    // manager: known_hosts (4 workers); node1, node3: key + known_hosts(manager);
    // node2..4: key + mesh known_hosts; every worker: dir + authorized_keys.
    assert_eq!((s.change, s.remove, s.unreachable), (0, 0, 0));
    assert!(!p.is_empty());
}

#[test]
fn applying_the_plan_converges_and_replanning_is_empty() {
    let inv = demo();
    let live = fresh_cluster(&inv);
    let p = run(&inv, &live);
    let after = apply_on_memory(&inv, &p, &live);
    let again = run(&inv, &after);
    assert!(again.is_empty(), "second plan not empty:\n{}", text(&again));
    insta::assert_snapshot!("converged", text(&again));
}

#[test]
fn drift_is_shown_exactly_and_unmanaged_lines_stay() {
    let inv = demo();
    let live = fresh_cluster(&inv);
    let mut live = apply_on_memory(&inv, &run(&inv, &live), &live);
    let node2 = inv.find("node2").unwrap();
    let files = NodeFiles::of(&inv, node2);
    let acc = account_at(&mut live, node2);
    acc.ssh_dir.as_mut().unwrap().mode = 0o755;
    // Delete the managed line of node3, add a key by hand.
    let ak = content(acc, &files.authorized_keys).to_string();
    let kept: String = ak
        .lines()
        .filter(|l| !l.ends_with("trustmesh:demo/node3"))
        .map(|l| format!("{l}\n"))
        .collect();
    let edited = format!(
        "# added by hand\nssh-ed25519 {} bob@laptop\n{kept}",
        fake_key("bob")
    );
    set_file(acc, &files.authorized_keys, 0o600, &edited);
    let p = run(&inv, &live);
    insta::assert_snapshot!("drift", text(&p));
    let after = apply_on_memory(&inv, &p, &live);
    let acc = match &after.nodes[node2] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    let ak = content(acc, &files.authorized_keys);
    assert!(
        ak.starts_with(&format!(
            "# added by hand\nssh-ed25519 {} bob@laptop\n",
            fake_key("bob")
        )),
        "{ak}"
    );
    assert!(ak.contains("trustmesh:demo/node3"), "{ak}");
    assert!(run(&inv, &after).is_empty());
}

#[test]
fn a_removed_mesh_pair_prunes_only_its_lines() {
    let inv = demo();
    let live = fresh_cluster(&inv);
    let live = apply_on_memory(&inv, &run(&inv, &live), &live);
    let text_inv = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/demo.yaml"),
    )
    .unwrap();
    let smaller = Inventory::from_str_named(
        "demo.yaml",
        &text_inv.replace("  - [node2, node3, node4]", "  - [node2, node3]"),
    )
    .unwrap();
    let p = run(&smaller, &live);
    insta::assert_snapshot!("pruned_mesh", text(&p));
    let s = p.summary();
    assert_eq!(
        (s.add, s.change, s.remove),
        (0, 0, 4 + 2 + 2),
        "{}",
        text(&p)
    );
    // prune: false keeps them.
    let keep = Inventory::from_str_named(
        "demo.yaml",
        &format!(
            "{}\noptions:\n  prune: false\n",
            text_inv.replace("  - [node2, node3, node4]", "  - [node2, node3]")
        ),
    )
    .unwrap();
    assert!(run(&keep, &live).is_empty());
}

#[test]
fn an_unreachable_node_is_reported_and_the_rest_planned() {
    let inv = demo();
    let mut live = fresh_cluster(&inv);
    let node4 = inv.find("node4").unwrap();
    live.nodes[node4] = NodeState::Unreachable(trustmesh::model::finding::Finding::new(
        "connect",
        "timed out after 10 s".into(),
        Some("check that sshd runs on 127.0.10.14:22".into()),
    ));
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(
        t.contains("node4 (agilab@127.0.10.14): unreachable at connect: timed out after 10 s"),
        "{t}"
    );
    assert!(t.ends_with("1 node unreachable.\n"), "{t}");
    // Nobody gets a line for node4's unknown key or host keys.
    for n in &p.nodes {
        for c in &n.changes {
            if let Change::EditFile(e) = c {
                assert!(e.add.iter().all(|l| &*l.node != "node4"), "{t}");
            }
        }
    }
}

#[test]
fn stale_host_key_written_by_hand_is_warned_not_removed() {
    let inv = demo();
    let mut live = fresh_cluster(&inv);
    let files = NodeFiles::of(&inv, 0);
    set_file(
        account_at(&mut live, 0),
        &files.known_hosts,
        0o644,
        &format!("127.0.10.11 ssh-ed25519 {}\n", fake_key("old-node1-host")),
    );
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(
        t.contains("holds an old ssh-ed25519 host key for node1 (127.0.10.11)"),
        "{t}"
    );
    assert!(t.contains("ssh-keygen -R '127.0.10.11'"), "{t}");
    let manager = &p.nodes[0];
    for c in &manager.changes {
        if let Change::EditFile(e) = c {
            assert!(e.remove.is_empty(), "an unmanaged line is never removed");
        }
    }
}

#[test]
fn symlinked_authorized_keys_blocks_the_node() {
    let inv = demo();
    let mut live = fresh_cluster(&inv);
    let id = inv.find("node1").unwrap();
    let acc = account_at(&mut live, id);
    acc.ssh_dir = Some(stat(FileKind::Dir, 0o700));
    let f = acc
        .files
        .iter_mut()
        .find(|f| f.name == "authorized_keys")
        .unwrap();
    f.stat = Some(stat(FileKind::Symlink, 0o777));
    let p = run(&inv, &live);
    let np = p.nodes.iter().find(|n| n.node == "node1").unwrap();
    assert!(matches!(&np.status, NodeStatus::Blocked(f) if f.reason.contains("symbolic link")));
    assert!(np.changes.is_empty());
}

#[test]
fn manager_key_line_is_never_pruned() {
    let inv = demo();
    let live = fresh_cluster(&inv);
    let live = apply_on_memory(&inv, &run(&inv, &live), &live);
    // An inventory that drops every worker but node1 still keeps the
    // manager's line on node1, and with --limit node1 nothing else is judged.
    let scope = PlanScope {
        limit: Some([inv.find("node1").unwrap()].into_iter().collect()),
        ..PlanScope::default()
    };
    let p = plan::plan(&inv, &TrustGraph::build(&inv), &live, &scope);
    assert!(p.is_empty(), "{}", text(&p));
    assert_eq!(
        p.nodes.iter().map(|n| n.node.as_str()).collect::<Vec<_>>(),
        ["manager", "node1"]
    );
}

#[test]
fn windows_nodes_are_planned_and_unhandled_options_are_said_plainly() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/agilab.yaml");
    let inv = Inventory::load(&path).unwrap();
    let p = run(&inv, &fresh_cluster(&inv));
    let t = text(&p);
    // Windows nodes are planned (over SFTP; see tests/windows_plan.rs).
    assert!(!t.contains("skipped"), "{t}");
    assert!(
        p.nodes
            .iter()
            .any(|n| n.node == "win1" && n.status == NodeStatus::Planned),
        "{t}"
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/pi-rack.yaml");
    let inv = Inventory::load(&path).unwrap();
    let t = text(&run(&inv, &fresh_cluster(&inv)));
    // Handled now: planned, not noted.
    assert!(!t.contains("is not handled yet"), "{t}");
    assert!(
        t.contains("~/.ssh/config.d/trustmesh-pi-rack (new file, 0600: ssh aliases)"),
        "{t}"
    );
}

#[test]
fn json_plan_has_a_format_version() {
    let inv = demo();
    let p = run(&inv, &fresh_cluster(&inv));
    let mut out = Vec::new();
    render_json(&p, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["format_version"], 3);
    assert_eq!(v["nodes"][0]["node"], "manager");
    assert_eq!(v["nodes"][1]["status"], "planned");
    assert!(v["summary"]["add"].as_u64().unwrap() > 0);
    // The typed plan reads back from its JSON form.
    let back: Vec<trustmesh::plan::NodePlan> = serde_json::from_value(v["nodes"].clone()).unwrap();
    assert_eq!(back, p.nodes);
}

#[test]
fn a_generated_key_is_known_after_apply() {
    let inv = demo();
    let p = run(&inv, &fresh_cluster(&inv));
    let node1 = p.nodes.iter().find(|n| n.node == "node1").unwrap();
    assert!(node1.changes.iter().any(|c| matches!(c, Change::GenerateKey { path, key_type } if path == "~/.ssh/id_ed25519" && key_type == "ed25519")));
    let t = text(&p);
    assert!(
        t.contains("+ ssh-ed25519 (known after apply) trustmesh:demo/node1"),
        "{t}"
    );
}

#[test]
fn folders_anyone_could_write_and_linked_ssh_folders_are_refused() {
    let inv = demo();
    let node2 = inv.find("node2").unwrap();
    let blocked = |edit: &dyn Fn(&mut trustmesh::model::state::LiveAccount)| {
        let mut live = fresh_cluster(&inv);
        let acc = account_at(&mut live, node2);
        acc.ssh_dir = Some(stat(FileKind::Dir, 0o700));
        edit(acc);
        let p = run(&inv, &live);
        let n = p.nodes.iter().find(|n| n.node == "node2").unwrap();
        (n.status.clone(), n.changes.is_empty(), p.incomplete())
    };
    // ~/.ssh is a link: refused, nothing planned there, the plan is not
    // complete.
    let (status, empty, incomplete) =
        blocked(&|a| a.ssh_dir = Some(stat(FileKind::Symlink, 0o777)));
    assert!(
        matches!(status, NodeStatus::Blocked(ref f) if f.reason.contains("symbolic link")),
        "{status:?}"
    );
    assert!(empty && incomplete);
    // ~/.ssh or the home writable by every account.
    let (status, empty, _) = blocked(&|a| a.ssh_dir.as_mut().unwrap().mode = 0o777);
    assert!(
        matches!(status, NodeStatus::Blocked(ref f) if f.reason.contains("writable by every account")),
        "{status:?}"
    );
    assert!(empty);
    let (status, empty, _) = blocked(&|a| a.home_stat.as_mut().unwrap().mode = 0o757);
    assert!(
        matches!(status, NodeStatus::Blocked(ref f) if f.reason.contains("the home")),
        "{status:?}"
    );
    assert!(empty);
    // Group-writable is fixed (~/.ssh) or warned about (the home), as before.
    let (status, empty, _) = blocked(&|a| a.ssh_dir.as_mut().unwrap().mode = 0o770);
    assert_eq!(status, NodeStatus::Planned);
    assert!(!empty);
    let (status, _, _) = blocked(&|a| a.home_stat.as_mut().unwrap().mode = 0o775);
    assert_eq!(status, NodeStatus::Planned);
}
