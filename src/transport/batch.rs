//! One round trip for one node's writes: its whole ordered list of steps
//! (make `~/.ssh` and private folders, every file's compare-and-swap
//! replace, modes, owners, leftover and file removal) sent as one run of
//! [`scripts::BATCH`], which answers with one outcome per step and then the
//! probe's read-back of the same account (issue #21).
//!
//! Each step is carried out by the same single script as when it runs
//! alone (`replace_file.sh`, `mkdir_ssh.sh`, ...: the batch script holds
//! them as functions), with the same arguments, so the same safety (a file
//! replaced only if it is still what the plan read, never through a
//! symbolic link, never a file of another owner, never with content cut
//! short) and the same outcomes and messages ([`Outcome`]). A step runs
//! only when the earlier steps it names in [`Step::after`] succeeded, as
//! apply's action graph skips what depends on a failed action of the same
//! node: a compare-and-swap conflict stops what needs that file, and the
//! rest of the list goes on.
//!
//! Data never reaches the script's text: the steps are positional
//! arguments quoted by [`scripts::shell_quote`], the new contents go one
//! after the other on standard input, each step taking the byte count it
//! gives. The command is `sh -c SCRIPT trustmesh ARGS...` rather than the
//! probe's `sh -s -- ARGS...`: a shell reading its script from standard
//! input may read past it (dash and busybox sh read ahead in blocks), and
//! would eat the contents that follow.
//!
//! [`run`] is what a node's door calls; [`encode`] and [`decode`] are its
//! two halves, pure, for tests and for other transports.

use std::time::Duration;

use crate::gather::probe::{parse_probe_output, ProbeError, ProbeRequest};
use crate::model::state::LiveAccount;
use crate::transport::scripts::{self, shell_quote, Outcome};
use crate::transport::{Host, StepError};

/// What one step does, with the arguments its single script takes. Paths
/// are as the scripts take them: relative to the account's home
/// (`.ssh/authorized_keys`, see [`scripts::script_path`]) or absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create `~/.ssh` (0700) when missing (`mkdir_ssh.sh`).
    MkdirSsh,
    /// Create a private folder directly under `~/.ssh`, 0700, when
    /// missing (`mkdir_private.sh`): `.ssh/NAME`.
    MkdirPrivate { path: String },
    /// Replace a file atomically, only if it is still what the plan read
    /// (`replace_file.sh`).
    Replace {
        path: String,
        /// [`scripts::cksum`] of the file as the plan read it (or as an
        /// earlier step of this list wrote it), or `absent` for no file.
        expected: String,
        /// The new file's mode; `None` keeps the existing file's mode.
        mode: Option<u32>,
        content: Vec<u8>,
        /// Run as root with `sudo -n` (`/etc/hosts`).
        sudo: bool,
    },
    /// Remove a file trustmesh owns, only if it is still what the plan
    /// read (`remove_file.sh`).
    RemoveFile {
        path: String,
        /// [`scripts::cksum`] of the file as the plan read it.
        expected: String,
        /// Run as root with `sudo -n`.
        sudo: bool,
    },
    /// `chmod` (`chmod.sh`), never through a symbolic link.
    Chmod { path: String, mode: u32 },
    /// `chown` (`chown.sh`), never through a symbolic link.
    Chown { path: String, uid: u32 },
    /// Remove a temporary file an interrupted apply left:
    /// `.ssh/.trustmesh.XXXXXX` (`remove_leftover.sh`).
    RemoveLeftover { path: String },
}

/// One step of a node's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: Action,
    /// Earlier steps of the list (their indexes) that must succeed for
    /// this one to run: the same node's prerequisites in apply's action
    /// graph (`~/.ssh` before anything in it, an edit before its mode fix,
    /// two edits of one file in order).
    pub after: Vec<usize>,
}

impl Step {
    /// A step that needs nothing before it.
    pub fn new(action: Action) -> Step {
        Step {
            action,
            after: Vec::new(),
        }
    }

    /// The same step, run only once `steps` succeeded.
    pub fn after(mut self, steps: &[usize]) -> Step {
        self.after.extend_from_slice(steps);
        self
    }
}

/// What became of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It ran: what its script said, exactly as when it runs alone.
    Ran(Outcome),
    /// It did not run: the step of this index, which it needs, did not
    /// succeed.
    Skipped { after: usize },
}

/// A node's answer: one outcome per step, in order, and the probe's
/// report of the account read after every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub outcomes: Vec<StepOutcome>,
    pub read_back: Result<LiveAccount, ProbeError>,
}

/// Why a batch gave no full report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A step cannot be sent as it is (nothing was run).
    #[error("step {index}: {reason}")]
    InvalidStep { index: usize, reason: String },
    /// The probe request is not valid (nothing was run).
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// This node's files are reached over SFTP, which runs no script.
    #[error(
        "this node's files are reached over SFTP, which runs no script: its steps go one by one"
    )]
    NoShell,
    /// The command did not finish: timeout, or the connection failed.
    /// What it did on the node is not known; the caller reads it again.
    #[error(transparent)]
    Transport(#[from] StepError),
    /// The script stopped before the end (`error MESSAGE`): the steps it
    /// reported before are in `outcomes`, the others did not run.
    #[error("the batch stopped on the node: {reason}")]
    Remote {
        reason: String,
        outcomes: Vec<StepOutcome>,
    },
    /// The report is cut short or unreadable: the steps it reported are
    /// in `outcomes`; what happened to the others is not known.
    #[error("the batch's report is unreadable after {} of {steps} steps: {reason}", .outcomes.len())]
    Garbled {
        reason: String,
        steps: usize,
        outcomes: Vec<StepOutcome>,
    },
}

/// A batch ready to send: the command line and its standard input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// `sh -c 'SCRIPT' trustmesh 'ARG'...`, every word quoted.
    pub line: String,
    /// The script's arguments, unquoted (to run it under a chosen shell).
    pub args: Vec<String>,
    /// The replace steps' contents, one after the other.
    pub stdin: Vec<u8>,
}

/// The words of a step: KIND AFTER LEN A1 A2 A3 A4 (`batch.sh`).
fn words(index: usize, step: &Step) -> Result<[String; 7], BatchError> {
    let bad = |reason: String| BatchError::InvalidStep { index, reason };
    if let Some(&d) = step.after.iter().find(|&&d| d >= index) {
        return Err(bad(format!(
            "it can only wait for an earlier step, not step {d}"
        )));
    }
    let after = if step.after.is_empty() {
        "-".to_string()
    } else {
        step.after
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let s = |x: &str| x.to_string();
    let (kind, len, args): (&str, usize, [String; 4]) = match &step.action {
        Action::MkdirSsh => ("mkdir-ssh", 0, Default::default()),
        Action::MkdirPrivate { path } => ("mkdir-private", 0, [s(path), s(""), s(""), s("")]),
        Action::Replace {
            path,
            expected,
            mode,
            content,
            sudo,
        } => (
            if *sudo { "sudo-replace" } else { "replace" },
            content.len(),
            [
                s(path),
                s(expected),
                mode.map_or_else(|| s("keep"), |m| format!("{m:04o}")),
                scripts::cksum(content),
            ],
        ),
        Action::RemoveFile {
            path,
            expected,
            sudo,
        } => (
            if *sudo { "sudo-remove" } else { "remove" },
            0,
            [s(path), s(expected), s(""), s("")],
        ),
        Action::Chmod { path, mode } => {
            ("chmod", 0, [format!("{mode:04o}"), s(path), s(""), s("")])
        }
        Action::Chown { path, uid } => ("chown", 0, [uid.to_string(), s(path), s(""), s("")]),
        Action::RemoveLeftover { path } => ("remove-leftover", 0, [s(path), s(""), s(""), s("")]),
    };
    if args.iter().any(|a| a.contains('\0')) {
        return Err(bad(
            "an argument holds a NUL byte, which no command line can carry".into(),
        ));
    }
    let [a1, a2, a3, a4] = args;
    Ok([s(kind), after, len.to_string(), a1, a2, a3, a4])
}

/// Turn a node's steps and its probe request into one command and its
/// input.
pub fn encode(steps: &[Step], probe: &ProbeRequest) -> Result<Encoded, BatchError> {
    let sudo = |want: fn(&Action) -> bool, script: &str| {
        if steps.iter().any(|s| want(&s.action)) {
            script.to_string()
        } else {
            String::new()
        }
    };
    let mut args = vec![
        "v1".to_string(),
        sudo(
            |a| matches!(a, Action::Replace { sudo: true, .. }),
            scripts::REPLACE_FILE,
        ),
        sudo(
            |a| matches!(a, Action::RemoveFile { sudo: true, .. }),
            scripts::REMOVE_FILE,
        ),
    ];
    let mut stdin = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        args.extend(words(i, step)?);
        if let Action::Replace { content, .. } = &step.action {
            stdin.extend_from_slice(content);
        }
    }
    args.push("--probe".to_string());
    args.extend(probe.args()?);
    let mut line = format!("sh -c {} trustmesh", shell_quote(scripts::BATCH));
    for a in &args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    Ok(Encoded { line, args, stdin })
}

const BEGIN: &[u8] = b"TM-BATCH-BEGIN v1\n";
const END: &[u8] = b"TM-BATCH-END";

/// Reads the report record by record.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn line(&mut self) -> Option<&'a str> {
        let rest = &self.buf[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n')?;
        self.pos += end + 1;
        std::str::from_utf8(&rest[..end]).ok()
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// `STATUS OUTLEN ERRLEN`, then those bytes and a newline.
    fn ran(&mut self, head: &str) -> Option<(Option<i32>, &'a [u8], &'a [u8])> {
        let mut f = head.split(' ');
        let status = f.next()?.parse().ok();
        let out_len: usize = f.next()?.parse().ok()?;
        let err_len: usize = f.next()?.parse().ok()?;
        if f.next().is_some() {
            return None;
        }
        let out = self.bytes(out_len)?;
        let err = self.bytes(err_len)?;
        (self.bytes(1)? == b"\n").then_some((status, out, err))
    }
}

/// Read a batch's output: one outcome per step of the `steps` sent, and
/// the probe's report. Anything before the begin line (a login shell's
/// noise) is ignored.
pub fn decode(stdout: &[u8], stderr: &[u8], steps: usize) -> Result<BatchReport, BatchError> {
    let mut outcomes = Vec::with_capacity(steps);
    let garbled = |reason: String, outcomes: Vec<StepOutcome>| BatchError::Garbled {
        reason,
        steps,
        outcomes,
    };
    let start = match stdout.windows(BEGIN.len()).position(|w| w == BEGIN) {
        Some(at) => at + BEGIN.len(),
        None => {
            let err = String::from_utf8_lossy(stderr);
            return Err(garbled(
                format!(
                    "no `TM-BATCH-BEGIN v1` line in {} bytes of output{}",
                    stdout.len(),
                    if err.trim().is_empty() {
                        String::new()
                    } else {
                        format!(" (stderr: {})", err.trim())
                    }
                ),
                outcomes,
            ));
        }
    };
    let mut r = Reader {
        buf: stdout,
        pos: start,
    };
    loop {
        let Some(line) = r.line() else {
            return Err(garbled("the report ends early".into(), outcomes));
        };
        if let Some(reason) = line.strip_prefix("error ") {
            return Err(BatchError::Remote {
                reason: reason.to_string(),
                outcomes,
            });
        }
        if let Some(head) = line.strip_prefix("probe ") {
            if outcomes.len() != steps {
                return Err(garbled(
                    format!("the probe came after {} steps", outcomes.len()),
                    outcomes,
                ));
            }
            let Some((_, out, _)) = r.ran(head) else {
                return Err(garbled(format!("bad probe record {line:?}"), outcomes));
            };
            let read_back = parse_probe_output(out);
            if r.line() != Some(std::str::from_utf8(END).unwrap_or_default()) {
                return Err(garbled("no end line after the probe".into(), outcomes));
            }
            return Ok(BatchReport {
                outcomes,
                read_back,
            });
        }
        let Some(rest) = line.strip_prefix("step ") else {
            return Err(garbled(format!("unexpected line {line:?}"), outcomes));
        };
        let (index, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if index.parse::<usize>().ok() != Some(outcomes.len()) || outcomes.len() >= steps {
            return Err(garbled(format!("unexpected step {line:?}"), outcomes));
        }
        let outcome = if let Some(head) = rest.strip_prefix("ran ") {
            match r.ran(head) {
                Some((status, out, err)) => StepOutcome::Ran(scripts::outcome(out, err, status)),
                None => return Err(garbled(format!("bad step record {line:?}"), outcomes)),
            }
        } else if let Some(after) = rest.strip_prefix("skipped ") {
            match after.parse() {
                Ok(after) if after < outcomes.len() => StepOutcome::Skipped { after },
                _ => return Err(garbled(format!("bad step record {line:?}"), outcomes)),
            }
        } else {
            return Err(garbled(format!("bad step record {line:?}"), outcomes));
        };
        outcomes.push(outcome);
    }
}

/// Carry out a node's `steps` in one remote command on `host` (the
/// connection to the node's account, or the manager's own), then read
/// the account back with `probe`, all within `timeout`.
///
/// Nothing is run when a step or the probe request is invalid. A step
/// that fails or conflicts skips only the later steps that name it in
/// [`Step::after`]. On [`BatchError::Transport`] (timeout, lost
/// connection) what ran is not known: read the node again before
/// planning anew.
pub async fn run(
    host: &Host,
    steps: &[Step],
    probe: &ProbeRequest,
    timeout: Duration,
) -> Result<BatchReport, BatchError> {
    if host.is_sftp() {
        return Err(BatchError::NoShell);
    }
    let encoded = encode(steps, probe)?;
    let out = host.run(&encoded.line, &encoded.stdin, timeout).await?;
    decode(&out.stdout, &out.stderr, steps.len())
}

#[cfg(test)]
#[path = "batch_codec_tests.rs"]
mod codec_tests;
#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
