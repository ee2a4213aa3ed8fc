//! Giving every cluster its own slot, across threads and processes.
//!
//! A slot `k` (0..512) names everything a cluster creates on the machine:
//! its loopback range `127.(100 + k/256).(k%256).0/24`, its veth range
//! `198.(18 + k/256).(k%256).0/24` (inside 198.18.0.0/15, the range set
//! aside for benchmarking) and the prefix `tb{k}` of its namespace and
//! interface names. A cluster holds its slot with an exclusive `flock` on
//! `/tmp/testbed-locks/{k}.lock` for as long as it lives, and writes its
//! record (what it started and created) to `{k}.json` beside it.
//!
//! A slot whose lock is free but whose record is not marked detached
//! belongs to a process that died without cleaning up (killed test run):
//! the next allocation sweeps it (stops its sshd by pid, deletes its
//! namespaces). A slot still in use by anything else (a listener in its
//! range, a namespace or interface with its prefix) is skipped.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Number of slots.
pub(crate) const SLOTS: u32 = 512;

/// Where locks and records live.
pub(crate) fn lock_dir() -> io::Result<PathBuf> {
    let dir = PathBuf::from(
        std::env::var_os("TESTBED_LOCK_DIR").unwrap_or_else(|| "/tmp/testbed-locks".into()),
    );
    crate::sys::make_dir(&dir, 0o755, None)?;
    Ok(dir)
}

/// An exclusive `flock`, released on drop (or when the process dies).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    fn open(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
    }

    /// Wait for the lock.
    pub fn acquire(path: &Path) -> io::Result<FileLock> {
        let file = Self::open(path)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FileLock { _file: file })
    }

    /// Take the lock if nobody holds it.
    pub fn try_acquire(path: &Path) -> io::Result<Option<FileLock>> {
        let file = Self::open(path)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            return if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(err)
            };
        }
        Ok(Some(FileLock { _file: file }))
    }
}

/// The loopback range of slot `k`.
pub(crate) fn loopback_base(k: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, 100 + (k / 256) as u8, (k % 256) as u8, 0)
}

/// The veth range of slot `k`.
pub(crate) fn veth_base(k: u32) -> Ipv4Addr {
    Ipv4Addr::new(198, 18 + (k / 256) as u8, (k % 256) as u8, 0)
}

pub(crate) fn lock_path(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("{k}.lock"))
}

pub(crate) fn record_path(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("{k}.json"))
}

/// Is anything of slot `k` visible on the machine?
fn slot_in_use(k: u32) -> bool {
    let prefix = format!("tb{k}");
    let named = |dir: &str| {
        fs::read_dir(dir).is_ok_and(|d| {
            d.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix(&prefix)
                    .and_then(|rest| rest.chars().next())
                    .is_some_and(|c| c.is_ascii_alphabetic())
            })
        })
    };
    if named("/run/netns") || named("/sys/class/net") {
        return true;
    }
    let base = u32::from(loopback_base(k));
    listening_v4()
        .into_iter()
        .any(|(a, _)| u32::from(a) & 0xffff_ff00 == base)
}

/// Addresses and ports with a TCP listener in our network namespace.
pub(crate) fn listening_v4() -> Vec<(Ipv4Addr, u16)> {
    let Ok(text) = fs::read_to_string("/proc/net/tcp") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) != Some(&"0A") {
                return None;
            }
            let (addr, port) = f.get(1)?.split_once(':')?;
            let addr = u32::from_str_radix(addr, 16).ok()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            Some((Ipv4Addr::from(addr.to_ne_bytes()), port))
        })
        .collect()
}

/// Find a free slot and hold it. `sweep` cleans a stale slot from its record
/// (text of `{k}.json`), with the slot's lock held, and says whether the
/// record is done with (false for a detached cluster, which lives on).
pub(crate) fn allocate(sweep: &dyn Fn(&str) -> bool) -> io::Result<(u32, FileLock)> {
    let dir = lock_dir()?;
    sweep_stale(&dir, sweep);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let start = (std::process::id().wrapping_mul(7919) ^ nanos) % SLOTS;
    for i in 0..SLOTS {
        let k = (start + i) % SLOTS;
        let Some(lock) = FileLock::try_acquire(&lock_path(&dir, k))? else {
            continue;
        };
        if record_path(&dir, k).exists() || slot_in_use(k) {
            continue;
        }
        return Ok((k, lock));
    }
    Err(io::Error::other(
        "no free testbed slot (512 clusters alive?)",
    ))
}

/// Sweep every slot whose owner died without cleaning up.
fn sweep_stale(dir: &Path, sweep: &dyn Fn(&str) -> bool) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(k) = name
            .strip_suffix(".json")
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(Some(_lock)) = FileLock::try_acquire(&lock_path(dir, k)) else {
            continue;
        };
        let path = record_path(dir, k);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        if sweep(&text) {
            let _ = fs::remove_file(&path);
        }
    }
}
