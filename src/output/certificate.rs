//! A certificate issued or renewed, as the plan shows it.

use std::io::{self, Write};

use super::escape::Esc;
use super::Paint;
use crate::model::inventory::certificates::format_duration;
use crate::plan::CertIssue;

/// `+ issue certificate for w03 ...` or `~ renew certificate of w03 (ends
/// in 1 day) ...`.
pub(super) fn render_certificate(
    node: &str,
    i: &CertIssue,
    p: &Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    let head = if i.reason == "issue" {
        format!("{} issue certificate for {}", p.add("+"), Esc(node))
    } else if let Some(why) = i.reason.strip_prefix("renew: ") {
        format!(
            "{} renew certificate of {} ({})",
            p.chg("~"),
            Esc(node),
            Esc(why)
        )
    } else {
        let why = i.reason.strip_prefix("re-issue: ").unwrap_or(&i.reason);
        format!(
            "{} re-issue certificate of {} ({})",
            p.chg("~"),
            Esc(node),
            Esc(why)
        )
    };
    writeln!(
        out,
        "  {head}: {} (principals {}, valid {}, serial {}), signed on the manager for {}",
        Esc(&i.path),
        Esc(&i.principals.join(",")),
        format_duration(i.validity),
        i.serial,
        Esc(&i.public_key),
    )
}

/// `+ create user CA on the manager: PATH ...`.
pub(super) fn render_ca(
    path: &str,
    comment: &str,
    p: &Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "  {} create user CA on the manager: {} (ed25519, 0600, {}; never leaves the manager)",
        p.add("+"),
        Esc(path),
        Esc(comment)
    )
}
