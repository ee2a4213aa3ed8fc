//! The size rules of the code base (docs/layout.md): no file under `src/`
//! over 600 lines, no function over 150 lines (from its `fn` line to the
//! closing brace at the same indent); flag names spelt only in the
//! command line and output layers; a model that names neither; and no
//! `Result` with a bare `String` under `src/`.

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

/// The string literals of Rust source `text` (their contents, escapes
/// as written) outside comments and outside items under `#[cfg(test)]`,
/// each with its line; and the modules declared `#[cfg(test)] mod name;`
/// (their files are test code too).
fn string_literals(text: &str) -> (Vec<(usize, String)>, Vec<String>) {
    let b = text.as_bytes();
    let line_at = |i: usize| text[..i].matches('\n').count() + 1;
    let (mut out, mut test_mods) = (Vec::new(), Vec::new());
    // Brace depth, and the depth at which a `#[cfg(test)]` item's body
    // closes while it is being skipped.
    let (mut depth, mut skip_until): (usize, Option<usize>) = (0, None);
    let mut cfg_test = false;
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |e| e + 2);
        } else if rest.starts_with("#[cfg(test)]") {
            cfg_test = true;
            i += "#[cfg(test)]".len();
        } else if b[i] == b'"' || rest.starts_with("r\"") || rest.starts_with("r#") {
            let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
            let raw = b[i] == b'r';
            let open = if raw { 2 + hashes } else { 1 };
            let close = format!("\"{}", "#".repeat(hashes));
            let mut j = i + open;
            while j < b.len() && !b[j..].starts_with(close.as_bytes()) {
                j += if !raw && b[j] == b'\\' { 2 } else { 1 };
            }
            if skip_until.is_none() {
                out.push((line_at(i), text[i + open..j.min(b.len())].to_string()));
            }
            i = j + close.len();
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '{') or a lifetime ('a).
            i += match (b.get(i + 1), b.get(i + 2)) {
                (Some(b'\\'), _) => rest[2..].find('\'').map_or(1, |e| e + 3),
                (Some(_), Some(b'\'')) => 3,
                _ => 1,
            };
        } else {
            match b[i] {
                b'{' => {
                    if cfg_test && skip_until.is_none() {
                        skip_until = Some(depth);
                    }
                    cfg_test = false;
                    depth += 1;
                }
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if skip_until == Some(depth) {
                        skip_until = None;
                    }
                }
                b';' if cfg_test => {
                    let item = text[..i].rsplit(']').next().unwrap_or("").trim();
                    if let Some(name) = item.rsplit("mod ").next().filter(|_| item.contains("mod "))
                    {
                        test_mods.push(name.trim().to_string());
                    }
                    cfg_test = false;
                }
                _ => {}
            }
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    (out, test_mods)
}

/// A literal naming a command-line flag: ` --x` or `` `--x`` (a lowercase
/// letter after the dashes).
fn names_a_flag(literal: &str) -> bool {
    let b = literal.as_bytes();
    (1..b.len().saturating_sub(2)).any(|i| {
        (b[i - 1] == b' ' || b[i - 1] == b'`')
            && b[i] == b'-'
            && b[i + 1] == b'-'
            && b[i + 2].is_ascii_lowercase()
    })
}

/// The literals outside `src/cli/` and `src/output/` that name a flag,
/// as `src/path:line: "literal"`.
fn flags_in_library(files: &[(String, String)]) -> Vec<String> {
    let mut test_files = Vec::new();
    let mut found = Vec::new();
    for (rel, text) in files {
        let (literals, test_mods) = string_literals(text);
        let dir = match rel.rsplit_once('/') {
            Some((d, "mod.rs")) => format!("{d}/"),
            Some((d, f)) => format!("{d}/{}/", f.trim_end_matches(".rs")),
            None if rel == "lib.rs" || rel == "main.rs" => String::new(),
            None => format!("{}/", rel.trim_end_matches(".rs")),
        };
        test_files.extend(test_mods.iter().map(|m| format!("{dir}{m}.rs")));
        for (line, lit) in literals {
            if names_a_flag(&lit) {
                found.push((rel.clone(), format!("src/{rel}:{line}: \"{lit}\"")));
            }
        }
    }
    found
        .into_iter()
        .filter(|(rel, _)| {
            !rel.starts_with("cli/")
                && !rel.starts_with("output/")
                && !rel.ends_with("tests.rs")
                && !test_files.contains(rel)
        })
        .map(|(_, s)| s)
        .collect()
}

#[test]
fn flag_names_are_spelt_only_in_the_cli_and_output_layers() {
    let found = flags_in_library(&src_files());
    assert!(
        found.is_empty(),
        "string literals outside src/cli/ and src/output/ that name a command-line flag \
         (say it as data, e.g. a `Hint`, and put its words in src/output/hints.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_flag_scan_skips_comments_and_test_code() {
    let text = r##"
//! `--limit` in a doc comment
fn f() -> &'static str {
    let _c = '"'; // "not -- a --string"
    /* "--adopt" */
    g(r#"raw with --timeout"#);
    "plain, with --ask-pass"
}
#[cfg(test)]
mod tests {
    fn t() { h("in a test --adopt {"); }
}
#[cfg(test)]
mod shells;
fn k() { "`--accept-changed-host-key NODE`"; "--porcelain"; "a -- b" }
"##;
    let (lits, mods) = string_literals(text);
    let flagged: Vec<usize> = lits
        .iter()
        .filter(|(_, l)| names_a_flag(l))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(flagged, vec![6, 7, 15]);
    assert_eq!(mods, vec!["shells".to_string()]);
    let files = vec![
        ("plan/x.rs".to_string(), text.to_string()),
        ("cli/y.rs".to_string(), text.to_string()),
        (
            "plan/x/shells.rs".to_string(),
            "fn s() { \" --x\"; }".to_string(),
        ),
    ];
    assert_eq!(flags_in_library(&files).len(), 3);
}

/// `src/path:line: text` of every line of `files` that `hit` holds.
fn lines_where<'a>(
    files: impl IntoIterator<Item = &'a (String, String)>,
    hit: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for (rel, text) in files {
        for (i, line) in text.lines().enumerate().filter(|(_, l)| hit(l)) {
            found.push(format!("src/{rel}:{}: {}", i + 1, line.trim()));
        }
    }
    found
}

/// The model is data: it never depends on how the output or the command
/// line show it. Every line under `src/model/` naming `crate::output` or
/// `crate::cli` (comments included: a doc link is a dependency too).
fn model_names_outer_layers(files: &[(String, String)]) -> Vec<String> {
    lines_where(
        files.iter().filter(|(rel, _)| rel.starts_with("model/")),
        |line| line.contains("crate::output") || line.contains("crate::cli"),
    )
}

#[test]
fn the_model_names_neither_output_nor_cli() {
    let found = model_names_outer_layers(&src_files());
    assert!(
        found.is_empty(),
        "src/model/ depends on the output or command-line layer (put what shows a model \
         value in src/output/):\n{}",
        found.join("\n")
    );
    let probe = vec![
        (
            "model/x.rs".to_string(),
            "use crate::output::hints;\n".to_string(),
        ),
        ("model/y.rs".to_string(), "x(crate::cli::run)\n".to_string()),
        (
            "plan/z.rs".to_string(),
            "use crate::output::hints;\n".to_string(),
        ),
    ];
    assert_eq!(model_names_outer_layers(&probe).len(), 2);
}

/// Every line matching `Result<[^>]*String>` (what `grep -rn
/// 'Result<[^>]*String>' src` finds): a library result carries a typed
/// error, and an Ok value says what it is.
fn string_results(files: &[(String, String)]) -> Vec<String> {
    lines_where(files, |line| {
        line.match_indices("Result<").any(|(at, open)| {
            let rest = &line[at + open.len()..];
            rest[..rest.find('>').map_or(rest.len(), |e| e + 1)].ends_with("String>")
        })
    })
}

#[test]
fn no_result_under_src_holds_a_bare_string() {
    let found = string_results(&src_files());
    assert!(
        found.is_empty(),
        "`Result<_, String>` or `Result<String, _>` under src/ (give the error a type, and the \
         Ok value a name that says what it is):\n{}",
        found.join("\n")
    );
    let probe = vec![(
        "x.rs".to_string(),
        "fn a() -> Result<(), String> {}\nfn b() -> Result<Vec<String>, E> {}\n\
         fn c() -> Result<Lines, E> {}\nfn d() -> io::Result<String> {}\n"
            .to_string(),
    )];
    assert_eq!(string_results(&probe).len(), 3);
}
