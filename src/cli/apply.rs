//! `trustmesh apply`: change only what is needed, then re-read and confirm.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use super::{remote, CliError, ExitStatus, InventoryArg, RemoteArgs, Ui};
use trustmesh::apply::{self, ApplyOptions};
use trustmesh::gather::{self, GatherOptions};
use trustmesh::inventory::Inventory;
use trustmesh::plan::{self, Plan};
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

pub fn cmd_apply(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    // No consent, no change: refused before anything is read or touched.
    if args.plan.is_none() && !args.yes && !std::io::stdin().is_terminal() {
        return Err(CliError::message(
            "apply refused: there is no terminal to ask on and no --yes; nothing was changed",
        )
        .hint(
            "run it on a terminal to read the plan and answer, pass --yes, or approve a saved plan: \
             `trustmesh plan --out FILE`, then `trustmesh apply --plan FILE`",
        ));
    }
    let saved = args.plan.as_deref().map(SavedPlan::load).transpose()?;
    let inv_path = match &saved {
        Some(s) => PathBuf::from(&s.inventory),
        None => args.inventory.path(),
    };
    let inv = Inventory::load(&inv_path)?;
    // A saved plan is checked against a fresh one of the same scope.
    let mut remote = args.remote.clone();
    if let Some(s) = &saved {
        let limit = s.limit.clone().unwrap_or_default();
        if !remote.limit.is_empty() && remote.limit != limit {
            return Err(CliError::message(format!(
                "--limit differs from the saved plan's ({})",
                if limit.is_empty() {
                    "none".to_string()
                } else {
                    limit.join(",")
                }
            ))
            .hint("a saved plan is applied with its own scope: leave --limit out"));
        }
        remote.limit = limit;
    }
    let _lock = lock::ApplyLock::acquire(&lock::lock_path(&inv_path), &inv_path)?;
    let (opts, rt) = remote::prepare(&inv, &remote)?;
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
) -> Result<ExitStatus, CliError> {
    let graph = TrustGraph::build(inv);
    let g = remote::read(ui, inv, &graph, &opts).await?;
    let fresh = plan::plan(inv, &graph, &g.live, &opts.scope);
    // A saved plan is an approval of exactly these changes, not a program.
    if let Some(saved) = &saved {
        let diffs = planfile::differences(&saved.nodes, &fresh.nodes);
        if !diffs.is_empty() {
            show(ui, &fresh);
            g.close().await;
            let list: String = diffs
                .iter()
                .map(|d| format!("\n  {}: {}", d.node, d.what))
                .collect();
            return Err(CliError::message(format!(
                "the saved plan is refused, nothing was changed: a fresh plan differs from it:{list}"
            ))
            .hint("read the fresh plan above; save it again with `trustmesh plan --out FILE` to approve it"));
        }
    }
    if !ui.quiet {
        show(ui, &fresh);
    }
    if fresh.is_empty() {
        g.close().await;
        return Ok(ExitStatus::from_ok(!fresh.incomplete()));
    }
    if saved.is_none() && !yes && !confirm() {
        g.close().await;
        return Err(CliError::message("Apply cancelled."));
    }
    let report = apply::apply(
        inv,
        &fresh,
        &g.hosts,
        &ApplyOptions {
            concurrency: opts.concurrency,
            timeout: opts.timeout,
            prove: trustmesh::verify::command_settings(inv, &g, opts.timeout.as_secs().max(1)),
            run_dir: Some(g.run.path().to_path_buf()),
            known_hosts: vec![g.manager_known_hosts.clone(), g.run.accepted_known_hosts()],
            pins: (0..inv.nodes.len())
                .filter(|&id| opts.pin(id, &inv.nodes[id]).is_some())
                .map(|id| {
                    let alias = trustmesh::transport::sshconfig::alias(inv, id);
                    (
                        id,
                        trustmesh::transport::sshconfig::pin_paths(&g.run.pin_dir(), &alias).0,
                    )
                })
                .collect(),
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
        after.close().await;
        return Err(e.into());
    }
    // A rotation is asked for once: the state read back is judged without
    // it.
    let mut settled = opts.scope.clone();
    settled.rotate.clear();
    let again = plan::plan(inv, &graph, &after.live, &settled);
    after.close().await;
    println!();
    let left = differing(inv, &graph, &fresh, &again);
    let refused: Vec<&str> = fresh.refused_rotations().map(|(n, _)| n).collect();
    if left.is_empty() {
        if report.failed() {
            println!(
                "The state read back matches the inventory, but not every action succeeded (see above)."
            );
        } else if !ui.quiet {
            println!("{}", converged_line(inv, &opts.scope));
        }
    } else {
        println!(
            "Not converged: {} {} from the inventory; what is left:",
            left.join(", "),
            if left.len() == 1 { "differs" } else { "differ" }
        );
        show(ui, &again);
    }
    if !refused.is_empty() {
        println!(
            "The rotation of {} was refused (see the plan above): that key is unchanged.",
            refused.join(", ")
        );
    }
    Ok(ExitStatus::from_ok(
        left.is_empty() && refused.is_empty() && !report.failed(),
    ))
}

/// The nodes whose state read back differs from the inventory, each with
/// why: every node of the plan read back (those the run touched among
/// them), and every node a rotated key opens, which must have been read
/// back too.
fn differing(inv: &Inventory, graph: &TrustGraph, fresh: &Plan, again: &Plan) -> Vec<String> {
    use trustmesh::plan::{Change, NodeStatus};
    let mut left: Vec<String> = Vec::new();
    let mut say = |node: &str, why: &str| {
        let entry = format!("{node} ({why})");
        if !left.contains(&entry) {
            left.push(entry);
        }
    };
    for n in &again.nodes {
        match n.status {
            NodeStatus::Planned if n.changes.is_empty() => {}
            NodeStatus::Planned => say(&n.node, "changes left"),
            NodeStatus::Unreachable { .. } => say(&n.node, "not read back"),
            NodeStatus::Skipped { .. } => say(&n.node, "skipped"),
            NodeStatus::Blocked { .. } => say(&n.node, "blocked"),
        }
    }
    let read_back = |name: &str| again.nodes.iter().any(|n| n.node == name);
    for n in &fresh.nodes {
        let rotated = n
            .changes
            .iter()
            .any(|c| matches!(c, Change::RotateKey { .. }));
        if !n.changes.is_empty() && !read_back(&n.node) {
            say(&n.node, "not read back");
        }
        let Some(id) = inv.find(&n.node).filter(|_| rotated) else {
            continue;
        };
        for e in graph.outgoing(id) {
            let t = &inv.nodes[e.target].name;
            if !read_back(t) {
                say(t, "opened by a rotated key, not read back");
            }
        }
    }
    left
}

/// The closing line of a run that converged, saying what it covers.
fn converged_line(inv: &Inventory, scope: &plan::PlanScope) -> String {
    match &scope.limit {
        None => "Converged: the state read back matches the inventory.".to_string(),
        Some(_) => {
            let names: Vec<&str> = inv
                .nodes
                .iter()
                .enumerate()
                .filter(|(id, _)| scope.contains(*id))
                .map(|(_, n)| n.name.as_str())
                .collect();
            format!(
                "Converged within --limit ({}): the state read back matches the inventory on these nodes; \
                 the others were not read.",
                names.join(", ")
            )
        }
    }
}
