//! A real cluster for integration tests: the testbed's sshd hosts, an
//! inventory describing them written into the manager's home, and the
//! trustmesh binary run on the manager as its account.
#![allow(dead_code)]

use std::process::Output;

pub use testbed::{Cluster, ClusterSpec, HostSpec};

pub const MANAGER_USER: &str = "alice";
pub const WORKER_USER: &str = "agilab";

pub struct Live {
    pub cluster: Cluster,
    /// The trustmesh binary, copied where the manager's account can run it
    /// (the checkout may sit under a folder closed to that account).
    bin: String,
}

/// Start `manager` plus the given workers (all with user agilab).
pub fn start(workers: Vec<HostSpec>) -> Live {
    let mut hosts = vec![HostSpec::new("manager", &[MANAGER_USER])];
    hosts.extend(workers);
    let cluster = Cluster::start(ClusterSpec::new(hosts)).expect("start the testbed cluster");
    let bin = cluster
        .share(std::path::Path::new(env!("CARGO_BIN_EXE_trustmesh")))
        .and_then(|bin| {
            cluster.check_reachable("manager", MANAGER_USER, &bin, true)?;
            Ok(bin)
        })
        .unwrap_or_else(|e| panic!("testbed: {e}"));
    let bin = bin.to_str().expect("a UTF-8 path").to_string();
    Live { cluster, bin }
}

impl Live {
    /// The path of the trustmesh binary as the manager's account runs it.
    pub fn bin(&self) -> &str {
        &self.bin
    }

    /// `address` (and `port`) of a host as the inventory should name it.
    pub fn addr(&self, host: &str) -> String {
        self.cluster.host(host).address.to_string()
    }

    /// An inventory for this cluster: `extra` is appended (reverse, mesh...).
    /// `worker_lines` maps a worker name to extra keys for its entry.
    pub fn inventory(
        &self,
        workers: &[&str],
        extra: &str,
        worker_extra: &dyn Fn(&str) -> String,
    ) -> String {
        let mut s = format!(
            "version: 1\ndefaults:\n  user: {WORKER_USER}\nmanager:\n  name: manager\n  address: {}\n  user: {MANAGER_USER}\nworkers:\n",
            self.addr("manager")
        );
        for w in workers {
            let h = self.cluster.host(w);
            s.push_str(&format!(
                "  - name: {w}\n    address: {}\n    port: {}\n",
                h.address, h.port
            ));
            s.push_str(&worker_extra(w));
        }
        s.push_str(extra);
        s
    }

    pub fn write_inventory(&self, text: &str) {
        self.cluster
            .write_file(
                "manager",
                MANAGER_USER,
                "inventory.yaml",
                text.as_bytes(),
                0o644,
            )
            .expect("write inventory");
    }

    /// Generate the manager's key pair (as a person would have).
    pub fn manager_keygen(&self) {
        let out = self
            .cluster
            .exec(
                "manager",
                MANAGER_USER,
                &[
                    "sh",
                    "-c",
                    "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519",
                ],
            )
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Install the manager's public key on a worker by hand (what the
    /// password bootstrap will do).
    pub fn authorize_manager_on(&self, worker: &str) {
        let key = self
            .cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
            .expect("manager key");
        let out = self
            .cluster
            .exec_with_stdin(
                worker,
                WORKER_USER,
                &["sh", "-c", "mkdir -p -m 700 ~/.ssh && cat >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys"],
                &key,
            )
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Run trustmesh on the manager as alice, in her home.
    pub fn trustmesh(&self, args: &[&str]) -> Output {
        let mut argv = vec!["env", "NO_COLOR=1", "TMPDIR=/tmp", self.bin()];
        argv.extend_from_slice(args);
        let mut full = vec!["sh", "-c", "cd ~ && exec \"$@\"", "sh"];
        full.extend(argv);
        self.cluster
            .exec("manager", MANAGER_USER, &full)
            .expect("run trustmesh")
    }
}

pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
