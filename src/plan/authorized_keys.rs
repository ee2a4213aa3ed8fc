//! Planning of the `authorized_keys` lines a node's incoming edges need,
//! and what every managed file's planning shares (reading a probed file,
//! the owner of a marked line). The `known_hosts` lines are in
//! `known_hosts.rs`.

use super::*;
use crate::formats::authorized_keys::KeyLine;
use crate::formats::lines::Marker;

impl Ctx<'_> {
    /// The incoming edges of `id`: who may log in here.
    pub(super) fn authorized_keys(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        plan: &mut NodePlan,
    ) -> Result<(), Blocker> {
        self.manager_source_check(id, acc, plan)?;
        let (path, text, stat) = read_base(acc, &self.files[id].authorized_keys, plan)?;
        let file = AuthorizedKeysFile::parse(text.unwrap_or(""));
        let wanted = self.wanted_keys(id);
        let authorities = self.authority_lines(id);
        let mut lines = self.triage_keys(id, &file, (&wanted, &authorities), &path, plan);
        self.retired_unnamed(&path, &mut lines.retired, plan);
        self.expired_lines(id, &path, &file, &lines.remove, plan);
        let mut adopt = super::adopt::Adopting::default();
        let mut add = self.keys_to_add(id, &file, &wanted, &lines, &path, plan, &mut adopt);
        add.extend(super::certificates::authorities_to_add(
            &file,
            &lines.kept,
            authorities,
        ));
        let ca_retired = self.ca_retired_lines(&path, &file, &lines.kept);
        push_edit(
            plan,
            (&path, FileRole::AuthorizedKeys, stat.is_none()),
            &file,
            (lines.kept, lines.remove, Vec::new()),
            adopt.lines,
            add,
        );
        plan.changes.extend(ca_retired);
        for (src, i) in lines.rotated_out {
            plan.changes.push(Change::EditFile(FileEdit {
                path: path.clone(),
                file: FileRole::AuthorizedKeys,
                create: false,
                kept: Vec::new(),
                remove: vec![(i, text_at(&file, i))],
                remove_on_request: Vec::new(),
                adopt: Vec::new(),
                add: Vec::new(),
                after_rotation_of: Some(self.inv.nodes[src].name.clone()),
            }));
        }
        if let Some(s) = stat {
            self.fix_mode(acc, &path, s, 0o600, plan);
        }
        Ok(())
    }

    /// The keys `id` must let in: (node, key state) for the sources of its
    /// incoming edges in scope, sorted by node, no repeats.
    fn wanted_keys(&self, id: NodeId) -> Vec<(NodeId, &KeyState)> {
        let mut wanted: Vec<(NodeId, &KeyState)> = self
            .graph
            .incoming(id)
            .filter(|e| self.scope.contains(e.source) && !self.expired(e.source, id))
            .filter(|e| !self.inv.is_certificate_edge(e.source, id))
            .map(|e| (e.source, &self.keys[e.source]))
            .collect();
        wanted.sort_unstable_by_key(|w| w.0);
        wanted.dedup_by_key(|w| w.0);
        wanted
    }

    /// What becomes of each marked line of `id`'s authorized_keys.
    fn triage_keys<'f>(
        &self,
        id: NodeId,
        file: &'f AuthorizedKeysFile,
        (wanted, authorities): (&[(NodeId, &KeyState)], &[PlannedLine]),
        path: &str,
        plan: &mut NodePlan,
    ) -> KeyLines<'f> {
        let mut lines = KeyLines {
            confirmed: vec![false; wanted.len()],
            ..KeyLines::default()
        };
        for (i, k) in file.keys() {
            let Some(marker) = k.marker() else { continue };
            if let Some(keep) = self.authority_kept(k, marker, authorities) {
                if keep {
                    lines.kept.push(i)
                } else {
                    lines.remove.push(i)
                }
                continue;
            }
            let manager_key = self.is_manager_key(k.key_type(), k.base64());
            let keep = match self.owner(marker) {
                // Another cluster's line, or an old marker naming no node
                // of this inventory: never touched.
                Owner::Foreign => continue,
                // A node that left the inventory. Lockout guard: the line
                // that lets the manager in stays whoever it names.
                Owner::Retired => {
                    let keep = manager_key || !self.inv.options.prune;
                    if !keep {
                        lines.retired.push(marker.node);
                    }
                    keep
                }
                Owner::Node(s, legacy) => {
                    match wanted.binary_search_by_key(&s, |w| w.0) {
                        Ok(at) => self.keep_key_line(
                            (id, s, legacy),
                            (at, wanted[at].1),
                            (i, k),
                            &mut lines,
                            path,
                            plan,
                        ),
                        // Out of --limit: not ours to judge this run.
                        Err(_) if !self.scope.contains(s) => true,
                        Err(_) => manager_key || (!self.inv.options.prune && !self.expired(s, id)),
                    }
                }
            };
            if keep {
                lines.kept.push(i);
            } else {
                lines.remove.push(i);
            }
        }
        lines
    }

    /// Does the line `i` (`k`), marked for `s` (a wanted source at `at` in
    /// the wanted keys, whose key is `state`), stay in `id`'s file?
    fn keep_key_line<'f>(
        &self,
        (id, s, legacy): (NodeId, NodeId, bool),
        (at, state): (usize, &KeyState),
        (i, k): (usize, &'f KeyLine),
        lines: &mut KeyLines<'f>,
        path: &str,
        plan: &mut NodePlan,
    ) -> bool {
        match state {
            KeyState::Known { key_type, base64 } => {
                let same = &**key_type == k.key_type() && &**base64 == k.base64();
                if let Some(o) = k.options() {
                    lines.carried.insert(s, o);
                }
                let options_ok = || {
                    let merged = self.line_options(s, id, k.options());
                    merged.options.as_deref() == k.options()
                };
                if same && !legacy && options_ok() {
                    lines.confirmed[at] = true;
                    if self.rotating[s] {
                        lines.rotated_out.push((s, i));
                    }
                    true
                } else if s == Inventory::MANAGER
                    && !same
                    && self.is_retired(s, k.key_type(), k.base64())
                {
                    // A key an earlier rotation retired (its pair is aside
                    // on the manager), whose removal did not happen then:
                    // it goes now.
                    lines.replaced.insert(s);
                    false
                } else if s == Inventory::MANAGER && !same {
                    // Another key marked as this cluster's manager (a
                    // second operator, an older key): trustmesh never
                    // removes a manager key it is not rotating itself.
                    self.other_manager_key(k.key_type(), k.base64(), path, plan);
                    true
                } else {
                    // A changed key, or an old marker to migrate (the same
                    // key, rewritten in one write).
                    lines.replaced.insert(s);
                    false
                }
            }
            KeyState::Pending { .. } if s == Inventory::MANAGER => {
                self.other_manager_key(k.key_type(), k.base64(), path, plan);
                true
            }
            KeyState::Pending { .. } => {
                if let Some(o) = k.options() {
                    lines.carried.insert(s, o);
                }
                lines.replaced.insert(s);
                false
            }
            KeyState::Unknown => true,
        }
    }

    /// The lines to add to `id`'s authorized_keys for the wanted keys that
    /// no line that stays holds yet; the hand-written lines that hold one
    /// go to `adopt` (`--adopt`) or are said.
    #[allow(clippy::too_many_arguments)]
    fn keys_to_add<'f>(
        &self,
        id: NodeId,
        file: &'f AuthorizedKeysFile,
        wanted: &[(NodeId, &KeyState)],
        lines: &KeyLines<'f>,
        path: &str,
        plan: &mut NodePlan,
        adopt: &mut super::adopt::Adopting<'f>,
    ) -> Vec<PlannedLine> {
        // Keys that stay in the file, whoever wrote them (`remove` is in
        // file order); built only if a key was not confirmed.
        let mut present: Option<HashSet<(&str, &str)>> = None;
        let mut add = Vec::new();
        for (&(src, state), &confirmed) in wanted.iter().zip(&lines.confirmed) {
            // A rotated key: its new half is added beside the old line
            // (known after apply).
            if let (true, KeyState::Known { .. }) = (self.rotating[src], state) {
                let key_type = ssh_type(self.inv.nodes[src].key_type).into();
                let options = self.new_line_options(src, id, lines, path, plan);
                add.push(self.key_line(src, key_type, None, false, options));
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
                                .filter(|(i, _)| lines.remove.binary_search(i).is_err())
                                .map(|(_, k)| k.key_id())
                                .collect()
                        })
                        .contains(&(&**key_type, &**base64))
                    {
                        let key = (&**key_type, &**base64);
                        self.let_in_by_hand((id, src), file, path, key, plan, adopt);
                        continue;
                    }
                    let options = self.new_line_options(src, id, lines, path, plan);
                    let base64 = Some(base64.clone());
                    let replaces = lines.replaced.contains(&src);
                    self.key_line(src, key_type.clone(), base64, replaces, options)
                }
                KeyState::Pending { key_type } => {
                    let options = self.new_line_options(src, id, lines, path, plan);
                    let replaces = lines.replaced.contains(&src);
                    self.key_line(src, key_type.clone(), None, replaces, options)
                }
                KeyState::Unknown => continue,
            };
            add.push(line);
        }
        add
    }

    /// `src`'s key is let in by a line trustmesh did not write: never
    /// touched unless `--adopt` takes it over (see adopt.rs), but it may
    /// grant more than the edge's policy.
    fn let_in_by_hand<'f>(
        &self,
        (id, src): (NodeId, NodeId),
        file: &'f AuthorizedKeysFile,
        path: &str,
        key: (&str, &str),
        plan: &mut NodePlan,
        adopt: &mut super::adopt::Adopting<'f>,
    ) {
        if self.hand_written_key((id, src), file, path, key, plan, adopt) {
            return;
        }
        let policy = self.inv.policy(src, id);
        if !policy.is_open() {
            plan.warnings.push(format!(
                "{path}: {}'s key is let in by a line trustmesh did not write, so the \
                 edge's policy ({}) is not on it; remove that line by hand and trustmesh \
                 writes its own",
                self.inv.nodes[src].name,
                policy.describe()
            ));
        }
    }

    /// The options of a line written for `src` in `id`'s file: its policy,
    /// and the admin's options of the line it replaces. What the rewrite
    /// lifts or drops is said.
    fn new_line_options(
        &self,
        src: NodeId,
        id: NodeId,
        lines: &KeyLines,
        path: &str,
        plan: &mut NodePlan,
    ) -> Option<Arc<str>> {
        let merged = self.line_options(src, id, lines.carried.get(&src).copied());
        for o in &merged.lifted {
            plan.warnings.push(format!(
                "{path}: {}'s line loses `{o}`, which trustmesh wrote for a policy the inventory no \
                 longer asks for: the edge grants more from now on ({})",
                self.inv.nodes[src].name,
                self.inv.policy(src, id).describe()
            ));
        }
        for o in &merged.dropped {
            plan.warnings.push(format!(
                "{path}: the option `{o}` on {}'s line conflicts with its edge's policy ({}): it is left out \
                 when the line is rewritten",
                self.inv.nodes[src].name,
                self.inv.policy(src, id).describe()
            ));
        }
        merged.options.map(Arc::from)
    }

    /// An authorized_keys line for `src`'s key (`base64` `None`: known
    /// after apply).
    fn key_line(
        &self,
        src: NodeId,
        key_type: Arc<str>,
        base64: Option<Arc<str>>,
        replaces: bool,
        options: Option<Arc<str>>,
    ) -> PlannedLine {
        PlannedLine {
            names: None,
            clear_name: None,
            fingerprint: None,
            key_type,
            base64,
            node: self.names[src].clone(),
            marker: self.markers[src].clone(),
            replaces,
            options,
        }
    }

    /// The options of `source`'s line in `target`'s authorized_keys, from
    /// the options the line has now.
    pub(super) fn line_options(
        &self,
        source: NodeId,
        target: NodeId,
        existing: Option<&str>,
    ) -> crate::formats::key_options::Merged {
        let policy = self.inv.policy(source, target);
        // What trustmesh would write for the edge's source, even with
        // `restrict_source` off: a `from=` of that value is its own.
        let derived = match (&policy.from, existing) {
            (Some(f), _) => Some(f.clone()),
            (None, Some(_)) => self.inv.seen_from(source, target).ok(),
            (None, None) => None,
        };
        crate::formats::key_options::merge(existing, &policy, derived.as_deref())
    }

    /// With `restrict_source`, the manager's own line on `id` must let in
    /// the connection this very plan was read over: one that would not is
    /// refused before it can lock the manager out.
    fn manager_source_check(
        &self,
        id: NodeId,
        acc: &LiveAccount,
        plan: &mut NodePlan,
    ) -> Result<(), Blocker> {
        if id == Inventory::MANAGER || !self.inv.options.restrict_source {
            return Ok(());
        }
        if self.inv.unchecked_source(Inventory::MANAGER, id) {
            plan.warnings.push(format!(
                "restrict_source: the manager's own line on {} gets no from=: over SFTP trustmesh cannot see \
                 where {} sees the manager's connections come from, so a wrong from= could lock the manager out",
                self.inv.nodes[id].name, self.inv.nodes[id].name
            ));
            return Ok(());
        }
        let (Some(seen), Ok(from)) = (
            acc.client_address.as_deref(),
            self.inv.seen_from(Inventory::MANAGER, id),
        ) else {
            return Ok(());
        };
        if crate::model::inventory::sources::covers(from.split(','), seen) {
            return Ok(());
        }
        let node = &self.inv.nodes[id];
        let via = match node.jump {
            Some(j) => &self.inv.nodes[j].name,
            None => &self.inv.manager().name,
        };
        Err(Finding::plan(
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
    pub(super) fn owner(&self, m: Marker<'_>) -> Owner {
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

    /// This cluster's lines for nodes outside the inventory are pruned
    /// while `cluster:` is not set: the cluster is then named after the
    /// manager, and another inventory whose manager has that name too may
    /// have written them. Said, once per file.
    pub(super) fn retired_unnamed(&self, path: &str, nodes: &mut Vec<&str>, plan: &mut NodePlan) {
        if self.inv.cluster_named || nodes.is_empty() {
            return;
        }
        nodes.sort_unstable();
        nodes.dedup();
        let c = &self.inv.cluster;
        plan.warnings.push(format!(
            "{path}: removes the lines marked `trustmesh:{c}/NODE` for nodes not in this inventory ({}): `cluster:` is not set, \
             so the cluster is named after the manager (`{c}`); if another inventory whose manager is also named `{c}` \
             wrote them, set a `cluster:` of its own in each inventory before applying",
            nodes.join(", ")
        ));
    }

    /// A line marked as this cluster's manager holds a key that is not the
    /// manager's: kept, and said so.
    fn other_manager_key(&self, t: &str, b: &str, path: &str, plan: &mut NodePlan) {
        let fp = crate::formats::known_hosts::fingerprint_sha256(b)
            .unwrap_or_else(|| "an unreadable key".into());
        plan.warnings.push(format!(
            "{path} holds another {t} key ({fp}) marked as this cluster's manager: kept, since trustmesh never \
             removes a manager key it is not rotating itself; if it is stale, delete that line by hand"
        ));
    }

    /// Did an earlier rotation retire this key of `node` (moved aside on
    /// the node, by trustmesh)?
    fn is_retired(&self, node: NodeId, t: &str, b: &str) -> bool {
        self.retired[node]
            .iter()
            .any(|(rt, rb)| &**rt == t && &**rb == b)
    }

    fn is_manager_key(&self, t: &str, b: &str) -> bool {
        matches!(&self.keys[Inventory::MANAGER], KeyState::Known { key_type, base64 } if &**key_type == t && &**base64 == b)
    }
}

/// What becomes of the marked lines of an authorized_keys file (line
/// indices: their text is copied only if the file is edited).
#[derive(Default)]
struct KeyLines<'f> {
    kept: Vec<usize>,
    remove: Vec<usize>,
    /// The wanted keys found in a managed line that stays (in the order of
    /// the wanted keys).
    confirmed: Vec<bool>,
    /// The sources whose managed line is rewritten.
    replaced: HashSet<NodeId>,
    /// The options of a managed line being rewritten: the admin's ones
    /// among them go on the new line.
    carried: HashMap<NodeId, &'f str>,
    /// Lines of keys being rotated: removed last, once the new key holds.
    rotated_out: Vec<(NodeId, usize)>,
    /// The nodes outside the inventory whose lines are pruned.
    retired: Vec<&'f str>,
}

/// Plans the edit of `file` (at `path`, in `role`; `create`: it does not
/// exist yet) when it changes anything: the lines `kept`, `remove` and
/// `on_request` (removed on the operator's request) are indices in `file`.
pub(super) fn push_edit<K: crate::formats::lines::LineKind>(
    plan: &mut NodePlan,
    (path, role, create): (&str, FileRole, bool),
    file: &crate::formats::lines::LineFile<K>,
    (kept, remove, on_request): (Vec<usize>, Vec<usize>, Vec<usize>),
    adopt: Vec<Adoption>,
    add: Vec<PlannedLine>,
) {
    if add.is_empty() && remove.is_empty() && on_request.is_empty() && adopt.is_empty() {
        return;
    }
    plan.changes.push(Change::EditFile(FileEdit {
        path: path.to_string(),
        file: role,
        create,
        kept: texts_at(file, kept),
        remove: texts_at(file, remove),
        remove_on_request: texts_at(file, on_request),
        adopt,
        add,
        after_rotation_of: None,
    }));
}

/// The lines `indices` of `file` with their text.
fn texts_at<K: crate::formats::lines::LineKind>(
    file: &crate::formats::lines::LineFile<K>,
    indices: Vec<usize>,
) -> Vec<(usize, String)> {
    indices.into_iter().map(|i| (i, text_at(file, i))).collect()
}

/// The text of line `i` of either kind of file, without its ending.
pub(super) fn text_at<K: crate::formats::lines::LineKind>(
    file: &crate::formats::lines::LineFile<K>,
    i: usize,
) -> String {
    file.lines()[i].text().to_string()
}

/// A managed file read for planning: its path as shown, and its text and
/// stat ([`read_text`]); the text goes to the plan's base, what apply
/// compares the file with before it writes (compare-and-swap).
pub(super) fn read_base<'a>(
    acc: &'a LiveAccount,
    name: &str,
    plan: &mut NodePlan,
) -> Result<(String, Option<&'a str>, Option<&'a FileStat>), Blocker> {
    let path = display_path(name);
    let (text, stat) = read_text(acc, name, &path)?;
    plan.base.push(FileBase {
        path: path.clone(),
        content: text.map(str::to_string),
    });
    Ok((path, text, stat))
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
            return Err(Finding::plan(
                format!("{path} cannot be read"),
                Some(format!("check its permissions: `ls -l {path}` on the node")),
            ));
        }
        return Ok((None, None));
    };
    match stat.kind {
        FileKind::File => {}
        FileKind::Symlink => {
            return Err(Finding::plan(
                format!("{path} is a symbolic link"),
                Some("trustmesh does not edit through symbolic links: replace the link with the file it points to".into()),
            ))
        }
        _ => {
            return Err(Finding::plan(
                format!("{path} is not a regular file"),
                Some(format!("move it away and plan again: `mv {path} {path}.old`")),
            ))
        }
    }
    let Some(content) = &f.content else {
        return Err(Finding::plan(
            format!("{path} cannot be read"),
            Some(format!("check its permissions: `ls -l {path}` on the node")),
        ));
    };
    match std::str::from_utf8(content) {
        Ok(t) => Ok((Some(t), Some(stat))),
        Err(_) => Err(Finding::plan(
            format!("{path} is not UTF-8 text"),
            Some("trustmesh edits only text files; check the file by hand".into()),
        )),
    }
}
