//! Time-limited edges (`expires:`), in memory and at a fixed "now": the
//! option on the line, an ended edge planned for removal with its reason,
//! an admin's options kept when the expiry changes or goes, grants that
//! overlap, the marks of `graph`, `plan` and `verify`, and the validation
//! messages.

mod support;

use std::time::SystemTime;

use support::*;
use trustmesh::model::graph::{self, Edge, EdgeKind, GraphFormat};
use trustmesh::model::inventory::expiry::{EdgeTime, Expiry};
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{Change, LiveState, NodeFiles};
use trustmesh::transport::FailureKind;
use trustmesh::verify::{self, EdgeFailure, EdgeOutcome, EdgeResult, VerifyReport};
use trustmesh::TrustGraph;

const INV: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: w01, address: 10.0.0.11 }
  - { name: w02, address: 10.0.0.12 }
  - { name: w03, address: 10.0.0.13, groups: [burst] }
  - { name: w04, address: 10.0.0.14, groups: [burst] }
  - { name: w05, address: 10.0.0.15, expires: 2026-12-31 }
reverse:
  - { worker: w01, expires: '2026-12-20T10:00:00Z' }
  - w02
  - w05
mesh:
  - { group: burst, expires: '2026-12-08T12:30:00+02:00' }
";

fn inv(text: &str) -> Inventory {
    Inventory::from_str_at("inventory.yaml", text, day(0)).unwrap()
}

fn authorized_keys(live: &mut LiveState, inv: &Inventory, node: &str) -> String {
    let name = NodeFiles::of(inv, inv.find(node).unwrap()).authorized_keys;
    content(account_of(live, inv, node), &name).to_string()
}

fn set_authorized_keys(live: &mut LiveState, inv: &Inventory, node: &str, text: &str) {
    let name = NodeFiles::of(inv, inv.find(node).unwrap()).authorized_keys;
    set_file(account_of(live, inv, node), &name, 0o600, text);
}

fn line_of<'t>(text: &'t str, source: &str) -> Option<&'t str> {
    let marker = format!(" trustmesh:lab/{source}");
    text.lines().find(|l| l.ends_with(&marker))
}

#[test]
fn the_lines_carry_their_expiry_and_a_second_plan_is_empty() {
    let i = inv(INV);
    let fresh = fresh_cluster(&i);
    let first = plan_at(&i, &fresh, day(0));
    // The plan shows the expiry on the line it adds.
    let shown = text(&first);
    assert!(
        shown.contains(
            r#"+ expiry-time="202612201000Z" ssh-ed25519 (known after apply) trustmesh:lab/w01"#
        ),
        "{shown}"
    );
    let mut live = converge_at(&i, fresh, day(0));
    let manager = authorized_keys(&mut live, &i, "manager");
    let w01 = line_of(&manager, "w01").unwrap();
    assert!(
        w01.starts_with(r#"expiry-time="202612201000Z" ssh-ed25519 "#),
        "{manager}"
    );
    // A date is the end of that day, UTC; a node's expires ends its reverse
    // edge too.
    assert!(
        line_of(&manager, "w05")
            .unwrap()
            .starts_with(r#"expiry-time="20261231235959Z" "#),
        "{manager}"
    );
    // No expires: a plain line.
    assert!(
        line_of(&manager, "w02")
            .unwrap()
            .starts_with("ssh-ed25519 "),
        "{manager}"
    );
    // A mesh group's time, with its offset, in UTC.
    let w04 = authorized_keys(&mut live, &i, "w04");
    assert!(
        line_of(&w04, "w03")
            .unwrap()
            .starts_with(r#"expiry-time="202612081030Z" "#),
        "{w04}"
    );
    // The manager's own lines never expire.
    assert!(line_of(&w04, "manager")
        .unwrap()
        .starts_with("ssh-ed25519 "));
    assert!(plan_at(&i, &live, day(1)).is_empty());
}

#[test]
fn an_ended_edge_is_planned_for_removal_and_the_plan_says_why() {
    let i = inv(INV);
    let mut live = converge_at(&i, fresh_cluster(&i), day(0));
    // 2026-12-21: w01's reverse edge and the burst mesh have ended.
    let p = plan_at(&i, &live, day(16));
    let m = node_plan(&p, "manager");
    let removed: Vec<&String> = m
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::EditFile(e) => Some(e),
            _ => None,
        })
        .flat_map(|e| e.remove.iter().map(|(_, t)| t))
        .collect();
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(removed[0].ends_with(" trustmesh:lab/w01"), "{removed:?}");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("w01's line is removed: its edge expired 2026-12-20 10:00 UTC")),
        "{:?}",
        m.warnings
    );
    let shown = text(&p);
    assert!(
        shown.contains("w03 -> w04 (mesh) expired 2026-12-08 10:30 UTC"),
        "{shown}"
    );
    // Applied: the ended lines are gone, every other line stays, and the
    // next plan is empty.
    let before = authorized_keys(&mut live, &i, "manager");
    live = converge_at(&i, live, day(16));
    let manager = authorized_keys(&mut live, &i, "manager");
    assert!(line_of(&manager, "w01").is_none(), "{manager}");
    for kept in ["w02", "w05"] {
        assert_eq!(line_of(&manager, kept), line_of(&before, kept));
    }
    let w04 = authorized_keys(&mut live, &i, "w04");
    assert!(line_of(&w04, "w03").is_none(), "{w04}");
    assert!(line_of(&w04, "manager").is_some(), "{w04}");
}

#[test]
fn ended_lines_go_even_without_prune_and_other_clusters_lines_stay() {
    let text = INV.replace("mesh:\n", "options: { prune: false }\nmesh:\n");
    let i = inv(&text);
    let mut live = converge_at(&i, fresh_cluster(&i), day(0));
    let mut manager = authorized_keys(&mut live, &i, "manager");
    let w01 = line_of(&manager, "w01").unwrap().to_string();
    // The same key written by another cluster and by hand.
    let other = w01.replace("trustmesh:lab/w01", "trustmesh:other/w01");
    let hand = w01.replace(" trustmesh:lab/w01", " w01 by hand");
    manager.push_str(&format!("{other}\n{hand}\n"));
    set_authorized_keys(&mut live, &i, "manager", &manager);
    live = converge_at(&i, live, day(16));
    let after = authorized_keys(&mut live, &i, "manager");
    assert!(line_of(&after, "w01").is_none(), "{after}");
    assert!(after.contains(&other) && after.contains(&hand), "{after}");
}

#[test]
fn changing_or_removing_expires_rewrites_only_that_option() {
    let i = inv(INV);
    let mut live = converge_at(&i, fresh_cluster(&i), day(0));
    // An admin adds options to the managed line.
    let manager = authorized_keys(&mut live, &i, "manager");
    let line = line_of(&manager, "w01").unwrap();
    let edited = line.replacen(
        r#"expiry-time="202612201000Z""#,
        r#"no-pty,expiry-time="202612201000Z",environment="A=1""#,
        1,
    );
    set_authorized_keys(&mut live, &i, "manager", &manager.replace(line, &edited));
    assert!(plan_at(&i, &live, day(0)).is_empty());
    // A later time: only the expiry changes.
    let later = inv(&INV.replace("2026-12-20T10:00:00Z", "2027-03-01T08:15:00Z"));
    live = converge_at(&later, live, day(0));
    let manager = authorized_keys(&mut live, &later, "manager");
    assert!(
        line_of(&manager, "w01")
            .unwrap()
            .starts_with(r#"expiry-time="202703010815Z",no-pty,environment="A=1" ssh-ed25519 "#),
        "{manager}"
    );
    // No expires any more: the option goes, the plan says the edge grants
    // more, and the admin's options stay.
    let forever = inv(&INV.replace(
        "{ worker: w01, expires: '2026-12-20T10:00:00Z' }",
        "{ worker: w01 }",
    ));
    let p = plan_at(&forever, &live, day(0));
    assert!(
        node_plan(&p, "manager")
            .warnings
            .iter()
            .any(|w| w.contains(r#"loses `expiry-time="202703010815Z"`"#)),
        "{}",
        text(&p)
    );
    live = converge_at(&forever, live, day(0));
    let manager = authorized_keys(&mut live, &forever, "manager");
    assert!(
        line_of(&manager, "w01")
            .unwrap()
            .starts_with(r#"no-pty,environment="A=1" ssh-ed25519 "#),
        "{manager}"
    );
}

#[test]
fn an_edge_granted_twice_lasts_as_long_as_its_longest_grant() {
    let i = inv(&INV.replace(
        "mesh:\n",
        "mesh:\n  - [w03, w04]\n  - { group: all, expires: 2027-01-01 }\n",
    ));
    // w03 <-> w04: also in an entry without expires.
    assert_eq!(
        i.expires(i.find("w03").unwrap(), i.find("w04").unwrap()),
        None
    );
    // w01 <-> w02: only in `all`.
    let (w01, w02, w05) = (
        i.find("w01").unwrap(),
        i.find("w02").unwrap(),
        i.find("w05").unwrap(),
    );
    assert_eq!(i.expires(w01, w02), Expiry::parse("2027-01-01").ok());
    // w05's own expires ends every edge from it first.
    assert_eq!(i.expires(w05, w01), Expiry::parse("2026-12-31").ok());
    assert_eq!(i.expires(w01, w05), Expiry::parse("2027-01-01").ok());
    // Named twice in reverse, once without expires: never ends.
    let twice = inv(&INV.replace("  - w02\n", "  - w02\n  - w01\n"));
    assert_eq!(twice.expires(w01, Inventory::MANAGER), None);
}

#[test]
fn plan_and_graph_mark_expiring_and_expired_edges() {
    let i = inv(INV);
    let live = converge_at(&i, fresh_cluster(&i), day(0));
    // 2026-12-05: the burst mesh ends within 7 days.
    let p = plan_at(&i, &live, day(0));
    assert!(p.is_empty());
    assert!(
        p.notes.iter().any(|n| n
            == "w03 -> w04 (mesh) expires 2026-12-08 10:30 UTC (in 3 days), expiring: within the warning window (options.expiry_warning_days)"),
        "{:?}",
        p.notes
    );
    assert!(!p.notes.iter().any(|n| n.contains("w01")), "{:?}", p.notes);
    // A wider window takes w01's in too.
    let wide = inv(&format!("{INV}options: {{ expiry_warning_days: 30 }}\n"));
    let p = plan_at(&wide, &live, day(0));
    assert!(
        p.notes
            .iter()
            .any(|n| n
                .starts_with("w01 -> manager (reverse) expires 2026-12-20 10:00 UTC (in 15 days)")),
        "{:?}",
        p.notes
    );

    let render = |now: Option<SystemTime>| {
        let mut out = Vec::new();
        graph::render_at(&i, &TrustGraph::build(&i), GraphFormat::Text, now, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let g = render(Some(day(2)));
    assert!(
        g.contains("w01 -> manager  reverse  full, expires 2026-12-20 10:00 UTC\n"),
        "{g}"
    );
    assert!(
        g.contains("w03 -> w04      mesh     full, expires 2026-12-08 10:30 UTC, expiring\n"),
        "{g}"
    );
    let g = render(Some(day(16)));
    assert!(g.contains("10:00 UTC, expired\n"), "{g}");
    // No clock: the time, no mark.
    let g = render(None);
    assert!(
        g.contains("expires") && !g.contains("expiring") && !g.contains(", expired"),
        "{g}"
    );
}

fn result(s: &str, t: &str, outcome: EdgeOutcome, time: Option<EdgeTime>) -> EdgeResult {
    EdgeResult {
        edge: Edge {
            kind: EdgeKind::Reverse,
            source: 1,
            target: 0,
        },
        source: s.into(),
        target: t.into(),
        policy: "full".into(),
        outcome,
        time,
    }
}

#[test]
fn verify_reports_a_refused_ended_edge_as_expired_not_failed() {
    let at = Expiry::parse("2026-12-05T10:00:00Z").unwrap();
    let refused = EdgeOutcome::Fails(EdgeFailure::new(
        FailureKind::AuthRejected,
        "the node does not accept the key".into(),
        None,
    ));
    let report = VerifyReport {
        nodes: vec!["manager".into(), "w01".into(), "w02".into()],
        certificates_ending: Vec::new(),
        edges: vec![
            result(
                "w01",
                "manager",
                refused.clone(),
                Some(EdgeTime::Expired(at)),
            ),
            result(
                "w02",
                "manager",
                EdgeOutcome::Holds,
                Some(EdgeTime::Expiring(at)),
            ),
        ],
    };
    assert!(report.all_hold());
    let s = report.summary();
    assert_eq!((s.hold, s.fail, s.expired), (1, 0, 1));
    let mut out = Vec::new();
    verify::render_text(&report, verify::VerifyTextOptions::default(), &mut out).unwrap();
    let t = String::from_utf8(out).unwrap();
    assert!(t.contains("w01      expired"), "{t}");
    assert!(
        t.contains(
            "w01 -> manager (reverse): expired 2026-12-05 10:00 UTC: refused, as expected\n"
        ),
        "{t}"
    );
    assert!(
        t.contains("w02 -> manager (reverse): expiring: ends 2026-12-05 10:00 UTC"),
        "{t}"
    );
    assert!(
        t.ends_with("Verify: 1 of 2 edges hold, 1 expired (refused as expected).\n"),
        "{t}"
    );
    let mut out = Vec::new();
    verify::render_json(&report, &mut out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // The document keeps to its committed schema, with and without the
    // expiry's fields.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/verify.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{v:#}");
    assert_eq!(v["edges"][0]["status"], "expired");
    assert_eq!(v["edges"][0]["expires"], "2026-12-05T10:00:00Z");
    assert_eq!(v["edges"][1]["status"], "ok");
    assert_eq!(v["edges"][1]["expiring"], true);
    assert_eq!(v["summary"]["expired"], 1);
    // Refused for another reason, it fails.
    let down = VerifyReport {
        nodes: report.nodes.clone(),
        certificates_ending: Vec::new(),
        edges: vec![result(
            "w01",
            "manager",
            EdgeOutcome::Fails(EdgeFailure::new(
                FailureKind::Timeout,
                "no answer".into(),
                None,
            )),
            Some(EdgeTime::Expired(at)),
        )],
    };
    assert!(!down.all_hold());
}

/// (code, line, column, message) of every problem reported for `text`.
fn problems(text: &str) -> Vec<(String, usize, usize, String)> {
    match Inventory::from_str_at("t.yaml", text, day(0)) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| {
                (
                    p.problem.code.to_string(),
                    p.line,
                    p.column,
                    p.problem.message.clone(),
                )
            })
            .collect(),
    }
}

#[test]
fn malformed_values_are_placed_and_say_why() {
    let text = "\
version: 1
manager: { name: m, address: 10.0.0.1 }
workers:
  - { name: w1, address: 10.0.0.2, expires: next-week, groups: [g] }
  - { name: w2, address: 10.0.0.3, groups: [g] }
reverse:
  - { worker: w1, expires: '2026-02-30' }
mesh:
  - group: g
    expires: '2026-12-05T10:00:00'
";
    let got = problems(text);
    let want = [
        (4, 45, "`next-week` is not a time trustmesh reads for `expires`: not a date"),
        (7, 28, "`2026-02-30` is not a time trustmesh reads for `expires`: there is no such day"),
        (10, 14, "`2026-12-05T10:00:00` is not a time trustmesh reads for `expires`: the time has no time zone"),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((code, line, col, msg), (l, c, m)) in got.iter().zip(want) {
        assert_eq!(code, "trustmesh::inventory::expires");
        assert_eq!((*line, *col), (l, c), "{msg}");
        assert!(msg.starts_with(m), "{msg}");
    }
}

#[test]
fn validate_warns_on_a_time_already_past() {
    let i = Inventory::from_str_at("inventory.yaml", INV, day(20)).unwrap();
    let w: Vec<String> = i
        .warnings
        .iter()
        .filter(|w| w.code == "trustmesh::inventory::expires_past")
        .map(|w| w.to_string())
        .collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("inventory.yaml:12:"), "{w:?}");
    assert!(
        w.iter().any(|w| w.contains("(2026-12-20 10:00 UTC)")),
        "{w:?}"
    );
    // Not yet past: no warning.
    assert!(inv(INV).warnings.is_empty());
}
