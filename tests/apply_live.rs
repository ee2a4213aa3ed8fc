//! `apply` against real sshd hosts on the testbed.
#![cfg(feature = "live")]

mod live;

use live::*;

/// A key no node of the cluster holds.
const OUTSIDER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOutsiderOutsiderOutsiderOutsiderOutsider1";

fn mtime(live: &Live, host: &str, rel: &str) -> std::time::SystemTime {
    std::fs::metadata(live.cluster.host(host).home_of(WORKER_USER).join(rel))
        .unwrap()
        .modified()
        .unwrap()
}

#[test]
fn fresh_cluster_with_password_bootstrap_converges_and_verifies() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]).password(PASSWORD),
        HostSpec::new("node2", &[WORKER_USER])
            .password(PASSWORD)
            .port(2222),
        HostSpec::new("node3", &[WORKER_USER]).password(PASSWORD),
    ]);
    live.write_inventory_of(
        &["node1", "node2", "node3"],
        "reverse: [node1]\nmesh:\n  - [node2, node3]\n",
    );
    let untouched = live.snapshot();

    // The first plan reads every worker with the password and shows it all:
    // every node planned (none unreachable), with changes.
    let plan = live
        .run_with_password(&[
            "plan",
            "--ask-pass",
            "--accept-new-host-keys",
            "--detailed-exitcode",
            "--json",
        ])
        .expect_exit(2)
        .json();
    let nodes = plan["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{plan:#}");
    for n in nodes {
        assert_eq!(n["status"], "planned", "{n:#}");
        assert!(!n["changes"].as_array().unwrap().is_empty(), "{n:#}");
        let access = if n["node"] == "manager" {
            "key"
        } else {
            "password"
        };
        assert_eq!(n["access"], access, "{n:#}");
    }
    // The manager's key is made, and installed with a password on each of
    // the three workers: its line there is known after apply.
    let key = plan_change(&plan, "manager", "generate_key", "~/.ssh/id_ed25519");
    assert_eq!(key["key_type"], "ed25519", "{plan:#}");
    for w in ["node1", "node2", "node3"] {
        let ak = plan_change(&plan, w, "edit_file", "~/.ssh/authorized_keys");
        let line = ak["add"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["node"] == "manager")
            .unwrap_or_else(|| panic!("no manager's line on {w}: {plan:#}"));
        assert!(line["base64"].is_null(), "known after apply: {plan:#}");
    }
    assert_eq!(live.snapshot(), untouched, "plan changed a file");

    // No consent, no change: "no" on a terminal (after confirming the three
    // host keys accepted on first use, so that the password may go out to
    // read), and no terminal at all.
    let cmd = format!(
        "cd ~ && printf 'yes\\nyes\\nyes\\nno\\n' | TRUSTMESH_PASSWORD={PASSWORD} script -qec \"NO_COLOR=1 '{}' apply --ask-pass --accept-new-host-keys\" /dev/null",
        live.bin()
    );
    let out = live.run_as("manager", MANAGER_USER, &cmd);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Apply these changes?") && stdout.contains("Apply cancelled."),
        "{stdout}\n{stderr}"
    );
    assert_eq!(live.snapshot(), untouched, "a no changed a file");
    let Ran { stderr, .. } = live
        .run_with_password(&["apply", "--ask-pass", "--accept-new-host-keys"])
        .expect_exit(1);
    assert!(
        stderr.contains("refused: there is no terminal to ask on and no --yes"),
        "{stderr}"
    );
    assert_eq!(
        live.snapshot(),
        untouched,
        "apply without consent changed a file"
    );

    let Ran { stdout, .. } = live
        .run_with_password(&["apply", "--ask-pass", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    assert!(stdout.contains("Converged"), "{stdout}");
    assert!(
        stdout.contains(
            "done install the manager's key with a password: write ~/.ssh/authorized_keys"
        ),
        "{stdout}"
    );
    // Plain ssh works on every wanted edge and on no other.
    let wanted = [
        ("manager", "node1"),
        ("manager", "node2"),
        ("manager", "node3"),
        ("node1", "manager"),
        ("node2", "node3"),
        ("node3", "node2"),
    ];
    for from in ["manager", "node1", "node2", "node3"] {
        for to in ["manager", "node1", "node2", "node3"] {
            if from == to {
                continue;
            }
            let want = wanted.contains(&(from, to));
            assert_eq!(live.can_ssh(from, to), want, "{from} -> {to}");
        }
    }
    // Plan is empty; a second apply changes nothing (same mtimes).
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let before = mtime(&live, "node2", ".ssh/authorized_keys");
    let Ran { stdout, .. } = live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(stdout.contains("No changes"), "{stdout}");
    assert_eq!(before, mtime(&live, "node2", ".ssh/authorized_keys"));
    // Private keys stay where they were made: each worker's key is its own.
    let k1 = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/id_ed25519.pub")
        .unwrap();
    let k2 = live
        .cluster
        .read_file("node2", WORKER_USER, ".ssh/id_ed25519.pub")
        .unwrap();
    assert_ne!(k1, k2);
}

#[test]
fn drift_is_planned_exactly_and_repaired_keeping_unmanaged_keys() {
    let live = converged();
    live.cluster
        .chmod("node2", WORKER_USER, ".ssh", 0o755)
        .unwrap();
    let ak = String::from_utf8(
        live.cluster
            .read_file("node2", WORKER_USER, ".ssh/authorized_keys")
            .unwrap(),
    )
    .unwrap();
    let hand = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBobBobBobBobBobBobBobBobBobBobBobBobBobBobBo bob@laptop";
    let drifted: String = ak
        .lines()
        .filter(|l| !l.ends_with("trustmesh:manager/node3"))
        .map(|l| format!("{l}\n"))
        .chain(std::iter::once(format!("{hand}\n")))
        .collect();
    live.cluster
        .write_file(
            "node2",
            WORKER_USER,
            ".ssh/authorized_keys",
            drifted.as_bytes(),
            0o600,
        )
        .unwrap();
    let plan = live
        .run(&["plan", "--detailed-exitcode", "--json"])
        .expect_exit(2)
        .json();
    let mode = plan_change(&plan, "node2", "mode", "~/.ssh");
    assert_eq!(
        (mode["from"].as_u64(), mode["to"].as_u64()),
        (Some(0o755), Some(0o700)),
        "{plan:#}"
    );
    let edit = plan_change(&plan, "node2", "edit_file", "~/.ssh/authorized_keys");
    assert!(
        edit["add"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["marker"] == "trustmesh:manager/node3"),
        "{plan:#}"
    );
    assert_eq!(
        plan["summary"],
        serde_json::json!({"add": 1, "change": 1, "remove": 0, "unreachable": 0, "blocked": 0}),
        "{plan:#}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    let ak = String::from_utf8(
        live.cluster
            .read_file("node2", WORKER_USER, ".ssh/authorized_keys")
            .unwrap(),
    )
    .unwrap();
    assert!(ak.contains(hand), "the unmanaged key stays: {ak}");
    assert!(ak.contains("trustmesh:manager/node3"), "{ak}");
    assert!(live.can_ssh("node3", "node2"));
}

#[test]
fn a_removed_mesh_pair_prunes_only_its_lines() {
    let live = converged();
    live.write_inventory_of(&["node1", "node2", "node3"], "mesh:\n  - [node1, node2]\n");
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    // node3 loses node1 and node2 (2 keys, 2 x 2 host keys); they lose node3 (1 key, 2 host keys each).
    assert_eq!(
        plan["summary"],
        serde_json::json!({"add": 0, "change": 0, "remove": 12, "unreachable": 0, "blocked": 0}),
        "{plan:#}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(live.can_ssh("node1", "node2") && live.can_ssh("node2", "node1"));
    assert!(!live.can_ssh("node1", "node3") && !live.can_ssh("node3", "node2"));
    assert!(
        live.can_ssh("manager", "node3"),
        "the manager's line is never pruned"
    );
}

#[test]
fn a_file_edited_between_plan_and_apply_is_not_overwritten() {
    let live = converged();
    // node3 leaves the mesh: plan removes its lines on node1 and node2.
    live.write_inventory_of(&["node1", "node2", "node3"], "mesh:\n  - [node1, node2]\n");
    live.run(&["plan", "--out", "saved.json"]).expect_exit(0);
    // Someone edits node1's authorized_keys after the plan.
    let mut ak = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/authorized_keys")
        .unwrap();
    ak.extend_from_slice(b"# added after the plan\n");
    live.cluster
        .write_file("node1", WORKER_USER, ".ssh/authorized_keys", &ak, 0o600)
        .unwrap();
    let Ran { stderr, .. } = live
        .run(&["apply", "--plan", "saved.json", "--yes"])
        .expect_exit(1);
    assert!(
        stderr.contains("the saved plan is refused, nothing was changed")
            && stderr.contains("node1: ~/.ssh/authorized_keys changed since the plan was saved"),
        "{stderr}"
    );
    let now = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/authorized_keys")
        .unwrap();
    assert_eq!(now, ak, "the edit made after the plan is kept, untouched");
    // A saved plan is approved whole: the other nodes were not changed
    // either (node3 still reaches node2).
    assert!(live.can_ssh("node3", "node2"));
}

/// A saved plan is an approval, not a program: edited after `plan --out`
/// (key material, a path, a mode), it is refused and nothing of the edit
/// reaches a node; untouched, it applies.
#[test]
fn an_edited_saved_plan_is_refused_and_an_untouched_one_applies() {
    let live = converged();
    // Changes to approve: node2 gets a reverse edge (a known key added to
    // the manager's authorized_keys), node1's ~/.ssh drifted to 0755.
    live.write_inventory_of(
        &["node1", "node2", "node3"],
        "reverse: [node2]\nmesh:\n  - [node1, node2, node3]\n",
    );
    live.cluster
        .chmod("node1", WORKER_USER, ".ssh", 0o755)
        .unwrap();
    live.run(&["plan", "--out", "saved.json"]).expect_exit(0);
    let saved = live
        .cluster
        .read_file("manager", MANAGER_USER, "saved.json")
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&saved).unwrap();
    // Each edit: what it does to the JSON.
    let edits: [(&str, PlanEdit); 3] = [
        ("key material", |p| {
            let line = changes_of(p, "manager")
                .iter_mut()
                .find(|c| c["action"] == "edit_file")
                .unwrap()["add"][0]
                .as_object_mut()
                .unwrap();
            line.insert("base64".into(), OUTSIDER.into());
        }),
        ("path", |p| {
            let edit = changes_of(p, "manager")
                .iter_mut()
                .find(|c| c["action"] == "edit_file")
                .unwrap();
            edit["path"] = "~/.ssh/rc".into();
        }),
        ("mode", |p| {
            let mode = changes_of(p, "node1")
                .iter_mut()
                .find(|c| c["action"] == "mode")
                .unwrap();
            mode["path"] = "~/.ssh/authorized_keys".into();
            mode["to"] = 0o666.into();
        }),
    ];
    let before = live.snapshot();
    for (what, edit) in &edits {
        let mut p = plan.clone();
        edit(&mut p);
        live.cluster
            .write_file(
                "manager",
                MANAGER_USER,
                "edited.json",
                serde_json::to_string(&p).unwrap().as_bytes(),
                0o600,
            )
            .unwrap();
        let Ran {
            code,
            stdout,
            stderr,
        } = live.run(&["apply", "--plan", "edited.json"]);
        assert_eq!(code, Some(1), "{what}: {stdout}\n{stderr}");
        assert!(
            stderr.contains("the saved plan is refused, nothing was changed"),
            "{what}: {stderr}"
        );
        let mut now = live.snapshot();
        // Only the edited plan file itself differs.
        now.retain(|path, _| !path.ends_with("edited.json"));
        let mut was = before.clone();
        was.retain(|path, _| !path.ends_with("edited.json"));
        assert_eq!(now, was, "{what}: a node changed");
    }
    // A plan file others could have written is refused too.
    live.cluster
        .chmod("manager", MANAGER_USER, "saved.json", 0o666)
        .unwrap();
    let Ran { stderr, .. } = live.run(&["apply", "--plan", "saved.json"]).expect_exit(1);
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    live.cluster
        .chmod("manager", MANAGER_USER, "saved.json", 0o600)
        .unwrap();
    // The untouched plan applies, with no question: it is the approval.
    let Ran { stdout, .. } = live.run(&["apply", "--plan", "saved.json"]).expect_exit(0);
    assert!(stdout.contains("Converged"), "{stdout}");
    assert!(live.can_ssh("node2", "manager"));
    let ak = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/authorized_keys")
        .unwrap();
    assert!(!String::from_utf8_lossy(&ak).contains("Outsider"));
}

/// An edit of a saved plan's JSON.
type PlanEdit = fn(&mut serde_json::Value);

/// The `changes` of one node in a JSON plan.
fn changes_of<'a>(plan: &'a mut serde_json::Value, node: &str) -> &'a mut Vec<serde_json::Value> {
    plan["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["node"] == node)
        .unwrap()["changes"]
        .as_array_mut()
        .unwrap()
}

#[test]
fn a_host_down_during_apply_fails_only_itself_and_a_rerun_finishes() {
    let mut live = converged();
    live.write_inventory_of(
        &["node1", "node2", "node3"],
        "reverse: all\nmesh:\n  - [node1, node2, node3]\n",
    );
    live.cluster.stop("node3").unwrap();
    let Ran { stdout, .. } = live
        .run(&["apply", "--yes", "--timeout", "3"])
        .expect_exit(1);
    assert!(live.can_ssh("node1", "manager"), "{stdout}");
    assert!(live.can_ssh("node2", "manager"), "{stdout}");
    live.cluster.restart("node3").unwrap();
    live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(live.can_ssh("node3", "manager"));
}

/// Every key line of a file is whole: a real key, and managed lines carry
/// their marker. A torn write would leave a cut line.
fn whole_lines(text: &str) -> Result<(), String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let b64 = fields
            .iter()
            .find(|f| f.starts_with("AAAA"))
            .ok_or(format!("no key in `{line}`"))?;
        if trustmesh::formats::known_hosts::fingerprint_sha256(b64).is_none() {
            return Err(format!("cut key in `{line}`"));
        }
    }
    Ok(())
}

#[test]
fn a_killed_apply_leaves_every_file_old_or_new() {
    let live = provisioned("reverse: all\nmesh:\n  - group: all\n");
    let bin = live.bin();
    let files = [".ssh/authorized_keys", ".ssh/known_hosts"];
    // Lines trustmesh did not write (the manager's key, put there by hand)
    // must survive every kill.
    let manager_key = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
            .unwrap(),
    )
    .unwrap();
    // Each run is killed at a known step: paused by the debug build's hook
    // before the Nth unit of actions the walk starts, then killed there (the units before
    // it done, none of it begun) or let go and killed at once (its writes
    // under way). A run with fewer units left ends on its own.
    let mut killed = 0;
    let mut ran = Vec::new();
    for (unit, resume) in [
        (1, false),
        (1, true),
        (2, false),
        (2, true),
        (1, true),
        (1, true),
    ] {
        let at = format!("unit{unit}");
        let go_on = if resume {
            format!(": > \"$d/resume-{at}\"; ")
        } else {
            String::new()
        };
        let script = format!(
            "cd ~ && mkdir -p pause && d=$(cd pause && pwd -P) && rm -f \"$d/paused-{at}\" \"$d/resume-{at}\" && {{ \
             NO_COLOR=1 {pause}={at}:\"$d\" '{bin}' apply --yes --accept-new-host-keys >/dev/null 2>&1 & pid=$!; \
             while [ ! -e \"$d/paused-{at}\" ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done; \
             if [ -e \"$d/paused-{at}\" ]; then {go_on}kill -9 $pid; echo killed; fi; wait $pid; }} ; true",
            pause = trustmesh::apply::PAUSE_ENV,
        );
        let out = live.run_as("manager", MANAGER_USER, &script);
        let step = format!("{at}{}", if resume { ", under way" } else { "" });
        if String::from_utf8_lossy(&out.stdout).contains("killed") {
            killed += 1;
            ran.push(format!("killed before {step}"));
        } else {
            ran.push(format!("ended before {step}"));
        }
        for host in ["manager", "node1", "node2", "node3"] {
            let user = if host == "manager" {
                MANAGER_USER
            } else {
                WORKER_USER
            };
            for f in files {
                if let Some(bytes) = live.cluster.read_file(host, user, f) {
                    let text = String::from_utf8(bytes).expect("utf-8");
                    if let Err(e) = whole_lines(&text) {
                        panic!("after SIGKILL before {step}, {host}:{f} is torn: {e}\n{text}");
                    }
                    if host != "manager" && f == ".ssh/authorized_keys" {
                        assert!(
                            text.contains(manager_key.trim()),
                            "after SIGKILL before {step}, {host}:{f} lost a line trustmesh did not write:\n{text}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        killed >= 3,
        "only {killed} runs were killed: the apply has too few units"
    );
    // A run to the end converges from whatever state the killed runs left.
    let out = live.trustmesh(&["apply", "--yes", "--accept-new-host-keys"]);
    if out.status.code() != Some(0) {
        let mut state = String::new();
        for host in ["node1", "node2", "node3"] {
            let ls = live.run_as(
                host,
                WORKER_USER,
                "ls -la ~ ~/.ssh; cat ~/.ssh/authorized_keys",
            );
            state.push_str(&format!(
                "--- {host}\n{}\n",
                String::from_utf8_lossy(&ls.stdout)
            ));
            let log =
                std::fs::read_to_string(live.cluster.host(host).log_path()).unwrap_or_default();
            state.push_str(&format!("sshd log:\n{log}\n"));
        }
        let m = live.run_as(
            "manager",
            MANAGER_USER,
            "ls -la ~/.ssh; cat ~/.ssh/id_ed25519.pub",
        );
        state.push_str(&format!(
            "--- manager\n{}\n",
            String::from_utf8_lossy(&m.stdout)
        ));
        panic!("{:?}\n{state}", text(&out));
    }
    assert!(live.can_ssh("node1", "node3") && live.can_ssh("node3", "manager"));
}

#[test]
fn apply_asks_on_a_terminal_and_a_no_changes_nothing() {
    let live = provisioned_with(vec![worker("node1")], "reverse: [node1]\n");
    let before = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/authorized_keys");
    // `script` gives apply a terminal on standard input; the answer is "no".
    let bin = live.bin();
    let cmd = format!("cd ~ && printf 'no\\n' | script -qec \"NO_COLOR=1 '{bin}' apply --accept-new-host-keys\" /dev/null");
    let out = live.run_as("manager", MANAGER_USER, &cmd);
    let (stdout, stderr) = text(&out);
    assert!(
        stdout.contains("Apply these changes? Only 'yes' is accepted"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("Apply cancelled."), "{stdout}\n{stderr}");
    assert_eq!(
        live.cluster
            .read_file("node1", WORKER_USER, ".ssh/authorized_keys"),
        before
    );
    assert!(
        live.cluster
            .read_file("node1", WORKER_USER, ".ssh/id_ed25519")
            .is_none(),
        "no key was generated"
    );
    // Without a terminal and without --yes it refuses, before anything.
    let Ran { stdout, .. } = live
        .run(&["apply", "--accept-new-host-keys"])
        .expect_exit(1);
    assert!(!stdout.contains("Apply these changes?"), "{stdout}");
    assert_eq!(
        live.cluster
            .read_file("node1", WORKER_USER, ".ssh/authorized_keys"),
        before
    );
}

#[test]
fn a_second_apply_of_the_same_inventory_is_refused_with_the_holder() {
    let live = provisioned_with(vec![worker("node1")], "");
    // The first apply hangs on a frozen host while holding the lock.
    live.cluster.freeze("node1").unwrap();
    let bin = live.bin();
    let cmd = format!(
        "cd ~ && {{ '{bin}' apply --yes --accept-new-host-keys --timeout 4 >/dev/null 2>&1 & }}; n=0; until grep -qs ' since ' ~/.cache/trustmesh/trustmesh-*.lock || [ $n -ge 600 ]; do sleep 0.1; n=$((n+1)); done; NO_COLOR=1 '{bin}' apply --yes --accept-new-host-keys; echo \"exit=$?\"; wait"
    );
    let out = live.run_as("manager", MANAGER_USER, &cmd);
    live.cluster.thaw("node1").unwrap();
    let (stdout, stderr) = text(&out);
    assert!(stdout.contains("exit=1"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("another trustmesh apply of this inventory is running: pid "),
        "{stderr}"
    );
    assert!(stderr.contains(" since 20"), "{stderr}");
}

#[test]
fn a_manager_identity_outside_dot_ssh_is_generated_used_and_verified() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]).password(PASSWORD)
    ]);
    let h = live.cluster.host("node1");
    let inv = format!(
        "version: 1\ndefaults: {{user: {WORKER_USER}}}\nmanager:\n  name: manager\n  address: {}\n  user: {MANAGER_USER}\n  identity: ~/keys/cluster_ed25519\n  known_hosts: ~/keys/known_hosts\nworkers:\n  - {{name: node1, address: {}, port: {}}}\nreverse: [node1]\n",
        live.addr("manager"),
        h.address,
        h.port
    );
    live.write_inventory(&inv);
    let Ran { stdout, .. } = live
        .run_with_password(&["apply", "--ask-pass", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    assert!(
        stdout.contains("+ key ~/keys/cluster_ed25519 (ed25519)")
            && stdout.contains("done generate ~/keys/cluster_ed25519 (ed25519)"),
        "{stdout}"
    );
    assert!(live
        .cluster
        .read_file("manager", MANAGER_USER, "keys/cluster_ed25519.pub")
        .is_some());
    let kh = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, "keys/known_hosts")
            .unwrap(),
    )
    .unwrap();
    assert!(kh.contains("trustmesh:manager/node1"), "{kh}");
    assert!(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/known_hosts")
            .is_none(),
        "the default file is not touched"
    );
    live.run(&["verify"]).expect_exit(0);
}

/// sshd with `StrictModes no` would accept keys through a linked `~/.ssh`:
/// trustmesh itself must refuse to write through it.
#[test]
fn a_linked_ssh_folder_is_never_written_through() {
    let live = provisioned_with(
        vec![worker("node1").sshd_option("StrictModes no")],
        "reverse: [node1]\n",
    );
    // ~/.ssh becomes a link to a folder elsewhere (keys in it still work).
    let node1 = live.cluster.host("node1").home_of(WORKER_USER);
    std::fs::rename(node1.join(".ssh"), node1.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("elsewhere", node1.join(".ssh")).unwrap();
    let before = live.snapshot();
    let plan = live
        .run(&["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(1)
        .json();
    let n = plan_node(&plan, "node1");
    assert!(
        n["target"]
            .as_str()
            .unwrap_or_default()
            .starts_with("agilab@"),
        "{plan:#}"
    );
    assert_eq!(n["status"], "blocked", "{plan:#}");
    assert!(
        n["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("~/.ssh is a symbolic link"),
        "{plan:#}"
    );
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(1);
    // Nothing on node1 changed (the manager may have learnt host keys).
    let node1_files = |s: &Snapshot| -> Snapshot {
        s.iter()
            .filter(|(p, _)| p.starts_with(&node1))
            .map(|(p, v)| (p.clone(), v.clone()))
            .collect()
    };
    assert_eq!(node1_files(&live.snapshot()), node1_files(&before));
}

/// A `.pub` overwritten by a dotfile sync: ssh would offer that key and be
/// refused everywhere. trustmesh says so and changes nothing (it used to
/// swap the manager's line on every node for the wrong key); a missing
/// `.pub` is derived from the private key.
#[test]
fn a_stale_manager_pub_file_stops_the_run_and_changes_nothing() {
    let live = converged();
    let other =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBHpURkUw9gnoaV3xeWcKxpTYZpwKh7T2GVYmWsrbNl laptop\n";
    live.cluster
        .write_file(
            "manager",
            MANAGER_USER,
            ".ssh/id_ed25519.pub",
            other.as_bytes(),
            0o644,
        )
        .unwrap();
    let before = live.snapshot();
    let Ran { stderr, .. } = live.run(&["plan", "--detailed-exitcode"]).expect_exit(1);
    assert!(
        stderr.contains(".ssh/id_ed25519.pub does not match the manager's private key")
            && stderr.contains("ssh-keygen -y -f"),
        "{stderr}"
    );
    let Ran { stderr, .. } = live
        .run_with_password(&["apply", "--ask-pass", "--yes"])
        .expect_exit(1);
    assert!(stderr.contains("does not match"), "{stderr}");
    assert_eq!(live.snapshot(), before, "nothing was changed anywhere");
    // Without its .pub, the key speaks for itself.
    live.cluster
        .remove_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
        .unwrap();
    let Ran { stderr, .. } = live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    assert!(stderr.contains("is missing or unreadable"), "{stderr}");
    for w in ["node1", "node2", "node3"] {
        assert!(live.can_ssh("manager", w), "manager -> {w}");
    }
}

/// A temporary file an interrupted apply left on a node: the next apply
/// shows it and removes it, and nothing else.
#[test]
fn a_killed_applys_temporary_file_is_swept_by_the_next() {
    let live = converged();
    let ssh = live.cluster.host("node1").home_of(WORKER_USER).join(".ssh");
    let leftover = ssh.join(".trustmesh.Zz9Yy8");
    std::fs::write(&leftover, b"ssh-ed25519 AAAA cut sh").unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let mut before = live.snapshot();
    let plan = live
        .run(&["plan", "--detailed-exitcode", "--json"])
        .expect_exit(2)
        .json();
    // Shown as a leftover to remove (panics when it is not).
    plan_change(
        &plan,
        "node1",
        "remove_leftover",
        "~/.ssh/.trustmesh.Zz9Yy8",
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(!leftover.exists());
    before.remove(&leftover);
    // The folder's own mtime changed with the removal; nothing else did.
    let mut after = live.snapshot();
    before.remove(&ssh);
    after.remove(&ssh);
    assert_eq!(after, before);
}

/// Lines trustmesh does not own survive an apply on real files byte for
/// byte: a hand-written line that mentions a marker, another cluster's
/// line, an old marker naming a node this inventory does not know.
#[test]
fn lines_of_others_survive_an_apply_byte_for_byte() {
    let live = converged();
    let foreign = format!(
        "ssh-ed25519 {OUTSIDER} alice laptop, set up like trustmesh:node9\n\
         ssh-ed25519 {OUTSIDER} trustmesh:othercluster/node1\n\
         ssh-ed25519 {OUTSIDER} trustmesh:stranger\n"
    );
    let mut ak = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/authorized_keys")
        .unwrap();
    ak.extend_from_slice(foreign.as_bytes());
    live.cluster
        .write_file("node1", WORKER_USER, ".ssh/authorized_keys", &ak, 0o600)
        .unwrap();
    // node2 leaves the mesh: node1's file is edited (prune), the rest stays.
    live.write_inventory_of(&["node1", "node2", "node3"], "mesh:\n  - [node1, node3]\n");
    live.run(&["apply", "--yes"]).expect_exit(0);
    let now = String::from_utf8(
        live.cluster
            .read_file("node1", WORKER_USER, ".ssh/authorized_keys")
            .unwrap(),
    )
    .unwrap();
    assert!(now.contains(&foreign), "{now}");
    assert!(!now.contains("trustmesh:manager/node2"), "{now}");
}
