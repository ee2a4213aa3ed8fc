//! Marked blocks in files that belong to someone else: `~/.ssh/config`
//! and `/etc/hosts`.
//!
//! trustmesh owns only the lines between its two marker lines,
//! `# BEGIN trustmesh:<cluster>/<node>` and `# END trustmesh:<cluster>/<node>`
//! (inventory-v1, "What the tool owns"). Everything else in the file comes
//! back byte for byte: other lines, their endings (CRLF or LF, line by
//! line), a missing final newline. A new block is written with the file's
//! dominant line ending. A block that is not well formed (a BEGIN without
//! its END, two of them) is never guessed at: it is an error, and the file
//! is left alone.
//!
//! This module only uses `std`; what goes in a block and where a new one is
//! placed is up to the caller ([`crate::formats::ssh_config`], [`crate::formats::hosts_file`]).

use std::fmt;

/// The first line of a block: `# BEGIN <marker>`.
pub fn begin_line(marker: &str) -> String {
    format!("# BEGIN {marker}")
}

/// The last line of a block: `# END <marker>`.
pub fn end_line(marker: &str) -> String {
    format!("# END {marker}")
}

/// Why a file's block cannot be read or edited. Nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// A BEGIN line (1-based) with no END after it.
    Unclosed(usize),
    /// An END line with no BEGIN before it.
    Unopened(usize),
    /// A second BEGIN line.
    Twice(usize),
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlockError::Unclosed(l) => {
                write!(f, "line {l} begins trustmesh's block, which never ends")
            }
            BlockError::Unopened(l) => {
                write!(f, "line {l} ends a trustmesh block that never began")
            }
            BlockError::Twice(l) => write!(f, "line {l} begins trustmesh's block a second time"),
        }
    }
}

impl std::error::Error for BlockError {}

/// One line: (text without its ending, the ending: `\n`, `\r\n` or ``).
pub type RawLine<'a> = (&'a str, &'a str);

/// Where a new block goes, given the file's lines (without the block).
pub type Place<'f> = &'f dyn Fn(&[RawLine<'_>]) -> usize;

/// Whether an existing block may stay where it is, given the lines and the
/// index of its BEGIN line.
pub type KeepAt<'f> = &'f dyn Fn(&[RawLine<'_>], usize) -> bool;

/// A file as lines: (text without ending, ending: `\n`, `\r\n` or ``).
pub fn split(text: &str) -> Vec<(&str, &str)> {
    crate::formats::lines::split_lines(text)
        .into_iter()
        .map(|(line, ending)| (line, ending.as_str()))
        .collect()
}

/// The ending most lines have (`\n` when tied or none).
fn dominant(lines: &[(&str, &str)]) -> &'static str {
    let crlf = lines.iter().filter(|(_, e)| *e == "\r\n").count();
    let lf = lines.iter().filter(|(_, e)| *e == "\n").count();
    if crlf > lf {
        "\r\n"
    } else {
        "\n"
    }
}

fn same(line: &str, want: &str) -> bool {
    line.trim_end_matches([' ', '\t']) == want
}

/// Where the block with `marker` is: (index of its BEGIN line, index of
/// its END line), or `None` when the file has none.
pub fn find(lines: &[(&str, &str)], marker: &str) -> Result<Option<(usize, usize)>, BlockError> {
    let (begin, end) = (begin_line(marker), end_line(marker));
    let mut open: Option<usize> = None;
    let mut found: Option<(usize, usize)> = None;
    for (i, (t, _)) in lines.iter().enumerate() {
        if same(t, &begin) {
            if open.is_some() || found.is_some() {
                return Err(BlockError::Twice(i + 1));
            }
            open = Some(i);
        } else if same(t, &end) {
            match open.take() {
                Some(b) => found = Some((b, i)),
                None => return Err(BlockError::Unopened(i + 1)),
            }
        }
    }
    match open {
        Some(b) => Err(BlockError::Unclosed(b + 1)),
        None => Ok(found),
    }
}

/// The lines between a block's BEGIN and END lines, in order, each
/// without its line ending: what trustmesh owns in someone else's file.
pub type BlockLines = Vec<String>;

/// The lines inside the block with `marker`, if the file has one.
pub fn content(text: &str, marker: &str) -> Result<Option<BlockLines>, BlockError> {
    let lines = split(text);
    Ok(find(&lines, marker)?
        .map(|(b, e)| lines[b + 1..e].iter().map(|(t, _)| t.to_string()).collect()))
}

/// `text` with the block of `marker` holding `inner` (`None`: the block
/// removed). An existing block is replaced where it is, unless `keep_at`
/// says its place is wrong (given the lines and the block's BEGIN index);
/// a new (or moved) block goes before line `place(lines)` (the lines
/// without the block; `lines.len()` for the end). Every other line keeps
/// its bytes.
pub fn set(
    text: &str,
    marker: &str,
    inner: Option<&[String]>,
    place: Place<'_>,
    keep_at: KeepAt<'_>,
) -> Result<String, BlockError> {
    let lines = split(text);
    let eol = dominant(&lines);
    let found = find(&lines, marker)?;
    let block = |out: &mut String, inner: &[String]| {
        out.push_str(&begin_line(marker));
        out.push_str(eol);
        for l in inner {
            out.push_str(l);
            out.push_str(eol);
        }
        out.push_str(&end_line(marker));
        out.push_str(eol);
    };
    let push = |out: &mut String, (t, e): (&str, &str), last: bool| {
        out.push_str(t);
        // A line that had no ending gets one when something follows it.
        out.push_str(if e.is_empty() && !last { eol } else { e });
    };
    let mut out = String::with_capacity(text.len() + 256);
    if let (Some((b, e)), Some(inner)) = (found, inner) {
        if keep_at(&lines, b) {
            for (i, l) in lines.iter().enumerate() {
                if i == b {
                    block(&mut out, inner);
                } else if i < b || i > e {
                    push(&mut out, *l, i + 1 == lines.len());
                }
            }
            return Ok(out);
        }
    }
    // Without the old block, then the new one at its place.
    let rest: Vec<(&str, &str)> = match found {
        Some((b, e)) => lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < b || *i > e)
            .map(|(_, l)| *l)
            .collect(),
        None => lines.clone(),
    };
    let at = inner.map(|_| place(&rest).min(rest.len()));
    for (i, l) in rest.iter().enumerate() {
        if at == Some(i) {
            if let Some(inner) = inner {
                block(&mut out, inner);
            }
        }
        let last = i + 1 == rest.len() && at != Some(rest.len());
        push(&mut out, *l, last);
    }
    if at == Some(rest.len()) {
        if let Some(inner) = inner {
            block(&mut out, inner);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "trustmesh:lab/n1";

    fn end(_: &[(&str, &str)]) -> usize {
        usize::MAX
    }
    fn anywhere(_: &[(&str, &str)], _: usize) -> bool {
        true
    }
    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_new_block_goes_at_the_end_with_the_files_endings() {
        let t = set("a\r\nb\r\nc", M, Some(&lines(&["x"])), &end, &anywhere).unwrap();
        assert_eq!(
            t,
            "a\r\nb\r\nc\r\n# BEGIN trustmesh:lab/n1\r\nx\r\n# END trustmesh:lab/n1\r\n"
        );
        let t = set("", M, Some(&lines(&["x"])), &end, &anywhere).unwrap();
        assert_eq!(t, "# BEGIN trustmesh:lab/n1\nx\n# END trustmesh:lab/n1\n");
    }

    #[test]
    fn an_existing_block_is_replaced_in_place_and_removed_cleanly() {
        let old = "a\n# BEGIN trustmesh:lab/n1\nold\n# END trustmesh:lab/n1\r\nb";
        let t = set(old, M, Some(&lines(&["new", "two"])), &end, &anywhere).unwrap();
        assert_eq!(
            t,
            "a\n# BEGIN trustmesh:lab/n1\nnew\ntwo\n# END trustmesh:lab/n1\nb"
        );
        assert_eq!(content(&t, M).unwrap(), Some(lines(&["new", "two"])));
        assert_eq!(set(old, M, None, &end, &anywhere).unwrap(), "a\nb");
        // Nothing to remove: the text comes back as it was.
        assert_eq!(set("a\r\nb", M, None, &end, &anywhere).unwrap(), "a\r\nb");
    }

    #[test]
    fn other_clusters_blocks_and_broken_blocks() {
        let other = "# BEGIN trustmesh:other/n1\nx\n# END trustmesh:other/n1\n";
        assert_eq!(content(other, M).unwrap(), None);
        let t = set(other, M, None, &end, &anywhere).unwrap();
        assert_eq!(t, other);
        assert_eq!(
            content("# BEGIN trustmesh:lab/n1\nx\n", M),
            Err(BlockError::Unclosed(1))
        );
        assert_eq!(
            content("x\n# END trustmesh:lab/n1\n", M),
            Err(BlockError::Unopened(2))
        );
        let twice = "# BEGIN trustmesh:lab/n1\n# END trustmesh:lab/n1\n# BEGIN trustmesh:lab/n1\n# END trustmesh:lab/n1\n";
        assert_eq!(content(twice, M), Err(BlockError::Twice(3)));
        assert!(set(twice, M, None, &end, &anywhere).is_err());
    }

    #[test]
    fn a_block_in_the_wrong_place_is_moved() {
        let old = "Host a\n# BEGIN trustmesh:lab/n1\nx\n# END trustmesh:lab/n1\n";
        let t = set(old, M, Some(&lines(&["x"])), &|_| 0, &|_, b| b == 0).unwrap();
        assert_eq!(
            t,
            "# BEGIN trustmesh:lab/n1\nx\n# END trustmesh:lab/n1\nHost a\n"
        );
    }
}
