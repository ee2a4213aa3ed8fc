//! Which nodes and which requests a run covers (`--limit`,
//! `--rotate-keys`, `--remove-stale-host-keys`, `--adopt`): gather reads
//! the nodes in scope, the planner plans them, verify tries their edges.

use std::collections::HashSet;

use crate::model::inventory::{Inventory, NodeId};

/// What the planner needs to know besides the inventory and live state.
#[derive(Debug, Clone, Default)]
pub struct PlanScope {
    /// `--limit`: only these nodes (the manager always) and the edges between
    /// them. `None`: every node.
    pub limit: Option<HashSet<NodeId>>,
    /// `--remove-stale-host-keys`: these nodes' old host keys are removed
    /// from lines trustmesh did not write too (on request only).
    pub remove_stale_host_keys: HashSet<NodeId>,
    /// `--rotate-keys`: these nodes get a new key, rotated make-before-break.
    pub rotate: HashSet<NodeId>,
    /// `--rotate-keys @ca` (or `ca` when no node is so named): the user CA
    /// of `certificates:` is rotated make-before-break.
    pub rotate_ca: bool,
    /// `--adopt`: lines trustmesh did not write that grant a wanted edge
    /// are taken over (their comment becomes the marker).
    pub adopt: bool,
    /// When `expires:` is judged (the CLI: the clock); `None`: none ended.
    pub now: Option<std::time::SystemTime>,
}

impl PlanScope {
    pub fn contains(&self, id: NodeId) -> bool {
        id == Inventory::MANAGER || self.limit.as_ref().is_none_or(|l| l.contains(&id))
    }
}
