//! host_certificates on the manager: a host key signed with the host CA
//! (`ssh-keygen -s CA -h`, on a copy of the public key in a private
//! temporary folder), the certificate then written to its node like any
//! file trustmesh owns.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::actions::{base_of, EditInput, RenderError};
use super::graph::{Action, Kind};
use crate::plan::{Change, HostCertificate, Plan, SshdReload};

/// Why a host key could not be signed.
#[derive(Debug, thiserror::Error)]
pub(super) enum SignError {
    #[error("cannot make a private temporary folder on the manager: {0}")]
    TempDir(std::io::Error),
    #[error("cannot write the host key to sign: {0}")]
    Write(std::io::Error),
    #[error("cannot run ssh-keygen on the manager: {0}")]
    Spawn(std::io::Error),
    #[error("ssh-keygen -s {ca} refused to sign: {words}")]
    Refused { ca: String, words: String },
    #[error("cannot read the certificate ssh-keygen wrote: {0}")]
    Read(std::io::Error),
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
        .map_err(SignError::TempDir)?;
    let key = dir.path().join("host.pub");
    std::fs::write(&key, format!("{}\n", h.host_key)).map_err(SignError::Write)?;
    let ca = ca_file(&h.ca);
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(&ca)
        .args(["-h", "-I", &h.identity, "-n", &h.principals.join(",")])
        .args([
            "-V",
            &format!("+{}", h.validity),
            "-z",
            &h.serial.to_string(),
        ])
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(SignError::Spawn)?;
    if !out.status.success() {
        return Err(SignError::Refused {
            ca: ca.display().to_string(),
            words: String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " "),
        });
    }
    std::fs::read_to_string(cert_of(&key)).map_err(SignError::Read)
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

/// The reload an action carries out, if it is one.
pub(super) fn reload_of<'p>(plan: &'p Plan, action: &Action) -> Option<&'p SshdReload> {
    match &action.kind {
        Kind::Reload { change } => match &plan.nodes[action.plan_node].changes[*change] {
            Change::ReloadSshd(r) => Some(r),
            _ => None,
        },
        _ => None,
    }
}
