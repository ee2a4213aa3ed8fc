//! Meaning: names, references, cycles and addresses, and the resolution of
//! defaults and groups into [`Inventory`].
//!
//! Every check records a [`Problem`] at a YAML path and carries on, so one
//! run reports everything wrong with a file.

use super::checks::{check_path_value, node_access, node_checks, Checker};
use super::limits::{thousands, MAX_NODES};
use super::model::{Defaults, InventoryFile};
use super::references::Names;
use super::spans::Path;
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
    if let Some(pb) = too_many_nodes(file, &root) {
        problems.push(pb);
        return None;
    }
    let mut ck = Checker { problems };
    let Collected {
        mut nodes,
        paths,
        jumps,
    } = collect_nodes(&mut ck, file, &root);
    let (jump_of, reverse, sftp_only, mesh, expiry) = {
        let names = Names::new(&mut ck, &nodes, &paths);
        let jump_of = names.jumps(&mut ck, &jumps);
        let (reverse, sftp_only) = names.reverse(&mut ck, file, &root);
        let mesh = names.mesh(&mut ck, file, &root, &paths, reverse.len());
        let expiry = super::expiry::resolve(file, &names.by_name, &mesh, ck.problems);
        (jump_of, reverse, sftp_only, mesh, expiry)
    };
    let certificates = super::certificates::resolve(file, nodes.len(), &mesh, ck.problems);

    if !ck.problems.is_empty() {
        return None;
    }
    let host_certs = super::host_certificates::resolve(
        file,
        &|name| nodes.iter().position(|n| n.name == name),
        ck.problems,
    );
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
        certificates,
        host_certs,
    };
    if inv.options.restrict_source {
        super::sources::check_derivable(&inv, &paths, ck.problems);
        if !ck.problems.is_empty() {
            return None;
        }
    }
    Some(inv)
}

/// More nodes than trustmesh manages: said once, and nothing else is
/// checked.
fn too_many_nodes(file: &InventoryFile, root: &Path) -> Option<Problem> {
    let count = 1 + file.bastions.len() + file.workers.len();
    if count <= MAX_NODES {
        return None;
    }
    let key = if file.workers.len() >= file.bastions.len() {
        "workers"
    } else {
        "bastions"
    };
    Some(problem(
        root.key(key),
        "trustmesh::inventory::too_many_nodes",
        format!(
            "this inventory has {} nodes; trustmesh manages at most {}",
            thousands(count),
            thousands(MAX_NODES)
        ),
        "too many nodes",
        Some("split the cluster into several inventories".into()),
    ))
}

/// The file's nodes with defaults merged in, in inventory order (the
/// manager first), the YAML path each came from, and the jump each names.
struct Collected<'f> {
    nodes: Vec<Node>,
    paths: Vec<Path>,
    jumps: Vec<(NodeId, Option<(&'f str, Path)>)>,
}

/// Checks the defaults, the cluster name and every node's own values, and
/// merges the defaults into each node.
fn collect_nodes<'f>(ck: &mut Checker, file: &'f InventoryFile, root: &Path) -> Collected<'f> {
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
    let mpath = root.key("manager");
    let mut nodes = vec![manager_node(ck, file, &mpath)];
    let mut paths = vec![mpath];
    let mut jumps: Vec<(NodeId, Option<(&str, Path)>)> = Vec::new();
    for (role, key, list) in [
        (Role::Bastion, "bastions", &file.bastions),
        (Role::Worker, "workers", &file.workers),
    ] {
        for (i, spec) in list.iter().enumerate() {
            let p = root.key(key).index(i);
            node_checks(ck, &p, spec);
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
    Collected {
        nodes,
        paths,
        jumps,
    }
}

/// The manager's values, checked, with the defaults merged in.
fn manager_node(ck: &mut Checker, file: &InventoryFile, mpath: &Path) -> Node {
    let d: &Defaults = &file.defaults;
    let m = &file.manager;
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
    let node = Node {
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
    };
    if let Some(list) = &m.source_addresses {
        super::sources::check_list(&mpath.key("source_addresses"), list, ck.problems);
    }
    node
}
