//! A node's files without a shell: what trustmesh needs from a file
//! protocol ([`RemoteFiles`]: stat, read, list, create, rename...), and the
//! two sequences built on it, the same on any implementation:
//!
//! - [`read_account`]: the live state of an account (its home, `~/.ssh`,
//!   the files the probe reads, the host keys, leftovers), the same
//!   [`LiveAccount`] the shell probe ([`crate::gather::probe`]) gives, so the
//!   planner cannot tell the two apart;
//! - [`replace_file`]: the compare-and-swap write of
//!   `src/transport/scripts/replace_file.sh`, step for step: the new content goes to
//!   a temporary `.trustmesh.*` file in the same folder, is read back and
//!   checked, the target is compared once more with what the plan read,
//!   and only then the temporary file is renamed over it. A transfer cut
//!   half way never touches the target.
//!
//! The real implementation is SFTP ([`super::sftp`]), used by the SFTP
//! door ([`crate::node::sftp`]); the tests run both sequences on the
//! in-memory tree ([`crate::node::memory::MemFs`]), with cut transfers and
//! edits made between the steps.

use std::time::{Duration, SystemTime};

use crate::model::state::{FileKind, FileStat, LiveAccount, LiveFile};
use crate::transport::scripts::{cksum, Outcome};

/// What a file protocol answered about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: Option<u64>,
}

impl Stat {
    fn file_stat(&self) -> FileStat {
        FileStat {
            kind: self.kind.clone(),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
        }
    }
}

/// A failed file operation, in the protocol's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FsError(pub String);

/// The file operations trustmesh needs. Paths are relative to the
/// account's home, or absolute, as the server takes them.
#[allow(async_fn_in_trait)]
pub trait RemoteFiles {
    /// The absolute form of `path` (`realpath`).
    async fn realpath(&mut self, path: &str) -> Result<String, FsError>;
    /// `lstat`; `None` when the path does not exist.
    async fn lstat(&mut self, path: &str) -> Result<Option<Stat>, FsError>;
    /// The whole file; `None` when it does not exist.
    async fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, FsError>;
    /// At most `max` bytes from the start of the file (fewer at its end,
    /// or when the server answers with less); `None` when it does not
    /// exist.
    async fn read_prefix(&mut self, path: &str, max: usize) -> Result<Option<Vec<u8>>, FsError>;
    /// The entries of a folder (without `.` and `..`), lstat'ed.
    async fn list(&mut self, dir: &str) -> Result<Vec<(String, Stat)>, FsError>;
    /// Create `path`, which must not exist, with `mode`, holding `content`,
    /// flushed to disk where the server can.
    async fn create_new(&mut self, path: &str, mode: u32, content: &[u8]) -> Result<(), FsError>;
    async fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), FsError>;
    async fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), FsError>;
    /// Rename `from` over `to` atomically (`posix-rename@openssh.com`);
    /// an error when the server cannot replace a file that way.
    async fn rename_over(&mut self, from: &str, to: &str) -> Result<(), FsError>;
    async fn remove(&mut self, path: &str) -> Result<(), FsError>;
    async fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), FsError>;
}

/// What [`read_account`] reads: names as the plan has them (relative to
/// `~/.ssh`, `~/...`, or absolute).
#[derive(Debug, Clone)]
pub struct AccountRequest {
    pub read: Vec<String>,
    pub stat_only: Vec<String>,
    /// The account's name as the inventory gives it (SFTP cannot ask).
    pub user: String,
    /// Folders to take `ssh_host_*_key.pub` from, the first readable one.
    pub host_key_dirs: Vec<String>,
    pub now: SystemTime,
}

/// How much of a file is read first, to refuse a private key before any
/// of its secret part crosses the network: 40 bytes hold the header of
/// every private key format the probe refuses, when it opens the file
/// (`-----BEGIN ENCRYPTED PRIVATE KEY-----`, the longest, ends at byte
/// 37; `PuTTY-User-Key-File-` at 20), and after such a header 40 bytes
/// reach only the format's public preamble (the OpenSSH magic, a DER
/// sequence and version). A key behind other text is still refused once
/// the file is read whole, as before.
pub const KEY_PREFIX: usize = 40;

/// How old a `.trustmesh.*` file must be to count as left by an
/// interrupted run (the probe's rule).
pub const LEFTOVER_AGE: Duration = Duration::from_secs(600);

/// The path the server takes for a plan name
/// ([`crate::node::NodePath::sftp`]).
pub fn server_path(name: &str) -> String {
    crate::node::NodePath::of_name(name).sftp()
}

/// The account's uid and gid as SFTP can tell them (it has no `id`): the
/// owner of `~/.ssh` when it is a folder, else of the home. A home owned
/// by root is common for SFTP-only and chrooted accounts (sshd's
/// StrictModes allows it), so `~/.ssh`, which the account made, says more.
pub async fn account_owner<F: RemoteFiles>(fs: &mut F) -> Result<(u32, u32), FsError> {
    if let Some(s) = fs.lstat(".ssh").await? {
        if s.kind == FileKind::Dir {
            return Ok((s.uid, s.gid));
        }
    }
    let home = fs.realpath(".").await?;
    Ok(fs
        .lstat(&home)
        .await?
        .map(|s| (s.uid, s.gid))
        .unwrap_or_default())
}

/// The live state of the account, as the shell probe reports it. The
/// account's uid and gid are from [`account_owner`]; the host name is not
/// known (left empty).
pub async fn read_account<F: RemoteFiles>(
    fs: &mut F,
    req: &AccountRequest,
) -> Result<LiveAccount, FsError> {
    let home = fs.realpath(".").await?;
    let home_stat = fs.lstat(&home).await?;
    let ssh_dir = fs.lstat(".ssh").await?;
    let (uid, gid) = account_owner(fs).await?;
    let mut files = Vec::new();
    for (name, read) in req
        .read
        .iter()
        .map(|n| (n, true))
        .chain(req.stat_only.iter().map(|n| (n, false)))
    {
        files.push(read_one(fs, name, read).await);
    }
    let mut host_keys = Vec::new();
    for dir in &req.host_key_dirs {
        let Ok(entries) = fs.list(dir).await else {
            continue;
        };
        let mut names: Vec<String> = entries
            .into_iter()
            .filter(|(n, s)| {
                s.kind == FileKind::File && n.starts_with("ssh_host_") && n.ends_with("_key.pub")
            })
            .map(|(n, _)| n)
            .collect();
        names.sort();
        for n in names {
            if let Ok(Some(bytes)) = fs.read(&format!("{dir}/{n}")).await {
                for line in String::from_utf8_lossy(&bytes).lines() {
                    let t = line.trim();
                    if !t.is_empty() && !t.starts_with('#') {
                        host_keys.push(t.to_string());
                    }
                }
            }
        }
        if !host_keys.is_empty() {
            break;
        }
    }
    let mut leftovers = Vec::new();
    if ssh_dir.as_ref().is_some_and(|s| s.kind == FileKind::Dir) {
        if let Ok(entries) = fs.list(".ssh").await {
            let now = req
                .now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            for (n, s) in entries {
                let old = s
                    .mtime
                    .is_some_and(|m| now.saturating_sub(m) >= LEFTOVER_AGE.as_secs());
                if s.kind == FileKind::File && old && crate::gather::probe::is_leftover_name(&n) {
                    leftovers.push(n);
                }
            }
            leftovers.sort();
        }
    }
    Ok(LiveAccount {
        user: req.user.clone(),
        uid,
        gid,
        home,
        hostname: String::new(),
        // SFTP does not say where the connection came from.
        client_address: None,
        sshd_version: None,
        ca_agent: None,
        home_stat: home_stat.map(|s| s.file_stat()),
        ssh_dir: ssh_dir.map(|s| s.file_stat()),
        files,
        host_keys,
        proven_host_keys: Vec::new(),
        leftovers,
        privilege: None,
        windows_admin: false,
        windows_acl: None,
    })
}

async fn read_one<F: RemoteFiles>(fs: &mut F, name: &str, read: bool) -> LiveFile {
    let path = server_path(name);
    let mut f = LiveFile {
        name: name.to_string(),
        stat: None,
        content: None,
        unreadable: false,
    };
    match fs.lstat(&path).await {
        Ok(None) => {}
        Ok(Some(s)) => {
            // Only regular files are read (never through a link), and
            // never a private key (`read` is false for those).
            if read && s.kind == FileKind::File {
                let whole = match fs.read_prefix(&path, KEY_PREFIX).await {
                    Ok(Some(head)) if super::local::looks_like_private_key(&head) => Ok(Some(head)),
                    Ok(Some(_)) => fs.read(&path).await,
                    other => other,
                };
                match whole {
                    // A private key where a public file should be is
                    // refused as the probe refuses it: dropped at once,
                    // never part of live state or a plan.
                    Ok(Some(c)) if super::local::looks_like_private_key(&c) => f.unreadable = true,
                    Ok(Some(c)) => f.content = Some(c),
                    _ => f.unreadable = true,
                }
            }
            f.stat = Some(s.file_stat());
        }
        Err(_) => f.unreadable = true,
    }
    f
}

/// How [`replace_file`] writes.
#[derive(Debug, Clone)]
pub struct Replace<'a> {
    /// The target, as the server takes it.
    pub path: &'a str,
    /// [`cksum`] of the file as the plan read it, or `absent`.
    pub expected: &'a str,
    /// `0600`-like octal for a new file, or `keep`.
    pub mode: &'a str,
    pub content: &'a [u8],
    /// The account's uid: a target owned by anyone else is refused.
    /// `None` where owners mean nothing (Windows).
    pub owner: Option<u32>,
    /// The temporary file's name (`.trustmesh.XXXXXX`), in the target's
    /// folder.
    pub temp_name: &'a str,
}

fn sum_of(content: Option<&[u8]>) -> String {
    content.map_or_else(|| "absent".to_string(), cksum)
}

/// Replace a file as `replace_file.sh` does: only if it is still what the
/// plan read, through a checked temporary file renamed over it.
pub async fn replace_file<F: RemoteFiles>(fs: &mut F, r: &Replace<'_>) -> Outcome {
    replace_file_with(fs, r, async |_: &mut F, _: &str| Ok(())).await
}

/// [`replace_file`], with `before_rename` run on the temporary file (its
/// server path) once it holds the new content, checked, with its mode:
/// before the last compare with what the plan read and the rename. A
/// failure there removes the temporary file and leaves the target as it
/// was. (Windows: the ACL sshd demands is set there, so the file sshd
/// reads never carries another one.)
pub async fn replace_file_with<F, H>(fs: &mut F, r: &Replace<'_>, before_rename: H) -> Outcome
where
    F: RemoteFiles,
    H: AsyncFnOnce(&mut F, &str) -> Result<(), FsError>,
{
    let path = r.path;
    let st = match fs.lstat(path).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("cannot stat {path}: {e}")),
    };
    if let Some(s) = &st {
        if s.kind == FileKind::Symlink {
            return Outcome::Failed(format!("{path} is a symbolic link"));
        }
        if let Some(uid) = r.owner.filter(|u| *u != s.uid) {
            return Outcome::Failed(format!(
                "{path} is owned by uid {}, not by this account ({uid})",
                s.uid
            ));
        }
    }
    let now = match current_sum(fs, path).await {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(e.0),
    };
    if now != r.expected {
        return Outcome::Conflict(now);
    }
    let mode = match (r.mode, &st) {
        ("keep", Some(s)) => s.mode & 0o7777,
        ("keep", None) => 0o600,
        (m, _) => match u32::from_str_radix(m, 8) {
            Ok(m) => m,
            Err(_) => return Outcome::Failed(format!("bad mode {m:?}")),
        },
    };
    let tmp = match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{}", r.temp_name),
        None => r.temp_name.to_string(),
    };
    // A name taken already is not ours: never written, never removed.
    match fs.lstat(&tmp).await {
        Ok(None) => {}
        Ok(Some(_)) => return Outcome::Failed(format!("{tmp} exists already")),
        Err(e) => return Outcome::Failed(format!("cannot stat {tmp}: {e}")),
    }
    // From here on, a failure removes the temporary file (when the
    // connection still allows it; else the next run sweeps it).
    let why = |text: String| FsError(text);
    let result: Result<Outcome, FsError> = async {
        fs.create_new(&tmp, mode, r.content)
            .await
            .map_err(|e| why(format!("cannot write {tmp}: {e}")))?;
        let want = cksum(r.content);
        let got = sum_of(fs.read(&tmp).await?.as_deref());
        if got != want {
            return Err(why(format!(
                "the new content arrived incomplete ({got}, not {want})"
            )));
        }
        fs.set_mode(&tmp, mode)
            .await
            .map_err(|e| why(format!("cannot chmod {tmp}: {e}")))?;
        before_rename(&mut *fs, &tmp).await?;
        let now = current_sum(fs, path).await?;
        if now != r.expected {
            return Ok(Outcome::Conflict(now));
        }
        fs.rename_over(&tmp, path)
            .await
            .map_err(|e| why(format!("cannot rename over {path}: {e}")))?;
        Ok(Outcome::Ok)
    }
    .await;
    match result {
        Ok(Outcome::Ok) => Outcome::Ok,
        other => {
            let _ = fs.remove(&tmp).await;
            match other {
                Ok(o) => o,
                Err(e) => Outcome::Failed(e.0),
            }
        }
    }
}

async fn current_sum<F: RemoteFiles>(fs: &mut F, path: &str) -> Result<String, FsError> {
    fs.read(path)
        .await
        .map(|c| sum_of(c.as_deref()))
        .map_err(|e| FsError(format!("cannot read {path}: {e}")))
}

/// A fresh temporary name, `.trustmesh.` and six letters or digits (what
/// the probe and [`crate::gather::probe::is_leftover_name`] recognise).
pub fn temp_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut s = String::from(".trustmesh.");
    for _ in 0..6 {
        // xorshift, so consecutive names differ everywhere.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
    }
    s
}

#[cfg(test)]
#[path = "files_tests.rs"]
pub(crate) mod tests;
