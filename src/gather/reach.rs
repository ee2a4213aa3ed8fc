//! Reaching one node: the host key(s) its connection may accept, decided
//! before connecting ([`super::hostkeys`]); the master connection with the
//! manager's key, or a password login (`--ask-pass`); the read; and the
//! host keys its sshd proved to that connection ([`super::proof`]).

use super::hostkeys::{changed_key_reason, take_proof, trust_host_key, HostKeyTrust};
use super::proof::Trusted;
use super::*;
use crate::model::finding::Hint;

/// Read one node: trust its host key, connect, read, take the proof.
pub(super) async fn read_node(
    shared: &Shared,
    node: &crate::model::inventory::Node,
    id: NodeId,
    alias: &str,
    files: &NodeFiles,
    via: Option<Arc<Host>>,
    jump_chain: &[NodeId],
) -> (NodeState, Option<Host>) {
    // The key(s) the connection may accept, decided before connecting: the
    // pin, the manager's (or the global) known_hosts, or trust on first
    // use when the operator allowed it.
    let pin = shared.opts.pin(id, node);
    let HostKeyTrust {
        trusted,
        accepted_now,
    } = match trust_host_key(shared, node, alias, pin, via.as_deref()).await {
        Ok(t) => t,
        Err(state) => return (state, None),
    };
    let to = Reach {
        id,
        alias,
        files,
        jump_chain,
        trusted: &trusted,
    };
    let (state, host, kind) = reach(shared, node, &to, accepted_now.as_deref()).await;
    if kind == Some(FailureKind::HostKeyChanged) {
        return (changed(shared, node, via.as_deref(), state).await, None);
    }
    (state, host)
}

/// Where [`reach`] goes: the node, its files, its jumps, and the host
/// keys its connection may accept.
struct Reach<'a> {
    id: NodeId,
    alias: &'a str,
    files: &'a NodeFiles,
    jump_chain: &'a [NodeId],
    trusted: &'a Trusted,
}

/// The manager's global known_hosts files (empty when there is none).
pub(super) fn global_known_hosts() -> KnownHostsFile {
    let mut text = String::new();
    for p in ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"] {
        if let Ok(t) = std::fs::read_to_string(p) {
            text.push_str(&t);
            text.push('\n');
        }
    }
    KnownHostsFile::parse(&text)
}

/// A changed host key, said with both fingerprints.
async fn changed(
    shared: &Shared,
    node: &crate::model::inventory::Node,
    via: Option<&Host>,
    state: NodeState,
) -> NodeState {
    match state {
        NodeState::Unreachable(f) => NodeState::Unreachable(Finding {
            reason: changed_key_reason(shared, node, via).await,
            ..f
        }),
        other => other,
    }
}

/// Connect to a node whose host key ssh can check, and read it: with the
/// manager's key, or (`--ask-pass`) with a password when the key is
/// refused; `accepted_now` holds the fingerprints when the host key was
/// accepted on first use in this run (the operator confirms them before a
/// password goes out). The failure's kind comes back for the caller.
async fn reach(
    shared: &Shared,
    node: &crate::model::inventory::Node,
    to: &Reach<'_>,
    accepted_now: Option<&str>,
) -> (NodeState, Option<Host>, Option<FailureKind>) {
    let (id, alias, files, jump_chain) = (to.id, to.alias, to.files, to.jump_chain);
    let ssh_target = node.target();
    let timeout = shared.opts.timeout;
    if shared.manager_has_key {
        // Cap new connections per target: this node, and every jump on the way.
        let mut permits = Vec::new();
        for j in jump_chain.iter().chain(std::iter::once(&id)) {
            if let Ok(p) = shared.per_target[*j].acquire().await {
                permits.push(p);
            }
        }
        let connected = transport::connect(
            &shared.config,
            &shared.control,
            alias,
            ssh_target,
            &shared.known_hosts_display,
            timeout,
        )
        .await;
        drop(permits);
        match connected {
            Ok(host) => {
                let host = host.with_sftp(crate::node::uses_sftp(node));
                let state = match read_remote(&host, node, files, timeout).await {
                    Ok(mut account) => {
                        take_proof(shared, node, alias, to.trusted, &mut account).await;
                        NodeState::Read {
                            account,
                            access: Login::Key,
                        }
                    }
                    Err(state) => state,
                };
                return (state, Some(host), None);
            }
            Err(f) => {
                let by_password = f.kind == FailureKind::AuthRejected
                    && shared.opts.password.is_some()
                    && !crate::node::uses_sftp(node);
                if !by_password {
                    return (
                        unreachable("connect", f.finding.reason, f.finding.hint),
                        None,
                        Some(f.kind),
                    );
                }
            }
        }
    }
    let Some(secret) = shared.opts.password.clone() else {
        return (
            unreachable("connect", "the manager has no key pair yet".into(), None),
            None,
            None,
        );
    };
    // A host key accepted on first use in this run is confirmed before a
    // password goes to that host.
    if let (Some(fps), Some(confirm)) = (accepted_now, &shared.opts.confirm_new_host_key) {
        let (ask, name, fps) = (confirm.0.clone(), node.name.clone(), fps.to_string());
        let _one_question_at_a_time = shared.asking.lock().await;
        let yes = tokio::task::spawn_blocking(move || ask(&name, &fps))
            .await
            .unwrap_or(false);
        if !yes {
            return (
                unreachable(
                    "password login",
                    "its host key was accepted on first use in this run and not confirmed: no password was sent".into(),
                    Some(Hint::text("check the fingerprint out of band, then pin it with `host_key:` in the inventory (or answer yes)")),
                ),
                None,
                None,
            );
        }
    }
    // The node does not accept the manager's key (yet): read it with a
    // password login. Nothing is written.
    let host = Host::Password(PasswordLogin {
        config: shared.config.clone(),
        alias: alias.to_string(),
        secret,
    });
    let _permit = shared.per_target[id].acquire().await;
    match read_remote(&host, node, files, timeout).await {
        Ok(mut account) => {
            take_proof(shared, node, alias, to.trusted, &mut account).await;
            (
                NodeState::Read {
                    account,
                    access: Login::Password,
                },
                Some(host),
                None,
            )
        }
        Err(NodeState::Unreachable(Finding { reason, hint, .. })) => {
            let f = classify(&reason, ssh_target, &shared.known_hosts_display);
            let (reason, hint) = match f.kind {
                FailureKind::AuthRejected => (
                    "the password was refused (or password logins are off on this node)".into(),
                    Some(Hint::text("check the password, and `PasswordAuthentication yes` in the node's sshd_config")),
                ),
                FailureKind::Other => (reason, hint),
                _ => (f.finding.reason, f.finding.hint),
            };
            (
                unreachable("password login", reason, hint),
                None,
                Some(f.kind),
            )
        }
        Err(state) => (state, None, None),
    }
}
