//! What `verify` found: one [`EdgeOutcome`] per edge, and the counts.

use serde::Serialize;

use crate::model::finding::{Finding, Hint};
use crate::model::graph::Edge;
use crate::model::inventory::expiry::EdgeTime;
use crate::transport::FailureKind;

/// Why an edge failed, sorted from what ssh printed: the transport's
/// [`crate::transport::Failure`] (kind, reason, hint), in the edge's words.
pub type EdgeFailure = crate::transport::Failure;

/// What came of one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdgeOutcome {
    /// `ssh B true` worked from A.
    Holds,
    /// It was tried and failed.
    Fails(EdgeFailure),
    /// It could not be tried (the source could not be reached, ...): the
    /// step `verify`, why, and what to try. Counts as a failure.
    NotTried(Finding),
}

impl EdgeOutcome {
    /// An edge verify could not try: why, and what to try.
    pub fn not_tried(reason: String, hint: Option<Hint>) -> EdgeOutcome {
        EdgeOutcome::NotTried(Finding::new("verify", reason, hint))
    }

    pub fn holds(&self) -> bool {
        matches!(self, EdgeOutcome::Holds)
    }
}

/// One edge and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeResult {
    pub edge: Edge,
    pub source: String,
    pub target: String,
    /// What the edge allows (`full`, `sftp-only`, `from ...`), as `graph`
    /// shows it.
    pub policy: String,
    pub outcome: EdgeOutcome,
    /// When the edge ends (`expires:`), and whether it ends within the
    /// warning window or has ended at the run's time.
    pub time: Option<EdgeTime>,
}

impl EdgeResult {
    /// An ended edge whose key sshd refused: what is expected of it.
    pub fn refused_as_expired(&self) -> bool {
        matches!(self.time, Some(EdgeTime::Expired(_)))
            && matches!(&self.outcome, EdgeOutcome::Fails(f) if f.kind == FailureKind::AuthRejected)
    }

    /// It holds, or it has ended and is refused: nothing to fix.
    pub fn as_expected(&self) -> bool {
        self.outcome.holds() || self.refused_as_expired()
    }
}

/// Every edge in scope, tried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Names of the nodes in scope, in inventory order: the matrix's rows
    /// and columns.
    pub nodes: Vec<String>,
    /// In the trust graph's order (kind, then source, then target).
    pub edges: Vec<EdgeResult>,
    /// `certificates:`: the certificates ending within `renew_before` (or
    /// ended), one line each.
    pub certificates_ending: Vec<String>,
}

/// Counts for the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Summary")]
pub struct VerifySummary {
    pub edges: usize,
    pub hold: usize,
    pub fail: usize,
    pub not_tried: usize,
    /// Ended edges (`expires:` past) that sshd refused, as expected: not
    /// failures. Left out of the JSON when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub expired: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl VerifyReport {
    pub fn summary(&self) -> VerifySummary {
        let mut s = VerifySummary {
            edges: self.edges.len(),
            ..VerifySummary::default()
        };
        for e in &self.edges {
            if e.refused_as_expired() {
                s.expired += 1;
                continue;
            }
            match e.outcome {
                EdgeOutcome::Holds => s.hold += 1,
                EdgeOutcome::Fails(_) => s.fail += 1,
                EdgeOutcome::NotTried(_) => s.not_tried += 1,
            }
        }
        s
    }

    /// Whether every edge holds, or has ended and is refused (the exit
    /// status of `verify`).
    pub fn all_hold(&self) -> bool {
        self.edges.iter().all(EdgeResult::as_expected)
    }
}
