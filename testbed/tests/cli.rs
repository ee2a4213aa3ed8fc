//! The `testbed` binary as the demo script uses it: `up` leaves a cluster
//! running after the command exits, `exec` runs in it (stdin passed, exit
//! code returned), `down` stops it by the recorded pids.
#![cfg(feature = "live")]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_testbed");

fn testbed(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run testbed")
}

/// Takes the cluster down even when an assertion fails.
struct Down<'a>(&'a str);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = testbed(&["down", "--state", self.0]);
    }
}

#[test]
fn up_exec_down() {
    let parent = tempfile::tempdir().unwrap();
    let state = parent.path().join("state");
    let state_s = state.to_str().unwrap();
    let spec = parent.path().join("spec.json");
    std::fs::write(
        &spec,
        r#"{"hosts": [
            {"name": "mgr", "users": ["tbuser"]},
            {"name": "w1", "users": ["tbuser"], "port": 2222}
        ]}"#,
    )
    .unwrap();

    let up = testbed(&["up", "--state", state_s, "--spec", spec.to_str().unwrap()]);
    let _down = Down(state_s);
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(
        up.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert!(text.contains("mgr") && text.contains("2222"), "{text}");

    // Still running after `up` returned.
    let info = testbed(&["info", "--state", state_s]);
    let pids: Vec<u32> = String::from_utf8_lossy(&info.stdout)
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(3).unwrap().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    assert!(pids
        .iter()
        .all(|p| Path::new(&format!("/proc/{p}")).exists()));

    let host = testbed(&["exec", "--state", state_s, "w1", "tbuser", "--", "hostname"]);
    assert_eq!(host.stdout, b"w1\n");

    let mut child = Command::new(BIN)
        .args([
            "exec",
            "--state",
            state_s,
            "mgr",
            "tbuser",
            "--",
            "sh",
            "-c",
            "cat > got; exit 7",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    assert_eq!(
        std::fs::read(state.join("hosts/mgr/home/tbuser/got")).unwrap(),
        b"from stdin\n"
    );

    let known = testbed(&["known-hosts", "--state", state_s, "w1"]);
    assert!(
        String::from_utf8_lossy(&known.stdout).starts_with("[127."),
        "{known:?}"
    );

    let down = testbed(&["down", "--state", state_s]);
    assert!(down.status.success(), "{down:?}");
    for p in pids {
        // Gone, or a zombie of an init that does not reap (pid 1 here).
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "pid {p} still running: {stat}"
        );
    }
    assert!(!state.exists());
    assert!(!testbed(&["info", "--state", state_s]).status.success());
}

#[test]
fn bad_usage_says_how() {
    let out = testbed(&["exec", "--state", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    let out = testbed(&["up", "--state", "/tmp/x", "--spec", "/nonexistent.json"]);
    assert!(!out.status.success());
}
