//! End-to-end speed on a real cluster of 40 sshd workers (the testbed):
//!
//! 1. baseline: one parallel `ssh` read of each worker's files (a fresh
//!    connection and one round trip per node), what any tool must at least
//!    spend to look at 40 hosts;
//! 2. a no-op `trustmesh plan` of the converged cluster;
//! 3. a cold `trustmesh apply` of 40 workers with reverse edges for all and
//!    four mesh groups of ten (440 trust edges), from workers that only
//!    accept the manager's key.
//!
//! Needs root (the testbed uses namespaces). Run with
//! `cargo bench --bench cluster`; `CLUSTER_BENCH_RUNS` sets the repeats.
//! Prints the median of each and the ratios the README quotes.

use std::time::{Duration, Instant};

use testbed::{Cluster, ClusterSpec, HostSpec};

const WORKERS: usize = 40;
const MANAGER: &str = "alice";
const USER: &str = "agilab";

fn sh(c: &Cluster, host: &str, user: &str, script: &str) -> std::process::Output {
    let out = c.exec(host, user, &["sh", "-c", script]).expect("exec");
    if !out.status.success() {
        panic!(
            "{host}: `{script}` failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn timed(c: &Cluster, script: &str) -> Duration {
    let t = Instant::now();
    sh(c, "manager", MANAGER, script);
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn names() -> Vec<String> {
    (1..=WORKERS).map(|i| format!("w{i:02}")).collect()
}

fn start() -> Cluster {
    let mut hosts = vec![HostSpec::new("manager", &[MANAGER])];
    hosts.extend(names().iter().map(|n| HostSpec::new(n, &[USER])));
    let c = Cluster::start(ClusterSpec::new(hosts)).expect("start 41 hosts");
    sh(
        &c,
        "manager",
        MANAGER,
        "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519",
    );
    let key = c
        .read_file("manager", MANAGER, ".ssh/id_ed25519.pub")
        .unwrap();
    for n in names() {
        c.write_file(&n, USER, ".ssh/authorized_keys", &key, 0o600)
            .unwrap();
        c.chmod(&n, USER, ".ssh", 0o700).unwrap();
    }
    // The manager knows every worker's host key, as after a first run.
    let mut kh = String::new();
    for n in names() {
        for line in c.known_hosts_lines(&n).unwrap() {
            kh.push_str(&line);
            kh.push('\n');
        }
    }
    c.write_file("manager", MANAGER, ".ssh/known_hosts", kh.as_bytes(), 0o644)
        .unwrap();
    let mut inv = format!(
        "version: 1\ndefaults: {{user: {USER}}}\nmanager: {{name: manager, address: {}, user: {MANAGER}}}\nworkers:\n",
        c.host("manager").address
    );
    for (i, n) in names().iter().enumerate() {
        let h = c.host(n);
        inv.push_str(&format!(
            "  - {{name: {n}, address: {}, port: {}, groups: [g{}]}}\n",
            h.address,
            h.port,
            i / 10
        ));
    }
    inv.push_str(
        "reverse: all\nmesh:\n  - group: g0\n  - group: g1\n  - group: g2\n  - group: g3\n",
    );
    c.write_file("manager", MANAGER, "inventory.yaml", inv.as_bytes(), 0o644)
        .unwrap();
    c.write_file(
        "manager",
        MANAGER,
        "cluster.cfg",
        c.ssh_config(USER).as_bytes(),
        0o644,
    )
    .unwrap();
    c
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("cluster: bench");
        return;
    }
    let runs: usize = std::env::var("CLUSTER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut cold = Vec::new();
    let mut noop = Vec::new();
    let mut base = Vec::new();
    for run in 0..runs {
        let c = start();
        // A copy the manager's account can run, wherever the checkout is.
        let bin = c
            .share(std::path::Path::new(env!("CARGO_BIN_EXE_trustmesh")))
            .and_then(|b| c.check_reachable("manager", MANAGER, &b, true).map(|()| b))
            .unwrap_or_else(|e| panic!("testbed: {e}"));
        let bin = bin.display();
        let t = timed(&c, &format!("cd ~ && '{bin}' apply --yes -q >/dev/null"));
        cold.push(t);
        // Converged: the next plan is a no-op.
        sh(
            &c,
            "manager",
            MANAGER,
            &format!("cd ~ && '{bin}' plan --detailed-exitcode -q >/dev/null"),
        );
        for _ in 0..3 {
            noop.push(timed(&c, &format!("cd ~ && '{bin}' plan -q >/dev/null")));
            let reads: String = names()
                .iter()
                .map(|n| {
                    format!(
                        "ssh -F ~/cluster.cfg -o BatchMode=yes {n} 'cat ~/.ssh/authorized_keys ~/.ssh/known_hosts ~/.ssh/id_ed25519.pub /etc/ssh/ssh_host_*_key.pub' >/dev/null & "
                    )
                })
                .collect();
            base.push(timed(&c, &format!("{reads} wait")));
        }
        eprintln!("run {}: cold apply {:?}", run + 1, cold.last().unwrap());
    }
    let (cold, noop, base) = (median(cold), median(noop), median(base));
    println!("cluster of {WORKERS} workers, 440 trust edges, {runs} runs (medians):");
    println!(
        "  parallel ssh read of every worker:  {:>8.0} ms",
        base.as_secs_f64() * 1e3
    );
    println!(
        "  no-op trustmesh plan:                {:>8.0} ms  ({:.2}x the ssh read)",
        noop.as_secs_f64() * 1e3,
        noop.as_secs_f64() / base.as_secs_f64()
    );
    println!(
        "  cold trustmesh apply:                {:>8.0} ms  ({:.0}x faster than Ansible's ~90 s)",
        cold.as_secs_f64() * 1e3,
        90.0 / cold.as_secs_f64()
    );
}
