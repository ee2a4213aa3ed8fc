//! The inventory: parsing, validation and the resolved model.
//!
//! Loading goes through four stages, each collecting every problem it finds
//! rather than stopping at the first:
//!
//! 1. YAML syntax (serde_yaml), with the parser's line and column;
//! 2. structure (unknown keys, wrong types) against the generated JSON
//!    Schema ([`structure`]);
//! 3. meaning (names, references, cycles, addresses) on the typed file
//!    ([`validate`]), which also resolves defaults and groups;
//! 4. rendering: each problem speaks in YAML paths, which [`spans`] turns
//!    into labelled byte spans for miette ([`diagnostics`]).

pub mod certificates;
mod checks;
pub mod diagnostics;
pub mod expiry;
pub mod host_certificates;
pub mod hostile;
pub mod limits;
pub mod model;
mod references;
pub mod sources;
pub mod spans;
pub mod structure;
pub mod typed;
pub mod validate;
pub mod values;

use crate::model::target::SshTarget;
use std::path::Path as FsPath;
use std::sync::Arc;

pub use diagnostics::InventoryError;
pub use model::{Access, InventoryFile, KeyType, Options, Os};
use spans::Path;

/// A mistake in an inventory, located by its YAML path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: Path,
    /// Label the key rather than the value (unknown keys).
    pub at_key: bool,
    /// Stable code, e.g. `trustmesh::model::inventory::unknown_key`.
    pub code: &'static str,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
    /// Secondary labels (e.g. where a duplicated name was first used).
    pub extra: Vec<(Path, String)>,
}

/// Index of a node in [`Inventory::nodes`]. The manager is always 0.
pub type NodeId = usize;

/// What part a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Bastion,
    Worker,
}

/// A node with defaults merged in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Node {
    pub name: String,
    pub role: Role,
    /// How others reach it. The manager may have none (then no reverse
    /// edge can be made).
    pub address: Option<String>,
    /// Account; `None` means the account running trustmesh.
    pub user: Option<String>,
    pub port: u16,
    pub os: Os,
    /// How its files are reached (`sftp` for every Windows node).
    pub access: Access,
    pub key_type: KeyType,
    /// Pinned host key fingerprint (`SHA256:...`).
    pub host_key: Option<String>,
    /// The node it is reached through.
    pub jump: Option<NodeId>,
    pub groups: Vec<String>,
    /// Manager only: its private key path (may start with `~`).
    pub identity: Option<String>,
    /// Manager only: its known_hosts path (may start with `~`).
    pub known_hosts: Option<String>,
    /// `source_addresses:` as written (addresses or CIDR ranges); empty
    /// when not given.
    pub source_addresses: Vec<String>,
}

impl Node {
    /// Where the node's sshd listens: its address and port, the one place
    /// both are read together. Only the manager can be without an address
    /// (it is never reached over ssh then, and has no reverse edge): its
    /// address is empty.
    pub fn target(&self) -> SshTarget<'_> {
        SshTarget::new(self.address.as_deref().unwrap_or_default(), self.port)
    }

    /// `user@address` as a person would write it, for messages.
    pub fn display_target(&self) -> String {
        let addr = self.address.as_deref().unwrap_or("(local)");
        match &self.user {
            Some(u) => format!("{u}@{addr}"),
            None => addr.to_string(),
        }
    }
}

/// The inventory, validated and resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// The cluster's name (`cluster:`, else the manager's name): part of
    /// the marker of every line trustmesh writes.
    pub cluster: String,
    /// Whether `cluster:` was written (else the cluster is named after the
    /// manager).
    pub cluster_named: bool,
    /// What a person should know about this inventory that does not stop
    /// it from being used ([`hostile::warnings`]), placed in its file.
    pub warnings: Vec<hostile::Warning>,
    /// Manager first, then bastions, then workers, in file order.
    pub nodes: Vec<Node>,
    /// Workers with a worker -> manager edge, in file order, no repeats.
    pub reverse: Vec<NodeId>,
    /// The workers among `reverse` whose edge is SFTP-only, sorted.
    pub sftp_only: Vec<NodeId>,
    /// Mesh entries, each the workers among which every pair trusts each
    /// other both ways (groups already expanded).
    pub mesh: Vec<Vec<NodeId>>,
    pub options: Options,
    /// `expires:` of nodes, reverse and mesh entries, per edge
    /// ([`Inventory::expires`]).
    pub expiry: expiry::Expiries,
    /// `certificates:` (user certificates), `None` when off.
    pub certificates: Option<certificates::Certificates>,
    /// `host_certificates:` (`None`: off).
    pub host_certs: Option<host_certificates::HostCerts>,
}

impl Inventory {
    pub const MANAGER: NodeId = 0;

    /// The marker of the lines trustmesh writes for `node` in this
    /// cluster: the whole comment of each such line.
    pub fn marker(&self, node: &str) -> String {
        crate::formats::lines::Marker::new(&self.cluster, node).to_string()
    }

    pub fn manager(&self) -> &Node {
        &self.nodes[Self::MANAGER]
    }

    pub fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| n.name == name)
    }

    pub fn workers(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.role == Role::Worker)
    }

    /// Parse and validate inventory text. `name` is how the file is named in
    /// messages. An `expires:` already past is warned about against the
    /// system clock.
    pub fn from_str_named(name: &str, text: &str) -> Result<Inventory, InventoryError> {
        Self::from_str_at(name, text, expiry::system_now())
    }

    /// [`Self::from_str_named`], with `now` the time an `expires:` already
    /// past is warned about against.
    pub fn from_str_at(
        name: &str,
        text: &str,
        now: std::time::SystemTime,
    ) -> Result<Inventory, InventoryError> {
        if text.len() as u64 > limits::MAX_FILE_BYTES {
            return Err(InventoryError::TooLarge {
                path: name.to_string(),
                size: text.len() as u64,
            });
        }
        // Editors on Windows may start a UTF-8 file with a byte order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let src = Arc::new(text.to_string());
        // Before serde_yaml: its scanner is quadratic in the nesting depth.
        let scan = limits::scan(text);
        if let Some(at) = scan.too_deep {
            return Err(InventoryError::too_deep(name, src, at));
        }
        let value: serde_yaml::Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => return Err(InventoryError::syntax(name, src, &e, &scan)),
        };
        let mut problems = Vec::new();
        let typed = typed::check_structure(&value, &mut problems);
        let inventory = typed.and_then(|file| validate::resolve(&file, &mut problems));
        match inventory {
            Some(mut inv) if problems.is_empty() => {
                let mut found = hostile::warnings(&inv);
                found.extend(expiry::warnings(&inv, now));
                if !found.is_empty() {
                    let index = spans::SpanIndex::build(&src);
                    let text = diagnostics::SourceText::new(src.clone());
                    for (path, code, message, help) in found {
                        let (line, col) = text.line_col(index.value(&path).offset);
                        inv.warnings.push(hostile::Warning {
                            code,
                            message,
                            help,
                            place: format!("{name}:{}:{}", line + 1, col + 1),
                            file: name.to_string(),
                            line: line + 1,
                            column: col + 1,
                        });
                    }
                }
                Ok(inv)
            }
            _ => Err(InventoryError::invalid(name, src, problems)),
        }
    }

    /// Read, parse and validate an inventory file. A file larger than
    /// [`limits::MAX_FILE_BYTES`] is refused before it is read whole.
    pub fn load(path: &FsPath) -> Result<Inventory, InventoryError> {
        use std::io::Read as _;
        let io = |e| InventoryError::Io {
            path: path.display().to_string(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let too_large = |size| InventoryError::TooLarge {
            path: path.display().to_string(),
            size,
        };
        if size > limits::MAX_FILE_BYTES {
            return Err(too_large(size));
        }
        // Not trusting the size: a pipe or a growing file has none.
        let mut text = Vec::new();
        file.take(limits::MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(io)?;
        if text.len() as u64 > limits::MAX_FILE_BYTES {
            return Err(too_large(text.len() as u64));
        }
        let text = String::from_utf8(text).map_err(|_| InventoryError::NotUtf8 {
            path: path.display().to_string(),
        })?;
        Self::from_str_named(&path.display().to_string(), &text)
    }
}
