//! What a check found wrong, in the words a person acts on: the step, the
//! reason, and what to do about it ([`Hint`]). Gather reports an
//! unreachable node with one, the planner blocks a node with one, a door
//! fails with one; the command line prints one as an error and its hint.
//!
//! A hint is data: what to do, with what it needs (a node, a path). The
//! model only holds it. Its words, and the command-line flags they name,
//! are in one place, the output layer's `hints` module, together with what
//! shows a hint (`Display`, its serialization as those words, its equality
//! by words): plan JSON, saved plans and verify JSON keep the text they
//! always had, and nothing here depends on the output layer.

use serde::{Deserialize, Serialize};

/// What to do about a problem: data. Its words, `Hint::words()`, are the
/// output layer's.
#[derive(Debug, Clone, Eq)]
#[non_exhaustive]
pub enum Hint {
    /// Advice that names no flag, in its own words.
    Text(String),
    /// The host key is unknown: check it, then accept it on first use or
    /// pin it.
    AcceptNewHostKeys,
    /// The host key in the manager's known_hosts changed: remove the old
    /// entry (`kh_name` in `known_hosts`), then accept the new key.
    ForgetChangedHostKey {
        kh_name: String,
        known_hosts: String,
    },
    /// The host presents another key than the pinned one: pin the new one,
    /// or accept the change for one run.
    AcceptChangedHostKey,
    /// The node does not accept the manager's key: read it with a
    /// password, and let apply install the key with it.
    AskPass,
    /// The manager has no key pair yet: read the nodes with a password,
    /// and let apply generate the key and install it.
    AskPassWithoutKey,
    /// A jump host reached with a password: install the manager's key
    /// there first.
    InstallOnJump { jump: String },
    /// Nothing answered in time: `check` says what to check (no flag), the
    /// words add the timeout's flag.
    RaiseTimeout { check: String },
    /// The host stopped answering in the middle of an operation.
    StoppedAnswering,
    /// A node's writes went as one command that did not finish: what it
    /// did is read again.
    BatchUnfinished,
    /// A rotation refused because nodes its key opens are out of scope;
    /// `manager`: the manager's key (it opens every node).
    RotateWithoutLimit { manager: bool },
    /// A line written by hand grants an edge without its policy: adopt it,
    /// or remove it.
    Adopt,
    /// An old host key trustmesh did not write (`names` in the file at
    /// `path`): remove it by hand, or let the plan remove it.
    RemoveStaleHostKey {
        names: String,
        path: String,
        node: String,
    },
}

impl Hint {
    /// Advice in its own words (no flag in them).
    pub fn text(s: impl Into<String>) -> Hint {
        Hint::Text(s.into())
    }
}

/// Advice in its own words.
impl From<String> for Hint {
    fn from(s: String) -> Hint {
        Hint::Text(s)
    }
}

/// Advice in its own words.
impl From<&str> for Hint {
    fn from(s: &str) -> Hint {
        Hint::Text(s.to_string())
    }
}

/// A per-node problem: the step that failed, what is wrong, and what to do
/// about it. Every per-node problem is one: a node gather could not read
/// ([`crate::model::state::NodeState::Unreachable`]), a node the planner
/// blocks or a rotation it refuses, an edge verify could not try, a door's
/// error (whose reason `R` is typed, [`crate::node::Reason`]) and a
/// transport failure. Where a document shows one its fields keep the names
/// and places they always had (each type's JSON form says how).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Finding")]
pub struct Finding<R = String> {
    pub step: String,
    pub reason: R,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Hint>,
}

impl<R> Finding<R> {
    pub fn new(step: &str, reason: R, hint: Option<Hint>) -> Finding<R> {
        Finding {
            step: step.to_string(),
            reason,
            hint,
        }
    }

    /// The same finding with its reason in words.
    pub fn in_words(self) -> Finding
    where
        R: std::fmt::Display,
    {
        Finding {
            step: self.step,
            reason: self.reason.to_string(),
            hint: self.hint,
        }
    }
}

impl Finding {
    /// The step of the planner's findings (a blocked node, a refused
    /// rotation).
    pub const PLAN: &'static str = "plan";

    /// A problem the planner found on a node it read, with advice in its
    /// own words (no flag in them).
    pub fn plan(reason: String, hint: Option<String>) -> Finding {
        Finding::new(Finding::PLAN, reason, hint.map(Hint::Text))
    }
}

impl<R: std::fmt::Display> std::fmt::Display for Finding<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hint {
            Some(h) => write!(f, "{} ({h})", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}
