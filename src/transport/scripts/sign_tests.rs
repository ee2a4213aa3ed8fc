//! `sign.sh` with the user CA held by a real `ssh-agent` (`ssh-keygen
//! -U`), under the shell matrix: the agent started by the test on its own
//! socket, the CA added to it and its private key file deleted, so only
//! the agent can sign; the certificate checked with `ssh-keygen -L`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::shells::SHELLS;
use super::tests::Home;
use super::*;

/// An `ssh-agent -D` on its own socket, killed (by its pid) when dropped.
pub(crate) struct Agent {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    pub(crate) fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent runs");
        let agent = Agent {
            child,
            socket,
            _dir: dir,
        };
        // Wait for its socket (a condition, generous on a loaded machine).
        let start = Instant::now();
        while !agent.socket.exists() {
            assert!(start.elapsed() < Duration::from_secs(60), "no agent socket");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    pub(crate) fn socket(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    /// `ssh-add KEY` into this agent.
    pub(crate) fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "ssh-add: {out:?}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new ed25519 key pair at `path` (no passphrase); its public line.
pub(crate) fn keygen(path: &Path, comment: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh-keygen: {out:?}");
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// `ssh-keygen -l` of a public key file: its `SHA256:...`.
fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(public)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn sign_with_the_agent_holding_the_ca_and_no_private_key_on_disk() {
    let agent = Agent::start();
    let keys = tempfile::tempdir().unwrap();
    let ca = keys.path().join("ca");
    let ca_public = keygen(&ca, "trustmesh-ca:c");
    agent.add(&ca);
    std::fs::remove_file(&ca).unwrap();
    let ca_fp = fingerprint(&ca.with_extension("pub"));
    // A CA the agent does not hold.
    let other = keys.path().join("other");
    let other_public = keygen(&other, "other");
    for sh in SHELLS {
        let home = Home::new(
            sh,
            &[
                ("ca.pub", ca_public.as_bytes()),
                ("other.pub", other_public.as_bytes()),
            ],
        );
        let (Outcome::PublicKey(key), _) =
            home.run(KEYGEN, &[".ssh/id", "ed25519", "", "trustmesh:c/n1"], b"")
        else {
            panic!("{sh:?}: no key")
        };
        let sign = |ca: &str, id: &str, socket: &str| {
            home.run(
                SIGN,
                &[ca, id, "c:group:g,c:reverse", "-5m:+60", "7", &key, socket],
                b"",
            )
        };
        let (o, out) = sign(".ssh/ca.pub", "trustmesh:c/n1", agent.socket());
        let Outcome::PublicKey(cert) = o else {
            panic!("{sh:?}: {o:?} {out}")
        };
        // What ssh-keygen itself reads in the certificate.
        let file = home.path().join("n1-cert.pub");
        std::fs::write(&file, format!("{cert}\n")).unwrap();
        let shown = Command::new("ssh-keygen")
            .arg("-Lf")
            .arg(&file)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
        assert!(shown.contains("user certificate"), "{sh:?}: {shown}");
        assert!(
            shown.contains(&format!("Signing CA: ED25519 {ca_fp}")),
            "{sh:?}: {shown}"
        );
        assert!(shown.contains("Key ID: \"trustmesh:c/n1\""), "{shown}");
        assert!(shown.contains("Serial: 7"), "{shown}");
        assert!(
            shown.contains("c:group:g") && shown.contains("c:reverse"),
            "{shown}"
        );
        // Nothing but the node's own key is a private key in the home.
        for e in std::fs::read_dir(&home.ssh).unwrap().flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            if e.file_name() != "id" {
                assert!(!text.contains("PRIVATE KEY"), "{sh:?}: {:?}", e.path());
            }
        }
        // An agent that does not hold the CA, and no agent at all: said.
        let (o, _) = sign(".ssh/other.pub", "i", agent.socket());
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("ssh-keygen failed")),
            "{sh:?}: {o:?}"
        );
        let nowhere = home.path().join("no-agent.sock");
        let (o, _) = sign(".ssh/ca.pub", "i", nowhere.to_str().unwrap());
        assert!(
            matches!(o, Outcome::Failed(ref w) if w.contains("ssh-keygen failed")),
            "{sh:?}: {o:?}"
        );
        // The socket is data.
        let (o, _) = sign(".ssh/ca.pub", "i", "$(touch pwned)");
        assert!(matches!(o, Outcome::Failed(_)), "{sh:?}: {o:?}");
        assert!(!home.path().join("pwned").exists());
    }
}
