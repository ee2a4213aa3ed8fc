//! Checks of single values that record a [`Problem`] and carry on:
//! names, addresses, accounts, ports, paths, and the node-level checks of
//! [`super::validate::resolve`].

use std::net::Ipv6Addr;

use super::limits::shown;
use super::model::NodeSpec;
use super::spans::Path;
use super::structure::did_you_mean;
use super::validate::problem;
use super::values::{is_valid_address, is_valid_fingerprint, is_valid_name, is_valid_user};
use super::{Access, Os, Problem, Role};

pub(super) fn check_path_value(p: &Path, value: &str, what: &str, problems: &mut Vec<Problem>) {
    // A double quote cannot be written in an ssh config (the aliases of
    // options.ssh_config, verify's -F file) nor given to ssh with -o.
    if value.is_empty() || value.contains(['\n', '\r', '\0', '"']) {
        problems.push(problem(
            p.clone(),
            "trustmesh::inventory::path",
            format!("`{p}` is not a usable path"),
            "empty, or holds a line break or a double quote",
            Some(format!(
                "write the {what} path on one line, e.g. `~/.ssh/id_ed25519`"
            )),
        ));
    } else {
        super::hostile::tool_path(p, value, what, problems);
    }
}

pub(super) struct Checker<'a> {
    pub(super) problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    pub(super) fn name(&mut self, p: Path, name: &str) {
        if !is_valid_name(name) {
            self.problems.push(problem(
                p,
                "trustmesh::inventory::name",
                format!("`{}` is not a valid node name", shown(name)),
                "not a valid name",
                Some("a name starts with a letter or digit and holds only letters, digits, `.`, `_` and `-`".into()),
            ));
        } else {
            self.no_dots(p, name, "node");
        }
    }

    pub(super) fn address(&mut self, p: Path, addr: &str) {
        if is_valid_address(addr) {
            return;
        }
        if let Some((ip, zone)) = addr.split_once('%') {
            if ip.parse::<Ipv6Addr>().is_ok() {
                // ssh itself takes `fe80::1%eth0`, but the zone names an
                // interface of the machine that dials: other nodes of the
                // mesh have other interface names, and known_hosts and
                // /etc/hosts entries would be written under an address that
                // means nothing elsewhere.
                self.problems.push(problem(
                    p,
                    "trustmesh::inventory::address_zone",
                    format!(
                        "`{}` names a network interface (`%{}`): trustmesh takes addresses every node can use",
                        shown(addr),
                        shown(zone)
                    ),
                    "an IPv6 address with a zone id",
                    Some(format!(
                        "a link-local address with a zone only works from the machine that owns that interface: give a global or unique-local IPv6 address or a host name instead of `{}`",
                        shown(addr)
                    )),
                ));
                return;
            }
        }
        let help = if addr.starts_with('[') && addr.ends_with(']') {
            "write an IPv6 address without brackets: trustmesh adds them where ssh needs them"
                .to_string()
        } else if addr.contains('@') {
            "put the account in `user:` and only the host in `address:`".to_string()
        } else if addr.contains(':') && addr.parse::<Ipv6Addr>().is_err() && !addr.starts_with(':')
        {
            "put the port in `port:` and only the host in `address:`".to_string()
        } else {
            "use a host name (letters, digits, `-`, `.`), an IPv4 or an IPv6 address".to_string()
        };
        self.problems.push(problem(
            p,
            "trustmesh::inventory::address",
            format!("`{}` is not a valid host name or IP address", shown(addr)),
            "not a host name or address",
            Some(help),
        ));
    }

    pub(super) fn user(&mut self, p: Path, user: &str) {
        if !is_valid_user(user) {
            self.problems.push(problem(
                p,
                "trustmesh::inventory::user",
                format!("`{}` is not a valid account name", shown(user)),
                "not a valid account name",
                Some("an account name holds letters, digits, `_`, `.` and `-`, and does not start with `-`".into()),
            ));
        }
    }

    pub(super) fn port(&mut self, p: Path, port: Option<u16>) {
        if port == Some(0) {
            self.problems.push(problem(
                p,
                "trustmesh::inventory::range",
                "port 0 is not a port sshd can listen on".into(),
                "must be from 1 to 65535",
                Some("use the port sshd listens on (22 unless changed)".into()),
            ));
        }
    }
}

pub(super) fn node_checks(ck: &mut Checker, p: &Path, spec: &NodeSpec) {
    ck.name(p.key("name"), &spec.name);
    ck.address(p.key("address"), &spec.address);
    if let Some(u) = &spec.user {
        ck.user(p.key("user"), u);
    }
    ck.port(p.key("port"), spec.port);
    if spec.os == Some(Os::Windows) && spec.access == Some(Access::Shell) {
        ck.problems.push(problem(
            p.key("access"),
            "trustmesh::inventory::access",
            format!("{} is a Windows node: it has no POSIX shell", spec.name),
            "not on Windows",
            Some("remove `access: shell` (`os: windows` uses `sftp`)".into()),
        ));
    }
    if let Some(fp) = &spec.host_key {
        if !is_valid_fingerprint(fp) {
            ck.problems.push(problem(
                p.key("host_key"),
                "trustmesh::inventory::fingerprint",
                format!("`{}` is not a SHA256 host key fingerprint", shown(fp)),
                "not a fingerprint",
                Some(format!(
                    "copy it from `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on {}: it looks like `SHA256:` and 43 characters",
                    spec.name
                )),
            ));
        }
    }
}

/// `os: windows` implies `sftp`; otherwise what the node (or `defaults`)
/// says, `shell` when nothing does.
pub(super) fn node_access(os: Option<Os>, access: Option<Access>) -> Access {
    if os == Some(Os::Windows) {
        Access::Sftp
    } else {
        access.unwrap_or_default()
    }
}

pub(super) fn role_word(role: Role) -> &'static str {
    match role {
        Role::Manager => "manager",
        Role::Bastion => "bastion",
        Role::Worker => "worker",
    }
}

pub(super) fn unknown_ref(
    p: Path,
    name: &str,
    what: &str,
    candidates: &[&str],
    suggest: bool,
) -> Problem {
    let guess = if suggest {
        did_you_mean(name, candidates.iter().copied())
    } else {
        None
    };
    let help = match guess {
        Some(s) => format!("did you mean `{}`?", shown(s)),
        None if candidates.is_empty() => format!("this inventory has no {what}s yet"),
        None if candidates.len() <= 8 => {
            format!("{what}s in this inventory: {}", candidates.join(", "))
        }
        None => format!(
            "name one of the {} {what}s of this inventory",
            candidates.len()
        ),
    };
    problem(
        p,
        "trustmesh::inventory::unknown_node",
        format!("no {what} is named `{}`", shown(name)),
        &format!("no such {what}"),
        Some(help),
    )
}
