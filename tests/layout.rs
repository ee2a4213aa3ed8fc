//! The size rules of the code base (docs/layout.md): no file under `src/`
//! over 600 lines, no function over 150 lines (from its `fn` line to the
//! closing brace at the same indent).

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 150;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The name of the function a line opens, and the line's indent.
fn fn_start(line: &str) -> Option<(&str, &str)> {
    let body = line.trim_start();
    let indent = &line[..line.len() - body.len()];
    let mut rest = body;
    if let Some(r) = rest.strip_prefix("pub") {
        rest = match r.strip_prefix('(') {
            Some(r) => r.split_once(") ")?.1,
            None => r.strip_prefix(' ')?,
        };
    }
    for word in ["async ", "const "] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    let name = rest.strip_prefix("fn ")?;
    let end = name
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    (end > 0).then(|| (&name[..end], indent))
}

/// `(first line, length, name)` of every function of `text` longer than
/// `max` lines.
fn long_functions(text: &str, max: usize) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some((name, indent)) = fn_start(line) else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        let end = (i + 1..lines.len())
            .find(|&j| lines[j] == close)
            .unwrap_or(lines.len() - 1);
        if end - i + 1 > max {
            out.push((i + 1, end - i + 1, name.to_string()));
        }
    }
    out
}

/// Every `.rs` file under `src/`: its path under `src/` and its text.
fn src_files() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy();
            let text = std::fs::read_to_string(&path).unwrap();
            (rel.replace('\\', "/"), text)
        })
        .collect()
}

#[test]
fn no_function_under_src_is_over_150_lines() {
    let mut long = Vec::new();
    for (rel, text) in src_files() {
        for (line, len, name) in long_functions(&text, MAX_FN_LINES) {
            long.push(format!("src/{rel}:{line} {name}: {len} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them along their steps):\n{}",
        long.join("\n")
    );
}

#[test]
fn no_file_under_src_is_over_600_lines() {
    let mut long = Vec::new();
    for (rel, text) in src_files() {
        let lines = text.lines().count();
        if lines > MAX_FILE_LINES {
            long.push(format!("src/{rel}: {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines (split them along a seam):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_scan_finds_long_functions_and_only_those() {
    let body = "    x();\n".repeat(MAX_FN_LINES);
    let text = format!(
        "pub(super) fn long(a: u8) {{\n{body}}}\n\nfn short() {{\n    y();\n}}\n\n    pub fn decl(&self);\n"
    );
    let found = long_functions(&text, MAX_FN_LINES);
    assert_eq!(found, vec![(1, MAX_FN_LINES + 2, "long".to_string())]);
    assert!(long_functions(&text, MAX_FN_LINES + 2).is_empty());
}
