//! A running cluster: what it started, how to reach into it, how to break
//! it on purpose, and how it is taken down.
//!
//! Everything the cluster creates on the machine is written to its record
//! (`state.json` in its state folder, and `{slot}.json` in the lock folder)
//! before or right after it is created, so that taking the cluster down
//! works from the record alone: after a failed start, from another process
//! (`testbed down`), or after the owner was killed (the next cluster sweeps
//! it). Taking down never uses a process name: only the pids recorded, each
//! checked against its recorded start time.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts;
use crate::alloc::{self, FileLock};
pub use crate::host::Host;
use crate::host::{generate_host_keys, prepare_host_dir, HOST_SCRIPT};
use crate::net::{enter_netns, ip_in, probe};
use crate::spec::{offset, ClusterSpec};
use crate::sys::{self, make_dir, run, ProcId};

/// `PATH` inside a host.
const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables of the caller that [`Cluster::command`] passes into a host;
/// everything else is cleared.
const PASSED_ENV: &[&str] = &[
    "TERM",
    "LANG",
    "LC_ALL",
    "NO_COLOR",
    "CLICOLOR_FORCE",
    "RUST_BACKTRACE",
    "RUST_LOG",
];

/// One end of a veth pair we created, in namespace `ns` (None: the
/// machine's).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Veth {
    ns: Option<String>,
    name: String,
}

/// Everything needed to reach and take down a cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    slot: u32,
    detached: bool,
    owner_pid: u32,
    state_dir: PathBuf,
    key_types: Vec<String>,
    /// The namespace holding the loopback hosts when isolated.
    front_netns: Option<String>,
    /// Namespaces created, in order.
    netns: Vec<String>,
    /// Veth pairs created, in order.
    veths: Vec<Veth>,
    /// `unreachable` routes added to the machine's namespace (so packets to
    /// hidden hosts fail at once instead of leaving by the default route).
    #[serde(default)]
    routes: Vec<String>,
    hosts: Vec<Host>,
}

/// A running cluster. Dropping it stops every sshd it started (by pid,
/// with everything still running inside those hosts), deletes its
/// namespaces and veths, and removes its state folder unless
/// `TESTBED_KEEP=1`. Drop also runs when a test panics.
#[derive(Debug)]
pub struct Cluster {
    rec: Record,
    children: HashMap<String, Child>,
    lock_dir: PathBuf,
    lock: Option<FileLock>,
    /// Whether dropping takes the cluster down (false when attached to, or
    /// after detaching).
    armed: bool,
}

fn err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, msg)
}

impl Cluster {
    /// Start a cluster with its state in a new temporary folder, and wait
    /// until every sshd accepts connections.
    pub fn start(spec: ClusterSpec) -> io::Result<Cluster> {
        Self::start_with(spec, None)
    }

    /// Start a cluster with its state in `dir` (created; must be empty if it
    /// exists). `dir` is removed when the cluster is taken down.
    pub fn start_in(spec: ClusterSpec, dir: &Path) -> io::Result<Cluster> {
        Self::start_with(spec, Some(dir))
    }

    fn start_with(spec: ClusterSpec, dir: Option<&Path>) -> io::Result<Cluster> {
        spec.validate()?;
        for tool in ["/usr/sbin/sshd", "/usr/bin/ssh-keygen"] {
            if !Path::new(tool).exists() {
                return Err(err(
                    io::ErrorKind::NotFound,
                    format!("{tool} is missing (apt-get install -y openssh-server)"),
                ));
            }
        }
        if let Some(d) = dir {
            if d.exists() && fs::read_dir(d)?.next().is_some() {
                return Err(err(
                    io::ErrorKind::AlreadyExists,
                    format!("state folder {} is not empty", d.display()),
                ));
            }
        }
        let lock_dir = alloc::lock_dir()?;
        let (slot, lock) = alloc::allocate(&sweep_record)?;
        let state_dir = match dir {
            None => {
                let d = tempfile::Builder::new()
                    .prefix(&format!("testbed-{slot}-"))
                    .tempdir()?
                    .keep();
                // Traversable, not listable: the shared folder inside must
                // be reachable by the hosts' accounts (see `share`).
                fs::set_permissions(&d, fs::Permissions::from_mode(0o711))?;
                d
            }
            Some(d) => {
                make_dir(d, 0o711, None)?;
                fs::canonicalize(d)?
            }
        };
        // From here on, dropping `cluster` undoes whatever was done.
        let mut cluster = Cluster {
            rec: Record {
                slot,
                detached: false,
                owner_pid: std::process::id(),
                state_dir,
                key_types: spec.host_key_types.clone(),
                front_netns: None,
                netns: Vec::new(),
                veths: Vec::new(),
                routes: Vec::new(),
                hosts: Vec::new(),
            },
            children: HashMap::new(),
            lock_dir,
            lock: Some(lock),
            armed: true,
        };
        cluster.save()?;
        cluster.build(&spec)?;
        Ok(cluster)
    }

    fn build(&mut self, spec: &ClusterSpec) -> io::Result<()> {
        let slot = self.rec.slot;
        let base = spec.base.unwrap_or_else(|| alloc::loopback_base(slot));
        let veth_base = alloc::veth_base(slot);
        let listeners = alloc::listening_v4();
        let isolated = spec.isolated.unwrap_or_else(|| {
            spec.hosts.iter().any(|h| {
                !spec.is_netns_host(&h.name) && listeners.contains(&(Ipv4Addr::UNSPECIFIED, h.port))
            })
        });
        if isolated {
            self.rec.front_netns = Some(format!("tb{slot}c"));
        }

        // Addresses, names and folders.
        let mut pair = 0u32;
        let mut next_pair = || -> io::Result<(Ipv4Addr, Ipv4Addr)> {
            if pair >= 64 {
                return Err(io::Error::other("too many bastion links (64 at most)"));
            }
            let near = offset(veth_base, 4 * pair + 1);
            pair += 1;
            Ok((near, offset(near, 1)))
        };
        let mut front_links = HashMap::new(); // bastion index -> (front side, bastion side)
        for (i, h) in spec.hosts.iter().enumerate() {
            if spec.is_bastion(&h.name) {
                front_links.insert(i, next_pair()?);
            }
        }
        let mut back_links = HashMap::new(); // hidden index -> (bastion side, hidden side)
        for (i, h) in spec.hosts.iter().enumerate() {
            if h.behind.is_some() {
                back_links.insert(i, next_pair()?);
            }
        }
        let hosts_dir = self.rec.state_dir.join("hosts");
        make_dir(&hosts_dir, 0o755, None)?;
        for (i, h) in spec.hosts.iter().enumerate() {
            let (address, listen, netns) = if let Some(&(_, bastion_side)) = front_links.get(&i) {
                let mut listen = vec![bastion_side];
                for (j, hidden) in spec.hosts.iter().enumerate() {
                    if hidden.behind.as_deref() == Some(h.name.as_str()) {
                        listen.push(back_links[&j].0);
                    }
                }
                (bastion_side, listen, Some(format!("tb{slot}n{i}")))
            } else if let Some(&(_, hidden_side)) = back_links.get(&i) {
                (
                    hidden_side,
                    vec![hidden_side],
                    Some(format!("tb{slot}n{i}")),
                )
            } else {
                let a = h.address.unwrap_or_else(|| offset(base, i as u32 + 1));
                (a, vec![a], None)
            };
            self.rec.hosts.push(Host {
                name: h.name.clone(),
                address: IpAddr::V4(address),
                port: h.port,
                users: h.users.clone(),
                password: h.password.clone(),
                behind: h.behind.clone(),
                sshd_options: h.sshd_options.clone(),
                listen,
                netns,
                dir: hosts_dir.join(&h.name),
                process: None,
            });
        }
        self.save()?;
        if !isolated {
            self.check_free_endpoints()?;
        }

        // Accounts, homes, /etc/ssh.
        let mut users: BTreeMap<String, accounts::Wanted> = BTreeMap::new();
        for h in &spec.hosts {
            for u in &h.users {
                let entry = &mut users
                    .entry(u.clone())
                    .or_insert_with(|| accounts::Wanted {
                        password: None,
                        home: accounts::home_for(u, h.mac_homes),
                    })
                    .password;
                if let Some(pw) = &h.password {
                    match entry {
                        Some(other) if other != pw => {
                            return Err(err(
                                io::ErrorKind::InvalidInput,
                                format!("user {u} is given two different passwords (the password file is shared)"),
                            ))
                        }
                        _ => *entry = Some(pw.clone()),
                    }
                }
            }
        }
        accounts::ensure(&users, &self.lock_dir)?;
        make_dir(Path::new("/run/sshd"), 0o755, None)?;
        if !Path::new("/home").exists() {
            make_dir(Path::new("/home"), 0o755, None)?;
        }
        // Hosts with macOS-like homes get their own folder over `/Users`.
        if spec.hosts.iter().any(|h| h.mac_homes) && !Path::new("/Users").exists() {
            make_dir(Path::new("/Users"), 0o755, None)?;
        }
        for host in &self.rec.hosts {
            prepare_host_dir(host, &self.rec.key_types)?;
        }
        let keygen: Vec<&Host> = self.rec.hosts.iter().collect();
        generate_host_keys(&keygen, &self.rec.key_types)?;

        // Network namespaces and veths.
        if let Some(front) = self.rec.front_netns.clone() {
            self.add_netns(&front)?;
        }
        let netns_hosts: Vec<(usize, String)> = self
            .rec
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.netns.clone().map(|n| (i, n)))
            .collect();
        for (_, ns) in &netns_hosts {
            self.add_netns(ns)?;
        }
        if !netns_hosts.is_empty() && self.rec.front_netns.is_none() {
            let range = format!("{veth_base}/24");
            self.rec.routes.push(range.clone());
            self.save()?;
            run("ip", &["route", "replace", "unreachable", &range])?;
        }
        let front = self.rec.front_netns.clone();
        for (&i, &(front_side, bastion_side)) in &front_links {
            let bastion_ns = self.rec.hosts[i]
                .netns
                .clone()
                .expect("bastion has a netns");
            self.add_veth(
                (front.as_deref(), &format!("tb{slot}a{i}"), front_side),
                (&bastion_ns, &format!("tb{slot}b{i}"), bastion_side),
            )?;
        }
        for (&i, &(bastion_side, hidden_side)) in &back_links {
            let bastion = spec.hosts[i]
                .behind
                .as_deref()
                .expect("hidden host has a bastion");
            let bastion_ns = self
                .host_ref(bastion)?
                .netns
                .clone()
                .expect("bastion has a netns");
            let hidden_ns = self.rec.hosts[i]
                .netns
                .clone()
                .expect("hidden host has a netns");
            self.add_veth(
                (Some(&bastion_ns), &format!("tb{slot}h{i}"), bastion_side),
                (&hidden_ns, &format!("tb{slot}x{i}"), hidden_side),
            )?;
        }

        // The sshds.
        for i in 0..self.rec.hosts.len() {
            self.spawn_sshd(i)?;
        }
        self.wait_ready(&(0..self.rec.hosts.len()).collect::<Vec<_>>())
    }

    /// Fail early, with a useful message, when a loopback endpoint is taken.
    fn check_free_endpoints(&self) -> io::Result<()> {
        let listeners = alloc::listening_v4();
        for h in self.rec.hosts.iter().filter(|h| h.netns.is_none()) {
            let IpAddr::V4(a) = h.address else { continue };
            if let Err(e) = std::net::TcpListener::bind((a, h.port)) {
                let hint = if listeners.contains(&(Ipv4Addr::UNSPECIFIED, h.port)) {
                    format!(
                        " (something listens on 0.0.0.0:{0}, which takes port {0} on every address, \
                         the machine's own sshd perhaps; an \"isolated\" cluster has its own loopback)",
                        h.port
                    )
                } else {
                    " (a cluster from an earlier run still up? `testbed down --state DIR`)"
                        .to_string()
                };
                return Err(err(
                    e.kind(),
                    format!(
                        "host {}: cannot listen on {a}:{}: {e}{hint}",
                        h.name, h.port
                    ),
                ));
            }
        }
        Ok(())
    }

    fn add_netns(&mut self, ns: &str) -> io::Result<()> {
        self.rec.netns.push(ns.to_string());
        self.save()?;
        run("ip", &["netns", "add", ns])?;
        run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// A veth pair from `near` (namespace, name, address) to `far`.
    fn add_veth(
        &mut self,
        near: (Option<&str>, &str, Ipv4Addr),
        far: (&str, &str, Ipv4Addr),
    ) -> io::Result<()> {
        let (near_ns, near_name, near_addr) = near;
        let (far_ns, far_name, far_addr) = far;
        self.rec.veths.push(Veth {
            ns: near_ns.map(str::to_string),
            name: near_name.to_string(),
        });
        self.save()?;
        ip_in(
            near_ns,
            &[
                "link", "add", near_name, "type", "veth", "peer", "name", far_name, "netns", far_ns,
            ],
        )?;
        ip_in(
            near_ns,
            &["addr", "add", &format!("{near_addr}/30"), "dev", near_name],
        )?;
        ip_in(near_ns, &["link", "set", near_name, "up"])?;
        ip_in(
            Some(far_ns),
            &["addr", "add", &format!("{far_addr}/30"), "dev", far_name],
        )?;
        ip_in(Some(far_ns), &["link", "set", far_name, "up"])?;
        Ok(())
    }

    /// Start host `i`'s sshd (not waiting for it).
    fn spawn_sshd(&mut self, i: usize) -> io::Result<()> {
        let host = &self.rec.hosts[i];
        let netns = host.netns.clone().or_else(|| self.rec.front_netns.clone());
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .arg("unshare");
                c
            }
            None => Command::new("unshare"),
        };
        let start_log = fs::File::create(host.dir.join("start.log"))?;
        cmd.args([
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            HOST_SCRIPT,
            "testbed-host",
        ])
        .arg(host.dir.join("home"))
        .arg(host.etc_ssh())
        .arg(&host.name)
        .arg(host.log_path())
        .arg(host.etc_hosts_copy())
        .arg(if host.has_root() {
            host.etc_overlay()
        } else {
            PathBuf::new()
        })
        .arg(if host.has_root() {
            host.home_of("root")
        } else {
            PathBuf::new()
        })
        // Its own `/Users` when an account of it has its home there.
        .arg(if host.has_mac_homes() {
            host.dir.join("Users")
        } else {
            PathBuf::new()
        })
        .stdin(Stdio::null())
        .stdout(start_log.try_clone()?)
        .stderr(start_log)
        // Its own process group: a Ctrl-C meant for the caller does not
        // reach it; it is stopped by pid.
        .process_group(0);
        let mut child = cmd.spawn()?;
        let name = host.name.clone();
        match ProcId::of(child.id()) {
            Ok(id) => {
                self.rec.hosts[i].process = Some(id);
                self.children.insert(name, child);
                self.save()
            }
            Err(_) => {
                let _ = child.wait();
                Err(io::Error::other(format!(
                    "host {name}: sshd exited at once: {}",
                    self.log_tail(i)
                )))
            }
        }
    }

    /// Wait until the sshd of each host in `which` answers with its banner.
    fn wait_ready(&mut self, which: &[usize]) -> io::Result<()> {
        let probes: Vec<_> = which
            .iter()
            .map(|&i| {
                let h = &self.rec.hosts[i];
                let ns = h.netns.clone().or_else(|| self.rec.front_netns.clone());
                let addr = SocketAddr::new(IpAddr::V4(h.listen[0]), h.port);
                let process = h.process.expect("spawned");
                (
                    i,
                    std::thread::spawn(move || probe(ns.as_deref(), addr, process)),
                )
            })
            .collect();
        let mut problems = Vec::new();
        for (i, t) in probes {
            let outcome = t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("probe thread panicked")));
            if let Err(e) = outcome {
                problems.push(format!(
                    "host {}: {e}: {}",
                    self.rec.hosts[i].name,
                    self.log_tail(i)
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(io::Error::other(problems.join("; ")))
        }
    }

    fn log_tail(&self, i: usize) -> String {
        let h = &self.rec.hosts[i];
        let mut text = String::new();
        for p in [h.dir.join("start.log"), h.log_path()] {
            if let Ok(t) = fs::read_to_string(p) {
                text.push_str(&t);
            }
        }
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(6)..].join(" | ");
        if tail.is_empty() {
            "(no log)".to_string()
        } else {
            tail
        }
    }

    /// Write the record where `testbed down` and the sweeper find it.
    fn save(&self) -> io::Result<()> {
        let text = serde_json::to_string_pretty(&self.rec).map_err(io::Error::other)?;
        for path in [
            self.rec.state_dir.join("state.json"),
            alloc::record_path(&self.lock_dir, self.rec.slot),
        ] {
            // Root only: it holds the hosts' passwords.
            let tmp = path.with_extension("json.tmp");
            fs::write(&tmp, &text)?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
            fs::rename(&tmp, &path)?;
        }
        Ok(())
    }

    // ----- reaching the hosts -----

    /// The host called `name`. Panics when there is none (use
    /// [`Cluster::try_host`] to get an error instead).
    pub fn host(&self, name: &str) -> &Host {
        match self.try_host(name) {
            Some(h) => h,
            None => panic!("testbed: no host {name:?} in this cluster"),
        }
    }

    /// The host called `name`, if any.
    pub fn try_host(&self, name: &str) -> Option<&Host> {
        self.rec.hosts.iter().find(|h| h.name == name)
    }

    fn host_ref(&self, name: &str) -> io::Result<&Host> {
        self.try_host(name).ok_or_else(|| {
            err(
                io::ErrorKind::NotFound,
                format!("no host {name:?} in this cluster"),
            )
        })
    }

    fn index(&self, name: &str) -> io::Result<usize> {
        self.rec
            .hosts
            .iter()
            .position(|h| h.name == name)
            .ok_or_else(|| {
                err(
                    io::ErrorKind::NotFound,
                    format!("no host {name:?} in this cluster"),
                )
            })
    }

    /// All hosts, in spec order.
    pub fn hosts(&self) -> &[Host] {
        &self.rec.hosts
    }

    /// Pids of the sshds running now.
    pub fn pids(&self) -> Vec<u32> {
        self.rec.hosts.iter().filter_map(Host::pid).collect()
    }

    /// The network namespaces this cluster created (`ip netns` names).
    pub fn netns_names(&self) -> Vec<String> {
        self.rec.netns.clone()
    }

    /// The veths this cluster created (one end of each pair).
    pub fn veth_names(&self) -> Vec<String> {
        self.rec.veths.iter().map(|v| v.name.clone()).collect()
    }

    /// The cluster's state folder.
    pub fn state_dir(&self) -> &Path {
        &self.rec.state_dir
    }

    /// Whether the loopback hosts have a private loopback (see
    /// [`ClusterSpec::isolated`]); its network namespace then.
    pub fn isolated_netns(&self) -> Option<&str> {
        self.rec.front_netns.as_deref()
    }

    /// A TCP connection to `host`'s sshd from where the machine stands: the
    /// machine's own network namespace, or the private loopback of an
    /// isolated cluster. A host behind a bastion cannot be reached so.
    pub fn connect(&self, host: &str, timeout: Duration) -> io::Result<TcpStream> {
        let h = self.host_ref(host)?;
        let addr = SocketAddr::new(h.address, h.port);
        let ns = self.rec.front_netns.clone();
        std::thread::spawn(move || {
            if let Some(ns) = ns {
                enter_netns(&ns)?;
            }
            TcpStream::connect_timeout(&addr, timeout)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("connect thread panicked")))
    }

    /// A command that runs `argv` as `user` inside `host` (its mount, UTS
    /// and network namespaces), in the user's home, with a clean
    /// environment: `HOME`, `USER`, `LOGNAME`, `SHELL`, `PATH`, plus the
    /// caller's `TERM`, `LANG`, `LC_ALL`, `NO_COLOR`, `CLICOLOR_FORCE`,
    /// `RUST_BACKTRACE`, `RUST_LOG` and `TRUSTMESH_*` when set. Built as
    /// `nsenter -t PID -m -u -n -- runuser -u USER -- env -i -C HOME ... argv`.
    pub fn command(&self, host: &str, user: &str, argv: &[&str]) -> io::Result<Command> {
        let h = self.host_ref(host)?;
        let pid = h
            .process
            .filter(ProcId::alive)
            .ok_or_else(|| {
                err(
                    io::ErrorKind::NotConnected,
                    format!("host {host} is not running"),
                )
            })?
            .pid;
        if argv.is_empty() {
            return Err(err(
                io::ErrorKind::InvalidInput,
                "no command to run".to_string(),
            ));
        }
        // The account's own home, as sshd would give it.
        let home = if user == "root" {
            "/root".to_string()
        } else {
            accounts::home(user)?
        };
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &pid.to_string(),
            "-m",
            "-u",
            "-n",
            "--",
            "runuser",
            "-u",
            user,
            "--",
            "env",
            "-i",
            "-C",
            &home,
        ])
        .arg(format!("HOME={home}"))
        .arg(format!("USER={user}"))
        .arg(format!("LOGNAME={user}"))
        .arg("SHELL=/bin/bash")
        .arg(format!("PATH={HOST_PATH}"));
        for (k, v) in std::env::vars_os() {
            let key = k.to_string_lossy();
            if PASSED_ENV.contains(&key.as_ref()) || key.starts_with("TRUSTMESH_") {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                cmd.arg(kv);
            }
        }
        cmd.args(argv);
        Ok(cmd)
    }

    /// Run `argv` as `user` on `host` (see [`Cluster::command`]) with no
    /// standard input, and collect its output.
    pub fn exec(&self, host: &str, user: &str, argv: &[&str]) -> io::Result<Output> {
        self.command(host, user, argv)?
            .stdin(Stdio::null())
            .output()
    }

    /// Like [`Cluster::exec`], feeding `stdin` to the command.
    pub fn exec_with_stdin(
        &self,
        host: &str,
        user: &str,
        argv: &[&str],
        stdin: &[u8],
    ) -> io::Result<Output> {
        let mut child = self
            .command(host, user, argv)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut pipe = child.stdin.take().expect("piped stdin");
        let data = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            // A command that does not read its input closes the pipe early.
            let _ = pipe.write_all(&data);
        });
        let out = child.wait_with_output()?;
        let _ = writer.join();
        Ok(out)
    }

    // ----- files every account can reach -----

    /// The folder, inside the cluster's state folder, whose files every
    /// account of every host can read and run (root-owned, 0755; removed
    /// with the cluster).
    pub fn shared_dir(&self) -> PathBuf {
        self.rec.state_dir.join("shared")
    }

    /// Place a copy of `src` (a binary, an inventory, a script) where every
    /// account of every host can read it, and run it when `src` is
    /// executable; return the copy's path.
    ///
    /// The hosts see the machine's files (only `/home` and `/etc/ssh` are
    /// their own), but their accounts are unprivileged: a file inside a
    /// checkout under a 0700 folder (a `mktemp -d`, a private home) cannot
    /// be reached there. The copy lives in [`Cluster::shared_dir`]. Fails
    /// up front, naming the folder and the accounts, when a folder above
    /// it does not let others through.
    pub fn share(&self, src: &Path) -> io::Result<PathBuf> {
        let name = src.file_name().ok_or_else(|| {
            err(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", src.display()),
            )
        })?;
        let dir = self.shared_dir();
        make_dir(&dir, 0o755, Some((0, 0)))?;
        self.check_traversable(&dir)?;
        let executable = fs::metadata(src)
            .map_err(|e| err(e.kind(), format!("{}: {e}", src.display())))?
            .permissions()
            .mode()
            & 0o111
            != 0;
        let dest = dir.join(name);
        let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
        fs::copy(src, &tmp).map_err(|e| err(e.kind(), format!("copy {}: {e}", src.display())))?;
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&tmp, Some(0), Some(0))?;
        fs::rename(&tmp, &dest)?;
        Ok(dest)
    }

    /// Every folder from `/` down to `dir` must let others through (the
    /// hosts' accounts are neither owner nor group of a root-made folder).
    fn check_traversable(&self, dir: &Path) -> io::Result<()> {
        let mut blocked = None;
        for a in dir.ancestors() {
            let mode = fs::metadata(a)?.permissions().mode();
            if mode & 0o001 == 0 {
                blocked = Some((a.to_path_buf(), mode & 0o7777));
            }
        }
        let Some((folder, mode)) = blocked else {
            return Ok(());
        };
        let mut accounts: Vec<&str> = self
            .rec
            .hosts
            .iter()
            .flat_map(|h| h.users.iter().map(String::as_str))
            .collect();
        accounts.sort_unstable();
        accounts.dedup();
        Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "the hosts' accounts ({}) cannot reach {}: {} is mode {mode:04o}, which lets no \
                 other account through; start the cluster in a folder every account can \
                 traverse (TMPDIR, or the folder given to `testbed up --state`)",
                accounts.join(", "),
                dir.display(),
                folder.display()
            ),
        ))
    }

    /// Check that `user` on `host` can read `path` (and run it, when
    /// `run`); the error names the path, the account and the host.
    pub fn check_reachable(
        &self,
        host: &str,
        user: &str,
        path: &Path,
        run: bool,
    ) -> io::Result<()> {
        let test = if run { "-x" } else { "-r" };
        let p = path.to_string_lossy();
        let out = self.exec(host, user, &["test", test, &p])?;
        if out.status.success() {
            return Ok(());
        }
        let what = if run { "run" } else { "read" };
        Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "account {user} on host {host} cannot {what} {p}: a folder above it is closed \
                 to that account; use Cluster::share (testbed share) to place a copy it can reach"
            ),
        ))
    }

    // ----- files in homes (drift) -----

    fn home_path(&self, host: &str, user: &str, rel: &str) -> io::Result<PathBuf> {
        let rel_path = Path::new(rel);
        if rel.is_empty()
            || !rel_path
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(err(
                io::ErrorKind::InvalidInput,
                format!("{rel:?} is not a plain path inside the home"),
            ));
        }
        Ok(self.host_ref(host)?.home_of(user).join(rel_path))
    }

    /// Write `~user/rel` on `host`, owned by the user, with `mode`. Missing
    /// folders on the way are made, owned by the user (`.ssh` 0700, others
    /// 0755).
    pub fn write_file(
        &self,
        host: &str,
        user: &str,
        rel: &str,
        contents: &[u8],
        mode: u32,
    ) -> io::Result<()> {
        let path = self.home_path(host, user, rel)?;
        let (uid, gid) = accounts::ids(user)?;
        let home = self.host_ref(host)?.home_of(user);
        let mut dir = home.clone();
        for c in Path::new(rel)
            .parent()
            .into_iter()
            .flat_map(Path::components)
        {
            dir.push(c);
            if !dir.exists() {
                let mode = if c.as_os_str() == ".ssh" {
                    0o700
                } else {
                    0o755
                };
                fs::create_dir(&dir)?;
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
            }
        }
        fs::write(&path, contents)?;
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
    }

    /// The contents of `~user/rel` on `host`, if it exists.
    pub fn read_file(&self, host: &str, user: &str, rel: &str) -> Option<Vec<u8>> {
        fs::read(self.home_path(host, user, rel).ok()?).ok()
    }

    /// Change the mode of `~user/rel` on `host`.
    pub fn chmod(&self, host: &str, user: &str, rel: &str, mode: u32) -> io::Result<()> {
        fs::set_permissions(
            self.home_path(host, user, rel)?,
            fs::Permissions::from_mode(mode),
        )
    }

    /// Remove the file `~user/rel` on `host`.
    pub fn remove_file(&self, host: &str, user: &str, rel: &str) -> io::Result<()> {
        fs::remove_file(self.home_path(host, user, rel)?)
    }

    // ----- host keys -----

    fn host_key_files(&self, host: &str) -> io::Result<Vec<PathBuf>> {
        let h = self.host_ref(host)?;
        Ok(self
            .rec
            .key_types
            .iter()
            .map(|t| h.etc_ssh().join(format!("ssh_host_{t}_key.pub")))
            .filter(|p| p.exists())
            .collect())
    }

    /// `SHA256:...` fingerprint of each host public key (`ssh-keygen -lf`).
    pub fn host_key_fingerprints(&self, host: &str) -> io::Result<Vec<String>> {
        let mut prints = Vec::new();
        for f in self.host_key_files(host)? {
            let out = run("ssh-keygen", &["-lf", &f.to_string_lossy()])?;
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(fp) = text.split_whitespace().nth(1) {
                prints.push(fp.to_string());
            }
        }
        Ok(prints)
    }

    /// The host's public keys, `type base64` each.
    pub fn host_public_keys(&self, host: &str) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        for f in self.host_key_files(host)? {
            let text = fs::read_to_string(&f)?;
            let fields: Vec<&str> = text.split_whitespace().take(2).collect();
            if fields.len() == 2 {
                keys.push(fields.join(" "));
            }
        }
        Ok(keys)
    }

    /// `known_hosts` lines that trust `host`'s real keys under its address
    /// (`[addr]:port` off port 22), to be written by whoever connects.
    pub fn known_hosts_lines(&self, host: &str) -> io::Result<Vec<String>> {
        let name = self.host_ref(host)?.known_hosts_name();
        Ok(self
            .host_public_keys(host)?
            .into_iter()
            .map(|k| format!("{name} {k}"))
            .collect())
    }

    /// An ssh client config (for `ssh -F`) with one `Host` block per host,
    /// logging in as `user`: HostName, Port, User, strict host key checking
    /// against `~/.ssh/known_hosts`, batch mode, and `ProxyJump` for hosts
    /// behind a bastion.
    pub fn ssh_config(&self, user: &str) -> String {
        let mut text = String::new();
        for h in &self.rec.hosts {
            text.push_str(&format!(
                "Host {}\n  HostName {}\n  Port {}\n  User {user}\n  BatchMode yes\n  StrictHostKeyChecking yes\n  \
                 UserKnownHostsFile ~/.ssh/known_hosts\n  ConnectTimeout 5\n",
                h.name, h.address, h.port
            ));
            if let Some(b) = &h.behind {
                text.push_str(&format!("  ProxyJump {b}\n"));
            }
        }
        text
    }

    // ----- faults -----

    /// Stop `host`'s sshd and everything running inside the host (host
    /// down). Its files stay.
    pub fn stop(&mut self, host: &str) -> io::Result<()> {
        let i = self.index(host)?;
        self.stop_index(i);
        self.save()
    }

    fn stop_index(&mut self, i: usize) {
        let name = self.rec.hosts[i].name.clone();
        if let Some(listener) = self.rec.hosts[i].process.take() {
            let mut child = self.children.remove(&name);
            sys::stop_host_processes(listener, &mut || {
                if let Some(c) = child.as_mut() {
                    let _ = c.wait();
                }
            });
        }
    }

    /// Stop `host` if it runs, then start it again and wait until it
    /// accepts connections.
    pub fn restart(&mut self, host: &str) -> io::Result<()> {
        let i = self.index(host)?;
        self.stop_index(i);
        self.spawn_sshd(i)?;
        self.wait_ready(&[i])
    }

    /// Suspend `host`'s sshd (SIGSTOP): connections are accepted by the
    /// kernel but never answered, as with a hung machine.
    pub fn freeze(&self, host: &str) -> io::Result<()> {
        self.signal(host, libc::SIGSTOP)
    }

    /// Resume a frozen host (SIGCONT).
    pub fn thaw(&self, host: &str) -> io::Result<()> {
        self.signal(host, libc::SIGCONT)
    }

    fn signal(&self, host: &str, sig: i32) -> io::Result<()> {
        let h = self.host_ref(host)?;
        match h.process {
            Some(p) if p.signal(sig) => Ok(()),
            _ => Err(err(
                io::ErrorKind::NotConnected,
                format!("host {host} is not running"),
            )),
        }
    }

    /// Give `host` new host keys, as a reinstall would, and restart it.
    pub fn rekey(&mut self, host: &str) -> io::Result<()> {
        let i = self.index(host)?;
        self.stop_index(i);
        let h = &self.rec.hosts[i];
        for t in &self.rec.key_types {
            for suffix in ["", ".pub"] {
                let p = h.etc_ssh().join(format!("ssh_host_{t}_key{suffix}"));
                if p.exists() {
                    fs::remove_file(p)?;
                }
            }
        }
        generate_host_keys(&[h], &self.rec.key_types)?;
        self.spawn_sshd(i)?;
        self.wait_ready(&[i])
    }

    // ----- lifetime -----

    /// Leave the cluster running after this value is gone (for `testbed
    /// up`): it can be found again with [`Cluster::attach`] on the returned
    /// state folder, and taken down with [`Cluster::shutdown`].
    pub fn detach(mut self) -> io::Result<PathBuf> {
        self.rec.detached = true;
        self.save()?;
        self.armed = false;
        Ok(self.rec.state_dir.clone())
    }

    /// Reach a detached cluster from its state folder. Dropping the value
    /// leaves the cluster running; [`Cluster::shutdown`] takes it down.
    pub fn attach(state_dir: &Path) -> io::Result<Cluster> {
        let path = state_dir.join("state.json");
        let text = fs::read_to_string(&path).map_err(|e| {
            err(
                e.kind(),
                format!("{}: {e} (is a cluster up there?)", path.display()),
            )
        })?;
        let rec: Record = serde_json::from_str(&text).map_err(|e| {
            err(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        Ok(Cluster {
            rec,
            children: HashMap::new(),
            lock_dir: alloc::lock_dir()?,
            lock: None,
            armed: false,
        })
    }

    /// Take the cluster down now (what dropping an owned cluster does).
    pub fn shutdown(mut self) {
        if self.lock.is_none() {
            self.lock = FileLock::acquire(&alloc::lock_path(&self.lock_dir, self.rec.slot)).ok();
        }
        self.armed = true;
    }

    fn teardown(&mut self) {
        for i in 0..self.rec.hosts.len() {
            self.stop_index(i);
        }
        for child in self.children.values_mut() {
            let _ = child.wait();
        }
        for v in self.rec.veths.iter().rev() {
            let _ = ip_in(v.ns.as_deref(), &["link", "del", &v.name]);
        }
        for r in &self.rec.routes {
            let _ = run("ip", &["route", "del", "unreachable", r]);
        }
        for ns in self.rec.netns.iter().rev() {
            let _ = run("ip", &["netns", "del", ns]);
        }
        if std::env::var("TESTBED_KEEP").as_deref() == Ok("1") {
            eprintln!(
                "testbed: TESTBED_KEEP=1, keeping {}",
                self.rec.state_dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.rec.state_dir);
        }
        let _ = fs::remove_file(alloc::record_path(&self.lock_dir, self.rec.slot));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.armed {
            self.teardown();
        }
        // The lock (if held) is released when `self.lock` drops.
    }
}

/// Called by the allocator, with the slot's lock held, on the record of a
/// cluster whose owner died: take it down unless it was detached on purpose.
fn sweep_record(text: &str) -> bool {
    let Ok(rec) = serde_json::from_str::<Record>(text) else {
        return true;
    };
    if rec.detached {
        return false;
    }
    let Ok(lock_dir) = alloc::lock_dir() else {
        return false;
    };
    drop(Cluster {
        rec,
        children: HashMap::new(),
        lock_dir,
        lock: None,
        armed: true,
    });
    true
}
