//! Inventories from what operators already have: an OpenSSH client config
//! (`Host` blocks) or an Ansible inventory (INI or YAML). Each importer
//! reads its format into a [`Draft`] (nodes, groups, jumps) and the list of
//! what it could not map ([`Skipped`]); [`emit`] writes the draft as a
//! trustmesh inventory with a comment for each thing skipped. Nothing here
//! touches a host or a file: the CLI reads the input and prints the text.

mod ansible;
mod emit;
mod ssh_config;

pub use ansible::ansible;
pub use emit::{emit, STARTER};
pub use ssh_config::ssh_config;

/// A node as imported, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftNode {
    /// The inventory name (made valid: see [`node_name`]).
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    /// The name of the node it is reached through.
    pub jump: Option<String>,
    pub groups: Vec<String>,
}

/// What an importer found: bastions (nodes others jump through), workers,
/// and a default account when the source has one for every host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// Where it came from, said in the output's first comment.
    pub source: String,
    pub default_user: Option<String>,
    pub bastions: Vec<DraftNode>,
    pub workers: Vec<DraftNode>,
}

/// Something of the source that is not in the inventory, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line in the source, when the format has lines to point at.
    pub line: Option<usize>,
    pub what: String,
}

/// A draft and what was left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub draft: Draft,
    pub skipped: Vec<Skipped>,
}

impl Imported {
    fn skip(&mut self, line: Option<usize>, what: impl Into<String>) {
        self.skipped.push(Skipped {
            line,
            what: what.into(),
        });
    }

    /// The node named `name`, bastion or worker.
    fn node_mut(&mut self, name: &str) -> Option<&mut DraftNode> {
        self.draft
            .bastions
            .iter_mut()
            .chain(self.draft.workers.iter_mut())
            .find(|n| n.name == name)
    }

    /// Move the workers that others jump through to the bastions (a jump
    /// host is a bastion in the inventory: it gets a forward edge only).
    fn promote_jump_hosts(&mut self) {
        let jumps: std::collections::HashSet<String> = self
            .draft
            .workers
            .iter()
            .chain(self.draft.bastions.iter())
            .filter_map(|n| n.jump.clone())
            .collect();
        let (b, w): (Vec<_>, Vec<_>) = std::mem::take(&mut self.draft.workers)
            .into_iter()
            .partition(|n| jumps.contains(&n.name));
        self.draft.bastions.extend(b);
        self.draft.workers = w;
    }
}

/// A node name the inventory takes (`[A-Za-z0-9][A-Za-z0-9._-]*`, no
/// `..`) made from `raw`: other characters become `-`. `None` when nothing
/// usable is left.
pub fn node_name(raw: &str) -> Option<String> {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("..") {
        s = s.replace("..", ".");
    }
    let s = s.trim_start_matches(['.', '_', '-']).to_string();
    (!s.is_empty()).then_some(s)
}

/// A group name the inventory takes (letters, digits, `.`, `_`, `-`).
pub fn group_name(raw: &str) -> Option<String> {
    node_name(raw)
}

#[cfg(test)]
mod tests;
