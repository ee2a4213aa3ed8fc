//! The words of every hint ([`Hint`]) and of the other texts that name a
//! command-line flag: the only place outside the command line where a flag
//! is spelt. The library says what to do as data; this says it, and so
//! holds what shows a [`Hint`]: `Display`, `words()`, its JSON form (its
//! words) and its equality by words, so the model never names this layer.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::model::finding::Hint;
use crate::plan::Unprovable;

impl Hint {
    /// The words a person reads.
    pub fn words(&self) -> Cow<'_, str> {
        words(self)
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.words())
    }
}

/// A hint is what it says: a saved plan's hints come back as
/// [`Hint::Text`], equal to the hint a fresh plan makes with the same words.
impl PartialEq for Hint {
    fn eq(&self, other: &Hint) -> bool {
        self.words() == other.words()
    }
}

/// In the JSON documents and saved plans a hint is its words: a string.
impl Serialize for Hint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.words())
    }
}

/// A hint read back (a saved plan) is its words.
impl<'de> Deserialize<'de> for Hint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hint, D::Error> {
        String::deserialize(d).map(Hint::Text)
    }
}

/// In the JSON documents' schemas a hint is its words: a string.
impl schemars::JsonSchema for Hint {
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        String::schema_name()
    }

    fn json_schema(gen: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(gen)
    }
}

/// What a hint says.
pub fn words(hint: &Hint) -> Cow<'_, str> {
    match hint {
        Hint::Text(s) => Cow::Borrowed(s),
        Hint::AcceptNewHostKeys => Cow::Borrowed(
            "check the fingerprint, then run again with --accept-new-host-keys, or pin it with \
             `host_key:` in the inventory",
        ),
        Hint::ForgetChangedHostKey {
            kh_name,
            known_hosts,
        } => Cow::Owned(format!(
            "if the node was reinstalled, check its new key, then `ssh-keygen -R '{kh_name}' -f \
             {known_hosts}` and run again with --accept-new-host-keys"
        )),
        Hint::AcceptChangedHostKey => Cow::Borrowed(
            "if the node was reinstalled, check its new key out of band, then pin it with \
             `host_key:` in the inventory (or `--accept-changed-host-key NODE=SHA256:...` for one run)",
        ),
        Hint::AskPass => Cow::Borrowed(
            "read it with a password: `trustmesh plan --ask-pass` (nothing is written); \
             `trustmesh apply --ask-pass` then installs the manager's key with it",
        ),
        Hint::AskPassWithoutKey => Cow::Borrowed(
            "read the nodes with a password: `trustmesh plan --ask-pass` (nothing is written); \
             `trustmesh apply --ask-pass` then generates the key and installs it",
        ),
        Hint::InstallOnJump { jump } => Cow::Owned(format!(
            "install it there first: `trustmesh apply --ask-pass --limit {jump}`"
        )),
        Hint::RaiseTimeout { check } => {
            Cow::Owned(format!("{check}; raise --timeout for slow links"))
        }
        Hint::StoppedAnswering => {
            Cow::Borrowed("the host stopped answering; check it and raise --timeout for slow hosts")
        }
        Hint::BatchUnfinished => Cow::Borrowed(
            "the node's writes went as one command, which did not finish: what it did is read \
             again; check the host and raise --timeout for slow hosts",
        ),
        Hint::RotateWithoutLimit { manager } => Cow::Owned(format!(
            "rotate it with every node its key opens in scope: drop --limit, or add them to it{}",
            if *manager {
                " (the manager's key opens every node)"
            } else {
                ""
            }
        )),
        Hint::Adopt => Cow::Borrowed(
            "plan with --adopt to have trustmesh take the line over with the policy, or remove it \
             by hand and trustmesh writes its own",
        ),
        Hint::RemoveStaleHostKey { names, path, node } => Cow::Owned(format!(
            "remove it with `ssh-keygen -R '{names}' -f {path}` (or plan with \
             --remove-stale-host-keys {node})"
        )),
    }
}

/// Why a node is left out of a run: it is not among the nodes `--limit`
/// names.
pub const NOT_IN_LIMIT: &str = "not in --limit";

/// Why a rotation's new key cannot be proven on a node its key opens.
pub fn unprovable(why: Unprovable) -> &'static str {
    match why {
        Unprovable::NotInScope => NOT_IN_LIMIT,
        Unprovable::SftpOnly => "reached over SFTP only: the proof needs a shell",
        Unprovable::Blocked => "blocked",
        Unprovable::Unreachable => "unreachable",
        Unprovable::NotRead => "not read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_say_what_they_always_said() {
        let kh = Hint::ForgetChangedHostKey {
            kh_name: "[127.0.0.5]:2222".into(),
            known_hosts: "/home/a/.ssh/known_hosts".into(),
        };
        assert_eq!(
            words(&kh),
            "if the node was reinstalled, check its new key, then `ssh-keygen -R '[127.0.0.5]:2222' \
             -f /home/a/.ssh/known_hosts` and run again with --accept-new-host-keys"
        );
        assert_eq!(
            words(&Hint::RaiseTimeout {
                check: "check that the host is up".into()
            }),
            "check that the host is up; raise --timeout for slow links"
        );
        assert_eq!(
            words(&Hint::RotateWithoutLimit { manager: true }),
            "rotate it with every node its key opens in scope: drop --limit, or add them to it \
             (the manager's key opens every node)"
        );
        assert_eq!(words(&Hint::text("plain advice")), "plain advice");
        // A saved plan's hint (its words) equals the typed one.
        assert_eq!(Hint::text(words(&Hint::AskPass)), Hint::AskPass);
        assert_eq!(
            serde_json::to_string(&Hint::InstallOnJump { jump: "j".into() }).unwrap(),
            "\"install it there first: `trustmesh apply --ask-pass --limit j`\""
        );
    }
}
