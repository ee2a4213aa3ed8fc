#![cfg(feature = "live")]
//! Open files bounded by `--concurrency`, not by the number of hosts
//! (issue #21: at 250 hosts a cold apply hit the soft `RLIMIT_NOFILE` of
//! 1024 and 105 nodes failed at probe with "Too many open files"): a
//! cluster of 24 workers is planned and applied by a trustmesh process
//! whose soft and hard limits are both 64 open files (it cannot raise
//! them), with `--concurrency 4`.

mod live;

use live::*;

const WORKERS: usize = 24;
/// Soft and hard: trustmesh cannot raise it, so this checks the bound.
const NOFILE: u32 = 64;

/// Run trustmesh on the manager as alice under `ulimit -n NOFILE`, with
/// `$TRUSTMESH_PASSWORD` set.
fn run_limited(live: &Live, args: &[&str]) -> Ran {
    let line = format!("ulimit -n {NOFILE} && cd ~ && exec \"$@\"");
    let pw = format!("TRUSTMESH_PASSWORD={PASSWORD}");
    let mut argv = vec![
        "sh",
        "-c",
        &line,
        "sh",
        "env",
        "NO_COLOR=1",
        "TMPDIR=/tmp",
        &pw,
    ];
    argv.push(live.bin());
    argv.extend_from_slice(args);
    let out = live
        .cluster
        .exec("manager", MANAGER_USER, &argv)
        .expect("run trustmesh");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn names() -> Vec<String> {
    (1..=WORKERS).map(|i| format!("n{i}")).collect()
}

/// `reverse: all` and meshes of 4: every worker gets a key and files to
/// write.
fn meshes(names: &[String]) -> String {
    let mut extra = String::from("reverse: all\nmesh:\n");
    for group in names.chunks(4) {
        extra.push_str(&format!("  - [{}]\n", group.join(", ")));
    }
    extra
}

fn plan_apply_converge(live: &Live, login: &[&str]) {
    let with = |args: &[&'static str]| -> Vec<&str> {
        let mut v: Vec<&str> = args.to_vec();
        v.extend_from_slice(login);
        v.extend_from_slice(&["--accept-new-host-keys", "--concurrency", "4"]);
        v
    };
    let plan = run_limited(live, &with(&["plan", "--detailed-exitcode"]));
    assert_eq!(
        plan.code,
        Some(2),
        "a plan with changes:\n{}\n{}",
        plan.stdout,
        plan.stderr
    );
    let apply = run_limited(live, &with(&["apply", "--yes"]));
    assert!(
        apply.code == Some(0) && apply.stdout.contains("Converged"),
        "{:?}\n{}\n{}",
        apply.code,
        apply.stdout,
        apply.stderr
    );
    // Read again by a plan of its own, with the manager's key: nothing
    // left to do.
    run_limited(live, &["plan", "--detailed-exitcode", "--concurrency", "4"]).expect_exit(0);
}

#[test]
fn many_hosts_fit_in_a_small_open_file_limit() {
    let names = names();
    let live = provisioned_with(names.iter().map(|n| worker(n)).collect(), "");
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    live.write_inventory_of(&refs, &meshes(&names));
    plan_apply_converge(&live, &[]);
}

/// Every node is read again after apply when it was reached with a
/// password (its read proves the manager's key now opens it): those reads
/// too are bounded by `--concurrency`.
#[test]
fn a_password_bootstrap_of_many_hosts_fits_in_a_small_open_file_limit() {
    let names = names();
    let live = start(
        names
            .iter()
            .map(|n| HostSpec::new(n, &[WORKER_USER]).password(PASSWORD))
            .collect(),
    );
    live.manager_keygen();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    live.write_inventory_of(&refs, &meshes(&names));
    plan_apply_converge(&live, &["--ask-pass"]);
}
