//! The live-state probe: one fixed POSIX `sh` script that reports, in one
//! round trip, who an account is, the state of its home, `~/.ssh` and chosen
//! files in it, and the host's public host keys.
//!
//! The script ([`PROBE_SCRIPT`]) is sent on standard input to
//! `sh -s -- ARGS...` (see [`ProbeRequest::command_line`]), over ssh for a
//! worker or locally for the manager. Data reaches it only as arguments,
//! never by editing the script text. It runs under dash, bash, busybox sh
//! with busybox applets, `bash --posix` (macOS's `/bin/sh`) with BWK awk,
//! all tested (`src/transport/scripts/shells.rs`), and is meant for macOS's BSD
//! tools, which are not at hand to test: it uses only
//! `ls -ldn`, `wc -c`, `cat`, `grep -q`, `id`, `hostname`/`uname -n`,
//! `cd`/`pwd -P`, `printf`, `[` and `find`; with `--privilege`, `sudo -n
//! true` (never a password prompt).
//!
//! The arguments (`--read NAME... --stat NAME...`) and the report format
//! (v1) are written at the top of the script, `src/transport/scripts/probe.sh`;
//! [`parse_probe_output`] reads that format.

use serde::{Deserialize, Serialize};

use crate::transport::scripts::shell_quote;

#[cfg(test)]
mod options_tests;
mod parse;
#[cfg(test)]
mod report_tests;
#[cfg(test)]
mod tests;

pub use parse::{is_leftover_name, parse_probe_output};

/// First line of the probe's report (the script prints a newline before it,
/// so it starts a line even after noise without a final newline).
pub const BEGIN_MARKER: &str = "TRUSTMESH-PROBE-BEGIN v1";
/// Last line of the probe's report.
pub const END_MARKER: &str = "TRUSTMESH-PROBE-END";
const BEGIN_PREFIX: &str = "TRUSTMESH-PROBE-BEGIN";

/// The probe script (`src/transport/scripts/probe.sh`). Send it on standard input to
/// the command given by [`ProbeRequest::command_line`] (or run `sh -s --`
/// with [`ProbeRequest::args`] locally).
pub const PROBE_SCRIPT: &str = include_str!("../../transport/scripts/probe.sh");

/// What went wrong building a probe request or reading a probe's report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("{name:?} cannot be probed: a file name under ~/.ssh {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{0:?} is listed both to read and to stat only")]
    ReadAndStatOnly(String),
    #[error("{0:?} is listed twice in the probe request")]
    DuplicateName(String),
    #[error("the probe printed nothing we recognise (no `{BEGIN_MARKER}` line in {len} bytes of output)")]
    NoBeginMarker { len: usize },
    #[error(
        "the probe printed report version {found:?}; this trustmesh reads only `{BEGIN_MARKER}`"
    )]
    UnsupportedVersion { found: String },
    #[error("the probe output is truncated: it ends while {expecting}")]
    Truncated { expecting: &'static str },
    #[error("bad probe record at line {line}: {reason}: {text:?}")]
    BadRecord {
        line: usize,
        reason: String,
        text: String,
    },
    #[error("the probe report lacks the `{0}` record")]
    MissingField(&'static str),
    #[error("the probe failed on the node: {0}")]
    Remote(String),
    #[error("the probe could not list {0} on the node")]
    Unstatable(&'static str),
}

/// The one folder under `~/.ssh` whose files may be probed.
pub const SUBDIR: &str = "config.d/";

/// Which files under `~/.ssh` to probe. Names are relative to `~/.ssh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    /// Stat and read (public things: authorized_keys, known_hosts, *.pub...).
    pub read: Vec<String>,
    /// Stat only, never read (private keys).
    pub stat_only: Vec<String>,
    /// Also read `/etc/hosts` (reported as the file `/etc/hosts`).
    #[serde(default)]
    pub etc_hosts: bool,
    /// Also say whether the account is root or has a passwordless
    /// `sudo -n` (the `privilege` record).
    #[serde(default)]
    pub privilege: bool,
    /// Also read sshd's files host_certificates plans from (`--sshd`):
    /// `/etc/ssh/sshd_config`, trustmesh's drop-ins and the host
    /// certificates, each reported under its absolute path.
    #[serde(default)]
    pub sshd: bool,
    /// Also say what the node's sshd is (`--sshd-version`, the
    /// `sshd-version` record): `certificates:` needs an sshd that takes
    /// them.
    #[serde(default)]
    pub sshd_version: bool,
    /// host_certificates off (`--sshd-leftovers`): what `sshd` reads, and
    /// the `privilege` record, only when trustmesh's drop-ins, KRL or a
    /// host certificate are there (no process otherwise), so that their
    /// removal can be planned.
    #[serde(default)]
    pub sshd_leftovers: bool,
}

fn validate_name(name: &str) -> Result<(), ProbeError> {
    let bad = |reason| {
        Err(ProbeError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name == "." {
        return bad("must not be `.`");
    }
    // One folder is allowed: `config.d/NAME` (options.ssh_config).
    let base = name.strip_prefix(SUBDIR).unwrap_or(name);
    if base.contains('/') || base.is_empty() {
        return bad("must not contain `/` (except as `config.d/NAME`)");
    }
    if name.contains("..") {
        return bad("must not contain `..`");
    }
    if name.contains('\0') {
        return bad("must not contain a NUL byte");
    }
    if name.contains('\n') || name.contains('\r') {
        return bad("must not contain a line break");
    }
    if name.starts_with('-') {
        return bad("must not start with `-`");
    }
    Ok(())
}

/// The probe script's arguments, validated and unquoted: `--read NAME...
/// --stat NAME... [--etc-hosts] [--privilege] [--sshd]` (both markers
/// always present). Only [`ProbeRequest::args`] makes one, so every name
/// in it passed [`validate_name`]; quote each for a shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeArgs(Vec<String>);

impl std::ops::Deref for ProbeArgs {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl IntoIterator for ProbeArgs {
    type Item = String;
    type IntoIter = std::vec::IntoIter<String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl ProbeRequest {
    /// The script's arguments ([`ProbeArgs`]), or why a name cannot go.
    pub fn args(&self) -> Result<ProbeArgs, ProbeError> {
        let mut seen = std::collections::HashSet::new();
        for name in &self.read {
            validate_name(name)?;
            if !seen.insert(name.as_str()) {
                return Err(ProbeError::DuplicateName(name.clone()));
            }
        }
        let mut seen_stat = std::collections::HashSet::new();
        for name in &self.stat_only {
            validate_name(name)?;
            if seen.contains(name.as_str()) {
                return Err(ProbeError::ReadAndStatOnly(name.clone()));
            }
            if !seen_stat.insert(name.as_str()) {
                return Err(ProbeError::DuplicateName(name.clone()));
            }
        }
        let mut args = Vec::with_capacity(self.read.len() + self.stat_only.len() + 2);
        args.push("--read".to_string());
        args.extend(self.read.iter().cloned());
        args.push("--stat".to_string());
        args.extend(self.stat_only.iter().cloned());
        if self.etc_hosts {
            args.push("--etc-hosts".to_string());
        }
        if self.privilege {
            args.push("--privilege".to_string());
        }
        if self.sshd {
            args.push("--sshd".to_string());
        }
        if self.sshd_version {
            args.push("--sshd-version".to_string());
        }
        if self.sshd_leftovers {
            args.push("--sshd-leftovers".to_string());
        }
        Ok(ProbeArgs(args))
    }

    /// The remote command, for a login shell: `sh -s -- '--read' 'a' ...`,
    /// every argument quoted with [`shell_quote`]. The script goes on stdin.
    pub fn command_line(&self) -> Result<String, ProbeError> {
        let mut line = String::from("sh -s --");
        for arg in self.args()? {
            line.push(' ');
            line.push_str(&shell_quote(&arg));
        }
        Ok(line)
    }
}
