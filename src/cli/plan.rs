//! `trustmesh plan`: read live state, print what apply would change.

use std::path::PathBuf;

use super::{load_inventory, write_out, CliError, ExitStatus, ReportArgs, Ui};
use trustmesh::plan::Plan;
use trustmesh::planfile::SavedPlan;
use trustmesh::render::{self, TextOptions};

/// Read the live state of every node and print what `apply` would change,
/// grouped by node and file.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,

    /// Save the plan to this file, for `apply --plan`.
    #[arg(long, value_name = "PLANFILE")]
    out: Option<PathBuf>,

    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on
    /// error.
    #[arg(long)]
    detailed_exitcode: bool,
}

pub fn cmd_plan(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let inv = load_inventory(&args.report.inventory)?;
    let plan = super::remote::read_and_plan(ui, &inv, &args.report.remote)?;
    // A reader that stopped early (`| head`) does not stop the saving.
    write_out("the plan", |out| {
        if args.report.json {
            render::render_json(&plan, out)
        } else if ui.quiet {
            writeln!(out, "{}", render::summary_line(&plan.summary()))
        } else {
            render::render_text(
                &plan,
                TextOptions {
                    color: ui.color_out,
                    full_keys: ui.verbose > 0,
                    verbose: ui.verbose > 0,
                },
                out,
            )
        }
    })?;
    if let Some(path) = &args.out {
        let inventory = args.report.inventory.path();
        let inventory = std::fs::canonicalize(&inventory).unwrap_or(inventory);
        SavedPlan::new(&plan, &inventory, &args.report.remote.limit).save(path)?;
    }
    Ok(status(&plan, args.detailed_exitcode))
}

/// Failure when a node could not be planned; else success, or changes for
/// `--detailed-exitcode`.
fn status(plan: &Plan, detailed: bool) -> ExitStatus {
    if plan.incomplete() {
        ExitStatus::Failure
    } else if detailed && !plan.is_empty() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}
