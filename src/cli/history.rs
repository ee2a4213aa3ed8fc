//! `trustmesh history`, and the record `apply` appends when it changed
//! something.

use std::path::PathBuf;

use super::{output, write_out, CliError, ExitStatus, InventoryArg, Ui};
use trustmesh::apply::ApplyReport;
use trustmesh::history::{self, file, Context, HistoryRecord};
use trustmesh::model::inventory::Inventory;
use trustmesh::output::escape::Esc;
use trustmesh::plan::Plan;

/// List the applies recorded for the inventory's cluster (newest last):
/// when, by whom, from which commit of the inventory, what changed and how
/// it ended. Kept in $XDG_STATE_HOME/trustmesh/<cluster>/history.jsonl
/// (else ~/.local/state/...).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Print the records as one JSON document (with a `format_version`).
    #[arg(long)]
    json: bool,

    /// Only the last N applies.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
}

fn history_path(cluster: &str) -> Result<PathBuf, file::HistoryError> {
    history::path_from_env(cluster).ok_or(file::HistoryError::NoHome)
}

pub fn cmd_history(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let inv = Inventory::load(&args.inventory.path())?;
    let path = history_path(&inv.cluster).map_err(CliError::from_diagnostic)?;
    let h = history::last(
        file::read(&path).map_err(CliError::from_diagnostic)?,
        args.limit,
    );
    for b in &h.broken {
        output::write_err(&format!(
            "warning: {} line {}: skipped: {}\n",
            Esc(&path.display().to_string()),
            b.line,
            Esc(&b.reason)
        ));
    }
    write_out("the history", |out| {
        if args.json {
            let doc = serde_json::json!({
                "format_version": history::HISTORY_FORMAT_VERSION,
                "cluster": inv.cluster,
                "path": path.display().to_string(),
                "records": h.records,
                "broken": h.broken,
            });
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::other)?;
            writeln!(out)
        } else if h.records.is_empty() {
            if ui.quiet {
                return Ok(());
            }
            writeln!(
                out,
                "No apply recorded for cluster {} ({}).",
                Esc(&inv.cluster),
                Esc(&path.display().to_string())
            )
        } else {
            for r in &h.records {
                writeln!(out, "{}", Esc(&history::text_line(r)))?;
            }
            Ok(())
        }
    })?;
    Ok(ExitStatus::Success)
}

/// Append the record of an apply that went on to change something. A
/// history that cannot be written is reported; the apply's outcome stands.
pub fn record_apply(ui: Ui, ctx: &Context, plan: &Plan, report: &ApplyReport, converged: bool) {
    let mut ctx = ctx.clone();
    ctx.time = std::time::SystemTime::now();
    let record = HistoryRecord::build(&ctx, plan, report, converged);
    let written = history_path(&ctx.cluster).and_then(|path| file::append(&path, &record));
    if let Err(e) = written {
        ui.report_error(
            &CliError::message(format!("this apply was not recorded in the history: {e}"))
                .hint("the changes above were made; `trustmesh history` will not list them"),
        );
    }
}
