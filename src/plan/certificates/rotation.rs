//! `--rotate-keys @ca`: the user CA rotated make-before-break. A new CA is
//! made on the manager beside the old one; every target trusts it beside
//! the old CA; every certificate is signed again with it; each
//! certificate edge is proven with a fresh connection; only then is the
//! new CA put in place (the old pair archived on the manager) and the old
//! CA's lines removed (edits with `after_rotation_of` = [`CA_NODE`]).
//!
//! Planned only when every node was read in this run and nothing else
//! rotates (node keys and the CA go in separate runs): otherwise refused,
//! said on the manager's plan, and nothing of it planned.

use super::*;

/// The rotation of a known user CA.
#[derive(Debug, Clone)]
pub(in crate::plan) struct CaRotation {
    /// Where the new CA is made (`<ca>.trustmesh-new`).
    pub(super) new_path: String,
    /// Where the old pair is archived (`<ca>.old-<tag>`).
    pub(super) aside_path: String,
    pub(super) fingerprint: String,
    /// The new CA an earlier rotation left (`<ca>.trustmesh-new`),
    /// trustmesh's own: moved aside first, its lines (if a target still
    /// has one) kept until the new CA is proven, then removed with the
    /// old CA's.
    pub(in crate::plan) leftover: Option<super::super::leftovers::Leftover>,
}

/// The comment trustmesh gives the user CA of `cluster`.
pub(super) fn ca_comment(cluster: &str) -> String {
    format!("trustmesh-ca:{cluster}")
}

/// What an earlier rotation left beside the user CA on the manager.
fn leftover(
    inv: &Inventory,
    live: &LiveState,
) -> Result<Option<super::super::leftovers::Leftover>, String> {
    let files = NodeFiles::of(inv, Inventory::MANAGER);
    match (live.account(Inventory::MANAGER), &files.user_ca) {
        (Some(acc), Some((_, ca))) => {
            super::super::leftovers::find(acc, ca, &ca_comment(&inv.cluster))
        }
        _ => Ok(None),
    }
}

impl CaRotation {
    pub(super) fn new(inv: &Inventory, live: &LiveState, ca: &str, base64: &str) -> CaRotation {
        let fingerprint = kh::fingerprint_sha256(base64).unwrap_or_default();
        CaRotation {
            leftover: leftover(inv, live).ok().flatten(),
            new_path: format!("{ca}{}", super::super::rotation::NEW_KEY_SUFFIX),
            aside_path: format!(
                "{ca}.old-{}",
                super::super::rotation::aside_tag(&fingerprint)
            ),
            fingerprint,
        }
    }
}

/// Why `--rotate-keys @ca` is not planned in this run, if it is asked and
/// cannot be: an ssh-agent holds the CA, the CA does not exist yet, the
/// run is limited, node keys rotate in the same run, a node was not read,
/// or a certificate's source has no shell for its proofs.
pub(super) fn refusal(
    inv: &Inventory,
    graph: &TrustGraph,
    live: &LiveState,
    scope: &PlanScope,
    ca: &CaState,
) -> Option<RotationRefused> {
    if !scope.rotate_ca {
        return None;
    }
    let said = |why: String| {
        format!("the user CA is not rotated: {why}; nothing is planned for its rotation")
    };
    if let Some(c) = inv.certificates.as_ref().filter(|c| c.agent.is_some()) {
        let (why, hint) = super::agent::no_rotation(c);
        return Some(RotationRefused::new(said(why), Vec::new(), Some(hint)));
    }
    let why = match ca {
        CaState::Known(..) | CaState::Rotating(..) => {
            if scope.limit.is_some() {
                "this run is limited to some nodes, and every certificate is signed again and proven".into()
            } else if !scope.rotate.is_empty() {
                "node keys rotate in this run: rotate the CA in a run of its own".into()
            } else if let Err(why) = leftover(inv, live) {
                why
            } else if let Some(n) = live
                .nodes
                .iter()
                .position(|n| !matches!(n, NodeState::Read { .. }))
            {
                format!(
                    "{} was not read, and every certificate edge is proven",
                    inv.nodes[n].name
                )
            } else if let Some(s) = (0..inv.nodes.len()).find(|&s| {
                !super::super::has_shell(&inv.nodes[s])
                    && graph
                        .outgoing(s)
                        .any(|e| inv.is_certificate_edge(s, e.target))
            }) {
                format!(
                    "{} is reached over SFTP only, and its certificate's proofs run ssh there",
                    inv.nodes[s].name
                )
            } else {
                return None;
            }
        }
        CaState::Pending => "it does not exist yet: it is created, not rotated".into(),
        CaState::Unusable(why) => why.clone(),
        CaState::Blocked(_, f) => f.reason.clone(),
        CaState::Agent(..) => "an ssh-agent holds it".into(),
        CaState::Off => "certificates are off".into(),
    };
    Some(RotationRefused::new(said(why), Vec::new(), None))
}

impl Ctx<'_> {
    /// The manager's change of a CA rotation, with every certificate edge
    /// its proofs try (`source -> target`, sources in inventory order).
    pub(super) fn ca_rotation(&self, path: &str, r: &CaRotation) -> Change {
        let mut proofs = Vec::new();
        for s in 0..self.inv.nodes.len() {
            let mut targets: Vec<NodeId> = self
                .graph
                .outgoing(s)
                .filter(|e| !self.expired(s, e.target))
                .filter(|e| !self.inv.edge_principals(s, e.target).is_empty())
                .map(|e| e.target)
                .collect();
            targets.sort_unstable();
            targets.dedup();
            proofs.extend(targets.into_iter().map(|t| {
                (
                    self.inv.nodes[s].name.clone(),
                    self.inv.nodes[t].name.clone(),
                )
            }));
        }
        Change::RotateUserCa {
            path: path.to_string(),
            new_path: r.new_path.clone(),
            aside_path: r.aside_path.clone(),
            comment: ca_comment(&self.inv.cluster),
            old_fingerprint: r.fingerprint.clone(),
            proofs,
        }
    }

    /// The old CA's lines among the lines `kept` in a target's
    /// authorized_keys, removed once the new CA is proven everywhere.
    pub(in crate::plan) fn ca_retired_lines(
        &self,
        path: &str,
        file: &AuthorizedKeysFile,
        kept: &[usize],
    ) -> Option<Change> {
        let CaState::Rotating(t, b, r) = self.ca else {
            return None;
        };
        let remove: Vec<(usize, String)> = file
            .keys()
            .filter(|(i, k)| {
                kept.contains(i)
                    && cert::is_authority(k.options())
                    && ((k.key_type() == &**t && k.base64() == &**b) || r.is_leftover(k.base64()))
                    && k.marker().is_some_and(|m| self.owner(m) != Owner::Foreign)
            })
            .map(|(i, _)| (i, super::super::authorized_keys::text_at(file, i)))
            .collect();
        (!remove.is_empty()).then(|| {
            Change::EditFile(FileEdit {
                path: path.to_string(),
                file: FileRole::AuthorizedKeys,
                create: false,
                kept: Vec::new(),
                remove,
                remove_on_request: Vec::new(),
                adopt: Vec::new(),
                add: Vec::new(),
                after_rotation_of: Some(CA_NODE.into()),
            })
        })
    }
}

impl CaRotation {
    /// Is `base64` the key of the new CA an earlier rotation left?
    pub(super) fn is_leftover(&self, base64: &str) -> bool {
        self.leftover.as_ref().is_some_and(|l| &*l.key.1 == base64)
    }

    /// The leftover's move aside, saying where its key is still trusted.
    pub(super) fn move_leftover(&self, inv: &Inventory, live: &LiveState) -> Option<Change> {
        let l = self.leftover.as_ref()?;
        let trusted: Vec<&str> = (0..inv.nodes.len())
            .filter(|&id| {
                let ak = NodeFiles::of(inv, id).authorized_keys;
                live.account(id)
                    .and_then(|a| a.file(&ak)?.content.as_deref())
                    .is_some_and(|c| String::from_utf8_lossy(c).contains(&*l.key.1))
            })
            .map(|id| inv.nodes[id].name.as_str())
            .collect();
        let why = if trusted.is_empty() {
            "it is trusted nowhere".to_string()
        } else {
            format!(
                "{} still trust it: those lines stay until the new CA is proven, then go with the old CA's",
                trusted.join(", ")
            )
        };
        Some(l.move_aside(why))
    }
}
