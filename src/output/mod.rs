//! Plans as people and programs read them.
//!
//! The text form follows `terraform plan`: grouped by node, then by file,
//! `+` to add, `-` to remove, `~` to change, a unified diff of each file's
//! managed lines, and one summary line at the end. Renderers write into any
//! `Write`, so tests render into a `Vec<u8>` with colour off and snapshot
//! exactly what users see.
//!
//! Text that comes from a node, from ssh or from the inventory passes
//! through [`escape`] where it enters the output: the only control
//! sequences printed are the colours added here.

mod adopt;
mod certificate;
pub mod escape;
pub mod hints;
mod host_certificates;
pub mod json;

use std::io::{self, Write};

use similar::{ChangeTag, TextDiff};

use self::escape::{Esc, EscMessage};
pub use self::json::{render_apply_json, render_json, render_validate_json};
use crate::apply::{ActionResult, ApplyReport};
use crate::model::finding::Finding;
use crate::plan::{
    BlockRole, BlockWrite, Change, FileEdit, FileRole, Login, NodePlan, NodeStatus, Plan,
    PlanSummary, PlannedLine,
};

/// Text rendering options.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanTextOptions {
    pub color: bool,
    /// Show full keys instead of `AAAAC3Nz…q8Lw`.
    pub full_keys: bool,
    /// Also list nodes with nothing to change.
    pub verbose: bool,
}

/// ANSI colour, or plain text when off.
pub(crate) struct Paint {
    pub(crate) on: bool,
}

impl Paint {
    pub(crate) fn wrap(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn add(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn del(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn chg(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// Shorten the base64 field of a key line for reading: keys are long and
/// their ends are what people compare.
fn abbreviate(line: &str, full: bool) -> String {
    if full {
        return line.to_string();
    }
    line.split(' ')
        .map(|w| {
            if w.len() > 40 && w.starts_with("AAAA") {
                let head: String = w.chars().take(12).collect();
                let tail: String = w
                    .chars()
                    .rev()
                    .take(6)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                format!("{head}…{tail}")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn planned_text(l: &PlannedLine, full: bool) -> String {
    let text = planned_line(l, full);
    let text = match &l.clear_name {
        // A hashed name: the name it holds, beside it.
        Some(name) => format!("{text}  (hashed: {name})"),
        None => text,
    };
    match &l.fingerprint {
        // A host key: its fingerprint, what people compare.
        Some(fp) => format!("{text}  ({fp})"),
        None => text,
    }
}

fn planned_line(l: &PlannedLine, full: bool) -> String {
    match l.text() {
        Some(t) => abbreviate(&t, full),
        None => {
            let names = l
                .names
                .as_deref()
                .map(|n| format!("{n} "))
                .unwrap_or_default();
            // An authorized_keys line's options (its policy, its expiry)
            // are known before its key.
            let options = l
                .options
                .as_deref()
                .map(|o| format!("{o} "))
                .unwrap_or_default();
            format!(
                "{names}{options}{} (known after apply) {}",
                l.key_type, l.marker
            )
        }
    }
}

fn mode(m: u32) -> String {
    format!("{m:04o}")
}

/// Render the plan as text.
pub fn render_text(plan: &Plan, opts: PlanTextOptions, out: &mut dyn Write) -> io::Result<()> {
    let p = Paint { on: opts.color };
    for h in &plan.header {
        writeln!(out, "{} {}", p.dim("note:"), EscMessage(h))?;
    }
    if !plan.header.is_empty() {
        writeln!(out)?;
    }
    let mut first = true;
    for node in &plan.nodes {
        let interesting = !node.changes.is_empty()
            || !node.warnings.is_empty()
            || !node.granted_by_hand.is_empty()
            || node.rotation_refused.is_some()
            || node.signing_blocked.is_some()
            || !matches!(node.status, NodeStatus::Planned);
        if !interesting && !opts.verbose {
            continue;
        }
        if !first {
            writeln!(out)?;
        }
        first = false;
        render_node(node, &p, opts, out)?;
    }
    if !plan.notes.is_empty() {
        if !first {
            writeln!(out)?;
        }
        for n in &plan.notes {
            writeln!(out, "{} {}", p.dim("note:"), EscMessage(n))?;
        }
    }
    if !first || !plan.notes.is_empty() {
        writeln!(out)?;
    }
    if plan.is_empty() && plan.incomplete() {
        // Never "no changes" while a node is unread or blocked.
        writeln!(
            out,
            "Nothing to change on the nodes that were read; the nodes above that were not read or are \
             blocked, and any rotation refused above, are not planned, so this plan is not complete."
        )?;
    } else if plan.is_empty() {
        writeln!(
            out,
            "No changes: every node in reach matches the inventory."
        )?;
    }
    writeln!(out, "{}", summary_line(&plan.summary()))
}

/// `Plan: 12 to add, 3 to change, 1 to remove. 2 nodes unreachable.`
pub fn summary_line(s: &PlanSummary) -> String {
    let mut line = format!(
        "Plan: {} to add, {} to change, {} to remove.",
        s.add, s.change, s.remove
    );
    let plural = |n: usize| if n == 1 { "node" } else { "nodes" };
    if s.unreachable > 0 {
        line.push_str(&format!(
            " {} {} unreachable.",
            s.unreachable,
            plural(s.unreachable)
        ));
    }
    if s.blocked > 0 {
        line.push_str(&format!(" {} {} blocked.", s.blocked, plural(s.blocked)));
    }
    line
}

/// A finding's hint, on its own line, when it has one.
fn hint_line(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    match &f.hint {
        Some(h) => writeln!(out, "  hint: {}", EscMessage(&h.words())),
        None => Ok(()),
    }
}

fn render_node(
    node: &NodePlan,
    p: &Paint,
    opts: PlanTextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    let head = format!("{} ({})", Esc(&node.node), Esc(&node.target));
    match &node.status {
        NodeStatus::Planned => writeln!(out, "{}", p.bold(&head))?,
        NodeStatus::Unreachable(f) => {
            writeln!(
                out,
                "{}: {} at {}: {}",
                p.bold(&head),
                p.del("unreachable"),
                Esc(&f.step),
                EscMessage(&f.reason)
            )?;
            hint_line(f, out)?;
        }
        NodeStatus::Skipped { reason } => {
            writeln!(out, "{}: skipped: {}", p.bold(&head), EscMessage(reason))?
        }
        NodeStatus::Blocked(f) => {
            writeln!(
                out,
                "{}: {}: {}",
                p.bold(&head),
                p.del("blocked"),
                EscMessage(&f.reason)
            )?;
            hint_line(f, out)?;
        }
    }
    if node.access == Login::Password && matches!(node.status, NodeStatus::Planned) {
        let installs = node
            .changes
            .iter()
            .any(|c| matches!(c, Change::EditFile(e) if e.file == FileRole::AuthorizedKeys));
        if installs {
            writeln!(
                out,
                "  {} authorized_keys: the manager's key, installed with a password",
                p.add("+")
            )?;
        }
        writeln!(
            out,
            "  {}",
            p.dim("(reached with a password: the changes below are made over password logins)")
        )?;
    }
    for c in &node.changes {
        match c {
            Change::CreateDir { path, mode: m } => {
                writeln!(out, "  {} dir {} ({})", p.add("+"), Esc(path), mode(*m))?;
            }
            Change::Mode { path, from, to } => {
                writeln!(
                    out,
                    "  {} mode {} {} -> {}",
                    p.chg("~"),
                    Esc(path),
                    mode(*from),
                    mode(*to)
                )?;
            }
            Change::Owner { path, from, to } => {
                writeln!(
                    out,
                    "  {} owner {} uid {from} -> {to}",
                    p.chg("~"),
                    Esc(path)
                )?;
            }
            Change::RotateKey {
                path,
                key_type,
                aside_path,
                old_fingerprint,
                ..
            } => {
                writeln!(
                    out,
                    "  {} rotate key {} ({}): {} -> (known after apply); \
                     the new key is proven on every node it opens before the old one moves to {}",
                    p.chg("~"),
                    Esc(path),
                    Esc(key_type),
                    Esc(old_fingerprint),
                    Esc(aside_path)
                )?;
            }
            Change::RemoveLeftover { path } => {
                writeln!(
                    out,
                    "  {} {} (left by an interrupted run)",
                    p.del("-"),
                    Esc(path)
                )?;
            }
            Change::MoveAside { .. } => host_certificates::render(c, p, out)?,
            Change::GenerateKey { path, key_type } => {
                writeln!(
                    out,
                    "  {} key {} ({})",
                    p.add("+"),
                    Esc(path),
                    Esc(key_type)
                )?;
            }
            Change::SetAcl { path, command } => {
                writeln!(
                    out,
                    "  {} acl {}: SYSTEM and Administrators only ({})",
                    p.chg("~"),
                    Esc(path),
                    Esc(command)
                )?;
            }
            Change::EditFile(e) => render_edit(e, p, opts, out)?,
            Change::WriteBlock(b) => render_block(b, p, out)?,
            Change::CreateUserCa { .. }
            | Change::IssueCertificate(_)
            | Change::RotateUserCa { .. } => certificate::render(&node.node, c, p, out)?,
            Change::HostCa { .. }
            | Change::SignHostKey(_)
            | Change::WriteKrl(_)
            | Change::ReloadSshd(_) => host_certificates::render(c, p, out)?,
        }
    }
    adopt::render_hand_written(node, p, opts, out)?;
    if let Some(r) = &node.rotation_refused {
        writeln!(out, "  {} {}", p.del("rotation refused:"), r.finding.reason)?;
        if let Some(h) = &r.finding.hint {
            writeln!(out, "  hint: {h}")?;
        }
    }
    if let Some(f) = &node.signing_blocked {
        certificate::render_blocked(f, p, out)?;
    }
    for w in &node.warnings {
        writeln!(out, "  {} {}", p.chg("warning:"), EscMessage(w))?;
    }
    if opts.verbose && node.changes.is_empty() && matches!(node.status, NodeStatus::Planned) {
        writeln!(out, "  {}", p.dim("up to date"))?;
    }
    Ok(())
}

fn render_edit(
    e: &FileEdit,
    p: &Paint,
    opts: PlanTextOptions,
    out: &mut dyn Write,
) -> io::Result<()> {
    if e.after_rotation_of.as_deref() == Some(crate::plan::CA_NODE) {
        let path = Esc(&e.path);
        writeln!(
            out,
            "  {} {path} once the new user CA is proven:",
            p.chg("~")
        )?;
    } else if let Some(node) = &e.after_rotation_of {
        writeln!(
            out,
            "  {} {} once {}'s new key is proven:",
            p.chg("~"),
            Esc(&e.path),
            Esc(node)
        )?;
    } else if e.create {
        writeln!(out, "  {} {} (new file, 0600)", p.add("+"), Esc(&e.path))?;
    } else {
        writeln!(out, "  {} {}", p.chg("~"), Esc(&e.path))?;
    }
    // The diff of the managed lines only: unmanaged lines never change.
    let mut old: Vec<(usize, String)> = e
        .kept
        .iter()
        .chain(e.remove.iter())
        .map(|(i, t)| (*i, abbreviate(t, opts.full_keys)))
        .collect();
    old.sort();
    let mut new: Vec<String> = {
        let mut kept = e.kept.clone();
        kept.sort();
        kept.into_iter()
            .map(|(_, t)| abbreviate(&t, opts.full_keys))
            .collect()
    };
    new.extend(e.add.iter().map(|l| planned_text(l, opts.full_keys)));
    // Lines written by hand that the operator asked to remove: shown with
    // why, since they are not trustmesh's.
    for (i, t) in &e.remove_on_request {
        old.push((
            *i,
            format!(
                "{}  (written by hand; removed on request)",
                abbreviate(t, opts.full_keys)
            ),
        ));
    }
    old.sort();
    let old_text: String = old.iter().map(|(_, t)| format!("{t}\n")).collect();
    let new_text: String = new.iter().map(|t| format!("{t}\n")).collect();
    write_diff(&old_text, &new_text, p, out)?;
    adopt::render_adoptions(e, p, opts, out)
}

/// A unified diff of managed lines, with one line of context. The lines
/// are a file's (or meant for one): each is escaped here.
fn write_diff(old_text: &str, new_text: &str, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let diff = TextDiff::from_lines(old_text, new_text);
    for (i, group) in diff.grouped_ops(1).iter().enumerate() {
        if i > 0 {
            writeln!(out, "      {}", p.dim("..."))?;
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let line = escape::text(change.value().trim_end_matches('\n'));
                match change.tag() {
                    ChangeTag::Equal => writeln!(out, "      {}", p.dim(&format!("  {line}")))?,
                    ChangeTag::Delete => writeln!(out, "      {}", p.del(&format!("- {line}")))?,
                    ChangeTag::Insert => writeln!(out, "      {}", p.add(&format!("+ {line}")))?,
                }
            }
        }
    }
    Ok(())
}

/// A block or file trustmesh owns: its head, then the diff of its lines
/// (the marker lines of a block included).
fn render_block(b: &BlockWrite, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let what = match b.role {
        BlockRole::SshConfigFile => "ssh aliases".to_string(),
        BlockRole::SshConfigInclude => "the Include of the aliases".to_string(),
        BlockRole::HostsBlock => "the cluster's names".to_string(),
        BlockRole::SshdDropin => "sshd's host certificates".to_string(),
        BlockRole::SshDropin => "ssh checks the KRL".to_string(),
    };
    let how = if b.sudo { ", with sudo -n" } else { "" };
    let removed = b.new.is_none();
    let whole = matches!(
        b.role,
        BlockRole::SshConfigFile | BlockRole::SshdDropin | BlockRole::SshDropin
    );
    let path = Esc(&b.path);
    let head = match (removed, b.create) {
        (true, _) if whole => format!("{} {path} (file removed: {what}{how})", p.del("-")),
        (true, _) => format!("{} {path} (block removed: {what}{how})", p.chg("~")),
        (false, true) => format!(
            "{} {path} (new file, {:04o}: {what}{how})",
            p.add("+"),
            b.create_mode()
        ),
        (false, false) => format!("{} {path} ({what}{how})", p.chg("~")),
    };
    writeln!(out, "  {head}")?;
    let framed = |lines: &[String]| -> String {
        if lines.is_empty() {
            return String::new();
        }
        let mut s = String::new();
        if !whole {
            s.push_str(&crate::formats::block::begin_line(&b.marker));
            s.push('\n');
        }
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        if !whole {
            s.push_str(&crate::formats::block::end_line(&b.marker));
            s.push('\n');
        }
        s
    };
    let new_text = framed(b.new.as_deref().unwrap_or_default());
    if b.new.as_deref() == Some(&b.old[..]) {
        // The same lines: only where they are, or their bytes, change.
        let why = match b.role {
            BlockRole::SshConfigInclude => "moved above the first Host or Match line",
            _ => "the same lines, rewritten (line endings)",
        };
        return writeln!(out, "      {}", p.dim(&format!("({why})")));
    }
    write_diff(&framed(&b.old), &new_text, p, out)
}

/// Render what apply did, node by node.
pub fn render_report(report: &ApplyReport, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let p = Paint { on: color };
    for n in &report.nodes {
        writeln!(out, "{}", p.bold(&escape::text(&n.node)))?;
        for r in &n.results {
            match r {
                ActionResult::Done { what } => {
                    writeln!(out, "  {} {}", p.add("done"), EscMessage(what))?
                }
                ActionResult::Failed { what, reason } => writeln!(
                    out,
                    "  {} {}: {}",
                    p.del("FAILED"),
                    EscMessage(what),
                    EscMessage(reason)
                )?,
                ActionResult::Conflict { what } => writeln!(
                    out,
                    "  {} {}: the file changed since it was read; left as it is",
                    p.del("CONFLICT"),
                    EscMessage(what)
                )?,
                ActionResult::Skipped { what, because } => writeln!(
                    out,
                    "  {} {}: {}",
                    p.chg("skipped"),
                    EscMessage(what),
                    EscMessage(because)
                )?,
            }
        }
    }
    Ok(())
}
