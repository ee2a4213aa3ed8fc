//! The file tree of [`super::MemoryDoor`]: a [`RemoteFiles`] in memory,
//! with the faults the file sequences are tested against (a transfer cut
//! half way, a server without `posix-rename`, unreadable files).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::state::FileKind;
use crate::transport::files::{FsError, RemoteFiles, Stat};

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
pub(super) const MTIME: u64 = 1_000;

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
    pub(super) fn put_parents(&mut self, p: &str) {
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
