//! `options.hosts_file`: the cluster's names in `/etc/hosts`, so that
//! nodes reach each other by name (what the Raspberry Pi guides do by
//! hand).
//!
//! One marked block per node, `# BEGIN trustmesh:<cluster>/<node>` ...
//! `# END ...`, appended at the end of the file, one `ADDRESS NAME` line
//! per node whose address is an IP literal (a host name cannot go in
//! `/etc/hosts`). Everything outside the block stays byte for byte
//! ([`crate::formats::block`]). Writing `/etc/hosts` needs root or a passwordless
//! `sudo -n`; elsewhere the plan prints the lines and the command to run
//! instead ([`manual_command`]).
//!
//! Pure: the planner gives the names and addresses, this module makes the
//! text.

use std::net::IpAddr;

use crate::formats::block::{self, BlockError};

/// The path trustmesh manages.
pub const PATH: &str = "/etc/hosts";

/// Whether an inventory address can go in `/etc/hosts`.
pub fn is_ip(address: &str) -> bool {
    address.parse::<IpAddr>().is_ok()
}

/// The block's lines: `ADDRESS NAME` for each (name, address) whose
/// address is an IP literal, in the order given.
pub fn block_lines<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    entries
        .into_iter()
        .filter(|(_, a)| is_ip(a))
        .map(|(n, a)| format!("{a} {n}"))
        .collect()
}

/// The lines of the block of `marker` in `text`, if there is one.
pub fn block_of(text: &str, marker: &str) -> Result<Option<block::BlockLines>, BlockError> {
    block::content(text, marker)
}

/// `text` with the block of `marker` holding `inner` (`None`: removed); a
/// new block goes at the end, an existing one is replaced in place.
pub fn with_block(
    text: &str,
    marker: &str,
    inner: Option<&[String]>,
) -> Result<String, BlockError> {
    block::set(text, marker, inner, &|l| l.len(), &|_, _| true)
}

/// The names of `names` that a line outside the block of `marker` already
/// maps (the first line for a name wins in `/etc/hosts`).
pub fn names_outside(text: &str, marker: &str, names: &[&str]) -> Vec<String> {
    let lines = block::split(text);
    let inside = block::find(&lines, marker).ok().flatten();
    let mut out: Vec<String> = Vec::new();
    for (i, (t, _)) in lines.iter().enumerate() {
        if inside.is_some_and(|(b, e)| i >= b && i <= e) {
            continue;
        }
        let t = t.split('#').next().unwrap_or_default();
        for n in t.split_whitespace().skip(1) {
            if names.iter().any(|x| x.eq_ignore_ascii_case(n)) && !out.iter().any(|o| o == n) {
                out.push(n.to_string());
            }
        }
    }
    out
}

/// What a person runs as root to make the file what the plan wants, when
/// trustmesh cannot: the old block removed (when there is one), the new
/// one appended. `inner` `None`: only the removal.
pub fn manual_command(marker: &str, has_block: bool, inner: Option<&[String]>) -> String {
    let mut cmd = String::new();
    if has_block {
        let esc = |s: String| s.replace('/', "\\/");
        cmd.push_str(&format!(
            "sudo sed -i '/^{}$/,/^{}$/d' {PATH}\n",
            esc(block::begin_line(marker)),
            esc(block::end_line(marker))
        ));
    }
    if let Some(inner) = inner {
        cmd.push_str(&format!("sudo tee -a {PATH} >/dev/null <<'EOF'\n"));
        cmd.push_str(&block::begin_line(marker));
        cmd.push('\n');
        for l in inner {
            cmd.push_str(l);
            cmd.push('\n');
        }
        cmd.push_str(&block::end_line(marker));
        cmd.push_str("\nEOF\n");
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "trustmesh:lab/node1";
    const ETC: &str =
        "127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n# comment\n10.0.0.9 node2 # by hand\n";

    #[test]
    fn the_block_holds_ip_literals_only() {
        let lines = block_lines([
            ("node1", "10.0.0.1"),
            ("v6", "fd00::2"),
            ("named", "gpu1.example.org"),
        ]);
        assert_eq!(lines, ["10.0.0.1 node1", "fd00::2 v6"]);
    }

    #[test]
    fn written_at_the_end_replaced_in_place_and_removed() {
        let inner: Vec<String> = vec!["10.0.0.1 node1".into(), "10.0.0.2 node2".into()];
        let t = with_block(ETC, M, Some(&inner)).unwrap();
        assert_eq!(
            t,
            format!("{ETC}# BEGIN trustmesh:lab/node1\n10.0.0.1 node1\n10.0.0.2 node2\n# END trustmesh:lab/node1\n")
        );
        assert_eq!(block_of(&t, M).unwrap(), Some(inner.clone()));
        assert_eq!(block_of(ETC, M).unwrap(), None);
        // Lines added after the block by someone else stay after it.
        let later = format!("{t}192.0.2.1 other\n");
        let t2 = with_block(&later, M, Some(&inner[..1])).unwrap();
        assert_eq!(
            t2,
            format!("{ETC}# BEGIN trustmesh:lab/node1\n10.0.0.1 node1\n# END trustmesh:lab/node1\n192.0.2.1 other\n")
        );
        assert_eq!(with_block(&t, M, None).unwrap(), ETC);
        // No final newline: kept for the user's last line, which gets one
        // only because the block follows it.
        let t = with_block("127.0.0.1 localhost", M, Some(&inner[..1])).unwrap();
        assert!(t.starts_with("127.0.0.1 localhost\n# BEGIN"), "{t}");
    }

    #[test]
    fn names_mapped_by_hand_are_found() {
        assert_eq!(names_outside(ETC, M, &["node2", "node1"]), ["node2"]);
        assert!(names_outside(ETC, M, &["comment"]).is_empty());
    }

    #[test]
    fn the_manual_command() {
        let c = manual_command(M, true, Some(&["10.0.0.1 node1".to_string()]));
        assert_eq!(
            c,
            "sudo sed -i '/^# BEGIN trustmesh:lab\\/node1$/,/^# END trustmesh:lab\\/node1$/d' /etc/hosts\nsudo tee -a /etc/hosts >/dev/null <<'EOF'\n# BEGIN trustmesh:lab/node1\n10.0.0.1 node1\n# END trustmesh:lab/node1\nEOF\n"
        );
        assert!(!manual_command(M, false, None).contains("sed"));
    }
}
