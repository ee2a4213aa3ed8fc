//! `apply` as an operation: read, plan, hold a saved plan to the fresh
//! one, ask consent, change, read back, plan again.

use crate::apply::{self as actions, ApplyOptions, ApplyReport};
use crate::gather;
use crate::model::graph::TrustGraph;
use crate::model::inventory::Inventory;
use crate::plan::saved::SavedPlan;
use crate::plan::{self, Change, NodeStatus, Plan};
use crate::transport::sshconfig;

use super::{gather_options, read, Operator, OpsError, Progress, ReadOptions};

/// `apply`'s report.
#[derive(Debug, Clone)]
pub struct ApplyOutcome {
    /// The plan made from the live state: what was applied, when it had
    /// changes.
    pub plan: Plan,
    /// `None`: the plan had nothing to change, and nothing was done.
    pub applied: Option<Applied>,
}

/// What a run that changed something did, and the state it read back.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Each action's result.
    pub report: ApplyReport,
    /// The plan made from the state read back (a rotation, asked for once,
    /// left out).
    pub after: Plan,
    /// The nodes whose state read back differs from the inventory, each
    /// with why (`node1 (changes left)`); empty: converged.
    pub left: Vec<String>,
}

impl ApplyOutcome {
    /// The state read back matches the inventory (with nothing to do: the
    /// plan is complete).
    pub fn converged(&self) -> bool {
        match &self.applied {
            None => !self.plan.incomplete(),
            Some(a) => a.left.is_empty(),
        }
    }

    /// The nodes whose key rotation the plan refused.
    pub fn refused_rotations(&self) -> Vec<&str> {
        self.plan.refused_rotations().map(|(n, _)| n).collect()
    }
}

/// Read every node and plan; with `saved`, refuse unless the fresh plan is
/// exactly the saved one (its approval), else ask the operator's consent;
/// apply; read everything back over the same connections and plan again.
/// Nothing changes before consent.
pub async fn apply(
    inv: &Inventory,
    graph: &TrustGraph,
    opts: ReadOptions,
    saved: Option<&SavedPlan>,
    op: &dyn Operator,
) -> Result<ApplyOutcome, OpsError> {
    let opts = gather_options(opts, op)?;
    let g = read(inv, graph, &opts, op).await?;
    let fresh = plan::plan(inv, graph, &g.live, &opts.scope);
    // A saved plan is an approval of exactly these changes, not a program.
    if let Some(saved) = saved {
        let differences = saved.differences(&fresh.nodes);
        if !differences.is_empty() {
            g.close().await;
            return Err(OpsError::SavedPlanDiffers {
                fresh: Box::new(fresh),
                differences,
            });
        }
    }
    op.progress(Progress::Planned(&fresh));
    if fresh.is_empty() {
        g.close().await;
        return Ok(ApplyOutcome {
            plan: fresh,
            applied: None,
        });
    }
    if saved.is_none() && !op.confirm(&fresh) {
        g.close().await;
        return Err(OpsError::Cancelled);
    }
    let report = actions::apply(
        inv,
        graph,
        &fresh,
        &g.hosts,
        &ApplyOptions {
            concurrency: opts.concurrency,
            timeout: opts.timeout,
            prove: crate::verify::command_settings(inv, &g, opts.timeout.as_secs().max(1)),
            run_dir: Some(g.run.path().to_path_buf()),
            // Each node's known_hosts of this run: what was trusted for it
            // (its pin alone, when pinned) and what its sshd proved.
            known_hosts: (0..inv.nodes.len())
                .map(|id| sshconfig::proof_path(&g.run.proof_dir(), &sshconfig::alias(inv, id)))
                .filter(|p| p.exists())
                .collect(),
            pins: Vec::new(),
        },
    )
    .await;
    op.progress(Progress::Applied(&report));
    // Read everything again over the same connections: converged only if
    // there is nothing left to do.
    let mut after = g;
    if let Err(source) = gather::reread(inv, &mut after, opts.timeout).await {
        after.close().await;
        return Err(OpsError::NotReadBack {
            plan: Box::new(fresh),
            report: Box::new(report),
            source,
        });
    }
    // A rotation is asked for once: the state read back is judged without
    // it.
    let mut settled = opts.scope.clone();
    settled.rotate.clear();
    let again = plan::plan(inv, graph, &after.live, &settled);
    after.close().await;
    let left = differing(inv, graph, &fresh, &again);
    Ok(ApplyOutcome {
        plan: fresh,
        applied: Some(Applied {
            report,
            after: again,
            left,
        }),
    })
}

/// The nodes whose state read back differs from the inventory, each with
/// why: every node of the plan read back (those the run touched among
/// them), and every node a rotated key opens, which must have been read
/// back too.
fn differing(inv: &Inventory, graph: &TrustGraph, fresh: &Plan, again: &Plan) -> Vec<String> {
    let mut left: Vec<String> = Vec::new();
    let mut say = |node: &str, why: &str| {
        let entry = format!("{node} ({why})");
        if !left.contains(&entry) {
            left.push(entry);
        }
    };
    for n in &again.nodes {
        match n.status {
            NodeStatus::Planned if n.changes.is_empty() => {}
            NodeStatus::Planned => say(&n.node, "changes left"),
            NodeStatus::Unreachable { .. } => say(&n.node, "not read back"),
            NodeStatus::Skipped { .. } => say(&n.node, "skipped"),
            NodeStatus::Blocked { .. } => say(&n.node, "blocked"),
        }
    }
    let read_back = |name: &str| again.nodes.iter().any(|n| n.node == name);
    for n in &fresh.nodes {
        let rotated = n
            .changes
            .iter()
            .any(|c| matches!(c, Change::RotateKey { .. }));
        if !n.changes.is_empty() && !read_back(&n.node) {
            say(&n.node, "not read back");
        }
        let Some(id) = inv.find(&n.node).filter(|_| rotated) else {
            continue;
        };
        for e in graph.outgoing(id) {
            let t = &inv.nodes[e.target].name;
            if !read_back(t) {
                say(t, "opened by a rotated key, not read back");
            }
        }
    }
    left
}
