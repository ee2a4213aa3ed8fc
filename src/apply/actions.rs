//! Carrying out one action on its node: the fixed script it runs and what
//! it answered; a rotation's proof; the text an edit writes.

use super::rotation::Proof;
use super::*;

/// The new text of a file, and its expected current checksum.
pub(super) struct EditInput {
    /// (plan node, path): where [`apply`] remembers what it wrote.
    pub(super) key: (usize, String),
    pub(super) path: String,
    pub(super) expected: String,
    pub(super) content: Result<String, String>,
    pub(super) mode: String,
    /// Sources whose key was to be generated but was not.
    pub(super) missing: Vec<String>,
    /// The file is removed (`content` is then empty).
    pub(super) remove: bool,
    /// Run with `sudo -n`.
    pub(super) sudo: bool,
}

/// The text a file is written from: what this run wrote there already,
/// else what the plan read (`None`: it did not exist); and its checksum as
/// the replace script compares it (`absent` for no file).
fn base_of(
    plan: &Plan,
    pi: usize,
    path: &str,
    written: Option<&String>,
) -> (Option<String>, String) {
    let base = match written {
        Some(text) => Some(text.clone()),
        None => plan.nodes[pi]
            .base
            .iter()
            .find(|f| f.path == path)
            .and_then(|f| f.content.clone()),
    };
    let expected = match &base {
        Some(text) => scripts::cksum(text.as_bytes()),
        None => "absent".to_string(),
    };
    (base, expected)
}

/// The text a block write makes of the file the plan read (or of what this
/// run wrote there already).
pub(super) fn block_content(
    plan: &Plan,
    pi: usize,
    b: &crate::plan::BlockWrite,
    written: Option<&String>,
) -> EditInput {
    let (base, expected) = base_of(plan, pi, &b.path, written);
    let rendered = b.render(base.as_deref());
    let remove = matches!(rendered, Ok(None));
    EditInput {
        key: (pi, b.path.clone()),
        path: scripts::script_path(&b.path),
        expected,
        content: rendered
            .map(Option::unwrap_or_default)
            .map_err(String::from),
        mode: if b.create {
            format!("{:04o}", b.create_mode())
        } else {
            "keep".to_string()
        },
        missing: Vec::new(),
        remove,
        sudo: b.sudo,
    }
}

pub(super) fn edit_content(
    plan: &Plan,
    pi: usize,
    e: &FileEdit,
    generated: &Generated,
    written: Option<&String>,
) -> EditInput {
    let (base, expected) = base_of(plan, pi, &e.path, written);
    let key_of = |node: &str| generated.get(node).cloned();
    let rendered = e.render(base.as_deref().unwrap_or_default(), &key_of);
    // A mode fix planned for this file is done by its own action; a new
    // file starts at 0600, an existing one keeps its mode.
    let mode = if e.create {
        "0600".to_string()
    } else {
        "keep".to_string()
    };
    EditInput {
        key: (pi, e.path.clone()),
        path: scripts::script_path(&e.path),
        expected,
        content: rendered.content.map_err(String::from),
        mode,
        missing: rendered.missing,
        remove: false,
        sudo: false,
    }
}

pub(super) async fn run_action(
    host: &Host,
    marker: &str,
    action: &Action,
    edit: Option<EditInput>,
    proof: Option<Proof>,
    timeout: Duration,
) -> Result<Outcome, String> {
    let (line, stdin) = match &action.kind {
        Kind::MkDir { path } if path == "~/.ssh" => {
            (scripts::command_line(scripts::MKDIR_SSH, &[]), Vec::new())
        }
        Kind::MkDir { path } => (
            scripts::command_line(scripts::MKDIR_PRIVATE, &[&scripts::script_path(path)]),
            Vec::new(),
        ),
        Kind::Block { .. } => {
            let Some(e) = edit else {
                return Err("internal: no content for the write".into());
            };
            let content = e.content?;
            let line = if e.remove {
                scripts::command_line(scripts::REMOVE_FILE, &[&e.path, &e.expected])
            } else {
                let sum = scripts::cksum(content.as_bytes());
                scripts::command_line(
                    scripts::REPLACE_FILE,
                    &[&e.path, &e.expected, &e.mode, &sum],
                )
            };
            let line = if e.sudo {
                scripts::with_sudo(&line)
            } else {
                line
            };
            (line, content.into_bytes())
        }
        Kind::Keygen { path, key_type } => (keygen_line(path, key_type, marker), Vec::new()),
        Kind::Edit { .. } => {
            let Some(e) = edit else {
                return Err("internal: no content for the edit".into());
            };
            let content = e.content?;
            let sum = scripts::cksum(content.as_bytes());
            (
                scripts::command_line(
                    scripts::REPLACE_FILE,
                    &[&e.path, &e.expected, &e.mode, &sum],
                ),
                content.into_bytes(),
            )
        }
        Kind::Mode { path, to } => (
            scripts::command_line(
                scripts::CHMOD,
                &[&format!("{to:04o}"), &scripts::script_path(path)],
            ),
            Vec::new(),
        ),
        Kind::Owner { path, to } => (
            scripts::command_line(
                scripts::CHOWN,
                &[&to.to_string(), &scripts::script_path(path)],
            ),
            Vec::new(),
        ),
        Kind::RemoveLeftover { path } => (
            scripts::command_line(scripts::REMOVE_LEFTOVER, &[&scripts::script_path(path)]),
            Vec::new(),
        ),
        Kind::SetAcl { .. } => {
            return Ok(Outcome::Failed(
                "an ACL is set on Windows nodes only".into(),
            ))
        }
        Kind::Swap {
            path,
            new_path,
            aside_path,
        } => (
            scripts::command_line(
                scripts::ROTATE_SWAP,
                &[
                    &scripts::script_path(path),
                    &scripts::script_path(new_path),
                    &scripts::script_path(aside_path),
                ],
            ),
            Vec::new(),
        ),
        Kind::Prove { .. } => {
            let Some(p) = proof else {
                return Err("internal: no proof to run".into());
            };
            let out = host
                .run(&p.line, b"", timeout)
                .await
                .map_err(|e| e.to_string())?;
            let names = crate::verify::EdgeNames {
                source: &p.source,
                target: &p.target,
                addr: &p.addr,
                port: p.port,
                known_hosts: None,
            };
            return Ok(
                match crate::verify::interpret(
                    crate::verify::parse_exit(&out.stdout),
                    &String::from_utf8_lossy(&out.stderr),
                    &names,
                ) {
                    crate::verify::EdgeOutcome::Holds => Outcome::Ok,
                    crate::verify::EdgeOutcome::Fails(f) => Outcome::Failed(format!(
                        "the new key does not open {}: {}; the old key stays in place",
                        p.target, f.reason
                    )),
                    crate::verify::EdgeOutcome::NotTried { reason, .. } => Outcome::Failed(reason),
                },
            );
        }
    };
    match host.run(&line, &stdin, timeout).await {
        Ok(out) => Ok(scripts::outcome(
            &out.stdout,
            &out.stderr,
            out.status.code(),
        )),
        Err(e) => Err(e.to_string()),
    }
}
