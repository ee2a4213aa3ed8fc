//! Planning of the blocks trustmesh owns in files that are someone else's:
//! the Host aliases of options.ssh_config (a file of its own in
//! `~/.ssh/config.d`, included from `~/.ssh/config`) and the cluster's
//! names in `/etc/hosts` (options.hosts_file). The text itself is made by
//! [`crate::formats::ssh_config`] and [`crate::formats::hosts_file`]; here is what each node
//! needs, and whether trustmesh may write it.

use super::*;
use crate::formats::block;
use crate::formats::hosts_file;
use crate::formats::ssh_config::{self, Alias};
use crate::model::state::Privilege;
use authorized_keys::read_text;

/// Lines of a text, without their endings.
fn lines_of(text: &str) -> Vec<String> {
    block::split(text)
        .into_iter()
        .map(|(t, _)| t.to_string())
        .collect()
}

impl Ctx<'_> {
    /// The aliases `id` gets: one per node it has an edge to. A node behind
    /// a jump is reached through the jump's own alias, so it is left out
    /// (and said so) where the source has no edge to the jump; the manager
    /// has an edge to every node.
    fn aliases(&self, id: NodeId, plan: &mut NodePlan) -> Vec<Alias> {
        let mut targets: Vec<NodeId> = self.graph.outgoing(id).map(|e| e.target).collect();
        targets.sort_unstable();
        targets.dedup();
        let running = self
            .live
            .account(Inventory::MANAGER)
            .map(|a| a.user.clone())
            .filter(|u| !u.is_empty());
        let source = &self.inv.nodes[id];
        let identity = display_path(&self.files[id].key);
        let known_hosts = if id == Inventory::MANAGER {
            source.known_hosts.clone()
        } else {
            None
        };
        // Whether `t` can be reached from `id` through aliases of this file
        // (no jump, or a jump that is `id` itself or has an alias here).
        let reachable = |t: NodeId| {
            let mut at = t;
            // Jump chains have no cycles (the inventory is validated); the
            // bound only keeps this total.
            for _ in 0..self.inv.nodes.len() {
                match self.inv.nodes[at].jump {
                    None => return true,
                    Some(j) if j == id => return true,
                    Some(j) if targets.binary_search(&j).is_ok() => at = j,
                    Some(_) => return false,
                }
            }
            false
        };
        let mut out = Vec::new();
        for &t in &targets {
            let node = &self.inv.nodes[t];
            let Some(address) = node.address.clone() else {
                continue;
            };
            if !reachable(t) {
                let jump = node.jump.map(|j| self.inv.nodes[j].name.as_str());
                plan.warnings.push(format!(
                    "no ssh alias for {}: it is reached through {}, and {} has no edge to it",
                    node.name,
                    jump.unwrap_or("?"),
                    source.name
                ));
                continue;
            }
            out.push(Alias {
                name: node.name.clone(),
                host_name: address,
                port: node.port,
                user: node.user.clone().or_else(|| running.clone()),
                identity: identity.clone(),
                // With restrict_source, a worker's edges go direct, as
                // the from= on their lines expects (through a jump host
                // the target would see the jump host's address).
                proxy_jump: node
                    .jump
                    .filter(|&j| j != id)
                    .filter(|_| id == Inventory::MANAGER || !self.inv.options.restrict_source)
                    .map(|j| self.inv.nodes[j].name.clone()),
                known_hosts: known_hosts.clone(),
            });
        }
        out
    }

    /// options.ssh_config on `id`: its aliases file and the Include block.
    pub(super) fn ssh_config(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        let Some(cf) = &self.files[id].ssh_config else {
            return;
        };
        let o = &self.inv.options;
        let marker = &*self.markers[id];
        let wanted: Option<Vec<String>> = if o.ssh_config {
            let aliases = self.aliases(id, plan);
            (!aliases.is_empty()).then(|| ssh_config::file_lines(marker, &aliases))
        } else {
            None
        };
        let (mpath, cpath) = (display_path(&cf.managed), display_path(&cf.config));
        let read = |name: &str, path: &str, plan: &mut NodePlan| match read_text(acc, name, path) {
            Ok((text, stat)) => Some((text, stat.is_some())),
            Err(Finding { reason, hint, .. }) => {
                if o.ssh_config {
                    plan.warnings.push(format!(
                        "options.ssh_config is not applied here: {reason}{}",
                        hint.map(|h| format!(" ({h})")).unwrap_or_default()
                    ));
                }
                None
            }
        };
        let Some((mtext, mexists)) = read(&cf.managed, &mpath, plan) else {
            return;
        };
        let Some((ctext, cexists)) = read(&cf.config, &cpath, plan) else {
            return;
        };
        if let Some(t) = mtext {
            if !ssh_config::is_ours(t, marker) {
                if o.ssh_config {
                    plan.warnings.push(format!(
                        "{mpath} exists and was not written by trustmesh: left alone, and no aliases are set up \
                         (move it away and plan again)"
                    ));
                }
                return;
            }
        }
        let now_block = match block::content(ctext.unwrap_or_default(), marker) {
            Ok(b) => b,
            Err(e) => {
                plan.warnings.push(format!(
                    "{cpath}: {e}; trustmesh does not touch it until the block is whole again (or removed)"
                ));
                return;
            }
        };
        if wanted.is_none() && (!o.prune || (mtext.is_none() && now_block.is_none())) {
            return;
        }
        let include = wanted
            .as_ref()
            .map(|_| ssh_config::include_lines(&self.inv.cluster));
        let new_config =
            match ssh_config::with_include(ctext.unwrap_or_default(), marker, include.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    plan.warnings.push(format!("{cpath}: {e}"));
                    return;
                }
            };
        let file_change = (mtext.map(str::to_string)
            != wanted.as_deref().map(ssh_config::file_text))
        .then(|| {
            Change::WriteBlock(BlockWrite {
                path: mpath.clone(),
                role: BlockRole::SshConfigFile,
                marker: marker.to_string(),
                create: !mexists,
                old: mtext.map(lines_of).unwrap_or_default(),
                new: wanted.as_deref().map(Arc::from),
                sudo: false,
            })
        });
        let include_change = (new_config != ctext.unwrap_or_default()).then(|| {
            Change::WriteBlock(BlockWrite {
                path: cpath.clone(),
                role: BlockRole::SshConfigInclude,
                marker: marker.to_string(),
                create: !cexists,
                old: now_block.clone().unwrap_or_default(),
                new: include.as_deref().map(Arc::from),
                sudo: false,
            })
        });
        if file_change.is_none() && include_change.is_none() {
            return;
        }
        // The folder of the file, made when missing; never written through
        // a link or something else.
        let mut make_dir = None;
        if wanted.is_some() && file_change.is_some() {
            match acc.file(&cf.dir).and_then(|f| f.stat.as_ref()) {
                None => {
                    make_dir = Some(Change::CreateDir {
                        path: display_path(&cf.dir),
                        mode: 0o700,
                    })
                }
                Some(s) if s.kind != FileKind::Dir => {
                    plan.warnings.push(format!(
                        "{} is not a folder: options.ssh_config is not applied here",
                        display_path(&cf.dir)
                    ));
                    return;
                }
                Some(_) => {}
            }
        }
        plan.base.push(FileBase {
            path: cpath.clone(),
            content: ctext.map(str::to_string),
        });
        plan.base.push(FileBase {
            path: mpath.clone(),
            content: mtext.map(str::to_string),
        });
        if wanted.is_some() {
            // The folder, the file, then the Include that names it.
            plan.changes.extend(make_dir);
            plan.changes.extend(file_change);
            plan.changes.extend(include_change);
        } else {
            // The Include goes first: it never names a missing file.
            plan.changes.extend(include_change);
            plan.changes.extend(file_change);
        }
    }

    /// options.hosts_file on `id`: the cluster's block in `/etc/hosts`.
    pub(super) fn hosts_file(&self, id: NodeId, acc: &LiveAccount, plan: &mut NodePlan) {
        if !self.files[id].etc_hosts {
            return;
        }
        let o = &self.inv.options;
        let marker = &*self.markers[id];
        let want: Option<&[String]> = o.hosts_file.then_some(&self.hosts_lines[..]);
        let path = hosts_file::PATH;
        let (text, exists) = match read_text(acc, path, path) {
            Ok((t, s)) => (t, s.is_some()),
            Err(Finding { reason, .. }) => {
                if o.hosts_file {
                    plan.warnings
                        .push(format!("options.hosts_file is not applied here: {reason}"));
                }
                return;
            }
        };
        if acc.file(path).is_none() {
            // Not read (an older probe): nothing to judge.
            return;
        }
        let text = text.unwrap_or_default();
        let now = match hosts_file::block_of(text, marker) {
            Ok(b) => b,
            Err(e) => {
                plan.warnings.push(format!(
                    "{path}: {e}; trustmesh does not touch it until the block is whole again (or removed)"
                ));
                return;
            }
        };
        if want.is_none() && (now.is_none() || !o.prune) {
            return;
        }
        let new_text = match hosts_file::with_block(text, marker, want) {
            Ok(t) => t,
            Err(e) => {
                plan.warnings.push(format!("{path}: {e}"));
                return;
            }
        };
        if let Some(lines) = want {
            let names: Vec<&str> = lines
                .iter()
                .filter_map(|l| l.split_whitespace().nth(1))
                .collect();
            let by_hand = hosts_file::names_outside(text, marker, &names);
            if !by_hand.is_empty() {
                plan.warnings.push(format!(
                    "{path} already maps {} on lines trustmesh did not write; the first line for a name wins",
                    by_hand.join(", ")
                ));
            }
        }
        if new_text == text {
            return;
        }
        let root = acc.uid == 0 || acc.privilege == Some(Privilege::Root);
        let sudo = acc.privilege == Some(Privilege::Sudo);
        if root || sudo {
            plan.base.push(FileBase {
                path: path.to_string(),
                content: exists.then(|| text.to_string()),
            });
            plan.changes.push(Change::WriteBlock(BlockWrite {
                path: path.to_string(),
                role: BlockRole::HostsBlock,
                marker: marker.to_string(),
                create: !exists,
                old: now.unwrap_or_default(),
                new: want.map(|_| self.hosts_lines.clone()),
                sudo: !root,
            }));
            return;
        }
        let what = match (&now, want) {
            (None, _) => "add the cluster's names",
            (Some(_), Some(_)) => "update the cluster's names",
            (Some(_), None) => "remove the cluster's names",
        };
        let cmd = hosts_file::manual_command(marker, now.is_some(), want);
        let lines = want
            .map(|l| {
                format!(
                    "\n      the block:\n        {}\n        {}\n        {}",
                    block::begin_line(marker),
                    l.join("\n        "),
                    block::end_line(marker)
                )
            })
            .unwrap_or_default();
        let account = if acc.user.is_empty() {
            "the account"
        } else {
            &acc.user
        };
        // With hosts_file off, `sudo -n true` is not even tried (it is
        // logged on the node): the block stays until removed by hand.
        let why = match acc.privilege {
            Some(_) => {
                format!("{account} is not root and has no passwordless sudo (`sudo -n true` fails)")
            }
            None => format!(
                "{account} is not root, and sudo is not tried while options.hosts_file is off"
            ),
        };
        plan.warnings.push(format!(
            "{path} is not written here: {why}; \
             to {what}, run on {} as an account that may:{lines}\n      the command:\n        {}",
            self.inv.nodes[id].name,
            cmd.trim_end().replace('\n', "\n        ")
        ));
    }
}
