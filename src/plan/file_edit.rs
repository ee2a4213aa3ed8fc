//! A planned file edit as a value: the lines to add, keep or remove in
//! one `authorized_keys` or `known_hosts`, and how its new text is made.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::adopt::Adoption;
use crate::formats::known_hosts as kh;

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
    /// An edit of `path` that adds and removes nothing (yet), for tests.
    #[cfg(test)]
    pub(crate) fn empty(path: &str, file: FileRole, create: bool) -> FileEdit {
        FileEdit {
            path: path.into(),
            file,
            create,
            kept: Vec::new(),
            remove: Vec::new(),
            remove_on_request: Vec::new(),
            adopt: Vec::new(),
            add: Vec::new(),
            after_rotation_of: None,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{BlockRole, BlockWrite};

    fn edit(file: FileRole) -> FileEdit {
        FileEdit::empty("authorized_keys", file, false)
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
