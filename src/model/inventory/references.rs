//! The references between nodes in [`super::validate::resolve`]: unique
//! names, jumps (and their cycles), reverse edges, groups and mesh entries,
//! each checked and resolved to node ids.

use petgraph::graph::DiGraph;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::checks::{role_word, unknown_ref, Checker};
use super::limits::{shown, thousands, MAX_EDGES, MAX_REPORTED};
use super::model::{InventoryFile, MeshEntry, Reverse, ReverseEntry};
use super::spans::Path;
use super::structure::did_you_mean;
use super::validate::problem;
use super::values::is_valid_name;
use super::{Inventory, Node, NodeId, Problem, Role};

/// Suggestions compare a name with every candidate: only made while the
/// problems found are still shown, so a file full of bad names stays
/// linear.
fn suggest(ck: &Checker) -> bool {
    ck.problems.len() < MAX_REPORTED
}

/// The nodes by name, for resolving what the file names.
pub(super) struct Names<'a> {
    nodes: &'a [Node],
    pub(super) by_name: HashMap<&'a str, NodeId>,
    /// The names a `jump` may give: every node but the manager.
    jumpable: Vec<&'a str>,
    workers: Vec<&'a str>,
}

impl<'a> Names<'a> {
    /// Indexes the nodes by name; a name used twice is a problem (the
    /// first node keeps it).
    pub(super) fn new(ck: &mut Checker, nodes: &'a [Node], paths: &[Path]) -> Names<'a> {
        let mut by_name: HashMap<&str, NodeId> = HashMap::new();
        for (id, n) in nodes.iter().enumerate() {
            if let Some(&first) = by_name.get(n.name.as_str()) {
                ck.problems
                    .push(name_used_twice(n, &paths[id], first, &paths[first]));
            } else {
                by_name.insert(n.name.as_str(), id);
            }
        }
        let names_of = |role: Option<Role>| -> Vec<&str> {
            nodes
                .iter()
                .filter(|n| role.is_none_or(|r| n.role == r))
                .map(|n| n.name.as_str())
                .collect()
        };
        let mut jumpable = names_of(None);
        jumpable.remove(0);
        let workers = names_of(Some(Role::Worker));
        Names {
            nodes,
            by_name,
            jumpable,
            workers,
        }
    }

    /// Each node's jump: it must name a bastion or worker, and never loop.
    pub(super) fn jumps(
        &self,
        ck: &mut Checker,
        jumps: &[(NodeId, Option<(&str, Path)>)],
    ) -> Vec<Option<NodeId>> {
        let nodes = self.nodes;
        let mut jump_graph = DiGraph::<NodeId, ()>::new();
        let gidx: Vec<_> = (0..nodes.len()).map(|i| jump_graph.add_node(i)).collect();
        let mut jump_paths: HashMap<NodeId, Path> = HashMap::new();
        let mut jump_of: Vec<Option<NodeId>> = vec![None; nodes.len()];
        for (id, jump) in jumps {
            let Some((target, p)) = jump else { continue };
            match self.by_name.get(target) {
                Some(&t) if t == Inventory::MANAGER => ck.problems.push(problem(
                    p.clone(),
                    "trustmesh::inventory::jump",
                    format!("`{}` jumps through the manager", shown(&nodes[*id].name)),
                    "the manager is local",
                    Some(
                        "the manager reaches nodes directly: remove `jump`, or name a bastion"
                            .into(),
                    ),
                )),
                Some(&t) => {
                    jump_of[*id] = Some(t);
                    jump_graph.add_edge(gidx[*id], gidx[t], ());
                    jump_paths.insert(*id, p.clone());
                }
                None => {
                    let hint = suggest(ck);
                    ck.problems.push(unknown_ref(
                        p.clone(),
                        target,
                        "bastion or worker",
                        &self.jumpable,
                        hint,
                    ))
                }
            }
        }
        for scc in petgraph::algo::tarjan_scc(&jump_graph) {
            let cyclic = scc.len() > 1 || jump_graph.contains_edge(scc[0], scc[0]);
            if !cyclic {
                continue;
            }
            let mut ids: Vec<NodeId> = scc.iter().map(|i| jump_graph[*i]).collect();
            ids.sort();
            ck.problems
                .push(jump_cycle(nodes, &ids, &jump_of, &jump_paths));
        }
        jump_of
    }

    /// `name` as a worker: anything else is a problem at `p`.
    fn worker_ref(&self, ck: &mut Checker, p: Path, name: &str) -> Option<NodeId> {
        match self.by_name.get(name) {
            Some(&id) if self.nodes[id].role == Role::Worker => Some(id),
            Some(&id) => {
                ck.problems.push(problem(
                    p,
                    "trustmesh::inventory::not_a_worker",
                    format!(
                        "`{}` is the {}, not a worker",
                        shown(name),
                        role_word(self.nodes[id].role)
                    ),
                    "not a worker",
                    Some("only workers can be named here".into()),
                ));
                None
            }
            None => {
                let hint = suggest(ck);
                ck.problems
                    .push(unknown_ref(p, name, "worker", &self.workers, hint));
                None
            }
        }
    }

    /// The workers with a reverse edge, and those of them whose edge is
    /// SFTP-only.
    pub(super) fn reverse(
        &self,
        ck: &mut Checker,
        file: &InventoryFile,
        root: &Path,
    ) -> (Vec<NodeId>, Vec<NodeId>) {
        let rpath = root.key("reverse");
        let mut reverse = Vec::new();
        let mut sftp_only = Vec::new();
        match &file.reverse {
            Reverse::All(_) => reverse.extend(
                self.nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.role == Role::Worker)
                    .map(|(i, _)| i),
            ),
            Reverse::Some(list) => {
                let mut seen = HashSet::new();
                for (i, entry) in list.iter().enumerate() {
                    let p = match entry {
                        ReverseEntry::Name(_) => rpath.index(i),
                        ReverseEntry::Detailed(_) => rpath.index(i).key("worker"),
                    };
                    if let Some(id) = self.worker_ref(ck, p, entry.worker()) {
                        if seen.insert(id) {
                            reverse.push(id);
                        }
                        if entry.sftp_only() {
                            sftp_only.push(id);
                        }
                    }
                }
                // Named twice, once SFTP-only: the narrower edge wins.
                sftp_only.sort_unstable();
                sftp_only.dedup();
            }
        }
        if !reverse.is_empty() && self.nodes[0].address.is_none() {
            ck.problems.push(problem(
                root.key("manager"),
                "trustmesh::inventory::manager_address",
                "reverse edges need the manager's address".into(),
                "no `address` here",
                Some("add `address:` to `manager`: how workers reach the manager".into()),
            ));
        }
        (reverse, sftp_only)
    }

    /// The workers of each mesh entry, after the group names are checked.
    /// Past [`MAX_EDGES`] trust edges (the forward and `reverse` ones
    /// counted first), entries are checked but no longer expanded.
    pub(super) fn mesh(
        &self,
        ck: &mut Checker,
        file: &InventoryFile,
        root: &Path,
        paths: &[Path],
        reverse: usize,
    ) -> Vec<Vec<NodeId>> {
        let groups = self.groups(ck, paths);
        let mut budget = EdgeBudget {
            edges: (self.nodes.len() - 1).saturating_add(reverse),
            over: None,
            plain: file
                .certificates
                .as_ref()
                .map(|_| super::certificates::plain_nodes(file, self.nodes.len())),
        };
        let mut mesh = Vec::new();
        for (i, entry) in file.mesh.iter().enumerate() {
            let p = root.key("mesh").index(i);
            let members = match entry {
                MeshEntry::Names(names) => self.mesh_names(ck, &p, names),
                MeshEntry::Group(g) => groups.members(ck, &p, &g.group),
            };
            if let Some(m) = members {
                if budget.take(&m, &p) {
                    mesh.push(m);
                }
            }
        }
        if let Some(p) = budget.over {
            ck.problems.push(problem(
                p,
                "trustmesh::inventory::too_many_edges",
                format!(
                    "this inventory asks for {} trust edges; trustmesh plans at most {}",
                    thousands(budget.edges),
                    thousands(MAX_EDGES)
                ),
                "the edges pass the limit with this entry",
                Some("a mesh of n workers makes n × (n − 1) edges: mesh smaller groups, or split the cluster into several inventories".into()),
            ));
        }
        mesh
    }

    /// The workers of a `- [a, b, …]` mesh entry, each once.
    fn mesh_names(&self, ck: &mut Checker, p: &Path, names: &[String]) -> Option<Vec<NodeId>> {
        if names.len() < 2 {
            ck.problems.push(problem(
                p.clone(),
                "trustmesh::inventory::mesh_size",
                format!(
                    "a mesh entry needs two or more workers, this one has {}",
                    names.len()
                ),
                "fewer than two names",
                Some(
                    "list at least two workers, e.g. `- [node1, node2]`, or use `- group: NAME`"
                        .into(),
                ),
            ));
            return None;
        }
        let mut members = Vec::new();
        let mut seen = BTreeSet::new();
        for (j, name) in names.iter().enumerate() {
            if !seen.insert(name.as_str()) {
                ck.problems.push(problem(
                    p.index(j),
                    "trustmesh::inventory::mesh_repeat",
                    format!("`{}` appears twice in this mesh entry", shown(name)),
                    "repeated",
                    Some("name each worker once per entry".into()),
                ));
                continue;
            }
            if let Some(id) = self.worker_ref(ck, p.index(j), name) {
                members.push(id);
            }
        }
        Some(members)
    }

    /// The nodes' groups, their names checked.
    fn groups(&self, ck: &mut Checker, paths: &[Path]) -> Groups<'a> {
        let nodes = self.nodes;
        let mut groups: HashMap<&str, Vec<NodeId>> = HashMap::new();
        for (id, n) in nodes.iter().enumerate() {
            for (gi, g) in n.groups.iter().enumerate() {
                if !is_valid_name(g) {
                    ck.problems.push(problem(
                        paths[id].key("groups").index(gi),
                        "trustmesh::inventory::name",
                        format!("`{}` is not a valid group name", shown(g)),
                        "not a valid name",
                        Some("a group name holds letters, digits, `.`, `_` and `-`".into()),
                    ));
                }
                // Nodes come in order, so a repeat is always the last member.
                let members = groups.entry(g.as_str()).or_default();
                if members.last() != Some(&id) {
                    members.push(id);
                }
            }
        }
        let all_workers: Vec<NodeId> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.role == Role::Worker)
            .map(|(i, _)| i)
            .collect();
        // Each group's workers and the sorted group names, once: a file may
        // name the same big group in many entries.
        let workers: HashMap<&str, Vec<NodeId>> = groups
            .iter()
            .map(|(g, m)| {
                let w = m
                    .iter()
                    .copied()
                    .filter(|id| nodes[*id].role == Role::Worker)
                    .collect();
                (*g, w)
            })
            .collect();
        let mut known: Vec<&str> = groups.keys().copied().collect();
        known.sort();
        known.push("all");
        Groups {
            all_workers,
            workers,
            known,
        }
    }
}

/// The problem of a node whose name an earlier node (`first`) has.
fn name_used_twice(n: &Node, at: &Path, first: NodeId, first_at: &Path) -> Problem {
    let (code, message, help) = if first == Inventory::MANAGER {
        (
            "trustmesh::inventory::manager_name",
            format!(
                "`{}` is the manager's name; a {} cannot have it",
                shown(&n.name),
                role_word(n.role)
            ),
            "give this node its own name: the manager is always the local machine",
        )
    } else {
        (
            "trustmesh::inventory::duplicate_name",
            format!("the name `{}` is used twice", shown(&n.name)),
            "names are unique across the manager, bastions and workers: rename one of them",
        )
    };
    let mut pb = problem(
        at.key("name"),
        code,
        message,
        "used again here",
        Some(help.into()),
    );
    pb.extra
        .push((first_at.key("name"), "first used here".into()));
    pb
}

/// The problem of a jump cycle through `ids` (sorted), named from its first
/// node so that the message reads in order.
fn jump_cycle(
    nodes: &[Node],
    ids: &[NodeId],
    jump_of: &[Option<NodeId>],
    jump_paths: &HashMap<NodeId, Path>,
) -> Problem {
    // Walk the cycle from its first node so the message reads in order.
    let mut chain = vec![ids[0]];
    while let Some(next) = jump_of[*chain.last().unwrap_or(&ids[0])] {
        if next == chain[0] || chain.len() > ids.len() {
            break;
        }
        chain.push(next);
    }
    // A long cycle is named by its first steps, not in full.
    const SHOWN: usize = 8;
    let mut text: Vec<String> = chain
        .iter()
        .take(SHOWN)
        .chain(if chain.len() <= SHOWN {
            Some(&chain[0])
        } else {
            None
        })
        .map(|i| shown(&nodes[*i].name))
        .collect();
    if chain.len() > SHOWN {
        text.push(format!("… ({} nodes in all)", chain.len()));
    }
    let mut pb = problem(
        jump_paths[&ids[0]].clone(),
        "trustmesh::inventory::jump_cycle",
        format!("jump cycle: {}", text.join(" -> ")),
        "this jump leads back here",
        Some(
            "a node cannot be reached through itself: break the cycle by removing one `jump`"
                .into(),
        ),
    );
    for other in ids.iter().skip(1).take(SHOWN) {
        pb.extra
            .push((jump_paths[other].clone(), "part of the cycle".into()));
    }
    pb
}

/// The trust edges counted before any is made: forward and reverse, and
/// n × (n − 1) for a mesh entry of n workers (pairs repeated across entries
/// counted each time).
///
/// In certificate mode an entry costs what is written instead: one
/// `cert-authority` line per member in certificate mode, and a key line
/// for every edge from or to a member with `certificates: false`.
struct EdgeBudget {
    edges: usize,
    /// The entry that passed [`MAX_EDGES`].
    over: Option<Path>,
    /// Certificate mode: per node, `certificates: false`.
    plain: Option<Vec<bool>>,
}

impl EdgeBudget {
    /// What an entry of `members` costs (see the type's text).
    fn cost(&self, members: &[NodeId]) -> usize {
        let n = members.len();
        let Some(plain) = &self.plain else {
            return n.saturating_mul(n.saturating_sub(1));
        };
        let p = members.iter().filter(|&&m| plain[m]).count();
        let from_plain = p.saturating_mul(n.saturating_sub(1));
        let to_plain = (n - p).saturating_mul(p);
        (n - p).saturating_add(from_plain).saturating_add(to_plain)
    }

    /// Counts an entry of `members`: may it still be expanded?
    fn take(&mut self, members: &[NodeId], p: &Path) -> bool {
        self.edges = self.edges.saturating_add(self.cost(members));
        if self.edges > MAX_EDGES && self.over.is_none() {
            self.over = Some(p.clone());
        }
        self.over.is_none()
    }
}

/// The groups of the file's nodes, for `- group: NAME` mesh entries.
struct Groups<'a> {
    all_workers: Vec<NodeId>,
    /// Each group's workers.
    workers: HashMap<&'a str, Vec<NodeId>>,
    /// The group names, sorted, then `all`.
    known: Vec<&'a str>,
}

impl Groups<'_> {
    /// The workers of group `group` (`all`: every worker); an unknown
    /// group is a problem at `p`.
    fn members(&self, ck: &mut Checker, p: &Path, group: &str) -> Option<Vec<NodeId>> {
        let members = if group == "all" {
            Some(&self.all_workers)
        } else {
            self.workers.get(group)
        };
        if let Some(m) = members {
            return Some(m.clone());
        }
        let known = &self.known;
        let guess = if suggest(ck) {
            did_you_mean(group, known.iter().copied())
        } else {
            None
        };
        let help = match guess {
            Some(s) => format!("did you mean `{}`?", shown(s)),
            None if known.len() <= 8 => {
                format!("groups in this inventory: {}", known.join(", "))
            }
            None => {
                format!("name one of the {} groups of this inventory", known.len())
            }
        };
        ck.problems.push(problem(
            p.key("group"),
            "trustmesh::inventory::unknown_group",
            format!("no worker is in group `{}`", shown(group)),
            "unknown group",
            Some(help),
        ));
        None
    }
}
