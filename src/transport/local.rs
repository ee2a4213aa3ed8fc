//! The manager's own files: the one place trustmesh reads and writes the
//! local filesystem directly (the manager's home, files outside `~/.ssh`
//! that the probe does not read, this run's private files). Everything
//! else on the manager goes through `sh`, like on any node.

use std::path::{Path, PathBuf};

use crate::model::state::{FileKind, FileStat, LiveFile};

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

/// The markers the probe refuses a file for (probe.sh's `tm_read`): a
/// private key (OpenSSH, PEM, PKCS#8) or a PuTTY key file.
const PRIVATE_KEY_MARKERS: [&[u8]; 2] = [b"PRIVATE KEY-----", b"PuTTY-User-Key-File-"];

/// Whether `bytes` hold a private key, by the probe's rule.
pub(crate) fn looks_like_private_key(bytes: &[u8]) -> bool {
    PRIVATE_KEY_MARKERS
        .iter()
        .any(|m| bytes.windows(m.len()).any(|w| w == *m))
}

/// What one of the manager's files looks like (read when `read`), as the
/// probe would report it: a file that holds a private key is refused like
/// the probe refuses it (unreadable, its content dropped at once, never
/// part of live state or a plan).
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
        std::fs::read(path)
            .ok()
            .filter(|bytes| !looks_like_private_key(bytes))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Not a real key: only the header and footer the guard looks for.
    const SENTINEL: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\ntrustmesh-sentinel-private-key\n-----END OPENSSH PRIVATE KEY-----\n";

    #[test]
    fn a_private_key_outside_ssh_is_refused_like_the_probe_refuses_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            ("openssh", SENTINEL.to_string()),
            (
                "pem",
                "-----BEGIN RSA PRIVATE KEY-----\ntrustmesh-sentinel-private-key\n-----END RSA PRIVATE KEY-----\n".to_string(),
            ),
            (
                "putty",
                "PuTTY-User-Key-File-3: ssh-ed25519\ntrustmesh-sentinel-private-key\n".to_string(),
            ),
            (
                "hidden",
                format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA manager\n{SENTINEL}"),
            ),
        ];
        for (name, text) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let f = file_state(name, &path, true);
            assert_eq!(f.name, name);
            assert!(f.unreadable, "{name}: {f:?}");
            assert!(f.content.is_none(), "{name}");
            // Listed like any file, as the probe lists a refused one.
            let st = f.stat.as_ref().expect("stat of a refused file");
            assert_eq!((st.kind.clone(), st.mode), (FileKind::File, 0o600));
            let shown = format!("{f:?}") + &serde_json::to_string(&f).unwrap();
            assert!(!shown.contains("trustmesh-sentinel"), "{name}: {shown}");
        }
    }

    #[test]
    fn public_files_outside_ssh_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let pubkey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA manager says PRIVATE KEY\n";
        let path = dir.path().join("kh");
        std::fs::write(&path, pubkey).unwrap();
        let f = file_state("kh", &path, true);
        assert!(!f.unreadable);
        assert_eq!(f.content.as_deref(), Some(pubkey.as_bytes()));
        // Stat only: never read.
        let f = file_state("kh", &path, false);
        assert!(!f.unreadable && f.content.is_none() && f.stat.is_some());
        let f = file_state("missing", &dir.path().join("missing"), true);
        assert!(!f.unreadable && f.stat.is_none() && f.content.is_none());
    }
}
