//! The manager's own account, read locally: the probe for `~/.ssh`, files
//! outside it read directly, and its public key as its private key says.

use super::*;
use crate::formats::public_key::PublicKey;
use crate::model::inventory::certificates::CaAgent;
use crate::model::state::AgentKeys;

/// What the manager's own key pair needs said (a note of the run).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum KeyNote {
    #[error("the manager's key {key} could not be read without a passphrase: its public half is taken from {key}.pub")]
    Passphrase { key: String },
    #[error(
        "{key}.pub is missing or unreadable: trustmesh uses the key's own public half ({fingerprint}); \
         put it back with `ssh-keygen -y -f {key} > {key}.pub`"
    )]
    PublicHalfMissing { key: String, fingerprint: String },
}

/// Probe the manager locally. Files outside `~/.ssh` (a custom identity or
/// known_hosts) are read directly.
pub(super) async fn probe_local(
    files: &NodeFiles,
    home: &Path,
    timeout: Duration,
) -> Result<(LiveAccount, Option<KeyNote>), GatherError> {
    let mut all = files.probe_request();
    // The new CA a rotation that did not finish left (its public half
    // read, its private key only stat'ed): the next one moves it aside.
    if let Some((_, ca)) = &files.user_ca {
        let new = format!("{ca}{}", crate::plan::NEW_KEY_SUFFIX);
        all.read.push(format!("{new}.pub"));
        all.stat_only.push(new);
    }
    let (read, stat_only) = (&all.read, &all.stat_only);
    let inside = |n: &String| !n.contains('/') && !n.starts_with('~');
    let req = ProbeRequest {
        read: read.iter().filter(|n| inside(n)).cloned().collect(),
        stat_only: stat_only.iter().filter(|n| inside(n)).cloned().collect(),
        ..all.clone()
    };
    let door = crate::node::shell::ShellDoor::new("manager", &Host::Local, timeout);
    let mut account = door.probe(&req).await.map_err(|e| {
        GatherError::ManagerProbe(match e.finding.reason {
            crate::node::Reason::Probe { error, .. } => error,
            other => other.to_string(),
        })
    })?;
    for name in read.iter().filter(|n| !inside(n)) {
        account.files.push(transport::local::file_state(
            name,
            &manager_file(name, home),
            true,
        ));
    }
    for name in stat_only.iter().filter(|n| !inside(n)) {
        account.files.push(transport::local::file_state(
            name,
            &manager_file(name, home),
            false,
        ));
    }
    // The keys earlier rotations moved aside: a plan removes what is left
    // of their lines.
    let asides: Vec<_> = aside_files(&files.key, home)
        .into_iter()
        .filter(|a| account.file(&a.name).is_none())
        .collect();
    account.files.extend(asides);
    let note = own_public_key(&mut account, files, home, timeout).await?;
    if let Some(agent) = &files.user_ca_agent {
        account.ca_agent = Some(Box::new(agent_keys(agent, home, timeout).await));
    }
    // Read here, by trustmesh itself: the manager's host keys are what its
    // own /etc/ssh holds.
    account.proven_host_keys = account.host_keys.clone();
    Ok((account, note))
}

/// The public halves of the asides a rotation left beside the manager's
/// key (`<key>.old-<tag>.pub`, see [`crate::plan::is_aside_public`]),
/// named like the key is, as the probe names files.
fn aside_files(key: &str, home: &Path) -> Vec<crate::model::state::LiveFile> {
    let path = manager_file(key, home);
    let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|b| b.to_str())) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<crate::model::state::LiveFile> = entries
        .flatten()
        .filter_map(|e| {
            let entry = e.file_name().to_str()?.to_string();
            let name = format!("{key}{}", entry.strip_prefix(base)?);
            crate::plan::is_aside_public(key, &name)
                .then(|| transport::local::file_state(&name, &e.path(), true))
        })
        .filter(|f| {
            f.stat
                .as_ref()
                .is_some_and(|s| s.kind == crate::model::state::FileKind::File)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The manager's public key is what its private key says (`ssh-keygen
/// -y`), not what `<identity>.pub` holds. A missing `.pub` is replaced in
/// the live state by the derived key, and said so. A `.pub` that differs
/// (a dotfile sync overwrote it) stops the run: ssh offers the `.pub`'s key
/// and fails, so no edge from the manager can hold, and trustmesh must not
/// install or swap anything on the strength of it. A key that cannot be
/// read without a passphrase keeps its `.pub`, and that is said too.
async fn own_public_key(
    account: &mut LiveAccount,
    files: &NodeFiles,
    home: &Path,
    timeout: Duration,
) -> Result<Option<KeyNote>, GatherError> {
    let Some(key) = account.file(&files.key).and_then(|f| f.stat.as_ref()) else {
        return Ok(None);
    };
    if key.kind != crate::model::state::FileKind::File {
        return Ok(None);
    }
    let path = manager_file(&files.key, home);
    let shown = path.display().to_string();
    let line = format!(
        "ssh-keygen -y -P '' -f {} </dev/null 2>/dev/null",
        shell_quote(&shown)
    );
    let derived = match Host::Local.run(&line, b"", timeout).await {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => return Ok(Some(KeyNote::Passphrase { key: shown })),
    };
    let fields = |t: &str| PublicKey::parse(t).map(PublicKey::to_strings);
    let Some(derived_key) = fields(&derived) else {
        return Ok(None);
    };
    let pub_file = account.file(&files.public_key);
    let on_disk = pub_file
        .and_then(|f| f.content.as_deref())
        .and_then(|c| fields(&String::from_utf8_lossy(c)));
    let fp = |b: &str| {
        crate::formats::known_hosts::fingerprint_sha256(b)
            .unwrap_or_else(|| "an unreadable key".into())
    };
    match on_disk {
        Some(k) if k == derived_key => Ok(None),
        Some((_, b)) => Err(GatherError::ManagerKeyMismatch {
            key: shown,
            holds: fp(&b),
            real: fp(&derived_key.1),
        }),
        None => {
            let note = KeyNote::PublicHalfMissing {
                fingerprint: fp(&derived_key.1),
                key: shown,
            };
            let stat = pub_file.and_then(|f| f.stat.clone());
            let name = files.public_key.clone();
            account.files.retain(|f| f.name != name);
            account.files.push(crate::model::state::LiveFile {
                name,
                stat,
                content: Some(format!("{derived}\n").into_bytes()),
                unreadable: false,
            });
            Ok(Some(note))
        }
    }
}

/// The keys of the ssh-agent holding the user CA: `ssh-add -L` against
/// its socket, `SSH_AUTH_SOCK` where trustmesh runs or the inventory's.
/// The agent's answer, or why there was none; never an error of the run
/// (the planner blocks signing on it, and plain edges go on).
pub(super) async fn agent_keys(agent: &CaAgent, home: &Path, timeout: Duration) -> AgentKeys {
    let socket = match agent {
        CaAgent::Environment => match std::env::var("SSH_AUTH_SOCK") {
            Ok(s) if !s.trim().is_empty() => s,
            _ => return AgentKeys::NoSocket,
        },
        CaAgent::Socket(s) => manager_file(s, home).display().to_string(),
    };
    let line = format!(
        "SSH_AUTH_SOCK={} ssh-add -L </dev/null",
        shell_quote(&socket)
    );
    let out = match Host::Local.run(&line, b"", timeout).await {
        Ok(out) => out,
        Err(e) => {
            return AgentKeys::Unreachable {
                socket,
                reason: e.to_string(),
            }
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit 1 with "The agent has no identities." is an agent that answered.
    let empty = out.status.code() == Some(1) && stdout.contains("no identities");
    if !out.status.success() && !empty {
        let words = String::from_utf8_lossy(&out.stderr);
        let words = [words.trim(), stdout.trim()].join(" ");
        let words = words.trim();
        return AgentKeys::Unreachable {
            socket,
            reason: if words.is_empty() {
                format!("ssh-add -L ended with {}", out.status)
            } else {
                words.split_whitespace().collect::<Vec<_>>().join(" ")
            },
        };
    }
    let keys = stdout
        .lines()
        .filter(|_| !empty)
        .filter_map(PublicKey::parse)
        .map(|k| format!("{} {}", k.key_type, k.base64))
        .collect();
    AgentKeys::Holds { socket, keys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::scripts::sign_tests::{keygen, Agent};

    fn keys_at(socket: &str) -> AgentKeys {
        let agent = CaAgent::Socket(socket.to_string());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(agent_keys(&agent, Path::new("/"), Duration::from_secs(60)))
    }

    #[test]
    fn the_agent_is_asked_which_keys_it_holds() {
        let agent = Agent::start();
        let socket = agent.socket().to_string();
        // An agent with no key answers, and holds none.
        assert_eq!(
            keys_at(&socket),
            AgentKeys::Holds {
                socket: socket.clone(),
                keys: Vec::new()
            }
        );
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let public = keygen(&ca, "trustmesh-ca:lab");
        agent.add(&ca);
        let key = PublicKey::parse(&public).unwrap();
        assert_eq!(
            keys_at(&socket),
            AgentKeys::Holds {
                socket: socket.clone(),
                keys: vec![format!("{} {}", key.key_type, key.base64)]
            }
        );
        // No agent there: ssh-add's words.
        let nowhere = dir.path().join("none.sock").display().to_string();
        match keys_at(&nowhere) {
            AgentKeys::Unreachable { socket, reason } => {
                assert_eq!(socket, nowhere);
                assert!(!reason.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}
