#![cfg(feature = "live")]
//! User certificates on real sshd hosts (#22 part 2): a mesh group of 6
//! converges in certificate mode; plain `ssh` works on every wanted edge
//! (with the certificate ssh picks up beside the key) and on no other
//! (sampled); each target's authorized_keys holds one `cert-authority`
//! line, not one line per peer; a 7th worker changes no other worker's
//! authorized_keys (the plan shows it, the bytes prove it); a retired
//! worker's node principal is gone everywhere and the plan says until when
//! its certificate stays valid; a certificate issued with `validity: 2m`
//! is warned about by verify and renewed by the next apply once its
//! window opens.

mod live;

use std::time::{Duration, Instant};

use live::*;
use trustmesh::model::inventory::expiry::{system_now, unix_seconds};

const WORKERS: [&str; 7] = [
    "node1", "node2", "node3", "node4", "node5", "node6", "node7",
];

fn read(live: &Live, host: &str, file: &str) -> String {
    live.read_text(host, file)
}

fn authorized_keys(live: &Live, host: &str) -> String {
    read(live, host, ".ssh/authorized_keys")
}

fn certificate(live: &Live, host: &str) -> ssh_key::Certificate {
    let text = read(live, host, ".ssh/id_ed25519-cert.pub");
    ssh_key::Certificate::from_openssh(text.trim())
        .unwrap_or_else(|e| panic!("{host}'s certificate ({e}): {text:?}"))
}

/// The inventory of `workers`, all in group g, with `extra` and the
/// certificates' `settings`.
fn write(live: &Live, workers: &[&str], extra: &str, settings: &str) {
    let text = live.inventory(
        workers,
        &format!("mesh:\n  - group: g\n{extra}certificates: {settings}\n"),
        &|_| "    groups: [g]\n".to_string(),
    );
    live.write_inventory(&text);
}

/// Whether the plan changes `host`'s authorized_keys.
fn edits_authorized_keys(plan: &serde_json::Value, host: &str) -> bool {
    plan_changes(plan, host).iter().any(|c| {
        c["action"] == "edit_file" && c["path"] == "~/.ssh/authorized_keys"
            || c["action"] == "issue_certificate"
    })
}

#[test]
fn a_mesh_group_converges_on_certificates_grows_retires_and_renews() {
    let hosts: Vec<_> = WORKERS.iter().map(|w| worker(w)).collect();
    let live = provisioned_with(hosts, "");
    let six = &WORKERS[..6];
    let settings = "{ ca: ~/.ssh/trustmesh_ca, validity: 1h, renew_before: 10m }";
    write(&live, six, "", settings);

    // The first plan makes the CA and a certificate per worker.
    let text = live
        .run(&["plan", "--accept-new-host-keys"])
        .expect_exit(0)
        .stdout;
    assert!(
        text.contains("+ create user CA on the manager: ~/.ssh/trustmesh_ca"),
        "{text}"
    );
    assert!(text.contains("+ issue certificate for node3"), "{text}");
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let ca = read(&live, "manager", ".ssh/trustmesh_ca.pub");
    assert!(ca.ends_with(" trustmesh-ca:manager\n"), "{ca}");
    let ca_key = ca.split(' ').nth(1).unwrap().to_string();

    // One CA line per worker, no line per peer; the manager's own line.
    for w in six {
        let ak = authorized_keys(&live, w);
        let ca_lines: Vec<&str> = ak
            .lines()
            .filter(|l| l.contains("cert-authority"))
            .collect();
        assert_eq!(ca_lines.len(), 1, "{w}:\n{ak}");
        assert!(
            ca_lines[0].starts_with("cert-authority,principals=\"manager:group:g\" ssh-ed25519 ")
                && ca_lines[0].contains(&ca_key),
            "{w}:\n{ak}"
        );
        assert_eq!(ak.lines().count(), 2, "{w}:\n{ak}");
        for peer in six {
            assert!(
                !ak.contains(&format!("trustmesh:manager/{peer}")),
                "{w}:\n{ak}"
            );
        }
        let c = certificate(&live, w);
        assert_eq!(c.key_id(), format!("trustmesh:manager/{w}"));
        assert_eq!(c.valid_principals(), ["manager:group:g"]);
    }
    // Plain ssh on every wanted edge; none back to the manager.
    for a in six {
        for b in six {
            if a != b {
                assert!(live.can_ssh(a, b), "{a} -> {b}");
            }
        }
        assert!(live.can_ssh("manager", a));
    }
    assert!(
        !live.can_ssh("node1", "manager"),
        "no edge node1 -> manager"
    );
    live.run(&["verify"]).expect_exit(0);

    // A 7th worker: the plan changes no other worker's authorized_keys
    // nor certificate, and the files' bytes stay.
    let before: Vec<String> = six.iter().map(|w| authorized_keys(&live, w)).collect();
    write(&live, &WORKERS, "reverse:\n  - node7\n", settings);
    let plan = live
        .run(&["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(0)
        .json();
    for w in six {
        assert!(!edits_authorized_keys(&plan, w), "{w}: {plan:#}");
    }
    assert!(edits_authorized_keys(&plan, "node7"), "{plan:#}");
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    let after: Vec<String> = six.iter().map(|w| authorized_keys(&live, w)).collect();
    assert_eq!(before, after, "no other worker's authorized_keys changed");
    assert!(live.can_ssh("node7", "node1") && live.can_ssh("node1", "node7"));
    assert!(
        live.can_ssh("node7", "manager"),
        "reverse edge by certificate"
    );
    let manager = authorized_keys(&live, "manager");
    assert!(
        manager.contains("principals=\"manager:node:node7\""),
        "{manager}"
    );

    // node7 retired: its node principal goes everywhere, and the plan says
    // until when its certificate (group g) stays valid.
    write(&live, six, "", settings);
    let text = live.run(&["plan"]).expect_exit(0).stdout;
    assert!(
        text.contains("certificates: node7 left the inventory: its node principal is removed everywhere, but a certificate trustmesh issued stays valid until"),
        "{text}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    for h in [
        "manager", "node1", "node2", "node3", "node4", "node5", "node6",
    ] {
        let ak = authorized_keys(&live, h);
        assert!(!ak.contains("node7"), "{h}:\n{ak}");
    }
    assert!(
        !live.can_ssh("node7", "manager"),
        "its node principal is gone"
    );

    // A 2-minute certificate (the 1-hour ones re-issued for it) is
    // renewed once its window opens; verify warns of it first.
    let short = "{ ca: ~/.ssh/trustmesh_ca, validity: 2m, renew_before: 1m }";
    write(&live, six, "", short);
    let text = live.run(&["plan"]).expect_exit(0).stdout;
    assert!(
        text.contains("~ re-issue certificate of node2 (validity 2m)"),
        "{text}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    let first = certificate(&live, "node2");
    assert!(
        first.valid_before() - first.valid_after() <= 120 + 300,
        "{first:?}"
    );
    let opens = first.valid_before() - 60;
    let deadline = Instant::now() + Duration::from_secs(240);
    while (unix_seconds(system_now()) as u64) < opens + 1 {
        assert!(Instant::now() < deadline, "the window did not open in time");
        std::thread::sleep(Duration::from_millis(200));
    }
    let text = live.run(&["verify"]).expect_exit(0).stdout;
    assert!(text.contains("node2's certificate ends in"), "{text}");
    let text = live.run(&["plan"]).expect_exit(0).stdout;
    assert!(
        text.contains("~ renew certificate of node2 (ends in"),
        "{text}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    let renewed = certificate(&live, "node2");
    assert!(renewed.valid_before() > first.valid_before(), "{renewed:?}");
    assert!(renewed.serial() > first.serial());
    assert!(live.can_ssh("node2", "node5"));
}
