//! End-to-end speed on a real cluster of sshd workers (the testbed), at
//! several cluster sizes, in one run:
//!
//! 1. baseline: a raw parallel `ssh` read of each worker's files (a fresh
//!    connection and one round trip per worker, 32 clients at a time, as
//!    many as trustmesh's default `--concurrency`), what any tool must at
//!    least spend to look at the cluster;
//! 2. a no-op `trustmesh plan` of the converged cluster;
//! 3. a cold `trustmesh apply` from workers that only accept the manager's
//!    key: keys generated on every worker, `reverse: all` and mesh groups
//!    of 8 (the workload of issue #21).
//!
//! Every trustmesh step runs with `--timeout 60` (a loaded machine is
//! slow, not down), and a failed step shows the end of its output.
//!
//! For each size: the medians of each, their ratios to the raw read, and
//! the peak resident memory of the trustmesh process on the manager
//! during plan and apply (`/usr/bin/time -f %M`; "n/a" without it), with
//! the machine's load average (`/proc/loadavg`) before and after, since
//! the numbers mean little on a busy machine.
//!
//! Needs root (the testbed uses namespaces). Run with
//! `cargo bench --bench cluster`. Settings, from the environment:
//!
//! - `CLUSTER_HOSTS=40,120,250`: the worker counts (the manager comes on
//!   top; the testbed takes at most 254 hosts). The default is all three,
//!   which takes a quarter of an hour or more on a 2-core machine; use
//!   `CLUSTER_HOSTS=40` for a quick run.
//! - `CLUSTER_BENCH_RUNS=3`: the runs per size (a fresh cluster each, one
//!   cold apply, then three no-op plans and three raw reads).
//! - `CLUSTER_BENCH_BINS=a=/path/one,b=/path/two`: compare trustmesh
//!   binaries (for example two builds with different features): each run
//!   goes through every binary in turn on its own fresh cluster, so they
//!   alternate on the same machine in the same run, and each gets its own
//!   medians. The default is the binary of this build.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use testbed::{Cluster, ClusterSpec, HostSpec};

const MANAGER: &str = "alice";
const USER: &str = "agilab";
/// Mesh groups of this many workers (the last one may be smaller).
const GROUP: usize = 8;
/// Raw `ssh` clients at a time (trustmesh's default `--concurrency`).
const CLIENTS: usize = 32;
const TIME: &str = "/usr/bin/time";

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

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn names(workers: usize) -> Vec<String> {
    (1..=workers).map(|i| format!("w{i:03}")).collect()
}

fn start(workers: usize) -> Cluster {
    let mut hosts = vec![HostSpec::new("manager", &[MANAGER])];
    hosts.extend(names(workers).iter().map(|n| HostSpec::new(n, &[USER])));
    let c = Cluster::start(ClusterSpec::new(hosts))
        .unwrap_or_else(|e| panic!("start {} hosts: {e}", workers + 1));
    sh(
        &c,
        "manager",
        MANAGER,
        "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519",
    );
    let key = c
        .read_file("manager", MANAGER, ".ssh/id_ed25519.pub")
        .unwrap();
    for n in names(workers) {
        c.write_file(&n, USER, ".ssh/authorized_keys", &key, 0o600)
            .unwrap();
        c.chmod(&n, USER, ".ssh", 0o700).unwrap();
    }
    // The manager knows every worker's host key, as after a first run.
    let mut kh = String::new();
    for n in names(workers) {
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
    for (i, n) in names(workers).iter().enumerate() {
        let h = c.host(n);
        let _ = writeln!(
            inv,
            "  - {{name: {n}, address: {}, port: {}, groups: [g{}]}}",
            h.address,
            h.port,
            i / GROUP
        );
    }
    inv.push_str("reverse: all\nmesh:\n");
    for g in 0..workers.div_ceil(GROUP) {
        let _ = writeln!(inv, "  - group: g{g}");
    }
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
    // The raw read's list of workers, one per line, for xargs.
    let list: String = names(workers).iter().map(|n| format!("{n}\n")).collect();
    c.write_file("manager", MANAGER, "workers.txt", list.as_bytes(), 0o644)
        .unwrap();
    c
}

/// `/proc/loadavg`'s three load averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The measurements of one binary at one size.
#[derive(Default)]
struct Series {
    base: Vec<Duration>,
    noop: Vec<Duration>,
    cold: Vec<Duration>,
    /// Peak RSS of trustmesh, KiB, per plan and per apply.
    rss_plan: Vec<u64>,
    rss_apply: Vec<u64>,
}

/// Run `trustmesh ARGS` on the manager, timed, and its peak RSS when
/// `/usr/bin/time` is there.
fn trustmesh(c: &Cluster, bin: &str, args: &str, rss: &mut Vec<u64>) -> Duration {
    let timer = std::path::Path::new(TIME).exists();
    // Its report is kept, and shown when it fails.
    let line = if timer {
        format!("cd ~ && {TIME} -f %M -o ~/rss.txt '{bin}' {args} >~/report.txt 2>&1")
    } else {
        format!("cd ~ && '{bin}' {args} >~/report.txt 2>&1")
    };
    let t = Instant::now();
    let out = c
        .exec("manager", MANAGER, &["sh", "-c", &line])
        .expect("exec");
    let t = t.elapsed();
    if !out.status.success() {
        let report = c
            .read_file("manager", MANAGER, "report.txt")
            .unwrap_or_default();
        let report = String::from_utf8_lossy(&report);
        let tail: Vec<&str> = report.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "`trustmesh {args}` failed; the end of its output:\n{}",
            tail.join("\n")
        );
    }
    if timer {
        let text = c
            .read_file("manager", MANAGER, "rss.txt")
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        // GNU time writes a "Command exited..." line first on failure.
        if let Some(kb) = text.lines().last().and_then(|l| l.trim().parse().ok()) {
            rss.push(kb);
        }
    }
    t
}

fn one_run(workers: usize, bin: &std::path::Path, s: &mut Series) {
    let c = start(workers);
    // A copy the manager's account can run, wherever the checkout is.
    let bin = c
        .share(bin)
        .and_then(|b| c.check_reachable("manager", MANAGER, &b, true).map(|()| b))
        .unwrap_or_else(|e| panic!("testbed: {e}"));
    let bin = bin.display().to_string();
    s.cold.push(trustmesh(
        &c,
        &bin,
        "apply --yes -q --timeout 60",
        &mut s.rss_apply,
    ));
    // Converged: the next plan is a no-op.
    sh(
        &c,
        "manager",
        MANAGER,
        &format!("cd ~ && '{bin}' plan --detailed-exitcode -q >/dev/null"),
    );
    for _ in 0..3 {
        s.noop
            .push(trustmesh(&c, &bin, "plan -q --timeout 60", &mut s.rss_plan));
        s.base.push(timed(
            &c,
            &format!(
                "xargs -P {CLIENTS} -I NODE ssh -F ~/cluster.cfg -o BatchMode=yes NODE \
                 'cat ~/.ssh/authorized_keys ~/.ssh/known_hosts ~/.ssh/id_ed25519.pub /etc/ssh/ssh_host_*_key.pub' \
                 < ~/workers.txt >/dev/null"
            ),
        ));
    }
}

fn mb(kb: &[u64]) -> String {
    match kb.iter().max() {
        Some(k) => format!("{:.1} MB", *k as f64 / 1024.0),
        None => "n/a".into(),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("cluster: bench");
        return;
    }
    let runs: usize = std::env::var("CLUSTER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3);
    let sizes: Vec<usize> = std::env::var("CLUSTER_HOSTS")
        .unwrap_or_else(|_| "40,120,250".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .unwrap_or_else(|_| panic!("CLUSTER_HOSTS: {s:?} is not a number"))
        })
        .collect();
    let bins: Vec<(String, std::path::PathBuf)> = match std::env::var("CLUSTER_BENCH_BINS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|item| match item.split_once('=') {
                Some((label, path)) => (label.to_string(), path.into()),
                None => (item.to_string(), item.into()),
            })
            .collect(),
        _ => vec![(
            "trustmesh".to_string(),
            env!("CARGO_BIN_EXE_trustmesh").into(),
        )],
    };
    let mut table = String::new();
    for &workers in &sizes {
        let before = load();
        let mut series: Vec<Series> = bins.iter().map(|_| Series::default()).collect();
        for run in 0..runs {
            for ((label, bin), s) in bins.iter().zip(series.iter_mut()) {
                one_run(workers, bin, s);
                eprintln!(
                    "{workers} workers, run {}, {label}: cold apply {:?}, load {}",
                    run + 1,
                    s.cold.last().unwrap(),
                    load()
                );
            }
        }
        let after = load();
        for ((label, _), s) in bins.iter().zip(&series) {
            let (base, noop, cold) = (median(&s.base), median(&s.noop), median(&s.cold));
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            println!(
                "{label}: {workers} workers, reverse: all, mesh groups of {GROUP}, {runs} runs (medians); load {before} before, {after} after:"
            );
            println!(
                "  raw parallel ssh read ({CLIENTS} clients): {:>8.0} ms",
                ms(base)
            );
            println!(
                "  no-op trustmesh plan:                {:>8.0} ms  ({:.2}x the raw read), peak RSS {}",
                ms(noop),
                noop.as_secs_f64() / base.as_secs_f64(),
                mb(&s.rss_plan)
            );
            println!(
                "  cold trustmesh apply:                {:>8.0} ms  ({:.2}x the raw read), peak RSS {}",
                ms(cold),
                cold.as_secs_f64() / base.as_secs_f64(),
                mb(&s.rss_apply)
            );
            let _ = writeln!(
                table,
                "| {label} | {workers} | {:.0} ms | {:.0} ms ({:.2}x) | {:.0} ms ({:.2}x) | {} / {} | {before} / {after} |",
                ms(base),
                ms(noop),
                noop.as_secs_f64() / base.as_secs_f64(),
                ms(cold),
                cold.as_secs_f64() / base.as_secs_f64(),
                mb(&s.rss_plan),
                mb(&s.rss_apply)
            );
        }
    }
    println!();
    println!("| binary | workers | raw read | no-op plan | cold apply | peak RSS plan / apply | load before / after |");
    println!("|---|---:|---:|---:|---:|---:|---|");
    print!("{table}");
}
