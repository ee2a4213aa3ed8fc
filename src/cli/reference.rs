//! `trustmesh completions` and `trustmesh man`: shell completions and man
//! pages, both generated from the command line's own definition.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{write_out, Cli, CliError, ExitStatus, Ui};

/// Print the completion script of a shell. bash: `trustmesh completions
/// bash > ~/.local/share/bash-completion/completions/trustmesh`; zsh: into a
/// folder of `$fpath` as `_trustmesh`; fish:
/// `~/.config/fish/completions/trustmesh.fish`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Write the man pages: `trustmesh.1` and one `trustmesh-COMMAND.1` per
/// command (install: `trustmesh man --out ~/.local/share/man/man1`). With
/// no `--out`, print `trustmesh.1`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The folder to write the pages into (made if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn cmd_completions(_ui: Ui, args: &CompletionsArgs) -> Result<ExitStatus, CliError> {
    let mut cmd = Cli::command();
    // Made in memory first: clap_complete panics when its writer fails (a
    // closed pipe); the one writer does not.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "trustmesh", &mut script);
    write_out("the completions", |out| out.write_all(&script))?;
    Ok(ExitStatus::Success)
}

pub fn cmd_man(ui: Ui, args: &ManArgs) -> Result<ExitStatus, CliError> {
    let cmd = Cli::command();
    let Some(dir) = &args.out else {
        write_out("the man page", |out| clap_mangen::Man::new(cmd).render(out))?;
        return Ok(ExitStatus::Success);
    };
    let io = |e| CliError::io("the man pages", e);
    std::fs::create_dir_all(dir).map_err(io)?;
    clap_mangen::generate_to(cmd, dir).map_err(io)?;
    if !ui.quiet {
        write_out("the result", |out| {
            writeln!(out, "Wrote the man pages to {}.", dir.display())
        })?;
    }
    Ok(ExitStatus::Success)
}
