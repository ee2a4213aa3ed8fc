//! Accounts. The password database is the machine's own and is shared by
//! every host (only homes are per host), so an account is created once,
//! with `useradd -M -d /home/USER -s /bin/bash USER` (`-d /Users/USER` for
//! an account of a host with macOS-like homes), and kept: creating it
//! again is a no-op, and an account that exists with another home is
//! refused (it may be in use by another cluster). Changes are serialised across processes with a lock
//! file, since `useradd` and `chpasswd` refuse to run concurrently.
//!
//! sshd refuses a key login to a locked account (`!` in the shadow file):
//! a new account is unlocked with `usermod -p '*'` (no password works, keys
//! do), unless a host of the cluster wants password login, in which case it
//! gets that password with `chpasswd`. An account that already has a
//! password keeps it.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::alloc::FileLock;
use crate::sys::run;

/// uid and gid of an account, from `/etc/passwd`.
pub(crate) fn ids(user: &str) -> io::Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == user {
            let uid = f[2]
                .parse()
                .map_err(|_| io::Error::other("bad /etc/passwd"))?;
            let gid = f[3]
                .parse()
                .map_err(|_| io::Error::other("bad /etc/passwd"))?;
            return Ok((uid, gid));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no account {user:?}"),
    ))
}

/// The home of an account, from `/etc/passwd`.
pub(crate) fn home(user: &str) -> io::Result<String> {
    let passwd = fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<&str>>())
        .find(|f| f.len() >= 6 && f[0] == user)
        .map(|f| f[5].to_string())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no account {user:?}")))
}

/// The home a new account gets: `/Users/USER` for macOS-like homes,
/// `/home/USER` otherwise.
pub(crate) fn home_for(user: &str, mac_homes: bool) -> String {
    if mac_homes {
        format!("/Users/{user}")
    } else {
        format!("/home/{user}")
    }
}

/// What an account must be: its password (`None`: keys only) and home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) password: Option<String>,
    pub(crate) home: String,
}

fn shadow_hash(user: &str) -> io::Result<Option<String>> {
    let shadow = fs::read_to_string("/etc/shadow")?;
    Ok(shadow.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next() == Some(user)).then(|| f.next().unwrap_or("").to_string())
    }))
}

/// Make sure every account exists with its home and can log in.
pub(crate) fn ensure(users: &BTreeMap<String, Wanted>, lock_dir: &Path) -> io::Result<()> {
    let _lock = FileLock::acquire(&lock_dir.join("accounts.lock"))?;
    for (user, wanted) in users {
        // The machine's root exists; its password state is not ours to
        // change (a host's root logs in with keys only).
        if user == "root" {
            continue;
        }
        let password = &wanted.password;
        if ids(user).is_err() {
            run(
                "useradd",
                &["-M", "-d", &wanted.home, "-s", "/bin/bash", user],
            )?;
        }
        let has = home(user)?;
        if has != wanted.home {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "account {user} exists with the home {has}, not {}: the password file is shared \
                     by every cluster on this machine, so give this host another account name",
                    wanted.home
                ),
            ));
        }
        match password {
            Some(pw) => {
                let mut child = Command::new("chpasswd")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()?;
                child
                    .stdin
                    .take()
                    .expect("piped stdin")
                    .write_all(format!("{user}:{pw}\n").as_bytes())?;
                let out = child.wait_with_output()?;
                if !out.status.success() {
                    return Err(io::Error::other(format!(
                        "chpasswd for {user}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
            }
            None => {
                let hash = shadow_hash(user)?.unwrap_or_default();
                if hash.starts_with('!') || hash.is_empty() {
                    run("usermod", &["-p", "*", user])?;
                }
            }
        }
    }
    Ok(())
}
