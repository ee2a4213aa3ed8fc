//! What a check found wrong, in the words a person acts on: the reason,
//! and what to do about it. The planner blocks a node with one; the
//! command line prints one as an error and its hint.

use serde::{Deserialize, Serialize};

/// What is wrong, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Finding {
    pub fn new(reason: String, hint: Option<String>) -> Finding {
        Finding { reason, hint }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.hint {
            Some(h) => write!(f, "{} ({h})", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}
