//! Apply's dependency walk, in memory (issue #21): a node's writes start
//! as soon as the keys they carry exist, so one slow node's key
//! generation holds only the writes that carry its key; a failed key
//! generation touches only what carries that key.

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
use trustmesh::plan::{LiveState, NodeFiles, NodeState};
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
