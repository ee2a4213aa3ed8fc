//! The checks of single values of an inventory: names, accounts,
//! addresses, fingerprints. Pure predicates, used by [`super::validate`].

use std::net::{Ipv4Addr, Ipv6Addr};

/// `[A-Za-z0-9][A-Za-z0-9._-]*`
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// An account name that is safe everywhere: letters, digits, `_`, `.`, `-`,
/// not starting with `-` or `.`, at most 64 characters.
pub fn is_valid_user(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= 64
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A DNS host name, an IPv4 or an IPv6 address.
pub fn is_valid_address(s: &str) -> bool {
    if s.parse::<Ipv4Addr>().is_ok() || s.parse::<Ipv6Addr>().is_ok() {
        return true;
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        // All-numeric dotted names are mistyped IPv4 addresses, not names.
        && !name.split('.').all(|l| l.chars().all(|c| c.is_ascii_digit()))
}

/// `SHA256:` and 43 characters of unpadded base64 (32 bytes), as
/// `ssh-keygen -lf` prints.
pub fn is_valid_fingerprint(s: &str) -> bool {
    let Some(b64) = s.strip_prefix("SHA256:") else {
        return false;
    };
    b64.len() == 43
        && b64.chars().all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        // The last character carries 4 bits: only these are canonical.
        && b64.ends_with(|c: char| "AEIMQUYcgkosw048".contains(c))
}
