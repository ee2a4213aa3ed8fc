//! The workflows as library operations: [`plan`], [`apply`] and
//! [`verify`], each from the resolved inventory and its trust graph (built
//! once, by the caller), its options and an [`Operator`], to a typed report
//! or a typed error ([`OpsError`]); and the same from what was asked
//! ([`run_plan`], [`run_apply`], [`run_verify`] on a [`Request`]: the
//! inventory file read, the flags resolved, the apply lock taken, a saved
//! plan checked and its host keys pinned, the graph built once).
//!
//! An operation reads the live state of every node ([`crate::gather`]),
//! plans ([`crate::plan`]), and for `apply` asks consent, changes what the
//! plan says ([`crate::apply`]), reads everything back and plans again;
//! for `verify` it tries every edge ([`crate::verify`]). It prints
//! nothing and asks nothing itself: consent, the `--ask-pass` password and
//! progress go through the operator. Rendering the reports is the
//! caller's (the command line's) business.

mod apply;
mod error;
mod operator;
mod request;

pub use apply::{apply, Applied, ApplyOutcome};
pub use error::OpsError;
pub use operator::{NoPassword, NonInteractive, Operator, Progress};
pub use request::{
    pin_saved_host_keys, read_options, run_apply, run_plan, run_verify, scope, ApplyRequest,
    ApplyRun, NodeOption, OptionsError, PlanRun, Request, SavedPlanRequest,
};

use crate::gather::{self, GatherOptions, Gathered};
use crate::model::graph::TrustGraph;
use crate::model::inventory::Inventory;
use crate::plan::Plan;
use crate::transport::password;
use crate::verify::{self, VerifyOptions, VerifyReport};

/// What an operation reads the cluster with.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// How to gather. Its `password` and `confirm_new_host_key` are set by
    /// the operation when `ask_pass` is on.
    pub gather: GatherOptions,
    /// `--ask-pass`: reach the nodes that do not accept the manager's key
    /// yet with a password, taken from `$TRUSTMESH_PASSWORD` or asked of
    /// the operator once, before any host is reached.
    pub ask_pass: bool,
}

/// The prompt for the `--ask-pass` password.
pub const PASSWORD_PROMPT: &str =
    "Password for the nodes that do not accept the manager's key yet: ";

/// `plan`'s report: the plan, and the host keys accepted on first use in
/// this run (known_hosts lines), which a saved plan pins.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    pub plan: Plan,
    pub accepted: Vec<String>,
}

/// The gathering options of a run: with `ask_pass`, the password (given,
/// else asked of the operator) and the operator's question before a
/// password goes to a host key accepted on first use.
fn gather_options(opts: ReadOptions, op: &dyn Operator) -> Result<GatherOptions, OpsError> {
    let mut g = opts.gather;
    if opts.ask_pass {
        let secret = match password::given_password() {
            Some(p) => p,
            None => op.password(PASSWORD_PROMPT)?,
        };
        g.password = Some(secret);
        if g.accept_new_host_keys {
            g.confirm_new_host_key = op.host_key_question();
        }
    }
    Ok(g)
}

/// Read every node, telling the operator how it goes, then the run's
/// notes.
async fn read(
    inv: &Inventory,
    graph: &TrustGraph,
    opts: &GatherOptions,
    op: &dyn Operator,
) -> Result<Gathered, OpsError> {
    op.progress(Progress::Reading {
        nodes: inv.nodes.len(),
        asking: opts.confirm_new_host_key.is_some(),
    });
    let on_done = |name: &str| op.progress(Progress::Read { node: name });
    let r = gather::gather(inv, graph, opts, &on_done).await;
    op.progress(Progress::ReadDone);
    let g = r?;
    for n in &g.notes {
        op.progress(Progress::Note(n));
    }
    Ok(g)
}

/// Read every node and plan. Nothing is written anywhere.
pub async fn plan(
    inv: &Inventory,
    graph: &TrustGraph,
    opts: ReadOptions,
    op: &dyn Operator,
) -> Result<PlanOutcome, OpsError> {
    let opts = gather_options(opts, op)?;
    let mut gathered = read(inv, graph, &opts, op).await?;
    let plan = crate::plan::plan(inv, graph, &gathered.live, &opts.scope);
    let accepted = std::mem::take(&mut gathered.accepted);
    gathered.close().await;
    Ok(PlanOutcome { plan, accepted })
}

/// Read every node, then have each edge's source try its target for real
/// over the run's connections; close them.
pub async fn verify(
    inv: &Inventory,
    graph: &TrustGraph,
    opts: ReadOptions,
    op: &dyn Operator,
) -> Result<VerifyReport, OpsError> {
    let opts = gather_options(opts, op)?;
    let verify_opts = VerifyOptions {
        timeout: opts.timeout,
        concurrency: opts.concurrency,
        scope: opts.scope.clone(),
    };
    let edges = verify::edges_in_scope(graph, &opts.scope).len();
    let gathered = read(inv, graph, &opts, op).await?;
    op.progress(Progress::Trying { edges });
    let on_edge = |r: &verify::EdgeResult| {
        op.progress(Progress::Tried {
            source: &r.source,
            target: &r.target,
        })
    };
    let report = verify::verify(inv, graph, &gathered, &verify_opts, &on_edge).await;
    op.progress(Progress::TriedDone);
    gathered.close().await;
    Ok(report)
}
