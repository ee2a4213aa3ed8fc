#![cfg(feature = "live")]
//! Rotation in certificate mode on real sshd hosts (#22): `--rotate-keys
//! @ca` keeps every edge working throughout (checked with plain ssh while
//! apply waits between "new CA trusted" and "old CA removed"), and ends
//! with no line trusting the old CA (the files' bytes) and the old CA
//! archived on the manager; then a node's key rotated in certificate mode
//! converges with its edges proven by the new key's certificate.

mod live;

use live::*;

const WORKERS: [&str; 3] = ["node1", "node2", "node3"];

fn read(live: &Live, host: &str, file: &str) -> String {
    live.read_text(host, file)
}

/// The base64 of a public key file's line.
fn blob(live: &Live, host: &str, file: &str) -> String {
    let text = read(live, host, file);
    text.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("{host}:{file}: {text:?}"))
        .to_string()
}

fn certificate(live: &Live, host: &str) -> ssh_key::Certificate {
    let text = read(live, host, ".ssh/id_ed25519-cert.pub");
    ssh_key::Certificate::from_openssh(text.trim())
        .unwrap_or_else(|e| panic!("{host}'s certificate ({e}): {text:?}"))
}

fn signed_by(c: &ssh_key::Certificate) -> String {
    let line = ssh_key::PublicKey::new(c.signature_key().clone(), "")
        .to_openssh()
        .unwrap();
    line.split_whitespace().nth(1).unwrap().to_string()
}

/// Every edge of the mesh, with plain ssh.
fn every_edge_works(live: &Live, when: &str) {
    for a in WORKERS {
        for b in WORKERS.iter().filter(|b| **b != a) {
            assert!(live.can_ssh(a, b), "{when}: {a} -> {b}");
        }
    }
}

/// The workers in one mesh group in certificate mode, applied.
fn converged_group() -> Live {
    let live = provisioned_with(WORKERS.iter().map(|w| worker(w)).collect(), "");
    let text = live.inventory(
        &WORKERS,
        "mesh:\n  - group: g\ncertificates: { ca: ~/.ssh/trustmesh_ca, validity: 1h, renew_before: 10m }\n",
        &|_| "    groups: [g]\n".to_string(),
    );
    live.write_inventory(&text);
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    live
}

#[test]
fn the_ca_rotates_without_breaking_an_edge_and_a_node_key_rotates_on_certificates() {
    let live = converged_group();
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    every_edge_works(&live, "before");
    let old = blob(&live, "manager", ".ssh/trustmesh_ca.pub");

    // The plan names every step.
    let plan = live
        .run(&["plan", "--rotate-keys", "@ca"])
        .expect_exit(0)
        .stdout;
    assert!(
        plan.contains("~ rotate the user CA ~/.ssh/trustmesh_ca"),
        "{plan}"
    );
    assert!(
        plan.contains("4. prove 6 certificate edges with a fresh connection each"),
        "{plan}"
    );

    // Paused before the old CA's lines go: the new CA is in place and
    // trusted beside the old one, every certificate is the new CA's, and
    // every edge works.
    let ran = run_pausing(
        &live,
        "retire",
        &["apply", "--rotate-keys", "@ca", "--yes"],
        &|| {
            let new = blob(&live, "manager", ".ssh/trustmesh_ca.pub");
            assert_ne!(new, old, "the new CA is in place");
            for w in WORKERS {
                let ak = read(&live, w, ".ssh/authorized_keys");
                assert!(ak.contains(&old) && ak.contains(&new), "{w}:\n{ak}");
                assert_eq!(signed_by(&certificate(&live, w)), new, "{w}");
            }
            every_edge_works(&live, "between new CA trusted and old removed");
        },
    )
    .expect_exit(0);
    assert!(ran.stdout.contains("Converged"), "{}", ran.stdout);
    let new = blob(&live, "manager", ".ssh/trustmesh_ca.pub");
    // No line anywhere trusts the old CA; the old pair is archived.
    for h in ["manager", "node1", "node2", "node3"] {
        let ak = read(&live, h, ".ssh/authorized_keys");
        assert!(!ak.contains(&old), "{h} still trusts the old CA:\n{ak}");
    }
    for w in WORKERS {
        assert!(read(&live, w, ".ssh/authorized_keys").contains(&new));
        assert_eq!(signed_by(&certificate(&live, w)), new, "{w}");
    }
    let archived = live.run_as(
        "manager",
        MANAGER_USER,
        "cat ~/.ssh/trustmesh_ca.old-*.pub && test ! -e ~/.ssh/trustmesh_ca.trustmesh-new",
    );
    assert!(
        String::from_utf8_lossy(&archived.stdout).contains(&old),
        "{archived:?}"
    );
    every_edge_works(&live, "after");
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    live.run(&["verify"]).expect_exit(0);

    // A node's key rotated in certificate mode: a certificate for the new
    // key before its proofs, both put in place together.
    let before = blob(&live, "node1", ".ssh/id_ed25519.pub");
    let ran = live
        .run(&["apply", "--rotate-keys", "node1", "--yes"])
        .expect_exit(0);
    assert!(ran.stdout.contains("Converged"), "{}", ran.stdout);
    let after = blob(&live, "node1", ".ssh/id_ed25519.pub");
    assert_ne!(before, after, "node1's key rotated");
    let c = certificate(&live, "node1");
    let key = ssh_key::PublicKey::new(c.public_key().clone(), "")
        .to_openssh()
        .unwrap();
    assert!(key.contains(&after), "the certificate is the new key's");
    every_edge_works(&live, "after node1's rotation");
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    live.run(&["verify"]).expect_exit(0);
}

/// A proof that fails (the new CA's line taken off node3 while apply waits
/// before the proofs): the new CA is not put in place, the old CA stays
/// trusted everywhere, the run is not converged and names the proof; the
/// next plain apply goes back to the old CA and every edge works.
#[test]
fn a_failed_proof_keeps_the_old_ca_and_the_next_apply_goes_back_to_it() {
    let live = converged_group();
    let old = blob(&live, "manager", ".ssh/trustmesh_ca.pub");
    let ran = run_pausing(
        &live,
        "prove",
        &["apply", "--rotate-keys", "@ca", "--yes"],
        &|| {
            // Only the old CA's line stays on node3.
            let cmd = format!(
                "grep -v cert-authority ~/.ssh/authorized_keys > ~/ak; grep '{old}' ~/.ssh/authorized_keys >> ~/ak; \
                 cat ~/ak > ~/.ssh/authorized_keys; rm ~/ak"
            );
            assert!(live.run_as("node3", account("node3"), &cmd).status.success());
        },
    )
    .expect_exit(1);
    assert!(ran.stdout.contains("Not converged"), "{}", ran.stdout);
    assert!(
        ran.stdout.contains(
            "prove the certificate signed by the new user CA with a fresh connection to node3"
        ),
        "{}",
        ran.stdout
    );
    assert_eq!(blob(&live, "manager", ".ssh/trustmesh_ca.pub"), old);
    for w in WORKERS {
        let ak = read(&live, w, ".ssh/authorized_keys");
        assert!(ak.contains(&old), "{w} lost the old CA:\n{ak}");
    }
    assert!(live.can_ssh("node1", "node2") && live.can_ssh("node2", "node1"));

    let ran = live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(ran.stdout.contains("Converged"), "{}", ran.stdout);
    for w in WORKERS {
        let ak = read(&live, w, ".ssh/authorized_keys");
        assert_eq!(ak.matches("cert-authority").count(), 1, "{w}:\n{ak}");
        assert!(ak.contains(&old), "{w}:\n{ak}");
        assert_eq!(signed_by(&certificate(&live, w)), old, "{w}");
    }
    every_edge_works(&live, "after going back to the old CA");

    // The failed rotation's new CA is still on the manager: the next
    // rotation moves it aside (kept) and rotates.
    let plan = live
        .run(&["plan", "--rotate-keys", "@ca"])
        .expect_exit(0)
        .stdout;
    assert!(
        plan.contains("~/.ssh/trustmesh_ca.trustmesh-new (")
            && plan.contains(
                "left by a rotation that did not finish: moved aside to ~/.ssh/trustmesh_ca.old-"
            ),
        "{plan}"
    );
    let ran = live
        .run(&["apply", "--rotate-keys", "@ca", "--yes"])
        .expect_exit(0);
    assert!(ran.stdout.contains("Converged"), "{}", ran.stdout);
    let new = blob(&live, "manager", ".ssh/trustmesh_ca.pub");
    assert_ne!(new, old);
    for w in WORKERS {
        assert_eq!(signed_by(&certificate(&live, w)), new, "{w}");
    }
    every_edge_works(&live, "after the second rotation");
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
