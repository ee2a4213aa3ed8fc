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
/// apply; take the state each node read back in the round trip of its
/// writes (reading again over the same connections only the nodes whose
/// report is missing or doubtful) and plan again.
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
    let ran = actions::apply(
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
    let report = ran.report;
    op.progress(Progress::Applied(&report));
    // The state after apply: what each node reported in the round trip of
    // its writes; read again (over the same connections) only where that
    // report is missing or doubtful. Converged only if there is nothing
    // left to do.
    let mut after = g;
    let which = settle(inv, &fresh, &mut after, ran.read_back);
    if let Err(source) = gather::reread_some(inv, &mut after, opts.timeout, &which).await {
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
    settled.rotate_ca = false;
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

/// Take each node's state read back in its own round trip as its state
/// after apply, and say which nodes must be read again: the manager
/// (always), a node whose report is missing (a transport error, a list
/// not done in one round trip, something else of it that ended once its
/// last batch was sent: `apply::walk`'s rule), a node reached
/// with a password (its read proves the manager's key now opens it) or
/// over SFTP. A node the plan did not touch keeps the state it was read
/// in.
fn settle(
    inv: &Inventory,
    fresh: &Plan,
    g: &mut gather::Gathered,
    read_back: Vec<Option<crate::model::state::LiveAccount>>,
) -> Vec<bool> {
    let mut which = vec![false; inv.nodes.len()];
    for np in fresh.nodes.iter().filter(|n| !n.changes.is_empty()) {
        if let Some(id) = inv.find(&np.node) {
            which[id] = true;
        }
    }
    for (id, account) in read_back.into_iter().enumerate() {
        let (Some(mut account), true) = (account, which[id]) else {
            continue;
        };
        let remote = matches!(
            g.hosts.get(id),
            Some(Some(crate::transport::Host::Remote { .. }))
        );
        if id == Inventory::MANAGER || !remote || crate::node::abilities(&inv.nodes[id]).sftp {
            continue;
        }
        let crate::model::state::NodeState::Read { account: old, .. } = &g.live.nodes[id] else {
            continue;
        };
        // The host keys proven when the node was first read stay: the
        // connection is the same.
        account.proven_host_keys = old.proven_host_keys.clone();
        if let crate::model::state::NodeState::Read { account: a, .. } = &mut g.live.nodes[id] {
            *a = account;
        }
        which[id] = false;
    }
    which
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
        if n.signing_blocked.is_some() {
            say(&n.node, "certificate not signed");
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
