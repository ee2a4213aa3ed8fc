//! `trustmesh validate`: parse and check the inventory, no network.

use super::{write_out, CliError, ExitStatus, InventoryArg, Ui};
use trustmesh::output::escape::Esc;
use trustmesh::output::json::Counts;

/// Parse and check the inventory; no network. Exit 0 when valid, 1 when not
/// (every problem of the file is reported at once).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Print the result as one JSON document (with a `format_version`):
    /// `valid`, every problem with its line and column, the warnings, and
    /// the counts of a valid inventory. Exit codes are the same.
    #[arg(long)]
    json: bool,
}

pub fn cmd_validate(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let path = args.inventory.path();
    let loaded = trustmesh::Inventory::load(&path);
    if args.json {
        // Valid or not, one document on standard output; nothing else.
        write_out("the result", |out| {
            trustmesh::output::render_validate_json(&path.display().to_string(), &loaded, out)
        })?;
        return Ok(ExitStatus::from_ok(loaded.is_ok()));
    }
    let inv = loaded?;
    // Warnings go to standard error, quiet or not: the file is valid.
    for w in &inv.warnings {
        super::output::write_err(&format!(
            "warning: {}\n",
            trustmesh::output::escape::EscMessage(&w.to_string())
        ));
    }
    if !ui.quiet {
        let c = Counts::of(&inv);
        let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
        write_out("the result", |out| {
            writeln!(
                out,
                "{} is valid: 1 manager, {}, {}, {}.",
                Esc(&path.display().to_string()),
                plural(c.bastions, "bastion"),
                plural(c.workers, "worker"),
                plural(c.trust_edges, "trust edge"),
            )
        })?;
    }
    Ok(ExitStatus::Success)
}
