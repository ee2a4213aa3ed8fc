//! Who runs an operation: the person (or program) that consents to a
//! plan, gives the password for `--ask-pass`, and watches the progress.
//!
//! The operations never print or prompt: everything they would tell or ask
//! goes through an [`Operator`]. The library has a non-interactive one
//! ([`NonInteractive`]); the command line has one on the terminal.

use crate::apply::ApplyReport;
use crate::gather::ConfirmHostKey;
use crate::plan::Plan;
use crate::transport::password::Secret;

/// What an operation tells its operator as it goes.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Reading the live state of `nodes` nodes starts. `asking`: a
    /// question may be asked while reading (a host key accepted on first
    /// use, before a password goes to it).
    Reading { nodes: usize, asking: bool },
    /// One node was read.
    Read { node: &'a str },
    /// Reading is over.
    ReadDone,
    /// Something to tell about the run (a host key accepted on first use).
    Note(&'a str),
    /// Trying `edges` trust edges for real starts (`verify`).
    Trying { edges: usize },
    /// One edge was tried.
    Tried { source: &'a str, target: &'a str },
    /// Trying is over.
    TriedDone,
    /// `apply`: the plan made from the live state, before consent is
    /// asked (or a saved plan stands for it) and anything changes.
    Planned(&'a Plan),
    /// `apply`: what each action did, before the state is read back.
    Applied(&'a ApplyReport),
}

/// The password for `--ask-pass` could not be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoPassword(pub String);

/// Confirms plans, gives passwords, receives progress.
pub trait Operator: Sync {
    /// Consent to apply `plan` (already reported with
    /// [`Progress::Planned`]). Nothing changes on `false`.
    fn confirm(&self, plan: &Plan) -> bool;

    /// The password for the nodes that do not accept the manager's key
    /// yet, asked once with `prompt`; only when `$TRUSTMESH_PASSWORD` was
    /// not given.
    fn password(&self, prompt: &str) -> Result<Secret, NoPassword>;

    /// The question asked before a password goes to a host whose key was
    /// accepted on first use in this run. `None`: the options given are
    /// the consent.
    fn host_key_question(&self) -> Option<ConfirmHostKey> {
        None
    }

    /// How the operation goes.
    fn progress(&self, event: Progress<'_>);
}

/// An operator with nobody to ask: it consents only when told to
/// (`--yes`), has no password, and ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NonInteractive {
    /// Consent to every plan.
    pub consent: bool,
}

impl Operator for NonInteractive {
    fn confirm(&self, _plan: &Plan) -> bool {
        self.consent
    }

    fn password(&self, _prompt: &str) -> Result<Secret, NoPassword> {
        Err(NoPassword(format!(
            "no password: nobody to ask, and ${} is not set",
            crate::transport::password::PASSWORD_ENV
        )))
    }

    fn progress(&self, _event: Progress<'_>) {}
}
