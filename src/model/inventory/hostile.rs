//! Inventory values that reach ssh: what ssh would read differently from
//! what trustmesh means, refused with a message of its own, and names that
//! would shadow a real host, warned about.
//!
//! - The manager's `identity` and `known_hosts` are written into ssh
//!   configs (the per-run `-F` file, the `options.ssh_config` aliases,
//!   verify's file) and are taken by trustmesh as its own files. ssh
//!   expands `${VAR}` and `~NAME` in them and reads `\` as an escape, so
//!   such a path would make trustmesh edit one file while ssh reads
//!   another: refused, as are control characters, a leading `-` (an option
//!   to a command) and `..` components (a path that climbs out of where it
//!   says it is). `%` is not refused: trustmesh writes it as `%%`.
//! - The cluster's name follows the node-name rule (it names
//!   `~/.ssh/config.d/trustmesh-<cluster>` and is in every marker), and
//!   neither takes `..`.
//! - Node names, accounts and addresses have charsets of their own
//!   ([`super::values`]) that keep out `$`, `\`, control characters and a
//!   leading `-`.
//!
//! Warnings (the inventory stays valid): with `options.ssh_config` or
//! `options.hosts_file` on, a node named like a public domain name
//! (`github.com`) gets an alias or an `/etc/hosts` line under that name,
//! which shadows the real host for every program there. "Like a public
//! domain name": a name with a dot whose last label is one of
//! [`PUBLIC_SUFFIXES`] or any two letters (a country code).

use super::checks::Checker;
use super::limits::shown;
use super::spans::Path;
use super::validate::problem;
use super::values::is_valid_name;
use super::{Inventory, Problem, Role};

/// The manager's path `value` at `p` (`identity`, `known_hosts`): the
/// first rule it breaks, if any. Called once the path is known to be on
/// one line without a double quote.
pub(super) fn tool_path(p: &Path, value: &str, what: &str, problems: &mut Vec<Problem>) {
    let example = format!("e.g. `~/.ssh/{}`", example_name(what));
    let (code, message, label, help) = if let Some(c) = value.chars().find(|c| c.is_control()) {
        (
            "trustmesh::inventory::path_control",
            format!("`{p}` holds a control character ({c:?})"),
            "a control character",
            format!("retype the {what} path with printable characters only, {example}"),
        )
    } else if value.contains('$') {
        (
            "trustmesh::inventory::path_variable",
            format!(
                "`{p}` holds `$`: ssh expands `${{VAR}}` in the {what} path, so it would read another file than the one trustmesh edits"
            ),
            "`$` here",
            format!("write the path itself, without variables, {example} (`~/` is understood)"),
        )
    } else if value.contains('\\') {
        (
            "trustmesh::inventory::path_backslash",
            format!(
                "`{p}` holds a backslash: ssh reads it as an escape in its config (a trailing one swallows the closing quote)"
            ),
            "`\\` here",
            format!("separate folders with `/`, {example}"),
        )
    } else if value.starts_with('-') {
        (
            "trustmesh::inventory::path_dash",
            format!("`{p}` starts with `-`: a command would take it for an option"),
            "starts with `-`",
            format!("write the path from `~/` or `/`, {example}"),
        )
    } else if value.starts_with('~') && !value.starts_with("~/") && value != "~" {
        (
            "trustmesh::inventory::path_tilde",
            format!(
                "`{p}` starts with `~NAME`: ssh reads another account's home there, trustmesh does not"
            ),
            "`~NAME`",
            format!("write `~/...` for the home of the account running trustmesh, or the absolute path, {example}"),
        )
    } else if value.split('/').any(|c| c == "..") {
        (
            "trustmesh::inventory::path_parent",
            format!(
                "`{p}` holds a `..` component: trustmesh takes this path as one of its own files, and refuses one that climbs out of a folder"
            ),
            "a `..` component",
            format!("write the path without `..` (the absolute path, or one from `~/`), {example}"),
        )
    } else {
        return;
    };
    problems.push(problem(p.clone(), code, message, label, Some(help)));
}

fn example_name(what: &str) -> &'static str {
    if what == "known_hosts" {
        "known_hosts"
    } else {
        "id_ed25519"
    }
}

impl Checker<'_> {
    /// `cluster:`: the node-name rule, and no `..`.
    pub(super) fn cluster(&mut self, p: Path, name: &str) {
        if !is_valid_name(name) {
            self.problems.push(problem(
                p,
                "trustmesh::inventory::name",
                format!("`{}` is not a valid cluster name", shown(name)),
                "not a valid cluster name",
                Some("the cluster's name is in every marker and in the name of `~/.ssh/config.d/trustmesh-<cluster>`: it starts with a letter or digit and holds only letters, digits, `.`, `_` and `-`".into()),
            ));
        } else {
            self.no_dots(p, name, "cluster");
        }
    }

    /// `..` in a name that is otherwise valid.
    pub(super) fn no_dots(&mut self, p: Path, name: &str, what: &str) {
        if name.contains("..") {
            self.problems.push(problem(
                p,
                "trustmesh::inventory::name_dots",
                format!("the {what} name `{}` holds `..`", shown(name)),
                "`..` here",
                Some(format!(
                    "names end up in file names and ssh `Host` lines, where `..` reads as a parent folder: use one `.` (or `-`) between the parts of the {what} name"
                )),
            ));
        }
    }
}

/// The last labels that make a dotted node name look like a public domain
/// name, besides any two letters (a country code).
pub const PUBLIC_SUFFIXES: &[&str] = &[
    "com", "net", "org", "edu", "gov", "mil", "int", "io", "dev", "app", "ai", "cloud", "info",
    "biz", "xyz", "online", "site", "tech",
];

/// Does `name` look like a public domain name?
pub fn looks_public(name: &str) -> bool {
    let Some((_, last)) = name.rsplit_once('.') else {
        return false;
    };
    let last = last.to_ascii_lowercase();
    (last.len() == 2 && last.chars().all(|c| c.is_ascii_alphabetic()))
        || PUBLIC_SUFFIXES.contains(&last.as_str())
}

/// An inventory warning, placed in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Stable code, e.g. `trustmesh::model::inventory::public_name`.
    pub code: &'static str,
    pub message: String,
    pub help: String,
    /// `file:line:col` of the value.
    pub place: String,
    /// The same place as data: the file as named in messages, and the
    /// 1-based line and column.
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}; {}", self.place, self.message, self.help)
    }
}

/// The warnings of a valid inventory, each with the YAML path it is about.
pub(super) fn warnings(inv: &Inventory) -> Vec<(Path, &'static str, String, String)> {
    let o = &inv.options;
    if !o.ssh_config && !o.hosts_file {
        return Vec::new();
    }
    let what = match (o.ssh_config, o.hosts_file) {
        (true, true) => "an ssh alias and an /etc/hosts line",
        (true, false) => "an ssh alias",
        _ => "an /etc/hosts line",
    };
    let root = Path::root();
    let bastions = inv.nodes.iter().filter(|n| n.role == Role::Bastion).count();
    let mut out = Vec::new();
    for (id, n) in inv.nodes.iter().enumerate() {
        if !looks_public(&n.name) {
            continue;
        }
        let p = match n.role {
            Role::Manager => root.key("manager"),
            Role::Bastion => root.key("bastions").index(id - 1),
            Role::Worker => root.key("workers").index(id - 1 - bastions),
        };
        out.push((
            p.key("name"),
            "trustmesh::inventory::public_name",
            format!(
                "the node name `{}` looks like a public domain name: {what} under that name would shadow the real host `{}` on the nodes",
                shown(&n.name),
                shown(&n.name)
            ),
            "give the node a name of its own (without a public suffix such as `.com` or a country code) and keep the host name in `address:`".to_string(),
        ));
    }
    out
}
