//! Planning of the `known_hosts` lines a node's outgoing edges need, and
//! the index that finds a host's entries in a large `known_hosts`.

use super::authorized_keys::{read_text, text_at};
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
        let name = &self.files[id].known_hosts;
        let path = display_path(name);
        let (text, stat) = read_text(acc, name, &path)?;
        plan.base.push(FileBase {
            path: path.clone(),
            content: text.map(str::to_string),
        });
        let file = KnownHostsFile::parse(text.unwrap_or(""));
        let mut targets: Vec<NodeId> = self
            .graph
            .outgoing(id)
            .filter(|e| self.scope.contains(e.target))
            .map(|e| e.target)
            .collect();
        targets.sort_unstable();
        targets.dedup();
        // What each target needs: names and keys.
        struct Want<'a> {
            names: Arc<str>,
            keys: Option<&'a [(Arc<str>, Arc<str>)]>,
        }
        // Sorted by node, no repeats (as `targets`).
        let wanted: Vec<(NodeId, Want)> = targets
            .iter()
            .filter_map(|&t| {
                let names = self.host_names[t].clone()?;
                let keys = match &self.host_keys[t] {
                    HostKeys::Known(k) => Some(k.as_slice()),
                    HostKeys::Unknown | HostKeys::Disputed(_) => None,
                };
                Some((t, Want { names, keys }))
            })
            .collect();
        let want = |o: NodeId| {
            wanted
                .binary_search_by_key(&o, |(t, _)| *t)
                .ok()
                .map(|at| (at, &wanted[at].1))
        };
        // Line indices; their text is copied only if the file is edited.
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        let mut replaced: HashSet<NodeId> = HashSet::new();
        // (position in `wanted`, blob) of the managed lines that are right,
        // sorted below.
        let mut managed_ok: Vec<(usize, &str)> = Vec::new();
        let mut has_unmanaged = false;
        let hash = self.inv.options.hash_known_hosts;
        let mut retired: Vec<&str> = Vec::new();
        for (i, e) in file.entries() {
            let Some(marker) = e.marker() else {
                has_unmanaged = true;
                continue;
            };
            let owner = match self.owner(marker) {
                // An annotated line (`@revoked`, `@cert-authority`) made out
                // of a managed one is the admin's now: respected.
                Owner::Node(..) | Owner::Retired if e.annotation().is_some() => Owner::Foreign,
                o => o,
            };
            let keep = match owner {
                Owner::Foreign => {
                    has_unmanaged = true;
                    continue;
                }
                Owner::Retired => {
                    if self.inv.options.prune {
                        retired.push(marker.node);
                    }
                    !self.inv.options.prune
                }
                Owner::Node(o, legacy) => match want(o) {
                    Some((at, w)) => match w.keys {
                        Some(keys) => {
                            let node = &self.inv.nodes[o];
                            // The names as `options.hash_known_hosts`
                            // wants them: in clear, or hashed. A hashed
                            // managed line holds the host's name in its
                            // hash, whatever its salt (one we wrote, or
                            // `ssh-keygen -H`'s): kept as it is.
                            let names_ok = if hash {
                                e.is_hashed() && e.matches_host(node.target().addr, node.port)
                            } else {
                                e.hosts() == &*w.names
                            };
                            let ok = !legacy
                                && names_ok
                                && keys
                                    .iter()
                                    .any(|(t, b)| &**t == e.key_type() && &**b == e.base64());
                            if ok {
                                managed_ok.push((at, e.base64()));
                            } else {
                                replaced.insert(o);
                            }
                            ok
                        }
                        None => true,
                    },
                    None if !self.scope.contains(o) => true,
                    None => !self.inv.options.prune,
                },
            };
            if keep {
                kept.push(i);
            } else {
                remove.push(i);
            }
        }
        self.retired_unnamed(&path, &mut retired, plan);
        // Usually in order already: the lines were written target by target.
        managed_ok.sort_unstable();
        let mut add = Vec::new();
        let mut adopt = super::adopt::Adopting::default();
        // Lines trustmesh did not write, removed on the operator's request.
        let mut on_request: Vec<usize> = Vec::new();
        // Built on first use; reused for every target.
        let mut index: Option<HostIndex> = None;
        let (mut candidates, mut trusted) = (Vec::new(), Vec::new());
        for (at, &(t, ref w)) in wanted.iter().enumerate() {
            let Some(keys) = w.keys else { continue };
            let ok = |b64: &str| managed_ok.binary_search(&(at, b64)).is_ok();
            // Every key has its right managed line and no line trustmesh did
            // not write can name the host: nothing to add, nothing to warn.
            if !has_unmanaged && keys.iter().all(|(_, b64)| ok(b64)) {
                continue;
            }
            let node = &self.inv.nodes[t];
            let addr = node.target().addr;
            index
                .get_or_insert_with(|| HostIndex::new(&file))
                .candidates(&w.names, &mut candidates);
            HostIndex::keys_for(&candidates, addr, node.port, &mut trusted);
            debug_assert_eq!(trusted, file.keys_for(addr, node.port));
            for (ki, (kt, b64)) in keys.iter().enumerate() {
                if ok(b64) {
                    continue;
                }
                // Already trusted by a line trustmesh did not write (a line
                // of ours being rewritten does not count).
                let by_hand = || {
                    candidates.iter().any(|e| {
                        e.marker().is_none()
                            && e.annotation().is_none()
                            && e.base64() == &**b64
                            && e.matches_host(addr, node.port)
                    })
                };
                if trusted.iter().any(|(a, b)| a == &&**kt && b == &&**b64) && by_hand() {
                    let key = (&**kt, &**b64);
                    self.hand_written_host_key(t, &w.names, &file, &path, key, plan, &mut adopt);
                    continue;
                }
                // Refused on purpose: an admin marked it `@revoked`.
                let revoked = candidates.iter().any(|e| {
                    e.annotation() == Some(Annotation::Revoked)
                        && e.base64() == &**b64
                        && e.matches_host(addr, node.port)
                });
                if revoked {
                    plan.warnings.push(format!(
                        "{path} marks the {kt} host key of {} as @revoked: it is not added again, and the edge \
                         to {} holds only through another of its keys; remove the @revoked line if the key is good",
                        node.name, node.name
                    ));
                    continue;
                }
                let (names, clear_name) = if hash {
                    let hashed = kh::managed_hashed_name(&w.names, kt, b64);
                    (Arc::from(hashed), Some(w.names.clone()))
                } else {
                    (w.names.clone(), None)
                };
                add.push(PlannedLine {
                    names: Some(names),
                    clear_name,
                    fingerprint: self.fingerprints[t].get(ki).cloned().flatten(),
                    key_type: kt.clone(),
                    base64: Some(b64.clone()),
                    node: self.names[t].clone(),
                    marker: self.markers[t].clone(),
                    replaces: replaced.contains(&t),
                    options: None,
                });
            }
            // An old key trustmesh did not write still sits there: ssh keeps
            // working with the new line, but a person should clean it up.
            for (ot, ob) in &trusted {
                let current = keys.iter().any(|(_, b)| b.as_ref() == *ob);
                // Only entries that may match the host can: see HostIndex.
                let unmanaged = || {
                    candidates.iter().any(|e| {
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
                    // Removed only when the operator names the node; and
                    // only a line about this host alone (another host's
                    // trust in the same line is not ours to drop).
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
                            "{path} holds an old {ot} host key for {} ({}) that trustmesh did not write; \
                             remove it with `ssh-keygen -R '{}' -f {path}` (or plan with --remove-stale-host-keys {})",
                            node.name,
                            w.names,
                            w.names,
                            node.name
                        ));
                    }
                    on_request.extend(lines);
                }
            }
        }
        on_request.sort_unstable();
        on_request.dedup();
        if !add.is_empty()
            || !remove.is_empty()
            || !on_request.is_empty()
            || !adopt.lines.is_empty()
        {
            plan.changes.push(Change::EditFile(FileEdit {
                path: path.clone(),
                file: FileRole::KnownHosts,
                create: stat.is_none(),
                kept: kept.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                remove: remove.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                remove_on_request: on_request
                    .into_iter()
                    .map(|i| (i, text_at(&file, i)))
                    .collect(),
                adopt: adopt.lines,
                add,
                after_rotation_of: None,
            }));
        }
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
}

/// The entries of a `known_hosts` file that may match a host name: a
/// superset of those [`HostEntry::matches_host`] accepts, so that finding
/// the keys of every target does not match every entry of the file against
/// every target (a manager's file holds a line per worker).
///
/// An entry whose host field is a list of plain names (not hashed, no `*` or
/// `?`) can only match a name equal, ASCII case aside, to one of its
/// non-negated names (OpenSSH's `match_pattern_list`); such entries are
/// found by name. Every other entry is a candidate for every name.
/// [`HostEntry::matches_host`] still decides.
struct HostIndex<'f> {
    /// Lowercased plain name -> (first, last) position in `chain`.
    plain: HashMap<Cow<'f, str>, (usize, usize)>,
    /// (line index, entry, next position for the same name), each name's
    /// entries in file order.
    chain: Vec<(usize, &'f HostEntry, usize)>,
    /// Hashed names and patterns: (line index, entry), in file order.
    other: Vec<(usize, &'f HostEntry)>,
}

impl<'f> HostIndex<'f> {
    const END: usize = usize::MAX;

    fn new(file: &'f KnownHostsFile) -> HostIndex<'f> {
        let mut plain: HashMap<Cow<'f, str>, (usize, usize)> = HashMap::new();
        let mut chain: Vec<(usize, &HostEntry, usize)> = Vec::new();
        let mut other = Vec::new();
        for (i, e) in file.entries() {
            let hosts = e.hosts();
            if e.is_hashed() || hosts.contains(['*', '?']) {
                other.push((i, e));
                continue;
            }
            for pattern in hosts.split(',') {
                if pattern.starts_with('!') {
                    continue;
                }
                let at = chain.len();
                match plain.entry(lowercase(pattern)) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((at, at));
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let (_, last) = o.get_mut();
                        // The same name twice in one line.
                        if chain[*last].0 == i {
                            continue;
                        }
                        chain[*last].2 = at;
                        *last = at;
                    }
                }
                chain.push((i, e, Self::END));
            }
        }
        HostIndex {
            plain,
            chain,
            other,
        }
    }

    /// The entries that may match `name` (a [`kh::host_name`]), in
    /// file order, into `out`.
    fn candidates(&self, name: &str, out: &mut Vec<&'f HostEntry>) {
        out.clear();
        let mut at = self
            .plain
            .get(&lowercase(name))
            .map_or(Self::END, |&(first, _)| first);
        let mut others = self.other.iter().peekable();
        while at != Self::END {
            let (line, entry, next) = self.chain[at];
            while let Some(&&(i, e)) = others.peek() {
                if i > line {
                    break;
                }
                out.push(e);
                others.next();
            }
            out.push(entry);
            at = next;
        }
        out.extend(others.map(|&(_, e)| e));
    }

    /// [`KnownHostsFile::keys_for`] (`host` on `port`), on the candidates
    /// for the host's name, into `keys`.
    fn keys_for(
        candidates: &[&'f HostEntry],
        host: &str,
        port: u16,
        keys: &mut Vec<(&'f str, &'f str)>,
    ) {
        keys.clear();
        let mut matching = candidates.iter().filter(|e| e.matches_host(host, port));
        // The common case: one line for the host.
        if let (Some(only), None) = (matching.next(), matching.next()) {
            if only.annotation().is_none() {
                keys.push(only.key_id());
            }
            return;
        }
        let matching: Vec<&HostEntry> = candidates
            .iter()
            .copied()
            .filter(|e| e.matches_host(host, port))
            .collect();
        let revoked: Vec<&str> = matching
            .iter()
            .filter(|e| e.annotation() == Some(Annotation::Revoked))
            .map(|e| e.base64())
            .collect();
        for e in matching {
            if e.annotation().is_none()
                && !revoked.contains(&e.base64())
                && !keys.contains(&e.key_id())
            {
                keys.push(e.key_id());
            }
        }
    }
}

/// `s` with ASCII letters lowercased, borrowed when it has no capitals.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BLOBS: [&str; 3] = [
        "AAAAC3NzaC1lZDI1NTE5AAAAIA==",
        "AAAAB3NzaC1yc2EAAAAD",
        "AAAAE2VjZHNh",
    ];
    const NAMES: [&str; 12] = [
        "a", "A", "b", "[a]:2222", "[A]:2222", "10.0.0.1", "a*", "?", "!a", "!b", "*", "[a]:*",
    ];
    const HOSTS: [(&str, u16); 5] = [
        ("a", 22),
        ("A", 22),
        ("b", 22),
        ("a", 2222),
        ("10.0.0.1", 22),
    ];

    fn line() -> impl Strategy<Value = String> {
        let hosts = prop_oneof![
            prop::collection::vec(prop::sample::select(&NAMES[..]), 1..4).prop_map(|v| v.join(",")),
            (prop::sample::select(&HOSTS[..]), any::<u8>())
                .prop_map(|((h, p), s)| { kh::hash_host_name(&kh::host_name(h, p), [s; 20]) }),
        ];
        (
            prop::sample::select(&["", "@revoked ", "@cert-authority "][..]),
            hosts,
            prop::sample::select(&BLOBS[..]),
            prop::sample::select(&["", " trustmesh:w1", " root@x"][..]),
        )
            .prop_map(|(ann, hosts, blob, comment)| {
                format!("{ann}{hosts} ssh-ed25519 {blob}{comment}")
            })
    }

    proptest! {
        /// The index finds what `keys_for` and `matches_host` find.
        #[test]
        fn host_index_agrees_with_a_full_scan(lines in prop::collection::vec(line(), 0..12)) {
            let text = lines.join("\n");
            let file = KnownHostsFile::parse(&text);
            let index = HostIndex::new(&file);
            let (mut candidates, mut keys) = (Vec::new(), Vec::new());
            for (host, port) in HOSTS {
                index.candidates(&kh::host_name(host, port), &mut candidates);
                HostIndex::keys_for(&candidates, host, port, &mut keys);
                prop_assert_eq!(&keys, &file.keys_for(host, port));
                for blob in BLOBS {
                    let scan = |e: &HostEntry| {
                        e.marker().is_none() && e.base64() == blob && e.matches_host(host, port)
                    };
                    prop_assert_eq!(
                        candidates.iter().any(|e| scan(e)),
                        file.entries().any(|(_, e)| scan(e))
                    );
                }
            }
        }
    }
}
