//! `trustmesh graph`: print the trust graph.

use super::{load_inventory, write_out, CliError, ExitStatus, InventoryArg, Ui};
use trustmesh::graph::{self, GraphFormat};

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
    write_out("the graph", |out| graph::render(&inv, &g, format, out))?;
    Ok(ExitStatus::Success)
}
