//! Meaning: names, references, cycles and addresses, and the resolution of
//! defaults and groups into [`Inventory`].
//!
//! Every check records a [`Problem`] at a YAML path and carries on, so one
//! run reports everything wrong with a file.

use petgraph::graph::DiGraph;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::checks::{check_path_value, node_access, node_checks, role_word, unknown_ref, Checker};
use super::limits::{shown, thousands, MAX_EDGES, MAX_NODES, MAX_REPORTED};
use super::model::{Defaults, InventoryFile, MeshEntry, Reverse, ReverseEntry};
use super::spans::Path;
use super::structure::did_you_mean;
pub use super::values::{is_valid_address, is_valid_fingerprint, is_valid_name, is_valid_user};
use super::{Access, Inventory, KeyType, Node, NodeId, Os, Problem, Role};

pub(super) fn problem(
    path: Path,
    code: &'static str,
    message: String,
    label: &str,
    help: Option<String>,
) -> Problem {
    Problem {
        path,
        at_key: false,
        code,
        message,
        label: label.to_string(),
        help,
        extra: Vec::new(),
    }
}

/// Stage 3: check meaning and resolve into [`Inventory`].
pub fn resolve(file: &InventoryFile, problems: &mut Vec<Problem>) -> Option<Inventory> {
    let root = Path::root();
    let count = 1 + file.bastions.len() + file.workers.len();
    if count > MAX_NODES {
        let key = if file.workers.len() >= file.bastions.len() {
            "workers"
        } else {
            "bastions"
        };
        problems.push(problem(
            root.key(key),
            "trustmesh::inventory::too_many_nodes",
            format!(
                "this inventory has {} nodes; trustmesh manages at most {}",
                thousands(count),
                thousands(MAX_NODES)
            ),
            "too many nodes",
            Some("split the cluster into several inventories".into()),
        ));
        return None;
    }
    let mut ck = Checker { problems };
    let d: &Defaults = &file.defaults;
    let dpath = root.key("defaults");
    if let Some(u) = &d.user {
        ck.user(dpath.key("user"), u);
    }
    ck.port(dpath.key("port"), d.port);

    if let Some(c) = &file.cluster {
        ck.cluster(root.key("cluster"), c);
    }

    // Nodes, with the path each came from.
    let m = &file.manager;
    let mpath = root.key("manager");
    ck.name(mpath.key("name"), &m.name);
    if let Some(a) = &m.address {
        ck.address(mpath.key("address"), a);
    }
    if let Some(u) = &m.user {
        ck.user(mpath.key("user"), u);
    }
    ck.port(mpath.key("port"), m.port);
    if let Some(i) = &m.identity {
        check_path_value(&mpath.key("identity"), i, "identity", ck.problems);
    }
    if let Some(k) = &m.known_hosts {
        check_path_value(&mpath.key("known_hosts"), k, "known_hosts", ck.problems);
    }
    let mut nodes = vec![Node {
        name: m.name.clone(),
        role: Role::Manager,
        address: m.address.clone(),
        user: m.user.clone(),
        port: m.port.or(d.port).unwrap_or(22),
        os: m.os.or(d.os).unwrap_or(Os::Linux),
        access: Access::Shell,
        key_type: m.key_type.or(d.key_type).unwrap_or(KeyType::Ed25519),
        host_key: None,
        jump: None,
        groups: Vec::new(),
        identity: m.identity.clone(),
        known_hosts: m.known_hosts.clone(),
        source_addresses: m.source_addresses.clone().unwrap_or_default(),
    }];
    if let Some(list) = &m.source_addresses {
        super::sources::check_list(&mpath.key("source_addresses"), list, ck.problems);
    }
    let mut paths = vec![mpath.clone()];
    let mut jumps: Vec<(NodeId, Option<(&str, Path)>)> = Vec::new();
    for (role, key, list) in [
        (Role::Bastion, "bastions", &file.bastions),
        (Role::Worker, "workers", &file.workers),
    ] {
        for (i, spec) in list.iter().enumerate() {
            let p = root.key(key).index(i);
            node_checks(&mut ck, &p, spec);
            let id = nodes.len();
            let jump = match &spec.jump {
                Some(j) => Some((j.as_str(), p.key("jump"))),
                None => d
                    .jump
                    .as_deref()
                    .filter(|j| *j != spec.name)
                    .map(|j| (j, dpath.key("jump"))),
            };
            jumps.push((id, jump));
            nodes.push(Node {
                name: spec.name.clone(),
                role,
                address: Some(spec.address.clone()),
                user: spec.user.clone().or_else(|| d.user.clone()),
                port: spec.port.or(d.port).unwrap_or(22),
                os: spec.os.or(d.os).unwrap_or(Os::Linux),
                access: node_access(spec.os.or(d.os), spec.access.or(d.access)),
                key_type: spec.key_type.or(d.key_type).unwrap_or(KeyType::Ed25519),
                host_key: spec.host_key.clone(),
                jump: None,
                groups: spec.groups.clone(),
                identity: None,
                known_hosts: None,
                source_addresses: spec.source_addresses.clone().unwrap_or_default(),
            });
            if let Some(list) = &spec.source_addresses {
                super::sources::check_list(&p.key("source_addresses"), list, ck.problems);
            }
            paths.push(p);
        }
    }

    // Unique names.
    let mut by_name: HashMap<&str, NodeId> = HashMap::new();
    for (id, n) in nodes.iter().enumerate() {
        if let Some(&first) = by_name.get(n.name.as_str()) {
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
                paths[id].key("name"),
                code,
                message,
                "used again here",
                Some(help.into()),
            );
            pb.extra
                .push((paths[first].key("name"), "first used here".into()));
            ck.problems.push(pb);
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

    // Suggestions compare a name with every candidate: only made while
    // the problems found are still shown, so a file full of bad names stays
    // linear.
    let suggest = |ck: &Checker| ck.problems.len() < MAX_REPORTED;
    let jumpable = &names_of(None)[1..];

    // Jumps: they must name a bastion or worker, and never loop.
    let mut jump_graph = DiGraph::<NodeId, ()>::new();
    let gidx: Vec<_> = (0..nodes.len()).map(|i| jump_graph.add_node(i)).collect();
    let mut jump_paths: HashMap<NodeId, Path> = HashMap::new();
    let mut jump_of: Vec<Option<NodeId>> = vec![None; nodes.len()];
    for (id, jump) in &jumps {
        let Some((target, p)) = jump else { continue };
        match by_name.get(target) {
            Some(&t) if t == Inventory::MANAGER => ck.problems.push(problem(
                p.clone(),
                "trustmesh::inventory::jump",
                format!("`{}` jumps through the manager", shown(&nodes[*id].name)),
                "the manager is local",
                Some("the manager reaches nodes directly: remove `jump`, or name a bastion".into()),
            )),
            Some(&t) => {
                jump_of[*id] = Some(t);
                jump_graph.add_edge(gidx[*id], gidx[t], ());
                jump_paths.insert(*id, p.clone());
            }
            None => {
                let hint = suggest(&ck);
                ck.problems.push(unknown_ref(
                    p.clone(),
                    target,
                    "bastion or worker",
                    jumpable,
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
        ck.problems.push(pb);
    }

    let workers: Vec<&str> = names_of(Some(Role::Worker));
    let worker_ref = |ck: &mut Checker, p: Path, name: &str| -> Option<NodeId> {
        match by_name.get(name) {
            Some(&id) if nodes[id].role == Role::Worker => Some(id),
            Some(&id) => {
                ck.problems.push(problem(
                    p,
                    "trustmesh::inventory::not_a_worker",
                    format!(
                        "`{}` is the {}, not a worker",
                        shown(name),
                        role_word(nodes[id].role)
                    ),
                    "not a worker",
                    Some("only workers can be named here".into()),
                ));
                None
            }
            None => {
                let hint = suggest(ck);
                ck.problems
                    .push(unknown_ref(p, name, "worker", &workers, hint));
                None
            }
        }
    };

    // Reverse edges.
    let rpath = root.key("reverse");
    let mut reverse = Vec::new();
    let mut sftp_only = Vec::new();
    match &file.reverse {
        Reverse::All(_) => reverse.extend(
            nodes
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
                if let Some(id) = worker_ref(&mut ck, p, entry.worker()) {
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
    if !reverse.is_empty() && nodes[0].address.is_none() {
        ck.problems.push(problem(
            mpath.clone(),
            "trustmesh::inventory::manager_address",
            "reverse edges need the manager's address".into(),
            "no `address` here",
            Some("add `address:` to `manager`: how workers reach the manager".into()),
        ));
    }

    // Groups and mesh entries.
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
    let group_workers: HashMap<&str, Vec<NodeId>> = groups
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
    let mut known_groups: Vec<&str> = groups.keys().copied().collect();
    known_groups.sort();
    known_groups.push("all");
    // Trust edges are counted before any is made: forward and reverse, and
    // n * (n - 1) for a mesh entry of n workers (pairs repeated across
    // entries counted each time). Past the limit, entries are checked but
    // no longer expanded.
    let mut edges = (nodes.len() - 1).saturating_add(reverse.len());
    let mut over: Option<Path> = None;
    let mut count = |n: usize, p: &Path| -> bool {
        edges = edges.saturating_add(n.saturating_mul(n.saturating_sub(1)));
        if edges > MAX_EDGES && over.is_none() {
            over = Some(p.clone());
        }
        over.is_none()
    };
    let mut mesh = Vec::new();
    for (i, entry) in file.mesh.iter().enumerate() {
        let p = root.key("mesh").index(i);
        match entry {
            MeshEntry::Names(names) => {
                if names.len() < 2 {
                    ck.problems.push(problem(
                        p.clone(),
                        "trustmesh::inventory::mesh_size",
                        format!("a mesh entry needs two or more workers, this one has {}", names.len()),
                        "fewer than two names",
                        Some("list at least two workers, e.g. `- [node1, node2]`, or use `- group: NAME`".into()),
                    ));
                    continue;
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
                    if let Some(id) = worker_ref(&mut ck, p.index(j), name) {
                        members.push(id);
                    }
                }
                if count(members.len(), &p) {
                    mesh.push(members);
                }
            }
            MeshEntry::Group(g) => {
                let members = if g.group == "all" {
                    Some(&all_workers)
                } else {
                    group_workers.get(g.group.as_str())
                };
                match members {
                    Some(m) => {
                        if count(m.len(), &p) {
                            mesh.push(m.clone());
                        }
                    }
                    None => {
                        let known = &known_groups;
                        let guess = if suggest(&ck) {
                            did_you_mean(&g.group, known.iter().copied())
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
                            format!("no worker is in group `{}`", shown(&g.group)),
                            "unknown group",
                            Some(help),
                        ));
                    }
                }
            }
        }
    }

    if let Some(p) = over {
        ck.problems.push(problem(
            p,
            "trustmesh::inventory::too_many_edges",
            format!(
                "this inventory asks for {} trust edges; trustmesh plans at most {}",
                thousands(edges),
                thousands(MAX_EDGES)
            ),
            "the edges pass the limit with this entry",
            Some("a mesh of n workers makes n × (n − 1) edges: mesh smaller groups, or split the cluster into several inventories".into()),
        ));
    }

    let expiry = super::expiry::resolve(file, &by_name, &mesh, ck.problems);
    if !ck.problems.is_empty() {
        return None;
    }
    for (n, j) in nodes.iter_mut().zip(jump_of) {
        n.jump = j;
    }
    let inv = Inventory {
        cluster_named: file.cluster.is_some(),
        warnings: Vec::new(),
        cluster: file
            .cluster
            .clone()
            .unwrap_or_else(|| file.manager.name.clone()),
        nodes,
        reverse,
        sftp_only,
        mesh,
        options: file.options.clone(),
        expiry,
    };
    if inv.options.restrict_source {
        super::sources::check_derivable(&inv, &paths, ck.problems);
        if !ck.problems.is_empty() {
            return None;
        }
    }
    Some(inv)
}
