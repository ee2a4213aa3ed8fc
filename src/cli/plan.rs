//! `trustmesh plan`: read live state, print what apply would change.
//!
//! [`trustmesh::ops::run_plan`] reads and plans (and, with `--out`, makes
//! the saved plan); this prints the plan, then writes the saved plan.

use std::path::PathBuf;

use super::operator::Terminal;
use super::{remote, write_out, CliError, ExitStatus, ReportArgs, Ui};
use trustmesh::ops::{self, PlanRun};
use trustmesh::output::{self as render, PlanTextOptions};
use trustmesh::plan::Plan;

/// Read the live state of every node and print what `apply` would change,
/// grouped by node and file.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,

    /// Save the plan to this file, for `apply --plan`: with the
    /// inventory's SHA-256, the flags, the host keys accepted on first use
    /// and the time, all of which `apply --plan` holds it to.
    #[arg(long, value_name = "PLANFILE")]
    out: Option<PathBuf>,

    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on
    /// error.
    #[arg(long)]
    detailed_exitcode: bool,
}

pub fn cmd_plan(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let rt = remote::runtime()?;
    let request = remote::request(args.report.inventory.path(), &args.report.remote);
    let PlanRun { outcome, saved } = rt.block_on(ops::run_plan(
        &request,
        args.out.is_some(),
        &Terminal::new(ui, false),
    ))?;
    let plan = outcome.plan;
    // A reader that stopped early (`| head`) does not stop the saving.
    write_out("the plan", |out| {
        if args.report.json {
            render::render_json(&plan, out)
        } else if ui.quiet {
            writeln!(out, "{}", render::summary_line(&plan.summary()))
        } else {
            render::render_text(
                &plan,
                PlanTextOptions {
                    color: ui.color_out,
                    full_keys: ui.verbose > 0,
                    verbose: ui.verbose > 0,
                },
                out,
            )
        }
    })?;
    if let (Some(path), Some(saved)) = (&args.out, saved) {
        saved.save(path)?;
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
