//! `--ask-pass`: install the manager's key on a node that does not accept
//! it yet, with one password login.
//!
//! The `openssh` crate does key authentication only, so this one step runs
//! the system `ssh` with the run's config and a password allowed, and
//! `SSH_ASKPASS_REQUIRE=force` pointing at trustmesh itself, which hands the
//! password over from its environment. The password never reaches a file,
//! an argument list or a log. What runs on the node is the fixed
//! [`crate::scripts::BOOTSTRAP`] script, which only appends the manager's
//! public key line when it is missing.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::scripts::{self, Outcome};
use crate::transport::classify;

/// Environment variable that makes the trustmesh binary act as ssh's askpass
/// program.
pub const ASKPASS_ENV: &str = "TRUSTMESH_ASKPASS";
/// Where the askpass program finds the password (only in the environment of
/// the `ssh` it serves).
pub const SECRET_ENV: &str = "TRUSTMESH_ASKPASS_SECRET";

/// Called first thing by the binary: when run as ssh's askpass helper, print
/// the password and say so (the caller then exits).
pub fn serve_askpass() -> bool {
    if std::env::var_os(ASKPASS_ENV).is_none_or(|v| v != "1") {
        return false;
    }
    if let Ok(secret) = std::env::var(SECRET_ENV) {
        println!("{secret}");
    }
    true
}

/// Log in to `alias` of the run's ssh config with `password` and add
/// `key_line` to the account's authorized_keys.
pub async fn install_key(
    config: &Path,
    alias: &str,
    target: &str,
    known_hosts: &str,
    key_line: &str,
    password: &str,
    timeout: Duration,
) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the trustmesh binary for askpass: {e}"))?;
    let line = scripts::command_line(scripts::BOOTSTRAP, &[key_line]);
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-F")
        .arg(config)
        .args([
            "-o",
            "BatchMode=no",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "PasswordAuthentication=yes",
            "-o",
            "KbdInteractiveAuthentication=yes",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg(alias)
        .arg(&line)
        .env("SSH_ASKPASS", &exe)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env(
            "DISPLAY",
            std::env::var("DISPLAY").unwrap_or_else(|_| ":0".into()),
        )
        .env(ASKPASS_ENV, "1")
        .env(SECRET_ENV, password)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout * 3, cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => return Err(format!("cannot run ssh: {e}")),
        Err(_) => return Err(format!("no answer within {} s", (timeout * 3).as_secs())),
    };
    match scripts::outcome(&out.stdout, &out.stderr, out.status.code()) {
        Outcome::Ok => Ok(()),
        Outcome::Failed(why) if out.stdout.is_empty() => {
            let f = classify(&String::from_utf8_lossy(&out.stderr), target, known_hosts);
            let _ = why;
            Err(match f.kind {
                crate::transport::FailureKind::AuthRejected => {
                    "the password was refused (or password logins are off on this node)".to_string()
                }
                _ => f.reason,
            })
        }
        other => Err(format!("{other:?}")),
    }
}
