//! In-memory live state for planner tests and benchmarks: fake accounts,
//! and the real apply run on them ([`apply_on_memory`]).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use trustmesh::apply::ApplyOptions;
use trustmesh::model::inventory::{Inventory, NodeId};
use trustmesh::model::state::{FileKind, FileStat, LiveAccount, LiveFile};
use trustmesh::node::memory::{Keygen, MemoryDoor, SignError};
use trustmesh::node::{Door, DoorError, Op, Outcomes, Queued};
use trustmesh::plan::{LiveState, NodeFiles, NodeState, Plan};
use trustmesh::transport::scripts::Outcome;

pub const UID: u32 = 1000;

/// A small cluster: a manager, two workers, a reverse edge and a mesh.
pub const LAB: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: w1, address: 10.0.0.11 }
  - { name: w2, address: 10.0.0.12 }
reverse: [w1]
mesh:
  - [w1, w2]
";

/// The inventory of `text`, which must be valid.
pub fn inv(text: &str) -> Inventory {
    Inventory::from_str_named("inventory.yaml", text).unwrap()
}

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
/// (in memory) until its plan is empty, at most three rounds (keys come
/// first).
pub fn converged(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for _ in 0..3 {
        let p = run(inv, &live);
        if p.is_empty() {
            return live;
        }
        live = apply_on_memory(inv, &p, &live);
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

/// A real key pair made by ssh-keygen in `dir`: (private path, public
/// line `type base64`).
pub fn real_key(dir: &std::path::Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut f = public.split_whitespace();
    let line = format!("{} {}", f.next().unwrap(), f.next().unwrap());
    (path.display().to_string(), line)
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
        sshd_version: None,
        ca_agent: None,
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

/// Apply a plan to live state in memory: the library's own apply
/// ([`trustmesh::apply::apply_on`]) on an in-memory door per node read
/// ([`MemoryDoor`], seeded with its account), then every node the plan
/// changes read back through its door. Keys generated are `with_key`'s
/// (`fake_key(node)`); a rotated one is `fake_key("<node>-rotated")`, its
/// comment the node's marker. Every action must succeed.
pub fn apply_on_memory(inv: &Inventory, plan: &Plan, live: &LiveState) -> LiveState {
    let doors = memory_doors(inv, live, |_, d| d);
    let (report, rt) = apply_with(inv, plan, &doors);
    assert!(!report.failed(), "apply in memory: {report:#?}");
    let mut after = live.clone();
    for np in plan.nodes.iter().filter(|n| !n.changes.is_empty()) {
        if !matches!(np.status, trustmesh::plan::NodeStatus::Planned) {
            continue;
        }
        let id = inv.find(&np.node).unwrap();
        let (Some(door), NodeState::Read { account, .. }) = (&doors[id], &mut after.nodes[id])
        else {
            continue;
        };
        *account = rt
            .block_on(door.read_state(&NodeFiles::of(inv, id)))
            .unwrap_or_else(|e| panic!("read back: {e}"));
    }
    after
}

/// A memory door per node read, seeded with its account (its keys
/// generated as [`apply_on_memory`] says), each passed through `adjust`
/// (a failing `sshd -t`...).
pub fn memory_doors(
    inv: &Inventory,
    live: &LiveState,
    adjust: impl Fn(&str, MemoryDoor) -> MemoryDoor,
) -> Vec<Option<MemoryDoor>> {
    live.nodes
        .iter()
        .enumerate()
        .map(|(id, s)| match s {
            NodeState::Read { account, .. } => {
                let name = &inv.nodes[id].name;
                let door = MemoryDoor::new(name, account).with_keygen(keygen(inv, id));
                let door = if id == Inventory::MANAGER {
                    door.with_signer(Box::new(sign))
                } else {
                    door
                };
                Some(adjust(name, door))
            }
            _ => None,
        })
        .collect()
}

/// The library's apply of `plan` on `doors`: its report, and the runtime
/// it ran on (to read the doors back).
pub fn apply_with(
    inv: &Inventory,
    plan: &Plan,
    doors: &[Option<MemoryDoor>],
) -> (trustmesh::apply::ApplyReport, tokio::runtime::Runtime) {
    let refs = as_doors(doors);
    // A rotation's proof from the manager writes its ssh config there.
    let run_dir = tempfile::tempdir().unwrap();
    let opts = memory_options(Some(run_dir.path().to_path_buf()));
    let rt = runtime();
    let report = rt.block_on(trustmesh::apply::apply_on(
        inv,
        &trustmesh::TrustGraph::build(inv),
        plan,
        &refs,
        &opts,
    ));
    (report, rt)
}

/// Doors as apply takes them.
pub fn as_doors<D: Door>(doors: &[Option<D>]) -> Vec<Option<&dyn Door>> {
    doors
        .iter()
        .map(|d| d.as_ref().map(|d| d as &dyn Door))
        .collect()
}

/// Apply's options on doors in memory: 8 at once, 30 s each, `run_dir`
/// for a rotation's proof from the manager.
pub fn memory_options(run_dir: Option<std::path::PathBuf>) -> ApplyOptions {
    ApplyOptions {
        concurrency: 8,
        timeout: Duration::from_secs(30),
        prove: Default::default(),
        run_dir,
        known_hosts: Vec::new(),
        pins: Vec::new(),
    }
}

/// A runtime for one test's apply.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The keys node `id` generates in memory: its own key is `with_key`'s,
/// any other (a rotation's new key) `fake_key("<node>-rotated")`.
fn keygen(inv: &Inventory, id: NodeId) -> Box<Keygen> {
    let name = inv.nodes[id].name.clone();
    let key = trustmesh::plan::display_path(&NodeFiles::of(inv, id).key);
    let ca = inv.certificates.as_ref().map(|c| c.ca.clone());
    Box::new(move |path: &str, _: &str, marker: &str| {
        if Some(path) == ca.as_deref() {
            format!("{} {marker}", test_ca_public())
        } else if path == key {
            format!("ssh-ed25519 {} trustmesh:{name}", fake_key(&name))
        } else {
            format!(
                "ssh-ed25519 {} {marker}",
                fake_key(&format!("{name}-rotated"))
            )
        }
    })
}

/// The user CA every in-memory manager makes (`certificates:`): a fixed
/// ed25519 key.
pub fn test_ca() -> ssh_key::PrivateKey {
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&[42; 32]);
    ssh_key::PrivateKey::new(ssh_key::private::KeypairData::Ed25519(pair), "").unwrap()
}

/// Its public key, `type base64`.
pub fn test_ca_public() -> String {
    let line = test_ca().public_key().to_openssh().unwrap();
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The in-memory manager's signing: a real certificate from [`test_ca`],
/// valid from five minutes before its serial (the plan's now, in seconds)
/// for the validity asked.
pub fn sign(req: &trustmesh::node::SignRequest) -> Result<String, SignError> {
    sign_with(&test_ca(), req)
}

/// The same signing with the CA `ca`.
pub fn sign_with(
    ca: &ssh_key::PrivateKey,
    req: &trustmesh::node::SignRequest,
) -> Result<String, SignError> {
    let why = |e: ssh_key::Error| SignError(e.to_string());
    let key = ssh_key::PublicKey::from_openssh(&req.public_key).map_err(why)?;
    let after = req.serial.saturating_sub(300);
    let mut b = ssh_key::certificate::Builder::new(
        req.serial.to_be_bytes().repeat(2),
        key.key_data().clone(),
        after,
        req.serial + req.validity,
    )
    .map_err(why)?;
    b.serial(req.serial).unwrap();
    b.cert_type(ssh_key::certificate::CertType::User).unwrap();
    b.key_id(req.key_id.clone()).unwrap();
    for p in &req.principals {
        b.valid_principal(p.clone()).unwrap();
    }
    let c = b.sign(ca).map_err(why)?;
    c.to_openssh().map_err(why)
}

/// 2026-12-05 00:00 UTC plus `days`: the fixed "now" of the tests of
/// `expires:` and certificates.
pub fn day(days: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_secs(1_796_428_800 + days * 86400)
}

/// The plan of `live` at `now`.
pub fn plan_at(inv: &Inventory, live: &LiveState, now: std::time::SystemTime) -> Plan {
    trustmesh::plan::plan(
        inv,
        &trustmesh::TrustGraph::build(inv),
        live,
        &trustmesh::plan::PlanScope {
            now: Some(now),
            ..Default::default()
        },
    )
}

/// Applied (on memory doors) at `now` until the plan is empty.
pub fn converge_at(inv: &Inventory, mut live: LiveState, now: std::time::SystemTime) -> LiveState {
    for _ in 0..4 {
        let p = plan_at(inv, &live, now);
        if p.is_empty() {
            return live;
        }
        live = apply_on_memory(inv, &p, &live);
    }
    let p = plan_at(inv, &live, now);
    assert!(p.is_empty(), "not converged:\n{}", text(&p));
    live
}

/// A memory door that logs what it is sent: `run NODE OP` for an
/// operation on its own, `list NODE: OP; OP` for a node's list.
pub struct Logged {
    pub door: MemoryDoor,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Each door wrapped in a [`Logged`] that logs into `log`.
pub fn logged(
    doors: Vec<Option<MemoryDoor>>,
    log: &Arc<Mutex<Vec<String>>>,
) -> Vec<Option<Logged>> {
    doors
        .into_iter()
        .map(|d| {
            d.map(|door| Logged {
                door,
                log: log.clone(),
            })
        })
        .collect()
}

pub fn op_name(op: &Op) -> String {
    match op {
        Op::Sign(s) => format!("sign {}", s.key_id),
        Op::Replace(w) => format!("replace {}", w.path.as_plan()),
        Op::WriteBlock(w) if w.remove => format!("remove {}", w.path.as_plan()),
        Op::WriteBlock(w) => format!("write {}", w.path.as_plan()),
        Op::Prove(p) => format!("prove {}", p.target),
        other => other.step().to_string(),
    }
}

impl Door for Logged {
    fn node(&self) -> &str {
        self.door.node()
    }

    fn read_state<'a>(
        &'a self,
        files: &'a NodeFiles,
    ) -> BoxFuture<'a, Result<LiveAccount, DoorError>> {
        self.door.read_state(files)
    }

    fn run<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Result<Outcome, DoorError>> {
        let line = format!("run {} {}", self.node(), op_name(op));
        self.log.lock().unwrap().push(line);
        self.door.run(op)
    }

    fn run_all<'a>(&'a self, list: &'a [Queued], files: &'a NodeFiles) -> BoxFuture<'a, Outcomes> {
        let ops: Vec<String> = list.iter().map(|q| op_name(&q.op)).collect();
        let line = format!("list {}: {}", self.node(), ops.join("; "));
        self.log.lock().unwrap().push(line);
        Box::pin(async move {
            let results = trustmesh::node::one_by_one(&self.door, list).await;
            let state = self.door.read_state(files).await;
            Outcomes { results, state }
        })
    }
}

/// The log of [`Logged`] doors, one `NODE OP` line per operation, in the
/// order they were sent.
pub fn each_op(log: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for l in log {
        if let Some((node, ops)) = l.strip_prefix("list ").and_then(|l| l.split_once(": ")) {
            out.extend(ops.split("; ").map(|op| format!("{node} {op}")));
        } else if let Some(l) = l.strip_prefix("run ") {
            out.push(l.to_string());
        }
    }
    out
}

/// `workers` workers in one mesh group, all with a reverse edge; with
/// `certs`, user and host certificates on.
pub fn one_group(workers: usize, certs: bool) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "version: 1\ncluster: lab\ndefaults: { user: bench }\nmanager: { name: m, address: 10.0.0.1 }\nworkers:\n",
    );
    for i in 0..workers {
        let _ = writeln!(
            s,
            "  - {{ name: w{i:05}, address: 10.{}.{}.{}, groups: [g] }}",
            1 + i / 65_536,
            (i / 256) % 256,
            i % 256
        );
    }
    s.push_str("reverse: all\nmesh:\n  - group: g\n");
    if certs {
        s.push_str(
            "certificates: { ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }\n\
             host_certificates: { ca: ~/.ssh/trustmesh_host_ca, validity: 8w, renew_before: 1w }\n",
        );
    }
    s
}

/// Every worker root, with sshd's drop-in folder included: each serves a
/// host certificate.
pub fn rooted(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for id in 1..inv.nodes.len() {
        let a = account_at(&mut live, id);
        a.privilege = Some(trustmesh::model::state::Privilege::Root);
        set_file(
            a,
            "/etc/ssh/sshd_config",
            0o644,
            "Include /etc/ssh/sshd_config.d/*.conf\n",
        );
        sshd_dirs(a);
    }
    live
}

/// sshd's and ssh's drop-in folders (`/etc/ssh/*_config.d`), 0755.
pub fn sshd_dirs(a: &mut LiveAccount) {
    for dir in ["/etc/ssh/sshd_config.d", "/etc/ssh/ssh_config.d"] {
        a.files.push(LiveFile {
            name: dir.into(),
            stat: Some(stat(FileKind::Dir, 0o755)),
            content: None,
            unreadable: false,
        });
    }
}
