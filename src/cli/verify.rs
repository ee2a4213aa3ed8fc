//! `trustmesh verify`: try every edge for real.
//!
//! [`trustmesh::ops::run_verify`] reads every node the way `plan` does (one
//! master connection each), then has each edge's source run `ssh -o
//! BatchMode=yes ... true` towards its target over that connection; this
//! prints the matrix and the failing edges.

use super::operator::Terminal;
use super::{remote, write_out, CliError, ExitStatus, ReportArgs, Ui};
use trustmesh::ops;
use trustmesh::verify::{self, VerifyTextOptions};

/// Try every edge for real (`ssh -o BatchMode=yes` from its source) and print
/// a source x target matrix. Exit 0 only if every edge holds.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    report: ReportArgs,
}

pub fn cmd_verify(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let rt = remote::runtime()?;
    let request = remote::request(args.report.inventory.path(), &args.report.remote);
    let report = rt.block_on(ops::run_verify(&request, &Terminal::new(ui, false)))?;
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
