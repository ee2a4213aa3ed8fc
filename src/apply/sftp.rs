//! Carrying out one action on a node reached over SFTP (`access: sftp`,
//! Windows): files are created, replaced (compare-and-swap, through a
//! temporary file renamed over the target), chmod'ed and removed with SFTP
//! requests ([`crate::transport::files`]); nothing runs in a shell. A
//! Windows node also runs its fixed command lines
//! ([`crate::transport::windows`]): the key generation and the ACL step. What needs a
//! POSIX shell (a key generated on a Unix account without one, a
//! rotation) is refused; the planner does not plan it.

use super::actions::EditInput;
use super::*;
use crate::transport::files::{self, RemoteFiles, Replace};
use crate::transport::sftp as transport_sftp;

/// Sets the ACL sshd demands on a file of a Windows node (its server
/// path), and reads it back: [`crate::transport::windows::acl_command`], then
/// [`crate::transport::windows::acl_read_command`]. `fs` is the node's file session,
/// for the tests' in-memory one.
pub(super) trait SetAcl<F> {
    async fn set_acl(&mut self, fs: &mut F, server_path: &str) -> Result<(), String>;
}

/// [`SetAcl`] on a real node: the fixed command lines, run over its
/// connection.
struct HostAcl<'h> {
    host: &'h Host,
    timeout: Duration,
}

impl<F> SetAcl<F> for HostAcl<'_> {
    async fn set_acl(&mut self, _: &mut F, server_path: &str) -> Result<(), String> {
        use crate::transport::windows::{acl_command, acl_read_command, check_acl, AclReadBack};
        let path = crate::transport::windows::path_from_sftp(server_path);
        let line = acl_command(&path).map_err(|e| e.to_string())?;
        let out = self
            .host
            .run(&line, b"", self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "icacls failed on {path}: {}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let read = acl_read_command(&path).map_err(|e| e.to_string())?;
        let out = self
            .host
            .run(&read, b"", self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        match AclReadBack::from_output(
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
            out.status.success(),
        ) {
            AclReadBack::Sddl(s) if check_acl(&s).repair.is_empty() => Ok(()),
            AclReadBack::Sddl(s) => Err(format!(
                "the ACL of {path} read back after icacls is not the one sshd demands ({}): {s}",
                check_acl(&s).repair.join(", ")
            )),
            AclReadBack::Unreadable(why) => Err(format!(
                "the ACL of {path} could not be read back after icacls: {why}"
            )),
        }
    }
}

pub(super) async fn run_action(
    host: &Host,
    windows: bool,
    marker: &str,
    action: &Action,
    edit: Option<EditInput>,
    timeout: Duration,
) -> Result<Outcome, String> {
    match &action.kind {
        Kind::Keygen { path, key_type } if windows => {
            let line = crate::transport::windows::keygen_command(
                path,
                key_type,
                keygen_bits(key_type),
                marker,
            )
            .map_err(|e| e.to_string())?;
            let out = host
                .run(&line, b"", timeout)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(scripts::outcome(
                &out.stdout,
                &out.stderr,
                out.status.code(),
            ));
        }
        Kind::SetAcl { command, .. } => {
            let out = host
                .run(command, b"", timeout)
                .await
                .map_err(|e| e.to_string())?;
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
        Kind::Keygen { .. } | Kind::Swap { .. } | Kind::Prove { .. } => {
            return Ok(Outcome::Failed(
                "this needs a shell on the node, which is reached over SFTP only".into(),
            ))
        }
        _ => {}
    }
    let Some(session) = host.session() else {
        return Err("no connection".into());
    };
    let work = async {
        let mut fs = transport_sftp::open(session).await.map_err(|e| e.0)?;
        let acl = HostAcl { host, timeout };
        let r = file_action(&mut fs, windows, action, edit, acl).await;
        fs.close().await;
        r
    };
    // Twice the step's timeout: a session start and a few round trips.
    match tokio::time::timeout(timeout * 2, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", (timeout * 2).as_secs())),
    }
}

/// A plan path as the SFTP server takes it (`~/.ssh/x` -> `.ssh/x`,
/// `C:\x` -> `/C:/x`).
fn server_path(path: &str) -> String {
    crate::transport::windows::sftp_path(&scripts::script_path(path))
}

async fn file_action<F: RemoteFiles, A: SetAcl<F>>(
    fs: &mut F,
    windows: bool,
    action: &Action,
    edit: Option<EditInput>,
    mut acl: A,
) -> Result<Outcome, String> {
    let failed = |e: files::FsError| Outcome::Failed(e.0);
    Ok(match &action.kind {
        Kind::MkDir { path } => {
            let p = server_path(path);
            match fs.lstat(&p).await {
                Ok(Some(s)) if s.kind == crate::model::state::FileKind::Dir => Outcome::Ok,
                Ok(Some(_)) => Outcome::Failed(format!("{path} exists but is not a directory")),
                Ok(None) => fs
                    .mkdir(&p, 0o700)
                    .await
                    .map_or_else(failed, |_| Outcome::Ok),
                Err(e) => failed(e),
            }
        }
        Kind::Edit { .. } => {
            let Some(e) = edit else {
                return Err("internal: no content for the edit".into());
            };
            let content = e.content?;
            // The account's uid as SFTP can tell it (SFTP has no `id`);
            // owners mean nothing on Windows.
            let owner = if windows {
                None
            } else {
                Some(files::account_owner(fs).await.map_err(|e| e.0)?.0)
            };
            let path = crate::transport::windows::sftp_path(&e.path);
            let temp = files::temp_name();
            let r = Replace {
                path: &path,
                expected: &e.expected,
                mode: &e.mode,
                content: content.as_bytes(),
                owner,
                temp_name: &temp,
            };
            // The administrators' file: its ACL is set on the temporary
            // file, read back, and only then renamed over the file sshd
            // reads (a rename keeps the ACL).
            let admin = crate::transport::windows::sftp_path(
                crate::transport::windows::ADMIN_AUTHORIZED_KEYS,
            );
            if windows && path == admin {
                files::replace_file_with(fs, &r, async |fs: &mut F, tmp: &str| {
                    acl.set_acl(fs, tmp).await
                })
                .await
            } else {
                files::replace_file(fs, &r).await
            }
        }
        Kind::Mode { path, to } => fs
            .set_mode(&server_path(path), *to)
            .await
            .map_or_else(failed, |_| Outcome::Ok),
        Kind::Owner { path, to } => {
            let p = server_path(path);
            match fs.lstat(&p).await {
                Ok(Some(s)) => fs
                    .set_owner(&p, *to, s.gid)
                    .await
                    .map_or_else(failed, |_| Outcome::Ok),
                Ok(None) => Outcome::Failed(format!("{path} is gone")),
                Err(e) => failed(e),
            }
        }
        Kind::RemoveLeftover { path } => {
            let name = path.rsplit('/').next().unwrap_or_default();
            if !crate::gather::probe::is_leftover_name(name) {
                Outcome::Failed(format!("{path} is not a file trustmesh leaves"))
            } else {
                match fs.remove(&server_path(path)).await {
                    Ok(()) => Outcome::Ok,
                    // Gone already: what was wanted.
                    Err(_) if matches!(fs.lstat(&server_path(path)).await, Ok(None)) => Outcome::Ok,
                    Err(e) => failed(e),
                }
            }
        }
        _ => Outcome::Failed("not possible over SFTP".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::files::tests::{block_on, Mem};

    fn action(kind: Kind) -> Action {
        Action { plan_node: 0, kind }
    }

    /// The ACL step on the in-memory tree: logged in the tree's own log
    /// (so its place among the creates and renames shows), failing on
    /// request.
    struct MemAcl {
        fail: bool,
    }

    impl SetAcl<Mem> for MemAcl {
        async fn set_acl(&mut self, fs: &mut Mem, server_path: &str) -> Result<(), String> {
            fs.log.push(format!("acl {server_path}"));
            if self.fail {
                Err("icacls failed: Access is denied.".into())
            } else {
                Ok(())
            }
        }
    }

    const NO_ACL: MemAcl = MemAcl { fail: false };

    /// The input of an edit that writes `content` (mode 0600) to `path`,
    /// planned from a file whose checksum was `expected`.
    fn edit_input(display: &str, path: &str, expected: &str, content: &str) -> EditInput {
        EditInput {
            key: (0, display.into()),
            path: path.into(),
            expected: expected.into(),
            content: Ok(content.into()),
            mode: "0600".into(),
            missing: Vec::new(),
            remove: false,
            sudo: false,
        }
    }

    #[test]
    fn files_are_made_written_chmoded_and_swept_without_a_shell() {
        let mut m = Mem::new();
        let run = |m: &mut Mem, kind: Kind, edit: Option<EditInput>| {
            block_on(file_action(m, false, &action(kind), edit, NO_ACL)).unwrap()
        };
        let mkdir = || Kind::MkDir {
            path: "~/.ssh".into(),
        };
        assert_eq!(run(&mut m, mkdir(), None), Outcome::Ok);
        assert_eq!(m.stat(".ssh").unwrap().mode, 0o700);
        // Made already: nothing to do.
        assert_eq!(run(&mut m, mkdir(), None), Outcome::Ok);
        let edit = |expected: &str, content: &str| {
            edit_input(
                "~/.ssh/authorized_keys",
                ".ssh/authorized_keys",
                expected,
                content,
            )
        };
        let out = run(
            &mut m,
            Kind::Edit { change: 0 },
            Some(edit("absent", "a\n")),
        );
        assert_eq!(out, Outcome::Ok);
        assert_eq!(m.content(".ssh/authorized_keys"), Some(&b"a\n"[..]));
        assert_eq!(m.stat(".ssh/authorized_keys").unwrap().mode, 0o600);
        // Planned from another text: a conflict, nothing written.
        let out = run(
            &mut m,
            Kind::Edit { change: 0 },
            Some(edit("absent", "b\n")),
        );
        assert_eq!(out, Outcome::Conflict(scripts::cksum(b"a\n")));
        assert_eq!(m.content(".ssh/authorized_keys"), Some(&b"a\n"[..]));
        let chmod = Kind::Mode {
            path: "~/.ssh/authorized_keys".into(),
            to: 0o640,
        };
        assert_eq!(run(&mut m, chmod, None), Outcome::Ok);
        assert_eq!(m.stat(".ssh/authorized_keys").unwrap().mode, 0o640);
        // Only trustmesh's own temporary files are removed.
        m.put(".ssh/.trustmesh.Ab12Cd", 0o600, b"half");
        let sweep = |p: &str| Kind::RemoveLeftover { path: p.into() };
        assert_eq!(
            run(&mut m, sweep("~/.ssh/.trustmesh.Ab12Cd"), None),
            Outcome::Ok
        );
        assert!(m.temps().is_empty());
        assert!(matches!(
            run(&mut m, sweep("~/.ssh/authorized_keys"), None),
            Outcome::Failed(_)
        ));
        assert!(m.content(".ssh/authorized_keys").is_some());
    }

    #[test]
    fn a_windows_administrators_file_is_written_at_its_sftp_path() {
        let mut m = Mem::new();
        m.put_dir("/C:/ProgramData/ssh", 0o777);
        let admin = crate::transport::windows::ADMIN_AUTHORIZED_KEYS;
        let e = edit_input(admin, &scripts::script_path(admin), "absent", "k\r\n");
        let out = block_on(file_action(
            &mut m,
            true,
            &action(Kind::Edit { change: 0 }),
            Some(e),
            NO_ACL,
        ))
        .unwrap();
        assert_eq!(out, Outcome::Ok);
        assert_eq!(
            m.content("/C:/ProgramData/ssh/administrators_authorized_keys"),
            Some(&b"k\r\n"[..])
        );
    }

    #[test]
    fn the_administrators_file_gets_its_acl_before_the_rename() {
        let target = "/C:/ProgramData/ssh/administrators_authorized_keys";
        let admin = crate::transport::windows::ADMIN_AUTHORIZED_KEYS;
        let edit = |expected: &str| {
            Some(edit_input(
                admin,
                &scripts::script_path(admin),
                expected,
                "k\r\n",
            ))
        };
        let mut m = Mem::new();
        m.put_dir("/C:/ProgramData/ssh", 0o777);
        let kind = || action(Kind::Edit { change: 0 });
        let out = block_on(file_action(
            &mut m,
            true,
            &kind(),
            edit("absent"),
            MemAcl { fail: false },
        ))
        .unwrap();
        assert_eq!(out, Outcome::Ok);
        // create the temporary file, set its ACL, then rename it over.
        assert_eq!(m.log.len(), 3, "{:?}", m.log);
        let temp = m.log[0].strip_prefix("create ").unwrap().to_string();
        assert!(
            temp.starts_with("/C:/ProgramData/ssh/.trustmesh."),
            "{temp}"
        );
        assert_eq!(m.log[1], format!("acl {temp}"));
        assert_eq!(m.log[2], format!("rename {temp} {target}"));
        assert_eq!(m.content(target), Some(&b"k\r\n"[..]));

        // A failed ACL step: the file sshd reads is left as it was, and the
        // temporary file is gone.
        let mut m = Mem::new();
        m.put_dir("/C:/ProgramData/ssh", 0o777);
        m.put(target, 0o777, b"old\r\n");
        let out = block_on(file_action(
            &mut m,
            true,
            &kind(),
            edit(&scripts::cksum(b"old\r\n")),
            MemAcl { fail: true },
        ))
        .unwrap();
        assert!(
            matches!(&out, Outcome::Failed(w) if w.contains("icacls failed")),
            "{out:?}"
        );
        assert_eq!(m.content(target), Some(&b"old\r\n"[..]));
        assert!(m.temps().is_empty());
        assert!(
            !m.log.iter().any(|l| l.starts_with("rename")),
            "{:?}",
            m.log
        );

        // Any other file of a Windows node: no ACL step.
        let mut m = Mem::new();
        let e = edit_input(
            "~/.ssh/authorized_keys",
            ".ssh/authorized_keys",
            "absent",
            "k\r\n",
        );
        m.put_dir(".ssh", 0o700);
        let out = block_on(file_action(
            &mut m,
            true,
            &kind(),
            Some(e),
            MemAcl { fail: true },
        ))
        .unwrap();
        assert_eq!(out, Outcome::Ok);
        assert!(!m.log.iter().any(|l| l.starts_with("acl")), "{:?}", m.log);
    }
}
