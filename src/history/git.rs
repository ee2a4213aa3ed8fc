//! The inventory's place in git: the commit of the repository holding it
//! and whether the file differs from it. git is run directly (no shell),
//! with the file's folder and name as arguments.

use std::path::Path;
use std::process::{Command, Stdio};

/// `(commit, dirty)` of the repository holding `inventory`; `(None, None)`
/// when git is missing, the file is in no repository, or the repository
/// has no commit yet.
pub fn state(inventory: &Path) -> (Option<String>, Option<bool>) {
    let dir = match inventory.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = inventory.file_name() else {
        return (None, None);
    };
    let git = |args: &[&std::ffi::OsStr]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            // Nothing of the repository's own runs (no fsmonitor hook),
            // and `status` takes no lock.
            .args(["-c", "core.fsmonitor=false"])
            .args(args)
            .env("GIT_OPTIONAL_LOCKS", "0")
            // The repository is found from the file's folder, not from a
            // hook's environment (pre-commit, a git alias).
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    let Some(head) = git(&["rev-parse".as_ref(), "HEAD".as_ref()]) else {
        return (None, None);
    };
    let commit = String::from_utf8_lossy(&head.stdout).trim().to_string();
    if commit.is_empty() {
        return (None, None);
    }
    let dirty = git(&[
        "status".as_ref(),
        "--porcelain".as_ref(),
        "--".as_ref(),
        name,
    ])
    .map(|o| !o.stdout.is_empty());
    (Some(commit), dirty)
}
