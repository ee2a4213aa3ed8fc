#![cfg(feature = "live")]
//! On real sshd hosts, the workflows as library operations, with no
//! command line: `ops::plan`, `ops::apply` and `ops::verify` run in the
//! manager's account (this test binary, run again there), with the
//! library's non-interactive operator and one that records what it is told.
//!
//! - Consent refused: `ops::apply` ends in `OpsError::Cancelled` after
//!   showing the plan (progress `Planned` before the question), and no
//!   file of any host changed.
//! - `--ask-pass` with no password and nobody to ask: refused before any
//!   host is read.
//! - Consent given: the same call applies, reads back and converges, and
//!   `ops::verify` finds every edge holds.

mod live;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use live::*;
use trustmesh::gather::GatherOptions;
use trustmesh::ops::{self, NoPassword, NonInteractive, Operator, OpsError, Progress, ReadOptions};
use trustmesh::plan::{Plan, PlanScope};
use trustmesh::transport::password::Secret;
use trustmesh::{Inventory, TrustGraph};

/// Set (to the step) in the environment of this binary run again on the
/// manager.
const STEP: &str = "TRUSTMESH_OPS_LIVE_STEP";

/// An operator that consents or not, and keeps what it was told and asked.
struct Recorder {
    consent: bool,
    said: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(consent: bool) -> Recorder {
        Recorder {
            consent,
            said: Mutex::new(Vec::new()),
        }
    }

    fn said(&self) -> Vec<String> {
        self.said.lock().unwrap().clone()
    }
}

impl Operator for Recorder {
    fn confirm(&self, plan: &Plan) -> bool {
        let s = plan.summary();
        self.said
            .lock()
            .unwrap()
            .push(format!("confirm {}+{}~{}-", s.add, s.change, s.remove));
        self.consent
    }

    fn password(&self, prompt: &str) -> Result<Secret, NoPassword> {
        self.said.lock().unwrap().push(format!("password {prompt}"));
        Err(NoPassword("none here".into()))
    }

    fn progress(&self, event: Progress<'_>) {
        let line = match event {
            Progress::Reading { nodes, .. } => format!("reading {nodes}"),
            Progress::Read { .. } => "read".into(),
            Progress::ReadDone => "read done".into(),
            Progress::Note(_) => "note".into(),
            Progress::Trying { edges } => format!("trying {edges}"),
            Progress::Tried { .. } => "tried".into(),
            Progress::TriedDone => "tried done".into(),
            Progress::Planned(_) => "planned".into(),
            Progress::Applied(_) => "applied".into(),
        };
        self.said.lock().unwrap().push(line);
    }
}

fn options(ask_pass: bool) -> ReadOptions {
    ReadOptions {
        gather: GatherOptions {
            accept_new_host_keys: true,
            timeout: Duration::from_secs(30),
            concurrency: 8,
            scope: PlanScope::default(),
            password: None,
            accepted_changes: Vec::new(),
            confirm_new_host_key: None,
        },
        ask_pass,
    }
}

/// The library's side, in the manager's account (a no-op in a plain run
/// of this binary): the step named by `$TRUSTMESH_OPS_LIVE_STEP`.
#[test]
fn in_the_managers_account() {
    let Ok(step) = std::env::var(STEP) else {
        return;
    };
    let inv = Inventory::load(Path::new("inventory.yaml")).expect("the inventory");
    let graph = TrustGraph::build(&inv);
    let rt = tokio::runtime::Runtime::new().unwrap();
    match step.as_str() {
        "refuse" => {
            // There is something to refuse.
            let planned = rt
                .block_on(ops::plan(
                    &inv,
                    &graph,
                    options(false),
                    &NonInteractive::default(),
                ))
                .expect("plan");
            assert!(
                !planned.plan.is_empty() && !planned.plan.incomplete(),
                "{planned:?}"
            );
            let r = rt.block_on(ops::apply(
                &inv,
                &graph,
                options(false),
                None,
                &NonInteractive::default(),
            ));
            assert!(
                matches!(r, Err(OpsError::Cancelled)),
                "{:?}",
                r.map(|done| done.applied.map(|a| a.report))
            );
            // The plan is shown, then asked about, once; nothing applied.
            let recorder = Recorder::new(false);
            let r = rt.block_on(ops::apply(&inv, &graph, options(false), None, &recorder));
            assert!(matches!(r, Err(OpsError::Cancelled)), "{r:?}");
            let said = recorder.said();
            let at = |what: &str| said.iter().position(|s| s.starts_with(what));
            assert_eq!(
                said.first().map(String::as_str),
                Some("reading 3"),
                "{said:?}"
            );
            assert!(at("read done") < at("planned"), "{said:?}");
            assert_eq!(at("planned").map(|i| i + 1), at("confirm"), "{said:?}");
            assert_eq!(said.iter().filter(|s| s.starts_with("confirm")).count(), 1);
            assert!(
                at("applied").is_none() && at("password").is_none(),
                "{said:?}"
            );
            // --ask-pass, no password given, nobody to ask: refused before
            // any host is read.
            let recorder = Recorder::new(true);
            let r = rt.block_on(ops::apply(&inv, &graph, options(true), None, &recorder));
            assert!(matches!(r, Err(OpsError::Password(_))), "{r:?}");
            assert_eq!(recorder.said().len(), 1, "{:?}", recorder.said());
            let r = rt.block_on(ops::plan(
                &inv,
                &graph,
                options(true),
                &NonInteractive { consent: true },
            ));
            assert!(matches!(r, Err(OpsError::Password(_))), "{r:?}");
        }
        "consent" => {
            let recorder = Recorder::new(true);
            let outcome = rt
                .block_on(ops::apply(&inv, &graph, options(false), None, &recorder))
                .expect("apply");
            let applied = outcome.applied.as_ref().expect("changes were applied");
            assert!(!applied.report.failed(), "{outcome:?}");
            assert!(outcome.converged(), "{:?}", applied.left);
            let said = recorder.said();
            let at = |what: &str| said.iter().position(|s| s.starts_with(what));
            assert!(
                at("planned") < at("confirm") && at("confirm") < at("applied"),
                "{said:?}"
            );
            let report = rt
                .block_on(ops::verify(
                    &inv,
                    &graph,
                    options(false),
                    &NonInteractive::default(),
                ))
                .expect("verify");
            assert!(report.all_hold(), "{report:?}");
        }
        other => panic!("no step {other}"),
    }
}

#[test]
fn the_operations_run_without_the_command_line_and_a_refusal_changes_nothing() {
    let live = provisioned_with(
        vec![worker("node1"), worker("node2")],
        "mesh:\n  - [node1, node2]\n",
    );
    let exe = std::env::current_exe().unwrap();
    let exe = live.cluster.share(&exe).expect("share this test binary");
    let exe = exe.to_str().unwrap();
    let run = |step: &str| {
        let step = format!("{STEP}={step}");
        let argv = [
            "sh",
            "-c",
            "cd ~ && exec \"$@\"",
            "sh",
            "env",
            "-u",
            "TRUSTMESH_PASSWORD",
            &step,
            "TMPDIR=/tmp",
            exe,
            "--exact",
            "in_the_managers_account",
            "--nocapture",
            "--test-threads=1",
        ];
        let out = live.cluster.exec("manager", MANAGER_USER, &argv).unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{step}:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "{step}:\n{stdout}\n{stderr}");
    };
    let before = live.snapshot();
    run("refuse");
    assert!(live.snapshot() == before, "a refused apply changed a file");
    assert!(!live.can_ssh("node1", "node2"));
    run("consent");
    assert!(live.can_ssh("node1", "node2") && live.can_ssh("node2", "node1"));
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
