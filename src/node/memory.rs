//! A node in memory: an account ([`MemoryDoor`]) on a file tree
//! ([`MemFs`]). The tests run the real [`crate::apply`] on it and read
//! back what the planner would see; the file sequences of
//! [`crate::transport::files`] (the SFTP door's) are tested on the tree,
//! with cut transfers and edits made between the steps.
//!
//! The tree answers like a POSIX server: compare-and-swap writes through
//! a renamed temporary file, owners and modes, links. Keys are generated
//! by a function the test gives (fake, deterministic keys); a rotation's
//! proofs hold unless the test says otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::sftp::{file_op, server_path, SetAcl};
use super::{Door, DoorError, Op, Reason, Write};
use crate::model::state::{FileKind, FileStat, LiveAccount};
use crate::plan::NodeFiles;
use crate::transport::files::{
    read_account, replace_file, temp_name, AccountRequest, FsError, RemoteFiles, Replace, Stat,
    LEFTOVER_AGE,
};
use crate::transport::scripts::{cksum, Outcome};

/// One path of a [`MemFs`].
#[derive(Debug, Clone)]
pub struct Entry {
    pub stat: Stat,
    pub content: Vec<u8>,
}

/// A file tree keyed by absolute path; relative paths resolve in `home`.
#[derive(Debug, Clone)]
pub struct MemFs {
    pub files: BTreeMap<String, Entry>,
    pub home: String,
    /// The owner of what is created.
    pub uid: u32,
    pub gid: u32,
    /// `create_new` writes this many bytes, then the "connection" drops:
    /// every later call fails.
    pub cut_after: Option<usize>,
    dead: bool,
    /// The server offers `posix-rename@openssh.com`.
    pub posix_rename: bool,
    /// Paths whose reads fail (a file the account cannot read).
    pub unreadable: BTreeSet<String>,
    /// Bytes handed out by `read` and `read_prefix`, in all.
    pub bytes_read: usize,
    /// Every change made, in order: `create PATH`, `rename FROM TO`...
    pub log: Vec<String>,
}

/// The home of [`MemFs::new`].
pub const HOME: &str = "/home/u";

/// The modification time of every path of a [`MemFs`] (seconds).
const MTIME: u64 = 1_000;

impl Default for MemFs {
    fn default() -> MemFs {
        MemFs::new()
    }
}

impl MemFs {
    /// A tree holding the home `/home/u` (0755) of uid 1000.
    pub fn new() -> MemFs {
        let mut m = MemFs::empty(HOME, 1000, 1000);
        m.put_dir(HOME, 0o755);
        m
    }

    /// A tree holding nothing, relative paths resolving in `home`.
    pub fn empty(home: &str, uid: u32, gid: u32) -> MemFs {
        MemFs {
            files: BTreeMap::new(),
            home: home.to_string(),
            uid,
            gid,
            cut_after: None,
            dead: false,
            posix_rename: true,
            unreadable: BTreeSet::new(),
            bytes_read: 0,
            log: Vec::new(),
        }
    }

    /// The absolute form of a path.
    pub fn abs(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else if p == "." {
            self.home.clone()
        } else {
            format!("{}/{p}", self.home)
        }
    }

    fn stat_of(&self, kind: FileKind, mode: u32) -> Stat {
        Stat {
            kind,
            mode,
            uid: self.uid,
            gid: self.gid,
            mtime: Some(MTIME),
        }
    }

    pub fn put_dir(&mut self, p: &str, mode: u32) {
        let stat = self.stat_of(FileKind::Dir, mode);
        self.put_entry(p, stat, Vec::new());
    }

    pub fn put(&mut self, p: &str, mode: u32, content: &[u8]) {
        let stat = self.stat_of(FileKind::File, mode);
        self.put_entry(p, stat, content.to_vec());
    }

    pub fn put_entry(&mut self, p: &str, stat: Stat, content: Vec<u8>) {
        self.files.insert(self.abs(p), Entry { stat, content });
    }

    /// The folders above `p` that are missing (0755), but the home and
    /// `~/.ssh`, which an account may not have.
    fn put_parents(&mut self, p: &str) {
        let p = self.abs(p);
        let keep = [self.home.clone(), format!("{}/.ssh", self.home)];
        let mut dir = p.as_str();
        while let Some((up, _)) = dir.rsplit_once('/') {
            if up.is_empty() || keep.iter().any(|k| k == up) {
                break;
            }
            if !self.files.contains_key(up) {
                self.put_dir(up, 0o755);
            }
            dir = up;
        }
    }

    fn alive(&self) -> Result<(), FsError> {
        if self.dead {
            Err(FsError("connection closed".into()))
        } else {
            Ok(())
        }
    }

    pub fn content(&self, p: &str) -> Option<&[u8]> {
        self.files.get(&self.abs(p)).map(|e| e.content.as_slice())
    }

    pub fn stat(&self, p: &str) -> Option<&Stat> {
        self.files.get(&self.abs(p)).map(|e| &e.stat)
    }

    pub fn stat_mut(&mut self, p: &str) -> Option<&mut Stat> {
        let p = self.abs(p);
        self.files.get_mut(&p).map(|e| &mut e.stat)
    }

    /// The `.trustmesh.*` files in the tree.
    pub fn temps(&self) -> Vec<String> {
        self.files
            .keys()
            .filter(|k| k.contains("/.trustmesh."))
            .cloned()
            .collect()
    }

    fn entry_mut(&mut self, path: &str) -> Result<&mut Entry, FsError> {
        let p = self.abs(path);
        self.files.get_mut(&p).ok_or(FsError("no such file".into()))
    }

    fn parent_exists(&self, path: &str) -> bool {
        let p = self.abs(path);
        match p.rsplit_once('/') {
            Some(("", _)) | None => true,
            Some((dir, _)) => self.files.contains_key(dir),
        }
    }
}

impl RemoteFiles for MemFs {
    async fn realpath(&mut self, path: &str) -> Result<String, FsError> {
        self.alive()?;
        Ok(self.abs(path))
    }
    async fn lstat(&mut self, path: &str) -> Result<Option<Stat>, FsError> {
        self.alive()?;
        Ok(self.stat(path).cloned())
    }
    async fn read(&mut self, path: &str) -> Result<Option<Vec<u8>>, FsError> {
        self.alive()?;
        if self.unreadable.contains(&self.abs(path)) {
            return Err(FsError("permission denied".into()));
        }
        let c = self.content(path).map(<[u8]>::to_vec);
        self.bytes_read += c.as_ref().map_or(0, Vec::len);
        Ok(c)
    }
    async fn read_prefix(&mut self, path: &str, max: usize) -> Result<Option<Vec<u8>>, FsError> {
        self.alive()?;
        if self.unreadable.contains(&self.abs(path)) {
            return Err(FsError("permission denied".into()));
        }
        let c = self.content(path).map(|c| c[..max.min(c.len())].to_vec());
        self.bytes_read += c.as_ref().map_or(0, Vec::len);
        Ok(c)
    }
    async fn list(&mut self, dir: &str) -> Result<Vec<(String, Stat)>, FsError> {
        self.alive()?;
        let prefix = format!("{}/", self.abs(dir));
        Ok(self
            .files
            .iter()
            .filter_map(|(k, e)| {
                let rest = k.strip_prefix(&prefix)?;
                (!rest.contains('/')).then(|| (rest.to_string(), e.stat.clone()))
            })
            .collect())
    }
    async fn create_new(&mut self, path: &str, mode: u32, content: &[u8]) -> Result<(), FsError> {
        self.alive()?;
        if self.files.contains_key(&self.abs(path)) {
            return Err(FsError("exists".into()));
        }
        if !self.parent_exists(path) {
            return Err(FsError("no such folder".into()));
        }
        self.log.push(format!("create {}", self.abs(path)));
        let n = self
            .cut_after
            .map_or(content.len(), |c| c.min(content.len()));
        self.put(path, mode, &content[..n]);
        if self.cut_after.is_some() {
            self.dead = true;
            return Err(FsError("connection closed".into()));
        }
        Ok(())
    }
    async fn set_mode(&mut self, path: &str, mode: u32) -> Result<(), FsError> {
        self.alive()?;
        self.entry_mut(path)?.stat.mode = mode;
        Ok(())
    }
    async fn set_owner(&mut self, path: &str, uid: u32, gid: u32) -> Result<(), FsError> {
        self.alive()?;
        let e = self.entry_mut(path)?;
        e.stat.uid = uid;
        e.stat.gid = gid;
        Ok(())
    }
    async fn rename_over(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        self.alive()?;
        if !self.posix_rename && self.files.contains_key(&self.abs(to)) {
            return Err(FsError("no posix-rename".into()));
        }
        let e = self
            .files
            .remove(&self.abs(from))
            .ok_or(FsError("no such file".into()))?;
        self.log
            .push(format!("rename {} {}", self.abs(from), self.abs(to)));
        self.files.insert(self.abs(to), e);
        Ok(())
    }
    async fn remove(&mut self, path: &str) -> Result<(), FsError> {
        self.alive()?;
        let p = self.abs(path);
        self.files
            .remove(&p)
            .map(|_| ())
            .ok_or(FsError("no such file".into()))
    }
    async fn mkdir(&mut self, path: &str, mode: u32) -> Result<(), FsError> {
        self.alive()?;
        self.put_dir(path, mode);
        Ok(())
    }
}

/// Makes the public key line of a key generated at a plan path, from
/// (path, key type, marker): `type base64 comment`.
pub type Keygen = dyn Fn(&str, &str, &str) -> String + Send + Sync;

/// The default [`Keygen`]: a fake key, the same for the same path and
/// marker.
pub fn fake_public_key(path: &str, key_type: &str, marker: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes().chain(marker.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "ssh-{key_type} AAAA{h:016x}{:016x} {marker}",
        h.rotate_left(17)
    )
}

/// An account in memory, reached through the [`Door`] trait like any node.
pub struct MemoryDoor {
    node: String,
    inner: tokio::sync::Mutex<Account>,
    keygen: Box<Keygen>,
    /// Targets a rotation's proof fails to open.
    failing_proofs: Vec<String>,
}

/// What the account is besides its files (its identity, its host keys),
/// and its files.
struct Account {
    fs: MemFs,
    /// The account as seeded, its files and leftovers left out.
    identity: LiveAccount,
    /// The names the seed listed beyond what [`NodeFiles`] names (read,
    /// or stat'ed only), read back too.
    extra: Vec<(String, bool)>,
}

impl MemoryDoor {
    /// The account `account` on node `node`: its home, `~/.ssh`, files and
    /// leftovers become the tree; the rest is kept as it is.
    pub fn new(node: &str, account: &LiveAccount) -> MemoryDoor {
        let mut fs = MemFs::empty(&account.home, account.uid, account.gid);
        let entry = |s: &FileStat| Stat {
            kind: s.kind.clone(),
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            mtime: Some(MTIME),
        };
        if let Some(s) = &account.home_stat {
            fs.put_entry(&account.home, entry(s), Vec::new());
        }
        if let Some(s) = &account.ssh_dir {
            fs.put_entry(".ssh", entry(s), Vec::new());
        }
        if account.windows_admin {
            // sshd's own folder, where the administrators' keys are.
            let admin = crate::transport::windows::ADMIN_AUTHORIZED_KEYS;
            fs.put_parents(&crate::transport::files::server_path(admin));
        }
        let mut extra = Vec::new();
        for f in &account.files {
            let path = crate::transport::files::server_path(&f.name);
            if let Some(s) = &f.stat {
                fs.put_parents(&path);
                fs.put_entry(&path, entry(s), f.content.clone().unwrap_or_default());
            }
            if f.unreadable {
                let p = fs.abs(&path);
                fs.unreadable.insert(p);
            }
            extra.push((f.name.clone(), f.content.is_some() || f.unreadable));
        }
        for l in &account.leftovers {
            fs.put(&format!(".ssh/{l}"), 0o600, b"half");
        }
        let identity = LiveAccount {
            files: Vec::new(),
            leftovers: Vec::new(),
            ..account.clone()
        };
        MemoryDoor {
            node: node.to_string(),
            inner: tokio::sync::Mutex::new(Account {
                fs,
                identity,
                extra,
            }),
            keygen: Box::new(fake_public_key),
            failing_proofs: Vec::new(),
        }
    }

    /// Keys generated with `keygen` (path, key type, marker) -> public line.
    pub fn with_keygen(mut self, keygen: Box<Keygen>) -> MemoryDoor {
        self.keygen = keygen;
        self
    }

    /// A rotation's proof to `target` fails.
    pub fn failing_proof(mut self, target: &str) -> MemoryDoor {
        self.failing_proofs.push(target.to_string());
        self
    }

    /// A copy of the file tree as it is now.
    pub async fn files(&self) -> MemFs {
        self.inner.lock().await.fs.clone()
    }

    fn error(&self, step: &str, reason: Reason) -> DoorError {
        DoorError::new(&self.node, step, reason)
    }

    async fn read(&self, files: &NodeFiles) -> Result<LiveAccount, DoorError> {
        let mut a = self.inner.lock().await;
        let Account {
            fs,
            identity,
            extra,
        } = &mut *a;
        let files = files.clone().for_windows_admin(identity.windows_admin);
        let (mut read, mut stat_only) = files.probe_names();
        for (name, r) in extra.iter() {
            if !read.contains(name) && !stat_only.contains(name) {
                if *r {
                    read.push(name.clone());
                } else {
                    stat_only.push(name.clone());
                }
            }
        }
        let req = AccountRequest {
            read,
            stat_only,
            user: identity.user.clone(),
            host_key_dirs: Vec::new(),
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(MTIME) + LEFTOVER_AGE,
        };
        let read = read_account(fs, &req)
            .await
            .map_err(|e| self.error("read", Reason::Transport(e.0)))?;
        Ok(LiveAccount {
            home_stat: read.home_stat,
            ssh_dir: read.ssh_dir,
            files: read.files,
            leftovers: read.leftovers,
            ..identity.clone()
        })
    }

    async fn run_op(&self, op: &Op) -> Result<Outcome, DoorError> {
        let mut a = self.inner.lock().await;
        let uid = a.identity.uid;
        let fs = &mut a.fs;
        let r = match op {
            Op::Keygen {
                path,
                key_type,
                marker,
            } => Ok(keygen(fs, path, &(self.keygen)(path, key_type, marker)).await),
            Op::Replace(w) => Ok(write(fs, w, Some(uid)).await),
            Op::WriteBlock(w) if w.remove => Ok(remove(fs, w, (!w.sudo).then_some(uid)).await),
            Op::WriteBlock(w) => Ok(write(fs, w, (!w.sudo).then_some(uid)).await),
            Op::Swap {
                path,
                new_path,
                aside_path,
            } => Ok(swap(fs, path, new_path, aside_path).await),
            Op::Prove(p) if self.failing_proofs.contains(&p.target) => {
                Ok(Outcome::Failed(format!(
                    "the new key does not open {}; the old key stays in place",
                    p.target
                )))
            }
            Op::Prove(_) | Op::SetAcl { .. } => Ok(Outcome::Ok),
            _ => file_op(fs, false, op, NoAcl).await,
        };
        r.map_err(|e| self.error(op.step(), e))
    }
}

/// No ACLs in memory.
struct NoAcl;

impl SetAcl<MemFs> for NoAcl {
    async fn set_acl(&mut self, _: &mut MemFs, _: &str) -> Result<(), FsError> {
        Ok(())
    }
}

/// `keygen.sh`: the key's folder made when missing, an existing key never
/// overwritten.
async fn keygen(fs: &mut MemFs, path: &str, public: &str) -> Outcome {
    let private = server_path(path);
    let public_path = format!("{private}.pub");
    if fs.stat(&private).is_some() || fs.stat(&public_path).is_some() {
        return Outcome::Failed(format!(
            "{path} already exists: trustmesh never overwrites a key"
        ));
    }
    if let Some((dir, _)) = private.rsplit_once('/') {
        if fs.stat(dir).is_none() {
            fs.put_dir(dir, 0o700);
        }
    }
    fs.put(&private, 0o600, b"PRIVATE (never read)");
    fs.put(&public_path, 0o644, format!("{public}\n").as_bytes());
    Outcome::PublicKey(public.to_string())
}

/// `replace_file.sh`: compare-and-swap through a renamed temporary file,
/// the owner and the mode kept.
async fn write(fs: &mut MemFs, w: &Write, owner: Option<u32>) -> Outcome {
    let path = server_path(&w.path);
    let before = fs.stat(&path).cloned();
    let temp = temp_name();
    let r = Replace {
        path: &path,
        expected: &w.expected,
        mode: &w.mode,
        content: &w.content,
        owner,
        temp_name: &temp,
    };
    let out = replace_file(fs, &r).await;
    if let (Outcome::Ok, Some(s)) = (&out, before) {
        let _ = fs.set_owner(&path, s.uid, s.gid).await;
    }
    out
}

/// `remove_file.sh`: only if it is still what the plan read.
async fn remove(fs: &mut MemFs, w: &Write, owner: Option<u32>) -> Outcome {
    let path = server_path(&w.path);
    let Some(s) = fs.stat(&path).cloned() else {
        return Outcome::Ok;
    };
    if s.kind == FileKind::Symlink {
        return Outcome::Failed(format!("{} is a symbolic link", w.path));
    }
    if let Some(uid) = owner.filter(|u| *u != s.uid) {
        return Outcome::Failed(format!(
            "{} is owned by uid {}, not by this account ({uid})",
            w.path, s.uid
        ));
    }
    let now = fs.content(&path).map_or_else(|| "absent".into(), cksum);
    if now != w.expected {
        return Outcome::Conflict(now);
    }
    match fs.remove(&path).await {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(e.0),
    }
}

/// `rotate_swap.sh`: the old pair moved aside, the new one moved in.
async fn swap(fs: &mut MemFs, path: &str, new_path: &str, aside_path: &str) -> Outcome {
    let (k, n, a) = (
        server_path(path),
        server_path(new_path),
        server_path(aside_path),
    );
    let pubs = |p: &str| [p.to_string(), format!("{p}.pub")];
    if fs.stat(&n).is_none() || fs.stat(&format!("{n}.pub")).is_none() {
        return Outcome::Failed(format!("the new key {new_path} is missing"));
    }
    if pubs(&a).iter().any(|p| fs.stat(p).is_some()) {
        return Outcome::Failed(format!(
            "{aside_path} already exists: the old key is not moved over it"
        ));
    }
    for (from, to) in pubs(&k).into_iter().zip(pubs(&a)) {
        if fs.stat(&from).is_some() {
            if let Err(e) = fs.rename_over(&from, &to).await {
                return Outcome::Failed(e.0);
            }
        }
    }
    for (from, to) in pubs(&n).into_iter().zip(pubs(&k)) {
        if let Err(e) = fs.rename_over(&from, &to).await {
            return Outcome::Failed(e.0);
        }
    }
    Outcome::Ok
}

impl Door for MemoryDoor {
    fn node(&self) -> &str {
        &self.node
    }

    fn read_state<'a>(
        &'a self,
        files: &'a NodeFiles,
    ) -> BoxFuture<'a, Result<LiveAccount, DoorError>> {
        Box::pin(self.read(files))
    }

    fn run<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Result<Outcome, DoorError>> {
        Box::pin(self.run_op(op))
    }
}
