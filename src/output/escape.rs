//! Text from outside made safe to print on a terminal.
//!
//! Whatever a node, ssh or an inventory hands trustmesh (a line of
//! `authorized_keys`, a path, a name, ssh's stderr) may hold bytes a
//! terminal obeys: `ESC[2J` clears the screen, `ESC[12A` moves the cursor
//! up over what was printed, a bidirectional override shows a line in
//! another order than its bytes. Every text renderer passes such text
//! through [`text`] (a value: one line) or [`message`] (a message trustmesh
//! composed, whose own newlines stay) where it enters the output, so the
//! only control sequences on the terminal are the colours the renderers
//! add themselves. JSON is left as serde_json writes it.
//!
//! One scheme, visible and unambiguous enough to read a hostile line:
//! ESC is `\e`; tab, newline and carriage return are `\t`, `\n` and `\r`;
//! the other C0 controls and DEL are `\x..` (`\x07`); the C1 controls and
//! the bidirectional marks, embeddings, overrides and isolates (U+061C,
//! U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) are `\u{....}`
//! (`\u{202e}`). Everything else, a backslash included, is printed as it
//! is.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` is escaped: a C0 control, DEL, a C1 control, or a
/// bidirectional formatting character.
pub fn is_escaped(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x1f'
            | '\x7f'
            | '\u{80}'..='\u{9f}'
            | '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// A value (a line of a file, a name, a path, a fingerprint): every
/// control escaped, a newline included. Borrowed when there is nothing to
/// escape.
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// A message trustmesh composed, which may run over several lines (an
/// error, a warning, a hint with a command to run): its newlines stay,
/// every other control is escaped.
pub fn message(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// [`text`] as a `Display`, for `format!("{}", Esc(&name))`.
#[derive(Debug, Clone, Copy)]
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text(self.0))
    }
}

/// [`message`] as a `Display`.
#[derive(Debug, Clone, Copy)]
pub struct EscMessage<'a>(pub &'a str);

impl fmt::Display for EscMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&message(self.0))
    }
}

fn escape(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let hit = |c: char| is_escaped(c) && !(keep_newlines && c == '\n');
    let Some(first) = s.find(hit) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !hit(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\x1b' => out.write_str("\\e"),
            '\t' => out.write_str("\\t"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            c if (c as u32) < 0x80 => write!(out, "\\x{:02x}", c as u32),
            c => write!(out, "\\u{{{:04x}}}", c as u32),
        };
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_as_it_is() {
        for s in [
            "",
            "ssh-ed25519 AAAA trustmesh:lab/node1",
            "C:\\ProgramData\\ssh",
            "é ü ✓ 日本",
            "\\e[2J",
        ] {
            assert!(matches!(text(s), Cow::Borrowed(t) if t == s), "{s:?}");
        }
    }

    #[test]
    fn terminal_controls_are_escaped() {
        assert_eq!(
            text("command=\"\x1b[2J\x1b[12A\" ssh-ed25519"),
            "command=\"\\e[2J\\e[12A\" ssh-ed25519"
        );
        assert_eq!(text("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(text("\0\x07\x08\x7f"), "\\x00\\x07\\x08\\x7f");
        // C1: CSI (U+009B) and OSC (U+009D) start sequences on their own
        // on some terminals.
        assert_eq!(
            text("\u{9b}2J\u{9d}0;t\u{9c}"),
            "\\u{009b}2J\\u{009d}0;t\\u{009c}"
        );
        assert_eq!(text("\u{85}"), "\\u{0085}");
    }

    #[test]
    fn bidirectional_controls_are_escaped() {
        let all = "\u{61c}\u{200e}\u{200f}\u{202a}\u{202b}\u{202c}\u{202d}\u{202e}\u{2066}\u{2067}\u{2068}\u{2069}";
        assert_eq!(
            text(all),
            "\\u{061c}\\u{200e}\\u{200f}\\u{202a}\\u{202b}\\u{202c}\\u{202d}\\u{202e}\\u{2066}\\u{2067}\\u{2068}\\u{2069}"
        );
        // Their neighbours are ordinary text.
        assert_eq!(text("\u{200d}\u{2029}\u{206a}"), "\u{200d}\u{2029}\u{206a}");
    }

    #[test]
    fn a_message_keeps_its_own_lines() {
        assert_eq!(
            message("first\n  the command:\n\tx\x1b]0;t\x07"),
            "first\n  the command:\n\\tx\\e]0;t\\x07"
        );
        assert_eq!(format!("<{}>", Esc("a\nb")), "<a\\nb>");
        assert_eq!(format!("<{}>", EscMessage("a\nb\x1b")), "<a\nb\\e>");
    }

    #[test]
    fn nothing_escaped_is_left_in_the_output() {
        let hostile: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!text(&hostile).chars().any(is_escaped));
        assert!(!message(&hostile)
            .chars()
            .any(|c| is_escaped(c) && c != '\n'));
    }
}
