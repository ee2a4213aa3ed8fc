//! A [`Draft`] written as a trustmesh inventory: plain YAML in the layout
//! of the examples, every value quoted as YAML needs, and a comment for
//! each thing the import left out. The starter inventory of `trustmesh
//! init` lives here too.

use std::fmt::Write;

use super::{Draft, DraftNode, Imported};

/// The commented starter inventory `trustmesh init` writes (a test keeps
/// it valid).
pub const STARTER: &str = include_str!("starter.yaml");

/// One YAML scalar: plain when YAML reads it back as the same string,
/// quoted otherwise.
fn scalar(s: &str) -> String {
    serde_yaml::to_string(s)
        .map(|t| t.trim_end_matches('\n').to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// Text for a comment: one line, no control characters or bidirectional
/// overrides (the file is read on a terminal and in editors).
fn comment(s: &str) -> String {
    s.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}');
            if c.is_control() || bidi {
                '?'
            } else {
                c
            }
        })
        .collect()
}

fn node(out: &mut String, n: &DraftNode) {
    let _ = writeln!(out, "  - name: {}", scalar(&n.name));
    let _ = writeln!(out, "    address: {}", scalar(&n.address));
    if let Some(p) = n.port {
        let _ = writeln!(out, "    port: {p}");
    }
    if let Some(u) = &n.user {
        let _ = writeln!(out, "    user: {}", scalar(u));
    }
    if let Some(j) = &n.jump {
        let _ = writeln!(out, "    jump: {}", scalar(j));
    }
    if !n.groups.is_empty() {
        let list: Vec<String> = n.groups.iter().map(|g| scalar(g)).collect();
        let _ = writeln!(out, "    groups: [{}]", list.join(", "));
    }
}

/// The inventory text of an import.
pub fn emit(imported: &Imported) -> String {
    let Imported { draft, skipped } = imported;
    let Draft {
        source,
        default_user,
        bastions,
        workers,
    } = draft;
    let mut out = String::new();
    let _ = writeln!(out, "# Written by {}.", comment(source));
    out.push_str(
        "# Check every value, say which edges you want (reverse, mesh), then run\n\
         # `trustmesh validate` and `trustmesh plan`.\n",
    );
    out.push_str("version: 1\n");
    if let Some(u) = default_user {
        let _ = writeln!(out, "defaults:\n  user: {}", scalar(u));
    }
    // The manager's name must not be a node's.
    let taken = |n: &str| bastions.iter().chain(workers.iter()).any(|x| x.name == n);
    let manager = ["manager", "trustmesh-manager", "tm-manager"]
        .into_iter()
        .find(|n| !taken(n))
        .unwrap_or("tm-manager-0");
    let _ = writeln!(
        out,
        "manager:\n  name: {manager}   # this machine; add `address:` (how workers reach it) for reverse edges"
    );
    if !bastions.is_empty() {
        out.push_str("bastions:\n");
        for b in bastions {
            node(&mut out, b);
        }
    }
    if workers.is_empty() {
        out.push_str("workers: []\n");
    } else {
        out.push_str("workers:\n");
        for w in workers {
            node(&mut out, w);
        }
    }
    out.push_str(
        "# reverse: [NAME, ...]    # worker -> manager edges (SSHFS mounts); `all` for every worker\n\
         # mesh:\n\
         #   - group: NAME          # trust both ways among a group's workers\n",
    );
    if !skipped.is_empty() {
        out.push_str("#\n# Not imported:\n");
        let mut skipped: Vec<_> = skipped.iter().collect();
        // By line, those without one last; the order found within a line.
        skipped.sort_by_key(|s| s.line.unwrap_or(usize::MAX));
        for s in skipped {
            match s.line {
                Some(l) => {
                    let _ = writeln!(out, "# - line {l}: {}", comment(&s.what));
                }
                None => {
                    let _ = writeln!(out, "# - {}", comment(&s.what));
                }
            }
        }
    }
    out
}
