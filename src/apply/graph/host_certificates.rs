//! host_certificates' part of the action DAG: the host CA before every
//! signature; a peer's known_hosts edit after the reload of each host
//! whose pinned lines it drops (all of them when it adds the CA line); and,
//! when a node stops serving certificates (host_certificates turned off),
//! its drop-in's removal after every peer's edit that pins it or drops the
//! CA line, and its certificates and KRL removed after its reload: make
//! before break.

use petgraph::graph::NodeIndex;

use super::{Builder, NodeActions};
use crate::plan::{BlockRole, BlockWrite, FileEdit, NodePlan};

impl<'p> Builder<'p> {
    /// A known_hosts edit: the nodes whose lines it drops, whether it adds
    /// the CA line, the nodes it pins and whether it drops the CA line.
    pub(super) fn known_hosts_edit(&mut self, e: &'p FileEdit, ix: NodeIndex) {
        let dropped = e
            .remove
            .iter()
            .filter_map(|(_, l)| marker_node(l))
            .collect();
        let ca = e
            .add
            .iter()
            .any(|l| l.names.as_deref().is_some_and(is_ca_names));
        self.known_hosts.push((ix, dropped, ca));
        let pinned = e
            .add
            .iter()
            .filter(|l| !l.names.as_deref().is_some_and(is_ca_names))
            .map(|l| &*l.node)
            .collect();
        let drops_ca = e.remove.iter().any(|(_, l)| is_ca_names(l));
        self.pins.push((ix, pinned, drops_ca));
    }

    /// A block write `ix` of node `np`: after the node's reload when one
    /// came before it; sshd's drop-in removed before any reload is where
    /// the node stops serving its certificate.
    pub(super) fn stop_serving(
        &mut self,
        np: &'p NodePlan,
        b: &BlockWrite,
        ix: NodeIndex,
        n: &mut NodeActions<'p>,
    ) {
        self.after_reload(ix, n);
        if b.role == BlockRole::SshdDropin && b.new.is_none() && n.reload.is_none() {
            n.stops = true;
            self.stops.push((np.node.as_str(), ix));
        }
    }

    /// `ix` after its node's reload, if one came before it.
    pub(super) fn after_reload(&mut self, ix: NodeIndex, n: &NodeActions<'p>) {
        if let Some(r) = n.reload {
            self.graph.add_edge(r, ix, ());
        }
    }

    /// The CA before every signature; the known_hosts edits after the
    /// reloads they wait for; the drop-ins' removals after the edits.
    pub(super) fn host_certificates(&mut self) {
        if let Some(ca) = self.host_ca {
            for &c in &self.certs {
                self.graph.add_edge(ca, c, ());
            }
        }
        for (ix, dropped, ca) in &self.known_hosts {
            for (node, &r) in &self.reloads {
                if *ca || dropped.contains(node) {
                    self.graph.add_edge(r, *ix, ());
                }
            }
        }
        for &(node, stop) in &self.stops {
            for (ix, pinned, drops_ca) in &self.pins {
                if *drops_ca || pinned.contains(&node) {
                    self.graph.add_edge(*ix, stop, ());
                }
            }
        }
    }
}

/// The node a managed line's marker names (`... trustmesh:c/node`).
fn marker_node(line: &str) -> Option<&str> {
    let m = line.split_whitespace().last()?;
    m.strip_prefix("trustmesh:")?
        .rsplit_once('/')
        .map(|(_, n)| n)
}

/// Are these known_hosts names (or a line) those of the host CA's line?
pub(super) fn is_ca_names(names: &str) -> bool {
    names.starts_with("@cert-authority ")
}
