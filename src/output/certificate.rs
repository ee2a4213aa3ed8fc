//! A certificate issued or renewed, as the plan shows it.

use std::io::{self, Write};

use super::escape::{Esc, EscMessage};
use super::Paint;
use crate::model::finding::Finding;
use crate::model::inventory::certificates::format_duration;
use crate::plan::{CertIssue, Change};

/// A user certificate's change (`certificates:`) of `node`.
pub(super) fn render(node: &str, c: &Change, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    match c {
        Change::CreateUserCa { path, comment } => render_ca(path, comment, p, out),
        Change::IssueCertificate(i) => render_certificate(node, i, p, out),
        Change::RotateUserCa { .. } => render_ca_rotation(c, p, out),
        _ => Ok(()),
    }
}

/// `+ issue certificate for w03 ...` or `~ renew certificate of w03 (ends
/// in 1 day) ...`.
fn render_certificate(node: &str, i: &CertIssue, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
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
        "  {head}: {} (principals {}, valid {}, serial {}), signed on the manager{} for {}",
        Esc(&i.path),
        Esc(&i.principals.join(",")),
        format_duration(i.validity),
        i.serial,
        if i.agent.is_some() {
            " by the ssh-agent"
        } else {
            ""
        },
        Esc(&i.public_key),
    )
}

/// A certificate due that the agent cannot sign in this run.
pub(super) fn render_blocked(f: &Finding, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "  {} {}",
        p.del(&format!("blocked ({}):", f.step)),
        EscMessage(&f.reason)
    )?;
    if let Some(h) = &f.hint {
        writeln!(out, "  hint: {}", EscMessage(&h.to_string()))?;
    }
    Ok(())
}

/// `+ create user CA on the manager: PATH ...`.
fn render_ca(path: &str, comment: &str, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "  {} create user CA on the manager: {} (ed25519, 0600, {}; never leaves the manager)",
        p.add("+"),
        Esc(path),
        Esc(comment)
    )
}

/// `--rotate-keys @ca`: every step, in the order apply takes them.
fn render_ca_rotation(c: &Change, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let Change::RotateUserCa {
        path,
        new_path,
        aside_path,
        old_fingerprint,
        proofs,
        ..
    } = c
    else {
        return Ok(());
    };
    writeln!(
        out,
        "  {} rotate the user CA {} ({}), make-before-break:",
        p.chg("~"),
        Esc(path),
        Esc(old_fingerprint)
    )?;
    let steps = [
        format!(
            "1. create the new CA {} on the manager (ed25519, 0600; never leaves the manager)",
            Esc(new_path)
        ),
        "2. trust it beside the old CA on every target (the `cert-authority` lines below)".into(),
        "3. sign every certificate again with it and write them (below)".into(),
        format!(
            "4. prove {} certificate edge{} with a fresh connection each: {}",
            proofs.len(),
            if proofs.len() == 1 { "" } else { "s" },
            proofs
                .iter()
                .map(|(s, t)| format!("{} -> {}", Esc(s), Esc(t)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!(
            "5. only then put the new CA in place as {} and archive the old pair as {} (kept on the manager; delete it when no longer wanted)",
            Esc(path),
            Esc(aside_path)
        ),
        "6. remove the old CA's lines (the edits \"once the new user CA is proven\" below); a failed proof keeps them".into(),
    ];
    for s in steps {
        writeln!(out, "      {s}")?;
    }
    Ok(())
}
