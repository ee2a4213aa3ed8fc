//! `trustmesh apply`: change only what is needed, then re-read and confirm.

use std::path::PathBuf;

use super::{not_built, InventoryArg, RemoteArgs, Ui};

/// Change only what is needed, then read the state again and confirm it
/// converged. Asks for confirmation when standard input is a terminal.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,

    /// Apply a plan saved with `plan --out`; refused for a node whose live
    /// state changed since.
    #[arg(long, value_name = "PLANFILE", conflicts_with = "inventory")]
    plan: Option<PathBuf>,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_apply(_ui: Ui, _args: &Args) -> i32 {
    not_built("apply")
}
