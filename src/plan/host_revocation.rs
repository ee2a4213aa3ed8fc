//! host_certificates' revocation: the serials of retired nodes'
//! certificates in a KRL (`/etc/ssh/trustmesh-<cluster>.krl`), made on the
//! manager with `ssh-keygen -k -s CA.pub` and written to every serving
//! node, where sshd's `RevokedKeys` (the drop-in) and ssh's
//! `RevokedHostKeys` (trustmesh's `/etc/ssh/ssh_config.d` file) name it: a
//! retired node's certificate is then refused by the peers' ssh.
//!
//! A node is retired when this cluster's lines name it and the inventory
//! does not; the drop-in keeps the list (`# revoked: NODE serial N`), so
//! it outlives those lines.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::host_certificates::{file_text, krl_path, serial, whole_file, Serve};
use super::*;

/// The KRL written to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Krl {
    pub path: String,
    /// The CA's private key on the manager, as the inventory names it (its
    /// `.pub` scopes the serials).
    pub ca: String,
    /// The retired nodes and their certificates' serial.
    pub revoked: Vec<(String, u64)>,
    /// [`crate::transport::scripts::cksum`] of the KRL as the plan read
    /// it, or `absent`.
    pub expected: String,
    pub create: bool,
    /// Written with `sudo -n` (the account is not root).
    pub sudo: bool,
    /// The KRL is removed (host_certificates turned off on the node).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove: bool,
}

/// The KRL's source for `ssh-keygen -k`: one `serial:` line per certificate.
pub fn krl_spec(k: &Krl) -> String {
    k.revoked
        .iter()
        .map(|(node, s)| format!("# {node}\nserial: {s}\n"))
        .collect()
}

/// ssh's own config drop-in of this cluster.
pub fn ssh_dropin_path(cluster: &str) -> String {
    format!("/etc/ssh/ssh_config.d/trustmesh-{cluster}.conf")
}

const REVOKED: &str = "# revoked: ";

/// This cluster's nodes that left the inventory: named by a marker in a
/// file read (its `authorized_keys`, `known_hosts`) or by a serving node's
/// drop-in, and not in the inventory; sorted, once each.
pub(super) fn retired(
    inv: &Inventory,
    live: &LiveState,
    files: &[NodeFiles],
    serve: &[Serve],
) -> Vec<String> {
    let prefix = format!("trustmesh:{}/", inv.cluster);
    let dropin = super::dropin_path(&inv.cluster);
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if ok && inv.find(name).is_none() && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    };
    for (id, f) in files.iter().enumerate() {
        let Some(acc) = live.account(id) else {
            continue;
        };
        for name in [&f.authorized_keys, &f.known_hosts] {
            for line in file_text(acc, name).unwrap_or_default().lines() {
                if let Some(n) = line
                    .split_whitespace()
                    .last()
                    .and_then(|m| m.strip_prefix(&prefix))
                {
                    push(n);
                }
            }
        }
        if matches!(serve.get(id), Some(Serve::Yes { .. })) {
            for line in file_text(acc, &dropin).unwrap_or_default().lines() {
                if let Some(n) = line
                    .strip_prefix(REVOKED)
                    .and_then(|r| r.split_whitespace().next())
                {
                    push(n);
                }
            }
        }
    }
    out.sort_unstable();
    out
}

impl Ctx<'_> {
    /// The drop-in's lines about revocation: `RevokedKeys`, and the
    /// retired nodes it remembers.
    pub(super) fn revoked_lines(&self) -> Vec<String> {
        let mut lines = vec![format!("RevokedKeys {}", krl_path(&self.inv.cluster))];
        for n in &self.host_certs.retired {
            lines.push(format!(
                "{REVOKED}{n} serial {}",
                serial(&self.inv.marker(n))
            ));
        }
        lines
    }

    /// The KRL on a serving node (written when missing or when the
    /// retired nodes change), then ssh's drop-in naming it.
    pub(super) fn revocation(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        old_dropin: Option<&str>,
        dropin: &[String],
        sudo: bool,
        plan: &mut NodePlan,
    ) {
        let Some(hc) = &self.inv.host_certs else {
            return;
        };
        let path = krl_path(&self.inv.cluster);
        let now = acc.file(&path).and_then(|f| f.content.as_deref());
        let revoked_of = |lines: &mut dyn Iterator<Item = &str>| -> Vec<String> {
            lines
                .filter(|l| l.starts_with(REVOKED))
                .map(String::from)
                .collect()
        };
        let was = revoked_of(&mut old_dropin.unwrap_or_default().lines());
        let want = revoked_of(&mut dropin.iter().map(String::as_str));
        if now.is_none() || was != want {
            plan.changes.push(Change::WriteKrl(Krl {
                path: path.clone(),
                ca: hc.ca.clone(),
                revoked: self
                    .host_certs
                    .retired
                    .iter()
                    .map(|n| (n.clone(), serial(&self.inv.marker(n))))
                    .collect(),
                expected: now.map_or_else(|| "absent".into(), crate::transport::scripts::cksum),
                create: now.is_none(),
                sudo,
                remove: false,
            }));
        }
        let ssh = ssh_dropin_path(&self.inv.cluster);
        let dir_ok = acc
            .file("/etc/ssh/ssh_config.d")
            .and_then(|f| f.stat.as_ref())
            .is_some_and(|s| s.kind == crate::model::state::FileKind::Dir);
        if !dir_ok {
            plan.warnings.push(format!(
                "/etc/ssh/ssh_config.d is not a folder there: ssh on {} does not check the KRL of retired nodes' certificates",
                self.inv.nodes[id].name
            ));
            return;
        }
        let marker = &*self.markers[id];
        let lines = vec![
            crate::formats::ssh_config::header(marker),
            format!("RevokedHostKeys {path}"),
        ];
        whole_file(
            (&ssh, BlockRole::SshDropin, marker),
            file_text(acc, &ssh).as_deref(),
            lines,
            sudo,
            plan,
        );
    }
}
