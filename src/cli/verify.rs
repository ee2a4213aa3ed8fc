//! `trustmesh verify`: try every edge for real.
//!
//! Reads every node the way `plan` does (one master connection each), then
//! has each edge's source run `ssh -o BatchMode=yes ... true` towards its
//! target over that connection ([`trustmesh::verify`]), prints the matrix
//! and the failing edges, and closes the connections.

use std::io::Write;

use super::remote::progress;
use super::{load_inventory, InventoryArg, RemoteArgs, Ui};
use trustmesh::verify::{self, TextOptions, VerifyOptions, VerifyReport};
use trustmesh::TrustGraph;

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

pub fn cmd_verify(ui: Ui, args: &Args) -> i32 {
    let Some(inv) = load_inventory(ui, &args.inventory) else {
        return 1;
    };
    let Some(report) = read_and_verify(ui, &inv, &args.remote) else {
        return 1;
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let written = if args.json {
        verify::render_json(&report, &mut out)
    } else {
        verify::render_text(
            &report,
            TextOptions {
                color: ui.color_out,
                quiet: ui.quiet,
            },
            &mut out,
        )
    };
    if let Err(e) = written.and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("trustmesh verify: cannot write the result: {e}");
            return 1;
        }
    }
    if report.all_hold() {
        0
    } else {
        1
    }
}

/// Read every node, try every edge, close the connections. Prints errors
/// itself; `None` on a fatal one.
fn read_and_verify(ui: Ui, inv: &trustmesh::Inventory, args: &RemoteArgs) -> Option<VerifyReport> {
    let (gather_opts, rt) = super::remote::prepare(inv, args)?;
    let graph = TrustGraph::build(inv);
    let scope = gather_opts.scope.clone();
    let verify_opts = VerifyOptions {
        timeout: gather_opts.timeout,
        concurrency: gather_opts.concurrency,
        scope: scope.clone(),
    };
    let edge_count = verify::edges_in_scope(&graph, &scope).len();
    rt.block_on(async {
        let gathered = super::remote::read(ui, inv, &graph, &gather_opts).await?;
        let bar = progress(ui, edge_count, "trying");
        let on_edge = |r: &verify::EdgeResult| {
            bar.inc(1);
            bar.set_message(format!("{} -> {}", r.source, r.target));
        };
        let report = verify::verify(inv, &graph, &gathered, &verify_opts, &on_edge).await;
        bar.finish_and_clear();
        gathered.close().await;
        Some(report)
    })
}
