//! `trustmesh import`: an inventory from what the operator already has.

use std::path::PathBuf;

use super::{write_out, CliError, ExitStatus, Ui};
use trustmesh::import;

/// Print an inventory made from an OpenSSH client config or an Ansible
/// inventory, with a comment on everything that could not be mapped.
/// Nothing is contacted and nothing is written: redirect the output to a
/// file, read it, then `trustmesh validate` it.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(Debug, clap::Subcommand)]
enum From {
    /// `Host` blocks (HostName, Port, User, ProxyJump) as workers and
    /// bastions.
    SshConfig {
        /// The config file [default: ~/.ssh/config]
        file: Option<PathBuf>,
    },
    /// Hosts (ansible_host, ansible_port, ansible_user) and groups of an
    /// INI or YAML inventory as workers and their groups.
    Ansible {
        /// The Ansible inventory file.
        file: PathBuf,
    },
}

fn read(path: &std::path::Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|e| {
        CliError::message(format!("cannot read {}: {e}", path.display()))
            .hint("give the file's path as the argument")
    })
}

pub fn cmd_import(_ui: Ui, args: &Args) -> Result<ExitStatus, CliError> {
    let imported = match &args.from {
        From::SshConfig { file } => {
            let path = match file {
                Some(p) => p.clone(),
                None => std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".ssh/config"))
                    .ok_or_else(|| {
                        CliError::message("HOME is not set: give the config file's path")
                    })?,
            };
            import::ssh_config(&read(&path)?, &path.display().to_string())
        }
        From::Ansible { file } => import::ansible(&read(file)?, &file.display().to_string())
            .map_err(|e| {
                CliError::message(format!("{} is not a YAML inventory: {e}", file.display()))
                    .hint("an INI inventory starts with a `[group]` line or a host name")
            })?,
    };
    let text = import::emit(&imported);
    write_out("the inventory", |out| out.write_all(text.as_bytes()))?;
    Ok(ExitStatus::Success)
}
