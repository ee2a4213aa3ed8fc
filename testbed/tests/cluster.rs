//! The testbed proves itself: each test starts a small real cluster and
//! checks one promise (isolation of homes and hostnames, key logins, hung
//! hosts, reinstalled hosts, bastions, ports, passwords, cleanup).
#![cfg(feature = "live")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use testbed::{Cluster, ClusterSpec, HostSpec};

const U: &str = "tbuser";

fn two_hosts() -> Cluster {
    Cluster::start(ClusterSpec::new(vec![
        HostSpec::new("a", &[U]),
        HostSpec::new("b", &[U]),
    ]))
    .expect("start cluster")
}

#[test]
fn hosts_have_their_own_hostname_home_and_host_keys() {
    let c = two_hosts();
    assert_eq!(ok(&c, "a", U, "hostname"), "a\n");
    assert_eq!(ok(&c, "b", U, "hostname"), "b\n");
    // A fresh account: home owned by the user, 0755, no ~/.ssh.
    let stat = ok(
        &c,
        "a",
        U,
        "stat -c '%U %a' ~; pwd; test ! -e ~/.ssh && echo fresh",
    );
    assert_eq!(stat, format!("{U} 755\n/home/{U}\nfresh\n"));
    // A file written in a's home is not in b's.
    c.write_file("a", U, "only-on-a", b"x", 0o644).unwrap();
    assert_eq!(ok(&c, "a", U, "cat ~/only-on-a"), "x");
    assert!(!sh(&c, "b", U, "cat ~/only-on-a").status.success());
    // Own host keys, and /etc/ssh inside the host is the host's own.
    let (fa, fb) = (
        c.host_key_fingerprints("a").unwrap(),
        c.host_key_fingerprints("b").unwrap(),
    );
    assert_eq!(fa.len(), 2);
    assert!(fa
        .iter()
        .all(|f| f.starts_with("SHA256:") && !fb.contains(f)));
    let inside = ok(
        &c,
        "a",
        U,
        "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
    );
    assert!(fa.iter().any(|f| inside.contains(f.as_str())), "{inside}");
    let config = ok(&c, "a", U, "cat /etc/ssh/sshd_config");
    assert!(
        config.contains("MaxStartups 100:30:200") && config.contains("PasswordAuthentication no")
    );
}

/// A host whose account has its home under `/Users`, as on macOS: the
/// account's home from `/etc/passwd`, that host's own, reached by key.
#[test]
fn a_mac_like_host_has_its_homes_under_users() {
    const MAC: &str = "tbmacuser";
    let c = Cluster::start(ClusterSpec::new(vec![
        HostSpec::new("a", &[U]),
        HostSpec::new("mac", &[MAC]).mac_homes(),
    ]))
    .expect("start cluster");
    let home = format!("/Users/{MAC}");
    assert_eq!(
        ok(
            &c,
            "mac",
            MAC,
            "echo \"$HOME\"; pwd -P; stat -c '%U %a' ~; getent passwd \"$(id -un)\" | cut -d: -f6"
        ),
        format!("{home}\n{home}\n{MAC} 755\n{home}\n")
    );
    assert!(c.host("mac").home_of(MAC).ends_with(format!("Users/{MAC}")));
    c.write_file("mac", MAC, "only-on-mac", b"m", 0o644)
        .unwrap();
    assert_eq!(ok(&c, "mac", MAC, "cat /Users/*/only-on-mac"), "m");
    // Another host does not see it: /Users is the mac host's own.
    assert!(!sh(&c, "a", U, &format!("test -e {home}/only-on-mac"))
        .status
        .success());
    // A key login lands in the /Users home.
    keygen(&c, "a", U);
    trust_host_keys(&c, "a", U, "mac");
    let public = c.read_file("a", U, ".ssh/id_ed25519.pub").unwrap();
    c.write_file("mac", MAC, ".ssh/authorized_keys", &public, 0o600)
        .unwrap();
    let login = ssh_cmd(&c, "mac", MAC, "", "pwd");
    assert_eq!(ok(&c, "a", U, &login), format!("{home}\n"));
}

/// A host with a root account has its own `/root` and `/etc` (an overlay):
/// root replaces `/etc/hosts` there by a rename, and neither the machine's
/// files nor another host's see it. Other hosts have a copy of
/// `/etc/hosts` of their own.
#[test]
fn a_root_host_has_its_own_root_home_and_etc_hosts() {
    let c = Cluster::start(ClusterSpec::new(vec![
        HostSpec::new("r", &["root"]),
        HostSpec::new("b", &[U]),
    ]))
    .expect("start cluster");
    let machine_hosts = std::fs::read("/etc/hosts").unwrap();
    let machine_root: Vec<_> = std::fs::read_dir("/root")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    c.write_file("r", "root", ".ssh/marker", b"x", 0o600)
        .unwrap();
    assert_eq!(ok(&c, "r", "root", "cat /root/.ssh/marker"), "x");
    ok(
        &c,
        "r",
        "root",
        "cp -p /etc/hosts /etc/.tb && echo '192.0.2.7 seven' >> /etc/.tb && mv /etc/.tb /etc/hosts",
    );
    assert_eq!(
        ok(&c, "r", "root", "getent hosts seven"),
        "192.0.2.7       seven\n"
    );
    assert!(!sh(&c, "b", U, "getent hosts seven").status.success());
    assert_eq!(std::fs::read("/etc/hosts").unwrap(), machine_hosts);
    assert_eq!(
        ok(&c, "b", U, "cat /etc/hosts").into_bytes(),
        std::fs::read(c.host("b").etc_hosts_copy()).unwrap()
    );
    let now: Vec<_> = std::fs::read_dir("/root")
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(now, machine_root, "the machine's /root is untouched");
    let config = ok(&c, "r", "root", "cat /etc/ssh/sshd_config");
    assert!(
        config.contains("PermitRootLogin prohibit-password"),
        "{config}"
    );
}

#[test]
fn key_login_works_only_once_the_key_is_installed() {
    let c = two_hosts();
    keygen(&c, "a", U);
    trust_host_keys(&c, "a", U, "b");
    let login = ssh_cmd(&c, "b", U, "", "hostname");
    let before = sh(&c, "a", U, &login);
    assert!(
        !before.status.success(),
        "logged in without an authorized key"
    );
    assert!(
        String::from_utf8_lossy(&before.stderr).contains("Permission denied"),
        "{before:?}"
    );

    let public = c.read_file("a", U, ".ssh/id_ed25519.pub").unwrap();
    c.write_file("b", U, ".ssh/authorized_keys", &public, 0o600)
        .unwrap();
    assert_eq!(ok(&c, "a", U, &login), "b\n");

    // StrictModes is on: a world-writable authorized_keys is refused
    // (Debian lets group-writable pass when the group is the user's own).
    c.chmod("b", U, ".ssh/authorized_keys", 0o666).unwrap();
    assert!(
        !sh(&c, "a", U, &login).status.success(),
        "StrictModes should refuse the key"
    );
    c.chmod("b", U, ".ssh/authorized_keys", 0o600).unwrap();
    assert_eq!(ok(&c, "a", U, &login), "b\n");
}

#[test]
fn a_frozen_host_times_out_and_answers_again_after_thaw() {
    let c = two_hosts();
    trust(&c, "a", U, "b");
    let login = ssh_cmd(&c, "b", U, "-o ConnectTimeout=2", "true");
    ok(&c, "a", U, &login);

    c.freeze("b").unwrap();
    let t = Instant::now();
    let out = sh(&c, "a", U, &login);
    let took = t.elapsed();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{out:?}"
    );
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(10),
        "took {took:?}"
    );

    c.thaw("b").unwrap();
    ok(&c, "a", U, &login);
}

#[test]
fn a_rekeyed_host_fails_strict_host_key_checking() {
    let mut c = two_hosts();
    trust(&c, "a", U, "b");
    let login = ssh_cmd(&c, "b", U, "", "true");
    ok(&c, "a", U, &login);
    let before = c.host_key_fingerprints("b").unwrap();
    let old_pid = c.host("b").pid();

    c.rekey("b").unwrap();
    let after = c.host_key_fingerprints("b").unwrap();
    assert_eq!(after.len(), before.len());
    assert!(
        after.iter().all(|f| !before.contains(f)),
        "keys did not change"
    );
    assert_ne!(c.host("b").pid(), old_pid);

    let out = sh(&c, "a", U, &login);
    assert!(!out.status.success(), "a changed host key was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );

    // Trusting the new keys (from the real files) lets it in again.
    c.write_file(
        "a",
        U,
        ".ssh/known_hosts",
        c.known_hosts_lines("b").unwrap().join("\n").as_bytes(),
        0o644,
    )
    .unwrap();
    ok(&c, "a", U, &login);
}

#[test]
fn a_host_behind_a_bastion_is_reached_only_through_it() {
    let c = Cluster::start(ClusterSpec::new(vec![
        HostSpec::new("m", &[U]),
        HostSpec::new("gw", &[U]),
        HostSpec::new("hidden", &[U]).behind("gw"),
    ]))
    .expect("start cluster");
    trust(&c, "m", U, "gw");
    trust(&c, "m", U, "hidden");
    c.write_file("m", U, "cluster.cfg", c.ssh_config(U).as_bytes(), 0o644)
        .unwrap();

    // From the machine: the bastion answers, the hidden host cannot be reached.
    c.connect("gw", Duration::from_secs(2))
        .expect("bastion reachable");
    assert!(c.connect("hidden", Duration::from_secs(2)).is_err());

    // From the manager host: direct fails, ProxyJump (options in -F) works.
    let direct = sh(
        &c,
        "m",
        U,
        &ssh_cmd(&c, "hidden", U, "-o ConnectTimeout=2", "true"),
    );
    assert!(!direct.status.success(), "hidden host reached directly");
    let why = String::from_utf8_lossy(&direct.stderr);
    assert!(
        ["No route to host", "Network is unreachable", "timed out"]
            .iter()
            .any(|m| why.contains(m)),
        "{why}"
    );
    assert_eq!(ok(&c, "m", U, "ssh -F ~/cluster.cfg gw hostname"), "gw\n");
    assert_eq!(
        ok(&c, "m", U, "ssh -F ~/cluster.cfg hidden hostname"),
        "hidden\n"
    );

    // The bastion itself reaches the hidden host directly.
    trust(&c, "gw", U, "hidden");
    assert_eq!(
        ok(&c, "gw", U, &ssh_cmd(&c, "hidden", U, "", "hostname")),
        "hidden\n"
    );
}

#[test]
fn a_custom_port_host_answers_on_its_port_only() {
    let c = Cluster::start(ClusterSpec::new(vec![
        HostSpec::new("a", &[U]),
        HostSpec::new("p", &[U]).port(2222),
    ]))
    .expect("start cluster");
    trust(&c, "a", U, "p");
    let known = String::from_utf8(c.read_file("a", U, ".ssh/known_hosts").unwrap()).unwrap();
    assert!(
        known.starts_with(&format!("[{}]:2222 ", c.host("p").address)),
        "{known}"
    );
    assert_eq!(ok(&c, "a", U, &ssh_cmd(&c, "p", U, "", "hostname")), "p\n");
    let addr = c.host("p").address;
    let on_22 = sh(&c, "a", U, &format!("ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=2 -p 22 {U}@{addr} true"));
    assert!(
        String::from_utf8_lossy(&on_22.stderr).contains("refused"),
        "{on_22:?}"
    );
}

#[test]
fn password_login_only_where_it_is_turned_on() {
    let pw_user = "tbpass";
    let c = Cluster::start(ClusterSpec::new(vec![
        HostSpec::new("m", &[pw_user]),
        HostSpec::new("pw", &[pw_user]).password("tb-secret-9"),
        HostSpec::new("keys", &[pw_user]),
    ]))
    .expect("start cluster");
    c.write_file(
        "m",
        pw_user,
        "askpass",
        b"#!/bin/sh\necho tb-secret-9\n",
        0o755,
    )
    .unwrap();
    for h in ["pw", "keys"] {
        trust_host_keys(&c, "m", pw_user, h);
    }
    let with_password = |to: &str| {
        let h = c.host(to);
        sh(
            &c,
            "m",
            pw_user,
            &format!(
                "SSH_ASKPASS=$HOME/askpass SSH_ASKPASS_REQUIRE=force ssh -o StrictHostKeyChecking=yes \
                 -o PreferredAuthentications=password -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 \
                 -o ConnectTimeout=5 -p {} {pw_user}@{} hostname </dev/null",
                h.port, h.address
            ),
        )
    };
    let out = with_password("pw");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"pw\n");
    let refused = with_password("keys");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Permission denied"),
        "{refused:?}"
    );
}

#[test]
fn an_isolated_cluster_has_its_own_loopback_and_port_22() {
    // The demo's addresses, in a private loopback: no clash with the demo
    // or with a machine sshd on 0.0.0.0:22; a bastion works there too.
    let base = "127.0.10.0".parse().unwrap();
    let c = Cluster::start(
        ClusterSpec::new(vec![
            HostSpec::new("m", &[U]).address("127.0.10.1".parse().unwrap()),
            HostSpec::new("n", &[U])
                .address("127.0.10.12".parse().unwrap())
                .port(2222),
            HostSpec::new("gw", &[U]),
            HostSpec::new("hid", &[U]).behind("gw"),
        ])
        .base(base)
        .isolated(true),
    )
    .expect("start cluster");
    assert!(c.isolated_netns().is_some());
    assert_eq!(c.host("m").address.to_string(), "127.0.10.1");
    c.connect("m", Duration::from_secs(2))
        .expect("reachable from the cluster's loopback");
    c.connect("gw", Duration::from_secs(2))
        .expect("bastion reachable");
    assert!(c.connect("hid", Duration::from_secs(2)).is_err());
    trust(&c, "n", U, "m");
    for to in ["n", "gw", "hid"] {
        trust(&c, "m", U, to);
    }
    assert_eq!(ok(&c, "n", U, &ssh_cmd(&c, "m", U, "", "hostname")), "m\n");
    assert_eq!(ok(&c, "m", U, &ssh_cmd(&c, "n", U, "", "hostname")), "n\n");
    c.write_file("m", U, "cluster.cfg", c.ssh_config(U).as_bytes(), 0o644)
        .unwrap();
    assert_eq!(ok(&c, "m", U, "ssh -F ~/cluster.cfg hid hostname"), "hid\n");
}

#[test]
fn stop_and_restart_a_host() {
    let mut c = two_hosts();
    trust(&c, "a", U, "b");
    let login = ssh_cmd(&c, "b", U, "-o ConnectTimeout=2", "true");
    ok(&c, "a", U, &login);
    let pid = c.host("b").pid().unwrap();
    c.stop("b").unwrap();
    assert_eq!(c.host("b").pid(), None);
    assert!(gone(pid, c.state_dir()));
    let down = sh(&c, "a", U, &login);
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("refused"),
        "{down:?}"
    );
    assert!(c.exec("b", U, &["true"]).is_err(), "exec on a stopped host");
    c.restart("b").unwrap();
    ok(&c, "a", U, &login);
    assert_eq!(c.pids().len(), 2);
}

/// What a cluster left on the machine, to check after it is gone.
struct Footprint {
    pids: Vec<u32>,
    netns: Vec<String>,
    veths: Vec<String>,
    state_dir: PathBuf,
    session: u32,
}

fn footprint(c: &Cluster) -> Footprint {
    // A command still running inside a host when the cluster goes.
    let session = c
        .command("hidden", U, &["sleep", "300"])
        .unwrap()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let session_pid = session.id();
    std::mem::forget(session); // reaped or not, it must be gone
                               // The session has entered the host: its mount namespace is the host's.
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
    let deadline = Instant::now() + Duration::from_secs(120);
    while ns(&session_pid.to_string()) == ns("self") {
        assert!(
            Instant::now() < deadline,
            "the session never entered the host"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    Footprint {
        pids: c.pids(),
        netns: c.netns_names(),
        veths: c.veth_names(),
        state_dir: c.state_dir().to_path_buf(),
        session: session_pid,
    }
}

/// Gone, or a pid reused by something unrelated to this cluster.
fn gone(pid: u32, state_dir: &Path) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Err(_) => true,
        Ok(cmd) => {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.contains(") Z")
                || !String::from_utf8_lossy(&cmd).contains(&*state_dir.to_string_lossy())
                    && !String::from_utf8_lossy(&cmd).contains("sleep")
        }
    }
}

fn assert_nothing_left(f: &Footprint) {
    assert!(!f.pids.is_empty() && !f.netns.is_empty() && !f.veths.is_empty());
    for &pid in f.pids.iter().chain([&f.session]) {
        assert!(gone(pid, &f.state_dir), "pid {pid} still running");
    }
    for ns in &f.netns {
        assert!(
            !Path::new("/run/netns").join(ns).exists(),
            "netns {ns} left"
        );
    }
    for v in &f.veths {
        assert!(
            !Path::new("/sys/class/net").join(v).exists(),
            "veth {v} left"
        );
    }
    assert!(!f.state_dir.exists(), "state folder left");
}

fn bastion_spec() -> ClusterSpec {
    ClusterSpec::new(vec![
        HostSpec::new("gw", &[U]),
        HostSpec::new("hidden", &[U]).behind("gw"),
    ])
}

#[test]
fn nothing_is_left_after_drop() {
    let c = Cluster::start(bastion_spec()).unwrap();
    let f = footprint(&c);
    drop(c);
    assert_nothing_left(&f);
}

#[test]
fn nothing_is_left_when_the_test_body_panics() {
    let seen: Mutex<Option<Footprint>> = Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let c = Cluster::start(bastion_spec()).unwrap();
        *seen.lock().unwrap() = Some(footprint(&c));
        panic!("the test body fails (on purpose)");
    }));
    assert!(result.is_err());
    let f = seen
        .lock()
        .unwrap()
        .take()
        .expect("footprint taken before the panic");
    assert_nothing_left(&f);
}

#[test]
fn a_failed_start_cleans_up_what_it_made() {
    // Two hosts on one fixed endpoint: refused before anything starts.
    let clash = ClusterSpec::new(vec![
        HostSpec::new("a", &[U]).address("127.0.10.200".parse().unwrap()),
        HostSpec::new("b", &[U]).address("127.0.10.200".parse().unwrap()),
    ]);
    assert!(Cluster::start(clash).is_err());
    // A host whose endpoint is taken by a listener of ours: fails after the
    // slot and state folder exist; they must be gone again.
    let squatter = std::net::TcpListener::bind("127.0.10.201:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let parent = tempfile::tempdir().unwrap();
    let state = parent.path().join("state");
    let err = Cluster::start_in(
        ClusterSpec::new(vec![
            HostSpec::new("ok", &[U]),
            HostSpec::new("taken", &[U])
                .address("127.0.10.201".parse().unwrap())
                .port(port),
        ])
        .isolated(false),
        &state,
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot listen"), "{err}");
    assert!(!state.exists(), "state folder left behind");
    // The same folder then serves a cluster that starts.
    let c = Cluster::start_in(ClusterSpec::new(vec![HostSpec::new("ok", &[U])]), &state).unwrap();
    assert_eq!(ok(&c, "ok", U, "hostname"), "ok\n");
    drop(c);
    assert!(!state.exists());
}

/// A checkout inside a 0700 folder (a `mktemp -d`, a private home): the
/// hosts' accounts cannot run a binary from it; a shared copy they can.
#[test]
fn files_under_a_closed_folder_are_shared_where_accounts_reach_them() {
    use std::os::unix::fs::PermissionsExt;
    let private = tempfile::Builder::new()
        .prefix("testbed-private-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let tool = private.path().join("tool.sh");
    std::fs::write(&tool, "#!/bin/sh\necho ran as $(id -un)\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tool_str = tool.to_str().unwrap();

    let c = two_hosts();
    // As the live tests used to: the account cannot run it in place, and
    // the up-front check says which account and which path.
    assert!(!sh(&c, "a", U, tool_str).status.success());
    let e = c.check_reachable("a", U, &tool, true).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(U) && msg.contains(tool_str) && msg.contains("host a"),
        "{msg}"
    );
    // The shared copy runs.
    let shared = c.share(&tool).unwrap();
    assert!(shared.starts_with(c.state_dir()));
    c.check_reachable("a", U, &shared, true).unwrap();
    assert_eq!(
        ok(&c, "b", U, shared.to_str().unwrap()),
        format!("ran as {U}\n")
    );
    drop(c);

    // A cluster whose own folder sits under the closed one cannot share:
    // it says so before anything runs, naming the folder and the accounts.
    let c = Cluster::start_in(
        ClusterSpec::new(vec![HostSpec::new("a", &[U])]),
        &private.path().join("state"),
    )
    .expect("start cluster");
    let e = c.share(&tool).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&private.path().display().to_string())
            && msg.contains("0700")
            && msg.contains(U),
        "{msg}"
    );
}
