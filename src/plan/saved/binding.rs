//! What a saved plan is bound to, and the checks `apply --plan` makes of
//! it before any host is contacted: the inventory file's content, the
//! flags that shaped the plan, and the plan's age. The host keys accepted
//! on first use are recorded here too; `apply --plan` pins them.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SavedPlan;
use crate::formats::known_hosts;
use crate::formats::public_key::PublicKey;
use crate::model::inventory::limits::MAX_FILE_BYTES;
use crate::model::inventory::{Inventory, InventoryError};

/// How old a saved plan may be by default (`--max-plan-age`).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How far in the future a plan's time may be (clocks differ a little
/// between runs); a plan made later than that is refused.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The flags that shape a plan. `apply --plan` runs with the saved ones; a
/// flag given to it with another value refuses the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFlags {
    /// `--limit`
    pub limit: Vec<String>,
    /// `--rotate-keys`
    pub rotate_keys: Vec<String>,
    /// `--accept-new-host-keys`
    pub accept_new_host_keys: bool,
    /// `--accept-changed-host-key`, each `NODE=SHA256:...`
    pub accept_changed_host_key: Vec<String>,
    /// `--remove-stale-host-keys`
    pub remove_stale_host_keys: Vec<String>,
    /// `--ask-pass`
    pub ask_pass: bool,
    /// `--adopt`
    #[serde(default)]
    pub adopt: bool,
}

impl PlanFlags {
    /// Each list trimmed, sorted, without repeats or empty entries: the
    /// order names are given in does not matter.
    pub fn normalized(mut self) -> PlanFlags {
        for list in [
            &mut self.limit,
            &mut self.rotate_keys,
            &mut self.accept_changed_host_key,
            &mut self.remove_stale_host_keys,
        ] {
            for v in list.iter_mut() {
                *v = v.trim().to_string();
            }
            list.retain(|v| !v.is_empty());
            list.sort();
            list.dedup();
        }
        self
    }

    /// The flags given now that differ from these (the saved ones). A flag
    /// not given (an empty list, a switch off) is taken from the plan.
    fn differences(&self, given: &PlanFlags) -> Vec<Refusal> {
        let saved = self.clone().normalized();
        let given = given.clone().normalized();
        let mut out = Vec::new();
        let lists: [(PlanFlag, &Vec<String>, &Vec<String>); 4] = [
            (PlanFlag::Limit, &saved.limit, &given.limit),
            (PlanFlag::RotateKeys, &saved.rotate_keys, &given.rotate_keys),
            (
                PlanFlag::AcceptChangedHostKey,
                &saved.accept_changed_host_key,
                &given.accept_changed_host_key,
            ),
            (
                PlanFlag::RemoveStaleHostKeys,
                &saved.remove_stale_host_keys,
                &given.remove_stale_host_keys,
            ),
        ];
        let shown = |l: &Vec<String>| {
            if l.is_empty() {
                "not given".to_string()
            } else {
                l.join(",")
            }
        };
        for (flag, s, g) in lists {
            if !g.is_empty() && g != s {
                out.push(Refusal::Flag {
                    flag,
                    given: shown(g),
                    saved: shown(s),
                });
            }
        }
        let switches: [(PlanFlag, bool, bool); 3] = [
            (
                PlanFlag::AcceptNewHostKeys,
                saved.accept_new_host_keys,
                given.accept_new_host_keys,
            ),
            (PlanFlag::AskPass, saved.ask_pass, given.ask_pass),
            (PlanFlag::Adopt, saved.adopt, given.adopt),
        ];
        for (flag, s, g) in switches {
            if g && !s {
                out.push(Refusal::Flag {
                    flag,
                    given: "given".into(),
                    saved: "not given".into(),
                });
            }
        }
        out
    }
}

/// A flag a saved plan is bound to (a field of [`PlanFlags`]); the command
/// line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFlag {
    Limit,
    RotateKeys,
    AcceptNewHostKeys,
    AcceptChangedHostKey,
    RemoveStaleHostKeys,
    AskPass,
    Adopt,
}

/// The host keys of one node accepted on first use while planning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptedHostKey {
    pub node: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints them.
    pub fingerprints: Vec<String>,
}

/// The host keys accepted on first use in a run, by node, from the
/// known_hosts lines gather accepted (`host type base64`).
pub fn accepted_host_keys(inv: &Inventory, accepted: &[String]) -> Vec<AcceptedHostKey> {
    let mut out = Vec::new();
    for (id, node) in inv.nodes.iter().enumerate() {
        let Some(addr) = node.address.as_deref() else {
            continue;
        };
        if id == Inventory::MANAGER {
            continue;
        }
        let name = known_hosts::host_name(addr, node.port);
        let mut fingerprints: Vec<String> = Vec::new();
        for line in accepted {
            let Some((host, key)) = PublicKey::parse_with_host(line) else {
                continue;
            };
            if host != name {
                continue;
            }
            if let Some(fp) = key.fingerprint() {
                if !fingerprints.contains(&fp) {
                    fingerprints.push(fp);
                }
            }
        }
        if !fingerprints.is_empty() {
            out.push(AcceptedHostKey {
                node: node.name.clone(),
                fingerprints,
            });
        }
    }
    out
}

/// The inventory file as read once: its bytes (parsed from these, not
/// read again) and their SHA-256.
#[derive(Debug, Clone)]
pub struct InventoryBytes {
    pub path: PathBuf,
    /// Lowercase hex, as `sha256sum` prints it.
    pub sha256: String,
    bytes: Vec<u8>,
}

impl InventoryBytes {
    /// Read the file (at most the inventory size limit, and one byte more
    /// to know it is over).
    pub fn read(path: &Path) -> Result<InventoryBytes, InventoryError> {
        use std::io::Read as _;
        let io = |source| InventoryError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        Ok(InventoryBytes {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            bytes,
        })
    }

    /// Parse and validate the bytes that were hashed.
    pub fn parse(&self) -> Result<Inventory, InventoryError> {
        let name = self.path.display().to_string();
        if self.bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(InventoryError::TooLarge {
                path: name,
                size: self.bytes.len() as u64,
            });
        }
        let text = std::str::from_utf8(&self.bytes)
            .map_err(|_| InventoryError::NotUtf8 { path: name.clone() })?;
        Inventory::from_str_named(&name, text)
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What `apply --plan` has now, to check a saved plan against.
#[derive(Debug, Clone)]
pub struct Current {
    /// The SHA-256 of the inventory file now (at the saved path).
    pub inventory_sha256: String,
    /// The flags given to `apply --plan`.
    pub flags: PlanFlags,
    pub now: SystemTime,
    /// `--max-plan-age`
    pub max_age: Duration,
}

/// One reason a saved plan is refused before any host is contacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error(
        "the inventory {path} changed since the plan was made: SHA-256 {saved} then, {now} now"
    )]
    InventoryChanged {
        path: String,
        saved: String,
        now: String,
    },
    #[error("{flag:?} differs: {given} now, {saved} in the saved plan")]
    Flag {
        flag: PlanFlag,
        given: String,
        saved: String,
    },
    #[error("the plan was made at {created}, {age} ago: older than its maximum age {max}")]
    TooOld {
        created: String,
        age: String,
        max: String,
    },
    #[error("the plan was made at {created}, later than now ({now}): check this machine's clock")]
    FromTheFuture { created: String, now: String },
}

/// The refusals as a list, one a line.
pub fn list(refusals: &[Refusal], words: impl Fn(&Refusal) -> String) -> String {
    refusals
        .iter()
        .map(|r| format!("\n  - {}", words(r)))
        .collect()
}

/// Every check made before any host is contacted. The flags to apply with
/// (the saved ones), or every difference.
pub(super) fn check(saved: &SavedPlan, now: &Current) -> Result<PlanFlags, Vec<Refusal>> {
    let mut out = Vec::new();
    let stamp = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    match now.now.duration_since(saved.created) {
        Ok(age) if age > now.max_age => out.push(Refusal::TooOld {
            created: stamp(saved.created),
            age: humantime::format_duration(Duration::from_secs(age.as_secs())).to_string(),
            max: humantime::format_duration(now.max_age).to_string(),
        }),
        Ok(_) => {}
        Err(ahead) if ahead.duration() > CLOCK_SKEW => out.push(Refusal::FromTheFuture {
            created: stamp(saved.created),
            now: stamp(now.now),
        }),
        Err(_) => {}
    }
    if saved.inventory_sha256 != now.inventory_sha256 {
        out.push(Refusal::InventoryChanged {
            path: saved.inventory.clone(),
            saved: saved.inventory_sha256.clone(),
            now: now.inventory_sha256.clone(),
        });
    }
    out.extend(saved.flags.differences(&now.flags));
    if out.is_empty() {
        Ok(saved.flags.clone().normalized())
    } else {
        Err(out)
    }
}
