//! `verify` against real sshd hosts on the testbed.
//!
//! Trust is set up by hand here (keys made with ssh-keygen on each host,
//! public keys appended to authorized_keys, host keys written into
//! known_hosts), so these tests depend on nothing but the testbed and
//! `verify` itself.
#![cfg(feature = "live")]

mod live;

use std::collections::BTreeMap;

use live::*;

/// Generate an ed25519 key pair on `host`, return its public line.
fn keygen(live: &Live, host: &str) -> String {
    let user = account(host);
    let out = live
        .cluster
        .exec(
            host,
            user,
            &[
                "sh",
                "-c",
                "mkdir -p -m 700 ~/.ssh && { test -f ~/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519; } && cat ~/.ssh/id_ed25519.pub",
            ],
        )
        .expect("run ssh-keygen");
    assert!(
        out.status.success(),
        "keygen on {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The files that make a set of edges hold, per (host, file).
#[derive(Default)]
struct Trust {
    files: BTreeMap<(String, &'static str), String>,
    keys: BTreeMap<String, String>,
}

impl Trust {
    /// Make `source -> target` hold: the source's key in the target's
    /// authorized_keys (unless `authorize` is false), the target's host keys
    /// in the source's known_hosts.
    fn edge(&mut self, live: &Live, source: &str, target: &str, authorize: bool) {
        if authorize {
            let key = match self.keys.get(source) {
                Some(k) => k.clone(),
                None => keygen(live, source),
            };
            self.keys.insert(source.to_string(), key.clone());
            self.add(target, ".ssh/authorized_keys", &key);
        }
        for line in live.cluster.known_hosts_lines(target).expect("host keys") {
            self.add(source, ".ssh/known_hosts", &line);
        }
    }

    fn add(&mut self, host: &str, file: &'static str, line: &str) {
        let text = self.files.entry((host.to_string(), file)).or_default();
        text.push_str(line);
        text.push('\n');
    }

    fn write(&self, live: &Live) {
        for ((host, file), text) in &self.files {
            live.cluster
                .write_file(host, account(host), file, text.as_bytes(), 0o600)
                .expect("write trust file");
        }
    }
}

const WORKERS: [&str; 3] = ["node1", "node2", "node3"];

/// manager, node1, node2 (port 2222), node3; reverse node1 -> manager; a
/// full mesh of the three: 3 forward + 1 reverse + 6 mesh = 10 edges.
fn cluster() -> Live {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]).port(2222),
        HostSpec::new("node3", &[WORKER_USER]),
    ]);
    live.write_inventory_of(
        &WORKERS,
        "reverse: [node1]\nmesh:\n  - [node1, node2, node3]\n",
    );
    live
}

/// Every edge of [`cluster`], but `skip_auth` is left out of the target's
/// authorized_keys.
fn trust_everything(live: &Live, skip_auth: Option<(&str, &str)>) -> Trust {
    let mut t = Trust::default();
    let mut edges = vec![("node1", "manager")];
    for w in WORKERS {
        edges.push(("manager", w));
        for v in WORKERS {
            if v != w {
                edges.push((w, v));
            }
        }
    }
    for (s, d) in edges {
        t.edge(live, s, d, skip_auth != Some((s, d)));
    }
    t
}

/// Lines that name a failing edge (`a -> b (kind): ...`).
fn failure_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| l.contains(" -> ") && l.contains("): "))
        .collect()
}

/// Is there an edge `source -> target` in the JSON report?
fn has_edge(doc: &serde_json::Value, source: &str, target: &str) -> bool {
    doc["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .any(|e| e["source"] == source && e["target"] == target)
}

/// The JSON edges that do not hold, as `(source, target)`.
fn not_holding(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .filter(|e| e["ok"] != true)
        .map(|e| {
            let name = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (name("source"), name("target"))
        })
        .collect()
}

/// The JSON summary of a report with these counts.
fn summary(edges: u32, hold: u32, fail: u32, not_tried: u32) -> serde_json::Value {
    serde_json::json!({"edges": edges, "hold": hold, "fail": fail, "not_tried": not_tried})
}

#[test]
fn every_edge_holds_and_exit_is_zero() {
    let live = cluster();
    trust_everything(&live, None).write(&live);

    let Ran { stdout, .. } = live.run(&["verify", "--timeout", "5"]).expect_exit(0);
    assert!(
        stdout.ends_with("\nVerify: 10 of 10 edges hold.\n"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0], "         manager  node1  node2  node3",
        "{stdout}"
    );
    assert_eq!(lines[1], "manager  -        ok     ok     ok", "{stdout}");
    assert_eq!(lines[2], "node1    ok       -      ok     ok", "{stdout}");
    assert_eq!(lines[3], "node2    -        ok     -      ok", "{stdout}");
    assert_eq!(lines[4], "node3    -        ok     ok     -", "{stdout}");
    assert!(failure_lines(&stdout).is_empty(), "{stdout}");

    let doc = live
        .run(&["verify", "--json", "--timeout", "5"])
        .expect_exit(0)
        .json();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["summary"], summary(10, 10, 0, 0), "{doc:#}");
    assert!(doc["edges"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["ok"] == true && e["status"] == "ok" && e.get("reason").is_none()));
    assert_eq!(verify_edge(&doc, "node1", "manager")["kind"], "reverse");
    assert_eq!(verify_edge(&doc, "node3", "node2")["kind"], "mesh");

    // --limit: the manager, node1, node2 and the edges between them.
    let doc = live
        .run(&["verify", "--json", "--limit", "node1,node2"])
        .expect_exit(0)
        .json();
    assert_eq!(doc["summary"], summary(5, 5, 0, 0), "{doc:#}");
    assert_eq!(
        doc["nodes"],
        serde_json::json!(["manager", "node1", "node2"]),
        "{doc:#}"
    );
    assert!(
        doc["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] != "node3" && e["target"] != "node3"),
        "{doc:#}"
    );
}

#[test]
fn a_missing_authorized_key_fails_exactly_that_edge() {
    let live = cluster();
    trust_everything(&live, Some(("node3", "node2"))).write(&live);

    let doc = live
        .run(&["verify", "--json", "--timeout", "5"])
        .expect_exit(1)
        .json();
    assert_eq!(
        not_holding(&doc),
        [("node3".to_string(), "node2".to_string())],
        "{doc:#}"
    );
    let e = verify_edge(&doc, "node3", "node2");
    assert_eq!(e["ok"], false);
    assert_eq!(e["status"], "fail");
    assert_eq!(e["failure"], "auth_rejected");
    assert_eq!(e["kind"], "mesh");
    let reason = e["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the node does not accept the key ("),
        "{doc:#}"
    );
    assert!(reason.contains("Permission denied"), "{doc:#}");
    assert!(
        !e["hint"].as_str().unwrap_or_default().is_empty(),
        "{doc:#}"
    );
    // node3's row: no edge to the manager, node1 holds, node2 fails.
    assert!(!has_edge(&doc, "node3", "manager"), "{doc:#}");
    assert_eq!(
        verify_edge(&doc, "node3", "node1")["status"],
        "ok",
        "{doc:#}"
    );
    assert_eq!(doc["summary"], summary(10, 9, 1, 0), "{doc:#}");
}

#[test]
fn a_stale_known_hosts_on_a_source_fails_that_edge_on_the_host_key() {
    let mut live = cluster();
    let old = live.cluster.known_hosts_lines("node3").unwrap();
    live.cluster.rekey("node3").unwrap();
    let mut trust = trust_everything(&live, None);
    // node2 still trusts node3's key from before the reinstall.
    let key = (String::from("node2"), ".ssh/known_hosts");
    let mut kh: String = live
        .cluster
        .known_hosts_lines("node1")
        .unwrap()
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    for l in &old {
        kh.push_str(&format!("{l}\n"));
    }
    trust.files.insert(key, kh);
    trust.write(&live);

    let doc = live
        .run(&["verify", "--json", "--timeout", "5"])
        .expect_exit(1)
        .json();
    assert_eq!(
        not_holding(&doc),
        [("node2".to_string(), "node3".to_string())],
        "{doc:#}"
    );
    let name = live.cluster.host("node3").known_hosts_name();
    let e = verify_edge(&doc, "node2", "node3");
    assert_eq!(e["kind"], "mesh", "{doc:#}");
    assert_eq!(e["status"], "fail", "{doc:#}");
    assert_eq!(e["failure"], "host_key_changed", "{doc:#}");
    assert_eq!(
        e["reason"],
        format!("the host key of node3 ({name}) differs from the one in node2's known_hosts"),
        "{doc:#}"
    );
    assert!(
        e["hint"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("`ssh-keygen -R '{name}'`")),
        "{doc:#}"
    );
    assert_eq!(doc["summary"], summary(10, 9, 1, 0), "{doc:#}");
    assert_eq!(verify_edge(&doc, "node1", "node3")["ok"], true);
}

#[test]
fn edges_from_an_unreachable_source_are_not_tried() {
    let live = cluster();
    trust_everything(&live, None).write(&live);
    live.cluster.freeze("node3").unwrap();
    let started = std::time::Instant::now();
    let ran = live.run(&["verify", "--json", "--timeout", "2"]);
    let took = started.elapsed();
    live.cluster.thaw("node3").unwrap();
    let doc = ran.expect_exit(1).json();
    for (target, reason) in [
        ("node1", "source unreachable (at connect: "),
        ("node2", "source unreachable"),
    ] {
        let e = verify_edge(&doc, "node3", target);
        assert_eq!(e["kind"], "mesh", "{doc:#}");
        assert_eq!(e["status"], "not_tried", "{doc:#}");
        assert!(
            e["reason"].as_str().unwrap_or_default().starts_with(reason),
            "{doc:#}"
        );
    }
    // node3 has no edge to the manager.
    assert!(!has_edge(&doc, "node3", "manager"), "{doc:#}");
    // Edges towards the hung host are tried, and fail in time.
    for src in ["manager", "node1", "node2"] {
        let kind = if src == "manager" { "forward" } else { "mesh" };
        let e = verify_edge(&doc, src, "node3");
        assert_eq!(e["kind"], kind, "{doc:#}");
        assert_eq!(e["status"], "fail", "{doc:#}");
    }
    assert_eq!(doc["summary"], summary(10, 5, 3, 2), "{doc:#}");
    // Not a timing assertion: a hung host must not hang the run.
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
}

#[test]
fn a_node_behind_a_bastion_is_verified_through_it() {
    let live = start(vec![
        HostSpec::new("gw", &[WORKER_USER]),
        HostSpec::new("hidden", &[WORKER_USER]).behind("gw"),
    ]);
    let mut t = Trust::default();
    t.edge(&live, "manager", "gw", true);
    t.edge(&live, "manager", "hidden", true);
    t.write(&live);
    let gw = live.cluster.host("gw");
    let hidden = live.cluster.host("hidden");
    live.write_inventory(&format!(
        "version: 1\ndefaults: {{user: {WORKER_USER}}}\nmanager: {{name: manager, address: {}, user: {MANAGER_USER}}}\nbastions:\n  - {{name: gw, address: {}, port: {}}}\nworkers:\n  - {{name: hidden, address: {}, port: {}, jump: gw}}\n",
        live.addr("manager"),
        gw.address,
        gw.port,
        hidden.address,
        hidden.port
    ));
    let doc = live
        .run(&["verify", "--json", "--timeout", "5"])
        .expect_exit(0)
        .json();
    assert_eq!(doc["summary"], summary(2, 2, 0, 0), "{doc:#}");
}

/// A full mesh of 5 workers through a window of 3 attempts at once: 25
/// edges, queued and all tried. (The testbed's sshd allows `MaxStartups
/// 100:30:200` and `MaxSessions 64`, so the per-target and per-source caps
/// themselves cannot be shown to matter here.)
#[test]
fn a_full_mesh_is_tried_through_a_small_window() {
    let names: Vec<String> = (1..=5).map(|i| format!("w{i}")).collect();
    let live = start(
        names
            .iter()
            .map(|n| HostSpec::new(n, &[WORKER_USER]))
            .collect(),
    );
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    live.write_inventory_of(&refs, "mesh:\n  - group: all\n");
    let mut t = Trust::default();
    for w in &refs {
        t.edge(&live, "manager", w, true);
        for v in &refs {
            if v != w {
                t.edge(&live, w, v, true);
            }
        }
    }
    t.write(&live);
    let doc = live
        .run(&["verify", "--json", "--concurrency", "3", "--timeout", "10"])
        .expect_exit(0)
        .json();
    assert_eq!(doc["summary"], summary(25, 25, 0, 0), "{doc:#}");
}

/// Run `argv` on the manager as its account, in its home, under an
/// ssh-agent (its `SSH_AUTH_SOCK` in the environment) holding the key
/// `~/agent_key`. The agent lives as long as the command.
fn under_agent(live: &Live, argv: &[&str]) -> std::process::Output {
    let mut full = vec![
        "sh",
        "-c",
        "cd ~ && exec ssh-agent sh -c 'ssh-add -q ~/agent_key || exit 97; exec \"$@\"' sh \"$@\"",
        "sh",
    ];
    full.extend_from_slice(argv);
    live.cluster
        .exec("manager", MANAGER_USER, &full)
        .expect("run under ssh-agent")
}

/// An agent key never makes an edge hold: verify tries each edge with the
/// source's own key only, the agent switched off, on the jump connection
/// too. The agent holds a key authorized on node1 and on the bastion gw;
/// the manager's own key is authorized only on hidden (behind gw).
#[test]
fn an_agent_key_does_not_make_an_edge_hold() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("gw", &[WORKER_USER]),
        HostSpec::new("hidden", &[WORKER_USER]).behind("gw"),
    ]);
    let out = live.run_as(
        "manager",
        MANAGER_USER,
        "ssh-keygen -q -t ed25519 -N '' -C agent-only -f ~/agent_key && cat ~/agent_key.pub",
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let agent_key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut t = Trust::default();
    t.edge(&live, "manager", "node1", false);
    t.edge(&live, "manager", "gw", false);
    t.edge(&live, "manager", "hidden", true);
    t.add("node1", ".ssh/authorized_keys", &agent_key);
    t.add("gw", ".ssh/authorized_keys", &agent_key);
    t.write(&live);
    let (node1, gw, hidden) = (
        live.cluster.host("node1"),
        live.cluster.host("gw"),
        live.cluster.host("hidden"),
    );
    live.write_inventory(&format!(
        "version: 1\ndefaults: {{user: {WORKER_USER}}}\nmanager: {{name: manager, address: {}, user: {MANAGER_USER}}}\nbastions:\n  - {{name: gw, address: {}, port: {}}}\nworkers:\n  - {{name: node1, address: {}, port: {}}}\n  - {{name: hidden, address: {}, port: {}, jump: gw}}\n",
        live.addr("manager"),
        gw.address,
        gw.port,
        node1.address,
        node1.port,
        hidden.address,
        hidden.port
    ));

    // The control: under the agent, a plain ssh gets in to node1 and, through
    // gw, to hidden.
    let plain = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=5",
    ];
    let node1_dest = format!("{WORKER_USER}@{}", node1.address);
    let node1_port = node1.port.to_string();
    let mut argv = plain.to_vec();
    argv.extend(["-p", &node1_port, &node1_dest, "true"]);
    let out = under_agent(&live, &argv);
    assert!(out.status.success(), "{:?}", text(&out));
    let jump = format!("{WORKER_USER}@{}:{}", gw.address, gw.port);
    let hidden_dest = format!("{WORKER_USER}@{}", hidden.address);
    let hidden_port = hidden.port.to_string();
    let mut argv = plain.to_vec();
    argv.extend(["-J", &jump, "-p", &hidden_port, &hidden_dest, "true"]);
    let out = under_agent(&live, &argv);
    assert!(out.status.success(), "{:?}", text(&out));

    // verify, under the same agent: no edge holds.
    let out = under_agent(
        &live,
        &[
            "env",
            "NO_COLOR=1",
            "TMPDIR=/tmp",
            live.bin(),
            "verify",
            "--json",
            "--timeout",
            "5",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));
    let doc = json(&out);
    for target in ["node1", "gw", "hidden"] {
        let e = verify_edge(&doc, "manager", target);
        assert_eq!(e["ok"], false, "manager -> {target}: {doc}");
        assert_eq!(e["status"], "fail", "manager -> {target}: {doc}");
    }
    assert_eq!(
        verify_edge(&doc, "manager", "node1")["failure"],
        "auth_rejected",
        "{doc}"
    );
    assert_eq!(
        verify_edge(&doc, "manager", "gw")["failure"],
        "auth_rejected",
        "{doc}"
    );
}
