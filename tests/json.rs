//! The JSON contract of every command (`--json`): the schemas in
//! `schemas/` are the ones generated from the Rust types, and real output
//! validates against them (plan and apply documents made in memory here,
//! validate's from the binary; apply and verify on real hosts in
//! `json_live.rs`).

mod support;

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;
use trustmesh::apply::{ActionResult, ApplyReport, NodeReport};
use trustmesh::model::inventory::Inventory;
use trustmesh::output::json;
use trustmesh::plan::{NodeState, Plan, PlanScope};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn example(name: &str) -> Inventory {
    Inventory::load(&root().join("inventories").join(name)).unwrap()
}

/// The committed schema `schemas/<name>.schema.json`.
fn schema(name: &str) -> serde_json::Value {
    let path = root().join(format!("schemas/{name}.schema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `doc` is valid for the committed schema `name`.
#[track_caller]
fn assert_valid(name: &str, doc: &serde_json::Value) {
    let schema = schema(name);
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{name} output fails its schema: {errors:#?}\n{doc:#}"
    );
}

fn to_value(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> serde_json::Value {
    let mut out = Vec::new();
    write(&mut out).unwrap();
    serde_json::from_slice(&out).expect("one JSON document")
}

#[test]
fn committed_schemas_match_the_rust_types() {
    let schemas = json::schemas();
    let names: Vec<&str> = schemas.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["plan", "apply", "verify", "validate"]);
    for (name, generated) in schemas {
        let path = root().join(format!("schemas/{name}.schema.json"));
        let generated = json::schema_text(&generated);
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).expect("write schema");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/{name}.schema.json is out of date with the Rust types; \
             regenerate it with `UPDATE_SCHEMA=1 cargo test --test json`"
        );
        // Each is a JSON Schema a validator takes.
        jsonschema::validator_for(&serde_json::from_str(&committed).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Plans with every kind of change and node status: fresh clusters of every
/// worked example (keys, folders, lines, blocks, Windows nodes), a drifted
/// converged one (removals, modes), one with an unreachable node, and a
/// rotation.
fn varied_plans() -> Vec<Plan> {
    let mut plans = Vec::new();
    for name in [
        "demo.yaml",
        "agilab.yaml",
        "pi-rack.yaml",
        "grid5000.yaml",
        "cloud-hpc.yaml",
        "sftp-windows.yaml",
    ] {
        let inv = example(name);
        plans.push(run(&inv, &fresh_cluster(&inv)));
    }
    let inv = example("demo.yaml");
    let mut live = converged(&inv);
    let node1 = inv.find("node1").unwrap();
    let acc = account_at(&mut live, node1);
    set_file(
        acc,
        "authorized_keys",
        0o644,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGone gone trustmesh:demo/retired\n",
    );
    live.nodes[inv.find("node2").unwrap()] =
        NodeState::Unreachable(trustmesh::model::finding::Finding::new(
            "connect",
            "Connection refused".into(),
            Some("is sshd running?".into()),
        ));
    plans.push(run(&inv, &live));
    let rotate = trustmesh::plan::plan(
        &inv,
        &trustmesh::TrustGraph::build(&inv),
        &converged(&inv),
        &PlanScope {
            rotate: HashSet::from([node1]),
            ..PlanScope::default()
        },
    );
    plans.push(rotate);
    plans
}

#[test]
fn plan_json_validates_against_its_schema() {
    let plans = varied_plans();
    let mut actions = HashSet::new();
    let mut statuses = HashSet::new();
    for p in &plans {
        let doc = to_value(|out| trustmesh::output::render_json(p, out));
        assert_eq!(doc["format_version"], trustmesh::plan::PLAN_FORMAT_VERSION);
        assert_valid("plan", &doc);
        for n in doc["nodes"].as_array().unwrap() {
            statuses.insert(n["status"].as_str().unwrap().to_string());
            for c in n["changes"].as_array().unwrap() {
                actions.insert(c["action"].as_str().unwrap().to_string());
            }
        }
    }
    // The plans above hold what the schema has to describe.
    for a in [
        "create_dir",
        "generate_key",
        "edit_file",
        "write_block",
        "mode",
        "rotate_key",
    ] {
        assert!(actions.contains(a), "no {a} in {actions:?}");
    }
    for s in ["planned", "unreachable"] {
        assert!(statuses.contains(s), "no {s} in {statuses:?}");
    }
}

#[test]
fn the_plan_schema_rejects_what_is_not_a_plan() {
    let inv = example("demo.yaml");
    let p = run(&inv, &fresh_cluster(&inv));
    let good = to_value(|out| trustmesh::output::render_json(&p, out));
    let mut no_version = good.clone();
    no_version.as_object_mut().unwrap().remove("format_version");
    let mut bad_action = good.clone();
    bad_action["nodes"][1]["changes"][0]["action"] = "format_disk".into();
    let validator = jsonschema::validator_for(&schema("plan")).unwrap();
    assert!(validator.is_valid(&good));
    assert!(!validator.is_valid(&no_version));
    assert!(!validator.is_valid(&bad_action));
}

#[test]
fn apply_json_has_each_action_and_the_closing_state() {
    let inv = example("demo.yaml");
    let live = fresh_cluster(&inv);
    let applied = run(&inv, &live);
    let report = ApplyReport {
        nodes: vec![
            NodeReport {
                node: "node1".into(),
                results: vec![
                    ActionResult::Done {
                        what: "mkdir ~/.ssh".into(),
                    },
                    ActionResult::Conflict {
                        what: "edit ~/.ssh/authorized_keys".into(),
                    },
                ],
            },
            NodeReport {
                node: "node2".into(),
                results: vec![
                    ActionResult::Failed {
                        what: "ssh-keygen ~/.ssh/id_ed25519".into(),
                        reason: "No space left on device".into(),
                    },
                    ActionResult::Skipped {
                        what: "edit ~/.ssh/known_hosts".into(),
                        because: "`ssh-keygen ~/.ssh/id_ed25519` did not succeed".into(),
                    },
                ],
            },
        ],
    };
    // What is left, as if nothing had been done.
    let after = run(&inv, &live);
    let doc =
        to_value(|out| trustmesh::output::render_apply_json(&applied, &report, &after, false, out));
    assert_valid("apply", &doc);
    assert_eq!(doc["format_version"], json::APPLY_FORMAT_VERSION);
    assert_eq!(
        doc["plan"]["format_version"],
        trustmesh::plan::PLAN_FORMAT_VERSION
    );
    assert_eq!(
        doc["plan"]["nodes"].as_array().unwrap().len(),
        applied.nodes.len()
    );
    assert_eq!(
        doc["actions"],
        serde_json::json!([
            {"node": "node1", "step": "mkdir ~/.ssh", "result": "ok"},
            {"node": "node1", "step": "edit ~/.ssh/authorized_keys", "result": "conflict",
             "reason": "the file changed since it was read; left as it is"},
            {"node": "node2", "step": "ssh-keygen ~/.ssh/id_ed25519", "result": "failed",
             "reason": "No space left on device"},
            {"node": "node2", "step": "edit ~/.ssh/known_hosts", "result": "skipped",
             "reason": "`ssh-keygen ~/.ssh/id_ed25519` did not succeed"},
        ])
    );
    assert_eq!(doc["converged"], false);
    // Only the nodes with something left are listed.
    let left: Vec<&str> = doc["remaining"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = after
        .nodes
        .iter()
        .filter(|n| !n.changes.is_empty())
        .map(|n| n.node.as_str())
        .collect();
    assert!(!left.is_empty());
    assert_eq!(left, expected);
    assert_eq!(
        doc["remaining"]["summary"]["add"],
        after.summary().add as u64
    );

    // Nothing to do: no action, converged, nothing left.
    let done = converged(&inv);
    let empty = run(&inv, &done);
    let doc = to_value(|out| {
        trustmesh::output::render_apply_json(&empty, &ApplyReport::default(), &empty, true, out)
    });
    assert_valid("apply", &doc);
    assert_eq!(doc["actions"], serde_json::json!([]));
    assert_eq!(doc["converged"], true);
    assert_eq!(doc["remaining"]["nodes"], serde_json::json!([]));
}

/// A trustmesh run: exit code, stdout, stderr.
fn trustmesh(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .args(args)
        .env_remove("TRUSTMESH_INVENTORY")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn validate_json_of_a_good_inventory() {
    let path = root().join("inventories/demo.yaml");
    let path = path.to_str().unwrap();
    let (code, stdout, stderr) = trustmesh(&["validate", "--json", path]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_valid("validate", &doc);
    assert_eq!(doc["format_version"], json::VALIDATE_FORMAT_VERSION);
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["file"], path);
    assert_eq!(doc["problems"], serde_json::json!([]));
    // The counts the text says.
    let (_, text, _) = trustmesh(&["validate", path]);
    let c = &doc["counts"];
    assert_eq!(c["managers"], 1);
    assert!(
        text.contains(&format!(
            "{} workers, {} trust edges",
            c["workers"], c["trust_edges"]
        )),
        "{text} vs {c}"
    );
}

#[test]
fn validate_json_gives_warnings_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.yaml");
    // A name that looks like a public host, with ssh aliases on.
    std::fs::write(
        &path,
        "version: 1\nmanager: {name: m}\nworkers:\n  - {name: github.com, address: 192.0.2.1}\n\
         options: {ssh_config: true}\n",
    )
    .unwrap();
    let (code, stdout, stderr) = trustmesh(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stderr, "", "the warnings are in the document only");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_valid("validate", &doc);
    let w = &doc["warnings"][0];
    assert_eq!(w["line"], 4, "{doc:#}");
    assert_eq!(w["column"], 12, "{doc:#}");
    assert_eq!(w["file"], path.to_str().unwrap());
    assert!(w["code"]
        .as_str()
        .unwrap()
        .starts_with("trustmesh::inventory::"));
    assert!(w["hint"].is_string());
}

#[test]
fn validate_json_of_a_bad_inventory_gives_each_problem_with_line_and_column() {
    let path = root().join("tests/fixtures/many-mistakes.yaml");
    let path = path.to_str().unwrap();
    let (code, stdout, stderr) = trustmesh(&["validate", "--json", path]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert_eq!(stderr, "", "nothing but the document");
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_valid("validate", &doc);
    assert_eq!(doc["valid"], false);
    assert!(doc.get("counts").is_none());
    let problems = doc["problems"].as_array().unwrap();
    assert!(problems.len() >= 8, "{doc:#}");
    assert_eq!(doc["total_problems"], problems.len());
    // `usr:` is line 3, column 3; `linx` line 4, column 7.
    assert_eq!(
        problems[0],
        serde_json::json!({
            "file": path, "line": 3, "column": 3,
            "message": "unknown key `usr` in `defaults`",
            "code": "trustmesh::inventory::unknown_key",
            "hint": "did you mean `user`?",
        })
    );
    assert_eq!(problems[1]["line"], 4);
    assert_eq!(problems[1]["column"], 7);
    for p in problems {
        assert!(p["line"].as_u64().unwrap() >= 1, "{p}");
        assert!(p["column"].as_u64().unwrap() >= 1, "{p}");
        assert!(!p["message"].as_str().unwrap().is_empty());
    }
}

#[test]
fn validate_json_of_broken_yaml_and_of_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "version: 1\nmanager: {name: m\nworkers: []\n").unwrap();
    let (code, stdout, _) = trustmesh(&["validate", "--json", path.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_valid("validate", &doc);
    let p = &doc["problems"][0];
    assert_eq!(p["code"], "trustmesh::inventory::syntax");
    assert!(p["line"].as_u64().unwrap() >= 2, "{p}");
    assert!(p["column"].as_u64().unwrap() >= 1, "{p}");

    let missing = dir.path().join("missing.yaml");
    let (code, stdout, _) = trustmesh(&["validate", "--json", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_valid("validate", &doc);
    assert_eq!(doc["problems"][0]["code"], "trustmesh::inventory::io");
    assert_eq!(doc["problems"][0]["line"], serde_json::Value::Null);
}

#[test]
fn apply_json_never_asks_even_on_a_terminal() {
    // `script` gives the command a terminal for standard input: without
    // --json, apply would show the plan and ask there.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let err = dir.path().join("err");
    let inv = root().join("inventories/demo.yaml");
    let q = |p: &Path| format!("'{}'", p.display());
    let cmd = format!(
        "{} apply --json {} >{} 2>{}",
        q(Path::new(env!("CARGO_BIN_EXE_trustmesh"))),
        q(&inv),
        q(&out),
        q(&err)
    );
    let status = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert_eq!(status.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(stdout, "", "nothing on standard output");
    assert!(
        stderr.contains("apply refused") && stderr.contains("--yes"),
        "{stderr}"
    );
    assert!(!stderr.contains("Apply these changes?"), "{stderr}");
}

/// A writer whose reader went away.
struct ClosedPipe;

impl Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn a_closed_pipe_stays_a_closed_pipe_in_every_document() {
    // The command line ends quietly on a closed pipe only when the error
    // keeps its kind.
    let inv = example("demo.yaml");
    let p = run(&inv, &fresh_cluster(&inv));
    let kinds = [
        trustmesh::output::render_json(&p, &mut ClosedPipe),
        trustmesh::output::render_apply_json(
            &p,
            &ApplyReport::default(),
            &p,
            false,
            &mut ClosedPipe,
        ),
        trustmesh::output::render_validate_json("inv.yaml", &Ok(inv.clone()), &mut ClosedPipe),
        trustmesh::verify::render_json(
            &trustmesh::verify::VerifyReport {
                nodes: vec!["manager".into()],
                edges: Vec::new(),
                certificates_ending: Vec::new(),
            },
            &mut ClosedPipe,
        ),
    ]
    .map(|r| r.unwrap_err().kind());
    assert_eq!(kinds, [io::ErrorKind::BrokenPipe; 4]);
}

/// `tests/fixtures/plan-main.json`: `plan --json` as main printed it
/// before the plan's findings became one `Finding` (made by a one-off test
/// on main's tree, the demo inventory with node4 unreachable with a hint,
/// node3 unreachable without one, node1 and node2 blocked with and without
/// one, two refused rotations). Read back and printed again, it keeps every
/// byte: the findings' fields keep their names, places and `null`s.
#[test]
fn a_plan_document_from_before_findings_prints_the_same_bytes() {
    use trustmesh::model::finding::{Finding, Hint};
    use trustmesh::plan::NodeStatus;
    let before = std::fs::read_to_string(root().join("tests/fixtures/plan-main.json")).unwrap();
    let plan: Plan = serde_json::from_str(&before).unwrap();
    let status = |node: &str| &plan.nodes.iter().find(|n| n.node == node).unwrap().status;
    assert_eq!(
        status("node4"),
        &NodeStatus::Unreachable(Finding::new(
            "connect",
            "no answer from 127.0.10.14:22 in time".into(),
            Some(Hint::RaiseTimeout {
                check: "check that the host is up and that sshd answers on 127.0.10.14:22".into()
            }),
        ))
    );
    assert!(matches!(status("node3"), NodeStatus::Unreachable(f) if f.hint.is_none()));
    assert!(
        matches!(status("node2"), NodeStatus::Blocked(f) if f.step == "plan" && f.hint.is_none())
    );
    let refused = plan.nodes[0].rotation_refused.as_ref().unwrap();
    assert_eq!(refused.missing, ["node4 (unreachable)"]);
    assert_eq!(
        refused.finding.hint,
        Some(Hint::RotateWithoutLimit { manager: true })
    );
    let mut again = Vec::new();
    trustmesh::output::render_json(&plan, &mut again).unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), before);
}
