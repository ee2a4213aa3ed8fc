//! One host: what is known of it, and the files that make it a fresh
//! machine (its `/home`, its `/etc/ssh` with new host keys and an
//! `sshd_config` of its own) before its sshd is started.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::sys::{make_dir, ProcId};

/// The shell run (as root, in the new mount and UTS namespaces) to turn a
/// process into a host: its own `/home`, `/etc/hosts` and `/etc/ssh` (and
/// `/Users`, for accounts with macOS-like homes), its own hostname, then
/// sshd in the same pid. Arguments: home, etc-ssh, hostname, log,
/// etc-hosts copy, for a host with a `root` account its `/etc` overlay
/// folder and its `/root`, and its `/Users` folder (or empty).
///
/// `/etc/hosts` is a copy of the machine's, bind-mounted; a host with a
/// root account gets an overlay over the whole `/etc` instead (writes go
/// to its own folder), since a file that is a mount point cannot be
/// replaced by a rename, which is how `/etc/hosts` is written atomically.
/// Its `/root` is its own too, so nothing a test does as root reaches the
/// machine's.
pub(crate) const HOST_SCRIPT: &str = r#"set -e
mount --bind "$1" /home
if [ -n "$6" ]; then
  mount -t overlay overlay -o "lowerdir=/etc,upperdir=$6/upper,workdir=$6/work" /etc
else
  mount --bind "$5" /etc/hosts
fi
if [ -n "$7" ]; then mount --bind "$7" /root; fi
mount --bind "$2" /etc/ssh
if [ -n "$8" ]; then mount --bind "$8" /Users; fi
printf '%s' "$3" > /proc/sys/kernel/hostname
exec /usr/sbin/sshd -D -f /etc/ssh/sshd_config -E "$4""#;

/// One host of a running cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// Its name, also its hostname.
    pub name: String,
    /// How the other hosts reach it: its loopback address; for a bastion,
    /// its address on the veth reachable from the machine; for a host behind
    /// a bastion, the address the bastion reaches it at.
    pub address: IpAddr,
    /// The port its sshd listens on.
    pub port: u16,
    /// Its accounts.
    pub users: Vec<String>,
    /// The password of its accounts when it accepts password logins.
    pub password: Option<String>,
    /// The bastion it hides behind.
    pub behind: Option<String>,
    /// Lines put first in its `sshd_config` (sshd keeps the first value of
    /// a keyword, so these win over the testbed's defaults).
    #[serde(default)]
    pub sshd_options: Vec<String>,
    pub(crate) listen: Vec<Ipv4Addr>,
    pub(crate) netns: Option<String>,
    pub(crate) dir: PathBuf,
    pub(crate) process: Option<ProcId>,
}

impl Host {
    /// Pid of its sshd (the listener) while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.map(|p| p.pid)
    }

    /// Its folder on the machine: `home/` (its `/home`), `etc-ssh/` (its
    /// `/etc/ssh`), `sshd.log`.
    pub fn state_dir(&self) -> &Path {
        &self.dir
    }

    /// Where the home of `user` on this host is on the machine: its
    /// `/home/USER`, `/root` for root, or `/Users/USER` for an account with
    /// a macOS-like home (the home is the account's, from `/etc/passwd`).
    pub fn home_of(&self, user: &str) -> PathBuf {
        if user == "root" {
            return self.dir.join("root");
        }
        match accounts::home(user) {
            Ok(h) if h.starts_with("/Users/") => self.dir.join("Users").join(user),
            _ => self.dir.join("home").join(user),
        }
    }

    /// Whether an account of this host has its home under `/Users`.
    pub(crate) fn has_mac_homes(&self) -> bool {
        self.users
            .iter()
            .any(|u| accounts::home(u).is_ok_and(|h| h.starts_with("/Users/")))
    }

    /// Whether the host has a `root` account (then its `/etc` is an
    /// overlay of its own, see [`Host::etc_overlay`]).
    pub fn has_root(&self) -> bool {
        self.users.iter().any(|u| u == "root")
    }

    /// The copy of `/etc/hosts` bind-mounted on a host without root.
    pub fn etc_hosts_copy(&self) -> PathBuf {
        self.dir.join("etc-hosts")
    }

    /// The overlay folder of `/etc` on a host with root (`upper/` holds
    /// what the host changed, e.g. `upper/hosts`).
    pub fn etc_overlay(&self) -> PathBuf {
        self.dir.join("etc-overlay")
    }

    /// Its `/etc/ssh` on the machine.
    pub fn etc_ssh(&self) -> PathBuf {
        self.dir.join("etc-ssh")
    }

    /// Its sshd log (`sshd -E`).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }

    /// Its own network namespace (bastions and hosts behind them).
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// All addresses its sshd listens on (a bastion also listens on the
    /// side of each host behind it).
    pub fn listen_addresses(&self) -> &[Ipv4Addr] {
        &self.listen
    }

    /// `address` as written in `known_hosts`: `addr`, or `[addr]:port` when
    /// the port is not 22.
    pub fn known_hosts_name(&self) -> String {
        if self.port == 22 {
            self.address.to_string()
        } else {
            format!("[{}]:{}", self.address, self.port)
        }
    }
}

/// The host's folders and config files, as a fresh install would have them.
pub(crate) fn prepare_host_dir(h: &Host, key_types: &[String]) -> io::Result<()> {
    make_dir(&h.dir, 0o755, None)?;
    make_dir(&h.dir.join("home"), 0o755, None)?;
    if h.has_mac_homes() {
        make_dir(&h.dir.join("Users"), 0o755, None)?;
    }
    for u in &h.users {
        let mode = if u == "root" { 0o700 } else { 0o755 };
        make_dir(&h.home_of(u), mode, Some(accounts::ids(u)?))?;
    }
    fs::copy("/etc/hosts", h.etc_hosts_copy())?;
    if h.has_root() {
        make_dir(&h.etc_overlay(), 0o755, None)?;
        make_dir(&h.etc_overlay().join("upper"), 0o755, None)?;
        make_dir(&h.etc_overlay().join("work"), 0o755, None)?;
    }
    let etc = h.etc_ssh();
    make_dir(&etc, 0o755, None)?;
    // The client side of a Debian host (ssh_config with its
    // HashKnownHosts, ssh_config.d) and the DH moduli, when present.
    for f in ["ssh_config", "moduli"] {
        let src = Path::new("/etc/ssh").join(f);
        if src.is_file() {
            fs::copy(&src, etc.join(f))?;
        }
    }
    let conf_d = Path::new("/etc/ssh/ssh_config.d");
    if conf_d.is_dir() {
        make_dir(&etc.join("ssh_config.d"), 0o755, None)?;
        for e in fs::read_dir(conf_d)?.flatten() {
            if e.path().is_file() {
                fs::copy(e.path(), etc.join("ssh_config.d").join(e.file_name()))?;
            }
        }
    }
    fs::write(etc.join("sshd_config"), sshd_config(h, key_types))
}

fn sshd_config(h: &Host, key_types: &[String]) -> String {
    let mut c = format!(
        "# sshd_config of testbed host {}\nPort {}\nAddressFamily inet\n",
        h.name, h.port
    );
    for o in &h.sshd_options {
        c.push_str(o);
        c.push('\n');
    }
    for a in &h.listen {
        c.push_str(&format!("ListenAddress {a}\n"));
    }
    for t in key_types {
        c.push_str(&format!("HostKey /etc/ssh/ssh_host_{t}_key\n"));
    }
    let password = if h.password.is_some() { "yes" } else { "no" };
    let root = if h.has_root() {
        "prohibit-password"
    } else {
        "no"
    };
    c.push_str(&format!(
        "PidFile none\n\
         UsePAM no\n\
         PermitRootLogin {root}\n\
         StrictModes yes\n\
         PubkeyAuthentication yes\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         PasswordAuthentication {password}\n\
         KbdInteractiveAuthentication no\n\
         PermitEmptyPasswords no\n\
         MaxStartups 100:30:200\n\
         MaxSessions 64\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         AllowTcpForwarding yes\n\
         Subsystem sftp internal-sftp\n\
         LogLevel INFO\n"
    ));
    c
}

/// `ssh-keygen -t TYPE` for every host and type, all at once.
pub(crate) fn generate_host_keys(hosts: &[&Host], types: &[String]) -> io::Result<()> {
    let mut jobs = Vec::new();
    for h in hosts {
        for t in types {
            let path = h.etc_ssh().join(format!("ssh_host_{t}_key"));
            let child = Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    t,
                    "-N",
                    "",
                    "-C",
                    &format!("root@{}", h.name),
                    "-f",
                ])
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?;
            jobs.push((h.name.clone(), t.clone(), child));
        }
    }
    let mut problems = Vec::new();
    for (name, t, child) in jobs {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            problems.push(format!(
                "{name} {t}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ssh-keygen failed: {}",
            problems.join("; ")
        )))
    }
}
