//! Fuzz-style property tests for every parser of outside text: the
//! inventory loader, `authorized_keys`, `known_hosts` and the probe's
//! report. None may panic, whatever the bytes; and none may cost
//! super-linear time: a scaling check compares an input with one four times
//! larger (best of three, ratio under 10: linear gives about 4, quadratic
//! about 16), never an absolute time, so a loaded machine does not fail it.

mod render;

use proptest::prelude::*;
use render::render;
use trustmesh::formats::authorized_keys::AuthorizedKeysFile;
use trustmesh::formats::known_hosts::KnownHostsFile;
use trustmesh::gather::probe::parse_probe_output;
use trustmesh::model::inventory::Inventory;

const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/// Lines made of the pieces each parser cares about.
fn key_file_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("ssh-ed25519 ".to_string()),
        Just("ecdsa-sha2-nistp256 ".to_string()),
        Just(format!("{KEY} ")),
        Just("trustmesh:w1".to_string()),
        Just("@cert-authority ".to_string()),
        Just("@revoked ".to_string()),
        Just("|1|c2FsdA==|aGFzaA== ".to_string()),
        Just("[h]:2222,h ".to_string()),
        Just("command=\"a \\\" b\",no-pty ".to_string()),
        Just("\"".to_string()),
        Just("#".to_string()),
        Just("*?!".to_string()),
        Just("\t".to_string()),
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        "\\PC{0,8}",
    ];
    prop::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

/// A probe report with records and noise mixed.
fn probe_text() -> impl Strategy<Value = Vec<u8>> {
    let record = prop_oneof![
        Just(b"user u\n".to_vec()),
        Just(b"uid 1\n".to_vec()),
        Just(b"gid 2\n".to_vec()),
        Just(b"hostname h\n".to_vec()),
        Just(b"home /h\n".to_vec()),
        Just(b"home-stat dir 0755 1 2\n".to_vec()),
        Just(b"ssh-stat missing\n".to_vec()),
        Just(b"file read a\n".to_vec()),
        Just(b"stat file 0644 1 2\n".to_vec()),
        Just(b"data 3\nx\ny\nend 0\n".to_vec()),
        Just(b"data 99999999999999999999\n".to_vec()),
        Just(b"data 18446744073709551615\n".to_vec()),
        Just(b"hostkey\n".to_vec()),
        Just(b"end 0\n".to_vec()),
        Just(b"TRUSTMESH-PROBE-END\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    prop::collection::vec(record, 0..30).prop_map(|v| {
        let mut out = b"TRUSTMESH-PROBE-BEGIN v1\n".to_vec();
        out.extend(v.concat());
        out
    })
}

/// Inventory-shaped text with hostile turns: deep brackets, repeated keys,
/// a BOM, long values, zone ids.
fn inventory_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("version: 1\n".to_string()),
        Just("manager: {name: m, address: 10.0.0.1}\n".to_string()),
        Just("workers:\n".to_string()),
        Just("  - {name: a, address: 'fe80::1%eth0'}\n".to_string()),
        Just("  - name: b\n    address: h\n    name: c\n".to_string()),
        Just("  - {name: c, address: h, jump: c, groups: [g, g]}\n".to_string()),
        Just("mesh: [{group: all}, [a, b], {group: g}]\n".to_string()),
        Just("reverse: all\n".to_string()),
        Just("\u{feff}".to_string()),
        Just("[".repeat(70)),
        Just("- ".repeat(70)),
        Just("x".repeat(300)),
        Just("&a [*a]\n".to_string()),
        Just("!!binary x\n".to_string()),
        "[a-z:\\[\\]{}, \\n\\-'\"&*!|>#%0-9]{0,20}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn authorized_keys_never_panics(text in key_file_text()) {
        let f = AuthorizedKeysFile::parse(&text);
        prop_assert_eq!(f.render(), text);
        for (_, k) in f.keys() {
            let _ = (k.options(), k.comment(), k.marker(), k.key_id());
        }
    }

    #[test]
    fn known_hosts_never_panics(text in key_file_text(), host in "[a-z0-9.:\\[\\]]{0,10}", port in any::<u16>()) {
        let f = KnownHostsFile::parse(&text);
        prop_assert_eq!(f.render(), text);
        let _ = f.keys_for(&host, port);
        for (_, e) in f.entries() {
            let _ = (e.annotation(), e.is_hashed(), e.matches_host(&host, port));
        }
    }

    #[test]
    fn probe_output_never_panics(bytes in probe_text()) {
        let _ = parse_probe_output(&bytes).map_err(|e| e.to_string());
    }

    #[test]
    fn probe_output_of_raw_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_probe_output(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn inventory_loader_never_panics(text in inventory_text()) {
        let _ = Inventory::from_str_named("fuzz.yaml", &text).map_err(|e| render(&e));
    }
}
