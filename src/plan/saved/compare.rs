//! A fresh plan against the saved one, node by node: `apply --plan` goes
//! ahead only when nothing differs.

use super::{AcceptedHostKey, SavedPlan};
use crate::model::finding::Finding;
use crate::plan::{NodePlan, NodeStatus};

/// One way a fresh plan differs from the saved one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub node: String,
    pub what: String,
}

/// Everything that differs between the saved plan's nodes and a fresh
/// plan's. Empty: the fresh plan is exactly what was approved.
pub fn differences(saved: &[NodePlan], fresh: &[NodePlan]) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |node: &str, what: String| Difference {
        node: node.to_string(),
        what,
    };
    for s in saved {
        let Some(f) = fresh.iter().find(|f| f.node == s.node) else {
            out.push(diff(&s.node, "not in a fresh plan".into()));
            continue;
        };
        if f.target != s.target {
            out.push(diff(
                &s.node,
                format!(
                    "reached as {} now, {} in the saved plan",
                    f.target, s.target
                ),
            ));
        }
        if f.status != s.status {
            out.push(diff(
                &s.node,
                format!("{} now, {} in the saved plan", status(f), status(s)),
            ));
        }
        if f.access != s.access {
            out.push(diff(
                &s.node,
                format!(
                    "reached with {:?} now, {:?} in the saved plan",
                    f.access, s.access
                )
                .to_lowercase(),
            ));
        }
        for b in &s.base {
            match f.base.iter().find(|fb| fb.path == b.path) {
                Some(fb) if fb.content == b.content => {}
                Some(_) => out.push(diff(
                    &s.node,
                    format!("{} changed since the plan was saved", b.path),
                )),
                None => out.push(diff(
                    &s.node,
                    format!("{} is not read by a fresh plan", b.path),
                )),
            }
        }
        if let Some(fb) = f
            .base
            .iter()
            .find(|fb| !s.base.iter().any(|b| b.path == fb.path))
        {
            out.push(diff(
                &s.node,
                format!("{} is not in the saved plan", fb.path),
            ));
        }
        if f.changes != s.changes {
            let count = |changes: &[crate::plan::Change]| changes.len();
            let first = s
                .changes
                .iter()
                .zip(&f.changes)
                .position(|(a, b)| a != b)
                .unwrap_or(s.changes.len().min(f.changes.len()));
            out.push(diff(
                &s.node,
                format!(
                    "the changes differ (saved: {}, fresh: {}; first difference at change {})",
                    count(&s.changes),
                    count(&f.changes),
                    first + 1
                ),
            ));
        }
    }
    for f in fresh {
        if !saved.iter().any(|s| s.node == f.node) && !f.changes.is_empty() {
            out.push(diff(&f.node, "has changes not in the saved plan".into()));
        }
    }
    out
}

fn status(n: &NodePlan) -> &'static str {
    match n.status {
        NodeStatus::Planned => "planned",
        NodeStatus::Unreachable(_) => "unreachable",
        NodeStatus::Skipped { .. } => "skipped",
        NodeStatus::Blocked(_) => "blocked",
    }
}

/// The nodes whose host key, accepted on first use when the plan was made
/// and pinned for the apply, kept them from being read now: the node, the
/// saved fingerprints and what the host presents (the pin's refusal).
pub fn host_key_differences(saved: &[AcceptedHostKey], fresh: &[NodePlan]) -> Vec<Difference> {
    let mut out = Vec::new();
    for key in saved {
        let Some(f) = fresh.iter().find(|f| f.node == key.node) else {
            continue;
        };
        let NodeStatus::Unreachable(Finding { step, reason, .. }) = &f.status else {
            continue;
        };
        let accepted = key.fingerprints.join(", ");
        let what = if step == "host key" {
            format!(
                "its host key is not the one accepted on first use when the plan was made ({accepted}): {reason}"
            )
        } else {
            format!(
                "unreachable now ({step}: {reason}), reached with its host key pinned to the one accepted on first use when the plan was made ({accepted})"
            )
        };
        out.push(Difference {
            node: key.node.clone(),
            what,
        });
    }
    out
}

impl SavedPlan {
    /// Everything that differs between this plan and a fresh one made with
    /// its host keys pinned: a node whose pinned host key refused it is
    /// said so, in place of what follows from it (unread, so its changes
    /// and files differ too).
    pub fn differences(&self, fresh: &[NodePlan]) -> Vec<Difference> {
        let mut out = host_key_differences(&self.host_keys, fresh);
        let keyed: Vec<String> = out.iter().map(|d| d.node.clone()).collect();
        out.extend(
            differences(&self.nodes, fresh)
                .into_iter()
                .filter(|d| !keyed.contains(&d.node)),
        );
        out
    }
}
