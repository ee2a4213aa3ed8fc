//! `host_certificates:` (issue #22 part 3): host keys signed by a host CA
//! held on the manager, served by each node's sshd through a drop-in, and
//! trusted by peers with one `@cert-authority` line. The file's shape
//! (`HostCertificatesSpec`), and the resolved settings ([`HostCerts`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::spans::Path;
use super::{InventoryFile, NodeId, Problem};

/// `host_certificates:`: off when absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostCertificatesSpec {
    /// The host CA's private key, on the manager only (generated there,
    /// 0600, as a planned action when missing; never copied anywhere).
    pub ca: String,
    /// How long a host certificate is valid: a number and a unit, `s`,
    /// `m`, `h`, `d` or `w` (`52w`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,6}[smhdw]$"))]
    pub validity: Option<String>,
    /// A certificate ending within this is signed again (`4w`, the
    /// default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]{0,6}[smhdw]$"))]
    pub renew_before: Option<String>,
}

/// `host_certificates:` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCerts {
    /// The CA's private key on the manager, as written (may start with `~`).
    pub ca: String,
    /// `validity` as written (`ssh-keygen -V +<validity>`), and in seconds.
    pub validity: String,
    pub validity_secs: u64,
    pub renew_before_secs: u64,
    /// Nodes whose entry says `host_certificates: false`: they keep pinned
    /// host keys.
    pub opted_out: Vec<NodeId>,
}

pub const DEFAULT_VALIDITY: &str = "52w";
pub const DEFAULT_RENEW_BEFORE: &str = "4w";

/// `52w` -> seconds; `None` when it is not a number and one unit.
pub fn duration_secs(s: &str) -> Option<u64> {
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    if n == 0 || s.starts_with('0') || s.starts_with('+') {
        return None;
    }
    let mult = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The file's `host_certificates:` checked and resolved; `by_name` finds
/// the nodes' ids.
pub(super) fn resolve(
    file: &InventoryFile,
    by_name: &dyn Fn(&str) -> Option<NodeId>,
    problems: &mut Vec<Problem>,
) -> Option<HostCerts> {
    let spec = file.host_certificates.as_ref()?;
    let root = Path::root().key("host_certificates");
    let mut secs = |key: &'static str, v: Option<&String>, default: &str| -> u64 {
        let text = v.map(String::as_str).unwrap_or(default);
        duration_secs(text).unwrap_or_else(|| {
            problems.push(super::validate::problem(
                root.key(key),
                "trustmesh::inventory::bad_duration",
                format!("`{text}` is not a duration"),
                "not a duration",
                Some("write a number and a unit: s, m, h, d or w (`52w`)".into()),
            ));
            0
        })
    };
    let validity_secs = secs("validity", spec.validity.as_ref(), DEFAULT_VALIDITY);
    let renew_before_secs = secs(
        "renew_before",
        spec.renew_before.as_ref(),
        DEFAULT_RENEW_BEFORE,
    );
    if spec.ca.trim().is_empty() || spec.ca.contains('\n') {
        problems.push(super::validate::problem(
            root.key("ca"),
            "trustmesh::inventory::bad_ca",
            "the host CA's path is empty or holds a line break".into(),
            "not a path",
            Some("name the CA's private key on the manager (`~/.ssh/trustmesh_host_ca`)".into()),
        ));
    }
    if validity_secs != 0 && renew_before_secs >= validity_secs {
        problems.push(super::validate::problem(
            root.key("renew_before"),
            "trustmesh::inventory::renew_before_validity",
            "renew_before is not shorter than validity: every run would sign again".into(),
            "not shorter than validity",
            Some(
                "make renew_before shorter than validity (`validity: 52w`, `renew_before: 4w`)"
                    .into(),
            ),
        ));
    }
    let opted_out = file
        .bastions
        .iter()
        .chain(&file.workers)
        .filter(|n| n.host_certificates == Some(false))
        .filter_map(|n| by_name(&n.name))
        .collect();
    Some(HostCerts {
        ca: spec.ca.clone(),
        validity: spec
            .validity
            .clone()
            .unwrap_or_else(|| DEFAULT_VALIDITY.to_string()),
        validity_secs,
        renew_before_secs,
        opted_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_a_number_and_one_unit() {
        assert_eq!(duration_secs("52w"), Some(52 * 604_800));
        assert_eq!(duration_secs("90s"), Some(90));
        assert_eq!(duration_secs("1m"), Some(60));
        for bad in ["", "w", "0d", "07d", "+4w", "4y", "4 w", "-1d", "4ww"] {
            assert_eq!(duration_secs(bad), None, "{bad}");
        }
    }
}
