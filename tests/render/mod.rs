//! A diagnostic as the command line prints it, without colour: shared by
//! the tests that read what users would.
#![allow(dead_code)]

pub fn render(e: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, e)
        .unwrap();
    out
}
