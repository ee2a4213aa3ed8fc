//! Apply's dependency walk, in memory (issue #21): a node's writes start
//! as soon as the keys they carry exist, so one slow node's key
//! generation holds only the writes that carry its key; a failed key
//! generation touches only what carries that key; a node's writes go in
//! as few round trips as the graph allows, with certificates too; and a
//! node's read-back stands only when nothing else of it ended once its
//! last batch was sent.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use support::*;
use trustmesh::apply::{ActionResult, ApplyRun};
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::LiveAccount;
use trustmesh::node::memory::MemoryDoor;
use trustmesh::node::{Door, DoorError, Op, Outcomes, Queued};
use trustmesh::plan::{LiveState, NodeFiles, NodeState, Plan, PlanScope};
use trustmesh::transport::scripts::Outcome;

const INV: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: slow, address: 10.0.0.11 }
  - { name: a, address: 10.0.0.12 }
  - { name: b, address: 10.0.0.13 }
  - { name: c, address: 10.0.0.14 }
  - { name: d, address: 10.0.0.15 }
mesh:
  - [slow, a]
  - [b, c, d]
";

/// What the doors saw, in order: `keygen NODE` when a key generation
/// ends, `list NODE` when a node's list (its writes) ends.
type Log = Arc<Mutex<Vec<String>>>;

/// A node in memory whose key generation can wait for a gate (opened when
/// node `b`'s writes are done, ten seconds at most) or fail.
struct Gated {
    door: MemoryDoor,
    log: Log,
    gate: Arc<tokio::sync::Semaphore>,
    slow: bool,
    fail_keygen: bool,
}

impl Door for Gated {
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
        Box::pin(async move {
            if !matches!(op, Op::Keygen { .. }) {
                return self.door.run(op).await;
            }
            if self.slow {
                let waited =
                    tokio::time::timeout(Duration::from_secs(10), self.gate.acquire()).await;
                if waited.is_err() {
                    self.log.lock().unwrap().push("gate timed out".into());
                }
            }
            let r = if self.fail_keygen {
                Ok(Outcome::Failed(
                    "ssh-keygen failed: no entropy (test)".into(),
                ))
            } else {
                self.door.run(op).await
            };
            self.log
                .lock()
                .unwrap()
                .push(format!("keygen {}", self.node()));
            r
        })
    }

    fn run_all<'a>(&'a self, list: &'a [Queued], files: &'a NodeFiles) -> BoxFuture<'a, Outcomes> {
        Box::pin(async move {
            let results = trustmesh::node::one_by_one(self, list).await;
            let state = self.read_state(files).await;
            self.log
                .lock()
                .unwrap()
                .push(format!("list {}", self.node()));
            if self.node() == "b" {
                self.gate.add_permits(1);
            }
            Outcomes { results, state }
        })
    }
}

fn inv() -> Inventory {
    Inventory::from_str_named("inventory.yaml", INV).unwrap()
}

/// Apply a fresh cluster's plan on gated doors: `d`'s key generation
/// fails when `fail_d`.
fn apply(inv: &Inventory, live: &LiveState, fail_d: bool) -> (ApplyRun, Vec<String>) {
    let plan = run(inv, live);
    let log: Log = Arc::default();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let doors: Vec<Option<Gated>> = live
        .nodes
        .iter()
        .enumerate()
        .map(|(id, s)| match s {
            NodeState::Read { account, .. } => {
                let name = &inv.nodes[id].name;
                Some(Gated {
                    door: MemoryDoor::new(name, account),
                    log: log.clone(),
                    gate: gate.clone(),
                    slow: name == "slow",
                    fail_keygen: fail_d && name == "d",
                })
            }
            _ => None,
        })
        .collect();
    let refs = as_doors(&doors);
    let opts = memory_options(None);
    let rt = runtime();
    let ran = rt.block_on(trustmesh::apply::apply_read_back(
        inv,
        &trustmesh::TrustGraph::build(inv),
        &plan,
        &refs,
        &opts,
    ));
    let log = log.lock().unwrap().clone();
    (ran, log)
}

fn results<'r>(ran: &'r ApplyRun, node: &str) -> &'r [ActionResult] {
    &ran.report
        .nodes
        .iter()
        .find(|n| n.node == node)
        .unwrap_or_else(|| panic!("{node} not in the report: {:#?}", ran.report))
        .results
}

#[test]
fn a_slow_key_generation_holds_only_the_writes_that_carry_its_key() {
    let inv = inv();
    let (ran, log) = apply(&inv, &fresh_cluster(&inv), false);
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    let at = |what: &str| {
        log.iter()
            .position(|l| l == what)
            .unwrap_or_else(|| panic!("no `{what}` in {log:?}"))
    };
    // b's writes need only b's, c's and d's keys: they are done while
    // slow's key generation waits (for them), and a's, which carry slow's
    // key, come after it.
    assert!(!log.iter().any(|l| l == "gate timed out"), "{log:?}");
    assert!(at("list b") < at("keygen slow"), "{log:?}");
    assert!(at("keygen slow") < at("list a"), "{log:?}");
    // Each node's writes went as one list, once: a node is not read twice.
    for n in ["slow", "a", "b", "c", "d"] {
        let lists = log.iter().filter(|l| **l == format!("list {n}")).count();
        assert_eq!(lists, 1, "{n}: {log:?}");
        let id = inv.find(n).unwrap();
        let state = ran.read_back[id].as_ref().expect("read back in its list");
        assert!(state.file("authorized_keys").unwrap().content.is_some());
    }
}

#[test]
fn a_failed_key_generation_touches_only_what_carries_that_key() {
    let inv = inv();
    let (ran, _) = apply(&inv, &fresh_cluster(&inv), true);
    // Nodes that carry nothing of d converge.
    for n in ["manager", "slow", "a"] {
        for r in results(&ran, n) {
            assert!(matches!(r, ActionResult::Done { .. }), "{n}: {r:?}");
        }
    }
    // d: its key failed, and what sits beside it on d waits for it.
    let d = results(&ran, "d");
    assert!(d.iter().any(|r| matches!(r,
        ActionResult::Failed { what, reason } if what.contains("generate") && reason.contains("no entropy"))), "{d:#?}");
    assert!(
        d.iter().any(|r| matches!(r, ActionResult::Skipped { .. })),
        "{d:#?}"
    );
    // b and c: every action done; the edits that carry d's key are done
    // without it, and say so.
    for n in ["b", "c"] {
        let rs = results(&ran, n);
        for r in rs {
            assert!(matches!(r, ActionResult::Done { .. }), "{n}: {r:?}");
        }
        let without: Vec<_> = rs
            .iter()
            .filter(|r| matches!(r, ActionResult::Done { what } if what.contains("without the keys of d")))
            .collect();
        assert_eq!(without.len(), 1, "{n}: {rs:#?}");
    }
}

/// A cold apply of `plan` on logged memory doors ([`Logged`]): what it
/// did and read back, the log (`run NODE OP`: one operation alone, one
/// round trip; `list NODE: OP; ...`: a batch, one round trip), and each
/// node's state read through its door afterwards.
fn logged_apply(
    inv: &Inventory,
    live: &LiveState,
    plan: &Plan,
) -> (ApplyRun, Vec<String>, Vec<Option<LiveAccount>>) {
    let log: Log = Arc::default();
    let doors = logged(memory_doors(inv, live, |_, d| d), &log);
    let run_dir = tempfile::tempdir().unwrap();
    let opts = memory_options(Some(run_dir.path().to_path_buf()));
    let rt = runtime();
    let ran = rt.block_on(trustmesh::apply::apply_read_back(
        inv,
        &trustmesh::TrustGraph::build(inv),
        plan,
        &as_doors(&doors),
        &opts,
    ));
    let now = doors
        .iter()
        .enumerate()
        .map(|(id, d)| {
            let d = d.as_ref()?;
            rt.block_on(d.read_state(&NodeFiles::of(inv, id))).ok()
        })
        .collect();
    let log = log.lock().unwrap().clone();
    (ran, log, now)
}

/// Node `n`'s round trips in `log`, in order.
fn trips<'l>(log: &'l [String], n: &str) -> Vec<&'l str> {
    log.iter()
        .filter(|l| l.starts_with(&format!("run {n} ")) || l.starts_with(&format!("list {n}: ")))
        .map(String::as_str)
        .collect()
}

/// Two fresh workers in one mesh, both root with sshd's drop-in folder
/// included, serving host certificates signed by a real CA on the
/// manager (in `dir`); their host keys real too, as proven.
fn host_cert_lab(dir: &std::path::Path) -> (Inventory, LiveState) {
    let (ca, ca_pub) = real_key(dir, "ca");
    let inv = Inventory::from_str_named(
        "inventory.yaml",
        &format!(
            "version: 1\ncluster: lab\nmanager: {{name: m, address: 10.0.0.1}}\nworkers:\n\
             \x20 - {{name: w1, address: 10.0.0.11}}\n  - {{name: w2, address: 10.0.0.12}}\n\
             mesh:\n  - [w1, w2]\nhost_certificates: {{ca: '{ca}'}}\n"
        ),
    )
    .unwrap();
    let mut live = rooted(&inv);
    let m = account_at(&mut live, 0);
    set_file(m, &ca, 0o600, "PRIVATE (never read)");
    set_file(m, &format!("{ca}.pub"), 0o644, &format!("{ca_pub} ca\n"));
    for w in ["w1", "w2"] {
        let (_, host) = real_key(dir, &format!("host-{w}"));
        let a = account_of(&mut live, &inv, w);
        for f in [
            "/etc/ssh/sshd_config.d/trustmesh-lab.conf",
            "/etc/ssh/ssh_config.d/trustmesh-lab.conf",
            "/etc/ssh/trustmesh-lab.krl",
            "/etc/ssh/ssh_host_ed25519_key-cert.pub",
        ] {
            if a.file(f).is_none() {
                a.files.push(missing(f));
            }
        }
        a.proven_host_keys = vec![host];
    }
    (inv, live)
}

#[test]
fn with_certificates_a_nodes_writes_still_go_in_the_fewest_round_trips() {
    // User certificates: a fresh worker makes its ~/.ssh, its key, and
    // sends the rest in one batch, after its certificate's signing on the
    // manager.
    let i = support::inv(
        "version: 1\ncluster: lab\nmanager: { name: m, address: 10.0.0.1 }\nworkers:\n\
         \x20 - { name: w1, address: 10.0.0.11 }\n  - { name: w2, address: 10.0.0.12 }\n\
         mesh:\n  - [w1, w2]\n\
         certificates: { ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }\n",
    );
    let live = fresh_cluster(&i);
    let (ran, log, now) = logged_apply(&i, &live, &plan_at(&i, &live, day(0)));
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    for w in ["w1", "w2"] {
        let t = trips(&log, w);
        let lists = t.iter().filter(|l| l.starts_with("list ")).count();
        assert_eq!(lists, 1, "{w}: {t:#?}");
        assert!(t.len() <= 3, "{w}: {t:#?}");
        let id = i.find(w).unwrap();
        assert_eq!(ran.read_back[id], now[id], "{w}");
    }

    // Host certificates: a serving worker's writes go in two batches, one
    // before its sshd reload (its certificate, KRL and drop-ins; the
    // reload checks them with `sshd -t` first) and one after every reload
    // its known_hosts waits for (the host CA trusted: make before break),
    // not one round trip per action.
    let dir = tempfile::tempdir().unwrap();
    let (i, live) = host_cert_lab(dir.path());
    let (ran, log, now) = logged_apply(&i, &live, &run(&i, &live));
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    let reloads: Vec<usize> = ["w1", "w2"]
        .iter()
        .map(|w| {
            log.iter()
                .position(|l| *l == format!("run {w} reload sshd"))
                .unwrap_or_else(|| panic!("no reload of {w}: {log:#?}"))
        })
        .collect();
    for w in ["w1", "w2"] {
        let t = trips(&log, w);
        let lists: Vec<&&str> = t.iter().filter(|l| l.starts_with("list ")).collect();
        assert_eq!(lists.len(), 2, "{w}: {t:#?}");
        // ~/.ssh (in the first batch), the key, the reload, two batches.
        assert!(t.len() <= 4, "{w}: {t:#?}");
        // The certificate, the KRL and the drop-ins (written as trustmesh's
        // own files), then the known_hosts with the CA line.
        assert!(
            lists[0].matches("; write /etc/ssh/").count() >= 3,
            "{w}: {t:#?}"
        );
        assert!(
            lists[1].contains("replace ~/.ssh/known_hosts"),
            "{w}: {t:#?}"
        );
        let at = |l: &str| log.iter().position(|x| x == l).unwrap();
        let own = at(&format!("run {w} reload sshd"));
        assert!(at(lists[0]) < own, "{w}: {log:#?}");
        assert!(reloads.iter().all(|&r| r < at(lists[1])), "{w}: {log:#?}");
        // Nothing of it ran after its last batch: that read-back stands.
        let id = i.find(w).unwrap();
        assert_eq!(ran.read_back[id], now[id], "{w}");
    }
}

#[test]
fn a_provisioned_node_serving_a_host_certificate_takes_two_batches_and_its_reload() {
    // Keys and ~/.ssh already there: the certificate, KRL and drop-ins in
    // one batch, the reload, then known_hosts (the CA trusted once every
    // node reloaded) with the rest. Before: 6 round trips, the
    // certificate, the KRL and known_hosts each alone, the last one after
    // the batch (its read-back stale).
    let dir = tempfile::tempdir().unwrap();
    let (i, mut live) = host_cert_lab(dir.path());
    for id in 1..i.nodes.len() {
        with_key(&i, id, account_at(&mut live, id));
    }
    let (ran, log, now) = logged_apply(&i, &live, &run(&i, &live));
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    for w in ["w1", "w2"] {
        let t = trips(&log, w);
        assert_eq!(t.len(), 3, "{w}: {t:#?}");
        assert_eq!(t[1], format!("run {w} reload sshd"), "{w}: {t:#?}");
        assert!(t[2].contains("replace ~/.ssh/known_hosts"), "{w}: {t:#?}");
        let id = i.find(w).unwrap();
        assert_eq!(ran.read_back[id], now[id], "{w}");
    }
}

/// A memory door whose batch, once done and read back, answers only when
/// its node's rotation swap has ended (ten seconds at most): that swap
/// ends once the batch was sent, before its answer.
struct Racing {
    door: Logged,
    swapped: tokio::sync::Semaphore,
    log: Log,
}

impl Door for Racing {
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
        Box::pin(async move {
            let r = self.door.run(op).await;
            if matches!(op, Op::Swap { .. }) {
                self.log.lock().unwrap().push("swap ended".into());
                self.swapped.add_permits(1);
            }
            r
        })
    }

    fn run_all<'a>(&'a self, list: &'a [Queued], files: &'a NodeFiles) -> BoxFuture<'a, Outcomes> {
        Box::pin(async move {
            let out = self.door.run_all(list, files).await;
            self.log.lock().unwrap().push("batch read back".into());
            let waited =
                tokio::time::timeout(Duration::from_secs(10), self.swapped.acquire()).await;
            if waited.is_err() {
                self.log.lock().unwrap().push("gate timed out".into());
            }
            out
        })
    }
}

#[test]
fn a_read_back_is_dropped_when_something_of_its_node_ends_once_its_batch_was_sent() {
    let i = support::inv(
        "version: 1\ncluster: lab\ndefaults: { user: agilab }\n\
         manager: { name: manager, address: 10.0.0.1, user: alice }\nworkers:\n\
         \x20 - { name: w1, address: 10.0.0.11 }\n  - { name: w2, address: 10.0.0.12 }\n\
         \x20 - { name: w3, address: 10.0.0.13 }\nmesh:\n  - [w1, w2]\n",
    );
    let mut live = converged(&i);
    // Drift on w1 and w3: a batch of their own (a mode fix).
    for w in ["w1", "w3"] {
        let a = account_of(&mut live, &i, w);
        let text = content(a, "authorized_keys").to_string();
        set_file(a, "authorized_keys", 0o666, &text);
    }
    // w1's key rotated: w1's batch (its mode fix) goes once its new key
    // exists, and its proof on w2 and its swap need w2's batch (the new
    // key authorized): they run alongside w1's batch, which answers only
    // once the swap ended. w2's removal of the old key runs after w2's
    // batch.
    let scope = PlanScope {
        rotate: [i.find("w1").unwrap()].into_iter().collect(),
        ..PlanScope::default()
    };
    let plan = trustmesh::plan::plan(&i, &trustmesh::TrustGraph::build(&i), &live, &scope);
    let log: Log = Arc::default();
    let mut doors = logged(memory_doors(&i, &live, |_, d| d), &log);
    let w1 = i.find("w1").unwrap();
    let racing = Racing {
        door: doors[w1].take().unwrap(),
        swapped: tokio::sync::Semaphore::new(0),
        log: log.clone(),
    };
    let mut refs = as_doors(&doors);
    refs[w1] = Some(&racing as &dyn Door);
    let run_dir = tempfile::tempdir().unwrap();
    let ran = runtime().block_on(trustmesh::apply::apply_read_back(
        &i,
        &trustmesh::TrustGraph::build(&i),
        &plan,
        &refs,
        &memory_options(Some(run_dir.path().to_path_buf())),
    ));
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    let log = log.lock().unwrap().clone();
    assert!(!log.iter().any(|l| l == "gate timed out"), "{log:#?}");
    // The race happened: w1's batch read back before its swap ended, and
    // answered after.
    let at = |what: &str| {
        log.iter()
            .position(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("no `{what}` in {log:#?}"))
    };
    assert!(at("list w1: ") < at("swap ended"), "{log:#?}");
    assert!(at("batch read back") < at("swap ended"), "{log:#?}");
    // So w1's read-back is older than its swap (alongside), and w2's
    // older than the old key's removal (after): both are read again.
    // w3, with nothing after its batch, keeps its own.
    assert!(ran.read_back[w1].is_none(), "w1: {log:#?}");
    assert!(ran.read_back[i.find("w2").unwrap()].is_none(), "{log:#?}");
    assert!(ran.read_back[i.find("w3").unwrap()].is_some(), "{log:#?}");
}

#[test]
fn a_ca_rotation_splits_the_batches_that_wait_for_each_other_rather_than_sending_every_action_alone(
) {
    // Each worker's new certificate waits for every worker's trust of the
    // new CA, each in its node's batch: the batches of the workers wait
    // for each other. w3 also has its ~/.ssh mode to fix.
    let i = support::inv(
        "version: 1\ncluster: lab\nmanager: { name: m, address: 10.0.0.1 }\nworkers:\n\
         \x20 - { name: w1, address: 10.0.0.11 }\n  - { name: w2, address: 10.0.0.12 }\n\
         \x20 - { name: w3, address: 10.0.0.13 }\nmesh:\n  - [w1, w2, w3]\n\
         certificates: { ca: ~/.ssh/trustmesh_ca, validity: 7d, renew_before: 2d }\n",
    );
    let mut live = converge_at(&i, fresh_cluster(&i), day(0));
    account_of(&mut live, &i, "w3").ssh_dir =
        Some(stat(trustmesh::model::state::FileKind::Dir, 0o775));
    let scope = PlanScope {
        rotate_ca: true,
        now: Some(day(0)),
        ..PlanScope::default()
    };
    let plan = trustmesh::plan::plan(&i, &trustmesh::TrustGraph::build(&i), &live, &scope);
    let (ran, log, _) = logged_apply(&i, &live, &plan);
    assert!(!ran.report.failed(), "{:#?}", ran.report);
    // The trust of the new CA goes before the certificate (w3's mode fix
    // in the same batch), and the certificate, signed once every node
    // trusts the new CA, in the node's last batch after it: only the
    // batches in the circle are split.
    for w in ["w1", "w2", "w3"] {
        let t = trips(&log, w);
        let at = |list: bool, what: &str| {
            t.iter()
                .position(|l| (!list || l.starts_with("list ")) && l.contains(what))
                .unwrap_or_else(|| panic!("{w}: no `{what}`: {t:#?}"))
        };
        let trust = at(false, "replace ~/.ssh/authorized_keys");
        assert!(
            trust < at(true, "replace ~/.ssh/id_ed25519-cert.pub"),
            "{t:#?}"
        );
        if w == "w3" {
            assert!(
                t[trust].starts_with("list ") && t[trust].contains("chmod"),
                "{t:#?}"
            );
        }
    }
}
