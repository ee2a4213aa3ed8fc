//! Proptest strategies and checks shared by the tests of every line
//! format.

use super::{LineFile, LineKind};
use proptest::prelude::*;
use std::fmt::Debug;

/// Text made of the pieces that make line parsers stumble (line
/// endings, blanks, separators, comment signs, a key type, a marker),
/// with `extra`, a format's own pieces.
pub(crate) fn hostile_text(extra: &[&str]) -> impl Strategy<Value = String> {
    let fixed: Vec<String> = [
        "ssh-ed25519",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\r",
        ",",
        "#",
        "trustmesh:node1",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let piece = prop_oneof![
        8 => prop::sample::select(fixed),
        1 => "[a-zA-Z0-9+/=._-]{0,6}",
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..48).prop_map(|v| v.concat())
}

/// `text` read as a file of format `K`, checked to render back as
/// `text`.
pub(crate) fn roundtrip<K: LineKind>(text: &str) -> LineFile<K> {
    let file = LineFile::parse(text);
    assert_eq!(file.render(), text);
    file
}

/// The record `text`, a file of one line, holds.
pub(crate) fn only_record<K: LineKind>(text: &str) -> K::Record
where
    K::Record: Clone,
{
    let file = roundtrip::<K>(text);
    assert_eq!(file.lines().len(), 1, "{text:?}");
    file.lines()[0]
        .kind()
        .record()
        .unwrap_or_else(|| panic!("not a {}: {text:?}", K::ENTRY))
        .clone()
}

/// A file of up to 20 lines drawn from `line` (a line's text and
/// whether trustmesh wrote it), each ended by LF or CRLF but the last
/// maybe by nothing: the file's text and, line by line, whether the
/// line is managed.
pub(crate) fn any_file(
    line: impl Strategy<Value = (String, bool)>,
) -> impl Strategy<Value = (String, Vec<bool>)> {
    (
        prop::collection::vec((line, prop_oneof![Just("\n"), Just("\r\n")]), 0..20),
        any::<bool>(),
    )
        .prop_map(|(lines, last_newline)| {
            // An empty last line without a newline is no line at all.
            let last_newline = last_newline || lines.last().is_some_and(|l| l.0 .0.is_empty());
            let mut text = String::new();
            for (i, ((t, _), e)) in lines.iter().enumerate() {
                text.push_str(t);
                if last_newline || i + 1 < lines.len() {
                    text.push_str(e);
                }
            }
            (text, lines.into_iter().map(|((_, m), _)| m).collect())
        })
}

/// What `apply_edits` promises for `text`, whose lines are managed as
/// `managed` says: the file reads back as `text`, line by line; removing
/// the managed lines `remove_mask` picks and appending `add` keeps the
/// other lines' bytes first, untouched and in order, and ends with the
/// added lines. Gives the file and the edited file read again.
pub(crate) fn check_edit<K: LineKind + Debug>(
    text: &str,
    managed: &[bool],
    remove_mask: &[bool],
    add: &[String],
) -> Result<(LineFile<K>, LineFile<K>), TestCaseError> {
    let file = LineFile::<K>::parse(text);
    prop_assert_eq!(file.render(), text);
    prop_assert_eq!(file.lines().len(), managed.len());
    let remove: Vec<usize> = (0..managed.len())
        .filter(|&i| managed[i] && remove_mask[i])
        .collect();
    let out = file.apply_edits(&remove, add).unwrap();

    // Byte level: the kept lines, untouched and in order, then the new ones.
    let mut kept = String::new();
    for (i, l) in file.lines().iter().enumerate() {
        if !remove.contains(&i) {
            kept.push_str(l.text());
            kept.push_str(l.ending().as_str());
        }
    }
    prop_assert!(out.starts_with(&kept));
    let again = LineFile::<K>::parse(&out);
    let n = again.lines().len();
    let tail: Vec<&str> = again.lines()[n - add.len()..]
        .iter()
        .map(|l| l.text())
        .collect();
    prop_assert_eq!(tail, add.iter().map(String::as_str).collect::<Vec<_>>());
    Ok((file, again))
}

/// `apply_edits` refuses to remove line `idx` of `text` unless it is
/// there and trustmesh wrote it.
pub(crate) fn check_never_touches_unmanaged<K: LineKind + Debug + PartialEq>(
    text: &str,
    idx: usize,
) -> Result<(), TestCaseError> {
    use super::EditError;
    let file = LineFile::<K>::parse(text);
    let res = file.apply_edits(&[idx], &[]);
    match file.lines().get(idx) {
        None => prop_assert_eq!(res, Err(EditError::NoSuchLine(idx))),
        Some(l) if l.marker().is_none() => {
            prop_assert_eq!(res, Err(EditError::Unmanaged(idx)))
        }
        Some(_) => prop_assert!(res.is_ok()),
    }
    Ok(())
}
