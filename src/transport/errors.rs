//! What went wrong reaching a host, sorted from what ssh printed.
//!
//! ssh reports failures as free text on standard error. This pure function
//! sorts that text into kinds, each with the next step a person would take,
//! and is tested on captured messages.

use serde::{Deserialize, Serialize};

/// Kinds of failure to reach or use a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// No TCP connection: refused, no route, name not resolved.
    Refused,
    /// Nothing answered in time.
    Timeout,
    /// The host's key differs from the one the manager trusts.
    HostKeyChanged,
    /// The manager does not know the host's key.
    HostKeyUnknown,
    /// The host does not accept the manager's key (yet).
    AuthRejected,
    /// The name does not resolve.
    NameUnknown,
    /// Anything else.
    Other,
}

/// A failure with the text to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    pub reason: String,
    pub hint: Option<String>,
}

/// Sort ssh's stderr into a [`Failure`]. `target` is `addr:port` for
/// messages, `known_hosts` the manager's known_hosts path for hints.
pub fn classify(stderr: &str, target: &str, known_hosts: &str) -> Failure {
    let text = stderr.trim();
    let lower = text.to_lowercase();
    let first = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning:"))
        .unwrap_or("no message from ssh")
        .to_string();
    let (host, port) = split_target(target);
    let kh_name = if port == "22" {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    if lower.contains("remote host identification has changed")
        || lower.contains("host key for") && lower.contains("has changed")
    {
        return Failure {
            kind: FailureKind::HostKeyChanged,
            reason: "the host key differs from the one in the manager's known_hosts".into(),
            hint: Some(format!(
                "if the node was reinstalled, check its new key, then `ssh-keygen -R '{kh_name}' -f {known_hosts}` and run again with --accept-new-host-keys"
            )),
        };
    }
    if lower.contains("no ") && lower.contains("host key is known")
        || lower.contains("host key verification failed")
    {
        return Failure {
            kind: FailureKind::HostKeyUnknown,
            reason: "the manager does not know this host's key".into(),
            hint: Some(
                "check the fingerprint, then run again with --accept-new-host-keys, or pin it with `host_key:` in the inventory"
                    .into(),
            ),
        };
    }
    if lower.contains("permission denied") {
        return Failure {
            kind: FailureKind::AuthRejected,
            reason: format!("the node does not accept the manager's key ({first})"),
            hint: Some("read it with a password: `trustmesh plan --ask-pass` (nothing is written); `trustmesh apply --ask-pass` then installs the manager's key with it".into()),
        };
    }
    if lower.contains("could not resolve hostname") || lower.contains("name or service not known") {
        return Failure {
            kind: FailureKind::NameUnknown,
            reason: format!("the name does not resolve ({first})"),
            hint: Some(format!(
                "check the address `{host}` in the inventory and the manager's DNS"
            )),
        };
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return Failure {
            kind: FailureKind::Timeout,
            reason: format!("no answer from {target} in time"),
            hint: Some(format!(
                "check that the host is up and that sshd answers on {target}; raise --timeout for slow links"
            )),
        };
    }
    if lower.contains("connection refused")
        || lower.contains("no route to host")
        || lower.contains("network is unreachable")
        || lower.contains("connection closed")
        || lower.contains("connection reset")
    {
        return Failure {
            kind: FailureKind::Refused,
            reason: first,
            hint: Some(format!("check that sshd runs and listens on {target}")),
        };
    }
    Failure {
        kind: FailureKind::Other,
        reason: first,
        hint: None,
    }
}

fn split_target(t: &str) -> (&str, &str) {
    match t.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => {
            (h.trim_start_matches('[').trim_end_matches(']'), p)
        }
        _ => (t, "22"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> FailureKind {
        classify(s, "127.0.0.5:2222", "~/.ssh/known_hosts").kind
    }

    #[test]
    fn captured_messages_are_sorted() {
        assert_eq!(
            kind("ssh: connect to host 127.0.0.5 port 2222: Connection refused\r\n"),
            FailureKind::Refused
        );
        assert_eq!(
            kind("ssh: connect to host 10.1.1.1 port 22: Connection timed out"),
            FailureKind::Timeout
        );
        assert_eq!(kind("Connection timed out during banner exchange\nConnection to 127.0.0.5 port 2222 timed out"), FailureKind::Timeout);
        assert_eq!(
            kind("agilab@127.0.0.5: Permission denied (publickey)."),
            FailureKind::AuthRejected
        );
        assert_eq!(
            kind("ssh: Could not resolve hostname nodex: Name or service not known"),
            FailureKind::NameUnknown
        );
        assert_eq!(kind("No ED25519 host key is known for [127.0.0.5]:2222 and you have requested strict checking.\nHost key verification failed."), FailureKind::HostKeyUnknown);
        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nIT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\nHost key verification failed.";
        let f = classify(changed, "127.0.0.5:2222", "/home/a/.ssh/known_hosts");
        assert_eq!(f.kind, FailureKind::HostKeyChanged);
        assert!(f
            .hint
            .unwrap()
            .contains("ssh-keygen -R '[127.0.0.5]:2222' -f /home/a/.ssh/known_hosts"));
        assert_eq!(
            kind("kex_exchange_identification: read: Connection reset by peer"),
            FailureKind::Refused
        );
        assert_eq!(kind("something odd"), FailureKind::Other);
        let f = classify(
            "ssh: connect to host 127.0.0.5 port 22: Connection refused",
            "127.0.0.5:22",
            "kh",
        );
        assert_eq!(
            f.reason,
            "ssh: connect to host 127.0.0.5 port 22: Connection refused"
        );
    }
}
