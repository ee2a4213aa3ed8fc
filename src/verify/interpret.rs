//! Reading an attempt's result: the exit status the source's shell printed,
//! and ssh's standard error sorted into a failure in the words of the edge.
//! Pure, and tested on captured ssh messages.

use super::command::EXIT_MARKER;
use super::report::{EdgeFailure, EdgeOutcome};
use crate::formats::known_hosts;
use crate::model::finding::Hint;
use crate::transport::scripts::shell_quote;
use crate::transport::{classify, FailureKind};

/// Names used in the messages about one edge.
#[derive(Debug, Clone)]
pub struct EdgeNames<'a> {
    pub source: &'a str,
    pub target: &'a str,
    /// The target's address.
    pub addr: &'a str,
    pub port: u16,
    /// `-f FILE` for `ssh-keygen -R` when the source's known_hosts is not
    /// the default.
    pub known_hosts: Option<&'a str>,
}

/// The exit status the source's shell printed after the marker.
pub fn parse_exit(stdout: &[u8]) -> Option<i32> {
    let text = String::from_utf8_lossy(stdout);
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(EXIT_MARKER))
        .and_then(|rest| rest.trim().parse().ok())
}

/// What an attempt's exit status and ssh's standard error mean for the edge.
pub fn interpret(exit: Option<i32>, stderr: &str, names: &EdgeNames<'_>) -> EdgeOutcome {
    let last_line = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    match exit {
        Some(0) => EdgeOutcome::Holds,
        None => EdgeOutcome::Fails(EdgeFailure::new(
            FailureKind::Other,
            format!(
                "the shell on {} printed no exit status for ssh{}",
                names.source,
                if last_line.is_empty() {
                    String::new()
                } else {
                    format!(" ({last_line})")
                }
            ),
            Some(Hint::Text(format!(
                "the account's shell on {} must be POSIX sh compatible",
                names.source
            ))),
        )),
        Some(127)
            if stderr.contains("ssh: not found")
                || stderr.contains("ssh: command not found")
                || stderr.contains("ssh: No such file") =>
        {
            EdgeOutcome::Fails(EdgeFailure::new(
                FailureKind::Other,
                format!("{} has no ssh client ({last_line})", names.source),
                Some(Hint::Text(format!("install the OpenSSH client on {}", names.source))),
            ))
        }
        Some(255) => EdgeOutcome::Fails(sort_ssh_error(stderr, names)),
        Some(code) => EdgeOutcome::Fails(EdgeFailure::new(
            FailureKind::Other,
            format!(
                "logged in, but `true` exited with status {code}{}",
                if last_line.is_empty() {
                    String::new()
                } else {
                    format!(" ({last_line})")
                }
            ),
            Some(Hint::Text(format!(
                "check the login shell of the account on {} and any `command=` option on {}'s key in its authorized_keys",
                names.target, names.source
            ))),
        )),
    }
}

/// ssh's own failure (exit 255), in the words of this edge.
fn sort_ssh_error(stderr: &str, n: &EdgeNames<'_>) -> EdgeFailure {
    let target = crate::model::target::SshTarget::new(n.addr, n.port);
    let target_ap = target.to_string();
    let kh_name = known_hosts::host_name(n.addr, n.port);
    let f = classify(
        stderr,
        target,
        n.known_hosts.unwrap_or("~/.ssh/known_hosts"),
    );
    let detail = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('@') && !l.starts_with("Warning:"))
        .unwrap_or("no message from ssh");
    let f_opt = n
        .known_hosts
        .map(|p| format!(" -f {}", shell_quote(p)))
        .unwrap_or_default();
    let (reason, hint) = match f.kind {
        FailureKind::AuthRejected => (
            format!("the node does not accept the key ({detail})"),
            Some(Hint::Text(format!(
                "`trustmesh plan` shows what is missing (a key pair on {}, its line in {}'s authorized_keys, modes sshd wants); `trustmesh apply` fixes it",
                n.source, n.target
            ))),
        ),
        FailureKind::HostKeyChanged => (
            format!(
                "the host key of {} ({kh_name}) differs from the one in {}'s known_hosts",
                n.target, n.source
            ),
            Some(Hint::Text(format!(
                "if {} was reinstalled, check its new key, then on {}: `ssh-keygen -R '{kh_name}'{f_opt}` and `trustmesh apply`",
                n.target, n.source
            ))),
        ),
        FailureKind::HostKeyUnknown => (
            format!(
                "{}'s known_hosts holds no host key for {} ({kh_name})",
                n.source, n.target
            ),
            Some(Hint::text("`trustmesh apply` adds it (read over the trusted channel)")),
        ),
        FailureKind::Timeout => (
            format!("no answer from {} ({target_ap}) in time ({detail})", n.target),
            Some(Hint::RaiseTimeout {
                check: format!(
                    "check that {} is up and that {} can reach {target_ap} (firewall, routes)",
                    n.target, n.source
                ),
            }),
        ),
        FailureKind::NameUnknown => (
            format!("the name does not resolve on {} ({detail})", n.source),
            Some(Hint::Text(format!(
                "check the address `{}` in the inventory and {}'s DNS",
                n.addr, n.source
            ))),
        ),
        FailureKind::Refused => (
            f.finding.reason,
            Some(Hint::Text(format!(
                "check that sshd runs on {} and that {} can reach {target_ap} (firewall, routes)",
                n.target, n.source
            ))),
        ),
        _ => (f.finding.reason, f.finding.hint),
    };
    EdgeFailure::new(f.kind, reason, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> EdgeNames<'static> {
        EdgeNames {
            source: "node2",
            target: "node3",
            addr: "127.0.0.4",
            port: 2222,
            known_hosts: None,
        }
    }

    fn failure(o: EdgeOutcome) -> EdgeFailure {
        match o {
            EdgeOutcome::Fails(f) => f,
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn exit_statuses_and_ssh_messages_are_read() {
        assert_eq!(parse_exit(b"motd\ntrustmesh-verify-exit 0\n"), Some(0));
        assert_eq!(parse_exit(b"trustmesh-verify-exit 255"), Some(255));
        assert_eq!(parse_exit(b"nothing"), None);
        assert_eq!(parse_exit(b"trustmesh-verify-exit x"), None);
        assert_eq!(interpret(Some(0), "", &names()), EdgeOutcome::Holds);

        let f = failure(interpret(
            Some(255),
            "agilab@127.0.0.4: Permission denied (publickey).\r\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::AuthRejected);
        assert_eq!(
            f.finding.reason,
            "the node does not accept the key (agilab@127.0.0.4: Permission denied (publickey).)"
        );
        assert!(f
            .finding
            .hint
            .unwrap()
            .to_string()
            .contains("node3's authorized_keys"));

        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nHost key verification failed.\n";
        let f = failure(interpret(Some(255), changed, &names()));
        assert_eq!(f.kind, FailureKind::HostKeyChanged);
        assert_eq!(
            f.finding.reason,
            "the host key of node3 ([127.0.0.4]:2222) differs from the one in node2's known_hosts"
        );
        assert_eq!(
            f.finding.hint.map(|h| h.to_string()).as_deref(),
            Some("if node3 was reinstalled, check its new key, then on node2: `ssh-keygen -R '[127.0.0.4]:2222'` and `trustmesh apply`")
        );
        let mut n = names();
        n.known_hosts = Some("/home/a b/kh");
        let f = failure(interpret(Some(255), changed, &n));
        assert!(f
            .finding
            .hint
            .unwrap()
            .to_string()
            .contains("-R '[127.0.0.4]:2222' -f '/home/a b/kh'`"));

        let f = failure(interpret(
            Some(255),
            "No ED25519 host key is known for [127.0.0.4]:2222 and you have requested strict checking.\nHost key verification failed.\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::HostKeyUnknown);
        assert_eq!(
            f.finding.reason,
            "node2's known_hosts holds no host key for node3 ([127.0.0.4]:2222)"
        );

        let f = failure(interpret(
            Some(255),
            "ssh: connect to host 127.0.0.4 port 2222: Connection refused\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::Refused);
        assert_eq!(
            f.finding.reason,
            "ssh: connect to host 127.0.0.4 port 2222: Connection refused"
        );
        let f = failure(interpret(
            Some(255),
            "Connection timed out during banner exchange\n",
            &names(),
        ));
        assert_eq!(f.kind, FailureKind::Timeout);

        let f = failure(interpret(Some(127), "sh: 1: ssh: not found\n", &names()));
        assert_eq!(
            f.finding.reason,
            "node2 has no ssh client (sh: 1: ssh: not found)"
        );
        let f = failure(interpret(Some(1), "", &names()));
        assert_eq!(
            f.finding.reason,
            "logged in, but `true` exited with status 1"
        );
        let f = failure(interpret(None, "killed", &names()));
        assert!(
            f.finding.reason.contains("no exit status"),
            "{}",
            f.finding.reason
        );
    }
}
