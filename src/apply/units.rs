//! A node's actions grouped into units for the walk: its batched writes
//! in one round trip ([`crate::node::Door::run_all`]), what must come
//! before them, and the actions that go alone.

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::graph::{ActionGraph, Kind};
use crate::plan::Plan;
/// Actions sent to their node together: a node's batch (its writes and
/// their read-back in one round trip), or one action on its own.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub(super) plan_node: usize,
    /// In an order that respects the graph.
    pub(super) actions: Vec<NodeIndex>,
    /// The node's batch: what is left of its actions once its keys exist,
    /// sent with [`crate::node::Door::run_all`], whose read-back is the
    /// node's state after the run.
    pub(super) main: bool,
}

/// The action graph walked by units: which unit waits for which.
#[derive(Debug, Clone)]
pub(super) struct Units {
    pub(super) units: Vec<Unit>,
    /// Each unit's units it waits for.
    pub(super) after: Vec<Vec<usize>>,
}

impl ActionGraph {
    /// The plan's actions grouped for the walk: per node, its batched
    /// actions in one unit; the ones its own key generation waits for (its
    /// `~/.ssh`) in a unit before it; every other action alone. A node's
    /// batch waits for its own key generation too (the manager's: its CAs'
    /// too), so that its read-back is its state after the whole run. Should the groups ever wait for
    /// each other in a circle, every action goes alone, as the graph says.
    pub(super) fn units(&self, plan: &Plan) -> Units {
        let g = &self.graph;
        let Ok(order) = petgraph::algo::toposort(g, None) else {
            return self.singletons(&[]);
        };
        let change = |ix: NodeIndex| match &g[ix].kind {
            Kind::Edit { change } => plan.nodes[g[ix].plan_node].changes.get(*change),
            _ => None,
        };
        let batched = |ix: NodeIndex| g[ix].kind.batched(change(ix));
        // Batched actions a later action of their node, sent on its own,
        // waits for: they go before it.
        let mut early = vec![false; g.node_count()];
        for b in g.node_indices().filter(|&b| !batched(b)) {
            let mut seen = vec![false; g.node_count()];
            let mut stack = vec![b];
            while let Some(x) = stack.pop() {
                for a in g.neighbors_directed(x, Direction::Incoming) {
                    if std::mem::replace(&mut seen[a.index()], true) {
                        continue;
                    }
                    if g[a].plan_node == g[b].plan_node && batched(a) {
                        early[a.index()] = true;
                    }
                    stack.push(a);
                }
            }
        }
        let mut units: Vec<Unit> = Vec::new();
        let mut of = vec![usize::MAX; g.node_count()];
        let mut main: HashMap<(usize, bool), usize> = HashMap::new();
        for &ix in &order {
            let pi = g[ix].plan_node;
            let u = if batched(ix) {
                let key = (pi, !early[ix.index()]);
                *main.entry(key).or_insert_with(|| {
                    units.push(Unit {
                        plan_node: pi,
                        actions: Vec::new(),
                        main: key.1,
                    });
                    units.len() - 1
                })
            } else {
                units.push(Unit {
                    plan_node: pi,
                    actions: Vec::new(),
                    main: false,
                });
                units.len() - 1
            };
            units[u].actions.push(ix);
            of[ix.index()] = u;
        }
        let mut after: Vec<Vec<usize>> = vec![Vec::new(); units.len()];
        let mut wait = |from: usize, to: usize| {
            if from != to && !after[to].contains(&from) {
                after[to].push(from);
            }
        };
        for e in g.edge_indices() {
            if let Some((a, b)) = g.edge_endpoints(e) {
                wait(of[a.index()], of[b.index()]);
            }
        }
        for (u, unit) in units.iter().enumerate() {
            if let [ix] = unit.actions[..] {
                // A key generation, or a CA's on the manager.
                if matches!(
                    g[ix].kind,
                    Kind::Keygen { .. } | Kind::CreateCa { .. } | Kind::HostCa { .. }
                ) {
                    if let Some(&m) = main.get(&(unit.plan_node, true)) {
                        wait(u, m);
                    }
                }
            }
        }
        let mut ug: DiGraph<(), ()> = DiGraph::new();
        let nodes: Vec<NodeIndex> = units.iter().map(|_| ug.add_node(())).collect();
        for (to, froms) in after.iter().enumerate() {
            for &from in froms {
                ug.add_edge(nodes[from], nodes[to], ());
            }
        }
        if petgraph::algo::is_cyclic_directed(&ug) {
            return self.singletons(&order);
        }
        Units { units, after }
    }

    /// Every action alone, waiting for what the graph says.
    fn singletons(&self, order: &[NodeIndex]) -> Units {
        let g = &self.graph;
        let order: Vec<NodeIndex> = if order.is_empty() {
            g.node_indices().collect()
        } else {
            order.to_vec()
        };
        let mut of = vec![0; g.node_count()];
        for (u, ix) in order.iter().enumerate() {
            of[ix.index()] = u;
        }
        let units = order
            .iter()
            .map(|&ix| Unit {
                plan_node: g[ix].plan_node,
                actions: vec![ix],
                main: false,
            })
            .collect();
        let after = order
            .iter()
            .map(|&ix| {
                g.neighbors_directed(ix, Direction::Incoming)
                    .map(|d| of[d.index()])
                    .collect()
            })
            .collect();
        Units { units, after }
    }
}
