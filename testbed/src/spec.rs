//! What a cluster should look like: hosts, their accounts, ports and
//! addresses. A spec is plain data, built in Rust with the small builder
//! methods below or read from JSON (the `testbed up --spec FILE` format):
//!
//! ```json
//! {
//!   "base": "127.0.10.0",
//!   "isolated": false,
//!   "host_key_types": ["ed25519", "ecdsa", "rsa"],
//!   "hosts": [
//!     { "name": "manager", "users": ["alice"], "address": "127.0.10.1" },
//!     { "name": "node2", "users": ["agilab"], "address": "127.0.10.12", "port": 2222 },
//!     { "name": "node3", "users": ["agilab"], "password": "demo-pass" },
//!     { "name": "gw", "users": ["agilab"] },
//!     { "name": "hidden", "users": ["agilab"], "behind": "gw" },
//!     { "name": "mac1", "users": ["macuser"], "mac_homes": true }
//!   ]
//! }
//! ```
//!
//! Every field but `name` and `users` may be left out. Unknown fields are an
//! error, so a typo does not silently start a different cluster.

use std::io;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One host of the cluster: one `sshd` with its own home, `/etc/ssh`,
/// hostname and address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Host name (also its UTS hostname): `[A-Za-z0-9][A-Za-z0-9._-]*`, at
    /// most 63 characters, unique in the cluster.
    pub name: String,
    /// Port sshd listens on. Default 22.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Accounts that get a home on this host. Accounts are created once in
    /// the machine's shared `/etc/passwd` (`useradd -M`); homes are per host.
    pub users: Vec<String>,
    /// `Some(pw)`: this host accepts password logins
    /// (`PasswordAuthentication yes`) and every user of it gets the password
    /// `pw`. The password file is shared by all hosts, so one user has one
    /// password; the other hosts refuse passwords anyway.
    #[serde(default)]
    pub password: Option<String>,
    /// Name of a bastion host of the same cluster: this host then lives in
    /// its own network namespace, reachable only through that bastion.
    #[serde(default)]
    pub behind: Option<String>,
    /// A fixed loopback address for this host (`127.x.y.z`). Only for hosts
    /// on the loopback (not bastions or hosts behind one). Default: taken
    /// from the cluster's base by position.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    /// `sshd_config` lines that take precedence over the testbed's defaults
    /// (`StrictModes no`, `ForceCommand internal-sftp`...).
    #[serde(default)]
    pub sshd_options: Vec<String>,
    /// The accounts of this host have their homes under `/Users` (as on
    /// macOS: `/Users/USER`) instead of `/home`. The password file is
    /// shared, so such an account must not also be on a host without this,
    /// and an account that exists already must have that home.
    #[serde(default)]
    pub mac_homes: bool,
}

fn default_port() -> u16 {
    22
}

impl HostSpec {
    /// A host on port 22 with these accounts, key login only.
    pub fn new(name: &str, users: &[&str]) -> HostSpec {
        HostSpec {
            name: name.to_string(),
            port: 22,
            users: users.iter().map(|u| u.to_string()).collect(),
            password: None,
            behind: None,
            address: None,
            sshd_options: Vec::new(),
            mac_homes: false,
        }
    }

    /// Give this host's accounts homes under `/Users`, as on macOS.
    pub fn mac_homes(mut self) -> HostSpec {
        self.mac_homes = true;
        self
    }

    /// Put this line first in the host's `sshd_config`: it wins over the
    /// testbed's own settings (`StrictModes no`, say).
    pub fn sshd_option(mut self, line: &str) -> HostSpec {
        self.sshd_options.push(line.to_string());
        self
    }

    /// Listen on this port instead of 22.
    pub fn port(mut self, port: u16) -> HostSpec {
        self.port = port;
        self
    }

    /// Turn on password login with this password for all the host's users.
    pub fn password(mut self, password: &str) -> HostSpec {
        self.password = Some(password.to_string());
        self
    }

    /// Hide this host behind the bastion `bastion` (another host's name).
    pub fn behind(mut self, bastion: &str) -> HostSpec {
        self.behind = Some(bastion.to_string());
        self
    }

    /// Pin the host's loopback address.
    pub fn address(mut self, address: Ipv4Addr) -> HostSpec {
        self.address = Some(address);
        self
    }
}

/// The whole cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// The hosts, in order. Host `i` (from 0) gets address `base + i + 1`
    /// unless it sets its own.
    pub hosts: Vec<HostSpec>,
    /// A fixed address base such as `127.0.10.0` (the demo). `None`: a free
    /// `127.x.y.0/24` range is allocated for this cluster, so clusters of
    /// parallel tests never collide.
    #[serde(default)]
    pub base: Option<Ipv4Addr>,
    /// Put the loopback hosts in a network namespace of their own (a private
    /// loopback) instead of the machine's. Ports such as 22 are then free even
    /// when the machine's own sshd listens on `0.0.0.0:22` (which takes port
    /// 22 on every loopback address), but the hosts can only be reached from
    /// inside the cluster: with [`crate::Cluster::exec`], or
    /// [`crate::Cluster::connect`] from the test. `None` (the default):
    /// isolated only when a loopback host's port is taken that way.
    #[serde(default)]
    pub isolated: Option<bool>,
    /// Host key types generated for every host (`ssh-keygen -t`), among
    /// `ed25519`, `ecdsa`, `rsa`. Default `ed25519` and `ecdsa` (fast);
    /// add `rsa` to get what `ssh-keygen -A` makes.
    #[serde(default = "default_key_types")]
    pub host_key_types: Vec<String>,
}

fn default_key_types() -> Vec<String> {
    vec!["ed25519".to_string(), "ecdsa".to_string()]
}

impl ClusterSpec {
    /// A cluster of these hosts in a freshly allocated address range.
    pub fn new(hosts: Vec<HostSpec>) -> ClusterSpec {
        ClusterSpec {
            hosts,
            base: None,
            isolated: None,
            host_key_types: default_key_types(),
        }
    }

    /// Use a fixed address base (host `i` gets `base + i + 1`).
    pub fn base(mut self, base: Ipv4Addr) -> ClusterSpec {
        self.base = Some(base);
        self
    }

    /// Give the cluster a private loopback, or not, whatever listens on the
    /// machine (see [`ClusterSpec::isolated`]).
    pub fn isolated(mut self, isolated: bool) -> ClusterSpec {
        self.isolated = Some(isolated);
        self
    }

    /// Read a spec from its JSON form (see the module documentation).
    pub fn from_json(text: &str) -> io::Result<ClusterSpec> {
        serde_json::from_str(text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("cluster spec: {e}")))
    }

    /// Check names, references and addresses; every problem is reported.
    pub fn validate(&self) -> io::Result<()> {
        let mut problems = Vec::new();
        if self.hosts.is_empty() {
            problems.push("a cluster needs at least one host".to_string());
        }
        if self.hosts.len() > 254 {
            problems.push(
                "at most 254 hosts per cluster (the addresses of its slot's /24)".to_string(),
            );
        }
        for t in &self.host_key_types {
            if !["ed25519", "ecdsa", "rsa"].contains(&t.as_str()) {
                problems.push(format!(
                    "unknown host key type {t:?} (ed25519, ecdsa or rsa)"
                ));
            }
        }
        if self.host_key_types.is_empty() {
            problems.push("host_key_types must name at least one type".to_string());
        }
        if let Some(base) = self.base {
            if base.octets()[0] != 127 {
                problems.push(format!("base {base} is not a loopback address (127.x.y.z)"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for h in &self.hosts {
            if h.sshd_options.iter().any(|o| o.contains(['\n', '\r'])) {
                problems.push(format!(
                    "host {:?}: an sshd option holds a line break",
                    h.name
                ));
            }
            if !valid_name(&h.name, 63) {
                problems.push(format!(
                    "host name {:?} is not [A-Za-z0-9][A-Za-z0-9._-]* (63 at most)",
                    h.name
                ));
            }
            if !seen.insert(h.name.as_str()) {
                problems.push(format!("host name {:?} is used twice", h.name));
            }
            if h.port == 0 {
                problems.push(format!("host {}: port 0", h.name));
            }
            if h.users.is_empty() {
                problems.push(format!("host {}: no users", h.name));
            }
            for u in &h.users {
                if !valid_user(u) {
                    problems.push(format!(
                        "host {}: user name {u:?} is not [a-z_][a-z0-9_-]* (32 at most)",
                        h.name
                    ));
                }
            }
            if let Some(pw) = &h.password {
                if pw.is_empty() || pw.contains(['\n', ':']) {
                    problems.push(format!(
                        "host {}: the password must be non-empty, without ':' or newline",
                        h.name
                    ));
                }
            }
            if let Some(b) = &h.behind {
                match self.hosts.iter().find(|o| &o.name == b) {
                    None => problems.push(format!(
                        "host {}: behind {b:?}, which is no host of this cluster",
                        h.name
                    )),
                    Some(o) if o.name == h.name => {
                        problems.push(format!("host {} is behind itself", h.name))
                    }
                    Some(o) if o.behind.is_some() => problems.push(format!(
                        "host {}: its bastion {} is itself behind a bastion (not supported)",
                        h.name, o.name
                    )),
                    Some(_) => {}
                }
            }
            if let Some(a) = h.address {
                if self.is_netns_host(&h.name) {
                    problems.push(format!(
                        "host {}: an address can only be fixed for loopback hosts, not bastions or hosts behind one",
                        h.name
                    ));
                } else if a.octets()[0] != 127 || a.octets()[3] == 0 || a.octets()[3] == 255 {
                    problems.push(format!(
                        "host {}: address {a} is not a usable loopback address",
                        h.name
                    ));
                }
            }
        }
        // The password file is shared: an account has one home.
        let mut homes = std::collections::HashMap::new();
        for h in &self.hosts {
            for u in &h.users {
                if let Some(&(mac, other)) = homes.get(u.as_str()) {
                    if mac != h.mac_homes {
                        problems.push(format!(
                            "user {u} is on host {other} and on host {}, one with mac_homes and one \
                             without: an account has one home (the password file is shared)",
                            h.name
                        ));
                    }
                } else {
                    homes.insert(u.as_str(), (h.mac_homes, h.name.as_str()));
                }
            }
        }
        // Two loopback hosts on the same address and port cannot both listen.
        let mut endpoints = std::collections::HashMap::new();
        for (i, h) in self.hosts.iter().enumerate() {
            if self.is_netns_host(&h.name) {
                continue;
            }
            if let Some(a) = h
                .address
                .or_else(|| self.base.map(|b| offset(b, i as u32 + 1)))
            {
                if let Some(other) = endpoints.insert((a, h.port), &h.name) {
                    problems.push(format!(
                        "hosts {other} and {} both listen on {a}:{}",
                        h.name, h.port
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                problems.join("; "),
            ))
        }
    }

    /// True for hosts that live in a network namespace of their own:
    /// bastions and the hosts behind them.
    pub fn is_netns_host(&self, name: &str) -> bool {
        self.is_bastion(name)
            || self
                .hosts
                .iter()
                .any(|h| h.name == name && h.behind.is_some())
    }

    /// True when some host sits behind `name`.
    pub fn is_bastion(&self, name: &str) -> bool {
        self.hosts.iter().any(|h| h.behind.as_deref() == Some(name))
    }
}

pub(crate) fn offset(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n))
}

fn valid_name(s: &str, max: usize) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && s.len() <= max
}

fn valid_user(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
        && s.len() <= 32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_defaults_and_validation() {
        let spec = ClusterSpec::from_json(
            r#"{"base":"127.0.10.0","hosts":[
                {"name":"manager","users":["alice"],"address":"127.0.10.1"},
                {"name":"gw","users":["agilab"],"port":2222},
                {"name":"in","users":["agilab"],"behind":"gw","password":"pw"}]}"#,
        )
        .unwrap();
        assert_eq!(spec.hosts[0].port, 22);
        assert_eq!(spec.host_key_types, vec!["ed25519", "ecdsa"]);
        assert!(
            spec.is_bastion("gw") && spec.is_netns_host("in") && !spec.is_netns_host("manager")
        );
        spec.validate().unwrap();
    }

    #[test]
    fn bad_specs_are_refused_with_every_problem() {
        assert!(
            ClusterSpec::from_json(r#"{"hosts":[{"name":"a","users":["u"],"prot":22}]}"#).is_err()
        );
        let spec = ClusterSpec::new(vec![
            HostSpec::new("a", &["Bad User"]),
            HostSpec::new("a", &["u"]).behind("nowhere"),
            HostSpec::new("c", &["u"]).behind("c"),
        ]);
        let err = spec.validate().unwrap_err().to_string();
        assert!(err.contains("user name"), "{err}");
        assert!(err.contains("used twice"), "{err}");
        assert!(err.contains("nowhere"), "{err}");
        assert!(err.contains("behind itself"), "{err}");
        let homes = ClusterSpec::new(vec![
            HostSpec::new("a", &["u"]).mac_homes(),
            HostSpec::new("b", &["u"]),
        ]);
        assert!(homes
            .validate()
            .unwrap_err()
            .to_string()
            .contains("an account has one home"));
        let clash = ClusterSpec::new(vec![
            HostSpec::new("a", &["u"]).address("127.0.10.2".parse().unwrap()),
            HostSpec::new("b", &["u"]),
        ])
        .base("127.0.10.0".parse().unwrap());
        assert!(clash
            .validate()
            .unwrap_err()
            .to_string()
            .contains("both listen"));
    }

    /// A manager and 250 workers (the largest size of the cluster bench)
    /// fit in a slot's /24; a 255th host does not.
    #[test]
    fn a_cluster_takes_up_to_254_hosts() {
        let spec = |n: usize| {
            ClusterSpec::new(
                (0..n)
                    .map(|i| HostSpec::new(&format!("h{i}"), &["u"]))
                    .collect(),
            )
        };
        spec(251).validate().unwrap();
        spec(254).validate().unwrap();
        let err = spec(255).validate().unwrap_err().to_string();
        assert!(err.contains("at most 254 hosts"), "{err}");
    }
}
