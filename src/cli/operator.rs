//! The operator on the terminal: `apply`'s question, the `--ask-pass`
//! password, the progress bars on standard error, and what `apply` shows
//! as it goes (the plan, the report), through the one writer.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::ProgressBar;
use trustmesh::gather::ConfirmHostKey;
use trustmesh::ops::{NoPassword, Operator, Progress};
use trustmesh::output::escape::{Esc, EscMessage};
use trustmesh::plan::Plan;
use trustmesh::transport::password::{Secret, PASSWORD_ENV};

use super::{apply, output, Ui};

/// The person at the terminal (or a pipe, with `--yes`).
pub struct Terminal {
    ui: Ui,
    /// `--yes`: every plan is consented to without asking.
    yes: bool,
    /// The bar of the step under way (hidden in a pipe, or when quiet).
    bar: Mutex<ProgressBar>,
}

impl Terminal {
    pub fn new(ui: Ui, yes: bool) -> Terminal {
        Terminal {
            ui,
            yes,
            bar: Mutex::new(ProgressBar::hidden()),
        }
    }

    fn bar(&self) -> std::sync::MutexGuard<'_, ProgressBar> {
        self.bar.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start_bar(&self, bar: ProgressBar) {
        *self.bar() = bar;
    }
}

/// A progress bar on a terminal, nothing in a pipe.
pub fn progress(ui: Ui, len: usize, what: &str) -> ProgressBar {
    if ui.quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// A line read from the terminal is exactly `yes`.
fn answer_yes() -> bool {
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}

impl Operator for Terminal {
    /// Ask on the terminal (the prompt on standard error, after the plan
    /// on standard output). A plan that could not be shown in full
    /// (standard output closed) is not consented to.
    fn confirm(&self, _plan: &Plan) -> bool {
        if self.yes {
            return true;
        }
        if output::stdout_closed() {
            output::write_err(
                "The plan could not be shown in full (standard output is closed): nothing is asked, \
                 nothing is changed.\n",
            );
            return false;
        }
        output::write_err("Apply these changes? Only 'yes' is accepted: ");
        answer_yes()
    }

    fn password(&self, prompt: &str) -> Result<Secret, NoPassword> {
        if !std::io::stdin().is_terminal() {
            return Err(NoPassword(format!(
                "--ask-pass needs a terminal to ask for the password, or ${PASSWORD_ENV}"
            )));
        }
        rpassword::prompt_password(prompt)
            .map(Secret::new)
            .map_err(|e| NoPassword(format!("cannot read the password: {e}")))
    }

    /// On a terminal, a host key accepted on first use is confirmed before
    /// a password goes to it; without one, the flags given are the
    /// consent.
    fn host_key_question(&self) -> Option<ConfirmHostKey> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        Some(ConfirmHostKey(std::sync::Arc::new(
            |node: &str, fps: &str| {
                let (node, fps) = (Esc(node), EscMessage(fps));
                output::write_err(&format!(
                    "The host key of {node} was accepted on first use in this run: {fps}\n\
                 Send the password to {node}? Only 'yes' is accepted: "
                ));
                answer_yes()
            },
        )))
    }

    fn progress(&self, event: Progress<'_>) {
        let ui = self.ui;
        match event {
            // No bar over a question to the operator.
            Progress::Reading { asking: true, .. } => self.start_bar(ProgressBar::hidden()),
            Progress::Reading { nodes, .. } => self.start_bar(progress(ui, nodes, "reading")),
            Progress::Read { node } => {
                let bar = self.bar();
                bar.inc(1);
                bar.set_message(format!("read {}", Esc(node)));
            }
            Progress::Trying { edges } => self.start_bar(progress(ui, edges, "trying")),
            Progress::Tried { source, target } => {
                let bar = self.bar();
                bar.inc(1);
                bar.set_message(format!("{} -> {}", Esc(source), Esc(target)));
            }
            Progress::ReadDone | Progress::TriedDone => self.bar().finish_and_clear(),
            Progress::Note(note) => {
                if !ui.quiet {
                    output::write_err(&format!("{}\n", EscMessage(note)));
                }
            }
            Progress::Planned(plan) => {
                if !ui.quiet {
                    apply::show(ui, plan);
                }
            }
            Progress::Applied(report) => apply::show_report(ui, report),
        }
    }
}
