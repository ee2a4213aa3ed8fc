//! The scripts under the shell matrix (`shells.rs`): what each does, and what it
//! refuses.

use super::shells::{prepend_path, Applets, Shell, SHELLS};
use super::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Busybox applets the scripts use, and the programs busybox lacks
/// (Debian's busybox has no `cksum`; `ssh-keygen` comes with OpenSSH):
/// the whole PATH of the busybox shells of the matrix.
pub(super) const SCRIPT_TOOLS: &[&str] = &[
    "awk", "cat", "chmod", "chown", "cp", "dirname", "grep", "id", "ls", "mkdir", "mktemp", "mv",
    "od", "printf", "rm", "sync", "tail", "test", "[", "tr",
];
const SCRIPT_SYSTEM_TOOLS: &[&str] = &["/usr/bin/cksum", "/usr/bin/ssh-keygen"];

/// Run `script` under `shell` as `sh -c SCRIPT trustmesh ARGS...`.
pub(super) fn run_in(
    shell: Shell,
    home: &Path,
    script: &str,
    args: &[&str],
    stdin: &[u8],
) -> (Outcome, String) {
    run_in_with(shell, home, script, args, stdin, None)
}

/// [`run_in`], with `first` (a folder of fake programs) ahead of the
/// shell's `PATH` when given.
pub(super) fn run_in_with(
    shell: Shell,
    home: &Path,
    script: &str,
    args: &[&str],
    stdin: &[u8],
    first: Option<&Path>,
) -> (Outcome, String) {
    let applets = Applets::new(SCRIPT_TOOLS, SCRIPT_SYSTEM_TOOLS);
    let mut cmd = shell.command();
    cmd.arg("-c")
        .arg(script)
        .arg("trustmesh")
        .args(args)
        .env("HOME", home);
    applets.restrict(shell, &mut cmd);
    if let Some(first) = first {
        prepend_path(&mut cmd, first);
    }
    // A script that refuses early does not read its input.
    let (out, _) = output_with_input(&mut cmd, stdin);
    (
        outcome(&out.stdout, &out.stderr, out.status.code()),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Run `cmd` with `stdin` as its input and its output captured; beside
/// the output, how writing the input went.
fn output_with_input(
    cmd: &mut Command,
    stdin: &[u8],
) -> (std::process::Output, std::io::Result<()>) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let written = child.stdin.take().unwrap().write_all(stdin);
    (child.wait_with_output().unwrap(), written)
}

#[test]
fn cksum_matches_the_system_cksum() {
    for data in [
        &b""[..],
        b"a",
        b"hello\r\nworld",
        &[0u8; 300][..],
        &vec![7u8; 70000][..],
    ] {
        let (out, written) = output_with_input(&mut Command::new("cksum"), data);
        written.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let sys: Vec<&str> = text.split_whitespace().take(2).collect();
        assert_eq!(cksum(data), sys.join(" "), "for {} bytes", data.len());
    }
}

/// A temporary home for running scripts under `sh`, with a `~/.ssh`
/// folder.
pub(super) struct Home {
    pub(super) sh: Shell,
    dir: tempfile::TempDir,
    pub(super) ssh: PathBuf,
}

impl Home {
    /// A home whose `~/.ssh` holds `files` (name, content).
    pub(super) fn new(sh: Shell, files: &[(&str, &[u8])]) -> Home {
        let home = Home::empty(sh);
        std::fs::create_dir(&home.ssh).unwrap();
        for (name, content) in files {
            std::fs::write(home.ssh.join(name), content).unwrap();
        }
        home
    }

    /// A home with no `~/.ssh` yet.
    pub(super) fn empty(sh: Shell) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        Home { sh, dir, ssh }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run `script` in this home under its shell.
    pub(super) fn run(&self, script: &str, args: &[&str], stdin: &[u8]) -> (Outcome, String) {
        run_in(self.sh, self.path(), script, args, stdin)
    }

    /// The replace script on `path`: expected checksum, mode, checksum
    /// of the new content, and the content sent (maybe cut short).
    pub(super) fn replace(
        &self,
        path: &str,
        [expected, mode, sum]: [&str; 3],
        content: &[u8],
    ) -> Outcome {
        self.run(REPLACE_FILE, &[path, expected, mode, sum], content)
            .0
    }
}

pub(super) fn set_mode(f: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The permission bits of `f`.
pub(super) fn mode_of(f: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(f).unwrap().permissions().mode() & 0o7777
}

#[test]
fn replace_file_swaps_atomically_and_refuses_a_changed_file() {
    for sh in SHELLS {
        let home = Home::new(sh, &[("authorized_keys", b"old\r\n")]);
        let ssh = &home.ssh;
        let f = ssh.join("authorized_keys");
        set_mode(&f, 0o640);
        let keys = ".ssh/authorized_keys";
        // Wrong expectation: refused, file untouched.
        let o = home.replace(keys, ["1 1", "0600", &cksum(b"new\n")], b"new\n");
        assert!(
            matches!(o, Outcome::Conflict(ref now) if *now == cksum(b"old\r\n")),
            "{sh:?}: {o:?}"
        );
        assert_eq!(std::fs::read(&f).unwrap(), b"old\r\n");
        // Right expectation: replaced, the mode set, then (`keep`) the
        // mode of the file it replaces kept.
        for (old, mode, new, want) in [
            (&b"old\r\n"[..], "0600", &b"new\n"[..], 0o600),
            (b"new\n", "keep", b"newer\n", 0o640),
        ] {
            if mode == "keep" {
                set_mode(&f, 0o640);
            }
            let o = home.replace(keys, [&cksum(old), mode, &cksum(new)], new);
            assert_eq!(o, Outcome::Ok, "{sh:?}");
            assert_eq!(std::fs::read(&f).unwrap(), new);
            assert_eq!(mode_of(&f), want);
        }
        // Content cut short (a dropped connection): refused, file kept.
        let exp = cksum(b"newer\n");
        let whole = cksum(b"complete content\n");
        let o = home.replace(keys, [&exp, "keep", &whole], b"compl");
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("arrived incomplete")),
            "{sh:?}: {o:?}"
        );
        assert_eq!(std::fs::read(&f).unwrap(), b"newer\n");
        let o = home.replace(keys, [&exp, "keep", &whole], b"");
        assert!(matches!(o, Outcome::Failed(_)), "{sh:?}: {o:?}");
        assert_eq!(std::fs::read(&f).unwrap(), b"newer\n", "never emptied");
        // Creating a missing file.
        let sum = cksum(b"x y z\n");
        let o = home.replace(".ssh/known_hosts", ["absent", "0644", &sum], b"x y z\n");
        assert_eq!(o, Outcome::Ok, "{sh:?}");
        assert_eq!(std::fs::read(ssh.join("known_hosts")).unwrap(), b"x y z\n");
        // No temporary file left behind.
        let left: Vec<_> = std::fs::read_dir(ssh)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".trustmesh"))
            .collect();
        assert!(left.is_empty(), "{sh:?}: {left:?}");
        // A symlink is refused.
        std::os::unix::fs::symlink(&f, ssh.join("link")).unwrap();
        let o = home.replace(".ssh/link", ["absent", "0600", &cksum(b"x\n")], b"x\n");
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("symbolic link")),
            "{sh:?}: {o:?}"
        );
    }
}

/// A fake `sync` that logs its arguments and what the target file
/// holds at that moment (so the log shows whether the rename is done);
/// with `refuse_args`, it fails when given arguments, like a `sync`
/// that takes none.
fn fake_sync(dir: &Path, log: &Path, refuse_args: bool) {
    let refuse = if refuse_args {
        "[ \"$#\" -eq 0 ] || exit 1\n"
    } else {
        ""
    };
    let text = format!(
        "#!/bin/sh\nprintf '%s|%s\\n' \"$*\" \"$(cat .ssh/authorized_keys 2>/dev/null)\" >> '{}'\n{refuse}exit 0\n",
        log.display()
    );
    let prog = dir.join("sync");
    std::fs::write(&prog, text).unwrap();
    set_mode(&prog, 0o755);
}

#[test]
fn replace_file_flushes_the_folder_after_the_rename() {
    for sh in SHELLS {
        for refuse_args in [false, true] {
            let home = Home::new(sh, &[("authorized_keys", b"old\n")]);
            let fakes = tempfile::tempdir().unwrap();
            let log = fakes.path().join("sync.log");
            fake_sync(fakes.path(), &log, refuse_args);
            let (o, _) = run_in_with(
                sh,
                home.path(),
                REPLACE_FILE,
                &[
                    ".ssh/authorized_keys",
                    &cksum(b"old\n"),
                    "0600",
                    &cksum(b"new\n"),
                ],
                b"new\n",
                Some(fakes.path()),
            );
            assert_eq!(o, Outcome::Ok, "{sh:?}");
            let calls = std::fs::read_to_string(&log).unwrap();
            let calls: Vec<&str> = calls.lines().collect();
            // The new content is flushed before the rename...
            assert!(
                calls
                    .first()
                    .is_some_and(|c| c.starts_with(".ssh/.trustmesh.") && c.ends_with("|old")),
                "{sh:?} {refuse_args}: {calls:?}"
            );
            // ...and the folder after it (the whole system when this
            // sync takes no arguments).
            let after: Vec<&str> = calls
                .iter()
                .copied()
                .filter(|c| c.ends_with("|new"))
                .collect();
            let want: &[&str] = if refuse_args {
                &[".ssh|new", "|new"]
            } else {
                &[".ssh|new"]
            };
            assert_eq!(after, want, "{sh:?} {refuse_args}: {calls:?}");
            assert_eq!(calls.last(), want.last(), "{sh:?} {refuse_args}");
        }
    }
}

#[test]
fn keygen_makes_a_key_and_never_overwrites() {
    for sh in SHELLS {
        let home = Home::empty(sh);
        let (o, _) = home.run(MKDIR_SSH, &[], b"");
        assert_eq!(o, Outcome::Ok);
        let args = [".ssh/id_ed25519", "ed25519", "", "trustmesh:n1"];
        let (o, out) = home.run(KEYGEN, &args, b"");
        let Outcome::PublicKey(k) = o else {
            panic!("{sh:?}: {o:?} {out}")
        };
        assert!(
            k.starts_with("ssh-ed25519 AAAA") && k.ends_with(" trustmesh:n1"),
            "{k}"
        );
        assert!(!out.contains("PRIVATE"), "the private key is never printed");
        let (o, _) = home.run(KEYGEN, &args, b"");
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("never overwrites")),
            "{sh:?}: {o:?}"
        );
    }
}

#[test]
fn sign_certifies_a_public_key_with_the_ca_and_takes_data_as_data() {
    for sh in SHELLS {
        let home = Home::empty(sh);
        home.run(MKDIR_SSH, &[], b"");
        let (_, _) = home.run(KEYGEN, &[".ssh/ca", "ed25519", "", "trustmesh-ca:c"], b"");
        let (Outcome::PublicKey(key), _) =
            home.run(KEYGEN, &[".ssh/id", "ed25519", "", "trustmesh:c/n1"], b"")
        else {
            panic!("{sh:?}: no key")
        };
        let args = [
            ".ssh/ca",
            "trustmesh:c/n1",
            "c:group:g,c:reverse",
            "-5m:+60",
            "7",
        ];
        let (o, out) = home.run(SIGN, &[&args[..], &[key.as_str()]].concat(), b"");
        let Outcome::PublicKey(cert) = o else {
            panic!("{sh:?}: {o:?} {out}")
        };
        let info = crate::formats::certificate::parse(&cert).expect("a certificate");
        assert_eq!(info.principals, ["c:group:g", "c:reverse"], "{sh:?}");
        assert_eq!((info.serial, info.key_id.as_str()), (7, "trustmesh:c/n1"));
        assert_eq!(info.valid_before - info.valid_after, 360, "{sh:?}");
        // A hostile principal is data, and ssh-keygen's refusal is said.
        let (o, _) = home.run(
            SIGN,
            &[".ssh/ca", "$(touch pwned)", "p", "+1x", "1", &key],
            b"",
        );
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("ssh-keygen failed")),
            "{sh:?}: {o:?}"
        );
        assert!(!home.path().join("pwned").exists());
        let (o, _) = home.run(SIGN, &[".ssh/none", "i", "p", "+1m", "1", &key], b"");
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("does not exist")),
            "{sh:?}: {o:?}"
        );
    }
}

#[test]
fn rotate_swap_moves_the_old_pair_aside_and_the_new_in_place() {
    for sh in SHELLS {
        let home = Home::new(
            sh,
            &[
                ("id", b"old private"),
                ("id.pub", b"old public"),
                ("id.new", b"new private"),
                ("id.new.pub", b"new public"),
            ],
        );
        let ssh = &home.ssh;
        let args = [".ssh/id", ".ssh/id.new", ".ssh/id.old-abc"];
        let (o, out) = home.run(ROTATE_SWAP, &args, b"");
        assert_eq!(o, Outcome::Ok, "{sh:?}: {out}");
        let read = |n: &str| std::fs::read_to_string(ssh.join(n)).ok();
        assert_eq!(read("id").as_deref(), Some("new private"), "{sh:?}");
        assert_eq!(read("id.pub").as_deref(), Some("new public"));
        assert_eq!(read("id.old-abc").as_deref(), Some("old private"));
        assert_eq!(read("id.old-abc.pub").as_deref(), Some("old public"));
        assert_eq!(read("id.new"), None);
        // Again: the new pair is gone, and nothing is moved over the
        // old pair kept aside.
        let (o, _) = home.run(ROTATE_SWAP, &args, b"");
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("missing")),
            "{sh:?}: {o:?}"
        );
        std::fs::write(ssh.join("id.new"), "x").unwrap();
        std::fs::write(ssh.join("id.new.pub"), "x").unwrap();
        let (o, _) = home.run(ROTATE_SWAP, &args, b"");
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("already exists")),
            "{sh:?}: {o:?}"
        );
        assert_eq!(read("id").as_deref(), Some("new private"));
    }
}

#[test]
fn remove_leftover_removes_only_trustmesh_temporary_files() {
    for sh in SHELLS {
        let home = Home::new(
            sh,
            &[(".trustmesh.AbC123", b"half"), ("authorized_keys", b"keep")],
        );
        let ssh = &home.ssh;
        let run = |path: &str| home.run(REMOVE_LEFTOVER, &[path], b"").0;
        assert_eq!(run(".ssh/.trustmesh.AbC123"), Outcome::Ok, "{sh:?}");
        assert!(!ssh.join(".trustmesh.AbC123").exists());
        assert_eq!(run(".ssh/.trustmesh.AbC123"), Outcome::Ok, "gone already");
        for bad in [
            ".ssh/authorized_keys",
            ".ssh/.trustmesh.",
            ".ssh/.trustmesh.x/../authorized_keys",
            "/etc/passwd",
        ] {
            assert!(matches!(run(bad), Outcome::Failed(_)), "{sh:?} {bad}");
        }
        assert_eq!(
            std::fs::read_to_string(ssh.join("authorized_keys")).unwrap(),
            "keep"
        );
    }
}

#[test]
fn mkdir_private_makes_a_0700_folder_directly_under_ssh() {
    for sh in SHELLS {
        let home = Home::new(sh, &[]);
        let run = |p: &str| home.run(MKDIR_PRIVATE, &[p], b"").0;
        assert_eq!(run(".ssh/config.d"), Outcome::Ok, "{sh:?}");
        let d = home.path().join(".ssh/config.d");
        assert_eq!(mode_of(&d), 0o700);
        assert_eq!(run(".ssh/config.d"), Outcome::Ok, "there already");
        for bad in [".ssh/", ".ssh/a/b", "x", "/tmp/x", ".ssh/../x"] {
            assert!(matches!(run(bad), Outcome::Failed(_)), "{sh:?} {bad}");
        }
        std::fs::write(home.path().join(".ssh/file"), "x").unwrap();
        assert!(matches!(run(".ssh/file"), Outcome::Failed(_)), "{sh:?}");
    }
}

#[test]
fn remove_file_removes_only_what_the_plan_read() {
    for sh in SHELLS {
        let home = Home::new(sh, &[]);
        let d = home.ssh.join("config.d");
        std::fs::create_dir(&d).unwrap();
        let f = d.join("trustmesh-lab");
        std::fs::write(&f, "ours\n").unwrap();
        let run = |sum: &str| {
            home.run(REMOVE_FILE, &[".ssh/config.d/trustmesh-lab", sum], b"")
                .0
        };
        // Changed since the plan: kept.
        assert!(
            matches!(run(&cksum(b"other\n")), Outcome::Conflict(ref now) if *now == cksum(b"ours\n")),
            "{sh:?}"
        );
        assert!(f.exists());
        assert_eq!(run(&cksum(b"ours\n")), Outcome::Ok, "{sh:?}");
        assert!(!f.exists());
        assert_eq!(run(&cksum(b"ours\n")), Outcome::Ok, "gone already");
        std::os::unix::fs::symlink("/etc/hostname", &f).unwrap();
        assert!(matches!(run(&cksum(b"x")), Outcome::Failed(_)), "{sh:?}");
    }
}

/// An absolute path (`/etc/hosts` under `sudo -n`, whose HOME may not
/// be a folder) is written without entering the home; mode and owner
/// kept.
#[test]
fn replace_file_takes_an_absolute_path_without_a_home() {
    for sh in SHELLS {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hosts");
        std::fs::write(&f, b"127.0.0.1 localhost\n").unwrap();
        set_mode(&f, 0o644);
        let new = b"127.0.0.1 localhost\n10.0.0.1 n1\n";
        let path = f.to_str().unwrap();
        let (o, out) = run_in(
            sh,
            &dir.path().join("no such home"),
            REPLACE_FILE,
            &[path, &cksum(b"127.0.0.1 localhost\n"), "keep", &cksum(new)],
            new,
        );
        assert_eq!(o, Outcome::Ok, "{sh:?}: {out}");
        assert_eq!(std::fs::read(&f).unwrap(), new);
        assert_eq!(mode_of(&f), 0o644);
    }
}

/// The sudo wrapping keeps every argument and the content whole (a
/// fake `sudo` that checks `-n` and runs the rest).
#[test]
fn a_script_under_sudo_gets_its_arguments_and_input() {
    let fakes = tempfile::tempdir().unwrap();
    let sudo = fakes.path().join("sudo");
    std::fs::write(
        &sudo,
        "#!/bin/sh\n[ \"$1\" = -n ] || { echo 'TM-ERR no -n'; exit 1; }\nshift\nexec \"$@\"\n",
    )
    .unwrap();
    set_mode(&sudo, 0o755);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("it's hosts");
    std::fs::write(&f, b"old\n").unwrap();
    let new = b"old\n10.0.0.1 n1 $(id)\n";
    let line = with_sudo(&command_line(
        REPLACE_FILE,
        &[f.to_str().unwrap(), &cksum(b"old\n"), "keep", &cksum(new)],
    ));
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(&line);
    prepend_path(&mut cmd, fakes.path());
    let (out, written) = output_with_input(&mut cmd, new);
    written.unwrap();
    assert_eq!(outcome(&out.stdout, b"", out.status.code()), Outcome::Ok);
    assert_eq!(std::fs::read(&f).unwrap(), new);
}

#[test]
fn noise_around_the_result_is_ignored() {
    assert_eq!(outcome(b"motd\nTM-OK\n", b"", Some(0)), Outcome::Ok);
    assert_eq!(
        outcome(b"TM-CONFLICT 1 2\n", b"", Some(4)),
        Outcome::Conflict("1 2".into())
    );
    assert!(matches!(outcome(b"", b"boom", Some(1)), Outcome::Failed(w) if w.contains("boom")));
    // Windows PowerShell's output: CRLF line ends.
    assert_eq!(
        outcome(
            b"TM-PUB-BEGIN\r\nssh-ed25519 AAAA trustmesh:c/win1\r\nTM-PUB-END\r\n",
            b"",
            Some(0)
        ),
        Outcome::PublicKey("ssh-ed25519 AAAA trustmesh:c/win1".into())
    );
    assert_eq!(outcome(b"TM-OK\r\n", b"", Some(0)), Outcome::Ok);
    assert_eq!(script_path("~/.ssh/known_hosts"), ".ssh/known_hosts");
    assert_eq!(script_path("/etc/x"), "/etc/x");
    assert!(command_line(CHMOD, &["0700", ".ssh"]).ends_with(" trustmesh '0700' '.ssh'"));
}

#[test]
fn shell_quote_cases() {
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("abc"), "'abc'");
    assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    assert_eq!(shell_quote("'"), "''\\'''");
    assert_eq!(shell_quote("-rf"), "'-rf'");
    assert_eq!(shell_quote("a\nb"), "'a\nb'");
}

#[test]
fn shell_quote_round_trips_through_real_shells() {
    let nasty = [
        "",
        "plain",
        "with space",
        "new\nline\n",
        "$(touch /tmp/trustmesh-pwned)",
        "`id`",
        "${HOME}",
        "-n",
        "--",
        "'",
        "''",
        "a'b'c",
        "\\'\\",
        "\"double\"",
        "*?[a]",
        "~root",
        "semi;colon&amp|pipe>gt<lt",
        "tab\there",
        "ünïcødé ✓",
        "#comment",
    ];
    let applets = Applets::new(&["printf"], &[]);
    for shell in SHELLS {
        for s in nasty {
            let script = format!("printf '%s' {}", shell_quote(s));
            let mut cmd = shell.command();
            cmd.arg("-c").arg(&script);
            applets.restrict(shell, &mut cmd);
            let out = cmd.output().unwrap();
            assert!(out.status.success());
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s, "{shell:?} {s:?}");
        }
    }
    assert!(!Path::new("/tmp/trustmesh-pwned").exists());
}
