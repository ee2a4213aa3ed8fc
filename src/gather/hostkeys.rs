//! Trusting a node's host key before its control connection: a pinned
//! key, a key already in the manager's known_hosts, or one accepted on
//! first use (`--accept-new-host-keys`), read with `ssh-keyscan` from the
//! manager or from the node's jump host; and, once connected, the host keys
//! its sshd proved to that connection ([`proof`]).

use super::proof::{self, Trusted};
use super::*;
use crate::formats::public_key::PublicKey;
use crate::model::finding::Hint;

/// Host keys as `(type, base64)` from `ssh-keyscan` output (comment lines,
/// printed on stdout since OpenSSH 9.8, are skipped).
pub(super) fn parse_keyscan(out: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((_host, k)) = PublicKey::parse_with_host(line) {
            if !keys.iter().any(|(_, ob): &(String, String)| ob == k.base64) {
                keys.push(k.to_strings());
            }
        }
    }
    keys
}

/// Why `ssh-keyscan` gave no host key.
#[derive(Debug, thiserror::Error)]
pub(super) enum KeyscanError {
    #[error("ssh-keyscan got no host key from {addr}:{port}: {stderr}")]
    NoKey {
        addr: String,
        port: u16,
        stderr: String,
    },
    #[error("ssh-keyscan: {0}")]
    Run(#[from] crate::transport::StepError),
}

pub(super) async fn keyscan(
    via: Option<&Host>,
    addr: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<(String, String)>, KeyscanError> {
    let secs = timeout.as_secs().max(1);
    let line = format!(
        "ssh-keyscan -T {} -p {} {}",
        secs,
        shell_quote(&port.to_string()),
        shell_quote(addr)
    );
    let host = via.unwrap_or(&Host::Local);
    match host.run(&line, b"", timeout + Duration::from_secs(2)).await {
        Ok(out) => {
            let keys = parse_keyscan(&String::from_utf8_lossy(&out.stdout));
            if keys.is_empty() {
                Err(KeyscanError::NoKey {
                    addr: addr.to_string(),
                    port,
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                })
            } else {
                Ok(keys)
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn fingerprints(keys: &[(String, String)]) -> String {
    keys.iter()
        .map(|(t, b)| {
            format!(
                "{} ({t})",
                known_hosts::fingerprint_sha256(b).unwrap_or_else(|| "unreadable key".into())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The host keys the manager's known_hosts trusts for `addr:port`.
pub(super) fn trusted_keys(shared: &Shared, addr: &str, port: u16) -> Vec<(String, String)> {
    shared
        .manager_kh
        .keys_for(addr, port)
        .into_iter()
        .map(|(t, b)| (t.to_string(), b.to_string()))
        .collect()
}

/// The host key(s) a node's connection may accept, and their
/// fingerprints when they were accepted on first use in this run (the
/// operator confirms them before a password goes out).
pub(super) struct HostKeyTrust {
    pub(super) trusted: Trusted,
    pub(super) accepted_now: Option<String>,
}

/// Decide, before connecting, which host key(s) the node's connection may
/// accept, and write them into its known_hosts file of this run, the only
/// one its connections read ([`proof`]).
///
/// A pinned node (`host_key:`, or `--accept-changed-host-key` for this run)
/// is trusted on its pin alone, whatever the manager's own known_hosts says
/// (a reinstalled node's old key there is then replaced by the plan, if
/// trustmesh wrote it, or reported). Otherwise the keys (and
/// `@cert-authority` lines) the manager's known_hosts, or the global
/// `/etc/ssh/ssh_known_hosts`, holds for the host; and when there is none,
/// the keys it presents, accepted on first use with
/// `--accept-new-host-keys` (their fingerprints come back, for the
/// operator's confirmation before a password goes out).
pub(super) async fn trust_host_key(
    shared: &Shared,
    node: &crate::model::inventory::Node,
    alias: &str,
    pin: Option<&str>,
    via: Option<&Host>,
) -> Result<HostKeyTrust, NodeState> {
    let addr = node.target().addr;
    let known = Trusted::from_files(&[&shared.manager_kh, &shared.global_kh], addr, node.port);
    let kh_name = known_hosts::host_name(addr, node.port);
    let timeout = shared.opts.timeout;
    let scan = || async {
        keyscan(via, addr, node.port, timeout).await.map_err(|e| {
            unreachable(
                "host key",
                e.to_string(),
                Some(Hint::text(
                    "check that sshd answers on that address and port",
                )),
            )
        })
    };
    let mut accepted_now = None;
    let trusted = if let Some(pin) = pin {
        let scanned = scan().await?;
        let Some((t, b)) = scanned
            .iter()
            .find(|(_, b)| known_hosts::fingerprint_sha256(b).as_deref() == Some(pin))
        else {
            return Err(unreachable(
                "host key",
                format!(
                    "the host presents {}, not the pinned {pin}",
                    fingerprints(&scanned)
                ),
                Some(Hint::AcceptChangedHostKey),
            ));
        };
        if !known.keys.is_empty() && !known.keys.iter().any(|(_, kb)| kb == b) {
            shared.notes.lock().await.push(format!(
                "{} ({kh_name}) is reached with its pinned host key {pin}; the manager's known_hosts still holds {} for it",
                node.name,
                fingerprints(&known.keys)
            ));
        }
        Trusted {
            keys: vec![(t.clone(), b.clone())],
            annotated: Vec::new(),
        }
    } else if !known.is_empty() {
        known
    } else {
        let scanned = scan().await?;
        if !shared.opts.accept_new_host_keys {
            return Err(unreachable(
                "host key",
                format!(
                    "the manager has never seen the host key of {kh_name}; it presents {}",
                    fingerprints(&scanned)
                ),
                Some(Hint::AcceptNewHostKeys),
            ));
        }
        // A key an admin revoked for the host is not accepted.
        let revoked = |b: &str| {
            known
                .annotated
                .iter()
                .any(|l| l.split_whitespace().any(|w| w == b))
        };
        let scanned: Vec<(String, String)> =
            scanned.into_iter().filter(|(_, b)| !revoked(b)).collect();
        let mut acc = shared.accepted.lock().await;
        for (t, b) in &scanned {
            let line = format!("{kh_name} {t} {b}");
            if !acc.contains(&line) {
                acc.push(line);
            }
        }
        drop(acc);
        shared.notes.lock().await.push(format!(
            "accepted the new host key of {} ({kh_name}): {}",
            node.name,
            fingerprints(&scanned)
        ));
        accepted_now = Some(fingerprints(&scanned));
        Trusted {
            keys: scanned,
            annotated: known.annotated,
        }
    };
    let path = crate::transport::sshconfig::proof_path(&shared.proof_dir, alias);
    let text = proof::proof_file(&kh_name, &trusted);
    if let Err(e) = crate::transport::local::write_private(&path, text.as_bytes()) {
        return Err(unreachable(
            "host key",
            format!("cannot write this run's known_hosts for it: {e}"),
            None,
        ));
    }
    Ok(HostKeyTrust {
        trusted,
        accepted_now,
    })
}

/// After the node was read through its connection (so ssh has processed
/// the host's key list): the host keys its sshd proved, from its known_hosts
/// file of this run. A key that cannot be proven is not taken, and said so.
pub(super) async fn take_proof(
    shared: &Shared,
    node: &crate::model::inventory::Node,
    alias: &str,
    trusted: &Trusted,
    account: &mut LiveAccount,
) {
    let addr = node.target().addr;
    let path = crate::transport::sshconfig::proof_path(&shared.proof_dir, alias);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    match proof::proven(&text, addr, node.port, trusted) {
        Some(keys) => {
            account.proven_host_keys = keys.into_iter().map(|(t, b)| format!("{t} {b}")).collect();
        }
        None => {
            account.proven_host_keys.clear();
            shared.notes.lock().await.push(format!(
                "the host keys of {} ({}) could not be proven (ssh did not update this run's known_hosts for it: \
                 a certificate authority vouches for it, or its sshd does not send its host keys): none of them is written",
                node.name,
                known_hosts::host_name(addr, node.port)
            ));
        }
    }
}

/// What a changed host key looks like: the keys trusted and presented.
pub(super) async fn changed_key_reason(
    shared: &Shared,
    node: &crate::model::inventory::Node,
    via: Option<&Host>,
) -> String {
    let addr = node.target().addr;
    let known = trusted_keys(shared, addr, node.port);
    let now = keyscan(via, addr, node.port, shared.opts.timeout)
        .await
        .unwrap_or_default();
    format!(
        "the host key changed: the manager trusts {}, the host now presents {}",
        fingerprints(&known),
        if now.is_empty() {
            "(could not be read)".to_string()
        } else {
            fingerprints(&now)
        }
    )
}

#[cfg(test)]
mod tests {
    use super::parse_keyscan;

    #[test]
    fn keyscan_comment_lines_and_repeats_are_skipped() {
        // OpenSSH 9.8+ prints its `# host:22 SSH-2.0-...` lines on stdout.
        let out = "# 10.0.0.1:22 SSH-2.0-OpenSSH_9.8\n10.0.0.1 ssh-ed25519 AAAAone\n\n10.0.0.1 ssh-rsa AAAAtwo\n10.0.0.1 ssh-ed25519 AAAAone\nbroken\n";
        assert_eq!(
            parse_keyscan(out),
            vec![
                ("ssh-ed25519".to_string(), "AAAAone".to_string()),
                ("ssh-rsa".to_string(), "AAAAtwo".to_string()),
            ]
        );
    }
}
