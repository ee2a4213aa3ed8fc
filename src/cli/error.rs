//! How a command ends: one exit status, one error shape, decided once.
//!
//! A command returns `Result<ExitStatus, CliError>`. [`ExitStatus`] is how
//! it ended when it could tell its story itself (a plan with unreachable
//! nodes prints them, then ends in [`ExitStatus::Failure`]); [`CliError`]
//! is a failure nobody printed yet: a diagnostic from the library (an
//! inventory, a lock, a plan file, the manager's own state) or a message of
//! the command's own, with hints. [`super::run`] turns either into the
//! process's exit code and prints the error, so no command picks a number
//! or prints an error prefix of its own.

use std::fmt;

use miette::Diagnostic;
use trustmesh::plan::saved::{self as planfile, PlanFileError, PlanFlag, Refusal};

/// How a command ended. The only place numbers are chosen is
/// [`ExitStatus::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: done, or nothing to change.
    Success,
    /// 1: something failed, and was reported.
    Failure,
    /// 2: `plan --detailed-exitcode` found changes.
    Changes,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Changes => 2,
        }
    }

    /// Success when `ok`, else Failure.
    pub fn from_ok(ok: bool) -> ExitStatus {
        if ok {
            ExitStatus::Success
        } else {
            ExitStatus::Failure
        }
    }
}

/// A failure to report: a diagnostic (with its own code and help) plus
/// hints the command adds. Printed once, by [`super::run`].
pub struct CliError {
    error: Box<dyn Diagnostic + Send + Sync + 'static>,
    hints: Vec<String>,
    /// The output went to a closed pipe (`trustmesh plan | head`): not an
    /// error worth a message, and exit 0 like other tools.
    broken_pipe: bool,
}

/// A command's own message, as a diagnostic.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{0}")]
struct Message(String);

impl CliError {
    /// A failure the command describes itself.
    pub fn message(text: impl Into<String>) -> CliError {
        CliError::from_diagnostic(Message(text.into()))
    }

    /// Writing `what` failed.
    pub fn io(what: &str, e: std::io::Error) -> CliError {
        let broken_pipe = e.kind() == std::io::ErrorKind::BrokenPipe;
        let mut err = CliError::message(format!("cannot write {what}: {e}"));
        err.broken_pipe = broken_pipe;
        err
    }

    pub fn from_diagnostic(d: impl Diagnostic + Send + Sync + 'static) -> CliError {
        CliError {
            error: Box::new(d),
            hints: Vec::new(),
            broken_pipe: false,
        }
    }

    /// Add a hint: the next thing to try.
    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }

    pub fn is_broken_pipe(&self) -> bool {
        self.broken_pipe
    }

    pub fn hints(&self) -> &[String] {
        &self.hints
    }

    pub fn diagnostic(&self) -> &(dyn Diagnostic + Send + Sync + 'static) {
        &*self.error
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliError")
            .field("error", &self.error.to_string())
            .field("hints", &self.hints)
            .finish()
    }
}

/// Every library error that is a diagnostic converts with `?`.
macro_rules! from_diagnostics {
    ($($t:ty),* $(,)?) => {
        $(impl From<$t> for CliError {
            fn from(e: $t) -> CliError {
                CliError::from_diagnostic(e)
            }
        })*
    };
}

from_diagnostics!(
    trustmesh::InventoryError,
    trustmesh::apply::lock::LockError,
    trustmesh::gather::GatherError,
);

/// A saved plan's error in the command line's words: the flags named, and
/// what to do. Its code and cause are the library error's.
#[derive(Debug)]
struct PlanFileMessage {
    error: PlanFileError,
    message: String,
    help: Option<&'static str>,
}

impl fmt::Display for PlanFileMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PlanFileMessage {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl Diagnostic for PlanFileMessage {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.error.code()
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.map(|h| Box::new(h) as Box<dyn fmt::Display + 'a>)
    }
}

const PLAN_AGAIN: &str =
    "plan again with `trustmesh plan --out FILE`, read it, and apply that file";

impl From<PlanFileError> for CliError {
    fn from(error: PlanFileError) -> CliError {
        let (message, help) = match &error {
            PlanFileError::NotAPlan { path, reason } => (
                format!(
                    "{} is not a plan saved by `trustmesh plan --out`: {reason}",
                    path.display()
                ),
                Some("save a plan with `trustmesh plan --out FILE`"),
            ),
            PlanFileError::Version { .. } | PlanFileError::PlanVersion { .. } => {
                (error.to_string(), Some(PLAN_AGAIN))
            }
            PlanFileError::Unsafe { .. } => (
                error.to_string(),
                Some("a saved plan is an approval: only a file no one else could have written is taken; plan again with `trustmesh plan --out FILE`"),
            ),
            PlanFileError::Refused { path, refusals } => (
                format!(
                    "the saved plan is refused, nothing was changed: {} no longer matches what it was made with:{}",
                    path.display(),
                    planfile::list(refusals, refusal)
                ),
                Some("a saved plan is applied with the inventory, the flags and the host keys it was made with, while it is fresh: flags left out are taken from the plan; plan again with `trustmesh plan --out FILE` to approve what is there now"),
            ),
            _ => (error.to_string(), None),
        };
        CliError::from_diagnostic(PlanFileMessage {
            error,
            message,
            help,
        })
    }
}

/// Why a saved plan is refused, with the flag that differs.
fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::Flag { flag, given, saved } => format!(
            "{} differs: {given} now, {saved} in the saved plan",
            flag_name(*flag)
        ),
        Refusal::TooOld { created, age, max } => {
            format!("the plan was made at {created}, {age} ago: older than --max-plan-age {max}")
        }
        other => other.to_string(),
    }
}

/// The command-line flag of a flag a saved plan binds.
pub fn flag_name(flag: PlanFlag) -> &'static str {
    match flag {
        PlanFlag::Limit => "--limit",
        PlanFlag::RotateKeys => "--rotate-keys",
        PlanFlag::AcceptNewHostKeys => "--accept-new-host-keys",
        PlanFlag::AcceptChangedHostKey => "--accept-changed-host-key",
        PlanFlag::RemoveStaleHostKeys => "--remove-stale-host-keys",
        PlanFlag::AskPass => "--ask-pass",
        PlanFlag::Adopt => "--adopt",
    }
}

/// An operation's error as the command line says it. `apply` handles the
/// variants that need more than words first (a saved plan refused: the
/// fresh plan is shown; not read back: the history is written).
impl From<trustmesh::ops::OpsError> for CliError {
    fn from(e: trustmesh::ops::OpsError) -> CliError {
        use trustmesh::ops::OpsError;
        match e {
            OpsError::Gather(e) | OpsError::NotReadBack { source: e, .. } => e.into(),
            OpsError::Inventory(e) => e.into(),
            OpsError::Lock(e) => e.into(),
            OpsError::PlanFile(e) => e.into(),
            OpsError::Options(e) => e.into(),
            OpsError::SavedPlanDiffers { differences, .. } => {
                let list: String = differences
                    .iter()
                    .map(|d| format!("\n  {}: {}", d.node, d.what))
                    .collect();
                CliError::message(format!(
                    "the saved plan is refused, nothing was changed: a fresh plan differs from it:{list}"
                ))
                .hint("read the fresh plan above; save it again with `trustmesh plan --out FILE` to approve it")
            }
            e @ (OpsError::Password(_) | OpsError::Cancelled) => CliError::message(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_decided_here() {
        assert_eq!(ExitStatus::Success.code(), 0);
        assert_eq!(ExitStatus::Failure.code(), 1);
        assert_eq!(ExitStatus::Changes.code(), 2);
        assert_eq!(ExitStatus::from_ok(false), ExitStatus::Failure);
    }

    #[test]
    fn a_closed_pipe_is_not_an_error_message() {
        let e = CliError::io(
            "the plan",
            std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        );
        assert!(e.is_broken_pipe());
        let e = CliError::message("boom").hint("try again");
        assert!(!e.is_broken_pipe());
        assert_eq!(e.diagnostic().to_string(), "boom");
        assert_eq!(e.hints(), ["try again"]);
    }

    #[test]
    fn a_refused_saved_plan_is_said_with_the_flags_and_what_to_do() {
        let e = CliError::from(PlanFileError::Refused {
            path: "/p/saved.plan".into(),
            refusals: vec![
                Refusal::Flag {
                    flag: PlanFlag::Limit,
                    given: "node1,node2".into(),
                    saved: "node1".into(),
                },
                Refusal::TooOld {
                    created: "2026-01-01T00:00:00Z".into(),
                    age: "1day 1h".into(),
                    max: "1day".into(),
                },
            ],
        });
        let d = e.diagnostic();
        assert_eq!(
            d.to_string(),
            "the saved plan is refused, nothing was changed: /p/saved.plan no longer matches what it was made with:\
             \n  - --limit differs: node1,node2 now, node1 in the saved plan\
             \n  - the plan was made at 2026-01-01T00:00:00Z, 1day 1h ago: older than --max-plan-age 1day"
        );
        assert_eq!(
            d.code().unwrap().to_string(),
            "trustmesh::planfile::refused"
        );
        assert!(d
            .help()
            .unwrap()
            .to_string()
            .contains("`trustmesh plan --out FILE`"));
        let e = CliError::from(PlanFileError::NotAPlan {
            path: "/p/x".into(),
            reason: "no `format_version`".into(),
        });
        assert_eq!(
            e.diagnostic().to_string(),
            "/p/x is not a plan saved by `trustmesh plan --out`: no `format_version`"
        );
        assert_eq!(
            e.diagnostic().help().unwrap().to_string(),
            "save a plan with `trustmesh plan --out FILE`"
        );
        let e = CliError::from(PlanFileError::Version {
            path: "/p/old.plan".into(),
            found: 1,
            by: "an older",
        });
        assert_eq!(
            e.diagnostic().help().unwrap().to_string(),
            "plan again with `trustmesh plan --out FILE`, read it, and apply that file"
        );
        // The cause stays the library error's.
        let e = CliError::from(PlanFileError::Io {
            action: "read",
            path: "/p/y".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
        assert!(e.diagnostic().source().is_some());
        assert!(e.diagnostic().help().is_none());
    }
}
