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
use trustmesh::node::Door;
use trustmesh::plan::{BlockRole, Change, LiveState, NodeState, Plan};

const INCLUDE: &str = "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n";
const DROPIN: &str = "/etc/ssh/sshd_config.d/trustmesh-lab.conf";
const CERT: &str = "/etc/ssh/ssh_host_ed25519_key-cert.pub";
const SSH_DROPIN: &str = "/etc/ssh/ssh_config.d/trustmesh-lab.conf";
const KRL: &str = "/etc/ssh/trustmesh-lab.krl";

fn lab(ca: &str) -> Inventory {
    lab_with(&["w5"], &host_certs(ca))
}

/// The inventory's host_certificates section.
fn host_certs(ca: &str) -> String {
    format!("host_certificates: {{ca: '{ca}', validity: 8w, renew_before: 1w}}\n")
}

/// The lab's five workers in one mesh, those in `opted` with
/// `host_certificates: false`, and the inventory's last lines `tail`.
fn lab_with(opted: &[&str], tail: &str) -> Inventory {
    let w = |name: &str, rest: &str| {
        let off = if opted.contains(&name) {
            ", host_certificates: false"
        } else {
            ""
        };
        format!("  - {{name: {name}, {rest}{off}}}\n")
    };
    Inventory::from_str_named(
        "inventory.yaml",
        &format!(
            "version: 1\ncluster: lab\nmanager: {{name: m, address: 10.0.0.1}}\nworkers:\n{}{}{}{}{}\
             mesh:\n  - [w1, w2, w3, w4, w5]\n{tail}",
            w("w1", "address: 10.0.0.11"),
            w("w2", "address: 10.0.0.12"),
            w("w3", "address: 10.0.0.13"),
            w("w4", "address: 10.0.0.14, port: 2222"),
            w("w5", "address: 10.0.0.15"),
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

/// The lab with real keys, host certificates applied in memory: (its
/// folder, the inventory, the state read back).
fn served_lab() -> (tempfile::TempDir, Inventory, LiveState) {
    let dir = tempfile::tempdir().unwrap();
    let (inv, live) = real_lab(dir.path());
    let served = apply_on_memory(&inv, &run(&inv, &live), &live);
    (dir, inv, served)
}

/// The changes of `node` that remove or reload: `remove PATH`, `reload`,
/// in plan order.
fn removals(p: &Plan, node: &str) -> Vec<String> {
    node_plan(p, node)
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::WriteBlock(b) if b.new.is_none() => Some(format!(
                "remove {}{}",
                b.path,
                if b.sudo { " (sudo)" } else { "" }
            )),
            Change::WriteKrl(k) if k.remove => Some(format!("remove {}", k.path)),
            Change::ReloadSshd(r) if r.restore.is_some() => Some("reload".to_string()),
            _ => None,
        })
        .collect()
}

/// host_certificates turned off, on a served cluster: on each serving node
/// trustmesh's ssh drop-in, its sshd drop-in, sshd checked and reloaded,
/// then its certificate and KRL removed, only after every peer's known_hosts
/// holds the node's pinned host keys (the `@cert-authority` line dropped in
/// the same write); a line trustmesh did not write stays. Applied, nothing
/// is left to do.
#[test]
fn host_certificates_turned_off_are_removed_with_the_pins_first() {
    let (_dir, inv, mut served) = served_lab();
    // A @cert-authority line an admin wrote on w3: never trustmesh's.
    let w3 = account_of(&mut served, &inv, "w3");
    let hand = format!("@cert-authority *.lab {} admin\n", fake_key("admin-ca"));
    let kh = format!("{}{hand}", content(w3, "known_hosts"));
    set_file(w3, "known_hosts", 0o600, &kh);
    assert!(
        kh.contains("@cert-authority 10.0.0.11,w1,10.0.0.12,w2 "),
        "{kh}"
    );

    let off = lab_with(&[], "");
    let p = run(&off, &served);
    for (node, sudo) in [("w1", ""), ("w2", " (sudo)")] {
        assert_eq!(
            removals(&p, node),
            [
                format!("remove {SSH_DROPIN}{sudo}"),
                format!("remove {DROPIN}{sudo}"),
                "reload".to_string(),
                format!("remove {CERT}{sudo}"),
                format!("remove {KRL}"),
            ],
            "{node}: {:#?}",
            node_plan(&p, node).changes
        );
    }
    for node in ["m", "w3", "w4", "w5"] {
        assert!(removals(&p, node).is_empty(), "{node}");
    }
    // Each peer: the CA line out and the pins of w1 and w2 in, one write.
    for peer in ["w3", "w4", "w5", "w1"] {
        let e = node_plan(&p, peer)
            .changes
            .iter()
            .find_map(|c| match c {
                Change::EditFile(e) if e.path.ends_with("known_hosts") => Some(e),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{peer}: no known_hosts edit"));
        assert!(
            e.remove
                .iter()
                .any(|(_, l)| l.starts_with("@cert-authority 10.0.0.11,")),
            "{peer}: {e:#?}"
        );
        let pinned: Vec<&str> = e.add.iter().map(|l| &*l.node).collect();
        for t in ["w1", "w2"].iter().filter(|t| **t != peer) {
            assert!(pinned.contains(t), "{peer}: {pinned:?}");
        }
    }
    let shown = text(&p);
    assert!(
        shown.contains(&format!(
            "- {DROPIN} (file removed: sshd's host certificates)"
        )) && shown.contains(&format!("- {KRL} (file removed: the KRL"))
            && shown.contains(&format!(
                "- {CERT} (file removed: sshd's host certificates, with sudo -n)"
            )),
        "{shown}"
    );

    // Applied: every pin lands before a node stops serving, the reload
    // before its certificate and KRL go.
    let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let doors = logged(memory_doors(&off, &served, |_, d| d), &log);
    let rt = runtime();
    let run_dir = tempfile::tempdir().unwrap();
    let report = rt.block_on(trustmesh::apply::apply_on(
        &off,
        &trustmesh::TrustGraph::build(&off),
        &p,
        &as_doors(&doors),
        &memory_options(Some(run_dir.path().to_path_buf())),
    ));
    assert!(!report.failed(), "{report:#?}");
    let log = each_op(&log.lock().unwrap());
    let at = |what: &str| {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("no `{what}` in {log:#?}"))
    };
    for node in ["w1", "w2"] {
        let stop = at(&format!("{node} remove {DROPIN}"));
        for peer in ["m", "w1", "w2", "w3", "w4", "w5"] {
            assert!(
                at(&format!("{peer} replace ~/.ssh/known_hosts")) < stop,
                "{peer} before {node} stops: {log:#?}"
            );
        }
        let reload = at(&format!("{node} reload sshd"));
        assert!(stop < reload, "{log:#?}");
        assert!(reload < at(&format!("{node} remove {CERT}")), "{log:#?}");
        assert!(reload < at(&format!("{node} remove {KRL}")), "{log:#?}");
        assert!(
            at(&format!("{node} remove {SSH_DROPIN}")) < stop,
            "{log:#?}"
        );
    }
    let mut after = served.clone();
    for (id, d) in doors.iter().enumerate() {
        if let (Some(d), NodeState::Read { account, .. }) = (d, &mut after.nodes[id]) {
            *account = rt
                .block_on(d.read_state(&trustmesh::plan::NodeFiles::of(&off, id)))
                .unwrap();
        }
    }
    let w1 = account_of(&mut after, &off, "w1");
    for f in [DROPIN, SSH_DROPIN, CERT, KRL] {
        assert!(
            w1.file(f).is_none_or(|f| f.stat.is_none()),
            "{f} left on w1"
        );
    }
    let kh = content(account_of(&mut after, &off, "w3"), "known_hosts").to_string();
    assert!(
        kh.contains(&hand) && !kh.contains("@cert-authority 10.0.0.11"),
        "{kh}"
    );
    let again = run(&off, &after);
    assert!(again.is_empty(), "{}", text(&again));
}

/// `host_certificates: false` on one serving node: its files go, the
/// others keep serving, and the peers' CA line no longer names it.
#[test]
fn a_node_opted_out_stops_serving_and_the_others_keep_theirs() {
    let (_dir, inv, served) = served_lab();
    let ca = inv.host_certs.as_ref().unwrap().ca.clone();
    let opted = lab_with(&["w1", "w5"], &host_certs(&ca));
    let p = run(&opted, &served);
    assert_eq!(
        removals(&p, "w1"),
        [
            format!("remove {SSH_DROPIN}"),
            format!("remove {DROPIN}"),
            "reload".to_string(),
            format!("remove {CERT}"),
            format!("remove {KRL}"),
        ]
    );
    assert!(removals(&p, "w2").is_empty());
    assert!(!node_plan(&p, "w2")
        .changes
        .iter()
        .any(|c| matches!(c, Change::SignHostKey(_) | Change::ReloadSshd(_))));
    // w3's CA line names w2 alone now, and w1 is pinned in the same write.
    let e = node_plan(&p, "w3")
        .changes
        .iter()
        .find_map(|c| match c {
            Change::EditFile(e) if e.path.ends_with("known_hosts") => Some(e),
            _ => None,
        })
        .unwrap();
    let added: Vec<String> = e
        .add
        .iter()
        .map(|l| format!("{} {}", l.names.as_deref().unwrap(), l.node))
        .collect();
    assert!(
        added.contains(&"@cert-authority 10.0.0.12,w2 host CA".to_string())
            && added.contains(&"10.0.0.11 w1".to_string()),
        "{added:?}"
    );
    let after = apply_on_memory(&opted, &p, &served);
    assert!(
        run(&opted, &after).is_empty(),
        "{}",
        text(&run(&opted, &after))
    );
}

/// An sshd drop-in that is not trustmesh's (its first line is another
/// marker), and no privilege: nothing is removed, and the plan says why.
#[test]
fn a_drop_in_trustmesh_did_not_write_is_left_alone() {
    let (_dir, inv, mut served) = served_lab();
    let w1 = account_of(&mut served, &inv, "w1");
    set_file(
        w1,
        DROPIN,
        0o644,
        "# trustmesh:other/w1: written by trustmesh\nHostCertificate /x\n",
    );
    let w2 = account_of(&mut served, &inv, "w2");
    w2.privilege = Some(Privilege::None);
    let off = lab_with(&[], "");
    let p = run(&off, &served);
    let r = removals(&p, "w1");
    assert!(
        !r.iter().any(|l| l.contains(DROPIN) || l == "reload"),
        "{r:?}"
    );
    assert!(removals(&p, "w2").is_empty());
    assert!(
        warnings(&p, "w2").contains("removing them needs root or a passwordless `sudo -n`"),
        "{}",
        warnings(&p, "w2")
    );
}

/// host_certificates turned off while a peer that trusts w1 and w2 through
/// the host CA is blocked (its known_hosts is not text): that peer takes no
/// pinned host keys in this run, so w1 and w2 keep serving their
/// certificates (no drop-in removed, no reload) and the plan says why.
#[test]
fn a_blocked_peer_keeps_its_nodes_serving_host_certificates() {
    let (_dir, inv, mut served) = served_lab();
    let w3 = account_of(&mut served, &inv, "w3");
    let kh = w3
        .files
        .iter_mut()
        .find(|f| f.name == "known_hosts")
        .expect("w3's known_hosts");
    kh.content = Some(vec![0xff, 0xfe, b'\n']);
    let off = lab_with(&[], "");
    let p = run(&off, &served);
    assert!(
        matches!(
            node_plan(&p, "w3").status,
            trustmesh::plan::NodeStatus::Blocked(_)
        ),
        "{}",
        text(&p)
    );
    for node in ["w1", "w2"] {
        let r = removals(&p, node);
        assert!(
            !r.iter().any(|l| l.contains(DROPIN) || l == "reload"),
            "{node}: {r:?}"
        );
        assert!(
            warnings(&p, node).contains("w3 trusts it through the host CA"),
            "{node}: {}",
            warnings(&p, node)
        );
    }
}
