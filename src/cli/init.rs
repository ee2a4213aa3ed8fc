//! `trustmesh init`: a commented starter inventory.

use std::io::Write;
use std::path::PathBuf;

use super::{CliError, ExitStatus, Ui};

/// Write a commented starter inventory to edit (never over an existing
/// file).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write it [default: $TRUSTMESH_INVENTORY, else inventory.yaml]
    #[arg(value_name = "INVENTORY")]
    path: Option<PathBuf>,
}

pub fn cmd_init(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let path = super::InventoryArg {
        inventory: args.path.clone(),
    }
    .path();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            let mut err = CliError::message(format!("cannot write {}: {e}", path.display()));
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                err = err.hint("it exists and is left as it is: give another path");
            }
            err
        })?;
    file.write_all(trustmesh::import::STARTER.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::io("the inventory", e))?;
    if !ui.quiet {
        super::write_out("the result", |out| {
            writeln!(
                out,
                "Wrote {}: edit its names and addresses, then run `trustmesh validate`.",
                path.display()
            )
        })?;
    }
    Ok(ExitStatus::Success)
}
