//! User certificates (`certificates:`, issue #22 part 2), in memory and at
//! a fixed "now": the user CA planned on the manager, a certificate per
//! source with the principals of what it is, `cert-authority` lines in
//! place of one line per peer, a 7th worker that changes no other
//! worker's authorized_keys, renewal within `renew_before`, nodes kept on
//! plain key lines, a retired node's principal removed with how long its
//! certificate stays valid, and the inventory's checks.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::node::Door;
use trustmesh::plan::{Change, FileRole, LiveState, NodeFiles, Plan};

fn cluster(workers: usize, extra: &str) -> String {
    let mut s = String::from(
        "version: 1\ncluster: lab\ndefaults: { user: agilab }\nmanager: { name: manager, address: 10.0.0.1, user: alice }\nworkers:\n",
    );
    for i in 1..=workers {
        s.push_str(&format!(
            "  - {{ name: w{i:02}, address: 10.0.0.{}, groups: [g] }}\n",
            10 + i
        ));
    }
    s.push_str(extra);
    s.push_str(
        "reverse: all\nmesh:\n  - group: g\ncertificates: { ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }\n",
    );
    s
}

fn inv(text: &str) -> Inventory {
    Inventory::from_str_at("inventory.yaml", text, day(0)).unwrap()
}

fn file_of(
    live: &mut LiveState,
    inv: &Inventory,
    node: &str,
    pick: fn(&NodeFiles) -> String,
) -> String {
    let name = pick(&NodeFiles::of(inv, inv.find(node).unwrap()));
    content(account_of(live, inv, node), &name).to_string()
}

fn authorized_keys(live: &mut LiveState, inv: &Inventory, node: &str) -> String {
    file_of(live, inv, node, |f| f.authorized_keys.clone())
}

fn certificate(live: &mut LiveState, inv: &Inventory, node: &str) -> Option<ssh_key::Certificate> {
    let text = file_of(live, inv, node, |f| f.certificate.clone().unwrap());
    ssh_key::Certificate::from_openssh(text.trim()).ok()
}

/// The changes of `node` in `p`.
fn changes<'p>(p: &'p Plan, node: &str) -> &'p [Change] {
    &node_plan(p, node).changes
}

#[test]
fn a_fresh_cluster_plans_the_ca_a_certificate_each_and_one_authority_line_per_target() {
    let i = inv(&cluster(6, ""));
    let p = plan_at(&i, &fresh_cluster(&i), day(0));
    let shown = text(&p);
    assert!(
        shown.contains(
            "+ create user CA on the manager: ~/.ssh/trustmesh_ca (ed25519, 0600, trustmesh-ca:lab"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("+ issue certificate for w03: ~/.ssh/id_ed25519-cert.pub (principals lab:group:g,lab:reverse, valid 1w, serial 1796428800)"),
        "{shown}"
    );
    // Each worker: the manager's key and one CA line for the group.
    for w in ["w01", "w06"] {
        let edit = changes(&p, w)
            .iter()
            .find_map(|c| match c {
                Change::EditFile(e) if e.file == FileRole::AuthorizedKeys => Some(e),
                _ => None,
            })
            .unwrap();
        let added: Vec<String> = edit
            .add
            .iter()
            .map(|l| format!("{} {}", l.options.as_deref().unwrap_or("-"), l.node))
            .collect();
        assert_eq!(
            added,
            [
                "- manager",
                "cert-authority,principals=\"lab:group:g\" (user CA)"
            ],
            "{shown}"
        );
    }
    assert!(
        shown.contains("+ cert-authority,principals=\"lab:reverse\" ssh-ed25519 (known after apply) trustmesh:lab/manager"),
        "{shown}"
    );
}

#[test]
fn certificate_mode_converges_with_real_certificates_and_no_line_per_peer() {
    let i = inv(&cluster(6, ""));
    let mut live = converge_at(&i, fresh_cluster(&i), day(0));
    for w in ["w01", "w04", "w06"] {
        let ak = authorized_keys(&mut live, &i, w);
        assert_eq!(ak.lines().count(), 2, "{w}:\n{ak}");
        assert!(ak.contains(&format!(
            "cert-authority,principals=\"lab:group:g\" {} trustmesh:lab/manager",
            test_ca_public()
        )));
        let c = certificate(&mut live, &i, w).expect("a certificate");
        assert_eq!(c.key_id(), format!("trustmesh:lab/{w}"));
        assert_eq!(c.valid_principals(), ["lab:group:g", "lab:reverse"]);
        assert_eq!(c.valid_before(), 1_796_428_800 + 7 * 86400);
        assert_eq!(
            c.signature_key(),
            test_ca().public_key().key_data(),
            "signed by the CA"
        );
    }
    let manager = authorized_keys(&mut live, &i, "manager");
    assert_eq!(manager.lines().count(), 1, "{manager}");
    assert!(manager.starts_with("cert-authority,principals=\"lab:reverse\" "));
}

#[test]
fn a_seventh_worker_changes_no_other_workers_authorized_keys() {
    let six = inv(&cluster(6, ""));
    let live = converge_at(&six, fresh_cluster(&six), day(0));
    let seven = inv(&cluster(
        6,
        "  - { name: w07, address: 10.0.0.17, groups: [g] }\n",
    ));
    let mut live7 = live.clone();
    live7.nodes.push(trustmesh::plan::NodeState::Read {
        account: fresh_account(&seven, seven.find("w07").unwrap()),
        access: Default::default(),
    });
    let p = plan_at(&seven, &live7, day(0));
    let shown = text(&p);
    for w in ["w01", "w02", "w03", "w04", "w05", "w06"] {
        for c in changes(&p, w) {
            match c {
                // Only its host key, for the new edge to w07.
                Change::EditFile(e) if e.file == FileRole::KnownHosts => {
                    assert!(e.remove.is_empty() && e.add.len() == 1, "{shown}")
                }
                other => panic!("{w} changes: {other:?}\n{shown}"),
            }
        }
    }
    // The manager's authorized_keys trusts `reverse`, w07 included.
    assert!(changes(&p, "manager")
        .iter()
        .all(|c| !matches!(c, Change::EditFile(e) if e.file == FileRole::AuthorizedKeys)));
    assert!(shown.contains("+ issue certificate for w07"), "{shown}");
    let mut after = converge_at(&seven, live7, day(0));
    let mut before = live;
    for w in ["w01", "w06"] {
        assert_eq!(
            authorized_keys(&mut after, &seven, w),
            authorized_keys(&mut before, &six, w)
        );
    }
}

#[test]
fn a_certificate_within_renew_before_is_renewed_and_the_next_plan_is_empty() {
    let i = inv(&cluster(3, ""));
    let live = converge_at(&i, fresh_cluster(&i), day(0));
    assert!(plan_at(&i, &live, day(4)).is_empty());
    let p = plan_at(&i, &live, day(6));
    let shown = text(&p);
    assert!(
        shown.contains("~ renew certificate of w02 (ends in 24 hours): ~/.ssh/id_ed25519-cert.pub"),
        "{shown}"
    );
    assert_eq!(p.summary().change, 3, "{shown}");
    let mut renewed = converge_at(&i, live.clone(), day(6));
    let c = certificate(&mut renewed, &i, "w02").unwrap();
    assert_eq!(c.valid_before(), 1_796_428_800 + 13 * 86400);
    assert!(plan_at(&i, &renewed, day(6)).is_empty());
    // verify warns of what ends within renew_before, and only that.
    let scope = trustmesh::plan::PlanScope::default();
    let warned = trustmesh::verify::certificates_ending(&i, &live, &scope, Some(day(6)));
    assert_eq!(warned.len(), 3, "{warned:?}");
    assert_eq!(
        warned[0],
        "w01's certificate ends in 24 hours (2026-12-12 00:00 UTC), within renew_before: run `trustmesh apply` to renew it"
    );
    assert!(trustmesh::verify::certificates_ending(&i, &live, &scope, Some(day(4))).is_empty());
    assert!(trustmesh::verify::certificates_ending(&i, &renewed, &scope, Some(day(6))).is_empty());
    // A shorter validity re-issues what would outlive it.
    let short = inv(&cluster(3, "").replace(
        "validity: 7d, renew_before: 2d",
        "validity: 1d, renew_before: 2h",
    ));
    let p = plan_at(&short, &renewed, day(6));
    assert!(
        text(&p).contains("~ re-issue certificate of w01 (validity 1d)"),
        "{}",
        text(&p)
    );
}

#[test]
fn a_node_with_certificates_false_keeps_plain_key_lines_and_the_plan_says_so() {
    let text_in = cluster(3, "").replace(
        "{ name: w03, address: 10.0.0.13, groups: [g] }",
        "{ name: w03, address: 10.0.0.13, groups: [g], certificates: false }",
    );
    let i = inv(&text_in);
    let p = plan_at(&i, &fresh_cluster(&i), day(0));
    let shown = text(&p);
    assert!(
        shown.contains("certificates: w03 keeps plain key lines (certificates: false)"),
        "{shown}"
    );
    assert!(!shown.contains("issue certificate for w03"), "{shown}");
    let mut live = converge_at(&i, fresh_cluster(&i), day(0));
    let w01 = authorized_keys(&mut live, &i, "w01");
    assert!(
        w01.lines()
            .any(|l| l.ends_with(" trustmesh:lab/w03") && !l.contains("cert-authority")),
        "{w01}"
    );
    let w03 = authorized_keys(&mut live, &i, "w03");
    assert!(!w03.contains("cert-authority"), "{w03}");
    assert!(w03.contains(" trustmesh:lab/w01"), "{w03}");
    assert!(certificate(&mut live, &i, "w03").is_none());
}

#[test]
fn a_retired_node_loses_its_principal_and_the_plan_says_until_when_its_certificate_holds() {
    let with = inv(
        &cluster(3, "  - { name: w09, address: 10.0.0.19 }\n").replace(
            "mesh:\n  - group: g\n",
            "mesh:\n  - group: g\n  - [w01, w09]\n",
        ),
    );
    let mut live = converge_at(&with, fresh_cluster(&with), day(0));
    let w01 = authorized_keys(&mut live, &with, "w01");
    assert!(
        w01.contains("principals=\"lab:group:g,lab:node:w09\""),
        "{w01}"
    );
    let without = inv(&cluster(3, ""));
    let mut live3 = live.clone();
    live3.nodes.truncate(4);
    let p = plan_at(&without, &live3, day(1));
    let shown = text(&p);
    assert!(
        shown.contains("certificates: w09 left the inventory: its node principal is removed everywhere, but a certificate trustmesh issued stays valid until 2026-12-13"),
        "{shown}"
    );
    let mut after = converge_at(&without, live3, day(1));
    let w01 = authorized_keys(&mut after, &without, "w01");
    assert!(!w01.contains("w09"), "{w01}");
    assert!(w01.contains("principals=\"lab:group:g\""), "{w01}");
}

#[test]
fn the_settings_are_checked_with_their_place_in_the_file() {
    let bad = cluster(2, "").replace(
        "certificates: { ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }",
        "certificates:\n  ca: ~bob/ca\n  validity: 7x\n  renew_before: 9d\n",
    );
    let err = Inventory::from_str_at("inventory.yaml", &bad, day(0)).unwrap_err();
    let shown = format!("{err:?}");
    assert!(shown.contains("starts with `~NAME`"), "{shown}");
    assert!(shown.contains("`7x` ends without a unit"), "{shown}");
    let long = cluster(2, "").replace("renew_before: 2d", "renew_before: 8d");
    let err = Inventory::from_str_at("inventory.yaml", &long, day(0)).unwrap_err();
    let shown = format!("{err:?}");
    assert!(
        shown.contains("`renew_before` (8d) is not shorter than `validity` (1w)"),
        "{shown}"
    );
    // Defaults: an empty mapping turns certificates on.
    let on = inv(&cluster(2, "").replace(
        "{ ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }",
        "{}",
    ));
    let c = on.certificates.as_ref().unwrap();
    assert_eq!(
        (c.ca.as_str(), c.validity, c.renew_before),
        ("~/.ssh/trustmesh_ca", 7 * 86400, 2 * 86400)
    );
}

#[test]
fn every_worker_of_a_large_group_gets_the_same_two_managed_lines() {
    let i = inv(&cluster(200, ""));
    let p = plan_at(&i, &fresh_cluster(&i), day(0));
    for np in p.nodes.iter().filter(|n| n.node != "manager") {
        let lines: usize = np
            .changes
            .iter()
            .map(|c| match c {
                Change::EditFile(e) if e.file == FileRole::AuthorizedKeys => e.add.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(lines, 2, "{}", np.node);
    }
}

#[test]
fn a_limited_run_keeps_the_authority_lines_of_sources_outside_it() {
    let i = inv(&cluster(3, ""));
    let live = converge_at(&i, fresh_cluster(&i), day(0));
    let scope = trustmesh::plan::PlanScope {
        limit: Some([i.find("w01").unwrap()].into_iter().collect()),
        now: Some(day(0)),
        ..Default::default()
    };
    let p = trustmesh::plan::plan(&i, &trustmesh::TrustGraph::build(&i), &live, &scope);
    assert!(p.is_empty(), "{}", text(&p));
}

#[test]
fn a_certificate_is_signed_on_its_own_and_written_in_its_nodes_batch_whose_read_back_holds_it() {
    let i = inv(&cluster(3, ""));
    let live = fresh_cluster(&i);
    let p = plan_at(&i, &live, day(0));
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let doors = logged(memory_doors(&i, &live, |_, d| d), &log);
    let rt = runtime();
    let ran = rt.block_on(trustmesh::apply::apply_read_back(
        &i,
        &trustmesh::TrustGraph::build(&i),
        &p,
        &as_doors(&doors),
        &memory_options(None),
    ));
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    let log = log.lock().unwrap().clone();
    let at = |what: &str| {
        log.iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no `{what}` in {log:#?}"))
    };
    for w in ["w01", "w02", "w03"] {
        // Signed on the manager on its own (the batch cannot carry it)...
        let sign = at(&format!("run manager sign trustmesh:lab/{w}"));
        // ...and written in the node's batch, sent after the signing.
        let batch = at(&format!("list {w}: "));
        assert!(
            log[batch].contains("replace ~/.ssh/id_ed25519-cert.pub"),
            "{log:#?}"
        );
        assert!(sign < batch, "{log:#?}");
        // The batch's read-back is the node's state after the run.
        let id = i.find(w).unwrap();
        let now = rt
            .block_on(
                doors[id]
                    .as_ref()
                    .unwrap()
                    .read_state(&NodeFiles::of(&i, id)),
            )
            .unwrap();
        let back = ran.read_back[id].as_ref().expect("read back in the batch");
        assert_eq!(back, &now, "{w}");
        assert!(
            content(back, "id_ed25519-cert.pub").starts_with("ssh-ed25519-cert-v01@openssh.com ")
        );
    }
    assert!(
        log.iter()
            .filter(|l| l.contains("sign"))
            .all(|l| l.starts_with("run manager sign")),
        "{log:#?}"
    );
    // The manager's signings write nothing of its account, and its batch
    // waits for the CA: its read-back holds the CA's public key.
    let back = ran.read_back[0]
        .as_ref()
        .expect("the manager read back in its batch");
    assert!(
        content(back, "trustmesh_ca.pub").starts_with(&test_ca_public()),
        "{back:#?}"
    );
}

/// A user CA that cannot be used (its public half there without its
/// private key) issues nothing and no node trusts it: the plan says so as a
/// blocked signing on the manager and is not complete, so apply cannot say
/// "Converged" while the certificate edges the inventory wants are missing.
#[test]
fn an_unusable_user_ca_leaves_the_plan_incomplete() {
    let i = inv(&cluster(2, ""));
    let mut live = fresh_cluster(&i);
    let (public, _) = NodeFiles::of(&i, Inventory::MANAGER).user_ca.unwrap();
    let m = account_of(&mut live, &i, "manager");
    set_file(m, &public, 0o644, &format!("{} ca\n", test_ca_public()));
    let p = plan_at(&i, &live, day(0));
    let f = node_plan(&p, "manager")
        .signing_blocked
        .as_ref()
        .unwrap_or_else(|| panic!("no blocked signing:\n{}", text(&p)));
    assert!(
        f.reason.contains("without the user CA's private key"),
        "{}",
        f.reason
    );
    assert!(p.incomplete(), "{}", text(&p));
    assert!(
        text(&p).contains("no certificate is issued"),
        "{}",
        text(&p)
    );
}
