//! Inventory errors as miette diagnostics: file, line and column, a label
//! under the offending text, a help line and a stable code, with every
//! problem of a file gathered into one report.

use std::fmt;
use std::sync::Arc;

use miette::{
    Diagnostic, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents,
};

use super::limits::{MAX_DEPTH, MAX_FILE_BYTES, MAX_REPORTED};
use super::spans::SpanIndex;
use super::Problem;

/// Why an inventory could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("inventory {path} is not UTF-8 text")]
    NotUtf8 { path: String },
    #[error("inventory {path} is larger than {} MiB ({size} bytes or more)", MAX_FILE_BYTES / (1024 * 1024))]
    TooLarge { path: String, size: u64 },
    #[error("{name} nests lists or mappings more than {MAX_DEPTH} deep")]
    TooDeep {
        name: String,
        src: Source,
        span: SourceSpan,
    },
    #[error("{name} is not valid YAML: {message}")]
    Syntax {
        name: String,
        message: String,
        src: Source,
        span: SourceSpan,
    },
    #[error("{name} has {total} {}{}", if *total == 1 { "error" } else { "errors" },
        if *total > problems.len() { format!(" (the first {} are shown)", problems.len()) } else { String::new() })]
    Invalid {
        name: String,
        problems: Vec<ProblemDiagnostic>,
        /// Every problem found, shown or not.
        total: usize,
    },
}

impl InventoryError {
    pub(crate) fn syntax(
        name: &str,
        src: Arc<String>,
        e: &serde_yaml::Error,
        scan: &super::limits::Scan,
    ) -> Self {
        let mut offset = e.location().map(|l| l.index()).unwrap_or(0).min(src.len());
        // serde_yaml appends " at line X column Y" to its message: the
        // report shows the position itself.
        let message = e.to_string();
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        // serde_yaml places a repeated key at the start of its mapping: the
        // pre-scan knows the repeat itself (the first one at or after that
        // start, as serde_yaml reports the first in document order).
        let mut message = message;
        if message.contains("duplicate entry with key") {
            if let Some((_, at, first)) = scan.duplicates.iter().find(|(_, at, _)| *at >= offset) {
                let (line, _) = SourceText::new(src.clone()).line_col(*first);
                message = format!("{message} (first used on line {})", line + 1);
                offset = *at;
            }
        }
        InventoryError::Syntax {
            name: name.to_string(),
            message: super::limits::shown_message(&message),
            src: Source::new(name, src),
            span: SourceSpan::new(offset.into(), 0),
        }
    }

    pub(crate) fn too_deep(name: &str, src: Arc<String>, offset: usize) -> Self {
        InventoryError::TooDeep {
            name: name.to_string(),
            span: SourceSpan::new(
                offset.min(src.len()).into(),
                1.min(src.len() - offset.min(src.len())),
            ),
            src: Source::new(name, src),
        }
    }

    pub(crate) fn invalid(name: &str, src: Arc<String>, problems: Vec<Problem>) -> Self {
        let total = problems.len();
        let index = SpanIndex::build(&src);
        let named = Source::new(name, src);
        let problems = problems
            .into_iter()
            .take(MAX_REPORTED)
            .map(|p| ProblemDiagnostic::new(p, &index, named.clone()))
            .collect();
        InventoryError::Invalid {
            name: name.to_string(),
            problems,
            total,
        }
    }

    /// The individual problems (empty for I/O and syntax errors).
    pub fn problems(&self) -> &[ProblemDiagnostic] {
        match self {
            InventoryError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }

    /// Every problem this error reports, as data (`validate --json`): each
    /// problem of an invalid file, or the one syntax error, with its line
    /// and column; an error about the whole file (it cannot be read, is not
    /// UTF-8, is too large) with none.
    pub fn located(&self) -> Vec<Located> {
        let code = |d: &dyn Diagnostic| d.code().map(|c| c.to_string()).unwrap_or_default();
        let help = |d: &dyn Diagnostic| d.help().map(|h| h.to_string());
        let at = |src: &Source, span: &SourceSpan, message: String| {
            let (line, column) = src.text.line_col(span.offset());
            Located {
                file: src.name.clone(),
                line: Some(line + 1),
                column: Some(column + 1),
                message,
                code: code(self),
                hint: help(self),
            }
        };
        match self {
            InventoryError::Invalid { name, problems, .. } => problems
                .iter()
                .map(|p| Located {
                    file: name.clone(),
                    line: Some(p.line),
                    column: Some(p.column),
                    message: p.problem.message.clone(),
                    code: p.problem.code.to_string(),
                    hint: p.problem.help.clone(),
                })
                .collect(),
            InventoryError::Syntax {
                message, src, span, ..
            } => vec![at(src, span, format!("not valid YAML: {message}"))],
            InventoryError::TooDeep { src, span, .. } => vec![at(
                src,
                span,
                format!("nests lists or mappings more than {MAX_DEPTH} deep"),
            )],
            InventoryError::Io { path, .. }
            | InventoryError::NotUtf8 { path }
            | InventoryError::TooLarge { path, .. } => vec![Located {
                file: path.clone(),
                line: None,
                column: None,
                message: self.to_string(),
                code: code(self),
                hint: help(self),
            }],
        }
    }

    /// How many problems the file has, the ones not in [`Self::located`]
    /// included (only the first [`MAX_REPORTED`] are kept).
    pub fn total(&self) -> usize {
        match self {
            InventoryError::Invalid { total, .. } => *total,
            _ => 1,
        }
    }
}

/// A problem (or a warning) of an inventory as data: where it is and what
/// it says, as `validate --json` gives it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Located {
    /// The file, as named in messages.
    pub file: String,
    /// 1-based line; none for a problem with the whole file (it cannot be
    /// read...).
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    pub message: String,
    /// Stable code, e.g. `trustmesh::model::inventory::unknown_key`.
    pub code: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl From<&super::hostile::Warning> for Located {
    fn from(w: &super::hostile::Warning) -> Located {
        Located {
            file: w.file.clone(),
            line: Some(w.line),
            column: Some(w.column),
            message: w.message.clone(),
            code: w.code.to_string(),
            hint: Some(w.help.clone()),
        }
    }
}

impl Diagnostic for InventoryError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match self {
            InventoryError::Io { .. } => "trustmesh::inventory::io",
            InventoryError::NotUtf8 { .. } => "trustmesh::inventory::encoding",
            InventoryError::TooLarge { .. } => "trustmesh::inventory::too_large",
            InventoryError::TooDeep { .. } => "trustmesh::inventory::too_deep",
            InventoryError::Syntax { .. } => "trustmesh::inventory::syntax",
            InventoryError::Invalid { .. } => "trustmesh::inventory::invalid",
        };
        Some(Box::new(code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self {
            InventoryError::Io { .. } => Some(Box::new(
                "pass the inventory's path (`trustmesh validate PATH`) or set TRUSTMESH_INVENTORY",
            )),
            InventoryError::NotUtf8 { .. } => Some(Box::new("save the file as UTF-8")),
            InventoryError::TooLarge { .. } => Some(Box::new(
                "check the path: an inventory of 10,000 workers is under 1 MiB; split a larger cluster into several inventories",
            )),
            InventoryError::TooDeep { .. } => Some(Box::new(
                "an inventory nests only a few levels: look for a `[` or `{` that is never closed",
            )),
            InventoryError::Syntax { .. } => Some(Box::new(
                "check the indentation and the `:` and `-` around the marked place",
            )),
            InventoryError::Invalid {
                problems, total, ..
            } if *total > problems.len() => Some(Box::new(format!(
                "and {} more not shown: fix these and run again",
                total - problems.len()
            ))),
            InventoryError::Invalid { .. } => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self {
            InventoryError::Syntax { src, .. } | InventoryError::TooDeep { src, .. } => Some(src),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self {
            InventoryError::Syntax { span, .. } => Some(Box::new(std::iter::once(
                LabeledSpan::new_with_span(Some("here".into()), *span),
            ))),
            InventoryError::TooDeep { span, .. } => Some(Box::new(std::iter::once(
                LabeledSpan::new_with_span(Some("nested too deeply here".into()), *span),
            ))),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        match self {
            InventoryError::Invalid { problems, .. } => {
                Some(Box::new(problems.iter().map(|p| p as &dyn Diagnostic)))
            }
            _ => None,
        }
    }
}

/// One [`Problem`] placed in its file.
#[derive(Debug)]
pub struct ProblemDiagnostic {
    pub problem: Problem,
    src: Source,
    primary: SourceSpan,
    extra: Vec<(SourceSpan, String)>,
    /// 1-based line and column of the primary label.
    pub line: usize,
    pub column: usize,
}

impl ProblemDiagnostic {
    fn new(problem: Problem, index: &SpanIndex, src: Source) -> Self {
        let span = if problem.at_key {
            index.key(&problem.path)
        } else {
            index.value(&problem.path)
        };
        let extra = problem
            .extra
            .iter()
            .map(|(p, l)| {
                let s = index.value(p);
                (src.text.label(s.offset, s.len), l.clone())
            })
            .collect();
        let (line, column) = src.text.line_col(span.offset);
        let (line, column) = (line + 1, column + 1);
        ProblemDiagnostic {
            primary: src.text.label(span.offset, span.len),
            problem,
            src,
            extra,
            line,
            column,
        }
    }
}

impl fmt::Display for ProblemDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for ProblemDiagnostic {}

impl Diagnostic for ProblemDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.problem.code))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.src)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary =
            LabeledSpan::new_primary_with_span(Some(self.problem.label.clone()), self.primary);
        let extra = self
            .extra
            .iter()
            .map(|(s, l)| LabeledSpan::new_with_span(Some(l.clone()), *s));
        Some(Box::new(std::iter::once(primary).chain(extra)))
    }
}

/// Longest label drawn under a value, in bytes.
const MAX_LABEL_BYTES: usize = 80;
/// Most source shown either side of a label, in bytes.
const MAX_CONTEXT_BYTES: usize = 120;

/// The inventory text with what it takes to place an offset in it without
/// scanning from the start: line starts, and the character count at every
/// 4 KiB, so that every lookup costs at most a few KiB of work.
#[derive(Debug)]
pub struct SourceText {
    text: Arc<String>,
    line_starts: Vec<usize>,
    /// Characters before byte `i * CHUNK`.
    chars_before: Vec<usize>,
}

const CHUNK: usize = 4096;

impl SourceText {
    pub fn new(text: Arc<String>) -> Self {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(memchr_all(bytes, b'\n').map(|i| i + 1));
        let mut chars_before = Vec::with_capacity(bytes.len() / CHUNK + 1);
        let mut n = 0;
        for chunk in bytes.chunks(CHUNK) {
            chars_before.push(n);
            n += count_chars(chunk);
        }
        chars_before.push(n);
        SourceText {
            text,
            line_starts,
            chars_before,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn chars_to(&self, offset: usize) -> usize {
        let c = offset / CHUNK;
        self.chars_before[c] + count_chars(&self.text.as_bytes()[c * CHUNK..offset])
    }

    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset) - 1
    }

    /// 0-based line and character column of `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.floor(offset.min(self.text.len()));
        let line = self.line_of(offset);
        (
            line,
            self.chars_to(offset) - self.chars_to(self.line_starts[line]),
        )
    }

    fn floor(&self, mut i: usize) -> usize {
        while !self.text.is_char_boundary(i) {
            i -= 1;
        }
        i
    }

    fn ceil(&self, mut i: usize) -> usize {
        let i_max = self.text.len();
        i = i.min(i_max);
        while !self.text.is_char_boundary(i) {
            i += 1;
        }
        i
    }

    /// A label span at `offset`, at most [`MAX_LABEL_BYTES`] long.
    fn label(&self, offset: usize, len: usize) -> SourceSpan {
        let start = self.floor(offset.min(self.text.len()));
        let end = self.floor((start + len.min(MAX_LABEL_BYTES)).min(self.text.len()));
        SourceSpan::new(start.into(), end - start)
    }
}

fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

fn memchr_all(bytes: &[u8], needle: u8) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(move |(_, &b)| b == needle)
        .map(|(i, _)| i)
}

/// The inventory as miette reads it: named, and shown in windows of at most
/// a few lines and [`MAX_CONTEXT_BYTES`] either side of a label, so a
/// megabyte-long line is never printed whole.
#[derive(Debug, Clone)]
pub struct Source {
    name: String,
    text: Arc<SourceText>,
}

impl Source {
    pub fn new(name: &str, text: Arc<String>) -> Self {
        Source {
            name: name.to_string(),
            text: Arc::new(SourceText::new(text)),
        }
    }
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let t = &*self.text;
        let text = t.as_str();
        let start = span.offset();
        let end = start + span.len();
        if end > text.len() {
            return Err(MietteError::OutOfBounds);
        }
        let first = t.line_of(start).saturating_sub(context_lines_before);
        let last = t.line_of(end.saturating_sub(1).max(start)) + context_lines_after;
        let mut from = if context_lines_before == 0 {
            start
        } else {
            t.line_starts[first]
        };
        let mut to = t.line_starts.get(last + 1).copied().unwrap_or(text.len());
        if context_lines_after == 0 {
            to = end;
        }
        from = from.max(t.ceil(start.saturating_sub(MAX_CONTEXT_BYTES)));
        to = to
            .min(t.floor((end + MAX_CONTEXT_BYTES).min(text.len())))
            .max(end);
        let (line, column) = t.line_col(from);
        let line_count = t.line_of(to.saturating_sub(1).max(from)) - line + 1;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            &text.as_bytes()[from..to],
            SourceSpan::new(from.into(), to - from),
            line,
            column,
            line_count,
        )))
    }
}
