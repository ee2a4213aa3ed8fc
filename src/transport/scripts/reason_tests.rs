//! A script whose tool fails says why, in the OS's own words (`No space
//! left on device`, `Not a directory`, ...), on its one `TM-ERR` line, under
//! every shell of the matrix.
//!
//! The tests run as root, which no permission stops, so the failures are
//! made real another way: a fake tool (first on the `PATH`) runs the real
//! one against `/dev/full` (every write fails with `ENOSPC`) or a path
//! under `/dev/null/` (`ENOTDIR`), and the script must pass on what the
//! real tool said.

use super::shells::SHELLS;
use super::tests::{run_in_with, Home};
use super::*;
use std::path::Path;

/// A folder holding one fake `name` whose body is `body` (a `sh` script).
fn fake(name: &str, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join(name);
    std::fs::write(&prog, format!("#!/bin/sh\n{body}\n")).unwrap();
    super::tests::set_mode(&prog, 0o755);
    dir
}

/// The names of trustmesh's temporary files in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".trustmesh"))
        .collect()
}

/// `o` is a failure whose reason holds `words` (and `context`, what the
/// script was doing), on one line.
fn says(o: &Outcome, out: &str, context: &str, words: &str) -> bool {
    let one_line = out.lines().filter(|l| l.starts_with("TM-ERR")).count() == 1;
    matches!(o, Outcome::Failed(why) if why.contains(context) && why.contains(words)) && one_line
}

#[test]
fn a_replace_on_a_full_disk_says_no_space_left_and_keeps_the_file() {
    let old = b"old\n";
    let new = b"new content\n";
    // `cat` writes the new content, `cp -p` the copy that keeps the mode.
    for (tool, body, mode, context) in [
        (
            "cat",
            "exec /bin/cat >/dev/full",
            "0600",
            "cannot write the new content of .ssh/authorized_keys",
        ),
        (
            "cp",
            "exec /bin/cp \"$2\" /dev/full",
            "keep",
            "cannot write a copy of .ssh/authorized_keys",
        ),
    ] {
        let fakes = fake(tool, body);
        for sh in SHELLS {
            let home = Home::new(sh, &[("authorized_keys", old)]);
            let args = [".ssh/authorized_keys", &cksum(old), mode, &cksum(new)];
            let (o, out) = run_in_with(
                sh,
                home.path(),
                REPLACE_FILE,
                &args,
                new,
                Some(fakes.path()),
            );
            assert!(
                says(&o, &out, context, "No space left on device"),
                "{sh:?} {tool}: {o:?} {out}"
            );
            let f = home.ssh.join("authorized_keys");
            assert_eq!(std::fs::read(f).unwrap(), old, "{sh:?} {tool}: untouched");
            assert!(
                temporaries(&home.ssh).is_empty(),
                "{sh:?} {tool}: no temporary left"
            );
        }
    }
}

#[test]
fn a_replace_that_cannot_make_its_temporary_or_rename_says_why() {
    let new = b"x\n";
    for sh in SHELLS {
        // No folder to make the temporary file in: mktemp's own words.
        let home = Home::new(sh, &[]);
        let args = [".ssh/nowhere/known_hosts", "absent", "0600", &cksum(new)];
        let (o, out) = home.run(REPLACE_FILE, &args, new);
        assert!(
            says(
                &o,
                &out,
                "cannot create a file in .ssh/nowhere",
                "No such file or directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        // The rename fails.
        let fakes = fake("mv", "exec /bin/mv /dev/null/a /dev/null/b");
        let args = [".ssh/known_hosts", "absent", "0600", &cksum(new)];
        let (o, out) = run_in_with(
            sh,
            home.path(),
            REPLACE_FILE,
            &args,
            new,
            Some(fakes.path()),
        );
        assert!(
            says(
                &o,
                &out,
                "cannot rename over .ssh/known_hosts",
                "Not a directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        assert!(!home.ssh.join("known_hosts").exists(), "{sh:?}");
        assert!(temporaries(&home.ssh).is_empty(), "{sh:?}");
    }
}

#[test]
fn chmod_mkdir_and_keygen_say_why_they_failed() {
    for sh in SHELLS {
        let home = Home::new(sh, &[]);
        let (o, out) = home.run(CHMOD, &["0600", ".ssh/gone"], b"");
        assert!(
            says(
                &o,
                &out,
                "cannot chmod 0600 .ssh/gone",
                "No such file or directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        let home = Home::empty(sh);
        let (o, out) = home.run(MKDIR_PRIVATE, &[".ssh/config.d"], b"");
        assert!(
            says(
                &o,
                &out,
                "cannot create .ssh/config.d",
                "No such file or directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        let fakes = fake("mkdir", "exec /bin/mkdir /dev/null/x");
        let (o, out) = run_in_with(sh, home.path(), MKDIR_SSH, &[], b"", Some(fakes.path()));
        assert!(
            says(&o, &out, "cannot create ~/.ssh", "Not a directory"),
            "{sh:?}: {o:?} {out}"
        );
        let args = [".ssh/id_x", "nosuch", "", "trustmesh:n1"];
        let (o, out) = home.run(KEYGEN, &args, b"");
        assert!(
            says(&o, &out, "ssh-keygen failed", "unknown key type nosuch"),
            "{sh:?}: {o:?} {out}"
        );
        let gone = home.path().join("no home");
        let (o, out) = run_in_with(sh, &gone, CHMOD, &["0600", "x"], b"", None);
        assert!(
            says(&o, &out, "cannot enter the home folder", "no home"),
            "{sh:?}: {o:?} {out}"
        );
    }
}

#[test]
fn chown_removal_and_the_rotation_swap_say_why_they_failed() {
    let chown = fake("chown", "exec /bin/chown 0 /dev/null/x");
    let rm = fake("rm", "exec /bin/rm /dev/null/x");
    let mv = fake("mv", "exec /bin/mv /dev/null/a /dev/null/b");
    for sh in SHELLS {
        let home = Home::new(
            sh,
            &[
                ("authorized_keys", b"k\n"),
                (".trustmesh.AbC123", b"half"),
                ("id.new", b"new"),
                ("id.new.pub", b"new pub"),
            ],
        );
        let run = |script: &str, args: &[&str], fakes: &tempfile::TempDir| {
            run_in_with(sh, home.path(), script, args, b"", Some(fakes.path()))
        };
        let (o, out) = run(CHOWN, &["1000", ".ssh/authorized_keys"], &chown);
        assert!(
            says(
                &o,
                &out,
                "cannot give .ssh/authorized_keys to uid 1000",
                "Not a directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        let args = [".ssh/authorized_keys", &cksum(b"k\n")];
        let (o, out) = run(REMOVE_FILE, &args, &rm);
        assert!(
            says(
                &o,
                &out,
                "cannot remove .ssh/authorized_keys",
                "Not a directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        let (o, out) = run(REMOVE_LEFTOVER, &[".ssh/.trustmesh.AbC123"], &rm);
        assert!(
            says(
                &o,
                &out,
                "cannot remove .ssh/.trustmesh.AbC123",
                "Not a directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        let args = [".ssh/id", ".ssh/id.new", ".ssh/id.old-abc"];
        let (o, out) = run(ROTATE_SWAP, &args, &mv);
        assert!(
            says(
                &o,
                &out,
                "cannot move .ssh/id.new to .ssh/id",
                "Not a directory"
            ),
            "{sh:?}: {o:?} {out}"
        );
        assert_eq!(std::fs::read(home.ssh.join("id.new")).unwrap(), b"new");
    }
}
