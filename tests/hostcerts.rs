//! host_certificates (issue #22 part 3) in the planner and the real apply
//! on memory doors: which nodes serve certificates and which keep pinned
//! host keys (and why), the drop-in's text, the `@cert-authority` line,
//! and `sshd -t` refusing the config (the drop-in put back, sshd not
//! reloaded).

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::Privilege;
use trustmesh::plan::{BlockRole, Change, LiveState, NodeState, Plan};

const INCLUDE: &str = "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n";
const DROPIN: &str = "/etc/ssh/sshd_config.d/trustmesh-lab.conf";
const CERT: &str = "/etc/ssh/ssh_host_ed25519_key-cert.pub";
const SSH_DROPIN: &str = "/etc/ssh/ssh_config.d/trustmesh-lab.conf";
const KRL: &str = "/etc/ssh/trustmesh-lab.krl";

fn lab(ca: &str) -> Inventory {
    Inventory::from_str_named(
        "inventory.yaml",
        &format!(
            "version: 1\ncluster: lab\nmanager: {{name: m, address: 10.0.0.1}}\nworkers:\n\
             \x20 - {{name: w1, address: 10.0.0.11}}\n  - {{name: w2, address: 10.0.0.12}}\n\
             \x20 - {{name: w3, address: 10.0.0.13}}\n  - {{name: w4, address: 10.0.0.14, port: 2222}}\n\
             \x20 - {{name: w5, address: 10.0.0.15, host_certificates: false}}\n\
             mesh:\n  - [w1, w2, w3, w4, w5]\nhost_certificates: {{ca: '{ca}', validity: 8w, renew_before: 1w}}\n"
        ),
    )
    .unwrap()
}

/// w1 root, w2 sudo -n, w3 neither; w4 root without the Include; w5
/// opted out. Every worker's sshd files read.
fn lab_live(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for (name, privilege, config) in [
        ("w1", Privilege::Root, INCLUDE),
        ("w2", Privilege::Sudo, INCLUDE),
        ("w3", Privilege::None, INCLUDE),
        ("w4", Privilege::Root, "Port 2222\n"),
        ("w5", Privilege::Root, INCLUDE),
    ] {
        let a = account_of(&mut live, inv, name);
        a.privilege = Some(privilege);
        set_file(a, "/etc/ssh/sshd_config", 0o644, config);
        for f in [DROPIN, SSH_DROPIN, KRL] {
            a.files.push(missing(f));
        }
        sshd_dirs(a);
        a.files.push(missing(CERT));
    }
    live
}

fn warnings(p: &Plan, node: &str) -> String {
    node_plan(p, node).warnings.join("\n")
}

#[test]
fn the_plan_says_which_nodes_serve_certificates_and_why_the_others_keep_pins() {
    let inv = lab("~/.ssh/trustmesh_host_ca");
    let p = run(&inv, &lab_live(&inv));
    // The CA is made on the manager, after consent.
    assert!(node_plan(&p, "m")
        .changes
        .iter()
        .any(|c| matches!(c, Change::HostCa { path } if path == "~/.ssh/trustmesh_host_ca")));
    for (node, sudo) in [("w1", false), ("w2", true)] {
        let changes = &node_plan(&p, node).changes;
        let signed: Vec<_> = changes
            .iter()
            .filter_map(|c| match c {
                Change::SignHostKey(h) => Some(h),
                _ => None,
            })
            .collect();
        assert_eq!(signed.len(), 1, "{node}: {changes:#?}");
        let h = signed[0];
        assert_eq!((h.path.as_str(), h.sudo, h.create), (CERT, sudo, true));
        assert_eq!(h.identity, format!("trustmesh:lab/{node}"));
        let addr = inv.nodes[inv.find(node).unwrap()].address.clone().unwrap();
        assert_eq!(h.principals, vec![node.to_string(), addr]);
        assert_eq!(h.validity, "8w");
        let dropin = changes
            .iter()
            .find_map(|c| match c {
                Change::WriteBlock(b) if b.role == BlockRole::SshdDropin => Some(b),
                _ => None,
            })
            .expect("the drop-in");
        assert_eq!((dropin.path.as_str(), dropin.sudo), (DROPIN, sudo));
        assert_eq!(
            dropin.render(None).unwrap().unwrap(),
            format!(
                "# trustmesh:lab/{node}: written by trustmesh; edits here are overwritten\n\
                 HostCertificate {CERT}\nRevokedKeys {KRL}\n"
            )
        );
        assert!(changes.iter().any(|c| matches!(c, Change::WriteKrl(k) if k.path == KRL && k.create && k.revoked.is_empty())));
        assert!(changes.iter().any(
            |c| matches!(c, Change::WriteBlock(b) if b.path == SSH_DROPIN
            && b.new.as_deref().is_some_and(|l| l[1] == format!("RevokedHostKeys {KRL}")))
        ));
        assert!(
            matches!(changes.last(), Some(Change::ReloadSshd(r)) if r.dropin == DROPIN && r.restore.is_none() && r.sudo == sudo)
        );
    }
    let pinned = [
        ("m", "the manager"),
        ("w3", "alice is not root and has no passwordless sudo"),
        ("w4", "blocked for host certificates: /etc/ssh/sshd_config does not include /etc/ssh/sshd_config.d/*.conf"),
        ("w5", "`host_certificates: false` in the inventory"),
    ];
    for (node, why) in pinned {
        let w = warnings(&p, node);
        assert!(
            w.contains(&format!("keeps pinned host keys: {why}")),
            "{node}: {w}"
        );
        assert!(!node_plan(&p, node)
            .changes
            .iter()
            .any(|c| matches!(c, Change::SignHostKey(_) | Change::ReloadSshd(_))));
    }
    assert!(warnings(&p, "w4").contains("add `Include /etc/ssh/sshd_config.d/*.conf` at its top"));
    // Peers: one CA line for w1 and w2 (known after apply: the CA is made
    // in this run), pinned lines for the others.
    let kh = |node: &str| -> Vec<String> {
        node_plan(&p, node)
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::EditFile(e) if e.path.ends_with("known_hosts") => Some(e),
                _ => None,
            })
            .flat_map(|e| e.add.iter())
            .map(|l| format!("{} {}", l.names.as_deref().unwrap(), l.node))
            .collect()
    };
    let w3 = kh("w3");
    assert!(
        w3.contains(&"@cert-authority 10.0.0.11,w1,10.0.0.12,w2 host CA".to_string()),
        "{w3:?}"
    );
    assert!(
        w3.contains(&"[10.0.0.14]:2222 w4".to_string()) && w3.contains(&"10.0.0.15 w5".to_string()),
        "{w3:?}"
    );
    assert!(
        !w3.iter()
            .any(|l| l.starts_with("10.0.0.11 ") || l.starts_with("10.0.0.12 ")),
        "{w3:?}"
    );
    // The manager keeps its pins (they prove the keys it signs), and gets
    // the CA line too.
    let m = kh("m");
    assert!(
        m.iter().any(|l| l.starts_with("10.0.0.11 "))
            && m.iter().any(|l| l.starts_with("@cert-authority ")),
        "{m:?}"
    );
    assert!(text(&p).contains("signed by the host CA"), "{}", text(&p));
}

/// The lab with a real CA on the manager and real host keys, as proven.
fn real_lab(dir: &std::path::Path) -> (Inventory, LiveState) {
    let (ca, ca_pub) = real_key(dir, "ca");
    let inv = lab(&ca);
    let mut live = lab_live(&inv);
    let m = account_at(&mut live, 0);
    set_file(m, &ca, 0o600, "PRIVATE (never read)");
    set_file(m, &format!("{ca}.pub"), 0o644, &format!("{ca_pub} ca\n"));
    for w in ["w1", "w2", "w3", "w4", "w5"] {
        let (_, host) = real_key(dir, &format!("host-{w}"));
        account_of(&mut live, &inv, w).proven_host_keys = vec![host];
    }
    (inv, live)
}

#[test]
fn applied_in_memory_the_certificates_are_signed_written_and_then_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, live) = real_lab(dir.path());
    let p = run(&inv, &live);
    let after = apply_on_memory(&inv, &p, &live);
    let w1 = match &after.nodes[inv.find("w1").unwrap()] {
        NodeState::Read { account, .. } => account.clone(),
        _ => unreachable!(),
    };
    let cert = content(&w1, CERT);
    assert!(
        cert.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{cert}"
    );
    assert!(content(&w1, DROPIN).contains(&format!("HostCertificate {CERT}")));
    // The certificate names the node, its serial, and its principals.
    let f = dir.path().join("w1-cert.pub");
    std::fs::write(&f, cert).unwrap();
    let shown = Command::new("ssh-keygen")
        .arg("-L")
        .arg("-f")
        .arg(&f)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("host certificate") && shown.contains("trustmesh:lab/w1"),
        "{shown}"
    );
    assert!(
        shown.contains("10.0.0.11")
            && shown.contains(&format!(
                "Serial: {}",
                trustmesh::plan::host_cert_serial("trustmesh:lab/w1")
            )),
        "{shown}"
    );
    // Nothing more to do for the certificates: right key, CA, names, time.
    let again = run(&inv, &after);
    for n in &again.nodes {
        assert!(
            !n.changes.iter().any(|c| matches!(
                c,
                Change::SignHostKey(_) | Change::ReloadSshd(_) | Change::WriteBlock(_)
            )),
            "{}: {:#?}",
            n.node,
            n.changes
        );
    }
}

#[test]
fn when_sshd_refuses_the_config_the_old_drop_in_is_put_back_and_sshd_is_not_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, mut live) = real_lab(dir.path());
    let old = "# trustmesh:lab/w1: written by trustmesh; edits here are overwritten\n";
    set_file(account_of(&mut live, &inv, "w1"), DROPIN, 0o644, old);
    let p = run(&inv, &live);
    let doors = memory_doors(&inv, &live, |name, d| {
        if name == "w1" {
            d.sshd_refuses(
                "/etc/ssh/sshd_config.d/trustmesh-lab.conf line 2: Bad configuration option",
            )
        } else {
            d
        }
    });
    let (report, rt) = apply_with(&inv, &p, &doors);
    let w1 = report.nodes.iter().find(|n| n.node == "w1").unwrap();
    let failed = format!("{:?}", w1.results);
    assert!(
        failed.contains("sshd -t refused the config: /etc/ssh/sshd_config.d/trustmesh-lab.conf line 2: Bad configuration option; the previous /etc/ssh/sshd_config.d/trustmesh-lab.conf was put back and sshd was not reloaded"),
        "{failed}"
    );
    let i1 = inv.find("w1").unwrap();
    let w1_door = doors[i1].as_ref().unwrap();
    assert_eq!(w1_door.reloads(), 0);
    let fs = rt.block_on(w1_door.files());
    assert_eq!(fs.content(DROPIN), Some(old.as_bytes()));
    // w2's sshd took its drop-in and was reloaded once.
    assert_eq!(
        doors[inv.find("w2").unwrap()].as_ref().unwrap().reloads(),
        1
    );
    // Peers keep their pinned lines for w1: their known_hosts edits wait
    // for every reload when they add the CA line.
    let w3 = report.nodes.iter().find(|n| n.node == "w3").unwrap();
    assert!(
        format!("{:?}", w3.results).contains("Skipped"),
        "{:?}",
        w3.results
    );
}

#[test]
fn a_retired_nodes_certificates_are_revoked_in_the_krl_on_every_serving_node() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, mut live) = real_lab(dir.path());
    // w1's authorized_keys still names `old`, a node of this cluster the
    // inventory no longer has.
    let w1 = account_of(&mut live, &inv, "w1");
    set_file(
        w1,
        "authorized_keys",
        0o600,
        &format!("ssh-ed25519 {} trustmesh:lab/old\n", fake_key("old")),
    );
    w1.ssh_dir = Some(stat(trustmesh::model::state::FileKind::Dir, 0o700));
    let p = run(&inv, &live);
    let serial = trustmesh::plan::host_cert_serial("trustmesh:lab/old");
    for node in ["w1", "w2"] {
        let krl = node_plan(&p, node).changes.iter().find_map(|c| match c {
            Change::WriteKrl(k) => Some(k),
            _ => None,
        });
        assert_eq!(
            krl.unwrap().revoked,
            vec![("old".to_string(), serial)],
            "{node}"
        );
    }
    let after = apply_on_memory(&inv, &p, &live);
    let w2 = match &after.nodes[inv.find("w2").unwrap()] {
        NodeState::Read { account, .. } => account.clone(),
        _ => unreachable!(),
    };
    // The drop-in remembers it (its lines may be pruned meanwhile).
    assert!(content(&w2, DROPIN).contains(&format!("# revoked: old serial {serial}")));
    let krl_bytes = w2.file(KRL).and_then(|f| f.content.clone()).unwrap();
    let krl = dir.path().join("w2.krl");
    std::fs::write(&krl, krl_bytes).unwrap();
    // A certificate the CA gave `old` is revoked; w1's is not.
    let (_, old_key) = real_key(dir.path(), "old-host");
    std::fs::write(dir.path().join("old-host.pub"), format!("{old_key}\n")).unwrap();
    let ca = dir.path().join("ca");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-s"])
        .arg(&ca)
        .args([
            "-h",
            "-I",
            "trustmesh:lab/old",
            "-n",
            "old",
            "-z",
            &serial.to_string(),
        ])
        .arg(dir.path().join("old-host.pub"))
        .status()
        .unwrap();
    assert!(st.success());
    let q = |cert: &std::path::Path| {
        let out = Command::new("ssh-keygen")
            .arg("-Q")
            .arg("-f")
            .arg(&krl)
            .arg(cert)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        q(&dir.path().join("old-host-cert.pub")).contains("REVOKED"),
        "{}",
        q(&dir.path().join("old-host-cert.pub"))
    );
    let w1_cert = dir.path().join("w1-cert.pub");
    let w1 = match &after.nodes[inv.find("w1").unwrap()] {
        NodeState::Read { account, .. } => account.clone(),
        _ => unreachable!(),
    };
    std::fs::write(&w1_cert, content(&w1, CERT)).unwrap();
    assert!(q(&w1_cert).contains(": ok"), "{}", q(&w1_cert));
}

#[test]
fn a_certificate_within_renew_before_of_its_end_is_signed_again_and_the_plan_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (inv, live) = real_lab(dir.path());
    let after = apply_on_memory(&inv, &run(&inv, &live), &live);
    let plan_at = |days: u64| {
        let scope = trustmesh::plan::PlanScope {
            now: Some(std::time::SystemTime::now() + Duration::from_secs(days * 86_400)),
            ..Default::default()
        };
        trustmesh::plan::plan(&inv, &trustmesh::TrustGraph::build(&inv), &after, &scope)
    };
    let signed = |p: &Plan, node: &str| -> Vec<String> {
        node_plan(p, node)
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::SignHostKey(h) => Some(h.why.clone()),
                _ => None,
            })
            .collect()
    };
    // validity 8w, renew_before 1w: nothing at 6 weeks, renewed at 7w+3d.
    assert!(signed(&plan_at(42), "w1").is_empty());
    let p = plan_at(52);
    let why = signed(&p, "w1");
    assert!(
        why.len() == 1
            && why[0].starts_with("renewal: the certificate ends in ")
            && why[0].ends_with(" days"),
        "{why:?}"
    );
    assert!(node_plan(&p, "w1")
        .changes
        .iter()
        .any(|c| matches!(c, Change::ReloadSshd(_))));
    assert!(text(&p).contains(&format!("({})", why[0])), "{}", text(&p));
    // Past its end.
    assert_eq!(
        signed(&plan_at(60), "w2"),
        vec!["the certificate there has ended".to_string()]
    );
}
