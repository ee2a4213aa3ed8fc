//! The manager's own files: the one place trustmesh reads and writes the
//! local filesystem directly (the manager's home, files outside `~/.ssh`
//! that the probe does not read, this run's private files). Everything
//! else on the manager goes through `sh`, like on any node.

use std::path::{Path, PathBuf};

use crate::state::{FileKind, FileStat, LiveFile};

/// The manager's home: `$HOME`, else `/`.
pub fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// Expand a leading `~/` with `home`.
pub fn expand_home(path: &str, home: &Path) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if path == "~" => home.to_path_buf(),
        None => PathBuf::from(path),
    }
}

/// The absolute path of one of the manager's [`NodeFiles`] names: relative
/// to `~/.ssh`, or a path of its own (absolute or from `~`).
pub fn manager_file(name: &str, home: &Path) -> PathBuf {
    if name.starts_with('/') || name.starts_with('~') {
        expand_home(name, home)
    } else {
        home.join(".ssh").join(name)
    }
}

/// Write a file only the user can read (this run's config and keys),
/// atomically: ssh may be reading it at that moment (another node's
/// connection), and must see the old or the new content, never an empty
/// file.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    // tempfile creates the file 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// What one of the manager's files looks like (read when `read`), as the
/// probe would report it.
pub fn file_state(name: &str, path: &Path, read: bool) -> LiveFile {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return LiveFile {
            name: name.into(),
            stat: None,
            content: None,
            unreadable: false,
        };
    };
    let kind = if meta.file_type().is_symlink() {
        FileKind::Symlink
    } else if meta.is_dir() {
        FileKind::Dir
    } else if meta.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    let content = if read && kind == FileKind::File {
        std::fs::read(path).ok()
    } else {
        None
    };
    LiveFile {
        name: name.into(),
        unreadable: read && kind == FileKind::File && content.is_none(),
        stat: Some(FileStat {
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }),
        content,
    }
}
