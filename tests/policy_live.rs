//! Least-privilege edges on real sshd hosts: an SFTP-only reverse edge
//! lists the manager's files and gets no shell, `restrict_source` lines
//! let a key in only from its source's address, and turning the option
//! off takes away only what trustmesh added.
//!
//! On the testbed every connection between loopback addresses comes from
//! 127.0.0.1 unless the client binds another: each worker's own
//! `~/.ssh/config` says `BindAddress <its address>` (what a node with one
//! interface does without being told), and the manager, whose tool runs
//! its ssh with a config of its own, says in the inventory that workers
//! see it as 127.0.0.1.
#![cfg(feature = "live")]

mod live;

use live::*;

const WORKERS: [&str; 4] = ["w01", "w02", "w03", "w04"];

fn ssh_opts() -> &'static str {
    "-o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10"
}

/// Run `cmd` on `host` as its account; (success, stdout).
fn on(live: &Live, host: &str, cmd: &str) -> (bool, String, String) {
    let out = live.run_as(host, account(host), cmd);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn authorized_keys(live: &Live, host: &str) -> String {
    String::from_utf8(
        live.cluster
            .read_file(host, account(host), ".ssh/authorized_keys")
            .unwrap_or_default(),
    )
    .unwrap()
}

fn line_of(text: &str, source: &str) -> String {
    let marker = format!("/{source}");
    text.lines()
        .find(|l| l.ends_with(&marker) && l.contains(" trustmesh:"))
        .unwrap_or_else(|| panic!("no line for {source} in:\n{text}"))
        .to_string()
}

#[test]
fn sftp_only_and_source_restricted_edges_hold_and_nothing_more() {
    let live = start(
        WORKERS
            .iter()
            .map(|w| HostSpec::new(w, &[WORKER_USER]))
            .collect(),
    );
    live.manager_keygen();
    for w in WORKERS {
        live.authorize_manager_on(w);
        let own = format!("Host *\n    BindAddress {}\n", live.addr(w));
        live.cluster
            .write_file(w, WORKER_USER, ".ssh/config", own.as_bytes(), 0o600)
            .unwrap();
    }
    let extra = "reverse: [w01, { worker: w02, sftp_only: true }]\nmesh:\n  - [w03, w04]\noptions: { restrict_source: true }\n";
    let inv = live.inventory(&WORKERS, extra, &|_| String::new());
    live.write_inventory(&inv);

    // The manager's address is not where workers see it come from: every
    // worker is refused, before anything is written.
    let before = live.snapshot();
    let ran = live
        .run(&["plan", "--accept-new-host-keys", "--json"])
        .expect_exit(1);
    let plan = ran.json();
    for n in plan["nodes"].as_array().unwrap().iter().skip(1) {
        assert_eq!(n["status"], "blocked", "{n}");
        let hint = n["hint"].as_str().unwrap();
        assert!(
            hint.contains("add 127.0.0.1 to `source_addresses:` of manager"),
            "{hint}"
        );
    }
    assert_eq!(before, live.snapshot(), "a refused plan writes nothing");

    let inv = inv.replacen(
        &format!("  user: {MANAGER_USER}\n"),
        &format!("  user: {MANAGER_USER}\n  source_addresses: [127.0.0.1]\n"),
        1,
    );
    live.write_inventory(&inv);
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);

    let manager = live.cluster.host("manager");
    let to_manager = format!("-P {} {MANAGER_USER}@{}", manager.port, manager.address);
    // w02: a listing of the manager's home over SFTP, and no shell.
    let (ok, _, err) = on(
        &live,
        "w02",
        &format!("printf 'ls\\n' | sftp -b - {} {to_manager}", ssh_opts()),
    );
    assert!(ok, "sftp from w02: {err}");
    let shell = format!(
        "ssh {} -p {} {MANAGER_USER}@{} hostname </dev/null",
        ssh_opts(),
        manager.port,
        manager.address
    );
    let (_, out, _) = on(&live, "w02", &shell);
    assert!(
        !out.contains("manager"),
        "w02 got a shell on the manager: {out:?}"
    );
    // w01: a full edge.
    let (ok, out, err) = on(&live, "w01", &shell);
    assert!(ok && out.trim() == "manager", "w01: {out:?} {err}");

    // Each line carries its source's address; sshd holds to it.
    let w04 = authorized_keys(&live, "w04");
    assert!(
        line_of(&w04, "w03").starts_with(&format!("from=\"{}\" ", live.addr("w03"))),
        "{w04}"
    );
    // The manager's key was put there by hand: that line is not
    // trustmesh's to change, and the plan says it grants more.
    assert!(w04.contains(" alice@manager\n"), "{w04}");
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    let warned = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "w04")
        .map(|n| n["warnings"].to_string())
        .unwrap();
    assert!(
        warned.contains("manager's key is let in by a line trustmesh did not write"),
        "{warned}"
    );
    let w04h = live.cluster.host("w04");
    let to_w04 = format!(
        "ssh {} -p {} {WORKER_USER}@{} true",
        ssh_opts(),
        w04h.port,
        w04h.address
    );
    let (ok, _, err) = on(&live, "w03", &to_w04);
    assert!(ok, "w03 -> w04 from w03's address: {err}");
    let (ok, _, _) = on(
        &live,
        "w03",
        &to_w04.replace("ssh ", "ssh -o BindAddress=127.0.0.1 "),
    );
    assert!(!ok, "w03's key must not open w04 from another address");
    let manager_keys = authorized_keys(&live, "manager");
    assert!(
        line_of(&manager_keys, "w02").starts_with(&format!(
            "restrict,command=\"internal-sftp\",from=\"{}\" ",
            live.addr("w02")
        )),
        "{manager_keys}"
    );

    let report = live.run(&["verify", "--json"]).expect_exit(0).json();
    assert_eq!(report["summary"]["fail"], 0, "{report}");
    let w02_edge = report["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["source"] == "w02" && e["target"] == "manager")
        .unwrap();
    assert_eq!(
        w02_edge["policy"],
        format!("sftp-only, from {}", live.addr("w02")),
        "{w02_edge}"
    );
    assert_eq!(w02_edge["status"], "ok", "{w02_edge}");

    // An admin hardens w01's line by hand; then restrict_source goes off.
    let w01_line = line_of(&manager_keys, "w01");
    let hardened = w01_line.replacen("from=", "no-port-forwarding,from=", 1);
    let edited = manager_keys.replace(&w01_line, &hardened);
    live.cluster
        .write_file(
            "manager",
            MANAGER_USER,
            ".ssh/authorized_keys",
            edited.as_bytes(),
            0o600,
        )
        .unwrap();
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    live.write_inventory(&inv.replace("options: { restrict_source: true }\n", ""));
    live.run(&["apply", "--yes"]).expect_exit(0);
    let manager_keys = authorized_keys(&live, "manager");
    let w01_after = line_of(&manager_keys, "w01");
    assert!(
        w01_after.starts_with("no-port-forwarding ssh-ed25519 "),
        "{manager_keys}"
    );
    assert!(
        line_of(&manager_keys, "w02").starts_with("restrict,command=\"internal-sftp\" ssh-"),
        "{manager_keys}"
    );
    assert!(line_of(&authorized_keys(&live, "w04"), "w03").starts_with("ssh-ed25519 "));
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let report = live.run(&["verify", "--json"]).expect_exit(0).json();
    assert_eq!(report["summary"]["fail"], 0, "{report}");
}
