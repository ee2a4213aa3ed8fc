//! Planning of each managed file: the `authorized_keys` lines a node's
//! incoming edges need, the `known_hosts` lines its outgoing edges need,
//! and the index that finds a host's entries in a large `known_hosts`.

use super::*;
use crate::lines::Marker;

impl Ctx<'_> {
    /// The incoming edges of `id`: who may log in here.
    pub(super) fn authorized_keys(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        plan: &mut NodePlan,
    ) -> Result<(), Blocker> {
        let name = &self.files[id].authorized_keys;
        let path = display_path(name);
        self.manager_source_check(id, acc)?;
        let (text, stat) = read_text(acc, name, &path)?;
        plan.base.push(FileBase {
            path: path.clone(),
            content: text.map(str::to_string),
        });
        let file = AuthorizedKeysFile::parse(text.unwrap_or(""));
        // Wanted: (node, key state) for sources in scope, sorted by node,
        // no repeats.
        let mut wanted: Vec<(NodeId, &KeyState)> = self
            .graph
            .incoming(id)
            .filter(|e| self.scope.contains(e.source))
            .map(|e| (e.source, &self.keys[e.source]))
            .collect();
        wanted.sort_unstable_by_key(|w| w.0);
        wanted.dedup_by_key(|w| w.0);
        let want = |s: NodeId| {
            wanted
                .binary_search_by_key(&s, |w| w.0)
                .ok()
                .map(|at| (at, wanted[at].1))
        };
        // The wanted keys found in a managed line that stays.
        let mut confirmed = vec![false; wanted.len()];
        // Line indices; their text is copied only if the file is edited.
        let mut remove = Vec::new();
        let mut kept = Vec::new();
        let mut replaced: HashSet<NodeId> = HashSet::new();
        // The options of a managed line being rewritten: the admin's ones
        // among them go on the new line.
        let mut carried: HashMap<NodeId, &str> = HashMap::new();
        // Lines of keys being rotated: removed last, once the new key holds.
        let mut rotated_out: Vec<(NodeId, usize)> = Vec::new();
        for (i, k) in file.keys() {
            let Some(marker) = k.marker() else { continue };
            let manager_key = self.is_manager_key(k.key_type(), k.base64());
            let keep = match self.owner(marker) {
                // Another cluster's line, or an old marker naming no node
                // of this inventory: never touched.
                Owner::Foreign => continue,
                // A node that left the inventory. Lockout guard: the line
                // that lets the manager in stays whoever it names.
                Owner::Retired => manager_key || !self.inv.options.prune,
                Owner::Node(s, legacy) => match want(s) {
                    Some((at, state)) => match state {
                        KeyState::Known { key_type, base64 } => {
                            let same = &**key_type == k.key_type() && &**base64 == k.base64();
                            if let Some(o) = k.options() {
                                carried.insert(s, o);
                            }
                            let options_ok = || {
                                let merged = self.line_options(s, id, k.options());
                                merged.options.as_deref() == k.options()
                            };
                            if same && !legacy && options_ok() {
                                confirmed[at] = true;
                                if self.rotating[s] {
                                    rotated_out.push((s, i));
                                }
                                true
                            } else if s == Inventory::MANAGER && !same {
                                // Another key marked as this cluster's
                                // manager (a second operator, an older
                                // key): trustmesh never removes a manager
                                // key it is not rotating itself.
                                self.other_manager_key(k.key_type(), k.base64(), &path, plan);
                                true
                            } else {
                                // A changed key, or an old marker to migrate
                                // (the same key, rewritten in one write).
                                replaced.insert(s);
                                false
                            }
                        }
                        KeyState::Pending { .. } if s == Inventory::MANAGER => {
                            self.other_manager_key(k.key_type(), k.base64(), &path, plan);
                            true
                        }
                        KeyState::Pending { .. } => {
                            if let Some(o) = k.options() {
                                carried.insert(s, o);
                            }
                            replaced.insert(s);
                            false
                        }
                        KeyState::Unknown => true,
                    },
                    // Out of --limit: not ours to judge this run.
                    None if !self.scope.contains(s) => true,
                    None => manager_key || !self.inv.options.prune,
                },
            };
            if keep {
                kept.push(i);
            } else {
                remove.push(i);
            }
        }
        // Keys that stay in the file, whoever wrote them (`remove` is in
        // file order); built only if a key was not confirmed.
        let mut present: Option<HashSet<(&str, &str)>> = None;
        let mut add = Vec::new();
        for (&(src, state), &confirmed) in wanted.iter().zip(&confirmed) {
            // The options of a line written for `src`: its policy, and the
            // admin's options of the line it replaces.
            let mut options = || {
                let merged = self.line_options(src, id, carried.get(&src).copied());
                for o in &merged.dropped {
                    plan.warnings.push(format!(
                        "{path}: the option `{o}` on {}'s line conflicts with its edge's policy ({}): it is left out \
                         when the line is rewritten",
                        self.inv.nodes[src].name,
                        self.inv.policy(src, id).describe()
                    ));
                }
                merged.options.map(Arc::from)
            };
            // A rotated key: its new half is added beside the old line
            // (known after apply).
            if let (true, KeyState::Known { .. }) = (self.rotating[src], state) {
                add.push(PlannedLine {
                    names: None,
                    clear_name: None,
                    key_type: ssh_type(self.inv.nodes[src].key_type).into(),
                    base64: None,
                    node: self.names[src].clone(),
                    marker: self.markers[src].clone(),
                    replaces: false,
                    options: options(),
                });
            }
            let line = match state {
                KeyState::Known { key_type, base64 } => {
                    // A confirmed key's line stays: it is present.
                    if confirmed {
                        continue;
                    }
                    if present
                        .get_or_insert_with(|| {
                            file.keys()
                                .filter(|(i, _)| remove.binary_search(i).is_err())
                                .map(|(_, k)| k.key_id())
                                .collect()
                        })
                        .contains(&(&**key_type, &**base64))
                    {
                        // Let in by a line trustmesh did not write: never
                        // touched, but it may grant more than the edge's
                        // policy.
                        let policy = self.inv.policy(src, id);
                        if !policy.is_open() {
                            plan.warnings.push(format!(
                                "{path}: {}'s key is let in by a line trustmesh did not write, so the edge's \
                                 policy ({}) is not on it; remove that line by hand and trustmesh writes its own",
                                self.inv.nodes[src].name,
                                policy.describe()
                            ));
                        }
                        continue;
                    }
                    PlannedLine {
                        names: None,
                        clear_name: None,
                        key_type: key_type.clone(),
                        base64: Some(base64.clone()),
                        node: self.names[src].clone(),
                        marker: self.markers[src].clone(),
                        replaces: replaced.contains(&src),
                        options: options(),
                    }
                }
                KeyState::Pending { key_type } => PlannedLine {
                    names: None,
                    clear_name: None,
                    key_type: key_type.clone(),
                    base64: None,
                    node: self.names[src].clone(),
                    marker: self.markers[src].clone(),
                    replaces: replaced.contains(&src),
                    options: options(),
                },
                KeyState::Unknown => continue,
            };
            add.push(line);
        }
        if !add.is_empty() || !remove.is_empty() {
            plan.changes.push(Change::EditFile(FileEdit {
                path: path.clone(),
                file: FileRole::AuthorizedKeys,
                create: stat.is_none(),
                kept: kept.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                remove: remove.into_iter().map(|i| (i, text_at(&file, i))).collect(),
                remove_on_request: Vec::new(),
                add,
                after_rotation_of: None,
            }));
        }
        for (src, i) in rotated_out {
            plan.changes.push(Change::EditFile(FileEdit {
                path: path.clone(),
                file: FileRole::AuthorizedKeys,
                create: false,
                kept: Vec::new(),
                remove: vec![(i, text_at(&file, i))],
                remove_on_request: Vec::new(),
                add: Vec::new(),
                after_rotation_of: Some(self.inv.nodes[src].name.clone()),
            }));
        }
        if let Some(s) = stat {
            self.fix_mode(acc, &path, s, 0o600, plan);
        }
        Ok(())
    }

    /// The options of `source`'s line in `target`'s authorized_keys, from
    /// the options the line has now.
    fn line_options(
        &self,
        source: NodeId,
        target: NodeId,
        existing: Option<&str>,
    ) -> crate::key_options::Merged {
        let policy = self.inv.policy(source, target);
        // What trustmesh would write for the edge's source, even with
        // `restrict_source` off: a `from=` of that value is its own.
        let derived = match (&policy.from, existing) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(_)) => self.inv.seen_from(source, target).ok(),
            (None, None) => None,
        };
        crate::key_options::merge(existing, &policy, derived.as_deref())
    }

    /// With `restrict_source`, the manager's own line on `id` must let in
    /// the connection this very plan was read over: one that would not is
    /// refused before it can lock the manager out.
    fn manager_source_check(&self, id: NodeId, acc: &LiveAccount) -> Result<(), Blocker> {
        if id == Inventory::MANAGER || !self.inv.options.restrict_source {
            return Ok(());
        }
        let (Some(seen), Ok(from)) = (
            acc.client_address.as_deref(),
            self.inv.seen_from(Inventory::MANAGER, id),
        ) else {
            return Ok(());
        };
        let patterns: Vec<String> = from.split(',').map(str::to_string).collect();
        if crate::inventory::sources::covers(&patterns, seen) {
            return Ok(());
        }
        let node = &self.inv.nodes[id];
        let via = match node.jump {
            Some(j) => &self.inv.nodes[j].name,
            None => &self.inv.manager().name,
        };
        Err((
            format!(
                "restrict_source would write from=\"{from}\" on the manager's line here, but {} sees the \
                 manager's connections come from {seen}: the manager would lock itself out",
                node.name
            ),
            Some(format!(
                "add {seen} to `source_addresses:` of {via} in the inventory (where {} sees {via}'s \
                 connections come from)",
                node.name
            )),
        ))
    }

    /// Whose a marked line is, for this cluster.
    fn owner(&self, m: Marker<'_>) -> Owner {
        let node = self.by_name.get(m.node).copied();
        match (m.cluster, node) {
            (Some(c), Some(id)) if c == self.inv.cluster => Owner::Node(id, false),
            (Some(c), None) if c == self.inv.cluster => Owner::Retired,
            // Written before clusters were named, for a node of this
            // inventory: taken over once (rewritten with the cluster).
            (None, Some(id)) => Owner::Node(id, true),
            _ => Owner::Foreign,
        }
    }

    /// A line marked as this cluster's manager holds a key that is not the
    /// manager's: kept, and said so.
    fn other_manager_key(&self, t: &str, b: &str, path: &str, plan: &mut NodePlan) {
        let fp =
            crate::known_hosts::fingerprint_sha256(b).unwrap_or_else(|| "an unreadable key".into());
        plan.warnings.push(format!(
            "{path} holds another {t} key ({fp}) marked as this cluster's manager: kept, since trustmesh never \
             removes a manager key it is not rotating itself; if it is stale, delete that line by hand"
        ));
    }

    fn is_manager_key(&self, t: &str, b: &str) -> bool {
        matches!(&self.keys[Inventory::MANAGER], KeyState::Known { key_type, base64 } if &**key_type == t && &**base64 == b)
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
                    HostKeys::Unknown => None,
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
                Owner::Retired => !self.inv.options.prune,
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
                                e.is_hashed()
                                    && e.matches_host(
                                        node.address.as_deref().unwrap_or_default(),
                                        node.port,
                                    )
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
        // Usually in order already: the lines were written target by target.
        managed_ok.sort_unstable();
        let mut add = Vec::new();
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
            let addr = node.address.as_deref().unwrap_or_default();
            index
                .get_or_insert_with(|| HostIndex::new(&file))
                .candidates(&w.names, &mut candidates);
            HostIndex::keys_for(&candidates, addr, node.port, &mut trusted);
            debug_assert_eq!(trusted, file.keys_for(addr, node.port));
            for (kt, b64) in keys {
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
                    let hashed = known_hosts::managed_hashed_name(&w.names, kt, b64);
                    (Arc::from(hashed), Some(w.names.clone()))
                } else {
                    (w.names.clone(), None)
                };
                add.push(PlannedLine {
                    names: Some(names),
                    clear_name,
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
        if !add.is_empty() || !remove.is_empty() || !on_request.is_empty() {
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

    /// The entries that may match `name` (a [`known_hosts::host_name`]), in
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

/// The text of line `i` of either kind of file, without its ending.
fn text_at<K: crate::lines::Kind>(file: &crate::lines::LineFile<K>, i: usize) -> String {
    file.lines()[i].text().to_string()
}

/// The text of a probed file: `None` when it does not exist. A file that
/// cannot be edited safely blocks the node.
pub(super) fn read_text<'a>(
    acc: &'a LiveAccount,
    name: &str,
    path: &str,
) -> Result<(Option<&'a str>, Option<&'a FileStat>), Blocker> {
    let Some(f) = acc.file(name) else {
        return Ok((None, None));
    };
    let Some(stat) = &f.stat else {
        if f.unreadable {
            return Err((
                format!("{path} cannot be read"),
                Some(format!("check its permissions: `ls -l {path}` on the node")),
            ));
        }
        return Ok((None, None));
    };
    match stat.kind {
        FileKind::File => {}
        FileKind::Symlink => {
            return Err((
                format!("{path} is a symbolic link"),
                Some("trustmesh does not edit through symbolic links: replace the link with the file it points to".into()),
            ))
        }
        _ => {
            return Err((
                format!("{path} is not a regular file"),
                Some(format!("move it away and plan again: `mv {path} {path}.old`")),
            ))
        }
    }
    let Some(content) = &f.content else {
        return Err((
            format!("{path} cannot be read"),
            Some(format!("check its permissions: `ls -l {path}` on the node")),
        ));
    };
    match std::str::from_utf8(content) {
        Ok(t) => Ok((Some(t), Some(stat))),
        Err(_) => Err((
            format!("{path} is not UTF-8 text"),
            Some("trustmesh edits only text files; check the file by hand".into()),
        )),
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
            (prop::sample::select(&HOSTS[..]), any::<u8>()).prop_map(|((h, p), s)| {
                known_hosts::hash_host_name(&known_hosts::host_name(h, p), [s; 20])
            }),
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
                index.candidates(&known_hosts::host_name(host, port), &mut candidates);
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
