//! The operations from what was asked: an inventory file, the flags that
//! shape a plan, how many hosts at once and the timeout, and for `apply` a
//! saved plan. These read and parse the inventory, turn the flags into
//! read options ([`read_options`]), take the apply lock, check a saved
//! plan's host-free bindings and pin its host keys, build the trust graph
//! once, then run [`super::plan`], [`super::apply`] or [`super::verify`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::apply::lock::{self, ApplyLock};
use crate::gather::GatherOptions;
use crate::history::{self, InventorySource};
use crate::model::graph::TrustGraph;
use crate::model::inventory::{expiry, Inventory};
use crate::plan::saved::{self, AcceptedHostKey, Current, InventoryBytes, PlanFlags, SavedPlan};
use crate::plan::PlanScope;
use crate::verify::VerifyReport;

use super::{ApplyOutcome, Operator, OpsError, PlanOutcome, ReadOptions};

/// What every operation is asked with.
#[derive(Debug, Clone)]
pub struct Request {
    /// The inventory file.
    pub inventory: PathBuf,
    /// The flags that shape a plan, as given (normalized where they are
    /// recorded: a saved plan, the history).
    pub flags: PlanFlags,
    /// How long to wait for a node.
    pub timeout: Duration,
    /// How many nodes at once.
    pub concurrency: usize,
}

/// `apply`, from a request or from a saved plan.
#[derive(Debug, Clone)]
pub struct ApplyRequest {
    /// The request; with a saved plan, its inventory is the plan's and its
    /// flags are held to the plan's (those left out are taken from it).
    pub request: Request,
    /// A plan saved by `plan`: it is the approval.
    pub saved_plan: Option<SavedPlanRequest>,
}

/// A saved plan to apply, and how old it may be.
#[derive(Debug, Clone)]
pub struct SavedPlanRequest {
    pub path: PathBuf,
    /// Refused when older ([`saved::DEFAULT_MAX_AGE`] when not given).
    pub max_age: Option<Duration>,
}

/// Which option named a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOption {
    Limit,
    RotateKeys,
    RemoveStaleHostKeys,
    AcceptChangedHostKey,
}

/// Options that cannot be run with this inventory; nothing was read.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error("{option:?} names `{name}`, which is not a node of the inventory")]
    UnknownNode { option: NodeOption, name: String },
    #[error("the rotation of {} is outside the limit", nodes.join(", "))]
    RotateOutsideLimit { nodes: Vec<String> },
    #[error("{given}: the new key's fingerprint is not NODE=SHA256:...")]
    BadFingerprint { given: String },
    #[error("the saved plan pins a host key for `{node}`, which is not a node of the inventory")]
    PinUnknownNode { node: String },
    #[error("`{given}` names the user CA, and this inventory has no `certificates:`")]
    NoUserCa { given: String },
}

/// The names `--rotate-keys` gives the user CA: `@ca` always, and `ca`
/// when no node is named `ca` (a node's name wins).
fn names_user_ca(inv: &Inventory, name: &str) -> bool {
    let name = name.trim();
    name == "@ca" || (name == "ca" && inv.find("ca").is_none())
}

/// Resolve the scope's node names; an unknown name is an error, and so is
/// a rotation outside the limit (a node outside it is not read).
pub fn scope(inv: &Inventory, flags: &PlanFlags) -> Result<PlanScope, OptionsError> {
    let nodes = |option: NodeOption, names: &[String]| -> Result<HashSet<usize>, OptionsError> {
        names
            .iter()
            .map(|name| {
                inv.find(name.trim())
                    .ok_or_else(|| OptionsError::UnknownNode {
                        option,
                        name: name.clone(),
                    })
            })
            .collect()
    };
    let (ca, rotated): (Vec<String>, Vec<String>) = flags
        .rotate_keys
        .iter()
        .cloned()
        .partition(|n| names_user_ca(inv, n));
    if let Some(given) = ca.first().filter(|_| inv.certificates.is_none()) {
        return Err(OptionsError::NoUserCa {
            given: given.clone(),
        });
    }
    let rotate_ca = !ca.is_empty();
    let scope = PlanScope {
        limit: if flags.limit.is_empty() {
            None
        } else {
            Some(nodes(NodeOption::Limit, &flags.limit)?)
        },
        remove_stale_host_keys: nodes(
            NodeOption::RemoveStaleHostKeys,
            &flags.remove_stale_host_keys,
        )?,
        rotate: nodes(NodeOption::RotateKeys, &rotated)?,
        rotate_ca,
        adopt: flags.adopt,
        now: Some(expiry::system_now()),
    };
    let mut outside: Vec<String> = scope
        .rotate
        .iter()
        .filter(|id| !scope.contains(**id))
        .map(|id| inv.nodes[*id].name.clone())
        .collect();
    if !outside.is_empty() {
        outside.sort_unstable();
        return Err(OptionsError::RotateOutsideLimit { nodes: outside });
    }
    Ok(scope)
}

/// What an operation reads the cluster with, from the request. The
/// password of `--ask-pass` is taken by the operation, through the
/// operator, before any host is reached.
pub fn read_options(inv: &Inventory, req: &Request) -> Result<ReadOptions, OptionsError> {
    let scope = scope(inv, &req.flags)?;
    let mut accepted_changes = Vec::new();
    for a in &req.flags.accept_changed_host_key {
        let (name, fp) = a.split_once('=').unwrap_or((a, ""));
        let Some(id) = inv.find(name.trim()) else {
            return Err(OptionsError::UnknownNode {
                option: NodeOption::AcceptChangedHostKey,
                name: name.to_string(),
            });
        };
        if !fp.starts_with("SHA256:") || fp.len() < 20 {
            return Err(OptionsError::BadFingerprint { given: a.clone() });
        }
        accepted_changes.push((id, fp.to_string()));
    }
    Ok(ReadOptions {
        gather: GatherOptions {
            confirm_new_host_key: None,
            accepted_changes,
            accept_new_host_keys: req.flags.accept_new_host_keys,
            timeout: req.timeout,
            concurrency: req.concurrency,
            scope,
            password: None,
        },
        ask_pass: req.flags.ask_pass,
    })
}

/// Gathering for a saved plan: the host keys it accepted on first use are
/// pinned, as `--accept-changed-host-key` pins (a host that presents
/// another key is refused), and no host key is accepted anew: every key
/// the apply trusts was shown when the plan was made.
pub fn pin_saved_host_keys(
    inv: &Inventory,
    opts: &mut GatherOptions,
    saved: &[AcceptedHostKey],
) -> Result<(), OptionsError> {
    opts.accept_new_host_keys = false;
    opts.confirm_new_host_key = None;
    for key in saved {
        let (Some(id), Some(fp)) = (inv.find(&key.node), key.fingerprints.first()) else {
            return Err(OptionsError::PinUnknownNode {
                node: key.node.clone(),
            });
        };
        if !opts.accepted_changes.iter().any(|(n, _)| *n == id) {
            opts.accepted_changes.push((id, fp.clone()));
        }
    }
    Ok(())
}

/// `plan` from a request: with `save`, the saved plan made of it too.
#[derive(Debug, Clone)]
pub struct PlanRun {
    pub outcome: PlanOutcome,
    /// The plan to save (for `apply --plan`), when asked for.
    pub saved: Option<SavedPlan>,
}

/// Read the inventory and every node, and plan; with `save`, make the
/// saved plan binding the inventory's bytes, the flags, the host keys
/// accepted on first use and the time the state was read from.
pub async fn run_plan(req: &Request, save: bool, op: &dyn Operator) -> Result<PlanRun, OpsError> {
    // What a saved plan binds: the bytes parsed are the bytes hashed, and
    // the state is no older than this time.
    let created = SystemTime::now();
    let mut file = InventoryBytes::read(&req.inventory)?;
    let inv = file.parse()?;
    let opts = read_options(&inv, req)?;
    let graph = TrustGraph::build(&inv);
    let outcome = super::plan(&inv, &graph, opts, op).await?;
    let saved = save.then(|| {
        if let Ok(absolute) = std::fs::canonicalize(&file.path) {
            file.path = absolute;
        }
        SavedPlan::new(
            &outcome.plan,
            created,
            &file,
            req.flags.clone().normalized(),
            saved::accepted_host_keys(&inv, &outcome.accepted),
        )
    });
    Ok(PlanRun { outcome, saved })
}

/// Read the inventory and every node, and try every edge.
pub async fn run_verify(req: &Request, op: &dyn Operator) -> Result<VerifyReport, OpsError> {
    let inv = Inventory::load(&req.inventory)?;
    let opts = read_options(&inv, req)?;
    let graph = TrustGraph::build(&inv);
    super::verify(&inv, &graph, opts, op).await
}

/// `apply` from a request: the inventory it ran on, its scope, what the
/// history records of it, and how it ended.
#[derive(Debug)]
pub struct ApplyRun {
    pub inventory: Inventory,
    pub scope: PlanScope,
    /// The history's context of this run (its time is the record's to set).
    pub record: history::Context,
    pub result: Result<ApplyOutcome, OpsError>,
    /// The inventory's apply lock, held until this is dropped: the caller
    /// records the run in the history under it.
    pub lock: ApplyLock,
}

/// Everything a run binds that needs no host, checked before any host is
/// reached or password asked: a saved plan's age, its inventory's content
/// and the flags; then the apply lock of the inventory, the read options
/// (a saved plan's host keys pinned), and the apply itself. An `Err` is a
/// refusal before anything was read; [`ApplyRun::result`] is the run's.
pub async fn run_apply(req: &ApplyRequest, op: &dyn Operator) -> Result<ApplyRun, OpsError> {
    let Some(asked) = &req.saved_plan else {
        let file = InventoryBytes::read(&req.request.inventory)?;
        let inv = file.parse()?;
        let record = context(&inv, &file, &req.request.flags, None);
        let path = &req.request.inventory;
        let lock = ApplyLock::acquire(&lock::lock_path(path), path)?;
        let opts = read_options(&inv, &req.request)?;
        return Ok(run(inv, record, opts, None, op, lock).await);
    };
    let plan = SavedPlan::load(&asked.path)?;
    let inv_path = PathBuf::from(&plan.inventory);
    let file = InventoryBytes::read(&inv_path)?;
    let flags = plan.check(
        &asked.path,
        &Current {
            inventory_sha256: file.sha256.clone(),
            flags: req.request.flags.clone().normalized(),
            now: SystemTime::now(),
            max_age: asked.max_age.unwrap_or(saved::DEFAULT_MAX_AGE),
        },
    )?;
    let inv = file.parse()?;
    // The saved plan's flags in place of the ones that shape a plan (how
    // many hosts at once and the timeout stay as given).
    let request = Request {
        inventory: inv_path.clone(),
        flags,
        ..req.request.clone()
    };
    let lock = ApplyLock::acquire(&lock::lock_path(&inv_path), &inv_path)?;
    let record = context(&inv, &file, &request.flags, Some(&asked.path));
    let mut opts = read_options(&inv, &request)?;
    pin_saved_host_keys(&inv, &mut opts.gather, &plan.host_keys)?;
    Ok(run(inv, record, opts, Some(&plan), op, lock).await)
}

/// Build the graph once and apply.
async fn run(
    inventory: Inventory,
    record: history::Context,
    opts: ReadOptions,
    saved: Option<&SavedPlan>,
    op: &dyn Operator,
    lock: ApplyLock,
) -> ApplyRun {
    let graph = TrustGraph::build(&inventory);
    let scope = opts.gather.scope.clone();
    let result = super::apply(&inventory, &graph, opts, saved, op).await;
    ApplyRun {
        inventory,
        scope,
        record,
        result,
        lock,
    }
}

/// What `apply` knows of its run before it starts, for the history.
fn context(
    inv: &Inventory,
    file: &InventoryBytes,
    flags: &PlanFlags,
    saved_plan: Option<&Path>,
) -> history::Context {
    let path = std::fs::canonicalize(&file.path).unwrap_or_else(|_| file.path.clone());
    let (git_commit, git_dirty) = history::git::state(&path);
    history::Context {
        time: SystemTime::now(),
        user: history::local_user(),
        cluster: inv.cluster.clone(),
        inventory: InventorySource {
            path: path.display().to_string(),
            sha256: file.sha256.clone(),
            git_commit,
            git_dirty,
        },
        flags: flags.clone().normalized(),
        saved_plan: saved_plan.map(|p| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        }),
    }
}

#[cfg(test)]
mod tests {
    //! What an operation refuses before any host is reached, in the
    //! library: the nodes are at TEST-NET addresses nothing answers and the
    //! manager is an account that does not run the tests, so a run that
    //! went on would fail otherwise, not with these refusals.

    use super::*;
    use crate::ops::NonInteractive;
    use crate::plan::{Plan, PLAN_FORMAT_VERSION};

    const INVENTORY: &str = "version: 1\nmanager: { name: manager, address: 192.0.2.1, user: trustmesh-test-nobody }\nworkers:\n  - { name: node1, address: 192.0.2.11 }\n  - { name: node2, address: 192.0.2.12 }\nmesh:\n  - [node1, node2]\n";

    fn request(dir: &Path, flags: PlanFlags) -> Request {
        let inventory = dir.join("inventory.yaml");
        std::fs::write(&inventory, INVENTORY).unwrap();
        Request {
            inventory,
            flags,
            timeout: Duration::from_secs(1),
            concurrency: 1,
        }
    }

    fn apply(req: ApplyRequest) -> Result<ApplyRun, OpsError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(run_apply(&req, &NonInteractive { consent: true }))
    }

    #[test]
    fn an_apply_is_refused_while_another_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let request = request(dir.path(), PlanFlags::default());
        let path = &request.inventory;
        let _held = ApplyLock::acquire(&lock::lock_path(path), path).unwrap();
        let r = apply(ApplyRequest {
            request,
            saved_plan: None,
        });
        assert!(
            matches!(r, Err(OpsError::Lock(lock::LockError::Held { .. }))),
            "{:?}",
            r.map(|run| run.result)
        );
    }

    #[test]
    fn flags_naming_no_node_are_refused_before_any_host() {
        let dir = tempfile::tempdir().unwrap();
        let flags = PlanFlags {
            limit: vec!["node1".into(), "nodeX".into()],
            ..PlanFlags::default()
        };
        let r = apply(ApplyRequest {
            request: request(dir.path(), flags),
            saved_plan: None,
        });
        let Err(OpsError::Options(OptionsError::UnknownNode { option, name })) = r else {
            panic!("{:?}", r.map(|run| run.result));
        };
        assert_eq!((option, name.as_str()), (NodeOption::Limit, "nodeX"));
        let inv = Inventory::from_str_named("i.yaml", INVENTORY).unwrap();
        let outside = PlanFlags {
            limit: vec!["node1".into()],
            rotate_keys: vec!["node2".into()],
            ..PlanFlags::default()
        };
        assert!(matches!(
            scope(&inv, &outside),
            Err(OptionsError::RotateOutsideLimit { nodes }) if nodes == ["node2"]
        ));
    }

    /// A plan saved from `dir`'s inventory, pinning a host key of `node`.
    fn saved_plan(req: &Request, node: &str) -> SavedPlanRequest {
        let file = InventoryBytes::read(&req.inventory).unwrap();
        let plan = Plan {
            format_version: PLAN_FORMAT_VERSION,
            nodes: Vec::new(),
            notes: Vec::new(),
            header: Vec::new(),
        };
        let path = req.inventory.with_file_name("saved.plan");
        let pin = AcceptedHostKey {
            node: node.into(),
            fingerprints: vec!["SHA256:w8oaTJZa3TIpEoZCfjULuX3LcbFBb36xYPJ5HSXZGms".into()],
        };
        SavedPlan::new(
            &plan,
            SystemTime::now(),
            &file,
            PlanFlags::default(),
            vec![pin],
        )
        .save(&path)
        .unwrap();
        SavedPlanRequest {
            path,
            max_age: None,
        }
    }

    #[test]
    fn a_saved_plan_is_checked_and_its_pins_resolved_before_any_host() {
        let dir = tempfile::tempdir().unwrap();
        let request = request(dir.path(), PlanFlags::default());
        // The inventory changed since the plan was saved.
        let saved = saved_plan(&request, "node1");
        std::fs::write(&request.inventory, format!("{INVENTORY}# edited\n")).unwrap();
        let r = apply(ApplyRequest {
            request: request.clone(),
            saved_plan: Some(saved),
        });
        assert!(
            matches!(r, Err(OpsError::PlanFile(_))),
            "{:?}",
            r.map(|run| run.result)
        );
        // A pin for a node the inventory does not have.
        std::fs::write(&request.inventory, INVENTORY).unwrap();
        let saved = saved_plan(&request, "gone");
        let r = apply(ApplyRequest {
            request,
            saved_plan: Some(saved),
        });
        assert!(
            matches!(r, Err(OpsError::Options(OptionsError::PinUnknownNode { ref node })) if node == "gone"),
            "{:?}",
            r.map(|run| run.result)
        );
    }
}
