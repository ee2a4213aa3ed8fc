//! Carrying out one action on a node reached over SFTP (`access: sftp`,
//! Windows): files are created, replaced (compare-and-swap, through a
//! temporary file renamed over the target), chmod'ed and removed with SFTP
//! requests ([`crate::transport::files`]); nothing runs in a shell. A
//! Windows node also runs its fixed command lines
//! ([`crate::windows`]): the key generation and the ACL step. What needs a
//! POSIX shell (a key generated on a Unix account without one, a
//! rotation) is refused; the planner does not plan it.

use super::actions::EditInput;
use super::*;
use crate::transport::files::{self, RemoteFiles, Replace};
use crate::transport::sftp as transport_sftp;

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
            let line =
                crate::windows::keygen_command(path, key_type, keygen_bits(key_type), marker)
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
        let r = file_action(&mut fs, windows, action, edit).await;
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
    crate::windows::sftp_path(&scripts::script_path(path))
}

async fn file_action<F: RemoteFiles>(
    fs: &mut F,
    windows: bool,
    action: &Action,
    edit: Option<EditInput>,
) -> Result<Outcome, String> {
    let failed = |e: files::FsError| Outcome::Failed(e.0);
    Ok(match &action.kind {
        Kind::MkDir { path } => {
            let p = server_path(path);
            match fs.lstat(&p).await {
                Ok(Some(s)) if s.kind == crate::state::FileKind::Dir => Outcome::Ok,
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
            let path = crate::windows::sftp_path(&e.path);
            let temp = files::temp_name();
            files::replace_file(
                fs,
                &Replace {
                    path: &path,
                    expected: &e.expected,
                    mode: &e.mode,
                    content: content.as_bytes(),
                    owner,
                    temp_name: &temp,
                },
            )
            .await
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
            if !crate::probe::is_leftover_name(name) {
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
            block_on(file_action(m, false, &action(kind), edit)).unwrap()
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
        let admin = crate::windows::ADMIN_AUTHORIZED_KEYS;
        let e = edit_input(admin, &scripts::script_path(admin), "absent", "k\r\n");
        let out = block_on(file_action(
            &mut m,
            true,
            &action(Kind::Edit { change: 0 }),
            Some(e),
        ))
        .unwrap();
        assert_eq!(out, Outcome::Ok);
        assert_eq!(
            m.content("/C:/ProgramData/ssh/administrators_authorized_keys"),
            Some(&b"k\r\n"[..])
        );
    }
}
