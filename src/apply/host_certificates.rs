//! host_certificates on the manager: a host key signed with the host CA
//! (`ssh-keygen -s CA -h`, on a copy of the public key in a private
//! temporary folder), the certificate then written to its node like any
//! file trustmesh owns.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::actions::{base_of, EditInput, RenderError};
use super::graph::{Action, Kind};
use crate::node::{NodePath, Op, Write};
use crate::plan::{Change, HostCertificate, Krl, Plan, SshdReload};

/// Why a host key could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SignError {
    #[error("cannot make a private temporary folder on the manager: {0}")]
    TempDir(String),
    #[error("cannot write the host key to sign: {0}")]
    Write(String),
    #[error("cannot run ssh-keygen on the manager: {0}")]
    Spawn(String),
    #[error("ssh-keygen (CA {ca}) refused: {words}")]
    Refused { ca: String, words: String },
    #[error("cannot read what ssh-keygen wrote: {0}")]
    Read(String),
}

/// The CA's path on the manager (`~` is the home of the account running
/// trustmesh).
fn ca_file(ca: &str) -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    crate::transport::local::expand_home(ca, &home)
}

/// `ssh-keygen -s CA -h -I ID -n PRINCIPALS -V +VALIDITY -z SERIAL KEY.pub`
/// on a copy of the host key; the certificate's text.
pub(super) fn sign(h: &HostCertificate) -> Result<String, SignError> {
    let dir = tempfile::Builder::new()
        .prefix("trustmesh-sign.")
        .tempdir()
        .map_err(|e| SignError::TempDir(e.to_string()))?;
    let key = dir.path().join("host.pub");
    std::fs::write(&key, format!("{}\n", h.host_key))
        .map_err(|e| SignError::Write(e.to_string()))?;
    let ca = ca_file(&h.ca);
    let mut cmd = Command::new("ssh-keygen");
    cmd.arg("-q")
        .arg("-s")
        .arg(&ca)
        .args(["-h", "-I", &h.identity, "-n", &h.principals.join(",")])
        .args([
            "-V",
            &format!("+{}", h.validity),
            "-z",
            &h.serial.to_string(),
        ])
        .arg(&key);
    keygen(cmd, &ca)?;
    std::fs::read_to_string(cert_of(&key)).map_err(|e| SignError::Read(e.to_string()))
}

/// Run `cmd` (an `ssh-keygen` with the CA `ca`): its refusal in its words.
fn keygen(mut cmd: Command, ca: &Path) -> Result<(), SignError> {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| SignError::Spawn(e.to_string()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(SignError::Refused {
        ca: ca.display().to_string(),
        words: String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " "),
    })
}

/// `host.pub` -> `host-cert.pub`, as ssh-keygen names it.
fn cert_of(key: &Path) -> PathBuf {
    key.with_file_name("host-cert.pub")
}

/// The certificate's write: signed now, compared against what the plan
/// read (or what this run wrote there already).
pub(super) fn cert_input(
    plan: &Plan,
    pi: usize,
    h: &HostCertificate,
    written: Option<&String>,
) -> EditInput {
    let (_, expected) = base_of(plan, pi, &h.path, written);
    EditInput {
        key: (pi, h.path.clone()),
        path: h.path.clone(),
        expected,
        content: sign(h).map_err(|e| RenderError(e.to_string())),
        mode: if h.create {
            "0644".into()
        } else {
            "keep".into()
        },
        missing: Vec::new(),
        remove: false,
        sudo: h.sudo,
    }
}

/// The operation of a reload or a KRL action (the KRL made now, on the
/// manager); `None` for any other action.
pub(super) fn prepared_op(plan: &Plan, action: &Action) -> Option<Result<Op, SignError>> {
    let change = match &action.kind {
        Kind::Reload { change } | Kind::Krl { change } => {
            plan.nodes[action.plan_node].changes.get(*change)?
        }
        _ => return None,
    };
    match change {
        Change::ReloadSshd(r) => Some(Ok(reload(r))),
        // Removed: nothing to make, compare-and-swap on what the plan read.
        Change::WriteKrl(k) if k.remove => Some(Ok(Op::WriteBlock(Write {
            path: NodePath::plan(&k.path),
            expected: k.expected.clone(),
            content: Vec::new(),
            mode: "keep".into(),
            remove: true,
            sudo: k.sudo,
        }))),
        Change::WriteKrl(k) => Some(krl(k).map(|content| {
            Op::WriteBlock(Write {
                path: NodePath::plan(&k.path),
                expected: k.expected.clone(),
                content,
                mode: if k.create {
                    "0644".into()
                } else {
                    "keep".into()
                },
                remove: false,
                sudo: k.sudo,
            })
        })),
        _ => None,
    }
}

fn reload(r: &SshdReload) -> Op {
    Op::ReloadSshd {
        dropin: NodePath::plan(&r.dropin),
        restore: r.restore.clone().map(String::into_bytes),
        sudo: r.sudo,
    }
}

/// `ssh-keygen -k -f KRL -s CA.pub SPEC`: the KRL's bytes.
fn krl(k: &Krl) -> Result<Vec<u8>, SignError> {
    let dir = tempfile::Builder::new()
        .prefix("trustmesh-krl.")
        .tempdir()
        .map_err(|e| SignError::TempDir(e.to_string()))?;
    let spec = dir.path().join("spec");
    std::fs::write(&spec, crate::plan::krl_spec(k)).map_err(|e| SignError::Write(e.to_string()))?;
    let out_file = dir.path().join("krl");
    let mut ca_pub = ca_file(&k.ca).into_os_string();
    ca_pub.push(".pub");
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-k", "-f"])
        .arg(&out_file)
        .arg("-s")
        .arg(&ca_pub)
        .arg(&spec);
    keygen(cmd, Path::new(&ca_pub))?;
    std::fs::read(&out_file).map_err(|e| SignError::Read(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::super::describe::describe;
    use super::super::graph::ActionGraph;
    use super::super::tests::node;
    use crate::plan::{
        BlockRole, BlockWrite, Change, FileEdit, FileRole, HostCertificate, Krl, NodePlan, Plan,
        PlannedLine, SshdReload,
    };

    /// A serving node's changes: a certificate, the KRL, the drop-in, the
    /// reload.
    fn serving(name: &str) -> NodePlan {
        let cert = HostCertificate {
            path: "/etc/ssh/ssh_host_ed25519_key-cert.pub".into(),
            host_key: "ssh-ed25519 AAAA".into(),
            fingerprint: "SHA256:x".into(),
            ca: "~/.ssh/ca".into(),
            identity: format!("trustmesh:c/{name}"),
            principals: vec![name.into()],
            serial: 1,
            validity: "52w".into(),
            why: "no certificate yet".into(),
            create: true,
            sudo: false,
        };
        let krl = Krl {
            path: "/etc/ssh/trustmesh-c.krl".into(),
            ca: "~/.ssh/ca".into(),
            revoked: Vec::new(),
            expected: "absent".into(),
            create: true,
            sudo: false,
            remove: false,
        };
        let dropin = BlockWrite {
            path: "/etc/ssh/sshd_config.d/trustmesh-c.conf".into(),
            role: BlockRole::SshdDropin,
            marker: format!("trustmesh:c/{name}"),
            create: true,
            old: Vec::new(),
            new: Some(Arc::from(vec!["# x".to_string()])),
            sudo: false,
        };
        let reload = SshdReload {
            dropin: dropin.path.clone(),
            restore: None,
            sudo: false,
        };
        node(
            name,
            vec![
                Change::SignHostKey(cert),
                Change::WriteKrl(krl),
                Change::WriteBlock(dropin),
                Change::ReloadSshd(reload),
            ],
        )
    }

    #[test]
    fn the_ca_comes_first_and_a_peers_ca_line_after_every_reload() {
        let ca_line = PlannedLine {
            names: Some("@cert-authority 10.0.0.1,w1".into()),
            clear_name: None,
            fingerprint: None,
            key_type: "ssh-ed25519".into(),
            base64: None,
            node: crate::plan::HOST_CA.into(),
            marker: "trustmesh:c/m".into(),
            replaces: false,
            options: None,
        };
        let peer = node(
            "w2",
            vec![Change::EditFile(FileEdit {
                path: "~/.ssh/known_hosts".into(),
                file: FileRole::KnownHosts,
                create: false,
                kept: Vec::new(),
                remove: vec![(0, "10.0.0.1 ssh-ed25519 AAAA trustmesh:c/w1".into())],
                remove_on_request: Vec::new(),
                adopt: Vec::new(),
                add: vec![ca_line],
                after_rotation_of: None,
            })],
        );
        let manager = node(
            "m",
            vec![Change::HostCa {
                path: "~/.ssh/ca".into(),
            }],
        );
        let plan = Plan {
            format_version: crate::plan::PLAN_FORMAT_VERSION,
            nodes: vec![manager, serving("w1"), peer],
            notes: Vec::new(),
            header: Vec::new(),
        };
        let ag = ActionGraph::build(&plan);
        let mut at = HashMap::new();
        for (w, wave) in ag.waves().iter().enumerate() {
            for ix in wave {
                let a = &ag.graph[*ix];
                at.insert(
                    format!("{} {}", plan.nodes[a.plan_node].node, describe(&plan, a)),
                    w,
                );
            }
        }
        let ca = at["m generate the host CA ~/.ssh/ca (ed25519)"];
        let cert =
            at["w1 sign the host key SHA256:x and write /etc/ssh/ssh_host_ed25519_key-cert.pub"];
        let krl = at["w1 write the KRL /etc/ssh/trustmesh-c.krl (0 revoked)"];
        let dropin = at["w1 write /etc/ssh/sshd_config.d/trustmesh-c.conf"];
        let reload = at["w1 check sshd's config with `sshd -t` and reload sshd"];
        let peer = at["w2 write ~/.ssh/known_hosts (1 added, 1 removed)"];
        assert!(ca < cert && ca < krl, "{at:?}");
        assert!(krl < dropin && cert < reload && dropin < reload, "{at:?}");
        assert!(reload < peer, "{at:?}");
    }
}
