//! The one boundary through which trustmesh touches hosts.
//!
//! A [`Host`] runs a shell command line with bytes on its standard input and
//! returns what it printed: locally for the manager (`sh -c`), or over one
//! multiplexed SSH master per node (the `openssh` crate driving the system's
//! OpenSSH client, its commands sent straight to the master's control
//! socket: `native-mux`) for everything else. Every step is bounded by a timeout,
//! so a frozen host costs at most that long and the rest of the run goes on.
//!
//! Command lines are built by callers from fixed templates whose data went
//! through [`crate::transport::scripts::shell_quote`]; nothing here interpolates.
//!
//! A node without a POSIX shell (`access: sftp`, Windows) is a remote host
//! whose files are reached over the SFTP subsystem of the same master
//! connection instead ([`sftp`], on the sequences of [`files`]).

pub mod batch;
pub mod errors;
pub mod files;
pub mod local;
pub mod password;
pub mod scripts;
pub mod sftp;
pub mod sshconfig;
pub mod windows;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

pub use errors::{classify, Failure, FailureKind};
pub use password::{PasswordLogin, Secret};

/// A host commands can run on.
#[derive(Debug)]
pub enum Host {
    /// The manager: the machine trustmesh runs on.
    Local,
    /// A node behind its own SSH master connection.
    Remote {
        session: openssh::Session,
        /// `addr:port`, for messages.
        target: String,
        /// Its files are reached over SFTP (`access: sftp`, Windows), not
        /// with scripts in a POSIX shell.
        sftp: bool,
    },
    /// A node that does not accept the manager's key yet, reached with a
    /// password (`--ask-pass`): one login per command.
    Password(PasswordLogin),
}

/// Why a step on a host failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("{0}")]
    Transport(String),
}

impl Host {
    /// Run `line` through the account's shell with `stdin` as input.
    pub async fn run(
        &self,
        line: &str,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Output, StepError> {
        match self {
            Host::Local => bounded(timeout, run_local(line, stdin)).await,
            Host::Remote { session, .. } => {
                bounded(timeout, run_remote(session, line, stdin)).await
            }
            // Bounded by its own timeout: a login comes on top of the step.
            Host::Password(login) => login.run(line, stdin, timeout).await,
        }
    }

    /// The same host, its files reached over SFTP when `on`.
    pub fn with_sftp(self, on: bool) -> Host {
        match self {
            Host::Remote {
                session, target, ..
            } => Host::Remote {
                session,
                target,
                sftp: on,
            },
            other => other,
        }
    }

    /// Are this host's files reached over SFTP?
    pub fn is_sftp(&self) -> bool {
        matches!(self, Host::Remote { sftp: true, .. })
    }

    /// The master connection, for a remote host.
    pub fn session(&self) -> Option<&openssh::Session> {
        match self {
            Host::Remote { session, .. } => Some(session),
            _ => None,
        }
    }

    /// Close the master connection (nothing to do locally).
    pub async fn close(self, timeout: Duration) {
        if let Host::Remote { session, .. } = self {
            let _ = tokio::time::timeout(timeout, session.close()).await;
        }
    }
}

async fn bounded(
    timeout: Duration,
    fut: impl std::future::Future<Output = Result<Output, StepError>>,
) -> Result<Output, StepError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(StepError::Timeout(timeout.as_secs())),
    }
}

async fn run_local(line: &str, stdin: &[u8]) -> Result<Output, StepError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| StepError::Transport(format!("cannot start sh: {e}")))?;
    if let Some(mut input) = child.stdin.take() {
        // A command that exits without reading its input is not an error.
        let _ = input.write_all(stdin).await;
    }
    child
        .wait_with_output()
        .await
        .map_err(|e| StepError::Transport(e.to_string()))
}

async fn run_remote(
    session: &openssh::Session,
    line: &str,
    stdin: &[u8],
) -> Result<Output, StepError> {
    let mut child = session
        .raw_command(line)
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::piped())
        .spawn()
        .await
        .map_err(|e| StepError::Transport(error_text(&e)))?;
    if let Some(mut input) = child.stdin().take() {
        let _ = input.write_all(stdin).await;
        let _ = input.shutdown().await;
    }
    child
        .wait_with_output()
        .await
        .map_err(|e| StepError::Transport(error_text(&e)))
}

/// `addr:port` of a node for messages and error sorting (`[addr]:port`
/// for an IPv6 address).
pub fn target(addr: &str, port: u16) -> String {
    crate::model::target::SshTarget::new(addr, port).to_string()
}

/// The full text of an error and its sources (ssh's message is often in a
/// source).
pub fn error_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = inner.source();
    }
    s
}

/// Open the master connection to `alias` of the run's ssh config. A
/// failure comes back sorted ([`classify`]: host key unknown or changed,
/// authentication refused, timeout, refused connection, ...), with the
/// manager's `known_hosts` (as shown to a person) in its hint.
pub async fn connect(
    config: &Path,
    control_dir: &Path,
    alias: &str,
    target: crate::model::target::SshTarget<'_>,
    known_hosts: &str,
    timeout: Duration,
) -> Result<Host, Failure> {
    let mut b = openssh::SessionBuilder::default();
    b.config_file(config)
        .control_directory(control_dir)
        .known_hosts_check(openssh::KnownHosts::Strict)
        .connect_timeout(timeout)
        .server_alive_interval(Duration::from_secs(5))
        .control_persist(openssh::ControlPersist::IdleFor(
            std::num::NonZeroUsize::new(300).unwrap_or(std::num::NonZeroUsize::MIN),
        ));
    // ConnectTimeout covers the TCP connect and the banner; a host that hangs
    // later in the handshake is cut off here. Jumps add their own handshake.
    // Native multiplexing: each command talks to the master's control
    // socket itself instead of starting one more `ssh` client (measured
    // with the cluster bench: cold apply -27% at 40 workers).
    match tokio::time::timeout(timeout * 3, b.connect_mux(alias)).await {
        Ok(Ok(session)) => Ok(Host::Remote {
            session,
            target: target.to_string(),
            sftp: false,
        }),
        Ok(Err(e)) => Err(classify(&error_text(&e), target, known_hosts)),
        Err(_) => Err(classify(
            &format!("connection timed out after {} s", (timeout * 3).as_secs()),
            target,
            known_hosts,
        )),
    }
}

/// A folder of this run's own: ssh config, control sockets, each node's
/// known_hosts file. Removed when dropped.
#[derive(Debug)]
pub struct RunDir {
    dir: tempfile::TempDir,
}

impl RunDir {
    pub fn new() -> std::io::Result<RunDir> {
        // Short path: control sockets must fit in sun_path (108 bytes).
        // 0700: it holds the control sockets of this run's connections.
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = tempfile::Builder::new()
            .prefix("tm-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(std::env::temp_dir())?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("hosts"))?;
        Ok(RunDir { dir })
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }
    /// Where each node's known_hosts file of this run goes
    /// ([`sshconfig::proof_path`]).
    pub fn proof_dir(&self) -> PathBuf {
        self.dir.path().join("hosts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_run_folder_is_private_and_removed() {
        let run = RunDir::new().unwrap();
        let path = run.path().to_path_buf();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        drop(run);
        assert!(!path.exists());
    }
}
