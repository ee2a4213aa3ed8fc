//! A real cluster of SSH hosts on one machine, for trustmesh's integration
//! tests and its demo.
//!
//! trustmesh changes `authorized_keys` and `known_hosts` on real machines
//! over real SSH, so its tests need real hosts: a real `sshd` each, with
//! its own accounts' homes, its own host keys, its own hostname, at its own
//! address, and faults one can cause on purpose (a host down, hung,
//! reinstalled, reachable only through a bastion, files drifted). No
//! container engine is needed: Linux namespaces on the loopback do it, run
//! as root.
//!
//! A host is one `sshd -D` started as
//! `unshare --mount --uts --propagation private`, after bind-mounting a
//! folder of its own over `/home` and another over `/etc/ssh` (fresh host
//! keys, an `sshd_config` of its own), a copy of the machine's
//! `/etc/hosts` over `/etc/hosts` (for a host with a `root` account: an
//! overlay over the whole `/etc`, so that root can replace `/etc/hosts`
//! by a rename, and a folder of its own over `/root`; such a host lets
//! root in with keys), one over `/Users` when an account of it has a
//! macOS-like home (`HostSpec::mac_homes`), and setting its hostname. Every
//! session that sshd opens inherits those namespaces, so a login to a host
//! sees that host's `~/.ssh`, and an `ssh` run there uses that host's
//! files. The pid we spawn execs into sshd, so it *is* the listener: the
//! cluster stops exactly the processes it started, by pid.
//!
//! Hosts listen on their own `127.x.y.z` address (the whole `127/8` routes
//! to `lo`). A bastion and the hosts behind it get network namespaces of
//! their own instead, joined by veth pairs: the machine to the bastion, the
//! bastion to each hidden host. A hidden host cannot be reached directly,
//! only with `ProxyJump` through its bastion (which forwards nothing
//! itself). The hosts behind a bastion can reach it, nothing else.
//!
//! Each cluster takes a slot (a number under 512, held with a lock file in
//! `/tmp/testbed-locks`) that gives it
//! its own address ranges and names, so tests run in parallel without
//! colliding, and every cluster is taken down when dropped, also when the
//! test panics: its sshds and everything running in those hosts are
//! killed, its namespaces and veths deleted, its folder removed (kept with
//! `TESTBED_KEEP=1`). A cluster left behind by a killed process is swept by
//! the next one.
//!
//! ```no_run
//! use testbed::{Cluster, ClusterSpec, HostSpec};
//! let cluster = Cluster::start(ClusterSpec::new(vec![
//!     HostSpec::new("manager", &["alice"]),
//!     HostSpec::new("node1", &["agilab"]).port(2222),
//! ]))?;
//! let out = cluster.exec("manager", "alice", &["hostname"])?;
//! assert_eq!(out.stdout, b"manager\n");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The accounts live in the machine's own `/etc/passwd` (homes are per
//! host), so one user name has one password and one home path
//! (`/home/USER`, or `/Users/USER`) on the whole machine. Running
//! a host needs root, `unshare`, `nsenter`, `runuser`, `ip` and
//! `/usr/sbin/sshd`.

mod accounts;
pub(crate) mod alloc;
mod cluster;
mod host;
mod net;
mod spec;
mod sys;

pub use cluster::{Cluster, Host};
pub use spec::{ClusterSpec, HostSpec};
