//! Saved plans (`plan --out`, `apply --plan`): an approval, not a program.
//!
//! A saved plan records what the operator read and agreed to. `apply
//! --plan` never carries out the file's contents: it plans again from the
//! live state and goes ahead only when the fresh plan's changes are exactly
//! the saved ones (same nodes, access, files, lines, modes, keys and the
//! file contents they were planned from). Any difference refuses the whole
//! plan and says what differs, so a plan file edited after it was written
//! (an outsider's key swapped in, another path, another mode) changes
//! nothing anywhere.
//!
//! The file is private: written 0600 through a temporary file renamed over
//! the path (a symbolic link there is replaced, never followed), and a
//! file that others could have written (group or other writable, or owned
//! by another account) is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::plan::{NodePlan, Plan, FORMAT_VERSION};

/// A plan as saved by `plan --out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    /// The inventory's absolute path.
    pub inventory: String,
    /// `--limit` of the plan, if any: `apply --plan` plans with the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<Vec<String>>,
    pub nodes: Vec<NodePlan>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Why a plan file cannot be written or used.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum PlanFileError {
    #[error("cannot {action} the plan file {path}: {source}")]
    #[diagnostic(code(trustmesh::planfile::io))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a plan saved by `trustmesh plan --out`: {reason}")]
    #[diagnostic(
        code(trustmesh::planfile::format),
        help("save a plan with `trustmesh plan --out FILE`")
    )]
    NotAPlan { path: PathBuf, reason: String },
    #[error("{path} has plan format {found}; this trustmesh reads {FORMAT_VERSION}")]
    #[diagnostic(code(trustmesh::planfile::version), help("plan again"))]
    Version { path: PathBuf, found: u32 },
    #[error("{path} is refused: {why}")]
    #[diagnostic(
        code(trustmesh::planfile::unsafe_file),
        help("a saved plan is an approval: only a file no one else could have written is taken; plan again with `trustmesh plan --out FILE`")
    )]
    Unsafe { path: PathBuf, why: String },
}

impl SavedPlan {
    pub fn new(plan: &Plan, inventory: &Path, limit: &[String]) -> SavedPlan {
        SavedPlan {
            format_version: plan.format_version,
            inventory: inventory.to_string_lossy().into_owned(),
            limit: (!limit.is_empty()).then(|| limit.to_vec()),
            nodes: plan.nodes.clone(),
            notes: plan.notes.clone(),
        }
    }

    /// Write the plan to `path`, readable by the user alone.
    pub fn save(&self, path: &Path) -> Result<(), PlanFileError> {
        let io = |source| PlanFileError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // tempfile creates the file 0600; the rename replaces whatever is
        // at `path` (a symbolic link included) instead of writing through.
        let mut tmp = tempfile::Builder::new()
            .prefix(".trustmesh-plan.")
            .tempfile_in(dir)
            .map_err(io)?;
        serde_json::to_writer_pretty(&mut tmp, self).map_err(|e| io(std::io::Error::other(e)))?;
        tmp.write_all(b"\n").map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Read a plan file, refusing one that someone else could have written.
    pub fn load(path: &Path) -> Result<SavedPlan, PlanFileError> {
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::File::open(path).map_err(|source| PlanFileError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| PlanFileError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let unsafe_file = |why: String| PlanFileError::Unsafe {
            path: path.to_path_buf(),
            why,
        };
        let me = current_uid();
        if meta.uid() != me {
            return Err(unsafe_file(format!(
                "it is owned by uid {}, not by this account (uid {me})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(unsafe_file(format!(
                "it is writable by group or others (mode {:04o})",
                meta.mode() & 0o7777
            )));
        }
        let saved: SavedPlan =
            serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| {
                PlanFileError::NotAPlan {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
        if saved.format_version != FORMAT_VERSION {
            return Err(PlanFileError::Version {
                path: path.to_path_buf(),
                found: saved.format_version,
            });
        }
        Ok(saved)
    }
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// One way a fresh plan differs from the saved one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub node: String,
    pub what: String,
}

/// Everything that differs between the saved plan's nodes and a fresh
/// plan's. Empty: the fresh plan is exactly what was approved.
pub fn differences(saved: &[NodePlan], fresh: &[NodePlan]) -> Vec<Difference> {
    let mut out = Vec::new();
    let diff = |node: &str, what: String| Difference {
        node: node.to_string(),
        what,
    };
    for s in saved {
        let Some(f) = fresh.iter().find(|f| f.node == s.node) else {
            out.push(diff(&s.node, "not in a fresh plan".into()));
            continue;
        };
        if f.target != s.target {
            out.push(diff(
                &s.node,
                format!(
                    "reached as {} now, {} in the saved plan",
                    f.target, s.target
                ),
            ));
        }
        if f.status != s.status {
            out.push(diff(
                &s.node,
                format!("{} now, {} in the saved plan", status(f), status(s)),
            ));
        }
        if f.access != s.access {
            out.push(diff(
                &s.node,
                format!(
                    "reached with {:?} now, {:?} in the saved plan",
                    f.access, s.access
                )
                .to_lowercase(),
            ));
        }
        for b in &s.base {
            match f.base.iter().find(|fb| fb.path == b.path) {
                Some(fb) if fb.content == b.content => {}
                Some(_) => out.push(diff(
                    &s.node,
                    format!("{} changed since the plan was saved", b.path),
                )),
                None => out.push(diff(
                    &s.node,
                    format!("{} is not read by a fresh plan", b.path),
                )),
            }
        }
        if let Some(fb) = f
            .base
            .iter()
            .find(|fb| !s.base.iter().any(|b| b.path == fb.path))
        {
            out.push(diff(
                &s.node,
                format!("{} is not in the saved plan", fb.path),
            ));
        }
        if f.changes != s.changes {
            let count = |changes: &[crate::plan::Change]| changes.len();
            let first = s
                .changes
                .iter()
                .zip(&f.changes)
                .position(|(a, b)| a != b)
                .unwrap_or(s.changes.len().min(f.changes.len()));
            out.push(diff(
                &s.node,
                format!(
                    "the changes differ (saved: {}, fresh: {}; first difference at change {})",
                    count(&s.changes),
                    count(&f.changes),
                    first + 1
                ),
            ));
        }
    }
    for f in fresh {
        if !saved.iter().any(|s| s.node == f.node) && !f.changes.is_empty() {
            out.push(diff(&f.node, "has changes not in the saved plan".into()));
        }
    }
    out
}

fn status(n: &NodePlan) -> &'static str {
    use crate::plan::NodeStatus;
    match n.status {
        NodeStatus::Planned => "planned",
        NodeStatus::Unreachable { .. } => "unreachable",
        NodeStatus::Skipped { .. } => "skipped",
        NodeStatus::Blocked { .. } => "blocked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Access, Change, FileBase, NodeStatus};
    use std::os::unix::fs::PermissionsExt;

    fn node(name: &str) -> NodePlan {
        NodePlan {
            node: name.into(),
            target: format!("u@{name}"),
            access: Access::Key,
            status: NodeStatus::Planned,
            changes: vec![Change::Mode {
                path: "~/.ssh".into(),
                from: 0o755,
                to: 0o700,
            }],
            warnings: Vec::new(),
            base: vec![FileBase {
                path: "~/.ssh/authorized_keys".into(),
                content: Some("k\n".into()),
            }],
            rotation_refused: None,
        }
    }

    #[test]
    fn an_identical_fresh_plan_has_no_difference() {
        let nodes = vec![node("a"), node("b")];
        assert!(differences(&nodes, &nodes).is_empty());
    }

    #[test]
    fn every_edit_of_a_saved_plan_is_a_difference() {
        let fresh = vec![node("a")];
        let edits: [fn(&mut NodePlan); 7] = [
            |n| {
                n.changes[0] = Change::Mode {
                    path: "~/.ssh/rc".into(),
                    from: 0o755,
                    to: 0o700,
                }
            },
            |n| {
                n.changes[0] = Change::Mode {
                    path: "~/.ssh".into(),
                    from: 0o755,
                    to: 0o777,
                }
            },
            |n| n.changes.push(n.changes[0].clone()),
            |n| n.base[0].content = Some("other\n".into()),
            |n| n.access = Access::Password,
            |n| n.target = "u@elsewhere".into(),
            |n| n.node = "z".into(),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut saved = fresh.clone();
            edit(&mut saved[0]);
            assert!(
                !differences(&saved, &fresh).is_empty(),
                "edit {i} was not seen"
            );
        }
        // A node with changes left out of the saved plan is a difference.
        let fresh2 = vec![node("a"), node("b")];
        assert!(!differences(&fresh, &fresh2).is_empty());
    }

    #[test]
    fn plan_files_are_private_and_never_written_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        let path = dir.path().join("plan.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let plan = Plan {
            format_version: FORMAT_VERSION,
            nodes: vec![node("a")],
            notes: Vec::new(),
            header: Vec::new(),
        };
        let saved = SavedPlan::new(&plan, Path::new("/inv.yaml"), &[]);
        saved.save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(SavedPlan::load(&path).unwrap(), saved);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
        let e = SavedPlan::load(&path).unwrap_err();
        assert!(matches!(e, PlanFileError::Unsafe { .. }), "{e}");
    }
}
