//! Lossless line-by-line reading and surgical editing of the OpenSSH files
//! trustmesh writes into, whatever their format.
//!
//! `authorized_keys` and `known_hosts` belong to their user first and to
//! trustmesh second, and trustmesh must treat both the same way: read every
//! byte back as it was (blank and `#` lines, CRLF and LF mixed line by line,
//! a missing final newline, lines it cannot read), recognise its own lines by
//! their whole comment being the marker `trustmesh:<cluster>/<node>`, and
//! change a file only by removing such lines and appending new ones. Only how one line is read
//! differs between the two formats. This module holds what is the same, once,
//! so that the two cannot drift apart:
//!
//! * [`LineFile`] is a file as a list of [`Line`]s, each with its exact text
//!   and [`LineEnding`]; [`LineFile::parse`] never fails and
//!   [`LineFile::render`] gives back exactly the text it was given.
//! * A format says how it reads a line by implementing [`LineKind`] for the type
//!   that tells what a line holds; that type also names the node of the
//!   trustmesh marker of a managed line (see [`Marker`]).
//! * [`LineFile::apply_edits`] is the only way to change a file: it removes
//!   managed lines and appends new managed lines at the end, refuses anything
//!   else with an [`EditError`], and leaves the bytes of every kept line
//!   alone.
//!
//! Both formats also end a key line the same way, `keytype base64
//! [comment]` with fields separated by spaces or tabs; the crate-internal
//! helpers at the end of this module read that part.
//!
//! This module uses only `std`.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;

/// The prefix of the marker of a line written by trustmesh: the whole
/// comment of a managed line is `trustmesh:<cluster>/<node>` (see
/// [`Marker`]), where `<cluster>` and `<node>` match
/// `[A-Za-z0-9][A-Za-z0-9._-]*`.
pub const MARKER_PREFIX: &str = "trustmesh:";

/// How one line of the file ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineEnding {
    /// `\n`
    Lf,
    /// `\r\n`
    CrLf,
    /// Nothing: the last line of a file without a final newline.
    Missing,
}

impl LineEnding {
    /// The bytes of this ending.
    pub fn as_str(self) -> &'static str {
        match self {
            LineEnding::Lf => "\n",
            LineEnding::CrLf => "\r\n",
            LineEnding::Missing => "",
        }
    }
}

/// What one line of a file format holds, and how a line is read into it.
///
/// Implemented by the line kind of each format
/// ([`authorized_keys::KeyLineKind`](crate::formats::authorized_keys::KeyLineKind),
/// [`known_hosts::HostLineKind`](crate::formats::known_hosts::HostLineKind)).
pub trait LineKind: Sized {
    /// The file's name in messages, e.g. `authorized_keys`.
    const FILE: &'static str;
    /// What a line trustmesh adds is, in messages, e.g. `key line`.
    const ENTRY: &'static str;

    /// What a readable line of this format holds (a key line, a host key
    /// entry).
    type Record: Record;

    /// Reads one line, given without its ending. Never fails: what cannot be
    /// read must still be some kind (kept as opaque text).
    fn classify(text: &str) -> Self;

    /// The record, when this line holds one.
    fn record(&self) -> Option<&Self::Record>;

    /// The trustmesh marker when a line of this kind is one trustmesh
    /// wrote (its whole comment is a marker), `None` for every other line.
    fn marker(&self) -> Option<Marker<'_>> {
        self.record().and_then(Record::marker)
    }
}

/// A line's record: it may end in a comment, and a line is trustmesh's
/// when that whole comment is a marker.
pub trait Record {
    /// Everything after the record's last field, trimmed; `None` when
    /// empty.
    fn comment(&self) -> Option<&str>;

    /// The trustmesh marker this record's whole comment is, if it is one.
    fn marker(&self) -> Option<Marker<'_>> {
        Marker::parse(self.comment()?)
    }
}

/// Whose line it is: the whole comment of a line trustmesh wrote,
/// `trustmesh:<cluster>/<node>`. A comment that only mentions a marker
/// among other words is not one: such a line is someone else's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Marker<'a> {
    /// `None`: a marker written before clusters were named
    /// (`trustmesh:<node>`), migrated by the planner once.
    pub cluster: Option<&'a str>,
    pub node: &'a str,
}

impl<'a> Marker<'a> {
    pub fn new(cluster: &'a str, node: &'a str) -> Marker<'a> {
        Marker {
            cluster: Some(cluster),
            node,
        }
    }

    /// The marker a comment is, if it is one (trailing blanks aside).
    pub fn parse(comment: &'a str) -> Option<Marker<'a>> {
        let rest = comment
            .trim_end_matches([' ', '\t'])
            .strip_prefix(MARKER_PREFIX)?;
        match rest.split_once('/') {
            Some((cluster, node)) => {
                (is_node_name(cluster) && is_node_name(node)).then_some(Marker {
                    cluster: Some(cluster),
                    node,
                })
            }
            None => is_node_name(rest).then_some(Marker {
                cluster: None,
                node: rest,
            }),
        }
    }
}

impl fmt::Display for Marker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cluster {
            Some(c) => write!(f, "{MARKER_PREFIX}{c}/{}", self.node),
            None => write!(f, "{MARKER_PREFIX}{}", self.node),
        }
    }
}

/// A parsed file: its lines, in order, each with the exact text and ending
/// it had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFile<K> {
    lines: Vec<Line<K>>,
}

/// One line of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line<K> {
    text: String,
    ending: LineEnding,
    kind: K,
}

/// Why [`LineFile::apply_edits`] refused an edit. Nothing is changed when it
/// does. `K` only picks the words of the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError<K> {
    /// `remove` named a line index past the end of the file.
    NoSuchLine(usize),
    /// `remove` named a line without the trustmesh marker; such lines are
    /// never changed.
    Unmanaged(usize),
    /// `add[i]` is not one line carrying the trustmesh marker.
    BadAddedLine(usize),
    /// A line replaced in place (`--adopt`) does not exist, or its new text
    /// is not one line carrying the trustmesh marker.
    BadReplacement(usize),
    /// Never made: it only carries `K`.
    #[doc(hidden)]
    Never(Infallible, PhantomData<fn() -> K>),
}

impl<K: LineKind> fmt::Display for EditError<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = K::FILE;
        match self {
            EditError::NoSuchLine(i) => write!(f, "{file} has no line {}", i + 1),
            EditError::Unmanaged(i) => write!(
                f,
                "refusing to remove line {} of {file}: it was not written by trustmesh",
                i + 1
            ),
            EditError::BadAddedLine(i) => write!(
                f,
                "new {file} line #{} is not a single {} carrying a {MARKER_PREFIX} marker",
                i + 1,
                K::ENTRY
            ),
            EditError::BadReplacement(i) => write!(
                f,
                "line {} of {file} cannot be taken over: its new text is not a single {} carrying a \
                 {MARKER_PREFIX} marker",
                i + 1,
                K::ENTRY
            ),
            EditError::Never(never, _) => match *never {},
        }
    }
}

impl<K: LineKind + fmt::Debug> std::error::Error for EditError<K> {}

impl<K: LineKind> LineFile<K> {
    /// The lines holding a record, with their indices, in file order.
    pub fn records(&self) -> impl Iterator<Item = (usize, &K::Record)> + '_ {
        self.lines()
            .iter()
            .enumerate()
            .filter_map(|(i, line)| line.kind().record().map(|r| (i, r)))
    }

    /// Reads a file. Never fails: what cannot be read is kept as whatever
    /// [`LineKind::classify`] makes of it.
    pub fn parse(text: &str) -> Self {
        let lines = split_lines(text)
            .into_iter()
            .map(|(text, ending)| Line {
                text: text.to_owned(),
                ending,
                kind: K::classify(text),
            })
            .collect();
        LineFile { lines }
    }

    /// The file's text, byte for byte what [`parse`](Self::parse) was given.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.text.len() + 2).sum());
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.ending.as_str());
        }
        out
    }

    /// All lines, in file order; indices into this slice are the line
    /// indices that [`apply_edits`](Self::apply_edits) takes.
    pub fn lines(&self) -> &[Line<K>] {
        &self.lines
    }

    /// The file's text after removing the managed lines at the indices in
    /// `remove` and appending the lines in `add` (each without its newline).
    ///
    /// Every kept line keeps its bytes, its ending and its place. New lines
    /// go at the end, each ending with the file's dominant line ending (CRLF
    /// when more lines end in CRLF than in LF, else LF); when the last kept
    /// line had no newline, it gets one first. Duplicate indices in `remove`
    /// count once. Errors when an index is out of range or names an
    /// unmanaged line, or when a line of `add` holds a line break or is not
    /// a managed line once read ([`LineKind::classify`], [`LineKind::marker`]).
    pub fn apply_edits(&self, remove: &[usize], add: &[String]) -> Result<String, EditError<K>> {
        self.apply_edits_on_request(remove, &[], add)
    }

    /// [`apply_edits`](Self::apply_edits), also removing the unmanaged lines
    /// of `by_request`: only ever lines an operator asked by name to have
    /// removed (`--remove-stale-host-keys`), each shown in the plan first.
    pub fn apply_edits_on_request(
        &self,
        remove: &[usize],
        by_request: &[usize],
        add: &[String],
    ) -> Result<String, EditError<K>> {
        self.apply_edits_replacing(remove, by_request, &[], add)
    }

    /// [`apply_edits_on_request`](Self::apply_edits_on_request), also
    /// replacing lines in place: each `(index, text)` of `replace` is a line
    /// taken over (`--adopt`, shown in the plan first), whose new text must
    /// be one managed line; it keeps its place and its ending.
    pub fn apply_edits_replacing(
        &self,
        remove: &[usize],
        by_request: &[usize],
        replace: &[(usize, String)],
        add: &[String],
    ) -> Result<String, EditError<K>> {
        let mut removed = vec![false; self.lines.len()];
        for &i in remove {
            let line = self.lines.get(i).ok_or(EditError::NoSuchLine(i))?;
            if line.marker().is_none() {
                return Err(EditError::Unmanaged(i));
            }
            removed[i] = true;
        }
        for &i in by_request {
            self.lines.get(i).ok_or(EditError::NoSuchLine(i))?;
            removed[i] = true;
        }
        for (i, new) in add.iter().enumerate() {
            // A line trustmesh adds carries a cluster's marker.
            let managed = !new.contains(['\n', '\r'])
                && K::classify(new)
                    .marker()
                    .is_some_and(|m| m.cluster.is_some());
            if !managed {
                return Err(EditError::BadAddedLine(i));
            }
        }

        let mut text: Vec<&str> = self.lines.iter().map(|l| l.text.as_str()).collect();
        for (i, new) in replace {
            let managed = !new.contains(['\n', '\r'])
                && K::classify(new)
                    .marker()
                    .is_some_and(|m| m.cluster.is_some());
            match text.get_mut(*i) {
                Some(t) if managed && !removed[*i] => *t = new,
                _ => return Err(EditError::BadReplacement(*i)),
            }
        }

        let ending = dominant_ending(self.lines.iter().map(|l| l.ending));
        let mut out = String::new();
        let mut last_ending = LineEnding::Lf;
        for ((line, text), _) in self
            .lines
            .iter()
            .zip(text)
            .zip(&removed)
            .filter(|(_, &gone)| !gone)
        {
            out.push_str(text);
            out.push_str(line.ending.as_str());
            last_ending = line.ending;
        }
        if !add.is_empty() && last_ending == LineEnding::Missing {
            out.push_str(ending.as_str());
        }
        for new in add {
            out.push_str(new);
            out.push_str(ending.as_str());
        }
        Ok(out)
    }
}

impl<K> Line<K> {
    /// The line's text, without its ending.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How the line ended.
    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    /// What the line holds.
    pub fn kind(&self) -> &K {
        &self.kind
    }
}

impl<K: LineKind> Line<K> {
    /// The node named by the trustmesh marker, when this is a managed line.
    pub fn marker(&self) -> Option<Marker<'_>> {
        self.kind.marker()
    }
}

/// Whether `s` can be the node of a marker: `[A-Za-z0-9][A-Za-z0-9._-]*`.
pub fn is_node_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

/// A file as lines, each without its ending, and the ending.
pub(crate) fn split_lines(text: &str) -> Vec<(&str, LineEnding)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                let line = &rest[..i];
                match line.strip_suffix('\r') {
                    Some(body) => out.push((body, LineEnding::CrLf)),
                    None => out.push((line, LineEnding::Lf)),
                }
                rest = &rest[i + 1..];
            }
            None => {
                out.push((rest, LineEnding::Missing));
                break;
            }
        }
    }
    out
}

fn dominant_ending(endings: impl Iterator<Item = LineEnding>) -> LineEnding {
    let (mut crlf, mut lf) = (0usize, 0usize);
    for e in endings {
        match e {
            LineEnding::CrLf => crlf += 1,
            LineEnding::Lf => lf += 1,
            LineEnding::Missing => {}
        }
    }
    if crlf > lf {
        LineEnding::CrLf
    } else {
        LineEnding::Lf
    }
}

// ---------------------------------------------------------------------------
// The `keytype base64 [comment]` end of a key line, as both formats write it

/// Key types OpenSSH accepts in `authorized_keys` and `known_hosts` (plain
/// keys and certificates). Anything else in the key-type position makes the
/// line unreadable (kept as opaque text).
pub(crate) const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
];

/// The fields read by [`key_fields`], borrowed from the line.
pub(crate) struct KeyFields<'a> {
    pub(crate) key_type: &'a str,
    pub(crate) base64: &'a str,
    /// Everything after the blob, without the surrounding spaces and tabs
    /// (and a stray trailing `\r`); `None` when empty.
    pub(crate) comment: Option<&'a str>,
}

pub(crate) fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// First index at or after `i` that is not a space or tab.
pub(crate) fn skip_space(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_space(s[i]) {
        i += 1;
    }
    i
}

/// First index at or after `i` that is a space or tab (or the end).
pub(crate) fn field_end(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && !is_space(s[i]) {
        i += 1;
    }
    i
}

/// Reads `keytype base64 [comment]` starting at byte `at` of `text`: a type
/// from [`KEY_TYPES`], then at least one space or tab, then padded base64.
pub(crate) fn key_fields(text: &str, at: usize) -> Option<KeyFields<'_>> {
    let s = text.as_bytes();
    let type_end = field_end(s, at);
    let key_type = &text[at..type_end];
    if !KEY_TYPES.contains(&key_type) {
        return None;
    }
    let blob_start = skip_space(s, type_end);
    if blob_start == type_end {
        return None;
    }
    let blob_end = field_end(s, blob_start);
    let base64 = &text[blob_start..blob_end];
    if !is_base64(base64) {
        return None;
    }
    let comment = text[blob_end..]
        .trim_start_matches([' ', '\t'])
        .trim_end_matches([' ', '\t', '\r']);
    Some(KeyFields {
        key_type,
        base64,
        comment: (!comment.is_empty()).then_some(comment),
    })
}

/// Padded standard base64, as OpenSSH writes key blobs.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
