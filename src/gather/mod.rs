//! Reading the live state of every node: one probe per node, one round trip.
//!
//! The manager is read locally. Every other node gets, in order: a trusted
//! host key for its control channel (pinned, already in the manager's
//! known_hosts, or accepted on first use with `--accept-new-host-keys`),
//! one multiplexed master connection (kept open for the rest of the run),
//! and one run of the probe script; then the host keys its sshd proved to
//! that connection ([`proof`]), the only ones the planner writes (what the
//! probe reports about them is a hint). Nodes behind a jump are reached after
//! their jump host; new connections through one host are capped so sshd's
//! `MaxStartups` never drops one. A node that fails is reported with the
//! step, the cause and the next thing to try; the others go on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Semaphore};

use crate::formats::known_hosts::{self, KnownHostsFile};
use crate::model::finding::{Finding, Hint};
use crate::model::graph::TrustGraph;
use crate::model::inventory::{Inventory, NodeId};
use crate::model::state::LiveAccount;
use crate::plan::{LiveState, Login, NodeFiles, NodeState, PlanScope};
use crate::transport::scripts::shell_quote;
use crate::transport::{self, classify, FailureKind, Host, PasswordLogin, RunDir, Secret};
use probe::ProbeRequest;

mod hostkeys;
mod manager;
pub mod probe;
mod proof;
mod reach;

use reach::{global_known_hosts, read_node};
use transport::local::manager_file;

/// New connections through (or to) one host at once: below sshd's default
/// `MaxStartups 10:30:100`.
pub const PER_TARGET_CONNECTIONS: usize = 8;

/// How to gather.
#[derive(Debug, Clone)]
pub struct GatherOptions {
    pub accept_new_host_keys: bool,
    pub timeout: Duration,
    pub concurrency: usize,
    pub scope: PlanScope,
    /// `--ask-pass`: a node that does not accept the manager's key (or
    /// every node, while the manager has no key) is read with a password
    /// login instead. Reading writes nothing.
    pub password: Option<Secret>,
    /// `--accept-changed-host-key NODE=SHA256:...`: host keys the operator
    /// checked out of band, pinned for this run like `host_key:`.
    pub accepted_changes: Vec<(NodeId, String)>,
    /// Asked before a password goes to a host whose key was accepted on
    /// first use in this run (node, fingerprints): the password is sent
    /// only on `true`. `None` (no terminal): the flags given are the
    /// consent.
    pub confirm_new_host_key: Option<ConfirmHostKey>,
}

/// A question to the operator: send the password to this node, whose host
/// key was just accepted on first use?
#[derive(Clone)]
pub struct ConfirmHostKey(pub Arc<AskFn>);

/// (node, fingerprints) -> send the password?
pub type AskFn = dyn Fn(&str, &str) -> bool + Send + Sync;

impl std::fmt::Debug for ConfirmHostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmHostKey(..)")
    }
}

impl GatherOptions {
    /// The host key `id` is pinned to in this run, if any: the operator's
    /// `--accept-changed-host-key` first, else the inventory's `host_key`.
    pub fn pin<'a>(
        &'a self,
        id: NodeId,
        node: &'a crate::model::inventory::Node,
    ) -> Option<&'a str> {
        self.accepted_changes
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, fp)| fp.as_str())
            .or(node.host_key.as_deref())
    }
}

/// Why a run cannot even start.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum GatherError {
    #[error("the manager runs trustmesh as `{running}`, but the inventory names `{wanted}`")]
    #[diagnostic(
        code(trustmesh::manager::user),
        help("run trustmesh as {wanted}, or change `manager.user` in the inventory")
    )]
    WrongUser { running: String, wanted: String },
    #[error("cannot read the manager's own state: {0}")]
    #[diagnostic(
        code(trustmesh::manager::probe),
        help("check that `sh` works and that the home folder is readable")
    )]
    ManagerProbe(String),
    #[error("{key}.pub does not match the manager's private key {key}: it holds {holds}, the key is {real}")]
    #[diagnostic(
        code(trustmesh::manager::key_mismatch),
        help("ssh offers the .pub's key and is refused everywhere, so nothing is planned; put the right one back with `ssh-keygen -y -f {key} > {key}.pub`")
    )]
    ManagerKeyMismatch {
        key: String,
        holds: String,
        real: String,
    },
    #[error("cannot prepare this run's folder: {0}")]
    #[diagnostic(
        code(trustmesh::manager::rundir),
        help("check that the temporary folder ($TMPDIR or /tmp) is writable")
    )]
    RunDir(#[from] std::io::Error),
}

/// The live state, and the open connections for the rest of the run.
#[derive(Debug)]
pub struct Gathered {
    pub live: LiveState,
    /// Host keys accepted on first use, and other things to tell the user.
    pub notes: Vec<String>,
    /// The host keys accepted on first use in this run, as known_hosts
    /// lines (`host type base64`): what a saved plan pins.
    pub accepted: Vec<String>,
    pub hosts: Vec<Option<Host>>,
    pub run: RunDir,
    /// Where the manager's known_hosts is (absolute).
    pub manager_known_hosts: PathBuf,
    /// The manager's private key (absolute).
    pub manager_identity: PathBuf,
    /// `--concurrency`: nodes worked on at once, also when reading again
    /// and closing (each command in flight holds a control socket and its
    /// pipes: open files stay bounded by this, not by the number of hosts).
    pub concurrency: usize,
}

impl Gathered {
    /// Close every master connection, `concurrency` at a time (each
    /// close talks to its master over a socket of its own).
    pub async fn close(self) {
        use futures::StreamExt;
        futures::stream::iter(self.hosts.into_iter().flatten())
            .for_each_concurrent(self.concurrency.max(1), |h| h.close(Duration::from_secs(5)))
            .await;
    }
}

/// Read every node in scope. `on_done` is called with a node's name as it
/// finishes (for a progress bar).
pub async fn gather(
    inv: &Inventory,
    graph: &TrustGraph,
    opts: &GatherOptions,
    on_done: &(dyn Fn(&str) + Sync),
) -> Result<Gathered, GatherError> {
    let manager = inv.manager();
    let home = transport::local::home();
    let mfiles = NodeFiles::of(inv, Inventory::MANAGER);
    let (manager_account, key_note) = manager::probe_local(&mfiles, &home, opts.timeout).await?;
    let running = manager_account.user.clone();
    if let Some(wanted) = &manager.user {
        if !running.is_empty() && wanted != &running {
            return Err(GatherError::WrongUser {
                running,
                wanted: wanted.clone(),
            });
        }
    }
    let manager_identity = manager_file(&mfiles.key, &home);
    let manager_known_hosts = manager_file(&mfiles.known_hosts, &home);
    let kh_text = manager_account
        .file(&mfiles.known_hosts)
        .and_then(|f| f.content.as_deref())
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    let manager_kh = KnownHostsFile::parse(&kh_text);
    let manager_has_key = manager_account
        .file(&mfiles.key)
        .is_some_and(|f| f.stat.is_some());

    let run = RunDir::new()?;
    let settings = transport::sshconfig::ConfigSettings {
        identity: manager_identity.clone(),
        connect_timeout_secs: opts.timeout.as_secs().max(1),
        default_user: if running.is_empty() {
            "root".into()
        } else {
            running.clone()
        },
        proof_dir: run.proof_dir(),
    };
    transport::local::write_private(
        &run.config(),
        transport::sshconfig::render(inv, &settings).as_bytes(),
    )?;

    let n = inv.nodes.len();
    let mut states: Vec<Option<NodeState>> = vec![None; n];
    let mut hosts: Vec<Option<Host>> = (0..n).map(|_| None).collect();
    states[Inventory::MANAGER] = Some(NodeState::Read {
        account: manager_account,
        access: Login::Key,
    });
    hosts[Inventory::MANAGER] = Some(Host::Local);
    on_done(&manager.name);

    let shared = Arc::new(Shared {
        config: run.config(),
        control: run.path().to_path_buf(),
        proof_dir: run.proof_dir(),
        accepted: Mutex::new(Vec::new()),
        notes: Mutex::new(key_note.iter().map(ToString::to_string).collect()),
        manager_kh,
        global_kh: global_known_hosts(),
        known_hosts_display: manager_known_hosts.display().to_string(),
        opts: opts.clone(),
        manager_has_key,
        asking: Mutex::new(()),
        global: Semaphore::new(opts.concurrency.max(1)),
        per_target: (0..n)
            .map(|_| Semaphore::new(PER_TARGET_CONNECTIONS))
            .collect(),
    });

    // Levels by jump depth: a jump host is connected before what is behind it.
    let depth = |id: NodeId| graph.jump_chain(inv, id).len();
    let mut levels: Vec<Vec<NodeId>> = Vec::new();
    for (id, node) in inv.nodes.iter().enumerate().skip(1) {
        if !opts.scope.contains(id) && !is_jump_of_scope(inv, &opts.scope, id) {
            states[id] = Some(NodeState::Skipped {
                reason: crate::output::hints::NOT_IN_LIMIT.into(),
            });
            continue;
        }
        if !manager_has_key && opts.password.is_none() {
            states[id] = Some(unreachable(
                "connect",
                format!(
                    "the manager has no key pair yet ({})",
                    manager_identity.display()
                ),
                Some(Hint::AskPassWithoutKey),
            ));
            on_done(&node.name);
            continue;
        }
        let d = depth(id);
        if levels.len() <= d {
            levels.resize(d + 1, Vec::new());
        }
        levels[d].push(id);
    }
    read_levels(
        inv,
        graph,
        &shared,
        levels,
        &mut states,
        &mut hosts,
        on_done,
    )
    .await;
    let live = LiveState {
        nodes: states
            .into_iter()
            .map(|s| {
                s.unwrap_or_else(|| {
                    unreachable(
                        "read",
                        "internal error while reading this node".into(),
                        None,
                    )
                })
            })
            .collect(),
    };
    let notes = std::mem::take(&mut *shared.notes.lock().await);
    let accepted = shared.accepted.lock().await.clone();
    Ok(Gathered {
        live,
        notes,
        accepted,
        hosts,
        run,
        manager_known_hosts,
        manager_identity,
        concurrency: opts.concurrency.max(1),
    })
}

/// Read the nodes level by level (a jump host before what is behind it),
/// each level's nodes at once; their states and connections go to
/// `states` and `hosts`.
async fn read_levels(
    inv: &Inventory,
    graph: &TrustGraph,
    shared: &Arc<Shared>,
    levels: Vec<Vec<NodeId>>,
    states: &mut [Option<NodeState>],
    hosts: &mut [Option<Host>],
    on_done: &(dyn Fn(&str) + Sync),
) {
    // Jump hosts are shared by reference with the tasks behind them.
    let hosts_arc: Arc<Mutex<Vec<Option<Arc<Host>>>>> =
        Arc::new(Mutex::new((0..inv.nodes.len()).map(|_| None).collect()));
    for level in levels {
        let mut tasks = Vec::new();
        for id in level {
            let shared = shared.clone();
            let hosts_arc = hosts_arc.clone();
            let inv_node = inv.nodes[id].clone();
            let jump_chain = graph.jump_chain(inv, id);
            let alias = transport::sshconfig::alias(inv, id);
            let files = NodeFiles::of(inv, id);
            let jump_failed = jump_failed(inv, states, &jump_chain);
            tasks.push(tokio::spawn(async move {
                if let Some(state) = jump_failed {
                    return (id, state, None);
                }
                let _g = shared.global.acquire().await;
                let via = match jump_chain.first() {
                    Some(j) => hosts_arc.lock().await[*j].clone(),
                    None => None,
                };
                let (state, host) =
                    read_node(&shared, &inv_node, id, &alias, &files, via, &jump_chain).await;
                (id, state, host)
            }));
        }
        // A task that panicked leaves its node unread (reported as an
        // internal error below); the run goes on.
        for (id, state, host) in futures::future::join_all(tasks).await.into_iter().flatten() {
            on_done(&inv.nodes[id].name);
            states[id] = Some(state);
            hosts_arc.lock().await[id] = host.map(Arc::new);
        }
    }
    for (id, h) in std::mem::take(&mut *hosts_arc.lock().await)
        .into_iter()
        .enumerate()
    {
        if let Some(h) = h {
            if let Ok(h) = Arc::try_unwrap(h) {
                hosts[id] = Some(h);
            }
        }
    }
}

/// A node behind a jump host that could not be read is not tried. So is a
/// node behind a jump host reached with a password: a jump needs the
/// manager's key.
fn jump_failed(
    inv: &Inventory,
    states: &[Option<NodeState>],
    jump_chain: &[NodeId],
) -> Option<NodeState> {
    jump_chain.iter().find_map(|j| {
        let name = &inv.nodes[*j].name;
        match &states[*j] {
            Some(NodeState::Read {
                access: Login::Key, ..
            }) => None,
            Some(NodeState::Read { .. }) => Some(unreachable(
                "connect",
                format!("its jump host {name} does not accept the manager's key yet"),
                Some(Hint::InstallOnJump { jump: name.clone() }),
            )),
            _ => Some(unreachable(
                "connect",
                format!("its jump host {name} could not be reached"),
                Some(Hint::Text(format!("fix {name} first: see its own error"))),
            )),
        }
    })
}

fn is_jump_of_scope(inv: &Inventory, scope: &PlanScope, id: NodeId) -> bool {
    inv.nodes
        .iter()
        .enumerate()
        .any(|(other, n)| scope.contains(other) && n.jump == Some(id))
}

struct Shared {
    config: PathBuf,
    control: PathBuf,
    /// Each node's known_hosts file of this run is in there.
    proof_dir: PathBuf,
    /// Host keys accepted on first use in this run (`name type base64`).
    accepted: Mutex<Vec<String>>,
    notes: Mutex<Vec<String>>,
    manager_kh: KnownHostsFile,
    /// `/etc/ssh/ssh_known_hosts` and `ssh_known_hosts2` of the manager.
    global_kh: KnownHostsFile,
    known_hosts_display: String,
    opts: GatherOptions,
    manager_has_key: bool,
    /// One question to the operator at a time.
    asking: Mutex<()>,
    global: Semaphore,
    per_target: Vec<Semaphore>,
}

fn unreachable(step: &str, reason: String, hint: Option<Hint>) -> NodeState {
    Finding::new(step, reason, hint).into()
}

/// Read every node again over the connections already open (after
/// apply): no new handshakes, except for a node read with a password,
/// which must now accept the manager's key: a fresh key connection proves
/// it, and is used from then on. Nodes that were not reachable stay as
/// they were; a node that stops answering is reported unreachable.
pub async fn reread(
    inv: &Inventory,
    g: &mut Gathered,
    timeout: Duration,
) -> Result<(), GatherError> {
    let all = vec![true; inv.nodes.len()];
    reread_some(inv, g, timeout, &all).await
}

/// [`reread`], of the manager and the nodes `which` marks only (indexed
/// like the inventory's nodes): the others keep the state they have.
pub async fn reread_some(
    inv: &Inventory,
    g: &mut Gathered,
    timeout: Duration,
    which: &[bool],
) -> Result<(), GatherError> {
    let home = transport::local::home();
    let mfiles = NodeFiles::of(inv, Inventory::MANAGER);
    let (manager, _) = manager::probe_local(&mfiles, &home, timeout).await?;
    g.live.nodes[Inventory::MANAGER] = NodeState::Read {
        account: manager,
        access: Login::Key,
    };
    let (config, control) = (g.run.config(), g.run.path().to_path_buf());
    let known_hosts = g.manager_known_hosts.display().to_string();
    let tasks = g
        .hosts
        .iter_mut()
        .enumerate()
        .skip(1)
        .filter_map(|(id, h)| {
            if !matches!(g.live.nodes[id], NodeState::Read { .. })
                || !which.get(id).copied().unwrap_or(true)
            {
                return None;
            }
            let files = NodeFiles::of(inv, id);
            let (config, control, known_hosts) = (&config, &control, &known_hosts);
            Some(async move {
                if let Some(Host::Password(_)) = h {
                    let node = &inv.nodes[id];
                    let alias = transport::sshconfig::alias(inv, id);
                    let connected = transport::connect(
                        config,
                        control,
                        &alias,
                        node.target(),
                        known_hosts,
                        timeout,
                    )
                    .await;
                    match connected {
                        Ok(host) => *h = Some(host),
                        Err(f) => {
                            return (
                                id,
                                Err(unreachable(
                                    "connect",
                                    format!(
                                        "after apply, with the manager's key: {}",
                                        f.finding.reason
                                    ),
                                    f.finding.hint,
                                )),
                            );
                        }
                    }
                }
                let Some(host) = h.as_ref() else {
                    return (id, Err(unreachable("read", "no connection".into(), None)));
                };
                (id, read_remote(host, &inv.nodes[id], &files, timeout).await)
            })
        });
    // At most `--concurrency` reads in flight: each holds a control socket
    // and pipes, and a host count above the open-file limit must not fail.
    use futures::StreamExt;
    let width = g.concurrency.max(1);
    let results: Vec<_> = futures::stream::iter(tasks)
        .buffer_unordered(width)
        .collect()
        .await;
    for (id, r) in results {
        g.live.nodes[id] = match r {
            Ok(mut account) => {
                // The host keys proven when the node was first read stay:
                // the connection is the same (or ssh checked the new one
                // against them).
                if let Some(old) = g.live.account(id) {
                    account.proven_host_keys = old.proven_host_keys.clone();
                }
                NodeState::Read {
                    account,
                    access: Login::Key,
                }
            }
            Err(state) => state,
        };
    }
    Ok(())
}

/// Read a node through its door ([`crate::node::open`]): the probe, or
/// SFTP for a node without a POSIX shell. A failure is the node's
/// unreachable state, with its step and what to try.
pub(super) async fn read_remote(
    host: &Host,
    node: &crate::model::inventory::Node,
    files: &NodeFiles,
    timeout: Duration,
) -> Result<LiveAccount, NodeState> {
    crate::node::open(node, host, timeout)
        .read_state(files)
        .await
        .map_err(unreachable_at)
}

/// A door's failure as the node's state.
pub(super) fn unreachable_at(e: crate::node::DoorError) -> NodeState {
    e.into_finding().into()
}
