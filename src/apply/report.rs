//! What an apply did: each action's result, node by node.

/// What happened to one action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ActionResult {
    Done {
        what: String,
    },
    Failed {
        what: String,
        reason: String,
    },
    /// The file changed since the plan: left as it is.
    Conflict {
        what: String,
    },
    Skipped {
        what: String,
        because: String,
    },
}

/// What happened on one node.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NodeReport {
    pub node: String,
    pub results: Vec<ActionResult>,
}

impl NodeReport {
    pub fn failed(&self) -> bool {
        self.results
            .iter()
            .any(|r| !matches!(r, ActionResult::Done { .. }))
    }
}

/// The whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    pub nodes: Vec<NodeReport>,
}

impl ApplyReport {
    pub fn failed(&self) -> bool {
        self.nodes.iter().any(NodeReport::failed)
    }
    pub fn conflicts(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| {
                n.results
                    .iter()
                    .any(|r| matches!(r, ActionResult::Conflict { .. }))
            })
            .map(|n| n.node.as_str())
            .collect()
    }
}
