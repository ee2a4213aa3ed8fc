//! Lossless reading and surgical editing of OpenSSH `authorized_keys` files.
//!
//! An `authorized_keys` file belongs to its user first and to trustmesh
//! second. Users complain, with reason, about tools that rewrite it: lines
//! reordered, comments dropped, CRLF turned into LF, keys the tool never
//! added wiped. This module exists so that trustmesh can never do any of that.
//!
//! * [`AuthorizedKeysFile::parse`] never fails and keeps every byte:
//!   [`AuthorizedKeysFile::render`] gives back exactly the text it was given,
//!   whatever it holds (blank and `#` lines, CRLF and LF mixed line by line, a
//!   missing final newline, leading whitespace, lines it cannot read, which
//!   are kept as opaque text).
//! * A line is *managed* when it is a key line whose whole comment is a
//!   trustmesh marker, `trustmesh:<cluster>/<node>` ([`Marker`]), `<node>`
//!   being the node the key comes from. Every other line is *unmanaged*,
//!   a line that merely mentions a marker among other words included.
//! * [`AuthorizedKeysFile::apply_edits`] is the only way to change a file: it
//!   removes managed lines and appends new managed lines at the end. It
//!   refuses to remove an unmanaged line or to add a line without the marker,
//!   and leaves the bytes of every line it keeps untouched.
//!
//! The line format is OpenSSH's (`sshd(8)`, AUTHORIZED_KEYS FILE FORMAT):
//! `[options] keytype base64 [comment]`, fields separated by spaces or tabs.
//! As `sshd` does, a line is first read as a key; when that fails, its first
//! field is taken as the options, which end at the first space or tab outside
//! double quotes (`\"` inside quotes does not end them), and the rest is read
//! as a key.
//!
//! Keeping the bytes, the marker and the edit rule are the same for
//! `known_hosts`, so they live in [`crate::formats::lines`]; this module says how an
//! `authorized_keys` line is read ([`KeyLineKind`], [`KeyLine`]). It uses only
//! `std` and that module, so the two can be tested and moved together.

use std::ops::Range;

// The tests try every key type.
#[cfg(test)]
use crate::formats::lines::KEY_TYPES;
use crate::formats::lines::{self, is_space, key_fields, skip_space, LineKind, Marker};
pub use crate::formats::lines::{LineEnding, MARKER_PREFIX};

/// A parsed `authorized_keys` file: its lines, in order, each with the exact
/// text and ending it had. Key lines are listed by
/// [`keys`](lines::LineFile::keys).
pub type AuthorizedKeysFile = lines::LineFile<KeyLineKind>;

/// One line of the file.
pub type KeyFileLine = lines::Line<KeyLineKind>;

/// Why [`AuthorizedKeysFile::apply_edits`] refused an edit. Nothing is
/// changed when it does. [`BadAddedLine`](lines::EditError::BadAddedLine)
/// means the new line is not one key line carrying the trustmesh marker.
pub type KeyFileEditError = lines::EditError<KeyLineKind>;

/// What a line holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLineKind {
    /// Empty or only spaces and tabs.
    Blank,
    /// First non-blank character is `#`.
    Comment,
    /// A key that `sshd` could read.
    Key(KeyLine),
    /// Anything else; kept byte for byte and never touched.
    Invalid,
}

/// The fields of a key line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyLine {
    options: Option<String>,
    key_type: String,
    base64: String,
    comment: Option<String>,
}

impl LineKind for KeyLineKind {
    const FILE: &'static str = "authorized_keys";
    const ENTRY: &'static str = "key line";
    type Record = KeyLine;

    fn classify(text: &str) -> Self {
        parse_line(text)
    }

    /// A line is managed when it is a key whose comment has the marker.
    fn record(&self) -> Option<&KeyLine> {
        match self {
            KeyLineKind::Key(k) => Some(k),
            _ => None,
        }
    }
}

impl lines::Record for KeyLine {
    fn comment(&self) -> Option<&str> {
        self.comment()
    }
}

impl AuthorizedKeysFile {
    /// The key lines with their line indices, in file order.
    pub fn keys(&self) -> impl Iterator<Item = (usize, &KeyLine)> + '_ {
        self.records()
    }
}

impl KeyFileLine {
    /// The key, when this is a key line.
    pub fn key(&self) -> Option<&KeyLine> {
        self.kind().record()
    }
}

impl KeyLine {
    /// The options field as written (`command="a,b c",restrict`), if any.
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
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

    /// `(key_type, base64)`: what identifies the key, whatever its options
    /// and comment.
    pub fn key_id(&self) -> (&str, &str) {
        (&self.key_type, &self.base64)
    }
}

/// The line trustmesh writes for a key: `keytype base64 <marker>`, the
/// marker (`trustmesh:<cluster>/<node>`) being its whole comment.
pub fn managed_line(key_type: &str, base64: &str, marker: &str) -> String {
    format!("{key_type} {base64} {marker}")
}

/// [`managed_line`] with an options field in front (see
/// [`crate::formats::key_options`]).
pub fn managed_line_with(
    options: Option<&str>,
    key_type: &str,
    base64: &str,
    marker: &str,
) -> String {
    match options {
        Some(o) => format!("{o} {key_type} {base64} {marker}"),
        None => managed_line(key_type, base64, marker),
    }
}

// ---------------------------------------------------------------------------
// Parsing

fn parse_line(text: &str) -> KeyLineKind {
    let s = text.as_bytes();
    let start = skip_space(s, 0);
    if start == s.len() {
        return KeyLineKind::Blank;
    }
    if s[start] == b'#' {
        return KeyLineKind::Comment;
    }
    if let Some(key) = parse_key(text, start, None) {
        return KeyLineKind::Key(key);
    }
    // Not a key: the first field is options, ending at the first space or
    // tab outside double quotes, as sshd reads them.
    let mut i = start;
    let mut quoted = false;
    while i < s.len() && (quoted || !is_space(s[i])) {
        if s[i] == b'\\' && s.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if s[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    let options = start..i;
    let key_start = skip_space(s, i);
    if key_start == i {
        return KeyLineKind::Invalid;
    }
    match parse_key(text, key_start, Some(options)) {
        Some(key) => KeyLineKind::Key(key),
        None => KeyLineKind::Invalid,
    }
}

/// Reads `keytype base64 [comment]` starting at `at`.
fn parse_key(text: &str, at: usize, options: Option<Range<usize>>) -> Option<KeyLine> {
    let fields = key_fields(text, at)?;
    Some(KeyLine {
        options: options.map(|r| text[r].to_owned()),
        key_type: fields.key_type.to_owned(),
        base64: fields.base64.to_owned(),
        comment: fields.comment.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::lines::testing::{
        self, any_file, check_edit, check_never_touches_unmanaged,
    };
    use crate::formats::lines::Marker;
    use proptest::prelude::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILR3a5jM8SZ8lYOJdn7V/F7IREASeVBrlnE+CfwVv2LW";
    const ED2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDbiVPwlZPk7ivrV8BfAFc3rIXgiA1O/n9RN36cU/M6w";
    const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBustzGFH75bX3JlOAeNjaRfUMM7I+SH0l4cM/5PqkDbhkCpW83ucxPafcfX9gVDGfG8DJ8/wpqjDxTCx3ZtegA=";
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFk76p7DRI+svLhLRUxDHIEITLy9uHF0s+3O6h/BJXHzZz2omj7XKrmhHO8gEQ8hzTWj0bflA2IWKtvajgbI8iIJ9RY18DvhiuW6+f/ilIQ6pHupWHBDn2LK7UtBVeCNxJFmCygAYm/BtAJzA70mdnnplxF1bXtrmhBUhoV/KHNQ==";

    fn roundtrip(text: &str) -> AuthorizedKeysFile {
        testing::roundtrip(text)
    }

    fn only_key(text: &str) -> KeyLine {
        testing::only_record::<KeyLineKind>(text)
    }

    #[test]
    fn hostile_file_round_trips_with_fields() {
        let long_comment = "c".repeat(8 * 1024);
        let long_blob = "AAAA".repeat(2048);
        let long_command = format!("command=\"{}\"", "echo x, y;".repeat(800));
        let text = format!(
            "# keys of alice\r\n\
             \n\
             \t \r\n\
             ssh-ed25519 {ED}\n\
             ssh-ed25519 {ED} alice@laptop\r\n\
             \u{20}  ssh-ed25519 {ED} leading space\n\
             command=\"echo a,b c\",from=\"10.0.0.0/8\",restrict ssh-ed25519 {ED} c\n\
             ecdsa-sha2-nistp256\t{EC}\tsome comment with  spaces\t\n\
             ssh-rsa {RSA} {long_comment}\n\
             ssh-rsa {long_blob} big\r\n\
             {long_command} ssh-ed25519 {ED2} long options\n\
             this is not a key\n\
             ssh-ed25519 not-base64!\n\
             ssh-ed25519\n\
             command=\"unterminated ssh-ed25519 {ED}\n\
             ünïcödé ☃ \u{0}\u{7f} garbage\r\n\
             ssh-ed25519 {ED2} trustmesh:node1\n\
             ssh-ed25519 {ED} user@host trustmesh:node-2.a_b more\r\n\
             \x20\x20# indented comment\n\
             ssh-ed25519 {ED} no final newline trustmesh:last"
        );
        let file = roundtrip(&text);
        let l = file.lines();
        assert_eq!(l.len(), 20);
        assert_eq!(l[0].kind(), &KeyLineKind::Comment);
        assert_eq!(l[0].ending(), LineEnding::CrLf);
        assert_eq!(l[1].kind(), &KeyLineKind::Blank);
        assert_eq!(l[1].ending(), LineEnding::Lf);
        assert_eq!(l[2].kind(), &KeyLineKind::Blank);

        let k = l[3].key().unwrap();
        assert_eq!(
            (k.options(), k.key_id(), k.comment()),
            (None, ("ssh-ed25519", ED), None)
        );
        let k = l[4].key().unwrap();
        assert_eq!(k.comment(), Some("alice@laptop"));
        assert_eq!(l[4].ending(), LineEnding::CrLf);
        assert_eq!(l[5].key().unwrap().comment(), Some("leading space"));

        let k = l[6].key().unwrap();
        assert_eq!(
            k.options(),
            Some("command=\"echo a,b c\",from=\"10.0.0.0/8\",restrict")
        );
        assert_eq!(k.key_id(), ("ssh-ed25519", ED));
        assert_eq!(k.comment(), Some("c"));

        let k = l[7].key().unwrap();
        assert_eq!(k.key_id(), ("ecdsa-sha2-nistp256", EC));
        assert_eq!(k.comment(), Some("some comment with  spaces"));

        assert_eq!(l[8].key().unwrap().comment(), Some(long_comment.as_str()));
        assert_eq!(l[9].key().unwrap().base64(), long_blob);
        let k = l[10].key().unwrap();
        assert_eq!(k.options(), Some(long_command.as_str()));
        assert_eq!(k.key_id(), ("ssh-ed25519", ED2));

        for line in &l[11..=15] {
            assert_eq!(line.kind(), &KeyLineKind::Invalid, "{:?}", line.text());
        }
        // An old marker (before clusters) is still a marker.
        assert_eq!(
            l[16].marker().map(|m| (m.cluster, m.node)),
            Some((None, "node1"))
        );
        // A comment that only mentions a marker is not one.
        assert_eq!(l[17].marker(), None);
        assert_eq!(
            l[17].key().unwrap().comment(),
            Some("user@host trustmesh:node-2.a_b more")
        );
        assert_eq!(l[18].kind(), &KeyLineKind::Comment);
        assert_eq!(l[19].marker(), None);
        assert_eq!(l[19].ending(), LineEnding::Missing);
        // Only the marked lines are managed.
        let managed: Vec<usize> = (0..l.len()).filter(|&i| l[i].marker().is_some()).collect();
        assert_eq!(managed, vec![16]);
    }

    #[test]
    fn options_quoting() {
        let k = only_key(&format!(
            "command=\"echo \\\"hi there\\\"\",no-pty ssh-ed25519 {ED} c"
        ));
        assert_eq!(
            k.options(),
            Some("command=\"echo \\\"hi there\\\"\",no-pty")
        );
        assert_eq!(k.comment(), Some("c"));

        // A key type inside quoted options is part of the options.
        let k = only_key(&format!(
            "command=\"ssh-ed25519 {ED2} x\"\tssh-ed25519 {ED}"
        ));
        assert_eq!(
            k.options(),
            Some(&*format!("command=\"ssh-ed25519 {ED2} x\""))
        );
        assert_eq!(k.key_id(), ("ssh-ed25519", ED));

        // A marker inside the options is not a marker.
        let k = only_key(&format!("command=\"trustmesh:evil\" ssh-ed25519 {ED} user"));
        assert_eq!(k.marker(), None);

        // Every key type is recognised, options or not.
        for t in KEY_TYPES {
            let k = only_key(&format!("restrict {t} {ED}"));
            assert_eq!(k.key_type(), *t);
            assert_eq!(k.options(), Some("restrict"));
            assert_eq!(only_key(&format!("{t} {ED}")).options(), None);
        }
    }

    #[test]
    fn markers() {
        // (comment, the node of its marker): a marker is the whole comment.
        let cases = [
            ("trustmesh:lab/node1", Some("node1")),
            ("trustmesh:lab/N-1.2_3 \t", Some("N-1.2_3")),
            ("trustmesh:node1", Some("node1")),
            ("a trustmesh:lab/n b", None),
            ("x\ttrustmesh:lab/n", None),
            ("alice laptop, set up like trustmesh:w09", None),
            ("trustmesh:", None),
            ("trustmesh:lab/-node", None),
            ("trustmesh:lab/.node", None),
            ("trustmesh:lab/node,x", None),
            ("trustmesh:lab/nöde", None),
            ("xtrustmesh:lab/node", None),
            ("Trustmesh:lab/node", None),
        ];
        for (comment, want) in cases {
            let k = only_key(&format!("ssh-ed25519 {ED} {comment}"));
            assert_eq!(k.marker().map(|m| m.node), want, "{comment:?}");
        }
        assert_eq!(
            managed_line("ssh-ed25519", ED, "trustmesh:lab/node1"),
            format!("ssh-ed25519 {ED} trustmesh:lab/node1")
        );
        assert_eq!(
            only_key(&managed_line("ssh-rsa", RSA, "trustmesh:lab/n")).marker(),
            Some(Marker::new("lab", "n"))
        );
    }

    #[test]
    fn apply_edits_removes_and_appends() {
        let text = format!(
            "# mine\r\nssh-ed25519 {ED} trustmesh:old\r\nssh-rsa {RSA} me\r\nssh-ed25519 {ED2} trustmesh:keep"
        );
        let file = roundtrip(&text);
        let out = file
            .apply_edits(
                &[1, 1],
                &[managed_line("ssh-ed25519", ED2, "trustmesh:c/new")],
            )
            .unwrap();
        assert_eq!(
            out,
            format!(
                "# mine\r\nssh-rsa {RSA} me\r\nssh-ed25519 {ED2} trustmesh:keep\r\nssh-ed25519 {ED2} trustmesh:c/new\r\n"
            )
        );
        // Nothing to do: same bytes, missing final newline included.
        assert_eq!(file.apply_edits(&[], &[]).unwrap(), text);
        // Removing the last line leaves the previous ending alone.
        assert_eq!(
            file.apply_edits(&[3], &[]).unwrap(),
            format!("# mine\r\nssh-ed25519 {ED} trustmesh:old\r\nssh-rsa {RSA} me\r\n")
        );
        // LF dominant.
        let file = roundtrip("a\nb\nc\r\n");
        assert_eq!(
            file.apply_edits(&[], &[managed_line("ssh-ed25519", ED, "trustmesh:c/n")])
                .unwrap(),
            format!("a\nb\nc\r\nssh-ed25519 {ED} trustmesh:c/n\n")
        );
        // Empty file.
        let file = roundtrip("");
        assert_eq!(
            file.apply_edits(&[], &[managed_line("ssh-ed25519", ED, "trustmesh:c/n")])
                .unwrap(),
            format!("ssh-ed25519 {ED} trustmesh:c/n\n")
        );
    }

    #[test]
    fn apply_edits_refuses() {
        let file = roundtrip(&format!(
            "ssh-ed25519 {ED} me\nssh-ed25519 {ED} trustmesh:n\n# c\n"
        ));
        assert_eq!(
            file.apply_edits(&[0], &[]),
            Err(KeyFileEditError::Unmanaged(0))
        );
        assert_eq!(
            file.apply_edits(&[2], &[]),
            Err(KeyFileEditError::Unmanaged(2))
        );
        assert_eq!(
            file.apply_edits(&[1, 3], &[]),
            Err(KeyFileEditError::NoSuchLine(3))
        );
        let bad = [
            format!("ssh-ed25519 {ED} no-marker"),
            "# trustmesh:n".to_owned(),
            format!("ssh-ed25519 {ED} trustmesh:n\nssh-ed25519 {ED} evil"),
            format!("ssh-ed25519 {ED} trustmesh:n\r"),
            "garbage trustmesh:n".to_owned(),
        ];
        for (i, b) in bad.iter().enumerate() {
            let add = vec![managed_line("ssh-ed25519", ED, "trustmesh:c/ok"), b.clone()];
            assert_eq!(
                file.apply_edits(&[], &add),
                Err(KeyFileEditError::BadAddedLine(1)),
                "case {i}"
            );
        }
        assert!(KeyFileEditError::Unmanaged(0)
            .to_string()
            .contains("line 1"));
    }

    /// Text made of the pieces that make parsers stumble.
    fn hostile_text() -> impl Strategy<Value = String> {
        crate::formats::lines::testing::hostile_text(&[
            "ssh-rsa",
            "\"",
            "\\\"",
            "=",
            ED,
            "AAAA",
            "command=\"a b,c\"",
        ])
    }

    /// One line of a file, as (text, is_managed).
    fn any_line() -> impl Strategy<Value = (String, bool)> {
        prop_oneof![
            "[a-z0-9][a-z0-9-]{0,7}".prop_map(|n| (
                managed_line("ssh-ed25519", ED, &format!("trustmesh:c/{n}")),
                true
            )),
            "[a-z0-9][a-z0-9-]{0,7}"
                .prop_map(|n| (format!("from=\"a,b c\" ssh-rsa {RSA} trustmesh:{n}"), true)),
            Just((format!("ssh-ed25519 {ED2} user@host"), false)),
            Just((format!("restrict ssh-ed25519 {ED} trustmesh:"), false)),
            Just(("# trustmesh:node1".to_owned(), false)),
            Just((String::new(), false)),
            Just(("  \t".to_owned(), false)),
            "[^\r\n]{0,20}".prop_map(|s| {
                let managed =
                    matches!(parse_line(&s), KeyLineKind::Key(ref k) if k.marker().is_some());
                (s, managed)
            }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_text_round_trips(text in any::<String>()) {
            let file = AuthorizedKeysFile::parse(&text);
            prop_assert_eq!(file.render(), text);
        }

        #[test]
        fn hostile_text_round_trips(text in hostile_text()) {
            let file = AuthorizedKeysFile::parse(&text);
            prop_assert_eq!(file.render(), text.clone());
            for (_, k) in file.keys() {
                prop_assert!(text.contains(k.base64()));
                prop_assert!(KEY_TYPES.contains(&k.key_type()));
            }
        }

        #[test]
        fn apply_edits_keeps_unmanaged_lines(
            (text, managed) in any_file(any_line()),
            remove_mask in prop::collection::vec(any::<bool>(), 20),
            add_nodes in prop::collection::vec("[a-z][a-z0-9]{0,5}", 0..4),
        ) {
            let add: Vec<String> = add_nodes.iter().map(|n| managed_line("ssh-ed25519", ED2, &format!("trustmesh:c/{n}"))).collect();
            let (file, again) = check_edit::<KeyLineKind>(&text, &managed, &remove_mask, &add)?;
            let unmanaged = |f: &AuthorizedKeysFile| -> Vec<String> {
                f.lines().iter().filter(|l| l.marker().is_none()).map(|l| l.text().to_owned()).collect()
            };
            let mut before = unmanaged(&file);
            let mut after = unmanaged(&again);
            // A final line without newline that ends in '\r' reads back
            // without it once it gets its newline: same bytes.
            if let (Some(b), Some(a)) = (before.last_mut(), after.last_mut()) {
                if b.ends_with('\r') { b.pop(); if a.ends_with('\r') { a.pop(); } }
            }
            prop_assert_eq!(before, after);
            for l in &again.lines()[again.lines().len() - add.len()..] {
                prop_assert!(l.ending() != LineEnding::Missing);
            }
        }

        #[test]
        fn apply_edits_never_touches_unmanaged(text in hostile_text(), idx in 0usize..64) {
            check_never_touches_unmanaged::<KeyLineKind>(&text, idx)?;
        }
    }
}
