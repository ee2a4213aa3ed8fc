//! Parsing, matching, hashing and editing known_hosts files, checked
//! against what OpenSSH does (keys and fingerprints made with ssh-keygen).

use super::*;
use crate::formats::lines::testing::{self, any_file, check_edit, check_never_touches_unmanaged};
use proptest::prelude::*;

// Keys made with ssh-keygen 9.2p1; fingerprints from `ssh-keygen -lf`.
const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILR3a5jM8SZ8lYOJdn7V/F7IREASeVBrlnE+CfwVv2LW";
const ED_FP: &str = "SHA256:7QpPkq2GaCNLYpnkLkyc8i2xwjZusK17KJy5MYlpCBs";
const CA: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIDbiVPwlZPk7ivrV8BfAFc3rIXgiA1O/n9RN36cU/M6w";
const CA_FP: &str = "SHA256:thdctdaEJLauL1GIJvlAUcrFodFqsJIS6QYzuEpGPrQ";
const EC: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBustzGFH75bX3JlOAeNjaRfUMM7I+SH0l4cM/5PqkDbhkCpW83ucxPafcfX9gVDGfG8DJ8/wpqjDxTCx3ZtegA=";
const EC_FP: &str = "SHA256:sgTeeVOu3y0R2+p6A0s6QMvG6rBfjLpRqAo4Q75isA8";
const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFk76p7DRI+svLhLRUxDHIEITLy9uHF0s+3O6h/BJXHzZz2omj7XKrmhHO8gEQ8hzTWj0bflA2IWKtvajgbI8iIJ9RY18DvhiuW6+f/ilIQ6pHupWHBDn2LK7UtBVeCNxJFmCygAYm/BtAJzA70mdnnplxF1bXtrmhBUhoV/KHNQ==";
const RSA_FP: &str = "SHA256:UOU0K92vn/7KB9HUd3uN0wVr5ijATDbsXVzmE9mMCqY";
/// ED signed by CA (`ssh-keygen -s ca -I id -n u ed.pub`);
/// `ssh-keygen -lf` prints ED_FP for it.
const ED_CERT: &str = "AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAINYHRt8SjtkoN1ilXy1mh7YI2ZjTUlKce+HawMU/0sNXAAAAILR3a5jM8SZ8lYOJdn7V/F7IREASeVBrlnE+CfwVv2LWAAAAAAAAAAAAAAABAAAAAmlkAAAABQAAAAF1AAAAAAAAAAD//////////wAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWFnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIDbiVPwlZPk7ivrV8BfAFc3rIXgiA1O/n9RN36cU/M6wAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEDjNUp245P4K5ye+NtJcw7adT9is7ofkFXmBj+Bs2/yMHpRUi9MpFs9lgP0vm2d+Tt/7YKayIfGpQEQY6B0l0QK";

const DSA: &str = "AAAAB3NzaC1kc3MAAACBAJZLfQFNejNFH6sg/MKwcvdDz+bSvtN7TFU2nZIJWxTeyXWlG/mQR/tfmdTKXKvjQJRPEhZOrwvH7xakob0Mzcy+Kt3CtLJclBPrSfVC1ueXEtpKi4CZUEHPUtU6dD4yKt3lef0tH4UhQSOGl6KG8bsupAmBbZIV65O80lsFXY2VAAAAFQD5x5pDGBZbuTepGmz2HJIldaNJLwAAAIA5TaIsy8DmfMrXnKrQy4VYegBcA3Y1xq+1ZoAIOX2Ko7w6sKO+ridXEcO5T1DTGLZlYD1+PS8PbTUF3F7HfxPo7rSoOLvFeIRF9MUFIZKwiRijp+jaamyFZGus0bk07tDESGLXPTrtILXnBKkcEKWnkmHm0DdtvVYLnUcEd2lSlAAAAIAE4/siIaU1c0RSfB+9lSr/Yyf+yua+xUD6reGWUKvkZI8XmeShwZrsrl2wZxhVq+fbXjtH+v2CeN1Q/Pr94ePo4QGFHkP+UA8XeMzOWJpKl4xlWqJIMs++yOG7C20dKjfDaTwHnLNsN/aUmpwPC9uRxaW+G75Ig22S9mrgyOVekA==";
const DSA_FP: &str = "SHA256:YkEI/OWdAbZIB/Bp1ZSfXl+d3KUPZFgevjZ4Jufrimg";
const E521: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAAl3RlABQVzF8cAK5VHOF5xsChvCkehT+Z1luzanaQiBdptufLqUjzFNYpvfrExH+5jbwhWA+c0aFw9HAuG19MY1QCCPFwCTSUQBsFj7ag1gfFnlQGumHsNcmZpBCW7ZuI8Is8FxQ97FI8U2Esn67cpyJ5rkbP/MtUUmL+1GIbXX8Bhsg==";
const E521_FP: &str = "SHA256:yTFGhT+FIjaHSvMW65XCUvxrjgMXHGWTwJ/0hNM1AIg";
/// E521 as a host certificate valid 52 weeks, signed by CA.
const E521_CERT: &str = "AAAAKGVjZHNhLXNoYTItbmlzdHA1MjEtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgIQp5A1ZIaUDytDzsKGksy6QHr0slg+QFIp0JYeoizSoAAAAIbmlzdHA1MjEAAACFBAAl3RlABQVzF8cAK5VHOF5xsChvCkehT+Z1luzanaQiBdptufLqUjzFNYpvfrExH+5jbwhWA+c0aFw9HAuG19MY1QCCPFwCTSUQBsFj7ag1gfFnlQGumHsNcmZpBCW7ZuI8Is8FxQ97FI8U2Esn67cpyJ5rkbP/MtUUmL+1GIbXX8BhsgAAAAAAAAAAAAAAAgAAAANpZDIAAAAJAAAABWhvc3QxAAAAAGsCSGgAAAAAbOIqyAAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgNuJU/CVk+TuK+tXwF8AVzesheCIDU7+f1E3fpxT8zrAAAABTAAAAC3NzaC1lZDI1NTE5AAAAQOGGivP5XARuwyoF6glCuZyl6kdkS8/vuXoCBgkMiw+Z82R3rYZfbk6YkkJZ6Mef3yDAYccXOyO6w1jbbDF/XQ0=";
/// RSA signed by CA.
const RSA_CERT: &str = "AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgUqCQiD+lGbqgRBLmNcXzGgK/kOJbbyjjTnyYp9rx0zgAAAADAQABAAAAgQDFk76p7DRI+svLhLRUxDHIEITLy9uHF0s+3O6h/BJXHzZz2omj7XKrmhHO8gEQ8hzTWj0bflA2IWKtvajgbI8iIJ9RY18DvhiuW6+f/ilIQ6pHupWHBDn2LK7UtBVeCNxJFmCygAYm/BtAJzA70mdnnplxF1bXtrmhBUhoV/KHNQAAAAAAAAAAAAAAAQAAAANpZDMAAAAFAAAAAXUAAAAAAAAAAP//////////AAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgNuJU/CVk+TuK+tXwF8AVzesheCIDU7+f1E3fpxT8zrAAAABTAAAAC3NzaC1lZDI1NTE5AAAAQIqdM5pQGxqvqa5Hz3FMs+olaUyK/Xu4wawwAvDiAReuN2jcpTj2U8lg5UMEXdv6dqC8azCOdNGDAA9eDRNYBw4=";

/// `ssh-keygen -H` of a file holding
/// `192.0.2.11 ssh-ed25519 ED trustmesh:node1`,
/// `[192.0.2.12]:2222 ecdsa-sha2-nistp256 EC` and
/// `Node3.Example.org,192.0.2.13 ssh-rsa RSA`.
fn keygen_hashed() -> String {
    format!(
        "|1|KM+aiscFhai8Qf0S72Tqvh+XYic=|KzEJ6GXU3W3A1tBoxxXLyV1nxNM= ssh-ed25519 {ED} trustmesh:node1\n\
         |1|hngHku25qw1UWRi7nQ97sVpmf8o=|T728H3MSAg8N0C5ne07zGRYorm8= ecdsa-sha2-nistp256 {EC}\n\
         |1|KbBKxQDlYcmYIZEO+9Xx5tTXdsc=|wDqZD+vCHVWzKqb16jCQpQIaQv4= ssh-rsa {RSA}\n\
         |1|9dmfAUfCcVpOyffrT69Q5iHRl3s=|82LE+tbislrePrmTWkVYWuJAPXQ= ssh-rsa {RSA}\n"
    )
}

fn roundtrip(text: &str) -> KnownHostsFile {
    testing::roundtrip(text)
}

fn entry(line: &str) -> HostEntry {
    testing::only_record::<HostLineKind>(line)
}

#[test]
fn hostile_file_round_trips_with_fields() {
    let long_comment = "c".repeat(8 * 1024);
    let long_hosts = (0..600)
        .map(|i| format!("h{i}.example"))
        .collect::<Vec<_>>()
        .join(",");
    let text = format!(
        "# managed by hand\r\n\
         \n\
         192.0.2.11 ssh-ed25519 {ED}\n\
         \t 192.0.2.12,host-b\tecdsa-sha2-nistp256\t{EC}\tcomment  with spaces \r\n\
         [192.0.2.13]:2222 ssh-rsa {RSA} trustmesh:node3\n\
         @cert-authority *.example.org ssh-ed25519 {CA} ca\n\
         @revoked\t* ssh-ed25519 {CA}\n\
         |1|KM+aiscFhai8Qf0S72Tqvh+XYic=|KzEJ6GXU3W3A1tBoxxXLyV1nxNM= ssh-ed25519 {ED} x trustmesh:node1\n\
         {long_hosts} ssh-ed25519 {ED} {long_comment}\n\
         @bogus host ssh-ed25519 {ED}\n\
         @revoked @cert-authority host ssh-ed25519 {ED}\n\
         @revoked\n\
         host 1024 35 1234567\n\
         host ssh-ed25519\n\
         host ssh-ed25519 #x\n\
         ssh-ed25519 {ED}\n\
         ünïcödé ☃ \u{0}\u{7f}\r\n\
         host-z ssh-ed25519 {ED} trustmesh:z"
    );
    let file = roundtrip(&text);
    let l = file.lines();
    assert_eq!(l.len(), 18);
    assert_eq!(l[0].kind(), &HostLineKind::Comment);
    assert_eq!(l[0].ending(), LineEnding::CrLf);
    assert_eq!(l[1].kind(), &HostLineKind::Blank);

    let e = l[2].entry().unwrap();
    assert_eq!(
        (e.annotation(), e.hosts(), e.key_id(), e.comment()),
        (None, "192.0.2.11", ("ssh-ed25519", ED), None)
    );
    let e = l[3].entry().unwrap();
    assert_eq!(e.hosts(), "192.0.2.12,host-b");
    assert_eq!(e.key_id(), ("ecdsa-sha2-nistp256", EC));
    assert_eq!(e.comment(), Some("comment  with spaces"));
    assert_eq!(l[3].ending(), LineEnding::CrLf);
    assert_eq!(l[4].marker().map(|m| m.node), Some("node3"));
    assert_eq!(l[4].entry().unwrap().hosts(), "[192.0.2.13]:2222");
    let e = l[5].entry().unwrap();
    assert_eq!(
        (e.annotation(), e.hosts(), e.comment()),
        (Some(Annotation::CertAuthority), "*.example.org", Some("ca"))
    );
    let e = l[6].entry().unwrap();
    assert_eq!(
        (e.annotation(), e.hosts()),
        (Some(Annotation::Revoked), "*")
    );
    let e = l[7].entry().unwrap();
    assert!(e.is_hashed());
    // A comment that only mentions a marker is not one.
    assert_eq!(e.marker(), None);
    assert_eq!(e.comment(), Some("x trustmesh:node1"));
    let e = l[8].entry().unwrap();
    assert_eq!(e.hosts(), long_hosts);
    assert_eq!(e.comment(), Some(long_comment.as_str()));
    for line in &l[9..=16] {
        assert_eq!(line.kind(), &HostLineKind::Invalid, "{:?}", line.text());
    }
    assert_eq!(l[17].marker().map(|m| m.node), Some("z"));
    assert_eq!(l[17].ending(), LineEnding::Missing);

    assert_eq!(file.keys_for("192.0.2.11", 22), vec![("ssh-ed25519", ED)]);
    assert_eq!(
        file.keys_for("HOST-B", 22),
        vec![("ecdsa-sha2-nistp256", EC)]
    );
    assert_eq!(file.keys_for("192.0.2.13", 2222), vec![("ssh-rsa", RSA)]);
    assert!(file.keys_for("192.0.2.13", 22).is_empty());
    assert_eq!(file.keys_for("h599.example", 22), vec![("ssh-ed25519", ED)]);
    // The CA key only appears annotated: never a plain host key.
    assert!(file.keys_for("www.example.org", 22).is_empty());
    assert!(l[5].entry().unwrap().matches_host("www.example.org", 22));
}

#[test]
fn ssh_keygen_hashed_names_match() {
    let file = roundtrip(&keygen_hashed());
    assert_eq!(file.keys_for("192.0.2.11", 22), vec![("ssh-ed25519", ED)]);
    assert_eq!(
        file.keys_for("192.0.2.12", 2222),
        vec![("ecdsa-sha2-nistp256", EC)]
    );
    assert!(file.keys_for("192.0.2.12", 22).is_empty());
    // ssh-keygen -H lowercased the name; ssh lowercases what it looks up.
    assert_eq!(
        file.keys_for("node3.example.org", 22),
        vec![("ssh-rsa", RSA)]
    );
    assert_eq!(
        file.keys_for("Node3.Example.org", 22),
        vec![("ssh-rsa", RSA)]
    );
    assert_eq!(file.keys_for("192.0.2.13", 22), vec![("ssh-rsa", RSA)]);
    assert!(file.keys_for("192.0.2.14", 22).is_empty());
    assert_eq!(file.lines()[0].marker().map(|m| m.node), Some("node1"));

    // Our hashing reproduces ssh-keygen's with its salt.
    for (line, name) in file.lines().iter().zip([
        "192.0.2.11",
        "[192.0.2.12]:2222",
        "node3.example.org",
        "192.0.2.13",
    ]) {
        let hosts = line.entry().unwrap().hosts();
        let salt = hashed_salt(hosts).unwrap();
        assert_eq!(hash_host_name(name, salt), hosts);
    }
    // A hashed name we make is found, also behind a port.
    let salt = [7u8; 20];
    let line = managed_line(
        &hash_host_name(&host_name("10.1.2.3", 2200), salt),
        "ssh-ed25519",
        ED,
        "trustmesh:lab/n1",
    );
    let e = entry(&line);
    assert!(e.matches_host("10.1.2.3", 2200));
    assert!(!e.matches_host("10.1.2.3", 22));
    assert_eq!(
        e.marker(),
        Some(crate::formats::lines::Marker::new("lab", "n1"))
    );
    // Broken hashes never match and never panic.
    for hosts in [
        "|1|",
        "|1|x|y",
        "|1|AAAA|AAAA",
        "|2|KM+aiscFhai8Qf0S72Tqvh+XYic=|KzEJ6GXU3W3A1tBoxxXLyV1nxNM=",
        "|",
    ] {
        assert!(
            !entry(&format!("{hosts} ssh-ed25519 {ED}")).matches_host("192.0.2.11", 22),
            "{hosts}"
        );
    }
}

/// `ssh-keygen -F name -f file`: the lines it finds (without its
/// `# Host ... found` comments), or `None` when it finds none.
fn keygen_find(file: &std::path::Path, name: &str) -> Option<Vec<String>> {
    let out = std::process::Command::new("ssh-keygen")
        .arg("-F")
        .arg(name)
        .arg("-f")
        .arg(file)
        .output()
        .expect("run ssh-keygen");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    (out.status.success() && !lines.is_empty()).then_some(lines)
}

#[test]
fn managed_hashed_names_are_found_by_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("known_hosts");
    let hosts = [
        ("192.0.2.11", 22, "ssh-ed25519", ED),
        ("192.0.2.12", 2222, "ecdsa-sha2-nistp256", EC),
        ("Node3.Example.org", 22, "ssh-rsa", RSA),
        ("2001:db8::5", 2200, "ssh-ed25519", ED),
    ];
    let mut text = format!("# a comment\n198.51.100.1 ssh-ed25519 {CA}\n");
    let mut ours = Vec::new();
    for (host, port, kt, b64) in hosts {
        let name = host_name(host, port);
        let hashed = managed_hashed_name(&name, kt, b64);
        assert!(
            hashed.starts_with("|1|") && !hashed.contains(host),
            "{hashed}"
        );
        // Deterministic: the same name and key give the same line.
        assert_eq!(hashed, managed_hashed_name(&name, kt, b64));
        let line = managed_line(&hashed, kt, b64, "trustmesh:lab/n");
        // We find it as ssh would.
        let e = entry(&line);
        assert!(e.is_hashed() && e.matches_host(host, port), "{line}");
        assert!(!e.matches_host(host, if port == 22 { 2222 } else { 22 }));
        text.push_str(&line);
        text.push('\n');
        ours.push((name, line));
    }
    std::fs::write(&path, &text).unwrap();
    for (name, line) in &ours {
        // ssh lowercases a name before looking it up, and hashes it so;
        // `ssh-keygen -F` looks up the name as given.
        let asked = name.to_ascii_lowercase();
        assert_eq!(
            keygen_find(&path, &asked),
            Some(vec![line.clone()]),
            "ssh-keygen -F {asked}"
        );
    }
    assert_eq!(keygen_find(&path, "192.0.2.99"), None);
    assert_eq!(
        keygen_find(&path, "192.0.2.12"),
        None,
        "port 22 is another name"
    );
    // ssh-keygen -H of the clear lines gives other salts, and the same
    // lookups: our matching agrees with its hashing.
    let clear: String = hosts
        .iter()
        .map(|(h, p, kt, b64)| format!("{} {kt} {b64}\n", host_name(h, *p)))
        .collect();
    let clear_path = dir.path().join("clear");
    std::fs::write(&clear_path, clear).unwrap();
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&clear_path)
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let hashed = KnownHostsFile::parse(&std::fs::read_to_string(&clear_path).unwrap());
    for (host, port, kt, b64) in hosts {
        assert_eq!(
            hashed.keys_for(host, port),
            vec![(kt, b64)],
            "{host}:{port}"
        );
    }
}

#[test]
fn managed_salts_depend_on_name_and_key() {
    let a = managed_salt("192.0.2.11", "ssh-ed25519", ED);
    assert_eq!(a, managed_salt("192.0.2.11", "ssh-ed25519", ED));
    // ssh lowercases names: so does the salt.
    assert_eq!(
        managed_salt("HOST.example", "ssh-ed25519", ED),
        managed_salt("host.example", "ssh-ed25519", ED)
    );
    for other in [
        managed_salt("192.0.2.12", "ssh-ed25519", ED),
        managed_salt("[192.0.2.11]:2222", "ssh-ed25519", ED),
        managed_salt("192.0.2.11", "ssh-rsa", RSA),
        managed_salt("192.0.2.11", "ssh-ed25519", CA),
    ] {
        assert_ne!(a, other);
    }
}

#[test]
fn pattern_matching_like_openssh() {
    let cases: &[(&str, &str, u16, bool)] = &[
        ("host", "host", 22, true),
        ("HoSt", "host", 22, true),
        ("host", "HOST", 22, true),
        ("host", "host", 2222, false),
        ("[host]:2222", "host", 2222, true),
        ("[host]:2222", "host", 22, false),
        ("[host]:*", "host", 2222, true),
        ("*", "anything", 22, true),
        ("*", "anything", 2222, true),
        ("*.example.org", "a.example.org", 22, true),
        ("*.example.org", "example.org", 22, false),
        ("192.0.2.?", "192.0.2.5", 22, true),
        ("192.0.2.?", "192.0.2.50", 22, false),
        ("a,b,c", "b", 22, true),
        ("a,b,c", "d", 22, false),
        ("*.org,!bad.org", "good.org", 22, true),
        ("*.org,!bad.org", "bad.org", 22, false),
        ("!bad.org,*.org", "bad.org", 22, false),
        ("!bad.org", "good.org", 22, false),
        ("a*b*c", "axxbyyc", 22, true),
        ("a*b*c", "axxbyy", 22, false),
        ("2001:db8::1", "2001:db8::1", 22, true),
        ("[2001:db8::1]:2200", "2001:db8::1", 2200, true),
        ("a,", "a", 22, true),
        ("a,,b", "b", 22, true),
    ];
    for &(hosts, host, port, want) in cases {
        let e = entry(&format!("{hosts} ssh-ed25519 {ED}"));
        assert_eq!(
            e.matches_host(host, port),
            want,
            "{hosts:?} vs {host}:{port}"
        );
    }
    // A pattern too long for OpenSSH's buffer spoils the whole list.
    let long = format!("host,{}", "x".repeat(1100));
    assert!(!entry(&format!("{long} ssh-ed25519 {ED}")).matches_host("host", 22));
    assert_eq!(host_name("h", 22), "h");
    assert_eq!(host_name("h", 0), "h");
    assert_eq!(host_name("h", 2222), "[h]:2222");
}

#[test]
fn annotations_are_not_plain_keys() {
    let file = roundtrip(&format!(
        "host ssh-ed25519 {ED}\nhost ssh-ed25519 {ED}\nhost ecdsa-sha2-nistp256 {EC}\n\
         @revoked host ecdsa-sha2-nistp256 {EC}\n@cert-authority host ssh-ed25519 {CA}\n\
         other ssh-rsa {RSA}\n@revoked other2 ssh-rsa {RSA}\n"
    ));
    // Duplicates once, revoked key dropped, CA key not a host key.
    assert_eq!(file.keys_for("host", 22), vec![("ssh-ed25519", ED)]);
    // A revocation for another host does not apply.
    assert_eq!(file.keys_for("other", 22), vec![("ssh-rsa", RSA)]);
}

#[test]
fn fingerprints_match_ssh_keygen() {
    assert_eq!(fingerprint_sha256(ED).as_deref(), Some(ED_FP));
    assert_eq!(fingerprint_sha256(CA).as_deref(), Some(CA_FP));
    assert_eq!(fingerprint_sha256(EC).as_deref(), Some(EC_FP));
    assert_eq!(fingerprint_sha256(RSA).as_deref(), Some(RSA_FP));
    assert_eq!(fingerprint_sha256(ED_CERT).as_deref(), Some(ED_FP));
    assert_eq!(fingerprint_sha256(DSA).as_deref(), Some(DSA_FP));
    assert_eq!(fingerprint_sha256(E521).as_deref(), Some(E521_FP));
    assert_eq!(fingerprint_sha256(E521_CERT).as_deref(), Some(E521_FP));
    assert_eq!(fingerprint_sha256(RSA_CERT).as_deref(), Some(RSA_FP));
    // As read from a file line.
    let file = KnownHostsFile::parse(&format!("h ecdsa-sha2-nistp521 {E521} c\n"));
    let (_, e) = file.entries().next().unwrap();
    assert_eq!(fingerprint_sha256(e.base64()).as_deref(), Some(E521_FP));
    for bad in [
        "",
        "AAAA",
        "not base64!",
        &ED[..ED.len() - 4],
        "AAAAC3NzaC1lZDI1NTE5",
        &ED_CERT[..100],
    ] {
        assert_eq!(fingerprint_sha256(bad), None, "{bad:?}");
    }
}

#[test]
fn apply_edits_removes_and_appends() {
    let text = format!(
        "# mine\r\nhost ssh-ed25519 {ED} trustmesh:old\r\nother ssh-rsa {RSA}\r\nh2 ssh-ed25519 {CA} trustmesh:keep"
    );
    let file = roundtrip(&text);
    let new = managed_line("192.0.2.9,n9", "ssh-ed25519", CA, "trustmesh:c/n9");
    let out = file.apply_edits(&[1], std::slice::from_ref(&new)).unwrap();
    assert_eq!(
        out,
        format!("# mine\r\nother ssh-rsa {RSA}\r\nh2 ssh-ed25519 {CA} trustmesh:keep\r\n{new}\r\n")
    );
    assert_eq!(file.apply_edits(&[], &[]).unwrap(), text);
    assert_eq!(
        file.apply_edits(&[0], &[]),
        Err(HostFileEditError::Unmanaged(0))
    );
    assert_eq!(
        file.apply_edits(&[2], &[]),
        Err(HostFileEditError::Unmanaged(2))
    );
    assert_eq!(
        file.apply_edits(&[9], &[]),
        Err(HostFileEditError::NoSuchLine(9))
    );
    for bad in [
        format!("host ssh-ed25519 {ED}"),
        format!("host ssh-ed25519 {ED} trustmesh:a\nevil ssh-ed25519 {ED}"),
        "# trustmesh:a".to_owned(),
    ] {
        assert_eq!(
            file.apply_edits(&[], &[new.clone(), bad]),
            Err(HostFileEditError::BadAddedLine(1))
        );
    }
    let file = roundtrip("x\n");
    assert_eq!(
        file.apply_edits(&[], std::slice::from_ref(&new)).unwrap(),
        format!("x\n{new}\n")
    );
}

fn hostile_text() -> impl Strategy<Value = String> {
    crate::formats::lines::testing::hostile_text(&[
        "!",
        "*",
        "?",
        "@revoked",
        "@cert-authority",
        "|1|",
        "|",
        "[h]:2222",
        ED,
        "KM+aiscFhai8Qf0S72Tqvh+XYic=",
    ])
}

fn any_line() -> impl Strategy<Value = (String, bool)> {
    prop_oneof![
        "[a-z0-9][a-z0-9-]{0,7}".prop_map(|n| (
            managed_line(&n, "ssh-ed25519", ED, &format!("trustmesh:c/{n}")),
            true
        )),
        "[a-z0-9][a-z0-9-]{0,7}".prop_map(|n| (
            format!("@cert-authority *.{n} ssh-ed25519 {CA} trustmesh:{n}"),
            true
        )),
        Just((format!("host ssh-ed25519 {ED} user"), false)),
        Just((format!("@revoked host ssh-ed25519 {ED} trustmesh:"), false)),
        Just(("# trustmesh:node1".to_owned(), false)),
        Just((String::new(), false)),
        Just((" \t".to_owned(), false)),
        "[^\r\n]{0,20}".prop_map(|s| {
            let managed =
                matches!(parse_line(&s), HostLineKind::Entry(ref e) if e.marker().is_some());
            (s, managed)
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_text_round_trips(text in any::<String>(), host in any::<String>(), port in any::<u16>()) {
        let file = KnownHostsFile::parse(&text);
        prop_assert_eq!(file.render(), text);
        let _ = file.keys_for(&host, port);
    }

    #[test]
    fn hostile_text_round_trips(text in hostile_text(), host in "[a-z0-9.*?!\\[\\]:|]{0,12}", port in any::<u16>()) {
        let file = KnownHostsFile::parse(&text);
        prop_assert_eq!(file.render(), text.clone());
        for (_, e) in file.entries() {
            prop_assert!(text.contains(e.base64()));
            let _ = e.matches_host(&host, port);
        }
        let _ = file.keys_for(&host, port);
    }

    #[test]
    fn glob_agrees_with_a_naive_matcher(s in "[ab*?]{0,8}", p in "[ab*?]{0,8}") {
        fn naive(s: &[u8], p: &[u8]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((b'*', rest)) => (0..=s.len()).any(|i| naive(&s[i..], rest)),
                Some((&c, rest)) => !s.is_empty() && (c == b'?' || c == s[0]) && naive(&s[1..], rest),
            }
        }
        prop_assert_eq!(glob(s.as_bytes(), p.as_bytes()), naive(s.as_bytes(), p.as_bytes()));
    }

    #[test]
    fn hashed_names_match_only_their_host(host in "[a-zA-Z0-9.-]{1,20}", other in "[a-z0-9.-]{1,20}", port in any::<u16>(), salt in any::<[u8; 20]>()) {
        let line = managed_line(&hash_host_name(&host_name(&host, port), salt), "ssh-ed25519", ED, "trustmesh:c/n");
        let e = KnownHostsFile::parse(&line).lines()[0].entry().unwrap().clone();
        prop_assert!(e.matches_host(&host, port));
        prop_assert!(e.matches_host(&host.to_ascii_uppercase(), port));
        if other != host.to_ascii_lowercase() {
            prop_assert!(!e.matches_host(&other, port));
        }
    }

    #[test]
    fn apply_edits_keeps_unmanaged_lines(
        (text, managed) in any_file(any_line()),
        remove_mask in prop::collection::vec(any::<bool>(), 20),
        add_nodes in prop::collection::vec("[a-z][a-z0-9]{0,5}", 0..4),
    ) {
        let add: Vec<String> = add_nodes.iter().map(|n| managed_line(n, "ssh-ed25519", CA, &format!("trustmesh:c/{n}"))).collect();
        let (file, again) = check_edit::<HostLineKind>(&text, &managed, &remove_mask, &add)?;
        let unmanaged = |f: &KnownHostsFile| -> Vec<String> {
            f.lines().iter().filter(|l| l.marker().is_none()).map(|l| l.text().trim_end_matches('\r').to_owned()).collect()
        };
        prop_assert_eq!(unmanaged(&file), unmanaged(&again));
        for n in &add_nodes {
            prop_assert!(again.keys_for(n, 22).contains(&("ssh-ed25519", CA)));
        }
    }

    #[test]
    fn apply_edits_never_touches_unmanaged(text in hostile_text(), idx in 0usize..64) {
        check_never_touches_unmanaged::<HostLineKind>(&text, idx)?;
    }
}
