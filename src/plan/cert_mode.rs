//! Certificate mode at scale, and in mixed clusters.
//!
//! **Scale.** In certificate mode a mesh group costs each member a constant
//! number of lines: one `cert-authority` line names the group, one
//! `@cert-authority` line trusts every host certificate. The planner must
//! then not walk a group's n × (n − 1) edges either. When every
//! certificate edge of a mesh entry is alike (no `expires:`, so no edge
//! ends on its own, and no `restrict_source`, so no line names its
//! source's address), one certificate member of a group entry stands for
//! all of them; only the members that need a line each are walked: those
//! that keep plain key lines (for `authorized_keys`), and those that keep
//! pinned host keys (for `known_hosts`). Entries of names, and inventories
//! with `expires:` or `restrict_source`, are walked edge by edge as before.
//!
//! **Mixed clusters.** A node whose sshd cannot take user certificates
//! (not OpenSSH, e.g. dropbear, which ignores `cert-authority` lines, or an
//! OpenSSH older than [`MIN_OPENSSH`]) keeps plain key lines as if it had
//! `certificates: false`, and the plan says which and why. What the sshd
//! is comes from the probe ([`LiveAccount::sshd_version`]); a node that did
//! not say is taken as able.

use super::*;

/// The oldest OpenSSH whose sshd takes trustmesh's user certificates:
/// `cert-authority` with `principals=` came in 5.6, Ed25519 keys and
/// certificates (the CA trustmesh makes) in 6.5.
pub const MIN_OPENSSH: (u32, u32) = (6, 5);

/// What a node's sshd said it is, as the certificate mode reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshdKind {
    /// OpenSSH `major.minor`.
    OpenSsh(u32, u32),
    /// Another server (its name as it gives it: `dropbear`, ...).
    Other(String),
}

/// Read a server's software version: the `SSH-2.0-…` identification line,
/// its software part (`OpenSSH_9.2p1 Debian-2`, `dropbear_2022.83`), or
/// what `sshd -V` or `dropbear -V` print (`OpenSSH_8.4p1, OpenSSL …`,
/// `Dropbear v2022.83`). `None`: nothing recognisable.
pub fn sshd_kind(version: &str) -> Option<SshdKind> {
    let v = version.trim();
    let v = v
        .strip_prefix("SSH-2.0-")
        .or_else(|| v.strip_prefix("SSH-1.99-"))
        .unwrap_or(v);
    if let Some(rest) = v.strip_prefix("OpenSSH_") {
        let mut parts = rest.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        return Some(SshdKind::OpenSsh(major, minor));
    }
    let name: String = v
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (!name.is_empty()).then(|| SshdKind::Other(name.to_ascii_lowercase()))
}

/// Why an sshd that said `version` cannot take user certificates, if it
/// cannot.
pub fn certificates_refused(version: &str) -> Option<String> {
    match sshd_kind(version)? {
        SshdKind::OpenSsh(major, minor) if (major, minor) < MIN_OPENSSH => Some(format!(
            "its sshd is OpenSSH {major}.{minor}, older than {}.{} (cert-authority lines with principals and Ed25519 certificates)",
            MIN_OPENSSH.0, MIN_OPENSSH.1
        )),
        SshdKind::OpenSsh(..) => None,
        SshdKind::Other(name) => Some(format!(
            "its sshd is {name}, not OpenSSH: it does not honour cert-authority lines"
        )),
    }
}

/// The certificate mode of one plan, decided once.
pub(super) struct CertMode {
    /// Per node: why its sshd cannot take certificates (with
    /// `certificates:` on only).
    pub unable: Vec<Option<String>>,
    /// Per mesh entry: its members that keep plain key lines.
    plain_members: Vec<Vec<NodeId>>,
    /// Per mesh entry: up to two of its certificate-mode members (one of
    /// them is not the node asking).
    cert_members: Vec<Vec<NodeId>>,
    /// Per mesh entry: its members that keep pinned host keys (all of
    /// them when host_certificates serves nobody).
    pinned_members: Vec<Vec<NodeId>>,
    /// Every certificate edge of a group entry is alike (see the module).
    uniform: bool,
}

impl CertMode {
    pub(super) fn new(
        inv: &Inventory,
        graph: &TrustGraph,
        live: &LiveState,
        host_certs: &host_certificates::HostCertPlan,
    ) -> CertMode {
        let n = inv.nodes.len();
        let unable: Vec<Option<String>> = (0..n)
            .map(|id| {
                inv.certificates.as_ref()?;
                let v = live.account(id)?.sshd_version.as_deref()?;
                certificates_refused(v)
            })
            .collect();
        let plain = |m: NodeId| {
            inv.certificates
                .as_ref()
                .is_none_or(|c| c.plain.get(m).copied().unwrap_or(true))
                || unable[m].is_some()
        };
        let entries = 0..inv.mesh.len();
        let members = |i: usize| graph.mesh_members(i).iter().copied();
        CertMode {
            plain_members: entries
                .clone()
                .map(|i| members(i).filter(|&m| plain(m)).collect())
                .collect(),
            cert_members: entries
                .clone()
                .map(|i| members(i).filter(|&m| !plain(m)).take(2).collect())
                .collect(),
            pinned_members: entries
                .map(|i| members(i).filter(|&m| !host_certs.serves(m)).collect())
                .collect(),
            uniform: inv.expiry.is_empty() && !inv.options.restrict_source,
            unable,
        }
    }
}

impl Ctx<'_> {
    /// Whether `source -> target` is a certificate edge in this plan: the
    /// inventory says so and both sshds take certificates.
    pub(super) fn cert_edge(&self, source: NodeId, target: NodeId) -> bool {
        self.inv.is_certificate_edge(source, target)
            && self.cert_mode.unable[source].is_none()
            && self.cert_mode.unable[target].is_none()
    }

    /// [`Inventory::edge_principals`], empty unless [`Self::cert_edge`].
    pub(super) fn edge_principals(&self, source: NodeId, target: NodeId) -> Vec<String> {
        if !self.cert_edge(source, target) {
            return Vec::new();
        }
        self.inv.edge_principals(source, target)
    }

    /// The mesh entry `i`'s members that `id`'s certificate edges need
    /// walked: one other certificate member stands for a group entry's
    /// edges when they are alike (`by_name`: an entry of names needs
    /// every member, each its own principal).
    fn cert_peers(&self, id: NodeId, i: usize, by_name: bool) -> Vec<NodeId> {
        let group = self
            .inv
            .certificates
            .as_ref()
            .is_some_and(|c| c.mesh_groups.get(i).is_some_and(Option::is_some));
        if self.cert_mode.uniform && (group || !by_name) {
            return self.cert_mode.cert_members[i]
                .iter()
                .copied()
                .filter(|&m| m != id)
                .take(1)
                .collect();
        }
        self.graph
            .mesh_members(i)
            .iter()
            .copied()
            .filter(|&m| m != id)
            .collect()
    }

    /// The targets of `id`'s outgoing edges its certificate's principals
    /// come from (see [`Self::cert_peers`]).
    pub(super) fn cert_targets(&self, id: NodeId) -> Vec<NodeId> {
        self.direct_and_mesh(id, true, |i| self.cert_peers(id, i, false))
    }

    /// The sources of `id`'s incoming edges its `cert-authority` lines come
    /// from (see [`Self::cert_peers`]).
    pub(super) fn cert_sources(&self, id: NodeId) -> Vec<NodeId> {
        self.direct_and_mesh(id, false, |i| self.cert_peers(id, i, true))
    }

    /// The sources of `id`'s incoming edges that may need a key line each:
    /// all of them when `id` keeps plain key lines, else only the members
    /// of its mesh entries that do.
    pub(super) fn plain_sources(&self, id: NodeId) -> Vec<NodeId> {
        let on = self.inv.certificates.is_some();
        if !on || self.cert_edges_refused(id) {
            return self.graph.incoming(id).map(|e| e.source).collect();
        }
        self.direct_and_mesh(id, false, |i| {
            let m = &self.cert_mode.plain_members[i];
            m.iter().copied().filter(|&m| m != id).collect()
        })
    }

    /// The targets of `id`'s outgoing edges that may need host key lines:
    /// with host certificates, the manager pins every host, a worker only
    /// those that do not serve a certificate.
    pub(super) fn host_targets(&self, id: NodeId) -> Vec<NodeId> {
        if id == Inventory::MANAGER || self.host_certs.ca_names.is_none() {
            return self.graph.outgoing(id).map(|e| e.target).collect();
        }
        self.direct_and_mesh(id, true, |i| {
            let m = &self.cert_mode.pinned_members[i];
            m.iter().copied().filter(|&m| m != id).collect()
        })
    }

    /// `id` keeps plain key lines: `certificates: false`, or an sshd that
    /// cannot take certificates.
    fn cert_edges_refused(&self, id: NodeId) -> bool {
        self.cert_mode.unable[id].is_some()
            || self
                .inv
                .certificates
                .as_ref()
                .is_some_and(|c| c.plain.get(id).copied().unwrap_or(true))
    }

    /// The other ends of `id`'s forward and reverse edges (`outgoing`: its
    /// targets, else its sources), then what `mesh` picks of each of its
    /// mesh entries.
    fn direct_and_mesh(
        &self,
        id: NodeId,
        outgoing: bool,
        mesh: impl Fn(usize) -> Vec<NodeId>,
    ) -> Vec<NodeId> {
        let mut out: Vec<NodeId> = self
            .graph
            .direct(id, outgoing)
            .map(|e| if outgoing { e.target } else { e.source })
            .collect();
        for &i in self.graph.mesh_entries(id) {
            out.extend(mesh(i));
        }
        out
    }
}

/// The plan's note on the nodes whose sshd keeps them on plain key lines.
pub(super) fn notes(inv: &Inventory, mode: &CertMode) -> Vec<String> {
    inv.nodes
        .iter()
        .zip(&mode.unable)
        .filter_map(|(n, why)| {
            Some(format!(
                "certificates: {} keeps plain key lines: {}",
                n.name,
                why.as_deref()?
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_a_banner_or_the_servers_own_words() {
        for (v, kind) in [
            (
                "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
                SshdKind::OpenSsh(9, 2),
            ),
            (
                "OpenSSH_5.3p1, OpenSSL 1.0.1e-fips 11 Feb 2013",
                SshdKind::OpenSsh(5, 3),
            ),
            ("OpenSSH_10.0", SshdKind::OpenSsh(10, 0)),
            (
                "SSH-2.0-dropbear_2022.83",
                SshdKind::Other("dropbear".into()),
            ),
            ("Dropbear v2020.81", SshdKind::Other("dropbear".into())),
        ] {
            assert_eq!(sshd_kind(v), Some(kind), "{v}");
        }
        assert_eq!(sshd_kind("   "), None);
        assert!(certificates_refused("OpenSSH_6.4p1").is_some());
        assert!(certificates_refused("OpenSSH_6.5").is_none());
        assert!(certificates_refused("SSH-2.0-OpenSSH_9.2p1").is_none());
        let why = certificates_refused("SSH-2.0-dropbear_2022.83").unwrap();
        assert!(why.contains("dropbear"), "{why}");
        assert!(certificates_refused("").is_none());
    }
}
