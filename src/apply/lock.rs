//! One `apply` at a time per inventory, on the manager.
//!
//! Two applies of the same inventory racing would each plan from a state the
//! other is changing. The lock is an OS file lock (released by the kernel
//! if the process dies, so a crash never leaves it stuck) on a file named
//! after a SHA-1 of the inventory's absolute path (stable across Rust
//! releases, unlike `DefaultHasher`, so two trustmesh builds agree on it);
//! the file holds who took it and when, so the second run can say so.
//!
//! The folder is private: created 0700, and refused when it is a symlink,
//! belongs to another user, or others can write to it (they could swap the
//! lock file, or hold it to stop every apply).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha1::{Digest, Sha1};

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
    #[error("the lock folder {path} is not private: {reason}")]
    #[diagnostic(code(trustmesh::apply::lock_folder), help("{fix}"))]
    UnsafeFolder {
        path: String,
        reason: String,
        fix: String,
    },
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
/// With none of these set, a folder `trustmesh-UID` in the temporary
/// folder, which [`ApplyLock::acquire`] creates 0700 and checks like any
/// other.
pub fn lock_path(inventory: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(inventory).unwrap_or_else(|_| absolute(inventory));
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(d).join("trustmesh"))
        })
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache/trustmesh"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join(format!("trustmesh-{}", current_uid())));
    dir.join(format!("trustmesh-{}.lock", path_key(&abs)))
}

/// The first 16 hex digits of the SHA-1 of the path's bytes.
fn path_key(abs: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let digest = Sha1::digest(abs.as_os_str().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Create `dir` 0700 if missing (its parents as usual), then refuse it
/// unless it is a real folder of this user that nobody else can write to.
fn private_folder(dir: &Path) -> Result<(), LockError> {
    let unsafe_folder = |reason: String, fix: String| LockError::UnsafeFolder {
        path: dir.display().to_string(),
        reason,
        fix,
    };
    let io = |source| LockError::Io {
        path: dir.display().to_string(),
        source,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io(e)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io)?;
    let shown = dir.display();
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(unsafe_folder(
            "it is a symlink or not a folder".into(),
            format!("remove {shown} (trustmesh creates it as a private folder)"),
        ));
    }
    if meta.uid() != current_uid() {
        return Err(unsafe_folder(
            format!("it belongs to user id {}, not to you", meta.uid()),
            format!("remove {shown}, or set XDG_RUNTIME_DIR to a folder of yours"),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(unsafe_folder(
            format!("others can write to it (mode {:o})", meta.mode() & 0o777),
            format!("chmod 700 {shown}"),
        ));
    }
    Ok(())
}

impl ApplyLock {
    /// Take the lock at `path`, or say who holds it.
    pub fn acquire(path: &Path, inventory: &Path) -> Result<ApplyLock, LockError> {
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_folder(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
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
    fn the_key_is_a_stable_hash_of_the_path() {
        // SHA-1 of "/srv/cluster/inventory.yaml": the same in every build.
        assert_eq!(
            path_key(Path::new("/srv/cluster/inventory.yaml")),
            "be28df5304a4a57f"
        );
        let p = lock_path(Path::new("/nonexistent/dir/inventory.yaml"));
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            format!(
                "trustmesh-{}.lock",
                path_key(Path::new("/nonexistent/dir/inventory.yaml"))
            )
        );
    }

    #[test]
    fn the_folder_is_created_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("cache/trustmesh");
        let lock = ApplyLock::acquire(&locks.join("x.lock"), Path::new("i.yaml")).unwrap();
        let mode = std::fs::metadata(&locks).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(lock.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn a_folder_others_can_write_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locks = dir.path().join("shared");
        std::fs::create_dir(&locks).unwrap();
        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ApplyLock::acquire(&locks.join("x.lock"), Path::new("i.yaml")).unwrap_err();
        assert!(matches!(err, LockError::UnsafeFolder { .. }), "{err:?}");
        assert!(err.to_string().contains("others can write"), "{err}");
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(help.contains("chmod 700"), "{help}");
        assert!(!locks.join("x.lock").exists(), "nothing written there");
    }

    #[test]
    fn a_symlinked_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = ApplyLock::acquire(&link.join("x.lock"), Path::new("i.yaml")).unwrap_err();
        assert!(matches!(err, LockError::UnsafeFolder { .. }), "{err:?}");
    }

    #[test]
    fn a_folder_of_another_user_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        // Only root can hand a folder to someone else; others skip this
        // (quietly: the library prints nothing, its tests included).
        let path = std::ffi::CString::new(theirs.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; chown has no other precondition.
        if unsafe { libc::chown(path.as_ptr(), 65534, 65534) } != 0 {
            return;
        }
        let err = ApplyLock::acquire(&theirs.join("x.lock"), Path::new("i.yaml")).unwrap_err();
        assert!(
            err.to_string().contains("belongs to user id 65534"),
            "{err}"
        );
    }

    #[test]
    fn a_symlinked_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep").unwrap();
        let lock = dir.path().join("x.lock");
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        assert!(ApplyLock::acquire(&lock, Path::new("i.yaml")).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn the_path_depends_on_the_inventory() {
        assert_ne!(
            lock_path(Path::new("/a/inventory.yaml")),
            lock_path(Path::new("/b/inventory.yaml"))
        );
    }
}
