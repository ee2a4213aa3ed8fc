//! User certificates (`certificates:`) in the planner: the user CA on the
//! manager, each source's certificate (issue, renew, keep), and the
//! `cert-authority` lines each target's `authorized_keys` gets in place
//! of one line per source key (see
//! [`crate::model::inventory::certificates`] for which edges and which
//! principals).
//!
//! A target gets one `cert-authority,principals="…"` line per distinct
//! edge policy among its incoming certificate edges, the principals of
//! those edges joined, marked as the manager's (the CA is the manager's).
//! The lines name what the sources are (a group, `reverse: all`), so a new
//! member of a group changes nothing on the others. A line whose
//! principals or policy change is rewritten (removed and added in one
//! write), whatever `options.prune` says: it is one line per policy, not
//! a source's line.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::*;
use crate::formats::certificate::{self as cert, CertInfo};
use crate::model::inventory::certificates::format_duration;
use crate::model::inventory::expiry::unix_seconds;

mod agent;
mod rotation;
use rotation::CaRotation;

/// The `node` of a `cert-authority` line whose CA is made in this run: the
/// public key apply generates is looked up under this name.
pub const CA_NODE: &str = "(user CA)";

/// The user CA as the planner sees it.
#[derive(Debug, Clone)]
pub(super) enum CaState {
    /// `certificates:` is off.
    Off,
    /// Its public half, as `<ca>.pub` on the manager holds it.
    Known(Arc<str>, Arc<str>),
    /// Known, and rotated in this run (`--rotate-keys @ca`): certificates
    /// are signed by the new CA, made by apply.
    Rotating(Arc<str>, Arc<str>, CaRotation),
    /// Made by apply (neither half exists).
    Pending,
    /// Its public half, held by the ssh-agent at this socket, which signs
    /// (`certificates: { agent: ... }`).
    Agent(Arc<str>, Arc<str>, String),
    /// Held by an ssh-agent that cannot sign in this run (no socket, no
    /// answer, or it does not hold the CA), its public half when it can
    /// be read: no certificate is signed, and each one due says why.
    Blocked(Option<(Arc<str>, Arc<str>)>, Finding),
    /// Half of it exists, or the manager was not read: nothing signed.
    Unusable(String),
}

impl CaState {
    /// From the manager's live state, rotated if this run asks and can.
    pub(super) fn read(
        inv: &Inventory,
        graph: &TrustGraph,
        live: &LiveState,
        scope: &PlanScope,
    ) -> CaState {
        let ca = CaState::found(inv, live);
        match (&ca, &inv.certificates) {
            (CaState::Known(t, b), Some(c))
                if scope.rotate_ca && rotation::refusal(inv, graph, live, scope, &ca).is_none() =>
            {
                CaState::Rotating(t.clone(), b.clone(), CaRotation::new(inv, live, &c.ca, b))
            }
            _ => ca,
        }
    }

    /// From the manager's live state.
    fn found(inv: &Inventory, live: &LiveState) -> CaState {
        let Some(c) = &inv.certificates else {
            return CaState::Off;
        };
        let files = NodeFiles::of(inv, Inventory::MANAGER);
        let Some((public, private)) = &files.user_ca else {
            return CaState::Off;
        };
        let Some(acc) = live.account(Inventory::MANAGER) else {
            return CaState::Unusable("the manager was not read".into());
        };
        if let Some(a) = &c.agent {
            return agent::state(c, a, acc, public);
        }
        let key = acc.file(private).and_then(|f| f.stat.as_ref());
        let text = acc
            .file(public)
            .and_then(|f| f.content.as_deref())
            .and_then(|c| std::str::from_utf8(c).ok());
        match (key, text.and_then(PublicKey::parse)) {
            (Some(s), Some(k)) if s.kind == FileKind::File => {
                CaState::Known(k.key_type.into(), k.base64.into())
            }
            (None, None) if text.is_none() => CaState::Pending,
            (Some(_), None) => CaState::Unusable(format!(
                "the user CA {} has no readable public half {}.pub: recreate it with `ssh-keygen -y -f {} > {}.pub`",
                c.ca, c.ca, c.ca, c.ca
            )),
            _ => CaState::Unusable(format!(
                "{}.pub exists without the user CA's private key {}: trustmesh does not replace it; move it away to get a new CA",
                c.ca, c.ca
            )),
        }
    }
}

/// A certificate issued (or renewed) for a node by the user CA, signed on
/// the manager and written beside the node's key.
#[derive(Debug, Clone, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CertIssue {
    /// The certificate file (`~/.ssh/id_ed25519-cert.pub`).
    pub path: String,
    /// The public key signed (`~/.ssh/id_ed25519.pub`).
    pub public_key: String,
    /// Its type, and its base64 (`None`: generated in this run, known
    /// after apply): what is signed; only public keys travel.
    pub key_type: Arc<str>,
    pub base64: Option<Arc<str>>,
    /// The user CA's private key on the manager, as the inventory names it
    /// (the new CA's, `<ca>.trustmesh-new`, when the CA is rotated); with
    /// `agent`, its public key.
    pub ca: String,
    /// The CA is held by the ssh-agent at this socket, which signs
    /// (`ssh-keygen -s CA.pub -U`); no private key is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `trustmesh:<cluster>/<node>`.
    pub key_id: String,
    pub principals: Vec<String>,
    /// Seconds it is valid from its signing.
    pub validity: u64,
    pub serial: u64,
    /// Why: `issue`, or the renewal's or re-issue's reason.
    pub reason: String,
    /// Renews or replaces a certificate trustmesh issued.
    pub replaces: bool,
    /// The file does not exist yet (created 0644).
    pub create: bool,
}

/// The same certificate planned, whenever it was planned: a saved plan
/// (`plan --out`) and the fresh one of `apply --plan` differ in the serial
/// (the plan's time) and in how long is left, not in what is signed.
impl PartialEq for CertIssue {
    fn eq(&self, o: &Self) -> bool {
        let kind = |r: &str| r.split(':').next().unwrap_or_default().to_string();
        (
            &self.path,
            &self.public_key,
            &self.key_type,
            &self.base64,
            &self.ca,
        ) == (&o.path, &o.public_key, &o.key_type, &o.base64, &o.ca)
            && (
                &self.key_id,
                &self.principals,
                self.validity,
                self.replaces,
                self.create,
            ) == (&o.key_id, &o.principals, o.validity, o.replaces, o.create)
            && kind(&self.reason) == kind(&o.reason)
            && self.agent.is_some() == o.agent.is_some()
    }
}

impl Ctx<'_> {
    /// The wanted principals of `id`'s certificate: those of every
    /// certificate edge from it that has not ended, in or out of
    /// `--limit` (a certificate is the source's, whatever the run reads).
    fn wanted_principals(&self, id: NodeId) -> Vec<String> {
        let mut p: Vec<String> = self
            .cert_targets(id)
            .into_iter()
            .filter(|&t| !self.expired(id, t))
            .flat_map(|t| self.edge_principals(id, t))
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }

    /// The user CA on the manager, and `id`'s certificate.
    pub(super) fn certificate(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        let Some(c) = &self.inv.certificates else {
            return;
        };
        if id == Inventory::MANAGER {
            match self.ca {
                CaState::Pending => plan.changes.push(Change::CreateUserCa {
                    path: c.ca.clone(),
                    comment: format!("trustmesh-ca:{}", self.inv.cluster),
                }),
                // Not converged while it lasts: the certificate edges the
                // inventory wants do not exist.
                CaState::Unusable(why) => {
                    plan.signing_blocked = Some(Finding::new(
                        "sign",
                        format!(
                            "{why}: no certificate is issued and no node is told to trust the CA"
                        ),
                        None,
                    ))
                }
                CaState::Rotating(_, _, r) => {
                    plan.changes.extend(r.move_leftover(self.inv, self.live));
                    plan.changes.push(self.ca_rotation(&c.ca, r));
                }
                CaState::Blocked(None, f) => plan.signing_blocked = Some(f.clone()),
                _ => {}
            }
            if let Some(r) = rotation::refusal(self.inv, self.graph, self.live, self.scope, self.ca)
            {
                plan.rotation_refused = Some(r);
            }
        }
        let principals = self.wanted_principals(id);
        let Some(mut name) = self.files[id].certificate.clone() else {
            return;
        };
        if principals.is_empty() {
            return;
        }
        let (key_type, mut base64) = match &self.keys[id] {
            KeyState::Known { key_type, base64 } => (key_type.clone(), Some(base64.clone())),
            KeyState::Pending { key_type } => (key_type.clone(), None),
            KeyState::Unknown => return,
        };
        // A rotated key gets its own certificate beside it, before its
        // proofs; the swap puts both in place.
        let rotated = self.rotating[id];
        if rotated {
            name = cert::file_name(&format!(
                "{}{}",
                self.files[id].key,
                super::rotation::NEW_KEY_SUFFIX
            ));
            base64 = None;
        }
        let key = base64.as_deref().map(|b| (&*key_type, b));
        let (ca, ca_path) = match self.ca {
            CaState::Known(t, b) | CaState::Agent(t, b, _) | CaState::Blocked(Some((t, b)), _) => {
                (Some((&**t, &**b)), &c.ca)
            }
            CaState::Pending => (None, &c.ca),
            CaState::Rotating(_, _, r) => (None, &r.new_path),
            _ => return,
        };
        let path = display_path(&name);
        let Ok((mut text, mut stat)) = super::authorized_keys::read_text(acc, &name, &path) else {
            plan.warnings.push(format!(
                "{path} cannot be read as a file: no certificate is issued for {}",
                plan.node
            ));
            return;
        };
        // A rotation's leftover pair moves aside with its certificate
        // first (`leftovers.rs`): the new one is written where none is.
        let marker = &self.markers[id];
        if rotated
            && super::leftovers::find(acc, &self.files[id].key, marker).is_ok_and(|l| l.is_some())
        {
            (text, stat) = (None, None);
        }
        let id_wanted = self.inv.certificate_id(id);
        let now = self.scope.now.map(|t| unix_seconds(t).max(0) as u64);
        let found = text.map(cert::parse);
        let reason = match &found {
            None => Some("issue".to_string()),
            Some(None) => {
                plan.warnings.push(format!(
                    "{path} is not a certificate trustmesh can read: left alone, and no certificate is issued for {}",
                    plan.node
                ));
                return;
            }
            Some(Some(info)) if info.key_id != id_wanted => {
                plan.warnings.push(format!(
                    "{path} holds a certificate trustmesh did not issue (key id `{}`): left alone, and no certificate is issued for {}",
                    info.key_id, plan.node
                ));
                return;
            }
            Some(Some(_)) if rotated => Some("issue: for the rotated key".into()),
            Some(Some(_)) if matches!(self.ca, CaState::Rotating(..)) => {
                Some("re-issue: signed by the new user CA".into())
            }
            Some(Some(info)) => self.reissue(info, key, ca, &principals, now),
        };
        let reason = match reason.as_deref() {
            Some("issue") if rotated => Some("issue: for the rotated key".into()),
            _ => reason,
        };
        let Some(reason) = reason else { return };
        if let CaState::Blocked(_, why) = self.ca {
            plan.signing_blocked = Some(agent::blocked(&plan.node, &reason, why));
            return;
        }
        plan.base.push(FileBase {
            path: path.clone(),
            content: text.map(str::to_string),
        });
        let old_serial = found.flatten().map_or(0, |i| i.serial);
        plan.changes.push(Change::IssueCertificate(CertIssue {
            path,
            public_key: display_path(&self.files[id].public_key),
            key_type: key_type.clone(),
            base64: base64.clone(),
            ca: ca_path.clone(),
            agent: match self.ca {
                CaState::Agent(_, _, socket) => Some(socket.clone()),
                _ => None,
            },
            key_id: id_wanted,
            principals,
            validity: c.validity,
            serial: now.unwrap_or(0).max(old_serial + 1),
            replaces: text.is_some(),
            create: stat.is_none(),
            reason,
        }));
    }

    /// Why trustmesh's own certificate `info` is issued again, if it is.
    fn reissue(
        &self,
        info: &CertInfo,
        key: Option<(&str, &str)>,
        ca: Option<(&str, &str)>,
        principals: &[String],
        now: Option<u64>,
    ) -> Option<String> {
        fn pair((t, b): &(String, String)) -> (&str, &str) {
            (t, b)
        }
        let same = |a: Option<(&str, &str)>, b| a.is_some_and(|a| cert::same_key(a, b));
        if !same(ca, pair(&info.ca)) {
            return Some("re-issue: signed by another CA".into());
        }
        if !same(key, pair(&info.key)) {
            return Some("re-issue: for another key".into());
        }
        if info.principals != principals {
            return Some(format!(
                "re-issue: principals {} -> {}",
                info.principals.join(","),
                principals.join(",")
            ));
        }
        let c = self.inv.certificates.as_ref()?;
        let now = now?;
        if now >= info.valid_before {
            return Some("renew: ended".into());
        }
        // Ends well after a certificate signed now would: `validity` was
        // shortened (a certificate signed a moment after its plan ends
        // a moment later, hence the slack).
        if info.valid_before > now + c.validity + (c.validity / 2).max(300) {
            return Some(format!(
                "re-issue: validity {}",
                format_duration(c.validity)
            ));
        }
        let renew = c.renew_before;
        (now + renew >= info.valid_before).then(|| {
            format!(
                "renew: ends in {}",
                crate::model::inventory::expiry::left((info.valid_before - now) as i64)
            )
        })
    }

    /// The `cert-authority` lines `id`'s authorized_keys must hold: one per
    /// distinct policy of its incoming certificate edges that have not
    /// ended, in or out of `--limit` (a line names what its sources are,
    /// not which of them this run reads). Empty when the CA is not usable.
    pub(super) fn authority_lines(&self, id: NodeId) -> Vec<PlannedLine> {
        let (key_type, base64): (Arc<str>, Option<Arc<str>>) = match self.ca {
            CaState::Known(t, b) | CaState::Agent(t, b, _) | CaState::Blocked(Some((t, b)), _) => {
                (t.clone(), Some(b.clone()))
            }
            // The new CA's, known after apply; the old CA's lines are kept
            // until it is proven ([`Ctx::ca_retired_lines`]).
            CaState::Pending | CaState::Rotating(..) => ("ssh-ed25519".into(), None),
            _ => return Vec::new(),
        };
        let mut by_policy: BTreeMap<Option<String>, Vec<String>> = BTreeMap::new();
        for source in self.cert_sources(id) {
            if self.expired(source, id) {
                continue;
            }
            let p = self.edge_principals(source, id);
            if p.is_empty() {
                continue;
            }
            let policy = self.line_options(source, id, None).options;
            by_policy.entry(policy).or_default().extend(p);
        }
        by_policy
            .into_iter()
            .map(|(policy, mut principals)| {
                principals.sort_unstable();
                principals.dedup();
                PlannedLine {
                    names: None,
                    clear_name: None,
                    fingerprint: None,
                    key_type: key_type.clone(),
                    base64: base64.clone(),
                    node: CA_NODE.into(),
                    marker: self.markers[Inventory::MANAGER].clone(),
                    replaces: false,
                    options: Some(cert::authority_options(&principals, policy.as_deref()).into()),
                }
            })
            .collect()
    }

    /// Whether line `k` of a target's authorized_keys is this cluster's
    /// `cert-authority` line, and if so whether it stays (it is one of
    /// `wanted`, exactly). `None`: not such a line.
    pub(super) fn authority_kept(
        &self,
        k: &crate::formats::authorized_keys::KeyLine,
        marker: crate::formats::lines::Marker<'_>,
        wanted: &[PlannedLine],
    ) -> Option<bool> {
        if !cert::is_authority(k.options()) || self.owner(marker) == Owner::Foreign {
            return None;
        }
        match self.ca {
            CaState::Unusable(_) | CaState::Blocked(None, _) => return Some(true),
            CaState::Rotating(t, b, r)
                if (k.key_type() == &**t && k.base64() == &**b) || r.is_leftover(k.base64()) =>
            {
                return Some(true)
            }
            _ => {}
        }
        Some(wanted.iter().any(|w| {
            w.base64.as_deref() == Some(k.base64())
                && &*w.key_type == k.key_type()
                && w.options.as_deref() == k.options()
                && marker.cluster.is_some()
        }))
    }
}

/// The wanted `cert-authority` lines no kept line holds yet.
pub(super) fn authorities_to_add(
    file: &AuthorizedKeysFile,
    kept: &[usize],
    wanted: Vec<PlannedLine>,
) -> Vec<PlannedLine> {
    wanted
        .into_iter()
        .filter(|w| {
            !file.keys().any(|(i, k)| {
                kept.contains(&i)
                    && w.base64.as_deref() == Some(k.base64())
                    && w.options.as_deref() == k.options()
            })
        })
        .collect()
}

/// The plan's notes on certificates: the agent holding the CA, the nodes
/// that keep plain key lines, and the nodes that left the inventory whose
/// certificates stay valid.
pub(super) fn notes(
    inv: &Inventory,
    nodes: &[NodePlan],
    scope: &PlanScope,
    ca: &CaState,
) -> Vec<String> {
    let Some(c) = &inv.certificates else {
        return Vec::new();
    };
    let mut out: Vec<String> = agent::note(c, ca).into_iter().collect();
    let plain: Vec<&str> = inv
        .nodes
        .iter()
        .zip(&c.plain)
        .filter(|(_, p)| **p)
        .map(|(n, _)| n.name.as_str())
        .collect();
    if !plain.is_empty() {
        out.push(format!(
            "certificates: {} {} plain key lines (certificates: false): no certificate, and {} edges are one key line each",
            plain.join(", "),
            if plain.len() == 1 { "keeps" } else { "keep" },
            if plain.len() == 1 { "its" } else { "their" },
        ));
    }
    let retired = retired_nodes(inv, nodes);
    if !retired.is_empty() {
        let until = match scope.now {
            Some(now) => crate::model::inventory::expiry::Expiry::from_unix(
                unix_seconds(now) + c.validity as i64,
            )
            .to_string(),
            None => format!("{} from its signing", format_duration(c.validity)),
        };
        let groups: Vec<String> = c
            .mesh_groups
            .iter()
            .flatten()
            .map(|g| format!("{}:group:{g}", inv.cluster))
            .chain(c.reverse_all.then(|| format!("{}:reverse", inv.cluster)))
            .collect();
        out.push(format!(
            "certificates: {} left the inventory: {} node principal is removed everywhere, but a certificate trustmesh issued \
             stays valid until {until} at the latest for the group principals it holds ({}) (rotate the CA to end it sooner)",
            retired.join(", "),
            if retired.len() == 1 { "its" } else { "each one's" },
            if groups.is_empty() { "none in this inventory".to_string() } else { groups.join(", ") },
        ));
    }
    out
}

/// The nodes outside the inventory whose lines (plain, host key, or a
/// node principal of a `cert-authority` line) this plan removes.
fn retired_nodes(inv: &Inventory, nodes: &[NodePlan]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let ours = format!("trustmesh:{}/", inv.cluster);
    let principal = format!("{}:node:", inv.cluster);
    let removed = nodes
        .iter()
        .flat_map(|n| &n.changes)
        .filter_map(|c| match c {
            Change::EditFile(e) => Some(&e.remove),
            _ => None,
        });
    for (_, line) in removed.flatten() {
        let mut names: Vec<String> = Vec::new();
        if let Some(n) = line.rsplit(' ').next().and_then(|m| m.strip_prefix(&ours)) {
            names.push(n.to_string());
        }
        if let Some(o) = line
            .split(' ')
            .next()
            .filter(|o| o.contains("cert-authority"))
        {
            names.extend(
                cert::line_principals(o)
                    .iter()
                    .filter_map(|p| p.strip_prefix(&principal).map(str::to_string)),
            );
        }
        for n in names {
            if inv.find(&n).is_none() && !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out.sort();
    out
}
