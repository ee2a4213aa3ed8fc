//! The fixed shell scripts `apply` runs on a node.
//!
//! Each script is a POSIX `sh` file beside this one (`src/transport/scripts/*.sh`,
//! pulled in with `include_str!` and checked by `shellcheck -s sh` in
//! `scripts/test.sh`) that opens with its arguments and output; the probe's
//! script, `probe.sh`, lives here too. A script's data arrives only as
//! positional arguments, each quoted by [`shell_quote`], and file contents
//! arrive on standard input. Nothing from an inventory is ever spliced into
//! a script. They run under dash, bash, busybox sh and macOS sh (no GNU-only
//! flags; tested under the matrix of `shells.rs`, where `bash --posix` with
//! BWK awk stands in for macOS), locally for the manager and over SSH for
//! every other node.
//!
//! Paths are relative to the account's home (`.ssh/authorized_keys`) or
//! absolute. Every script prints `TM-OK` (or its result between markers)
//! on success and `TM-ERR reason` / `TM-CONFLICT now` otherwise. When a
//! tool fails (`cat`, `cp`, `mv`, `chmod`, `mkdir`, `rm`, `ssh-keygen`),
//! the reason ends with what it wrote on standard error, on one line: the
//! OS's own words (`No space left on device`), which apply reports for the
//! node and step.

#[cfg(test)]
pub(crate) mod shells;

/// Quote `s` for a POSIX shell: the whole string in single quotes, each `'`
/// written as `'\''`. The result is always one word, whatever `s` holds
/// (empty, newlines, `$()`, backticks, a leading dash).
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Build `sh -c 'SCRIPT' trustmesh ARG...` with everything quoted.
pub fn command_line(script: &str, args: &[&str]) -> String {
    let mut line = format!("sh -c {} trustmesh", shell_quote(script));
    for a in args {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    line
}

/// `line` (a [`command_line`]) run as root with `sudo -n`: never a
/// password prompt, a refusal instead. The script's standard input goes
/// through sudo unchanged.
pub fn with_sudo(line: &str) -> String {
    format!("sudo -n {line}")
}

/// Create `~/.ssh` (0700) when missing. No arguments. See `mkdir_ssh.sh`.
pub const MKDIR_SSH: &str = include_str!("mkdir_ssh.sh");

/// Generate a key pair on the node and print its public half; never
/// overwrites. Args: key path, type, bits, comment. See `keygen.sh`.
pub const KEYGEN: &str = include_str!("keygen.sh");

/// `certificates:` sign a public key with the user CA on the manager, in a
/// private temporary folder. Args: CA path, key id, principals, validity,
/// serial, public key line, the socket of an ssh-agent holding the CA
/// (empty: the CA is a key file). See `sign.sh`.
pub const SIGN: &str = include_str!("sign.sh");

/// Replace a file atomically, only if it is still what the plan read, and
/// flush its folder after the rename.
/// Args: path, expected [`cksum`], mode, [`cksum`] of the new content;
/// the content on standard input. See `replace_file.sh`.
pub const REPLACE_FILE: &str = include_str!("replace_file.sh");

/// Put a rotated key in place, the old pair moved aside on the node. Args:
/// key path, new pair's path, aside path. See `rotate_swap.sh`.
pub const ROTATE_SWAP: &str = include_str!("rotate_swap.sh");

/// Remove a temporary file an interrupted apply left in `~/.ssh`. Args:
/// `.ssh/.trustmesh.XXXXXX`. See `remove_leftover.sh`.
pub const REMOVE_LEFTOVER: &str = include_str!("remove_leftover.sh");

/// Create a private folder directly under `~/.ssh` (`~/.ssh/config.d`),
/// 0700, when missing. Args: `.ssh/NAME`. See `mkdir_private.sh`.
pub const MKDIR_PRIVATE: &str = include_str!("mkdir_private.sh");

/// Remove a file trustmesh owns, only if it is still what the plan read.
/// Args: path, expected [`cksum`]. See `remove_file.sh`.
pub const REMOVE_FILE: &str = include_str!("remove_file.sh");

/// `chmod MODE PATH`. Args: mode (octal), path. See `chmod.sh`.
pub const CHMOD: &str = include_str!("chmod.sh");

/// host_certificates: `sshd -t`, the drop-in put back when it fails, else
/// sshd reloaded as the platform does it. Args: drop-in path, `absent` or
/// `keep` (its old text on standard input). See `sshd_reload.sh`.
pub const SSHD_RELOAD: &str = include_str!("sshd_reload.sh");

/// `chown UID PATH`. Args: uid, path. See `chown.sh`.
pub const CHOWN: &str = include_str!("chown.sh");

/// One node's writes and its read-back in one run: the driver
/// `batch.sh` after the single scripts it runs, each made a function
/// whose body is a subshell (`tmb_replace() ( ...replace_file.sh... )`),
/// so that each step is the single script itself, with its own `exit`,
/// `trap` and `set` options, under the same shell. Fixed text: the steps'
/// data are arguments and standard input ([`crate::transport::batch`]).
pub const BATCH: &str = concat!(
    "tmb_mkdir_ssh() (\n",
    include_str!("mkdir_ssh.sh"),
    "\n)\ntmb_mkdir_private() (\n",
    include_str!("mkdir_private.sh"),
    "\n)\ntmb_replace() (\n",
    include_str!("replace_file.sh"),
    "\n)\ntmb_remove_file() (\n",
    include_str!("remove_file.sh"),
    "\n)\ntmb_chmod() (\n",
    include_str!("chmod.sh"),
    "\n)\ntmb_chown() (\n",
    include_str!("chown.sh"),
    "\n)\ntmb_remove_leftover() (\n",
    include_str!("remove_leftover.sh"),
    "\n)\ntmb_probe() (\n",
    include_str!("probe.sh"),
    "\n)\n",
    include_str!("batch.sh"),
);

/// POSIX `cksum` of some bytes, as `"CRC SIZE"`: what [`REPLACE_FILE`]
/// compares against.
pub fn cksum(data: &[u8]) -> String {
    const CKSUM: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_CKSUM);
    let mut d = CKSUM.digest();
    d.update(data);
    let mut len = data.len();
    while len > 0 {
        d.update(&[(len & 0xff) as u8]);
        len >>= 8;
    }
    format!("{} {}", d.finalize(), data.len())
}

/// What a script said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The public key a keygen printed.
    PublicKey(String),
    /// The file changed since the plan: what it is now.
    Conflict(String),
    Failed(String),
}

/// Read a script's output (noise from login shells outside the markers is
/// ignored).
pub fn outcome(stdout: &[u8], stderr: &[u8], status: Option<i32>) -> Outcome {
    // Windows PowerShell ends its lines with CRLF.
    let text = String::from_utf8_lossy(stdout).replace("\r\n", "\n");
    if let (Some(b), Some(e)) = (text.find("TM-PUB-BEGIN\n"), text.find("TM-PUB-END")) {
        if b < e {
            return Outcome::PublicKey(text[b + "TM-PUB-BEGIN\n".len()..e].trim().to_string());
        }
    }
    for line in text.lines() {
        if line == "TM-OK" {
            return Outcome::Ok;
        }
        if let Some(now) = line.strip_prefix("TM-CONFLICT ") {
            return Outcome::Conflict(now.to_string());
        }
        if let Some(why) = line.strip_prefix("TM-ERR ") {
            return Outcome::Failed(why.to_string());
        }
    }
    let err = String::from_utf8_lossy(stderr);
    Outcome::Failed(format!(
        "the script ended with status {} and no result{}",
        status.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
        if err.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", err.trim())
        }
    ))
}

/// A plan path (`~/.ssh/x`, `~/x`, `/abs`) as the scripts take it.
pub fn script_path(display: &str) -> String {
    if let Some(rest) = display.strip_prefix("~/") {
        rest.to_string()
    } else if display == "~" {
        ".".to_string()
    } else {
        display.to_string()
    }
}

#[cfg(test)]
mod process_tests;
#[cfg(test)]
mod reason_tests;
#[cfg(test)]
pub(crate) mod sign_tests;
#[cfg(test)]
mod sshd_reload_tests;
#[cfg(test)]
mod swap_tests;
#[cfg(test)]
mod tests;
