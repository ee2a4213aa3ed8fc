//! Files that belong to another account: only root can change their owner,
//! and only their owner (or root) can change their mode or replace them.
//! When the account is not root, a node whose planned `chown`, `chmod` or
//! write would meet such a file is blocked with the command an admin runs,
//! instead of planning steps that must fail.

use crate::model::finding::Finding;
use crate::model::inventory::Node;
use crate::model::state::{FileStat, LiveAccount, Privilege};

use super::{Change, Ctx, NodePlan, MODE_GO};

impl Ctx<'_> {
    /// The mode (and, for root, the owner) sshd's StrictModes wants on
    /// `path`: planned when it differs; [`blocker`] then checks the account
    /// can do it.
    pub(super) fn fix_mode(
        &self,
        acc: &LiveAccount,
        path: &str,
        s: &FileStat,
        want: u32,
        plan: &mut NodePlan,
    ) {
        // Windows has ACLs, not modes (its SFTP server makes modes up).
        let node = self
            .by_name
            .get(plan.node.as_str())
            .map(|&id| &self.inv.nodes[id]);
        if node.is_some_and(|n| crate::node::abilities(n).acls) {
            return;
        }
        if s.mode & MODE_GO != 0 {
            plan.changes.push(Change::Mode {
                path: path.to_string(),
                from: s.mode,
                to: want,
            });
        }
        if s.uid != acc.uid {
            // Over SFTP the account's uid is only inferred (the owner of
            // `~/.ssh` or the home): said, never chown'ed on a guess.
            if node.is_some_and(|n| !crate::node::abilities(n).commands) {
                plan.warnings.push(format!(
                    "{path} is owned by uid {}, not by uid {} (which owns ~/.ssh or the home); over SFTP \
                     trustmesh does not change owners: check it on the node",
                    s.uid, acc.uid
                ));
                return;
            }
            plan.changes.push(Change::Owner {
                path: path.to_string(),
                from: s.uid,
                to: acc.uid,
            });
        }
    }
}

/// The stat of the file a plan path names (`~/.ssh`, `~/.ssh/NAME`, an
/// absolute path), as the probe read it.
fn stat_of<'a>(acc: &'a LiveAccount, path: &str) -> Option<&'a FileStat> {
    if path == "~/.ssh" {
        return acc.ssh_dir.as_ref();
    }
    let name = path.strip_prefix("~/.ssh/").unwrap_or(path);
    acc.file(name).and_then(|f| f.stat.as_ref())
}

/// A plan path on the node, for a command an admin types there.
fn on_node(acc: &LiveAccount, path: &str) -> String {
    let abs = match path.strip_prefix('~') {
        Some(rest) => format!("{}{rest}", acc.home.trim_end_matches('/')),
        None => path.to_string(),
    };
    quoted(&abs)
}

/// `s`, quoted for a shell when it needs to be.
fn quoted(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c));
    if plain {
        s.to_string()
    } else {
        crate::transport::scripts::shell_quote(s)
    }
}

/// The paths of `plan` that belong to another account and that a change
/// would `chown`, `chmod` or replace, each with its stat.
fn foreign<'a>(acc: &'a LiveAccount, plan: &'a NodePlan) -> Vec<(&'a str, Option<&'a FileStat>)> {
    let mut out: Vec<(&str, Option<&FileStat>)> = Vec::new();
    for c in &plan.changes {
        let (path, always) = match c {
            Change::Owner { path, .. } => (path.as_str(), true),
            Change::Mode { path, .. } => (path.as_str(), false),
            Change::EditFile(e) => (e.path.as_str(), false),
            Change::WriteBlock(b) if !b.sudo => (b.path.as_str(), false),
            _ => continue,
        };
        let stat = stat_of(acc, path);
        let theirs = always || stat.is_some_and(|s| s.uid != acc.uid);
        if theirs && !out.iter().any(|(p, _)| *p == path) {
            out.push((path, stat));
        }
    }
    out
}

/// A [`Finding`] that blocks the node when a change of `plan` needs a file
/// of another account and the account is not root; `None` otherwise (root,
/// or nothing foreign). Windows (ACLs) and SFTP nodes (whose uid is only
/// inferred) are left to their own checks.
pub(super) fn blocker(node: &Node, acc: &LiveAccount, plan: &NodePlan) -> Option<Finding> {
    if acc.uid == 0
        || acc.privilege == Some(Privilege::Root)
        || !crate::node::abilities(node).scripts
    {
        return None;
    }
    let paths = foreign(acc, plan);
    if paths.is_empty() {
        return None;
    }
    let account = if acc.user.is_empty() {
        format!("uid {}", acc.uid)
    } else {
        format!("{} (uid {})", acc.user, acc.uid)
    };
    let list: Vec<String> = paths
        .iter()
        .map(|(p, s)| match s {
            Some(s) => format!("{p} (uid {}, mode {:04o})", s.uid, s.mode),
            None => p.to_string(),
        })
        .collect();
    let reason = format!(
        "owned by another account: {}; {account} is not root, so it can neither give {} back nor change {} mode \
         or content: nothing is planned on this node",
        list.join(", "),
        if paths.len() == 1 { "it" } else { "them" },
        if paths.len() == 1 { "its" } else { "their" },
    );
    // `chown -R` on ~/.ssh gives back everything in it at once.
    let owner = if acc.user.is_empty() {
        format!("{}:{}", acc.uid, acc.gid)
    } else {
        format!("{}:", quoted(&acc.user))
    };
    let whole = paths.iter().any(|(p, _)| *p == "~/.ssh");
    let mut commands = Vec::new();
    if whole {
        commands.push(format!("chown -R {owner} {}", on_node(acc, "~/.ssh")));
    }
    let rest: Vec<String> = paths
        .iter()
        .filter(|(p, _)| !(whole && (*p == "~/.ssh" || p.starts_with("~/.ssh/"))))
        .map(|(p, _)| on_node(acc, p))
        .collect();
    if !rest.is_empty() {
        commands.push(format!("chown {owner} {}", rest.join(" ")));
    }
    let command = commands.join(" && ");
    let hint = match acc.privilege {
        Some(Privilege::Sudo) => format!(
            "this account has a passwordless sudo, which trustmesh does not use for this: run `sudo sh -c '{command}'` on \
             the node, then plan again (trustmesh then sets the modes itself)"
        ),
        _ => format!(
            "an admin runs, as root on the node: `{command}`, then plan again (trustmesh then sets the modes itself)"
        ),
    };
    Some(Finding::plan(reason, Some(hint)))
}
