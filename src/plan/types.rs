//! The plan as a value: what `plan` prints and saves, and `apply` carries
//! out. No logic beyond counting and rendering a planned file; the planner
//! that makes it is in [`super`], each file's own planning in
//! `super::authorized_keys` and `super::known_hosts`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::adopt::{Adoption, HandWritten};
use crate::formats::known_hosts as kh;
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

/// Why a node's changes could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum NodeStatus {
    Planned,
    Unreachable {
        step: String,
        reason: String,
        hint: Option<String>,
    },
    Skipped {
        reason: String,
    },
    /// Read, but something on it stops trustmesh from changing it safely.
    Blocked {
        reason: String,
        hint: Option<String>,
    },
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
}

/// Why a node's key is not rotated in this run, although `--rotate-keys`
/// names it. A rotation removes the old key everywhere once the new one
/// is proven, so it is made only when the new key can be proven on every
/// node the key opens; anything less could lock the node out of the
/// others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RotationRefused {
    pub reason: String,
    /// The nodes the key opens that this run cannot prove a new key on
    /// (outside `--limit`, not read, blocked, or without a shell), each
    /// with why: `node2 (not in --limit)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
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
    pub fn render(&self, base: Option<&str>) -> Result<Option<String>, RenderError> {
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

/// The edit of one `authorized_keys` or `known_hosts` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FileEdit {
    pub path: String,
    pub file: FileRole,
    /// The file does not exist yet (created 0600).
    pub create: bool,
    /// Managed lines that stay: (line index in the file, text).
    pub kept: Vec<(usize, String)>,
    /// Managed lines removed: (line index in the file, text).
    pub remove: Vec<(usize, String)>,
    /// Lines trustmesh did not write, removed because the operator asked
    /// for it by name (`--remove-stale-host-keys`): (line index, text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_on_request: Vec<(usize, String)>,
    /// `--adopt`: lines trustmesh did not write that grant a wanted edge,
    /// taken over in place (only their comment, and the edge's policy in
    /// their options, change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopt: Vec<Adoption>,
    /// Lines appended.
    pub add: Vec<PlannedLine>,
    /// A key rotation's last step: this edit (removing the old key's line)
    /// waits until that node's new key is proven and in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_rotation_of: Option<String>,
}

/// A file's new text, as [`FileEdit::render`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The new text, or why it cannot be made.
    pub content: Result<String, RenderError>,
    /// Nodes whose key was to be generated but is not known: their lines
    /// are left out (they come on the next run).
    pub missing: Vec<String>,
}

impl FileEdit {
    /// The file's new text from `base`, the text it was planned from:
    /// managed lines removed, planned lines added, a key known only after
    /// apply taken from `key_of(node)` as `(type, base64)`. Pure: `apply`
    /// writes exactly this, and the tests' simulated apply uses it too.
    pub fn render(
        &self,
        base: &str,
        key_of: &dyn Fn(&str) -> Option<(String, String)>,
    ) -> Rendered {
        let mut add = Vec::new();
        let mut missing = Vec::new();
        for l in &self.add {
            match l.text() {
                Some(t) => add.push(t),
                None => match key_of(&l.node) {
                    Some((t, b)) => add.push(match &l.names {
                        Some(n) => kh::managed_line(n, &t, &b, &l.marker),
                        None => crate::formats::authorized_keys::managed_line_with(
                            l.options.as_deref(),
                            &t,
                            &b,
                            &l.marker,
                        ),
                    }),
                    None => missing.push(l.node.to_string()),
                },
            }
        }
        let remove: Vec<usize> = self.remove.iter().map(|(i, _)| *i).collect();
        let mut by_request: Vec<usize> = self.remove_on_request.iter().map(|(i, _)| *i).collect();
        by_request.extend(
            self.adopt
                .iter()
                .flat_map(|a| a.duplicates.iter().map(|(i, _)| *i)),
        );
        let replace: Vec<(usize, String)> = self
            .adopt
            .iter()
            .map(|a| (a.index, a.new.clone()))
            .collect();
        let content = if !missing.is_empty()
            && add.is_empty()
            && remove.is_empty()
            && by_request.is_empty()
            && replace.is_empty()
        {
            Err(RenderError::NothingToWrite(missing.clone()))
        } else {
            // Write what can be written; the missing keys come on the next
            // run.
            match self.file {
                FileRole::AuthorizedKeys => {
                    let file = crate::formats::authorized_keys::AuthorizedKeysFile::parse(base);
                    super::adopt::check_authorized_keys(&file, &self.adopt)
                        .map_err(RenderError::from)
                        .and_then(|()| {
                            file.apply_edits_replacing(&remove, &by_request, &replace, &add)
                                .map_err(RenderError::AuthorizedKeys)
                        })
                }
                FileRole::KnownHosts => {
                    let file = kh::KnownHostsFile::parse(base);
                    super::adopt::check_known_hosts(&file, &self.adopt)
                        .map_err(RenderError::from)
                        .and_then(|()| {
                            file.apply_edits_replacing(&remove, &by_request, &replace, &add)
                                .map_err(RenderError::KnownHosts)
                        })
                }
            }
        };
        Rendered { content, missing }
    }
}

/// Why a planned file's new text cannot be made. Nothing is written then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Every line to add holds a key that was not generated.
    #[error("the key of {} was not generated, so there is nothing to write", .0.join(", "))]
    NothingToWrite(Vec<String>),
    #[error(transparent)]
    Adoption(#[from] super::adopt::AdoptionMismatch),
    #[error("{0}")]
    AuthorizedKeys(crate::formats::authorized_keys::KeyFileEditError),
    #[error("{0}")]
    KnownHosts(kh::HostFileEditError),
    /// The file's trustmesh block cannot be read (`path: why`).
    #[error("{path}: {source}")]
    Block {
        path: String,
        source: crate::formats::block::BlockError,
    },
}

/// For the callers that still carry their errors as text.
impl From<RenderError> for String {
    fn from(e: RenderError) -> String {
        e.to_string()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    AuthorizedKeys,
    KnownHosts,
}

/// A line to write. Its key may be known only after apply (a key pair not
/// generated yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedLine {
    /// known_hosts only: the host names as written in the line (`addr` or
    /// `[addr]:port`, or its hashed form `|1|salt|hash`).
    pub names: Option<Arc<str>>,
    /// known_hosts only, when `names` is hashed: the name it holds, shown
    /// beside the line in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_name: Option<Arc<str>>,
    /// known_hosts only: the SHA256 fingerprint of the host key added,
    /// shown in the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Arc<str>>,
    pub key_type: Arc<str>,
    /// `None`: known after apply.
    pub base64: Option<Arc<str>>,
    /// The node the marker names (source of the key, or owner of the host
    /// key).
    pub node: Arc<str>,
    /// The line's whole comment: `trustmesh:<cluster>/<node>`.
    pub marker: Arc<str>,
    /// Replaces a managed line for the same node (counted as a change).
    pub replaces: bool,
    /// authorized_keys only: the options field (the edge's policy and the
    /// admin's own options, see [`crate::formats::key_options`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Arc<str>>,
}

impl PlannedLine {
    /// The exact line, when known.
    pub fn text(&self) -> Option<String> {
        let b64 = self.base64.as_deref()?;
        Some(match &self.names {
            Some(n) => kh::managed_line(n, &self.key_type, b64, &self.marker),
            None => crate::formats::authorized_keys::managed_line_with(
                self.options.as_deref(),
                &self.key_type,
                b64,
                &self.marker,
            ),
        })
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
                NodeStatus::Unreachable { .. } => s.unreachable += 1,
                NodeStatus::Blocked { .. } => s.blocked += 1,
                _ => {}
            }
            for c in &n.changes {
                match c {
                    Change::CreateDir { .. }
                    | Change::GenerateKey { .. }
                    | Change::HostCa { .. } => s.add += 1,
                    Change::SignHostKey(c) if c.create => s.add += 1,
                    Change::WriteKrl(k) if k.create => s.add += 1,
                    Change::WriteKrl(_) => s.change += 1,
                    Change::SignHostKey(_) | Change::ReloadSshd(_) => s.change += 1,
                    Change::RotateKey { .. } => s.change += 1,
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
    /// blocked), or a rotation asked for was refused: the plan is not the
    /// whole story.
    pub fn incomplete(&self) -> bool {
        self.nodes.iter().any(|n| {
            n.rotation_refused.is_some()
                || matches!(
                    n.status,
                    NodeStatus::Unreachable { .. } | NodeStatus::Blocked { .. }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(file: FileRole) -> FileEdit {
        FileEdit {
            path: "authorized_keys".into(),
            file,
            create: false,
            kept: Vec::new(),
            remove: Vec::new(),
            remove_on_request: Vec::new(),
            adopt: Vec::new(),
            add: Vec::new(),
            after_rotation_of: None,
        }
    }

    #[test]
    fn why_a_file_cannot_be_rendered_is_typed_with_the_same_words() {
        let mut e = edit(FileRole::AuthorizedKeys);
        e.add.push(PlannedLine {
            names: None,
            clear_name: None,
            fingerprint: None,
            key_type: "ssh-ed25519".into(),
            base64: None,
            node: "w1".into(),
            marker: "trustmesh:c/w1".into(),
            replaces: false,
            options: None,
        });
        let err = e.render("", &|_| None).content.unwrap_err();
        assert_eq!(err, RenderError::NothingToWrite(vec!["w1".into()]));
        assert_eq!(
            err.to_string(),
            "the key of w1 was not generated, so there is nothing to write"
        );

        let mut e = edit(FileRole::KnownHosts);
        e.remove.push((0, "x".into()));
        let err = e.render("a host line\n", &|_| None).content.unwrap_err();
        assert!(matches!(err, RenderError::KnownHosts(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "refusing to remove line 1 of known_hosts: it was not written by trustmesh"
        );

        let mut e = edit(FileRole::AuthorizedKeys);
        e.adopt.push(Adoption {
            index: 0,
            old: "ssh-ed25519 AAAA alice".into(),
            new: "ssh-ed25519 AAAA trustmesh:c/w1".into(),
            node: "w1".into(),
            old_comment: Some("alice".into()),
            duplicates: Vec::new(),
        });
        let err = e
            .render("ssh-ed25519 BBBB bob\n", &|_| None)
            .content
            .unwrap_err();
        assert_eq!(
            err,
            RenderError::Adoption(super::super::AdoptionMismatch {
                index: 0,
                file: "authorized_keys"
            })
        );
        assert_eq!(
            err.to_string(),
            "line 1 of the authorized_keys is not the line planned for adoption"
        );

        let b = BlockWrite {
            path: "/etc/hosts".into(),
            role: BlockRole::HostsBlock,
            marker: "trustmesh:c/w1".into(),
            create: false,
            old: Vec::new(),
            new: None,
            sudo: false,
        };
        let err = b.render(Some("# END trustmesh:c/w1\n")).unwrap_err();
        assert!(matches!(err, RenderError::Block { .. }), "{err:?}");
        assert!(err.to_string().starts_with("/etc/hosts: line 1 "), "{err}");
    }
}
