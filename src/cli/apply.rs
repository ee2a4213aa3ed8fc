//! `trustmesh apply`: change only what is needed, then re-read and confirm.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{remote, InventoryArg, RemoteArgs, Ui};
use trustmesh::apply::{self, ApplyOptions};
use trustmesh::gather::{self, Gathered};
use trustmesh::inventory::Inventory;
use trustmesh::plan::{self, NodeFiles, NodeStatus, Plan, PlanScope};
use trustmesh::render::{self, SavedPlan, TextOptions};
use trustmesh::transport::{FailureKind, Host};
use trustmesh::{bootstrap, lock, scripts, TrustGraph};

/// Change only what is needed, then read the state again and confirm it
/// converged. Asks for confirmation when standard input is a terminal.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    inventory: InventoryArg,

    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,

    /// Apply a plan saved with `plan --out`; refused for a node whose live
    /// state changed since.
    #[arg(long, value_name = "PLANFILE", conflicts_with = "inventory")]
    plan: Option<PathBuf>,

    #[command(flatten)]
    remote: RemoteArgs,
}

pub fn cmd_apply(ui: Ui, args: &Args) -> i32 {
    let saved = match &args.plan {
        Some(path) => match read_saved(path) {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("trustmesh apply: {e}");
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
    let scope = match remote::scope(&inv, &args.remote) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("trustmesh apply: {e}");
            return 1;
        }
    };
    let _lock = match lock::ApplyLock::acquire(&lock::lock_path(&inv_path), &inv_path) {
        Ok(l) => l,
        Err(e) => {
            ui.report(&e);
            return 1;
        }
    };
    let rt = match remote::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trustmesh apply: cannot start: {e}");
            return 1;
        }
    };
    rt.block_on(run(ui, args, &inv, scope, saved))
}

fn read_saved(path: &Path) -> Result<SavedPlan, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
    let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not a plan saved by `trustmesh plan --out`: {e}",
            path.display()
        )
    })?;
    if saved.format_version != plan::FORMAT_VERSION {
        return Err(format!(
            "{} has plan format {}, this trustmesh reads {}: plan again",
            path.display(),
            saved.format_version,
            plan::FORMAT_VERSION
        ));
    }
    Ok(saved)
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

/// The manager needs a key pair before it can reach anyone.
async fn manager_key(ui: Ui, inv: &Inventory, timeout: Duration) -> Result<(), String> {
    let files = NodeFiles::of(inv, Inventory::MANAGER);
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = gather::manager_file(&files.key, &home);
    if std::fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    let key_type = inv.manager().key_type.keygen_name();
    let display = plan::display_path(&files.key);
    let host = Host::Local;
    let mk = host
        .run(
            &scripts::command_line(scripts::MKDIR_SSH, &[]),
            b"",
            timeout,
        )
        .await
        .map_err(|e| e.to_string())?;
    if let scripts::Outcome::Failed(w) = scripts::outcome(&mk.stdout, &mk.stderr, mk.status.code())
    {
        return Err(w);
    }
    let line = apply::keygen_line(&display, key_type, &inv.manager().name);
    let out = host
        .run(&line, b"", timeout)
        .await
        .map_err(|e| e.to_string())?;
    match scripts::outcome(&out.stdout, &out.stderr, out.status.code()) {
        scripts::Outcome::PublicKey(_) => {
            if !ui.quiet {
                println!("+ key {display} ({key_type}) generated on the manager");
            }
            Ok(())
        }
        scripts::Outcome::Failed(w) => Err(w),
        other => Err(format!("{other:?}")),
    }
}

fn password() -> Result<String, String> {
    if let Ok(p) = std::env::var("TRUSTMESH_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        return Err(
            "--ask-pass needs a terminal to ask for the password, or $TRUSTMESH_PASSWORD".into(),
        );
    }
    rpassword::prompt_password("Password for the nodes that do not accept the manager's key yet: ")
        .map_err(|e| format!("cannot read the password: {e}"))
}

/// Install the manager's key, with a password, on every node that refused it.
async fn bootstrap_nodes(
    ui: Ui,
    inv: &Inventory,
    g: &Gathered,
    timeout: Duration,
) -> Result<usize, String> {
    let rejected: Vec<usize> = g
        .failures
        .iter()
        .enumerate()
        .filter(|(_, f)| **f == Some(FailureKind::AuthRejected))
        .map(|(i, _)| i)
        .collect();
    if rejected.is_empty() {
        return Ok(0);
    }
    let pubkey = std::fs::read_to_string(format!("{}.pub", g.manager_identity.display()))
        .map_err(|e| format!("cannot read the manager's public key: {e}"))?;
    let mut f = pubkey.split_whitespace();
    let (Some(t), Some(b)) = (f.next(), f.next()) else {
        return Err("the manager's public key file is not readable as a key".into());
    };
    let key_line = trustmesh::authorized_keys::managed_line(t, b, &inv.manager().name);
    let secret = password()?;
    let kh = g.manager_known_hosts.display().to_string();
    let config = g.run.config();
    let tasks = rejected.iter().map(|&id| {
        let node = &inv.nodes[id];
        let alias = trustmesh::transport::sshconfig::alias(inv, id);
        let target = format!(
            "{}:{}",
            node.address.as_deref().unwrap_or_default(),
            node.port
        );
        let (config, kh, key_line, secret) =
            (config.clone(), kh.clone(), key_line.clone(), secret.clone());
        async move {
            let r =
                bootstrap::install_key(&config, &alias, &target, &kh, &key_line, &secret, timeout)
                    .await;
            (id, r)
        }
    });
    let mut ok = 0;
    for (id, r) in futures::future::join_all(tasks).await {
        match r {
            Ok(()) => {
                ok += 1;
                if !ui.quiet {
                    eprintln!(
                        "installed the manager's key on {} with a password",
                        inv.nodes[id].name
                    );
                }
            }
            Err(e) => eprintln!("{}: password bootstrap failed: {e}", inv.nodes[id].name),
        }
    }
    Ok(ok)
}

fn confirm() -> bool {
    print!("Apply these changes? Only 'yes' is accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}

/// Keep only the saved plan's nodes whose state is what it was planned from;
/// the others are shown re-planned and left alone.
fn check_saved(ui: Ui, saved: Plan, fresh: &Plan) -> (Plan, usize) {
    let mut keep = Vec::new();
    let mut refused = 0;
    for node in saved.nodes {
        let now = fresh.nodes.iter().find(|n| n.node == node.node);
        match now {
            Some(now) if now.base == node.base && matches!(now.status, NodeStatus::Planned) => {
                keep.push(node)
            }
            Some(now) => {
                refused += 1;
                eprintln!(
                    "{}: its state changed since the plan was saved; the saved changes are not applied. Re-planned:",
                    node.node
                );
                show(
                    ui,
                    &Plan {
                        format_version: fresh.format_version,
                        nodes: vec![now.clone()],
                        notes: Vec::new(),
                    },
                );
            }
            None => {
                refused += 1;
                eprintln!("{}: not in the inventory any more; not applied", node.node);
            }
        }
    }
    (
        Plan {
            format_version: saved.format_version,
            nodes: keep,
            notes: saved.notes,
        },
        refused,
    )
}

async fn run(
    ui: Ui,
    args: &Args,
    inv: &Inventory,
    scope: PlanScope,
    saved: Option<SavedPlan>,
) -> i32 {
    let graph = TrustGraph::build(inv);
    let opts = remote::gather_options(&args.remote, &scope);
    if let Err(e) = manager_key(ui, inv, opts.timeout).await {
        eprintln!("trustmesh apply: manager, generate key: {e}");
        return 1;
    }
    let Some(mut g) = remote::read(ui, inv, &graph, &opts).await else {
        return 1;
    };
    if args.remote.ask_pass {
        match bootstrap_nodes(ui, inv, &g, opts.timeout).await {
            Ok(0) => {}
            Ok(_) => {
                g.close().await;
                let Some(again) = remote::read(ui, inv, &graph, &opts).await else {
                    return 1;
                };
                g = again;
            }
            Err(e) => {
                eprintln!("trustmesh apply: {e}");
                g.close().await;
                return 1;
            }
        }
    }
    let fresh = plan::plan(inv, &graph, &g.live, &scope);
    let (todo, refused) = match saved {
        Some(s) => check_saved(ui, s.into_plan(), &fresh),
        None => (fresh.clone(), 0),
    };
    if !ui.quiet {
        show(ui, &todo);
    }
    if todo.is_empty() {
        g.close().await;
        return finish(&fresh, refused, false);
    }
    if !args.yes && std::io::stdin().is_terminal() && !confirm() {
        eprintln!("Apply cancelled.");
        g.close().await;
        return 1;
    }
    let report = apply::apply(
        inv,
        &todo,
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
    let again = plan::plan(inv, &graph, &after.live, &scope);
    after.close().await;
    println!();
    let unreached = again
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.status,
                NodeStatus::Unreachable { .. } | NodeStatus::Blocked { .. }
            )
        })
        .count();
    if again.is_empty() && unreached == 0 {
        if !ui.quiet {
            println!("Converged: the state read back matches the inventory.");
        }
    } else {
        println!("Not converged yet; what is left:");
        show(ui, &again);
    }
    finish(&again, refused, report.failed())
}

fn finish(plan: &Plan, refused: usize, failed: bool) -> i32 {
    let broken = plan.nodes.iter().any(|n| {
        matches!(
            n.status,
            NodeStatus::Unreachable { .. } | NodeStatus::Blocked { .. }
        )
    });
    if failed || broken || refused > 0 || !plan.is_empty() {
        1
    } else {
        0
    }
}
