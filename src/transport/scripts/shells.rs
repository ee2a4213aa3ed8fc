//! The shells every node script is tried under in tests, one matrix for the
//! probe's tests and the scripts' tests: dash, bash, and busybox sh with
//! only busybox applets on `PATH`, plus dash with busybox applets (a node
//! whose `/bin/sh` is dash but whose tools are busybox's), and the nearest
//! Debian has to macOS: `bash --posix` (macOS's `/bin/sh` is bash in POSIX
//! mode) with BWK awk (`original-awk`, the awk macOS ships) as `awk`.
//! The other tools stay GNU's there: BSD's `stat`, `mktemp`, `ls`... are
//! not at hand (the README says what is not tested).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Shell {
    Dash,
    Bash,
    Busybox,
    DashWithBusyboxApplets,
    /// `bash --posix`, with `original-awk` first on `PATH` as `awk`.
    MacLike,
}

/// Every shell of the matrix.
pub(crate) const SHELLS: [Shell; 5] = [
    Shell::Dash,
    Shell::Bash,
    Shell::Busybox,
    Shell::DashWithBusyboxApplets,
    Shell::MacLike,
];

/// BWK awk as Debian installs it (`apt-get install original-awk`, done by
/// `scripts/setup.sh`).
const BWK_AWK: &str = "/usr/bin/original-awk";

impl Shell {
    /// A command that starts this shell (`busybox sh` for busybox); the
    /// caller adds `-c SCRIPT` or `-s`, the arguments and the environment,
    /// then [`Applets::restrict`].
    pub(crate) fn command(self) -> Command {
        let (prog, pre): (&str, &[&str]) = match self {
            Shell::Dash | Shell::DashWithBusyboxApplets => ("/usr/bin/dash", &[]),
            Shell::Bash => ("/usr/bin/bash", &[]),
            Shell::MacLike => ("/usr/bin/bash", &["--posix"]),
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

/// A directory of busybox applet symlinks, for a PATH with no GNU tools,
/// and one holding `awk` as a link to BWK awk. Keep it alive while the
/// commands that use it run.
pub(crate) struct Applets(tempfile::TempDir);

impl Applets {
    /// Links to busybox for each of `applets`, and to each of `system`
    /// (absolute paths of programs busybox does not provide) under its own
    /// name.
    pub(crate) fn new(applets: &[&str], system: &[&str]) -> Applets {
        assert!(
            Path::new(BWK_AWK).exists(),
            "{BWK_AWK} is missing: `apt-get install original-awk` (scripts/setup.sh installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        for applet in applets {
            symlink("/bin/busybox", dir.path().join(applet)).unwrap();
        }
        for prog in system {
            let name = Path::new(prog).file_name().unwrap();
            symlink(prog, dir.path().join(name)).unwrap();
        }
        let bwk = dir.path().join("bwk");
        std::fs::create_dir(&bwk).unwrap();
        symlink(BWK_AWK, bwk.join("awk")).unwrap();
        Applets(dir)
    }

    /// Make the applets the whole `PATH` of `cmd` when `shell` calls for
    /// it; put BWK awk first on `PATH` for [`Shell::MacLike`].
    pub(crate) fn restrict(&self, shell: Shell, cmd: &mut Command) {
        if shell.busybox_applets_only() {
            cmd.env("PATH", self.0.path());
        }
        if let Shell::MacLike = shell {
            prepend_path(cmd, &self.0.path().join("bwk"));
        }
    }
}

/// Put `first` ahead of the `PATH` `cmd` runs with (the one set on it, or
/// else this process's).
pub(crate) fn prepend_path(cmd: &mut Command, first: &Path) {
    let rest = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v.map(|v| v.to_os_string()))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut path = first.as_os_str().to_os_string();
    path.push(":");
    path.push(rest);
    cmd.env("PATH", path);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each shell of the matrix is what it claims: the macOS-like one runs
    /// in POSIX mode with BWK awk as `awk`.
    #[test]
    fn the_matrix_shells_are_what_they_claim() {
        let applets = Applets::new(&["awk", "head"], &[]);
        for shell in SHELLS {
            let mut cmd = shell.command();
            cmd.arg("-c").arg(
                "case ${SHELLOPTS-} in *posix*) echo posix ;; *) echo plain ;; esac; \
                 awk --version 2>&1 | head -n 1",
            );
            applets.restrict(shell, &mut cmd);
            let out = cmd.output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut lines = text.lines();
            let mode = lines.next().unwrap_or_default();
            let awk = lines.next().unwrap_or_default().to_string();
            match shell {
                Shell::MacLike => {
                    assert_eq!(mode, "posix", "{shell:?}");
                    // original-awk prints `awk version 20220912`.
                    assert!(awk.starts_with("awk version 20"), "{shell:?}: {awk}");
                }
                Shell::Bash => assert_eq!(mode, "plain", "{shell:?}"),
                _ => assert!(!awk.starts_with("awk version 20"), "{shell:?}: {awk}"),
            }
        }
    }
}
