//! A rotation's proof: the new key, alone, opens a node, tried with a
//! fresh and isolated connection before anything of the old key goes; and
//! the debug builds' hook that lets a live test act between two steps.

use std::path::{Path, PathBuf};

use super::*;
use crate::node::ProofRequest;

/// Why a rotation's proof cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ProofError {
    #[error("that node is not in this plan, so the new key cannot be proven there; the old key stays in place")]
    NotInPlan,
    #[error("the node left the inventory")]
    NodeLeft,
    #[error("the target left the inventory")]
    TargetLeft,
    #[error("no edge to prove")]
    NoEdge,
    #[error("no run folder for the proof's ssh config")]
    NoRunFolder,
    #[error("cannot write the proof's ssh config: {0}")]
    WriteConfig(String),
    /// The command line or its config cannot be made (verify's words).
    #[error("{0}")]
    Command(String),
}

/// The command line that proves `identity` (a rotated key not in place
/// yet) opens the node of plan index `target` from the action's node.
///
/// Isolated like every `verify` attempt ([`crate::verify::command_line`]),
/// with the new key as the only identity: from the manager, through a
/// config file of its own (this proof's alone), whose known_hosts are the
/// run's (the manager's and the host keys accepted in this run) and which
/// includes a pinned node's pin first; from a worker, with `-F /dev/null`
/// (the options all on the command line).
/// The account's own `~/.ssh/config` (another `IdentityFile`, an agent) can
/// never make a proof pass.
pub(super) fn proof(
    inv: &Inventory,
    graph: &crate::model::graph::TrustGraph,
    plan: &Plan,
    action: &Action,
    target: usize,
    identity: &str,
    opts: &ApplyOptions,
) -> Result<ProofRequest, ProofError> {
    let source = inv
        .find(&plan.nodes[action.plan_node].node)
        .ok_or(ProofError::NodeLeft)?;
    let dst = inv
        .find(&plan.nodes[target].node)
        .ok_or(ProofError::TargetLeft)?;
    let edge = graph
        .outgoing(source)
        .find(|e| e.target == dst)
        .ok_or(ProofError::NoEdge)?;
    let mut settings = opts.prove.clone();
    settings.identity_override = Some(identity.to_string());
    settings.isolate_workers = true;
    if source == Inventory::MANAGER {
        let dir = opts.run_dir.as_deref().ok_or(ProofError::NoRunFolder)?;
        let path = dir.join(format!("proof_{}_ssh_config", inv.nodes[dst].name));
        let mut hops = graph.jump_chain(inv, dst);
        hops.push(dst);
        let pins: Vec<(String, PathBuf)> = hops
            .iter()
            .filter_map(|&n| {
                let (_, conf) = opts.pins.iter().find(|(p, _)| *p == n)?;
                let addr = inv.nodes[n].address.clone()?;
                conf.exists().then(|| (addr, conf.clone()))
            })
            .collect();
        let known_hosts: Vec<&Path> = opts.known_hosts.iter().map(PathBuf::as_path).collect();
        let text = crate::verify::config_text(
            settings.connect_timeout_secs,
            Path::new(identity),
            &known_hosts,
            &pins,
        )
        .map_err(|e| ProofError::Command(e.to_string()))?;
        crate::transport::local::write_private(&path, text.as_bytes())
            .map_err(|e| ProofError::WriteConfig(e.to_string()))?;
        settings.config = Some(path);
        // The config's known_hosts are the run's: none on the command line.
        settings.manager_known_hosts = None;
    }
    let line = crate::verify::command_line(inv, graph, edge, &settings)
        .map_err(|e| ProofError::Command(e.to_string()))?;
    let node = &inv.nodes[dst];
    Ok(ProofRequest {
        line,
        source: inv.nodes[source].name.clone(),
        target: node.name.clone(),
        addr: node.target().addr.to_string(),
        port: node.port,
    })
}

/// Test hook: `TRUSTMESH_TEST_PAUSE_BEFORE=STEP:DIR` (`STEP` is `prove`,
/// a rotation's proofs, `retire`, the removal of a rotated-out key's
/// lines, or `unitN`, the Nth unit of actions the walk starts, from 1)
/// makes apply, before the first actions of that step start and with
/// nothing else running, create `DIR/paused-STEP` and wait until
/// `DIR/resume-STEP` exists (five minutes at most). The live tests change
/// a node, or kill the run, at that very moment. Read by debug builds
/// only (the tests' binary): a release build ignores it.
pub const PAUSE_ENV: &str = "TRUSTMESH_TEST_PAUSE_BEFORE";

/// A step [`PAUSE_ENV`] can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    Prove,
    Retire,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Prove => "prove",
            Step::Retire => "retire",
        }
    }

    /// The step of an action, if it is one of a rotation's.
    pub(super) fn of(plan: &Plan, a: &Action) -> Option<Step> {
        match &a.kind {
            Kind::Prove { .. } => Some(Step::Prove),
            Kind::Edit { change } => match plan.nodes[a.plan_node].changes.get(*change) {
                Some(Change::EditFile(e)) if e.after_rotation_of.is_some() => Some(Step::Retire),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Where [`PAUSE_ENV`] pauses: before a rotation's step, or before the
/// Nth unit of actions the walk starts (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PauseAt {
    Step(Step),
    Unit(usize),
}

/// The pause [`PAUSE_ENV`] asks for, once.
pub(super) struct Pause {
    at: PauseAt,
    name: String,
    dir: PathBuf,
    done: bool,
}

impl Pause {
    pub(super) fn from_env() -> Option<Pause> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let v = std::env::var(PAUSE_ENV).ok()?;
        let (name, dir) = v.split_once(':')?;
        let at = match name.strip_prefix("unit") {
            Some(n) => PauseAt::Unit(n.parse().ok()?),
            None => PauseAt::Step(
                [Step::Prove, Step::Retire]
                    .into_iter()
                    .find(|s| s.name() == name)?,
            ),
        };
        Some(Pause {
            at,
            name: name.to_string(),
            dir: PathBuf::from(dir),
            done: false,
        })
    }

    /// Would [`Pause::before`] pause before these steps (the first time
    /// one is its step), `started` units having started already?
    pub(super) fn holds(
        &self,
        mut steps: impl Iterator<Item = Option<Step>>,
        started: usize,
    ) -> bool {
        !self.done
            && match self.at {
                PauseAt::Step(step) => steps.any(|s| s == Some(step)),
                PauseAt::Unit(n) => started + 1 == n,
            }
    }

    /// Before the actions of these steps start, with nothing else running:
    /// pause if [`Pause::holds`], the first time.
    pub(super) async fn before(
        &mut self,
        steps: impl Iterator<Item = Option<Step>>,
        started: usize,
    ) {
        if !self.holds(steps, started) {
            return;
        }
        self.done = true;
        let name = &self.name;
        let _ = std::fs::write(self.dir.join(format!("paused-{name}")), b"");
        let resume = self.dir.join(format!("resume-{name}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(300);
        while !resume.exists() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
