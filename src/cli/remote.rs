//! Shared by the commands that talk to hosts: the flags turned into an
//! operation's request ([`request`]), the options' errors in the flags'
//! own words, and the runtime.

use std::path::PathBuf;
use std::time::Duration;

use super::{CliError, RemoteArgs};
use trustmesh::ops::{NodeOption, OptionsError, Request};
use trustmesh::plan::saved::PlanFlags;

/// The request of an operation on `inventory` with these flags.
pub fn request(inventory: PathBuf, args: &RemoteArgs) -> Request {
    Request {
        inventory,
        flags: plan_flags(args),
        timeout: Duration::from_secs(args.timeout),
        concurrency: args.concurrency as usize,
    }
}

/// The runtime the operations run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::message(format!("cannot start: {e}")))
}

/// The flags of a run that shape its plan, as given (the operations
/// normalize them where they are recorded).
fn plan_flags(args: &RemoteArgs) -> PlanFlags {
    PlanFlags {
        limit: args.limit.clone(),
        rotate_keys: args.rotate_keys.clone(),
        accept_new_host_keys: args.accept_new_host_keys,
        accept_changed_host_key: args.accept_changed_host_key.clone(),
        remove_stale_host_keys: args.remove_stale_host_keys.clone(),
        ask_pass: args.ask_pass,
        adopt: args.adopt,
    }
}

/// The flag an option is given with.
fn flag(option: NodeOption) -> &'static str {
    match option {
        NodeOption::Limit => "--limit",
        NodeOption::RotateKeys => "--rotate-keys",
        NodeOption::RemoveStaleHostKeys => "--remove-stale-host-keys",
        NodeOption::AcceptChangedHostKey => "--accept-changed-host-key",
    }
}

/// Options that do not fit the inventory, said with the flags' names.
impl From<OptionsError> for CliError {
    fn from(e: OptionsError) -> CliError {
        match e {
            OptionsError::UnknownNode { option, name } => {
                let err = CliError::message(format!(
                    "{} names `{name}`, which is not a node of the inventory",
                    flag(option)
                ));
                if option == NodeOption::AcceptChangedHostKey {
                    err
                } else {
                    err.hint("`trustmesh graph` lists the nodes")
                }
            }
            OptionsError::RotateOutsideLimit { nodes } => CliError::message(format!(
                "--rotate-keys names {}, outside --limit: nothing was read or changed",
                nodes.join(", ")
            ))
            .hint("a rotation needs the node and every node its key opens in scope: drop --limit, or add them to it"),
            OptionsError::BadFingerprint { given } => CliError::message(format!(
                "--accept-changed-host-key {given}: give the new key's fingerprint as NODE=SHA256:..."
            ))
            .hint("on the node (or from its console): `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`"),
            OptionsError::PinUnknownNode { node } => CliError::message(format!(
                "the saved plan pins a host key for `{node}`, which is not a node of the inventory"
            ))
            .hint("plan again with `trustmesh plan --out FILE`"),
            OptionsError::NoUserCa { given } => CliError::message(format!(
                "--rotate-keys {given} names the user CA, and this inventory has no `certificates:`"
            ))
            .hint("`--rotate-keys` takes node names; `@ca` is the user CA of certificate mode"),
        }
    }
}
