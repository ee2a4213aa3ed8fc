//! `trustmesh graph`: print the trust graph.

use std::io::Write;

use super::{load_inventory, InventoryArg, Ui};
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

pub fn cmd_graph(ui: Ui, args: &Args) -> i32 {
    let Some(inv) = load_inventory(ui, &args.inventory) else {
        return 1;
    };
    let g = trustmesh::TrustGraph::build(&inv);
    let format = match args.format {
        Format::Text => GraphFormat::Text,
        Format::Dot => GraphFormat::Dot,
        Format::Mermaid => GraphFormat::Mermaid,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match graph::render(&inv, &g, format, &mut out).and_then(|_| out.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("trustmesh graph: cannot write the output: {e}");
            1
        }
    }
}
