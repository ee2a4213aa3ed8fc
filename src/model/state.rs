//! Live state: what an account on a node looks like right now, as read by
//! the probe ([`crate::gather::probe`]) over ssh, or locally for the manager.
//!
//! One [`LiveAccount`] per node: who the account is, its home and `~/.ssh`
//! (kind, mode, owner), the files trustmesh manages there with their exact
//! bytes (or only their stat, for private keys), and the host's public host
//! keys. These are plain values: the planner compares them with the
//! inventory without touching a host, and tests build them in memory.

use serde::{Deserialize, Serialize};

use crate::model::finding::Finding;
use crate::model::inventory::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub kind: FileKind,
    /// Permission bits including setuid/setgid/sticky (e.g. `0o700`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveFile {
    /// Name relative to `~/.ssh`, as requested.
    pub name: String,
    /// `None`: missing, or could not be listed (then `unreadable` is set).
    pub stat: Option<FileStat>,
    /// Only for files requested to be read that are regular files (not
    /// symlinks) and could be read: the exact bytes.
    pub content: Option<Vec<u8>>,
    /// The file could not be listed or read (permissions, I/O error, or the
    /// probe refused to print it because it holds a private key).
    pub unreadable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveAccount {
    /// Account name from `id -un` (falls back to `$LOGNAME`/`$USER`; may be
    /// empty if the node cannot name the account).
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Physical path of the home directory (`cd ~ && pwd -P`).
    pub home: String,
    pub hostname: String,
    /// The address the node saw this connection come from (sshd's
    /// `SSH_CONNECTION`); `None` for the manager's own account, or when
    /// the node did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// What the node's sshd says it is (`OpenSSH_9.2p1`,
    /// `dropbear_2022.83`; the probe's `sshd-version`, asked with
    /// `certificates:`): a node whose sshd cannot take certificates keeps
    /// plain key lines. `None`: not asked, or not said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sshd_version: Option<String>,
    /// The manager with a user CA held by an ssh-agent (`certificates:
    /// { agent: ... }`): what the agent holds. `None` otherwise. Boxed:
    /// an account travels in every read-back, and this is rare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_agent: Option<Box<AgentKeys>>,
    pub home_stat: Option<FileStat>,
    pub ssh_dir: Option<FileStat>,
    /// One per requested file, in request order (read files first).
    pub files: Vec<LiveFile>,
    /// Non-empty, non-comment lines of `/etc/ssh/ssh_host_*_key.pub`, trimmed,
    /// as the account reports them: a hint only (an account can print
    /// anything), never written anywhere.
    pub host_keys: Vec<String>,
    /// The host keys (`type base64`) the node's sshd proved to trustmesh's
    /// own connection, whose host key was verified against a pin, a
    /// known_hosts entry or an accepted first use ([`crate::gather`]); for
    /// the manager, its host keys as read locally. The only host keys the
    /// planner writes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proven_host_keys: Vec<String>,
    /// Temporary files an interrupted apply left in `~/.ssh`
    /// (`.trustmesh.XXXXXX`, ten minutes old or more), by name.
    #[serde(default)]
    pub leftovers: Vec<String>,
    /// Whether the account may write system files (`/etc/hosts`): asked
    /// only when `options.hosts_file` is on; `None` when not asked.
    #[serde(default)]
    pub privilege: Option<Privilege>,
    /// Windows only: the account is an administrator, whose keys sshd
    /// reads from `C:\ProgramData\ssh\administrators_authorized_keys`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub windows_admin: bool,
    /// Windows administrators only: the ACL of
    /// `administrators_authorized_keys` as read back, when the file exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_acl: Option<crate::transport::windows::AclReadBack>,
}

/// What the ssh-agent holding the user CA said to `ssh-add -L`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentKeys {
    /// `agent: true`, and `SSH_AUTH_SOCK` is not set where trustmesh runs.
    NoSocket,
    /// No agent answered at `socket`: `ssh-add`'s words.
    Unreachable { socket: String, reason: String },
    /// The agent at `socket` holds these keys (`type base64` each).
    Holds { socket: String, keys: Vec<String> },
}

/// What an account may do beyond its home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    /// It is root.
    Root,
    /// `sudo -n true` works: passwordless sudo, never a prompt.
    Sudo,
    /// Neither.
    None,
}

impl LiveAccount {
    /// The probed file with this name, if it was requested.
    pub fn file(&self, name: &str) -> Option<&LiveFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

/// What the gatherer learnt about one node.
// One value per node, and `Read` is the usual one: boxing the account
// would add an allocation per node and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeState {
    /// The probe ran: the account's files as they are.
    Read {
        account: LiveAccount,
        /// How the node was reached.
        #[serde(default)]
        access: Login,
    },
    /// The node could not be read (the step, why, what to try); its edges
    /// are not planned.
    Unreachable(Finding),
    /// Left out on purpose (`--limit`, an OS not handled yet).
    Skipped { reason: String },
}

// The plan's `access` field: how trustmesh logs in. How it reaches the
// node's files is the inventory's `access` ([`crate::model::inventory::Access`]).
/// How trustmesh reaches a node's account.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Access")]
pub enum Login {
    /// With the manager's key (or locally, for the manager).
    #[default]
    Key,
    /// With a password (`--ask-pass`): the node does not accept the
    /// manager's key yet. Apply's changes there run over password logins,
    /// the first of them installing the manager's key.
    Password,
}

/// A node that could not be read: the step, why, and what to try.
impl From<Finding> for NodeState {
    fn from(f: Finding) -> NodeState {
        NodeState::Unreachable(f)
    }
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
