//! Where each value of a YAML document sits in its text.
//!
//! serde_yaml reports positions for syntax errors only and keeps no spans for
//! values, but most inventory mistakes (a name used twice, a mesh entry naming
//! no worker) are found after parsing. This module walks the document once
//! with yaml-rust2's marked events and records, for every YAML path such as
//! `workers[2].name`, the byte span of the value and of its key. Validation
//! speaks in paths; the diagnostic layer turns a path into a labelled span.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::limits::CharOffsets;

/// A byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root, e.g. `workers[2].name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }
    pub fn parent(&self) -> Option<Path> {
        if self.0.is_empty() {
            None
        } else {
            Some(Path(self.0[..self.0.len() - 1].to_vec()))
        }
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(document)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{}", super::limits::shown(k))?,
                Seg::Key(k) => write!(f, ".{}", super::limits::shown(k))?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Spans of the values and keys of one document.
#[derive(Debug, Default)]
pub struct SpanIndex {
    values: HashMap<Path, Span>,
    keys: HashMap<Path, Span>,
}

impl SpanIndex {
    /// Index `text`. A document yaml-rust2 cannot parse gives an empty index
    /// (every lookup then falls back to the start of the file).
    pub fn build(text: &str) -> SpanIndex {
        let mut recv = Receiver {
            offsets: CharOffsets::new(text),
            ends: LineEnds::new(text),
            text,
            stack: Vec::new(),
            index: SpanIndex::default(),
            root_done: false,
        };
        let mut parser = Parser::new_from_str(text);
        // A parse error leaves what was indexed so far: still useful.
        let _ = parser.load(&mut recv, false);
        recv.index
    }

    /// The span of the value at `path`, or of the nearest ancestor that has
    /// one.
    pub fn value(&self, path: &Path) -> Span {
        let mut p = Some(path.clone());
        while let Some(cur) = p {
            if let Some(s) = self.values.get(&cur) {
                return *s;
            }
            p = cur.parent();
        }
        Span { offset: 0, len: 0 }
    }

    /// The span of the key that introduces `path` (for unknown keys), or the
    /// value's span when it has no key (a list item).
    pub fn key(&self, path: &Path) -> Span {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.value(path))
    }
}

/// Where each line of the text ends (at a `\n` or `\r`), so finding the
/// end of a value's line costs a binary search, not a scan of the line.
struct LineEnds {
    breaks: Vec<usize>,
    len: usize,
}

impl LineEnds {
    fn new(text: &str) -> Self {
        LineEnds {
            breaks: text
                .bytes()
                .enumerate()
                .filter(|(_, b)| matches!(b, b'\n' | b'\r'))
                .map(|(i, _)| i)
                .collect(),
            len: text.len(),
        }
    }

    /// The offset of the first line break at or after `start`.
    fn end_of(&self, start: usize) -> usize {
        let i = self.breaks.partition_point(|&b| b < start);
        self.breaks.get(i).copied().unwrap_or(self.len)
    }
}

enum Frame {
    Map {
        path: Path,
        key: Option<String>,
        start: usize,
        first: Option<usize>,
    },
    Seq {
        path: Path,
        next: usize,
        start: usize,
        first: Option<usize>,
    },
}

struct Receiver<'a> {
    offsets: CharOffsets<'a>,
    ends: LineEnds,
    text: &'a str,
    stack: Vec<Frame>,
    index: SpanIndex,
    root_done: bool,
}

impl Receiver<'_> {
    /// The path of the next value in the current container, advancing it.
    /// `None` when the next scalar is a mapping key.
    fn next_value_path(&mut self) -> Option<Path> {
        match self.stack.last_mut() {
            None => Some(Path::root()),
            Some(Frame::Map { path, key, .. }) => key.take().map(|k| path.key(&k)),
            Some(Frame::Seq { path, next, .. }) => {
                let p = path.index(*next);
                *next += 1;
                Some(p)
            }
        }
    }

    fn scalar_span(&self, start: usize, value: &str, style: TScalarStyle) -> Span {
        let line_end = self.ends.end_of(start);
        let len = match style {
            TScalarStyle::Plain => value.len(),
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => value.len() + 2,
            _ => line_end - start,
        };
        Span {
            offset: start,
            len: len
                .min(line_end - start)
                .max(1)
                .min(self.text.len() - start),
        }
    }

    fn line_span(&self, start: usize) -> Span {
        let end = self.ends.end_of(start);
        Span {
            offset: start,
            len: end - start,
        }
    }
}

impl MarkedEventReceiver for Receiver<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.root_done {
            return;
        }
        let at = self.offsets.byte(mark.index());
        if let Some(Frame::Map { first, .. } | Frame::Seq { first, .. }) = self.stack.last_mut() {
            if matches!(
                ev,
                Event::Scalar(..)
                    | Event::Alias(_)
                    | Event::MappingStart(..)
                    | Event::SequenceStart(..)
            ) && first.is_none()
            {
                *first = Some(at);
            }
        }
        match ev {
            Event::Scalar(value, style, _, _) => {
                let span = self.scalar_span(at, &value, style);
                match self.next_value_path() {
                    Some(path) => {
                        self.index.values.insert(path, span);
                    }
                    None => {
                        if let Some(Frame::Map { path, key, .. }) = self.stack.last_mut() {
                            let p = path.key(&value);
                            self.index.keys.insert(p, span);
                            *key = Some(value);
                        }
                    }
                }
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_value_path() {
                    let span = self.line_span(at);
                    self.index.values.insert(path, span);
                }
            }
            Event::MappingStart(..) => {
                // A mapping used as a key is not something an inventory has.
                let path = self.next_value_path().unwrap_or_else(Path::root);
                self.stack.push(Frame::Map {
                    path,
                    key: None,
                    start: at,
                    first: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path().unwrap_or_else(Path::root);
                self.stack.push(Frame::Seq {
                    path,
                    next: 0,
                    start: at,
                    first: None,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (path, start) = match frame {
                        Frame::Map {
                            path, start, first, ..
                        }
                        | Frame::Seq {
                            path, start, first, ..
                        } => {
                            // Flow collections are marked at their bracket;
                            // block ones oddly, so their first child is used.
                            let flow = matches!(self.text.as_bytes().get(start), Some(b'[' | b'{'));
                            (path, if flow { start } else { first.unwrap_or(start) })
                        }
                    };
                    let span = self.line_span(start.min(self.text.len()));
                    self.index.values.entry(path).or_insert(span);
                    if self.stack.is_empty() {
                        self.root_done = true;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, s: Span) -> &str {
        &text[s.offset..s.offset + s.len]
    }

    #[test]
    fn indexes_values_and_keys_by_path() {
        let text = "version: 1\nworkers:\n  - name: n1\n    address: 'a b'\n  - {name: é2, address: x}\nmesh:\n  - [a, b]\n";
        let idx = SpanIndex::build(text);
        let p = Path::root().key("workers").index(0).key("name");
        assert_eq!(at(text, idx.value(&p)), "n1");
        assert_eq!(at(text, idx.key(&p)), "name");
        let p = Path::root().key("workers").index(0).key("address");
        assert_eq!(at(text, idx.value(&p)), "'a b'");
        let p = Path::root().key("workers").index(1).key("address");
        assert_eq!(at(text, idx.value(&p)), "x");
        let p = Path::root().key("mesh").index(0).index(1);
        assert_eq!(at(text, idx.value(&p)), "b");
        assert_eq!(p.to_string(), "mesh[0][1]");
    }

    #[test]
    fn unknown_path_falls_back_to_ancestor() {
        let text = "manager:\n  name: m\n";
        let idx = SpanIndex::build(text);
        let p = Path::root().key("manager").key("address");
        assert_eq!(at(text, idx.value(&p)), "name: m");
    }

    #[test]
    fn broken_text_does_not_panic() {
        for t in ["a: [", "- : :", "\u{feff}x", "a:\n\t- b", "&a [*a]"] {
            let idx = SpanIndex::build(t);
            let _ = idx.value(&Path::root().key("a"));
        }
    }
}
