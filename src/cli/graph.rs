//! `trustmesh graph`: print the trust graph.

use super::{load_inventory, write_out, CliError, ExitStatus, InventoryArg, Ui};
use trustmesh::model::graph::{self, GraphFormat};
use trustmesh::output::escape;

/// The trust graph: nodes, edges and their kind (forward, reverse, mesh),
/// and the jumps that order the work.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Output format: text for people, dot for Graphviz, mermaid for
    /// Markdown pages.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Dot,
    Mermaid,
}

pub fn cmd_graph(_ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let inv = load_inventory(&args.inventory)?;
    let g = trustmesh::TrustGraph::build(&inv);
    let format = match args.format {
        Format::Text => GraphFormat::Text,
        Format::Dot => GraphFormat::Dot,
        Format::Mermaid => GraphFormat::Mermaid,
    };
    // Names and addresses are the inventory's: escaped, the lines kept.
    let mut text = Vec::new();
    let now = trustmesh::model::inventory::expiry::system_now();
    graph::render_at(&inv, &g, format, Some(now), &mut text)
        .map_err(|e| CliError::message(format!("cannot render the graph: {e}")))?;
    let text = String::from_utf8_lossy(&text);
    write_out("the graph", |out| {
        out.write_all(escape::message(&text).as_bytes())
    })?;
    Ok(ExitStatus::Success)
}
