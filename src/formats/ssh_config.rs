//! `options.ssh_config`: Host aliases so that `ssh node` just works.
//!
//! Each account with outgoing edges (and the manager) gets a file of its
//! own, `~/.ssh/config.d/trustmesh-<cluster>`, wholly trustmesh's, with one
//! `Host` block per node it may reach; and a marked block in
//! `~/.ssh/config` that includes it:
//!
//! ```text
//! # BEGIN trustmesh:lab/manager
//! Include config.d/trustmesh-lab
//! # END trustmesh:lab/manager
//! ```
//!
//! ssh keeps the first value it reads for each option, so the block goes
//! before the first `Host` or `Match` line (and before any other option
//! line: a `User` at the top of the file would win over the alias's too);
//! a block at the end would lose to the user's `Host *`. An alias without
//! a jump says `ProxyCommand none`, so that a proxy of the user's `Host *`
//! does not catch it either. After an
//! `Include`, ssh restores the including file's `Host`/`Match` state, so
//! the user's lines that follow keep their meaning. Every other line of
//! `~/.ssh/config` stays byte for byte ([`crate::formats::block`]).
//!
//! Pure: the planner gives the aliases, this module makes the text.

use std::fmt::Write as _;

use crate::formats::block::{self, BlockError};

/// The managed file, relative to `~/.ssh`.
pub fn managed_name(cluster: &str) -> String {
    format!("config.d/trustmesh-{cluster}")
}

/// The lines of the block in `~/.ssh/config`.
pub fn include_lines(cluster: &str) -> Vec<String> {
    vec![format!("Include {}", managed_name(cluster))]
}

/// The first line of the managed file: whose it is. A file at that path
/// without it is not trustmesh's, and is never overwritten.
pub fn header(marker: &str) -> String {
    format!("# {marker}: written by trustmesh; edits here are overwritten")
}

/// Whether the managed file's text is trustmesh's (its first line is the
/// header for `marker`).
pub fn is_ours(text: &str, marker: &str) -> bool {
    block::split(text)
        .first()
        .is_some_and(|(t, _)| t.trim_end() == header(marker))
}

/// One `Host` block of the managed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The node's name: what the user types (`ssh node1`).
    pub name: String,
    /// Its address (`HostName`).
    pub host_name: String,
    pub port: u16,
    pub user: Option<String>,
    /// The source account's private key.
    pub identity: String,
    /// The alias of the node it is reached through.
    pub proxy_jump: Option<String>,
    /// The manager's own known_hosts, when it is not the default.
    pub known_hosts: Option<String>,
}

/// A value for an ssh_config line: `%` is a token there, so it is doubled;
/// a value with blanks is double-quoted. Inventory values are validated
/// before they get here (no quotes, no line breaks).
fn value(s: &str) -> String {
    let s = s.replace('%', "%%");
    if s.contains([' ', '\t']) {
        format!("\"{s}\"")
    } else {
        s
    }
}

/// The managed file's lines.
pub fn file_lines(marker: &str, aliases: &[Alias]) -> Vec<String> {
    let mut out = vec![header(marker)];
    for a in aliases {
        out.push(String::new());
        out.push(format!("Host {}", a.name));
        let mut l = |s: String| out.push(format!("    {s}"));
        l(format!("HostName {}", a.host_name));
        l(format!("Port {}", a.port));
        if let Some(u) = &a.user {
            l(format!("User {u}"));
        }
        l(format!("IdentityFile {}", value(&a.identity)));
        l("IdentitiesOnly yes".into());
        // A proxy of the user's `Host *` must not catch the alias: the
        // first value wins, and `ProxyCommand none` (known to every
        // OpenSSH, unlike `ProxyJump none`) stops both.
        match &a.proxy_jump {
            Some(j) => l(format!("ProxyJump {j}")),
            None => l("ProxyCommand none".into()),
        }
        if let Some(k) = &a.known_hosts {
            l(format!("UserKnownHostsFile {}", value(k)));
        }
    }
    out
}

/// The managed file's text.
pub fn file_text(lines: &[String]) -> String {
    let mut s = String::new();
    for l in lines {
        let _ = writeln!(s, "{l}");
    }
    s
}

/// The keyword of a config line (ASCII lowercased), `None` for a blank or
/// comment line. A keyword ends at a blank or `=`.
pub fn keyword(line: &str) -> Option<String> {
    let t = line.trim_start_matches([' ', '\t']);
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let end = t.find([' ', '\t', '=']).unwrap_or(t.len());
    Some(t[..end].to_ascii_lowercase())
}

/// The index of the first `Host` or `Match` line, if any.
pub fn first_section(lines: &[(&str, &str)]) -> Option<usize> {
    lines
        .iter()
        .position(|(t, _)| matches!(keyword(t).as_deref(), Some("host" | "match")))
}

/// Where a new Include block goes: before the first option line (a `Host`
/// or `Match` line, or a global option that would win over the alias's),
/// and above the comment lines written right on top of it (they describe
/// it). A file with only comments gets it at the end.
pub fn place(lines: &[(&str, &str)]) -> usize {
    let Some(first) = lines.iter().position(|(t, _)| keyword(t).is_some()) else {
        return lines.len();
    };
    let mut at = first;
    while at > 0 && lines[at - 1].0.trim_start().starts_with('#') {
        at -= 1;
    }
    at
}

/// The options an alias sets: a global line setting one of them above the
/// Include would win over the alias's value (ssh keeps the first). Not
/// `Include`: another cluster's block above this one must not make the two
/// clusters move their blocks above each other on every run.
const ALIAS_KEYWORDS: [&str; 8] = [
    "hostname",
    "port",
    "user",
    "identityfile",
    "identitiesonly",
    "proxyjump",
    "proxycommand",
    "userknownhostsfile",
];

/// `text` (`~/.ssh/config`, empty when missing) with the Include block of
/// `marker` set to `inner` (`None`: removed). An existing block stays where
/// it is when it comes before the first `Host`/`Match` line and after no
/// global line setting what an alias sets; otherwise (conditional, or
/// overridden) it is moved up to where a new block goes.
pub fn with_include(
    text: &str,
    marker: &str,
    inner: Option<&[String]>,
) -> Result<String, BlockError> {
    block::set(text, marker, inner, &place, &|lines, begin| {
        first_section(lines).is_none_or(|s| begin < s)
            && !lines[..begin]
                .iter()
                .any(|(t, _)| keyword(t).is_some_and(|k| ALIAS_KEYWORDS.contains(&k.as_str())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "trustmesh:lab/manager";

    fn inc() -> Vec<String> {
        include_lines("lab")
    }

    #[test]
    fn the_include_goes_before_the_first_host_or_match_line() {
        let user = "# my config\n\nhost *\n    User nobody\n    Port 1\n";
        let t = with_include(user, M, Some(&inc())).unwrap();
        assert_eq!(
            t,
            "# my config\n\n# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\nhost *\n    User nobody\n    Port 1\n"
        );
        // Removing it gives the user's bytes back.
        assert_eq!(with_include(&t, M, None).unwrap(), user);
        // Match too, keywords in any case, `=` as separator.
        let t = with_include("MATCH=all\n  user x\n", M, Some(&inc())).unwrap();
        assert!(t.starts_with("# BEGIN trustmesh:lab/manager\n"), "{t}");
        // A global option first: the block goes above it, so it cannot
        // win over the alias's values.
        let t = with_include("User nobody\nHost a\n", M, Some(&inc())).unwrap();
        assert!(t.starts_with("# BEGIN"), "{t}");
        // Comment lines on top of a Host block stay with it.
        let t = with_include("Compression yes\n\n# work\nHost w\n", M, Some(&inc())).unwrap();
        assert!(t.starts_with("# BEGIN"), "{t}");
        let t = with_include("# head\n\n# work\nHost w\n", M, Some(&inc())).unwrap();
        assert!(t.starts_with("# head\n\n# BEGIN"), "{t}");
    }

    #[test]
    fn files_without_options_crlf_and_no_final_newline() {
        assert_eq!(
            with_include("", M, Some(&inc())).unwrap(),
            "# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\n"
        );
        let t = with_include("# only a comment", M, Some(&inc())).unwrap();
        assert!(t.starts_with("# only a comment\n# BEGIN"), "{t}");
        let user = "Host a\r\n  Port 2\r\n  User b";
        let t = with_include(user, M, Some(&inc())).unwrap();
        assert_eq!(
            t,
            format!("# BEGIN trustmesh:lab/manager\r\nInclude config.d/trustmesh-lab\r\n# END trustmesh:lab/manager\r\n{user}")
        );
        assert_eq!(with_include(&t, M, None).unwrap(), user);
    }

    #[test]
    fn an_existing_block_is_kept_in_place_or_moved_above_host_lines() {
        let t = "Compression yes\n# BEGIN trustmesh:lab/manager\nInclude old\n# END trustmesh:lab/manager\nHost a\n";
        let out = with_include(t, M, Some(&inc())).unwrap();
        assert_eq!(
            out,
            t.replace("Include old", "Include config.d/trustmesh-lab")
        );
        let late = "Host a\n  Port 2\n# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\n";
        let out = with_include(late, M, Some(&inc())).unwrap();
        assert_eq!(
            out,
            "# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\nHost a\n  Port 2\n"
        );
        // A global option the aliases set, added above the block later,
        // would win over them: the block moves above it.
        let beaten = "User nobody\n# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\n";
        let out = with_include(beaten, M, Some(&inc())).unwrap();
        assert_eq!(
            out,
            "# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\nUser nobody\n"
        );
        // Another cluster's block is someone else's.
        let other = "# BEGIN trustmesh:x/manager\nInclude config.d/trustmesh-x\n# END trustmesh:x/manager\nHost a\n";
        let out = with_include(other, M, Some(&inc())).unwrap();
        assert!(
            out.ends_with(other) && out.starts_with("# BEGIN trustmesh:lab/"),
            "{out}"
        );
    }

    #[test]
    fn the_managed_file() {
        let aliases = vec![
            Alias {
                name: "w1".into(),
                host_name: "10.0.0.1".into(),
                port: 2222,
                user: Some("agilab".into()),
                identity: "~/.ssh/id_ed25519".into(),
                proxy_jump: None,
                known_hosts: Some("/home/a b/kh%".into()),
            },
            Alias {
                name: "hidden".into(),
                host_name: "fd00::5".into(),
                port: 22,
                user: None,
                identity: "~/.ssh/id_ed25519".into(),
                proxy_jump: Some("gw".into()),
                known_hosts: None,
            },
        ];
        let lines = file_lines(M, &aliases);
        let text = file_text(&lines);
        assert!(is_ours(&text, M));
        assert!(!is_ours("Host x\n", M));
        assert!(!is_ours(&text, "trustmesh:other/manager"));
        assert_eq!(
            text,
            "# trustmesh:lab/manager: written by trustmesh; edits here are overwritten\n\nHost w1\n    HostName 10.0.0.1\n    Port 2222\n    User agilab\n    IdentityFile ~/.ssh/id_ed25519\n    IdentitiesOnly yes\n    ProxyCommand none\n    UserKnownHostsFile \"/home/a b/kh%%\"\n\nHost hidden\n    HostName fd00::5\n    Port 22\n    IdentityFile ~/.ssh/id_ed25519\n    IdentitiesOnly yes\n    ProxyJump gw\n"
        );
    }
}
