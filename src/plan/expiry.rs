//! Time-limited edges (`expires:`) in the planner: an edge past its end
//! is no longer wanted, so its `authorized_keys` line is removed like a
//! pruned one (this cluster's managed lines only, whatever
//! `options.prune` says: the inventory asked for the end), and the plan
//! says why; edges ending within the warning window are noted. "Now" is
//! [`PlanScope::now`], never the system clock.

use super::*;
use crate::model::inventory::expiry::{unix_seconds, EdgeTime};

/// Notes of a plan listing ending edges, at most this many lines.
const MAX_NOTED: usize = 20;

impl Ctx<'_> {
    /// Whether the edge `source -> target` has ended at this plan's now.
    pub(super) fn expired(&self, source: NodeId, target: NodeId) -> bool {
        self.inv
            .edge_time(source, target, self.scope.now)
            .is_some_and(EdgeTime::is_expired)
    }

    /// Why each removed line of an ended edge goes, in `target`'s
    /// authorized_keys (`remove`: line indices, in file order).
    pub(super) fn expired_lines(
        &self,
        target: NodeId,
        path: &str,
        file: &AuthorizedKeysFile,
        remove: &[usize],
        plan: &mut NodePlan,
    ) {
        if self.inv.expiry.is_empty() || remove.is_empty() {
            return;
        }
        for (i, k) in file.keys() {
            if remove.binary_search(&i).is_err() {
                continue;
            }
            let Some(Owner::Node(s, _)) = k.marker().map(|m| self.owner(m)) else {
                continue;
            };
            if let Some(EdgeTime::Expired(at)) = self.inv.edge_time(s, target, self.scope.now) {
                plan.warnings.push(format!(
                    "{path}: {}'s line is removed: its edge expired {at}",
                    self.inv.nodes[s].name
                ));
            }
        }
    }
}

/// The plan's notes on edges in scope that end within the warning window
/// or have ended.
pub(super) fn notes(inv: &Inventory, graph: &TrustGraph, scope: &PlanScope) -> Vec<String> {
    let Some(now) = scope.now else {
        return Vec::new();
    };
    if inv.expiry.is_empty() {
        return Vec::new();
    }
    let secs = unix_seconds(now);
    let mut lines = Vec::new();
    let mut more = 0;
    for e in graph.edges() {
        if !(scope.contains(e.source) && scope.contains(e.target)) {
            continue;
        }
        let t = match inv.edge_time(e.source, e.target, Some(now)) {
            Some(t @ (EdgeTime::Expiring(_) | EdgeTime::Expired(_))) => t,
            _ => continue,
        };
        if lines.len() == MAX_NOTED {
            more += 1;
            continue;
        }
        let what = match t {
            EdgeTime::Expired(_) => "expired: its lines are removed, sshd already refuses its key",
            _ => "expiring: within the warning window (options.expiry_warning_days)",
        };
        lines.push(format!(
            "{} -> {} ({}) {}, {what}",
            inv.nodes[e.source].name,
            inv.nodes[e.target].name,
            e.kind.as_str(),
            t.describe(secs)
        ));
    }
    if more > 0 {
        lines.push(format!("... and {more} more edges expiring or expired"));
    }
    lines
}
