//! How adoption shows in the text plan: the lines trustmesh did not write
//! that already grant a wanted edge, and (`--adopt`) their takeover.

use std::io::{self, Write};

use super::escape::{self, Esc};
use super::{abbreviate, Paint, PlanTextOptions};
use crate::plan::{FileEdit, FileRole, NodePlan};

fn whose(file: FileRole, node: &str) -> String {
    match file {
        FileRole::AuthorizedKeys => format!("{}'s key", Esc(node)),
        FileRole::KnownHosts => format!("{}'s host key", Esc(node)),
    }
}

/// The lines a `--adopt` edit takes over, each with its old and new text
/// and the duplicates removed.
pub(super) fn render_adoptions(
    e: &FileEdit,
    p: &Paint,
    opts: PlanTextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    for a in &e.adopt {
        let comment = match &a.old_comment {
            Some(c) => format!("comment `{}`", Esc(c)),
            None => "no comment".to_string(),
        };
        writeln!(
            out,
            "      {} line {} ({}, written by hand, {comment}): adopted, its comment becomes the marker",
            p.chg("~"),
            a.index + 1,
            whose(e.file, &a.node)
        )?;
        let line = |t: &str| escape::text(&abbreviate(t, opts.full_keys)).into_owned();
        writeln!(out, "      {}", p.del(&format!("- {}", line(&a.old))))?;
        writeln!(out, "      {}", p.add(&format!("+ {}", line(&a.new))))?;
        for (i, t) in &a.duplicates {
            writeln!(
                out,
                "      {}",
                p.del(&format!(
                    "- {}  (line {}: the same grant again, written by hand; removed)",
                    line(t),
                    i + 1
                ))
            )?;
        }
    }
    Ok(())
}

/// Wanted edges already granted by lines trustmesh did not write: not
/// changes, shown so that a person knows trustmesh does not manage them.
pub(super) fn render_hand_written(
    node: &NodePlan,
    p: &Paint,
    opts: PlanTextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    for h in &node.granted_by_hand {
        writeln!(
            out,
            "  {} {} line {}: {}, granted by a line trustmesh did not write (left as it is; --adopt takes it over)",
            p.dim("="),
            Esc(&h.path),
            h.index + 1,
            whose(h.file, &h.node)
        )?;
        writeln!(
            out,
            "      {}",
            p.dim(&format!(
                "  {}",
                escape::text(&abbreviate(&h.text, opts.full_keys))
            ))
        )?;
    }
    Ok(())
}
