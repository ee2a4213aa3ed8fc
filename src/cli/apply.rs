//! `trustmesh apply`: change only what is needed, then re-read and confirm.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use super::output::{self, write_out};
use super::{history, remote, CliError, ExitStatus, InventoryArg, RemoteArgs, Ui};
use trustmesh::apply::{self, ApplyOptions, ApplyReport};
use trustmesh::gather::{self, GatherOptions};
use trustmesh::model::inventory::Inventory;
use trustmesh::output::{self as render, PlanTextOptions};
use trustmesh::plan::saved::{self as planfile, Current, InventoryBytes, SavedPlan};
use trustmesh::plan::{self, Plan};
use trustmesh::{apply::lock, TrustGraph};

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

    /// Apply a plan saved with `plan --out`: it is the approval. It is
    /// refused when its inventory changed since, when a flag given here
    /// differs from its own (flags left out are taken from it), or when it
    /// is older than --max-plan-age; the host keys it accepted on first use
    /// are pinned; a fresh plan is made, and anything in it that differs
    /// from the saved one refuses the whole plan.
    #[arg(long, value_name = "PLANFILE", conflicts_with = "inventory")]
    plan: Option<PathBuf>,

    /// With --plan: refuse a saved plan older than this (`90m`, `2h`,
    /// `3days`) [default: 24h]
    #[arg(long, value_name = "AGE", requires = "plan", conflicts_with = "inventory", value_parser = humantime::parse_duration)]
    max_plan_age: Option<Duration>,

    /// Print one JSON document at the end (with a `format_version`): the
    /// plan applied, each action's result, whether the state read back
    /// converged and what is left. Nothing else goes to standard output;
    /// it never asks, so it needs --yes or --plan.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_apply(ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    // With --json, standard output is the document: no plan text, no
    // report, no question asked into it.
    let ui = Ui {
        json: args.json,
        ..ui
    };
    if args.json && args.plan.is_none() && !args.yes {
        return Err(CliError::message(
            "apply refused: --json does not ask (standard output is the JSON document) and there is \
             no --yes; nothing was changed",
        )
        .hint(
            "pass --yes, or approve a saved plan: `trustmesh plan --out FILE`, then \
             `trustmesh apply --json --plan FILE`",
        ));
    }
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
    let Some(plan_path) = &args.plan else {
        let file = InventoryBytes::read(&args.inventory.path())?;
        let inv = file.parse()?;
        let record = history::context(&inv, &file, &args.remote, None);
        let _lock = lock::ApplyLock::acquire(
            &lock::lock_path(&args.inventory.path()),
            &args.inventory.path(),
        )?;
        let (opts, rt) = remote::prepare(&inv, &args.remote)?;
        return rt.block_on(run(ui, args.yes, &inv, opts, None, &record));
    };
    // A saved plan: everything it binds that needs no host is checked
    // first (no host reached, no password asked): its age, the inventory's
    // content, the flags.
    let saved = SavedPlan::load(plan_path)?;
    let inv_path = PathBuf::from(&saved.inventory);
    let file = InventoryBytes::read(&inv_path)?;
    let flags = saved.check(
        plan_path,
        &Current {
            inventory_sha256: file.sha256.clone(),
            flags: remote::plan_flags(&args.remote),
            now: std::time::SystemTime::now(),
            max_age: args.max_plan_age.unwrap_or(planfile::DEFAULT_MAX_AGE),
        },
    )?;
    let inv = file.parse()?;
    let remote = remote::with_plan_flags(&args.remote, &flags);
    let _lock = lock::ApplyLock::acquire(&lock::lock_path(&inv_path), &inv_path)?;
    let record = history::context(&inv, &file, &remote, Some(plan_path));
    let (mut opts, rt) = remote::prepare(&inv, &remote)?;
    remote::pin_saved_host_keys(&inv, &mut opts, &saved.host_keys)?;
    rt.block_on(run(ui, args.yes, &inv, opts, Some(saved), &record))
}

/// Print through the one writer; a failure to write (not a closed pipe)
/// is reported and apply goes on to its end, then exits 1. With `--json`,
/// apply's text is not printed: the document is, at the end ([`json`]).
fn print(ui: Ui, what: &str, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) {
    if ui.json {
        return;
    }
    if let Err(e) = write_out(what, write) {
        ui.report_error(&e);
    }
}

/// With `--json`, the one document: the plan applied, what the report
/// says of each action, and the plan made from the state read back.
fn json(ui: Ui, applied: &Plan, report: &ApplyReport, after: &Plan, converged: bool) {
    if !ui.json {
        return;
    }
    if let Err(e) = write_out("the result", |out| {
        render::render_apply_json(applied, report, after, converged, out)
    }) {
        ui.report_error(&e);
    }
}

/// One line of apply's own on standard output.
fn line(ui: Ui, text: &str) {
    print(ui, "the result", |out| writeln!(out, "{text}"));
}

fn show(ui: Ui, plan: &Plan) {
    print(ui, "the plan", |out| {
        render::render_text(
            plan,
            PlanTextOptions {
                color: ui.color_out,
                full_keys: ui.verbose > 0,
                verbose: ui.verbose > 0,
            },
            out,
        )
    });
}

/// Ask on the terminal (the prompt on standard error, after the plan on
/// standard output). A plan that could not be shown in full (standard
/// output closed) is not consented to.
fn confirm() -> bool {
    if output::stdout_closed() {
        output::write_err(
            "The plan could not be shown in full (standard output is closed): nothing is asked, \
             nothing is changed.\n",
        );
        return false;
    }
    output::write_err("Apply these changes? Only 'yes' is accepted: ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}

async fn run(
    ui: Ui,
    yes: bool,
    inv: &Inventory,
    opts: GatherOptions,
    saved: Option<SavedPlan>,
    record: &trustmesh::history::Context,
) -> Result<ExitStatus, CliError> {
    let graph = TrustGraph::build(inv);
    let g = remote::read(ui, inv, &graph, &opts).await?;
    let fresh = plan::plan(inv, &graph, &g.live, &opts.scope);
    // A saved plan is an approval of exactly these changes, not a program.
    if let Some(saved) = &saved {
        let diffs = saved.differences(&fresh.nodes);
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
        let complete = !fresh.incomplete();
        json(ui, &fresh, &ApplyReport::default(), &fresh, complete);
        return Ok(ExitStatus::from_ok(complete));
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
            // Each node's known_hosts of this run: what was trusted for it
            // (its pin alone, when pinned) and what its sshd proved.
            known_hosts: (0..inv.nodes.len())
                .map(|id| {
                    let alias = trustmesh::transport::sshconfig::alias(inv, id);
                    trustmesh::transport::sshconfig::proof_path(&g.run.proof_dir(), &alias)
                })
                .filter(|p| p.exists())
                .collect(),
            pins: Vec::new(),
        },
    )
    .await;
    if !ui.quiet || report.failed() {
        print(ui, "the report", |out| {
            writeln!(out)?;
            render::render_report(&report, ui.color_out, out)
        });
    }
    for node in report.conflicts() {
        output::write_err(&format!("{}: a file changed since it was read; it was left as it is and the node is re-planned below\n", render::escape::Esc(node)));
    }
    // Read everything again over the same connections: converged only if
    // there is nothing left to do.
    let mut after = g;
    if let Err(e) = gather::reread(inv, &mut after, opts.timeout).await {
        after.close().await;
        // Changes were made: recorded, not converged (not read back).
        history::record_apply(ui, record, &fresh, &report, false);
        return Err(e.into());
    }
    // A rotation is asked for once: the state read back is judged without
    // it.
    let mut settled = opts.scope.clone();
    settled.rotate.clear();
    let again = plan::plan(inv, &graph, &after.live, &settled);
    after.close().await;
    line(ui, "");
    let left = differing(inv, &graph, &fresh, &again);
    let refused: Vec<&str> = fresh.refused_rotations().map(|(n, _)| n).collect();
    if left.is_empty() {
        if report.failed() {
            line(
                ui,
                "The state read back matches the inventory, but not every action succeeded (see above).",
            );
        } else if !ui.quiet {
            line(ui, &converged_line(inv, &opts.scope));
        }
    } else {
        line(
            ui,
            &format!(
                "Not converged: {} {} from the inventory; what is left:",
                left.join(", "),
                if left.len() == 1 { "differs" } else { "differ" }
            ),
        );
        show(ui, &again);
    }
    if !refused.is_empty() {
        line(
            ui,
            &format!(
                "The rotation of {} was refused (see the plan above): that key is unchanged.",
                refused.join(", ")
            ),
        );
    }
    // The state read back matches the inventory: what `converged` says.
    json(ui, &fresh, &report, &again, left.is_empty());
    // The history: one record of this apply, once its end is known.
    history::record_apply(ui, record, &fresh, &report, left.is_empty());
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
