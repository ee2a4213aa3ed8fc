//! The door of a node with a POSIX shell: each operation is one of the
//! fixed scripts of `src/transport/scripts/`, its data passed as quoted
//! arguments ([`scripts::command_line`]) and file contents on its standard
//! input, run over the node's connection ([`Host::run`]: the SSH master,
//! a password login, or `sh -c` locally for the manager). The state is
//! read by the probe ([`crate::gather::probe`]), in one run.

use std::time::Duration;

use futures::future::BoxFuture;

use super::{
    one_by_one, Door, DoorError, Hint, NodePath, Op, Outcomes, ProofRequest, Queued, Reason, Write,
};
use crate::gather::probe::{self, ProbeRequest};
use crate::model::inventory::KeyType;
use crate::model::state::LiveAccount;
use crate::plan::NodeFiles;
use crate::transport::batch::{self, BatchError, StepOutcome};
use crate::transport::scripts::{self, Outcome};
use crate::transport::{Host, StepError};

/// The shell scripts, over `host`.
pub struct ShellDoor<'h> {
    node: String,
    host: &'h Host,
    timeout: Duration,
}

impl<'h> ShellDoor<'h> {
    pub fn new(node: &str, host: &'h Host, timeout: Duration) -> ShellDoor<'h> {
        ShellDoor {
            node: node.to_string(),
            host,
            timeout,
        }
    }

    fn error(&self, step: &str, e: StepError) -> DoorError {
        let reason = match e {
            StepError::Timeout(s) => Reason::Timeout(s),
            other => Reason::Transport(other.to_string()),
        };
        DoorError::new(&self.node, step, reason)
    }

    /// Run the probe for `req` (the manager reads some files itself, so it
    /// asks for fewer than [`NodeFiles`] names).
    pub async fn probe(&self, req: &ProbeRequest) -> Result<LiveAccount, DoorError> {
        let line = req
            .command_line()
            .map_err(|e| DoorError::new(&self.node, "probe", Reason::Request(e.to_string())))?;
        let out = self
            .host
            .run(&line, probe::PROBE_SCRIPT.as_bytes(), self.timeout)
            .await
            .map_err(|e| {
                self.error("probe", e)
                    .with_hint(super::Hint::StoppedAnswering)
            })?;
        probe::parse_probe_output(&out.stdout).map_err(|e| {
            DoorError::new(
                &self.node,
                "probe",
                Reason::Probe {
                    error: e.to_string(),
                    stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                },
            )
            .with_hint(super::Hint::text(
                "the account's shell must be POSIX sh compatible (sh, bash, dash, zsh, busybox)",
            ))
        })
    }

    async fn script(&self, op: &Op, line: &str, stdin: &[u8]) -> Result<Outcome, DoorError> {
        let out = self
            .host
            .run(line, stdin, self.timeout)
            .await
            .map_err(|e| self.error(op.step(), e))?;
        Ok(scripts::outcome(
            &out.stdout,
            &out.stderr,
            out.status.code(),
        ))
    }

    async fn prove(&self, p: &ProofRequest) -> Result<Outcome, DoorError> {
        let out = self
            .host
            .run(&p.line, b"", self.timeout)
            .await
            .map_err(|e| self.error("prove", e))?;
        let names = crate::verify::EdgeNames {
            source: &p.source,
            target: &p.target,
            addr: &p.addr,
            port: p.port,
            known_hosts: None,
        };
        Ok(
            match crate::verify::interpret(
                crate::verify::parse_exit(&out.stdout),
                &String::from_utf8_lossy(&out.stderr),
                &names,
            ) {
                crate::verify::EdgeOutcome::Holds => Outcome::Ok,
                crate::verify::EdgeOutcome::Fails(f) => Outcome::Failed(format!(
                    "the new key does not open {}: {}; the old key stays in place",
                    p.target, f.finding.reason
                )),
                crate::verify::EdgeOutcome::NotTried(f) => Outcome::Failed(f.reason),
            },
        )
    }
}

/// The batch step of `op` ([`batch::Action`]), if the batch carries it
/// (a key generation, a rotation's swap and proof, a signing on the
/// manager and an sshd reload go on their own).
fn step_of(op: &Op) -> Option<batch::Action> {
    let write = |w: &Write, sudo: bool| -> Option<batch::Action> {
        let mode = match w.mode.as_str() {
            "keep" => None,
            m => Some(u32::from_str_radix(m, 8).ok()?),
        };
        Some(batch::Action::Replace {
            path: w.path.shell(),
            expected: w.expected.clone(),
            mode,
            content: w.content.clone(),
            sudo,
        })
    };
    Some(match op {
        Op::MkDir { path } if path.as_plan() == "~/.ssh" => batch::Action::MkdirSsh,
        Op::MkDir { path } => batch::Action::MkdirPrivate { path: path.shell() },
        Op::Replace(w) => write(w, false)?,
        Op::WriteBlock(w) if w.remove => batch::Action::RemoveFile {
            path: w.path.shell(),
            expected: w.expected.clone(),
            sudo: w.sudo,
        },
        Op::WriteBlock(w) => write(w, w.sudo)?,
        Op::Chmod { path, mode } => batch::Action::Chmod {
            path: path.shell(),
            mode: *mode,
        },
        Op::Chown { path, uid } => batch::Action::Chown {
            path: path.shell(),
            uid: *uid,
        },
        Op::RemoveLeftover { path } => batch::Action::RemoveLeftover { path: path.shell() },
        Op::Keygen { .. }
        | Op::SetAcl { .. }
        | Op::Swap { .. }
        | Op::Prove(_)
        | Op::Sign(_)
        | Op::ReloadSshd { .. } => return None,
    })
}

/// The command line of `op` and its standard input (`None`: not a
/// script).
fn command(op: &Op) -> Option<(String, Vec<u8>)> {
    let path = |p: &NodePath| p.shell();
    let line = match op {
        Op::MkDir { path } if path.as_plan() == "~/.ssh" => {
            scripts::command_line(scripts::MKDIR_SSH, &[])
        }
        Op::MkDir { path: p } => scripts::command_line(scripts::MKDIR_PRIVATE, &[&path(p)]),
        Op::Keygen {
            path: p,
            key_type,
            marker,
        } => keygen_line(p.as_plan(), key_type, marker),
        Op::Replace(w) => return Some((replace_line(w), w.content.clone())),
        Op::WriteBlock(w) => {
            let line = if w.remove {
                scripts::command_line(scripts::REMOVE_FILE, &[&path(&w.path), &w.expected])
            } else {
                replace_line(w)
            };
            let line = if w.sudo {
                scripts::with_sudo(&line)
            } else {
                line
            };
            return Some((line, w.content.clone()));
        }
        Op::Chmod { path: p, mode } => {
            scripts::command_line(scripts::CHMOD, &[&format!("{mode:04o}"), &path(p)])
        }
        Op::Chown { path: p, uid } => {
            scripts::command_line(scripts::CHOWN, &[&uid.to_string(), &path(p)])
        }
        Op::RemoveLeftover { path: p } => {
            scripts::command_line(scripts::REMOVE_LEFTOVER, &[&path(p)])
        }
        Op::Swap {
            path: p,
            new_path,
            aside_path,
        } => scripts::command_line(
            scripts::ROTATE_SWAP,
            &[&path(p), &path(new_path), &path(aside_path)],
        ),
        Op::Sign(s) => scripts::command_line(
            scripts::SIGN,
            &[
                &scripts::script_path(s.ca.as_plan()),
                &s.key_id,
                &s.principals.join(","),
                // Five minutes back: clocks a little behind the manager's.
                &format!("-5m:+{}", s.validity),
                &s.serial.to_string(),
                &s.public_key,
                &s.agent.as_ref().map(NodePath::shell).unwrap_or_default(),
            ],
        ),
        Op::ReloadSshd {
            dropin,
            restore,
            sudo,
        } => {
            let how = if restore.is_some() { "keep" } else { "absent" };
            let line = scripts::command_line(scripts::SSHD_RELOAD, &[&path(dropin), how]);
            let line = if *sudo {
                scripts::with_sudo(&line)
            } else {
                line
            };
            return Some((line, restore.clone().unwrap_or_default()));
        }
        Op::SetAcl { .. } | Op::Prove(_) => return None,
    };
    Some((line, Vec::new()))
}

fn replace_line(w: &Write) -> String {
    let sum = scripts::cksum(&w.content);
    scripts::command_line(
        scripts::REPLACE_FILE,
        &[&w.path.shell(), &w.expected, &w.mode, &sum],
    )
}

/// The command that generates a key pair at `path` (a plan path such as
/// `~/.ssh/id_ed25519`) on its node itself, its comment being the node's
/// marker.
pub fn keygen_line(path: &str, key_type: &str, marker: &str) -> String {
    scripts::command_line(
        scripts::KEYGEN,
        &[
            &scripts::script_path(path),
            key_type,
            keygen_bits(key_type),
            marker,
        ],
    )
}

/// The `-b` argument of `ssh-keygen` for a key type (`rsa` means 4096
/// bits; the others take their default).
pub fn keygen_bits(key_type: &str) -> &'static str {
    if key_type == KeyType::Rsa.keygen_name() {
        "4096"
    } else {
        ""
    }
}

impl ShellDoor<'_> {
    /// A node's list and its read-back in one remote command
    /// ([`batch::run`]); `None` when the batch cannot carry the list (an
    /// operation that goes on its own, an SFTP connection, a request the
    /// batch refuses before running anything): it then goes one by one.
    async fn batch(&self, list: &[Queued], files: &NodeFiles) -> Option<Outcomes> {
        let steps = list
            .iter()
            .map(|q| Some(batch::Step::new(step_of(&q.op)?).after(&q.after)))
            .collect::<Option<Vec<_>>>()?;
        let answer = batch::run(self.host, &steps, &files.probe_request(), self.timeout).await;
        let ran = |o: &StepOutcome| match o {
            StepOutcome::Ran(o) => Some(Ok(o.clone())),
            StepOutcome::Skipped { .. } => None,
        };
        // What the node did not report: every step unknown, said as the
        // one failure of the round trip, and the state not read back.
        let unknown = |done: &[StepOutcome], reason: Reason, hint: Hint| {
            let mut results: Vec<_> = done.iter().map(ran).collect();
            for q in &list[done.len()..] {
                results.push(Some(Err(DoorError::new(
                    &self.node,
                    q.op.step(),
                    reason.clone(),
                )
                .with_hint(hint.clone()))));
            }
            let state = Err(DoorError::new(&self.node, "read back", reason).with_hint(hint));
            Outcomes { results, state }
        };
        let lost = || Hint::BatchUnfinished;
        Some(match answer {
            Ok(report) => Outcomes {
                results: report.outcomes.iter().map(ran).collect(),
                state: report.read_back.map_err(|e| {
                    DoorError::new(
                        &self.node,
                        "read back",
                        Reason::Probe {
                            error: e.to_string(),
                            stderr: String::new(),
                        },
                    )
                }),
            },
            Err(BatchError::InvalidStep { .. } | BatchError::Probe(_) | BatchError::NoShell) => {
                return None
            }
            Err(BatchError::Transport(e)) => {
                unknown(&[], self.error("batch", e).finding.reason, lost())
            }
            Err(BatchError::Remote { reason, outcomes }) => unknown(
                &outcomes,
                Reason::Transport(format!("the batch stopped on the node: {reason}")),
                lost(),
            ),
            Err(BatchError::Garbled {
                reason,
                steps,
                outcomes,
            }) => unknown(
                &outcomes,
                Reason::Transport(format!(
                    "the batch's report is unreadable after {} of {steps} steps: {reason}",
                    outcomes.len()
                )),
                lost(),
            ),
        })
    }
}

impl Door for ShellDoor<'_> {
    fn node(&self) -> &str {
        &self.node
    }

    fn read_state<'a>(
        &'a self,
        files: &'a NodeFiles,
    ) -> BoxFuture<'a, Result<LiveAccount, DoorError>> {
        Box::pin(async move { self.probe(&files.probe_request()).await })
    }

    fn run_all<'a>(&'a self, list: &'a [Queued], files: &'a NodeFiles) -> BoxFuture<'a, Outcomes> {
        Box::pin(async move {
            if let Some(out) = self.batch(list, files).await {
                return out;
            }
            let results = one_by_one(self, list).await;
            let state = self.read_state(files).await;
            Outcomes { results, state }
        })
    }

    fn run<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Result<Outcome, DoorError>> {
        Box::pin(async move {
            match op {
                Op::Prove(p) => self.prove(p).await,
                Op::SetAcl { .. } => Err(DoorError::new(
                    &self.node,
                    op.step(),
                    Reason::Unsupported("an ACL is set on Windows nodes only".into()),
                )),
                _ => match command(op) {
                    Some((line, stdin)) => self.script(op, &line, &stdin).await,
                    None => Err(DoorError::new(
                        &self.node,
                        op.step(),
                        Reason::Unsupported("not a script".into()),
                    )),
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(mode: &str, remove: bool, sudo: bool) -> Write {
        Write {
            path: NodePath::plan("~/.ssh/authorized_keys"),
            expected: "absent".into(),
            content: b"k\n".to_vec(),
            mode: mode.into(),
            remove,
            sudo,
        }
    }

    #[test]
    fn a_list_becomes_batch_steps_and_what_goes_alone_does_not() {
        let path = ".ssh/authorized_keys".to_string();
        assert_eq!(
            step_of(&Op::Replace(write("0600", false, false))),
            Some(batch::Action::Replace {
                path: path.clone(),
                expected: "absent".into(),
                mode: Some(0o600),
                content: b"k\n".to_vec(),
                sudo: false,
            })
        );
        assert!(matches!(
            step_of(&Op::WriteBlock(write("keep", false, true))),
            Some(batch::Action::Replace {
                mode: None,
                sudo: true,
                ..
            })
        ));
        assert_eq!(
            step_of(&Op::WriteBlock(write("keep", true, true))),
            Some(batch::Action::RemoveFile {
                path,
                expected: "absent".into(),
                sudo: true,
            })
        );
        assert_eq!(step_of(&Op::Replace(write("rw", false, false))), None);
        assert_eq!(
            step_of(&Op::MkDir {
                path: NodePath::plan("~/.ssh")
            }),
            Some(batch::Action::MkdirSsh)
        );
        let keygen = Op::Keygen {
            path: NodePath::plan("~/.ssh/id_ed25519"),
            key_type: "ed25519".into(),
            marker: "trustmesh:lab/w1".into(),
        };
        assert_eq!(step_of(&keygen), None);
        let sign = Op::Sign(crate::node::SignRequest {
            ca: NodePath::plan("~/.ssh/trustmesh_ca"),
            agent: None,
            key_id: "trustmesh:lab/w1".into(),
            principals: vec!["lab:group:gpu".into()],
            validity: 604_800,
            serial: 1,
            public_key: "ssh-ed25519 AAAA".into(),
        });
        assert_eq!(step_of(&sign), None);
    }
}
