//! Carrying out a plan: actions in dependency order, nothing lost.
//!
//! The plan's changes become actions in a petgraph DAG: `~/.ssh` exists
//! before anything is written in it; a key is generated before its public
//! half is written into anyone's `authorized_keys`; a file is edited before
//! its mode is fixed. (Bastions are already reached before what sits behind
//! them: the connections come from [`crate::gather`], in that order.)
//! The executor walks this graph ([`walk`]): each node's actions go
//! together as soon as what they wait for is done (a node's key
//! generation in one round trip, then all its other writes and their
//! read-back in one more), nodes in parallel, bounded by `--concurrency`.
//!
//! Each action goes to its node's door ([`crate::node::Door`]) as one
//! [`crate::node::Op`]; apply never asks which protocol is behind it.
//! Every file is replaced atomically after a compare-and-swap against what
//! the plan read, so an edit made by someone else since is never
//! overwritten: that file is reported as a conflict and the node is
//! re-planned by the caller. A failed action skips only what depends on
//! it; everything else still converges.

use std::collections::HashMap;
use std::time::Duration;

use petgraph::graph::NodeIndex;
use petgraph::Direction;

use crate::model::graph::TrustGraph;
use crate::model::inventory::Inventory;
use crate::model::state::LiveAccount;
use crate::node::Door;
use crate::plan::{Change, FileEdit, FileRole, Login, NodeFiles, Plan};
use crate::transport::scripts::{self, Outcome};
use crate::transport::Host;

mod actions;
mod describe;
mod graph;
mod host_certificates;
pub mod lock;
mod report;
mod rotation;
#[cfg(test)]
mod tests;
mod units;
mod walk;

use actions::{block_content, edit_content, op_of};
use describe::describe;
pub use graph::ActionGraph;
use graph::{Action, Kind};
pub use report::{ActionResult, ApplyReport, NodeReport};
pub use rotation::PAUSE_ENV;
use rotation::{proof, Pause, Step};

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    pub concurrency: usize,
    pub timeout: Duration,
    /// How a rotation's proof tries a node (verify's settings: the
    /// default account); the key offered is the new one.
    pub prove: crate::verify::CommandSettings,
    /// A private folder for the ssh config of each of the manager's
    /// proofs.
    pub run_dir: Option<std::path::PathBuf>,
    /// The run's known_hosts files (the manager's, then the host keys
    /// accepted in this run): the manager's proofs check host keys
    /// against them, as the run's own connections do.
    pub known_hosts: Vec<std::path::PathBuf>,
    /// Nodes whose host key is pinned in this run, with their pin's ssh
    /// config fragment ([`crate::transport::sshconfig::pin_paths`]).
    pub pins: Vec<(crate::model::inventory::NodeId, std::path::PathBuf)>,
}

pub use crate::node::shell::keygen_line;

/// Public keys generated during this run, by node name: (type, base64).
type Generated = HashMap<String, (String, String)>;

/// Carry out `plan`. `hosts` are the open connections from gather, indexed
/// like the inventory's nodes; each gets its node's door
/// ([`crate::node::open`]).
pub async fn apply(
    inv: &Inventory,
    graph: &TrustGraph,
    plan: &Plan,
    hosts: &[Option<Host>],
    opts: &ApplyOptions,
) -> ApplyRun {
    let doors: Vec<Option<Box<dyn Door + '_>>> = inv
        .nodes
        .iter()
        .zip(hosts)
        .map(|(node, h)| h.as_ref().map(|h| crate::node::open(node, h, opts.timeout)))
        .collect();
    let doors: Vec<Option<&dyn Door>> = doors.iter().map(|d| d.as_deref()).collect();
    apply_read_back(inv, graph, plan, &doors, opts).await
}

/// What the walk remembers: each action's result, the public keys
/// generated, and what this run wrote, by (plan node, path): a second
/// edit of a file compares against it, not against what the plan read.
struct Run {
    results: Vec<Option<ActionResult>>,
    generated: Generated,
    written: HashMap<(usize, String), String>,
}

/// What an apply did, and what it read back on the way.
#[derive(Debug, Clone)]
pub struct ApplyRun {
    /// Each action's result.
    pub report: ApplyReport,
    /// By inventory node: the state a node reported in the same round
    /// trip as its writes, after all its actions (`None`: not read that
    /// way, or something of the node ran after it, such as a rotation).
    pub read_back: Vec<Option<LiveAccount>>,
}

/// Carry out `plan` through the nodes' doors, indexed like the
/// inventory's nodes (`None`: no connection to that node). The tests run
/// it on in-memory doors ([`crate::node::memory`]).
pub async fn apply_on(
    inv: &Inventory,
    graph: &TrustGraph,
    plan: &Plan,
    doors: &[Option<&dyn Door>],
    opts: &ApplyOptions,
) -> ApplyReport {
    walk::walk(inv, graph, plan, doors, opts).await.report
}

/// [`apply_on`], with the state each node read back in its own round
/// trip.
pub async fn apply_read_back(
    inv: &Inventory,
    graph: &TrustGraph,
    plan: &Plan,
    doors: &[Option<&dyn Door>],
    opts: &ApplyOptions,
) -> ApplyRun {
    walk::walk(inv, graph, plan, doors, opts).await
}

/// Skipped, when an action it waits for did not succeed: a failed
/// prerequisite on the same node (its ~/.ssh) skips it; a rotation's steps
/// wait for every prerequisite.
fn blocked(
    ag: &ActionGraph,
    plan: &Plan,
    results: &[Option<ActionResult>],
    ix: NodeIndex,
    what: &str,
) -> Option<ActionResult> {
    let action = &ag.graph[ix];
    let change = match &action.kind {
        Kind::Edit { change } => plan.nodes[action.plan_node].changes.get(*change),
        _ => None,
    };
    let strict = action.kind.strict(change);
    let dep = ag
        .graph
        .neighbors_directed(ix, Direction::Incoming)
        .filter(|d| strict || ag.graph[*d].plan_node == action.plan_node)
        .find_map(|d| match &results[d.index()] {
            Some(ActionResult::Done { .. }) | None => None,
            Some(_) => Some(describe(plan, &ag.graph[d])),
        })?;
    Some(ActionResult::Skipped {
        what: what.to_string(),
        because: format!("`{dep}` did not succeed"),
    })
}

/// The text an edit or a block write makes, from what the plan read or
/// what this run wrote there already.
fn edit_input(
    plan: &Plan,
    action: &Action,
    run: &Run,
    overlay: &HashMap<(usize, String), String>,
) -> Option<actions::EditInput> {
    let pi = action.plan_node;
    let written = |path: &String| {
        let key = (pi, path.clone());
        overlay.get(&key).or_else(|| run.written.get(&key))
    };
    match &action.kind {
        Kind::Edit { change } => match &plan.nodes[pi].changes[*change] {
            Change::EditFile(e) => {
                Some(edit_content(plan, pi, e, &run.generated, written(&e.path)))
            }
            _ => None,
        },
        Kind::HostCert { change } => match &plan.nodes[pi].changes[*change] {
            Change::SignHostKey(h) => {
                Some(host_certificates::cert_input(plan, pi, h, written(&h.path)))
            }
            _ => None,
        },
        Kind::Block { change } => match &plan.nodes[pi].changes[*change] {
            Change::WriteBlock(b) => Some(block_content(plan, pi, b, written(&b.path))),
            _ => None,
        },
        _ => actions::certificate_input(plan, action, &run.generated),
    }
}

/// An action's result from its door's answer; a generated key is
/// remembered for the edits that need it.
fn result_of(node: &str, what: String, answer: Outcome, generated: &mut Generated) -> ActionResult {
    match answer {
        Outcome::PublicKey(line) => {
            let mut f = line.split_whitespace();
            match (f.next(), f.next()) {
                (Some(t), Some(b)) => {
                    generated.insert(node.to_string(), (t.to_string(), b.to_string()));
                    ActionResult::Done { what }
                }
                _ => ActionResult::Failed {
                    what,
                    reason: format!("ssh-keygen printed an unreadable public key: {line}"),
                },
            }
        }
        Outcome::Ok => ActionResult::Done { what },
        Outcome::Conflict(_) => ActionResult::Conflict { what },
        Outcome::Failed(reason) => ActionResult::Failed { what, reason },
    }
}

/// The results, node by node, in plan order.
fn report(plan: &Plan, ag: &ActionGraph, results: &[Option<ActionResult>]) -> ApplyReport {
    let mut report = ApplyReport::default();
    for (pi, np) in plan.nodes.iter().enumerate() {
        let rs: Vec<ActionResult> = ag
            .graph
            .node_indices()
            .filter(|i| ag.graph[*i].plan_node == pi)
            .filter_map(|i| results[i.index()].clone())
            .collect();
        if !rs.is_empty() {
            report.nodes.push(NodeReport {
                node: np.node.clone(),
                results: rs,
            });
        }
    }
    report
}
