//! The history file: a folder of its own (0700), the file 0600, appended
//! to with `O_APPEND` (one `write` a record), never through a symbolic
//! link.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{parse, History, HistoryRecord};

/// Why the history cannot be written or read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum HistoryError {
    #[error("cannot {action} the history {path}: {source}")]
    #[diagnostic(code(trustmesh::history::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the history {path} is refused: {why}")]
    #[diagnostic(
        code(trustmesh::history::unsafe_path),
        help("the history is kept in a folder and a file of this account's own; move what is there aside")
    )]
    Unsafe { path: PathBuf, why: String },
    #[error(
        "there is no place for the history: neither XDG_STATE_HOME (absolute) nor HOME is set"
    )]
    #[diagnostic(code(trustmesh::history::no_home))]
    NoHome,
}

/// Refuse a symbolic link (or anything but a folder) at `dir`.
fn check_dir(dir: &Path) -> Result<(), HistoryError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|source| HistoryError::Io {
        action: "read",
        path: dir.to_path_buf(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(HistoryError::Unsafe {
            path: dir.to_path_buf(),
            why: "its folder is a symbolic link".into(),
        });
    }
    if !meta.is_dir() {
        return Err(HistoryError::Unsafe {
            path: dir.to_path_buf(),
            why: "it is not a folder".into(),
        });
    }
    Ok(())
}

/// Open `path` without following a symbolic link, and refuse anything but
/// a regular file.
fn open(path: &Path, opts: &mut std::fs::OpenOptions) -> std::io::Result<std::fs::File> {
    let file = opts
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    Ok(file)
}

fn refused_link(path: &Path, e: std::io::Error, action: &'static str) -> HistoryError {
    // O_NOFOLLOW on a symbolic link fails with ELOOP.
    if e.raw_os_error() == Some(libc::ELOOP) {
        HistoryError::Unsafe {
            path: path.to_path_buf(),
            why: "it is a symbolic link".into(),
        }
    } else {
        HistoryError::Io {
            action,
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Append `record` to the history at `path`: the folder made 0700 when
/// missing, the file 0600, one write with `O_APPEND`.
pub fn append(path: &Path, record: &HistoryRecord) -> Result<(), HistoryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| HistoryError::Io {
            action: "make the folder of",
            path: path.to_path_buf(),
            source,
        })?;
    check_dir(dir)?;
    let mut file = open(
        path,
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600),
    )
    .map_err(|e| refused_link(path, e, "open"))?;
    let meta = file.metadata().map_err(|source| HistoryError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(HistoryError::Unsafe {
            path: path.to_path_buf(),
            why: "it is not a regular file".into(),
        });
    }
    file.write_all(record.to_line().as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(|source| HistoryError::Io {
            action: "append to",
            path: path.to_path_buf(),
            source,
        })
}

/// Read the history at `path`; no file yet is an empty history.
pub fn read(path: &Path) -> Result<History, HistoryError> {
    let mut file = match open(path, std::fs::OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
        Err(e) => return Err(refused_link(path, e, "read")),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|source| HistoryError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}
