//! Planning of the `known_hosts` lines a node's outgoing edges need (the
//! index that finds a host's entries in a large `known_hosts` is in
//! `host_index.rs`).

use super::authorized_keys::{push_edit, read_base};
use super::host_index::HostIndex;
use super::*;

/// `type base64 [comment]` lines as `(type, base64)`, each key once.
fn parse_host_keys(lines: &[String]) -> Vec<(Arc<str>, Arc<str>)> {
    let mut out: Vec<(Arc<str>, Arc<str>)> = Vec::new();
    for line in lines {
        if let Some(k) = PublicKey::parse(line) {
            if !out.iter().any(|(_, ob)| **ob == *k.base64) {
                out.push(k.to_arcs());
            }
        }
    }
    out
}

/// The host keys of every node as its peers must trust them: only the ones
/// its sshd proved to trustmesh's own verified connection
/// ([`LiveAccount::proven_host_keys`]), never what its account reports.
/// Nodes on the same address and port are one sshd: when their connections
/// proved different keys, none is written for any of them; a node whose
/// connection proved none takes what another's proved.
pub(super) fn host_keys(inv: &Inventory, live: &LiveState) -> Vec<HostKeys> {
    let n = inv.nodes.len();
    let mut out: Vec<HostKeys> = (0..n)
        .map(|id| match live.account(id) {
            Some(a) => HostKeys::Known(parse_host_keys(&a.proven_host_keys)),
            None => HostKeys::Unknown,
        })
        .collect();
    // Nodes by the sshd they reach, for the few that share one.
    let mut by_host: HashMap<String, Vec<NodeId>> = HashMap::new();
    for (id, node) in inv.nodes.iter().enumerate() {
        if let (Some(addr), HostKeys::Known(_)) = (node.address.as_deref(), &out[id]) {
            by_host
                .entry(kh::host_name(addr, node.port).to_ascii_lowercase())
                .or_default()
                .push(id);
        }
    }
    for (name, ids) in by_host.into_iter().filter(|(_, ids)| ids.len() > 1) {
        let set = |id: NodeId| -> Vec<Arc<str>> {
            let mut v: Vec<Arc<str>> = match &out[id] {
                HostKeys::Known(k) => k.iter().map(|(_, b)| b.clone()).collect(),
                _ => Vec::new(),
            };
            v.sort_unstable();
            v
        };
        let proven: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|&id| !set(id).is_empty())
            .collect();
        let Some(&first) = proven.first() else {
            continue;
        };
        if proven.iter().all(|&id| set(id) == set(first)) {
            let keys = out[first].clone();
            for &id in &ids {
                out[id] = keys.clone();
            }
            continue;
        }
        let names: Vec<&str> = ids.iter().map(|&id| inv.nodes[id].name.as_str()).collect();
        let why: Arc<str> = Arc::from(format!(
            "{} are the same host ({name}), but trustmesh's connections to them proved different host keys: \
             none of them is written; check the host (and what answers on that address) and plan again",
            names.join(", ")
        ));
        for &id in &ids {
            out[id] = HostKeys::Disputed(why.clone());
        }
    }
    out
}

impl Ctx<'_> {
    /// host_certificates: the `@cert-authority` line `id` needs, when one
    /// of its edges goes to a node serving certificates.
    fn ca_line(&self, id: NodeId) -> Option<PlannedLine> {
        let names = self.host_certs.ca_names.clone()?;
        let needed = self
            .graph
            .outgoing(id)
            .any(|e| self.scope.contains(e.target) && self.host_certs.serves(e.target));
        if !needed {
            return None;
        }
        let (key_type, base64) = match self.host_certs.ca_key() {
            Some((t, b)) => (t, Some(b)),
            None => (Arc::from("ssh-ed25519"), None),
        };
        Some(PlannedLine {
            names: Some(names),
            clear_name: None,
            fingerprint: base64
                .as_deref()
                .and_then(kh::fingerprint_sha256)
                .map(Arc::from),
            key_type,
            base64,
            node: Arc::from(super::HOST_CA),
            marker: self.markers[Inventory::MANAGER].clone(),
            replaces: false,
            options: None,
        })
    }

    /// What the node's account reports about its host keys is a hint: a
    /// key its sshd did not prove is written nowhere, and said so here.
    pub(super) fn unproven_host_keys(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        let proven = match &self.host_keys[id] {
            HostKeys::Known(k) => k.clone(),
            HostKeys::Disputed(why) => {
                plan.warnings.push(why.to_string());
                parse_host_keys(&acc.proven_host_keys)
            }
            HostKeys::Unknown => parse_host_keys(&acc.proven_host_keys),
        };
        for (t, b) in parse_host_keys(&acc.host_keys) {
            if proven.iter().any(|(_, pb)| *pb == b) {
                continue;
            }
            plan.warnings.push(format!(
                "unproven host key: the account reports {} ({t}) among the host keys of {}, but its sshd did not \
                 prove it to trustmesh's connection: it is written nowhere (check the host's /etc/ssh, and what \
                 the account runs at login)",
                kh::fingerprint_sha256(&b).unwrap_or_else(|| "an unreadable key".into()),
                self.inv.nodes[id].name
            ));
        }
    }

    /// The outgoing edges of `id`: whose host keys it must know.
    pub(super) fn known_hosts(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        plan: &mut NodePlan,
    ) -> Result<(), Blocker> {
        let (path, text, stat) = read_base(acc, &self.files[id].known_hosts, plan)?;
        let file = KnownHostsFile::parse(text.unwrap_or(""));
        let wanted = self.wanted_hosts(id);
        let ca_line = self.ca_line(id);
        let mut lines = self.triage_entries(id, &file, &wanted, ca_line.as_ref());
        if let Some(t) = lines.ca_kept {
            plan.warnings.push(format!(
                "{path}: the @cert-authority line of the host CA is kept: {} cannot be given its pinned host \
                 keys in this run (not read, not proven, or {}); plan again once it can",
                self.inv.nodes[t].name,
                crate::output::hints::NOT_IN_LIMIT
            ));
        }
        self.retired_unnamed(&path, &mut lines.retired, plan);
        // Usually in order already: the lines were written target by target.
        lines.managed_ok.sort_unstable();
        let mut adopt = super::adopt::Adopting::default();
        // Lines trustmesh did not write, removed on the operator's request.
        let mut on_request: Vec<usize> = Vec::new();
        let mut add = self.host_keys_to_add(
            &file,
            &wanted,
            &lines,
            &path,
            plan,
            &mut adopt,
            &mut on_request,
        );
        on_request.sort_unstable();
        on_request.dedup();
        add.extend(ca_line.filter(|_| !lines.ca_ok));
        push_edit(
            plan,
            (&path, FileRole::KnownHosts, stat.is_none()),
            &file,
            (lines.kept, lines.remove, on_request),
            adopt.lines,
            add,
        );
        if let Some(s) = stat {
            if s.mode & 0o022 != 0 {
                plan.changes.push(Change::Mode {
                    path: path.clone(),
                    from: s.mode,
                    to: s.mode & !0o022,
                });
            }
        }
        Ok(())
    }

    /// What each target of `id`'s edges in scope needs, sorted by node, no
    /// repeats: a target without an address has no line.
    fn wanted_hosts(&self, id: NodeId) -> Vec<(NodeId, Want<'_>)> {
        let mut targets: Vec<NodeId> = self.host_targets(id);
        targets.retain(|&t| self.scope.contains(t));
        targets.sort_unstable();
        targets.dedup();
        targets
            .iter()
            // A host serving certificates is trusted through the CA line
            // (except by the manager, whose pins prove the keys it signs).
            .filter(|&&t| id == Inventory::MANAGER || !self.host_certs.serves(t))
            .filter_map(|&t| {
                let names = self.host_names[t].clone()?;
                let keys = match &self.host_keys[t] {
                    HostKeys::Known(k) => Some(k.as_slice()),
                    HostKeys::Unknown | HostKeys::Disputed(_) => None,
                };
                Some((t, Want { names, keys }))
            })
            .collect()
    }

    /// What becomes of each marked entry of a known_hosts file.
    fn triage_entries<'f>(
        &self,
        id: NodeId,
        file: &'f KnownHostsFile,
        wanted: &[(NodeId, Want)],
        ca_line: Option<&PlannedLine>,
    ) -> HostLines<'f> {
        let mut lines = HostLines::default();
        for (i, e) in file.entries() {
            let Some(marker) = e.marker() else {
                lines.has_unmanaged = true;
                continue;
            };
            // The host CA's line, marked with the manager's marker: kept
            // while it is the one wanted; else replaced by the new one, or
            // dropped once every host it covered gets its pinned keys in
            // the same write (host_certificates turned off).
            if e.annotation() == Some(Annotation::CertAuthority)
                && e.comment() == Some(&*self.markers[Inventory::MANAGER])
            {
                let text = file.lines()[i].text();
                if !lines.ca_ok && ca_line.and_then(|l| l.text()).as_deref() == Some(text) {
                    lines.ca_ok = true;
                    lines.kept.push(i);
                } else if ca_line.is_some() {
                    lines.remove.push(i);
                } else if let Err(t) = self.pins_cover(id) {
                    lines.ca_kept = Some(t);
                    lines.kept.push(i);
                } else {
                    lines.remove.push(i);
                }
                continue;
            }
            let owner = match self.owner(marker) {
                // An annotated line (`@revoked`, `@cert-authority`) made out
                // of a managed one is the admin's now: respected.
                Owner::Node(..) | Owner::Retired if e.annotation().is_some() => Owner::Foreign,
                o => o,
            };
            let keep = match owner {
                Owner::Foreign => {
                    lines.has_unmanaged = true;
                    continue;
                }
                Owner::Retired => {
                    if self.inv.options.prune {
                        lines.retired.push(marker.node);
                    }
                    !self.inv.options.prune
                }
                Owner::Node(o, legacy) => match wanted.binary_search_by_key(&o, |(t, _)| *t) {
                    Ok(at) => match wanted[at].1.keys {
                        Some(keys) => {
                            let ok = !legacy && self.entry_is_right(o, e, &wanted[at].1, keys);
                            if ok {
                                lines.managed_ok.push((at, e.base64()));
                            } else {
                                lines.replaced.insert(o);
                            }
                            ok
                        }
                        None => true,
                    },
                    Err(_) if !self.scope.contains(o) => true,
                    Err(_) => !self.inv.options.prune,
                },
            };
            if keep {
                lines.kept.push(i);
            } else {
                lines.remove.push(i);
            }
        }
        lines
    }

    /// Is `e`, a managed entry for `o`, as trustmesh would write it now: one
    /// of `o`'s keys, under its names in the form
    /// `options.hash_known_hosts` asks for?
    fn entry_is_right(
        &self,
        o: NodeId,
        e: &HostEntry,
        w: &Want,
        keys: &[(Arc<str>, Arc<str>)],
    ) -> bool {
        let node = &self.inv.nodes[o];
        // The names as `options.hash_known_hosts` wants them: in clear, or
        // hashed. A hashed managed line holds the host's name in its hash,
        // whatever its salt (one we wrote, or `ssh-keygen -H`'s): kept as
        // it is.
        let names_ok = if self.inv.options.hash_known_hosts {
            e.is_hashed() && e.matches_host(node.target().addr, node.port)
        } else {
            e.hosts() == &*w.names
        };
        names_ok
            && keys
                .iter()
                .any(|(t, b)| &**t == e.key_type() && &**b == e.base64())
    }

    /// The lines to add for the wanted host keys that no right managed
    /// line holds; the hand-written lines that hold one go to `adopt`
    /// (`--adopt`) or are said, and the stale ones the operator asked to
    /// remove to `on_request`.
    #[allow(clippy::too_many_arguments)]
    fn host_keys_to_add<'f>(
        &self,
        file: &'f KnownHostsFile,
        wanted: &[(NodeId, Want)],
        lines: &HostLines,
        path: &str,
        plan: &mut NodePlan,
        adopt: &mut super::adopt::Adopting<'f>,
        on_request: &mut Vec<usize>,
    ) -> Vec<PlannedLine> {
        let mut add = Vec::new();
        // Built on first use; reused for every target.
        let mut index: Option<HostIndex> = None;
        let (mut candidates, mut trusted) = (Vec::new(), Vec::new());
        for (at, &(t, ref w)) in wanted.iter().enumerate() {
            let Some(keys) = w.keys else { continue };
            let ok = |b64: &str| lines.managed_ok.binary_search(&(at, b64)).is_ok();
            // Every key has its right managed line and no line trustmesh did
            // not write can name the host: nothing to add, nothing to warn.
            if !lines.has_unmanaged && keys.iter().all(|(_, b64)| ok(b64)) {
                continue;
            }
            let node = &self.inv.nodes[t];
            let addr = node.target().addr;
            index
                .get_or_insert_with(|| HostIndex::new(file))
                .candidates(&w.names, &mut candidates);
            HostIndex::keys_for(&candidates, addr, node.port, &mut trusted);
            debug_assert_eq!(trusted, file.keys_for(addr, node.port));
            let found = Found {
                t,
                names: &w.names,
                addr,
                candidates: &candidates,
                trusted: &trusted,
            };
            for (ki, (kt, b64)) in keys.iter().enumerate() {
                if ok(b64) {
                    continue;
                }
                let line =
                    self.host_key_line(&found, ki, (kt, b64), lines, (file, path), plan, adopt);
                add.extend(line);
            }
            on_request.extend(self.stale_host_keys(&found, keys, file, path, plan));
        }
        add
    }

    /// The line to add for the `ki`th host key of `found`'s target, unless a
    /// line trustmesh did not write trusts it already or revokes it.
    #[allow(clippy::too_many_arguments)]
    fn host_key_line<'f>(
        &self,
        found: &Found<'_, 'f>,
        ki: usize,
        (kt, b64): (&Arc<str>, &Arc<str>),
        lines: &HostLines,
        (file, path): (&'f KnownHostsFile, &str),
        plan: &mut NodePlan,
        adopt: &mut super::adopt::Adopting<'f>,
    ) -> Option<PlannedLine> {
        let t = found.t;
        let node = &self.inv.nodes[t];
        // Already trusted by a line trustmesh did not write (a line of ours
        // being rewritten does not count).
        let by_hand = || {
            found.candidates.iter().any(|e| {
                e.marker().is_none()
                    && e.annotation().is_none()
                    && e.base64() == &**b64
                    && e.matches_host(found.addr, node.port)
            })
        };
        if found
            .trusted
            .iter()
            .any(|(a, b)| a == &&**kt && b == &&**b64)
            && by_hand()
        {
            let key = (&**kt, &**b64);
            self.hand_written_host_key(t, found.names, file, path, key, plan, adopt);
            return None;
        }
        // Refused on purpose: an admin marked it `@revoked`.
        let revoked = found.candidates.iter().any(|e| {
            e.annotation() == Some(Annotation::Revoked)
                && e.base64() == &**b64
                && e.matches_host(found.addr, node.port)
        });
        if revoked {
            plan.warnings.push(format!(
                "{path} marks the {kt} host key of {} as @revoked: it is not added again, and the edge \
                 to {} holds only through another of its keys; remove the @revoked line if the key is good",
                node.name, node.name
            ));
            return None;
        }
        let (names, clear_name) = if self.inv.options.hash_known_hosts {
            let hashed = kh::managed_hashed_name(found.names, kt, b64);
            (Arc::from(hashed), Some(found.names.clone()))
        } else {
            (found.names.clone(), None)
        };
        Some(PlannedLine {
            names: Some(names),
            clear_name,
            fingerprint: self.fingerprints[t].get(ki).cloned().flatten(),
            key_type: kt.clone(),
            base64: Some(b64.clone()),
            node: self.names[t].clone(),
            marker: self.markers[t].clone(),
            replaces: lines.replaced.contains(&t),
            options: None,
        })
    }

    /// An old key trustmesh did not write still sits there: ssh keeps
    /// working with the new line, but a person should clean it up. The
    /// lines to remove when the operator named the node
    /// (`--remove-stale-host-keys`), else said.
    fn stale_host_keys(
        &self,
        found: &Found,
        keys: &[(Arc<str>, Arc<str>)],
        file: &KnownHostsFile,
        path: &str,
        plan: &mut NodePlan,
    ) -> Vec<usize> {
        let (t, addr, names) = (found.t, found.addr, found.names);
        let node = &self.inv.nodes[t];
        let mut on_request = Vec::new();
        for (ot, ob) in found.trusted {
            let current = keys.iter().any(|(_, b)| b.as_ref() == *ob);
            // Only entries that may match the host can: see HostIndex.
            let unmanaged = || {
                found.candidates.iter().any(|e| {
                    e.marker().is_none() && e.base64() == *ob && e.matches_host(addr, node.port)
                })
            };
            debug_assert_eq!(
                unmanaged(),
                file.entries().any(|(_, e)| {
                    e.marker().is_none() && e.base64() == *ob && e.matches_host(addr, node.port)
                })
            );
            if !current && unmanaged() {
                // Removed only when the operator names the node; and only a
                // line about this host alone (another host's trust in the
                // same line is not ours to drop).
                let lines: Vec<usize> = if self.scope.remove_stale_host_keys.contains(&t) {
                    file.entries()
                        .filter(|(_, e)| {
                            e.marker().is_none()
                                && e.annotation().is_none()
                                && e.base64() == *ob
                                && !e.hosts().contains(',')
                                && e.matches_host(addr, node.port)
                        })
                        .map(|(i, _)| i)
                        .collect()
                } else {
                    Vec::new()
                };
                if lines.is_empty() {
                    plan.warnings.push(format!(
                        "{path} holds an old {ot} host key for {} ({}) that trustmesh did not write; {}",
                        node.name,
                        names,
                        Hint::RemoveStaleHostKey {
                            names: names.to_string(),
                            path: path.to_string(),
                            node: node.name.clone(),
                        }
                    ));
                }
                on_request.extend(lines);
            }
        }
        on_request
    }
}

/// What a target of a node's edges needs in its known_hosts: its names
/// and keys (`None`: not known, nothing is written for it).
struct Want<'a> {
    names: Arc<str>,
    keys: Option<&'a [(Arc<str>, Arc<str>)]>,
}

/// What becomes of the marked entries of a known_hosts file (line indices:
/// their text is copied only if the file is edited).
#[derive(Default)]
struct HostLines<'f> {
    kept: Vec<usize>,
    remove: Vec<usize>,
    /// The targets whose managed line is rewritten.
    replaced: HashSet<NodeId>,
    /// (position in the wanted targets, blob) of the managed lines that are
    /// right; sorted once triaged.
    managed_ok: Vec<(usize, &'f str)>,
    /// Does the file hold a line trustmesh did not write (or another
    /// cluster's)?
    has_unmanaged: bool,
    /// The nodes outside the inventory whose lines are pruned.
    retired: Vec<&'f str>,
    /// The host CA's line is there as wanted.
    ca_ok: bool,
    /// The host CA's line is kept, unwanted: this target cannot be pinned.
    ca_kept: Option<NodeId>,
}

/// What a known_hosts file already says about one target: the entries that
/// may match its name, and the keys it trusts for it.
struct Found<'c, 'f> {
    t: NodeId,
    names: &'c Arc<str>,
    addr: &'c str,
    candidates: &'c [&'f HostEntry],
    trusted: &'c [(&'f str, &'f str)],
}

/// Each proven host key's fingerprint, once (every peer's plan shows it).
pub(super) fn fingerprints(host_keys: &[HostKeys]) -> Vec<Vec<Option<Arc<str>>>> {
    host_keys
        .par_iter()
        .map(|k| match k {
            HostKeys::Known(k) => k
                .iter()
                .map(|(_, b)| crate::formats::known_hosts::fingerprint_sha256(b).map(Arc::from))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}
