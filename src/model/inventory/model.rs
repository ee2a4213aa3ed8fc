//! The inventory file as written by users: the serde types of version 1.
//!
//! These types are the single source of truth for the file's shape. The JSON
//! Schema in `schemas/inventory.schema.json` is generated from them (a test
//! compares the two), and the structural checker in [`super::structure`]
//! walks the same generated schema, so the editor, the schema and the parser
//! can never disagree about which keys exist or what type they take.
//!
//! Nothing here is resolved yet: defaults are not merged, groups are not
//! expanded. See [`super::Inventory`] for the resolved model.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A trustmesh inventory, version 1: the machines of a cluster and the SSH
/// trust wanted between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "trustmesh inventory, version 1")]
pub struct InventoryFile {
    /// Format version of this file. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The cluster's name, in the marker of every line trustmesh writes
    /// (`trustmesh:<cluster>/<node>`), so that two inventories sharing a
    /// node never touch each other's lines. Defaults to the manager's
    /// name: set it when two clusters share nodes or a manager name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Any node field, applied where a node does not set it.
    #[serde(default)]
    pub defaults: Defaults,
    /// The machine trustmesh runs on (always local).
    pub manager: ManagerSpec,
    /// Jump hosts, reached before what sits behind them.
    #[serde(default)]
    pub bastions: Vec<NodeSpec>,
    /// The machines the manager trusts and manages.
    #[serde(default)]
    pub workers: Vec<NodeSpec>,
    /// Worker -> manager edges (e.g. SSHFS mounts): a list of worker names,
    /// or `all` for every worker.
    #[serde(default)]
    pub reverse: Reverse,
    /// Bidirectional trust between workers: every pair among the names of an
    /// entry, both ways.
    #[serde(default)]
    pub mesh: Vec<MeshEntry>,
    /// Switches for what trustmesh manages besides keys.
    #[serde(default)]
    pub options: Options,
    /// Host certificates: every node's host keys signed by a host CA on
    /// the manager, served by its sshd, and trusted by peers with one
    /// `@cert-authority` line (nodes whose account is root or has `sudo
    /// -n`; the others keep pinned host keys). Off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_certificates: Option<super::host_certificates::HostCertificatesSpec>,
}

/// Operating system of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Linux,
    Macos,
    Windows,
}

/// How trustmesh reaches a node's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// A POSIX `sh` on the node runs trustmesh's fixed scripts (the default
    /// for Linux and macOS).
    #[default]
    Shell,
    /// Only the SFTP subsystem: for accounts without a POSIX shell
    /// (`ForceCommand internal-sftp`, Windows). Files are read and replaced
    /// over SFTP; a key pair cannot be generated there (except on Windows,
    /// which has its own command line).
    Sftp,
}

/// Type of the key pair generated on a node (`rsa` means 4096 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    Ed25519,
    Ecdsa,
    Rsa,
}

impl KeyType {
    /// The `-t` argument of `ssh-keygen`.
    pub fn keygen_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }

    /// The default private key file name under `~/.ssh`.
    pub fn default_file(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "id_ed25519",
            KeyType::Ecdsa => "id_ecdsa",
            KeyType::Rsa => "id_rsa",
        }
    }
}

/// Node fields that can be given once for every node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Account name used on the node.
    pub user: Option<String>,
    /// SSH port of the node.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Operating system of the node.
    pub os: Option<Os>,
    /// How the node's files are reached: `shell` (default) or `sftp`
    /// (`os: windows` implies `sftp`).
    pub access: Option<Access>,
    /// Type of key pair generated on the node.
    pub key_type: Option<KeyType>,
    /// Bastion (or worker) every node is reached through.
    pub jump: Option<String>,
}

/// The manager: the machine trustmesh runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagerSpec {
    /// Name of the manager in this inventory.
    pub name: String,
    /// How workers reach the manager: needed for reverse edges.
    pub address: Option<String>,
    /// Account on the manager; defaults to the user running trustmesh.
    pub user: Option<String>,
    /// SSH port workers use to reach the manager.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Operating system of the manager.
    pub os: Option<Os>,
    /// Type of the manager's key pair, when it has to be generated.
    pub key_type: Option<KeyType>,
    /// The manager's private key; generated (no passphrase, -a 100) if missing.
    pub identity: Option<String>,
    /// The manager's known_hosts file.
    pub known_hosts: Option<String>,
    /// With `options.restrict_source`: the addresses (or CIDR ranges)
    /// workers see the manager's connections come from, when that is not
    /// `address` (NAT, several interfaces).
    pub source_addresses: Option<Vec<String>>,
}

/// A bastion or a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Unique name: `[A-Za-z0-9][A-Za-z0-9._-]*`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub name: String,
    /// Hostname, IPv4 or IPv6 address.
    pub address: String,
    /// Account name on the node.
    pub user: Option<String>,
    /// SSH port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Operating system.
    pub os: Option<Os>,
    /// How the node's files are reached: `shell` (default: trustmesh's
    /// scripts run in a POSIX `sh`) or `sftp` (only the SFTP subsystem, for
    /// accounts without a shell; `os: windows` implies it).
    pub access: Option<Access>,
    /// Type of the key pair generated on the node.
    pub key_type: Option<KeyType>,
    /// Pin of the host key fingerprint, as `ssh-keygen -lf` prints it
    /// (`SHA256:...`).
    #[schemars(regex(pattern = r"^SHA256:[A-Za-z0-9+/]{43}$"))]
    pub host_key: Option<String>,
    /// ProxyJump through this bastion (or worker).
    pub jump: Option<String>,
    /// Groups this node belongs to, for `mesh: - group: NAME`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// With `options.restrict_source`: the addresses (or CIDR ranges)
    /// other nodes see this node's connections come from, when that is not
    /// `address` (NAT, several interfaces, a cloud private network). On a
    /// jump host: the address the nodes behind it see.
    pub source_addresses: Option<Vec<String>>,
    /// When every edge from this node ends (its reverse and mesh edges): a
    /// date, `YYYY-MM-DD` (the end of that day, UTC), or an RFC 3339 time
    /// (`2026-12-31T18:00:00Z`). See `expires` on a reverse entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// `false`: this node keeps pinned host keys when
    /// `host_certificates:` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_certificates: Option<bool>,
}

/// `reverse:` either `all` or a list of workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Reverse {
    /// `all`: every worker, each with a full (shell) edge.
    All(AllKeyword),
    /// These workers.
    Some(Vec<ReverseEntry>),
}

/// One `reverse:` entry: a worker's name (a full edge), or a worker with
/// its edge's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ReverseEntry {
    /// A worker's name: a full edge (a shell on the manager).
    Name(String),
    /// `{ worker: NAME, sftp_only: true }`
    Detailed(ReverseEdge),
}

impl ReverseEntry {
    pub fn worker(&self) -> &str {
        match self {
            ReverseEntry::Name(n) => n,
            ReverseEntry::Detailed(d) => &d.worker,
        }
    }

    pub fn sftp_only(&self) -> bool {
        matches!(self, ReverseEntry::Detailed(d) if d.sftp_only)
    }
}

/// `{ worker: NAME, sftp_only: true }`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseEdge {
    /// The worker that may log in to the manager.
    pub worker: String,
    /// Allow SFTP only (SSHFS mounts): the manager's `authorized_keys` line
    /// gets `restrict,command="internal-sftp"`, so sshd runs its own SFTP
    /// server for that key whatever the client asks, and no shell.
    #[serde(default)]
    pub sftp_only: bool,
    /// When this access ends: a date, `YYYY-MM-DD` (the end of that day,
    /// UTC), or an RFC 3339 time (`2026-12-31T18:00:00Z`). The line gets
    /// `expiry-time="..."`, sshd refuses the key after it, and the next
    /// apply removes the line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl Default for Reverse {
    fn default() -> Self {
        Reverse::Some(Vec::new())
    }
}

/// The keyword `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllKeyword {
    All,
}

/// One `mesh:` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MeshEntry {
    /// Two or more worker names: every pair among them, both ways.
    Names(Vec<String>),
    /// Every pair among the members of a group (`all` holds every worker).
    Group(MeshGroup),
}

/// `- group: NAME`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MeshGroup {
    /// The group's name; `all` holds every worker.
    pub group: String,
    /// When the edges of this entry end: a date, `YYYY-MM-DD` (the end of
    /// that day, UTC), or an RFC 3339 time (`2026-12-31T18:00:00Z`). A pair
    /// also in an entry without `expires` does not end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

/// `options:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// Manage a block of Host aliases in ~/.ssh/config of each edge's source.
    #[serde(default)]
    pub ssh_config: bool,
    /// Manage a block in /etc/hosts on every node (needs root or sudo -n).
    #[serde(default)]
    pub hosts_file: bool,
    /// Write known_hosts host names hashed, like `ssh-keygen -H`.
    #[serde(default)]
    pub hash_known_hosts: bool,
    /// Remove entries this tool wrote earlier whose edge left the inventory.
    #[serde(default = "yes")]
    pub prune: bool,
    /// Put `from="<source address>"` on every authorized_keys line
    /// trustmesh writes: a key then opens its target only from the address
    /// its source node connects from (`address`, or `source_addresses`).
    #[serde(default)]
    pub restrict_source: bool,
    /// How many days before its `expires` time an edge is marked as
    /// expiring by `graph`, `plan` and `verify`.
    #[serde(default = "expiry_warning_days")]
    pub expiry_warning_days: u32,
}

fn expiry_warning_days() -> u32 {
    super::expiry::DEFAULT_WARNING_DAYS
}

fn yes() -> bool {
    true
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ssh_config: false,
            hosts_file: false,
            hash_known_hosts: false,
            prune: true,
            restrict_source: false,
            expiry_warning_days: super::expiry::DEFAULT_WARNING_DAYS,
        }
    }
}

/// The JSON Schema of the inventory, as committed in `schemas/`.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(InventoryFile);
    serde_json::to_value(schema).expect("a schema always serializes")
}

/// The schema rendered exactly as the committed file is.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a Value always serializes");
    text.push('\n');
    text
}
