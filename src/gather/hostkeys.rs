//! Trusting a node's host key before its control connection: a pinned
//! key, a key already in the manager's known_hosts, or one accepted on
//! first use (`--accept-new-host-keys`), read with `ssh-keyscan` from the
//! manager or from the node's jump host.

use super::*;

/// Host keys as `(type, base64)` from `ssh-keyscan` output (comment lines,
/// printed on stdout since OpenSSH 9.8, are skipped).
pub(super) fn parse_keyscan(out: &str) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for line in out.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut f = line.split_whitespace();
        let (_host, t, b) = (f.next(), f.next(), f.next());
        if let (Some(t), Some(b)) = (t, b) {
            if !keys.iter().any(|(_, ob): &(String, String)| ob == b) {
                keys.push((t.to_string(), b.to_string()));
            }
        }
    }
    keys
}

pub(super) async fn keyscan(
    via: Option<&Host>,
    addr: &str,
    port: u16,
    timeout: Duration,
) -> Result<Vec<(String, String)>, String> {
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
                Err(format!(
                    "ssh-keyscan got no host key from {addr}:{port}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            } else {
                Ok(keys)
            }
        }
        Err(e) => Err(format!("ssh-keyscan: {e}")),
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

/// Make sure the control channel's host key is trusted before connecting.
pub(super) async fn trust_host_key(
    shared: &Shared,
    node: &crate::inventory::Node,
    via: Option<&Host>,
) -> Result<(), NodeState> {
    let addr = node.address.as_deref().unwrap_or_default();
    let known = trusted_keys(shared, addr, node.port);
    let kh_name = known_hosts::host_name(addr, node.port);
    let timeout = shared.opts.timeout;
    if let Some(pin) = &node.host_key {
        if !known.is_empty() {
            if known
                .iter()
                .any(|(_, b)| known_hosts::fingerprint_sha256(b).as_deref() == Some(pin))
            {
                return Ok(());
            }
            return Err(unreachable(
                "host key",
                format!(
                    "the inventory pins {pin}, but the manager's known_hosts holds {} for {kh_name}",
                    fingerprints(&known)
                ),
                Some(format!(
                    "check which is right; if the pin is, remove the old key with `ssh-keygen -R '{kh_name}' -f {}`",
                    shared.known_hosts_display
                )),
            ));
        }
        let scanned = keyscan(via, addr, node.port, timeout).await.map_err(|e| {
            unreachable(
                "host key",
                e,
                Some("check that sshd answers on that address and port".into()),
            )
        })?;
        let Some((t, b)) = scanned
            .iter()
            .find(|(_, b)| known_hosts::fingerprint_sha256(b).as_deref() == Some(pin))
        else {
            return Err(unreachable(
                "host key",
                format!("the host presents {}, not the pinned {pin}", fingerprints(&scanned)),
                Some("if the node was reinstalled, check its new key and update `host_key:` in the inventory".into()),
            ));
        };
        shared
            .accepted
            .lock()
            .await
            .push(format!("{kh_name} {t} {b}"));
        return Ok(());
    }
    if !known.is_empty() {
        return Ok(());
    }
    let scanned = keyscan(via, addr, node.port, timeout).await.map_err(|e| {
        unreachable(
            "host key",
            e,
            Some("check that sshd answers on that address and port".into()),
        )
    })?;
    if !shared.opts.accept_new_host_keys {
        return Err(unreachable(
            "host key",
            format!(
                "the manager has never seen the host key of {kh_name}; it presents {}",
                fingerprints(&scanned)
            ),
            Some(
                "check the fingerprint, then run again with --accept-new-host-keys, or pin it with `host_key:` in the inventory"
                    .into(),
            ),
        ));
    }
    let mut acc = shared.accepted.lock().await;
    for (t, b) in &scanned {
        acc.push(format!("{kh_name} {t} {b}"));
    }
    shared.notes.lock().await.push(format!(
        "accepted the new host key of {} ({kh_name}): {}",
        node.name,
        fingerprints(&scanned)
    ));
    Ok(())
}

/// What a changed host key looks like: the keys trusted and presented.
pub(super) async fn changed_key_reason(
    shared: &Shared,
    node: &crate::inventory::Node,
    via: Option<&Host>,
) -> String {
    let addr = node.address.as_deref().unwrap_or_default();
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
