//! `trustmesh validate`: parse and check the inventory, no network.

use super::{load_inventory, write_out, CliError, ExitStatus, InventoryArg, Ui};
use trustmesh::render::escape::Esc;

/// Parse and check the inventory; no network. Exit 0 when valid, 1 when not
/// (every problem of the file is reported at once).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,
}

pub fn cmd_validate(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let inv = load_inventory(&args.inventory)?;
    // Warnings go to standard error, quiet or not: the file is valid.
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    if !ui.quiet {
        let g = trustmesh::TrustGraph::build(&inv);
        let count = |role| inv.nodes.iter().filter(|n| n.role == role).count();
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        let path = args.inventory.path();
        write_out("the result", |out| {
            writeln!(
                out,
                "{} is valid: 1 manager, {}, {}, {}.",
                Esc(&path.display().to_string()),
                plural(count(trustmesh::inventory::Role::Bastion), "bastion"),
                plural(count(trustmesh::inventory::Role::Worker), "worker"),
                plural(g.edge_count(), "trust edge"),
            )
        })?;
    }
    Ok(ExitStatus::Success)
}
