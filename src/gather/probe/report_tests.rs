//! The probe's report and command line: truncation, arguments checked on
//! both sides, unreadable files, mode strings (split from `tests.rs`,
//! whose fixtures they use).

use super::tests::*;
use super::*;
use crate::model::state::{FileKind, FileStat};
use crate::transport::scripts::shells::{Shell, SHELLS};
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn every_truncation_is_an_error() {
    let (_tmp, home) = fixture(0o700);
    let out = run_probe(Shell::Dash, &home, &full_request());
    assert!(out.ends_with(b"TRUSTMESH-PROBE-END\n"));
    let full = parse_probe_output(&out).unwrap();
    // Without the final newline it is still complete.
    assert_eq!(parse_probe_output(&out[..out.len() - 1]).unwrap(), full);
    for cut in 0..out.len() - 1 {
        let err = parse_probe_output(&out[..cut]);
        assert!(err.is_err(), "prefix of {cut} bytes parsed");
    }
    assert!(matches!(
        parse_probe_output(&out[..out.len() - 30]),
        Err(ProbeError::Truncated { .. })
    ));
}

#[test]
fn command_line_round_trips_through_a_shell() {
    let (_tmp, home) = fixture(0o700);
    let req = full_request();
    let line = req.command_line().unwrap();
    assert!(line.starts_with("sh -s -- '--read' 'authorized_keys' "));
    assert!(line.contains(" '--stat' 'id_ed25519' "));
    assert!(line.contains(" 'with space' "));
    let mut cmd = Command::new("/usr/bin/dash");
    cmd.arg("-c").arg(&line).env("HOME", &home).current_dir("/");
    let out = sh_out(&mut cmd, PROBE_SCRIPT.as_bytes());
    check_full(&parse_probe_output(&out).unwrap(), &home);
}

#[test]
fn script_rejects_bad_arguments_itself() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        vec!["--read", "../etc/passwd"],
        vec!["--stat", "a/b"],
        vec!["--read", "-x"],
        vec!["--read", ""],
        vec!["authorized_keys"],
    ] {
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        for shell in SHELLS {
            let out = run_probe_with(shell, tmp.path(), &args, |c| c);
            assert!(
                matches!(parse_probe_output(&out), Err(ProbeError::Remote(_))),
                "{shell:?} {args:?}: {}",
                String::from_utf8_lossy(&out)
            );
        }
    }
    // No home: reported, not a crash.
    let out = run_probe_with(
        Shell::Dash,
        &tmp.path().join("does-not-exist"),
        &["--read".to_string()],
        |c| c,
    );
    let err = parse_probe_output(&out).unwrap_err();
    assert_eq!(
        err,
        ProbeError::Remote("cannot enter the home directory".into())
    );
}

/// Unreadable files: as root, run the probe as nobody with setpriv; as
/// another user, chmod 000.
#[test]
fn unreadable_files_are_reported() {
    let req = ProbeRequest {
        read: vec![
            "authorized_keys".into(),
            "known_hosts".into(),
            "config".into(),
        ],
        stat_only: vec!["id_ed25519".into()],
        ..Default::default()
    };
    if my_uid() != 0 {
        let (_tmp, home) = fixture(0o700);
        fs::write(home.join(".ssh/config"), b"Host *\n").unwrap();
        chmod(&home.join(".ssh/config"), 0o000);
        for shell in SHELLS {
            let acct = parse_probe_output(&run_probe(shell, &home, &req)).unwrap();
            let c = acct.file("config").unwrap();
            assert_eq!(c.stat, st(FileKind::File, 0));
            assert!(c.unreadable && c.content.is_none());
            assert!(acct.file("known_hosts").unwrap().content.is_some());
        }
        return;
    }
    // Root without setpriv: nothing to drop privileges with, skipped.
    if !Path::new("/usr/bin/setpriv").exists() {
        return;
    }
    let as_nobody = |c: Command| {
        let mut w = Command::new("/usr/bin/setpriv");
        w.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(c.get_program())
            .args(c.get_args());
        w
    };
    // Home and ~/.ssh searchable by nobody, files root-owned.
    let (tmp, home) = fixture(0o755);
    chmod(tmp.path(), 0o755);
    chmod(&home, 0o755);
    fs::write(home.join(".ssh/config"), b"Host *\n").unwrap();
    chmod(&home.join(".ssh/config"), 0o600);
    for shell in SHELLS {
        let out = run_probe_with(shell, &home, &req.args().unwrap(), as_nobody);
        assert!(!contains(&out, SENTINEL.as_bytes()));
        let acct = parse_probe_output(&out)
            .unwrap_or_else(|e| panic!("{shell:?}: {e}\n{}", String::from_utf8_lossy(&out)));
        assert_eq!(acct.uid, 65534);
        let root = |kind, mode| {
            Some(FileStat {
                kind,
                mode,
                uid: 0,
                gid: 0,
            })
        };
        assert_eq!(acct.ssh_dir, root(FileKind::Dir, 0o755));
        for name in ["authorized_keys", "config"] {
            let f = acct.file(name).unwrap();
            assert_eq!(f.stat, root(FileKind::File, 0o600), "{shell:?} {name}");
            assert!(f.unreadable, "{shell:?} {name}");
            assert_eq!(f.content, None);
        }
        let kh = acct.file("known_hosts").unwrap();
        assert_eq!(kh.content.as_deref(), Some(KNOWN_HOSTS));
        assert!(!kh.unreadable);
    }
    // ~/.ssh not searchable by nobody: files cannot even be listed.
    chmod(&home.join(".ssh"), 0o700);
    for shell in SHELLS {
        let out = run_probe_with(shell, &home, &req.args().unwrap(), as_nobody);
        let acct = parse_probe_output(&out).unwrap();
        assert_eq!(acct.ssh_dir.as_ref().unwrap().mode, 0o700);
        for f in &acct.files {
            assert_eq!(f.stat, None, "{shell:?} {}", f.name);
            assert!(f.unreadable, "{shell:?} {}", f.name);
        }
    }
}

#[test]
fn args_layout_and_validation() {
    let req = ProbeRequest {
        read: vec!["authorized_keys".into(), "known_hosts".into()],
        stat_only: vec!["id_ed25519".into()],
        ..Default::default()
    };
    assert_eq!(
        *req.args().unwrap(),
        [
            "--read",
            "authorized_keys",
            "known_hosts",
            "--stat",
            "id_ed25519"
        ]
    );
    assert_eq!(
        req.command_line().unwrap(),
        "sh -s -- '--read' 'authorized_keys' 'known_hosts' '--stat' 'id_ed25519'"
    );
    assert_eq!(
        *ProbeRequest::default().args().unwrap(),
        ["--read", "--stat"]
    );
    for bad in [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "/etc/passwd",
        "x..y",
        "a\0b",
        "a\nb",
        "a\rb",
        "-x",
        "--read",
    ] {
        for req in [
            ProbeRequest {
                read: vec![bad.into()],
                stat_only: vec![],
                ..Default::default()
            },
            ProbeRequest {
                read: vec![],
                stat_only: vec![bad.into()],
                ..Default::default()
            },
        ] {
            assert!(
                matches!(req.args(), Err(ProbeError::InvalidName { .. })),
                "{bad:?} accepted"
            );
            assert!(req.command_line().is_err());
        }
    }
    let both = ProbeRequest {
        read: vec!["id".into()],
        stat_only: vec!["id".into()],
        ..Default::default()
    };
    assert_eq!(both.args(), Err(ProbeError::ReadAndStatOnly("id".into())));
    let dup = ProbeRequest {
        read: vec!["a".into(), "a".into()],
        stat_only: vec![],
        ..Default::default()
    };
    assert_eq!(dup.args(), Err(ProbeError::DuplicateName("a".into())));
    // Odd but legal names pass.
    let ok = ProbeRequest {
        read: vec![
            "with space".into(),
            "a'quote".into(),
            "$(x)".into(),
            ".hidden".into(),
        ],
        stat_only: vec![],
        ..Default::default()
    };
    assert!(ok.args().is_ok());
}

#[test]
fn mode_strings_with_special_bits() {
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path().join(".ssh");
    fs::create_dir(&ssh).unwrap();
    let modes = [
        0o0000, 0o0644, 0o1777, 0o2755, 0o4700, 0o7777, 0o7000, 0o0111, 0o0222,
    ];
    for m in modes {
        let p = ssh.join(format!("m{m:o}"));
        fs::write(&p, b"").unwrap();
        chmod(&p, m);
    }
    let req = ProbeRequest {
        read: vec![],
        stat_only: modes.iter().map(|m| format!("m{m:o}")).collect(),
        ..Default::default()
    };
    for shell in SHELLS {
        let acct = parse_probe_output(&run_probe(shell, dir.path(), &req)).unwrap();
        for (f, m) in acct.files.iter().zip(modes) {
            assert_eq!(f.stat.as_ref().unwrap().mode, m, "{shell:?} {}", f.name);
        }
    }
}
