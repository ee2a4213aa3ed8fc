//! OpenSSH user certificates (`<key>-cert.pub`) as trustmesh reads them,
//! with the `ssh-key` crate, and the `cert-authority` lines of
//! `authorized_keys` that trust a CA for some principals.

use ssh_key::{Certificate, PublicKey as SshPublicKey};

/// The certificate file ssh picks up beside a private key: `id_ed25519`
/// -> `id_ed25519-cert.pub`.
pub fn file_name(key: &str) -> String {
    format!("{key}-cert.pub")
}

/// What a certificate on a node says, for the planner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub key_id: String,
    pub serial: u64,
    /// Sorted.
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
    /// The certified key: (type, base64).
    pub key: (String, String),
    /// The CA that signed it: (type, base64).
    pub ca: (String, String),
    /// A user certificate (not a host one).
    pub user: bool,
}

/// `type base64` of a key, as a public key line has them.
fn key_fields(k: &ssh_key::public::KeyData) -> Option<(String, String)> {
    let line = SshPublicKey::from(k.clone()).to_openssh().ok()?;
    let mut it = line.split_whitespace();
    Some((it.next()?.to_string(), it.next()?.to_string()))
}

/// Whether two `type base64` pairs are the same key (the same text, or
/// the same key once decoded: base64 may be written more than one way).
pub fn same_key(a: (&str, &str), b: (&str, &str)) -> bool {
    if a == b {
        return true;
    }
    let data = |(t, k): (&str, &str)| {
        SshPublicKey::from_openssh(&format!("{t} {k}"))
            .ok()
            .map(|p| p.key_data().clone())
    };
    matches!((data(a), data(b)), (Some(x), Some(y)) if x == y)
}

/// Parse a certificate file's text; `None` when it is not one.
pub fn parse(text: &str) -> Option<CertInfo> {
    let line = text.lines().find(|l| !l.trim().is_empty())?.trim();
    let cert = Certificate::from_openssh(line).ok()?;
    let mut principals = cert.valid_principals().to_vec();
    principals.sort_unstable();
    Some(CertInfo {
        key_id: cert.key_id().to_string(),
        serial: cert.serial(),
        principals,
        valid_after: cert.valid_after(),
        valid_before: cert.valid_before(),
        key: key_fields(cert.public_key())?,
        ca: key_fields(cert.signature_key())?,
        user: cert.cert_type().is_user(),
    })
}

/// The options field of a `cert-authority` line: `cert-authority`, the
/// principals, then the edge's policy options (`restrict`,
/// `command="internal-sftp"`, `from=`, `expiry-time=`: sshd applies each
/// of them to a connection authenticated through a CA line too).
pub fn authority_options(principals: &[String], policy: Option<&str>) -> String {
    let mut s = format!("cert-authority,principals=\"{}\"", principals.join(","));
    if let Some(p) = policy {
        s.push(',');
        s.push_str(p);
    }
    s
}

/// Whether an options field is a `cert-authority` line's.
pub fn is_authority(options: Option<&str>) -> bool {
    options.is_some_and(|o| {
        crate::formats::key_options::split(o)
            .iter()
            .any(|x| x.eq_ignore_ascii_case("cert-authority"))
    })
}

/// The principals of a `cert-authority` line's options, if any.
pub fn line_principals(options: &str) -> Vec<String> {
    crate::formats::key_options::split(options)
        .iter()
        .find_map(|o| {
            let (name, value) = o.split_once('=')?;
            name.eq_ignore_ascii_case("principals")
                .then(|| value.trim_matches('"').to_string())
        })
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testing {
    //! Certificates made in memory for tests, signed by a fixed CA.
    use ssh_key::certificate::{Builder, CertType};
    use ssh_key::private::{Ed25519Keypair, KeypairData};
    use ssh_key::PrivateKey;

    /// An ed25519 key from a seed byte: (private, `type base64`).
    pub fn key(seed: u8) -> (PrivateKey, (String, String)) {
        let pair = Ed25519Keypair::from_seed(&[seed; 32]);
        let private = PrivateKey::new(KeypairData::Ed25519(pair), "").expect("a key");
        let line = private.public_key().to_openssh().expect("a line");
        let mut it = line.split_whitespace();
        let fields = (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        );
        (private, fields)
    }

    /// A user certificate of the key of `seed`, signed by the key of
    /// `ca_seed`.
    pub fn cert(
        seed: u8,
        ca_seed: u8,
        id: &str,
        principals: &[&str],
        (after, before): (u64, u64),
        serial: u64,
    ) -> String {
        let (subject, _) = key(seed);
        let (ca, _) = key(ca_seed);
        let mut b = Builder::new(
            [7u8; 16].to_vec(),
            subject.public_key().key_data().clone(),
            after,
            before,
        )
        .expect("a builder");
        b.serial(serial).unwrap();
        b.cert_type(CertType::User).unwrap();
        b.key_id(id).unwrap();
        for p in principals {
            b.valid_principal(*p).unwrap();
        }
        let c = b.sign(&ca).expect("signed");
        format!("{}\n", c.to_openssh().expect("a line"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_read_back_with_what_the_planner_needs() {
        let text = testing::cert(
            1,
            9,
            "trustmesh:c/w1",
            &["c:group:g", "c:node:w1"],
            (10, 1000),
            42,
        );
        let info = parse(&text).expect("a certificate");
        assert_eq!(info.key_id, "trustmesh:c/w1");
        assert_eq!(info.serial, 42);
        assert_eq!(info.principals, ["c:group:g", "c:node:w1"]);
        assert_eq!((info.valid_after, info.valid_before), (10, 1000));
        assert_eq!(info.key, testing::key(1).1);
        assert_eq!(info.ca, testing::key(9).1);
        assert!(info.user);
        assert_eq!(parse("ssh-ed25519 AAAA x\n"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn authority_lines_carry_principals_and_policy() {
        let p = vec!["c:group:g".to_string(), "c:reverse".to_string()];
        let o = authority_options(&p, Some("restrict,command=\"internal-sftp\""));
        assert_eq!(
            o,
            "cert-authority,principals=\"c:group:g,c:reverse\",restrict,command=\"internal-sftp\""
        );
        assert!(is_authority(Some(&o)));
        assert!(!is_authority(Some("restrict")));
        assert!(!is_authority(None));
        assert_eq!(line_principals(&o), p);
        assert_eq!(file_name("id_ed25519"), "id_ed25519-cert.pub");
    }
}
