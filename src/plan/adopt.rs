//! Lines trustmesh did not write that already grant a wanted edge (a
//! cluster set up by hand with `ssh-copy-id` and `ssh-keyscan`): reported
//! as such, never changed, unless `--adopt` takes them over. An adopted
//! line keeps its key, its options and its place; only its comment becomes
//! the marker (and, in `authorized_keys`, the edge's policy is merged into
//! its options as for trustmesh's own lines), so that prune, rotation and
//! expiry manage it from then on. Other lines granting the same edge the
//! same way are removed, the first one kept.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::authorized_keys::text_at;
use super::*;
use crate::formats::lines::{LineFile, LineKind};

/// A wanted edge already granted by a line trustmesh did not write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandWritten {
    pub path: String,
    pub file: FileRole,
    /// The line's index in the file (from 0, as in a [`FileEdit`]).
    pub index: usize,
    /// The node whose key (or host key) the line holds.
    pub node: Arc<str>,
    /// The line as it is.
    pub text: String,
}

/// `--adopt`: a line trustmesh did not write, taken over in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Adoption {
    /// The line's index in the file (from 0).
    pub index: usize,
    /// The line as it is.
    pub old: String,
    /// The line as it will be: the same key (and host names, or options
    /// with the edge's policy merged in), the marker as its comment.
    pub new: String,
    /// The node whose key (or host key) the line holds.
    pub node: Arc<str>,
    /// The comment the line had (`alice@manager`), `None` when it had none.
    pub old_comment: Option<String>,
    /// Other lines granting the same edge the same way: removed, the first
    /// one (this) kept in its place. (line index, text)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplicates: Vec<(usize, String)>,
}

/// The adoptions of one file being planned, and its lines trustmesh did
/// not write by key (built on first use, so that finding the lines of
/// every wanted key does not scan the whole file each time).
#[derive(Default)]
pub(super) struct Adopting<'f> {
    pub(super) lines: Vec<Adoption>,
    by_key: Option<HashMap<(&'f str, &'f str), Vec<usize>>>,
}

impl<'f> Adopting<'f> {
    /// The indices of the unmanaged lines of `file` holding `key`, in file
    /// order.
    fn holding<K: LineKind>(
        &mut self,
        file: &'f LineFile<K>,
        key_of: for<'a> fn(&'a K::Record) -> Option<(&'a str, &'a str)>,
        key: (&str, &str),
    ) -> Vec<usize> {
        let index = self.by_key.get_or_insert_with(|| {
            let mut m: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
            for (i, l) in file.lines().iter().enumerate() {
                if l.marker().is_some() {
                    continue;
                }
                if let Some(k) = l.kind().record().and_then(key_of) {
                    m.entry(k).or_default().push(i);
                }
            }
            m
        });
        // Shared now: the keys' lifetime may shrink to the one looked up.
        let index: &HashMap<(&str, &str), Vec<usize>> = index;
        index.get(&key).cloned().unwrap_or_default()
    }
}

fn ak_key(k: &crate::formats::authorized_keys::KeyLine) -> Option<(&str, &str)> {
    (!cert_authority(k.options())).then(|| k.key_id())
}

fn kh_key(e: &HostEntry) -> Option<(&str, &str)> {
    e.annotation().is_none().then(|| e.key_id())
}

/// Whether line `i` is already taken over (or removed) by an adoption.
fn taken(adopt: &[Adoption], i: usize) -> bool {
    adopt
        .iter()
        .any(|a| a.index == i || a.duplicates.iter().any(|(d, _)| *d == i))
}

/// An `authorized_keys` options field that makes the key a certificate
/// authority: such a line does not let the key itself in.
fn cert_authority(options: Option<&str>) -> bool {
    options.is_some_and(|o| {
        crate::formats::key_options::split(o)
            .iter()
            .any(|x| x.trim().eq_ignore_ascii_case("cert-authority"))
    })
}

impl Ctx<'_> {
    /// `src`'s key (`kt`, `b64`) in lines of `id`'s authorized_keys that
    /// trustmesh did not write: reported, or adopted with `--adopt`. False
    /// when no such line holds it (another cluster's line does).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hand_written_key<'f>(
        &self,
        (id, src): (NodeId, NodeId),
        file: &'f AuthorizedKeysFile,
        path: &str,
        (kt, b64): (&str, &str),
        plan: &mut NodePlan,
        adopting: &mut Adopting<'f>,
    ) -> bool {
        let lines: Vec<(usize, &crate::formats::authorized_keys::KeyLine)> = adopting
            .holding(file, ak_key, (kt, b64))
            .into_iter()
            .filter_map(|i| file.lines()[i].key().map(|k| (i, k)))
            .collect();
        let adopt = &mut adopting.lines;
        let Some(&(first, k)) = lines.first() else {
            return false;
        };
        if taken(adopt, first) {
            return true;
        }
        let name = &self.inv.nodes[src].name;
        let policy = self.inv.policy(src, id);
        if self.scope.adopt {
            let merged = self.line_options(src, id, k.options());
            if merged.lifted.is_empty() {
                for o in &merged.dropped {
                    plan.warnings.push(format!(
                        "{path}: the option `{o}` on {name}'s line written by hand conflicts with its edge's \
                         policy ({}): it is left out when the line is adopted",
                        policy.describe()
                    ));
                }
                let new = crate::formats::authorized_keys::managed_line_with(
                    merged.options.as_deref(),
                    kt,
                    b64,
                    &self.markers[src],
                );
                adopt.push(adoption(file, &lines, new, &self.names[src]));
                return true;
            }
            plan.warnings.push(format!(
                "{path}: {name}'s line written by hand has `{}`, a restriction the edge's policy ({}) does not \
                 ask for: not adopted, since trustmesh would lift it; change the inventory's policy or the line",
                merged.lifted.join(","),
                policy.describe()
            ));
        } else if !policy.is_open() {
            plan.warnings.push(format!(
                "{path}: {name}'s key is let in by a line trustmesh did not write, so the edge's policy ({}) is \
                 not on it; {}",
                policy.describe(),
                Hint::Adopt
            ));
        }
        granted_by_hand(
            plan,
            (path, FileRole::AuthorizedKeys),
            &self.names[src],
            file,
            &lines,
        );
        true
    }

    /// Target `t`'s host key (`kt`, `b64`) trusted under `names` by lines
    /// of a known_hosts that trustmesh did not write: reported, or adopted
    /// with `--adopt` when a line names the host as trustmesh would
    /// (`names`, or hashed with `options.hash_known_hosts`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn hand_written_host_key<'f>(
        &self,
        t: NodeId,
        names: &str,
        file: &'f KnownHostsFile,
        path: &str,
        (kt, b64): (&str, &str),
        plan: &mut NodePlan,
        adopting: &mut Adopting<'f>,
    ) {
        let node = &self.inv.nodes[t];
        let addr = node.target().addr;
        let lines: Vec<(usize, &HostEntry)> = adopting
            .holding(file, kh_key, (kt, b64))
            .into_iter()
            .filter_map(|i| file.lines()[i].entry().map(|e| (i, e)))
            .filter(|(_, e)| e.matches_host(addr, node.port))
            .collect();
        let adopt = &mut adopting.lines;
        if lines.iter().any(|&(i, _)| taken(adopt, i)) {
            return;
        }
        if self.scope.adopt {
            let hash = self.inv.options.hash_known_hosts;
            let same: Vec<(usize, &HostEntry)> = lines
                .iter()
                .copied()
                .filter(|(_, e)| {
                    if hash {
                        e.is_hashed()
                    } else {
                        e.hosts() == names
                    }
                })
                .collect();
            if let Some(&(_, e)) = same.first() {
                let new = kh::managed_line(e.hosts(), kt, b64, &self.markers[t]);
                adopt.push(adoption(file, &same, new, &self.names[t]));
                return;
            }
            if !lines.is_empty() {
                let how = if hash { "hashed" } else { names };
                plan.warnings.push(format!(
                    "{path}: the {kt} host key of {} is trusted by a line trustmesh did not write that names the \
                     host otherwise (not as `{how}` alone): not adopted, and left as it is",
                    node.name
                ));
            }
        }
        granted_by_hand(
            plan,
            (path, FileRole::KnownHosts),
            &self.names[t],
            file,
            &lines,
        );
    }
}

/// Line `lines[0]` of `file` adopted as `new` for `node`; the other
/// `lines`, granting the same edge the same way, removed.
fn adoption<K: LineKind>(
    file: &LineFile<K>,
    lines: &[(usize, &K::Record)],
    new: String,
    node: &Arc<str>,
) -> Adoption {
    let (first, record) = lines[0];
    Adoption {
        index: first,
        old: text_at(file, first),
        new,
        node: node.clone(),
        old_comment: crate::formats::lines::Record::comment(record).map(str::to_string),
        duplicates: lines[1..]
            .iter()
            .map(|&(i, _)| (i, text_at(file, i)))
            .collect(),
    }
}

/// `lines` of `file` (at `path`, in `role`) grant `node`'s edge by hand:
/// shown, not changed.
fn granted_by_hand<K: LineKind, R>(
    plan: &mut NodePlan,
    (path, role): (&str, FileRole),
    node: &Arc<str>,
    file: &LineFile<K>,
    lines: &[(usize, R)],
) {
    for &(i, _) in lines {
        plan.granted_by_hand.push(HandWritten {
            path: path.to_string(),
            file: role,
            index: i,
            node: node.clone(),
            text: text_at(file, i),
        });
    }
}

/// A line planned for adoption is no longer, in the file being edited, the
/// unmanaged line with the same key that was planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {} of the {file} is not the line planned for adoption", .index + 1)]
pub struct AdoptionMismatch {
    /// 0-based.
    pub index: usize,
    /// `authorized_keys` or `known_hosts`.
    pub file: &'static str,
}

/// Before rendering: every adopted line is, in the file being edited, the
/// unmanaged line planned, and its new text holds the same key.
fn check<K: LineKind>(
    file: &LineFile<K>,
    adopt: &[Adoption],
    key: for<'a> fn(&'a K::Record) -> (&'a str, &'a str),
) -> Result<(), AdoptionMismatch> {
    for a in adopt {
        let line = file.lines().get(a.index);
        let same_line = line.is_some_and(|l| l.text() == a.old && l.marker().is_none());
        let old_key = line.and_then(|l| l.kind().record()).map(key);
        let new_kind = K::classify(&a.new);
        let new_key = new_kind.record().map(key);
        if !same_line || old_key.is_none() || old_key != new_key {
            return Err(AdoptionMismatch {
                index: a.index,
                file: K::FILE,
            });
        }
    }
    Ok(())
}

pub(super) fn check_authorized_keys(
    file: &AuthorizedKeysFile,
    adopt: &[Adoption],
) -> Result<(), AdoptionMismatch> {
    check(
        file,
        adopt,
        crate::formats::authorized_keys::KeyLine::key_id,
    )
}

pub(super) fn check_known_hosts(
    file: &KnownHostsFile,
    adopt: &[Adoption],
) -> Result<(), AdoptionMismatch> {
    check(file, adopt, HostEntry::key_id)
}
