//! Git habits: the pre-commit hook of `.pre-commit-hooks.yaml` validates
//! inventories (its `entry` run as pre-commit runs it, and pre-commit's own
//! `try-repo` when it can be installed), and the drift job's documented
//! command is `plan --detailed-exitcode`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn hook() -> serde_yaml::Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(".pre-commit-hooks.yaml"))
        .expect("a .pre-commit-hooks.yaml at the top of the repository");
    let hooks: Vec<serde_yaml::Value> = serde_yaml::from_str(&text).unwrap();
    hooks
        .into_iter()
        .find(|h| h["id"].as_str() == Some("trustmesh-validate"))
        .expect("a hook with id trustmesh-validate")
}

/// PATH with the trustmesh binary first.
fn path_with_trustmesh(more: &[&Path]) -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_trustmesh"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut dirs: Vec<PathBuf> = more.iter().map(|p| p.to_path_buf()).collect();
    dirs.push(bin);
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

const BAD: &str = "version: 1\nmanager:\n  name: manager\nworkers:\n  - name: [not, a, name]\n";

fn good() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("inventories/demo.yaml")).unwrap()
}

/// Run the hook's `entry` with `files` appended, the way pre-commit does
/// (`language: system`: the entry split as a shell would, then the file
/// names).
fn run_entry(dir: &Path, files: &[&str]) -> Output {
    let entry = hook()["entry"].as_str().unwrap().to_string();
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec {entry} \"$@\""))
        .arg("sh")
        .args(files)
        .current_dir(dir)
        .env("PATH", path_with_trustmesh(&[]))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn the_hook_is_declared_for_inventories() {
    let h = hook();
    assert_eq!(h["pass_filenames"].as_bool(), Some(true));
    assert!(matches!(h["language"].as_str(), Some("system" | "rust")));
    let files = h["files"].as_str().unwrap();
    assert!(files.contains("ya?ml"), "{files}");
    assert!(h["entry"].as_str().unwrap().contains("trustmesh validate"));
}

#[test]
fn the_hooks_entry_validates_every_file_given() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), good()).unwrap();
    std::fs::write(dir.path().join("also-good.yaml"), good()).unwrap();
    std::fs::write(dir.path().join("bad.yaml"), BAD).unwrap();

    let ok = run_entry(dir.path(), &["good.yaml", "also-good.yaml"]);
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");

    // A bad file anywhere in the list fails the hook, and is named; the
    // files after it are still checked.
    let out = run_entry(dir.path(), &["bad.yaml", "good.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml"), "{err}");
    let out = run_entry(dir.path(), &["good.yaml", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = run_entry(dir.path(), &["good.yaml", "missing.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// pre-commit in a virtualenv in `dir`, or None when it cannot be
/// installed here (no python3, no network): the entry test above covers
/// the hook then.
fn install_pre_commit(dir: &Path) -> Option<PathBuf> {
    let venv = dir.join("venv");
    let ok = |c: &mut Command| c.output().ok().filter(|o| o.status.success()).is_some();
    if !ok(Command::new("python3").arg("-m").arg("venv").arg(&venv)) {
        eprintln!("skipped try-repo: python3 -m venv failed");
        return None;
    }
    if !ok(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        "20",
        "pre-commit",
    ])) {
        eprintln!("skipped try-repo: pip install pre-commit failed");
        return None;
    }
    Some(venv.join("bin"))
}

#[test]
fn pre_commit_try_repo_runs_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(bin) = install_pre_commit(tmp.path()) else {
        return;
    };
    let repo = tmp.path().join("cluster");
    std::fs::create_dir_all(repo.join("inventories")).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q"]);
    std::fs::write(repo.join("inventory.yaml"), good()).unwrap();
    std::fs::write(repo.join("inventories/lab.yaml"), good()).unwrap();
    // Not an inventory: the hook's `files` leaves it alone.
    std::fs::write(repo.join("compose.yml"), "services: {}\n").unwrap();
    git(&["add", "."]);
    let try_repo = || {
        Command::new(bin.join("pre-commit"))
            .args([
                "try-repo",
                ROOT,
                "trustmesh-validate",
                "--all-files",
                "--verbose",
            ])
            .current_dir(&repo)
            .env("PATH", path_with_trustmesh(&[&bin]))
            .env("PRE_COMMIT_HOME", tmp.path().join("cache"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = try_repo();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("trustmesh validate") && text.contains("Passed"),
        "{text}"
    );

    std::fs::write(repo.join("inventories/broken.yml"), BAD).unwrap();
    git(&["add", "."]);
    let out = try_repo();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Failed") && text.contains("broken.yml"),
        "{text}"
    );
    assert!(!text.contains("compose.yml"), "{text}");
}

/// The command the documented drift job runs.
pub fn drift_command() -> Vec<String> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/ci-drift.md")).unwrap();
    let line = doc
        .lines()
        .find_map(|l| l.trim().strip_prefix("run: trustmesh plan"))
        .expect("a `run: trustmesh plan ...` step in docs/ci-drift.md");
    std::iter::once("plan".to_string())
        .chain(line.split_whitespace().map(String::from))
        .collect()
}

#[test]
fn the_drift_job_fails_on_changes() {
    let cmd = drift_command();
    assert!(cmd.contains(&"--detailed-exitcode".to_string()), "{cmd:?}");
    assert!(!cmd.iter().any(|a| a.starts_with("--accept")), "{cmd:?}");
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/ci-drift.md")).unwrap();
    assert!(doc.contains("schedule"), "a scheduled job");
    assert!(!doc.contains("StrictHostKeyChecking=no"));
}
