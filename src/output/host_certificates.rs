//! host_certificates' changes in the plan's text, and what a rotation
//! that did not finish left, moved aside.

use std::io::{self, Write};

use super::escape::Esc;
use super::Paint;
use crate::plan::Change;

/// One host_certificates change, as the plan shows it.
pub(super) fn render(c: &Change, p: &Paint, out: &mut dyn Write) -> io::Result<()> {
    match c {
        Change::HostCa { path } => writeln!(
            out,
            "  {} host CA {} (ed25519, 0600, made on the manager and never copied)",
            p.add("+"),
            Esc(path)
        )?,
        Change::SignHostKey(h) => writeln!(
            out,
            "  {} {} ({}0644{}): host key {} signed by the host CA, serial {}, principals {}, valid {} ({})",
            if h.create { p.add("+") } else { p.chg("~") },
            Esc(&h.path),
            if h.create { "new file, " } else { "" },
            if h.sudo { ", with sudo -n" } else { "" },
            Esc(&h.fingerprint),
            h.serial,
            Esc(&h.principals.join(",")),
            Esc(&h.validity),
            Esc(&h.why)
        )?,
        Change::WriteKrl(k) if k.remove => writeln!(
            out,
            "  {} {} (file removed: the KRL of retired nodes' host certificates{})",
            p.del("-"),
            Esc(&k.path),
            if k.sudo { ", with sudo -n" } else { "" }
        )?,
        Change::WriteKrl(k) => writeln!(
            out,
            "  {} {} (KRL made on the manager, 0644{}): revokes {}",
            if k.create { p.add("+") } else { p.chg("~") },
            Esc(&k.path),
            if k.sudo { ", with sudo -n" } else { "" },
            if k.revoked.is_empty() {
                "nothing yet".to_string()
            } else {
                Esc(&k.revoked.iter().map(|(n, s)| format!("{n} (serial {s})")).collect::<Vec<_>>().join(", ")).to_string()
            }
        )?,
        Change::ReloadSshd(r) => writeln!(
            out,
            "  {} sshd reloaded once `sshd -t` accepts {} (on failure the old one is put back){}",
            p.chg("~"),
            Esc(&r.dropin),
            if r.sudo { ", with sudo -n" } else { "" }
        )?,
        Change::MoveAside {
            path,
            aside_path,
            fingerprint,
            why,
        } => writeln!(
            out,
            "  {} {} ({}), left by a rotation that did not finish: moved aside to {} (kept, not deleted) \
             before a new one is made there; {}",
            p.chg("~"),
            Esc(path),
            Esc(fingerprint),
            Esc(aside_path),
            Esc(why)
        )?,
        _ => {}
    }
    Ok(())
}
