//! `trustmesh plan`: read live state, print what apply would change.

use std::io::Write;
use std::path::PathBuf;

use super::{load_inventory, InventoryArg, RemoteArgs, Ui};
use trustmesh::plan::{NodeStatus, Plan};
use trustmesh::planfile::SavedPlan;
use trustmesh::render::{self, TextOptions};

/// Read the live state of every node and print what `apply` would change,
/// grouped by node and file.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Print the plan as one JSON document (with a `format_version`).
    #[arg(long)]
    json: bool,

    /// Save the plan to this file, for `apply --plan`.
    #[arg(long, value_name = "PLANFILE")]
    out: Option<PathBuf>,

    /// Exit 0 when there is nothing to change, 2 when there are changes, 1 on
    /// error.
    #[arg(long)]
    detailed_exitcode: bool,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_plan(ui: Ui, args: &Args) -> i32 {
    let Some(inv) = load_inventory(ui, &args.inventory) else {
        return 1;
    };
    let Some(plan) = super::remote::read_and_plan(ui, &inv, &args.remote) else {
        return 1;
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if args.json {
        render::render_json(&plan, &mut out)
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
            &mut out,
        )
    };
    if let Err(e) = written.and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("trustmesh plan: cannot write the plan: {e}");
            return 1;
        }
    }
    if let Some(path) = &args.out {
        let inventory = args.inventory.path();
        let inventory = std::fs::canonicalize(&inventory).unwrap_or(inventory);
        if let Err(e) = SavedPlan::new(&plan, &inventory, &args.remote.limit).save(path) {
            ui.report(&e);
            return 1;
        }
    }
    exit_code(&plan, args.detailed_exitcode)
}

/// 1 when a node could not be planned; else 0, or 2 for changes with
/// `--detailed-exitcode`.
pub fn exit_code(plan: &Plan, detailed: bool) -> i32 {
    let failed = plan.nodes.iter().any(|n| {
        matches!(
            n.status,
            NodeStatus::Unreachable { .. } | NodeStatus::Blocked { .. }
        )
    });
    if failed {
        1
    } else if detailed && !plan.is_empty() {
        2
    } else {
        0
    }
}
