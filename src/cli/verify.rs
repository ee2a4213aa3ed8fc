//! `trustmesh verify`: try every edge for real.
//!
//! Reads every node the way `plan` does (one master connection each), then
//! has each edge's source run `ssh -o BatchMode=yes ... true` towards its
//! target over that connection ([`trustmesh::verify`]), prints the matrix
//! and the failing edges, and closes the connections.

use super::remote::progress;
use super::{load_inventory, write_out, CliError, ExitStatus, RemoteArgs, ReportArgs, Ui};
use trustmesh::output::escape::Esc;
use trustmesh::verify::{self, VerifyOptions, VerifyReport, VerifyTextOptions};
use trustmesh::TrustGraph;

/// Try every edge for real (`ssh -o BatchMode=yes` from its source) and print
/// a source x target matrix. Exit 0 only if every edge holds.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,
}

pub fn cmd_verify(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let inv = load_inventory(&args.report.inventory)?;
    let report = read_and_verify(ui, &inv, &args.report.remote)?;
    write_out("the result", |out| {
        if args.report.json {
            verify::render_json(&report, out)
        } else {
            verify::render_text(
                &report,
                VerifyTextOptions {
                    color: ui.color_out,
                    quiet: ui.quiet,
                },
                out,
            )
        }
    })?;
    Ok(ExitStatus::from_ok(report.all_hold()))
}

/// Read every node, try every edge, close the connections.
fn read_and_verify(
    ui: Ui,
    inv: &trustmesh::Inventory,
    args: &RemoteArgs,
) -> Result<VerifyReport, CliError> {
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
            bar.set_message(format!("{} -> {}", Esc(&r.source), Esc(&r.target)));
        };
        let report = verify::verify(inv, &graph, &gathered, &verify_opts, &on_edge).await;
        bar.finish_and_clear();
        gathered.close().await;
        Ok(report)
    })
}
