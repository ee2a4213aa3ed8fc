//! `trustmesh apply`: change only what is needed, then re-read and confirm.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::{remote, InventoryArg, RemoteArgs, Ui};
use trustmesh::apply::{self, ApplyOptions};
use trustmesh::gather::{self, GatherOptions};
use trustmesh::inventory::Inventory;
use trustmesh::plan::{self, NodeStatus, Plan};
use trustmesh::planfile::{self, SavedPlan};
use trustmesh::render::{self, TextOptions};
use trustmesh::{lock, TrustGraph};

/// Change only what is needed, then read the state again and confirm it
/// converged. Shows the plan and asks first; nothing changes before "yes"
/// (or `--yes`, or a saved plan).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Do not ask for confirmation (without it, and with no terminal to
    /// ask on, apply refuses).
    #[arg(long)]
    yes: bool,

    /// Apply a plan saved with `plan --out`: it is the approval. A fresh
    /// plan is made; anything in it that differs from the saved one
    /// refuses the whole plan.
    #[arg(long, value_name = "PLANFILE", conflicts_with = "inventory")]
    plan: Option<PathBuf>,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_apply(ui: Ui, args: &Args) -> i32 {
    // No consent, no change: refused before anything is read or touched.
    if args.plan.is_none() && !args.yes && !std::io::stdin().is_terminal() {
        eprintln!(
            "trustmesh apply: refused: there is no terminal to ask on and no --yes; nothing was changed\n  \
             hint: run it on a terminal to read the plan and answer, pass --yes, or approve a saved plan: \
             `trustmesh plan --out FILE`, then `trustmesh apply --plan FILE`"
        );
        return 1;
    }
    let saved = match &args.plan {
        Some(path) => match SavedPlan::load(path) {
            Ok(s) => Some(s),
            Err(e) => {
                ui.report(&e);
                return 1;
            }
        },
        None => None,
    };
    let inv_path = match &saved {
        Some(s) => PathBuf::from(&s.inventory),
        None => args.inventory.path(),
    };
    let inv = match Inventory::load(&inv_path) {
        Ok(inv) => inv,
        Err(e) => {
            ui.report(&e);
            return 1;
        }
    };
    // A saved plan is checked against a fresh one of the same scope.
    let mut remote = args.remote.clone();
    if let Some(s) = &saved {
        let limit = s.limit.clone().unwrap_or_default();
        if !remote.limit.is_empty() && remote.limit != limit {
            eprintln!(
                "trustmesh apply: --limit differs from the saved plan's ({}); a saved plan is applied with its own scope",
                if limit.is_empty() { "none".to_string() } else { limit.join(",") }
            );
            return 1;
        }
        remote.limit = limit;
    }
    let _lock = match lock::ApplyLock::acquire(&lock::lock_path(&inv_path), &inv_path) {
        Ok(l) => l,
        Err(e) => {
            ui.report(&e);
            return 1;
        }
    };
    let Some((opts, rt)) = remote::prepare(&inv, &remote) else {
        return 1;
    };
    rt.block_on(run(ui, args.yes, &inv, opts, saved))
}

fn show(ui: Ui, plan: &Plan) {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = render::render_text(
        plan,
        TextOptions {
            color: ui.color_out,
            full_keys: ui.verbose > 0,
            verbose: ui.verbose > 0,
        },
        &mut out,
    );
    let _ = out.flush();
}

fn confirm() -> bool {
    print!("Apply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}

async fn run(
    ui: Ui,
    yes: bool,
    inv: &Inventory,
    opts: GatherOptions,
    saved: Option<SavedPlan>,
) -> i32 {
    let graph = TrustGraph::build(inv);
    let Some(g) = remote::read(ui, inv, &graph, &opts).await else {
        return 1;
    };
    let fresh = plan::plan(inv, &graph, &g.live, &opts.scope);
    // A saved plan is an approval of exactly these changes, not a program.
    if let Some(saved) = &saved {
        let diffs = planfile::differences(&saved.nodes, &fresh.nodes);
        if !diffs.is_empty() {
            eprintln!(
                "trustmesh apply: the saved plan is refused, nothing was changed: a fresh plan differs from it"
            );
            for d in &diffs {
                eprintln!("  {}: {}", d.node, d.what);
            }
            eprintln!("  hint: read the fresh plan below; save it again with `trustmesh plan --out FILE` to approve it");
            show(ui, &fresh);
            g.close().await;
            return 1;
        }
    }
    if !ui.quiet {
        show(ui, &fresh);
    }
    if fresh.is_empty() {
        g.close().await;
        return finish(&fresh, false);
    }
    if saved.is_none() && !yes && !confirm() {
        eprintln!("Apply cancelled.");
        g.close().await;
        return 1;
    }
    let report = apply::apply(
        inv,
        &fresh,
        &g.hosts,
        &ApplyOptions {
            concurrency: opts.concurrency,
            timeout: opts.timeout,
        },
    )
    .await;
    if !ui.quiet || report.failed() {
        println!();
        let _ = render::render_report(&report, ui.color_out, &mut std::io::stdout().lock());
    }
    for node in report.conflicts() {
        eprintln!("{node}: a file changed since it was read; it was left as it is and the node is re-planned below");
    }
    // Read everything again over the same connections: converged only if
    // there is nothing left to do.
    let mut after = g;
    if let Err(e) = gather::reread(inv, &mut after, opts.timeout).await {
        ui.report(&e);
        after.close().await;
        return 1;
    }
    let again = plan::plan(inv, &graph, &after.live, &opts.scope);
    after.close().await;
    println!();
    if again.is_empty() && !unreached(&again) {
        if !ui.quiet {
            println!("Converged: the state read back matches the inventory.");
        }
    } else {
        println!("Not converged yet; what is left:");
        show(ui, &again);
    }
    finish(&again, report.failed())
}

fn unreached(plan: &Plan) -> bool {
    plan.nodes.iter().any(|n| {
        matches!(
            n.status,
            NodeStatus::Unreachable { .. } | NodeStatus::Blocked { .. }
        )
    })
}

fn finish(plan: &Plan, failed: bool) -> i32 {
    if failed || unreached(plan) || !plan.is_empty() {
        1
    } else {
        0
    }
}
