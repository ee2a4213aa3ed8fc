//! The probe script run for real: under every shell of the matrix
//! ([`crate::transport::scripts::shells`]), on a crafted `~/.ssh`, with BSD-flavoured
//! tools, as an account that cannot read the files; and the request's
//! argument checks.

use super::*;
use crate::model::state::{FileKind, FileStat, LiveAccount};
use crate::transport::scripts::shells::{Applets, Shell, SHELLS};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(super) const SENTINEL: &str = "SECRET-SENTINEL-7f3a9c-DO-NOT-PRINT";
pub(super) const AUTH_KEYS: &[u8] =
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne one@a\r\nfrom=\"10.0.0.0/8\",command=\"a,b\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITwo two@b";
pub(super) const KNOWN_HOSTS: &[u8] =
    b"node1,10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n[node2]:2222 ssh-rsa AAAAB3Nza\n";

pub(super) fn sh_out(cmd: &mut Command, stdin: &[u8]) -> Vec<u8> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shell");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "shell failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub(super) fn cmd_output(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(super) fn my_uid() -> u32 {
    cmd_output("id", &["-u"]).parse().unwrap()
}

pub(super) fn my_gid() -> u32 {
    cmd_output("id", &["-g"]).parse().unwrap()
}

/// The only tools the probe may use (see `src/transport/scripts/probe.sh`): the
/// whole PATH of the busybox shells of the matrix.
pub(super) const PROBE_TOOLS: &[&str] = &[
    "sh", "ls", "cat", "wc", "id", "hostname", "uname", "grep", "pwd", "printf", "test", "[",
    "find",
];

pub(super) fn run_probe_with(
    shell: Shell,
    home: &Path,
    args: &[String],
    wrap: impl FnOnce(Command) -> Command,
) -> Vec<u8> {
    let applets = Applets::new(PROBE_TOOLS, &[]);
    let mut cmd = shell.command();
    cmd.arg("-s").arg("--").args(args);
    let mut cmd = wrap(cmd);
    cmd.env("HOME", home).current_dir("/");
    applets.restrict(shell, &mut cmd);
    sh_out(&mut cmd, PROBE_SCRIPT.as_bytes())
}

pub(super) fn run_probe(shell: Shell, home: &Path, req: &ProbeRequest) -> Vec<u8> {
    run_probe_with(shell, home, &req.args().unwrap(), |c| c)
}

pub(super) fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A home with a crafted ~/.ssh. Returns (tempdir, home path).
pub(super) fn fixture(ssh_mode: u32) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home dir");
    fs::create_dir(&home).unwrap();
    chmod(&home, 0o750);
    let ssh = home.join(".ssh");
    fs::create_dir(&ssh).unwrap();
    chmod(&ssh, ssh_mode);
    let put = |name: &str, bytes: &[u8], mode: u32| {
        let p = ssh.join(name);
        fs::write(&p, bytes).unwrap();
        chmod(&p, mode);
    };
    put("authorized_keys", AUTH_KEYS, 0o600);
    put("known_hosts", KNOWN_HOSTS, 0o644);
    put("empty", b"", 0o644);
    put(
        "id_ed25519",
        format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{SENTINEL}\n-----END OPENSSH PRIVATE KEY-----\n"
        )
        .as_bytes(),
        0o600,
    );
    // A private key without any header: only the stat-only path keeps it safe.
    put("secret_plain", SENTINEL.as_bytes(), 0o600);
    put(
        "id_ed25519.pub",
        b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPub me@host\n",
        0o644,
    );
    let all_bytes: Vec<u8> = (0..=255u8)
        .chain(b"\ndata 5\nend 0\n".iter().copied())
        .collect();
    put("binary", &all_bytes, 0o640);
    put("with space", b"spaced\n", 0o644);
    put("suid", b"x", 0o4751);
    symlink("authorized_keys", ssh.join("linked")).unwrap();
    symlink("secret_plain", ssh.join("secret_link")).unwrap();
    let sub = ssh.join("subdir");
    fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o3770);
    (tmp, home)
}

pub(super) fn full_request() -> ProbeRequest {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    ProbeRequest {
        read: s(&[
            "authorized_keys",
            "known_hosts",
            "empty",
            "linked",
            "secret_link",
            "id_ed25519.pub",
            "binary",
            "with space",
            "nope",
            "subdir",
        ]),
        stat_only: s(&["id_ed25519", "secret_plain", "suid", "nope2"]),
        ..Default::default()
    }
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn system_host_keys() -> Vec<String> {
    let mut paths: Vec<PathBuf> = fs::read_dir("/etc/ssh")
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.retain(|p| {
        let n = p.file_name().unwrap().to_string_lossy().into_owned();
        n.starts_with("ssh_host_") && n.ends_with("_key.pub")
    });
    // The shell glob sorts in the C locale (LC_ALL=C): byte order.
    paths.sort();
    let mut keys = Vec::new();
    for p in paths {
        if let Ok(text) = fs::read_to_string(&p) {
            for l in text.lines() {
                let l = l.trim();
                if !l.is_empty() && !l.starts_with('#') {
                    keys.push(l.to_string());
                }
            }
        }
    }
    keys
}

pub(super) fn st(kind: FileKind, mode: u32) -> Option<FileStat> {
    Some(FileStat {
        kind,
        mode,
        uid: my_uid(),
        gid: my_gid(),
    })
}

pub(super) fn check_full(acct: &LiveAccount, home: &Path) {
    assert_eq!(acct.uid, my_uid());
    assert_eq!(acct.gid, my_gid());
    assert_eq!(acct.user, cmd_output("id", &["-un"]));
    assert_eq!(acct.home, fs::canonicalize(home).unwrap().to_str().unwrap());
    assert!(!acct.hostname.is_empty());
    assert_eq!(acct.home_stat, st(FileKind::Dir, 0o750));
    assert_eq!(acct.ssh_dir, st(FileKind::Dir, 0o700));
    let names: Vec<&str> = acct.files.iter().map(|f| f.name.as_str()).collect();
    let req = full_request();
    let want: Vec<&str> = req
        .read
        .iter()
        .chain(req.stat_only.iter())
        .map(|s| s.as_str())
        .collect();
    assert_eq!(names, want);

    let f = |n: &str| acct.file(n).unwrap();
    let ak = f("authorized_keys");
    assert_eq!(ak.stat, st(FileKind::File, 0o600));
    assert_eq!(ak.content.as_deref(), Some(AUTH_KEYS));
    assert!(!ak.unreadable);
    assert_eq!(f("known_hosts").content.as_deref(), Some(KNOWN_HOSTS));
    assert_eq!(f("known_hosts").stat, st(FileKind::File, 0o644));
    assert_eq!(f("empty").content.as_deref(), Some(&b""[..]));
    for link in ["linked", "secret_link"] {
        assert_eq!(f(link).stat, st(FileKind::Symlink, 0o777), "{link}");
        assert_eq!(f(link).content, None);
        assert!(!f(link).unreadable);
    }
    assert_eq!(
        f("id_ed25519.pub").content.as_deref(),
        Some(&b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPub me@host\n"[..])
    );
    let all_bytes: Vec<u8> = (0..=255u8)
        .chain(b"\ndata 5\nend 0\n".iter().copied())
        .collect();
    assert_eq!(f("binary").content.as_deref(), Some(&all_bytes[..]));
    assert_eq!(f("binary").stat, st(FileKind::File, 0o640));
    assert_eq!(f("with space").content.as_deref(), Some(&b"spaced\n"[..]));
    for missing in ["nope", "nope2"] {
        assert_eq!(f(missing).stat, None);
        assert_eq!(f(missing).content, None);
        assert!(!f(missing).unreadable);
    }
    assert_eq!(f("subdir").stat, st(FileKind::Dir, 0o3770));
    assert_eq!(f("subdir").content, None);
    assert_eq!(f("id_ed25519").stat, st(FileKind::File, 0o600));
    assert_eq!(f("id_ed25519").content, None);
    assert_eq!(f("secret_plain").stat, st(FileKind::File, 0o600));
    assert_eq!(f("secret_plain").content, None);
    assert_eq!(f("suid").stat, st(FileKind::File, 0o4751));
    assert_eq!(f("suid").content, None);
    assert_eq!(acct.host_keys, system_host_keys());
}

#[test]
fn probe_runs_under_every_shell() {
    let (_tmp, home) = fixture(0o700);
    let req = full_request();
    let mut outputs = Vec::new();
    for shell in SHELLS {
        let out = run_probe(shell, &home, &req);
        assert!(
            !contains(&out, SENTINEL.as_bytes()),
            "{shell:?} printed the private key sentinel"
        );
        let acct = parse_probe_output(&out)
            .unwrap_or_else(|e| panic!("{shell:?}: {e}\n{}", String::from_utf8_lossy(&out)));
        check_full(&acct, &home);
        outputs.push((shell, out, acct));
    }
    // Every shell reports the same thing (busybox and GNU agree).
    for (shell, _, acct) in &outputs[1..] {
        assert_eq!(acct, &outputs[0].2, "{shell:?} differs from dash");
    }
}

/// A temporary file an interrupted apply left is reported once it is ten
/// minutes old; a fresh one (a run in flight) and other names are not.
#[test]
fn leftovers_of_an_interrupted_apply_are_reported() {
    let (_tmp, home) = fixture(0o700);
    let ssh = home.join(".ssh");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (name, age) in [
        (".trustmesh.AbC123", Some(old)),
        (".trustmesh.Fresh9", None),
        (".trustmeshy", Some(old)),
        ("notes.trustmesh.x", Some(old)),
    ] {
        let p = ssh.join(name);
        fs::write(&p, b"cut short").unwrap();
        if let Some(t) = age {
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
    }
    for shell in SHELLS {
        let out = run_probe(shell, &home, &full_request());
        let acct = parse_probe_output(&out)
            .unwrap_or_else(|e| panic!("{shell:?}: {e}\n{}", String::from_utf8_lossy(&out)));
        assert_eq!(
            acct.leftovers,
            vec![".trustmesh.AbC123".to_string()],
            "{shell:?}"
        );
    }
    // A name that could reach another path is refused by the parser.
    let bad = b"TRUSTMESH-PROBE-BEGIN v1\nuser u\nuid 1\ngid 2\nhostname h\nhome /h\nhome-stat dir 0755 1 2\nssh-stat missing\nleftover .trustmesh.x/../../y\nTRUSTMESH-PROBE-END\n";
    assert!(parse_probe_output(bad).is_err());
}

/// BSD/macOS-flavoured tools: `wc -c` pads its count with spaces, `ls`
/// puts `@` (extended attributes) after the mode string; no `hostname`
/// (falls back to `uname -n`); `id -un` fails (falls back to $LOGNAME).
/// Under dash, bash and `bash --posix` (macOS's `/bin/sh`).
#[test]
fn bsd_flavoured_tools() {
    let (_tmp, home) = fixture(0o700);
    let bin = tempfile::tempdir().unwrap();
    for applet in ["cat", "grep", "uname", "sed"] {
        symlink("/bin/busybox", bin.path().join(applet)).unwrap();
    }
    let script = |name: &str, body: &str| {
        let p = bin.path().join(name);
        fs::write(&p, format!("#!/bin/busybox sh\n{body}\n")).unwrap();
        chmod(&p, 0o755);
    };
    script(
        "wc",
        r#"n=$(/bin/busybox wc "$@") || exit 1; printf '%8s\n' "$n""#,
    );
    script(
        "ls",
        r#"/bin/busybox ls "$@" | /bin/busybox sed 's/^\(..........\)/\1@/'"#,
    );
    script(
        "id",
        r#"[ "$1" = -un ] && exit 1; exec /bin/busybox id "$@""#,
    );
    let reference = parse_probe_output(&run_probe(Shell::Dash, &home, &full_request())).unwrap();
    for shell in [Shell::Dash, Shell::Bash, Shell::MacLike] {
        let mut cmd = shell.command();
        cmd.arg("-s")
            .arg("--")
            .args(full_request().args().unwrap())
            .env("HOME", &home)
            .env("PATH", bin.path())
            .env("LOGNAME", "fallback-user")
            .current_dir("/");
        let out = sh_out(&mut cmd, PROBE_SCRIPT.as_bytes());
        assert!(!contains(&out, SENTINEL.as_bytes()));
        assert!(contains(&out, b"\ndata 270\n"), "padded count normalised");
        let acct = parse_probe_output(&out).unwrap();
        assert_eq!(acct.user, "fallback-user");
        assert_eq!(acct.hostname, cmd_output("uname", &["-n"]));
        assert_eq!(
            LiveAccount {
                user: reference.user.clone(),
                hostname: reference.hostname.clone(),
                ..acct
            },
            reference,
            "{shell:?}"
        );
    }
}

#[test]
fn private_key_asked_for_reading_is_refused() {
    let (_tmp, home) = fixture(0o700);
    let req = ProbeRequest {
        read: vec!["id_ed25519".into()],
        stat_only: vec![],
        ..Default::default()
    };
    for shell in SHELLS {
        let out = run_probe(shell, &home, &req);
        assert!(!contains(&out, SENTINEL.as_bytes()), "{shell:?}");
        let acct = parse_probe_output(&out).unwrap();
        let f = acct.file("id_ed25519").unwrap();
        assert_eq!(f.stat, st(FileKind::File, 0o600));
        assert_eq!(f.content, None);
        assert!(f.unreadable);
    }
}

#[test]
fn stat_only_path_cannot_read() {
    // The stat-only function only lists; the one `cat` is in tm_data,
    // which tm_statonly never reaches.
    let body = |name: &str| {
        let start = PROBE_SCRIPT.find(&format!("{name}() {{")).unwrap();
        let end = start + PROBE_SCRIPT[start..].find("\n}\n").unwrap();
        &PROBE_SCRIPT[start..end]
    };
    let statonly = body("tm_statonly");
    for word in ["cat", "tm_data", "tm_read", "grep", "wc", "<"] {
        assert!(!statonly.contains(word), "tm_statonly mentions {word}");
    }
    assert!(!body("tm_stat").contains("cat"));
    assert_eq!(PROBE_SCRIPT.matches("cat ").count(), 1);
    assert!(body("tm_data").contains("cat \"$1\""));
    // GNU-only tools and flags stay out.
    for gnu in [
        "stat -c", "readlink", "base64", "-printf", "local ", "[[", "mktemp",
    ] {
        assert!(!PROBE_SCRIPT.contains(gnu), "script uses {gnu}");
    }
}

#[test]
fn ssh_dir_0755_variant() {
    let (_tmp, home) = fixture(0o755);
    for shell in SHELLS {
        let acct = parse_probe_output(&run_probe(shell, &home, &full_request())).unwrap();
        assert_eq!(acct.ssh_dir, st(FileKind::Dir, 0o755), "{shell:?}");
        assert_eq!(
            acct.file("authorized_keys").unwrap().content.as_deref(),
            Some(AUTH_KEYS)
        );
    }
}

#[test]
fn missing_ssh_dir_is_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    chmod(tmp.path(), 0o700);
    for shell in SHELLS {
        let out = run_probe(shell, tmp.path(), &full_request());
        let acct = parse_probe_output(&out).unwrap();
        assert_eq!(acct.ssh_dir, None, "{shell:?}");
        assert_eq!(acct.home_stat, st(FileKind::Dir, 0o700));
        assert_eq!(acct.files.len(), 14);
        for f in &acct.files {
            assert_eq!(f.stat, None, "{}", f.name);
            assert_eq!(f.content, None);
            assert!(!f.unreadable);
        }
    }
}

#[test]
fn ssh_path_that_is_a_file_or_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(".ssh"), b"not a dir").unwrap();
    let req = ProbeRequest {
        read: vec!["authorized_keys".into()],
        stat_only: vec![],
        ..Default::default()
    };
    let acct = parse_probe_output(&run_probe(Shell::Dash, tmp.path(), &req)).unwrap();
    assert_eq!(acct.ssh_dir.unwrap().kind, FileKind::File);
    assert_eq!(acct.files[0].stat, None);

    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real-ssh");
    fs::create_dir(&real).unwrap();
    fs::write(real.join("authorized_keys"), b"k\n").unwrap();
    symlink(&real, tmp.path().join(".ssh")).unwrap();
    for shell in SHELLS {
        let acct = parse_probe_output(&run_probe(shell, tmp.path(), &req)).unwrap();
        assert_eq!(acct.ssh_dir.as_ref().unwrap().kind, FileKind::Symlink);
        assert_eq!(acct.files[0].content.as_deref(), Some(&b"k\n"[..]));
    }
}

#[test]
fn noise_around_the_markers_is_ignored() {
    let (_tmp, home) = fixture(0o700);
    let out = run_probe(Shell::Dash, &home, &full_request());
    let clean = parse_probe_output(&out).unwrap();
    let mut noisy = b"Welcome to node1!\r\nLast login: yesterday\nTRUSTMESH-PROBE-END\nno newline at end of motd"
        .to_vec();
    noisy.extend_from_slice(&out);
    noisy.extend_from_slice(b"logout noise\nTRUSTMESH-PROBE-BEGIN v1\nuser mallory\n");
    assert_eq!(parse_probe_output(&noisy).unwrap(), clean);

    // The same through a login shell that prints from its rc file.
    let mut cmd = Command::new("/usr/bin/dash");
    cmd.arg("-c")
        .arg(format!(
            "echo 'motd line'; printf 'partial'; {}",
            full_request().command_line().unwrap()
        ))
        .env("HOME", &home)
        .current_dir("/");
    let out = sh_out(&mut cmd, PROBE_SCRIPT.as_bytes());
    assert!(out.starts_with(b"motd line\npartial\n"));
    assert_eq!(parse_probe_output(&out).unwrap(), clean);
}

/// The probe lists, sizes and checks all its files with one `ls`, one
/// `wc` and one `grep`, not one of each per file (#21: on a busy node
/// every process is the cost), and no `pwd` or `find` when there is
/// nothing to look for; a file whose line the shared listing cannot tell
/// apart (`end .` ends like `.`'s) is listed alone, and still right.
#[test]
fn one_process_per_tool_not_per_file() {
    let (_tmp, home) = fixture(0o700);
    fs::write(home.join(".ssh/end ."), b"x\n").unwrap();
    let mut req = full_request();
    req.read.push("end .".into());
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("log");
    for tool in [
        "ls", "cat", "wc", "id", "hostname", "uname", "grep", "pwd", "find",
    ] {
        let p = bin.path().join(tool);
        fs::write(
            &p,
            format!(
                "#!/bin/busybox sh\necho {tool} >>'{}'\nexec /bin/busybox {tool} \"$@\"\n",
                log.display()
            ),
        )
        .unwrap();
        chmod(&p, 0o755);
    }
    let reference = parse_probe_output(&run_probe(Shell::Dash, &home, &req)).unwrap();
    let out = run_probe_with(Shell::Dash, &home, &req.args().unwrap(), |mut c| {
        c.env("PATH", bin.path());
        c
    });
    let acct = parse_probe_output(&out).unwrap();
    assert_eq!(acct, reference);
    let runs = fs::read_to_string(&log).unwrap();
    let count = |tool: &str| runs.lines().filter(|l| *l == tool).count();
    // One shared `ls`, and one more for `.`, whose line it cannot tell
    // from `end .`'s.
    assert_eq!(count("ls"), 2, "{runs}");
    assert_eq!(count("wc"), 1, "{runs}");
    assert_eq!(count("grep"), 1, "{runs}");
    assert_eq!(count("pwd") + count("find"), 0, "{runs}");
    // One `cat` per file read and per host key, and no more.
    let read = acct.files.iter().filter(|f| f.content.is_some()).count();
    let host_keys = out.windows(8).filter(|w| w == b"hostkey\n").count();
    assert_eq!(count("cat"), read + host_keys, "{runs}");
}
