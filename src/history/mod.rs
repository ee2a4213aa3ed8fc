//! The history of applies: one JSON object a line in
//! `$XDG_STATE_HOME/trustmesh/<cluster>/history.jsonl` (else
//! `~/.local/state/...`), appended by every `apply` that went on to change
//! something, read by `trustmesh history`.
//!
//! What is recorded, and how a line is read back, is pure and lives here
//! ([`Record::build`], [`parse`], [`text_line`]); the file itself (a private
//! folder and file, appended to, never through a symbolic link) is in
//! [`file`], the inventory's git state in [`git`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::apply::{ActionResult, ApplyReport};
use crate::plan::saved::PlanFlags;
use crate::plan::{Change, Plan};

pub mod file;
pub mod git;

/// The format of a history record; a line of another format is reported
/// and skipped.
pub const HISTORY_FORMAT_VERSION: u32 = 1;

/// One apply that went on to change something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// [`HISTORY_FORMAT_VERSION`].
    pub format_version: u32,
    /// When the apply ended, RFC 3339 in UTC, to the second.
    pub time: String,
    /// The local account that ran it.
    pub user: String,
    pub cluster: String,
    pub inventory: InventorySource,
    /// The flags that shaped the plan.
    pub flags: PlanFlags,
    /// `apply --plan FILE`: the saved plan's path.
    pub saved_plan: Option<String>,
    /// What the plan changed, per node with changes.
    pub changes: Vec<NodeChanges>,
    /// What happened, per node apply worked on.
    pub results: Vec<NodeResult>,
    /// The state read back afterwards matched the inventory.
    pub converged: bool,
}

/// The inventory an apply was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySource {
    /// Absolute when it could be made so.
    pub path: String,
    /// SHA-256 of the bytes applied, lowercase hex.
    pub sha256: String,
    /// `git rev-parse HEAD` of the repository holding it; null when git is
    /// missing or the file is in no repository.
    pub git_commit: Option<String>,
    /// The file differs from that commit (`git status --porcelain`); null
    /// with no commit.
    pub git_dirty: Option<bool>,
}

/// What the plan changed on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeChanges {
    pub node: String,
    /// Lines added to files (managed lines, lines of blocks).
    pub lines_added: usize,
    /// Lines removed from files.
    pub lines_removed: usize,
    /// Files and folders touched (written, created, chmod, chown, ACL).
    pub files: usize,
    /// Keys generated or rotated.
    pub keys: usize,
}

/// How apply went on one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    Ok,
    Failed,
    /// A file changed since it was read and was left as it is.
    Conflict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeResult {
    pub node: String,
    pub result: ApplyOutcome,
    /// Why, when not ok: the first failure of the node.
    pub reason: Option<String>,
}

/// What the CLI knows of an apply besides its plan and report.
#[derive(Debug, Clone)]
pub struct Context {
    pub time: std::time::SystemTime,
    pub user: String,
    pub cluster: String,
    pub inventory: InventorySource,
    pub flags: PlanFlags,
    pub saved_plan: Option<String>,
}

impl HistoryRecord {
    /// The record of an apply: `plan` is what was applied, `report` what
    /// happened, `converged` what the state read back said.
    pub fn build(
        ctx: &Context,
        plan: &Plan,
        report: &ApplyReport,
        converged: bool,
    ) -> HistoryRecord {
        HistoryRecord {
            format_version: HISTORY_FORMAT_VERSION,
            time: humantime::format_rfc3339_seconds(ctx.time).to_string(),
            user: ctx.user.clone(),
            cluster: ctx.cluster.clone(),
            inventory: ctx.inventory.clone(),
            flags: ctx.flags.clone().normalized(),
            saved_plan: ctx.saved_plan.clone(),
            changes: changes(plan),
            results: results(report),
            converged,
        }
    }

    /// The record as one line of the file (with its newline).
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a record serializes");
        s.push('\n');
        s
    }
}

/// Per node with changes: lines added and removed, files touched, keys.
pub fn changes(plan: &Plan) -> Vec<NodeChanges> {
    let mut out = Vec::new();
    for n in &plan.nodes {
        if n.changes.is_empty() {
            continue;
        }
        let mut c = NodeChanges {
            node: n.node.clone(),
            ..NodeChanges::default()
        };
        let mut paths: Vec<&str> = Vec::new();
        for change in &n.changes {
            let path = match change {
                Change::CreateDir { path, .. }
                | Change::Mode { path, .. }
                | Change::Owner { path, .. }
                | Change::RemoveLeftover { path }
                | Change::MoveAside { path, .. }
                | Change::SetAcl { path, .. }
                | Change::HostCa { path } => path,
                Change::IssueCertificate(i) => &i.path,
                Change::SignHostKey(h) => &h.path,
                Change::ReloadSshd(r) => &r.dropin,
                Change::WriteKrl(k) => &k.path,
                Change::GenerateKey { path, .. }
                | Change::RotateKey { path, .. }
                | Change::RotateUserCa { path, .. }
                | Change::CreateUserCa { path, .. } => {
                    c.keys += 1;
                    path
                }
                Change::EditFile(e) => {
                    c.lines_added += e.add.len();
                    c.lines_removed += e.remove.len() + e.remove_on_request.len();
                    &e.path
                }
                Change::WriteBlock(b) => {
                    c.lines_added += b.new.as_ref().map_or(0, |l| l.len());
                    c.lines_removed += b.old.len();
                    &b.path
                }
            };
            if !paths.contains(&path.as_str()) {
                paths.push(path);
            }
        }
        c.files = paths.len();
        out.push(c);
    }
    out
}

/// Per node of the report: ok, conflict (a file changed since it was
/// read), or failed, with the first reason.
pub fn results(report: &ApplyReport) -> Vec<NodeResult> {
    report
        .nodes
        .iter()
        .map(|n| {
            let conflict = n.results.iter().find_map(|r| match r {
                ActionResult::Conflict { what } => {
                    Some(format!("{what}: changed since it was read"))
                }
                _ => None,
            });
            let failed = n.results.iter().find_map(|r| match r {
                ActionResult::Failed { what, reason } => Some(format!("{what}: {reason}")),
                ActionResult::Skipped { what, because } => Some(format!("{what}: {because}")),
                _ => None,
            });
            let (result, reason) = match (failed, conflict) {
                (Some(r), _) => (ApplyOutcome::Failed, Some(r)),
                (None, Some(r)) => (ApplyOutcome::Conflict, Some(r)),
                (None, None) => (ApplyOutcome::Ok, None),
            };
            NodeResult {
                node: n.node.clone(),
                result,
                reason,
            }
        })
        .collect()
}

/// A line of the file that is not a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLine {
    /// From 1.
    pub line: usize,
    pub reason: String,
}

/// The file as read: its records in order (oldest first) and the lines
/// that are not records.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct History {
    pub records: Vec<HistoryRecord>,
    pub broken: Vec<BrokenLine>,
}

/// Read the file's text: a broken line (not JSON, another format, a
/// partial write) is listed with its number and skipped; empty lines are
/// ignored.
pub fn parse(text: &str) -> History {
    let mut h = History::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let broken = |reason: String| BrokenLine {
            line: i + 1,
            reason,
        };
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                h.broken.push(broken(format!("not JSON: {e}")));
                continue;
            }
        };
        match value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(HISTORY_FORMAT_VERSION) => {}
            Some(v) => {
                h.broken.push(broken(format!(
                    "a record of format {v}; this trustmesh reads format {HISTORY_FORMAT_VERSION}"
                )));
                continue;
            }
            None => {
                h.broken
                    .push(broken("not a history record: no `format_version`".into()));
                continue;
            }
        }
        match serde_json::from_value(value) {
            Ok(r) => h.records.push(r),
            Err(e) => h.broken.push(broken(format!("not a history record: {e}"))),
        }
    }
    h
}

/// Keep only the last `n` records.
pub fn last(mut h: History, n: Option<usize>) -> History {
    if let Some(n) = n {
        let skip = h.records.len().saturating_sub(n);
        h.records.drain(..skip);
    }
    h
}

/// One line of `trustmesh history`: time, user, commit, summary, result.
pub fn text_line(r: &HistoryRecord) -> String {
    let commit = match (&r.inventory.git_commit, r.inventory.git_dirty) {
        (Some(c), dirty) => format!(
            "{}{}",
            c.get(..12).unwrap_or(c),
            if dirty == Some(true) { "+dirty" } else { "" }
        ),
        (None, _) => "no-git".to_string(),
    };
    let sum = |f: fn(&NodeChanges) -> usize| r.changes.iter().map(f).sum::<usize>();
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let summary = format!(
        "{}: +{} -{} lines, {}, {}",
        plural(r.changes.len(), "node"),
        sum(|c| c.lines_added),
        sum(|c| c.lines_removed),
        plural(sum(|c| c.files), "file"),
        plural(sum(|c| c.keys), "key"),
    );
    let not_ok: Vec<String> = r
        .results
        .iter()
        .filter(|n| n.result != ApplyOutcome::Ok)
        .map(|n| {
            let what = match n.result {
                ApplyOutcome::Failed => "failed",
                _ => "conflict",
            };
            format!("{} {what}", n.node)
        })
        .collect();
    let result = match (r.converged, not_ok.is_empty()) {
        (true, true) => "converged".to_string(),
        (true, false) => format!("converged ({})", not_ok.join(", ")),
        (false, true) => "not converged".to_string(),
        (false, false) => format!("not converged ({})", not_ok.join(", ")),
    };
    format!(
        "{}  {}  {}  {}  {}",
        r.time, r.user, commit, summary, result
    )
}

/// Where a cluster's history is: `$XDG_STATE_HOME/trustmesh/<cluster>/`
/// when that is set to an absolute path (as the XDG spec asks), else
/// `<home>/.local/state/trustmesh/<cluster>/`. `None` with neither.
pub fn path(cluster: &str, xdg_state_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let base = match xdg_state_home.filter(|p| p.is_absolute()) {
        Some(x) => x.to_path_buf(),
        None => home
            .filter(|h| !h.as_os_str().is_empty())?
            .join(".local/state"),
    };
    Some(base.join("trustmesh").join(cluster).join("history.jsonl"))
}

/// [`path`] from this process's environment.
pub fn path_from_env(cluster: &str) -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    path(cluster, xdg.as_deref(), home.as_deref())
}

/// The account this process runs as: its name in the passwd database, else
/// `$USER`, else `uid N`.
pub fn local_user() -> String {
    // SAFETY: geteuid has no preconditions; getpwuid_r writes only into the
    // buffers given, and the name is copied out before they go.
    unsafe {
        let uid = libc::geteuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) == 0
            && !out.is_null()
            && !pw.pw_name.is_null()
        {
            return std::ffi::CStr::from_ptr(pw.pw_name)
                .to_string_lossy()
                .into_owned();
        }
        std::env::var("USER").unwrap_or_else(|_| format!("uid {uid}"))
    }
}
