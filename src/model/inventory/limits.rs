//! Caps that keep a hostile or mistaken inventory from costing more than a
//! real one: the file's size, how deeply its YAML nests, how many nodes and
//! trust edges it asks for, and how many problems are reported.
//!
//! Each cap is far above what a real cluster needs (the 10,000-worker
//! benchmark of `benches/plan.rs` plans 1,010,000 edges) and is checked
//! before the work it guards: the size before reading the text, the nesting
//! before serde_yaml parses (libyaml's scanner does work proportional to the
//! nesting for every token, so deep nesting costs quadratic time), the edge
//! count before the graph is built.

use yaml_rust2::parser::{Event, Parser};

/// Largest inventory file read, in bytes (8 MiB; a 10,000-worker inventory
/// is about 0.6 MiB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Deepest nesting of lists and mappings (a real inventory nests 4 deep).
pub const MAX_DEPTH: usize = 64;

/// Most nodes (manager, bastions and workers together).
pub const MAX_NODES: usize = 50_000;

/// Most directed trust edges, counted before the graph is built.
pub const MAX_EDGES: usize = 4_000_000;

/// Problems shown in full; the rest are counted.
pub const MAX_REPORTED: usize = 100;

/// Longest value quoted in full in a message, in characters.
pub const MAX_SHOWN_CHARS: usize = 64;

/// `s` as it is quoted in messages: whole when short, else its start and
/// how long it is.
pub fn shown(s: &str) -> String {
    if s.chars().nth(MAX_SHOWN_CHARS).is_none() {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX_SHOWN_CHARS - 16).collect();
    format!("{head}… ({} characters)", s.chars().count())
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A parser's message, cut to a sane length (it may quote a value).
pub fn shown_message(s: &str) -> String {
    const MAX: usize = 4 * MAX_SHOWN_CHARS;
    if s.chars().nth(MAX).is_none() {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX).collect();
    format!("{head}…")
}

/// What the nesting pre-scan found.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Byte offset of the first list or mapping nested deeper than
    /// [`MAX_DEPTH`].
    pub too_deep: Option<usize>,
    /// (key, byte offset of its repeat, byte offset of its first use) of
    /// every mapping key used twice in the same mapping.
    pub duplicates: Vec<(String, usize, usize)>,
}

/// Walk the YAML events of `text` once, stopping at the first list or
/// mapping nested deeper than [`MAX_DEPTH`]; note repeated mapping keys on
/// the way.
///
/// When yaml-rust2 cannot parse the text (it is broken, or in a corner where
/// the two parsers disagree), the rest of the text is bounded by
/// [`bracket_depth`] instead, so serde_yaml never sees deep flow nesting.
pub fn scan(text: &str) -> Scan {
    struct Frame {
        map: bool,
        /// Mapping only: the next scalar is a key.
        at_key: bool,
        keys: std::collections::HashMap<String, usize>,
    }
    let mut out = Scan::default();
    let mut offsets = CharOffsets::new(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    loop {
        let (ev, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let from = offsets.byte(e.marker().index());
                out.too_deep = bracket_depth(&text[from..]).map(|o| from + o);
                return out;
            }
        };
        // A value (not a key) in a mapping flips it back to expecting a key.
        let is_key = match stack.last_mut() {
            Some(f) if f.map => {
                let k = f.at_key;
                f.at_key = !f.at_key;
                k
            }
            _ => false,
        };
        match ev {
            Event::StreamEnd => return out,
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    out.too_deep = Some(offsets.byte(mark.index()));
                    return out;
                }
                let map = matches!(ev, Event::MappingStart(..));
                stack.push(Frame {
                    map,
                    at_key: true,
                    keys: Default::default(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                stack.pop();
                // The container itself was the value of its parent's key
                // (already flipped when it started).
            }
            Event::Scalar(value, ..) if is_key => {
                let at = offsets.byte(mark.index());
                if let Some(f) = stack.last_mut() {
                    match f.keys.get(&value) {
                        Some(&first) => out.duplicates.push((value, at, first)),
                        None => {
                            f.keys.insert(value, at);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// A conservative bound for text yaml-rust2 could not parse: the offset of
/// the first `[` or `{` left open more than [`MAX_DEPTH`] deep, counting
/// brackets outside comments (quotes are not understood, so this may count
/// too many, never too few).
pub fn bracket_depth(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut comment = false;
    let mut prev = b'\n';
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'\n' | b'\r' => comment = false,
            _ if comment => {}
            b'#' if prev.is_ascii_whitespace() => comment = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = b;
    }
    None
}

/// Turns yaml-rust2's character indexes into byte offsets, moving a cursor
/// from one to the next: markers come in nearly increasing order, so the
/// whole walk is linear.
pub(crate) struct CharOffsets<'a> {
    text: &'a str,
    chars: usize,
    bytes: usize,
}

impl<'a> CharOffsets<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        CharOffsets {
            text,
            chars: 0,
            bytes: 0,
        }
    }

    pub(crate) fn byte(&mut self, char_index: usize) -> usize {
        if char_index < self.chars {
            // Markers step back a little at times (a block collection's
            // end, marked at the next token): walk back as far, not from
            // the start.
            let back = self.chars - char_index;
            match self.text[..self.bytes].char_indices().nth_back(back - 1) {
                Some((i, _)) => {
                    self.bytes = i;
                    self.chars = char_index;
                    return i;
                }
                None => {
                    self.chars = 0;
                    self.bytes = 0;
                }
            }
        }
        let rest = &self.text[self.bytes..];
        match rest.char_indices().nth(char_index - self.chars) {
            Some((i, _)) => {
                self.bytes += i;
                self.chars = char_index;
                self.bytes
            }
            None => self.text.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(shown("node1"), "node1");
        let long = "é".repeat(10_000);
        let s = shown(&long);
        assert!(s.chars().count() < 80, "{s}");
        assert!(s.ends_with("(10000 characters)"), "{s}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4_000_000), "4,000,000");
        assert_eq!(thousands(12_345), "12,345");
    }

    #[test]
    fn char_offsets_go_forward_and_back() {
        let text = "aé😀b\nc";
        let mut o = CharOffsets::new(text);
        assert_eq!(o.byte(3), 7);
        assert_eq!(o.byte(1), 1);
        assert_eq!(o.byte(2), 3);
        assert_eq!(o.byte(5), 9);
        assert_eq!(o.byte(6), text.len());
        assert_eq!(o.byte(99), text.len());
    }

    #[test]
    fn the_scan_stops_at_the_first_list_too_deep() {
        let ok = format!(
            "a: {}{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert_eq!(scan(&ok).too_deep, None);
        let deep = format!("a: {}\n", "[".repeat(MAX_DEPTH + 10));
        assert_eq!(scan(&deep).too_deep, Some(3 + MAX_DEPTH - 1));
        let block = format!("{}x\n", "- ".repeat(MAX_DEPTH + 1));
        assert!(scan(&block).too_deep.is_some());
    }

    #[test]
    fn the_bracket_bound_skips_comments() {
        let text = format!("# {}\na: [b]\n", "[".repeat(500));
        assert_eq!(bracket_depth(&text), None);
        assert_eq!(bracket_depth(&"{".repeat(MAX_DEPTH + 1)), Some(MAX_DEPTH));
    }

    #[test]
    fn repeated_keys_are_found_in_their_own_mapping() {
        let text = "a: 1\nb: {x: 1, y: 2}\nc: {x: 3}\na: 2\n";
        let s = scan(text);
        assert_eq!(s.duplicates, vec![("a".to_string(), 31, 0)]);
    }
}
