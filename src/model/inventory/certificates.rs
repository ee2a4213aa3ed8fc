//! User certificates (`certificates:`): the settings, resolved, and what
//! each edge's certificate must name.
//!
//! A certificate edge `A -> B` is one between two nodes in certificate
//! mode (not `certificates: false`), other than the manager's own forward
//! edges: those stay plain key lines, the ones trustmesh manages every
//! node through, so that no certificate's end can lock the manager out.
//! B trusts the user CA for the principals naming *what A is* for that
//! edge, never a list of sources where a group can be used:
//!
//! - `<cluster>:group:<name>` for a mesh entry `- group: NAME`;
//! - `<cluster>:reverse` for `reverse: all`;
//! - `<cluster>:node:<A>` for an edge given node by node (a reverse list,
//!   a mesh entry of names).
//!
//! A's certificate holds every principal of its outgoing certificate
//! edges. Adding a worker to a group or to `reverse: all` then changes no
//! other node's `authorized_keys`: the new worker's certificate carries
//! the principal its peers already trust.

use super::model::{AgentSpec, InventoryFile, MeshEntry, Reverse};
use super::spans::Path;
use super::validate::problem;
use super::{Inventory, NodeId, Problem};

/// The default `ca`.
pub const DEFAULT_CA: &str = "~/.ssh/trustmesh_ca";
/// The default `validity`: 7 days.
pub const DEFAULT_VALIDITY: u64 = 7 * 86400;
/// The default `renew_before`: 2 days.
pub const DEFAULT_RENEW_BEFORE: u64 = 2 * 86400;

/// The ssh-agent that holds the user CA (`certificates: { agent: ... }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaAgent {
    /// `agent: true`: the agent of `SSH_AUTH_SOCK` where trustmesh runs.
    Environment,
    /// `agent: PATH`: the agent listening there (as written: absolute, or
    /// `~/...`).
    Socket(String),
}

/// `certificates:`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificates {
    /// The CA's private key on the manager, as written (may start with
    /// `~`); with [`Certificates::agent`], its public key (`.pub`).
    pub ca: String,
    /// The ssh-agent holding the CA's private half: trustmesh never makes
    /// a CA then, and signs with `ssh-keygen -U`. `None`: `ca` is a file.
    pub agent: Option<CaAgent>,
    /// Seconds a certificate is valid.
    pub validity: u64,
    /// Seconds before its end a certificate is renewed.
    pub renew_before: u64,
    /// Per node: `certificates: false` (plain key lines).
    pub plain: Vec<bool>,
    /// The group of each mesh entry (in [`Inventory::mesh`] order), `None`
    /// for a list of names.
    pub mesh_groups: Vec<Option<String>>,
    /// `reverse: all`.
    pub reverse_all: bool,
    /// Per node: the mesh entries it is in (indices, ascending).
    pub entries: Vec<Vec<usize>>,
}

/// `7d`, `12h`, `30m`, `45s`, `2w` in seconds.
pub fn parse_duration(s: &str) -> Result<u64, &'static str> {
    let s = s.trim();
    let unit = s.chars().last().ok_or("is empty")?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 7 * 86400,
        _ => return Err("ends without a unit (`s`, `m`, `h`, `d` or `w`)"),
    };
    let digits = &s[..s.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("is not a whole number followed by a unit");
    }
    let n: u64 = digits.parse().map_err(|_| "is too large")?;
    match n.checked_mul(per) {
        Some(0) => Err("is zero"),
        Some(v) if v <= 10 * 365 * 86400 => Ok(v),
        _ => Err("is longer than ten years"),
    }
}

/// `7d` for 604800 seconds: the largest unit that divides it.
pub fn format_duration(secs: u64) -> String {
    for (unit, per) in [('w', 7 * 86400), ('d', 86400), ('h', 3600), ('m', 60)] {
        if secs >= per && secs.is_multiple_of(per) {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

/// One duration key at `p`: its value, or a problem.
fn duration_at(p: Path, value: Option<&str>, default: u64, problems: &mut Vec<Problem>) -> u64 {
    let Some(v) = value else { return default };
    match parse_duration(v) {
        Ok(d) => d,
        Err(why) => {
            problems.push(problem(
                p,
                "trustmesh::inventory::duration",
                format!("`{v}` {why}"),
                "not a duration",
                Some("write a whole number and a unit: `45s`, `30m`, `12h`, `7d` or `2w`".into()),
            ));
            default
        }
    }
}

/// `agent:` at `certificates` (`p`): its agent, or none (absent, `false`,
/// or a socket that cannot be one, said as a problem).
fn agent_at(p: &Path, spec: Option<&AgentSpec>, problems: &mut Vec<Problem>) -> Option<CaAgent> {
    let socket = match spec? {
        AgentSpec::Switch(on) => return on.then_some(CaAgent::Environment),
        AgentSpec::Socket(s) => s,
    };
    let at = p.key("agent");
    let usable = socket.starts_with('/') || socket.starts_with("~/");
    if socket.trim().is_empty() || !usable {
        problems.push(problem(
            at,
            "trustmesh::inventory::ca_agent",
            if socket.trim().is_empty() {
                "`agent:` names no socket".to_string()
            } else {
                format!("`agent: {socket}` is not an absolute path to the agent's socket")
            },
            "no agent socket",
            Some("write `agent: true` for the agent of SSH_AUTH_SOCK where trustmesh runs, or the socket's absolute path (`agent: ~/.ssh/agent.sock`)".into()),
        ));
        return None;
    }
    super::checks::check_path_value(&at, socket, "ssh-agent socket", problems);
    Some(CaAgent::Socket(socket.clone()))
}

/// `ca` names the half it must: the private key of a CA file, the public
/// key (`.pub`) of a CA held by an agent.
fn check_ca_half(p: &Path, ca: &str, agent: bool, problems: &mut Vec<Problem>) {
    let public = ca.ends_with(".pub");
    let (message, label, help) = match (agent, public) {
        (true, false) => (
            format!("with `agent:`, `ca` names the user CA's public key, and `{ca}` is not a `.pub` file"),
            "not a public key",
            format!("name the CA's public key (`ca: {ca}.pub`); its private half stays in the agent (`ssh-add {ca}`)"),
        ),
        (false, true) => (
            format!("`{ca}` is a public key: without `agent:`, `ca` names the user CA's private key"),
            "a public key",
            format!(
                "name the private key (`ca: {}`), or add `agent: true` when an ssh-agent holds the CA",
                ca.trim_end_matches(".pub")
            ),
        ),
        _ => return,
    };
    problems.push(problem(
        p.key("ca"),
        "trustmesh::inventory::ca_agent",
        message,
        label,
        Some(help),
    ));
}

/// Per node (the manager first, then bastions, then workers, as
/// [`Inventory::nodes`]): `certificates: false`.
pub(super) fn plain_nodes(file: &InventoryFile, node_count: usize) -> Vec<bool> {
    let mut plain = vec![false];
    plain.extend(
        file.bastions
            .iter()
            .chain(&file.workers)
            .map(|n| n.certificates == Some(false)),
    );
    plain.resize(node_count, false);
    plain
}

/// Resolve `certificates:` and the nodes' `certificates: false` (the
/// manager first, then bastions, then workers, as [`Inventory::nodes`]).
pub(super) fn resolve(
    file: &InventoryFile,
    node_count: usize,
    mesh: &[Vec<NodeId>],
    problems: &mut Vec<Problem>,
) -> Option<Certificates> {
    let root = Path::root();
    let spec = file.certificates.as_ref()?;
    let p = root.key("certificates");
    // An agent asked for, even one whose socket is wrong, takes `ca` as
    // its public key.
    let with_agent = !matches!(spec.agent, None | Some(AgentSpec::Switch(false)));
    let agent = agent_at(&p, spec.agent.as_ref(), problems);
    let ca = spec.ca.clone().unwrap_or_else(|| {
        if with_agent {
            format!("{DEFAULT_CA}.pub")
        } else {
            DEFAULT_CA.to_string()
        }
    });
    if spec.ca.is_some() {
        super::checks::check_path_value(&p.key("ca"), &ca, "certificate authority", problems);
        check_ca_half(&p, &ca, with_agent, problems);
    }
    let validity = duration_at(
        p.key("validity"),
        spec.validity.as_deref(),
        DEFAULT_VALIDITY,
        problems,
    );
    let renew_before = duration_at(
        p.key("renew_before"),
        spec.renew_before.as_deref(),
        DEFAULT_RENEW_BEFORE,
        problems,
    );
    if renew_before >= validity {
        problems.push(problem(
            p.key("renew_before"),
            "trustmesh::inventory::renew_before",
            format!(
                "`renew_before` ({}) is not shorter than `validity` ({}): every apply would renew every certificate",
                format_duration(renew_before),
                format_duration(validity)
            ),
            "not shorter than validity",
            Some("make `renew_before` a fraction of `validity`, e.g. `validity: 7d` with `renew_before: 2d`".into()),
        ));
    }
    let plain = plain_nodes(file, node_count);
    let mesh_groups = file
        .mesh
        .iter()
        .map(|m| match m {
            MeshEntry::Group(g) => Some(g.group.clone()),
            MeshEntry::Names(_) => None,
        })
        .collect();
    let mut entries = vec![Vec::new(); node_count];
    for (i, members) in mesh.iter().enumerate() {
        for &m in members {
            if entries[m].last() != Some(&i) {
                entries[m].push(i);
            }
        }
    }
    Some(Certificates {
        entries,
        ca,
        agent,
        validity,
        renew_before,
        plain,
        mesh_groups,
        reverse_all: matches!(file.reverse, Reverse::All(_)),
    })
}

impl Inventory {
    /// Whether `source -> target` is a certificate edge: certificates on,
    /// neither end `certificates: false`, and not one of the manager's
    /// forward edges.
    pub fn is_certificate_edge(&self, source: NodeId, target: NodeId) -> bool {
        self.certificates.as_ref().is_some_and(|c| {
            source != Inventory::MANAGER
                && !c.plain.get(source).copied().unwrap_or(true)
                && !c.plain.get(target).copied().unwrap_or(true)
        })
    }

    /// The principals a certificate of `source` needs for the edge
    /// `source -> target`, and a target trusts the CA for: sorted, no
    /// repeats; empty when it is not a certificate edge.
    pub fn edge_principals(&self, source: NodeId, target: NodeId) -> Vec<String> {
        let Some(c) = self.certificates.as_ref() else {
            return Vec::new();
        };
        if !self.is_certificate_edge(source, target) {
            return Vec::new();
        }
        let cluster = &self.cluster;
        let node = || format!("{cluster}:node:{}", self.nodes[source].name);
        let mut out = Vec::new();
        if target == Inventory::MANAGER {
            out.push(if c.reverse_all {
                format!("{cluster}:reverse")
            } else {
                node()
            });
        } else {
            let theirs = &c.entries[target];
            for &i in &c.entries[source] {
                if theirs.binary_search(&i).is_err() {
                    continue;
                }
                out.push(match c.mesh_groups.get(i).cloned().flatten() {
                    Some(g) => format!("{cluster}:group:{g}"),
                    None => node(),
                });
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The key id of `node`'s certificate: its marker.
    pub fn certificate_id(&self, node: NodeId) -> String {
        self.marker(&self.nodes[node].name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("7d"), Ok(7 * 86400));
        assert_eq!(parse_duration("1m"), Ok(60));
        assert_eq!(parse_duration("2w"), Ok(14 * 86400));
        assert_eq!(parse_duration("45s"), Ok(45));
        assert!(parse_duration("0d").is_err());
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("-1d").is_err());
        assert!(parse_duration("1.5d").is_err());
        assert!(parse_duration("99999999999999w").is_err());
        assert_eq!(format_duration(7 * 86400), "1w");
        assert_eq!(format_duration(2 * 86400), "2d");
        assert_eq!(format_duration(90), "90s");
    }
}
