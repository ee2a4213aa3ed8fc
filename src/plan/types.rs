//! The plan as a value: what `plan` prints and saves, and `apply` carries
//! out. No logic beyond counting and rendering a planned file; the planner
//! that makes it is in [`super`], each file's own planning in
//! `super::authorized_keys` and `super::known_hosts`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::adopt::HandWritten;
use super::{FileEdit, RenderError};
use crate::model::finding::{Finding, Hint};
use crate::model::state::Login;

/// Version of the JSON plan format (`plan --json`, `plan --out`). 3 added
/// the `write_block` action (ssh_config, /etc/hosts), the `options` of
/// authorized_keys lines, the `clear_name` of hashed known_hosts lines and
/// the plan's `header`; a plan saved by an older trustmesh is refused.
pub const PLAN_FORMAT_VERSION: u32 = 3;

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// One entry per node in scope, in inventory order.
    pub nodes: Vec<NodePlan>,
    /// Things the whole run should know (options not handled yet...).
    pub notes: Vec<String>,
    /// Said before everything else: what every edge of this plan allows
    /// (`options.restrict_source` off...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<String>,
}

/// Why a node's changes could not be planned. Its JSON form (the fields
/// each status always had) is `super::wire`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeStatus {
    Planned,
    /// Not read: the gather step that failed, why, and what to try.
    Unreachable(Finding),
    Skipped {
        reason: String,
    },
    /// Read, but something on it stops trustmesh from changing it safely
    /// (the step is [`Finding::PLAN`]).
    Blocked(Finding),
}

/// What is planned on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodePlan {
    pub node: String,
    /// `user@address:port`, or `local` for the manager.
    pub target: String,
    /// How apply reaches the node.
    #[serde(default)]
    pub access: Login,
    #[serde(flatten)]
    pub status: NodeStatus,
    pub changes: Vec<Change>,
    /// Things a person should know that trustmesh will not change.
    pub warnings: Vec<String>,
    /// What each file looked like when planned, so apply can refuse to
    /// overwrite an edit made since (compare-and-swap).
    pub base: Vec<FileBase>,
    /// Wanted edges already granted by a line trustmesh did not write: not
    /// changes, and left alone unless `--adopt` takes them over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_by_hand: Vec<HandWritten>,
    /// `--rotate-keys` named this node and the rotation was refused:
    /// nothing is planned for it, and the plan is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_refused: Option<RotationRefused>,
    /// `certificates:` with the user CA in an ssh-agent: a certificate is
    /// due here (or, on the manager, the CA's public key is unreadable)
    /// and the agent cannot sign in this run: why, and what to do. The
    /// rest of the node is planned; the plan is not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_blocked: Option<Finding>,
}

/// Why a node's key is not rotated in this run, although `--rotate-keys`
/// names it. A rotation removes the old key everywhere once the new one
/// is proven, so it is made only when the new key can be proven on every
/// node the key opens; anything less could lock the node out of the
/// others. Its JSON form is `super::wire`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRefused {
    /// Why, and what to try (the step is [`Finding::PLAN`]).
    pub finding: Finding,
    /// The nodes the key opens that this run cannot prove a new key on
    /// (outside `--limit`, not read, blocked, or without a shell), each
    /// with why: `node2 (not in --limit)`.
    pub missing: Vec<String>,
}

impl RotationRefused {
    pub fn new(reason: String, missing: Vec<String>, hint: Option<Hint>) -> RotationRefused {
        RotationRefused {
            finding: Finding::new(Finding::PLAN, reason, hint),
            missing,
        }
    }
}

/// Why a new key cannot be proven on a node the key opens; said in
/// [`RotationRefused::missing`] by [`crate::output::hints::unprovable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unprovable {
    /// Outside `--limit`.
    NotInScope,
    /// Reached over SFTP only: the proof needs a shell.
    SftpOnly,
    /// Read, but blocked.
    Blocked,
    Unreachable,
    NotRead,
}

/// The state a file was planned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileBase {
    pub path: String,
    /// `None`: the file did not exist.
    pub content: Option<String>,
}

/// One change on a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// `mkdir -m 0700 ~/.ssh`
    CreateDir { path: String, mode: u32 },
    /// `chmod`
    Mode { path: String, from: u32, to: u32 },
    /// `chown` to the account (needs privileges the account may not have).
    Owner { path: String, from: u32, to: u32 },
    /// `ssh-keygen -t TYPE -a 100 -N '' -C trustmesh:NODE -f PATH`, on the
    /// node itself.
    GenerateKey { path: String, key_type: String },
    /// `--rotate-keys`: a new key made beside the old one (`new_path`),
    /// authorized wherever the old one is, proven with a fresh connection
    /// to each of those nodes, and only then put in place, the old pair
    /// moved aside to `aside_path` on the node (never copied off it); the
    /// old lines go last (edits with `after_rotation_of`).
    RotateKey {
        path: String,
        key_type: String,
        new_path: String,
        aside_path: String,
        old_fingerprint: String,
        /// The nodes the key opens: the new key is proven on each.
        targets: Vec<String>,
    },
    /// Remove a temporary file an interrupted apply left in `~/.ssh`.
    RemoveLeftover { path: String },
    /// The new pair (`path`, `<key>.trustmesh-new`, with its `.pub` and
    /// `-cert.pub`) a rotation that did not finish left, trustmesh's own:
    /// moved aside to `aside_path` on its node (kept, never deleted) before
    /// this run's rotation makes a new one there; `why` says what becomes
    /// of its lines.
    MoveAside {
        path: String,
        aside_path: String,
        fingerprint: String,
        why: String,
    },
    /// Windows: the ACL sshd demands on a file (SYSTEM and Administrators
    /// only, inheritance removed), set by `command` (`icacls ...`) after
    /// every write of it: a file renamed into place carries the folder's
    /// inherited ACL.
    SetAcl { path: String, command: String },
    /// Managed lines removed from and added to a file.
    EditFile(FileEdit),
    /// A marked block, or a whole file, that trustmesh owns
    /// (options.ssh_config, options.hosts_file, host_certificates).
    WriteBlock(BlockWrite),
    /// `certificates:`: the user CA made on the manager (`ssh-keygen -t
    /// ed25519 -N '' -C COMMENT -f PATH`, 0600), never copied off it.
    CreateUserCa { path: String, comment: String },
    /// `--rotate-keys @ca`: a new user CA made on the manager beside the
    /// old one (`new_path`, 0600, never copied off it), trusted beside the
    /// old CA on every target, every certificate signed again with it and
    /// each certificate edge proven with a fresh connection; only then is
    /// the new CA put in place, the old pair archived as `aside_path` on
    /// the manager, and the old CA's lines removed (edits with
    /// `after_rotation_of` naming the user CA). A failed proof keeps the
    /// old CA trusted everywhere.
    RotateUserCa {
        path: String,
        new_path: String,
        aside_path: String,
        comment: String,
        old_fingerprint: String,
        /// Each certificate edge proven: (source, target).
        proofs: Vec<(String, String)>,
    },
    /// `certificates:`: a certificate signed on the manager and written
    /// beside the node's key.
    IssueCertificate(super::CertIssue),
    /// host_certificates: the host CA made on the manager (`ssh-keygen -t
    /// ed25519`, 0600), never copied anywhere.
    HostCa { path: String },
    /// host_certificates: a host key signed on the manager, written to the node.
    SignHostKey(super::HostCertificate),
    /// host_certificates: `sshd -t`, then sshd reloaded.
    ReloadSshd(super::SshdReload),
    /// host_certificates: the KRL of retired nodes' certificates, made on
    /// the manager and written to the node.
    WriteKrl(super::Krl),
}

/// A file's whole text, as apply writes it (every line with its ending).
pub type FileText = String;

/// What a [`BlockWrite`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BlockRole {
    /// `~/.ssh/config.d/trustmesh-<cluster>`: the whole file.
    SshConfigFile,
    /// The `Include` block in `~/.ssh/config`.
    SshConfigInclude,
    /// The block in `/etc/hosts`.
    HostsBlock,
    /// `/etc/ssh/sshd_config.d/trustmesh-<cluster>.conf`: the whole file.
    SshdDropin,
    /// `/etc/ssh/ssh_config.d/trustmesh-<cluster>.conf`: the whole file.
    SshDropin,
}

/// A block (or a whole file) trustmesh owns, set to `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BlockWrite {
    pub path: String,
    pub role: BlockRole,
    /// The block's `trustmesh:<cluster>/<node>`.
    pub marker: String,
    /// The file does not exist yet.
    pub create: bool,
    /// The managed lines as they are (the diff's old side).
    pub old: Vec<String>,
    /// The managed lines planned; `None`: the block (or the file) goes.
    /// Shared: every node's `/etc/hosts` block holds the same lines.
    pub new: Option<Arc<[String]>>,
    /// Written with `sudo -n` (the account is not root).
    #[serde(default)]
    pub sudo: bool,
}

impl BlockWrite {
    /// The file's new text from `base` (what the plan read; `None`: no
    /// file), or `None` when the file itself is removed. Pure: apply
    /// writes exactly this.
    pub fn render(&self, base: Option<&str>) -> Result<Option<FileText>, RenderError> {
        let base = base.unwrap_or_default();
        let new = self.new.as_deref();
        let text = match self.role {
            BlockRole::SshConfigFile | BlockRole::SshdDropin | BlockRole::SshDropin => {
                return Ok(new.map(crate::formats::ssh_config::file_text));
            }
            BlockRole::SshConfigInclude => {
                crate::formats::ssh_config::with_include(base, &self.marker, new)
            }
            BlockRole::HostsBlock => {
                crate::formats::hosts_file::with_block(base, &self.marker, new)
            }
        };
        text.map(Some).map_err(|source| RenderError::Block {
            path: self.path.clone(),
            source,
        })
    }

    /// The mode a new file gets.
    pub fn create_mode(&self) -> u32 {
        match self.role {
            BlockRole::HostsBlock | BlockRole::SshdDropin | BlockRole::SshDropin => 0o644,
            _ => 0o600,
        }
    }
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(rename = "Summary")]
pub struct PlanSummary {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
    pub unreachable: usize,
    pub blocked: usize,
}

impl Plan {
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary::default();
        for n in &self.nodes {
            match n.status {
                NodeStatus::Unreachable(_) => s.unreachable += 1,
                NodeStatus::Blocked(_) => s.blocked += 1,
                _ => {}
            }
            for c in &n.changes {
                match c {
                    Change::CreateDir { .. }
                    | Change::GenerateKey { .. }
                    | Change::CreateUserCa { .. }
                    | Change::HostCa { .. } => s.add += 1,
                    Change::IssueCertificate(i) if i.replaces => s.change += 1,
                    Change::IssueCertificate(_) => s.add += 1,
                    Change::SignHostKey(c) if c.create => s.add += 1,
                    Change::WriteKrl(k) if k.remove => s.remove += 1,
                    Change::WriteKrl(k) if k.create => s.add += 1,
                    Change::WriteKrl(_) => s.change += 1,
                    Change::SignHostKey(_) | Change::ReloadSshd(_) => s.change += 1,
                    Change::RotateKey { .. }
                    | Change::RotateUserCa { .. }
                    | Change::MoveAside { .. } => s.change += 1,
                    Change::RemoveLeftover { .. } => s.remove += 1,
                    Change::Mode { .. } | Change::Owner { .. } | Change::SetAcl { .. } => {
                        s.change += 1
                    }
                    Change::WriteBlock(b) => match (&b.new, b.old.is_empty() && b.create) {
                        (None, _) => s.remove += 1,
                        (Some(_), true) => s.add += 1,
                        (Some(_), false) if b.old.is_empty() => s.add += 1,
                        (Some(_), false) => s.change += 1,
                    },
                    Change::EditFile(e) => {
                        let replaced = e.add.iter().filter(|l| l.replaces).count();
                        s.change += replaced;
                        s.add += e.add.len() - replaced;
                        s.remove +=
                            e.remove.len().saturating_sub(replaced) + e.remove_on_request.len();
                        s.change += e.adopt.len();
                        s.remove += e.adopt.iter().map(|a| a.duplicates.len()).sum::<usize>();
                    }
                }
            }
        }
        s
    }

    /// True when a node in scope could not be planned (unreachable or
    /// blocked), a rotation asked for was refused, or a certificate due
    /// cannot be signed: the plan is not the whole story.
    pub fn incomplete(&self) -> bool {
        self.nodes.iter().any(|n| {
            n.rotation_refused.is_some()
                || n.signing_blocked.is_some()
                || matches!(
                    n.status,
                    NodeStatus::Unreachable(_) | NodeStatus::Blocked(_)
                )
        })
    }

    /// The rotations `--rotate-keys` asked for that were refused: (node,
    /// why).
    pub fn refused_rotations(&self) -> impl Iterator<Item = (&str, &RotationRefused)> {
        self.nodes
            .iter()
            .filter_map(|n| Some((n.node.as_str(), n.rotation_refused.as_ref()?)))
    }

    /// True when apply would change nothing.
    pub fn is_empty(&self) -> bool {
        self.nodes.iter().all(|n| n.changes.is_empty())
    }
}
