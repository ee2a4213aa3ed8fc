//! The SFTP door's file operations on the in-memory tree: made,
//! written, chmod'ed, swept; the Windows administrators' file and its ACL.

use super::*;
use crate::node::tests::write;
use crate::transport::files::tests::{block_on, Mem};

/// The ACL step on the in-memory tree: logged in the tree's own log
/// (so its place among the creates and renames shows), failing on
/// request.
struct MemAcl {
    fail: bool,
}

impl SetAcl<Mem> for MemAcl {
    async fn set_acl(&mut self, fs: &mut Mem, server_path: &str) -> Result<(), FsError> {
        fs.log.push(format!("acl {server_path}"));
        if self.fail {
            Err(FsError("icacls failed: Access is denied.".into()))
        } else {
            Ok(())
        }
    }
}

const NO_ACL: MemAcl = MemAcl { fail: false };

#[test]
fn files_are_made_written_chmoded_and_swept_without_a_shell() {
    let mut m = Mem::new();
    let run = |m: &mut Mem, op: Op| block_on(file_op(m, false, &op, NO_ACL)).unwrap();
    let mkdir = || Op::MkDir {
        path: "~/.ssh".into(),
    };
    assert_eq!(run(&mut m, mkdir()), Outcome::Ok);
    assert_eq!(m.stat(".ssh").unwrap().mode, 0o700);
    // Made already: nothing to do.
    assert_eq!(run(&mut m, mkdir()), Outcome::Ok);
    let edit = |expected: &str, content: &str| write("~/.ssh/authorized_keys", expected, content);
    let out = run(&mut m, edit("absent", "a\n"));
    assert_eq!(out, Outcome::Ok);
    assert_eq!(m.content(".ssh/authorized_keys"), Some(&b"a\n"[..]));
    assert_eq!(m.stat(".ssh/authorized_keys").unwrap().mode, 0o600);
    // Planned from another text: a conflict, nothing written.
    let out = run(&mut m, edit("absent", "b\n"));
    assert_eq!(out, Outcome::Conflict(scripts::cksum(b"a\n")));
    assert_eq!(m.content(".ssh/authorized_keys"), Some(&b"a\n"[..]));
    let chmod = Op::Chmod {
        path: "~/.ssh/authorized_keys".into(),
        mode: 0o640,
    };
    assert_eq!(run(&mut m, chmod), Outcome::Ok);
    assert_eq!(m.stat(".ssh/authorized_keys").unwrap().mode, 0o640);
    // Only trustmesh's own temporary files are removed.
    m.put(".ssh/.trustmesh.Ab12Cd", 0o600, b"half");
    let sweep = |p: &str| Op::RemoveLeftover { path: p.into() };
    assert_eq!(run(&mut m, sweep("~/.ssh/.trustmesh.Ab12Cd")), Outcome::Ok);
    assert!(m.temps().is_empty());
    assert!(matches!(
        run(&mut m, sweep("~/.ssh/authorized_keys")),
        Outcome::Failed(_)
    ));
    assert!(m.content(".ssh/authorized_keys").is_some());
}

#[test]
fn a_windows_administrators_file_is_written_at_its_sftp_path() {
    let mut m = Mem::new();
    m.put_dir("/C:/ProgramData/ssh", 0o777);
    let admin = crate::transport::windows::ADMIN_AUTHORIZED_KEYS;
    let e = write(admin, "absent", "k\r\n");
    let out = block_on(file_op(&mut m, true, &e, NO_ACL)).unwrap();
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
    let edit = |expected: &str| write(admin, expected, "k\r\n");
    let mut m = Mem::new();
    m.put_dir("/C:/ProgramData/ssh", 0o777);
    let out = block_on(file_op(
        &mut m,
        true,
        &edit("absent"),
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
    let e = edit(&scripts::cksum(b"old\r\n"));
    let out = block_on(file_op(&mut m, true, &e, MemAcl { fail: true })).unwrap();
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
    let e = write("~/.ssh/authorized_keys", "absent", "k\r\n");
    m.put_dir(".ssh", 0o700);
    let out = block_on(file_op(&mut m, true, &e, MemAcl { fail: true })).unwrap();
    assert_eq!(out, Outcome::Ok);
    assert!(!m.log.iter().any(|l| l.starts_with("acl")), "{:?}", m.log);
}
