//! `trustmesh plan`: read live state, print what apply would change.

use std::path::PathBuf;

use super::{not_built, InventoryArg, RemoteArgs, Ui};

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

pub fn cmd_plan(_ui: Ui, _args: &Args) -> i32 {
    not_built("plan")
}
