//! `--rotate-keys` on the testbed: no rotation can lock anyone out, and
//! "Converged" means the state read back says so.
//!
//! The cluster's manager key is authorized on every worker by a line with
//! trustmesh's own marker (as a password bootstrap leaves it), so that the
//! old key's lines are trustmesh's to remove.
#![cfg(feature = "live")]

mod live;

use live::*;

/// The marker of the manager's lines (the cluster is named after it).
const MANAGER_MARKER: &str = "trustmesh:manager/manager";

const WORKERS: [&str; 3] = ["node1", "node2", "node3"];

/// Manager + node1..node3 in a mesh, converged; the manager's key on each
/// worker in a line trustmesh owns.
fn cluster() -> Live {
    let live = start(WORKERS.iter().map(|w| worker(w)).collect());
    live.manager_keygen();
    let key = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
            .unwrap(),
    )
    .unwrap();
    let mut f = key.split_whitespace();
    let line = format!(
        "{} {} {MANAGER_MARKER}\n",
        f.next().unwrap(),
        f.next().unwrap()
    );
    for w in WORKERS {
        append(&live, w, &line);
    }
    live.write_inventory_of(&WORKERS, "mesh:\n  - [node1, node2, node3]\n");
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    live
}

/// Append `text` to a worker's authorized_keys, as an admin would.
fn append(live: &Live, w: &str, text: &str) {
    let out = live
        .cluster
        .exec_with_stdin(
            w,
            WORKER_USER,
            &[
                "sh",
                "-c",
                "mkdir -p -m 700 ~/.ssh && cat >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys",
            ],
            text.as_bytes(),
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn authorized_keys(live: &Live, w: &str) -> String {
    String::from_utf8(
        live.cluster
            .read_file(w, WORKER_USER, ".ssh/authorized_keys")
            .unwrap(),
    )
    .unwrap()
}

/// Keep only the lines of a worker's authorized_keys that `keep` accepts.
fn filter_authorized_keys(live: &Live, w: &str, keep: &dyn Fn(&str) -> bool) {
    let text: String = authorized_keys(live, w)
        .lines()
        .filter(|l| keep(l))
        .map(|l| format!("{l}\n"))
        .collect();
    live.cluster
        .write_file(
            w,
            WORKER_USER,
            ".ssh/authorized_keys",
            text.as_bytes(),
            0o600,
        )
        .unwrap();
}

fn pub_blob(live: &Live, host: &str) -> String {
    let text = live
        .cluster
        .read_file(host, account(host), ".ssh/id_ed25519.pub")
        .unwrap();
    String::from_utf8(text)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// Does the manager's key file `key` (in `~/.ssh`), alone, open `to`?
/// No config file, no agent, no other key.
fn key_opens(live: &Live, key: &str, to: &str) -> bool {
    let h = live.cluster.host(to);
    let cmd = format!(
        "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 \
         -o IdentitiesOnly=yes -o IdentityAgent=none -o IdentityFile=~/.ssh/{key} -p {} {}@{} true",
        h.port,
        account(to),
        h.address
    );
    live.run_as("manager", MANAGER_USER, &cmd).status.success()
}

/// Every line of every file of the cluster's homes that holds `blob`.
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

/// Issue 19: `apply --limit node1 --rotate-keys manager` rotated the
/// manager's key, proved it on node1 only and locked the manager out of
/// the others. Refused at plan time now, naming the nodes out of scope;
/// nothing changes, and plain ssh from the manager works everywhere.
#[test]
fn a_manager_rotation_under_limit_is_refused_and_changes_nothing() {
    let live = cluster();
    let before = live.snapshot();
    let ran = live
        .run(&[
            "plan",
            "--limit",
            "node1",
            "--rotate-keys",
            "manager",
            "--json",
        ])
        .expect_exit(1);
    let plan = ran.json();
    let manager = plan_node(&plan, "manager");
    assert_eq!(
        manager["rotation_refused"]["missing"],
        serde_json::json!(["node2 (not in --limit)", "node3 (not in --limit)"]),
        "{plan:#}"
    );
    assert!(
        plan_changes(&plan, "manager")
            .iter()
            .all(|c| c["action"] != "rotate_key"),
        "{plan:#}"
    );

    let ran = live
        .run(&[
            "apply",
            "--limit",
            "node1",
            "--rotate-keys",
            "manager",
            "--yes",
        ])
        .expect_exit(1);
    assert!(
        ran.stdout.contains("rotation refused:")
            && ran
                .stdout
                .contains("node2 (not in --limit), node3 (not in --limit)"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("Converged"), "{}", ran.stdout);
    assert!(before == live.snapshot(), "apply changed something");
    for w in WORKERS {
        assert!(live.can_ssh("manager", w), "manager -> {w}");
        assert!(key_opens(&live, "id_ed25519", w), "manager's key -> {w}");
    }
}

/// A full manager rotation whose removal of the old key meets an edit made
/// by someone else on node1 (between the proofs and the removal): not
/// converged, exit 1, naming node1; the next apply removes the old key
/// there (recognised from the aside on the manager). Every edge works, and
/// no worker lets the old manager key in.
#[test]
fn a_conflict_at_the_removal_is_not_converged_and_the_next_apply_removes_the_old_key() {
    let live = cluster();
    let old = pub_blob(&live, "manager");
    let edited = "# node1: an admin's note, written during the rotation";
    let ran = run_pausing(
        &live,
        "retire",
        &["apply", "--rotate-keys", "manager", "--yes"],
        &|| append(&live, "node1", &format!("{edited}\n")),
    )
    .expect_exit(1);
    assert!(ran.stdout.contains("CONFLICT"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains("Not converged: node1 (changes left)"),
        "{}",
        ran.stdout
    );
    assert!(!ran.stdout.contains("Converged:"), "{}", ran.stdout);
    let new = pub_blob(&live, "manager");
    assert_ne!(new, old, "the new key is in place");
    assert!(authorized_keys(&live, "node1").contains(&old));

    // The next plan still removes the retired key on node1, and only there.
    let plan = live
        .run(&["plan", "--json", "--detailed-exitcode"])
        .expect_exit(2)
        .json();
    let edit = plan_change(&plan, "node1", "edit_file", "~/.ssh/authorized_keys");
    let removed = edit["remove"].as_array().unwrap();
    assert_eq!(removed.len(), 1, "{plan:#}");
    assert!(removed[0][1].as_str().unwrap().contains(&old), "{plan:#}");
    for w in ["node2", "node3"] {
        assert!(plan_changes(&plan, w).is_empty(), "{plan:#}");
    }

    let ran = live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(ran.stdout.contains("Converged:"), "{}", ran.stdout);
    for w in WORKERS {
        assert!(
            !authorized_keys(&live, w).contains(&old),
            "{w} still lets the old manager key in"
        );
        assert!(key_opens(&live, "id_ed25519", w), "manager's key -> {w}");
        assert!(live.can_ssh("manager", w), "manager -> {w}");
    }
    assert!(authorized_keys(&live, "node1").contains(edited));
    // Anywhere at all, the old key is only in its aside on the manager.
    let left: Vec<String> = lines_holding(&live, &old)
        .into_iter()
        .filter(|l| !l.contains("/.ssh/id_ed25519.old-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    for a in WORKERS {
        for b in WORKERS {
            if a != b {
                assert!(live.can_ssh(a, b), "{a} -> {b}");
            }
        }
    }
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    live.run(&["verify"]).expect_exit(0);
}

/// The manager's account has its own `~/.ssh/config` with `Host *` /
/// `IdentityFile ~/.ssh/id_other`, a key every worker lets in. Neither a
/// rotation's proof nor a `verify` edge may pass on it.
#[test]
fn a_users_ssh_config_key_makes_no_proof_or_edge_pass() {
    let live = cluster();
    let out = live.run_as(
        "manager",
        MANAGER_USER,
        "ssh-keygen -q -t ed25519 -N '' -C other -f ~/.ssh/id_other && \
         printf 'Host *\\n  IdentityFile ~/.ssh/id_other\\n' > ~/.ssh/config && chmod 600 ~/.ssh/config",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_other.pub")
            .unwrap(),
    )
    .unwrap();
    for w in WORKERS {
        append(&live, w, &other);
        assert!(key_opens(&live, "id_other", w), "id_other -> {w}");
    }
    let old = pub_blob(&live, "manager");

    // The proof on node2: its new line is taken out before the proofs run,
    // so only id_other could open node2.
    let ran = run_pausing(
        &live,
        "prove",
        &["apply", "--rotate-keys", "manager", "--yes"],
        &|| {
            filter_authorized_keys(&live, "node2", &|l| {
                !l.ends_with(MANAGER_MARKER) || l.contains(&old)
            })
        },
    )
    .expect_exit(1);
    assert!(
        ran.stdout
            .contains("FAILED prove the new key with a fresh connection to node2"),
        "{}",
        ran.stdout
    );
    assert_eq!(
        pub_blob(&live, "manager"),
        old,
        "the old key stays in place"
    );
    for w in WORKERS {
        assert!(authorized_keys(&live, w).contains(&old), "{w}");
        assert!(key_opens(&live, "id_ed25519", w), "manager's key -> {w}");
    }
    // The unproven new key, never put in place, is let in nowhere after
    // the next apply.
    let unproven = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.trustmesh-new.pub")
            .unwrap(),
    )
    .unwrap()
    .split_whitespace()
    .nth(1)
    .unwrap()
    .to_string();
    assert!(authorized_keys(&live, "node1").contains(&unproven));
    live.run(&["apply", "--yes"]).expect_exit(0);
    for w in WORKERS {
        assert!(!authorized_keys(&live, w).contains(&unproven), "{w}");
        assert!(key_opens(&live, "id_ed25519", w), "manager's key -> {w}");
    }

    // verify: node1 lets the manager's own key in no more; id_other does.
    filter_authorized_keys(&live, "node1", &|l| !l.ends_with(MANAGER_MARKER));
    assert!(!key_opens(&live, "id_ed25519", "node1"));
    let report = live.run(&["verify", "--json"]).expect_exit(1).json();
    let edge = |s: &str, t: &str| verify_edge(&report, s, t).clone();
    assert_eq!(edge("manager", "node1")["status"], "fail", "{report:#}");
    assert_eq!(edge("manager", "node3")["status"], "ok", "{report:#}");
}
