//! [`RemoteFiles`] over SFTP: the `sftp` subsystem started over a node's
//! existing master connection (one more session on it, like a command),
//! spoken by the `openssh-sftp-client` crate. The account's shell is never
//! involved, so this works for `ForceCommand internal-sftp` accounts and
//! for Windows (Win32-OpenSSH serves the same subsystem).
//!
//! A file is replaced with `posix-rename@openssh.com` (atomic, replacing
//! the target); a server that does not offer it cannot replace a file
//! atomically, and the write is refused rather than done in two steps.

use std::path::Path;

use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::metadata::{MetaDataBuilder, Permissions};
use openssh_sftp_client::{Error, Sftp, SftpOptions};

use super::files::{FsError, RemoteFiles, Stat};
use crate::model::state::FileKind;

/// Test hook: `TRUSTMESH_TEST_SFTP_CUT_AFTER=N` makes every upload stop
/// after N bytes and kill its SFTP session, as a dropped connection would.
/// The live tests use it to cut a real transfer half way. Read by debug
/// builds only (the tests' binary): a release build ignores it.
pub const CUT_AFTER_ENV: &str = "TRUSTMESH_TEST_SFTP_CUT_AFTER";

/// One SFTP session on a node.
pub struct SftpFiles<'s> {
    sftp: Option<Sftp>,
    child: Option<openssh::RemoteChild<'s>>,
    posix_rename: bool,
    cut_after: Option<usize>,
}

/// Start the `sftp` subsystem over `session`.
pub async fn open(session: &openssh::Session) -> Result<SftpFiles<'_>, FsError> {
    let mut child = session
        .subsystem("sftp")
        .stdin(openssh::Stdio::piped())
        .stdout(openssh::Stdio::piped())
        .stderr(openssh::Stdio::null())
        .spawn()
        .await
        .map_err(|e| {
            FsError(format!(
                "cannot start the sftp subsystem: {}",
                super::error_text(&e)
            ))
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin().take(), child.stdout().take()) else {
        return Err(FsError("the sftp subsystem has no pipes".into()));
    };
    let sftp = Sftp::new(stdin, stdout, SftpOptions::default())
        .await
        .map_err(|e| {
            FsError(format!(
                "the sftp subsystem does not answer: {}",
                super::error_text(&e)
            ))
        })?;
    let posix_rename = sftp.support_posix_rename();
    let cut_after = if cfg!(debug_assertions) {
        std::env::var(CUT_AFTER_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
    } else {
        None
    };
    Ok(SftpFiles {
        sftp: Some(sftp),
        child: Some(child),
        posix_rename,
        cut_after,
    })
}

impl SftpFiles<'_> {
    /// End the session cleanly.
    pub async fn close(mut self) {
        if let Some(sftp) = self.sftp.take() {
            let _ = sftp.close().await;
        }
        if let Some(child) = self.child.take() {
            let _ = child.wait().await;
        }
    }

    fn sftp(&self) -> Result<&Sftp, FsError> {
        self.sftp
            .as_ref()
            .ok_or_else(|| FsError("the sftp session was closed".into()))
    }

    /// Kill the session where it stands (the test hook).
    async fn cut(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = child.disconnect().await;
        }
    }
}

fn fs_error(e: Error) -> FsError {
    FsError(super::error_text(&e))
}

fn missing(e: &Error) -> bool {
    matches!(e, Error::SftpError(SftpErrorKind::NoSuchFile, _))
}

fn stat_of(m: &openssh_sftp_client::metadata::MetaData) -> Stat {
    let kind = match m.file_type() {
        Some(t) if t.is_file() => FileKind::File,
        Some(t) if t.is_dir() => FileKind::Dir,
        Some(t) if t.is_symlink() => FileKind::Symlink,
        _ => FileKind::Other,
    };
    Stat {
        kind,
        mode: m.permissions().map_or(0, |p| p.as_raw().bits()) & 0o7777,
        uid: m.uid().unwrap_or(0),
        gid: m.gid().unwrap_or(0),
        mtime: m.modified().map(|t| u64::from(t.into_raw())),
    }
}

fn perm(mode: u32) -> Permissions {
    Permissions::from((mode & 0o7777) as u16)
}

impl RemoteFiles for SftpFiles<'_> {
    async fn realpath(&mut self, path: &str) -> Result<String, FsError> {
        let p = self
            .sftp()?
            .fs()
            .canonicalize(path)
            .await
            .map_err(fs_error)?;
        Ok(p.to_string_lossy().into_owned())
    }

    async fn lstat(&mut self, path: &str) -> Result<Option<Stat>, FsError> {
        match self.sftp()?.fs().symlink_metadata(path).await {
            Ok(m) => Ok(Some(stat_of(&m))),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(fs_error(e)),
        }
    }

    async fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        match self.sftp()?.fs().read(path).await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(e) if missing(&e) => Ok(None),
            Err(e) => Err(fs_error(e)),
        }
    }

    async fn read_prefix(&mut self, path: &str, max: usize) -> Result<Option<Vec<u8>>, FsError> {
        let sftp = self.sftp()?;
        let mut opts = sftp.options();
        opts.read(true);
        let mut file = match opts.open(path).await {
            Ok(f) => f,
            Err(e) if missing(&e) => return Ok(None),
            Err(e) => return Err(fs_error(e)),
        };
        // One read request of `max` bytes: the server sends at most that.
        let n = u32::try_from(max).unwrap_or(u32::MAX);
        let head = file.read(n, Default::default()).await.map_err(fs_error);
        let _ = file.close().await;
        let mut head = head?.map(|b| b.to_vec()).unwrap_or_default();
        head.truncate(max);
        Ok(Some(head))
    }

    async fn list(&mut self, dir: &str) -> Result<Vec<(String, Stat)>, FsError> {
        use futures::StreamExt;
        let d = self.sftp()?.fs().open_dir(dir).await.map_err(fs_error)?;
        let mut out = Vec::new();
        let mut entries = Box::pin(d.read_dir());
        while let Some(e) = entries.next().await {
            let e = e.map_err(fs_error)?;
            let name = e.filename().to_string_lossy().into_owned();
            if name != "." && name != ".." {
                out.push((name, stat_of(&e.metadata())));
            }
        }
        Ok(out)
    }

    async fn create_new(&mut self, path: &str, mode: u32, content: &[u8]) -> Result<(), FsError> {
        let sftp = self.sftp()?;
        let mut opts = sftp.options();
        opts.write(true).create_new(true);
        let mut file = opts.open(path).await.map_err(fs_error)?;
        file.set_permissions(perm(mode)).await.map_err(fs_error)?;
        if let Some(n) = self.cut_after {
            let n = n.min(content.len());
            file.write_all(&content[..n]).await.map_err(fs_error)?;
            drop(file);
            self.cut().await;
            return Err(FsError(format!(
                "the sftp session was cut after {n} bytes ({CUT_AFTER_ENV})"
            )));
        }
        file.write_all(content).await.map_err(fs_error)?;
        if sftp.support_fsync() {
            file.sync_all().await.map_err(fs_error)?;
        }
        file.close().await.map_err(fs_error)
    }

    async fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), FsError> {
        self.sftp()?
            .fs()
            .set_permissions(path, perm(mode))
            .await
            .map_err(fs_error)
    }

    async fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        let meta = MetaDataBuilder::new().id((uid, gid)).create();
        self.sftp()?
            .fs()
            .set_metadata(path, meta)
            .await
            .map_err(fs_error)
    }

    async fn rename_over(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        if !self.posix_rename {
            return Err(FsError(
                "the SFTP server does not offer posix-rename@openssh.com, so a file cannot be replaced atomically"
                    .into(),
            ));
        }
        self.sftp()?.fs().rename(from, to).await.map_err(fs_error)
    }

    async fn remove(&mut self, path: &str) -> Result<(), FsError> {
        self.sftp()?.fs().remove_file(path).await.map_err(fs_error)
    }

    async fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), FsError> {
        let mut fs = self.sftp()?.fs();
        fs.dir_builder()
            .permissions(perm(mode))
            .create(Path::new(path))
            .await
            .map_err(fs_error)?;
        // The server applies its umask to the create: set the mode itself.
        fs.set_permissions(path, perm(mode)).await.map_err(fs_error)
    }
}
