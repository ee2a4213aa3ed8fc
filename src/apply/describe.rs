//! Each action in words, as the apply report shows it.

use super::*;

/// What `a` does, in words.
pub(super) fn describe(plan: &Plan, a: &Action) -> String {
    let np = &plan.nodes[a.plan_node];
    match &a.kind {
        Kind::MkDir { path } => format!("create {path} (0700)"),
        Kind::Block { change } => match &np.changes[*change] {
            Change::WriteBlock(b) => {
                let sudo = if b.sudo { " with sudo -n" } else { "" };
                match (&b.new, b.role) {
                    (None, crate::plan::BlockRole::SshConfigFile) => format!("remove {}", b.path),
                    (
                        None,
                        crate::plan::BlockRole::SshdDropin | crate::plan::BlockRole::SshDropin,
                    ) => {
                        format!("remove {}{sudo}", b.path)
                    }
                    (None, _) => format!("remove trustmesh's block from {}{sudo}", b.path),
                    (
                        Some(_),
                        crate::plan::BlockRole::SshConfigFile
                        | crate::plan::BlockRole::SshdDropin
                        | crate::plan::BlockRole::SshDropin,
                    ) => {
                        format!("write {}", b.path)
                    }
                    (Some(_), _) => format!("write trustmesh's block in {}{sudo}", b.path),
                }
            }
            _ => "write".to_string(),
        },
        Kind::Keygen { path, key_type } => format!("generate {path} ({key_type})"),
        Kind::Edit { change } => match &np.changes[*change] {
            Change::EditFile(e) => {
                let mut parts = Vec::new();
                if !e.add.is_empty() {
                    parts.push(format!("{} added", e.add.len()));
                }
                if !e.remove.is_empty() {
                    parts.push(format!("{} removed", e.remove.len()));
                }
                if !e.remove_on_request.is_empty() {
                    parts.push(format!(
                        "{} stale line(s) written by hand removed on request",
                        e.remove_on_request.len()
                    ));
                }
                if !e.adopt.is_empty() {
                    parts.push(format!("{} written by hand adopted", e.adopt.len()));
                }
                let write = format!("write {} ({})", e.path, parts.join(", "));
                if np.access == Login::Password && e.file == FileRole::AuthorizedKeys {
                    format!("install the manager's key with a password: {write}")
                } else {
                    write
                }
            }
            _ => "edit".to_string(),
        },
        Kind::Mode { path, to } => format!("chmod {to:04o} {path}"),
        Kind::Owner { path, to } => format!("chown {to} {path}"),
        Kind::RemoveLeftover { path } => format!("remove {path} (left by an interrupted run)"),
        Kind::SetAcl { path, .. } => {
            format!("set the ACL of {path} (SYSTEM and Administrators only)")
        }
        Kind::CreateCa { path, .. } => format!("create the user CA {path} (ed25519, 0600)"),
        Kind::Issue { change } => match &np.changes[*change] {
            Change::IssueCertificate(i) => format!(
                "sign and write {} (principals {})",
                i.path,
                i.principals.join(",")
            ),
            _ => "issue a certificate".to_string(),
        },
        Kind::Sign { node, .. } => format!("sign the certificate of {node} with the user CA"),
        Kind::HostCa { path } => format!("generate the host CA {path} (ed25519)"),
        Kind::HostCert { change } => match &np.changes[*change] {
            Change::SignHostKey(h) => format!(
                "sign the host key {} and write {}{}",
                h.fingerprint,
                h.path,
                if h.sudo { " with sudo -n" } else { "" }
            ),
            _ => "sign".to_string(),
        },
        Kind::Reload { change } => match &np.changes[*change] {
            Change::ReloadSshd(r) => format!(
                "check sshd's config with `sshd -t` and reload sshd{}",
                if r.sudo { " with sudo -n" } else { "" }
            ),
            _ => "reload sshd".to_string(),
        },
        Kind::Krl { change } => match &np.changes[*change] {
            Change::WriteKrl(k) if k.remove => format!(
                "remove the KRL {}{}",
                k.path,
                if k.sudo { " with sudo -n" } else { "" }
            ),
            Change::WriteKrl(k) => format!(
                "write the KRL {} ({} revoked){}",
                k.path,
                k.revoked.len(),
                if k.sudo { " with sudo -n" } else { "" }
            ),
            _ => "write the KRL".to_string(),
        },
        Kind::Prove { name, identity, .. } if identity.ends_with(crate::plan::NEW_KEY_SUFFIX) => {
            format!("prove the new key with a fresh connection to {name}")
        }
        Kind::Prove { name, .. } => format!(
            "prove the certificate signed by the new user CA with a fresh connection to {name}"
        ),
        Kind::Swap {
            path,
            new_path,
            aside_path,
        } if aside_path.ends_with(super::graph::UNUSED) => {
            format!("move {new_path}, left by a rotation that did not finish, aside to {path}")
        }
        Kind::Swap {
            path, aside_path, ..
        } => format!("put the new key in place as {path}, the old one moved to {aside_path}"),
    }
}
