//! Where a node's connections come from, as the node they reach sees them:
//! the value of the `from="..."` option `options.restrict_source` puts on
//! every authorized_keys line trustmesh writes.
//!
//! A node's connections come from its `source_addresses` when the inventory
//! gives them, else from its `address` when that is an IP address (sshd
//! matches `from=` host names only with `UseDNS yes`, which is off by
//! default, so a host name cannot be used). The manager's connections to a
//! node behind a jump host arrive from that jump host, whose address on the
//! inner side the inventory does not know: its `source_addresses` must say.
//! Workers connect directly (their edges do not go through jump hosts).

use std::net::IpAddr;

use ipnet::IpNet;

use super::spans::Path;
use super::validate::problem;
use super::{Inventory, NodeId, Problem, Role};
use crate::formats::key_options::Policy;

/// Why the source addresses of an edge cannot be derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underivable {
    /// The node whose `source_addresses` would settle it.
    pub node: NodeId,
    pub reason: String,
}

/// One `source_addresses` entry: an IP address or a CIDR range.
pub fn parse_pattern(s: &str) -> Option<IpNet> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    s.parse::<IpNet>().ok()
}

/// Whether `addr` is covered by one of `patterns` (addresses or CIDR
/// ranges, as `source_addresses` holds them and `from=` lists them).
pub fn covers<'a>(patterns: impl IntoIterator<Item = &'a str>, addr: &str) -> bool {
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    patterns
        .into_iter()
        .filter_map(parse_pattern)
        .any(|net| net.contains(&ip))
}

impl Inventory {
    /// Whether the edge `source -> target` is SFTP-only (a reverse edge
    /// written `{ worker: NAME, sftp_only: true }`).
    pub fn is_sftp_only(&self, source: NodeId, target: NodeId) -> bool {
        target == Inventory::MANAGER && self.sftp_only.binary_search(&source).is_ok()
    }

    /// What the authorized_keys line of the edge `source -> target` allows.
    ///
    /// The manager's own line on a node reached over SFTP gets no `from=`:
    /// there trustmesh cannot see where the node sees the manager come
    /// from (a shell's `SSH_CONNECTION`), so it could not refuse a `from=`
    /// that would lock the manager out (see [`Self::unchecked_source`]).
    pub fn policy(&self, source: NodeId, target: NodeId) -> Policy {
        Policy {
            sftp_only: self.is_sftp_only(source, target),
            from: if self.options.restrict_source && !self.unchecked_source(source, target) {
                self.seen_from(source, target).ok()
            } else {
                None
            },
            expires: self.expires(source, target),
        }
    }

    /// With `restrict_source`: the manager's line on `target` cannot be
    /// checked against the address `target` sees (a node reached over
    /// SFTP), so it is left without `from=`.
    pub fn unchecked_source(&self, source: NodeId, target: NodeId) -> bool {
        source == Inventory::MANAGER && self.nodes[target].access == super::Access::Sftp
    }

    /// The addresses `target` sees the connections of `source` come from,
    /// as written in `from="..."` (comma-separated).
    pub fn seen_from(&self, source: NodeId, target: NodeId) -> Result<String, Underivable> {
        let through = match self.nodes[target].jump {
            Some(j) if source == Inventory::MANAGER && j != source => j,
            _ => source,
        };
        let n = &self.nodes[through];
        if !n.source_addresses.is_empty() {
            return Ok(n.source_addresses.join(","));
        }
        if through != source {
            return Err(Underivable {
                node: through,
                reason: format!(
                    "{} is reached through {}, and what {} sees is {}'s address on its inner side, which the \
                     inventory does not give",
                    self.nodes[target].name, n.name, self.nodes[target].name, n.name
                ),
            });
        }
        match n.address.as_deref() {
            Some(a) if a.parse::<IpAddr>().is_ok() => Ok(a.to_string()),
            Some(a) => Err(Underivable {
                node: source,
                reason: format!(
                    "{}'s address `{a}` is a host name, and sshd matches `from=` names only with UseDNS, \
                     which is off by default",
                    n.name
                ),
            }),
            None => Err(Underivable {
                node: source,
                reason: format!("{} has no address", n.name),
            }),
        }
    }
}

/// Every entry of a `source_addresses` list is an IP address or a CIDR
/// range, and the list is not empty.
pub(super) fn check_list(p: &Path, list: &[String], problems: &mut Vec<Problem>) {
    if list.is_empty() {
        problems.push(problem(
            p.clone(),
            "trustmesh::inventory::source_addresses",
            "`source_addresses` is empty".into(),
            "no address",
            Some("list the addresses (or CIDR ranges) this node's connections come from, or drop the key".into()),
        ));
    }
    for (i, s) in list.iter().enumerate() {
        if parse_pattern(s).is_none() {
            problems.push(problem(
                p.index(i),
                "trustmesh::inventory::source_address",
                format!(
                    "`{}` is not an IP address or a CIDR range",
                    super::limits::shown(s)
                ),
                "not an address or range",
                Some(
                    "write an address such as `192.0.2.10` or a range such as `10.0.0.0/24`".into(),
                ),
            ));
        }
    }
}

/// With `restrict_source`, every edge's `from=` can be derived: each
/// problem names the node whose `source_addresses` would settle it.
pub(super) fn check_derivable(inv: &Inventory, paths: &[Path], problems: &mut Vec<Problem>) {
    let mut pairs: Vec<(NodeId, NodeId)> = Vec::new();
    for (id, n) in inv.nodes.iter().enumerate() {
        if n.role != Role::Manager {
            pairs.push((Inventory::MANAGER, id));
        }
    }
    for &w in &inv.reverse {
        pairs.push((w, Inventory::MANAGER));
    }
    for members in &inv.mesh {
        // A source's own address does not depend on the target among
        // workers: one pair per member is enough.
        if let [first, second, ..] = members[..] {
            pairs.push((first, second));
            for &m in &members[1..] {
                pairs.push((m, first));
            }
        }
    }
    let mut reported: Vec<NodeId> = Vec::new();
    for (s, t) in pairs {
        if let Err(u) = inv.seen_from(s, t) {
            if reported.contains(&u.node) {
                continue;
            }
            reported.push(u.node);
            let node = &inv.nodes[u.node];
            problems.push(problem(
                paths[u.node].key("name"),
                "trustmesh::inventory::restrict_source",
                format!(
                    "`options.restrict_source` cannot say where {}'s connections come from: {}",
                    node.name, u.reason
                ),
                "source address unknown",
                Some(format!(
                    "give {} `source_addresses: [ADDRESS or CIDR, ...]`: the addresses the nodes it reaches see \
                     its connections come from",
                    node.name
                )),
            ));
        }
    }
}
