//! What went wrong reaching a host, sorted from what ssh printed.
//!
//! ssh reports failures as free text on standard error. This pure function
//! sorts that text into kinds, each with the next step a person would take,
//! and is tested on captured messages.

use serde::{Deserialize, Serialize};

use crate::model::finding::{Finding, Hint};
use crate::model::target::SshTarget;

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

/// A failure sorted into its kind, and its finding: the step
/// ([`Failure::STEP`]), why, and what to try.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", finding.reason)]
pub struct Failure {
    pub kind: FailureKind,
    pub finding: Finding,
}

impl Failure {
    /// The step of a failure to reach a node or use its connection.
    pub const STEP: &'static str = "connect";

    pub fn new(kind: FailureKind, reason: String, hint: Option<Hint>) -> Failure {
        Failure {
            kind,
            finding: Finding::new(Failure::STEP, reason, hint),
        }
    }
}

/// Sort ssh's stderr into a [`Failure`]. `target` is the node's address
/// and port (shown `addr:port`), `known_hosts` the manager's known_hosts
/// path for hints.
pub fn classify(stderr: &str, target: SshTarget<'_>, known_hosts: &str) -> Failure {
    let text = stderr.trim();
    let lower = text.to_lowercase();
    let first = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning:"))
        .unwrap_or("no message from ssh")
        .to_string();
    let kh_name = crate::formats::known_hosts::host_name(target.addr, target.port);
    if lower.contains("remote host identification has changed")
        || lower.contains("host key for") && lower.contains("has changed")
    {
        return Failure::new(
            FailureKind::HostKeyChanged,
            "the host key differs from the one in the manager's known_hosts".into(),
            Some(Hint::ForgetChangedHostKey {
                kh_name,
                known_hosts: known_hosts.to_string(),
            }),
        );
    }
    if lower.contains("no ") && lower.contains("host key is known")
        || lower.contains("host key verification failed")
    {
        return Failure::new(
            FailureKind::HostKeyUnknown,
            "the manager does not know this host's key".into(),
            Some(Hint::AcceptNewHostKeys),
        );
    }
    if lower.contains("permission denied") {
        return Failure::new(
            FailureKind::AuthRejected,
            format!("the node does not accept the manager's key ({first})"),
            Some(Hint::AskPass),
        );
    }
    if lower.contains("could not resolve hostname") || lower.contains("name or service not known") {
        return Failure::new(
            FailureKind::NameUnknown,
            format!("the name does not resolve ({first})"),
            Some(Hint::Text(format!(
                "check the address `{}` in the inventory and the manager's DNS",
                target.addr
            ))),
        );
    }
    if lower.contains("timed out") || lower.contains("timeout") {
        return Failure::new(
            FailureKind::Timeout,
            format!("no answer from {target} in time"),
            Some(Hint::RaiseTimeout {
                check: format!("check that the host is up and that sshd answers on {target}"),
            }),
        );
    }
    if lower.contains("connection refused")
        || lower.contains("no route to host")
        || lower.contains("network is unreachable")
        || lower.contains("connection closed")
        || lower.contains("connection reset")
    {
        return Failure::new(
            FailureKind::Refused,
            first,
            Some(Hint::Text(format!(
                "check that sshd runs and listens on {target}"
            ))),
        );
    }
    Failure::new(FailureKind::Other, first, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> FailureKind {
        classify(s, SshTarget::new("127.0.0.5", 2222), "~/.ssh/known_hosts").kind
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
        let f = classify(
            changed,
            SshTarget::new("127.0.0.5", 2222),
            "/home/a/.ssh/known_hosts",
        );
        assert_eq!(f.kind, FailureKind::HostKeyChanged);
        assert!(f
            .finding
            .hint
            .unwrap()
            .to_string()
            .contains("ssh-keygen -R '[127.0.0.5]:2222' -f /home/a/.ssh/known_hosts"));
        // An IPv6 address: its known_hosts name is bracketed only with a
        // port other than 22, and messages bracket it always.
        let f = classify(changed, SshTarget::new("fd00::5", 22), "kh");
        assert!(f
            .finding
            .hint
            .unwrap()
            .to_string()
            .contains("ssh-keygen -R 'fd00::5' -f kh"));
        let f = classify(changed, SshTarget::new("fd00::5", 2222), "kh");
        assert!(f
            .finding
            .hint
            .unwrap()
            .to_string()
            .contains("ssh-keygen -R '[fd00::5]:2222' -f kh"));
        let f = classify("Connection timed out", SshTarget::new("fd00::5", 22), "kh");
        assert_eq!(f.finding.reason, "no answer from [fd00::5]:22 in time");
        assert_eq!(
            kind("kex_exchange_identification: read: Connection reset by peer"),
            FailureKind::Refused
        );
        assert_eq!(kind("something odd"), FailureKind::Other);
        let f = classify(
            "ssh: connect to host 127.0.0.5 port 22: Connection refused",
            SshTarget::new("127.0.0.5", 22),
            "kh",
        );
        assert_eq!(
            f.finding.reason,
            "ssh: connect to host 127.0.0.5 port 22: Connection refused"
        );
    }
}
