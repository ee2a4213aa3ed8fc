//! What a rotation that did not finish left beside a key or the user CA:
//! its new pair `<key>.trustmesh-new` (a failed proof keeps the old key in
//! place and never puts the new one there). The next rotation moves
//! trustmesh's own pair aside (`<key>.old-<tag>`, with its `-cert.pub` in
//! certificate mode: kept, never deleted) before it makes a new one, and
//! the plan says so. A pair trustmesh cannot tell is its own (the comment
//! of its public half is not the one trustmesh gives it, or half of it is
//! missing) refuses the rotation: trustmesh never moves a key it did not
//! make. A new key's certificate left alone (`<key>.trustmesh-new-cert.pub`)
//! is read, and written over by compare-and-swap like any certificate.

use super::*;

/// A new pair a rotation left, trustmesh's own.
#[derive(Debug, Clone)]
pub(super) struct Leftover {
    /// The pair's private key, as the plan shows it.
    pub(super) path: String,
    /// Where it is moved (`<key>.old-<tag of its own fingerprint>`).
    pub(super) aside_path: String,
    /// Its public key `(type, base64)`.
    pub(super) key: (Arc<str>, Arc<str>),
    pub(super) fingerprint: String,
}

/// What is left beside `key` (named as the probe names files) in `acc`:
/// `Ok(None)` nothing, `Ok(Some)` trustmesh's own new pair (its public
/// half's comment is `comment`), `Err` why it is left alone.
pub(super) fn find(
    acc: &LiveAccount,
    key: &str,
    comment: &str,
) -> Result<Option<Leftover>, String> {
    let new = format!("{key}{}", rotation::NEW_KEY_SUFFIX);
    let private = acc.file(&new).and_then(|f| f.stat.as_ref());
    let public = acc.file(&format!("{new}.pub"));
    let shown = display_path(&new);
    match (private, public.and_then(|f| f.stat.as_ref())) {
        (None, None) => return Ok(None),
        (Some(p), Some(_)) if p.kind == FileKind::File => {}
        _ => {
            return Err(format!(
                "{shown} (or {shown}.pub) is there without the other half of its pair: trustmesh cannot tell \
                 it made it, and never moves a key it did not make; move it away, then rotate again"
            ))
        }
    }
    let text = public
        .and_then(|f| f.content.as_deref())
        .and_then(|c| std::str::from_utf8(c).ok())
        .unwrap_or_default();
    let own = text
        .split_whitespace()
        .skip(2)
        .collect::<Vec<_>>()
        .join(" ")
        == comment;
    match PublicKey::parse(text) {
        Some(k) if own => {
            let fingerprint = kh::fingerprint_sha256(k.base64).unwrap_or_default();
            Ok(Some(Leftover {
                aside_path: display_path(&format!(
                    "{key}.old-{}",
                    rotation::aside_tag(&fingerprint)
                )),
                path: shown,
                key: k.to_arcs(),
                fingerprint,
            }))
        }
        _ => Err(format!(
            "{shown} is there and is not a key trustmesh made (the comment of {shown}.pub is not `{comment}`): \
             trustmesh never moves a key it did not make; move it away, then rotate again"
        )),
    }
}

impl Leftover {
    /// Its move aside, before the rotation makes a new pair there; `why`
    /// says what becomes of its lines.
    pub(super) fn move_aside(&self, why: String) -> Change {
        Change::MoveAside {
            path: self.path.clone(),
            aside_path: self.aside_path.clone(),
            fingerprint: self.fingerprint.clone(),
            why,
        }
    }
}
