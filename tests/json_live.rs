//! `--json` on real sshd hosts: `plan`, `apply` and `verify` print one
//! document each, nothing else on standard output, and each validates
//! against its committed schema in `schemas/`.
#![cfg(feature = "live")]

mod live;

use live::*;

/// `doc` is valid for the committed schema `schemas/<name>.schema.json`.
#[track_caller]
fn assert_valid(name: &str, doc: &serde_json::Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("schemas/{name}.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
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

fn results(doc: &serde_json::Value) -> Vec<&str> {
    doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["result"].as_str().unwrap())
        .collect()
}

#[test]
fn plan_apply_and_verify_json_validate_against_their_schemas() {
    let mut live = provisioned("reverse: [node1]\nmesh:\n  - [node2, node3]\n");

    let plan = live
        .run(&["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(0);
    let plan = plan.json();
    assert_valid("plan", &plan);

    // The whole standard output is the one document (`json()` refuses
    // anything after it); the plan and the progress are not on it.
    let applied = live
        .run(&["apply", "--json", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    let doc = applied.json();
    assert_valid("apply", &doc);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["plan"]["format_version"], plan["format_version"]);
    assert_eq!(doc["plan"]["summary"], plan["summary"]);
    let r = results(&doc);
    assert!(!r.is_empty(), "{doc:#}");
    assert!(r.iter().all(|r| *r == "ok"), "{doc:#}");
    for a in doc["actions"].as_array().unwrap() {
        assert!(a["node"].is_string() && a["step"].is_string(), "{a}");
        assert!(a.get("reason").is_none(), "{a}");
    }
    assert!(
        doc["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["node"] == "node2"),
        "{doc:#}"
    );
    assert_eq!(doc["converged"], true, "{doc:#}");
    assert_eq!(doc["remaining"]["nodes"], serde_json::json!([]));
    assert!(!applied.stdout.contains("Converged"), "{}", applied.stdout);

    let verified = live.run(&["verify", "--json"]).expect_exit(0);
    let v = verified.json();
    assert_valid("verify", &v);
    assert_eq!(v["format_version"], 1);
    // manager -> 3 workers, node1 -> manager, node2 <-> node3.
    assert_eq!(v["summary"]["edges"], 6, "{v:#}");
    assert_eq!(v["summary"]["hold"], 6, "{v:#}");

    // Nothing left to do: no action, converged.
    let again = live
        .run(&["apply", "--json", "--yes"])
        .expect_exit(0)
        .json();
    assert_valid("apply", &again);
    assert_eq!(again["actions"], serde_json::json!([]));
    assert_eq!(again["converged"], true);

    // A node down: not converged, exit 1, the node in what is left; the
    // failing edges in verify's document.
    live.cluster.stop("node3").expect("stop node3");
    let down = live.run(&["apply", "--json", "--yes"]).expect_exit(1);
    let down = down.json();
    assert_valid("apply", &down);
    assert_eq!(down["converged"], false, "{down:#}");
    let left = down["remaining"]["nodes"].as_array().unwrap();
    assert!(
        left.iter()
            .any(|n| n["node"] == "node3" && n["status"] == "unreachable"),
        "{down:#}"
    );
    let v = live.run(&["verify", "--json"]).expect_exit(1).json();
    assert_valid("verify", &v);
    assert!(
        v["summary"]["fail"].as_u64().unwrap() + v["summary"]["not_tried"].as_u64().unwrap() > 0
    );
}
