//! `trustmesh apply`: change only what is needed, then re-read and confirm.
//!
//! The flags become a request of [`trustmesh::ops::run_apply`] (which
//! locks, checks a saved plan, reads, plans, asks, applies and reads
//! back), run with the operator on the terminal ([`super::operator`]);
//! this shows the plan and the report it is handed as it goes, then how
//! the run ended, and records it in the history.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::operator::Terminal;
use super::output::{self, write_out};
use super::{history, remote, CliError, ExitStatus, InventoryArg, RemoteArgs, Ui};
use trustmesh::apply::ApplyReport;
use trustmesh::model::inventory::Inventory;
use trustmesh::ops::{self, ApplyOutcome, ApplyRequest, ApplyRun, OpsError, SavedPlanRequest};
use trustmesh::output::{self as render, PlanTextOptions};
use trustmesh::plan::{self, Plan};

/// Change only what is needed, then read the state again and confirm it
/// converged. Shows the plan and asks first; nothing changes before "yes"
/// (or `--yes`, or a saved plan).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Do not ask for confirmation (without it, and with no terminal to
    /// ask on, apply refuses).
    #[arg(long)]
    yes: bool,

    /// Apply a plan saved with `plan --out`: it is the approval. It is
    /// refused when its inventory changed since, when a flag given here
    /// differs from its own (flags left out are taken from it), or when it
    /// is older than --max-plan-age; the host keys it accepted on first use
    /// are pinned; a fresh plan is made, and anything in it that differs
    /// from the saved one refuses the whole plan.
    #[arg(long, value_name = "PLANFILE", conflicts_with = "inventory")]
    plan: Option<PathBuf>,

    /// With --plan: refuse a saved plan older than this (`90m`, `2h`,
    /// `3days`) [default: 24h]
    #[arg(long, value_name = "AGE", requires = "plan", conflicts_with = "inventory", value_parser = humantime::parse_duration)]
    max_plan_age: Option<Duration>,

    /// Print one JSON document at the end (with a `format_version`): the
    /// plan applied, each action's result, whether the state read back
    /// converged and what is left. Nothing else goes to standard output;
    /// it never asks, so it needs --yes or --plan.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_apply(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    // With --json, standard output is the document: no plan text, no
    // report, no question asked into it.
    let ui = Ui {
        json: args.json,
        ..ui
    };
    if args.json && args.plan.is_none() && !args.yes {
        return Err(CliError::message(
            "apply refused: --json does not ask (standard output is the JSON document) and there is \
             no --yes; nothing was changed",
        )
        .hint(
            "pass --yes, or approve a saved plan: `trustmesh plan --out FILE`, then \
             `trustmesh apply --json --plan FILE`",
        ));
    }
    // No consent, no change: refused before anything is read or touched.
    if args.plan.is_none() && !args.yes && !std::io::stdin().is_terminal() {
        return Err(CliError::message(
            "apply refused: there is no terminal to ask on and no --yes; nothing was changed",
        )
        .hint(
            "run it on a terminal to read the plan and answer, pass --yes, or approve a saved plan: \
             `trustmesh plan --out FILE`, then `trustmesh apply --plan FILE`",
        ));
    }
    let rt = remote::runtime()?;
    let request = ApplyRequest {
        request: remote::request(args.inventory.path(), &args.remote),
        saved_plan: args.plan.as_ref().map(|path| SavedPlanRequest {
            path: path.clone(),
            max_age: args.max_plan_age,
        }),
    };
    let operator = Terminal::new(ui, args.yes);
    let run = rt.block_on(ops::run_apply(&request, &operator))?;
    finish_run(ui, run)
}

/// Print through the one writer; a failure to write (not a closed pipe)
/// is reported and apply goes on to its end, then exits 1. With `--json`,
/// apply's text is not printed: the document is, at the end ([`json`]).
fn print(ui: Ui, what: &str, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    if ui.json {
        return;
    }
    if let Err(e) = write_out(what, write) {
        ui.report_error(&e);
    }
}

/// With `--json`, the one document: the plan applied, what the report
/// says of each action, and the plan made from the state read back.
fn json(ui: Ui, applied: &Plan, report: &ApplyReport, after: &Plan, converged: bool) {
    if !ui.json {
        return;
    }
    if let Err(e) = write_out("the result", |out| {
        render::render_apply_json(applied, report, after, converged, out)
    }) {
        ui.report_error(&e);
    }
}

/// One line of apply's own on standard output.
fn line(ui: Ui, text: &str) {
    print(ui, "the result", |out| writeln!(out, "{text}"));
}

/// The plan, as `plan` prints it (not with `--json`).
pub(super) fn show(ui: Ui, plan: &Plan) {
    print(ui, "the plan", |out| {
        render::render_text(
            plan,
            PlanTextOptions {
                color: ui.color_out,
                full_keys: ui.verbose > 0,
                verbose: ui.verbose > 0,
            },
            out,
        )
    });
}

/// What each action did (unless quiet, and all went well), and the nodes
/// whose files changed under the run, on standard error.
pub(super) fn show_report(ui: Ui, report: &ApplyReport) {
    if !ui.quiet || report.failed() {
        print(ui, "the report", |out| {
            writeln!(out)?;
            render::render_report(report, ui.color_out, out)
        });
    }
    for node in report.conflicts() {
        output::write_err(&format!("{}: a file changed since it was read; it was left as it is and the node is re-planned below\n", render::escape::Esc(node)));
    }
}

/// Say how the run ended, record it in the history, and give the exit
/// status.
fn finish_run(ui: Ui, run: ops::ApplyRun) -> Result<ExitStatus, CliError> {
    // The apply lock is held to the end, the history's record included.
    let ApplyRun {
        inventory: inv,
        scope,
        record,
        result,
        lock: _lock,
    } = run;
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(OpsError::SavedPlanDiffers { fresh, differences }) => {
            show(ui, &fresh);
            return Err(OpsError::SavedPlanDiffers { fresh, differences }.into());
        }
        Err(OpsError::NotReadBack {
            plan,
            report,
            source,
        }) => {
            // Changes were made: recorded, not converged (not read back).
            history::record_apply(ui, &record, &plan, &report, false);
            return Err(source.into());
        }
        Err(e) => return Err(e.into()),
    };
    let converged = outcome.converged();
    let Some(applied) = &outcome.applied else {
        json(
            ui,
            &outcome.plan,
            &ApplyReport::default(),
            &outcome.plan,
            converged,
        );
        return Ok(ExitStatus::from_ok(converged));
    };
    finish(ui, &inv, &scope, &outcome, applied);
    // The history: one record of this apply, once its end is known.
    history::record_apply(ui, &record, &outcome.plan, &applied.report, converged);
    Ok(ExitStatus::from_ok(
        converged && outcome.refused_rotations().is_empty() && !applied.report.failed(),
    ))
}

/// The end of a run that changed something: whether the state read back
/// matches the inventory, what is left, the rotations refused; with
/// `--json`, the document.
fn finish(
    ui: Ui,
    inv: &Inventory,
    scope: &plan::PlanScope,
    outcome: &ApplyOutcome,
    applied: &ops::Applied,
) {
    let left = &applied.left;
    let refused = outcome.refused_rotations();
    line(ui, "");
    if left.is_empty() {
        if applied.report.failed() {
            line(
                ui,
                "The state read back matches the inventory, but not every action succeeded (see above).",
            );
        } else if !ui.quiet {
            line(ui, &converged_line(inv, scope));
        }
    } else {
        line(
            ui,
            &format!(
                "Not converged: {} {} from the inventory; what is left:",
                left.join(", "),
                if left.len() == 1 { "differs" } else { "differ" }
            ),
        );
        show(ui, &applied.after);
    }
    if !refused.is_empty() {
        line(
            ui,
            &format!(
                "The rotation of {} was refused (see the plan above): that key is unchanged.",
                refused.join(", ")
            ),
        );
    }
    // The state read back matches the inventory: what `converged` says.
    json(
        ui,
        &outcome.plan,
        &applied.report,
        &applied.after,
        left.is_empty(),
    );
}

/// The closing line of a run that converged, saying what it covers.
fn converged_line(inv: &Inventory, scope: &plan::PlanScope) -> String {
    match &scope.limit {
        None => "Converged: the state read back matches the inventory.".to_string(),
        Some(_) => {
            let names: Vec<&str> = inv
                .nodes
                .iter()
                .enumerate()
                .filter(|(id, _)| scope.contains(*id))
                .map(|(_, n)| n.name.as_str())
                .collect();
            format!(
                "Converged within --limit ({}): the state read back matches the inventory on these nodes; \
                 the others were not read.",
                names.join(", ")
            )
        }
    }
}
