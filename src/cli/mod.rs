//! Flags are parsed here, once; each command gets its own `Args` and runs in
//! `cli/<command>.rs`, returning `Result<ExitStatus, CliError>`. Exit codes
//! and errors are decided in one place ([`run`], with [`error`]): 0 ok, 1
//! error (usage errors included, so that `--detailed-exitcode`'s 2 always
//! means "changes"), 2 only from `plan --detailed-exitcode`; a closed pipe
//! on standard output is not an error. Everything is printed through
//! [`output`].
//!
//! `plan`, `apply` and `verify` are library operations
//! ([`trustmesh::ops`]): their command turns the flags into the
//! operation's request ([`remote`]), builds the operator on the terminal
//! ([`operator`]), calls the operation and renders its report.

mod apply;
mod error;
mod graph;
mod history;
mod import;
mod init;
mod operator;
mod output;
mod plan;
mod reference;
mod remote;
mod validate;
mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use error::{CliError, ExitStatus};
pub use output::write_out;

/// Declarative SSH trust for clusters: plan, apply and verify passwordless
/// SSH between a manager and its workers, from one YAML inventory.
#[derive(Debug, Parser)]
#[command(name = "trustmesh", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// When to use colours (NO_COLOR is honoured).
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,

    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,

    /// Print more about what is done.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::Args),
    Graph(graph::Args),
    Plan(plan::Args),
    Apply(apply::Args),
    Verify(verify::Args),
    Init(init::Args),
    Import(import::Args),
    History(history::Args),
    Completions(reference::CompletionsArgs),
    Man(reference::ManArgs),
}

/// The inventory argument shared by every command.
#[derive(Debug, Args)]
pub struct InventoryArg {
    /// The inventory file [default: $TRUSTMESH_INVENTORY, else inventory.yaml]
    #[arg(value_name = "INVENTORY")]
    pub inventory: Option<PathBuf>,
}

impl InventoryArg {
    pub fn path(&self) -> PathBuf {
        self.inventory
            .clone()
            .or_else(|| std::env::var_os("TRUSTMESH_INVENTORY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("inventory.yaml"))
    }
}

/// What the commands that read the cluster and report on it (`plan`,
/// `verify`) take: the inventory, how to reach the nodes, and the output.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub inventory: InventoryArg,

    /// Print the report as one JSON document (with a `format_version`).
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Flags shared by the commands that talk to hosts.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// Trust on first use: accept a host key the manager has never seen, and
    /// print its fingerprint.
    #[arg(long)]
    pub accept_new_host_keys: bool,

    /// Bootstrap: reach a node that does not accept the manager's key yet
    /// with a password (asked once on the terminal; taken from
    /// $TRUSTMESH_PASSWORD when set). `plan` and `verify` only read with
    /// it; `apply` installs the manager's key with it, as a planned change,
    /// after consent.
    #[arg(long)]
    pub ask_pass: bool,

    /// Hosts worked on at once.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,

    /// Per host: connect and each remote step; a host past it is reported
    /// unreachable, the rest go on.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,

    /// Only these nodes (and the manager, always) and the edges between them.
    #[arg(long, value_name = "NAME[,NAME...]", value_delimiter = ',')]
    pub limit: Vec<String>,

    /// A reinstalled node's new host key, checked out of band: trusted for
    /// this run like a `host_key:` pin; the plan then replaces the old key
    /// in every line trustmesh wrote for that node.
    #[arg(long, value_name = "NODE=SHA256:...")]
    pub accept_changed_host_key: Vec<String>,

    /// Also remove the stale host keys of these nodes from lines trustmesh
    /// did not write (otherwise only reported, with the `ssh-keygen -R` to
    /// run); shown in the plan like every change.
    #[arg(long, value_name = "NODE[,NODE...]", value_delimiter = ',')]
    pub remove_stale_host_keys: Vec<String>,

    /// Give these nodes (the manager included) a new key, rotated
    /// make-before-break: the new key authorized wherever the old one is,
    /// proven with a fresh connection to each of those nodes, then put in
    /// place (the old pair moved aside on its node) and the old lines
    /// removed. `@ca` (or `ca`, when no node is named `ca`) rotates the
    /// user CA of `certificates:`: the new CA trusted beside the old one
    /// everywhere, every certificate signed again and proven on each edge,
    /// then the old CA's lines removed and its key archived on the manager.
    #[arg(long, value_name = "NODE[,NODE...]", value_delimiter = ',')]
    pub rotate_keys: Vec<String>,

    /// Take over the lines trustmesh did not write that already grant a
    /// wanted edge (a cluster set up by hand): each keeps its key, options
    /// and place, its comment becomes trustmesh's marker, and duplicates of
    /// it go; shown in the plan like every change.
    #[arg(long)]
    pub adopt: bool,
}

/// Output settings resolved from flags, environment and terminal.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Colour on standard error (diagnostics).
    pub color: bool,
    /// Colour on standard output (plans).
    pub color_out: bool,
    pub quiet: bool,
    pub verbose: u8,
    /// `apply --json`: standard output holds one JSON document only.
    pub json: bool,
}

impl Ui {
    fn new(cli: &Cli) -> Ui {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let on = |terminal: bool| match cli.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => !no_color && terminal,
        };
        Ui {
            color: on(std::io::stderr().is_terminal()),
            color_out: on(std::io::stdout().is_terminal()),
            quiet: cli.quiet,
            verbose: cli.verbose,
            json: false,
        }
    }

    /// Print a command's error and its hints on standard error
    /// ([`output::render_error`]).
    fn report_error(&self, e: &CliError) {
        output::write_err(&output::render_error(e, self.color));
    }
}

/// Parse the command line, run the command, return the exit code: the one
/// place where a command's outcome becomes a number.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitStatus::Failure.code()
            } else {
                ExitStatus::Success.code()
            };
        }
    };
    let ui = Ui::new(&cli);
    let result = match &cli.command {
        Command::Validate(args) => validate::cmd_validate(ui, args),
        Command::Graph(args) => graph::cmd_graph(ui, args),
        Command::Plan(args) => plan::cmd_plan(ui, args),
        Command::Apply(args) => apply::cmd_apply(ui, args),
        Command::Verify(args) => verify::cmd_verify(ui, args),
        Command::Init(args) => init::cmd_init(ui, args),
        Command::Import(args) => import::cmd_import(ui, args),
        Command::History(args) => history::cmd_history(ui, args),
        Command::Completions(args) => reference::cmd_completions(ui, args),
        Command::Man(args) => reference::cmd_man(ui, args),
    };
    match result {
        // Output that could not be written was reported when it failed.
        Ok(_) if output::stdout_failed() => ExitStatus::Failure.code(),
        Ok(status) => status.code(),
        Err(e) if e.is_broken_pipe() => ExitStatus::Success.code(),
        Err(e) => {
            ui.report_error(&e);
            ExitStatus::Failure.code()
        }
    }
}

/// When the binary runs as ssh's askpass helper (`--ask-pass`): hand the
/// password over on standard output and say so (the caller then exits).
/// Raise the soft limit on open files to the hard one, as tools that open
/// many connections do: each command in flight holds a control socket and
/// its pipes (`--concurrency` of them at once), and an operator's shell
/// often starts at a soft limit of 1024. A failure leaves the limit as it
/// was (the run then uses what it has).
pub fn raise_open_file_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

pub fn serve_askpass() -> bool {
    let Some(secret) = trustmesh::transport::password::askpass_secret() else {
        return false;
    };
    if let Some(secret) = secret {
        // ssh reads one line; nobody else is there to tell of a failure.
        let _ = write_out("the password", |out| writeln!(out, "{secret}"));
    }
    true
}

/// Load the inventory.
pub fn load_inventory(arg: &InventoryArg) -> Result<trustmesh::Inventory, CliError> {
    Ok(trustmesh::Inventory::load(&arg.path())?)
}
