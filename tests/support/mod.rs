//! In-memory live state for planner tests and benchmarks: fake accounts, and
//! a simulator that applies a plan to them the way `apply` would.
#![allow(dead_code)]

use trustmesh::model::inventory::{Inventory, NodeId};
use trustmesh::model::state::{FileKind, FileStat, LiveAccount, LiveFile};
use trustmesh::plan::{Change, LiveState, NodeFiles, NodeState, Plan};

pub const UID: u32 = 1000;

/// The plan of `live` for every node in scope.
pub fn run(inv: &Inventory, live: &LiveState) -> Plan {
    trustmesh::plan::plan(
        inv,
        &trustmesh::TrustGraph::build(inv),
        live,
        &trustmesh::plan::PlanScope::default(),
    )
}

/// A converged cluster, as trustmesh leaves it: a fresh cluster applied
/// (simulated) until its plan is empty, at most three rounds (keys come
/// first).
pub fn converged(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for _ in 0..3 {
        let p = run(inv, &live);
        if p.is_empty() {
            return live;
        }
        live = simulate_apply(inv, &p, &live);
    }
    let again = run(inv, &live);
    assert!(again.is_empty(), "not converged:\n{}", text(&again));
    live
}

/// The account of node `id`, to change what the planner sees.
pub fn account_at(live: &mut LiveState, id: NodeId) -> &mut LiveAccount {
    match &mut live.nodes[id] {
        NodeState::Read { account, .. } => account,
        _ => panic!("node {id} was not read"),
    }
}

/// The account of the node named `node`.
pub fn account_of<'a>(live: &'a mut LiveState, inv: &Inventory, node: &str) -> &'a mut LiveAccount {
    let id = inv.find(node).unwrap_or_else(|| panic!("no node {node}"));
    account_at(live, id)
}

/// The plan of the node named `node`.
pub fn node_plan<'p>(p: &'p Plan, node: &str) -> &'p trustmesh::plan::NodePlan {
    p.nodes
        .iter()
        .find(|n| n.node == node)
        .unwrap_or_else(|| panic!("no {node} in the plan"))
}

/// A plan as `trustmesh plan` prints it, without colour.
pub fn text(p: &Plan) -> String {
    let mut out = Vec::new();
    trustmesh::output::render_text(p, trustmesh::output::PlanTextOptions::default(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// A deterministic fake key blob for `who` (43-char-ish, starts like a real one).
pub fn fake_key(who: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in who.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    // 25 + 43 characters, like a real ed25519 blob.
    format!(
        "AAAAC3NzaC1lZDI1NTE5AAAAI{:016x}{:016x}{:011x}",
        h,
        h.rotate_left(17),
        h >> 20
    )
}

pub fn stat(kind: FileKind, mode: u32) -> FileStat {
    FileStat {
        kind,
        mode,
        uid: UID,
        gid: UID,
    }
}

pub fn file(name: &str, mode: u32, content: &str) -> LiveFile {
    LiveFile {
        name: name.into(),
        stat: Some(stat(FileKind::File, mode)),
        content: Some(content.as_bytes().to_vec()),
        unreadable: false,
    }
}

pub fn missing(name: &str) -> LiveFile {
    LiveFile {
        name: name.into(),
        stat: None,
        content: None,
        unreadable: false,
    }
}

/// A fresh account: home 0755, no ~/.ssh, one ed25519 host key (reported
/// by the account, and proven by its sshd).
pub fn fresh_account(inv: &Inventory, id: NodeId) -> LiveAccount {
    let node = &inv.nodes[id];
    let files = NodeFiles::of(inv, id);
    let (read, stat_only) = files.probe_names();
    LiveAccount {
        user: node.user.clone().unwrap_or_else(|| "alice".into()),
        uid: UID,
        gid: UID,
        home: format!("/home/{}", node.name),
        hostname: node.name.clone(),
        client_address: None,
        home_stat: Some(stat(FileKind::Dir, 0o755)),
        ssh_dir: None,
        files: read
            .iter()
            .chain(stat_only.iter())
            .map(|n| missing(n))
            .collect(),
        leftovers: Vec::new(),
        privilege: None,
        windows_admin: false,
        windows_acl: None,
        host_keys: vec![format!(
            "ssh-ed25519 {} root@{}",
            fake_key(&format!("host-{}", node.name)),
            node.name
        )],
        // What the node's sshd proved to trustmesh's connection.
        proven_host_keys: vec![format!(
            "ssh-ed25519 {}",
            fake_key(&format!("host-{}", node.name))
        )],
    }
}

/// Give an account a key pair (private 0600, public with a comment).
pub fn with_key(inv: &Inventory, id: NodeId, acc: &mut LiveAccount) {
    let files = NodeFiles::of(inv, id);
    set_file(acc, &files.key, 0o600, "PRIVATE (never read)");
    let pubtext = format!(
        "ssh-ed25519 {} trustmesh:{}\n",
        fake_key(&inv.nodes[id].name),
        inv.nodes[id].name
    );
    set_file(acc, &files.public_key, 0o644, &pubtext);
    if acc.ssh_dir.is_none() {
        acc.ssh_dir = Some(stat(FileKind::Dir, 0o700));
    }
}

pub fn set_file(acc: &mut LiveAccount, name: &str, mode: u32, content: &str) {
    let f = file(name, mode, content);
    match acc.files.iter_mut().find(|x| x.name == name) {
        Some(x) => *x = f,
        None => acc.files.push(f),
    }
}

pub fn content<'a>(acc: &'a LiveAccount, name: &str) -> &'a str {
    acc.file(name)
        .and_then(|f| f.content.as_deref())
        .map(|c| std::str::from_utf8(c).unwrap())
        .unwrap_or("")
}

/// A cluster where only the manager has a key pair.
pub fn fresh_cluster(inv: &Inventory) -> LiveState {
    let mut nodes: Vec<NodeState> = (0..inv.nodes.len())
        .map(|id| NodeState::Read {
            account: fresh_account(inv, id),
            access: Default::default(),
        })
        .collect();
    if let NodeState::Read { account, .. } = &mut nodes[0] {
        with_key(inv, 0, account);
    }
    LiveState { nodes }
}

/// Apply a plan to live state in memory, the way `apply` does on hosts:
/// generate keys, then edit files line by line, then fix modes.
pub fn simulate_apply(inv: &Inventory, plan: &Plan, live: &LiveState) -> LiveState {
    let mut live = live.clone();
    let ids: std::collections::HashMap<&str, NodeId> = inv
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    // Keys first: every file edit may need one.
    for np in &plan.nodes {
        let id = ids[np.node.as_str()];
        for c in &np.changes {
            let NodeState::Read { account, .. } = &mut live.nodes[id] else {
                continue;
            };
            match c {
                Change::GenerateKey { .. } => with_key(inv, id, account),
                // The new key ends up in place (proofs hold in memory).
                Change::RotateKey { .. } => {
                    let files = NodeFiles::of(inv, id);
                    let name = &inv.nodes[id].name;
                    let text = format!(
                        "ssh-ed25519 {} {}\n",
                        fake_key(&format!("{name}-rotated")),
                        inv.marker(name)
                    );
                    set_file(account, &files.public_key, 0o644, &text);
                }
                _ => {}
            }
        }
    }
    let pubkey = |live: &LiveState, name: &str| -> (String, String) {
        let id = ids[name];
        let files = NodeFiles::of(inv, id);
        let NodeState::Read { account, .. } = &live.nodes[id] else {
            panic!("{name} not read")
        };
        let text = content(account, &files.public_key);
        let mut it = text.split_whitespace();
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        )
    };
    let snapshot = live.clone();
    for np in &plan.nodes {
        let id = ids[np.node.as_str()];
        let NodeState::Read { account, .. } = &mut live.nodes[id] else {
            continue;
        };
        let files = NodeFiles::of(inv, id).for_windows_admin(account.windows_admin);
        for c in &np.changes {
            match c {
                Change::CreateDir { path, .. } if path == "~/.ssh" => {
                    account.ssh_dir = Some(stat(FileKind::Dir, 0o700))
                }
                Change::CreateDir { path, .. } => {
                    let name = path.trim_start_matches("~/.ssh/").to_string();
                    account.files.retain(|f| f.name != name);
                    account.files.push(LiveFile {
                        name,
                        stat: Some(stat(FileKind::Dir, 0o700)),
                        content: None,
                        unreadable: false,
                    });
                }
                Change::WriteBlock(b) => {
                    let name = b.path.trim_start_matches("~/.ssh/").to_string();
                    let old = account
                        .file(&name)
                        .and_then(|f| f.content.as_deref())
                        .map(|c| String::from_utf8(c.to_vec()).unwrap());
                    match b.render(old.as_deref()).unwrap() {
                        Some(new) => set_file(account, &name, b.create_mode(), &new),
                        None => account.files.retain(|f| f.name != name),
                    }
                }
                Change::Mode { path, to, .. } => {
                    if path == "~/.ssh" {
                        account.ssh_dir.as_mut().unwrap().mode = *to;
                    } else {
                        let name = path.trim_start_matches("~/.ssh/");
                        let f = account.files.iter_mut().find(|f| f.name == name).unwrap();
                        f.stat.as_mut().unwrap().mode = *to;
                    }
                }
                Change::Owner { .. }
                | Change::GenerateKey { .. }
                | Change::RotateKey { .. }
                | Change::SetAcl { .. } => {}
                Change::RemoveLeftover { path } => {
                    let name = path.trim_start_matches("~/.ssh/");
                    account.leftovers.retain(|l| l != name);
                }
                Change::EditFile(e) => {
                    let name = if e.path.ends_with("authorized_keys") {
                        files.authorized_keys.clone()
                    } else {
                        files.known_hosts.clone()
                    };
                    let old = content(account, &name).to_string();
                    let key_of = |node: &str| Some(pubkey(&snapshot, node));
                    let new = e.render(&old, &key_of).content.unwrap();
                    let mode = account
                        .file(&name)
                        .and_then(|f| f.stat.as_ref())
                        .map(|s| s.mode)
                        .unwrap_or(0o600);
                    set_file(account, &name, mode, &new);
                }
            }
        }
    }
    live
}
