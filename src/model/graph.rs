//! The trust graph: which account must be able to log in to which.
//!
//! Nodes are the inventory's accounts (manager, bastions, workers). A
//! directed edge `A -> B` means "A can run `ssh B true` with BatchMode";
//! its kind says why the inventory wants it. Jump dependencies ("B is reached
//! through J") are kept beside the trust edges: they order work (a bastion
//! is reached before what sits behind it) but grant no trust themselves.
//!
//! The graph is built from a validated [`Inventory`], so every name resolves;
//! edges come out in a deterministic order (kind, then source and target in
//! inventory order), which keeps rendered output and plans stable.

use std::fmt::Write as _;
use std::io::{self, Write};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use std::time::SystemTime;

use crate::model::inventory::expiry::EdgeTime;
use crate::model::inventory::{Inventory, NodeId, Role};

/// Why an edge exists.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// manager -> worker or bastion (implicit; also how trustmesh reaches it).
    Forward,
    /// worker -> manager.
    Reverse,
    /// worker -> worker, one of the two directions of a mesh pair.
    Mesh,
}

impl EdgeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Forward => "forward",
            EdgeKind::Reverse => "reverse",
            EdgeKind::Mesh => "mesh",
        }
    }
}

/// A directed trust edge between two inventory nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Edge {
    pub kind: EdgeKind,
    pub source: NodeId,
    pub target: NodeId,
}

/// The trust graph of an inventory.
///
/// Forward and reverse edges are petgraph edges. A mesh entry is kept as
/// what it is, a clique of workers: its n × (n − 1) directed edges are
/// walked on demand, never stored, so a group of 10,000 costs 10,000
/// entries of memory, and a planner that needs only "which groups is this
/// node in" ([`TrustGraph::mesh_entries`]) never walks them.
#[derive(Debug, Clone)]
pub struct TrustGraph {
    graph: DiGraph<NodeId, EdgeKind, u32>,
    /// Each mesh entry's workers (in [`Inventory::mesh`] order), sorted,
    /// each once.
    cliques: Vec<Vec<NodeId>>,
    /// Per node: the mesh entries it is in, ascending.
    member_of: Vec<Vec<usize>>,
    /// Directed mesh edges, each pair in two entries counted once.
    mesh_edges: usize,
    /// (node, the node it is reached through)
    jumps: Vec<(NodeId, NodeId)>,
}

impl TrustGraph {
    /// Build the graph of a validated inventory.
    pub fn build(inv: &Inventory) -> TrustGraph {
        let mut graph =
            DiGraph::with_capacity(inv.nodes.len(), inv.nodes.len() + inv.reverse.len());
        for id in 0..inv.nodes.len() {
            graph.add_node(id);
        }
        let ix = |id: NodeId| NodeIndex::new(id);
        for (id, n) in inv.nodes.iter().enumerate() {
            if n.role != Role::Manager {
                graph.add_edge(ix(Inventory::MANAGER), ix(id), EdgeKind::Forward);
            }
        }
        for &w in &inv.reverse {
            graph.add_edge(ix(w), ix(Inventory::MANAGER), EdgeKind::Reverse);
        }
        let mut member_of = vec![Vec::new(); inv.nodes.len()];
        let cliques: Vec<Vec<NodeId>> = inv
            .mesh
            .iter()
            .enumerate()
            .map(|(i, members)| {
                let mut m = members.clone();
                m.sort_unstable();
                m.dedup();
                for &w in &m {
                    member_of[w].push(i);
                }
                m
            })
            .collect();
        let jumps = inv
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(id, n)| n.jump.map(|j| (id, j)))
            .collect();
        let mut g = TrustGraph {
            graph,
            cliques,
            member_of,
            mesh_edges: 0,
            jumps,
        };
        // A node in one entry has its size − 1 peers; only a node in
        // several has its peers listed (and repeats dropped) to count them.
        g.mesh_edges = (0..inv.nodes.len())
            .map(|id| match g.member_of[id].as_slice() {
                [] => 0,
                [one] => g.cliques[*one].len().saturating_sub(1),
                _ => g.mesh_peers(id).len(),
            })
            .sum();
        g
    }

    /// The mesh entries `node` is in (indices into [`Inventory::mesh`]),
    /// ascending.
    pub fn mesh_entries(&self, node: NodeId) -> &[usize] {
        self.member_of.get(node).map_or(&[], Vec::as_slice)
    }

    /// The workers of mesh entry `entry`, sorted, each once.
    pub fn mesh_members(&self, entry: usize) -> &[NodeId] {
        &self.cliques[entry]
    }

    /// The nodes `node` shares a mesh entry with, sorted, each once.
    fn mesh_peers(&self, node: NodeId) -> Vec<NodeId> {
        let mut peers: Vec<NodeId> = self
            .mesh_entries(node)
            .iter()
            .flat_map(|&i| self.cliques[i].iter().copied())
            .filter(|&p| p != node)
            .collect();
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// The mesh neighbours of `node`, walked lazily when it is in one
    /// entry (a caller that stops early pays for what it looked at).
    fn mesh_neighbours(&self, node: NodeId) -> Box<dyn Iterator<Item = NodeId> + '_> {
        match self.mesh_entries(node) {
            [] => Box::new(std::iter::empty()),
            [one] => Box::new(
                self.cliques[*one]
                    .iter()
                    .copied()
                    .filter(move |&p| p != node),
            ),
            _ => Box::new(self.mesh_peers(node).into_iter()),
        }
    }

    /// Every trust edge, sorted by kind, then source, then target.
    pub fn edges(&self) -> Vec<Edge> {
        let mut edges: Vec<Edge> = self
            .graph
            .edge_references()
            .map(|e| Edge {
                kind: *e.weight(),
                source: e.source().index(),
                target: e.target().index(),
            })
            .collect();
        edges.reserve(self.mesh_edges);
        for source in 0..self.member_of.len() {
            edges.extend(self.mesh_neighbours(source).map(|target| Edge {
                kind: EdgeKind::Mesh,
                source,
                target,
            }));
        }
        edges.sort_unstable();
        edges
    }

    pub fn edge_count(&self) -> usize {
        self.graph.edge_count() + self.mesh_edges
    }

    /// The forward and reverse edges of `node` (`outgoing`: leaving it,
    /// else arriving), without walking its mesh entries.
    pub fn direct(&self, node: NodeId, outgoing: bool) -> impl Iterator<Item = Edge> + '_ {
        let dir = if outgoing {
            petgraph::Direction::Outgoing
        } else {
            petgraph::Direction::Incoming
        };
        self.graph
            .edges_directed(NodeIndex::new(node), dir)
            .map(|e| Edge {
                kind: *e.weight(),
                source: e.source().index(),
                target: e.target().index(),
            })
    }

    /// Trust edges leaving `node` (what it must be able to log in to).
    pub fn outgoing(&self, node: NodeId) -> impl Iterator<Item = Edge> + '_ {
        self.direct(node, true)
            .chain(self.mesh_neighbours(node).map(move |target| Edge {
                kind: EdgeKind::Mesh,
                source: node,
                target,
            }))
    }

    /// Trust edges arriving at `node` (who must be able to log in to it).
    pub fn incoming(&self, node: NodeId) -> impl Iterator<Item = Edge> + '_ {
        self.direct(node, false)
            .chain(self.mesh_neighbours(node).map(move |source| Edge {
                kind: EdgeKind::Mesh,
                source,
                target: node,
            }))
    }

    /// (node, the node it is reached through), in inventory order.
    pub fn jumps(&self) -> &[(NodeId, NodeId)] {
        &self.jumps
    }

    /// The chain of nodes that must be reached before `node`, nearest
    /// first. Validation guarantees there is no cycle.
    pub fn jump_chain(&self, inv: &Inventory, node: NodeId) -> Vec<NodeId> {
        let mut chain = Vec::new();
        let mut cur = inv.nodes[node].jump;
        while let Some(j) = cur {
            if chain.contains(&j) || chain.len() > inv.nodes.len() {
                break;
            }
            chain.push(j);
            cur = inv.nodes[j].jump;
        }
        chain
    }
}

/// Output formats of `trustmesh graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

/// Render the graph into `out`, with no clock: an edge's `expires` time is
/// shown, never whether it has passed (see [`render_at`]).
pub fn render(
    inv: &Inventory,
    g: &TrustGraph,
    format: GraphFormat,
    out: &mut dyn Write,
) -> io::Result<()> {
    render_at(inv, g, format, None, out)
}

/// Render the graph into `out`, marking the edges that end within the
/// warning window (`expiring`) or have ended (`expired`) at `now`.
pub fn render_at(
    inv: &Inventory,
    g: &TrustGraph,
    format: GraphFormat,
    now: Option<SystemTime>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let text = match format {
        GraphFormat::Text => render_text(inv, g, now),
        GraphFormat::Dot => render_dot(inv, g, now),
        GraphFormat::Mermaid => render_mermaid(inv, g, now),
    };
    out.write_all(text.as_bytes())
}

/// `, expiring` or `, expired` after an edge's policy, at `now`.
fn time_mark(inv: &Inventory, e: &Edge, now: Option<SystemTime>) -> &'static str {
    match inv.edge_time(e.source, e.target, now) {
        Some(EdgeTime::Expired(_)) => ", expired",
        Some(EdgeTime::Expiring(_)) => ", expiring",
        _ => "",
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Manager => "manager",
        Role::Bastion => "bastion",
        Role::Worker => "worker",
    }
}

fn render_text(inv: &Inventory, g: &TrustGraph, now: Option<SystemTime>) -> String {
    let mut s = String::new();
    let width = inv.nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let _ = writeln!(s, "nodes ({}):", inv.nodes.len());
    for n in &inv.nodes {
        let mut target = n.display_target();
        if n.port != 22 && n.role != Role::Manager {
            let _ = write!(target, " port {}", n.port);
        }
        let via = n
            .jump
            .map(|j| format!(" via {}", inv.nodes[j].name))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<width$}  {:<7}  {target}{via}",
            n.name,
            role_str(n.role)
        );
    }
    let edges = g.edges();
    let _ = writeln!(s, "edges ({}):", edges.len());
    let pair_width = edges
        .iter()
        .map(|e| inv.nodes[e.source].name.len() + inv.nodes[e.target].name.len() + 4)
        .max()
        .unwrap_or(0);
    for e in &edges {
        let pair = format!(
            "{} -> {}",
            inv.nodes[e.source].name, inv.nodes[e.target].name
        );
        let _ = writeln!(
            s,
            "  {pair:<pair_width$}  {:<7}  {}{}",
            e.kind.as_str(),
            inv.policy(e.source, e.target).describe(),
            time_mark(inv, e, now)
        );
    }
    s
}

/// An edge's kind, and its policy when it is not a full edge from anywhere
/// (`reverse` + `sep` + `sftp-only, from 192.0.2.5`).
fn edge_label(inv: &Inventory, e: &Edge, sep: &str, now: Option<SystemTime>) -> String {
    let policy = inv.policy(e.source, e.target);
    if policy.is_open() {
        e.kind.as_str().to_string()
    } else {
        format!(
            "{}{sep}{}{}",
            e.kind.as_str(),
            policy.describe(),
            time_mark(inv, e, now)
        )
    }
}

/// A DOT identifier: always quoted, so any valid name is safe.
fn dot_id(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn render_dot(inv: &Inventory, g: &TrustGraph, now: Option<SystemTime>) -> String {
    let mut s = String::from(
        "digraph trustmesh {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    for n in &inv.nodes {
        let shape = match n.role {
            Role::Manager => "doubleoctagon",
            Role::Bastion => "diamond",
            Role::Worker => "box",
        };
        let _ = writeln!(
            s,
            "  {} [label={}, shape={shape}];",
            dot_id(&n.name),
            dot_id(&format!("{}\\n{}", n.name, n.display_target()))
        );
    }
    for e in g.edges() {
        let style = match e.kind {
            EdgeKind::Forward => "color=black",
            EdgeKind::Reverse => "color=blue, style=dashed",
            EdgeKind::Mesh => "color=darkgreen",
        };
        let _ = writeln!(
            s,
            "  {} -> {} [label={}, {style}];",
            dot_id(&inv.nodes[e.source].name),
            dot_id(&inv.nodes[e.target].name),
            dot_id(&edge_label(inv, &e, ", ", now))
        );
    }
    for &(n, via) in g.jumps() {
        let _ = writeln!(
            s,
            "  {} -> {} [label=\"jump\", style=dotted, arrowhead=none];",
            dot_id(&inv.nodes[via].name),
            dot_id(&inv.nodes[n].name)
        );
    }
    s.push_str("}\n");
    s
}

/// Mermaid node ids must be plain words: index-based ids, names as labels.
fn render_mermaid(inv: &Inventory, g: &TrustGraph, now: Option<SystemTime>) -> String {
    let mut s = String::from("flowchart LR\n");
    for (i, n) in inv.nodes.iter().enumerate() {
        let (open, close) = match n.role {
            Role::Manager => ("[[", "]]"),
            Role::Bastion => ("{{", "}}"),
            Role::Worker => ("[", "]"),
        };
        let _ = writeln!(s, "  n{i}{open}\"{}\"{close}", n.name);
    }
    for e in g.edges() {
        let arrow = match e.kind {
            EdgeKind::Forward => "-->",
            EdgeKind::Reverse => "-.->",
            EdgeKind::Mesh => "==>",
        };
        let _ = writeln!(
            s,
            "  n{} {arrow}|{}| n{}",
            e.source,
            edge_label(inv, &e, ", ", now),
            e.target
        );
    }
    for &(n, via) in g.jumps() {
        let _ = writeln!(s, "  n{via} ---|jump| n{n}");
    }
    s
}
