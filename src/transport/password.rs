//! `--ask-pass`: reaching a node that does not accept the manager's key yet.
//!
//! The `openssh` crate does key authentication only, so a node reached with
//! a password gets one plain `ssh` per command, with the run's config (the
//! same host key checking, jumps and timeouts as every other connection)
//! and a password allowed. `SSH_ASKPASS_REQUIRE=force` points ssh at
//! trustmesh itself, which hands the password over from its own
//! environment ([`askpass_secret`]): the password never reaches a file, an
//! argument list or a log, and only the `ssh` it serves sees it.
//! `$TRUSTMESH_PASSWORD` is taken out of the process environment first
//! thing ([`take_password_env`]), so no other child (ssh masters, the
//! manager's shell, verify's attempts) inherits it.
//!
//! `plan` uses such a login to read a node (the same probe, nothing
//! written); `apply` runs the node's planned actions over it, the first of
//! which installs the manager's key, after the operator agreed.

use std::fmt;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::StepError;

/// Environment variable that makes the trustmesh binary act as ssh's askpass
/// program.
pub const ASKPASS_ENV: &str = "TRUSTMESH_ASKPASS";
/// Where the askpass program finds the password (only in the environment of
/// the `ssh` it serves).
pub const SECRET_ENV: &str = "TRUSTMESH_ASKPASS_SECRET";
/// Where an operator may give the password instead of typing it.
pub const PASSWORD_ENV: &str = "TRUSTMESH_PASSWORD";

/// Called first thing by the binary: when it runs as ssh's askpass helper,
/// `Some` with the password to hand over (`None` inside: none was given);
/// the binary prints it and exits. `None`: an ordinary run.
pub fn askpass_secret() -> Option<Option<String>> {
    if std::env::var_os(ASKPASS_ENV).is_none_or(|v| v != "1") {
        return None;
    }
    Some(std::env::var(SECRET_ENV).ok())
}

/// `$TRUSTMESH_PASSWORD` as it was when [`take_password_env`] took it out
/// of the environment (`None`: unset, or not UTF-8).
static TAKEN_PASSWORD: OnceLock<Option<Secret>> = OnceLock::new();

/// Take `$TRUSTMESH_PASSWORD` out of the process environment, keeping its
/// value for [`given_password`], so that no child inherits it: only the
/// password `ssh` gets the secret, as `$TRUSTMESH_ASKPASS_SECRET`.
///
/// Called by the binary first thing in `main`, before the runtime or any
/// thread or child exists: removing a variable is sound only while the
/// process is single-threaded. Later calls keep the first value.
pub fn take_password_env() {
    TAKEN_PASSWORD.get_or_init(|| {
        let value = std::env::var(PASSWORD_ENV).ok().map(Secret::new);
        std::env::remove_var(PASSWORD_ENV);
        value
    });
}

/// A password, never printed (`Debug` hides it).
#[derive(Clone)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How to log in to one node with a password.
#[derive(Debug, Clone)]
pub struct PasswordLogin {
    /// The run's generated ssh config.
    pub config: PathBuf,
    /// The node's `Host` alias in it.
    pub alias: String,
    pub secret: Secret,
}

impl PasswordLogin {
    /// Run `line` on the node through one password login, `stdin` as its
    /// input. A refused password is a [`StepError::Transport`] whose text
    /// ssh wrote (sorted by [`super::classify`] like any other).
    pub async fn run(
        &self,
        line: &str,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Output, StepError> {
        let exe = std::env::current_exe().map_err(|e| {
            StepError::Transport(format!("cannot find the trustmesh binary for askpass: {e}"))
        })?;
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.arg("-F")
            .arg(&self.config)
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
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
            ])
            .arg(&self.alias)
            .arg(line)
            .env("SSH_ASKPASS", &exe)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .env(
                "DISPLAY",
                std::env::var("DISPLAY").unwrap_or_else(|_| ":0".into()),
            )
            .env(ASKPASS_ENV, "1")
            .env(SECRET_ENV, self.secret.expose())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let run = async {
            let mut child = cmd
                .spawn()
                .map_err(|e| StepError::Transport(format!("cannot run ssh: {e}")))?;
            if let Some(mut input) = child.stdin.take() {
                // A command that exits without reading its input is not an
                // error.
                let _ = input.write_all(stdin).await;
                let _ = input.shutdown().await;
            }
            child
                .wait_with_output()
                .await
                .map_err(|e| StepError::Transport(e.to_string()))
        };
        // The handshake and the password exchange come on top of the step.
        match tokio::time::timeout(timeout * 3, run).await {
            Ok(Ok(out)) if out.status.code() == Some(255) => Err(StepError::Transport(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            )),
            Ok(r) => r,
            Err(_) => Err(StepError::Timeout((timeout * 3).as_secs())),
        }
    }
}

/// The password given for `--ask-pass` in `$TRUSTMESH_PASSWORD` (as
/// [`take_password_env`] took it, or from the environment when it was not
/// called). `None`: the operator is asked ([`crate::ops::Operator`]).
pub fn given_password() -> Option<Secret> {
    match TAKEN_PASSWORD.get() {
        Some(taken) => taken.clone(),
        None => std::env::var(PASSWORD_ENV).ok().map(Secret::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_never_printed() {
        let s = Secret::new("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
        let login = PasswordLogin {
            config: "/x".into(),
            alias: "tm-a".into(),
            secret: s,
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}
