//! `--rotate-keys`: which keys are rotated in this run, and the rotation's
//! change; the keys a rotation retired, recognised on later plans.
//!
//! A rotation removes the old key's lines everywhere once the new key is
//! proven, so it is planned only when the new key can be proven on every
//! node the key opens: each one in scope (`--limit`), read, not blocked,
//! with a shell for the proof. Anything less is refused for that node
//! ([`RotationRefused`], nothing planned for it): with `--limit`, a
//! rotation of the manager needs every node.
//!
//! A rotation moves the old pair aside on its node
//! (`<key>.old-<fingerprint tag>`); the `.pub` there names a retired key,
//! and so does the new pair of a rotation whose proof failed
//! (`<key>.trustmesh-new`, never put in place).
//! When the removal of its old lines did not happen (a conflict, a node
//! down), a later plan still removes them: the manager's retired keys are
//! read from those asides ([`retired_keys`]), and a line marked as the
//! manager's with such a key is this cluster's own old line, not another
//! operator's key.

use super::*;
use crate::output::hints;

/// Whose key is rotated in this run, and why each other node that
/// `--rotate-keys` names is not.
pub(super) struct Rotations {
    pub(super) rotating: Vec<bool>,
    pub(super) refused: Vec<Option<RotationRefused>>,
}

/// The first judgement, before any node is planned: the node itself, its
/// key, and every node its key opens.
pub(super) fn eligible(
    inv: &Inventory,
    graph: &TrustGraph,
    live: &LiveState,
    scope: &PlanScope,
    keys: &[KeyState],
    files: &[NodeFiles],
) -> Rotations {
    let n = inv.nodes.len();
    let mut out = Rotations {
        rotating: vec![false; n],
        refused: vec![None; n],
    };
    for &id in &scope.rotate {
        if id >= n || !scope.contains(id) {
            // Outside --limit: not planned at all (the command line says
            // so before anything is read).
            continue;
        }
        let name = &inv.nodes[id].name;
        if !has_shell(&inv.nodes[id]) {
            out.refused[id] = Some(RotationRefused::new(
                format!(
                    "{name}'s key is not rotated: a rotation runs shell scripts on {name}, which is reached \
                     over SFTP only"
                ),
                Vec::new(),
                None,
            ));
            continue;
        }
        if !matches!(keys[id], KeyState::Known { .. }) {
            out.refused[id] = Some(RotationRefused::new(
                format!(
                    "{name}'s key is not rotated: it has no key pair that could be read (a missing key is \
                     generated, not rotated)"
                ),
                Vec::new(),
                None,
            ));
            continue;
        }
        // A new pair an earlier rotation left there that is not its own.
        let left = live
            .account(id)
            .map(|a| super::leftovers::find(a, &files[id].key, &inv.marker(name)));
        if let Some(Err(why)) = left {
            out.refused[id] = Some(RotationRefused::new(
                format!("{name}'s key is not rotated: {why}"),
                Vec::new(),
                None,
            ));
            continue;
        }
        let missing = unprovable(inv, graph, live, scope, id, &|_| false);
        if !missing.is_empty() {
            out.refused[id] = Some(refusal(inv, id, missing));
            continue;
        }
        out.rotating[id] = true;
    }
    out
}

/// After a first planning: a node the key opens that turned out blocked
/// cannot take the new key, so the rotation is refused. True when a
/// rotation was refused (the nodes are planned again without it).
pub(super) fn refuse_blocked(
    inv: &Inventory,
    graph: &TrustGraph,
    live: &LiveState,
    scope: &PlanScope,
    planned: &[NodePlan],
    rot: &mut Rotations,
) -> bool {
    let blocked = |t: NodeId| {
        planned
            .iter()
            .any(|p| p.node == inv.nodes[t].name && matches!(p.status, NodeStatus::Blocked(_)))
    };
    let mut changed = false;
    for id in 0..rot.rotating.len() {
        if !rot.rotating[id] {
            continue;
        }
        let missing = unprovable(inv, graph, live, scope, id, &blocked);
        if !missing.is_empty() {
            rot.rotating[id] = false;
            rot.refused[id] = Some(refusal(inv, id, missing));
            changed = true;
        }
    }
    changed
}

/// The nodes `id`'s key opens where a new key could not be proven, each
/// with why, in inventory order.
fn unprovable(
    inv: &Inventory,
    graph: &TrustGraph,
    live: &LiveState,
    scope: &PlanScope,
    id: NodeId,
    blocked: &dyn Fn(NodeId) -> bool,
) -> Vec<(NodeId, Unprovable)> {
    let mut targets: Vec<NodeId> = graph.outgoing(id).map(|e| e.target).collect();
    targets.sort_unstable();
    targets.dedup();
    targets
        .into_iter()
        .filter_map(|t| {
            let why = if !scope.contains(t) {
                Unprovable::NotInScope
            } else if !has_shell(&inv.nodes[t]) {
                Unprovable::SftpOnly
            } else {
                match live.nodes.get(t) {
                    Some(NodeState::Read { .. }) if blocked(t) => Unprovable::Blocked,
                    Some(NodeState::Read { .. }) => return None,
                    Some(NodeState::Unreachable { .. }) => Unprovable::Unreachable,
                    Some(NodeState::Skipped { .. }) | None => Unprovable::NotRead,
                }
            };
            Some((t, why))
        })
        .collect()
}

fn refusal(inv: &Inventory, id: NodeId, why: Vec<(NodeId, Unprovable)>) -> RotationRefused {
    let name = &inv.nodes[id].name;
    let limited = why.iter().any(|(_, w)| *w == Unprovable::NotInScope);
    let hint = if limited {
        Hint::RotateWithoutLimit {
            manager: id == Inventory::MANAGER,
        }
    } else {
        Hint::text("bring those nodes back (or take them out of the inventory) and rotate again")
    };
    let missing: Vec<String> = why
        .iter()
        .map(|(t, w)| format!("{} ({})", inv.nodes[*t].name, hints::unprovable(*w)))
        .collect();
    let reason = format!(
        "{name}'s key is not rotated: the old key is removed only once the new one is proven on every \
         node it opens, and this run cannot prove it on {}; nothing is planned for the rotation",
        missing.join(", ")
    );
    RotationRefused::new(reason, missing, Some(hint))
}

/// The rotation of `id`'s key, named after the old key (the same on
/// every plan of it), after the move aside of what an earlier rotation
/// left.
pub(super) fn rotate_changes(
    ctx: &Ctx<'_>,
    id: NodeId,
    key_path: String,
    base64: &str,
) -> Vec<Change> {
    let left = ctx.live.account(id).and_then(|a| {
        super::leftovers::find(a, &ctx.files[id].key, &ctx.markers[id])
            .ok()
            .flatten()
    });
    let moved = left.map(|l| {
        l.move_aside("its lines, if any are left, are removed like a retired key's".to_string())
    });
    moved
        .into_iter()
        .chain([rotate_change(ctx, id, key_path, base64)])
        .collect()
}

fn rotate_change(ctx: &Ctx<'_>, id: NodeId, key_path: String, base64: &str) -> Change {
    let fp = kh::fingerprint_sha256(base64).unwrap_or_default();
    let mut targets: Vec<String> = ctx
        .graph
        .outgoing(id)
        .map(|e| ctx.inv.nodes[e.target].name.clone())
        .collect();
    targets.sort();
    targets.dedup();
    Change::RotateKey {
        new_path: format!("{key_path}{NEW_KEY_SUFFIX}"),
        aside_path: format!("{key_path}.old-{}", aside_tag(&fp)),
        path: key_path,
        key_type: ctx.inv.nodes[id].key_type.keygen_name().into(),
        old_fingerprint: fp,
        targets,
    }
}

/// A rotation's new key (or CA) beside the old: `<key>.trustmesh-new`.
pub const NEW_KEY_SUFFIX: &str = ".trustmesh-new";

/// The tag of an aside: the first eight letters and digits of the old
/// key's SHA256 fingerprint.
pub fn aside_tag(fingerprint: &str) -> String {
    fingerprint
        .trim_start_matches("SHA256:")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect()
}

/// Is `name` the public half of a key of `key`'s that is not in use (both
/// named as the probe names files: relative to `~/.ssh`, or absolute): an
/// aside a rotation left (`<key>.old-<tag>.pub`), or the new key of a
/// rotation that stopped before its swap (`<key>.trustmesh-new.pub`, its
/// proof failed)? Lines of such keys marked as the node's are removed.
pub fn is_aside_public(key: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(key) else {
        return false;
    };
    rest == ".trustmesh-new.pub"
        || rest
            .strip_prefix(".old-")
            .and_then(|rest| rest.strip_suffix(".pub"))
            .is_some_and(|tag| !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The keys a rotation retired on this node: the public halves of the
/// asides read with its files, the current key left out.
pub(super) fn retired_keys(
    acc: &LiveAccount,
    files: &NodeFiles,
    current: &KeyState,
) -> Vec<(Arc<str>, Arc<str>)> {
    let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    for f in &acc.files {
        if !is_aside_public(&files.key, &f.name) {
            continue;
        }
        let Some(text) = f
            .content
            .as_deref()
            .and_then(|c| std::str::from_utf8(c).ok())
        else {
            continue;
        };
        let Some(PublicKey {
            key_type: t,
            base64: b,
        }) = PublicKey::parse(text)
        else {
            continue;
        };
        let is_current = matches!(current, KeyState::Known { base64, .. } if &**base64 == b);
        if !is_current && !out.iter().any(|(_, ob)| &**ob == b) {
            out.push((t.into(), b.into()));
        }
    }
    out
}
