//! `verify`'s output: the source x target matrix (a list by source for
//! many nodes), one line per failing edge and the summary as text, or one
//! JSON document. Pure: both write into any `Write`. In text, names,
//! reasons and hints (ssh's stderr among them) are escaped
//! ([`crate::output::escape`]).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

use schemars::JsonSchema;
use serde::Serialize;

use super::report::{EdgeOutcome, EdgeResult, VerifyReport, VerifySummary};
use crate::model::finding::Hint;
use crate::model::graph::EdgeKind;
use crate::model::inventory::expiry::EdgeTime;
use crate::output::escape::{self, Esc};
use crate::output::Paint;
use crate::transport::FailureKind;

/// Version of the JSON document of `verify --json`.
pub const VERIFY_FORMAT_VERSION: u32 = 1;

/// Above this many nodes, or this width, the matrix becomes a list.
const MATRIX_MAX_NODES: usize = 16;
const MATRIX_MAX_WIDTH: usize = 120;

/// Text rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyTextOptions {
    pub color: bool,
    /// Only the failing edges and the summary line (`-q`).
    pub quiet: bool,
}

/// A matrix cell: the text, and its colour code.
fn cell(edge: Option<&EdgeResult>) -> (&'static str, &'static str) {
    match edge {
        None => ("-", "2"),
        Some(e) if e.refused_as_expired() => ("expired", "36"),
        Some(e) => match e.outcome {
            EdgeOutcome::Holds => ("ok", "32"),
            EdgeOutcome::Fails(_) => ("FAIL", "1;31"),
            EdgeOutcome::NotTried(_) => ("?", "33"),
        },
    }
}

/// `Verify: 12 of 12 edges hold.` / `Verify: 10 of 12 edges hold, 2 fail.`
pub fn summary_line(s: &VerifySummary) -> String {
    if s.edges == 0 {
        return "Verify: no edges to try.".to_string();
    }
    let mut line = format!(
        "Verify: {} of {} {} {}",
        s.hold,
        s.edges,
        if s.edges == 1 { "edge" } else { "edges" },
        if s.edges == 1 { "holds" } else { "hold" },
    );
    if s.fail > 0 {
        line.push_str(&format!(
            ", {} {}",
            s.fail,
            if s.fail == 1 { "fails" } else { "fail" }
        ));
    }
    if s.not_tried > 0 {
        line.push_str(&format!(", {} not tried", s.not_tried));
    }
    if s.expired > 0 {
        line.push_str(&format!(", {} expired (refused as expected)", s.expired));
    }
    line.push('.');
    line
}

/// Render the report as text: the matrix (or, for many nodes, a list by
/// source), one line per failing edge with its hint, and the summary line,
/// separated by blank lines.
pub fn render_text(
    report: &VerifyReport,
    opts: VerifyTextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let p = Paint { on: opts.color };
    let mut sections: Vec<String> = Vec::new();
    if !opts.quiet && !report.edges.is_empty() {
        sections.push(overview(report, &p));
    }
    let failing = failures(report, &p);
    if !failing.is_empty() {
        sections.push(failing);
    }
    let ending = ending(report) + &super::certificates::text(&report.certificates_ending);
    if !ending.is_empty() {
        sections.push(ending);
    }
    sections.push(format!("{}\n", summary_line(&report.summary())));
    out.write_all(sections.join("\n").as_bytes())
}

/// The matrix, or the list by source when the matrix would not be readable.
fn overview(report: &VerifyReport, p: &Paint) -> String {
    let cells: HashMap<(&str, &str), &EdgeResult> = report
        .edges
        .iter()
        .map(|e| ((e.source.as_str(), e.target.as_str()), e))
        .collect();
    let expired = report.edges.iter().any(EdgeResult::refused_as_expired);
    let min_w = if expired { "expired".len() } else { 4 };
    // Names as printed: the widths are those of the escaped text.
    let shown: HashMap<&str, String> = report
        .nodes
        .iter()
        .map(|n| (n.as_str(), escape::text(n).into_owned()))
        .collect();
    let show = |n: &str| -> String {
        shown
            .get(n)
            .cloned()
            .unwrap_or_else(|| escape::text(n).into_owned())
    };
    let label_w = shown.values().map(|n| n.chars().count()).max().unwrap_or(0);
    let col_w: Vec<usize> = report
        .nodes
        .iter()
        .map(|n| show(n).chars().count().max(min_w))
        .collect();
    let width = label_w + col_w.iter().map(|w| w + 2).sum::<usize>();
    let mut s = String::new();
    if report.nodes.len() <= MATRIX_MAX_NODES && width <= MATRIX_MAX_WIDTH {
        let mut header = " ".repeat(label_w);
        for (name, w) in report.nodes.iter().zip(&col_w) {
            header.push_str("  ");
            header.push_str(&pad(&show(name), *w));
        }
        s.push_str(header.trim_end());
        s.push('\n');
        for src in &report.nodes {
            let mut row = pad(&show(src), label_w);
            let mut gap = 0;
            for (tgt, w) in report.nodes.iter().zip(&col_w) {
                let (text, code) = cell(cells.get(&(src.as_str(), tgt.as_str())).copied());
                // Padding goes before the next cell, never after the last.
                row.push_str(&" ".repeat(gap + 2));
                row.push_str(&p.wrap(code, text));
                gap = w.saturating_sub(text.len());
            }
            s.push_str(&row);
            s.push('\n');
        }
        s.push_str(&p.wrap(
            "2",
            if expired {
                "(rows: source, columns: target; ok holds, FAIL fails, expired ended and refused, ? not tried, - no edge)"
            } else {
                "(rows: source, columns: target; ok holds, FAIL fails, ? not tried, - no edge)"
            },
        ));
        s.push('\n');
        return s;
    }
    for src in &report.nodes {
        let mine: Vec<&EdgeResult> = report.edges.iter().filter(|e| &e.source == src).collect();
        if mine.is_empty() {
            continue;
        }
        let hold = mine.iter().filter(|e| e.outcome.holds()).count();
        s.push_str(&format!(
            "{}: {hold} of {} {}",
            show(src),
            mine.len(),
            if mine.len() == 1 { "holds" } else { "hold" }
        ));
        let fails: Vec<String> = mine
            .iter()
            .filter(|e| matches!(e.outcome, EdgeOutcome::Fails(_)) && !e.refused_as_expired())
            .map(|e| show(&e.target))
            .collect();
        let expired: Vec<String> = mine
            .iter()
            .filter(|e| e.refused_as_expired())
            .map(|e| show(&e.target))
            .collect();
        let untried: Vec<String> = mine
            .iter()
            .filter(|e| matches!(e.outcome, EdgeOutcome::NotTried(_)))
            .map(|e| show(&e.target))
            .collect();
        if !fails.is_empty() {
            s.push_str(&format!(
                "; {} {}",
                p.wrap("1;31", "FAIL:"),
                fails.join(", ")
            ));
        }
        if !untried.is_empty() {
            s.push_str(&format!(
                "; {} {}",
                p.wrap("33", "not tried:"),
                untried.join(", ")
            ));
        }
        if !expired.is_empty() {
            s.push_str(&format!(
                "; {} {}",
                p.wrap("36", "expired:"),
                expired.join(", ")
            ));
        }
        s.push('\n');
    }
    s
}

/// One line per edge that does not hold, with its hint (each hint once:
/// a node down gives many edges the same advice). A reason or a hint is
/// one line: a newline in it (ssh's stderr) is escaped too.
fn failures(report: &VerifyReport, p: &Paint) -> String {
    let mut s = String::new();
    let mut hints_shown: HashSet<Cow<'_, str>> = HashSet::new();
    for e in report.edges.iter().filter(|e| !e.refused_as_expired()) {
        let (what, hint) = match &e.outcome {
            EdgeOutcome::Holds => continue,
            EdgeOutcome::Fails(f) => (
                f.finding.reason.clone(),
                f.finding.hint.as_ref().map(Hint::words),
            ),
            EdgeOutcome::NotTried(f) => (
                format!("not tried: {}", f.reason),
                f.hint.as_ref().map(Hint::words),
            ),
        };
        s.push_str(&format!(
            "{} -> {} ({}): {}\n",
            escape::text(&e.source),
            escape::text(&e.target),
            e.edge.kind.as_str(),
            Esc(&what)
        ));
        if let Some(h) = hint {
            if hints_shown.insert(h.clone()) {
                s.push_str(&format!("  {} {}\n", p.wrap("2", "hint:"), Esc(&h)));
            }
        }
    }
    s
}

/// One line per edge that ends within the warning window, or has ended and
/// is refused as expected.
fn ending(report: &VerifyReport) -> String {
    let mut s = String::new();
    for e in &report.edges {
        let what = match e.time {
            Some(EdgeTime::Expiring(at)) => {
                format!("expiring: ends {at}, within the warning window")
            }
            Some(EdgeTime::Expired(at)) if e.refused_as_expired() => {
                format!("expired {at}: refused, as expected")
            }
            _ => continue,
        };
        s.push_str(&format!(
            "{} -> {} ({}): {what}\n",
            escape::text(&e.source),
            escape::text(&e.target),
            e.edge.kind.as_str(),
        ));
    }
    s
}

/// `s` padded with spaces to `w` characters.
fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(w - n))
    }
}

/// One edge in `verify --json`.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "VerifyEdge")]
struct JsonEdge<'a> {
    source: &'a str,
    target: &'a str,
    kind: EdgeKind,
    /// What the edge allows: `full`, `sftp-only`, and `, from ADDRESSES`
    /// when restricted, `, expires TIME` when it ends.
    policy: &'a str,
    /// When the edge ends (`expires:`), RFC 3339 in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    /// It ends within the warning window (`options.expiry_warning_days`);
    /// left out when not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    expiring: bool,
    ok: bool,
    status: EdgeStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a Hint>,
}

/// What came of an edge.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum EdgeStatus {
    /// It holds.
    Ok,
    /// It was tried and failed (`failure` says how).
    Fail,
    /// It could not be tried (its source was not reached...): counts as a
    /// failure.
    NotTried,
    /// Its `expires:` time has passed and sshd refused its key, as
    /// expected: not a failure.
    Expired,
}

/// The document `verify --json` prints.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "VerifyOutput")]
struct JsonReport<'a> {
    /// The version of this document's shape.
    format_version: u32,
    /// The nodes in scope, in inventory order.
    nodes: &'a [String],
    /// Every edge in scope, in the trust graph's order.
    edges: Vec<JsonEdge<'a>>,
    summary: VerifySummary,
    /// Certificates ending within `renew_before` (or ended); left out when none.
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    certificates_ending: &'a [String],
}

/// Render the report as one JSON document.
pub fn render_json(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    let edges = report
        .edges
        .iter()
        .map(|e| {
            let (status, failure, reason, hint) = match &e.outcome {
                _ if e.refused_as_expired() => (EdgeStatus::Expired, None, None, None),
                EdgeOutcome::Holds => (EdgeStatus::Ok, None, None, None),
                EdgeOutcome::Fails(f) => (
                    EdgeStatus::Fail,
                    Some(f.kind),
                    Some(f.finding.reason.as_str()),
                    f.finding.hint.as_ref(),
                ),
                EdgeOutcome::NotTried(f) => (
                    EdgeStatus::NotTried,
                    None,
                    Some(f.reason.as_str()),
                    f.hint.as_ref(),
                ),
            };
            JsonEdge {
                source: &e.source,
                target: &e.target,
                kind: e.edge.kind,
                policy: &e.policy,
                expires: e.time.map(|t| t.at().rfc3339()),
                expiring: matches!(e.time, Some(EdgeTime::Expiring(_))),
                ok: e.outcome.holds(),
                status,
                failure,
                reason,
                hint,
            }
        })
        .collect();
    let doc = JsonReport {
        format_version: VERIFY_FORMAT_VERSION,
        nodes: &report.nodes,
        edges,
        summary: report.summary(),
        certificates_ending: &report.certificates_ending,
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::from)?;
    writeln!(out)
}

/// The JSON Schema of `verify --json`, as committed in
/// `schemas/verify.schema.json`.
pub fn json_schema() -> schemars::schema::RootSchema {
    schemars::schema_for!(JsonReport<'static>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::Edge;
    use crate::verify::EdgeFailure;

    fn result(kind: EdgeKind, s: &str, t: &str, outcome: EdgeOutcome) -> EdgeResult {
        EdgeResult {
            edge: Edge {
                kind,
                source: 0,
                target: 0,
            },
            source: s.into(),
            target: t.into(),
            policy: "full".into(),
            outcome,
            time: None,
        }
    }

    fn sample() -> VerifyReport {
        let auth = EdgeOutcome::Fails(EdgeFailure::new(
            FailureKind::AuthRejected,
            "the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)"
                .into(),
            Some(Hint::text("`trustmesh plan` shows what is missing")),
        ));
        let down = EdgeOutcome::not_tried(
            "source unreachable (at connect: no answer from 127.0.0.5:22 in time)".into(),
            Some(Hint::text("check that the host is up")),
        );
        use EdgeKind::*;
        VerifyReport {
            nodes: vec![
                "manager".into(),
                "node1".into(),
                "node2".into(),
                "node3".into(),
            ],
            edges: vec![
                result(Forward, "manager", "node1", EdgeOutcome::Holds),
                result(Forward, "manager", "node2", EdgeOutcome::Holds),
                result(Forward, "manager", "node3", EdgeOutcome::Holds),
                result(Reverse, "node1", "manager", EdgeOutcome::Holds),
                result(Mesh, "node1", "node2", EdgeOutcome::Holds),
                result(Mesh, "node1", "node3", EdgeOutcome::Holds),
                result(Mesh, "node2", "node1", EdgeOutcome::Holds),
                result(Mesh, "node2", "node3", auth),
                result(Mesh, "node3", "node1", down.clone()),
                result(Mesh, "node3", "node2", down),
            ],
            certificates_ending: vec![],
        }
    }

    fn text(r: &VerifyReport, opts: VerifyTextOptions) -> String {
        let mut out = Vec::new();
        render_text(r, opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_a_matrix_then_the_failures_then_the_summary() {
        assert_eq!(
            text(&sample(), VerifyTextOptions::default()),
            "         manager  node1  node2  node3
manager  -        ok     ok     ok
node1    ok       -      ok     ok
node2    -        ok     -      FAIL
node3    -        ?      ?      -
(rows: source, columns: target; ok holds, FAIL fails, ? not tried, - no edge)

node2 -> node3 (mesh): the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)
  hint: `trustmesh plan` shows what is missing
node3 -> node1 (mesh): not tried: source unreachable (at connect: no answer from 127.0.0.5:22 in time)
  hint: check that the host is up
node3 -> node2 (mesh): not tried: source unreachable (at connect: no answer from 127.0.0.5:22 in time)

Verify: 7 of 10 edges hold, 1 fails, 2 not tried.
"
        );
        assert_eq!(
            text(
                &sample(),
                VerifyTextOptions {
                    quiet: true,
                    ..VerifyTextOptions::default()
                }
            )
            .lines()
            .next(),
            Some("node2 -> node3 (mesh): the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)")
        );
    }

    #[test]
    fn all_holding_is_one_matrix_and_one_line() {
        let mut r = sample();
        for e in &mut r.edges {
            e.outcome = EdgeOutcome::Holds;
        }
        let t = text(&r, VerifyTextOptions::default());
        assert!(
            t.ends_with("- no edge)\n\nVerify: 10 of 10 edges hold.\n"),
            "{t}"
        );
        assert!(r.all_hold());
        let empty = VerifyReport {
            nodes: vec!["m".into()],
            edges: vec![],
            certificates_ending: vec![],
        };
        assert_eq!(
            text(&empty, VerifyTextOptions::default()),
            "Verify: no edges to try.\n"
        );
        assert!(empty.all_hold());
    }

    #[test]
    fn colour_keeps_the_columns_aligned() {
        let t = text(
            &sample(),
            VerifyTextOptions {
                color: true,
                quiet: false,
            },
        );
        let row = t.lines().nth(3).unwrap();
        assert_eq!(
            row,
            "node2    \x1b[2m-\x1b[0m        \x1b[32mok\x1b[0m     \x1b[2m-\x1b[0m      \x1b[1;31mFAIL\x1b[0m"
        );
    }

    #[test]
    fn many_nodes_fall_back_to_a_list() {
        let nodes: Vec<String> = (0..20).map(|i| format!("n{i:02}")).collect();
        let mut edges = Vec::new();
        for s in &nodes[1..] {
            edges.push(result(EdgeKind::Reverse, s, "n00", EdgeOutcome::Holds));
        }
        edges[3].outcome = EdgeOutcome::not_tried("x".into(), None);
        let mut r = VerifyReport::default();
        (r.nodes, r.edges) = (nodes, edges);
        let t = text(&r, VerifyTextOptions::default());
        assert!(t.starts_with("n01: 1 of 1 holds\n"), "{t}");
        assert!(t.contains("n04: 0 of 1 holds; not tried: n00\n"), "{t}");
        assert!(!t.contains("n00:"), "{t}");
        assert!(
            t.ends_with("Verify: 18 of 19 edges hold, 1 not tried.\n"),
            "{t}"
        );
    }

    #[test]
    fn summary_lines() {
        let s = |edges, hold, fail, not_tried| {
            summary_line(&VerifySummary {
                edges,
                hold,
                fail,
                not_tried,
                expired: 0,
            })
        };
        assert_eq!(s(12, 12, 0, 0), "Verify: 12 of 12 edges hold.");
        assert_eq!(s(12, 10, 2, 0), "Verify: 10 of 12 edges hold, 2 fail.");
        assert_eq!(s(1, 0, 1, 0), "Verify: 0 of 1 edge holds, 1 fails.");
        assert_eq!(s(3, 1, 0, 2), "Verify: 1 of 3 edges hold, 2 not tried.");
    }

    #[test]
    fn json_has_every_edge_and_the_summary() {
        let mut out = Vec::new();
        render_json(&sample(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["edges"].as_array().unwrap().len(), 10);
        assert_eq!(
            v["edges"][0],
            serde_json::json!({"source": "manager", "target": "node1", "kind": "forward", "policy": "full", "ok": true, "status": "ok"})
        );
        assert_eq!(
            v["edges"][7],
            serde_json::json!({"source": "node2", "target": "node3", "kind": "mesh", "policy": "full", "ok": false, "status": "fail",
                "failure": "auth_rejected",
                "reason": "the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)",
                "hint": "`trustmesh plan` shows what is missing"})
        );
        assert_eq!(v["edges"][8]["status"], "not_tried");
        assert_eq!(v["edges"][8]["ok"], false);
        assert_eq!(
            v["summary"],
            serde_json::json!({"edges": 10, "hold": 7, "fail": 1, "not_tried": 2})
        );
    }
}
