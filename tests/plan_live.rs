//! `plan` against real sshd hosts on the testbed.
#![cfg(feature = "live")]

mod live;

use live::*;

#[test]
fn fresh_cluster_plans_the_full_set_and_changes_nothing() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]).port(2222),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    live.authorize_manager_on("node2");
    let inv = live.inventory(
        &["node1", "node2"],
        "reverse: [node1]\nmesh:\n  - [node1, node2]\n",
        &|_| String::new(),
    );
    live.write_inventory(&inv);
    let before: Vec<_> = ["node1", "node2"]
        .iter()
        .map(|h| {
            live.cluster
                .read_file(h, WORKER_USER, ".ssh/authorized_keys")
        })
        .collect();
    let Ran { stdout, stderr, .. } = live
        .run(&["plan", "--accept-new-host-keys", "--detailed-exitcode"])
        .expect_exit(2);
    assert!(
        stderr.contains("accepted the new host key of node1"),
        "{stderr}"
    );
    assert!(
        stdout.contains("+ key ~/.ssh/id_ed25519 (ed25519)"),
        "{stdout}"
    );
    let after: Vec<_> = ["node1", "node2"]
        .iter()
        .map(|h| {
            live.cluster
                .read_file(h, WORKER_USER, ".ssh/authorized_keys")
        })
        .collect();
    assert_eq!(before, after, "plan changed a file");
}

#[test]
fn a_frozen_host_is_reported_within_the_timeout_and_the_rest_planned() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    live.authorize_manager_on("node2");
    live.trust_all_host_keys(&["node1", "node2"]);
    live.write_inventory(&live.inventory(&["node1", "node2"], "", &|_| String::new()));
    live.cluster.freeze("node2").unwrap();
    let started = std::time::Instant::now();
    let ran = live.run(&["plan", "--json", "--timeout", "2"]);
    let took = started.elapsed();
    live.cluster.thaw("node2").unwrap();
    let plan = ran.expect_exit(1).json();
    let node = |name: &str| {
        plan["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == name)
            .unwrap_or_else(|| panic!("no {name} in {plan:#}"))
            .clone()
    };
    assert_eq!(node("node2")["status"], "unreachable", "{plan:#}");
    assert_eq!(node("node2")["step"], "connect", "{plan:#}");
    assert_eq!(
        node("node1")["status"],
        "planned",
        "node1 is still planned: {plan:#}"
    );
    assert_eq!(plan["summary"]["unreachable"], 1, "{plan:#}");
    // Not a timing assertion: a hung host must not hang the run.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
}

#[test]
fn a_rekeyed_host_stops_that_node_with_both_fingerprints() {
    let mut live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    live.authorize_manager_on("node2");
    live.trust_all_host_keys(&["node1", "node2"]);
    let old = live.cluster.host_key_fingerprints("node2").unwrap();
    live.cluster.rekey("node2").unwrap();
    let new = live.cluster.host_key_fingerprints("node2").unwrap();
    live.write_inventory(&live.inventory(&["node1", "node2"], "", &|_| String::new()));
    let Ran { stdout, .. } = live
        .run(&["plan", "-v", "--accept-new-host-keys"])
        .expect_exit(1);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("node2 ("))
        .unwrap_or_default();
    assert!(line.contains("the host key changed"), "{stdout}");
    assert!(
        old.iter().any(|f| line.contains(f.as_str())),
        "old fingerprint missing: {line}"
    );
    assert!(
        new.iter().any(|f| line.contains(f.as_str())),
        "new fingerprint missing: {line}"
    );
    assert!(stdout.contains("ssh-keygen -R"), "{stdout}");
    assert!(stdout.contains("node1 (agilab@"), "{stdout}");
    // --accept-new-host-keys never replaces a changed key.
    let kh = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/known_hosts")
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&kh).contains("trustmesh"),
        "plan wrote known_hosts"
    );
}

#[test]
fn a_pinned_host_key_is_checked() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    live.authorize_manager_on("node2");
    let good = live.cluster.host_key_fingerprints("node1").unwrap()[0].clone();
    let inv = live.inventory(&["node1", "node2"], "", &|w| {
        if w == "node1" {
            format!("    host_key: {good}\n")
        } else {
            "    host_key: SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n".into()
        }
    });
    live.write_inventory(&inv);
    // No --accept-new-host-keys: the pin alone is trust enough.
    let plan = live.run(&["plan", "--json"]).expect_exit(1).json();
    let nodes = plan["nodes"].as_array().unwrap();
    let node = |name: &str| nodes.iter().find(|n| n["node"] == name).unwrap();
    assert_eq!(node("node1")["status"], "planned", "{plan:#}");
    assert_eq!(node("node2")["status"], "unreachable", "{plan:#}");
    let reason = node("node2")["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not the pinned SHA256:AAAA"), "{plan:#}");
}

#[test]
fn a_node_behind_a_bastion_is_read_through_it() {
    let live = start(vec![
        HostSpec::new("gw", &[WORKER_USER]),
        HostSpec::new("hidden", &[WORKER_USER]).behind("gw"),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("gw");
    live.authorize_manager_on("hidden");
    let gw = live.cluster.host("gw");
    let hidden = live.cluster.host("hidden");
    let inv = format!(
        "version: 1\ndefaults: {{user: {WORKER_USER}}}\nmanager: {{name: manager, address: {}, user: {MANAGER_USER}}}\nbastions:\n  - {{name: gw, address: {}, port: {}}}\nworkers:\n  - {{name: hidden, address: {}, port: {}, jump: gw}}\n",
        live.addr("manager"),
        gw.address,
        gw.port,
        hidden.address,
        hidden.port
    );
    live.write_inventory(&inv);
    let Ran { stdout, stderr, .. } = live
        .run(&["plan", "--accept-new-host-keys", "--timeout", "5"])
        .expect_exit(0);
    assert!(
        stderr.contains("accepted the new host key of hidden"),
        "{stderr}"
    );
    assert!(!stdout.contains("unreachable"), "{stdout}");
    assert!(
        stdout.contains(&format!("+ {} ssh-ed25519", hidden.address))
            || stdout.contains(&format!("{} ssh-ed25519", hidden.address)),
        "{stdout}"
    );
}

/// A host key ssh already trusts counts as known: here only the manager's
/// global /etc/ssh/ssh_known_hosts holds it, and no --accept-new-host-keys
/// is given.
#[test]
fn a_host_key_in_the_global_known_hosts_is_trusted_as_ssh_does() {
    let live = start(vec![HostSpec::new("node1", &[WORKER_USER])]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    live.write_inventory(&live.inventory(&["node1"], "", &|_| String::new()));
    let global: String = live
        .cluster
        .known_hosts_lines("node1")
        .unwrap()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    let etc = live.cluster.host("manager").etc_ssh();
    std::fs::write(etc.join("ssh_known_hosts"), global).unwrap();
    let Ran { stdout, stderr, .. } = live.run(&["plan", "--detailed-exitcode"]).expect_exit(2);
    assert!(!stdout.contains("unreachable"), "{stdout}");
    assert!(!stderr.contains("accepted the new host key"), "{stderr}");
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    assert_eq!(plan["nodes"][1]["node"], "node1");
    assert_eq!(plan["nodes"][1]["status"], "planned", "{plan:#}");
}

/// On a terminal, a host key accepted on first use in this run is
/// confirmed before the password goes to that host: "no" sends nothing.
#[test]
fn a_host_key_accepted_on_first_use_is_confirmed_before_a_password_is_sent() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]).password(PASSWORD)
    ]);
    live.write_inventory(&live.inventory(&["node1"], "", &|_| String::new()));
    let log = live.cluster.host("node1").log_path();
    let on_terminal = |answer: &str| {
        let cmd = format!(
            "cd ~ && printf '{answer}\\n' | TRUSTMESH_PASSWORD={PASSWORD} script -qec \"NO_COLOR=1 '{}' plan --ask-pass --accept-new-host-keys\" /dev/null",
            live.bin()
        );
        text(&live.run_as("manager", MANAGER_USER, &cmd)).0
    };
    let out = on_terminal("no");
    assert!(
        out.contains("Send the password to node1?")
            && out.contains("not confirmed: no password was sent"),
        "{out}"
    );
    let sshd = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !sshd.contains("password for"),
        "a password reached node1:\n{sshd}"
    );
    let out = on_terminal("yes");
    assert!(!out.contains("unreachable"), "{out}");
    assert!(out.contains("node1 (agilab@"), "{out}");
    let sshd = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(sshd.contains("Accepted password for agilab"), "{sshd}");
}
