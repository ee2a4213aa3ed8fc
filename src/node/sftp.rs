//! The door of a node reached over SFTP only (`access: sftp`, Windows):
//! files are read ([`files::read_account`]), created, replaced
//! (compare-and-swap, through a temporary file renamed over the target),
//! chmod'ed and removed with SFTP requests ([`crate::transport::files`]);
//! nothing runs in a shell. A Windows node also runs its fixed command
//! lines ([`crate::transport::windows`]): the administrator check, the key
//! generation and the ACL step. What needs a POSIX shell (a key generated
//! on a Unix account without one, a rotation, a block write) is answered
//! [`Reason::Unsupported`]; the planner does not plan it.

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::{Door, DoorError, Hint, Op, Reason};
use crate::model::inventory::{Node, Os};
use crate::model::state::{FileKind, LiveAccount};
use crate::plan::NodeFiles;
use crate::transport::files::{self, read_account, AccountRequest, FsError, RemoteFiles, Replace};
use crate::transport::scripts::{self, Outcome};
use crate::transport::windows;
use crate::transport::Host;

/// SFTP over `host`'s master connection.
pub struct SftpDoor<'h> {
    node: String,
    user: String,
    windows: bool,
    host: &'h Host,
    timeout: Duration,
}

const NEEDS_A_SHELL: &str = "this needs a shell on the node, which is reached over SFTP only";

impl<'h> SftpDoor<'h> {
    pub fn new(node: &Node, host: &'h Host, timeout: Duration) -> SftpDoor<'h> {
        SftpDoor {
            node: node.name.clone(),
            user: node.user.clone().unwrap_or_default(),
            windows: node.os == Os::Windows,
            host,
            timeout,
        }
    }

    fn error(&self, step: &str, reason: Reason) -> DoorError {
        DoorError::new(&self.node, step, reason)
    }

    /// Run a fixed command line (Windows), bounded by the step's timeout.
    async fn command(&self, step: &str, line: &str) -> Result<std::process::Output, DoorError> {
        self.host
            .run(line, b"", self.timeout)
            .await
            .map_err(|e| match e {
                crate::transport::StepError::Timeout(s) => self.error(step, Reason::Timeout(s)),
                other => self.error(step, Reason::Transport(other.to_string())),
            })
    }

    async fn read(&self, files: &NodeFiles) -> Result<LiveAccount, DoorError> {
        const STEP: &str = "read over sftp";
        let Some(session) = self.host.session() else {
            return Err(self.error(STEP, Reason::Transport("no connection".into())));
        };
        let admin = if self.windows {
            let out = self
                .command("administrator check", windows::ADMIN_CHECK)
                .await?;
            windows::is_admin(&String::from_utf8_lossy(&out.stdout))
        } else {
            false
        };
        let files = files.clone().for_windows_admin(admin);
        let (read, stat_only) = files.probe_names();
        let req = AccountRequest {
            read,
            stat_only,
            user: self.user.clone(),
            host_key_dirs: if self.windows {
                vec!["/C:/ProgramData/ssh".into()]
            } else {
                vec!["/etc/ssh".into()]
            },
            now: SystemTime::now(),
        };
        let mut fs = crate::transport::sftp::open(session).await.map_err(|e| {
            self.error(STEP, Reason::Transport(e.to_string()))
                .with_hint(Hint::text(
                    "the node must serve the sftp subsystem (`Subsystem sftp` in its sshd_config)",
                ))
        })?;
        let read = read_account(&mut fs, &req).await;
        fs.close().await;
        let mut account = read.map_err(|e| self.error(STEP, Reason::Transport(e.to_string())))?;
        if self.windows {
            account.home = windows::home_from_sftp(&account.home);
            account.windows_admin = admin;
            if admin {
                account.windows_acl = self.read_admin_acl(&account).await;
            }
        }
        Ok(account)
    }

    /// The ACL of `administrators_authorized_keys` read back, when the
    /// file exists: the planner repairs it when it is not the one sshd
    /// demands (a failed `icacls` of an earlier apply included).
    async fn read_admin_acl(&self, account: &LiveAccount) -> Option<windows::AclReadBack> {
        use windows::{acl_read_command, AclReadBack, ADMIN_AUTHORIZED_KEYS};
        account.file(ADMIN_AUTHORIZED_KEYS)?.stat.as_ref()?;
        let line = match acl_read_command(ADMIN_AUTHORIZED_KEYS) {
            Ok(l) => l,
            Err(e) => return Some(AclReadBack::Unreadable(e.to_string())),
        };
        Some(match self.host.run(&line, b"", self.timeout).await {
            Ok(out) => AclReadBack::from_output(
                &String::from_utf8_lossy(&out.stdout),
                &String::from_utf8_lossy(&out.stderr),
                out.status.success(),
            ),
            Err(e) => AclReadBack::Unreadable(e.to_string()),
        })
    }

    async fn run_op(&self, op: &Op) -> Result<Outcome, DoorError> {
        match op {
            Op::Keygen {
                path,
                key_type,
                marker,
            } if self.windows => {
                let line = windows::keygen_command(
                    path.as_plan(),
                    key_type,
                    super::shell::keygen_bits(key_type),
                    marker,
                )
                .map_err(|e| self.error(op.step(), Reason::Request(e.to_string())))?;
                let out = self.command(op.step(), &line).await?;
                return Ok(scripts::outcome(
                    &out.stdout,
                    &out.stderr,
                    out.status.code(),
                ));
            }
            Op::SetAcl { command, .. } => {
                let out = self.command(op.step(), command).await?;
                return Ok(if out.status.success() {
                    Outcome::Ok
                } else {
                    Outcome::Failed(format!(
                        "icacls failed: {}{}",
                        String::from_utf8_lossy(&out.stdout).trim(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ))
                });
            }
            Op::Keygen { .. }
            | Op::Swap { .. }
            | Op::Prove(_)
            | Op::Sign(_)
            | Op::ReloadSshd { .. } => {
                return Err(self.error(op.step(), Reason::Unsupported(NEEDS_A_SHELL.into())))
            }
            Op::WriteBlock(_) => {
                return Err(self.error(
                    op.step(),
                    Reason::Unsupported("not possible over SFTP".into()),
                ))
            }
            _ => {}
        }
        let Some(session) = self.host.session() else {
            return Err(self.error(op.step(), Reason::Transport("no connection".into())));
        };
        let work = async {
            let mut fs = crate::transport::sftp::open(session)
                .await
                .map_err(|e| self.error(op.step(), Reason::Transport(e.0)))?;
            let acl = HostAcl { door: self };
            let r = file_op(&mut fs, self.windows, op, acl).await;
            fs.close().await;
            r.map_err(|e| self.error(op.step(), e))
        };
        // Twice the step's timeout: a session start and a few round trips.
        match tokio::time::timeout(self.timeout * 2, work).await {
            Ok(r) => r,
            Err(_) => Err(self.error(op.step(), Reason::Timeout((self.timeout * 2).as_secs()))),
        }
    }
}

impl Door for SftpDoor<'_> {
    fn node(&self) -> &str {
        &self.node
    }

    fn read_state<'a>(
        &'a self,
        files: &'a NodeFiles,
    ) -> BoxFuture<'a, Result<LiveAccount, DoorError>> {
        Box::pin(async move {
            let timeout = self.timeout * 2;
            match tokio::time::timeout(timeout, self.read(files)).await {
                Ok(r) => r,
                Err(_) => Err(self
                    .error("read over sftp", Reason::Timeout(self.timeout.as_secs()))
                    .with_hint(Hint::StoppedAnswering)),
            }
        })
    }

    fn run<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Result<Outcome, DoorError>> {
        Box::pin(self.run_op(op))
    }
}

/// Sets the ACL sshd demands on a file of a Windows node (its server
/// path), and reads it back: [`windows::acl_command`], then
/// [`windows::acl_read_command`]. `fs` is the node's file session, for the
/// tests' in-memory one.
pub(crate) trait SetAcl<F> {
    async fn set_acl(&mut self, fs: &mut F, server_path: &str) -> Result<(), FsError>;
}

/// [`SetAcl`] on a real node: the fixed command lines, run over its
/// connection.
struct HostAcl<'d, 'h> {
    door: &'d SftpDoor<'h>,
}

impl<F> SetAcl<F> for HostAcl<'_, '_> {
    async fn set_acl(&mut self, _: &mut F, server_path: &str) -> Result<(), FsError> {
        use windows::{acl_command, acl_read_command, check_acl, AclReadBack};
        let fail = |e: &dyn std::fmt::Display| FsError(e.to_string());
        let (host, timeout) = (self.door.host, self.door.timeout);
        let path = windows::path_from_sftp(server_path);
        let line = acl_command(&path).map_err(|e| fail(&e))?;
        let out = host.run(&line, b"", timeout).await.map_err(|e| fail(&e))?;
        if !out.status.success() {
            return Err(FsError(format!(
                "icacls failed on {path}: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let read = acl_read_command(&path).map_err(|e| fail(&e))?;
        let out = host.run(&read, b"", timeout).await.map_err(|e| fail(&e))?;
        match AclReadBack::from_output(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
            out.status.success(),
        ) {
            AclReadBack::Sddl(s) if check_acl(&s).repair.is_empty() => Ok(()),
            AclReadBack::Sddl(s) => Err(FsError(format!(
                "the ACL of {path} read back after icacls is not the one sshd demands ({}): {s}",
                check_acl(&s).repair.join(", ")
            ))),
            AclReadBack::Unreadable(why) => Err(FsError(format!(
                "the ACL of {path} could not be read back after icacls: {why}"
            ))),
        }
    }
}

/// The file operations of `op` on any [`RemoteFiles`]: SFTP, or the
/// in-memory tree of [`super::memory`]. An `Err` is the protocol's own
/// failure.
pub(crate) async fn file_op<F: RemoteFiles, A: SetAcl<F>>(
    fs: &mut F,
    windows: bool,
    op: &Op,
    mut acl: A,
) -> Result<Outcome, Reason> {
    let failed = |e: files::FsError| Outcome::Failed(e.0);
    Ok(match op {
        Op::MkDir { path } => {
            let p = path.sftp();
            match fs.lstat(&p).await {
                Ok(Some(s)) if s.kind == FileKind::Dir => Outcome::Ok,
                Ok(Some(_)) => Outcome::Failed(format!("{path} exists but is not a directory")),
                Ok(None) => fs
                    .mkdir(&p, 0o700)
                    .await
                    .map_or_else(failed, |_| Outcome::Ok),
                Err(e) => failed(e),
            }
        }
        Op::Replace(w) => {
            // The account's uid as SFTP can tell it (SFTP has no `id`);
            // owners mean nothing on Windows.
            let owner = if windows {
                None
            } else {
                Some(
                    files::account_owner(fs)
                        .await
                        .map_err(|e| Reason::Transport(e.0))?
                        .0,
                )
            };
            let path = w.path.sftp();
            let temp = files::temp_name();
            let r = Replace {
                path: &path,
                expected: &w.expected,
                mode: &w.mode,
                content: &w.content,
                owner,
                temp_name: &temp,
            };
            // The administrators' file: its ACL is set on the temporary
            // file, read back, and only then renamed over the file sshd
            // reads (a rename keeps the ACL).
            let admin = windows::sftp_path(windows::ADMIN_AUTHORIZED_KEYS);
            if windows && path == admin {
                files::replace_file_with(fs, &r, async |fs: &mut F, tmp: &str| {
                    acl.set_acl(fs, tmp).await
                })
                .await
            } else {
                files::replace_file(fs, &r).await
            }
        }
        Op::Chmod { path, mode } => fs
            .set_mode(&path.sftp(), *mode)
            .await
            .map_or_else(failed, |_| Outcome::Ok),
        Op::Chown { path, uid } => {
            let p = path.sftp();
            match fs.lstat(&p).await {
                Ok(Some(s)) => fs
                    .set_owner(&p, *uid, s.gid)
                    .await
                    .map_or_else(failed, |_| Outcome::Ok),
                Ok(None) => Outcome::Failed(format!("{path} is gone")),
                Err(e) => failed(e),
            }
        }
        Op::RemoveLeftover { path } => {
            let name = path.as_plan().rsplit('/').next().unwrap_or_default();
            if !crate::gather::probe::is_leftover_name(name) {
                Outcome::Failed(format!("{path} is not a file trustmesh leaves"))
            } else {
                match fs.remove(&path.sftp()).await {
                    Ok(()) => Outcome::Ok,
                    // Gone already: what was wanted.
                    Err(_) if matches!(fs.lstat(&path.sftp()).await, Ok(None)) => Outcome::Ok,
                    Err(e) => failed(e),
                }
            }
        }
        _ => Outcome::Failed("not possible over SFTP".into()),
    })
}

#[cfg(test)]
#[path = "sftp_tests.rs"]
mod tests;
