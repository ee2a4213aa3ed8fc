//! The certificates' part of the action DAG: the user CA's rotation
//! (`--rotate-keys @ca`), and a proof that waits for its node's new
//! certificate (a key rotated in certificate mode).
//!
//! A CA rotation runs make-before-break: the new CA is made on the
//! manager; every target's edit that trusts it goes first; every
//! certificate signed by it is written only once all of them succeeded
//! (so a source never holds a certificate a target does not trust yet);
//! each certificate edge is proven from its source with the new
//! certificate; the new CA goes in place (the old pair archived) only
//! when every proof held, and the edits that remove the old CA's lines
//! (`after_rotation_of` = [`crate::plan::CA_NODE`]) wait for that swap.

use std::collections::HashMap;

use petgraph::graph::NodeIndex;

use super::{Action, Builder, Kind, NodeActions};
use crate::plan::{Change, Plan, CA_NODE};

impl<'p> Builder<'p> {
    /// The new CA's generation (`ix`, on the manager at plan index `pi`)
    /// and its swap into place, once every proof holds.
    pub(super) fn ca_rotation(
        &mut self,
        pi: usize,
        c: &'p Change,
        ix: NodeIndex,
        n: &mut NodeActions<'p>,
    ) {
        let Change::RotateUserCa {
            path,
            new_path,
            aside_path,
            proofs,
            ..
        } = c
        else {
            return;
        };
        self.keygen_of.insert(CA_NODE, ix);
        if let Some(m) = n.moved {
            self.graph.add_edge(m, ix, ());
        }
        let swap = self.graph.add_node(Action {
            plan_node: pi,
            kind: Kind::Swap {
                path: path.clone(),
                new_path: new_path.clone(),
                aside_path: aside_path.clone(),
            },
        });
        self.graph.add_edge(ix, swap, ());
        n.own.push(swap);
        // The old CA's lines go after the swap (see `ActionGraph::build`).
        self.rotations
            .insert(CA_NODE, (pi, new_path.clone(), swap, &[]));
        self.ca_rotation = Some((swap, proofs.as_slice()));
    }

    /// A CA rotation's writes after every edit that trusts the new CA, and
    /// its proofs; then every proof after its node's certificate writes.
    pub(super) fn certificate_proofs(&mut self, plan: &Plan) {
        if let Some((swap, proofs)) = self.ca_rotation {
            let trusts: Vec<NodeIndex> = self
                .pending
                .iter()
                .filter(|(_, needs)| needs.iter().any(|n| n == CA_NODE))
                .map(|(ix, _)| *ix)
                .collect();
            for &(_, _, write) in &self.issues {
                for &t in &trusts {
                    self.graph.add_edge(t, write, ());
                }
            }
            let plan_index = plan_index(plan);
            for (source, target) in proofs {
                let Some(&pi) = plan_index.get(source.as_str()) else {
                    continue;
                };
                // The source's key, whose certificate is signed again.
                let identity = plan.nodes[pi].changes.iter().find_map(|c| match c {
                    Change::IssueCertificate(i) => i.public_key.strip_suffix(".pub"),
                    _ => None,
                });
                let prove = self.graph.add_node(Action {
                    plan_node: pi,
                    kind: Kind::Prove {
                        // No certificate signed again: the proof fails.
                        target: identity.and(plan_index.get(target.as_str()).copied()),
                        name: target.clone(),
                        identity: identity.unwrap_or_default().to_string(),
                    },
                });
                for &t in &trusts {
                    self.graph.add_edge(t, prove, ());
                }
                self.graph.add_edge(prove, swap, ());
            }
        }
        // A proof offers its node's certificate: written first.
        let proves: Vec<NodeIndex> = self
            .graph
            .node_indices()
            .filter(|&ix| matches!(self.graph[ix].kind, Kind::Prove { .. }))
            .collect();
        for prove in proves {
            let node = self.graph[prove].plan_node;
            for &(pi, _, write) in &self.issues {
                if pi == node {
                    self.graph.add_edge(write, prove, ());
                }
            }
        }
    }
}

/// Each node's index in `plan.nodes`, by name.
pub(super) fn plan_index(plan: &Plan) -> HashMap<&str, usize> {
    plan.nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node.as_str(), i))
        .collect()
}
