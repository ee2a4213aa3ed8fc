//! The planner: a pure function of (inventory, trust graph, live state) to
//! the changes `apply` would make.
//!
//! Nothing here touches a host or the filesystem, so the planner is unit
//! tested and benchmarked on values in memory. The live state comes from
//! [`crate::gather`]; the plan goes to [`crate::render`] and, later, to
//! `apply`.
//!
//! For every node, what an edge `A -> B` needs (inventory-v1, "Edges"):
//! a key pair on A, A's public key in B's `authorized_keys`, B's host keys in
//! A's `known_hosts` under B's address, and the modes sshd's StrictModes
//! wants. Lines the tool writes carry `trustmesh:<node>` in their comment;
//! lines without it are never touched. A value that only exists after apply
//! (the public half of a key not generated yet) is planned as "known after
//! apply".

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::authorized_keys::AuthorizedKeysFile;
use crate::graph::TrustGraph;
use crate::inventory::{Inventory, NodeId, Os, Role};
use crate::known_hosts::{self, Annotation, HostEntry, KnownHostsFile};
use crate::state::{FileKind, FileStat, LiveAccount};

/// Version of the JSON plan format (`plan --json`, `plan --out`).
pub const FORMAT_VERSION: u32 = 1;

/// What the gatherer learnt about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    /// The probe ran: the account's files as they are.
    Read {
        account: LiveAccount,
        /// How the node was reached.
        #[serde(default)]
        access: Access,
    },
    /// The node could not be read; its edges are not planned.
    Unreachable {
        step: String,
        reason: String,
        hint: Option<String>,
    },
    /// Left out on purpose (`--limit`, an OS not handled yet).
    Skipped { reason: String },
}

/// How trustmesh reaches a node's account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// With the manager's key (or locally, for the manager).
    #[default]
    Key,
    /// With a password (`--ask-pass`): the node does not accept the
    /// manager's key yet. Apply's changes there run over password logins,
    /// the first of them installing the manager's key.
    Password,
}

/// The live state of every node, indexed like [`Inventory::nodes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    pub nodes: Vec<NodeState>,
}

impl LiveState {
    pub fn account(&self, id: NodeId) -> Option<&LiveAccount> {
        match self.nodes.get(id) {
            Some(NodeState::Read { account, .. }) => Some(account),
            _ => None,
        }
    }
}

/// Where a node's files are, relative to `~/.ssh` (or absolute for a
/// manager's custom `identity`/`known_hosts` outside it). The gatherer asks
/// the probe for exactly these names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFiles {
    /// Private key file.
    pub key: String,
    /// Its public half (`key` + `.pub`).
    pub public_key: String,
    pub authorized_keys: String,
    pub known_hosts: String,
}

impl NodeFiles {
    pub fn of(inv: &Inventory, id: NodeId) -> NodeFiles {
        let node = &inv.nodes[id];
        let key = node
            .identity
            .as_deref()
            .map(ssh_relative)
            .unwrap_or_else(|| node.key_type.default_file().to_string());
        let known_hosts = node
            .known_hosts
            .as_deref()
            .map(ssh_relative)
            .unwrap_or_else(|| "known_hosts".to_string());
        NodeFiles {
            public_key: format!("{key}.pub"),
            key,
            authorized_keys: "authorized_keys".to_string(),
            known_hosts,
        }
    }

    /// Every file name, for the probe: (read, stat only). The private key
    /// is only ever stat'ed.
    pub fn probe_names(&self) -> (Vec<String>, Vec<String>) {
        (
            vec![
                self.authorized_keys.clone(),
                self.known_hosts.clone(),
                self.public_key.clone(),
            ],
            vec![self.key.clone()],
        )
    }
}

/// `~/.ssh/x` -> `x`; other paths are kept as written.
fn ssh_relative(path: &str) -> String {
    for prefix in ["~/.ssh/", "$HOME/.ssh/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if !rest.contains('/') {
                return rest.to_string();
            }
        }
    }
    path.to_string()
}

/// How a file name is shown: `~/.ssh/x`, or the absolute path.
pub fn display_path(name: &str) -> String {
    if name.starts_with('/') || name.starts_with('~') {
        name.to_string()
    } else {
        format!("~/.ssh/{name}")
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// One entry per node in scope, in inventory order.
    pub nodes: Vec<NodePlan>,
    /// Things the whole run should know (options not handled yet...).
    pub notes: Vec<String>,
}

/// Why a node's changes could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum NodeStatus {
    Planned,
    Unreachable {
        step: String,
        reason: String,
        hint: Option<String>,
    },
    Skipped {
        reason: String,
    },
    /// Read, but something on it stops trustmesh from changing it safely.
    Blocked {
        reason: String,
        hint: Option<String>,
    },
}

/// What is planned on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodePlan {
    pub node: String,
    /// `user@address:port`, or `local` for the manager.
    pub target: String,
    /// How apply reaches the node.
    #[serde(default)]
    pub access: Access,
    #[serde(flatten)]
    pub status: NodeStatus,
    pub changes: Vec<Change>,
    /// Things a person should know that trustmesh will not change.
    pub warnings: Vec<String>,
    /// What each file looked like when planned, so apply can refuse to
    /// overwrite an edit made since (compare-and-swap).
    pub base: Vec<FileBase>,
}

/// The state a file was planned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileBase {
    pub path: String,
    /// `None`: the file did not exist.
    pub content: Option<String>,
}

/// One change on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// `mkdir -m 0700 ~/.ssh`
    CreateDir { path: String, mode: u32 },
    /// `chmod`
    Mode { path: String, from: u32, to: u32 },
    /// `chown` to the account (needs privileges the account may not have).
    Owner { path: String, from: u32, to: u32 },
    /// `ssh-keygen -t TYPE -a 100 -N '' -C trustmesh:NODE -f PATH`, on the
    /// node itself.
    GenerateKey { path: String, key_type: String },
    /// Managed lines removed from and added to a file.
    EditFile(FileEdit),
}

/// The edit of one `authorized_keys` or `known_hosts` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEdit {
    pub path: String,
    pub file: FileRole,
    /// The file does not exist yet (created 0600).
    pub create: bool,
    /// Managed lines that stay: (line index in the file, text).
    pub kept: Vec<(usize, String)>,
    /// Managed lines removed: (line index in the file, text).
    pub remove: Vec<(usize, String)>,
    /// Lines appended.
    pub add: Vec<PlannedLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    AuthorizedKeys,
    KnownHosts,
}

/// A line to write. Its key may be known only after apply (a key pair not
/// generated yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedLine {
    /// known_hosts only: the host names (`addr` or `[addr]:port`).
    pub names: Option<Arc<str>>,
    pub key_type: Arc<str>,
    /// `None`: known after apply.
    pub base64: Option<Arc<str>>,
    /// The node the marker names (source of the key, or owner of the host
    /// key).
    pub node: Arc<str>,
    /// Replaces a managed line for the same node (counted as a change).
    pub replaces: bool,
}

impl PlannedLine {
    /// The exact line, when known.
    pub fn text(&self) -> Option<String> {
        let b64 = self.base64.as_deref()?;
        Some(match &self.names {
            Some(n) => known_hosts::managed_line(n, &self.key_type, b64, &self.node),
            None => crate::authorized_keys::managed_line(&self.key_type, b64, &self.node),
        })
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
    pub unreachable: usize,
    pub blocked: usize,
}

impl Plan {
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for n in &self.nodes {
            match n.status {
                NodeStatus::Unreachable { .. } => s.unreachable += 1,
                NodeStatus::Blocked { .. } => s.blocked += 1,
                _ => {}
            }
            for c in &n.changes {
                match c {
                    Change::CreateDir { .. } | Change::GenerateKey { .. } => s.add += 1,
                    Change::Mode { .. } | Change::Owner { .. } => s.change += 1,
                    Change::EditFile(e) => {
                        let replaced = e.add.iter().filter(|l| l.replaces).count();
                        s.change += replaced;
                        s.add += e.add.len() - replaced;
                        s.remove += e.remove.len().saturating_sub(replaced);
                    }
                }
            }
        }
        s
    }

    /// True when apply would change nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.iter().all(|n| n.changes.is_empty())
    }
}

/// What the planner needs to know besides the inventory and live state.
#[derive(Debug, Clone, Default)]
pub struct PlanScope {
    /// `--limit`: only these nodes (the manager always) and the edges between
    /// them. `None`: every node.
    pub limit: Option<HashSet<NodeId>>,
}

impl PlanScope {
    pub fn contains(&self, id: NodeId) -> bool {
        id == Inventory::MANAGER || self.limit.as_ref().is_none_or(|l| l.contains(&id))
    }
}

/// A node's key as the planner sees it.
#[derive(Debug, Clone)]
enum KeyState {
    /// The public half as it is on the node.
    Known {
        key_type: Arc<str>,
        base64: Arc<str>,
    },
    /// Will be generated by apply.
    Pending { key_type: Arc<str> },
    /// Unknown: the node was not read, or its key cannot be used.
    Unknown,
}

/// Host keys of a node as others must trust them.
#[derive(Debug, Clone)]
enum HostKeys {
    Known(Vec<(Arc<str>, Arc<str>)>),
    Unknown,
}

const MODE_GO: u32 = 0o077;

/// Why a node cannot be changed safely, and what to do about it.
type Blocker = (String, Option<String>);

/// The planner. Pure: no I/O, no clock, no randomness.
pub fn plan(inv: &Inventory, graph: &TrustGraph, live: &LiveState, scope: &PlanScope) -> Plan {
    let n = inv.nodes.len();
    let files: Vec<NodeFiles> = (0..n).map(|id| NodeFiles::of(inv, id)).collect();
    let needs_key: Vec<bool> = (0..n)
        .map(|id| graph.outgoing(id).any(|e| scope.contains(e.target)))
        .collect();
    // Keys and host keys first: every node's plan reads other nodes' ones.
    let keys: Vec<KeyState> = (0..n)
        .into_par_iter()
        .map(|id| key_state(inv, live, &files[id], id, needs_key[id]))
        .collect();
    let host_keys: Vec<HostKeys> = (0..n)
        .into_par_iter()
        .map(|id| match live.account(id) {
            Some(a) => HostKeys::Known(parse_host_keys(&a.host_keys)),
            None => HostKeys::Unknown,
        })
        .collect();
    let names: Vec<Arc<str>> = inv
        .nodes
        .iter()
        .map(|n| Arc::from(n.name.as_str()))
        .collect();
    // Built once: every node's files look their markers up by name.
    let by_name: HashMap<&str, NodeId> = inv
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    // The known_hosts name of every node with an address, shared by every
    // line that names it.
    let host_names: Vec<Option<Arc<str>>> = inv
        .nodes
        .iter()
        .map(|n| {
            n.address
                .as_deref()
                .map(|a| known_hosts::host_name(a, n.port).into())
        })
        .collect();
    let ctx = Ctx {
        inv,
        graph,
        live,
        scope,
        files: &files,
        keys: &keys,
        host_keys: &host_keys,
        names: &names,
        needs_key: &needs_key,
        by_name: &by_name,
        host_names: &host_names,
    };
    let nodes: Vec<NodePlan> = (0..n)
        .into_par_iter()
        .filter(|id| scope.contains(*id))
        .map(|id| ctx.node_plan(id))
        .collect();
    let mut notes = Vec::new();
    let o = &inv.options;
    for (on, what) in [
        (
            o.ssh_config,
            "options.ssh_config (Host aliases in ~/.ssh/config)",
        ),
        (o.hosts_file, "options.hosts_file (a block in /etc/hosts)"),
        (
            o.hash_known_hosts,
            "options.hash_known_hosts (hashed known_hosts names)",
        ),
    ] {
        if on {
            notes.push(format!(
                "{what} is not handled yet by this version: nothing is planned for it"
            ));
        }
    }
    Plan {
        format_version: FORMAT_VERSION,
        nodes,
        notes,
    }
}

fn parse_host_keys(lines: &[String]) -> Vec<(Arc<str>, Arc<str>)> {
    let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    for line in lines {
        let mut f = line.split_whitespace();
        if let (Some(t), Some(b)) = (f.next(), f.next()) {
            if !out.iter().any(|(_, ob)| &**ob == b) {
                out.push((Arc::from(t), Arc::from(b)));
            }
        }
    }
    out
}

/// The ssh key type name of a generated key.
fn ssh_type(kt: crate::inventory::KeyType) -> &'static str {
    match kt {
        crate::inventory::KeyType::Ed25519 => "ssh-ed25519",
        crate::inventory::KeyType::Ecdsa => "ecdsa-sha2-nistp256",
        crate::inventory::KeyType::Rsa => "ssh-rsa",
    }
}

fn key_state(
    inv: &Inventory,
    live: &LiveState,
    files: &NodeFiles,
    id: NodeId,
    needed: bool,
) -> KeyState {
    let Some(acc) = live.account(id) else {
        return KeyState::Unknown;
    };
    let private = acc.file(&files.key).and_then(|f| f.stat.as_ref());
    let public = acc
        .file(&files.public_key)
        .and_then(|f| f.content.as_deref())
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|t| {
            let mut it = t.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        });
    match (private, public) {
        (Some(p), Some((t, b))) if p.kind == FileKind::File => KeyState::Known {
            key_type: t.into(),
            base64: b.into(),
        },
        (None, None) if needed => KeyState::Pending {
            key_type: ssh_type(inv.nodes[id].key_type).into(),
        },
        // A private key without its public half (or the reverse) is left
        // alone and reported: trustmesh never derives, moves or replaces a
        // key it did not make.
        _ => KeyState::Unknown,
    }
}

struct Ctx<'a> {
    inv: &'a Inventory,
    graph: &'a TrustGraph,
    live: &'a LiveState,
    scope: &'a PlanScope,
    files: &'a [NodeFiles],
    keys: &'a [KeyState],
    host_keys: &'a [HostKeys],
    names: &'a [Arc<str>],
    needs_key: &'a [bool],
    /// Node names to ids.
    by_name: &'a HashMap<&'a str, NodeId>,
    /// [`known_hosts::host_name`] of each node with an address.
    host_names: &'a [Option<Arc<str>>],
}

fn target_of(inv: &Inventory, id: NodeId) -> String {
    let n = &inv.nodes[id];
    if n.role == Role::Manager {
        return "local".to_string();
    }
    let addr = n.address.as_deref().unwrap_or("?");
    let addr = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    let user = n
        .user
        .as_deref()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    if n.port == 22 {
        format!("{user}{addr}")
    } else {
        format!("{user}{addr}:{}", n.port)
    }
}

impl Ctx<'_> {
    fn node_plan(&self, id: NodeId) -> NodePlan {
        let node = &self.inv.nodes[id];
        let mut plan = NodePlan {
            node: node.name.clone(),
            target: target_of(self.inv, id),
            access: Access::Key,
            status: NodeStatus::Planned,
            changes: Vec::new(),
            warnings: Vec::new(),
            base: Vec::new(),
        };
        let acc = match &self.live.nodes[id] {
            NodeState::Read { account, access } => {
                plan.access = *access;
                account
            }
            NodeState::Unreachable { step, reason, hint } => {
                plan.status = NodeStatus::Unreachable {
                    step: step.clone(),
                    reason: reason.clone(),
                    hint: hint.clone(),
                };
                return plan;
            }
            NodeState::Skipped { reason } => {
                plan.status = NodeStatus::Skipped {
                    reason: reason.clone(),
                };
                return plan;
            }
        };
        if node.os == Os::Windows {
            plan.status = NodeStatus::Skipped {
                reason: "Windows nodes are not handled yet by this version".into(),
            };
            return plan;
        }
        if let Err((reason, hint)) = self.ssh_dir(acc, &mut plan) {
            plan.status = NodeStatus::Blocked { reason, hint };
            plan.changes.clear();
            return plan;
        }
        self.key_pair(id, acc, &mut plan);
        let ak = self.authorized_keys(id, acc, &mut plan);
        let kh = self.known_hosts(id, acc, &mut plan);
        for r in [ak, kh] {
            if let Err((reason, hint)) = r {
                plan.status = NodeStatus::Blocked { reason, hint };
                plan.changes.clear();
                return plan;
            }
        }
        plan
    }

    /// `~/.ssh` itself, and the home's modes (reported, never changed).
    fn ssh_dir(&self, acc: &LiveAccount, plan: &mut NodePlan) -> Result<(), Blocker> {
        if let Some(h) = &acc.home_stat {
            if h.mode & 0o022 != 0 {
                plan.warnings.push(format!(
                    "the home {} is writable by group or others ({:04o}): sshd's StrictModes refuses keys there; \
                     trustmesh does not change a home's mode (run `chmod go-w {}` if that is right for this account)",
                    acc.home, h.mode, acc.home
                ));
            }
        }
        match &acc.ssh_dir {
            None => plan.changes.push(Change::CreateDir {
                path: "~/.ssh".into(),
                mode: 0o700,
            }),
            Some(s) if s.kind == FileKind::Dir || s.kind == FileKind::Symlink => {
                if s.kind == FileKind::Symlink {
                    plan.warnings
                        .push("~/.ssh is a symbolic link: its target's mode is not checked".into());
                } else {
                    self.fix_mode(acc, "~/.ssh", s, 0o700, plan);
                }
            }
            Some(_) => {
                return Err((
                    "~/.ssh exists but is not a directory".into(),
                    Some("move it away (`mv ~/.ssh ~/.ssh.old`) and plan again".into()),
                ))
            }
        }
        Ok(())
    }

    fn fix_mode(
        &self,
        acc: &LiveAccount,
        path: &str,
        s: &FileStat,
        want: u32,
        plan: &mut NodePlan,
    ) {
        if s.mode & MODE_GO != 0 {
            plan.changes.push(Change::Mode {
                path: path.to_string(),
                from: s.mode,
                to: want,
            });
        }
        if s.uid != acc.uid {
            plan.changes.push(Change::Owner {
                path: path.to_string(),
                from: s.uid,
                to: acc.uid,
            });
        }
    }

    fn key_pair(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        let files = &self.files[id];
        let key_path = display_path(&files.key);
        match &self.keys[id] {
            KeyState::Pending { .. } => plan.changes.push(Change::GenerateKey {
                path: key_path,
                key_type: self.inv.nodes[id].key_type.keygen_name().into(),
            }),
            KeyState::Known { .. } => {
                if let Some(s) = acc.file(&files.key).and_then(|f| f.stat.as_ref()) {
                    self.fix_mode(acc, &key_path, s, 0o600, plan);
                }
            }
            KeyState::Unknown if self.needs_key[id] => {
                let private = acc.file(&files.key).and_then(|f| f.stat.as_ref());
                let public = acc.file(&files.public_key).and_then(|f| f.stat.as_ref());
                let why = match (private, public) {
                    (Some(_), None) => format!(
                        "{key_path} has no public half {}: its edges are not planned (recreate it with `ssh-keygen -y -f {key_path} > {key_path}.pub`)",
                        display_path(&files.public_key)
                    ),
                    (None, Some(_)) => format!(
                        "{} exists without its private key {key_path}: trustmesh does not replace it; move it away to get a new key",
                        display_path(&files.public_key)
                    ),
                    _ => format!("{key_path} could not be read: its edges are not planned"),
                };
                plan.warnings.push(why);
            }
            KeyState::Unknown => {}
        }
    }

    /// The incoming edges of `id`: who may log in here.
    fn authorized_keys(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        plan: &mut NodePlan,
    ) -> Result<(), Blocker> {
        let name = &self.files[id].authorized_keys;
        let path = display_path(name);
        let (text, stat) = read_text(acc, name, &path)?;
        plan.base.push(FileBase {
            path: path.clone(),
            content: text.map(str::to_string),
        });
        let file = AuthorizedKeysFile::parse(text.unwrap_or(""));
        // Wanted: (node, key state) for sources in scope, sorted by node,
        // no repeats.
        let mut wanted: Vec<(NodeId, &KeyState)> = self
            .graph
            .incoming(id)
            .filter(|e| self.scope.contains(e.source))
            .map(|e| (e.source, &self.keys[e.source]))
            .collect();
        wanted.sort_unstable_by_key(|w| w.0);
        wanted.dedup_by_key(|w| w.0);
        let want = |s: NodeId| {
            wanted
                .binary_search_by_key(&s, |w| w.0)
                .ok()
                .map(|at| (at, wanted[at].1))
        };
        // The wanted keys found in a managed line that stays.
        let mut confirmed = vec![false; wanted.len()];
        let by_name = self.by_name;
        // Line indices; their text is copied only if the file is edited.
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        let mut replaced: HashSet<NodeId> = HashSet::new();
        for (i, k) in file.keys() {
            let Some(marker) = k.marker() else { continue };
            let src = by_name.get(marker).copied();
            let keep = match src.map(|s| (s, want(s))) {
                Some((s, Some((at, state)))) => match state {
                    KeyState::Known { key_type, base64 } => {
                        let same = &**key_type == k.key_type() && &**base64 == k.base64();
                        if same {
                            confirmed[at] = true;
                        } else {
                            replaced.insert(s);
                        }
                        same
                    }
                    KeyState::Pending { .. } => {
                        replaced.insert(s);
                        false
                    }
                    KeyState::Unknown => true,
                },
                // Out of --limit: not ours to judge this run.
                Some((s, None)) if !self.scope.contains(s) => true,
                // Lockout guard: the line that lets the manager in stays
                // while it is the manager's current key.
                Some((s, None))
                    if s == Inventory::MANAGER && self.is_manager_key(k.key_type(), k.base64()) =>
                {
                    true
                }
                _ => !self.inv.options.prune,
            };
            if keep {
                kept.push(i);
            } else {
                remove.push(i);
            }
        }
        // Keys that stay in the file, whoever wrote them (`remove` is in
        // file order); built only if a key was not confirmed.
        let mut present: Option<HashSet<(&str, &str)>> = None;
        let mut add = Vec::new();
        for (&(src, state), &confirmed) in wanted.iter().zip(&confirmed) {
            let line = match state {
                KeyState::Known { key_type, base64 } => {
                    // A confirmed key's line stays: it is present.
                    if confirmed
                        || present
                            .get_or_insert_with(|| {
                                file.keys()
                                    .filter(|(i, _)| remove.binary_search(i).is_err())
                                    .map(|(_, k)| k.key_id())
                                    .collect()
                            })
                            .contains(&(&**key_type, &**base64))
                    {
                        continue;
                    }
                    PlannedLine {
                        names: None,
                        key_type: key_type.clone(),
                        base64: Some(base64.clone()),
                        node: self.names[src].clone(),
                        replaces: replaced.contains(&src),
                    }
                }
                KeyState::Pending { key_type } => PlannedLine {
                    names: None,
                    key_type: key_type.clone(),
                    base64: None,
                    node: self.names[src].clone(),
                    replaces: replaced.contains(&src),
                },
                KeyState::Unknown => continue,
            };
            add.push(line);
        }
        if !add.is_empty() || !remove.is_empty() {
            plan.changes.push(Change::EditFile(FileEdit {
                path: path.clone(),
                file: FileRole::AuthorizedKeys,
                create: stat.is_none(),
                kept: kept.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                remove: remove.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                add,
            }));
        }
        if let Some(s) = stat {
            self.fix_mode(acc, &path, s, 0o600, plan);
        }
        Ok(())
    }

    fn is_manager_key(&self, t: &str, b: &str) -> bool {
        matches!(&self.keys[Inventory::MANAGER], KeyState::Known { key_type, base64 } if &**key_type == t && &**base64 == b)
    }

    /// The outgoing edges of `id`: whose host keys it must know.
    fn known_hosts(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        plan: &mut NodePlan,
    ) -> Result<(), Blocker> {
        let name = &self.files[id].known_hosts;
        let path = display_path(name);
        let (text, stat) = read_text(acc, name, &path)?;
        plan.base.push(FileBase {
            path: path.clone(),
            content: text.map(str::to_string),
        });
        let file = KnownHostsFile::parse(text.unwrap_or(""));
        let mut targets: Vec<NodeId> = self
            .graph
            .outgoing(id)
            .filter(|e| self.scope.contains(e.target))
            .map(|e| e.target)
            .collect();
        targets.sort_unstable();
        targets.dedup();
        let by_name = self.by_name;
        // What each target needs: names and keys.
        struct Want<'a> {
            names: Arc<str>,
            keys: Option<&'a [(Arc<str>, Arc<str>)]>,
        }
        // Sorted by node, no repeats (as `targets`).
        let wanted: Vec<(NodeId, Want)> = targets
            .iter()
            .filter_map(|&t| {
                let names = self.host_names[t].clone()?;
                let keys = match &self.host_keys[t] {
                    HostKeys::Known(k) => Some(k.as_slice()),
                    HostKeys::Unknown => None,
                };
                Some((t, Want { names, keys }))
            })
            .collect();
        let want = |o: NodeId| {
            wanted
                .binary_search_by_key(&o, |(t, _)| *t)
                .ok()
                .map(|at| (at, &wanted[at].1))
        };
        // Line indices; their text is copied only if the file is edited.
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        let mut replaced: HashSet<NodeId> = HashSet::new();
        // (position in `wanted`, blob) of the managed lines that are right,
        // sorted below.
        let mut managed_ok: Vec<(usize, &str)> = Vec::new();
        let mut has_unmanaged = false;
        for (i, e) in file.entries() {
            let Some(marker) = e.marker() else {
                has_unmanaged = true;
                continue;
            };
            let owner = by_name.get(marker).copied();
            let keep = match owner.and_then(|o| want(o).map(|w| (o, w))) {
                Some((o, (at, w))) => match w.keys {
                    Some(keys) => {
                        let ok = e.annotation().is_none()
                            && e.hosts() == &*w.names
                            && keys
                                .iter()
                                .any(|(t, b)| &**t == e.key_type() && &**b == e.base64());
                        if ok {
                            managed_ok.push((at, e.base64()));
                        } else {
                            replaced.insert(o);
                        }
                        ok
                    }
                    None => true,
                },
                None => match owner {
                    Some(o) if !self.scope.contains(o) => true,
                    _ => !self.inv.options.prune,
                },
            };
            if keep {
                kept.push(i);
            } else {
                remove.push(i);
            }
        }
        // Usually in order already: the lines were written target by target.
        managed_ok.sort_unstable();
        let mut add = Vec::new();
        // Built on first use; reused for every target.
        let mut index: Option<HostIndex> = None;
        let (mut candidates, mut trusted) = (Vec::new(), Vec::new());
        for (at, &(t, ref w)) in wanted.iter().enumerate() {
            let Some(keys) = w.keys else { continue };
            let ok = |b64: &str| managed_ok.binary_search(&(at, b64)).is_ok();
            // Every key has its right managed line and no line trustmesh did
            // not write can name the host: nothing to add, nothing to warn.
            if !has_unmanaged && keys.iter().all(|(_, b64)| ok(b64)) {
                continue;
            }
            let node = &self.inv.nodes[t];
            let addr = node.address.as_deref().unwrap_or_default();
            index
                .get_or_insert_with(|| HostIndex::new(&file))
                .candidates(&w.names, &mut candidates);
            HostIndex::keys_for(&candidates, addr, node.port, &mut trusted);
            debug_assert_eq!(trusted, file.keys_for(addr, node.port));
            for (kt, b64) in keys {
                if ok(b64) {
                    continue;
                }
                // Already trusted by a line trustmesh did not write.
                if trusted.iter().any(|(a, b)| a == &&**kt && b == &&**b64) {
                    continue;
                }
                add.push(PlannedLine {
                    names: Some(w.names.clone()),
                    key_type: kt.clone(),
                    base64: Some(b64.clone()),
                    node: self.names[t].clone(),
                    replaces: replaced.contains(&t),
                });
            }
            // An old key trustmesh did not write still sits there: ssh keeps
            // working with the new line, but a person should clean it up.
            for (ot, ob) in &trusted {
                let current = keys.iter().any(|(_, b)| b.as_ref() == *ob);
                // Only entries that may match the host can: see HostIndex.
                let unmanaged = || {
                    candidates.iter().any(|e| {
                        e.marker().is_none() && e.base64() == *ob && e.matches_host(addr, node.port)
                    })
                };
                debug_assert_eq!(
                    unmanaged(),
                    file.entries().any(|(_, e)| {
                        e.marker().is_none() && e.base64() == *ob && e.matches_host(addr, node.port)
                    })
                );
                if !current && unmanaged() {
                    plan.warnings.push(format!(
                        "{path} holds an old {ot} host key for {} ({}) that trustmesh did not write; \
                         remove it with `ssh-keygen -R '{}' -f {path}`",
                        node.name,
                        w.names,
                        w.names
                    ));
                }
            }
        }
        if !add.is_empty() || !remove.is_empty() {
            plan.changes.push(Change::EditFile(FileEdit {
                path: path.clone(),
                file: FileRole::KnownHosts,
                create: stat.is_none(),
                kept: kept.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                remove: remove.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                add,
            }));
        }
        if let Some(s) = stat {
            if s.mode & 0o022 != 0 {
                plan.changes.push(Change::Mode {
                    path: path.clone(),
                    from: s.mode,
                    to: s.mode & !0o022,
                });
            }
        }
        Ok(())
    }
}

/// The entries of a `known_hosts` file that may match a host name: a
/// superset of those [`HostEntry::matches_host`] accepts, so that finding
/// the keys of every target does not match every entry of the file against
/// every target (a manager's file holds a line per worker).
///
/// An entry whose host field is a list of plain names (not hashed, no `*` or
/// `?`) can only match a name equal, ASCII case aside, to one of its
/// non-negated names (OpenSSH's `match_pattern_list`); such entries are
/// found by name. Every other entry is a candidate for every name.
/// [`HostEntry::matches_host`] still decides.
struct HostIndex<'f> {
    /// Lowercased plain name -> (first, last) position in `chain`.
    plain: HashMap<Cow<'f, str>, (usize, usize)>,
    /// (line index, entry, next position for the same name), each name's
    /// entries in file order.
    chain: Vec<(usize, &'f HostEntry, usize)>,
    /// Hashed names and patterns: (line index, entry), in file order.
    other: Vec<(usize, &'f HostEntry)>,
}

impl<'f> HostIndex<'f> {
    const END: usize = usize::MAX;

    fn new(file: &'f KnownHostsFile) -> HostIndex<'f> {
        let mut plain: HashMap<Cow<'f, str>, (usize, usize)> = HashMap::new();
        let mut chain: Vec<(usize, &HostEntry, usize)> = Vec::new();
        let mut other = Vec::new();
        for (i, e) in file.entries() {
            let hosts = e.hosts();
            if e.is_hashed() || hosts.contains(['*', '?']) {
                other.push((i, e));
                continue;
            }
            for pattern in hosts.split(',') {
                if pattern.starts_with('!') {
                    continue;
                }
                let at = chain.len();
                match plain.entry(lowercase(pattern)) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((at, at));
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let (_, last) = o.get_mut();
                        // The same name twice in one line.
                        if chain[*last].0 == i {
                            continue;
                        }
                        chain[*last].2 = at;
                        *last = at;
                    }
                }
                chain.push((i, e, Self::END));
            }
        }
        HostIndex {
            plain,
            chain,
            other,
        }
    }

    /// The entries that may match `name` (a [`known_hosts::host_name`]), in
    /// file order, into `out`.
    fn candidates(&self, name: &str, out: &mut Vec<&'f HostEntry>) {
        out.clear();
        let mut at = self
            .plain
            .get(&lowercase(name))
            .map_or(Self::END, |&(first, _)| first);
        let mut others = self.other.iter().peekable();
        while at != Self::END {
            let (line, entry, next) = self.chain[at];
            while let Some(&&(i, e)) = others.peek() {
                if i > line {
                    break;
                }
                out.push(e);
                others.next();
            }
            out.push(entry);
            at = next;
        }
        out.extend(others.map(|&(_, e)| e));
    }

    /// [`KnownHostsFile::keys_for`] (`host` on `port`), on the candidates
    /// for the host's name, into `keys`.
    fn keys_for(
        candidates: &[&'f HostEntry],
        host: &str,
        port: u16,
        keys: &mut Vec<(&'f str, &'f str)>,
    ) {
        keys.clear();
        let mut matching = candidates.iter().filter(|e| e.matches_host(host, port));
        // The common case: one line for the host.
        if let (Some(only), None) = (matching.next(), matching.next()) {
            if only.annotation().is_none() {
                keys.push(only.key_id());
            }
            return;
        }
        let matching: Vec<&HostEntry> = candidates
            .iter()
            .copied()
            .filter(|e| e.matches_host(host, port))
            .collect();
        let revoked: Vec<&str> = matching
            .iter()
            .filter(|e| e.annotation() == Some(Annotation::Revoked))
            .map(|e| e.base64())
            .collect();
        for e in matching {
            if e.annotation().is_none()
                && !revoked.contains(&e.base64())
                && !keys.contains(&e.key_id())
            {
                keys.push(e.key_id());
            }
        }
    }
}

/// `s` with ASCII letters lowercased, borrowed when it has no capitals.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The text of line `i` of either kind of file, without its ending.
fn text_at<K: crate::lines::Kind>(file: &crate::lines::LineFile<K>, i: usize) -> String {
    file.lines()[i].text().to_string()
}

/// The text of a probed file: `None` when it does not exist. A file that
/// cannot be edited safely blocks the node.
fn read_text<'a>(
    acc: &'a LiveAccount,
    name: &str,
    path: &str,
) -> Result<(Option<&'a str>, Option<&'a FileStat>), Blocker> {
    let Some(f) = acc.file(name) else {
        return Ok((None, None));
    };
    let Some(stat) = &f.stat else {
        if f.unreadable {
            return Err((
                format!("{path} cannot be read"),
                Some(format!("check its permissions: `ls -l {path}` on the node")),
            ));
        }
        return Ok((None, None));
    };
    match stat.kind {
        FileKind::File => {}
        FileKind::Symlink => {
            return Err((
                format!("{path} is a symbolic link"),
                Some("trustmesh does not edit through symbolic links: replace the link with the file it points to".into()),
            ))
        }
        _ => {
            return Err((
                format!("{path} is not a regular file"),
                Some(format!("move it away and plan again: `mv {path} {path}.old`")),
            ))
        }
    }
    let Some(content) = &f.content else {
        return Err((
            format!("{path} cannot be read"),
            Some(format!("check its permissions: `ls -l {path}` on the node")),
        ));
    };
    match std::str::from_utf8(content) {
        Ok(t) => Ok((Some(t), Some(stat))),
        Err(_) => Err((
            format!("{path} is not UTF-8 text"),
            Some("trustmesh edits only text files; check the file by hand".into()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BLOBS: [&str; 3] = [
        "AAAAC3NzaC1lZDI1NTE5AAAAIA==",
        "AAAAB3NzaC1yc2EAAAAD",
        "AAAAE2VjZHNh",
    ];
    const NAMES: [&str; 12] = [
        "a", "A", "b", "[a]:2222", "[A]:2222", "10.0.0.1", "a*", "?", "!a", "!b", "*", "[a]:*",
    ];
    const HOSTS: [(&str, u16); 5] = [
        ("a", 22),
        ("A", 22),
        ("b", 22),
        ("a", 2222),
        ("10.0.0.1", 22),
    ];

    fn line() -> impl Strategy<Value = String> {
        let hosts = prop_oneof![
            prop::collection::vec(prop::sample::select(&NAMES[..]), 1..4).prop_map(|v| v.join(",")),
            (prop::sample::select(&HOSTS[..]), any::<u8>()).prop_map(|((h, p), s)| {
                known_hosts::hash_host_name(&known_hosts::host_name(h, p), [s; 20])
            }),
        ];
        (
            prop::sample::select(&["", "@revoked ", "@cert-authority "][..]),
            hosts,
            prop::sample::select(&BLOBS[..]),
            prop::sample::select(&["", " trustmesh:w1", " root@x"][..]),
        )
            .prop_map(|(ann, hosts, blob, comment)| {
                format!("{ann}{hosts} ssh-ed25519 {blob}{comment}")
            })
    }

    proptest! {
        /// The index finds what `keys_for` and `matches_host` find.
        #[test]
        fn host_index_agrees_with_a_full_scan(lines in prop::collection::vec(line(), 0..12)) {
            let text = lines.join("\n");
            let file = KnownHostsFile::parse(&text);
            let index = HostIndex::new(&file);
            let (mut candidates, mut keys) = (Vec::new(), Vec::new());
            for (host, port) in HOSTS {
                index.candidates(&known_hosts::host_name(host, port), &mut candidates);
                HostIndex::keys_for(&candidates, host, port, &mut keys);
                prop_assert_eq!(&keys, &file.keys_for(host, port));
                for blob in BLOBS {
                    let scan = |e: &HostEntry| {
                        e.marker().is_none() && e.base64() == blob && e.matches_host(host, port)
                    };
                    prop_assert_eq!(
                        candidates.iter().any(|e| scan(e)),
                        file.entries().any(|(_, e)| scan(e))
                    );
                }
            }
        }
    }
}
