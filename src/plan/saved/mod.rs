//! Saved plans (`plan --out`, `apply --plan`): an approval, not a program.
//!
//! A saved plan records what the operator read and agreed to, and
//! everything that plan was made from. `apply --plan` never carries out
//! the file's contents. Before anything else (no host contacted, no
//! password asked) it refuses a plan whose inventory file changed since
//! (its SHA-256), whose flags differ from the ones given now, or that is
//! older than `--max-plan-age`; then it reaches every node with the host
//! keys accepted on first use at plan time pinned (a different key is
//! refused, never accepted anew), plans again from the live state and goes
//! ahead only when the fresh plan's changes are exactly the saved ones
//! (same nodes, access, files, lines, modes, keys and the file contents
//! they were planned from). Any difference refuses the whole plan and says
//! what differs, so a plan file edited after it was written (an
//! outsider's key swapped in, another path, another mode) changes nothing
//! anywhere.
//!
//! The file is private: written 0600 through a temporary file renamed over
//! the path (a symbolic link there is replaced, never followed), and a
//! file that others could have written (group or other writable, or owned
//! by another account) is refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::plan::{NodePlan, Plan, PLAN_FORMAT_VERSION};

mod binding;
mod compare;

pub use binding::{
    accepted_host_keys, list, AcceptedHostKey, Current, InventoryBytes, PlanFlag, PlanFlags,
    Refusal, DEFAULT_MAX_AGE,
};
pub use compare::{differences, host_key_differences, Difference};

/// The plan file's own format. 2 binds the inventory (its SHA-256), the
/// flags and the host keys accepted on first use, and records when the
/// plan was made; a file without it (format 1) is refused.
pub const FILE_VERSION: u32 = 2;

/// A plan as saved by `plan --out`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// [`FILE_VERSION`].
    pub plan_file_version: u32,
    /// The format of `nodes` ([`crate::plan::PLAN_FORMAT_VERSION`]).
    pub format_version: u32,
    /// When the plan was made: before its first node was read.
    #[serde(with = "rfc3339")]
    pub created: SystemTime,
    /// The inventory's absolute path.
    pub inventory: String,
    /// The SHA-256 of the inventory file's bytes the plan was made from.
    pub inventory_sha256: String,
    /// The flags that shaped the plan: `apply --plan` runs with these.
    pub flags: PlanFlags,
    /// Host keys accepted on first use while planning: `apply --plan`
    /// pins them.
    #[serde(default)]
    pub host_keys: Vec<AcceptedHostKey>,
    pub nodes: Vec<NodePlan>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Why a plan file cannot be written or used. The words here name no
/// flag; the command line says each with the flags to use
/// (`src/cli/error.rs`), and adds what to do.
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
    #[error("{path} is not a saved plan: {reason}")]
    #[diagnostic(code(trustmesh::planfile::format))]
    NotAPlan { path: PathBuf, reason: String },
    #[error("{path} is a plan file of format {found}, made by {by} trustmesh; this one reads format {FILE_VERSION} only")]
    #[diagnostic(code(trustmesh::planfile::version))]
    Version {
        path: PathBuf,
        found: u64,
        by: &'static str,
    },
    #[error(
        "{path} holds a plan of format {found}; this trustmesh plans in format {PLAN_FORMAT_VERSION}"
    )]
    #[diagnostic(code(trustmesh::planfile::plan_version))]
    PlanVersion { path: PathBuf, found: u64 },
    #[error("{path} is refused: {why}")]
    #[diagnostic(code(trustmesh::planfile::unsafe_file))]
    Unsafe { path: PathBuf, why: String },
    #[error("the saved plan is refused, nothing was changed: {path} no longer matches what it was made with:{}", binding::list(refusals, Refusal::to_string))]
    #[diagnostic(code(trustmesh::planfile::refused))]
    Refused {
        path: PathBuf,
        refusals: Vec<Refusal>,
    },
}

impl SavedPlan {
    /// A plan to save, made at `created` from `inventory` with `flags`;
    /// `host_keys`: those accepted on first use while reading the nodes.
    pub fn new(
        plan: &Plan,
        created: SystemTime,
        inventory: &InventoryBytes,
        flags: PlanFlags,
        host_keys: Vec<AcceptedHostKey>,
    ) -> SavedPlan {
        SavedPlan {
            plan_file_version: FILE_VERSION,
            format_version: plan.format_version,
            created,
            inventory: inventory.path.to_string_lossy().into_owned(),
            inventory_sha256: inventory.sha256.clone(),
            flags: flags.normalized(),
            host_keys,
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

    /// Read a plan file, refusing one that someone else could have written
    /// or one of another format.
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
        let not_a_plan = |reason: String| PlanFileError::NotAPlan {
            path: path.to_path_buf(),
            reason,
        };
        let value: serde_json::Value = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| not_a_plan(e.to_string()))?;
        if !value.is_object() {
            return Err(not_a_plan("it is not a JSON object".into()));
        }
        // The versions first: an older file lacks the fields read below.
        let file_version = match value.get("plan_file_version") {
            None => 1,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| not_a_plan("`plan_file_version` is not a number".into()))?,
        };
        if file_version != u64::from(FILE_VERSION) {
            return Err(PlanFileError::Version {
                path: path.to_path_buf(),
                found: file_version,
                by: if file_version < u64::from(FILE_VERSION) {
                    "an older"
                } else {
                    "a newer"
                },
            });
        }
        let plan_version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| not_a_plan("no `format_version`".into()))?;
        if plan_version != u64::from(PLAN_FORMAT_VERSION) {
            return Err(PlanFileError::PlanVersion {
                path: path.to_path_buf(),
                found: plan_version,
            });
        }
        serde_json::from_value(value).map_err(|e| not_a_plan(e.to_string()))
    }

    /// Everything `apply --plan` checks before any host is contacted: the
    /// plan's age, the inventory's content and the flags. Returns the flags
    /// to apply with (the saved ones), or every difference found.
    pub fn check(&self, path: &Path, now: &Current) -> Result<PlanFlags, PlanFileError> {
        binding::check(self, now).map_err(|refusals| PlanFileError::Refused {
            path: path.to_path_buf(),
            refusals,
        })
    }
}

fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `created` as an RFC 3339 time in UTC, to the second.
mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
