//! The probe's requests for options.ssh_config and options.hosts_file
//! (a file in `~/.ssh/config.d`, `/etc/hosts`, root or `sudo -n`), run
//! for real under every shell of the matrix.

use super::tests::{chmod, fixture, full_request, my_uid, run_probe, run_probe_with};
use super::*;
use crate::model::state::{FileKind, LiveAccount};
use crate::transport::scripts::shells::{Shell, SHELLS};
use std::fs;

/// options.ssh_config and options.hosts_file: a file in `config.d`, the
/// folder itself, `/etc/hosts`, and whether the account is root or has
/// `sudo -n` (never a prompt).
#[test]
fn config_d_etc_hosts_and_privilege_are_reported() {
    use crate::model::state::Privilege;
    let (_tmp, home) = fixture(0o700);
    let ssh = home.join(".ssh");
    fs::create_dir(ssh.join("config.d")).unwrap();
    chmod(&ssh.join("config.d"), 0o700);
    fs::write(ssh.join("config.d/trustmesh-lab"), b"# ours\n").unwrap();
    fs::write(ssh.join("config"), b"Host *\r\n  Port 1").unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let req = ProbeRequest {
        read: s(&["config", "config.d/trustmesh-lab", "config.d/missing"]),
        stat_only: s(&["config.d"]),
        etc_hosts: true,
        privilege: true,
        sshd: true,
        sshd_version: false,
        sshd_leftovers: false,
    };
    let hosts = fs::read("/etc/hosts").unwrap();
    let content = |a: &LiveAccount, n: &str| a.file(n).and_then(|f| f.content.clone());
    for shell in SHELLS {
        let out = run_probe(shell, &home, &req);
        let acct = parse_probe_output(&out)
            .unwrap_or_else(|e| panic!("{shell:?}: {e}\n{}", String::from_utf8_lossy(&out)));
        assert_eq!(content(&acct, "config").unwrap(), b"Host *\r\n  Port 1");
        assert_eq!(
            content(&acct, "config.d/trustmesh-lab").unwrap(),
            b"# ours\n"
        );
        let missing = acct.file("config.d/missing").unwrap();
        assert!(missing.stat.is_none() && !missing.unreadable, "{shell:?}");
        let dir = acct.file("config.d").unwrap().stat.clone().unwrap();
        assert_eq!((dir.kind, dir.mode), (FileKind::Dir, 0o700), "{shell:?}");
        assert_eq!(content(&acct, "/etc/hosts").unwrap(), hosts, "{shell:?}");
        // --sshd: sshd's config read, its drop-in folders stat'ed.
        if let Ok(config) = fs::read("/etc/ssh/sshd_config") {
            assert_eq!(
                content(&acct, "/etc/ssh/sshd_config").unwrap(),
                config,
                "{shell:?}"
            );
        }
        for dir in ["/etc/ssh/sshd_config.d", "/etc/ssh/ssh_config.d"] {
            let is_dir = std::path::Path::new(dir).is_dir();
            let got = acct
                .file(dir)
                .unwrap_or_else(|| panic!("{shell:?}: no {dir}"));
            assert_eq!(
                got.stat.as_ref().is_some_and(|s| s.kind == FileKind::Dir),
                is_dir,
                "{shell:?}"
            );
        }
        if my_uid() == 0 {
            assert_eq!(acct.privilege, Some(Privilege::Root), "{shell:?}");
        }
    }
    // Not asked: no privilege record, no /etc/hosts.
    let out = run_probe(Shell::Dash, &home, &full_request());
    let acct = parse_probe_output(&out).unwrap();
    assert!(acct.privilege.is_none() && acct.file("/etc/hosts").is_none());
    // Not root: `sudo -n true` decides, and is never asked for a password.
    let fakes = tempfile::tempdir().unwrap();
    let put = |name: &str, text: &str| {
        let p = fakes.path().join(name);
        fs::write(&p, text).unwrap();
        chmod(&p, 0o755);
    };
    put(
        "id",
        "#!/bin/sh\ncase $1 in -u) echo 1000 ;; *) exec /usr/bin/id \"$@\" ;; esac\n",
    );
    for (sudo_exit, want) in [(0, Privilege::Sudo), (1, Privilege::None)] {
        put(
            "sudo",
            &format!(
                "#!/bin/sh\n[ \"$1\" = -n ] && [ \"$2\" = true ] || exit 9\nexit {sudo_exit}\n"
            ),
        );
        for shell in [Shell::Dash, Shell::Bash] {
            let path = format!(
                "{}:{}",
                fakes.path().display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let out = run_probe_with(shell, &home, &req.args().unwrap(), |mut c| {
                c.env("PATH", &path);
                c
            });
            let acct = parse_probe_output(&out).unwrap();
            assert_eq!(
                acct.privilege,
                Some(want),
                "{shell:?} sudo exits {sudo_exit}"
            );
        }
    }
    // Only one folder, one level deep.
    for bad in ["config.d/", "config.d/a/b", "other/x", "config.d/../id"] {
        let req = ProbeRequest {
            read: vec![bad.into()],
            ..Default::default()
        };
        assert!(req.args().is_err(), "{bad:?} accepted");
    }
}

/// `--sshd-version`: what the node's sshd says it is, from `sshd -V`
/// (OpenSSH before 9.1 names itself in its usage) or `dropbear -V`; only
/// the version's word is reported.
#[test]
fn the_sshd_version_is_reported_when_asked() {
    use crate::transport::scripts::shells::prepend_path;
    let (_tmp, home) = fixture(0o700);
    let asked = ProbeRequest {
        sshd_version: true,
        ..full_request()
    };
    let fake = tempfile::tempdir().unwrap();
    let sshd = fake.path().join("sshd");
    for shell in SHELLS {
        let acct = parse_probe_output(&run_probe(shell, &home, &full_request())).unwrap();
        assert_eq!(acct.sshd_version, None, "{shell:?}: not asked");
        let acct = parse_probe_output(&run_probe(shell, &home, &asked)).unwrap();
        if std::path::Path::new("/usr/sbin/sshd").exists() {
            let v = acct.sshd_version.unwrap_or_default();
            assert!(
                v.starts_with("OpenSSH_") && !v.contains([' ', ',']),
                "{shell:?}: {v}"
            );
        }
        if shell.busybox_applets_only() {
            continue;
        }
        for (says, want) in [
            (
                "sshd: illegal option -- V\nOpenSSH_5.3p1, OpenSSL 1.0.1e-fips 11 Feb 2013\nusage: sshd [-46DdeiqTt]",
                "OpenSSH_5.3p1",
            ),
            ("Dropbear v2022.83", "dropbear_2022.83"),
        ] {
            fs::write(&sshd, format!("#!/bin/sh\nprintf '%s\\n' '{says}' >&2\nexit 1\n")).unwrap();
            chmod(&sshd, 0o755);
            let out = run_probe_with(shell, &home, &asked.args().unwrap(), |mut c| {
                prepend_path(&mut c, fake.path());
                c
            });
            let acct = parse_probe_output(&out).unwrap();
            assert_eq!(acct.sshd_version.as_deref(), Some(want), "{shell:?}");
        }
    }
}

/// `--sshd-leftovers` (host_certificates off): where trustmesh wrote
/// nothing under `/etc/ssh` (this machine; skipped where it did), the
/// report has no file of `/etc/ssh` and no `privilege` record.
#[test]
fn sshd_leftovers_read_nothing_where_trustmesh_wrote_nothing() {
    let ours = |dir: &str, prefix: &str, suffix: &str| {
        fs::read_dir(dir).into_iter().flatten().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(prefix) && n.ends_with(suffix)
        })
    };
    if ours("/etc/ssh/sshd_config.d", "trustmesh-", ".conf")
        || ours("/etc/ssh/ssh_config.d", "trustmesh-", ".conf")
        || ours("/etc/ssh", "trustmesh-", ".krl")
        || ours("/etc/ssh", "ssh_host_", "_key-cert.pub")
    {
        return;
    }
    let (_tmp, home) = fixture(0o700);
    let req = ProbeRequest {
        sshd_leftovers: true,
        ..full_request()
    };
    for shell in SHELLS {
        let out = run_probe(shell, &home, &req);
        let acct = parse_probe_output(&out)
            .unwrap_or_else(|e| panic!("{shell:?}: {e}\n{}", String::from_utf8_lossy(&out)));
        assert!(acct.privilege.is_none(), "{shell:?}");
        assert!(
            !acct.files.iter().any(|f| f.name.starts_with("/etc/ssh/")),
            "{shell:?}"
        );
        assert!(acct.file("authorized_keys").is_some(), "{shell:?}");
    }
}
