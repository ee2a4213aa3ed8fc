//! Shared by the commands that talk to hosts: the flags turned into an
//! operation's options (the scope of `--limit`, the host keys accepted,
//! a saved plan's flags and pins) and the runtime.

use std::collections::HashSet;
use std::time::Duration;

use super::{CliError, RemoteArgs};
use trustmesh::gather::GatherOptions;
use trustmesh::ops::ReadOptions;
use trustmesh::plan::saved::{AcceptedHostKey, PlanFlags};
use trustmesh::plan::PlanScope;
use trustmesh::Inventory;

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

/// What an operation reads the cluster with, from the shared flags. The
/// password of `--ask-pass` is taken by the operation, through the
/// operator, before any host is reached.
pub fn read_options(
    inv: &Inventory,
    args: &RemoteArgs,
    scope: &PlanScope,
) -> Result<ReadOptions, CliError> {
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
    Ok(ReadOptions {
        gather: GatherOptions {
            confirm_new_host_key: None,
            accepted_changes,
            accept_new_host_keys: args.accept_new_host_keys,
            timeout: Duration::from_secs(args.timeout),
            concurrency: args.concurrency as usize,
            scope: scope.clone(),
            password: None,
        },
        ask_pass: args.ask_pass,
    })
}

/// The scope of `--limit`, the read options and a runtime.
pub fn prepare(
    inv: &Inventory,
    args: &RemoteArgs,
) -> Result<(ReadOptions, tokio::runtime::Runtime), CliError> {
    let opts = read_options(inv, args, &scope(inv, args)?)?;
    let rt = runtime().map_err(|e| CliError::message(format!("cannot start: {e}")))?;
    Ok((opts, rt))
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
