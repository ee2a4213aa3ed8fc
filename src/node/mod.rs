//! One door per node: everything trustmesh does on a node, behind one
//! trait ([`Door`]), whatever reaches it.
//!
//! - [`shell::ShellDoor`]: the fixed scripts of `src/transport/scripts/`,
//!   run over the node's SSH master connection (or locally, for the
//!   manager; or with a password login, `--ask-pass`);
//! - [`sftp::SftpDoor`]: the SFTP subsystem of the same connection, for a
//!   node without a POSIX shell (`access: sftp`, Windows), on the file
//!   sequences of [`crate::transport::files`];
//! - [`memory::MemoryDoor`]: an account in memory, so tests run the real
//!   [`crate::apply`] on it.
//!
//! The door of a node is chosen once, by [`open`], from the node's access
//! and OS; gather and apply then call the trait and never ask which
//! protocol is behind it, and the planner and verify, which have no door
//! in hand, ask what it can do ([`abilities`]). A door that cannot do an operation answers
//! [`Reason::Unsupported`] (the planner does not plan those: a key is
//! never generated over SFTP on a Unix account, for example).
//!
//! Each operation is an [`Op`], so that one node's whole list can go in
//! one call ([`Door::run_all`]): by default one operation after the other
//! and the state read back; a door that can do the list in one round trip
//! overrides it.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::model::finding::{Finding, Hint};
use crate::model::inventory::{Access as Reach, Node, Os};
use crate::model::state::LiveAccount;
use crate::plan::NodeFiles;
use crate::transport::scripts::Outcome;
use crate::transport::Host;

pub mod memory;
pub mod path;
pub mod sftp;
pub mod shell;

pub use path::NodePath;

/// One thing to do on a node. Paths are [`NodePath`]s; each door renders
/// them its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a folder, 0700: `~/.ssh` itself, or a folder in it.
    MkDir {
        path: NodePath,
    },
    /// Generate a key pair at `path` on the node itself, the node's
    /// marker as its comment: answers [`Outcome::PublicKey`].
    Keygen {
        path: NodePath,
        key_type: String,
        marker: String,
    },
    /// Replace a file trustmesh edits line by line (`authorized_keys`,
    /// `known_hosts`): compare-and-swap, owner and mode kept.
    Replace(Write),
    /// Write (or remove) a file holding a block trustmesh owns
    /// (`~/.ssh/config`, `/etc/hosts`): compare-and-swap too.
    WriteBlock(Write),
    Chmod {
        path: NodePath,
        mode: u32,
    },
    Chown {
        path: NodePath,
        uid: u32,
    },
    /// Remove a `.trustmesh.*` file an interrupted run left.
    RemoveLeftover {
        path: NodePath,
    },
    /// Windows: the ACL sshd demands, set by the planned command line.
    SetAcl {
        path: NodePath,
        command: String,
    },
    /// A rotation: the old pair moved aside, the new one put in place.
    Swap {
        path: NodePath,
        new_path: NodePath,
        aside_path: NodePath,
    },
    /// A rotation's proof: a fresh connection from this node.
    Prove(ProofRequest),
    /// `certificates:`, on the manager only: a public key signed with the
    /// user CA (`ssh-keygen -s`); answers the certificate line as
    /// [`Outcome::PublicKey`].
    Sign(SignRequest),
    /// host_certificates: `sshd -t`; on failure the drop-in is put back
    /// as `restore` (`None`: removed) and sshd is not reloaded; else sshd
    /// is reloaded. As root, or with `sudo -n`.
    ReloadSshd {
        dropin: NodePath,
        restore: Option<Vec<u8>>,
        sudo: bool,
    },
}

/// A certificate to sign on the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The CA's private key; with `agent`, its public key.
    pub ca: NodePath,
    /// The socket of the ssh-agent holding the CA, which signs
    /// (`ssh-keygen -U`).
    pub agent: Option<NodePath>,
    pub key_id: String,
    pub principals: Vec<String>,
    /// Seconds from now.
    pub validity: u64,
    pub serial: u64,
    /// The public key line signed.
    pub public_key: String,
}

/// A compare-and-swap write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub path: NodePath,
    /// The checksum of the file as the plan read it
    /// ([`crate::transport::scripts::cksum`]), or `absent`.
    pub expected: String,
    pub content: Vec<u8>,
    /// `0600`-like octal for a new file, or `keep`.
    pub mode: String,
    /// The file is removed rather than written (a block write only).
    pub remove: bool,
    /// Run with `sudo -n` (a block write only).
    pub sudo: bool,
}

/// A rotation's proof, ready to run: the command line, and the edge's
/// names for reading ssh's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofRequest {
    pub line: String,
    pub source: String,
    pub target: String,
    pub addr: String,
    pub port: u16,
}

impl Op {
    /// The step an error names.
    pub fn step(&self) -> &'static str {
        match self {
            Op::MkDir { .. } => "mkdir",
            Op::Keygen { .. } => "keygen",
            Op::Replace(_) => "replace",
            Op::WriteBlock(_) => "write block",
            Op::Chmod { .. } => "chmod",
            Op::Chown { .. } => "chown",
            Op::RemoveLeftover { .. } => "remove leftover",
            Op::SetAcl { .. } => "set acl",
            Op::Swap { .. } => "swap",
            Op::Prove(_) => "prove",
            Op::Sign(_) => "sign",
            Op::ReloadSshd { .. } => "reload sshd",
        }
    }
}

/// Why a door could not do something (a refusal by the node itself is an
/// [`Outcome::Failed`] or [`Outcome::Conflict`], not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The protocol cannot do this.
    #[error("{0}")]
    Unsupported(String),
    #[error("no answer within {0} s")]
    Timeout(u64),
    /// The connection or the protocol failed, in its words.
    #[error("{0}")]
    Transport(String),
    /// The probe's report cannot be read: why, and what the shell said on
    /// its standard error.
    #[error("{error} (stderr: {stderr})")]
    Probe { error: String, stderr: String },
    /// A request trustmesh cannot put into words for the node (a name a
    /// script refuses).
    #[error("{0}")]
    Request(String),
}

/// A failed operation: the node, and its finding (the step, why as a
/// typed [`Reason`], and what to try).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{node}: {}: {}", finding.step, finding.reason)]
pub struct DoorError {
    pub node: String,
    pub finding: Finding<Reason>,
}

impl DoorError {
    pub fn new(node: &str, step: &str, reason: Reason) -> DoorError {
        DoorError {
            node: node.to_string(),
            finding: Finding::new(step, reason, None),
        }
    }

    pub fn with_hint(mut self, hint: Hint) -> DoorError {
        self.finding.hint = Some(hint);
        self
    }

    /// The node's problem: the step, why, and what to try.
    pub fn into_finding(self) -> Finding {
        self.finding.in_words()
    }
}

/// One operation of a node's list, and the earlier operations of the same
/// list (their indexes) that must succeed for it to run: `~/.ssh` before
/// anything in it, an edit before its mode fix, two edits of one file in
/// order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub op: Op,
    pub after: Vec<usize>,
}

impl Queued {
    /// An operation that needs nothing before it.
    pub fn new(op: Op) -> Queued {
        Queued {
            op,
            after: Vec::new(),
        }
    }
}

/// Did an operation succeed (a refusal, a conflict or an error did not)?
pub fn succeeded(answer: &Option<Result<Outcome, DoorError>>) -> bool {
    matches!(answer, Some(Ok(Outcome::Ok | Outcome::PublicKey(_))))
}

/// What one node's list of operations gave: one answer per operation, in
/// order (`None`: not run, because an operation it waits for did not
/// succeed), and the state read back afterwards.
#[derive(Debug)]
pub struct Outcomes {
    pub results: Vec<Option<Result<Outcome, DoorError>>>,
    pub state: Result<LiveAccount, DoorError>,
}

/// Everything trustmesh does on a node.
pub trait Door: Send + Sync {
    /// The node's name, for errors.
    fn node(&self) -> &str;

    /// The live state of the account: its home, `~/.ssh`, the files of
    /// `files` (private keys stat'ed only), host keys, leftovers. Also what
    /// is read back after an apply.
    fn read_state<'a>(
        &'a self,
        files: &'a NodeFiles,
    ) -> BoxFuture<'a, Result<LiveAccount, DoorError>>;

    /// Do one operation.
    fn run<'a>(&'a self, op: &'a Op) -> BoxFuture<'a, Result<Outcome, DoorError>>;

    /// Do a node's whole ordered list, then read the state back: by
    /// default one operation after the other, each run once the ones it
    /// waits for ([`Queued::after`]) succeeded. The shell door overrides
    /// it to do the whole list and the read-back in one round trip
    /// ([`crate::transport::batch`]); its state is then the node's state
    /// after the list, read in that same round trip.
    fn run_all<'a>(&'a self, list: &'a [Queued], files: &'a NodeFiles) -> BoxFuture<'a, Outcomes> {
        Box::pin(async move {
            let results = one_by_one(self, list).await;
            let state = self.read_state(files).await;
            Outcomes { results, state }
        })
    }
}

/// A node's list, one operation after the other ([`Door::run_all`]'s
/// default).
pub async fn one_by_one<D: Door + ?Sized>(
    door: &D,
    list: &[Queued],
) -> Vec<Option<Result<Outcome, DoorError>>> {
    let mut results: Vec<Option<Result<Outcome, DoorError>>> = Vec::with_capacity(list.len());
    for q in list {
        let ready = q
            .after
            .iter()
            .all(|&d| results.get(d).is_some_and(succeeded));
        results.push(if ready {
            Some(door.run(&q.op).await)
        } else {
            None
        });
    }
    results
}

/// Does trustmesh reach this node's files over SFTP rather than with its
/// shell scripts?
pub fn uses_sftp(node: &Node) -> bool {
    abilities(node).sftp
}

/// What a node's door can do, for those that plan or try edges without a
/// door in hand (the planner, verify, gather before it connects): chosen
/// here with the door, from the node's access and OS, so that no stage
/// outside `node` branches on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abilities {
    /// Commands run in the account (not an account that serves SFTP only):
    /// edges are tried from it, its uid is known, its blocks are written.
    pub commands: bool,
    /// Windows: ACLs, not modes; its own command line.
    pub acls: bool,
    /// trustmesh's shell scripts run there (a rotation, chown).
    pub scripts: bool,
    /// A key pair can be generated there (the scripts, or Windows' own
    /// command line).
    pub keygen: bool,
    /// Its files are read and written over SFTP.
    pub sftp: bool,
}

/// The abilities of `node`'s door (see [`open`]).
pub fn abilities(node: &Node) -> Abilities {
    let commands = node.access != Reach::Sftp;
    let acls = node.os == Os::Windows;
    let scripts = node.access == Reach::Shell && !acls;
    Abilities {
        commands,
        acls,
        scripts,
        keygen: scripts || acls,
        sftp: !commands || acls,
    }
}

/// Registration: the door of `node` over `host`, chosen once from the
/// node's access and OS. The manager (`Host::Local`) and a node reached
/// with a password get the shell scripts; a node without a POSIX shell
/// gets SFTP.
pub fn open<'h>(node: &Node, host: &'h Host, timeout: Duration) -> Box<dyn Door + 'h> {
    match host {
        Host::Remote { .. } if uses_sftp(node) => {
            Box::new(sftp::SftpDoor::new(node, host, timeout))
        }
        _ => Box::new(shell::ShellDoor::new(&node.name, host, timeout)),
    }
}

#[cfg(test)]
mod tests;
