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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::authorized_keys::AuthorizedKeysFile;
use crate::graph::TrustGraph;
use crate::inventory::{Inventory, NodeId, Os, Role};
use crate::known_hosts::{self, KnownHostsFile};
use crate::probe::{FileKind, FileStat, LiveAccount};

/// Version of the JSON plan format (`plan --json`, `plan --out`).
pub const FORMAT_VERSION: u32 = 1;

/// What the gatherer learnt about one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    /// The probe ran: the account's files as they are.
    Read { account: LiveAccount },
    /// The node could not be read; its edges are not planned.
    Unreachable {
        step: String,
        reason: String,
        hint: Option<String>,
    },
    /// Left out on purpose (`--limit`, an OS not handled yet).
    Skipped { reason: String },
}

/// The live state of every node, indexed like [`Inventory::nodes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    pub nodes: Vec<NodeState>,
}

impl LiveState {
    pub fn account(&self, id: NodeId) -> Option<&LiveAccount> {
        match self.nodes.get(id) {
            Some(NodeState::Read { account }) => Some(account),
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
            status: NodeStatus::Planned,
            changes: Vec::new(),
            warnings: Vec::new(),
            base: Vec::new(),
        };
        let acc = match &self.live.nodes[id] {
            NodeState::Read { account } => account,
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
        // Wanted: node -> key state, for sources in scope.
        let mut wanted: BTreeMap<NodeId, &KeyState> = BTreeMap::new();
        for e in self.graph.incoming(id) {
            if self.scope.contains(e.source) {
                wanted.insert(e.source, &self.keys[e.source]);
            }
        }
        let by_name: HashMap<&str, NodeId> = self.index_by_name();
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        let mut replaced: HashSet<NodeId> = HashSet::new();
        for (i, k) in file.keys() {
            let Some(marker) = k.marker() else { continue };
            let src = by_name.get(marker).copied();
            let keep = match src {
                Some(s) if wanted.contains_key(&s) => match wanted[&s] {
                    KeyState::Known { key_type, base64 } => {
                        let same = &**key_type == k.key_type() && &**base64 == k.base64();
                        if !same {
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
                Some(s) if !self.scope.contains(s) => true,
                // Lockout guard: the line that lets the manager in stays
                // while it is the manager's current key.
                Some(s)
                    if s == Inventory::MANAGER && self.is_manager_key(k.key_type(), k.base64()) =>
                {
                    true
                }
                _ => !self.inv.options.prune,
            };
            if keep {
                kept.push((i, k_text(&file, i)));
            } else {
                remove.push((i, k_text(&file, i)));
            }
        }
        // Keys that stay in the file, whoever wrote them.
        let removed: HashSet<usize> = remove.iter().map(|(i, _)| *i).collect();
        let present: HashSet<(&str, &str)> = file
            .keys()
            .filter(|(i, _)| !removed.contains(i))
            .map(|(_, k)| k.key_id())
            .collect();
        let mut add = Vec::new();
        for (&src, state) in &wanted {
            let line = match state {
                KeyState::Known { key_type, base64 } => {
                    if present.contains(&(&**key_type, &**base64)) {
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
                kept,
                remove,
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

    fn index_by_name(&self) -> HashMap<&str, NodeId> {
        self.inv
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.as_str(), i))
            .collect()
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
        let by_name = self.index_by_name();
        // What each target needs: names and keys.
        struct Want<'a> {
            names: Arc<str>,
            keys: Option<&'a [(Arc<str>, Arc<str>)]>,
        }
        let mut wanted: BTreeMap<NodeId, Want> = BTreeMap::new();
        for &t in &targets {
            let node = &self.inv.nodes[t];
            let Some(addr) = node.address.as_deref() else {
                continue;
            };
            let names: Arc<str> = known_hosts::host_name(addr, node.port).into();
            let keys = match &self.host_keys[t] {
                HostKeys::Known(k) => Some(k.as_slice()),
                HostKeys::Unknown => None,
            };
            wanted.insert(t, Want { names, keys });
        }
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        let mut replaced: HashSet<NodeId> = HashSet::new();
        let mut managed_ok: HashSet<(NodeId, &str)> = HashSet::new();
        for (i, e) in file.entries() {
            let Some(marker) = e.marker() else { continue };
            let owner = by_name.get(marker).copied();
            let keep = match owner.and_then(|o| wanted.get(&o).map(|w| (o, w))) {
                Some((o, w)) => match w.keys {
                    Some(keys) => {
                        let ok = e.annotation().is_none()
                            && e.hosts() == &*w.names
                            && keys
                                .iter()
                                .any(|(t, b)| &**t == e.key_type() && &**b == e.base64());
                        if ok {
                            managed_ok.insert((o, e.base64()));
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
                kept.push((i, line_text(&file, i)));
            } else {
                remove.push((i, line_text(&file, i)));
            }
        }
        let mut add = Vec::new();
        for (&t, w) in &wanted {
            let Some(keys) = w.keys else { continue };
            let node = &self.inv.nodes[t];
            let addr = node.address.as_deref().unwrap_or_default();
            let trusted: Vec<(&str, &str)> = file.keys_for(addr, node.port);
            for (kt, b64) in keys {
                if managed_ok.contains(&(t, &**b64)) {
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
                let unmanaged = file.entries().any(|(_, e)| {
                    e.marker().is_none() && e.base64() == *ob && e.matches_host(addr, node.port)
                });
                if !current && unmanaged {
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
                kept,
                remove,
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

fn k_text(file: &AuthorizedKeysFile, i: usize) -> String {
    file.lines()[i].text().to_string()
}

fn line_text(file: &KnownHostsFile, i: usize) -> String {
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
