//! A cluster's life on the testbed: a reinstalled node, a retired node,
//! stale host keys written by hand. Each is done by editing the inventory
//! (or naming a node on the command line), then plan and apply.
#![cfg(feature = "live")]

mod live;

use live::*;

/// Every line of every file in the cluster's homes that holds `blob`.
fn lines_holding(live: &Live, blob: &str) -> Vec<String> {
    live.snapshot()
        .iter()
        .flat_map(|(path, (_, content, _))| {
            String::from_utf8_lossy(content)
                .lines()
                .filter(|l| l.contains(blob))
                .map(|l| format!("{}: {l}", path.display()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn blob(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// A cluster of node1 (reverse), node2 and node3 (meshed; node3 takes a
/// password), converged by a first apply.
fn cluster() -> Live {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]),
        HostSpec::new("node3", &[WORKER_USER]).password(PASSWORD),
    ]);
    live.manager_key_on(&["node1", "node2"]);
    live.write_inventory(&inventory(&live, None));
    live.run_with_password(&["apply", "--ask-pass", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    live
}

fn inventory(live: &Live, node3_pin: Option<&str>) -> String {
    live.inventory(
        &["node1", "node2", "node3"],
        "reverse: [node1, node3]\nmesh:\n  - [node2, node3]\n",
        &|w| match (w, node3_pin) {
            ("node3", Some(fp)) => format!("    host_key: {fp}\n"),
            _ => String::new(),
        },
    )
}

const WANTED: [(&str, &str); 7] = [
    ("manager", "node1"),
    ("manager", "node2"),
    ("manager", "node3"),
    ("node1", "manager"),
    ("node3", "manager"),
    ("node2", "node3"),
    ("node3", "node2"),
];

/// The seed guide's longest procedure, as an inventory edit: node3 is
/// reinstalled (new host keys, empty ~/.ssh, takes a password again), the
/// operator pins its new key, plans and applies.
#[test]
fn a_reinstalled_node_comes_back_with_one_apply() {
    let mut live = cluster();
    let old_host_keys = live.cluster.host_public_keys("node3").unwrap();
    let old_user_key = String::from_utf8(
        live.cluster
            .read_file("node3", WORKER_USER, ".ssh/id_ed25519.pub")
            .unwrap(),
    )
    .unwrap();

    live.cluster.rekey("node3").unwrap();
    let home = live.cluster.host("node3").home_of(WORKER_USER);
    std::fs::remove_dir_all(home.join(".ssh")).unwrap();
    let new_fp = live
        .cluster
        .host_key_fingerprints("node3")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    // Checked out of band, pinned in the inventory.
    live.write_inventory(&inventory(&live, Some(&new_fp)));

    let ran = live
        .run_with_password(&["plan", "--ask-pass", "--detailed-exitcode", "--json"])
        .expect_exit(2);
    assert!(
        ran.stderr
            .contains(&format!("reached with its pinned host key {new_fp}")),
        "{}",
        ran.stderr
    );
    let plan = ran.json();
    // The manager and node2 replace node3's host key in the lines
    // trustmesh wrote; node1 and node2 replace its user key.
    for node in ["manager", "node2"] {
        plan_change(&plan, node, "edit_file", "~/.ssh/known_hosts");
    }
    // node3 itself is read and planned (its ~/.ssh is made again).
    let node3 = plan_node(&plan, "node3");
    assert!(
        node3["target"]
            .as_str()
            .unwrap_or_default()
            .starts_with("agilab@"),
        "{plan:#}"
    );
    assert_eq!(node3["status"], "planned", "{plan:#}");
    assert!(!node3["changes"].as_array().unwrap().is_empty(), "{plan:#}");
    for n in plan["nodes"].as_array().unwrap() {
        assert_ne!(n["status"], "unreachable", "{plan:#}");
    }
    assert_eq!(plan["summary"]["unreachable"], 0, "{plan:#}");

    let Ran { stdout, .. } = live
        .run_with_password(&["apply", "--ask-pass", "--yes"])
        .expect_exit(0);
    assert!(stdout.contains("Converged"), "{stdout}");
    for (from, to) in WANTED {
        assert!(live.can_ssh(from, to), "{from} -> {to}");
    }
    for k in &old_host_keys {
        let left = lines_holding(&live, &blob(k));
        assert!(
            left.is_empty(),
            "node3's old host key is still trusted: {left:?}"
        );
    }
    let left = lines_holding(&live, &blob(&old_user_key));
    assert!(
        left.is_empty(),
        "node3's old user key is still trusted: {left:?}"
    );
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}

/// A worker dropped from the inventory disappears from every peer's files;
/// nothing else changes, and the retired node is not contacted.
#[test]
fn a_retired_node_disappears_from_every_peer() {
    let mut live = cluster();
    let node3_key = blob(
        &String::from_utf8(
            live.cluster
                .read_file("node3", WORKER_USER, ".ssh/id_ed25519.pub")
                .unwrap(),
        )
        .unwrap(),
    );
    let node3_host_keys: Vec<String> = live
        .cluster
        .host_public_keys("node3")
        .unwrap()
        .iter()
        .map(|k| blob(k))
        .collect();
    // node3 is gone for good (it may be switched off).
    live.cluster.stop("node3").unwrap();
    live.write_inventory_of(&["node1", "node2"], "reverse: [node1]\n");
    let before = live.snapshot();
    let Ran { stdout, .. } = live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(
        !stdout.contains("node3 ("),
        "node3 is not contacted: {stdout}"
    );
    // Outside node3 itself, nothing mentions it any more.
    let node3_home = live.cluster.host("node3").home_of(WORKER_USER);
    let elsewhere = |blob: &str| -> Vec<String> {
        lines_holding(&live, blob)
            .into_iter()
            .filter(|l| !l.starts_with(&node3_home.display().to_string()))
            .collect()
    };
    assert_eq!(elsewhere(&node3_key), Vec::<String>::new());
    for k in &node3_host_keys {
        assert_eq!(elsewhere(k), Vec::<String>::new());
    }
    // Only lines about node3 went: every other line is still there.
    let after = live.snapshot();
    for (path, (_, content, _)) in before.iter().filter(|(p, _)| !p.starts_with(&node3_home)) {
        let now = after
            .get(path)
            .map(|(_, c, _)| c.clone())
            .unwrap_or_default();
        let now = String::from_utf8_lossy(&now);
        for l in String::from_utf8_lossy(content).lines() {
            let about_node3 =
                l.contains(&node3_key) || node3_host_keys.iter().any(|k| l.contains(k));
            assert_eq!(
                now.lines().any(|n| n == l),
                !about_node3,
                "{}: {l}",
                path.display()
            );
        }
    }
    for (from, to) in [
        ("manager", "node1"),
        ("manager", "node2"),
        ("node1", "manager"),
    ] {
        assert!(live.can_ssh(from, to), "{from} -> {to}");
    }
}

/// A stale host key someone wrote by hand in the manager's known_hosts is
/// reported with its `ssh-keygen -R` and kept; removed only when the
/// operator names the node, and then shown in the plan.
#[test]
fn a_stale_hand_written_host_key_is_reported_then_removed_on_request() {
    let live = cluster();
    let h = live.cluster.host("node2");
    let stale = format!(
        "{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBmDcxiLaa0dhqF8m6Ry1oJuQ8LyYqCTIRNnDwrmDSBm",
        h.address
    );
    let mut kh = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/known_hosts")
        .unwrap();
    kh.extend_from_slice(format!("{stale}\n").as_bytes());
    live.cluster
        .write_file("manager", MANAGER_USER, ".ssh/known_hosts", &kh, 0o600)
        .unwrap();
    let plan = live
        .run(&["plan", "--detailed-exitcode", "--json"])
        .expect_exit(0)
        .json();
    let remove = format!("ssh-keygen -R '{}'", h.address);
    assert!(
        plan_node(&plan, "manager")["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|w| w.as_str())
            .any(|w| w.contains(&remove) && w.contains("--remove-stale-host-keys node2")),
        "{plan:#}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    let now = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/known_hosts")
        .unwrap();
    assert!(String::from_utf8_lossy(&now).contains(&stale), "kept");

    let plan = live
        .run(&[
            "plan",
            "--detailed-exitcode",
            "--json",
            "--remove-stale-host-keys",
            "node2",
        ])
        .expect_exit(2)
        .json();
    // The line written by hand, removed on request.
    let edit = plan_change(&plan, "manager", "edit_file", "~/.ssh/known_hosts");
    assert!(
        edit["remove_on_request"]
            .as_array()
            .unwrap_or_else(|| panic!("nothing removed on request: {plan:#}"))
            .iter()
            .any(|l| l[1] == stale.as_str()),
        "{plan:#}"
    );
    live.run(&["apply", "--yes", "--remove-stale-host-keys", "node2"])
        .expect_exit(0);
    let now = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/known_hosts")
            .unwrap(),
    )
    .unwrap();
    assert!(!now.contains(&stale), "{now}");
    assert!(live.can_ssh("manager", "node2"));
}

fn pub_blob(live: &Live, host: &str) -> String {
    blob(
        &String::from_utf8(
            live.cluster
                .read_file(host, account(host), ".ssh/id_ed25519.pub")
                .unwrap(),
        )
        .unwrap(),
    )
}

/// `--rotate-keys`: a worker's key and the manager's, rotated
/// make-before-break; every edge works after, the old keys are gone from
/// every peer and kept aside on their own node only.
#[test]
fn keys_are_rotated_make_before_break() {
    let live = converged();
    let old_node2 = pub_blob(&live, "node2");
    let plan = live
        .run(&[
            "plan",
            "--rotate-keys",
            "node2",
            "--detailed-exitcode",
            "--json",
        ])
        .expect_exit(2)
        .json();
    let rotate = plan_change(&plan, "node2", "rotate_key", "~/.ssh/id_ed25519");
    assert_eq!(rotate["key_type"], "ed25519", "{plan:#}");
    assert!(
        rotate["old_fingerprint"]
            .as_str()
            .unwrap_or_default()
            .starts_with("SHA256:"),
        "{plan:#}"
    );
    let Ran { stdout, .. } = live
        .run(&["apply", "--rotate-keys", "node2", "--yes"])
        .expect_exit(0);
    for t in ["node1", "node3"] {
        assert!(
            stdout.contains(&format!(
                "done prove the new key with a fresh connection to {t}"
            )),
            "{stdout}"
        );
    }
    assert!(stdout.contains("Converged"), "{stdout}");
    let new_node2 = pub_blob(&live, "node2");
    assert_ne!(new_node2, old_node2);
    let left: Vec<String> = lines_holding(&live, &old_node2)
        .into_iter()
        .filter(|l| !l.contains("id_ed25519.old-"))
        .collect();
    assert!(
        left.is_empty(),
        "the old key of node2 is still somewhere: {left:?}"
    );
    let aside = lines_holding(&live, &old_node2);
    assert!(
        aside.iter().all(|l| l.contains("/node2/")),
        "kept aside on node2 only: {aside:?}"
    );
    for (from, to) in [
        ("node2", "node1"),
        ("node2", "node3"),
        ("node1", "node2"),
        ("manager", "node2"),
    ] {
        assert!(live.can_ssh(from, to), "{from} -> {to}");
    }

    // The manager's own key, the one this run connects with.
    let old_manager = pub_blob(&live, "manager");
    let Ran { stdout, .. } = live
        .run(&["apply", "--rotate-keys", "manager", "--yes"])
        .expect_exit(0);
    assert!(stdout.contains("Converged"), "{stdout}");
    assert_ne!(pub_blob(&live, "manager"), old_manager);
    // Gone from every line trustmesh wrote; the lines an admin wrote by
    // hand when the nodes were provisioned (`alice@manager`) are theirs.
    let left: Vec<String> = lines_holding(&live, &old_manager)
        .into_iter()
        .filter(|l| !l.contains("id_ed25519.old-") && !l.ends_with(" alice@manager"))
        .collect();
    assert!(
        left.is_empty(),
        "the manager's old key is still somewhere: {left:?}"
    );
    for w in ["node1", "node2", "node3"] {
        assert!(live.can_ssh("manager", w), "manager -> {w}");
    }
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
