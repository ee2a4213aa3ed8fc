//! One action as its node's door takes it ([`crate::node::Op`]), and the
//! text an edit writes.

use super::*;
use crate::node::{NodePath, Op, ProofRequest, Write};

/// Why the new text of a file cannot be made (in the planner's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct RenderError(pub(super) String);

/// The new text of a file, and its expected current checksum.
pub(super) struct EditInput {
    /// (plan node, path): where [`apply`] remembers what it wrote.
    pub(super) key: (usize, String),
    /// The file, as the plan names it.
    pub(super) path: String,
    pub(super) expected: String,
    pub(super) content: Result<String, RenderError>,
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
pub(super) fn base_of(
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
        path: b.path.clone(),
        expected,
        content: rendered
            .map(Option::unwrap_or_default)
            .map_err(|e| RenderError(e.to_string())),
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
        path: e.path.clone(),
        expected,
        content: rendered.content.map_err(|e| RenderError(e.to_string())),
        mode,
        missing: rendered.missing,
        remove: false,
        sudo: false,
    }
}

/// Why an action could not be put to its node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum NotSent {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("internal: no content for the {0}")]
    NoContent(&'static str),
    #[error("internal: no proof to run")]
    NoProof,
    #[error(transparent)]
    Sign(#[from] super::host_certificates::SignError),
}

/// The operation `action` asks of its node's door. `edit` is the text of
/// an edit or a block write; `proof` a rotation's proof, ready to run.
pub(super) fn op_of(
    action: &Action,
    marker: &str,
    edit: Option<EditInput>,
    proof: Option<ProofRequest>,
    prepared: Option<Result<Op, super::host_certificates::SignError>>,
) -> Result<Op, NotSent> {
    let write = |edit: Option<EditInput>, what: &'static str| -> Result<Write, NotSent> {
        let e = edit.ok_or(NotSent::NoContent(what))?;
        Ok(Write {
            content: e.content?.into_bytes(),
            path: NodePath::plan(&e.path),
            expected: e.expected,
            mode: e.mode,
            remove: e.remove,
            sudo: e.sudo,
        })
    };
    Ok(match &action.kind {
        Kind::MkDir { path } => Op::MkDir {
            path: NodePath::plan(path),
        },
        Kind::Block { .. } => Op::WriteBlock(write(edit, "write")?),
        Kind::Keygen { path, key_type } => Op::Keygen {
            path: NodePath::plan(path),
            key_type: key_type.clone(),
            marker: marker.to_string(),
        },
        Kind::Edit { .. } | Kind::Issue { .. } => Op::Replace(write(edit, "edit")?),
        Kind::CreateCa { path, comment } => Op::Keygen {
            path: NodePath::plan(path),
            key_type: "ed25519".into(),
            marker: comment.clone(),
        },
        Kind::Mode { path, to } => Op::Chmod {
            path: NodePath::plan(path),
            mode: *to,
        },
        Kind::Owner { path, to } => Op::Chown {
            path: NodePath::plan(path),
            uid: *to,
        },
        Kind::RemoveLeftover { path } => Op::RemoveLeftover {
            path: NodePath::plan(path),
        },
        Kind::SetAcl { path, command } => Op::SetAcl {
            path: NodePath::plan(path),
            command: command.clone(),
        },
        Kind::Swap {
            path,
            new_path,
            aside_path,
        } => Op::Swap {
            path: NodePath::plan(path),
            new_path: NodePath::plan(new_path),
            aside_path: NodePath::plan(aside_path),
        },
        Kind::Prove { .. } => Op::Prove(proof.ok_or(NotSent::NoProof)?),
        Kind::Sign { request, .. } => Op::Sign(crate::node::SignRequest {
            public_key: edit.ok_or(NotSent::NoContent("signing"))?.content?,
            ..request.clone()
        }),
        Kind::HostCa { path } => Op::Keygen {
            path: NodePath::plan(path),
            key_type: "ed25519".into(),
            marker: format!("{marker} host CA"),
        },
        Kind::HostCert { .. } => Op::WriteBlock(write(edit, "certificate")?),
        Kind::Reload { .. } | Kind::Krl { .. } => {
            prepared.ok_or(NotSent::NoContent("host certificates"))??
        }
    })
}

/// The name a door's answer to `a` is remembered under: the user CA's
/// public key under [`crate::plan::CA_NODE`], the host CA's under
/// [`crate::plan::HOST_CA`], a signed certificate under
/// [`certificate_name`], a node's own key under the node.
pub(super) fn result_name(plan: &Plan, a: &Action) -> String {
    match &a.kind {
        Kind::CreateCa { .. } => crate::plan::CA_NODE.to_string(),
        // The host CA's public key, for the `@cert-authority` lines.
        Kind::HostCa { .. } => crate::plan::HOST_CA.to_string(),
        Kind::Sign { node, .. } => certificate_name(node),
        _ => plan.nodes[a.plan_node].node.clone(),
    }
}

/// Where the certificate signed for `node` in this run is remembered.
fn certificate_name(node: &str) -> String {
    format!("certificate of {node}")
}

/// The input of a certificate's signing (the public key line signed) or
/// of its write (the certificate, compared with what the plan read).
pub(super) fn certificate_input(
    plan: &Plan,
    a: &Action,
    generated: &Generated,
) -> Option<EditInput> {
    let (pi, ci, signing) = match &a.kind {
        Kind::Sign { of, change, .. } => (*of, *change, true),
        Kind::Issue { change } => (a.plan_node, *change, false),
        _ => return None,
    };
    let Change::IssueCertificate(i) = plan.nodes[pi].changes.get(ci)? else {
        return None;
    };
    let node = &plan.nodes[pi].node;
    let (_, expected) = base_of(plan, pi, &i.path, None);
    let content = if signing {
        match &i.base64 {
            Some(b) => Ok(format!("{} {b}", i.key_type)),
            None => generated
                .get(node)
                .map(|(t, b)| format!("{t} {b}"))
                .ok_or_else(|| RenderError(format!("the key of {node} was not generated"))),
        }
    } else {
        generated
            .get(&certificate_name(node))
            .map(|(t, b)| format!("{t} {b} {}\n", i.key_id))
            .ok_or_else(|| RenderError(format!("the certificate of {node} was not signed")))
    };
    Some(EditInput {
        key: (pi, i.path.clone()),
        path: if signing {
            i.ca.clone()
        } else {
            i.path.clone()
        },
        expected,
        content,
        mode: if i.create {
            "0644".into()
        } else {
            "keep".into()
        },
        missing: Vec::new(),
        remove: false,
        sudo: false,
    })
}
