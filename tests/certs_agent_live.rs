#![cfg(feature = "live")]
//! A user CA held by an ssh-agent (#22 part 2, `certificates: { agent:
//! ... }`) on real sshd hosts: the test starts an ssh-agent as the
//! manager's account, adds the CA to it and deletes the CA's private key
//! file. Without a socket the plan blocks every certificate with the
//! step and what to do; with the agent a mesh group converges in
//! certificate mode, plain `ssh` works on its edges, and the CA's private
//! key is on no file of the manager's home at any moment of the apply;
//! a socket where no agent answers blocks a new worker's certificate
//! while its plain edge from the manager converges; `--rotate-keys @ca`
//! is refused with what to do.

mod live;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use live::*;

const WORKERS: [&str; 4] = ["node1", "node2", "node3", "node4"];

/// An ssh-agent the test started on the manager as its account; killed
/// by its pid when dropped.
struct Agent {
    pid: u32,
    /// The socket, as the manager's account sees it.
    socket: String,
}

impl Agent {
    fn start(live: &Live) -> Agent {
        let out = live.run_as(
            "manager",
            MANAGER_USER,
            "ssh-agent -s -a \"$HOME/.ssh/agent.sock\"",
        );
        let said = stdout_of(&out);
        let value = |name: &str| {
            said.split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {said}"))
                .to_string()
        };
        Agent {
            pid: value("SSH_AGENT_PID").parse().unwrap(),
            socket: value("SSH_AUTH_SOCK"),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.pid.to_string())
            .status();
    }
}

/// Run trustmesh on the manager, with `SSH_AUTH_SOCK` set when `socket`
/// is given.
fn run(live: &Live, socket: Option<&str>, args: &[&str]) -> Ran {
    let sock = socket.map(|s| format!("SSH_AUTH_SOCK={s}"));
    let mut argv = vec!["sh", "-c", "cd ~ && exec \"$@\"", "sh", "env", "NO_COLOR=1"];
    argv.extend(sock.as_deref());
    argv.push(live.bin());
    argv.extend_from_slice(args);
    let out = live.cluster.exec("manager", MANAGER_USER, &argv).unwrap();
    let (stdout, stderr) = text(&out);
    Ran {
        code: out.status.code(),
        stdout,
        stderr,
    }
}

/// The inventory of `workers` in group g with `reverse: all`, the CA
/// held by the agent named `agent`.
fn write(live: &Live, workers: &[&str], agent: &str) {
    let text = live.inventory(
        workers,
        &format!(
            "reverse: all\nmesh:\n  - group: g\ncertificates: {{ ca: ~/.ssh/trustmesh_ca.pub, agent: {agent}, validity: 1h, renew_before: 10m }}\n"
        ),
        &|_| "    groups: [g]\n".to_string(),
    );
    live.write_inventory(&text);
}

/// The files under `dir` (the manager's home) that hold a private key,
/// but for the manager's own key.
fn private_keys(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            private_keys(&path, out);
        } else if meta.is_file()
            && !path.ends_with(".ssh/id_ed25519")
            && std::fs::read(&path)
                .is_ok_and(|b| String::from_utf8_lossy(&b).contains("PRIVATE KEY"))
        {
            out.push(path);
        }
    }
}

#[test]
fn a_ca_in_an_ssh_agent_signs_every_certificate_and_never_touches_disk() {
    let hosts: Vec<_> = WORKERS.iter().map(|w| worker(w)).collect();
    let live = provisioned_with(hosts, "");
    let three = &WORKERS[..3];
    let home = live.cluster.host("manager").home_of(MANAGER_USER);
    let agent = Agent::start(&live);

    // The CA goes into the agent; its private key file is deleted.
    let out = live.run_as(
        "manager",
        MANAGER_USER,
        &format!(
            "ssh-keygen -q -t ed25519 -N '' -C trustmesh-ca:agent -f ~/.ssh/trustmesh_ca \
             && SSH_AUTH_SOCK='{}' ssh-add -q ~/.ssh/trustmesh_ca </dev/null && rm ~/.ssh/trustmesh_ca",
            agent.socket
        ),
    );
    stdout_of(&out);
    assert!(!home.join(".ssh/trustmesh_ca").exists());
    let ca = live.read_text("manager", ".ssh/trustmesh_ca.pub");
    let ca_key = ca.split(' ').nth(1).unwrap().to_string();

    // No SSH_AUTH_SOCK: every certificate is blocked, with the step and
    // what to do; the plan is not complete (exit 1).
    write(&live, three, "true");
    let plan = run(&live, None, &["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(1)
        .json();
    let blocked = &plan_node(&plan, "node1")["signing_blocked"];
    assert_eq!(blocked["step"], "sign", "{plan:#}");
    let reason = blocked["reason"].as_str().unwrap();
    assert!(
        reason.contains("SSH_AUTH_SOCK is not set where trustmesh runs"),
        "{reason}"
    );
    let text = run(&live, None, &["plan", "--accept-new-host-keys"]).stdout;
    assert!(
        text.contains("blocked (sign): the certificate of node2"),
        "{text}"
    );
    assert!(!text.contains("create user CA"), "{text}");

    // With the agent: no CA made, the agent signs.
    let sock = Some(agent.socket.as_str());
    let text = run(&live, sock, &["plan", "--accept-new-host-keys"])
        .expect_exit(0)
        .stdout;
    assert!(
        text.contains(&format!(
            "the user CA ~/.ssh/trustmesh_ca.pub is held by the ssh-agent at {}",
            agent.socket
        )),
        "{text}"
    );
    assert!(
        text.contains("+ issue certificate for node3") && text.contains("by the ssh-agent"),
        "{text}"
    );
    assert!(!text.contains("create user CA"), "{text}");

    // The apply, watched: no file of the manager's home holds a private
    // key but the manager's own, at any moment.
    let done = AtomicBool::new(false);
    let (ran, seen, looks) = std::thread::scope(|s| {
        let apply = s.spawn(|| {
            let r = run(&live, sock, &["apply", "--accept-new-host-keys", "--yes"]);
            done.store(true, Ordering::SeqCst);
            r
        });
        let mut seen = Vec::new();
        let mut looks = 0;
        while !done.load(Ordering::SeqCst) {
            private_keys(&home, &mut seen);
            looks += 1;
            // A poll, not a wait: the loop ends when the apply does.
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        (apply.join().unwrap(), seen, looks)
    });
    let ran = ran.expect_exit(0);
    assert!(
        format!("{}{}", ran.stdout, ran.stderr).contains("Converged"),
        "{}",
        ran.stdout
    );
    assert!(seen.is_empty(), "a private key on disk: {seen:?}");
    assert!(looks > 0);
    assert!(!home.join(".ssh/trustmesh_ca").exists());
    for w in three {
        let ak = live.read_text(w, ".ssh/authorized_keys");
        assert!(
            ak.lines().any(
                |l| l.starts_with("cert-authority,principals=\"manager:group:g\" ")
                    && l.contains(&ca_key)
            ),
            "{w}:\n{ak}"
        );
        let cert = live.read_text(w, ".ssh/id_ed25519-cert.pub");
        let cert = ssh_key::Certificate::from_openssh(cert.trim()).unwrap();
        assert_eq!(
            cert.signature_key(),
            ssh_key::PublicKey::from_openssh(ca.trim())
                .unwrap()
                .key_data(),
            "{w}: signed by the agent's CA"
        );
    }
    for a in three {
        for b in three {
            if a != b {
                assert!(live.can_ssh(a, b), "{a} -> {b}");
            }
        }
        assert!(live.can_ssh(a, "manager"), "{a} -> manager (reverse)");
    }
    run(&live, sock, &["verify"]).expect_exit(0);

    // The socket named in the inventory does as well as SSH_AUTH_SOCK.
    write(&live, three, &agent.socket);
    run(&live, None, &["plan", "--detailed-exitcode"]).expect_exit(0);

    // A 4th worker, and a socket where no agent answers: its certificate
    // is blocked, its plain edge from the manager converges; the agent
    // back, it is signed.
    let nowhere = agent.socket.replace("agent.sock", "none.sock");
    write(&live, &WORKERS, &nowhere);
    let ran = run(&live, None, &["apply", "--accept-new-host-keys", "--yes"]).expect_exit(1);
    assert!(
        ran.stdout.contains("blocked (sign): the certificate of node4 is due (issue) and not signed: no ssh-agent answered at"),
        "{}",
        ran.stdout
    );
    let ak = live.read_text("node4", ".ssh/authorized_keys");
    assert!(
        ak.contains("cert-authority") && ak.contains(&ca_key),
        "node4 trusts the CA:\n{ak}"
    );
    assert!(live
        .read_text("node4", ".ssh/id_ed25519.pub")
        .starts_with("ssh-ed25519 "));
    assert!(live.can_ssh("manager", "node4"));
    assert_eq!(live.read_text("node4", ".ssh/id_ed25519-cert.pub"), "");
    assert!(!live.can_ssh("node4", "node1"), "no certificate yet");
    write(&live, &WORKERS, &agent.socket);
    run(&live, None, &["apply", "--yes"]).expect_exit(0);
    assert!(live.can_ssh("node4", "node1") && live.can_ssh("node1", "node4"));

    // The agent holds one key: rotating it is refused, with what to do.
    let plan = run(&live, None, &["plan", "--json", "--rotate-keys", "@ca"])
        .expect_exit(1)
        .json();
    let refused = &plan_node(&plan, "manager")["rotation_refused"];
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("an ssh-agent holds it"),
        "{plan:#}"
    );
    assert!(
        refused["hint"].as_str().unwrap().contains("ssh-add NEW"),
        "{plan:#}"
    );
    assert!(!home.join(".ssh/trustmesh_ca").exists());
}
