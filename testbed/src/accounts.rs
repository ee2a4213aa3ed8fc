//! Accounts. The password database is the machine's own and is shared by
//! every host (only homes are per host), so an account is created once,
//! with `useradd -M -d /home/USER -s /bin/bash USER`, and kept: creating it
//! again is a no-op. Changes are serialised across processes with a lock
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

fn shadow_hash(user: &str) -> io::Result<Option<String>> {
    let shadow = fs::read_to_string("/etc/shadow")?;
    Ok(shadow.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next() == Some(user)).then(|| f.next().unwrap_or("").to_string())
    }))
}

/// Make sure every account exists and can log in: `users` maps each account
/// to the password it needs (`None`: keys only).
pub(crate) fn ensure(users: &BTreeMap<String, Option<String>>, lock_dir: &Path) -> io::Result<()> {
    let _lock = FileLock::acquire(&lock_dir.join("accounts.lock"))?;
    for (user, password) in users {
        // The machine's root exists; its password state is not ours to
        // change (a host's root logs in with keys only).
        if user == "root" {
            continue;
        }
        if ids(user).is_err() {
            run(
                "useradd",
                &[
                    "-M",
                    "-d",
                    &format!("/home/{user}"),
                    "-s",
                    "/bin/bash",
                    user,
                ],
            )?;
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
