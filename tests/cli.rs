//! The command line as users see it: exit codes of cli-v1 and exact output
//! (colour off), snapshot-tested.

use std::process::Command;

fn trustmesh(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TRUSTMESH_INVENTORY")
        .env("NO_COLOR", "1")
        .output()
        .expect("run trustmesh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn validate_accepts_every_example() {
    for name in [
        "agilab",
        "pi-rack",
        "grid5000",
        "cloud-hpc",
        "demo",
        "sftp-windows",
    ] {
        let path = format!("inventories/{name}.yaml");
        let (code, out, err) = trustmesh(&["validate", &path]);
        assert_eq!(code, 0, "{path}: {err}");
        assert!(
            out.starts_with(&format!("{path} is valid: 1 manager")),
            "{out}"
        );
    }
}

#[test]
fn validate_reports_every_mistake_with_file_line_and_column() {
    let (code, out, err) = trustmesh(&["validate", "tests/fixtures/many-mistakes.yaml"]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    insta::assert_snapshot!("validate_many_mistakes", err);
}

#[test]
fn validate_reads_the_inventory_from_the_environment() {
    let out = Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .args(["validate", "-q"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TRUSTMESH_INVENTORY", "inventories/demo.yaml")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "-q prints nothing on success");
}

#[test]
fn validate_without_a_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .arg("validate")
        .current_dir(dir.path())
        .env_remove("TRUSTMESH_INVENTORY")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read inventory inventory.yaml"),
        "{err}"
    );
    assert!(err.contains("TRUSTMESH_INVENTORY"), "{err}");
}

#[test]
fn syntax_error_is_placed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, "version: 1\nmanager:\n  name: m\n  - oops\n").unwrap();
    let (code, _, err) = trustmesh(&["validate", path.to_str().unwrap()]);
    assert_eq!(code, 1);
    let err = err.replace(dir.path().to_str().unwrap(), "DIR");
    insta::assert_snapshot!("validate_syntax_error", err);
}

#[test]
fn graph_formats() {
    let (code, out, _) = trustmesh(&["graph", "inventories/pi-rack.yaml", "--format", "dot"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("digraph trustmesh {"), "{out}");
    let (code, out, _) = trustmesh(&["graph", "inventories/pi-rack.yaml", "--format", "mermaid"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("flowchart LR"), "{out}");
    let (code, _, err) = trustmesh(&["graph", "tests/fixtures/many-mistakes.yaml"]);
    assert_eq!(code, 1, "an invalid inventory has no graph");
    assert!(err.contains("has 11 errors"), "{err}");
}

#[test]
fn usage_errors_exit_1_not_2() {
    // 2 is reserved for `plan --detailed-exitcode` (changes pending).
    let (code, _, err) = trustmesh(&["plan", "--no-such-flag"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, _) = trustmesh(&["frobnicate"]);
    assert_eq!(code, 1);
    let (code, out, _) = trustmesh(&["--help"]);
    assert_eq!(code, 0);
    for cmd in ["validate", "graph", "plan", "apply", "verify"] {
        assert!(out.contains(cmd), "--help lists {cmd}");
    }
}

#[test]
fn every_contract_flag_is_in_help() {
    let common = [
        "--accept-new-host-keys",
        "--ask-pass",
        "--concurrency",
        "--timeout",
        "--limit",
        "--color",
        "--quiet",
        "--verbose",
    ];
    for (cmd, own) in [
        ("plan", &["--json", "--out", "--detailed-exitcode"][..]),
        ("apply", &["--yes", "--plan"][..]),
        ("verify", &["--json"][..]),
    ] {
        let (code, out, _) = trustmesh(&[cmd, "--help"]);
        assert_eq!(code, 0);
        for flag in common.iter().chain(own) {
            assert!(out.contains(flag), "`{cmd} --help` lacks {flag}:\n{out}");
        }
    }
    let (_, out, _) = trustmesh(&["graph", "--help"]);
    assert!(out.contains("--format") && out.contains("mermaid"), "{out}");
}

/// `trustmesh ARGS` (with `env` added) whose standard output is a pipe
/// whose reader is gone before it starts, as in `trustmesh ... | head -1`
/// once head has its line: every write fails with EPIPE. Its exit code and
/// standard error.
fn into_a_closed_pipe(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TRUSTMESH_INVENTORY")
        .env("NO_COLOR", "1")
        .stdout(writer)
        .output()
        .expect("run trustmesh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_standard_output_is_no_panic() {
    let state = tempfile::tempdir().unwrap();
    let ssh_config = state.path().join("ssh_config");
    std::fs::write(&ssh_config, "Host a\n  HostName 10.0.0.1\n  User u\n").unwrap();
    let ssh_config = ssh_config.to_str().unwrap();
    let xdg = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    // What `plan`, `apply` and `verify` print into a closed pipe is tested
    // on real hosts (output_live.rs); these need none.
    for (args, env) in [
        (&["validate", "inventories/demo.yaml"][..], &[][..]),
        (&["validate", "--json", "inventories/demo.yaml"], &[]),
        (&["graph", "inventories/demo.yaml"], &[]),
        (&["graph", "--format", "dot", "inventories/demo.yaml"], &[]),
        (&["history", "inventories/demo.yaml"], &xdg[..]),
        (&["import", "ssh-config", ssh_config], &[]),
        (&["completions", "bash"], &[]),
        (&["man"], &[]),
        (&["--help"], &[]),
        (&["plan", "--help"], &[]),
        (&["--version"], &[]),
        // ssh's askpass helper (`--ask-pass`), whose reader went away.
        (
            &[],
            &[
                ("TRUSTMESH_ASKPASS", "1"),
                ("TRUSTMESH_ASKPASS_SECRET", "boot-Strap-42"),
            ],
        ),
    ] {
        let (code, err) = into_a_closed_pipe(args, env);
        assert!(
            !err.contains("panicked") && !err.contains("failed printing"),
            "trustmesh {args:?} into a closed pipe panicked:\n{err}"
        );
        assert_eq!(code, 0, "trustmesh {args:?} into a closed pipe:\n{err}");
        assert!(!err.contains("boot-Strap-42"), "{err}");
    }
}
