//! `verify`: every trust edge tried for real, from its source.
//!
//! A plan compares files; files can look right and still not work: sshd may
//! refuse a key for a mode it dislikes, a `from=` option, a login shell that
//! is gone, a host key that changed after the files were read, a firewall
//! between two workers. The only proof that edge `A -> B` holds is that
//! account A can run `ssh B true` with `BatchMode=yes` and
//! `StrictHostKeyChecking=yes` and nothing else. This module does exactly
//! that for every edge of the trust graph, on A's host: over A's master
//! connection opened by [`crate::gather`], or locally when A is the manager.
//!
//! What it runs is one fixed command line per edge (every inventory value
//! through [`shell_quote`]), see [`command_line`]. It never relaxes host key
//! checking (strict checking only, nothing accepted on first use) and never
//! offers a password. `ControlPath=none` makes sure each attempt really
//! authenticates instead of riding on a multiplexed connection the account
//! may have open. The manager adds its identity and known_hosts only when
//! the inventory names non-default files, and reaches a node behind a jump
//! host with `-J` plus a `-F` config of this run (options given with `-o`
//! do not reach the jump connection; a config file does).
//!
//! Attempts run concurrently, but at most [`PER_TARGET_ATTEMPTS`] towards one
//! target at once (sshd's `MaxStartups 10:30:100` drops new connections past
//! 10 unauthenticated ones, and in a full mesh every node connects to every
//! other), at most [`PER_SOURCE_SESSIONS`] sessions on one source's master
//! connection (sshd's `MaxSessions 10`), and at most `concurrency` overall.
//! Each attempt is bounded by the timeout.
//!
//! The result is a [`VerifyReport`]; [`render_text`] draws it as a
//! source x target matrix followed by one line per failing edge, and
//! [`render_json`] as one JSON document. Both are pure and write into any
//! `Write`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;

use crate::gather::Gathered;
use crate::graph::{Edge, EdgeKind, TrustGraph};
use crate::inventory::{Inventory, NodeId};
use crate::known_hosts;
use crate::plan::{NodeFiles, NodeState, PlanScope};
use crate::render::Paint;
use crate::scripts::shell_quote;
use crate::transport::{classify, FailureKind, Host, StepError};

/// Version of the JSON document of `verify --json`.
pub const FORMAT_VERSION: u32 = 1;

/// Attempts towards one target at once: below sshd's `MaxStartups 10:30:100`.
pub const PER_TARGET_ATTEMPTS: usize = 8;

/// Attempts from one source at once: each is a session on the source's one
/// master connection, and sshd allows `MaxSessions 10` per connection.
pub const PER_SOURCE_SESSIONS: usize = 8;

/// Above this many nodes, or this width, the matrix becomes a list.
const MATRIX_MAX_NODES: usize = 16;
const MATRIX_MAX_WIDTH: usize = 120;

/// The line the source's shell prints after ssh, with ssh's exit status.
const EXIT_MARKER: &str = "trustmesh-verify-exit";

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

/// Why an edge failed, sorted from what ssh printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeFailure {
    pub kind: FailureKind,
    pub reason: String,
    pub hint: Option<String>,
}

/// What came of one edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `ssh B true` worked from A.
    Holds,
    /// It was tried and failed.
    Fails(EdgeFailure),
    /// It could not be tried (the source could not be reached, ...). Counts
    /// as a failure.
    NotTried {
        reason: String,
        hint: Option<String>,
    },
}

impl Outcome {
    pub fn holds(&self) -> bool {
        matches!(self, Outcome::Holds)
    }
}

/// One edge and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeResult {
    pub edge: Edge,
    pub source: String,
    pub target: String,
    pub outcome: Outcome,
}

/// Every edge in scope, tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Names of the nodes in scope, in inventory order: the matrix's rows
    /// and columns.
    pub nodes: Vec<String>,
    /// In the trust graph's order (kind, then source, then target).
    pub edges: Vec<EdgeResult>,
}

/// Counts for the last line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Summary {
    pub edges: usize,
    pub hold: usize,
    pub fail: usize,
    pub not_tried: usize,
}

impl VerifyReport {
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            edges: self.edges.len(),
            ..Summary::default()
        };
        for e in &self.edges {
            match e.outcome {
                Outcome::Holds => s.hold += 1,
                Outcome::Fails(_) => s.fail += 1,
                Outcome::NotTried { .. } => s.not_tried += 1,
            }
        }
        s
    }

    /// Whether every edge holds (the exit status of `verify`).
    pub fn all_hold(&self) -> bool {
        self.edges.iter().all(|e| e.outcome.holds())
    }
}

/// The edges `verify` tries: both ends in scope, in the graph's order.
pub fn edges_in_scope(graph: &TrustGraph, scope: &PlanScope) -> Vec<Edge> {
    graph
        .edges()
        .into_iter()
        .filter(|e| scope.contains(e.source) && scope.contains(e.target))
        .collect()
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

/// What the command line of an edge depends on besides the inventory.
#[derive(Debug, Clone, Default)]
pub struct CommandSettings {
    pub connect_timeout_secs: u64,
    /// The manager's private key, when it is not the default file for its
    /// key type (absolute).
    pub manager_identity: Option<PathBuf>,
    /// The manager's known_hosts, when it is not `~/.ssh/known_hosts`.
    pub manager_known_hosts: Option<PathBuf>,
    /// The `-F` file for the manager's attempts through a jump host.
    pub jump_config: Option<PathBuf>,
    /// The account a node without `user:` has (the one running trustmesh),
    /// for attempts from workers; `None` leaves the user out.
    pub default_user: Option<String>,
}

/// A path as an ssh option value: `%` is a token there, so it is doubled,
/// and the value is double-quoted (paths may hold spaces).
fn ssh_path_value(p: &Path) -> Result<String, String> {
    let s = p.to_string_lossy();
    if s.contains('"') || s.contains('\n') || s.contains('\r') {
        return Err(format!(
            "the path {s:?} cannot be given to ssh (it holds a quote or a line break)"
        ));
    }
    Ok(format!("\"{}\"", s.replace('%', "%%")))
}

/// `user@host:port` for `-J`, IPv6 addresses in brackets.
fn jump_spec(user: Option<&str>, addr: &str, port: u16) -> String {
    let host = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    match user {
        Some(u) => format!("{u}@{host}:{port}"),
        None => format!("{host}:{port}"),
    }
}

/// The shell line that tries `edge` on its source's host: ssh with the
/// fixed options, then the exit status after a marker (the remote runner
/// would take ssh's own 255 for a failure of its own connection).
pub fn command_line(
    inv: &Inventory,
    graph: &TrustGraph,
    edge: Edge,
    settings: &CommandSettings,
) -> Result<String, String> {
    let target = inv
        .nodes
        .get(edge.target)
        .ok_or_else(|| "the target is not in the inventory".to_string())?;
    let addr = target.address.as_deref().ok_or_else(|| {
        format!(
            "{} has no address in the inventory, so nothing can reach it",
            target.name
        )
    })?;
    let from_manager = edge.source == Inventory::MANAGER;
    let mut args: Vec<String> = vec![
        "ssh".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", settings.connect_timeout_secs.max(1)),
        "-o".into(),
        "ControlPath=none".into(),
    ];
    let user = match (&target.user, from_manager) {
        (Some(u), _) => Some(u.clone()),
        // The manager runs as the account a node without `user:` has.
        (None, true) => None,
        (None, false) => settings.default_user.clone(),
    };
    if from_manager {
        let chain = graph.jump_chain(inv, edge.target);
        if !chain.is_empty() {
            let config = settings
                .jump_config
                .as_deref()
                .ok_or_else(|| "no ssh config for jump hosts in this run".to_string())?;
            args.push("-F".into());
            args.push(shell_quote(&config.to_string_lossy()));
        }
        if let Some(id) = &settings.manager_identity {
            args.push("-i".into());
            args.push(shell_quote(&id.to_string_lossy().replace('%', "%%")));
            args.push("-o".into());
            args.push("IdentitiesOnly=yes".into());
        }
        if let Some(kh) = &settings.manager_known_hosts {
            args.push("-o".into());
            args.push(shell_quote(&format!(
                "UserKnownHostsFile={}",
                ssh_path_value(kh)?
            )));
        }
        if !chain.is_empty() {
            // ssh wants the first hop first: the farthest from the target.
            let mut hops = Vec::with_capacity(chain.len());
            for &j in chain.iter().rev() {
                let jn = &inv.nodes[j];
                let jaddr = jn
                    .address
                    .as_deref()
                    .ok_or_else(|| format!("the jump host {} has no address", jn.name))?;
                hops.push(jump_spec(jn.user.as_deref(), jaddr, jn.port));
            }
            args.push("-J".into());
            args.push(shell_quote(&hops.join(",")));
        }
    }
    args.push("-p".into());
    args.push(shell_quote(&target.port.to_string()));
    let dest = match user {
        Some(u) => format!("{u}@{addr}"),
        None => addr.to_string(),
    };
    args.push(shell_quote(&dest));
    args.push("true".into());
    Ok(format!(
        "{} </dev/null; echo \"{EXIT_MARKER} $?\"",
        args.join(" ")
    ))
}

/// The `-F` file for the manager's attempts through jump hosts: the same
/// strict settings for every hop, the manager's own files only when they
/// are not the defaults.
pub fn jump_config_text(
    connect_timeout_secs: u64,
    identity: Option<&Path>,
    known_hosts: Option<&Path>,
) -> Result<String, String> {
    let mut s = String::from("# Generated by trustmesh verify for one run.\nHost *\n");
    s.push_str("  BatchMode yes\n");
    s.push_str("  StrictHostKeyChecking yes\n");
    s.push_str(&format!(
        "  ConnectTimeout {}\n",
        connect_timeout_secs.max(1)
    ));
    s.push_str("  ControlPath none\n");
    if let Some(id) = identity {
        s.push_str(&format!("  IdentityFile {}\n", ssh_path_value(id)?));
        s.push_str("  IdentitiesOnly yes\n");
    }
    if let Some(kh) = known_hosts {
        s.push_str(&format!("  UserKnownHostsFile {}\n", ssh_path_value(kh)?));
    }
    Ok(s)
}

// ---------------------------------------------------------------------------
// Reading an attempt's result
// ---------------------------------------------------------------------------

/// Names used in the messages about one edge.
#[derive(Debug, Clone)]
pub struct EdgeNames<'a> {
    pub source: &'a str,
    pub target: &'a str,
    /// The target's address.
    pub addr: &'a str,
    pub port: u16,
    /// `-f FILE` for `ssh-keygen -R` when the source's known_hosts is not
    /// the default.
    pub known_hosts: Option<&'a str>,
}

/// The exit status the source's shell printed after the marker.
pub fn parse_exit(stdout: &[u8]) -> Option<i32> {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(EXIT_MARKER))
        .and_then(|rest| rest.trim().parse().ok())
}

/// What an attempt's exit status and ssh's standard error mean for the edge.
pub fn interpret(exit: Option<i32>, stderr: &str, names: &EdgeNames<'_>) -> Outcome {
    let last_line = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    match exit {
        Some(0) => Outcome::Holds,
        None => Outcome::Fails(EdgeFailure {
            kind: FailureKind::Other,
            reason: format!(
                "the shell on {} printed no exit status for ssh{}",
                names.source,
                if last_line.is_empty() {
                    String::new()
                } else {
                    format!(" ({last_line})")
                }
            ),
            hint: Some(format!(
                "the account's shell on {} must be POSIX sh compatible",
                names.source
            )),
        }),
        Some(127)
            if stderr.contains("ssh: not found")
                || stderr.contains("ssh: command not found")
                || stderr.contains("ssh: No such file") =>
        {
            Outcome::Fails(EdgeFailure {
                kind: FailureKind::Other,
                reason: format!("{} has no ssh client ({last_line})", names.source),
                hint: Some(format!("install the OpenSSH client on {}", names.source)),
            })
        }
        Some(255) => Outcome::Fails(sort_ssh_error(stderr, names)),
        Some(code) => Outcome::Fails(EdgeFailure {
            kind: FailureKind::Other,
            reason: format!(
                "logged in, but `true` exited with status {code}{}",
                if last_line.is_empty() {
                    String::new()
                } else {
                    format!(" ({last_line})")
                }
            ),
            hint: Some(format!(
                "check the login shell of the account on {} and any `command=` option on {}'s key in its authorized_keys",
                names.target, names.source
            )),
        }),
    }
}

/// ssh's own failure (exit 255), in the words of this edge.
fn sort_ssh_error(stderr: &str, n: &EdgeNames<'_>) -> EdgeFailure {
    let target_ap = if n.addr.contains(':') {
        format!("[{}]:{}", n.addr, n.port)
    } else {
        format!("{}:{}", n.addr, n.port)
    };
    let kh_name = known_hosts::host_name(n.addr, n.port);
    let f = classify(
        stderr,
        &target_ap,
        n.known_hosts.unwrap_or("~/.ssh/known_hosts"),
    );
    let detail = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning:"))
        .unwrap_or("no message from ssh");
    let f_opt = n
        .known_hosts
        .map(|p| format!(" -f {}", shell_quote(p)))
        .unwrap_or_default();
    let (reason, hint) = match f.kind {
        FailureKind::AuthRejected => (
            format!("the node does not accept the key ({detail})"),
            Some(format!(
                "`trustmesh plan` shows what is missing (a key pair on {}, its line in {}'s authorized_keys, modes sshd wants); `trustmesh apply` fixes it",
                n.source, n.target
            )),
        ),
        FailureKind::HostKeyChanged => (
            format!(
                "the host key of {} ({kh_name}) differs from the one in {}'s known_hosts",
                n.target, n.source
            ),
            Some(format!(
                "if {} was reinstalled, check its new key, then on {}: `ssh-keygen -R '{kh_name}'{f_opt}` and `trustmesh apply`",
                n.target, n.source
            )),
        ),
        FailureKind::HostKeyUnknown => (
            format!(
                "{}'s known_hosts holds no host key for {} ({kh_name})",
                n.source, n.target
            ),
            Some("`trustmesh apply` adds it (read over the trusted channel)".to_string()),
        ),
        FailureKind::Timeout => (
            format!("no answer from {} ({target_ap}) in time ({detail})", n.target),
            Some(format!(
                "check that {} is up and that {} can reach {target_ap} (firewall, routes); raise --timeout for slow links",
                n.target, n.source
            )),
        ),
        FailureKind::NameUnknown => (
            format!("the name does not resolve on {} ({detail})", n.source),
            Some(format!(
                "check the address `{}` in the inventory and {}'s DNS",
                n.addr, n.source
            )),
        ),
        FailureKind::Refused => (
            f.reason,
            Some(format!(
                "check that sshd runs on {} and that {} can reach {target_ap} (firewall, routes)",
                n.target, n.source
            )),
        ),
        _ => (f.reason, f.hint),
    };
    EdgeFailure {
        kind: f.kind,
        reason,
        hint,
    }
}

// ---------------------------------------------------------------------------
// Running the attempts
// ---------------------------------------------------------------------------

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
    Decided(Outcome),
    Try {
        line: String,
        /// Nodes whose per-target cap this attempt takes (jumps, target).
        targets: Vec<NodeId>,
        timeout: Duration,
    },
}

fn not_tried(reason: String, hint: Option<String>) -> Attempt {
    Attempt::Decided(Outcome::NotTried { reason, hint })
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

    let mfiles = NodeFiles::of(inv, Inventory::MANAGER);
    let manager = inv.manager();
    let identity =
        (mfiles.key != manager.key_type.default_file()).then(|| gathered.manager_identity.clone());
    let kh = (mfiles.known_hosts != "known_hosts").then(|| gathered.manager_known_hosts.clone());
    let needs_jump_config = edges
        .iter()
        .any(|e| e.source == Inventory::MANAGER && inv.nodes[e.target].jump.is_some());
    let mut jump_config_error = None;
    let jump_config = if needs_jump_config {
        let path = gathered.run.path().join("verify_ssh_config");
        match jump_config_text(secs, identity.as_deref(), kh.as_deref()).and_then(|t| {
            crate::gather::write_private(&path, t.as_bytes()).map_err(|e| e.to_string())
        }) {
            Ok(()) => Some(path),
            Err(e) => {
                jump_config_error = Some(e);
                None
            }
        }
    } else {
        None
    };
    let default_user = gathered
        .live
        .account(Inventory::MANAGER)
        .map(|a| a.user.clone())
        .filter(|u| !u.is_empty());
    let settings = CommandSettings {
        connect_timeout_secs: secs,
        manager_identity: identity,
        manager_known_hosts: kh.clone(),
        jump_config,
        default_user,
    };

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
                jump_config_error.as_deref(),
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
        manager_known_hosts: kh.as_ref().map(|p| p.display().to_string()),
    };
    let mut futs: Vec<BoxFuture<'_, (usize, Outcome)>> = Vec::new();
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
            on_done(&EdgeResult {
                edge,
                source: inv.nodes[edge.source].name.clone(),
                target: inv.nodes[edge.target].name.clone(),
                outcome: outcome.clone(),
            });
            (i, outcome)
        }));
    }
    let width = opts.concurrency.max(1);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; edges.len()];
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
            outcome: o.unwrap_or(Outcome::NotTried {
                reason: "internal error: the attempt did not finish".into(),
                hint: None,
            }),
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
    ) -> Outcome {
        let inv = self.inv;
        let Some(host) = self
            .gathered
            .hosts
            .get(edge.source)
            .and_then(Option::as_ref)
        else {
            return Outcome::NotTried {
                reason: "no open connection to the source".into(),
                hint: None,
            };
        };
        // One session on a remote source's master connection.
        let _session = match host {
            Host::Local => None,
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
            addr: target.address.as_deref().unwrap_or_default(),
            port: target.port,
            known_hosts: if edge.source == Inventory::MANAGER {
                self.manager_known_hosts.as_deref()
            } else {
                None
            },
        };
        match result {
            Ok(out) => interpret(
                parse_exit(&out.stdout),
                &String::from_utf8_lossy(&out.stderr),
                &names,
            ),
            Err(StepError::Timeout(_)) => Outcome::Fails(EdgeFailure {
                kind: FailureKind::Timeout,
                reason: format!(
                    "no answer from {} within {} s",
                    names.target,
                    timeout.as_secs()
                ),
                hint: Some(format!(
                    "check that {} is up and that {} can reach it; raise --timeout for slow links",
                    names.target, names.source
                )),
            }),
            Err(e) => Outcome::NotTried {
                reason: format!("could not run ssh on {}: {e}", names.source),
                hint: Some(format!(
                    "the connection to {} failed during the run; try again",
                    names.source
                )),
            },
        }
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
    jump_config_error: Option<&str>,
) -> Attempt {
    match gathered.live.nodes.get(edge.source) {
        Some(NodeState::Read { .. }) => {}
        Some(NodeState::Unreachable { step, reason, hint }) => {
            return not_tried(
                format!("source unreachable (at {step}: {reason})"),
                hint.clone(),
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
    let chain = if edge.source == Inventory::MANAGER {
        graph.jump_chain(inv, edge.target)
    } else {
        Vec::new()
    };
    if !chain.is_empty() {
        if let Some(e) = jump_config_error {
            return not_tried(
                format!("cannot write the ssh config for jump hosts: {e}"),
                Some("check that the temporary folder ($TMPDIR or /tmp) is writable".into()),
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
        Err(reason) => not_tried(reason, None),
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Text rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    pub color: bool,
    /// Only the failing edges and the summary line (`-q`).
    pub quiet: bool,
}

/// A matrix cell: the text, and its colour code.
fn cell(outcome: Option<&Outcome>) -> (&'static str, &'static str) {
    match outcome {
        None => ("-", "2"),
        Some(Outcome::Holds) => ("ok", "32"),
        Some(Outcome::Fails(_)) => ("FAIL", "1;31"),
        Some(Outcome::NotTried { .. }) => ("?", "33"),
    }
}

/// `Verify: 12 of 12 edges hold.` / `Verify: 10 of 12 edges hold, 2 fail.`
pub fn summary_line(s: &Summary) -> String {
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
    line.push('.');
    line
}

/// Render the report as text: the matrix (or, for many nodes, a list by
/// source), one line per failing edge with its hint, and the summary line,
/// separated by blank lines.
pub fn render_text(
    report: &VerifyReport,
    opts: TextOptions,
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
    sections.push(format!("{}\n", summary_line(&report.summary())));
    out.write_all(sections.join("\n").as_bytes())
}

/// The matrix, or the list by source when the matrix would not be readable.
fn overview(report: &VerifyReport, p: &Paint) -> String {
    let cells: HashMap<(&str, &str), &Outcome> = report
        .edges
        .iter()
        .map(|e| ((e.source.as_str(), e.target.as_str()), &e.outcome))
        .collect();
    let label_w = report
        .nodes
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0);
    let col_w: Vec<usize> = report
        .nodes
        .iter()
        .map(|n| n.chars().count().max(4))
        .collect();
    let width = label_w + col_w.iter().map(|w| w + 2).sum::<usize>();
    let mut s = String::new();
    if report.nodes.len() <= MATRIX_MAX_NODES && width <= MATRIX_MAX_WIDTH {
        let mut header = " ".repeat(label_w);
        for (name, w) in report.nodes.iter().zip(&col_w) {
            header.push_str("  ");
            header.push_str(&pad(name, *w));
        }
        s.push_str(header.trim_end());
        s.push('\n');
        for src in &report.nodes {
            let mut row = pad(src, label_w);
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
            "(rows: source, columns: target; ok holds, FAIL fails, ? not tried, - no edge)",
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
            "{src}: {hold} of {} {}",
            mine.len(),
            if mine.len() == 1 { "holds" } else { "hold" }
        ));
        let fails: Vec<&str> = mine
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::Fails(_)))
            .map(|e| e.target.as_str())
            .collect();
        let untried: Vec<&str> = mine
            .iter()
            .filter(|e| matches!(e.outcome, Outcome::NotTried { .. }))
            .map(|e| e.target.as_str())
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
        s.push('\n');
    }
    s
}

/// One line per edge that does not hold, with its hint (each hint once:
/// a node down gives many edges the same advice).
fn failures(report: &VerifyReport, p: &Paint) -> String {
    let mut s = String::new();
    let mut hints_shown: HashSet<&str> = HashSet::new();
    for e in &report.edges {
        let (what, hint) = match &e.outcome {
            Outcome::Holds => continue,
            Outcome::Fails(f) => (f.reason.clone(), f.hint.as_deref()),
            Outcome::NotTried { reason, hint } => (format!("not tried: {reason}"), hint.as_deref()),
        };
        s.push_str(&format!(
            "{} -> {} ({}): {what}\n",
            e.source,
            e.target,
            e.edge.kind.as_str()
        ));
        if let Some(h) = hint {
            if hints_shown.insert(h) {
                s.push_str(&format!("  {} {h}\n", p.wrap("2", "hint:")));
            }
        }
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

#[derive(Serialize)]
struct JsonEdge<'a> {
    source: &'a str,
    target: &'a str,
    kind: EdgeKind,
    ok: bool,
    /// `ok`, `fail` or `not_tried`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<FailureKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<&'a str>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: u32,
    nodes: &'a [String],
    edges: Vec<JsonEdge<'a>>,
    summary: Summary,
}

/// Render the report as one JSON document.
pub fn render_json(report: &VerifyReport, out: &mut dyn Write) -> io::Result<()> {
    let edges = report
        .edges
        .iter()
        .map(|e| {
            let (status, failure, reason, hint) = match &e.outcome {
                Outcome::Holds => ("ok", None, None, None),
                Outcome::Fails(f) => (
                    "fail",
                    Some(f.kind),
                    Some(f.reason.as_str()),
                    f.hint.as_deref(),
                ),
                Outcome::NotTried { reason, hint } => {
                    ("not_tried", None, Some(reason.as_str()), hint.as_deref())
                }
            };
            JsonEdge {
                source: &e.source,
                target: &e.target,
                kind: e.edge.kind,
                ok: e.outcome.holds(),
                status,
                failure,
                reason,
                hint,
            }
        })
        .collect();
    let doc = JsonReport {
        format_version: FORMAT_VERSION,
        nodes: &report.nodes,
        edges,
        summary: report.summary(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(text: &str) -> Inventory {
        Inventory::from_str_named("t", text).expect("valid inventory")
    }

    const CLUSTER: &str = "version: 1\ndefaults: {user: agilab}\nmanager: {name: manager, address: 10.0.0.1, user: alice}\nbastions:\n  - {name: gw, address: gw.example.org, user: jumper, port: 2200}\nworkers:\n  - {name: node1, address: 10.0.0.2}\n  - {name: node2, address: 'fe80::2', port: 2222}\n  - {name: hidden, address: 192.168.1.5, jump: gw}\n  - {name: free, address: 10.0.0.9, user: null}\nreverse: [node1]\nmesh:\n  - [node1, node2]\n";

    fn settings() -> CommandSettings {
        CommandSettings {
            connect_timeout_secs: 7,
            default_user: Some("alice".into()),
            jump_config: Some("/tmp/tm-x/verify_ssh_config".into()),
            ..CommandSettings::default()
        }
    }

    fn edge(kind: EdgeKind, source: NodeId, target: NodeId) -> Edge {
        Edge {
            kind,
            source,
            target,
        }
    }

    const TAIL: &str = " </dev/null; echo \"trustmesh-verify-exit $?\"";

    #[test]
    fn worker_to_worker_is_the_plain_command() {
        let i = inv(CLUSTER);
        let g = TrustGraph::build(&i);
        let n1 = i.find("node1").unwrap();
        let n2 = i.find("node2").unwrap();
        let line = command_line(&i, &g, edge(EdgeKind::Mesh, n1, n2), &settings()).unwrap();
        assert_eq!(
            line,
            format!("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=7 -o ControlPath=none -p '2222' 'agilab@fe80::2' true{TAIL}")
        );
        let line = command_line(&i, &g, edge(EdgeKind::Reverse, n1, 0), &settings()).unwrap();
        assert_eq!(
            line,
            format!("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=7 -o ControlPath=none -p '22' 'alice@10.0.0.1' true{TAIL}")
        );
        let relaxed = ["stricthostkeychecking", "=no"].concat();
        assert!(!line.to_lowercase().contains(&relaxed));
        assert!(!line.contains("accept-new"));
    }

    #[test]
    fn a_worker_reaching_a_node_without_user_uses_the_running_account() {
        let i = inv(CLUSTER);
        let g = TrustGraph::build(&i);
        let free = i.find("free").unwrap();
        let n1 = i.find("node1").unwrap();
        // `user: null` inherits the default; force None to test the rule.
        let mut i2 = i.clone();
        i2.nodes[free].user = None;
        let line = command_line(&i2, &g, edge(EdgeKind::Mesh, n1, free), &settings()).unwrap();
        assert!(line.contains(" 'alice@10.0.0.9' true"), "{line}");
        let line = command_line(&i2, &g, edge(EdgeKind::Forward, 0, free), &settings()).unwrap();
        assert!(line.contains(" -p '22' '10.0.0.9' true"), "{line}");
        let mut s = settings();
        s.default_user = None;
        let line = command_line(&i2, &g, edge(EdgeKind::Mesh, n1, free), &s).unwrap();
        assert!(line.contains(" '10.0.0.9' true"), "{line}");
    }

    #[test]
    fn the_manager_adds_its_files_only_when_not_default_and_jumps_with_a_config() {
        let i = inv(CLUSTER);
        let g = TrustGraph::build(&i);
        let n1 = i.find("node1").unwrap();
        let hidden = i.find("hidden").unwrap();
        let plain = command_line(&i, &g, edge(EdgeKind::Forward, 0, n1), &settings()).unwrap();
        assert_eq!(
            plain,
            format!("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=7 -o ControlPath=none -p '22' 'agilab@10.0.0.2' true{TAIL}")
        );
        let mut s = settings();
        s.manager_identity = Some("/home/al ice/keys/it's%d".into());
        s.manager_known_hosts = Some("/home/al ice/kh".into());
        let line = command_line(&i, &g, edge(EdgeKind::Forward, 0, hidden), &s).unwrap();
        assert_eq!(
            line,
            format!("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=7 -o ControlPath=none -F '/tmp/tm-x/verify_ssh_config' -i '/home/al ice/keys/it'\\''s%%d' -o IdentitiesOnly=yes -o 'UserKnownHostsFile=\"/home/al ice/kh\"' -J 'jumper@gw.example.org:2200' -p '22' 'agilab@192.168.1.5' true{TAIL}")
        );
        // No config, no jump: refused rather than a laxer connection.
        let mut s = settings();
        s.jump_config = None;
        assert!(command_line(&i, &g, edge(EdgeKind::Forward, 0, hidden), &s).is_err());
    }

    #[test]
    fn jump_chains_are_given_first_hop_first() {
        let i = inv("version: 1\nmanager: {name: m}\nbastions:\n  - {name: outer, address: 'fe80::1'}\n  - {name: inner, address: 10.1.0.1, port: 2022, jump: outer, user: j}\nworkers:\n  - {name: w, address: 10.2.0.1, jump: inner}\n");
        let g = TrustGraph::build(&i);
        let w = i.find("w").unwrap();
        let line = command_line(&i, &g, edge(EdgeKind::Forward, 0, w), &settings()).unwrap();
        assert!(
            line.contains(" -J '[fe80::1]:22,j@10.1.0.1:2022' -p '22' '10.2.0.1' true"),
            "{line}"
        );
    }

    #[test]
    fn a_target_without_address_is_not_tried() {
        let i = inv("version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: 10.2.0.1}\n");
        let g = TrustGraph::build(&i);
        let e = command_line(&i, &g, edge(EdgeKind::Reverse, 1, 0), &settings()).unwrap_err();
        assert!(e.contains("m has no address"), "{e}");
    }

    #[test]
    fn jump_config_is_strict_and_quotes_paths() {
        let t = jump_config_text(5, Some(Path::new("/k/id %h")), Some(Path::new("/k/kh"))).unwrap();
        assert_eq!(
            t,
            "# Generated by trustmesh verify for one run.\nHost *\n  BatchMode yes\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  ControlPath none\n  IdentityFile \"/k/id %%h\"\n  IdentitiesOnly yes\n  UserKnownHostsFile \"/k/kh\"\n"
        );
        assert!(jump_config_text(5, Some(Path::new("/k/\"x")), None).is_err());
        let t = jump_config_text(0, None, None).unwrap();
        assert!(t.contains("ConnectTimeout 1\n") && !t.contains("IdentityFile"));
    }

    fn names() -> EdgeNames<'static> {
        EdgeNames {
            source: "node2",
            target: "node3",
            addr: "127.0.0.4",
            port: 2222,
            known_hosts: None,
        }
    }

    fn failure(o: Outcome) -> EdgeFailure {
        match o {
            Outcome::Fails(f) => f,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn exit_statuses_and_ssh_messages_are_read() {
        assert_eq!(parse_exit(b"motd\ntrustmesh-verify-exit 0\n"), Some(0));
        assert_eq!(parse_exit(b"trustmesh-verify-exit 255"), Some(255));
        assert_eq!(parse_exit(b"nothing"), None);
        assert_eq!(parse_exit(b"trustmesh-verify-exit x"), None);
        assert_eq!(interpret(Some(0), "", &names()), Outcome::Holds);

        let f = failure(interpret(
            Some(255),
            "agilab@127.0.0.4: Permission denied (publickey).\r\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::AuthRejected);
        assert_eq!(
            f.reason,
            "the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)"
        );
        assert!(f.hint.unwrap().contains("node3's authorized_keys"));

        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nHost key verification failed.\n";
        let f = failure(interpret(Some(255), changed, &names()));
        assert_eq!(f.kind, FailureKind::HostKeyChanged);
        assert_eq!(
            f.reason,
            "the host key of node3 ([127.0.0.4]:2222) differs from the one in node2's known_hosts"
        );
        assert_eq!(
            f.hint.as_deref(),
            Some("if node3 was reinstalled, check its new key, then on node2: `ssh-keygen -R '[127.0.0.4]:2222'` and `trustmesh apply`")
        );
        let mut n = names();
        n.known_hosts = Some("/home/a b/kh");
        let f = failure(interpret(Some(255), changed, &n));
        assert!(f
            .hint
            .unwrap()
            .contains("-R '[127.0.0.4]:2222' -f '/home/a b/kh'`"));

        let f = failure(interpret(
            Some(255),
            "No ED25519 host key is known for [127.0.0.4]:2222 and you have requested strict checking.\nHost key verification failed.\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::HostKeyUnknown);
        assert_eq!(
            f.reason,
            "node2's known_hosts holds no host key for node3 ([127.0.0.4]:2222)"
        );

        let f = failure(interpret(
            Some(255),
            "ssh: connect to host 127.0.0.4 port 2222: Connection refused\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::Refused);
        assert_eq!(
            f.reason,
            "ssh: connect to host 127.0.0.4 port 2222: Connection refused"
        );
        let f = failure(interpret(
            Some(255),
            "Connection timed out during banner exchange\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::Timeout);

        let f = failure(interpret(Some(127), "sh: 1: ssh: not found\n", &names()));
        assert_eq!(f.reason, "node2 has no ssh client (sh: 1: ssh: not found)");
        let f = failure(interpret(Some(1), "", &names()));
        assert_eq!(f.reason, "logged in, but `true` exited with status 1");
        let f = failure(interpret(None, "killed", &names()));
        assert!(f.reason.contains("no exit status"), "{}", f.reason);
    }

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

    fn result(kind: EdgeKind, s: &str, t: &str, outcome: Outcome) -> EdgeResult {
        EdgeResult {
            edge: edge(kind, 0, 0),
            source: s.into(),
            target: t.into(),
            outcome,
        }
    }

    fn sample() -> VerifyReport {
        let auth = Outcome::Fails(EdgeFailure {
            kind: FailureKind::AuthRejected,
            reason: "the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)".into(),
            hint: Some("`trustmesh plan` shows what is missing".into()),
        });
        let down = Outcome::NotTried {
            reason: "source unreachable (at connect: no answer from 127.0.0.5:22 in time)".into(),
            hint: Some("check that the host is up".into()),
        };
        use EdgeKind::*;
        VerifyReport {
            nodes: vec![
                "manager".into(),
                "node1".into(),
                "node2".into(),
                "node3".into(),
            ],
            edges: vec![
                result(Forward, "manager", "node1", Outcome::Holds),
                result(Forward, "manager", "node2", Outcome::Holds),
                result(Forward, "manager", "node3", Outcome::Holds),
                result(Reverse, "node1", "manager", Outcome::Holds),
                result(Mesh, "node1", "node2", Outcome::Holds),
                result(Mesh, "node1", "node3", Outcome::Holds),
                result(Mesh, "node2", "node1", Outcome::Holds),
                result(Mesh, "node2", "node3", auth),
                result(Mesh, "node3", "node1", down.clone()),
                result(Mesh, "node3", "node2", down),
            ],
        }
    }

    fn text(r: &VerifyReport, opts: TextOptions) -> String {
        let mut out = Vec::new();
        render_text(r, opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_is_a_matrix_then_the_failures_then_the_summary() {
        assert_eq!(
            text(&sample(), TextOptions::default()),
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
                TextOptions {
                    quiet: true,
                    ..TextOptions::default()
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
            e.outcome = Outcome::Holds;
        }
        let t = text(&r, TextOptions::default());
        assert!(
            t.ends_with("- no edge)\n\nVerify: 10 of 10 edges hold.\n"),
            "{t}"
        );
        assert!(r.all_hold());
        let empty = VerifyReport {
            nodes: vec!["m".into()],
            edges: vec![],
        };
        assert_eq!(
            text(&empty, TextOptions::default()),
            "Verify: no edges to try.\n"
        );
        assert!(empty.all_hold());
    }

    #[test]
    fn colour_keeps_the_columns_aligned() {
        let t = text(
            &sample(),
            TextOptions {
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
            edges.push(result(EdgeKind::Reverse, s, "n00", Outcome::Holds));
        }
        edges[3].outcome = Outcome::NotTried {
            reason: "x".into(),
            hint: None,
        };
        let r = VerifyReport { nodes, edges };
        let t = text(&r, TextOptions::default());
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
            summary_line(&Summary {
                edges,
                hold,
                fail,
                not_tried,
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
            serde_json::json!({"source": "manager", "target": "node1", "kind": "forward", "ok": true, "status": "ok"})
        );
        assert_eq!(
            v["edges"][7],
            serde_json::json!({"source": "node2", "target": "node3", "kind": "mesh", "ok": false, "status": "fail",
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
