//! A public key as the `type base64` pair that names it, read from the
//! text it comes in: a `.pub` file or `ssh-keygen` output (`type base64
//! [comment]`), or a line of `ssh-keyscan`/an accepted host key (`host
//! type base64`). One reading, so that every caller takes the same two
//! fields (whatever spaces, tabs or line breaks separate them) and none
//! splits a line by hand.
//!
//! The pair is checked only for being there: what the fields hold is
//! checked where it matters (the line formats in [`crate::formats::lines`],
//! the fingerprint in [`PublicKey::fingerprint`]), as before.

use std::fmt;
use std::sync::Arc;

/// A public key's type (`ssh-ed25519`, ...) and base64 blob, borrowed from
/// the text it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey<'a> {
    pub key_type: &'a str,
    pub base64: &'a str,
}

impl<'a> PublicKey<'a> {
    /// `type base64 [comment]`: the first two fields, `None` without two.
    pub fn parse(text: &'a str) -> Option<PublicKey<'a>> {
        let mut f = text.split_whitespace();
        Some(PublicKey {
            key_type: f.next()?,
            base64: f.next()?,
        })
    }

    /// `host type base64 [comment]` (`ssh-keyscan`, an accepted host key):
    /// the host and the key.
    pub fn parse_with_host(line: &'a str) -> Option<(&'a str, PublicKey<'a>)> {
        let mut f = line.split_whitespace();
        let host = f.next()?;
        Some((
            host,
            PublicKey {
                key_type: f.next()?,
                base64: f.next()?,
            },
        ))
    }

    /// The pair, owned.
    pub fn to_strings(self) -> (String, String) {
        (self.key_type.to_string(), self.base64.to_string())
    }

    /// The pair, shared.
    pub fn to_arcs(self) -> (Arc<str>, Arc<str>) {
        (Arc::from(self.key_type), Arc::from(self.base64))
    }

    /// `SHA256:...` as `ssh-keygen -l` prints it; `None` when the blob is
    /// not a key.
    pub fn fingerprint(&self) -> Option<String> {
        crate::formats::known_hosts::fingerprint_sha256(self.base64)
    }
}

/// `type base64`.
impl fmt::Display for PublicKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.key_type, self.base64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pair_is_the_first_two_fields_whatever_separates_them() {
        let k = PublicKey::parse("ssh-ed25519\tAAAAC3 alice@m\r\n").unwrap();
        assert_eq!((k.key_type, k.base64), ("ssh-ed25519", "AAAAC3"));
        assert_eq!(k.to_string(), "ssh-ed25519 AAAAC3");
        assert_eq!(
            PublicKey::parse("  ssh-rsa  AAAAB3\n"),
            PublicKey::parse("ssh-rsa AAAAB3")
        );
        assert_eq!(PublicKey::parse("ssh-ed25519"), None);
        assert_eq!(PublicKey::parse(""), None);
        let (host, k) = PublicKey::parse_with_host("[10.0.0.2]:2222 ssh-ed25519 AAAAC3").unwrap();
        assert_eq!(
            (host, k.key_type, k.base64),
            ("[10.0.0.2]:2222", "ssh-ed25519", "AAAAC3")
        );
        assert_eq!(PublicKey::parse_with_host("10.0.0.2 ssh-ed25519"), None);
    }

    #[test]
    fn its_fingerprint_is_ssh_keygens() {
        let k = PublicKey::parse(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        )
        .unwrap();
        assert!(k.fingerprint().unwrap().starts_with("SHA256:"));
        assert_eq!(
            PublicKey::parse("ssh-ed25519 notakey")
                .unwrap()
                .fingerprint(),
            None
        );
    }
}
