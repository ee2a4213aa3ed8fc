//! On real sshd hosts: what trustmesh prints is safe, and a reader that
//! goes away is a quiet end of the output, not of the command.
//!
//! - `plan`, `apply --yes` and `verify` whose standard output is closed
//!   (`| head -1`, or a read end dropped before the first byte) do not
//!   panic and exit with the code they have when read to the end; `apply`
//!   goes on and converges.
//! - A managed-looking line whose options clear the terminal is printed
//!   escaped by `plan` and `apply`, colours on or off.
#![cfg(feature = "live")]

mod live;

use std::io::Read;
use std::process::Stdio;

use live::*;

/// A throwaway public key (its private half was deleted).
const GHOST_KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIAFND83VEQ2CxutD6L1XZ0iCMSEtS7csNAXQ9I9TzBEW";

/// The command line of trustmesh on the manager, as [`Live::trustmesh`]
/// runs it, with `shell` around it: `"$@"` is the binary and its args.
fn on_manager(live: &Live, shell: &str, args: &[&str]) -> std::process::Command {
    let mut argv = vec!["sh", "-c", shell, "sh", "env", "NO_COLOR=1", "TMPDIR=/tmp"];
    argv.push(live.bin());
    argv.extend_from_slice(args);
    live.cluster
        .command("manager", MANAGER_USER, &argv)
        .expect("the manager's command")
}

/// Run trustmesh with its standard output a pipe whose read end is closed
/// before it starts: every write of it fails with EPIPE. Returns its exit
/// code and standard error.
fn closed_stdout(live: &Live, args: &[&str]) -> (Option<i32>, String) {
    let mut child = on_manager(live, "cd ~ && exec \"$@\"", args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn trustmesh");
    drop(child.stdout.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), stderr)
}

/// `trustmesh ARGS | head -n 1`: the line head read, trustmesh's exit code
/// (written by the shell on standard error) and its standard error.
fn head_1(live: &Live, args: &[&str]) -> (String, Option<i32>, String) {
    let out = on_manager(
        live,
        "cd ~ && { \"$@\"; echo \"trustmesh-exit=$?\" >&2; } | head -n 1",
        args,
    )
    .stdin(Stdio::null())
    .output()
    .expect("run trustmesh | head -n 1");
    let (stdout, stderr) = text(&out);
    let code = stderr
        .lines()
        .find_map(|l| l.strip_prefix("trustmesh-exit="))
        .and_then(|c| c.trim().parse().ok());
    (stdout, code, stderr)
}

#[track_caller]
fn no_panic(what: &str, stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("failed printing"),
        "{what} panicked:\n{stderr}"
    );
}

#[test]
fn a_closed_standard_output_ends_the_output_not_the_command() {
    let live = provisioned_with(
        vec![worker("node1"), worker("node2")],
        "mesh:\n  - [node1, node2]\n",
    );
    let verify = ["verify", "--accept-new-host-keys"];
    let plan = ["plan", "--accept-new-host-keys", "--detailed-exitcode"];

    // Before apply the mesh does not hold: verify fails, read or not.
    live.run(&verify).expect_exit(1);
    let (code, stderr) = closed_stdout(&live, &verify);
    no_panic("verify", &stderr);
    assert_eq!(code, Some(1), "verify into a closed pipe:\n{stderr}");

    // Changes: 2 with --detailed-exitcode, read or not.
    live.run(&plan).expect_exit(2);
    let (code, stderr) = closed_stdout(&live, &plan);
    no_panic("plan", &stderr);
    assert_eq!(code, Some(2), "plan into a closed pipe:\n{stderr}");
    let (first, code, stderr) = head_1(&live, &plan);
    no_panic("plan | head -1", &stderr);
    assert_eq!(code, Some(2), "plan | head -1:\n{first}\n{stderr}");
    assert_eq!(first.lines().count(), 1, "{first}");

    // apply --yes | head -1: the reader is gone long before the report;
    // apply goes on to the end and exits 0, converged.
    let (first, code, stderr) = head_1(&live, &["apply", "--accept-new-host-keys", "--yes"]);
    no_panic("apply --yes | head -1", &stderr);
    assert_eq!(code, Some(0), "apply --yes | head -1:\n{first}\n{stderr}");
    assert!(!first.is_empty(), "{stderr}");
    live.run(&plan).expect_exit(0);
    live.run(&verify).expect_exit(0);

    // Drift, then apply with no reader at all: the same.
    let out = live.run_as("node1", WORKER_USER, "chmod 755 ~/.ssh");
    assert!(out.status.success());
    live.run(&plan).expect_exit(2);
    let (code, stderr) = closed_stdout(&live, &["apply", "--yes"]);
    no_panic("apply --yes", &stderr);
    assert_eq!(code, Some(0), "apply --yes into a closed pipe:\n{stderr}");
    live.run(&plan).expect_exit(0);

    // Nothing to change, nothing to verify wrong: 0, read or not.
    let (code, stderr) = closed_stdout(&live, &verify);
    no_panic("verify", &stderr);
    assert_eq!(code, Some(0), "verify into a closed pipe:\n{stderr}");
    let (code, stderr) = closed_stdout(&live, &plan);
    no_panic("plan", &stderr);
    assert_eq!(code, Some(0), "plan into a closed pipe:\n{stderr}");
}

#[test]
fn a_line_that_clears_the_terminal_is_printed_escaped() {
    let live = provisioned_with(vec![worker("node1")], "");
    // A line that looks like one trustmesh wrote for a node that is gone,
    // its options the escape sequences of issue 19.
    let cmd = format!(
        "printf 'command=\"\\033[2J\\033[12A\" ssh-ed25519 {GHOST_KEY} trustmesh:manager/ghost\\n' >> ~/.ssh/authorized_keys"
    );
    let out = live.run_as("node1", WORKER_USER, &cmd);
    assert!(out.status.success(), "{:?}", text(&out));
    let ak = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/authorized_keys")
        .unwrap();
    assert!(
        ak.windows(4).any(|w| w == b"\x1b[2J"),
        "the line holds a raw ESC"
    );

    // The plan removes it and shows it escaped, never raw.
    let json = live
        .run(&["plan", "--accept-new-host-keys", "--json"])
        .expect_exit(0);
    let ak_edit = plan_change(&json.json(), "node1", "edit_file", "~/.ssh/authorized_keys").clone();
    assert!(
        ak_edit["remove"]
            .to_string()
            .contains("\\u001b[2J\\u001b[12A"),
        "{ak_edit:#}"
    );
    let shown = "- command=\"\\e[2J\\e[12A\" ssh-ed25519 AAAAC3NzaC1l";
    for color in ["--color=never", "--color=always"] {
        let out = live.trustmesh(&["plan", "--accept-new-host-keys", color]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
        assert!(
            !out.stdout.windows(4).any(|w| w == b"\x1b[2J")
                && !out.stdout.windows(5).any(|w| w == b"\x1b[12A"),
            "raw escape sequences from node1 in the plan:\n{stdout:?}"
        );
        assert!(stdout.contains(shown), "{stdout}");
        if color == "--color=never" {
            assert!(!out.stdout.contains(&0x1b), "{stdout:?}");
        } else {
            assert!(stdout.contains("\x1b[31m"), "colours stay: {stdout:?}");
        }
    }

    // apply shows the plan the same way, removes the line, converges.
    let out = live.trustmesh(&["apply", "--accept-new-host-keys", "--yes"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!out.stdout.contains(&0x1b), "{stdout:?}");
    assert!(!out.stderr.contains(&0x1b), "{stderr:?}");
    assert!(stdout.contains(shown), "{stdout}");
    assert!(stdout.contains("Converged"), "{stdout}");
    let ak = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/authorized_keys")
        .unwrap();
    assert!(!ak.contains(&0x1b), "{}", String::from_utf8_lossy(&ak));
}
