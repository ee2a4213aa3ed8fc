#![cfg(feature = "live")]
//! host_certificates (issue #22 part 3) against real sshd hosts with a
//! root account: each host's keys signed by the cluster's host CA and
//! served by its sshd (through trustmesh's drop-in, checked with `sshd -t`
//! and reloaded with SIGHUP to the pid in its `PidFile`), and peers that
//! trust them with one `@cert-authority` line, no line per host.

mod live;

use live::*;

/// A root host as Debian sets sshd up: the drop-in folder included first,
/// and a pid file of its own (its `/etc/ssh` is its own).
fn root_host(name: &str) -> HostSpec {
    HostSpec::new(name, &["root"])
        .sshd_option("Include /etc/ssh/sshd_config.d/*.conf")
        .sshd_option("PidFile /etc/ssh/sshd.pid")
}

/// Root hosts `names`, the manager's key let in as root on each, sshd's
/// drop-in folder made.
fn root_cluster(names: &[&str]) -> Live {
    let live = start(names.iter().map(|n| root_host(n)).collect());
    live.manager_keygen();
    let key = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
        .unwrap();
    for n in names {
        live.cluster
            .write_file(n, "root", ".ssh/authorized_keys", &key, 0o600)
            .unwrap();
        stdout_of(&live.run_as(n, "root", "mkdir -p -m 755 /etc/ssh/sshd_config.d"));
    }
    live
}

/// The inventory: `workers` as root in one mesh, with host certificates
/// when `certs`.
fn root_inventory(live: &Live, workers: &[&str], certs: bool) -> String {
    let section = if certs {
        "host_certificates: {ca: ~/.ssh/trustmesh_host_ca, validity: 52w, renew_before: 4w}\n"
    } else {
        ""
    };
    live.inventory(
        workers,
        &format!(
            "cluster: lab\nmesh:\n  - [{}]\n{section}",
            workers.join(", ")
        ),
        &|_| "    user: root\n".to_string(),
    )
}

/// `ssh -v` from `from` to `to` as root, host keys checked against root's
/// known_hosts: (it worked, what ssh said).
fn ssh_v(live: &Live, from: &str, to: &str) -> (bool, String) {
    let h = live.cluster.host(to).clone();
    let out = live.run_as(
        from,
        "root",
        &format!(
            "ssh -v -o BatchMode=yes -o StrictHostKeyChecking=yes -p {} root@{} true 2>&1",
            h.port, h.address
        ),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn host_certificates_are_served_and_peers_trust_them_with_one_ca_line() {
    let names = ["r1", "r2", "r3"];
    let live = root_cluster(&names);
    let inv = |workers: &[&str]| root_inventory(&live, workers, true);
    live.write_inventory(&inv(&names));

    let plan = live
        .run(&["plan", "--accept-new-host-keys"])
        .expect_exit(0)
        .stdout;
    assert!(
        plan.contains("+ host CA ~/.ssh/trustmesh_host_ca"),
        "{plan}"
    );
    assert!(
        plan.contains("/etc/ssh/ssh_host_ed25519_key-cert.pub (new file, 0644)"),
        "{plan}"
    );
    assert!(
        plan.contains("sshd reloaded once `sshd -t` accepts"),
        "{plan}"
    );
    assert!(
        plan.contains("keeps pinned host keys: the manager"),
        "{plan}"
    );
    let out = live
        .run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0)
        .stdout;
    assert!(out.contains("Converged"), "{out}");
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);

    // The CA stays on the manager, 0600.
    let ca = stdout_of(&live.run_as(
        "manager",
        MANAGER_USER,
        "ls -ln ~/.ssh/trustmesh_host_ca | awk '{print $1}'",
    ));
    assert_eq!(ca.trim(), "-rw-------");
    for n in names {
        let d = stdout_of(&live.run_as(n, "root", "cat /etc/ssh/sshd_config.d/trustmesh-lab.conf"));
        assert!(d.starts_with("# trustmesh:lab/"), "{d}");
        assert!(
            d.contains("HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub"),
            "{d}"
        );
        assert!(live
            .run_as(n, "root", "test ! -e /etc/ssh/trustmesh_host_ca")
            .status
            .success());
    }

    // r2 reaches r1 with plain ssh: sshd serves r1's certificate, and
    // r2's known_hosts holds the CA line and no line for r1's keys.
    let r1 = live.cluster.host("r1").clone();
    let kh = stdout_of(&live.run_as("r2", "root", "cat ~/.ssh/known_hosts"));
    let about_r1: Vec<&str> = kh
        .lines()
        .filter(|l| l.contains(&r1.address.to_string()))
        .collect();
    assert_eq!(about_r1.len(), 1, "{kh}");
    assert!(about_r1[0].starts_with("@cert-authority "), "{kh}");
    assert!(about_r1[0].ends_with(" trustmesh:lab/manager"), "{kh}");
    let (ok, said) = ssh_v(&live, "r2", "r1");
    assert!(ok, "{said}");
    assert!(
        said.contains("Server host certificate: ssh-ed25519-cert-v01@openssh.com"),
        "{said}"
    );
    assert!(said.contains("ID \"trustmesh:lab/r1\""), "{said}");
    // Every edge holds.
    let v = live.run(&["verify"]).expect_exit(0).stdout;
    assert!(v.contains("edges hold"), "{v}");

    // r3 retires: its serial goes in the KRL on r1 and r2, and their ssh
    // refuses its certificate even where the CA alone would vouch for it.
    live.write_inventory(&inv(&["r1", "r2"]));
    let plan = live.run(&["plan"]).expect_exit(0).stdout;
    assert!(
        plan.contains(
            "/etc/ssh/trustmesh-lab.krl (KRL made on the manager, 0644): revokes r3 (serial"
        ),
        "{plan}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let ca_pub = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/trustmesh_host_ca.pub")
        .unwrap();
    let ca_pub = String::from_utf8(ca_pub).unwrap();
    live.cluster
        .write_file(
            "r2",
            "root",
            "ca_only",
            format!("@cert-authority * {ca_pub}").as_bytes(),
            0o600,
        )
        .unwrap();
    let try_from_r2 = |to: &str| {
        let h = live.cluster.host(to).clone();
        let out = live.run_as(
            "r2",
            "root",
            &format!(
                "ssh -v -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/ca_only -p {} root@{} true 2>&1",
                h.port, h.address
            ),
        );
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok3, said3) = try_from_r2("r3");
    assert!(!ok3, "{said3}");
    assert!(
        said3.contains("revoked by file /etc/ssh/trustmesh-lab.krl"),
        "{said3}"
    );
    let (ok1, said1) = try_from_r2("r1");
    assert!(ok1, "{said1}");
}

/// host_certificates turned off on a served cluster: apply removes
/// trustmesh's drop-ins, certificates and KRL (sshd checked and reloaded)
/// after every peer holds pinned host keys; sshd serves no certificate
/// any more, peers still connect with their pins, and what trustmesh did
/// not write (another drop-in, a hand-written line) is untouched.
#[test]
fn host_certificates_turned_off_leave_pinned_keys_and_nothing_of_trustmesh() {
    let names = ["r1", "r2"];
    let live = root_cluster(&names);
    live.write_inventory(&root_inventory(&live, &names, true));
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    let (_, said) = ssh_v(&live, "r2", "r1");
    assert!(said.contains("Server host certificate"), "{said}");
    // Not trustmesh's: another drop-in, and a line in r2's known_hosts.
    let other = "# kept by the admin\nLogLevel INFO\n";
    let hand = "@cert-authority *.example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin\n";
    for n in names {
        let cmd = format!(
            "printf '%s' '{other}' > /etc/ssh/sshd_config.d/other.conf && printf '%s' '{hand}' >> ~/.ssh/known_hosts"
        );
        assert!(live.run_as(n, "root", &cmd).status.success());
    }

    live.write_inventory(&root_inventory(&live, &names, false));
    let plan = live.run(&["plan"]).expect_exit(0).stdout;
    for f in [
        "- /etc/ssh/sshd_config.d/trustmesh-lab.conf (file removed",
        "- /etc/ssh/ssh_config.d/trustmesh-lab.conf (file removed",
        "- /etc/ssh/ssh_host_ed25519_key-cert.pub (file removed",
        "- /etc/ssh/trustmesh-lab.krl (file removed",
    ] {
        assert!(plan.contains(f), "{f}:\n{plan}");
    }
    let out = live.run(&["apply", "--yes"]).expect_exit(0).stdout;
    assert!(out.contains("Converged"), "{out}");
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    for (from, to) in [("r2", "r1"), ("r1", "r2")] {
        let (ok, said) = ssh_v(&live, from, to);
        assert!(ok, "{from} -> {to}: {said}");
        assert!(!said.contains("Server host certificate"), "{said}");
    }
    for n in names {
        let left = stdout_of(&live.run_as(
            n,
            "root",
            "ls /etc/ssh/sshd_config.d /etc/ssh/ssh_config.d; ls /etc/ssh | grep -e cert -e krl; cat ~/.ssh/known_hosts",
        ));
        assert!(
            !left.contains("trustmesh-lab") && !left.contains("-cert.pub"),
            "{n}: {left}"
        );
        assert!(
            left.contains("other.conf") && left.contains(hand.trim_end()),
            "{n}: {left}"
        );
        assert!(
            !left
                .lines()
                .any(|l| l.starts_with("@cert-authority ") && l.ends_with("trustmesh:lab/manager")),
            "{n}: {left}"
        );
        let o = stdout_of(&live.run_as(n, "root", "cat /etc/ssh/sshd_config.d/other.conf"));
        assert_eq!(o, other, "{n}");
    }
    live.run(&["verify"]).expect_exit(0);
}
