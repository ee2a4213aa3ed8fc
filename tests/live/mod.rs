//! A real cluster for integration tests: the testbed's sshd hosts, an
//! inventory describing them written into the manager's home, and the
//! trustmesh binary run on the manager as its account.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;
use std::time::SystemTime;

pub use testbed::{Cluster, ClusterSpec, HostSpec};

pub const MANAGER_USER: &str = "alice";
pub const WORKER_USER: &str = "agilab";
/// The password of the testbed hosts that take one.
pub const PASSWORD: &str = "boot-Strap-42";

/// The account a test host's edges use.
pub fn account(host: &str) -> &'static str {
    if host == "manager" {
        MANAGER_USER
    } else {
        WORKER_USER
    }
}

/// A trustmesh run: its exit code and output.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn of(out: &Output) -> Ran {
        let (stdout, stderr) = text(out);
        Ran {
            code: out.status.code(),
            stdout,
            stderr,
        }
    }

    /// Require exit code `code`; on failure, show everything printed.
    #[track_caller]
    pub fn expect_exit(self, code: i32) -> Ran {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Every file and folder in a cluster's homes: path -> (mode, content,
/// mtime).
pub type Snapshot = BTreeMap<PathBuf, (u32, Vec<u8>, SystemTime)>;

/// The standard output of a command that must succeed (else everything
/// it printed, in the panic).
#[track_caller]
pub fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A worker with the worker account and the testbed's defaults.
pub fn worker(name: &str) -> HostSpec {
    HostSpec::new(name, &[WORKER_USER])
}

/// Manager + node1..node3, the manager's key made and authorized on each
/// worker by hand (as a provisioned cluster has it), and an inventory of
/// the three with `extra` (reverse, mesh...) written.
pub fn provisioned(extra: &str) -> Live {
    provisioned_with(
        vec![worker("node1"), worker("node2"), worker("node3")],
        extra,
    )
}

/// The manager plus `workers`, the manager's key made and authorized on
/// each of them by hand, and an inventory of them all with `extra`
/// written.
pub fn provisioned_with(workers: Vec<HostSpec>, extra: &str) -> Live {
    let names: Vec<String> = workers.iter().map(|h| h.name.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let live = start(workers);
    live.manager_key_on(&names);
    live.write_inventory_of(&names, extra);
    live
}

/// A converged cluster of manager + node1..node3 with a mesh of all three.
pub fn converged() -> Live {
    let live = provisioned("mesh:\n  - [node1, node2, node3]\n");
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    live
}

pub struct Live {
    pub cluster: Cluster,
    /// The trustmesh binary, copied where the manager's account can run it
    /// (the checkout may sit under a folder closed to that account).
    bin: String,
}

/// Start `manager` plus the given workers (all with user agilab).
pub fn start(workers: Vec<HostSpec>) -> Live {
    start_with(workers, |spec| spec)
}

/// [`start`], with the cluster's spec adjusted by `adjust` (host key
/// types...).
pub fn start_with(workers: Vec<HostSpec>, adjust: impl FnOnce(ClusterSpec) -> ClusterSpec) -> Live {
    let mut hosts = vec![HostSpec::new("manager", &[MANAGER_USER])];
    hosts.extend(workers);
    let cluster =
        Cluster::start(adjust(ClusterSpec::new(hosts))).expect("start the testbed cluster");
    let bin = cluster
        .share(std::path::Path::new(env!("CARGO_BIN_EXE_trustmesh")))
        .and_then(|bin| {
            cluster.check_reachable("manager", MANAGER_USER, &bin, true)?;
            Ok(bin)
        })
        .unwrap_or_else(|e| panic!("testbed: {e}"));
    let bin = bin.to_str().expect("a UTF-8 path").to_string();
    Live { cluster, bin }
}

impl Live {
    /// The path of the trustmesh binary as the manager's account runs it.
    pub fn bin(&self) -> &str {
        &self.bin
    }

    /// `address` (and `port`) of a host as the inventory should name it.
    pub fn addr(&self, host: &str) -> String {
        self.cluster.host(host).address.to_string()
    }

    /// An inventory for this cluster: `extra` is appended (reverse, mesh...).
    /// `worker_lines` maps a worker name to extra keys for its entry.
    pub fn inventory(
        &self,
        workers: &[&str],
        extra: &str,
        worker_extra: &dyn Fn(&str) -> String,
    ) -> String {
        let mut s = format!(
            "version: 1\ndefaults:\n  user: {WORKER_USER}\nmanager:\n  name: manager\n  address: {}\n  user: {MANAGER_USER}\nworkers:\n",
            self.addr("manager")
        );
        for w in workers {
            let h = self.cluster.host(w);
            s.push_str(&format!(
                "  - name: {w}\n    address: {}\n    port: {}\n",
                h.address, h.port
            ));
            s.push_str(&worker_extra(w));
        }
        s.push_str(extra);
        s
    }

    /// Write the inventory of `workers` with `extra` (reverse, mesh...),
    /// nothing more on any worker's entry.
    pub fn write_inventory_of(&self, workers: &[&str], extra: &str) {
        self.write_inventory(&self.inventory(workers, extra, &|_| String::new()));
    }

    pub fn write_inventory(&self, text: &str) {
        self.cluster
            .write_file(
                "manager",
                MANAGER_USER,
                "inventory.yaml",
                text.as_bytes(),
                0o644,
            )
            .expect("write inventory");
    }

    /// Generate the manager's key pair (as a person would have).
    pub fn manager_keygen(&self) {
        let out = self
            .cluster
            .exec(
                "manager",
                MANAGER_USER,
                &[
                    "sh",
                    "-c",
                    "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519",
                ],
            )
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Generate the manager's key pair and install its public key on each
    /// of `workers` by hand, as a provisioned cluster has it.
    pub fn manager_key_on(&self, workers: &[&str]) {
        self.manager_keygen();
        for w in workers {
            self.authorize_manager_on(w);
        }
    }

    /// Install the manager's public key on a worker by hand (what the
    /// password bootstrap will do).
    pub fn authorize_manager_on(&self, worker: &str) {
        let key = self
            .cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
            .expect("manager key");
        let out = self
            .cluster
            .exec_with_stdin(
                worker,
                WORKER_USER,
                &["sh", "-c", "mkdir -p -m 700 ~/.ssh && cat >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys"],
                &key,
            )
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run trustmesh on the manager as alice, with the exit code and output.
    pub fn run(&self, args: &[&str]) -> Ran {
        Ran::of(&self.trustmesh(args))
    }

    /// Like [`Live::run`], with `$TRUSTMESH_PASSWORD` set (for `--ask-pass`).
    pub fn run_with_password(&self, args: &[&str]) -> Ran {
        let mut argv = vec!["sh", "-c", "cd ~ && exec \"$@\"", "sh", "env", "NO_COLOR=1"];
        let pw = format!("TRUSTMESH_PASSWORD={PASSWORD}");
        argv.push(&pw);
        argv.push(self.bin());
        argv.extend_from_slice(args);
        Ran::of(&self.cluster.exec("manager", MANAGER_USER, &argv).unwrap())
    }

    /// Run a shell line on `host` as `user`.
    pub fn run_as(&self, host: &str, user: &str, cmd: &str) -> Output {
        self.cluster.exec(host, user, &["sh", "-c", cmd]).unwrap()
    }

    /// A file of `host`'s account (its edges' account), as text; empty
    /// when it is missing.
    pub fn read_text(&self, host: &str, file: &str) -> String {
        let bytes = self.cluster.read_file(host, account(host), file);
        String::from_utf8(bytes.unwrap_or_default()).unwrap()
    }

    /// Can `from` log in to `to` with plain ssh, BatchMode and strict host
    /// keys?
    pub fn can_ssh(&self, from: &str, to: &str) -> bool {
        let h = self.cluster.host(to);
        let cmd = format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -p {} {}@{} true",
            h.port,
            account(to),
            h.address
        );
        self.run_as(from, account(from), &cmd).status.success()
    }

    /// Every file and folder in every host's homes. The manager's
    /// `~/.cache`, where apply keeps its lock, and `~/.local`, where it
    /// keeps its history, are left out: the tool's own bookkeeping, not
    /// trust state.
    pub fn snapshot(&self) -> Snapshot {
        use std::os::unix::fs::MetadataExt;
        fn walk(dir: &std::path::Path, out: &mut Snapshot) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.ends_with(".cache") || path.ends_with(".local") {
                    continue;
                }
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let content = if meta.is_file() {
                    std::fs::read(&path).unwrap()
                } else {
                    Vec::new()
                };
                out.insert(
                    path.clone(),
                    (meta.mode(), content, meta.modified().unwrap()),
                );
                if meta.is_dir() {
                    walk(&path, out);
                }
            }
        }
        let mut out = Snapshot::new();
        for h in self.cluster.hosts() {
            for u in &h.users {
                walk(&h.home_of(u), &mut out);
            }
        }
        out
    }

    /// Trust every worker's host key in the manager's known_hosts by hand,
    /// as a previous run would have.
    pub fn trust_all_host_keys(&self, workers: &[&str]) {
        let mut kh = String::new();
        for w in workers {
            let h = self.cluster.host(w);
            let name =
                trustmesh::model::target::SshTarget::new(&h.address.to_string(), h.port).short();
            for k in self.cluster.host_public_keys(w).unwrap() {
                kh.push_str(&format!("{name} {k}\n"));
            }
        }
        self.cluster
            .write_file(
                "manager",
                MANAGER_USER,
                ".ssh/known_hosts",
                kh.as_bytes(),
                0o644,
            )
            .unwrap();
    }

    /// Run trustmesh on the manager as alice, in her home.
    pub fn trustmesh(&self, args: &[&str]) -> Output {
        let mut argv = vec!["env", "NO_COLOR=1", "TMPDIR=/tmp", self.bin()];
        argv.extend_from_slice(args);
        let mut full = vec!["sh", "-c", "cd ~ && exec \"$@\"", "sh"];
        full.extend(argv);
        self.cluster
            .exec("manager", MANAGER_USER, &full)
            .expect("run trustmesh")
    }
}

/// The edge `source -> target` of a `verify --json` document.
pub fn verify_edge<'a>(
    doc: &'a serde_json::Value,
    source: &str,
    target: &str,
) -> &'a serde_json::Value {
    doc["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|e| e["source"] == source && e["target"] == target)
        .unwrap_or_else(|| panic!("no edge {source} -> {target} in {doc:#}"))
}

/// Node `name` of a `plan --json` document.
#[track_caller]
pub fn plan_node<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    // `match`, not `unwrap_or_else`: a panic shows the test's line.
    let Some(nodes) = plan["nodes"].as_array() else {
        panic!("no nodes in {plan:#}")
    };
    match nodes.iter().find(|n| n["node"] == name) {
        Some(n) => n,
        None => panic!("no node {name} in {plan:#}"),
    }
}

/// The changes of node `name` of a `plan --json` document.
#[track_caller]
pub fn plan_changes<'a>(plan: &'a serde_json::Value, name: &str) -> &'a [serde_json::Value] {
    match plan_node(plan, name)["changes"].as_array() {
        Some(c) => c,
        None => panic!("no changes for {name} in {plan:#}"),
    }
}

/// The change of node `name` with this `action` on this `path`, in a
/// `plan --json` document; a panic when there is none.
#[track_caller]
pub fn plan_change<'a>(
    plan: &'a serde_json::Value,
    name: &str,
    action: &str,
    path: &str,
) -> &'a serde_json::Value {
    let found = plan_changes(plan, name)
        .iter()
        .find(|c| c["action"] == action && c["path"] == path);
    match found {
        Some(c) => c,
        None => panic!("no {action} of {path} on {name} in {plan:#}"),
    }
}

/// Standard output of a run as JSON.
#[track_caller]
pub fn json(out: &Output) -> serde_json::Value {
    Ran::of(out).json()
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A folder in the manager's home for the pause hook: (the path the
/// manager's account sees, the path this test sees).
pub fn pause_dir(live: &Live) -> (String, PathBuf) {
    let out = live.run_as(
        "manager",
        MANAGER_USER,
        "mkdir -p ~/pause && cd ~/pause && pwd -P",
    );
    assert!(out.status.success());
    let inner = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let outer = live
        .cluster
        .host("manager")
        .home_of(MANAGER_USER)
        .join("pause");
    (inner, outer)
}

/// Run trustmesh on the manager with the pause hook set to `step`; while
/// it waits there, run `meanwhile`, then let it go on.
pub fn run_pausing(live: &Live, step: &str, args: &[&str], meanwhile: &dyn Fn()) -> Ran {
    let (inner, outer) = pause_dir(live);
    let hook = format!("{}={step}:{inner}", trustmesh::apply::PAUSE_ENV);
    let mut argv = vec![
        "sh",
        "-c",
        "cd ~ && exec \"$@\"",
        "sh",
        "env",
        "NO_COLOR=1",
        "TMPDIR=/tmp",
        &hook,
        live.bin(),
    ];
    argv.extend_from_slice(args);
    std::thread::scope(|s| {
        let run = s.spawn(|| live.cluster.exec("manager", MANAGER_USER, &argv).unwrap());
        let paused = outer.join(format!("paused-{step}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        while !paused.exists() && !run.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        if paused.exists() {
            meanwhile();
            std::fs::write(outer.join(format!("resume-{step}")), b"").unwrap();
        }
        let out = run.join().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            paused.exists(),
            "the run never reached `{step}`:\n{stdout}\n{stderr}"
        );
        Ran {
            code: out.status.code(),
            stdout,
            stderr,
        }
    })
}
