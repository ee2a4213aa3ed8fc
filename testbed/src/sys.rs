//! Small system helpers: running a command and checking it, and finding,
//! signalling and waiting for processes by pid without ever touching a
//! process we did not start.
//!
//! A pid alone can be reused, so every process the testbed starts is
//! remembered as a [`ProcId`]: its pid and its start time (field 22 of
//! `/proc/PID/stat`). A signal is only sent when both still match.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Run a command to completion; a non-zero exit is an error carrying its
/// stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> io::Result<Output> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(io::Error::other(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A process the testbed started: pid plus start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcId {
    pub pid: u32,
    pub start_time: u64,
}

impl ProcId {
    /// Identify a live pid now (fails when it is gone).
    pub fn of(pid: u32) -> io::Result<ProcId> {
        let (start_time, _) = stat(pid)?;
        Ok(ProcId { pid, start_time })
    }

    /// Is this very process still there (and not a zombie)?
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Ok((t, state)) if t == self.start_time && state != 'Z' && state != 'X')
    }

    /// Is this very process still there, zombie or not (the pid not yet
    /// free)?
    fn present(&self) -> bool {
        matches!(stat(self.pid), Ok((t, _)) if t == self.start_time)
    }

    /// Send `sig` if the process is still this one.
    pub fn signal(&self, sig: i32) -> bool {
        if !self.present() {
            return false;
        }
        // SAFETY: kill(2) with a pid we checked is the one we started.
        unsafe { libc::kill(self.pid as libc::pid_t, sig) == 0 }
    }

    /// The mount namespace of the process (`mnt:[4026532...]`), read only
    /// while it is verifiably this process.
    pub fn mount_ns(&self) -> Option<String> {
        let ns = fs::read_link(format!("/proc/{}/ns/mnt", self.pid)).ok()?;
        if !self.present() {
            return None;
        }
        Some(ns.to_string_lossy().into_owned())
    }

    /// Wait until the process is gone (reaped by its parent, or a zombie of
    /// a parent that is not us), polling `/proc`.
    pub fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.alive() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// (start time, state letter) of a pid.
fn stat(pid: u32) -> io::Result<(u64, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &text[text
        .rfind(')')
        .ok_or_else(|| io::Error::other("bad stat"))?
        + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first().and_then(|s| s.chars().next()).unwrap_or('?');
    let start = fields
        .get(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("bad stat"))?;
    Ok((start, state))
}

/// Every pid (other than `except`) whose mount namespace is `ns`.
pub(crate) fn pids_in_mount_ns(ns: &str, except: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == except {
            continue;
        }
        if let Ok(link) = fs::read_link(entry.path().join("ns/mnt")) {
            if link.to_string_lossy() == ns {
                found.push(pid);
            }
        }
    }
    found
}

/// The mount namespaces that must never be swept: ours (when we cannot
/// tell, none is swept) and init's (when we may look at it).
pub(crate) fn protected_mount_ns(ns: &str) -> bool {
    let same = |p: &str| fs::read_link(p).map(|l| l.to_string_lossy() == ns);
    same("/proc/self/ns/mnt").unwrap_or(true) || same("/proc/1/ns/mnt").unwrap_or(false)
}

/// Stop a host: its sshd `listener` and every process in its private mount
/// namespace (sessions, commands run there). The namespace is swept while
/// the listener, stopped, still keeps it alive, so its id cannot have been
/// reused by someone else's namespace. `reap` waits for the listener when
/// it is our child.
pub(crate) fn stop_host_processes(listener: ProcId, reap: &mut dyn FnMut()) {
    if listener.alive() {
        listener.signal(libc::SIGSTOP);
        if let Some(ns) = listener.mount_ns() {
            if !protected_mount_ns(&ns) {
                for _round in 0..50 {
                    let members = pids_in_mount_ns(&ns, listener.pid);
                    if members.is_empty() {
                        break;
                    }
                    for pid in members {
                        // SAFETY: the pid is in the host's private mount namespace,
                        // which only processes started through this host enter.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        listener.signal(libc::SIGKILL);
        listener.signal(libc::SIGCONT);
    }
    reap();
    listener.wait_gone(Duration::from_secs(5));
}

/// Make a directory (and parents) with this mode and owner.
pub(crate) fn make_dir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}
