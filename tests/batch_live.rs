#![cfg(feature = "live")]
//! One node's writes and its read-back in one remote command over real
//! ssh (`transport::batch::run`), on a testbed host.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testbed::{Cluster, ClusterSpec, HostSpec};
use trustmesh::gather::probe::ProbeRequest;
use trustmesh::transport::batch::{self, Action, Step, StepOutcome};
use trustmesh::transport::scripts::{cksum, Outcome};

const USER: &str = "agilab";

/// A connection from this process to `n1`'s account, through an ssh config
/// of the test's own (a key of its own, the host key pinned).
async fn connect(c: &Cluster, dir: &Path) -> trustmesh::transport::Host {
    let key = dir.join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read(dir.join("id_ed25519.pub")).unwrap();
    c.write_file("n1", USER, ".ssh/authorized_keys", &public, 0o600)
        .unwrap();
    c.chmod("n1", USER, ".ssh", 0o700).unwrap();
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, c.known_hosts_lines("n1").unwrap().join("\n") + "\n").unwrap();
    let h = c.host("n1");
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "Host n1\n  HostName {}\n  Port {}\n  User {USER}\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
             UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            h.address,
            h.port,
            key.display(),
            kh.display()
        ),
    )
    .unwrap();
    let ctl = dir.join("ctl");
    std::fs::create_dir(&ctl).unwrap();
    trustmesh::transport::connect(
        &config,
        &ctl,
        "n1",
        trustmesh::model::target::SshTarget::new(&h.address.to_string(), h.port),
        &kh.display().to_string(),
        Duration::from_secs(60),
    )
    .await
    .unwrap()
}

#[test]
fn a_nodes_writes_and_read_back_go_in_one_command_over_ssh() {
    let c = Cluster::start(ClusterSpec::new(vec![HostSpec::new("n1", &[USER])])).unwrap();
    let dir = tempfile::Builder::new().prefix("tmb").tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let host = connect(&c, dir.path()).await;
        let keys = c.read_file("n1", USER, ".ssh/authorized_keys").unwrap();
        let mut ours = keys.clone();
        ours.extend(b"ssh-ed25519 AAAA $(id) trustmesh:c/manager\n");
        let hosts = b"10.0.0.1 ssh-ed25519 BBBB trustmesh:c/n2\n";
        let steps = [
            Step::new(Action::MkdirSsh),
            Step::new(Action::Replace {
                path: ".ssh/authorized_keys".into(),
                expected: cksum(&keys),
                mode: None,
                content: ours.clone(),
                sudo: false,
            })
            .after(&[0]),
            Step::new(Action::Replace {
                path: ".ssh/known_hosts".into(),
                expected: cksum(b"stale"),
                mode: Some(0o600),
                content: hosts.to_vec(),
                sudo: false,
            })
            .after(&[0]),
            Step::new(Action::Chmod {
                path: ".ssh/known_hosts".into(),
                mode: 0o600,
            })
            .after(&[2]),
        ];
        let req = ProbeRequest {
            read: vec!["authorized_keys".into(), "known_hosts".into()],
            ..Default::default()
        };
        let r = batch::run(&host, &steps, &req, Duration::from_secs(60))
            .await
            .unwrap();
        let ok = StepOutcome::Ran(Outcome::Ok);
        assert_eq!(
            r.outcomes,
            [
                ok.clone(),
                ok,
                StepOutcome::Ran(Outcome::Conflict("absent".into())),
                StepOutcome::Skipped { after: 2 }
            ]
        );
        assert_eq!(
            c.read_file("n1", USER, ".ssh/authorized_keys").unwrap(),
            ours
        );
        assert!(c.read_file("n1", USER, ".ssh/known_hosts").is_none());
        let acct = r.read_back.unwrap();
        assert_eq!(acct.user, USER);
        let read = acct.file("authorized_keys").unwrap().content.clone();
        assert_eq!(read.as_deref(), Some(&ours[..]));
        assert!(acct.file("known_hosts").unwrap().stat.is_none());
        host.close(Duration::from_secs(10)).await;
    });
}
