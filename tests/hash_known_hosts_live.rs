//! `options.hash_known_hosts` on real sshd hosts: managed known_hosts lines
//! hashed on every node, found by `ssh-keygen -F`, every edge holding with
//! strict host key checking, a second plan empty, and switching the option
//! off rewriting only the managed lines.
#![cfg(feature = "live")]

mod live;

use live::*;

/// A line about another host, written by hand in clear, a hashed one
/// (`ssh-keygen -H` style) and a comment: never touched.
fn foreign_lines() -> String {
    let key = "AAAAC3NzaC1lZDI1NTE5AAAAILR3a5jM8SZ8lYOJdn7V/F7IREASeVBrlnE+CfwVv2LW";
    format!(
        "# written by hand\n198.51.100.9 ssh-ed25519 {key}\n{} ssh-ed25519 {key} bob@laptop\n",
        trustmesh::formats::known_hosts::hash_host_name("198.51.100.10", [7u8; 20])
    )
}

/// The edges' sources, their account, and the hosts each must know.
const KNOWS: &[(&str, &[&str])] = &[
    ("manager", &["node1", "node2", "node3"]),
    ("node1", &["manager", "node2", "node3"]),
    ("node2", &["node1", "node3"]),
    ("node3", &["node1", "node2"]),
];

fn known_hosts(live: &Live, host: &str) -> String {
    let bytes = live
        .cluster
        .read_file(host, account(host), ".ssh/known_hosts")
        .unwrap_or_default();
    String::from_utf8(bytes).expect("UTF-8 known_hosts")
}

fn is_managed(line: &str) -> bool {
    line.split_whitespace()
        .last()
        .is_some_and(|c| c.starts_with("trustmesh:manager/"))
}

/// The foreign lines of a file, in order.
fn foreign_of(text: &str) -> Vec<&str> {
    text.split_inclusive('\n')
        .filter(|l| !is_managed(l))
        .collect()
}

#[test]
fn hashed_known_hosts_converge_verify_and_switch_back() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("node2", &[WORKER_USER]).port(2222),
        HostSpec::new("node3", &[WORKER_USER]),
    ]);
    live.manager_keygen();
    for w in ["node1", "node2", "node3"] {
        live.authorize_manager_on(w);
    }
    for (host, _) in KNOWS {
        live.cluster
            .write_file(
                host,
                account(host),
                ".ssh/known_hosts",
                foreign_lines().as_bytes(),
                0o644,
            )
            .unwrap();
    }
    let edges = "reverse: [node1]\nmesh:\n  - [node1, node2, node3]\n";
    let inventory = |hash: bool| {
        live.inventory(
            &["node1", "node2", "node3"],
            &format!("{edges}options:\n  hash_known_hosts: {hash}\n"),
            &|_| String::new(),
        )
    };
    live.write_inventory(&inventory(true));

    let plan = live
        .run(&["plan", "--accept-new-host-keys", "--detailed-exitcode"])
        .expect_exit(2);
    assert!(!plan.stdout.contains("not handled yet"), "{}", plan.stdout);
    let n2 = live.cluster.host("node2");
    assert!(
        plan.stdout
            .contains(&format!("  (hashed: [{}]:2222)", n2.address)),
        "{}",
        plan.stdout
    );
    // A saved plan is applied only when a fresh plan equals it: the
    // hashed lines come out the same in both (no random salt).
    live.run(&["plan", "--accept-new-host-keys", "--out", "saved.json"])
        .expect_exit(0);
    live.run(&["apply", "--accept-new-host-keys", "--plan", "saved.json"])
        .expect_exit(0);

    let addresses: Vec<String> = ["manager", "node1", "node2", "node3"]
        .iter()
        .map(|h| live.addr(h))
        .collect();
    let mut hashed_files = Vec::new();
    for (host, targets) in KNOWS {
        let text = known_hosts(&live, host);
        let managed: Vec<&str> = text.lines().filter(|l| is_managed(l)).collect();
        // One line per host key (ed25519 and ecdsa) of each target.
        assert_eq!(managed.len(), 2 * targets.len(), "{host}:\n{text}");
        for l in &managed {
            assert!(l.starts_with("|1|"), "{host}: {l}");
            for a in &addresses {
                assert!(!l.contains(a.as_str()), "{host}: clear name in {l}");
            }
        }
        assert!(text.starts_with(&foreign_lines()), "{host}:\n{text}");
        // ssh-keygen finds each target under its name.
        for t in *targets {
            let name = live.cluster.host(t).known_hosts_name();
            let out = live.run_as(
                host,
                account(host),
                &format!("ssh-keygen -F '{name}' -f ~/.ssh/known_hosts"),
            );
            let found = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{host}: ssh-keygen -F {name}: {found}"
            );
            assert_eq!(
                found.lines().filter(|l| l.starts_with("|1|")).count(),
                2,
                "{host}: ssh-keygen -F {name}:\n{found}"
            );
        }
        hashed_files.push(text);
    }
    // Every edge holds with strict host key checking, and nothing is left
    // to do.
    let verify = live.run(&["verify"]).expect_exit(0);
    assert!(
        verify.stdout.contains("Verify: 10 of 10 edges hold."),
        "{}",
        verify.stdout
    );
    assert!(live.can_ssh("node3", "node2"));
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);

    // Off again: the managed lines come back in clear; the rest of each
    // file stays byte for byte.
    live.write_inventory(&inventory(false));
    let plan = live.run(&["plan", "--detailed-exitcode"]).expect_exit(2);
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 20 to change, 0 to remove."),
        "{}",
        plan.stdout
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    for ((host, targets), hashed) in KNOWS.iter().zip(&hashed_files) {
        let text = known_hosts(&live, host);
        assert_eq!(foreign_of(&text), foreign_of(hashed), "{host}");
        let managed: Vec<&str> = text.lines().filter(|l| is_managed(l)).collect();
        assert_eq!(managed.len(), 2 * targets.len(), "{host}:\n{text}");
        for t in *targets {
            let name = live.cluster.host(t).known_hosts_name();
            let clear = managed
                .iter()
                .filter(|l| l.starts_with(&format!("{name} ")))
                .count();
            assert_eq!(clear, 2, "{host} -> {t}:\n{text}");
        }
    }
    live.run(&["verify"]).expect_exit(0);
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
