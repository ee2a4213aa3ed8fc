//! A node's host keys as its sshd proves them, never as its account says.
//!
//! Before connecting, trustmesh decides which key(s) it trusts for the node
//! ([`super::hostkeys`]): a pin, the manager's (or the global) known_hosts
//! entries, or keys accepted on first use. They go into a known_hosts file
//! of this run that the node's connections read alone
//! ([`crate::transport::sshconfig::proof_path`]), with `UpdateHostKeys yes`:
//! once authenticated, sshd sends its host keys (`hostkeys-00@openssh.com`)
//! and ssh has it prove each one it does not know
//! (`hostkeys-prove-00@openssh.com`), then rewrites the file with exactly
//! the host's keys, dropping the ones the host does not hold.
//!
//! The file also holds a sentinel: a key no sshd can hold as a host key (a
//! security-key type with a zero key; ssh never negotiates it, since no
//! sshd offers it). ssh removes it whenever it rewrites the file, so a
//! file without the sentinel is one ssh rewrote from the host's proven key
//! list, and a file with it one ssh never updated (a server without the
//! extension, a certificate, a failed proof): then only the one key ssh
//! could have checked counts, if there was only one.
//!
//! The update runs in the master after authentication, before the first
//! command's channel is answered (sshd answers in order), so the file is
//! read back once the node was read through that connection.

use crate::formats::known_hosts::{Annotation, KnownHostsFile};

/// The sentinel's type: a security key, which sshd cannot use as a host key.
pub(super) const SENTINEL_TYPE: &str = "sk-ssh-ed25519@openssh.com";
/// The sentinel's blob: the type, a zero ed25519 key, application `ssh:`.
pub(super) const SENTINEL: &str = "AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29tAAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABHNzaDo=";

/// What trustmesh trusts for a node before connecting to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Trusted {
    /// Plain host keys `(type, base64)`: pinned, known, or accepted now.
    pub keys: Vec<(String, String)>,
    /// `@cert-authority` and `@revoked` lines about the host, as written
    /// in the manager's (or the global) known_hosts.
    pub annotated: Vec<String>,
}

impl Trusted {
    /// The plain keys and annotated lines about `addr:port` in `files`
    /// (the manager's known_hosts, then the global ones), each once.
    pub(super) fn from_files(files: &[&KnownHostsFile], addr: &str, port: u16) -> Trusted {
        let mut t = Trusted::default();
        for file in files {
            for (t_, b) in file.keys_for(addr, port) {
                if !t.keys.iter().any(|(_, ob)| ob == b) {
                    t.keys.push((t_.to_string(), b.to_string()));
                }
            }
            for (i, e) in file.entries() {
                if e.annotation().is_some() && e.matches_host(addr, port) {
                    let line = file.lines()[i].text().to_string();
                    if !t.annotated.contains(&line) {
                        t.annotated.push(line);
                    }
                }
            }
        }
        // A key revoked in one file is not trusted from another.
        let revoked: Vec<String> = files
            .iter()
            .flat_map(|f| f.entries())
            .filter(|(_, e)| {
                e.annotation() == Some(Annotation::Revoked) && e.matches_host(addr, port)
            })
            .map(|(_, e)| e.base64().to_string())
            .collect();
        t.keys.retain(|(_, b)| !revoked.contains(b));
        t
    }

    /// Does a certificate authority vouch for the host?
    pub(super) fn has_authority(&self) -> bool {
        self.annotated
            .iter()
            .any(|l| l.trim_start().starts_with("@cert-authority"))
    }

    /// Nothing to check the host's key against.
    pub(super) fn is_empty(&self) -> bool {
        self.keys.is_empty() && !self.has_authority()
    }
}

/// The node's known_hosts file of this run: the annotated lines, the
/// trusted keys under `name` (the node's [`crate::formats::known_hosts::host_name`]),
/// and the sentinel. With plain keys trusted, a `@cert-authority` line is
/// left out: ssh then asks for a plain host key and has the host prove the
/// others, rather than taking its certificate (host_certificates: the
/// keys trustmesh signs are the ones proven this way).
pub(super) fn proof_file(name: &str, trusted: &Trusted) -> String {
    let mut s = String::new();
    let plain = !trusted.keys.is_empty();
    for l in &trusted.annotated {
        if plain && l.trim_start().starts_with("@cert-authority") {
            continue;
        }
        s.push_str(l);
        s.push('\n');
    }
    for (t, b) in &trusted.keys {
        s.push_str(&format!("{name} {t} {b}\n"));
    }
    if !trusted.keys.is_empty() {
        s.push_str(&format!("{name} {SENTINEL_TYPE} {SENTINEL}\n"));
    }
    s
}

/// The host keys the node's sshd proved, from its known_hosts file of this
/// run as ssh left it (`text`), after a command ran through the connection.
/// `None`: ssh did not update the file, and which key it checked cannot be
/// told (several trusted keys, or a certificate authority).
pub(super) fn proven(
    text: &str,
    addr: &str,
    port: u16,
    trusted: &Trusted,
) -> Option<Vec<(String, String)>> {
    let file = KnownHostsFile::parse(text);
    let keys = file.keys_for(addr, port);
    let updated = !keys.iter().any(|(_, b)| *b == SENTINEL);
    let revoked = |b: &str| {
        trusted
            .annotated
            .iter()
            .any(|l| l.trim_start().starts_with("@revoked") && l.split_whitespace().any(|w| w == b))
    };
    if updated && !keys.is_empty() {
        // In a fixed order: ssh keeps the order of the file it rewrote,
        // which for keys accepted on first use is ssh-keyscan's (the order
        // the answers came in), and a saved plan must equal a fresh one.
        let mut keys: Vec<(String, String)> = keys
            .into_iter()
            .filter(|(_, b)| !revoked(b))
            .map(|(t, b)| (t.to_string(), b.to_string()))
            .collect();
        keys.sort_unstable();
        return Some(keys);
    }
    // Not updated: the one plain key ssh could check, when there was one.
    match trusted.keys.as_slice() {
        [one] if !updated && !trusted.has_authority() => Some(vec![one.clone()]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIK3J1WMEel6TyO2ZT0jHqbXRz3Qb4zWGAA13AmDbWZsr";
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDkPallbiO0V3uydVxsOWbYKgtj/vRipMDxDeOfmKeCqBXJ9L5Em+M3JmrU1ktzU26cX22MSug7PWxm+zjpUS3Hee54k37IK1TxHyVt23btqZpXMTnM3w09Pp4HsTzFJ7r516z+AqvhMbnPkW0ev/B1+F9hMQAB28HqE3nPIqsrIw==";
    const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBJ2/fGTk5a1VPCrN2W0CmAo8lrWpijpGC964TXNjD5YhwwJ4csOASsbLMmbl0mDbXxk4Pzyt94MQP9t96sSP2EY=";

    fn trusted(keys: &[(&str, &str)]) -> Trusted {
        Trusted {
            keys: keys
                .iter()
                .map(|(t, b)| (t.to_string(), b.to_string()))
                .collect(),
            annotated: Vec::new(),
        }
    }

    #[test]
    fn the_sentinel_is_the_key_type_it_says() {
        use base64::Engine as _;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(SENTINEL)
            .unwrap();
        assert_eq!(&blob[4..4 + SENTINEL_TYPE.len()], SENTINEL_TYPE.as_bytes());
    }

    #[test]
    fn a_file_ssh_rewrote_gives_the_hosts_proven_keys() {
        let t = trusted(&[("ssh-ed25519", ED)]);
        let written = proof_file("[10.0.0.2]:2222", &t);
        assert_eq!(
            written,
            format!(
                "[10.0.0.2]:2222 ssh-ed25519 {ED}\n[10.0.0.2]:2222 {SENTINEL_TYPE} {SENTINEL}\n"
            )
        );
        // What ssh leaves after UpdateHostKeys: the host's keys, no sentinel.
        let after = format!(
            "[10.0.0.2]:2222 ssh-ed25519 {ED}\n[10.0.0.2]:2222 ecdsa-sha2-nistp256 {EC}\n[10.0.0.2]:2222 ssh-rsa {RSA}\n"
        );
        assert_eq!(
            proven(&after, "10.0.0.2", 2222, &t).unwrap(),
            vec![
                ("ecdsa-sha2-nistp256".to_string(), EC.to_string()),
                ("ssh-ed25519".to_string(), ED.to_string()),
                ("ssh-rsa".to_string(), RSA.to_string()),
            ]
        );
    }

    #[test]
    fn a_file_ssh_left_alone_proves_only_a_lone_trusted_key() {
        let one = trusted(&[("ssh-ed25519", ED)]);
        let text = proof_file("10.0.0.2", &one);
        assert_eq!(
            proven(&text, "10.0.0.2", 22, &one).unwrap(),
            vec![("ssh-ed25519".to_string(), ED.to_string())]
        );
        // Two trusted keys: which one ssh checked is not known.
        let two = trusted(&[("ssh-ed25519", ED), ("ssh-rsa", RSA)]);
        let text = proof_file("10.0.0.2", &two);
        assert_eq!(proven(&text, "10.0.0.2", 22, &two), None);
        // A certificate authority may have vouched instead.
        let mut ca = one.clone();
        ca.annotated
            .push(format!("@cert-authority *.lab ecdsa-sha2-nistp256 {EC}"));
        let text = proof_file("10.0.0.2", &ca);
        assert_eq!(proven(&text, "10.0.0.2", 22, &ca), None);
    }

    #[test]
    fn revoked_and_annotated_lines_are_carried_and_respected() {
        let manager = KnownHostsFile::parse(&format!(
            "10.0.0.2 ssh-ed25519 {ED}\n10.0.0.2 ssh-rsa {RSA}\n@revoked 10.0.0.2 ssh-rsa {RSA}\n10.0.0.3 ssh-rsa {EC}\n"
        ));
        let global = KnownHostsFile::parse(&format!("10.0.0.2 ssh-ed25519 {ED}\n"));
        let t = Trusted::from_files(&[&manager, &global], "10.0.0.2", 22);
        assert_eq!(t.keys, vec![("ssh-ed25519".to_string(), ED.to_string())]);
        assert_eq!(
            t.annotated,
            vec![format!("@revoked 10.0.0.2 ssh-rsa {RSA}")]
        );
        assert!(!t.is_empty() && !t.has_authority());
        // ssh proved the revoked key too: it is not taken.
        let after = format!("10.0.0.2 ssh-ed25519 {ED}\n10.0.0.2 ssh-rsa {RSA}\n");
        assert_eq!(
            proven(&after, "10.0.0.2", 22, &t).unwrap(),
            vec![("ssh-ed25519".to_string(), ED.to_string())]
        );
        assert!(Trusted::from_files(&[&manager], "10.0.0.9", 22).is_empty());
    }

    #[test]
    fn a_host_with_plain_keys_is_asked_for_them_not_for_its_certificate() {
        let ca = format!("@cert-authority 10.0.0.2 ssh-ed25519 {EC} trustmesh:c/m");
        let manager = KnownHostsFile::parse(&format!("10.0.0.2 ssh-ed25519 {ED}\n{ca}\n"));
        let t = Trusted::from_files(&[&manager], "10.0.0.2", 22);
        assert!(t.has_authority());
        let file = proof_file("10.0.0.2", &t);
        assert!(!file.contains("@cert-authority"), "{file}");
        assert!(file.contains(ED) && file.contains(SENTINEL), "{file}");
        // Only the CA: its line is what ssh checks the host against.
        let only = Trusted::from_files(
            &[&KnownHostsFile::parse(&format!("{ca}\n"))],
            "10.0.0.2",
            22,
        );
        assert_eq!(proof_file("10.0.0.2", &only), format!("{ca}\n"));
    }
}
