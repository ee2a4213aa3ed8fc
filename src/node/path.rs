//! A file path on a node, in one form: as the plan names it (`~/.ssh/x`,
//! `~/x`, an absolute path, or a Windows drive path `C:\x`), rendered once
//! per use: a shell script's argument ([`NodePath::shell`], relative to the
//! home), the SFTP server's path ([`NodePath::sftp`]), or a message
//! (`Display`, the plan's form).

use std::fmt;

use crate::transport::{scripts, windows};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodePath(String);

impl NodePath {
    /// A path as the plan writes it.
    pub fn plan(path: &str) -> NodePath {
        NodePath(path.to_string())
    }

    /// A file of [`crate::plan::NodeFiles`] (`authorized_keys` is in
    /// `~/.ssh`; `~/x`, absolute and drive paths are kept).
    pub fn of_name(name: &str) -> NodePath {
        NodePath(crate::plan::display_path(name))
    }

    /// The plan's form.
    pub fn as_plan(&self) -> &str {
        &self.0
    }

    /// As the scripts take it, run in the home: `~/.ssh/x` -> `.ssh/x`.
    pub fn shell(&self) -> String {
        scripts::script_path(&self.0)
    }

    /// As the SFTP server takes it: relative to the home, or absolute
    /// (`C:\x` -> `/C:/x`).
    pub fn sftp(&self) -> String {
        windows::sftp_path(&self.shell())
    }

    /// The path of the public half of a key at this path.
    pub fn public_half(&self) -> NodePath {
        NodePath(format!("{}.pub", self.0))
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for NodePath {
    fn from(path: &str) -> NodePath {
        NodePath::plan(path)
    }
}

impl From<&String> for NodePath {
    fn from(path: &String) -> NodePath {
        NodePath::plan(path)
    }
}

impl PartialEq<str> for NodePath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_path_renders_for_the_shell_sftp_and_messages() {
        let cases = [
            (
                "authorized_keys",
                "~/.ssh/authorized_keys",
                ".ssh/authorized_keys",
                ".ssh/authorized_keys",
            ),
            ("~/keys/id", "~/keys/id", "keys/id", "keys/id"),
            ("/etc/hosts", "/etc/hosts", "/etc/hosts", "/etc/hosts"),
            (
                windows::ADMIN_AUTHORIZED_KEYS,
                windows::ADMIN_AUTHORIZED_KEYS,
                windows::ADMIN_AUTHORIZED_KEYS,
                "/C:/ProgramData/ssh/administrators_authorized_keys",
            ),
        ];
        for (name, shown, shell, sftp) in cases {
            let p = NodePath::of_name(name);
            assert_eq!(p.to_string(), shown, "{name}");
            assert_eq!(p.shell(), shell, "{name}");
            assert_eq!(p.sftp(), sftp, "{name}");
            // The same file as the SFTP reads name it.
            assert_eq!(crate::transport::files::server_path(name), sftp, "{name}");
        }
    }
}
