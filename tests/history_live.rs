//! The history of applies and the drift job, on real sshd hosts.
#![cfg(feature = "live")]

mod live;

use live::*;
use sha2::Digest;

const HISTORY: &str = ".local/state/trustmesh/manager/history.jsonl";

/// The manager account's history file, one JSON value a line.
fn history(live: &Live) -> Vec<serde_json::Value> {
    let Some(bytes) = live.cluster.read_file("manager", MANAGER_USER, HISTORY) else {
        return Vec::new();
    };
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn sh(live: &Live, cmd: &str) -> String {
    let out = live.run_as("manager", MANAGER_USER, cmd);
    assert!(out.status.success(), "{cmd}: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn an_apply_that_changes_something_is_recorded_once() {
    let live = provisioned("mesh:\n  - [node1, node2, node3]\n");
    // The inventory in a git repository (the manager's home).
    let commit = sh(
        &live,
        "cd ~ && git init -q && git add inventory.yaml \
         && git -c user.name=t -c user.email=t@example.org commit -qm inventory \
         && git rev-parse HEAD",
    );
    let inventory = live
        .cluster
        .read_file("manager", MANAGER_USER, "inventory.yaml")
        .unwrap();
    assert!(history(&live).is_empty());

    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    let records = history(&live);
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(r["format_version"], 1);
    assert!(
        humantime::parse_rfc3339(r["time"].as_str().unwrap()).is_ok(),
        "{r}"
    );
    assert!(r["time"].as_str().unwrap().ends_with('Z'), "UTC: {r}");
    assert_eq!(r["user"], MANAGER_USER);
    assert_eq!(r["cluster"], "manager");
    let inv = &r["inventory"];
    assert_eq!(inv["path"], format!("/home/{MANAGER_USER}/inventory.yaml"));
    let sha: String = sha2::Sha256::digest(&inventory)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(inv["sha256"], sha);
    assert_eq!(inv["git_commit"], commit.as_str());
    assert_eq!(inv["git_dirty"], false);
    assert_eq!(r["flags"]["accept_new_host_keys"], true);
    assert_eq!(r["saved_plan"], serde_json::Value::Null);
    let changed: Vec<&str> = r["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_str().unwrap())
        .collect();
    for node in ["node1", "node2", "node3"] {
        assert!(changed.contains(&node), "{node} changed: {r}");
    }
    for c in r["changes"].as_array().unwrap() {
        assert!(c["lines_added"].as_u64().unwrap() >= 1, "{c}");
        assert!(c["files"].as_u64().unwrap() >= 1, "{c}");
    }
    let results = r["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(
        results
            .iter()
            .all(|n| n["result"] == "ok" && n["reason"].is_null()),
        "{r}"
    );
    assert_eq!(r["converged"], true);

    // Private: the folder 0700, the file 0600, the account's own.
    use std::os::unix::fs::MetadataExt;
    let home = live.cluster.host("manager").home_of(MANAGER_USER);
    let file = std::fs::metadata(home.join(HISTORY)).unwrap();
    assert_eq!(file.mode() & 0o777, 0o600);
    let dir = std::fs::metadata(home.join(HISTORY).parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
    let me = std::fs::metadata(home.join("inventory.yaml"))
        .unwrap()
        .uid();
    assert_eq!(file.uid(), me);

    // Nothing to do: nothing recorded.
    live.run(&["apply", "--yes"]).expect_exit(0);
    assert_eq!(history(&live).len(), 1);

    // `history --json` lists it, as written.
    let listed = live.run(&["history", "--json"]).expect_exit(0).json();
    assert_eq!(listed["records"].as_array().unwrap(), &records);
    assert_eq!(listed["broken"].as_array().unwrap().len(), 0);
    let text = live.run(&["history"]).expect_exit(0).stdout;
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains(MANAGER_USER) && text.contains(&commit[..12]),
        "{text}"
    );
    assert!(text.contains("converged"), "{text}");

    // Drift repaired from an edited (uncommitted) inventory: a second
    // record, the inventory dirty; a broken line is skipped and named.
    sh(&live, "echo '# edited' >> ~/inventory.yaml");
    let del = live.run_as(
        "node1",
        WORKER_USER,
        "sed -i '/trustmesh:manager\\/node2$/d' ~/.ssh/authorized_keys",
    );
    assert!(del.status.success(), "{del:?}");
    sh(&live, &format!("echo '{{not json' >> ~/{HISTORY}"));
    live.run(&["apply", "--yes"]).expect_exit(0);
    let listed = live
        .run(&["history", "--json", "--limit", "1"])
        .expect_exit(0);
    assert!(listed.stderr.contains("line 2"), "{}", listed.stderr);
    let doc = listed.json();
    let records = doc["records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["inventory"]["git_dirty"], true);
    assert_eq!(records[0]["changes"][0]["node"], "node1");
    assert_eq!(records[0]["changes"][0]["lines_added"], 1);
    assert_eq!(doc["broken"][0]["line"], 2);
}

/// The drift job's command, as docs/ci-drift.md runs it.
fn drift_command() -> Vec<String> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/ci-drift.md")).unwrap();
    let line = doc
        .lines()
        .find_map(|l| l.trim().strip_prefix("run: trustmesh plan"))
        .expect("a `run: trustmesh plan ...` step in docs/ci-drift.md");
    std::iter::once("plan".to_string())
        .chain(line.split_whitespace().map(String::from))
        .collect()
}

#[test]
fn the_drift_job_exits_0_when_converged_and_2_after_a_hand_edit() {
    let live = converged();
    let cmd = drift_command();
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    live.run(&args).expect_exit(0);
    // Someone removes a line trustmesh wrote.
    let del = live.run_as(
        "node1",
        WORKER_USER,
        "sed -i '/trustmesh:manager\\/node2$/d' ~/.ssh/authorized_keys",
    );
    assert!(del.status.success(), "{del:?}");
    let drift = live.run(&args).expect_exit(2);
    assert!(drift.stdout.contains("node1"), "{}", drift.stdout);
    // Repaired, the job passes again.
    live.run(&["apply", "--yes"]).expect_exit(0);
    live.run(&args).expect_exit(0);
}
