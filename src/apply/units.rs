//! A node's actions grouped into units for the walk: its writes in as few
//! batches as the graph allows (each batch one round trip,
//! [`crate::node::Door::run_all`]), and the actions that go alone.
//!
//! Two batched actions of one node share a batch unless a path from one to
//! the other leaves that node's batch: through an action that goes alone
//! (a key generation, an sshd reload, a signing on the manager) or through
//! another node's batch. So each batched action gets a depth: how many
//! times the paths from it to its node's later batched actions must leave
//! its node's batches, at most; a node's batch is its batched actions of
//! one depth, the deepest sent first. Plain mode has one batch per node
//! (its key generation, if any, before it); with host certificates a
//! serving node has two, one before its sshd reload (the certificate, the
//! KRL, the drop-ins) and one after every reload its known_hosts edit
//! waits for (make before break).

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use super::graph::{ActionGraph, Kind};
use crate::plan::{Change, Plan};

/// Actions sent to their node together: one of a node's batches (its
/// writes and their read-back in one round trip), or one action on its
/// own.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub(super) plan_node: usize,
    /// In an order that respects the graph.
    pub(super) actions: Vec<NodeIndex>,
    /// The node's last batch, sent with [`crate::node::Door::run_all`]
    /// after its key generation, whose read-back is the node's state
    /// after the run (unless something of the node ends once it was sent:
    /// see [`super::walk`]).
    pub(super) main: bool,
}

/// The action graph walked by units: which unit waits for which.
#[derive(Debug, Clone)]
pub(super) struct Units {
    pub(super) units: Vec<Unit>,
    /// Each unit's units it waits for.
    pub(super) after: Vec<Vec<usize>>,
}

impl Kind {
    /// Can go in one of its node's batches ([`crate::node::Door::run_all`],
    /// see [`ActionGraph::units`]): every write the batch carries, strict
    /// ones too (a batch starts once every action its actions wait for,
    /// on any node, is done, and a strict one whose wait failed is
    /// skipped there). A key's generation, a signing or a CA on the
    /// manager, an sshd reload, a rotation's proof, swap and retirement
    /// (its pause step), and an ACL go on their own.
    pub(super) fn batched(&self, change: Option<&Change>) -> bool {
        match self {
            Kind::Edit { .. } => {
                !matches!(change, Some(Change::EditFile(e)) if e.after_rotation_of.is_some())
            }
            Kind::MkDir { .. }
            | Kind::Block { .. }
            | Kind::Mode { .. }
            | Kind::Owner { .. }
            | Kind::RemoveLeftover { .. }
            | Kind::Issue { .. }
            | Kind::HostCert { .. }
            | Kind::Krl { .. } => true,
            _ => false,
        }
    }
}

/// A key generation, or a CA's on the manager: its node's last batch
/// waits for it, so that batch's read-back holds it.
fn makes_a_key(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::Keygen { .. } | Kind::CreateCa { .. } | Kind::HostCa { .. }
    )
}

impl ActionGraph {
    /// The plan's actions grouped for the walk: per node, its batched
    /// actions in as few batches as the graph allows (see the module);
    /// every other action alone. A node's last batch waits for its own
    /// key generation too (the manager's: its CAs' too). Batches of two
    /// nodes that wait for each other are split ([`Self::untangle`]);
    /// should a circle of units be left that splitting cannot undo,
    /// every action goes alone, as the graph says.
    pub(super) fn units(&self, plan: &Plan) -> Units {
        let g = &self.graph;
        let Ok(order) = petgraph::algo::toposort(g, None) else {
            return self.singletons(&[]);
        };
        let change = |ix: NodeIndex| match &g[ix].kind {
            Kind::Edit { change } => plan.nodes[g[ix].plan_node].changes.get(*change),
            _ => None,
        };
        let batch_of = |ix: NodeIndex| g[ix].kind.batched(change(ix)).then(|| g[ix].plan_node);
        let depth = self.depths(&order, &batch_of);
        let mut units: Vec<Unit> = Vec::new();
        let mut of = vec![usize::MAX; g.node_count()];
        let mut batches: HashMap<(usize, usize), usize> = HashMap::new();
        for &ix in &order {
            let pi = g[ix].plan_node;
            let u = match batch_of(ix) {
                Some(_) => {
                    let d = depth[ix.index()];
                    *batches.entry((pi, d)).or_insert_with(|| {
                        units.push(Unit {
                            plan_node: pi,
                            actions: Vec::new(),
                            main: d == 0,
                        });
                        units.len() - 1
                    })
                }
                None => {
                    units.push(Unit {
                        plan_node: pi,
                        actions: Vec::new(),
                        main: false,
                    });
                    units.len() - 1
                }
            };
            units[u].actions.push(ix);
            of[ix.index()] = u;
        }
        // Batches of different nodes can still wait for each other in a
        // circle (a CA rotation: each node's certificate waits for the
        // other's trust of the new CA, both in their nodes' batches): such
        // a batch is split, what the circle enters going in a later one.
        for _ in 0..8 {
            let after = self.waits(&units, &of, &order);
            match self.untangle(&mut units, &mut of, &after) {
                None => return Units { units, after },
                Some(true) => {}
                Some(false) => break,
            }
        }
        self.singletons(&order)
    }

    /// Which unit waits for which: the graph's edges between units, and a
    /// node's last batch after its own key generation.
    fn waits(&self, units: &[Unit], of: &[usize], order: &[NodeIndex]) -> Vec<Vec<usize>> {
        let g = &self.graph;
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
        let main: HashMap<usize, usize> = units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.main)
            .map(|(i, u)| (u.plan_node, i))
            .collect();
        for &ix in order {
            if makes_a_key(&g[ix].kind) {
                if let Some(&m) = main.get(&g[ix].plan_node) {
                    wait(of[ix.index()], m);
                }
            }
        }
        after
    }

    /// Split each batch that is in a circle of units: its actions that a
    /// unit of the circle enters (and theirs after them in the batch) go
    /// in a new batch, the node's last one if the batch was. `None`: no
    /// circle; `Some(false)`: none could be split.
    fn untangle(
        &self,
        units: &mut Vec<Unit>,
        of: &mut [usize],
        after: &[Vec<usize>],
    ) -> Option<bool> {
        let g = &self.graph;
        let mut ug: DiGraph<(), ()> = DiGraph::new();
        let nodes: Vec<NodeIndex> = units.iter().map(|_| ug.add_node(())).collect();
        for (to, froms) in after.iter().enumerate() {
            for &from in froms {
                ug.add_edge(nodes[from], nodes[to], ());
            }
        }
        let mut circle = vec![usize::MAX; units.len()];
        let mut tangled = false;
        for (k, c) in petgraph::algo::tarjan_scc(&ug).iter().enumerate() {
            if c.len() > 1 {
                tangled = true;
                for n in c {
                    circle[n.index()] = k;
                }
            }
        }
        if !tangled {
            return None;
        }
        let mut splits = Vec::new();
        for (u, unit) in units.iter().enumerate() {
            if circle[u] == usize::MAX || unit.actions.len() < 2 {
                continue;
            }
            let mut late: Vec<NodeIndex> = Vec::new();
            for &ix in &unit.actions {
                let entered = g.neighbors_directed(ix, Direction::Incoming).any(|p| {
                    let pu = of[p.index()];
                    (pu != u && circle[pu] == circle[u]) || late.contains(&p)
                });
                if entered {
                    late.push(ix);
                }
            }
            if !late.is_empty() && late.len() < unit.actions.len() {
                splits.push((u, late));
            }
        }
        let progress = !splits.is_empty();
        for (u, late) in splits {
            units[u].actions.retain(|ix| !late.contains(ix));
            let main = std::mem::replace(&mut units[u].main, false);
            for ix in &late {
                of[ix.index()] = units.len();
            }
            units.push(Unit {
                plan_node: units[u].plan_node,
                actions: late,
                main,
            });
        }
        Some(progress)
    }

    /// Each batched action's depth (the others' are unused): the most
    /// times a path from it to a later batched action of its node leaves
    /// that node's batches, counting a key generation's wait for its
    /// node's last batch. Computed from the end of `order` back, with, for
    /// every action, what it asks of each node's batched actions before
    /// it (their least depth).
    fn depths(
        &self,
        order: &[NodeIndex],
        batch_of: &dyn Fn(NodeIndex) -> Option<usize>,
    ) -> Vec<usize> {
        let g = &self.graph;
        let mut depth = vec![0; g.node_count()];
        let mut asks: Vec<HashMap<usize, usize>> = vec![HashMap::new(); g.node_count()];
        for &x in order.iter().rev() {
            let own = batch_of(x);
            let mut d = 0;
            let mut ask: HashMap<usize, usize> = HashMap::new();
            let mut take = |node: usize, least: usize, ask: &mut HashMap<usize, usize>| {
                if Some(node) == own {
                    d = d.max(least);
                } else {
                    let e = ask.entry(node).or_insert(0);
                    *e = (*e).max(least);
                }
            };
            for s in g.neighbors_directed(x, Direction::Outgoing) {
                for (&node, &least) in &asks[s.index()] {
                    take(node, least, &mut ask);
                }
                if let Some(node) = batch_of(s) {
                    // Of the same node: the same batch may do.
                    let least = depth[s.index()] + usize::from(Some(node) != own);
                    take(node, least, &mut ask);
                }
            }
            if makes_a_key(&g[x].kind) {
                take(g[x].plan_node, 1, &mut ask);
            }
            depth[x.index()] = d;
            asks[x.index()] = ask;
        }
        depth
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
