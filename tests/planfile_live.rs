//! Saved plans on the testbed: `apply --plan` holds a plan to the
//! inventory, the flags and the host keys it was made with. Each refusal
//! changes nothing on any node (and, for the checks that need no host,
//! contacts none); the untouched plan applies.
#![cfg(feature = "live")]

mod live;

use live::*;

const MESH: &str = "mesh:\n  - [node1, node2, node3]\n";
const WORKERS: [&str; 3] = ["node1", "node2", "node3"];
const REFUSED: &str = "the saved plan is refused, nothing was changed";

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How many logins every worker's sshd has logged: unchanged, no session
/// was opened there. (Counted, not compared whole: a connection closed
/// earlier may still be logging its end.)
fn logs(live: &Live) -> Vec<usize> {
    WORKERS
        .iter()
        .map(|w| {
            std::fs::read_to_string(live.cluster.host(w).log_path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("Accepted "))
                .count()
        })
        .collect()
}

/// The lines of `host`'s sshd log that tell of a password login.
fn password_lines(live: &Live, host: &str) -> usize {
    std::fs::read_to_string(live.cluster.host(host).log_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" password for "))
        .count()
}

/// The saved plan file, as JSON.
fn saved_json(live: &Live, name: &str) -> serde_json::Value {
    let bytes = live
        .cluster
        .read_file("manager", MANAGER_USER, name)
        .expect("the saved plan");
    serde_json::from_slice(&bytes).expect("JSON")
}

#[test]
fn an_inventory_edited_after_the_plan_is_refused_and_the_untouched_plan_applies() {
    let live = provisioned(MESH);
    let original = live
        .cluster
        .read_file("manager", MANAGER_USER, "inventory.yaml")
        .unwrap();
    // The host keys are new to the manager: accepted on first use, and
    // pinned by the saved plan.
    live.run(&["plan", "--accept-new-host-keys", "--out", "saved.plan"])
        .expect_exit(0);
    let saved = saved_json(&live, "saved.plan");
    assert_eq!(saved["host_keys"].as_array().unwrap().len(), 3, "{saved:#}");
    assert_eq!(saved["flags"]["accept_new_host_keys"], true, "{saved:#}");

    // Issue 19's edit: node1 reached through node3 from now on.
    let edited = live.inventory(&WORKERS, MESH, &|w| {
        if w == "node1" {
            "    jump: node3\n".to_string()
        } else {
            String::new()
        }
    });
    live.write_inventory(&edited);
    let before = live.snapshot();
    let logs_before = logs(&live);
    let Ran { stderr, .. } = live.run(&["apply", "--plan", "saved.plan"]).expect_exit(1);
    assert!(
        stderr.contains(REFUSED)
            && stderr.contains("inventory.yaml changed since the plan was made")
            && stderr.contains(&sha256(&original))
            && stderr.contains(&sha256(edited.as_bytes())),
        "{stderr}"
    );
    assert_eq!(live.snapshot(), before, "a file changed");
    assert_eq!(logs(&live), logs_before, "a worker was contacted");

    // The inventory as it was: the untouched plan applies, with its flags
    // and its host keys pinned.
    live.write_inventory(std::str::from_utf8(&original).unwrap());
    let Ran { stdout, .. } = live.run(&["apply", "--plan", "saved.plan"]).expect_exit(0);
    assert!(stdout.contains("Converged"), "{stdout}");
    assert!(live.can_ssh("node1", "node2") && live.can_ssh("node3", "node1"));
}

#[test]
fn a_flag_that_differs_or_a_plan_too_old_is_refused_and_flags_left_out_come_from_the_plan() {
    let live = provisioned(MESH);
    live.run(&[
        "plan",
        "--accept-new-host-keys",
        "--limit",
        "node1",
        "--out",
        "saved.plan",
    ])
    .expect_exit(0);
    let before = live.snapshot();
    let logs_before = logs(&live);
    for (args, said) in [
        (
            &["--limit", "node1,node2"][..],
            "--limit differs: node1,node2 now, node1 in the saved plan",
        ),
        (
            &["--ask-pass"][..],
            "--ask-pass differs: given now, not given in the saved plan",
        ),
        (
            &["--rotate-keys", "node1"][..],
            "--rotate-keys differs: node1 now, not given in the saved plan",
        ),
    ] {
        let mut argv = vec!["apply", "--plan", "saved.plan"];
        argv.extend_from_slice(args);
        let Ran { stderr, .. } = live.run(&argv).expect_exit(1);
        assert!(
            stderr.contains(REFUSED) && stderr.contains(said),
            "{args:?}: {stderr}"
        );
    }
    // Made two days ago (the operator's own file, edited): too old.
    let mut old = saved_json(&live, "saved.plan");
    let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    old["created"] = humantime::format_rfc3339_seconds(two_days)
        .to_string()
        .into();
    live.cluster
        .write_file(
            "manager",
            MANAGER_USER,
            "old.plan",
            serde_json::to_string(&old).unwrap().as_bytes(),
            0o600,
        )
        .unwrap();
    let Ran { stderr, .. } = live.run(&["apply", "--plan", "old.plan"]).expect_exit(1);
    assert!(
        stderr.contains(REFUSED)
            // "2days ago", or "2days 1s ago" on a busy machine.
            && stderr.contains("2days")
            && stderr.contains("ago: older than --max-plan-age 1day"),
        "{stderr}"
    );
    let mut now = live.snapshot();
    now.retain(|path, _| !path.ends_with("old.plan"));
    assert_eq!(now, before, "a file changed");
    assert_eq!(logs(&live), logs_before, "a worker was contacted");

    // The same flag again is no difference; --limit is taken from the
    // plan: node1 is changed, node2 and node3 are not.
    let node2 = live.cluster.host("node2").home_of(WORKER_USER);
    let of_node2 = |s: &Snapshot| -> Snapshot {
        s.iter()
            .filter(|(p, _)| p.starts_with(&node2))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect()
    };
    let Ran { stdout, .. } = live
        .run(&["apply", "--plan", "saved.plan", "--accept-new-host-keys"])
        .expect_exit(0);
    assert!(stdout.contains("Converged"), "{stdout}");
    assert_eq!(of_node2(&live.snapshot()), of_node2(&before));
}

#[test]
fn a_host_key_changed_after_the_plan_is_refused_before_the_password_goes_out() {
    let mut live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]).password(PASSWORD),
        HostSpec::new("node2", &[WORKER_USER]).password(PASSWORD),
        HostSpec::new("node3", &[WORKER_USER]).password(PASSWORD),
    ]);
    live.write_inventory_of(&WORKERS, MESH);
    // A fresh cluster: every worker read with the password, its host key
    // accepted on first use (no terminal: the flags are the consent).
    live.run_with_password(&[
        "plan",
        "--ask-pass",
        "--accept-new-host-keys",
        "--out",
        "saved.plan",
    ])
    .expect_exit(0);
    let old = live.cluster.host_key_fingerprints("node2").unwrap();
    let saved = saved_json(&live, "saved.plan");
    let pinned: Vec<String> = saved["host_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["node"] == "node2")
        .unwrap_or_else(|| panic!("no host key of node2 in {saved:#}"))["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    assert!(
        !pinned.is_empty() && pinned.iter().all(|f| old.contains(f)),
        "{pinned:?} {old:?}"
    );

    // node2 is reinstalled (or someone sits at its address) after the plan.
    live.cluster.rekey("node2").unwrap();
    let new = live.cluster.host_key_fingerprints("node2").unwrap();
    assert!(new.iter().all(|f| !old.contains(f)));
    let before = live.snapshot();
    let passwords = password_lines(&live, "node2");
    // The same flags as the plan, as the README shows it.
    let Ran { stderr, .. } = live
        .run_with_password(&[
            "apply",
            "--ask-pass",
            "--accept-new-host-keys",
            "--plan",
            "saved.plan",
        ])
        .expect_exit(1);
    assert!(
        stderr.contains(REFUSED)
            && stderr.contains("node2: its host key is not the one accepted on first use")
            && pinned.iter().all(|f| stderr.contains(f.as_str()))
            && new.iter().any(|f| stderr.contains(f.as_str())),
        "old {old:?}, new {new:?}: {stderr}"
    );
    assert_eq!(live.snapshot(), before, "a file changed");
    assert_eq!(
        password_lines(&live, "node2"),
        passwords,
        "the password went to node2's new key"
    );
}
