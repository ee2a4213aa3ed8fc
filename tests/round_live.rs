#![cfg(feature = "live")]
//! One round trip per node (issue #21), on real sshd hosts: every remote
//! command a worker's sshd runs is logged by a `ForceCommand` wrapper, so
//! the test counts what a cold apply sends each node; and a node that
//! hangs in the middle of its round trip is cut off at `--timeout`, the
//! others finish, and a second apply converges.

mod live;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use live::*;

/// Logs each remote command of host `$1` into `$2/$1.log`, one line:
/// `batch` (a node's writes and read-back), `probe` (gather's read,
/// `sh -s`), `keygen`, or else the script's description line; then runs
/// it as sshd would. With `$2/arm-$1` present, the shims of `$2/shim`
/// come first on the PATH.
const WRAPPER: &str = r#"#!/bin/sh
c=${SSH_ORIGINAL_COMMAND-}
case $c in
  *TM-BATCH-BEGIN*) k=batch ;;
  *TM-PUB-BEGIN*) k=keygen ;;
  'sh -s'*) k=probe ;;
  *) k=$(printf '%s\n' "$c" | sed -n 's/^# trustmesh: //p' | head -n 1)
     [ -n "$k" ] || k=$(printf '%s' "$c" | head -c 60 | tr '\n' ' ') ;;
esac
printf '%s\n' "$k" >> "$2/$1.log"
if [ -e "$2/arm-$1" ]; then PATH="$2/shim:$PATH"; export PATH; fi
exec /bin/sh -c "$c"
"#;

/// `mv` that, the first time, says it was reached (`$DIR/hung/ready`) and
/// waits for `$DIR/go` before doing its job: a node that stops in the
/// middle of a compare-and-swap replace.
const MV_SHIM: &str = r#"#!/bin/sh
d=$(dirname "$(dirname "$0")")
if mkdir "$d/hung" 2>/dev/null; then
  : > "$d/hung/ready"
  while [ ! -e "$d/go" ]; do sleep 0.1; done
fi
exec /bin/mv "$@"
"#;

/// A folder every account can read, holding the wrapper, the shims and
/// the logs (world-writable).
struct Wrap {
    dir: tempfile::TempDir,
}

impl Wrap {
    fn new() -> Wrap {
        let dir = tempfile::Builder::new()
            .prefix("trustmesh-round-")
            .tempdir_in("/tmp")
            .unwrap();
        let p = dir.path();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let exec = |path: &Path, text: &str| {
            std::fs::write(path, text).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        exec(&p.join("wrap.sh"), WRAPPER);
        std::fs::create_dir(p.join("shim")).unwrap();
        std::fs::set_permissions(p.join("shim"), std::fs::Permissions::from_mode(0o755)).unwrap();
        exec(&p.join("shim/mv"), MV_SHIM);
        Wrap { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A worker whose every remote command goes through the wrapper.
    fn worker(&self, name: &str) -> HostSpec {
        worker(name).sshd_option(&format!(
            "ForceCommand {} {name} {}",
            self.path().join("wrap.sh").display(),
            self.path().display()
        ))
    }

    /// The commands logged for `host` since the last [`Wrap::clear`].
    fn log(&self, host: &str) -> Vec<String> {
        std::fs::read_to_string(self.path().join(format!("{host}.log")))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn clear(&self, hosts: &[&str]) {
        for h in hosts {
            let _ = std::fs::remove_file(self.path().join(format!("{h}.log")));
        }
    }
}

#[test]
fn a_cold_apply_sends_each_node_its_writes_and_read_back_in_one_command() {
    let wrap = Wrap::new();
    let workers = ["node1", "node2", "node3"];
    let live = provisioned_with(
        workers.iter().map(|w| wrap.worker(w)).collect(),
        // node1 and node2 need a key of their own; node3 only the
        // manager's line, which provisioning put there.
        "reverse: [node1]\nmesh:\n  - [node1, node2]\n",
    );
    wrap.clear(&workers);
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    // What each worker ran: gather's read (the probe; host keys come with
    // the connection itself, `UpdateHostKeys`, and keyscan runs on the
    // manager), then its key generation when it needs a key, then one
    // batch of all its writes with their read-back. No second read.
    for w in workers {
        let log = wrap.log(w);
        let count = |k: &str| log.iter().filter(|l| *l == k).count();
        assert_eq!(count("probe"), 1, "{w}: {log:?}");
        let needs_key = w != "node3";
        assert_eq!(count("keygen"), usize::from(needs_key), "{w}: {log:?}");
        assert!(count("batch") <= 1, "{w}: {log:?}");
        let writes = log.len() - count("probe");
        assert!(
            writes <= if needs_key { 2 } else { 1 },
            "{w}: {writes} remote commands for its writes: {log:?}"
        );
        if needs_key {
            assert_eq!(count("batch"), 1, "{w}: {log:?}");
            // The key before the writes that carry keys.
            let at = |k: &str| log.iter().position(|l| l == k).unwrap();
            assert!(at("probe") < at("keygen") && at("keygen") < at("batch"));
        }
    }
    // Read back in the same round trip, yet as strict as before: a plan
    // made now has nothing left, and the edges hold. That no-op plan is
    // one command per node: the probe.
    wrap.clear(&workers);
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    for k in ["add", "change", "remove"] {
        assert_eq!(plan["summary"][k], 0, "{plan:#}");
    }
    for w in workers {
        assert_eq!(wrap.log(w), ["probe"], "{w}");
    }
    assert!(live.can_ssh("node1", "node2") && live.can_ssh("node2", "node1"));
    assert!(live.can_ssh("node1", "manager"));
}

/// Every process under `pid` (not `pid` itself), from `/proc`.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        if let Some(pp) = rest.split(' ').nth(1).and_then(|s| s.parse::<u32>().ok()) {
            parent.push((p, pp));
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(x) = todo.pop() {
        for &(p, pp) in &parent {
            if pp == x && !out.contains(&p) {
                out.push(p);
                todo.push(p);
            }
        }
    }
    out
}

fn signal(pids: &[u32], sig: &str) {
    for p in pids {
        let _ = std::process::Command::new("kill")
            .args([sig, &p.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

/// Continues the processes it stopped, also when the test fails.
struct Stopped(Vec<u32>, PathBuf);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = std::fs::write(self.1.join("go"), b"");
        signal(&self.0, "-CONT");
    }
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_node_that_hangs_in_its_round_trip_is_cut_off_and_the_next_apply_converges() {
    let wrap = Wrap::new();
    let workers = ["node1", "node2", "node3"];
    let live = provisioned_with(
        workers.iter().map(|w| wrap.worker(w)).collect(),
        "mesh:\n  - [node1, node2, node3]\n",
    );
    // node3's authorized_keys is group-readable: its mode is fixed after
    // its edit (a later wave, in waves).
    live.cluster
        .chmod("node3", WORKER_USER, ".ssh/authorized_keys", 0o640)
        .unwrap();
    let node3_keys = live
        .cluster
        .host("node3")
        .home_of(WORKER_USER)
        .join(".ssh/authorized_keys");
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    // node2 stops in the middle of its batch, inside a replace.
    std::fs::write(wrap.path().join("arm-node2"), b"").unwrap();
    let mut argv = vec!["sh", "-c", "cd ~ && exec \"$@\"", "sh", "env", "NO_COLOR=1"];
    argv.extend([
        "TMPDIR=/tmp",
        live.bin(),
        "apply",
        "--json",
        "--accept-new-host-keys",
        "--yes",
        "--timeout",
        "10",
    ]);
    let child = live
        .cluster
        .command("manager", MANAGER_USER, &argv)
        .unwrap()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = wrap.path().join("hung/ready");
    wait_for(
        "node2's batch reaching its replace",
        Duration::from_secs(180),
        || ready.exists(),
    );
    // Hang node2: every process of its sshd's sessions, stopped (until
    // no new one appears).
    let sshd = live.cluster.host("node2").pid().expect("node2's sshd");
    let mut stopped = Stopped(Vec::new(), wrap.path().to_path_buf());
    loop {
        let fresh: Vec<u32> = descendants(sshd)
            .into_iter()
            .filter(|p| !stopped.0.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        signal(&fresh, "-STOP");
        stopped.0.extend(fresh);
    }
    let started = Instant::now();
    // The others do not wait for it: node3's writes, its mode fix
    // included, are done while node2 hangs, before its timeout. (The
    // timeout is below the connection's keepalive limit, 3 x 5 s, which
    // would cut a hung node off too.)
    wait_for(
        "node3's writes while node2 hangs",
        Duration::from_secs(8),
        || mode(&node3_keys).is_ok_and(|m| m == 0o600),
    );
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // Cut off at --timeout (and once more for its read-back), not later.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
    let actions = doc["actions"].as_array().unwrap();
    let on = |n: &'static str| actions.iter().filter(move |a| a["node"] == n);
    // node2: its writes failed, each named with the node and the step,
    // and why.
    assert!(on("node2").count() > 0, "{doc:#}");
    assert!(
        on("node2").any(|a| a["result"] == "failed"
            && a["reason"]
                .as_str()
                .is_some_and(|r| r.contains("no answer within 10 s"))),
        "{doc:#}"
    );
    // The others finished.
    for n in ["manager", "node1", "node3"] {
        assert!(on(n).count() > 0, "{n}: {doc:#}");
        assert!(on(n).all(|a| a["result"] == "ok"), "{n}: {doc:#}");
    }
    assert_eq!(doc["converged"], false, "{doc:#}");
    // node2 goes on; once its stopped processes are gone, a second apply
    // converges.
    std::fs::remove_file(wrap.path().join("arm-node2")).unwrap();
    let pids = std::mem::take(&mut stopped.0);
    drop(stopped);
    signal(&pids, "-CONT");
    let shells: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() != "sshd")
        })
        .collect();
    wait_for(
        "node2's stopped commands ending",
        Duration::from_secs(120),
        || {
            shells
                .iter()
                .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        },
    );
    let again = live
        .run(&["apply", "--json", "--yes"])
        .expect_exit(0)
        .json();
    assert_eq!(again["converged"], true, "{again:#}");
    assert!(live.can_ssh("node2", "node1") && live.can_ssh("node1", "node2"));
    assert!(live.can_ssh("node3", "node2"));
}
