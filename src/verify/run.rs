//! Running the attempts: every edge in scope decided before any I/O, then
//! tried on its source's connection within the caps (per target, per
//! source, overall) and the timeout.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::command::{command_line, config_text, CommandSettings, SHELL_MARKER};
use super::interpret::{interpret, parse_exit, EdgeNames};
use super::report::{EdgeFailure, EdgeOutcome, EdgeResult, VerifyReport};
use crate::gather::Gathered;
use crate::model::finding::Hint;
use crate::model::graph::{Edge, TrustGraph};
use crate::model::inventory::{Inventory, NodeId};
use crate::model::layout::NodeFiles;
use crate::model::scope::PlanScope;
use crate::plan::NodeState;
use crate::transport::{FailureKind, Host, StepError};

/// Attempts towards one target at once: below sshd's `MaxStartups 10:30:100`.
pub const PER_TARGET_ATTEMPTS: usize = 8;

/// Attempts from one source at once: each is a session on the source's one
/// master connection, and sshd allows `MaxSessions 10` per connection.
pub const PER_SOURCE_SESSIONS: usize = 8;

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// `ConnectTimeout` of each attempt; the whole attempt is bounded by it
    /// too (once per hop, plus a little).
    pub timeout: Duration,
    /// Attempts at once, overall.
    pub concurrency: usize,
    /// `--limit`: only edges between these nodes.
    pub scope: PlanScope,
}

/// The edges `verify` tries: both ends in scope, in the graph's order.
pub fn edges_in_scope(graph: &TrustGraph, scope: &PlanScope) -> Vec<Edge> {
    graph
        .edges()
        .into_iter()
        .filter(|e| scope.contains(e.source) && scope.contains(e.target))
        .collect()
}

/// A boxed future borrowing the run's connections.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Run `futs` with at most `width` polled at once; outputs in input order.
/// (The futures borrow the open connections, so they cannot be spawned.)
async fn run_bounded<'a, T>(futs: Vec<BoxFuture<'a, T>>, width: usize) -> Vec<T> {
    use futures::stream::{self, StreamExt};
    stream::iter(futs).buffered(width.max(1)).collect().await
}

/// One edge, ready to be tried or already decided.
enum Attempt {
    Decided(EdgeOutcome),
    Try {
        line: String,
        /// Nodes whose per-target cap this attempt takes (jumps, target).
        targets: Vec<NodeId>,
        timeout: Duration,
    },
}

fn not_tried(reason: String, hint: Option<Hint>) -> Attempt {
    Attempt::Decided(EdgeOutcome::not_tried(reason, hint))
}

/// How attempts from this run's nodes are made: always the manager's own
/// key by its full path (never the agent's or another default key), its
/// known_hosts when not the default, the account a node without `user:`
/// has. Also used by apply to prove a rotated key.
pub fn command_settings(inv: &Inventory, gathered: &Gathered, secs: u64) -> CommandSettings {
    let mfiles = NodeFiles::of(inv, Inventory::MANAGER);
    CommandSettings {
        connect_timeout_secs: secs,
        manager_identity: Some(gathered.manager_identity.clone()),
        manager_known_hosts: (mfiles.known_hosts != "known_hosts")
            .then(|| gathered.manager_known_hosts.clone()),
        config: None,
        default_user: gathered
            .live
            .account(Inventory::MANAGER)
            .map(|a| a.user.clone())
            .filter(|u| !u.is_empty()),
        identity_override: None,
        isolate_workers: false,
    }
}

/// Try every edge in scope from its source. `on_done` is called as each
/// edge is decided (for a progress bar). Never fails as a whole: what could
/// not be tried is reported per edge.
pub async fn verify(
    inv: &Inventory,
    graph: &TrustGraph,
    gathered: &Gathered,
    opts: &VerifyOptions,
    on_done: &(dyn Fn(&EdgeResult) + Sync),
) -> VerifyReport {
    let edges = edges_in_scope(graph, &opts.scope);
    let n = inv.nodes.len();
    let secs = opts.timeout.as_secs().max(1);

    let mut settings = command_settings(inv, gathered, secs);
    // Every attempt from the manager reads this file and no other ssh
    // config (never the account's own ~/.ssh/config).
    let needs_config = edges.iter().any(|e| e.source == Inventory::MANAGER);
    let mut config_error = None;
    if needs_config {
        let path = gathered.run.path().join("verify_ssh_config");
        let identity = gathered.manager_identity.clone();
        let known_hosts: Vec<&std::path::Path> = settings
            .manager_known_hosts
            .as_deref()
            .into_iter()
            .collect();
        match config_text(secs, &identity, &known_hosts, &[])
            .map_err(|e| e.to_string())
            .and_then(|t| {
                crate::transport::local::write_private(&path, t.as_bytes())
                    .map_err(|e| e.to_string())
            }) {
            Ok(()) => settings.config = Some(path),
            Err(e) => config_error = Some(e),
        }
    }

    let attempts: Vec<Attempt> = edges
        .iter()
        .map(|&e| {
            prepare(
                inv,
                graph,
                gathered,
                e,
                &settings,
                opts.timeout,
                config_error.as_deref(),
            )
        })
        .collect();

    // Start order: round by round, every target once per round, so that the
    // per-target caps rarely hold anything up.
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by_key(|&i| {
        let e = edges[i];
        ((e.target + n - e.source) % n, e.source)
    });

    let ctx = Ctx {
        inv,
        gathered,
        per_target: (0..n)
            .map(|_| Semaphore::new(PER_TARGET_ATTEMPTS))
            .collect(),
        per_source: (0..n)
            .map(|_| Semaphore::new(PER_SOURCE_SESSIONS))
            .collect(),
        manager_known_hosts: settings
            .manager_known_hosts
            .as_ref()
            .map(|p| p.display().to_string()),
    };
    let mut futs: Vec<BoxFuture<'_, (usize, EdgeOutcome)>> = Vec::new();
    for &i in &order {
        let edge = edges[i];
        let attempt = &attempts[i];
        let ctx = &ctx;
        futs.push(Box::pin(async move {
            let outcome = match attempt {
                Attempt::Decided(o) => o.clone(),
                Attempt::Try {
                    line,
                    targets,
                    timeout,
                } => ctx.attempt(edge, line, targets, *timeout).await,
            };
            let outcome = super::expiry::judge(inv, edge, opts.scope.now, outcome);
            on_done(&EdgeResult {
                edge,
                source: inv.nodes[edge.source].name.clone(),
                target: inv.nodes[edge.target].name.clone(),
                policy: inv.policy(edge.source, edge.target).describe(),
                outcome: outcome.clone(),
                time: inv.edge_time(edge.source, edge.target, opts.scope.now),
            });
            (i, outcome)
        }));
    }
    let width = opts.concurrency.max(1);
    let mut outcomes: Vec<Option<EdgeOutcome>> = vec![None; edges.len()];
    for (i, o) in run_bounded(futs, width).await {
        if let Some(slot) = outcomes.get_mut(i) {
            *slot = Some(o);
        }
    }
    let results = edges
        .iter()
        .zip(outcomes)
        .map(|(&edge, o)| EdgeResult {
            edge,
            source: inv.nodes[edge.source].name.clone(),
            target: inv.nodes[edge.target].name.clone(),
            policy: inv.policy(edge.source, edge.target).describe(),
            outcome: o.unwrap_or(EdgeOutcome::not_tried(
                "internal error: the attempt did not finish".into(),
                None,
            )),
            time: inv.edge_time(edge.source, edge.target, opts.scope.now),
        })
        .collect();
    VerifyReport {
        nodes: inv
            .nodes
            .iter()
            .enumerate()
            .filter(|(id, _)| opts.scope.contains(*id))
            .map(|(_, n)| n.name.clone())
            .collect(),
        edges: results,
        certificates_ending: super::certificates::certificates_ending(
            inv,
            &gathered.live,
            &opts.scope,
            opts.scope.now,
        ),
    }
}

/// What every attempt shares.
struct Ctx<'a> {
    inv: &'a Inventory,
    gathered: &'a Gathered,
    per_target: Vec<Semaphore>,
    per_source: Vec<Semaphore>,
    /// The manager's known_hosts when not the default, for hints.
    manager_known_hosts: Option<String>,
}

impl Ctx<'_> {
    /// Run one edge's command line on its source, within the caps.
    async fn attempt(
        &self,
        edge: Edge,
        line: &str,
        targets: &[NodeId],
        timeout: Duration,
    ) -> EdgeOutcome {
        let inv = self.inv;
        let Some(host) = self
            .gathered
            .hosts
            .get(edge.source)
            .and_then(Option::as_ref)
        else {
            return EdgeOutcome::not_tried("no open connection to the source".into(), None);
        };
        // One session on a remote source's master connection.
        let _session = match host {
            Host::Local | Host::Password(_) => None,
            Host::Remote { .. } => self.per_source[edge.source].acquire().await.ok(),
        };
        // New connections towards the target and every jump on the way.
        let mut permits = Vec::new();
        for &t in targets {
            if let Some(sem) = self.per_target.get(t) {
                if let Ok(p) = sem.acquire().await {
                    permits.push(p);
                }
            }
        }
        let result = host.run(line, b"", timeout).await;
        drop(permits);
        let target = &inv.nodes[edge.target];
        let names = EdgeNames {
            source: &inv.nodes[edge.source].name,
            target: &target.name,
            addr: target.target().addr,
            port: target.port,
            known_hosts: if edge.source == Inventory::MANAGER {
                self.manager_known_hosts.as_deref()
            } else {
                None
            },
        };
        match result {
            Ok(out) => {
                let outcome = interpret(
                    parse_exit(&out.stdout),
                    &String::from_utf8_lossy(&out.stderr),
                    &names,
                );
                if inv.is_sftp_only(edge.source, edge.target) {
                    sftp_only_outcome(outcome, &out.stdout, &names)
                } else {
                    outcome
                }
            }
            Err(StepError::Timeout(_)) => EdgeOutcome::Fails(EdgeFailure::new(
                FailureKind::Timeout,
                format!(
                    "no answer from {} within {} s",
                    names.target,
                    timeout.as_secs()
                ),
                Some(Hint::RaiseTimeout {
                    check: format!(
                        "check that {} is up and that {} can reach it",
                        names.target, names.source
                    ),
                }),
            )),
            Err(e) => EdgeOutcome::not_tried(
                format!("could not run ssh on {}: {e}", names.source),
                Some(Hint::Text(format!(
                    "the connection to {} failed during the run; try again",
                    names.source
                ))),
            ),
        }
    }
}

/// An SFTP-only edge holds when its listing worked and no shell opened.
fn sftp_only_outcome(outcome: EdgeOutcome, stdout: &[u8], names: &EdgeNames<'_>) -> EdgeOutcome {
    let opened = String::from_utf8_lossy(stdout)
        .lines()
        .any(|l| l.trim() == SHELL_MARKER);
    match outcome {
        EdgeOutcome::Holds if opened => EdgeOutcome::Fails(EdgeFailure::new(
            FailureKind::Other,
            format!(
                "the edge is SFTP-only, yet {}'s key opened a shell on {}",
                names.source, names.target
            ),
            Some(Hint::Text(format!(
                "{}'s line in {}'s authorized_keys must start with restrict,command=\"internal-sftp\": run \
                 `trustmesh plan` to see what differs",
                names.source, names.target
            ))),
        )),
        o => o,
    }
}

/// Decide what to do with one edge before any I/O.
fn prepare(
    inv: &Inventory,
    graph: &TrustGraph,
    gathered: &Gathered,
    edge: Edge,
    settings: &CommandSettings,
    timeout: Duration,
    config_error: Option<&str>,
) -> Attempt {
    match gathered.live.nodes.get(edge.source) {
        Some(NodeState::Read { .. }) => {}
        Some(NodeState::Unreachable(f)) => {
            return not_tried(
                format!("source unreachable (at {}: {})", f.step, f.reason),
                f.hint.clone(),
            )
        }
        Some(NodeState::Skipped { reason }) => {
            return not_tried(format!("source skipped ({reason})"), None)
        }
        None => return not_tried("source not read".into(), None),
    }
    if let Some(NodeState::Skipped { reason }) = gathered.live.nodes.get(edge.target) {
        return not_tried(format!("target skipped ({reason})"), None);
    }
    // No command runs from an account that serves SFTP only (an edge into
    // one is tried with an `sftp -b` listing: see `command_line`).
    if !crate::node::abilities(&inv.nodes[edge.source]).commands {
        return not_tried(
            format!(
                "{} is reached over SFTP only (access: sftp): no command runs there to try the edge",
                inv.nodes[edge.source].name
            ),
            None,
        );
    }
    let chain = if edge.source == Inventory::MANAGER {
        graph.jump_chain(inv, edge.target)
    } else {
        Vec::new()
    };
    if edge.source == Inventory::MANAGER {
        if let Some(e) = config_error {
            return not_tried(
                format!("cannot write the ssh config of the manager's attempts: {e}"),
                Some(Hint::text(
                    "check that the temporary folder ($TMPDIR or /tmp) is writable",
                )),
            );
        }
    }
    match command_line(inv, graph, edge, settings) {
        Ok(line) => {
            let mut targets = chain;
            targets.push(edge.target);
            let hops = targets.len() as u32;
            Attempt::Try {
                line,
                targets,
                timeout: timeout.checked_mul(hops).unwrap_or(timeout) + Duration::from_secs(5),
            }
        }
        Err(reason) => not_tried(reason.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_runner_keeps_order_and_the_cap() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let now = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let mut futs: Vec<BoxFuture<'_, usize>> = Vec::new();
        for i in 0..40usize {
            let (now, peak) = (&now, &peak);
            futs.push(Box::pin(async move {
                let c = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(c, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis((i % 7) as u64)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                i * 10
            }));
        }
        let out = run_bounded(futs, 5).await;
        assert_eq!(out, (0..40).map(|i| i * 10).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 5);
        assert!(run_bounded::<u8>(Vec::new(), 0).await.is_empty());
    }
}
