//! The shells every node script is tried under in tests, one matrix for the
//! probe's tests and the scripts' tests: dash, bash, and busybox sh with
//! only busybox applets on `PATH`, plus dash with busybox applets (a node
//! whose `/bin/sh` is dash but whose tools are busybox's).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Shell {
    Dash,
    Bash,
    Busybox,
    DashWithBusyboxApplets,
}

/// Every shell of the matrix.
pub(crate) const SHELLS: [Shell; 4] = [
    Shell::Dash,
    Shell::Bash,
    Shell::Busybox,
    Shell::DashWithBusyboxApplets,
];

impl Shell {
    /// A command that starts this shell (`busybox sh` for busybox); the
    /// caller adds `-c SCRIPT` or `-s`, the arguments and the environment,
    /// then [`Applets::restrict`].
    pub(crate) fn command(self) -> Command {
        let (prog, pre): (&str, &[&str]) = match self {
            Shell::Dash | Shell::DashWithBusyboxApplets => ("/usr/bin/dash", &[]),
            Shell::Bash => ("/usr/bin/bash", &[]),
            Shell::Busybox => ("/bin/busybox", &["sh"]),
        };
        let mut cmd = Command::new(prog);
        cmd.args(pre);
        cmd
    }

    /// Whether this shell runs with only busybox applets on `PATH`.
    pub(crate) fn busybox_applets_only(self) -> bool {
        matches!(self, Shell::Busybox | Shell::DashWithBusyboxApplets)
    }
}

/// A directory of busybox applet symlinks, for a PATH with no GNU tools.
/// Keep it alive while the commands that use it run.
pub(crate) struct Applets(tempfile::TempDir);

impl Applets {
    /// Links to busybox for each of `applets`, and to each of `system`
    /// (absolute paths of programs busybox does not provide) under its own
    /// name.
    pub(crate) fn new(applets: &[&str], system: &[&str]) -> Applets {
        let dir = tempfile::tempdir().unwrap();
        for applet in applets {
            symlink("/bin/busybox", dir.path().join(applet)).unwrap();
        }
        for prog in system {
            let name = Path::new(prog).file_name().unwrap();
            symlink(prog, dir.path().join(name)).unwrap();
        }
        Applets(dir)
    }

    /// Make the applets the whole `PATH` of `cmd` when `shell` calls for it.
    pub(crate) fn restrict(&self, shell: Shell, cmd: &mut Command) {
        if shell.busybox_applets_only() {
            cmd.env("PATH", self.0.path());
        }
    }
}
