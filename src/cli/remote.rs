//! Shared by the commands that talk to hosts: the runtime, the progress
//! bar, and reading live state into a plan.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::Duration;

use super::{CliError, RemoteArgs, Ui};
use trustmesh::gather::{self, GatherOptions, Gathered};
use trustmesh::output::escape::{Esc, EscMessage};
use trustmesh::plan::saved::{AcceptedHostKey, PlanFlags};
use trustmesh::plan::{self, Plan, PlanScope};
use trustmesh::transport::password;
use trustmesh::{Inventory, TrustGraph};

/// Resolve `--limit` names; unknown names are an error.
pub fn scope(inv: &Inventory, args: &RemoteArgs) -> Result<PlanScope, CliError> {
    let nodes = |flag: &str, names: &[String]| -> Result<HashSet<usize>, CliError> {
        names
            .iter()
            .map(|name| {
                inv.find(name.trim()).ok_or_else(|| {
                    CliError::message(format!(
                        "{flag} names `{name}`, which is not a node of the inventory"
                    ))
                    .hint("`trustmesh graph` lists the nodes")
                })
            })
            .collect()
    };
    let scope = PlanScope {
        limit: if args.limit.is_empty() {
            None
        } else {
            Some(nodes("--limit", &args.limit)?)
        },
        remove_stale_host_keys: nodes("--remove-stale-host-keys", &args.remove_stale_host_keys)?,
        rotate: nodes("--rotate-keys", &args.rotate_keys)?,
        adopt: args.adopt,
        now: Some(trustmesh::model::inventory::expiry::system_now()),
    };
    // A node outside --limit is not read, so its key cannot be rotated.
    let mut outside: Vec<&str> = scope
        .rotate
        .iter()
        .filter(|id| !scope.contains(**id))
        .map(|id| inv.nodes[*id].name.as_str())
        .collect();
    if !outside.is_empty() {
        outside.sort_unstable();
        return Err(CliError::message(format!(
            "--rotate-keys names {}, outside --limit: nothing was read or changed",
            outside.join(", ")
        ))
        .hint("a rotation needs the node and every node its key opens in scope: drop --limit, or add them to it"));
    }
    Ok(scope)
}

pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}

/// A progress bar on a terminal, nothing in a pipe.
pub fn progress(ui: Ui, len: usize, what: &str) -> indicatif::ProgressBar {
    if ui.quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Gathering options from the shared flags; with `--ask-pass`, the
/// password is taken (from the environment, or asked once) here, before
/// any host is reached.
pub fn gather_options(
    inv: &Inventory,
    args: &RemoteArgs,
    scope: &PlanScope,
) -> Result<GatherOptions, CliError> {
    let password = if args.ask_pass {
        Some(
            password::ask_password(
                "Password for the nodes that do not accept the manager's key yet: ",
            )
            .map_err(CliError::message)?,
        )
    } else {
        None
    };
    let mut accepted_changes = Vec::new();
    for a in &args.accept_changed_host_key {
        let (name, fp) = a.split_once('=').unwrap_or((a, ""));
        let Some(id) = inv.find(name.trim()) else {
            return Err(CliError::message(format!(
                "--accept-changed-host-key names `{name}`, which is not a node of the inventory"
            )));
        };
        if !fp.starts_with("SHA256:") || fp.len() < 20 {
            return Err(CliError::message(format!(
                "--accept-changed-host-key {a}: give the new key's fingerprint as NODE=SHA256:..."
            ))
            .hint("on the node (or from its console): `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`"));
        }
        accepted_changes.push((id, fp.to_string()));
    }
    // On a terminal, a host key accepted on first use is confirmed before a
    // password goes to it; without one, the flags given are the consent.
    let confirm_new_host_key =
        (args.ask_pass && args.accept_new_host_keys && std::io::stdin().is_terminal()).then(|| {
            gather::ConfirmHostKey(std::sync::Arc::new(|node: &str, fps: &str| {
                let (node, fps) = (Esc(node), EscMessage(fps));
                super::output::write_err(&format!(
                    "The host key of {node} was accepted on first use in this run: {fps}\n\
                 Send the password to {node}? Only 'yes' is accepted: "
                ));
                let mut answer = String::new();
                std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
            }))
        });
    Ok(GatherOptions {
        confirm_new_host_key,
        accepted_changes,
        accept_new_host_keys: args.accept_new_host_keys,
        timeout: Duration::from_secs(args.timeout),
        concurrency: args.concurrency as usize,
        scope: scope.clone(),
        password,
    })
}

/// Read every node with a progress bar; print the run's notes (accepted
/// host keys) unless quiet.
pub async fn read(
    ui: Ui,
    inv: &Inventory,
    graph: &TrustGraph,
    opts: &GatherOptions,
) -> Result<Gathered, CliError> {
    // No bar over a question to the operator.
    let bar = if opts.confirm_new_host_key.is_some() {
        indicatif::ProgressBar::hidden()
    } else {
        progress(ui, inv.nodes.len(), "reading")
    };
    let on_done = |name: &str| {
        bar.inc(1);
        bar.set_message(format!("read {}", Esc(name)));
    };
    let r = gather::gather(inv, graph, opts, &on_done).await;
    bar.finish_and_clear();
    let g = r?;
    if !ui.quiet {
        for n in &g.notes {
            super::output::write_err(&format!("{}\n", EscMessage(n)));
        }
    }
    Ok(g)
}

/// The scope of `--limit`, the gathering options and a runtime.
pub fn prepare(
    inv: &Inventory,
    args: &RemoteArgs,
) -> Result<(GatherOptions, tokio::runtime::Runtime), CliError> {
    let opts = gather_options(inv, args, &scope(inv, args)?)?;
    let rt = runtime().map_err(|e| CliError::message(format!("cannot start: {e}")))?;
    Ok((opts, rt))
}

/// Read every node and plan; with the host keys accepted on first use in
/// this run (known_hosts lines), which a saved plan pins.
pub fn read_and_plan(
    ui: Ui,
    inv: &Inventory,
    args: &RemoteArgs,
) -> Result<(Plan, Vec<String>), CliError> {
    let (opts, rt) = prepare(inv, args)?;
    let graph = TrustGraph::build(inv);
    rt.block_on(async {
        let mut gathered = read(ui, inv, &graph, &opts).await?;
        let plan = plan::plan(inv, &graph, &gathered.live, &opts.scope);
        let accepted = std::mem::take(&mut gathered.accepted);
        gathered.close().await;
        Ok((plan, accepted))
    })
}

/// The flags of a run that shape its plan, as a saved plan records them.
pub fn plan_flags(args: &RemoteArgs) -> PlanFlags {
    PlanFlags {
        limit: args.limit.clone(),
        rotate_keys: args.rotate_keys.clone(),
        accept_new_host_keys: args.accept_new_host_keys,
        accept_changed_host_key: args.accept_changed_host_key.clone(),
        remove_stale_host_keys: args.remove_stale_host_keys.clone(),
        ask_pass: args.ask_pass,
        adopt: args.adopt,
    }
    .normalized()
}

/// `args` with a saved plan's flags in place of the ones that shape a
/// plan (how many hosts at once and the timeout stay as given).
pub fn with_plan_flags(args: &RemoteArgs, flags: &PlanFlags) -> RemoteArgs {
    RemoteArgs {
        limit: flags.limit.clone(),
        rotate_keys: flags.rotate_keys.clone(),
        accept_new_host_keys: flags.accept_new_host_keys,
        accept_changed_host_key: flags.accept_changed_host_key.clone(),
        remove_stale_host_keys: flags.remove_stale_host_keys.clone(),
        ask_pass: flags.ask_pass,
        adopt: flags.adopt,
        ..args.clone()
    }
}

/// Gathering for `apply --plan`: the host keys the saved plan accepted on
/// first use are pinned, as `--accept-changed-host-key` pins (a host that
/// presents another key is refused), and no host key is accepted anew:
/// every key the apply trusts was shown when the plan was made.
pub fn pin_saved_host_keys(
    inv: &Inventory,
    opts: &mut GatherOptions,
    saved: &[AcceptedHostKey],
) -> Result<(), CliError> {
    opts.accept_new_host_keys = false;
    opts.confirm_new_host_key = None;
    for key in saved {
        let (Some(id), Some(fp)) = (inv.find(&key.node), key.fingerprints.first()) else {
            return Err(CliError::message(format!(
                "the saved plan pins a host key for `{}`, which is not a node of the inventory",
                key.node
            ))
            .hint("plan again with `trustmesh plan --out FILE`"));
        };
        if !opts.accepted_changes.iter().any(|(n, _)| *n == id) {
            opts.accepted_changes.push((id, fp.clone()));
        }
    }
    Ok(())
}
