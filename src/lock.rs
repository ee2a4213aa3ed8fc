//! One `apply` at a time per inventory, on the manager.
//!
//! Two applies of the same inventory racing would each plan from a state the
//! other is changing. The lock is an OS file lock (released by the kernel
//! if the process dies, so a crash never leaves it stuck) on a file named
//! after the inventory's absolute path; the file holds who took it and
//! when, so the second run can say so.

use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum LockError {
    #[error("another trustmesh apply of this inventory is running: {holder}")]
    #[diagnostic(
        code(trustmesh::apply::locked),
        help("wait for it to finish; the lock is released when that process ends ({path})")
    )]
    Held { holder: String, path: String },
    #[error("cannot create the lock file {path}: {source}")]
    #[diagnostic(
        code(trustmesh::apply::lock_io),
        help("check that the folder is writable")
    )]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where the lock of `inventory` lives: `$XDG_RUNTIME_DIR`, else
/// `$XDG_CACHE_HOME/trustmesh` or `~/.cache/trustmesh` (private to the
/// user, unlike a shared temporary folder), one file per inventory path.
pub fn lock_path(inventory: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(inventory).unwrap_or_else(|_| inventory.to_path_buf());
    let mut h = std::collections::hash_map::DefaultHasher::new();
    abs.hash(&mut h);
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("trustmesh")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/trustmesh")))
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("trustmesh-{:016x}.lock", h.finish()))
}

impl ApplyLock {
    /// Take the lock at `path`, or say who holds it.
    pub fn acquire(path: &Path, inventory: &Path) -> Result<ApplyLock, LockError> {
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    holder: if holder.is_empty() {
                        "(it has not said who it is yet)".into()
                    } else {
                        holder.to_string()
                    },
                    path: path.display().to_string(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let since = humantime::format_rfc3339_seconds(SystemTime::now());
        let who = format!(
            "pid {} ({}) since {since}, for {}",
            std::process::id(),
            std::env::var("USER").unwrap_or_else(|_| "?".into()),
            inventory.display()
        );
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(who.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(ApplyLock {
            file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let inv = Path::new("inventory.yaml");
        let first = ApplyLock::acquire(&path, inv).unwrap();
        let err = ApplyLock::acquire(&path, inv).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains(" since 20"), "{text}");
        drop(first);
        let again = ApplyLock::acquire(&path, inv);
        assert!(again.is_ok());
    }

    #[test]
    fn the_path_depends_on_the_inventory() {
        assert_ne!(
            lock_path(Path::new("/a/inventory.yaml")),
            lock_path(Path::new("/b/inventory.yaml"))
        );
    }
}
