//! The one fixed ssh command line an edge is tried with, on its source's
//! host, and the `-F` config of the manager's attempts. Every inventory
//! value goes through [`shell_quote`].
//!
//! An attempt is isolated from whatever else the source's account has set
//! up for ssh: it offers the source's own key only ([`ISOLATION`]: no agent,
//! no other key file, nothing forwarded), so an agent key or a default key
//! of another type never makes an edge hold. Every attempt from the
//! manager, and every rotation's proof, reads one config file and no other
//! (`-F`): the manager's a file generated for the run ([`config_text`],
//! which carries the same settings to jump hosts), a worker's proof
//! `/dev/null`, the options all on the command line. Without it, ssh would
//! also read the account's `~/.ssh/config`, whose `IdentityFile`s add to
//! the one given (`IdentitiesOnly` keeps every configured file), so another
//! key could make an edge, or a proof, hold. `verify`'s attempts from a
//! worker keep that worker's own config (what its network needs, a
//! `BindAddress`): it may add a key there. The key is
//! given with `-o IdentityFile=`, not `-i`: ssh drops a `-i` file that does
//! not exist and then falls back to every default key (`~/.ssh/id_rsa`,
//! ...), while a configured `IdentityFile` stays the only one.

use std::path::{Path, PathBuf};

use crate::model::graph::{Edge, TrustGraph};
use crate::model::inventory::{Inventory, NodeId};
use crate::model::layout::NodeFiles;
use crate::transport::scripts::shell_quote;

/// The line the source's shell prints after ssh, with ssh's exit status.
pub(super) const EXIT_MARKER: &str = "trustmesh-verify-exit";

/// What an SFTP-only edge's shell check prints if a shell opened.
pub(super) const SHELL_MARKER: &str = "trustmesh-verify-shell-opened";

/// The options that keep an attempt to the source's own key: every attempt
/// gets them with `-o`, and the manager's `-F` config repeats them (`-o`
/// does not reach a `ProxyJump` connection).
const ISOLATION: [(&str, &str); 4] = [
    ("IdentitiesOnly", "yes"),
    ("IdentityAgent", "none"),
    ("ForwardAgent", "no"),
    ("ClearAllForwardings", "yes"),
];

/// What the command line of an edge depends on besides the inventory.
#[derive(Debug, Clone, Default)]
pub struct CommandSettings {
    pub connect_timeout_secs: u64,
    /// The manager's private key (absolute); `None`: the default file for
    /// its key type in `~/.ssh`.
    pub manager_identity: Option<PathBuf>,
    /// The manager's known_hosts, when it is not `~/.ssh/known_hosts`.
    pub manager_known_hosts: Option<PathBuf>,
    /// The `-F` file of every attempt from the manager ([`config_text`]):
    /// the only ssh config it reads. Required for those attempts.
    pub config: Option<PathBuf>,
    /// The account a node without `user:` has (the one running trustmesh),
    /// for attempts from workers; `None` leaves the user out.
    pub default_user: Option<String>,
    /// The key to offer instead of the source's usual one (a rotated key
    /// proven before it is put in place).
    pub identity_override: Option<String>,
    /// Attempts from a worker read no ssh config either (`-F /dev/null`):
    /// a rotation's proof. `verify` keeps a worker's own config.
    pub isolate_workers: bool,
}

/// Why the command of an attempt (or its ssh config) cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptError {
    #[error("the path {0:?} cannot be given to ssh (it holds a quote or a line break)")]
    UnsafePath(String),
    #[error("the address {0:?} cannot be given to ssh")]
    UnsafeAddress(String),
    #[error("the target is not in the inventory")]
    NoTarget,
    #[error("{0} has no address in the inventory, so nothing can reach it")]
    NoAddress(String),
    #[error("the jump host {0} has no address")]
    JumpWithoutAddress(String),
    #[error("no ssh config for the manager's attempts in this run")]
    NoConfig,
}

/// For the callers that still carry their errors as text.
impl From<AttemptError> for String {
    fn from(e: AttemptError) -> String {
        e.to_string()
    }
}

/// A path as an ssh option value: `%` is a token there, so it is doubled,
/// and the value is double-quoted (paths may hold spaces).
fn ssh_path_value(p: &Path) -> Result<String, AttemptError> {
    let s = p.to_string_lossy();
    if s.contains('"') || s.contains('\n') || s.contains('\r') {
        return Err(AttemptError::UnsafePath(s.into_owned()));
    }
    Ok(format!("\"{}\"", s.replace('%', "%%")))
}

/// The private key an attempt from `source` offers, as ssh reads it (ssh
/// expands a leading `~` itself): the manager's from `settings`, a worker's
/// the default file of its key type in `~/.ssh`.
fn source_key(inv: &Inventory, source: NodeId, settings: &CommandSettings) -> String {
    if let Some(id) = &settings.identity_override {
        return id.clone();
    }
    if source == Inventory::MANAGER {
        if let Some(id) = &settings.manager_identity {
            return id.to_string_lossy().into_owned();
        }
    }
    let key = NodeFiles::of(inv, source).key;
    if key.starts_with('/') || key.starts_with('~') {
        key
    } else {
        format!("~/.ssh/{key}")
    }
}

/// `user@host:port` for `-J`, IPv6 addresses in brackets.
fn jump_spec(user: Option<&str>, addr: &str, port: u16) -> String {
    let target = crate::model::target::SshTarget::new(addr, port);
    match user {
        Some(u) => format!("{u}@{target}"),
        None => target.to_string(),
    }
}

/// The shell line that tries `edge` on its source's host: ssh with the
/// fixed options, then the exit status after a marker (the remote runner
/// would take ssh's own 255 for a failure of its own connection).
pub fn command_line(
    inv: &Inventory,
    graph: &TrustGraph,
    edge: Edge,
    settings: &CommandSettings,
) -> Result<String, AttemptError> {
    let target = inv.nodes.get(edge.target).ok_or(AttemptError::NoTarget)?;
    let addr = target
        .address
        .as_deref()
        .ok_or_else(|| AttemptError::NoAddress(target.name.clone()))?;
    let from_manager = edge.source == Inventory::MANAGER;
    // The one config file the attempt reads: never the account's own.
    let config = if from_manager {
        let path = settings.config.as_deref().ok_or(AttemptError::NoConfig)?;
        Some(shell_quote(&path.to_string_lossy()))
    } else {
        settings.isolate_workers.then(|| "/dev/null".to_string())
    };
    let mut args: Vec<String> = vec!["ssh".into()];
    if let Some(c) = config {
        args.extend(["-F".into(), c]);
    }
    args.extend([
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={}", settings.connect_timeout_secs.max(1)),
        "-o".into(),
        "ControlPath=none".into(),
        "-o".into(),
        shell_quote(&format!(
            "IdentityFile={}",
            ssh_path_value(Path::new(&source_key(inv, edge.source, settings)))?
        )),
    ]);
    for (option, value) in ISOLATION {
        args.push("-o".into());
        args.push(format!("{option}={value}"));
    }
    // A certificate edge is tried with the source's certificate, named.
    if inv.is_certificate_edge(edge.source, edge.target) {
        let key = source_key(inv, edge.source, settings);
        let cert = crate::formats::certificate::file_name(&key);
        args.push("-o".into());
        args.push(shell_quote(&format!(
            "CertificateFile={}",
            ssh_path_value(Path::new(&cert))?
        )));
    }
    let user = match (&target.user, from_manager) {
        (Some(u), _) => Some(u.clone()),
        // The manager runs as the account a node without `user:` has.
        (None, true) => None,
        (None, false) => settings.default_user.clone(),
    };
    if from_manager {
        let chain = graph.jump_chain(inv, edge.target);
        if let Some(kh) = &settings.manager_known_hosts {
            args.push("-o".into());
            args.push(shell_quote(&format!(
                "UserKnownHostsFile={}",
                ssh_path_value(kh)?
            )));
        }
        if !chain.is_empty() {
            // ssh wants the first hop first: the farthest from the target.
            let mut hops = Vec::with_capacity(chain.len());
            for &j in chain.iter().rev() {
                let jn = &inv.nodes[j];
                let jaddr = jn
                    .address
                    .as_deref()
                    .ok_or_else(|| AttemptError::JumpWithoutAddress(jn.name.clone()))?;
                hops.push(jump_spec(jn.user.as_deref(), jaddr, jn.port));
            }
            args.push("-J".into());
            args.push(shell_quote(&hops.join(",")));
        }
    }
    // sftp splits its destination at a colon: an IPv6 address goes in
    // brackets there (ssh takes it bare).
    let sftp_addr = if addr.contains(':') {
        format!("[{addr}]")
    } else {
        addr.to_string()
    };
    let (dest, sftp_dest) = match &user {
        Some(u) => (format!("{u}@{addr}"), format!("{u}@{sftp_addr}")),
        None => (addr.to_string(), sftp_addr),
    };
    let port = shell_quote(&target.port.to_string());
    let dest = shell_quote(&dest);
    let sftp_dest = shell_quote(&sftp_dest);
    let sftp_only = inv.is_sftp_only(edge.source, edge.target);
    if sftp_only || !crate::node::abilities(target).commands {
        // An edge into an account that serves SFTP only (`access: sftp`),
        // or an SFTP-only edge, holds when a listing works over sftp; an
        // SFTP-only edge then only if a shell is refused too: the forced
        // internal-sftp runs instead of `echo`, so the marker never comes
        // back.
        let options = args[1..].join(" ");
        let shell_check = if sftp_only {
            format!("ssh {options} -p {port} {dest} echo {SHELL_MARKER} </dev/null 2>/dev/null; ")
        } else {
            String::new()
        };
        return Ok(format!(
            "printf 'ls\\n' | sftp -b - {options} -P {port} {sftp_dest} >/dev/null; tm_s=$?; \
             {shell_check}echo \"{EXIT_MARKER} $tm_s\""
        ));
    }
    args.extend(["-p".into(), port, dest, "true".into()]);
    Ok(format!(
        "{} </dev/null; echo \"{EXIT_MARKER} $?\"",
        args.join(" ")
    ))
}

/// The `-F` file of the manager's attempts, the only ssh config they read:
/// the same strict settings for every hop, one key only (the isolation
/// options of every attempt), the known_hosts files when they are not the
/// default. `pins`: (address, config fragment) of nodes whose host key is
/// pinned in the run ([`crate::transport::sshconfig::pin_config`]),
/// included first for that address, so that their pinned key alone is
/// trusted (a rotation's proof checks host keys as the run's own
/// connections do).
pub fn config_text(
    connect_timeout_secs: u64,
    identity: &Path,
    known_hosts: &[&Path],
    pins: &[(String, PathBuf)],
) -> Result<String, AttemptError> {
    let mut s = String::from("# Generated by trustmesh for one run: the only ssh config read.\n");
    for (addr, conf) in pins {
        if addr.is_empty() || addr.contains(char::is_whitespace) || addr.contains('"') {
            return Err(AttemptError::UnsafeAddress(addr.clone()));
        }
        s.push_str(&format!(
            "Host {addr}\n  Include {}\n",
            ssh_path_value(conf)?
        ));
    }
    s.push_str("Host *\n");
    s.push_str("  BatchMode yes\n");
    s.push_str("  StrictHostKeyChecking yes\n");
    s.push_str(&format!(
        "  ConnectTimeout {}\n",
        connect_timeout_secs.max(1)
    ));
    s.push_str("  ControlPath none\n");
    s.push_str(&format!("  IdentityFile {}\n", ssh_path_value(identity)?));
    for (option, value) in ISOLATION {
        s.push_str(&format!("  {option} {value}\n"));
    }
    if !known_hosts.is_empty() {
        let files = known_hosts
            .iter()
            .map(|p| ssh_path_value(p))
            .collect::<Result<Vec<_>, _>>()?;
        s.push_str(&format!("  UserKnownHostsFile {}\n", files.join(" ")));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::EdgeKind;
    use crate::model::inventory::NodeId;

    fn inv(text: &str) -> Inventory {
        Inventory::from_str_named("t", text).expect("valid inventory")
    }

    const CLUSTER: &str = "version: 1\ndefaults: {user: agilab}\nmanager: {name: manager, address: 10.0.0.1, user: alice}\nbastions:\n  - {name: gw, address: gw.example.org, user: jumper, port: 2200}\nworkers:\n  - {name: node1, address: 10.0.0.2}\n  - {name: node2, address: 'fe80::2', port: 2222}\n  - {name: hidden, address: 192.168.1.5, jump: gw}\n  - {name: free, address: 10.0.0.9, user: null}\nreverse: [node1]\nmesh:\n  - [node1, node2]\n";

    fn settings() -> CommandSettings {
        CommandSettings {
            connect_timeout_secs: 7,
            default_user: Some("alice".into()),
            config: Some("/tmp/tm-x/verify_ssh_config".into()),
            ..CommandSettings::default()
        }
    }

    fn edge(kind: EdgeKind, source: NodeId, target: NodeId) -> Edge {
        Edge {
            kind,
            source,
            target,
        }
    }

    const TAIL: &str = " </dev/null; echo \"trustmesh-verify-exit $?\"";
    /// The fixed options of every attempt from a worker, up to the
    /// source's key.
    const HEAD: &str =
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=7 -o ControlPath=none";
    /// The same from the manager: the run's own config file alone.
    const HEAD_M: &str = "ssh -F '/tmp/tm-x/verify_ssh_config' -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=7 -o ControlPath=none";
    /// The options that keep an attempt to that key only.
    const ISOLATED: &str =
        "-o IdentitiesOnly=yes -o IdentityAgent=none -o ForwardAgent=no -o ClearAllForwardings=yes";

    #[test]
    fn worker_to_worker_is_the_plain_command() {
        let i = inv(CLUSTER);
        let g = TrustGraph::build(&i);
        let n1 = i.find("node1").unwrap();
        let n2 = i.find("node2").unwrap();
        let line = command_line(&i, &g, edge(EdgeKind::Mesh, n1, n2), &settings()).unwrap();
        assert_eq!(
            line,
            format!("{HEAD} -o 'IdentityFile=\"~/.ssh/id_ed25519\"' {ISOLATED} -p '2222' 'agilab@fe80::2' true{TAIL}")
        );
        let line = command_line(&i, &g, edge(EdgeKind::Reverse, n1, 0), &settings()).unwrap();
        assert_eq!(
            line,
            format!("{HEAD} -o 'IdentityFile=\"~/.ssh/id_ed25519\"' {ISOLATED} -p '22' 'alice@10.0.0.1' true{TAIL}")
        );
        let relaxed = ["stricthostkeychecking", "=no"].concat();
        assert!(!line.to_lowercase().contains(&relaxed));
        assert!(!line.contains("accept-new"));
    }

    #[test]
    fn a_certificate_edge_names_the_certificate_and_a_forward_edge_does_not() {
        let i = inv(&format!("{CLUSTER}certificates: {{}}\n"));
        let g = TrustGraph::build(&i);
        let (n1, n2) = (i.find("node1").unwrap(), i.find("node2").unwrap());
        let line = command_line(&i, &g, edge(EdgeKind::Mesh, n1, n2), &settings()).unwrap();
        let cert = "-o 'CertificateFile=\"~/.ssh/id_ed25519-cert.pub\"'";
        assert!(
            line.contains(&format!("{ISOLATED} {cert} -p '2222'")),
            "{line}"
        );
        let line = command_line(&i, &g, edge(EdgeKind::Forward, 0, n1), &settings()).unwrap();
        assert!(!line.contains("CertificateFile"), "{line}");
    }

    #[test]
    fn an_sftp_only_edge_is_a_listing_then_a_shell_that_must_not_open() {
        let i = inv(&CLUSTER.replace(
            "reverse: [node1]",
            "reverse: [{worker: node1, sftp_only: true}]",
        ));
        let g = TrustGraph::build(&i);
        let n1 = i.find("node1").unwrap();
        let line = command_line(&i, &g, edge(EdgeKind::Reverse, n1, 0), &settings()).unwrap();
        let opts = format!(
            "{} -o 'IdentityFile=\"~/.ssh/id_ed25519\"' {ISOLATED}",
            HEAD.strip_prefix("ssh ").unwrap()
        );
        assert_eq!(
            line,
            format!(
                "printf 'ls\\n' | sftp -b - {opts} -P '22' 'alice@10.0.0.1' >/dev/null; tm_s=$?; \
                 ssh {opts} -p '22' 'alice@10.0.0.1' echo trustmesh-verify-shell-opened </dev/null 2>/dev/null; \
                 echo \"trustmesh-verify-exit $tm_s\""
            )
        );
        // sftp takes an IPv6 address in brackets, ssh bare.
        let v6 = inv(&CLUSTER
            .replace(
                "reverse: [node1]",
                "reverse: [{worker: node2, sftp_only: true}]",
            )
            .replace(
                "address: 10.0.0.1, user: alice",
                "address: 'fd00::1', user: alice",
            ));
        let g6 = TrustGraph::build(&v6);
        let n2 = v6.find("node2").unwrap();
        let line = command_line(&v6, &g6, edge(EdgeKind::Reverse, n2, 0), &settings()).unwrap();
        assert!(
            line.contains(" -P '22' 'alice@[fd00::1]' >/dev/null"),
            "{line}"
        );
        assert!(line.contains(" -p '22' 'alice@fd00::1' echo "), "{line}");
        // The other edges are tried as before.
        let n2 = i.find("node2").unwrap();
        let line = command_line(&i, &g, edge(EdgeKind::Mesh, n1, n2), &settings()).unwrap();
        assert!(line.starts_with("ssh ") && line.ends_with(TAIL), "{line}");
    }

    #[test]
    fn a_worker_reaching_a_node_without_user_uses_the_running_account() {
        let i = inv(CLUSTER);
        let g = TrustGraph::build(&i);
        let free = i.find("free").unwrap();
        let n1 = i.find("node1").unwrap();
        // `user: null` inherits the default; force None to test the rule.
        let mut i2 = i.clone();
        i2.nodes[free].user = None;
        let line = command_line(&i2, &g, edge(EdgeKind::Mesh, n1, free), &settings()).unwrap();
        assert!(line.contains(" 'alice@10.0.0.9' true"), "{line}");
        let line = command_line(&i2, &g, edge(EdgeKind::Forward, 0, free), &settings()).unwrap();
        assert!(line.contains(" -p '22' '10.0.0.9' true"), "{line}");
        let mut s = settings();
        s.default_user = None;
        let line = command_line(&i2, &g, edge(EdgeKind::Mesh, n1, free), &s).unwrap();
        assert!(line.contains(" '10.0.0.9' true"), "{line}");
    }

    #[test]
    fn the_manager_offers_its_own_key_adds_a_custom_known_hosts_and_jumps_with_a_config() {
        let i = inv(CLUSTER);
        let g = TrustGraph::build(&i);
        let n1 = i.find("node1").unwrap();
        let hidden = i.find("hidden").unwrap();
        let plain = command_line(&i, &g, edge(EdgeKind::Forward, 0, n1), &settings()).unwrap();
        assert_eq!(
            plain,
            format!("{HEAD_M} -o 'IdentityFile=\"~/.ssh/id_ed25519\"' {ISOLATED} -p '22' 'agilab@10.0.0.2' true{TAIL}")
        );
        let mut s = settings();
        s.manager_identity = Some("/home/al ice/keys/it's%d".into());
        s.manager_known_hosts = Some("/home/al ice/kh".into());
        let line = command_line(&i, &g, edge(EdgeKind::Forward, 0, hidden), &s).unwrap();
        assert_eq!(
            line,
            format!("{HEAD_M} -o 'IdentityFile=\"/home/al ice/keys/it'\\''s%%d\"' {ISOLATED} -o 'UserKnownHostsFile=\"/home/al ice/kh\"' -J 'jumper@gw.example.org:2200' -p '22' 'agilab@192.168.1.5' true{TAIL}")
        );
        // No config of the run, no attempt from the manager, jump or not:
        // refused rather than one that reads the account's ~/.ssh/config.
        let mut s = settings();
        s.config = None;
        assert_eq!(
            command_line(&i, &g, edge(EdgeKind::Forward, 0, hidden), &s),
            Err(AttemptError::NoConfig)
        );
        assert_eq!(
            command_line(&i, &g, edge(EdgeKind::Forward, 0, n1), &s),
            Err(AttemptError::NoConfig)
        );
        // A worker's proof reads no config file at all; its verify
        // attempt keeps the worker's own.
        let line = command_line(&i, &g, edge(EdgeKind::Reverse, n1, 0), &s).unwrap();
        assert!(line.starts_with("ssh -o "), "{line}");
        s.isolate_workers = true;
        let line = command_line(&i, &g, edge(EdgeKind::Reverse, n1, 0), &s).unwrap();
        assert!(line.starts_with("ssh -F /dev/null -o "), "{line}");
    }

    #[test]
    fn jump_chains_are_given_first_hop_first() {
        let i = inv("version: 1\nmanager: {name: m}\nbastions:\n  - {name: outer, address: 'fe80::1'}\n  - {name: inner, address: 10.1.0.1, port: 2022, jump: outer, user: j}\nworkers:\n  - {name: w, address: 10.2.0.1, jump: inner}\n");
        let g = TrustGraph::build(&i);
        let w = i.find("w").unwrap();
        let line = command_line(&i, &g, edge(EdgeKind::Forward, 0, w), &settings()).unwrap();
        assert!(
            line.contains(" -J '[fe80::1]:22,j@10.1.0.1:2022' -p '22' '10.2.0.1' true"),
            "{line}"
        );
    }

    #[test]
    fn a_target_without_address_is_not_tried() {
        let i = inv("version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: 10.2.0.1}\n");
        let g = TrustGraph::build(&i);
        let e = command_line(&i, &g, edge(EdgeKind::Reverse, 1, 0), &settings()).unwrap_err();
        assert_eq!(e, AttemptError::NoAddress("m".into()));
        assert_eq!(
            e.to_string(),
            "m has no address in the inventory, so nothing can reach it"
        );
    }

    #[test]
    fn the_config_is_strict_isolated_and_quotes_paths() {
        let t = config_text(5, Path::new("/k/id %h"), &[Path::new("/k/kh")], &[]).unwrap();
        assert_eq!(
            t,
            "# Generated by trustmesh for one run: the only ssh config read.\nHost *\n  BatchMode yes\n  StrictHostKeyChecking yes\n  ConnectTimeout 5\n  ControlPath none\n  IdentityFile \"/k/id %%h\"\n  IdentitiesOnly yes\n  IdentityAgent none\n  ForwardAgent no\n  ClearAllForwardings yes\n  UserKnownHostsFile \"/k/kh\"\n"
        );
        assert!(config_text(5, Path::new("/k/\"x"), &[], &[]).is_err());
        let t = config_text(0, Path::new("/k/id"), &[], &[]).unwrap();
        assert!(t.contains("ConnectTimeout 1\n") && !t.contains("UserKnownHostsFile"));
        // A rotation's proof: the run's known_hosts files, and a pinned
        // node's fragment first for its address (ssh keeps the first value).
        let t = config_text(
            5,
            Path::new("/k/new"),
            &[Path::new("/k/kh"), Path::new("/run/accepted")],
            &[("10.0.0.2".into(), "/run/pins/tm-a.conf".into())],
        )
        .unwrap();
        assert!(
            t.contains("read.\nHost 10.0.0.2\n  Include \"/run/pins/tm-a.conf\"\nHost *\n"),
            "{t}"
        );
        assert!(
            t.contains("  UserKnownHostsFile \"/k/kh\" \"/run/accepted\"\n"),
            "{t}"
        );
        assert_eq!(t.matches("IdentityFile").count(), 1, "{t}");
        assert!(config_text(5, Path::new("/k/id"), &[], &[("a b".into(), "/p".into())]).is_err());
    }

    #[test]
    fn every_attempt_offers_its_sources_own_key_only() {
        let i = inv("version: 1\nmanager: {name: m, address: 10.2.0.9, key_type: rsa}\nworkers:\n  - {name: a, address: 10.2.0.1, key_type: ecdsa}\n  - {name: b, address: 10.2.0.2}\nreverse: [a]\nmesh:\n  - [a, b]\n");
        let g = TrustGraph::build(&i);
        let (a, b) = (i.find("a").unwrap(), i.find("b").unwrap());
        let key_of = |e: Edge, s: &CommandSettings| {
            let line = command_line(&i, &g, e, s).unwrap();
            // One key, never through `-i` (dropped when missing, and then
            // ssh falls back to every default key), and the isolation.
            assert_eq!(line.matches("IdentityFile=").count(), 1, "{line}");
            assert!(!line.contains(" -i "), "{line}");
            assert!(line.contains(&format!(" {ISOLATED} ")), "{line}");
            let start = line.find("IdentityFile=").unwrap();
            line[start..].split(' ').next().unwrap().to_string()
        };
        let s = settings();
        assert_eq!(
            key_of(edge(EdgeKind::Forward, 0, a), &s),
            "IdentityFile=\"~/.ssh/id_rsa\"'"
        );
        assert_eq!(
            key_of(edge(EdgeKind::Reverse, a, 0), &s),
            "IdentityFile=\"~/.ssh/id_ecdsa\"'"
        );
        assert_eq!(
            key_of(edge(EdgeKind::Mesh, b, a), &s),
            "IdentityFile=\"~/.ssh/id_ed25519\"'"
        );
        // The manager's key as gathered, by its full path.
        let mut s = settings();
        s.manager_identity = Some("/home/m/.ssh/id_rsa".into());
        assert_eq!(
            key_of(edge(EdgeKind::Forward, 0, b), &s),
            "IdentityFile=\"/home/m/.ssh/id_rsa\"'"
        );
        // A worker's attempt never gets the manager's key.
        assert_eq!(
            key_of(edge(EdgeKind::Mesh, a, b), &s),
            "IdentityFile=\"~/.ssh/id_ecdsa\"'"
        );
    }
}
