//! What the ssh processes trustmesh starts on the manager see in their
//! environment, on the testbed: a fake `ssh` first on `PATH` records each
//! call's arguments and environment, then runs the real one.
#![cfg(feature = "live")]

mod live;

use live::*;

/// Where the fake `ssh` writes one file per call, under the manager's home.
const CALLS: &str = "ssh-calls";

/// The fake `ssh`: arguments (one per line, after `args`), then `env`, into
/// a file of its own (calls run at once), then the real ssh.
const FAKE_SSH: &str = r#"#!/bin/sh
log=$(mktemp "$HOME/ssh-calls/call.XXXXXX") || exit 99
{
  printf 'args\n'
  for a in "$@"; do printf '%s\n' "$a"; done
  printf 'env\n'
  env
} > "$log"
exec /usr/bin/ssh "$@"
"#;

/// One recorded call of the fake ssh.
#[derive(Debug)]
struct Call {
    args: Vec<String>,
    env: Vec<String>,
}

impl Call {
    fn has_env(&self, name: &str) -> bool {
        self.env.iter().any(|l| l.starts_with(&format!("{name}=")))
    }

    /// A password login (transport::password): the only ssh that may get
    /// the secret.
    fn is_password_login(&self) -> bool {
        self.args.iter().any(|a| a == "PasswordAuthentication=yes")
    }

    /// An `openssh` master connection.
    fn is_master(&self) -> bool {
        self.args.iter().any(|a| a == "-M")
    }
}

/// Put the fake ssh where the manager's account can run it; return the
/// folder to put first on `PATH`.
fn install_fake_ssh(live: &Live) -> String {
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("ssh");
    std::fs::write(&path, FAKE_SSH).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let shared = live.cluster.share(&path).expect("share the fake ssh");
    let out = live.run_as("manager", MANAGER_USER, &format!("mkdir -p ~/{CALLS}"));
    assert!(out.status.success(), "{:?}", text(&out));
    shared.parent().unwrap().to_str().unwrap().to_string()
}

/// Every call recorded so far (and forget them).
fn take_calls(live: &Live) -> Vec<Call> {
    let dir = live
        .cluster
        .host("manager")
        .home_of(MANAGER_USER)
        .join(CALLS);
    let mut calls = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("args"), "{text}");
        let args: Vec<String> = lines
            .by_ref()
            .take_while(|l| *l != "env")
            .map(String::from)
            .collect();
        calls.push(Call {
            args,
            env: lines.map(String::from).collect(),
        });
    }
    calls
}

/// Run trustmesh on the manager, in its home, with `$TRUSTMESH_PASSWORD`
/// set and `first` ahead of `PATH`.
fn run_with_fake_ssh(live: &Live, first: &str, args: &str) -> (Option<i32>, String, String) {
    let cmd = format!(
        "cd ~ && PATH='{first}':\"$PATH\" NO_COLOR=1 TRUSTMESH_PASSWORD='{PASSWORD}' exec '{}' {args}",
        live.bin()
    );
    let out = live.run_as("manager", MANAGER_USER, &cmd);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// `$TRUSTMESH_PASSWORD` reaches no ssh (masters included); only the
/// password logins get the secret, through `$TRUSTMESH_ASKPASS_SECRET`.
#[test]
fn the_password_reaches_only_the_password_logins() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]).password(PASSWORD),
        HostSpec::new("node2", &[WORKER_USER]).password(PASSWORD),
    ]);
    live.write_inventory_of(
        &["node1", "node2"],
        "reverse: [node1]\nmesh:\n  - [node1, node2]\n",
    );
    let first = install_fake_ssh(&live);

    let (code, stdout, stderr) = run_with_fake_ssh(
        &live,
        &first,
        "apply --ask-pass --accept-new-host-keys --yes",
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("Converged"), "{stdout}");
    let calls = take_calls(&live);
    let logins = calls.iter().filter(|c| c.is_password_login()).count();
    assert!(
        logins >= 2,
        "one password login per node at least: {calls:#?}"
    );
    assert!(
        calls.iter().any(|c| c.is_master()),
        "the masters go through PATH's ssh: {calls:#?}"
    );
    for c in &calls {
        assert!(!c.has_env("TRUSTMESH_PASSWORD"), "{c:#?}");
        assert_eq!(
            c.has_env("TRUSTMESH_ASKPASS_SECRET"),
            c.is_password_login(),
            "{c:#?}"
        );
        if !c.is_password_login() {
            assert!(
                !c.env.iter().any(|l| l.contains(PASSWORD)),
                "the password under another name: {c:#?}"
            );
        }
    }

    // verify's attempts from the manager (run by its shell) see no
    // password either.
    let (code, stdout, stderr) = run_with_fake_ssh(&live, &first, "verify --timeout 5");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let calls = take_calls(&live);
    assert!(
        calls.iter().any(|c| c.args.iter().any(|a| a == "true")),
        "verify's attempt from the manager: {calls:#?}"
    );
    for c in &calls {
        assert!(!c.is_password_login(), "{c:#?}");
        assert!(!c.env.iter().any(|l| l.contains(PASSWORD)), "{c:#?}");
    }
}
