//! Every byte the command line prints goes through here: standard output
//! through one writer ([`write_out`]), standard error through [`write_err`]
//! (notes, warnings, the prompts) and [`render_error`] (a command's error).
//!
//! A closed standard output (`trustmesh apply --yes | head -1`) is a quiet
//! end of the output, not of the command: nothing more is written, no
//! panic, and the command finishes and exits as it would have. Any other
//! failure to write is reported once, and the command exits 1.
//!
//! Text from a node, from ssh or from the inventory is escaped
//! ([`trustmesh::output::escape`]): by the renderers where it enters their
//! output, here for the errors.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use trustmesh::output::escape;

use super::CliError;

/// Standard output can take no more: a closed pipe, or a failure already
/// reported.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// Writing standard output failed for another reason than a closed pipe.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// Write a command's output (`what`: "the plan") to standard output and
/// flush it. A closed pipe is `Ok` (see the module); another failure is an
/// error the first time, and later output is dropped.
pub fn write_out(
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), CliError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    write_to(&mut out, what, write)
}

fn write_to(
    out: &mut dyn Write,
    what: &str,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), CliError> {
    if STDOUT_CLOSED.load(Ordering::SeqCst) {
        return Ok(());
    }
    match write(&mut *out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) => {
            STDOUT_CLOSED.store(true, Ordering::SeqCst);
            if e.kind() == io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                STDOUT_FAILED.store(true, Ordering::SeqCst);
                Err(CliError::io(what, e))
            }
        }
    }
}

/// Standard output takes nothing more: what was meant for it (a plan to
/// consent to) was not all shown.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::SeqCst)
}

/// Writing standard output failed (not a closed pipe): the command exits 1
/// whatever else happened.
pub fn stdout_failed() -> bool {
    STDOUT_FAILED.load(Ordering::SeqCst)
}

/// Text on standard error, flushed. The caller escapes what came from
/// outside. A standard error that cannot be written is no reason to stop
/// (nor to panic): the text is dropped.
pub fn write_err(text: &str) {
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// A command's error and its hints as printed on standard error. Messages
/// are not wrapped: they hold paths and commands to copy. An error that
/// holds text to escape (from a node, ssh or the inventory: in its
/// message, its labels, its help or the lines of the file it shows) is
/// printed without colour, escaped; one that holds none keeps its colours.
pub fn render_error(e: &CliError, color: bool) -> String {
    let render = |theme: miette::GraphicalTheme| {
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_wrap_lines(false);
        let mut out = String::new();
        match handler.render_report(&mut out, e.diagnostic()) {
            Ok(()) => out,
            Err(_) => format!("error: {}\n", e.diagnostic()),
        }
    };
    let plain = render(miette::GraphicalTheme::unicode_nocolor());
    let mut out = match escape::message(&plain) {
        // Nothing to escape: what the colours wrap is the same text.
        Cow::Borrowed(_) if color => render(miette::GraphicalTheme::unicode()),
        safe => safe.into_owned(),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for h in e.hints() {
        out.push_str(&format!("  hint: {}\n", escape::EscMessage(h)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose reader went away.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_pipe_ends_the_output_quietly() {
        // The statics are this process's standard output: one test owns
        // them.
        assert!(!stdout_closed());
        let mut written = false;
        assert!(write_to(&mut ClosedPipe, "the plan", |out| {
            written = true;
            writeln!(out, "first line")
        })
        .is_ok());
        assert!(written);
        assert!(stdout_closed() && !stdout_failed());
        // Nothing more is tried.
        let mut again = false;
        assert!(write_to(&mut ClosedPipe, "the report", |_| {
            again = true;
            Ok(())
        })
        .is_ok());
        assert!(!again);
        STDOUT_CLOSED.store(false, Ordering::SeqCst);
        // Another failure is an error, once.
        let e = write_to(&mut Vec::new(), "the plan", |_| {
            Err(io::Error::other("No space left on device"))
        })
        .unwrap_err();
        assert_eq!(
            e.diagnostic().to_string(),
            "cannot write the plan: No space left on device"
        );
        assert!(stdout_closed() && stdout_failed());
        STDOUT_CLOSED.store(false, Ordering::SeqCst);
        STDOUT_FAILED.store(false, Ordering::SeqCst);
    }

    #[test]
    fn an_error_with_hostile_text_is_printed_escaped() {
        // What a node may hand back: a line of its authorized_keys in a
        // message, ssh's stderr in a hint.
        let e = CliError::message(
            "node1: cannot read ~/.ssh/authorized_keys: line 3: command=\"\x1b[2J\x1b[12A\" \u{202e}evil\nsecond line",
        )
        .hint("ssh said: \x1b]0;owned\x07 Permission denied\r");
        for color in [false, true] {
            let shown = render_error(&e, color);
            assert!(
                !shown.chars().any(|c| escape::is_escaped(c) && c != '\n'),
                "{shown:?}"
            );
            assert!(
                shown.contains("command=\"\\e[2J\\e[12A\" \\u{202e}evil"),
                "{shown}"
            );
            assert!(shown.contains("second line"), "{shown}");
            assert!(
                shown.contains("  hint: ssh said: \\e]0;owned\\x07 Permission denied\\r\n"),
                "{shown}"
            );
        }
    }

    #[test]
    fn an_error_without_hostile_text_keeps_its_colours() {
        let e = CliError::message("node1: unreachable").hint("check the address");
        let plain = render_error(&e, false);
        assert!(!plain.contains('\x1b'), "{plain:?}");
        assert!(plain.contains("node1: unreachable"), "{plain}");
        assert!(plain.ends_with("  hint: check the address\n"), "{plain}");
        let coloured = render_error(&e, true);
        assert!(coloured.contains('\x1b'), "{coloured:?}");
    }
}
