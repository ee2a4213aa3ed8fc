//! The JSON documents of `plan --json`, `apply --json` and
//! `validate --json` (`verify --json` is [`crate::verify::render_json`]),
//! and the JSON Schemas of all four.
//!
//! Each document is one serde type with a `format_version`, and derives
//! its schema with schemars: the files in `schemas/` are generated from
//! these types ([`schemas`]), and a test holds the committed files to them.
//! Text is left as serde_json writes it (no terminal escaping: JSON strings
//! hold control characters escaped already).

use std::io::{self, Write};

use schemars::schema::RootSchema;
use schemars::JsonSchema;
use serde::Serialize;

use crate::apply::{ActionResult, ApplyReport};
use crate::model::inventory::diagnostics::Located;
use crate::model::inventory::{Inventory, InventoryError, Role};
use crate::plan::{NodePlan, NodeStatus, Plan, PlanSummary};

/// Version of the document of `apply --json`.
pub const APPLY_FORMAT_VERSION: u32 = 1;
/// Version of the document of `validate --json`.
pub const VALIDATE_FORMAT_VERSION: u32 = 1;

/// The document `plan --json` prints (and the `plan` of `apply --json`).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "PlanOutput")]
pub(crate) struct JsonPlan<'a> {
    /// The version of the plan format (the same as a saved plan's).
    format_version: u32,
    /// The inventory the plan was made from (saved plans only).
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory: Option<&'a str>,
    summary: PlanSummary,
    /// One entry per node in scope, in inventory order.
    nodes: &'a [NodePlan],
    /// What the whole run should know.
    notes: &'a [String],
    /// Said before everything else (what every edge of this plan allows).
    #[serde(default, skip_serializing_if = "<[String]>::is_empty")]
    header: &'a [String],
}

impl<'a> JsonPlan<'a> {
    pub(crate) fn of(plan: &'a Plan, inventory: Option<&'a str>) -> JsonPlan<'a> {
        JsonPlan {
            format_version: plan.format_version,
            inventory,
            summary: plan.summary(),
            nodes: &plan.nodes,
            notes: &plan.notes,
            header: &plan.header,
        }
    }
}

/// One pretty-printed document and a newline.
fn write_doc(doc: &impl Serialize, out: &mut dyn Write) -> io::Result<()> {
    // An I/O error stays itself (a closed pipe is not a failure).
    serde_json::to_writer_pretty(&mut *out, doc).map_err(io::Error::from)?;
    writeln!(out)
}

/// Render the plan as one JSON document (`plan --json`).
pub fn render_json(plan: &Plan, out: &mut dyn Write) -> io::Result<()> {
    write_doc(&JsonPlan::of(plan, None), out)
}

/// The document `apply --json` prints, once, at the end.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ApplyOutput")]
struct JsonApply<'a> {
    /// The version of this document's shape.
    format_version: u32,
    /// The plan that was applied, as `plan --json` gives it.
    plan: JsonPlan<'a>,
    /// What was done, action by action, node by node in plan order; empty
    /// when the plan had nothing to change.
    actions: Vec<JsonAction<'a>>,
    /// The state read back after the changes matches the inventory, every
    /// node in scope read and planned.
    converged: bool,
    /// What the state read back still differs in.
    remaining: Remaining<'a>,
}

/// One action apply carried out, or did not.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ApplyAction")]
struct JsonAction<'a> {
    /// The node it was run on.
    node: &'a str,
    /// What it does (`edit ~/.ssh/authorized_keys`...).
    step: &'a str,
    result: ActionOutcome,
    /// Why it failed, conflicted or was skipped; absent when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// How an action ended.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ActionOutcome {
    /// Done.
    Ok,
    /// Tried, and it failed.
    Failed,
    /// The file changed since it was read: left as it is (compare-and-swap).
    Conflict,
    /// Not tried: something it depends on did not succeed.
    Skipped,
}

/// The reason given with a conflict, as the text report says it.
const CONFLICT: &str = "the file changed since it was read; left as it is";

/// What is left after apply: the plan made from the state read back,
/// reduced to the nodes with something left (changes, or not read, or
/// blocked).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ApplyRemaining")]
struct Remaining<'a> {
    summary: PlanSummary,
    nodes: Vec<&'a NodePlan>,
    notes: &'a [String],
}

/// Render what apply did as one JSON document (`apply --json`): the plan
/// it applied, each action's result, and the state read back (`after`:
/// the plan made from it; `converged` as apply judged it).
pub fn render_apply_json(
    applied: &Plan,
    report: &ApplyReport,
    after: &Plan,
    converged: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    let actions = report
        .nodes
        .iter()
        .flat_map(|n| n.results.iter().map(move |r| (n.node.as_str(), r)))
        .map(|(node, r)| {
            let (step, result, reason) = match r {
                ActionResult::Done { what } => (what, ActionOutcome::Ok, None),
                ActionResult::Failed { what, reason } => {
                    (what, ActionOutcome::Failed, Some(reason.as_str()))
                }
                ActionResult::Conflict { what } => (what, ActionOutcome::Conflict, Some(CONFLICT)),
                ActionResult::Skipped { what, because } => {
                    (what, ActionOutcome::Skipped, Some(because.as_str()))
                }
            };
            JsonAction {
                node,
                step,
                result,
                reason,
            }
        })
        .collect();
    let doc = JsonApply {
        format_version: APPLY_FORMAT_VERSION,
        plan: JsonPlan::of(applied, None),
        actions,
        converged,
        remaining: Remaining {
            summary: after.summary(),
            nodes: after
                .nodes
                .iter()
                .filter(|n| !n.changes.is_empty() || !matches!(n.status, NodeStatus::Planned))
                .collect(),
            notes: &after.notes,
        },
    };
    write_doc(&doc, out)
}

/// The document `validate --json` prints.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ValidateOutput")]
struct JsonValidate<'a> {
    /// The version of this document's shape.
    format_version: u32,
    /// The inventory can be used (the exit code is 0).
    valid: bool,
    /// The inventory file, as named in messages.
    file: &'a str,
    /// Every problem found, each with its place; empty when valid. Only
    /// the first 100 of a file are listed (`total_problems` counts them
    /// all).
    problems: Vec<Located>,
    /// How many problems the file has, listed or not.
    total_problems: usize,
    /// What a person should know about a valid inventory.
    warnings: Vec<Located>,
    /// What the inventory holds; present only when valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<Counts>,
}

/// What a valid inventory holds, as `validate` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Counts {
    pub managers: usize,
    pub bastions: usize,
    pub workers: usize,
    pub trust_edges: usize,
}

impl Counts {
    pub fn of(inv: &Inventory) -> Counts {
        let count = |role| inv.nodes.iter().filter(|n| n.role == role).count();
        Counts {
            managers: count(Role::Manager),
            bastions: count(Role::Bastion),
            workers: count(Role::Worker),
            trust_edges: crate::TrustGraph::build(inv).edge_count(),
        }
    }
}

/// Render what `validate` found as one JSON document (`validate --json`):
/// `file` is the inventory as named in messages, `result` what loading it
/// gave.
pub fn render_validate_json(
    file: &str,
    result: &Result<Inventory, InventoryError>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let doc = match result {
        Ok(inv) => JsonValidate {
            format_version: VALIDATE_FORMAT_VERSION,
            valid: true,
            file,
            problems: Vec::new(),
            total_problems: 0,
            warnings: inv.warnings.iter().map(Located::from).collect(),
            counts: Some(Counts::of(inv)),
        },
        Err(e) => JsonValidate {
            format_version: VALIDATE_FORMAT_VERSION,
            valid: false,
            file,
            problems: e.located(),
            total_problems: e.total(),
            warnings: Vec::new(),
            counts: None,
        },
    };
    write_doc(&doc, out)
}

/// The JSON Schemas of the four outputs, by name: `plan`, `apply`,
/// `verify` and `validate` (committed as `schemas/<name>.schema.json`).
pub fn schemas() -> Vec<(&'static str, RootSchema)> {
    vec![
        ("plan", schemars::schema_for!(JsonPlan<'static>)),
        ("apply", schemars::schema_for!(JsonApply<'static>)),
        ("verify", crate::verify::json_schema()),
        ("validate", schemars::schema_for!(JsonValidate<'static>)),
    ]
}

/// A schema as the committed file has it: pretty JSON and a newline.
pub fn schema_text(schema: &RootSchema) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema always serializes");
    text.push('\n');
    text
}
