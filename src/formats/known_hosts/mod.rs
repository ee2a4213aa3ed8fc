//! Lossless reading, host matching and surgical editing of OpenSSH
//! `known_hosts` files, and host key fingerprints.
//!
//! trustmesh adds the host keys of the nodes an account must reach to that
//! account's `known_hosts`, and checks whether a host key is already trusted.
//! Both must agree with what `ssh` itself will do, and neither may disturb
//! what the user keeps there. This module exists for that:
//!
//! * [`KnownHostsFile::parse`] never fails and keeps every byte:
//!   [`KnownHostsFile::render`] gives back exactly the text it was given
//!   (blank and `#` lines, CRLF and LF mixed line by line, a missing final
//!   newline, leading whitespace, lines it cannot read, kept as opaque text).
//! * [`HostEntry::matches_host`] and [`KnownHostsFile::keys_for`] follow
//!   OpenSSH's `hostfile.c` and `match.c`: the name looked up is the host,
//!   or `[host]:port` when the port is not 22; host names compare without
//!   regard to ASCII case; patterns are comma-separated, with `*`, `?` and
//!   `!` (a matching negated pattern rejects the whole line); a hashed name
//!   `|1|salt|hash` holds one host, and matches when
//!   HMAC-SHA1(salt, name) is its hash.
//! * A line is *managed* when it is an entry whose whole comment is the
//!   marker `trustmesh:<cluster>/<node>` (see [`Marker`]), `<node>` being
//!   the node the host key belongs to; a comment that only mentions a
//!   marker among other words is someone else's line. [`KnownHostsFile::apply_edits`] is the only way to
//!   change a file: it removes managed lines and appends new managed lines,
//!   refuses anything else, and leaves the bytes of every kept line alone.
//! * [`fingerprint_sha256`] prints a key's fingerprint as `ssh-keygen -l`
//!   does, for host key pins and messages.
//!
//! The line format is `[@cert-authority|@revoked] hostpatterns keytype base64
//! [comment]`, fields separated by spaces or tabs (`sshd(8)`, SSH_KNOWN_HOSTS
//! FILE FORMAT). OpenSSH calls `@cert-authority` and `@revoked` markers; here
//! they are [`Annotation`]s, so as not to confuse them with the trustmesh
//! marker.
//!
//! Keeping the bytes, the marker and the edit rule are the same for
//! `authorized_keys`, so they live in [`crate::formats::lines`]; this module says how
//! a `known_hosts` line is read ([`HostLineKind`], [`HostEntry`]) and matched.
//! Beside `std` and that module it uses the `base64`, `hmac`, `sha1` and
//! `ssh-key` crates only, so the two can be tested and moved together.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};

use crate::formats::lines::{self, field_end, is_space, key_fields, skip_space, LineKind, Marker};
pub use crate::formats::lines::{LineEnding, MARKER_PREFIX};

#[cfg(test)]
mod tests;

const HASH_MAGIC: &str = "|1|";
const CA_MARKER: &str = "@cert-authority";
const REVOKED_MARKER: &str = "@revoked";

/// A parsed `known_hosts` file: its lines, in order, each with the exact
/// text and ending it had.
pub type KnownHostsFile = lines::LineFile<HostLineKind>;

/// One line of the file.
pub type HostFileLine = lines::Line<HostLineKind>;

/// Why [`KnownHostsFile::apply_edits`] refused an edit. Nothing is changed
/// when it does. [`BadAddedLine`](lines::EditError::BadAddedLine) means the
/// new line is not one host key entry carrying the trustmesh marker.
pub type HostFileEditError = lines::EditError<HostLineKind>;

/// What a line holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostLineKind {
    /// Empty or only spaces and tabs.
    Blank,
    /// First non-blank character is `#`.
    Comment,
    /// A host key entry that `ssh` could read.
    Entry(HostEntry),
    /// Anything else; kept byte for byte and never touched.
    Invalid,
}

/// The `@` annotation that starts some lines (OpenSSH's "markers"). An
/// annotated line never makes its key a plain trusted host key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Annotation {
    /// `@cert-authority`: the key signs host certificates for the hosts.
    CertAuthority,
    /// `@revoked`: the key must be refused for the hosts.
    Revoked,
}

/// The fields of a host key entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    annotation: Option<Annotation>,
    hosts: String,
    key_type: String,
    base64: String,
    comment: Option<String>,
}

impl LineKind for HostLineKind {
    const FILE: &'static str = "known_hosts";
    const ENTRY: &'static str = "host key entry";
    type Record = HostEntry;

    fn classify(text: &str) -> Self {
        parse_line(text)
    }

    /// A line is managed when it is an entry whose comment has the marker.
    fn record(&self) -> Option<&HostEntry> {
        match self {
            HostLineKind::Entry(e) => Some(e),
            _ => None,
        }
    }
}

impl lines::Record for HostEntry {
    fn comment(&self) -> Option<&str> {
        self.comment()
    }
}

impl KnownHostsFile {
    /// The entries with their line indices, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (usize, &HostEntry)> + '_ {
        self.records()
    }

    /// The `(key_type, base64)` of every key `ssh` would accept as the plain
    /// host key of `host` on `port`: entries without annotation that match,
    /// less any key that a matching `@revoked` line revokes. In file order,
    /// each key once.
    pub fn keys_for(&self, host: &str, port: u16) -> Vec<(&str, &str)> {
        let name = host_name(host, port);
        let matching: Vec<&HostEntry> = self
            .entries()
            .map(|(_, e)| e)
            .filter(|e| e.matches_name(&name))
            .collect();
        let revoked: Vec<&str> = matching
            .iter()
            .filter(|e| e.annotation == Some(Annotation::Revoked))
            .map(|e| e.base64())
            .collect();
        let mut keys: Vec<(&str, &str)> = Vec::new();
        for e in matching {
            if e.annotation.is_none()
                && !revoked.contains(&e.base64())
                && !keys.contains(&e.key_id())
            {
                keys.push(e.key_id());
            }
        }
        keys
    }
}

impl HostFileLine {
    /// The entry, when this line is one.
    pub fn entry(&self) -> Option<&HostEntry> {
        self.kind().record()
    }
}

impl HostEntry {
    /// `@cert-authority` or `@revoked`, when the line starts with one.
    pub fn annotation(&self) -> Option<Annotation> {
        self.annotation
    }

    /// The host patterns field as written (`a,b,[c]:2222` or `|1|salt|hash`).
    pub fn hosts(&self) -> &str {
        &self.hosts
    }

    /// Whether the host field is a hashed name (`|1|...`).
    pub fn is_hashed(&self) -> bool {
        self.hosts.starts_with('|')
    }

    /// The key type, e.g. `ssh-ed25519`.
    pub fn key_type(&self) -> &str {
        &self.key_type
    }

    /// The base64 key blob as written.
    pub fn base64(&self) -> &str {
        &self.base64
    }

    /// Everything after the blob, without the surrounding spaces and tabs
    /// (and a stray trailing `\r`); `None` when empty.
    pub fn comment(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// The trustmesh marker this line's whole comment is, if it is one.
    pub fn marker(&self) -> Option<Marker<'_>> {
        lines::Record::marker(self)
    }

    /// `(key_type, base64)`: what identifies the key.
    pub fn key_id(&self) -> (&str, &str) {
        (&self.key_type, &self.base64)
    }

    /// Whether this line is about `host` on `port`, as `ssh` decides it,
    /// whatever its annotation (check [`annotation`](Self::annotation)).
    pub fn matches_host(&self, host: &str, port: u16) -> bool {
        self.matches_name(&host_name(host, port))
    }

    fn matches_name(&self, name: &str) -> bool {
        // ssh lowercases the host name before looking it up.
        let name = name.to_ascii_lowercase();
        if self.is_hashed() {
            match hashed_salt(&self.hosts) {
                Some(salt) => hash_host_name(&name, salt) == self.hosts,
                None => false,
            }
        } else {
            match_pattern_list(name.as_bytes(), self.hosts.as_bytes())
        }
    }
}

/// The name `ssh` looks up in `known_hosts` for `host` on `port`: `host`
/// itself for port 22, `[host]:port` otherwise. Port 0 counts as 22, as in
/// OpenSSH's `put_host_port`.
pub fn host_name(host: &str, port: u16) -> String {
    if port == 22 || port == 0 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The hashed form `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` of a host
/// name (from [`host_name`]), as `ssh-keygen -H` and `HashKnownHosts` write
/// it. The name is lowercased first, as both do.
pub fn hash_host_name(name: &str, salt: [u8; 20]) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(&salt).expect("HMAC accepts keys of any length");
    mac.update(name.to_ascii_lowercase().as_bytes());
    let hash = mac.finalize().into_bytes();
    format!(
        "{HASH_MAGIC}{}|{}",
        STANDARD.encode(salt),
        STANDARD.encode(hash)
    )
}

/// The hashed name trustmesh writes for `name` (from [`host_name`]) on the
/// line of the host key `key_type base64`, when `options.hash_known_hosts`
/// is on: [`hash_host_name`] with the salt [`managed_salt`] gives. Read back
/// by `ssh` and `ssh-keygen -F` as any hashed name is.
pub fn managed_hashed_name(name: &str, key_type: &str, base64: &str) -> String {
    hash_host_name(name, managed_salt(name, key_type, base64))
}

/// The salt of a managed hashed name: SHA-1 of a fixed label, the
/// lowercased name, the key type and the key's base64, so the same line
/// comes out of every plan (the planner is pure: no randomness, no clock;
/// a saved plan must equal a fresh one; and a re-plan of a converged
/// cluster must show nothing).
///
/// Why a salt derived from the name is safe here. `ssh-keygen -H` hashes
/// names so that someone who reads the file cannot list the hosts it
/// trusts; the salt is printed in the line itself, so its only work is to
/// stop one computation from serving many lines (a table of precomputed
/// hashes, or one guess tested against every line at once). A derived salt
/// keeps that: it depends on the host's own key, which no one can know
/// before reading the line, so nothing can be precomputed, and testing a
/// guessed name still costs one hash per guess per line, as with a random
/// salt. What it gives away: two lines with the same name and the same key
/// (in two accounts' files) are equal, but the key is in clear in both lines
/// already and names the host just as well. The name is also as hard to
/// find from the salt as from the hash (both are hashes of it).
pub fn managed_salt(name: &str, key_type: &str, base64: &str) -> [u8; 20] {
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(b"trustmesh known_hosts salt v1\0");
    h.update(name.to_ascii_lowercase().as_bytes());
    h.update(b"\0");
    h.update(key_type.as_bytes());
    h.update(b"\0");
    h.update(base64.as_bytes());
    h.finalize().into()
}

/// The line trustmesh writes for a host key: `names keytype base64
/// <marker>`, where `names` is a host name from [`host_name`], several
/// joined by commas, or one [`hash_host_name`], and the marker
/// (`trustmesh:<cluster>/<node>`) is the whole comment.
pub fn managed_line(names: &str, key_type: &str, base64: &str, marker: &str) -> String {
    format!("{names} {key_type} {base64} {marker}")
}

/// The SHA-256 fingerprint of a public key blob (the base64 field of a key
/// line), exactly as `ssh-keygen -l` prints it: `SHA256:` and the unpadded
/// base64 of the digest. For a certificate, the fingerprint of its key, as
/// `ssh-keygen` gives. `None` when the text is not a public key.
pub fn fingerprint_sha256(base64_blob: &str) -> Option<String> {
    let blob = STANDARD.decode(base64_blob.trim()).ok()?;
    let plain = certified_key(&blob);
    let key = ssh_key::PublicKey::from_bytes(plain.as_deref().unwrap_or(&blob)).ok()?;
    // ssh-key hashes the key's wire encoding and prints it as ssh-keygen does.
    Some(key.fingerprint(ssh_key::HashAlg::Sha256).to_string())
}

/// The plain key blob inside an OpenSSH certificate blob, `None` when `blob`
/// is not a certificate. (ssh-key 0.6 refuses to decode certificates valid
/// "forever", which ssh-keygen makes by default, so this reads the few
/// fields it needs itself: type, nonce, then the key's own fields.)
fn certified_key(blob: &[u8]) -> Option<Vec<u8>> {
    fn string<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let field = rest.get(4..4usize.checked_add(len)?)?;
        *rest = &rest[4 + len..];
        Some(field)
    }
    let mut rest = blob;
    let cert_type = std::str::from_utf8(string(&mut rest)?).ok()?;
    let plain_type = cert_type.strip_suffix("-cert-v01@openssh.com")?;
    let fields = match plain_type {
        "ssh-ed25519" => 1,
        "ssh-rsa" | "sk-ssh-ed25519@openssh.com" => 2,
        "sk-ecdsa-sha2-nistp256@openssh.com" => 3,
        "ssh-dss" => 4,
        t if t.starts_with("ecdsa-sha2-") => 2,
        _ => return None,
    };
    string(&mut rest)?; // nonce
    let mut plain = Vec::new();
    plain.extend_from_slice(&(plain_type.len() as u32).to_be_bytes());
    plain.extend_from_slice(plain_type.as_bytes());
    for _ in 0..fields {
        let field = string(&mut rest)?;
        plain.extend_from_slice(&(field.len() as u32).to_be_bytes());
        plain.extend_from_slice(field);
    }
    Some(plain)
}

// ---------------------------------------------------------------------------
// Parsing

/// Reads a line as `hostfile.c` does. A key type not in OpenSSH's list makes
/// the line unreadable (kept as opaque text), as do the legacy SSH-1
/// `bits exponent modulus` lines.
fn parse_line(text: &str) -> HostLineKind {
    let s = text.as_bytes();
    let mut i = skip_space(s, 0);
    if i == s.len() {
        return HostLineKind::Blank;
    }
    if s[i] == b'#' {
        return HostLineKind::Comment;
    }
    let mut annotation = None;
    while s.get(i) == Some(&b'@') {
        if annotation.is_some() {
            return HostLineKind::Invalid;
        }
        let rest = &text[i..];
        let (found, len) = if rest.starts_with(CA_MARKER) {
            (Annotation::CertAuthority, CA_MARKER.len())
        } else if rest.starts_with(REVOKED_MARKER) {
            (Annotation::Revoked, REVOKED_MARKER.len())
        } else {
            return HostLineKind::Invalid;
        };
        if !s.get(i + len).is_some_and(|&b| is_space(b)) {
            return HostLineKind::Invalid;
        }
        annotation = Some(found);
        i = skip_space(s, i + len);
    }
    let hosts_end = field_end(s, i);
    if hosts_end == i {
        return HostLineKind::Invalid;
    }
    let hosts = &text[i..hosts_end];
    let Some(fields) = key_fields(text, skip_space(s, hosts_end)) else {
        return HostLineKind::Invalid;
    };
    HostLineKind::Entry(HostEntry {
        annotation,
        hosts: hosts.to_owned(),
        key_type: fields.key_type.to_owned(),
        base64: fields.base64.to_owned(),
        comment: fields.comment.map(str::to_owned),
    })
}

// ---------------------------------------------------------------------------
// Matching, after OpenSSH's hostfile.c and match.c

/// The salt of a hashed name `|1|salt|hash`, when it is one (OpenSSH's
/// `extract_salt`: the salt must decode to 20 bytes).
fn hashed_salt(hosts: &str) -> Option<[u8; 20]> {
    let rest = hosts.strip_prefix(HASH_MAGIC)?;
    let (salt, _) = rest.split_once('|')?;
    STANDARD.decode(salt).ok()?.try_into().ok()
}

/// OpenSSH's `match_pattern_list` with lowercasing: true when some pattern
/// matches and no negated one does. `name` must already be lowercase.
fn match_pattern_list(name: &[u8], list: &[u8]) -> bool {
    // OpenSSH copies each pattern into a 1024-byte buffer and gives up on the
    // whole list at one that does not fit.
    const MAX_PATTERN: usize = 1023;
    let mut positive = false;
    let mut i = 0;
    while i < list.len() {
        let negated = list[i] == b'!';
        if negated {
            i += 1;
        }
        let start = i;
        while i < list.len() && list[i] != b',' {
            i += 1;
        }
        if i - start >= MAX_PATTERN {
            return false;
        }
        let pattern = list[start..i].to_ascii_lowercase();
        if i < list.len() {
            i += 1; // the comma
        }
        if glob(name, &pattern) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// OpenSSH's `match_pattern`: `*` matches any run of bytes, `?` one byte,
/// anything else itself.
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}
