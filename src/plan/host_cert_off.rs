//! host_certificates turned off (the `host_certificates:` section removed,
//! or `host_certificates: false` on a node): what trustmesh wrote on a node
//! that no longer serves certificates is removed, make-before-break.
//!
//! Only trustmesh's own: the drop-ins whose first line is the node's header
//! (`# trustmesh:<cluster>/<node>: ...`), the host certificates whose key id
//! is the node's marker, and the KRL its own drop-in names. In order: ssh's
//! drop-in (`RevokedHostKeys`), sshd's drop-in, `sshd -t` and a reload
//! (the drop-in put back when it is refused), then the certificates and the
//! KRL once sshd no longer names them. sshd stops serving the certificate
//! only once every peer that reaches the node holds its pinned host keys,
//! proven by trustmesh's own connection this run (`known_hosts.rs` drops
//! the `@cert-authority` line in the same write that adds them); when a peer
//! cannot get them in this run, everything is kept and the plan says why.

use super::host_certificates::{cert_path, dropin_path, file_text, krl_path, Serve};
use super::host_revocation::{ssh_dropin_path, Krl};
use super::*;

/// The key types sshd has a default host key (and certificate) file for.
const HOST_KEY_TYPES: [&str; 3] = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"];

impl Ctx<'_> {
    /// On a node that does not serve host certificates: the removal of
    /// what trustmesh wrote there for them.
    pub(super) fn stop_serving(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        let opted_out = self
            .inv
            .host_certs
            .as_ref()
            .is_some_and(|hc| hc.opted_out.contains(&id));
        let off = matches!(self.host_certs.serve.get(id), Some(Serve::Off));
        if id == Inventory::MANAGER || !(off || opted_out) || !has_shell(&self.inv.nodes[id]) {
            return;
        }
        let cluster = &self.inv.cluster;
        let marker = &*self.markers[id];
        let header = crate::formats::ssh_config::header(marker);
        let ours =
            |path: &str| file_text(acc, path).filter(|t| t.lines().next() == Some(header.as_str()));
        let sshd = dropin_path(cluster);
        let ssh = ssh_dropin_path(cluster);
        let (sshd_old, ssh_old) = (ours(&sshd), ours(&ssh));
        let mut certs: Vec<(String, String)> = HOST_KEY_TYPES
            .iter()
            .filter_map(|t| cert_path(t))
            .filter_map(|p| Some((p.clone(), file_text(acc, &p)?)))
            .filter(|(_, text)| {
                ssh_key::Certificate::from_openssh(text.trim()).is_ok_and(|c| c.key_id() == marker)
            })
            .collect();
        certs.dedup_by(|a, b| a.0 == b.0);
        // The KRL, when trustmesh's own drop-in names it.
        let krl = krl_path(cluster);
        let revoked_keys = format!("RevokedKeys {krl}");
        let krl_now = sshd_old
            .as_deref()
            .filter(|t| t.lines().any(|l| l == revoked_keys))
            .and_then(|_| acc.file(&krl)?.content.as_deref());
        if sshd_old.is_none() && ssh_old.is_none() && certs.is_empty() && krl_now.is_none() {
            return;
        }
        let what = if off {
            "host_certificates is off"
        } else {
            "`host_certificates: false` on this node"
        };
        let sudo = match acc.privilege {
            _ if acc.uid == 0 => false,
            Some(crate::model::state::Privilege::Root) => false,
            Some(crate::model::state::Privilege::Sudo) => true,
            _ => {
                plan.warnings.push(format!(
                    "{what}, but trustmesh's files for host certificates under /etc/ssh are left: removing them \
                     needs root or a passwordless `sudo -n`"
                ));
                return;
            }
        };
        if sshd_old.is_some() {
            if let Err(peer) = self.peers_can_pin(id) {
                plan.warnings.push(format!(
                    "{what}, but {sshd} is kept and sshd still serves this node's host certificate: {} trusts \
                     it through the host CA and cannot be given its pinned host keys in this run (not read, \
                     blocked, or {}); plan again once it can",
                    self.inv.nodes[peer].name,
                    crate::output::hints::NOT_IN_LIMIT
                ));
                return;
            }
        }
        for (path, old) in [(&ssh, &ssh_old), (&sshd, &sshd_old)] {
            let role = if path == &ssh {
                BlockRole::SshDropin
            } else {
                BlockRole::SshdDropin
            };
            if let Some(old) = old {
                remove_file(path, role, marker, old, sudo, plan);
            }
        }
        if let Some(old) = &sshd_old {
            plan.changes.push(Change::ReloadSshd(super::SshdReload {
                dropin: sshd.clone(),
                restore: Some(old.clone()),
                sudo,
            }));
        }
        // Named by no drop-in any more: the certificates, then the KRL.
        for (path, old) in &certs {
            remove_file(path, BlockRole::SshdDropin, marker, old, sudo, plan);
        }
        if let Some(bytes) = krl_now {
            plan.changes.push(Change::WriteKrl(Krl {
                path: krl,
                ca: String::new(),
                revoked: Vec::new(),
                expected: crate::transport::scripts::cksum(bytes),
                create: false,
                sudo,
                remove: true,
            }));
        }
    }

    /// Can every node with an edge to `id` be given `id`'s pinned host keys
    /// in this run (read, in scope, not blocked, `id`'s keys proven)?
    /// `Err`: one that cannot.
    pub(super) fn peers_can_pin(&self, id: NodeId) -> Result<(), NodeId> {
        let proven = matches!(&self.host_keys[id], HostKeys::Known(k) if !k.is_empty())
            && self.host_names[id].is_some();
        for s in self.graph.incoming(id).map(|e| e.source) {
            let read = matches!(self.live.nodes.get(s), Some(NodeState::Read { .. }));
            if s != id && !(proven && read && self.scope.contains(s) && !self.blocked[s]) {
                return Err(s);
            }
        }
        Ok(())
    }

    /// Can `id` drop its `@cert-authority` line: every target of its edges
    /// that does not serve certificates gets its pinned host keys in this
    /// run (in scope, proven)? `Err`: one that cannot.
    pub(super) fn pins_cover(&self, id: NodeId) -> Result<(), NodeId> {
        for t in self.graph.outgoing(id).map(|e| e.target) {
            if self.host_certs.serves(t) {
                continue;
            }
            let proven = matches!(&self.host_keys[t], HostKeys::Known(k) if !k.is_empty());
            if !(proven && self.scope.contains(t) && self.host_names[t].is_some()) {
                return Err(t);
            }
        }
        Ok(())
    }
}

/// The nodes a plan blocked, when it blocked any and some node stops
/// serving host certificates (`none`: all false): the nodes are planned
/// again with them, since a blocked peer takes no pins.
pub(super) fn blocked_peers(
    nodes: &[NodePlan],
    by_name: &HashMap<&str, NodeId>,
    none: &[bool],
) -> Option<Vec<bool>> {
    let stops = |p: &NodePlan| {
        p.changes.iter().any(|c| {
            matches!(c, Change::WriteBlock(b) if b.new.is_none() && b.role == BlockRole::SshdDropin)
        })
    };
    if !nodes.iter().any(stops) {
        return None;
    }
    let mut blocked = none.to_vec();
    for p in nodes {
        if let (NodeStatus::Blocked(_), Some(&id)) = (&p.status, by_name.get(p.node.as_str())) {
            blocked[id] = true;
        }
    }
    (blocked != none).then_some(blocked)
}

/// A whole file trustmesh wrote (`old`, read by the plan) removed,
/// compare-and-swap.
fn remove_file(
    path: &str,
    role: BlockRole,
    marker: &str,
    old: &str,
    sudo: bool,
    plan: &mut NodePlan,
) {
    plan.base.push(FileBase {
        path: path.to_string(),
        content: Some(old.to_string()),
    });
    plan.changes.push(Change::WriteBlock(BlockWrite {
        path: path.to_string(),
        role,
        marker: marker.to_string(),
        create: false,
        old: old.lines().map(String::from).collect(),
        new: None,
        sudo,
    }));
}
