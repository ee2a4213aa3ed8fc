//! Host keys only as sshd proves them (issue 19), against real sshd hosts:
//! what a node's account reports about its host keys is a hint; what is
//! written into any known_hosts is what the node's sshd proved to
//! trustmesh's own verified connection (`UpdateHostKeys` on a known_hosts
//! file of the run), each key's fingerprint shown in the plan.
#![cfg(feature = "live")]

mod live;

use live::*;
use trustmesh::formats::known_hosts::fingerprint_sha256;

/// Every known_hosts file of the cluster's accounts, as text.
fn all_known_hosts(live: &Live, hosts: &[&str]) -> String {
    hosts
        .iter()
        .map(|h| {
            let bytes = live
                .cluster
                .read_file(h, account(h), ".ssh/known_hosts")
                .unwrap_or_default();
            format!("== {h}\n{}", String::from_utf8_lossy(&bytes))
        })
        .collect()
}

/// A fresh ed25519 public key blob (an attacker's), made on the test machine.
fn some_key() -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// The issue's attack: the worker account's PATH puts `~/bin` first, and
/// `~/bin/sh` runs the real `sh` and adds one `hostkey` record to what the
/// probe prints.
#[test]
fn a_path_wrapper_adding_a_host_key_to_the_probe_writes_nothing_and_is_named() {
    let live = provisioned("mesh:\n  - [node1, node2, node3]\n");
    let attacker = some_key();
    let record = format!("ssh-ed25519 {attacker} trustmesh:inventory/node1");
    let wrapper = format!(
        r#"#!/bin/sh
out=$(/bin/sh "$@")
st=$?
rec='{record}'
n=$(printf '%s\n' "$rec" | wc -c)
REC=$(printf 'hostkey\ndata %s\n%s\n\nend 0' $n "$rec") ; export REC
printf '%s\n' "$out" | awk '$0 == "TRUSTMESH-PROBE-END" {{ print ENVIRON["REC"] }} {{ print }}'
exit $st
"#
    );
    let setup = format!(
        "mkdir -p ~/bin && cat > ~/bin/sh <<'EOF'\n{wrapper}EOF\nchmod 755 ~/bin/sh && printf '%s\\n' 'PATH=\"$HOME/bin:$PATH\"; export PATH' > ~/.bashrc"
    );
    let out = live.run_as("node1", WORKER_USER, &setup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let fp = fingerprint_sha256(&attacker).unwrap();
    let plan = live
        .run(&["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(0);
    let doc = plan.json();
    // The wrapper did take effect: node1's plan names the unproven key.
    let warnings = plan_node(&doc, "node1")["warnings"].to_string();
    assert!(
        warnings.contains("unproven host key") && warnings.contains(&fp),
        "{doc:#}"
    );
    for other in ["manager", "node2", "node3"] {
        assert!(
            !plan_node(&doc, other)["warnings"].to_string().contains(&fp),
            "{other}: {doc:#}"
        );
    }
    assert!(!plan.stdout.contains(&attacker), "{}", plan.stdout);
    let text = live.run(&["plan", "--accept-new-host-keys"]).expect_exit(0);
    assert!(text.stdout.contains(&fp), "{}", text.stdout);

    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    let hosts = ["manager", "node1", "node2", "node3"];
    let written = all_known_hosts(&live, &hosts);
    assert!(!written.contains(&attacker), "{written}");
    // node1's real keys were written on its peers, and they work.
    for k in live.cluster.host_public_keys("node1").unwrap() {
        let blob = k.split_whitespace().nth(1).unwrap();
        assert!(written.matches(blob).count() >= 3, "{written}");
    }
    assert!(live.can_ssh("node2", "node1"));
}

/// A node whose sshd has ed25519, ecdsa and rsa keys: the manager trusts
/// only its ed25519 key; the others are proven by sshd to trustmesh's
/// connection and written on its peers and the manager, each fingerprint
/// in the plan. The manager's own known_hosts changes only through apply.
#[test]
fn every_proven_key_of_a_three_key_host_is_written_with_its_fingerprint() {
    let live = start_with(vec![worker("node1"), worker("node2").port(2222)], |spec| {
        ClusterSpec {
            host_key_types: vec!["ed25519".into(), "ecdsa".into(), "rsa".into()],
            ..spec
        }
    });
    live.manager_key_on(&["node1", "node2"]);
    live.write_inventory_of(&["node1", "node2"], "mesh:\n  - [node1, node2]\n");
    // The manager trusts only each worker's ed25519 key.
    let mut kh = String::new();
    for w in ["node1", "node2"] {
        for l in live.cluster.known_hosts_lines(w).unwrap() {
            if l.contains(" ssh-ed25519 ") {
                kh.push_str(&l);
                kh.push('\n');
            }
        }
    }
    live.cluster
        .write_file(
            "manager",
            MANAGER_USER,
            ".ssh/known_hosts",
            kh.as_bytes(),
            0o600,
        )
        .unwrap();

    let plan = live.run(&["plan", "--json"]).expect_exit(0);
    let doc = plan.json();
    let text = live.run(&["plan"]).expect_exit(0).stdout;
    // Planning changed nothing in the manager's known_hosts.
    let now = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/known_hosts")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&now), kh);
    for (from, to) in [
        ("manager", "node1"),
        ("manager", "node2"),
        ("node1", "node2"),
        ("node2", "node1"),
    ] {
        let edit = plan_change(&doc, from, "edit_file", "~/.ssh/known_hosts");
        let added = edit["add"].as_array().unwrap();
        let keys = live.cluster.host_public_keys(to).unwrap();
        assert_eq!(keys.len(), 3);
        for k in keys {
            let blob = k.split_whitespace().nth(1).unwrap();
            let fp = fingerprint_sha256(blob).unwrap();
            if from == "manager" && k.starts_with("ssh-ed25519 ") {
                // Trusted by hand already: nothing to add.
                assert!(kh.contains(blob));
                continue;
            }
            let line = added
                .iter()
                .find(|l| l["node"] == to && l["base64"] == blob)
                .unwrap_or_else(|| panic!("{from}: no line for {to}'s {k}: {doc:#}"));
            assert_eq!(line["fingerprint"], fp.as_str(), "{line:#}");
            assert!(text.contains(&fp), "{text}");
        }
        assert!(
            !plan_node(&doc, to)["warnings"]
                .to_string()
                .contains("unproven host key"),
            "{doc:#}"
        );
    }

    live.run(&["apply", "--yes"]).expect_exit(0);
    for (from, to) in [("manager", "node1"), ("node1", "node2"), ("node2", "node1")] {
        let kh = live
            .cluster
            .read_file(from, account(from), ".ssh/known_hosts")
            .unwrap();
        let kh = String::from_utf8_lossy(&kh);
        for k in live.cluster.host_public_keys(to).unwrap() {
            let blob = k.split_whitespace().nth(1).unwrap();
            assert!(kh.contains(blob), "{from} lacks {to}'s {k}:\n{kh}");
        }
        assert!(live.can_ssh(from, to), "{from} -> {to}");
    }
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
