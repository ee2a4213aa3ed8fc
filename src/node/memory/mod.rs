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

use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use super::sftp::{file_op, SetAcl};
use super::{Door, DoorError, NodePath, Op, Reason, Write};
use crate::model::state::{FileKind, FileStat, LiveAccount};
use crate::plan::NodeFiles;
use crate::transport::files::{
    read_account, replace_file, temp_name, AccountRequest, FsError, RemoteFiles, Replace, Stat,
    LEFTOVER_AGE,
};

mod tree;

use crate::transport::scripts::{cksum, Outcome};
use tree::MTIME;
pub use tree::{Entry, MemFs, HOME};

/// Makes the public key line of a key generated at a plan path, from
/// (path, key type, marker): `type base64 comment`.
pub type Keygen = dyn Fn(&str, &str, &str) -> String + Send + Sync;

/// Signs a certificate in memory (`certificates:`): the certificate line,
/// or why not.
pub type Signer = dyn Fn(&super::SignRequest) -> Result<CertificateLine, SignError> + Send + Sync;

/// A signed certificate as one line of its file: `type-cert-v01 base64
/// [comment]`.
pub type CertificateLine = String;

/// Why an in-memory [`Signer`] did not sign: its words (the node's answer
/// is a failed `sign`, as ssh-keygen's refusal would be).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

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
    signer: Option<Box<Signer>>,
    /// Targets a rotation's proof fails to open.
    failing_proofs: Vec<String>,
    /// `sshd -t` refuses the config with these words (host_certificates).
    sshd_refuses: Option<String>,
    /// How many times sshd was reloaded.
    reloads: std::sync::atomic::AtomicUsize,
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
            fs.put_parents(&NodePath::of_name(admin).sftp());
        }
        let mut extra = Vec::new();
        for f in &account.files {
            let path = NodePath::of_name(&f.name).sftp();
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
            signer: None,
            failing_proofs: Vec::new(),
            sshd_refuses: None,
            reloads: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Keys generated with `keygen` (path, key type, marker) -> public line.
    pub fn with_keygen(mut self, keygen: Box<Keygen>) -> MemoryDoor {
        self.keygen = keygen;
        self
    }

    /// Certificates signed with `signer` (the manager's door).
    pub fn with_signer(mut self, signer: Box<Signer>) -> MemoryDoor {
        self.signer = Some(signer);
        self
    }

    /// A rotation's proof to `target` fails.
    pub fn failing_proof(mut self, target: &str) -> MemoryDoor {
        self.failing_proofs.push(target.to_string());
        self
    }

    /// `sshd -t` refuses the config, with these words.
    pub fn sshd_refuses(mut self, words: &str) -> MemoryDoor {
        self.sshd_refuses = Some(words.to_string());
        self
    }

    /// How many times sshd was reloaded.
    pub fn reloads(&self) -> usize {
        self.reloads.load(std::sync::atomic::Ordering::SeqCst)
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
        // `--sshd-leftovers` reads them when trustmesh's files are there.
        let leftovers = files.sshd_leftovers
            && extra.iter().any(|(n, _)| {
                n.starts_with("/etc/ssh/")
                    && (n.contains("/trustmesh-") || n.ends_with("-cert.pub"))
            });
        for (name, r) in extra.iter() {
            if !read.contains(name) && !stat_only.contains(name) {
                // `--sshd` reads sshd's public files (host_certificates).
                let sshd = (files.sshd || leftovers)
                    && name.starts_with("/etc/ssh/")
                    && !name.ends_with(".d");
                if *r || sshd {
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
            } => Ok(keygen(fs, path, &(self.keygen)(path.as_plan(), key_type, marker)).await),
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
            Op::Sign(s) => Ok(match self.signer.as_ref().map(|f| f(s)) {
                Some(Ok(line)) => Outcome::PublicKey(line),
                Some(Err(why)) => Outcome::Failed(why.to_string()),
                None => Outcome::Failed("no user CA on this node".into()),
            }),
            Op::ReloadSshd {
                dropin, restore, ..
            } => Ok(self.reload_sshd(fs, dropin, restore.as_deref()).await),
            _ => file_op(fs, false, op, NoAcl).await,
        };
        r.map_err(|e| self.error(op.step(), e))
    }
}

impl MemoryDoor {
    /// `sshd_reload.sh`: the drop-in put back when `sshd -t` refuses the
    /// config, else one more reload.
    async fn reload_sshd(
        &self,
        fs: &mut MemFs,
        dropin: &NodePath,
        restore: Option<&[u8]>,
    ) -> Outcome {
        let Some(words) = &self.sshd_refuses else {
            self.reloads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Outcome::Ok;
        };
        let path = dropin.sftp();
        let back = match restore {
            Some(old) => {
                fs.put(&path, 0o644, old);
                Ok(())
            }
            None => fs.remove(&path).await.map_err(|e| e.0),
        };
        match back {
            Ok(()) => Outcome::Failed(format!(
                "sshd -t refused the config: {words}; the previous {dropin} was put back and sshd was not reloaded"
            )),
            Err(e) => Outcome::Failed(format!(
                "sshd -t refused the config: {words}; the previous {dropin} could not be put back ({e}); sshd was not reloaded"
            )),
        }
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
async fn keygen(fs: &mut MemFs, path: &NodePath, public: &str) -> Outcome {
    let private = path.sftp();
    let public_path = path.public_half().sftp();
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
    let path = w.path.sftp();
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
    let path = w.path.sftp();
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
async fn swap(
    fs: &mut MemFs,
    path: &NodePath,
    new_path: &NodePath,
    aside_path: &NodePath,
) -> Outcome {
    let (k, n, a) = (path.sftp(), new_path.sftp(), aside_path.sftp());
    // A certificate of the new key (certificates:) moves with the pair.
    let cert = fs.stat(&format!("{n}-cert.pub")).is_some();
    let pubs = |p: &str| {
        let mut v = vec![p.to_string(), format!("{p}.pub")];
        v.extend(cert.then(|| format!("{p}-cert.pub")));
        v
    };
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
