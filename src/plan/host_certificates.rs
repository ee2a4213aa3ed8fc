//! host_certificates (issue #22 part 3): which nodes serve host
//! certificates signed by the cluster's host CA, and what each of them
//! needs: the CA made on the manager when missing, each host key its sshd
//! proved signed (`/etc/ssh/ssh_host_<type>_key-cert.pub`), trustmesh's
//! sshd drop-in naming them, and sshd checked and reloaded. Peers then
//! trust the cluster with one `@cert-authority` line (`known_hosts.rs`).
//!
//! Only nodes whose account is root or has `sudo -n`, with a shell, whose
//! `sshd_config` includes `/etc/ssh/sshd_config.d/*.conf`, serve
//! certificates; the others keep pinned host keys, and the plan says why,
//! node by node. The manager keeps pinned keys for every node: they are how
//! trustmesh's own connections prove the host keys it signs.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::model::state::Privilege;

/// sshd's drop-in folder.
pub const DROPIN_DIR: &str = "/etc/ssh/sshd_config.d";
/// The `Include` a node's `sshd_config` needs for the drop-in to count.
pub const INCLUDE_LINE: &str = "Include /etc/ssh/sshd_config.d/*.conf";
/// The sshd config the probe reads.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";
/// The name the host CA's public key goes by among generated keys, and as
/// the node of its `@cert-authority` lines while it is made in this run.
pub const HOST_CA: &str = "host CA";

/// trustmesh's sshd drop-in of this cluster.
pub fn dropin_path(cluster: &str) -> String {
    format!("{DROPIN_DIR}/trustmesh-{cluster}.conf")
}

/// The KRL of this cluster, named by the drop-in's `RevokedKeys`.
pub fn krl_path(cluster: &str) -> String {
    format!("/etc/ssh/trustmesh-{cluster}.krl")
}

/// Where sshd keeps the certificate of a host key of this type (`None`: a
/// type sshd has no default host key file for).
pub fn cert_path(key_type: &str) -> Option<String> {
    let t = match key_type {
        "ssh-ed25519" => "ed25519",
        "ssh-rsa" => "rsa",
        t if t.starts_with("ecdsa-sha2-") => "ecdsa",
        _ => return None,
    };
    Some(format!("/etc/ssh/ssh_host_{t}_key-cert.pub"))
}

/// The serial of every host certificate of a node: the same on each
/// renewal, so that a KRL naming it refuses all of that node's
/// certificates (FNV-1a of the node's marker, 63 bits).
pub fn serial(marker: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in marker.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h >> 1
}

/// A host key signed on the manager with the host CA, the certificate
/// written to `path` on the node (compare-and-swap, 0644).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HostCertificate {
    /// `/etc/ssh/ssh_host_<type>_key-cert.pub`
    pub path: String,
    /// The host key its sshd proved: `type base64`.
    pub host_key: String,
    pub fingerprint: String,
    /// The CA's private key on the manager, as the inventory names it.
    pub ca: String,
    /// `-I`: the node's marker.
    pub identity: String,
    /// `-n`: the node's name and address.
    pub principals: Vec<String>,
    /// `-z`: the node's serial ([`serial`]).
    pub serial: u64,
    /// `-V +<validity>`.
    pub validity: String,
    /// Why it is signed: no certificate yet, renewal, another key or CA...
    pub why: String,
    /// The file does not exist yet.
    pub create: bool,
    /// Written with `sudo -n` (the account is not root).
    pub sudo: bool,
}

/// sshd checked with `sshd -t` once its drop-in and certificates are
/// written, then reloaded; when the check fails, the drop-in is put back as
/// it was (`restore`; `None`: it did not exist) and sshd is not reloaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SshdReload {
    pub dropin: String,
    pub restore: Option<String>,
    /// Run with `sudo -n` (the account is not root).
    pub sudo: bool,
}

/// The host CA as the plan finds it on the manager.
#[derive(Debug, Clone)]
pub(super) enum Ca {
    /// Its public key, `(type, base64)`.
    Known(Arc<str>, Arc<str>),
    /// Made by this apply (a planned action on the manager).
    Pending,
    /// Cannot be used: why.
    Unusable(String),
}

/// Whether a node serves host certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Serve {
    /// host_certificates is off.
    Off,
    /// It does (`sudo`: through `sudo -n`).
    Yes { sudo: bool },
    /// It keeps pinned host keys: why.
    Pinned(String),
}

/// host_certificates for the whole plan, decided once.
pub(super) struct HostCertPlan {
    pub ca: Option<Ca>,
    pub serve: Vec<Serve>,
    /// The one `@cert-authority` line's names field: `@cert-authority`
    /// and the host patterns (every serving node's names and addresses),
    /// when a node serves; made once, every peer's line shares it.
    pub ca_names: Option<Arc<str>>,
    /// This cluster's nodes that left the inventory, sorted: their
    /// certificates' serials go in the KRL (`host_revocation.rs`).
    pub retired: Vec<String>,
}

impl HostCertPlan {
    /// Does `t` serve certificates its peers can trust with the CA line?
    pub fn serves(&self, t: NodeId) -> bool {
        matches!(self.serve.get(t), Some(Serve::Yes { .. }))
            && matches!(self.ca, Some(Ca::Known(..) | Ca::Pending))
    }

    /// The CA line's `(type, base64)`; `None` while it is made in this run.
    pub fn ca_key(&self) -> Option<(Arc<str>, Arc<str>)> {
        match &self.ca {
            Some(Ca::Known(t, b)) => Some((t.clone(), b.clone())),
            _ => None,
        }
    }
}

/// Which nodes serve certificates, and the CA.
pub(super) fn prepare(
    inv: &Inventory,
    live: &LiveState,
    scope: &PlanScope,
    files: &[NodeFiles],
) -> HostCertPlan {
    let n = inv.nodes.len();
    let Some(hc) = &inv.host_certs else {
        return HostCertPlan {
            ca: None,
            serve: vec![Serve::Off; n],
            ca_names: None,
            retired: Vec::new(),
        };
    };
    let ca = ca_state(live, &files[Inventory::MANAGER], scope);
    let serve: Vec<Serve> = (0..n).map(|id| serve(inv, live, hc, id)).collect();
    let mut patterns: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (id, node) in inv.nodes.iter().enumerate() {
        if serve[id] != (Serve::Yes { sudo: false }) && serve[id] != (Serve::Yes { sudo: true }) {
            continue;
        }
        let addr = node.target().addr;
        for name in [addr, node.name.as_str()] {
            let p = kh::host_name(name, node.port);
            if seen.insert(p.clone()) {
                patterns.push(p);
            }
        }
    }
    let retired = super::host_revocation::retired(inv, live, files, &serve);
    HostCertPlan {
        ca: Some(ca),
        ca_names: (!patterns.is_empty())
            .then(|| Arc::from(format!("@cert-authority {}", patterns.join(",")))),
        serve,
        retired,
    }
}

fn ca_state(live: &LiveState, files: &NodeFiles, scope: &PlanScope) -> Ca {
    let Some(ca) = &files.host_ca else {
        return Ca::Unusable("host_certificates is off".into());
    };
    let Some(acc) = live.account(Inventory::MANAGER) else {
        return Ca::Unusable("the manager's account was not read".into());
    };
    let private = acc.file(ca).and_then(|f| f.stat.as_ref());
    let public = acc
        .file(&format!("{ca}.pub"))
        .and_then(|f| f.content.as_deref())
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(PublicKey::parse);
    match (private, public) {
        (Some(_), Some(k)) => Ca::Known(k.key_type.into(), k.base64.into()),
        (None, None) if scope.contains(Inventory::MANAGER) => Ca::Pending,
        (None, None) => Ca::Unusable(format!(
            "the host CA {} does not exist, and the manager is {}: it is not made in this run",
            display_path(ca),
            crate::output::hints::NOT_IN_LIMIT
        )),
        _ => Ca::Unusable(format!(
            "the host CA {} or its public half {}.pub is missing: trustmesh does not replace a key it did not make",
            display_path(ca),
            display_path(ca)
        )),
    }
}

/// Whether `id` serves certificates, and if not why.
fn serve(
    inv: &Inventory,
    live: &LiveState,
    hc: &crate::model::inventory::host_certificates::HostCerts,
    id: NodeId,
) -> Serve {
    let node = &inv.nodes[id];
    if id == Inventory::MANAGER {
        return Serve::Pinned(
            "the manager: trustmesh does not reload the sshd of the machine it runs on".into(),
        );
    }
    if hc.opted_out.contains(&id) {
        return Serve::Pinned("`host_certificates: false` in the inventory".into());
    }
    if !has_shell(node) {
        return Serve::Pinned(
            "it is reached without a shell (access: sftp, or Windows): sshd cannot be checked and reloaded there"
                .into(),
        );
    }
    let Some(acc) = live.account(id) else {
        return Serve::Pinned("it was not read".into());
    };
    let sudo = match acc.privilege {
        _ if acc.uid == 0 => false,
        Some(Privilege::Root) => false,
        Some(Privilege::Sudo) => true,
        _ => {
            let who = if acc.user.is_empty() {
                "the account"
            } else {
                &acc.user
            };
            return Serve::Pinned(format!(
                "{who} is not root and has no passwordless sudo (`sudo -n true` fails)"
            ));
        }
    };
    let config = acc
        .file(SSHD_CONFIG)
        .and_then(|f| f.content.as_deref())
        .map(String::from_utf8_lossy);
    let Some(config) = config else {
        return Serve::Pinned(format!("{SSHD_CONFIG} could not be read"));
    };
    if !includes_dropins(&config) {
        return Serve::Pinned(format!(
            "blocked for host certificates: {SSHD_CONFIG} does not include {DROPIN_DIR}/*.conf \
             (trustmesh does not edit sshd's main config); add `{INCLUDE_LINE}` at its top, then plan again"
        ));
    }
    let dir = acc.file(DROPIN_DIR).and_then(|f| f.stat.as_ref());
    if !dir.is_some_and(|s| s.kind == crate::model::state::FileKind::Dir) {
        return Serve::Pinned(format!(
            "{DROPIN_DIR} is not a folder there: make it (`mkdir -m 755 {DROPIN_DIR}`), then plan again"
        ));
    }
    if acc.proven_host_keys.is_empty() {
        return Serve::Pinned("its sshd proved no host key to this run's connection".into());
    }
    Serve::Yes { sudo }
}

/// Does this `sshd_config` include the drop-in folder, before any `Match`
/// (an `Include` inside a `Match` block counts only for its connections)?
pub fn includes_dropins(config: &str) -> bool {
    for line in config.lines() {
        let mut words = line
            .trim()
            .split(|c: char| c.is_ascii_whitespace() || c == '=')
            .filter(|w| !w.is_empty());
        let Some(kw) = words.next() else { continue };
        if kw.starts_with('#') {
            continue;
        }
        if kw.eq_ignore_ascii_case("match") {
            return false;
        }
        if kw.eq_ignore_ascii_case("include")
            && words.any(|w| w == "/etc/ssh/sshd_config.d/*.conf" || w == "sshd_config.d/*.conf")
        {
            return true;
        }
    }
    false
}

/// The drop-in's text, line by line: its marker, then a `HostCertificate`
/// line per certificate.
pub fn dropin_lines(marker: &str, certs: &[String]) -> Vec<String> {
    let mut lines = vec![crate::formats::ssh_config::header(marker)];
    lines.extend(certs.iter().map(|c| format!("HostCertificate {c}")));
    lines
}

/// Why a node's host certificate is signed again (none is there, or the
/// one there is not right any more), in the plan's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Resign {
    #[error("no certificate yet")]
    Missing,
    #[error("a new host CA")]
    NewCa,
    /// The certificate, the host key or the CA key (`what`) cannot be read.
    #[error("{what} cannot be read")]
    Unreadable { what: &'static str },
    #[error("the certificate there is for another key")]
    OtherKey,
    #[error("the certificate there is not a host certificate of this CA")]
    OtherCa,
    #[error("the certificate there names other principals")]
    OtherPrincipals,
    #[error("the certificate there has ended")]
    Ended,
    /// It ends within `renew_before`: in `0` seconds.
    #[error("renewal: the certificate ends in {}", in_words(*.0))]
    Renewal(u64),
}

/// Is `text` (a certificate file) a certificate of `host_key` by `ca`,
/// with this identity and principals, ending more than `renew` seconds
/// after `now`? `Err`: why it is signed again.
fn cert_is_right(
    text: &str,
    host_key: &str,
    ca: &(Arc<str>, Arc<str>),
    want: (&str, &[String]),
    now: u64,
    renew: u64,
) -> Result<(), Resign> {
    let unreadable = |what| move |_| Resign::Unreadable { what };
    let cert = ssh_key::Certificate::from_openssh(text.trim())
        .map_err(unreadable("the certificate there"))?;
    let key = ssh_key::PublicKey::from_openssh(host_key).map_err(unreadable("the host key"))?;
    let ca_key = ssh_key::PublicKey::from_openssh(&format!("{} {}", ca.0, ca.1))
        .map_err(unreadable("the CA key"))?;
    if cert.public_key() != key.key_data() {
        return Err(Resign::OtherKey);
    }
    if cert.signature_key() != ca_key.key_data()
        || cert.cert_type() != ssh_key::certificate::CertType::Host
    {
        return Err(Resign::OtherCa);
    }
    if cert.key_id() != want.0 || cert.valid_principals() != want.1 {
        return Err(Resign::OtherPrincipals);
    }
    let end = cert.valid_before();
    if end <= now {
        return Err(Resign::Ended);
    }
    if end - now <= renew {
        return Err(Resign::Renewal(end - now));
    }
    Ok(())
}

/// A public file's text as the probe read it.
pub(super) fn file_text(acc: &LiveAccount, path: &str) -> Option<String> {
    acc.file(path)
        .and_then(|f| f.content.as_deref())
        .map(|c| String::from_utf8_lossy(c).into_owned())
}

/// A file trustmesh owns whole (`path`, its role, its marker) set to
/// `lines`, from `old`; `true` when it changes.
pub(super) fn whole_file(
    (path, role, marker): (&str, BlockRole, &str),
    old: Option<&str>,
    lines: Vec<String>,
    sudo: bool,
    plan: &mut NodePlan,
) -> bool {
    let text = crate::formats::ssh_config::file_text(&lines);
    if old == Some(text.as_str()) {
        return false;
    }
    plan.base.push(FileBase {
        path: path.to_string(),
        content: old.map(String::from),
    });
    plan.changes.push(Change::WriteBlock(BlockWrite {
        path: path.to_string(),
        role,
        marker: marker.to_string(),
        create: old.is_none(),
        old: old
            .map(|t| t.lines().map(String::from).collect())
            .unwrap_or_default(),
        new: Some(lines.into()),
        sudo,
    }));
    true
}

/// `3 days`, `5 hours`, `12 minutes`.
fn in_words(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "days"),
        s if s >= 2 * 3600 => (s / 3600, "hours"),
        s => (s.div_ceil(60), "minutes"),
    };
    format!("{n} {unit}")
}

impl Ctx<'_> {
    /// host_certificates on `id`: the CA on the manager, and on a serving
    /// node its certificates, drop-in and reload; a pinned node is said.
    pub(super) fn host_certificates(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        let (Some(hc), Some(ca)) = (&self.inv.host_certs, &self.host_certs.ca) else {
            return self.stop_serving(id, acc, plan);
        };
        if id == Inventory::MANAGER {
            match ca {
                Ca::Pending => plan.changes.push(Change::HostCa {
                    path: display_path(self.files[id].host_ca.as_deref().unwrap_or_default()),
                }),
                Ca::Unusable(why) => plan.warnings.push(format!(
                    "host certificates are not signed in this run: {why}"
                )),
                Ca::Known(..) => {}
            }
        }
        let sudo = match &self.host_certs.serve[id] {
            Serve::Yes { sudo } if !matches!(ca, Ca::Unusable(_)) => *sudo,
            Serve::Pinned(why) => {
                plan.warnings.push(format!("keeps pinned host keys: {why}"));
                return self.stop_serving(id, acc, plan);
            }
            _ => return,
        };
        let marker = &*self.markers[id];
        let node = &self.inv.nodes[id];
        let mut principals = vec![node.name.clone()];
        if let Some(a) = node.address.as_deref().filter(|a| *a != node.name) {
            principals.push(a.to_string());
        }
        let mut certs = Vec::new();
        let mut signed = false;
        let mut keys = acc.proven_host_keys.clone();
        keys.sort_unstable();
        for key in keys {
            let Some(k) = PublicKey::parse(&key) else {
                continue;
            };
            let Some(path) = cert_path(k.key_type) else {
                continue;
            };
            if certs.contains(&path) {
                continue;
            }
            certs.push(path.clone());
            let host_key = format!("{} {}", k.key_type, k.base64);
            let text = acc
                .file(&path)
                .and_then(|f| f.content.as_deref())
                .map(|c| String::from_utf8_lossy(c).into_owned());
            let right = match (&text, self.host_certs.ca_key()) {
                (None, _) => Err(Resign::Missing),
                (Some(_), None) => Err(Resign::NewCa),
                (Some(t), Some(ca)) => cert_is_right(
                    t,
                    &host_key,
                    &ca,
                    (marker, &principals),
                    self.scope.now.map_or(0, |t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs())
                    }),
                    hc.renew_before_secs,
                ),
            };
            let Err(why) = right else { continue };
            signed = true;
            plan.base.push(FileBase {
                path: path.clone(),
                content: text.clone(),
            });
            plan.changes.push(Change::SignHostKey(HostCertificate {
                path,
                fingerprint: kh::fingerprint_sha256(k.base64).unwrap_or_default(),
                host_key,
                ca: hc.ca.clone(),
                identity: marker.to_string(),
                principals: principals.clone(),
                serial: serial(marker),
                validity: hc.validity.clone(),
                why: why.to_string(),
                create: text.is_none(),
                sudo,
            }));
        }
        let path = dropin_path(&self.inv.cluster);
        let old = file_text(acc, &path);
        let header = crate::formats::ssh_config::header(marker);
        if old
            .as_deref()
            .is_some_and(|t| t.lines().next() != Some(header.as_str()))
        {
            plan.warnings.push(format!(
                "{path} exists and is not trustmesh's (its first line is not `{header}`): it is left alone, \
                 and this node's certificates are not served until it is moved away"
            ));
            plan.changes
                .retain(|c| !matches!(c, Change::SignHostKey(_)));
            plan.base.retain(|b| !b.path.starts_with("/etc/ssh/"));
            return;
        }
        let mut lines = dropin_lines(marker, &certs);
        lines.extend(self.revoked_lines());
        self.revocation(id, acc, old.as_deref(), &lines, sudo, plan);
        let changed = whole_file(
            (&path, BlockRole::SshdDropin, marker),
            old.as_deref(),
            lines,
            sudo,
            plan,
        );
        if changed || signed {
            plan.changes.push(Change::ReloadSshd(SshdReload {
                dropin: path,
                restore: old,
                sudo,
            }));
        }
    }
}
