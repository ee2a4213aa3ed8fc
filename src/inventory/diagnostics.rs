//! Inventory errors as miette diagnostics: file, line and column, a label
//! under the offending text, a help line and a stable code, with every
//! problem of a file gathered into one report.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode, SourceSpan};

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
    #[error("{name} is not valid YAML: {message}")]
    Syntax {
        name: String,
        message: String,
        src: NamedSource<Arc<String>>,
        span: SourceSpan,
    },
    #[error("{name} has {} {}", problems.len(), if problems.len() == 1 { "error" } else { "errors" })]
    Invalid {
        name: String,
        problems: Vec<ProblemDiagnostic>,
    },
}

impl InventoryError {
    pub(crate) fn syntax(name: &str, src: Arc<String>, e: &serde_yaml::Error) -> Self {
        let offset = e.location().map(|l| l.index()).unwrap_or(0).min(src.len());
        // serde_yaml appends " at line X column Y" to its message: the
        // report shows the position itself.
        let message = e.to_string();
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        InventoryError::Syntax {
            name: name.to_string(),
            message,
            src: NamedSource::new(name, src),
            span: SourceSpan::new(offset.into(), 0),
        }
    }

    pub(crate) fn invalid(name: &str, src: Arc<String>, problems: Vec<Problem>) -> Self {
        let index = SpanIndex::build(&src);
        let named = NamedSource::new(name, src.clone());
        let problems = problems
            .into_iter()
            .map(|p| ProblemDiagnostic::new(p, &index, named.clone()))
            .collect();
        InventoryError::Invalid {
            name: name.to_string(),
            problems,
        }
    }

    /// The individual problems (empty for I/O and syntax errors).
    pub fn problems(&self) -> &[ProblemDiagnostic] {
        match self {
            InventoryError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

impl Diagnostic for InventoryError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        let code = match self {
            InventoryError::Io { .. } => "trustmesh::inventory::io",
            InventoryError::NotUtf8 { .. } => "trustmesh::inventory::encoding",
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
            InventoryError::Syntax { .. } => Some(Box::new(
                "check the indentation and the `:` and `-` around the marked place",
            )),
            InventoryError::Invalid { .. } => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self {
            InventoryError::Syntax { src, .. } => Some(src),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self {
            InventoryError::Syntax { span, .. } => Some(Box::new(std::iter::once(
                LabeledSpan::new_with_span(Some("here".into()), *span),
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
    src: NamedSource<Arc<String>>,
    primary: SourceSpan,
    extra: Vec<(SourceSpan, String)>,
    /// 1-based line and column of the primary label.
    pub line: usize,
    pub column: usize,
}

impl ProblemDiagnostic {
    fn new(problem: Problem, index: &SpanIndex, src: NamedSource<Arc<String>>) -> Self {
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
                (SourceSpan::new(s.offset.into(), s.len), l.clone())
            })
            .collect();
        let text = src.inner();
        let before = &text[..span.offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        ProblemDiagnostic {
            primary: SourceSpan::new(span.offset.into(), span.len),
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
