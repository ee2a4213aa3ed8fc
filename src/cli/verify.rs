//! `trustmesh verify`: try every edge for real.

use super::{not_built, InventoryArg, RemoteArgs, Ui};

/// Try every edge for real (`ssh -o BatchMode=yes` from its source) and print
/// a source x target matrix. Exit 0 only if every edge holds.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Print the result as JSON.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_verify(_ui: Ui, _args: &Args) -> i32 {
    not_built("verify")
}
