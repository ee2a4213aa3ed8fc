//! The real batch script under every shell of the matrix
//! (`scripts/shells.rs`) on a temporary home.

use super::codec_tests::{probe, replace};
use super::*;
use crate::transport::scripts::shells::{prepend_path, Applets, Shell, SHELLS};
use crate::transport::scripts::{cksum, REPLACE_FILE};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every tool the batch, the single scripts it runs and the probe use:
/// the whole `PATH` of the busybox shells of the matrix (Debian's busybox
/// has no `cksum`).
const TOOLS: &[&str] = &[
    "awk", "cat", "chmod", "chown", "cp", "dd", "dirname", "find", "grep", "hostname", "id", "ls",
    "mkdir", "mktemp", "mv", "printf", "pwd", "rm", "sh", "sync", "test", "[", "tr", "uname", "wc",
];
const SYSTEM_TOOLS: &[&str] = &["/usr/bin/cksum"];

/// A home for one shell, with its own folder for the batch's temporary
/// files (checked empty after each run).
struct Node {
    sh: Shell,
    dir: tempfile::TempDir,
    tmp: tempfile::TempDir,
}

impl Node {
    fn new(sh: Shell) -> Node {
        Node {
            sh,
            dir: tempfile::tempdir().unwrap(),
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    /// A node whose `~/.ssh` (0700) holds `files`.
    fn with(sh: Shell, files: &[(&str, &[u8])]) -> Node {
        let n = Node::new(sh);
        std::fs::create_dir(n.ssh()).unwrap();
        set_mode(&n.ssh(), 0o700);
        for (name, content) in files {
            std::fs::write(n.ssh().join(name), content).unwrap();
        }
        n
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn ssh(&self) -> PathBuf {
        self.home().join(".ssh")
    }

    /// Run the batch under this node's shell, with `first` (fake
    /// programs) ahead on the `PATH`; its report, and its raw output.
    fn run_with(
        &self,
        steps: &[Step],
        req: &ProbeRequest,
        first: Option<&Path>,
    ) -> (Result<BatchReport, BatchError>, String) {
        let enc = encode(steps, req).unwrap();
        let applets = Applets::new(TOOLS, SYSTEM_TOOLS);
        let mut cmd = self.sh.command();
        cmd.arg("-c")
            .arg(scripts::BATCH)
            .arg("trustmesh")
            .args(&enc.args)
            .env("HOME", self.home())
            .env("TMPDIR", self.tmp.path())
            .current_dir("/");
        applets.restrict(self.sh, &mut cmd);
        if let Some(first) = first {
            prepend_path(&mut cmd, first);
        }
        let out = feed(&mut cmd, &enc.stdin);
        let left: Vec<_> = std::fs::read_dir(self.tmp.path()).unwrap().collect();
        assert!(
            left.is_empty(),
            "{:?}: temporary files left: {left:?}",
            self.sh
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (decode(&out.stdout, &out.stderr, steps.len()), text)
    }

    fn run(&self, steps: &[Step], req: &ProbeRequest) -> (BatchReport, String) {
        let (r, text) = self.run_with(steps, req, None);
        match r {
            Ok(r) => (r, text),
            Err(e) => panic!("{:?}: {e}\n{text}", self.sh),
        }
    }
}

fn feed(cmd: &mut Command, stdin: &[u8]) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn set_mode(f: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(f, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(f: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(f).unwrap().permissions().mode() & 0o7777
}

/// A folder holding one fake program `name` with this `sh` body.
fn fake(name: &str, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let prog = dir.path().join(name);
    std::fs::write(&prog, format!("#!/bin/sh\n{body}\n")).unwrap();
    set_mode(&prog, 0o755);
    dir
}

/// What the single script says run alone, the way apply runs it today,
/// on a copy of the same situation.
fn alone(sh: Shell, home: &Path, script: &str, args: &[&str], stdin: &[u8]) -> Outcome {
    let applets = Applets::new(TOOLS, SYSTEM_TOOLS);
    let mut cmd = sh.command();
    cmd.arg("-c")
        .arg(script)
        .arg("trustmesh")
        .args(args)
        .env("HOME", home);
    applets.restrict(sh, &mut cmd);
    let out = feed(&mut cmd, stdin);
    scripts::outcome(&out.stdout, &out.stderr, out.status.code())
}

const OK: StepOutcome = StepOutcome::Ran(Outcome::Ok);

/// Everything succeeds, in order, and the read-back of the same run
/// reports the new contents and modes.
#[test]
fn a_cold_node_is_written_and_read_back_in_one_run() {
    let keys = b"ssh-ed25519 AAAA trustmesh:c/manager\n";
    let hosts = b"10.0.0.1 ssh-ed25519 BBBB trustmesh:c/n2\n";
    let alias = b"Host n2\n  HostName 10.0.0.2\n";
    for sh in SHELLS {
        let node = Node::new(sh);
        let steps = [
            Step::new(Action::MkdirSsh),
            Step::new(Action::MkdirPrivate {
                path: ".ssh/config.d".into(),
            })
            .after(&[0]),
            Step::new(replace(".ssh/authorized_keys", "absent", Some(0o600), keys)).after(&[0]),
            Step::new(replace(".ssh/known_hosts", "absent", Some(0o644), hosts)).after(&[0]),
            Step::new(replace(
                ".ssh/config.d/trustmesh",
                "absent",
                Some(0o600),
                alias,
            ))
            .after(&[1]),
            Step::new(Action::Chmod {
                path: ".ssh/known_hosts".into(),
                mode: 0o600,
            })
            .after(&[3]),
        ];
        let (r, text) = node.run(&steps, &probe());
        assert_eq!(r.outcomes, vec![OK; 6], "{sh:?}: {text}");
        let ssh = node.ssh();
        assert_eq!(mode_of(&ssh), 0o700, "{sh:?}");
        assert_eq!(mode_of(&ssh.join("config.d")), 0o700, "{sh:?}");
        assert_eq!(std::fs::read(ssh.join("authorized_keys")).unwrap(), keys);
        assert_eq!(
            std::fs::read(ssh.join("config.d/trustmesh")).unwrap(),
            alias
        );
        assert_eq!(mode_of(&ssh.join("known_hosts")), 0o600, "{sh:?}");
        // The read-back is of the state after the writes.
        let acct = r.read_back.unwrap();
        let f = acct.file("authorized_keys").unwrap();
        assert_eq!(f.content.as_deref(), Some(&keys[..]), "{sh:?}");
        let f = acct.file("known_hosts").unwrap();
        assert_eq!(f.content.as_deref(), Some(&hosts[..]), "{sh:?}");
        assert_eq!(f.stat.as_ref().unwrap().mode, 0o600, "{sh:?}");
        assert!(acct.file("id_ed25519").unwrap().stat.is_none());
        assert_eq!(acct.ssh_dir.unwrap().mode, 0o700, "{sh:?}");
    }
}

/// A file changed after planning: its replace is a conflict, what needs
/// that file is skipped, the file is left as the other writer made it,
/// and the rest of the list goes on; the outcome is the single script's.
#[test]
fn a_conflict_stops_that_file_only() {
    let planned = b"ssh-ed25519 OLD a\n";
    let theirs = b"ssh-ed25519 OLD a\nssh-ed25519 THEIRS b\n";
    let ours = b"ssh-ed25519 OLD a\nssh-ed25519 NEW trustmesh:c/n1\n";
    for sh in SHELLS {
        let node = Node::with(sh, &[("authorized_keys", theirs)]);
        let steps = [
            Step::new(replace(".ssh/authorized_keys", &cksum(planned), None, ours)),
            Step::new(Action::Chmod {
                path: ".ssh/authorized_keys".into(),
                mode: 0o600,
            })
            .after(&[0]),
            Step::new(replace(".ssh/known_hosts", "absent", Some(0o600), b"k\n")),
        ];
        let (r, text) = node.run(&steps, &probe());
        let same = alone(
            sh,
            node.home(),
            REPLACE_FILE,
            &[
                ".ssh/authorized_keys",
                &cksum(planned),
                "keep",
                &cksum(ours),
            ],
            ours,
        );
        assert_eq!(same, Outcome::Conflict(cksum(theirs)), "{sh:?}");
        assert_eq!(
            r.outcomes,
            [
                StepOutcome::Ran(same),
                StepOutcome::Skipped { after: 0 },
                OK
            ],
            "{sh:?}: {text}"
        );
        let f = node.ssh().join("authorized_keys");
        assert_eq!(
            std::fs::read(&f).unwrap(),
            theirs,
            "{sh:?}: never overwritten"
        );
        let acct = r.read_back.unwrap();
        let read = acct.file("authorized_keys").unwrap().content.clone();
        assert_eq!(read.as_deref(), Some(&theirs[..]), "{sh:?}");
        assert_eq!(
            std::fs::read(node.ssh().join("known_hosts")).unwrap(),
            b"k\n"
        );
    }
}

/// No `~/.ssh` and no step to make it: the writes in it fail with the
/// single scripts' reasons, what waits for them is skipped, the others
/// run, and the read-back says `~/.ssh` is missing.
#[test]
fn a_missing_folder_fails_its_writes_with_the_scripts_reasons() {
    for sh in SHELLS {
        let node = Node::new(sh);
        let steps = [
            Step::new(replace(
                ".ssh/authorized_keys",
                "absent",
                Some(0o600),
                b"k\n",
            )),
            Step::new(Action::MkdirPrivate {
                path: ".ssh/config.d".into(),
            }),
            Step::new(replace(".ssh/config.d/x", "absent", Some(0o600), b"c\n")).after(&[1]),
            Step::new(Action::RemoveLeftover {
                path: ".ssh/.trustmesh.AbC123".into(),
            }),
        ];
        let (r, text) = node.run(&steps, &probe());
        let why = alone(
            sh,
            node.home(),
            REPLACE_FILE,
            &[".ssh/authorized_keys", "absent", "0600", &cksum(b"k\n")],
            b"k\n",
        );
        assert!(
            matches!(&why, Outcome::Failed(w) if w.contains("cannot create a file in .ssh")),
            "{sh:?}: {why:?}"
        );
        let mkdir = alone(
            sh,
            node.home(),
            scripts::MKDIR_PRIVATE,
            &[".ssh/config.d"],
            b"",
        );
        assert!(matches!(mkdir, Outcome::Failed(_)), "{sh:?}: {mkdir:?}");
        assert_eq!(
            r.outcomes,
            [
                StepOutcome::Ran(why),
                StepOutcome::Ran(mkdir),
                StepOutcome::Skipped { after: 1 },
                OK
            ],
            "{sh:?}: {text}"
        );
        assert!(!node.ssh().exists(), "{sh:?}");
        assert!(r.read_back.unwrap().ssh_dir.is_none(), "{sh:?}");
    }
}

/// A file that cannot be written (the tests run as root, whom no mode
/// stops: the rename fails for real, through a fake `mv` that moves under
/// `/dev/null/`): the file keeps its content, no temporary file is left,
/// the reason is the single script's with the OS's words.
#[test]
fn an_unwritable_file_keeps_its_content_and_says_why() {
    let old = b"old\n";
    let new = b"new\n";
    let fakes = fake("mv", "exec /bin/mv \"$2\" /dev/null/x");
    for sh in SHELLS {
        let node = Node::with(sh, &[("authorized_keys", old)]);
        let steps = [
            Step::new(replace(".ssh/authorized_keys", &cksum(old), None, new)),
            Step::new(Action::Chmod {
                path: ".ssh/authorized_keys".into(),
                mode: 0o600,
            })
            .after(&[0]),
        ];
        let (r, text) = node.run_with(&steps, &probe(), Some(fakes.path()));
        let r = r.unwrap_or_else(|e| panic!("{sh:?}: {e}\n{text}"));
        match &r.outcomes[0] {
            StepOutcome::Ran(Outcome::Failed(why)) => assert!(
                why.contains("cannot rename over .ssh/authorized_keys")
                    && why.contains("Not a directory"),
                "{sh:?}: {why}"
            ),
            other => panic!("{sh:?}: {other:?}\n{text}"),
        }
        assert_eq!(r.outcomes[1], StepOutcome::Skipped { after: 0 });
        assert_eq!(
            std::fs::read(node.ssh().join("authorized_keys")).unwrap(),
            old
        );
        let left: Vec<_> = std::fs::read_dir(node.ssh())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with(".trustmesh"))
            .collect();
        assert!(left.is_empty(), "{sh:?}: {left:?}");
    }
}

/// Hostile bytes in contents and in names reach the files exactly and
/// run nothing: newlines, quotes, `$(...)`, backticks, every byte but NUL.
#[test]
fn hostile_contents_and_names_arrive_whole_and_run_nothing() {
    let mut binary: Vec<u8> = (1..=255u8).collect();
    binary.extend(b"\n$(touch PWNED)`touch PWNED`'\"\\\n");
    let quoted = b"it's \"quoted\"\n$(touch PWNED)\n".to_vec();
    let names = [
        ".ssh/it's $(touch PWNED) `x`",
        ".ssh/two\nlines\nTM-OK\nstep 9 ran 0 0 0",
        ".ssh/-dash;rm -rf ~",
    ];
    for sh in SHELLS {
        let node = Node::with(sh, &[]);
        let mut steps = vec![
            Step::new(replace(
                ".ssh/authorized_keys",
                "absent",
                Some(0o600),
                &binary,
            )),
            Step::new(replace(".ssh/known_hosts", "absent", Some(0o644), &quoted)),
            Step::new(replace(".ssh/empty", "absent", Some(0o600), b"")),
        ];
        for n in names {
            steps.push(Step::new(replace(n, "absent", Some(0o600), n.as_bytes())));
        }
        steps.push(Step::new(Action::Chmod {
            path: names[0].into(),
            mode: 0o640,
        }));
        // A refusal whose message holds a hostile name stays one outcome.
        steps.push(Step::new(Action::RemoveLeftover {
            path: names[1].into(),
        }));
        let (r, text) = node.run(&steps, &probe());
        let n = steps.len();
        assert_eq!(r.outcomes[..n - 1], vec![OK; n - 1], "{sh:?}: {text}");
        let refused = alone(sh, node.home(), scripts::REMOVE_LEFTOVER, &[names[1]], b"");
        assert!(matches!(refused, Outcome::Failed(_)), "{sh:?}: {refused:?}");
        assert_eq!(r.outcomes[n - 1], StepOutcome::Ran(refused), "{sh:?}");
        let ssh = node.ssh();
        assert_eq!(std::fs::read(ssh.join("authorized_keys")).unwrap(), binary);
        assert_eq!(std::fs::read(ssh.join("known_hosts")).unwrap(), quoted);
        assert_eq!(std::fs::read(ssh.join("empty")).unwrap(), b"");
        for name in names {
            let f = node.home().join(name);
            assert_eq!(std::fs::read(&f).unwrap(), name.as_bytes(), "{sh:?}");
        }
        assert_eq!(mode_of(&node.home().join(names[0])), 0o640);
        let acct = r.read_back.unwrap();
        let f = acct.file("authorized_keys").unwrap();
        assert_eq!(f.content.as_deref(), Some(&binary[..]), "{sh:?}");
        for dir in [Path::new("/"), node.home(), &ssh] {
            assert!(!dir.join("PWNED").exists(), "{sh:?}: something ran");
        }
    }
}

/// A removal, a leftover, an owner and a `sudo -n` replace (a fake `sudo`
/// that checks `-n` and runs the rest) in one list.
#[test]
fn removals_owners_and_sudo_steps_run_as_alone() {
    let fakes = fake(
        "sudo",
        "[ \"$1\" = -n ] || { echo 'TM-ERR no -n'; exit 1; }\nshift\nexec \"$@\"",
    );
    use std::os::unix::fs::MetadataExt;
    for sh in SHELLS {
        let node = Node::with(
            sh,
            &[
                ("trustmesh.conf", b"old alias\n"),
                (".trustmesh.AbC123", b"half\n"),
                ("authorized_keys", b"k\n"),
            ],
        );
        let uid = std::fs::metadata(node.ssh()).unwrap().uid();
        let etc = tempfile::tempdir().unwrap();
        let hosts = etc.path().join("it's hosts");
        std::fs::write(&hosts, b"127.0.0.1 localhost\n").unwrap();
        set_mode(&hosts, 0o644);
        let new = b"127.0.0.1 localhost\n10.0.0.1 n1 $(id)\n";
        let steps = [
            Step::new(Action::RemoveFile {
                path: ".ssh/trustmesh.conf".into(),
                expected: cksum(b"old alias\n"),
                sudo: false,
            }),
            Step::new(Action::RemoveLeftover {
                path: ".ssh/.trustmesh.AbC123".into(),
            }),
            Step::new(Action::Chown {
                path: ".ssh/authorized_keys".into(),
                uid,
            }),
            Step::new(Action::Replace {
                path: hosts.to_str().unwrap().into(),
                expected: cksum(b"127.0.0.1 localhost\n"),
                mode: None,
                content: new.to_vec(),
                sudo: true,
            }),
        ];
        let (r, text) = node.run_with(&steps, &probe(), Some(fakes.path()));
        let r = r.unwrap_or_else(|e| panic!("{sh:?}: {e}\n{text}"));
        assert_eq!(r.outcomes, vec![OK; 4], "{sh:?}: {text}");
        assert!(!node.ssh().join("trustmesh.conf").exists());
        assert!(!node.ssh().join(".trustmesh.AbC123").exists());
        assert_eq!(std::fs::read(&hosts).unwrap(), new);
        assert_eq!(mode_of(&hosts), 0o644);
    }
}

/// The command line itself, as a login shell runs it (`sh -c LINE`):
/// the same report.
#[test]
fn the_command_line_runs_as_a_login_shell_would() {
    let node = Node::new(Shell::Dash);
    let steps = [
        Step::new(Action::MkdirSsh),
        Step::new(replace(
            ".ssh/authorized_keys",
            "absent",
            Some(0o600),
            b"k 'q'\n",
        ))
        .after(&[0]),
    ];
    let enc = encode(&steps, &probe()).unwrap();
    let mut cmd = Command::new("/usr/bin/dash");
    cmd.arg("-c")
        .arg(&enc.line)
        .env("HOME", node.home())
        .env("TMPDIR", node.tmp.path());
    let out = feed(&mut cmd, &enc.stdin);
    let r = decode(&out.stdout, &out.stderr, 2).unwrap();
    assert_eq!(r.outcomes, [OK, OK]);
    assert_eq!(
        std::fs::read(node.ssh().join("authorized_keys")).unwrap(),
        b"k 'q'\n"
    );
}
