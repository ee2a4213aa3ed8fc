//! Where a node's files are: the names the gatherer asks the probe for,
//! the planner plans and verify points `ssh -i`/`UserKnownHostsFile` at,
//! relative to `~/.ssh` unless the inventory gave an absolute path.

use crate::model::inventory::{Inventory, NodeId};

/// Where a node's files are, relative to `~/.ssh` (or absolute for a
/// manager's custom `identity`/`known_hosts` outside it). The gatherer asks
/// the probe for exactly these names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFiles {
    /// Private key file.
    pub key: String,
    /// Its public half (`key` + `.pub`).
    pub public_key: String,
    pub authorized_keys: String,
    pub known_hosts: String,
    /// `config` (`~/.ssh/config`), its folder `config.d` and trustmesh's
    /// file there (options.ssh_config): read whenever the option is on or
    /// prune may have to remove them.
    pub ssh_config: Option<SshConfigFiles>,
    /// Read `/etc/hosts` (options.hosts_file on, or prune).
    pub etc_hosts: bool,
    /// Ask whether the account is root or has `sudo -n` (options.hosts_file,
    /// host_certificates).
    pub privilege: bool,
    /// With `certificates:`: the key's certificate (`key` + `-cert.pub`),
    /// read like a public key.
    pub certificate: Option<String>,
    /// The manager with `certificates:`: the user CA's public half
    /// (`.pub`, read) and its private key (only ever stat'ed); with an
    /// agent, the public key both times (there is no private key file).
    pub user_ca: Option<(String, String)>,
    /// The manager with a user CA held by an ssh-agent: the agent to ask
    /// which keys it holds (`ssh-add -L`).
    pub user_ca_agent: Option<crate::model::inventory::certificates::CaAgent>,
    /// Read sshd's config, drop-ins and host certificates
    /// (host_certificates, on a node that may serve them).
    pub sshd: bool,
    /// The manager only, with host_certificates: the host CA's private key
    /// (stat only; its `.pub` is read).
    pub host_ca: Option<String>,
    /// With `certificates:`: ask what the node's sshd is.
    pub sshd_version: bool,
    /// Without host_certificates: read sshd's files as `sshd` does only
    /// when trustmesh's are there (they are removed).
    pub sshd_leftovers: bool,
}

/// The files of options.ssh_config, relative to `~/.ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigFiles {
    /// `config`
    pub config: String,
    /// `config.d`
    pub dir: String,
    /// `config.d/trustmesh-<cluster>`
    pub managed: String,
}

impl NodeFiles {
    pub fn of(inv: &Inventory, id: NodeId) -> NodeFiles {
        let node = &inv.nodes[id];
        let key = node
            .identity
            .as_deref()
            .map(ssh_relative)
            .unwrap_or_else(|| node.key_type.default_file().to_string());
        let known_hosts = node
            .known_hosts
            .as_deref()
            .map(ssh_relative)
            .unwrap_or_else(|| "known_hosts".to_string());
        let o = &inv.options;
        NodeFiles {
            public_key: format!("{key}.pub"),
            authorized_keys: "authorized_keys".to_string(),
            known_hosts,
            ssh_config: (o.ssh_config || o.prune).then(|| SshConfigFiles {
                config: "config".to_string(),
                dir: "config.d".to_string(),
                managed: crate::formats::ssh_config::managed_name(&inv.cluster),
            }),
            etc_hosts: o.hosts_file || o.prune,
            privilege: o.hosts_file || inv.host_certs.is_some(),
            sshd: inv.host_certs.is_some() && id != Inventory::MANAGER,
            sshd_version: inv.certificates.is_some(),
            sshd_leftovers: inv.host_certs.is_none() && id != Inventory::MANAGER,
            host_ca: inv
                .host_certs
                .as_ref()
                .filter(|_| id == Inventory::MANAGER)
                .map(|h| ssh_relative(&h.ca)),
            certificate: inv
                .certificates
                .as_ref()
                .map(|_| crate::formats::certificate::file_name(&key)),
            user_ca: inv
                .certificates
                .as_ref()
                .filter(|_| id == Inventory::MANAGER)
                .map(|c| {
                    let ca = ssh_relative(&c.ca);
                    match c.agent {
                        Some(_) => (ca.clone(), ca),
                        None => (format!("{ca}.pub"), ca),
                    }
                }),
            user_ca_agent: inv
                .certificates
                .as_ref()
                .filter(|_| id == Inventory::MANAGER)
                .and_then(|c| c.agent.clone()),
            key,
        }
    }

    /// The probe's request for these files.
    pub fn probe_request(&self) -> crate::gather::probe::ProbeRequest {
        let (read, stat_only) = self.probe_names();
        crate::gather::probe::ProbeRequest {
            read,
            stat_only,
            etc_hosts: self.etc_hosts,
            privilege: self.privilege,
            sshd: self.sshd,
            sshd_version: self.sshd_version,
            sshd_leftovers: self.sshd_leftovers,
        }
    }

    /// The files of a Windows administrator: sshd reads its keys from
    /// [`crate::transport::windows::ADMIN_AUTHORIZED_KEYS`], not `~/.ssh`.
    pub fn for_windows_admin(mut self, admin: bool) -> NodeFiles {
        if admin {
            self.authorized_keys = crate::transport::windows::ADMIN_AUTHORIZED_KEYS.to_string();
        }
        self
    }

    /// Every file name, for the probe: (read, stat only). The private key
    /// is only ever stat'ed.
    pub fn probe_names(&self) -> (Vec<String>, Vec<String>) {
        let mut read = vec![
            self.authorized_keys.clone(),
            self.known_hosts.clone(),
            self.public_key.clone(),
        ];
        let mut stat = vec![self.key.clone()];
        if let Some(name) = &self.certificate {
            read.push(name.clone());
        }
        // The new pair (and certificate) of a rotation that did not
        // finish: the next one moves it aside (`plan::leftovers`).
        let new = format!("{}{}", self.key, crate::plan::NEW_KEY_SUFFIX);
        if !new.contains('/') {
            read.push(format!("{new}.pub"));
            if self.certificate.is_some() {
                read.push(crate::formats::certificate::file_name(&new));
            }
            stat.push(new);
        }
        if let Some((public, private)) = &self.user_ca {
            if !read.contains(public) {
                read.push(public.clone());
            }
            if !stat.contains(private) && !read.contains(private) {
                stat.push(private.clone());
            }
        }
        if let Some(ca) = &self.host_ca {
            read.push(format!("{ca}.pub"));
            stat.push(ca.clone());
        }
        if let Some(c) = &self.ssh_config {
            // A custom identity or known_hosts named `config` is read once.
            for name in [&c.config, &c.managed] {
                if !read.contains(name) && !stat.contains(name) {
                    read.push(name.clone());
                }
            }
            if !read.contains(&c.dir) && !stat.contains(&c.dir) {
                stat.push(c.dir.clone());
            }
        }
        (read, stat)
    }
}

/// `~/.ssh/x` -> `x`; other paths are kept as written.
fn ssh_relative(path: &str) -> String {
    for prefix in ["~/.ssh/", "$HOME/.ssh/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            if !rest.contains('/') {
                return rest.to_string();
            }
        }
    }
    path.to_string()
}

/// How a file name is shown: `~/.ssh/x`, or the absolute path.
pub fn display_path(name: &str) -> String {
    if name.starts_with('/')
        || name.starts_with('~')
        || crate::transport::windows::is_drive_path(name)
    {
        name.to_string()
    } else {
        format!("~/.ssh/{name}")
    }
}
