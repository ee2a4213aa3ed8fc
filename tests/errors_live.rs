//! Failures on real sshd hosts say their real reason, and a plan proposes
//! only what can be done: a full disk on one node (`~/.ssh` on a full
//! tmpfs), and an admin's lock (`~/.ssh` handed to root) on another.
#![cfg(feature = "live")]

mod live;

use live::*;

/// Run `cmd` as root inside `host`'s own namespaces (its mounts); its
/// standard output, or a panic with everything it printed.
fn as_root(live: &Live, host: &str, cmd: &str) -> String {
    let out = live.run_as(host, "root", cmd);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{cmd}:\n{stdout}\n{stderr}");
    stdout
}

/// A file of the worker account on `host`, read inside the host (through a
/// mount the machine's view of the home does not see).
fn read_inside(live: &Live, host: &str, rel: &str) -> Vec<u8> {
    let out = live.run_as(host, WORKER_USER, &format!("cat {rel}"));
    assert!(out.status.success(), "{}", text(&out).1);
    out.stdout
}

/// The names in the worker's `~/.ssh` on `host`, as seen inside it.
fn ssh_names(live: &Live, host: &str) -> Vec<String> {
    let out = live.run_as(host, WORKER_USER, "ls -A .ssh");
    assert!(out.status.success(), "{}", text(&out).1);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Drop the manager's line for node3 from a worker's authorized_keys (the
/// drift every later apply must repair).
const DROP_NODE3: &str =
    "grep -v 'trustmesh:manager/node3$' .ssh/authorized_keys > .ssh/ak.tmp; chmod 600 .ssh/ak.tmp; mv .ssh/ak.tmp .ssh/authorized_keys";

/// Unmounts node2's tmpfs when the test ends, also when it fails (the
/// cluster's own shutdown ends its namespace anyway).
struct Unmount<'a>(&'a Live);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .run_as("node2", "root", "umount /home/agilab/.ssh 2>/dev/null");
    }
}

#[test]
fn a_full_disk_is_named_nothing_is_lost_and_the_next_apply_converges() {
    let live = converged();
    for node in ["node1", "node2"] {
        let out = live.run_as(node, WORKER_USER, DROP_NODE3);
        assert!(out.status.success(), "{}", text(&out).1);
    }
    // node2's ~/.ssh moves to a 64 KiB tmpfs, filled to the last block.
    let (uid, gid) = {
        let out = live.run_as("node2", WORKER_USER, "id -u; id -g");
        let ids = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut l = ids.lines();
        (l.next().unwrap().to_string(), l.next().unwrap().to_string())
    };
    as_root(
        &live,
        "node2",
        &format!(
            "set -e; h=/home/agilab; t=$(mktemp -d); cp -a $h/.ssh/. $t/; \
             mount -t tmpfs -o size=64k,mode=700,uid={uid},gid={gid} tmpfs $h/.ssh; \
             cp -a $t/. $h/.ssh/; rm -rf $t; \
             dd if=/dev/zero of=$h/.ssh/filler bs=1k 2>/dev/null || true; \
             ! dd if=/dev/zero of=$h/.ssh/filler2 bs=1k count=1 2>/dev/null"
        ),
    );
    let _unmount = Unmount(&live);
    let before = read_inside(&live, "node2", ".ssh/authorized_keys");

    let Ran { stdout, stderr, .. } = live.run(&["apply", "--yes"]).expect_exit(1);
    // The report's lines for node2 (its name alone on a line, then its
    // steps, indented).
    let mut node = "";
    let failed: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| {
            if !l.starts_with(' ') {
                node = l;
            }
            node == "node2" && l.contains("FAILED")
        })
        .collect();
    assert!(
        failed.iter().any(|l| l.contains("~/.ssh/authorized_keys")
            && l.to_lowercase().contains("no space left on device")),
        "node2's report names the step and the OS's reason:\n{stdout}\n{stderr}"
    );
    // Nothing lost, nothing left behind.
    assert_eq!(read_inside(&live, "node2", ".ssh/authorized_keys"), before);
    let names = ssh_names(&live, "node2");
    assert!(
        !names.iter().any(|n| n.starts_with(".trustmesh")),
        "{names:?}"
    );
    // The other nodes converged.
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    for node in ["manager", "node1", "node3"] {
        assert!(plan_changes(&plan, node).is_empty(), "{node}: {plan:#}");
    }
    assert!(!plan_changes(&plan, "node2").is_empty(), "{plan:#}");

    // Space freed: the next apply converges.
    as_root(
        &live,
        "node2",
        "rm -f /home/agilab/.ssh/filler /home/agilab/.ssh/filler2",
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let ak = String::from_utf8(read_inside(&live, "node2", ".ssh/authorized_keys")).unwrap();
    assert!(ak.contains("trustmesh:manager/node3"), "{ak}");
}

#[test]
fn a_root_owned_ssh_folder_blocks_the_node_with_the_admins_command() {
    let live = provisioned("mesh:\n  - [node1, node2, node3]\n");
    // An admin's lock: node2's ~/.ssh and authorized_keys given to root.
    as_root(
        &live,
        "node2",
        "set -e; cd /home/agilab/.ssh; chown root:root . authorized_keys; chmod 755 .; chmod 644 authorized_keys",
    );
    let node2_home = live.cluster.host("node2").home_of(WORKER_USER);
    let before: Snapshot = live
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&node2_home))
        .collect();

    let plan = live
        .run(&["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(1)
        .json();
    let n = plan_node(&plan, "node2");
    assert_eq!(n["status"], "blocked", "{n:#}");
    let hint = n["hint"].as_str().unwrap_or_default();
    assert!(
        hint.contains("chown -R agilab: /home/agilab/.ssh"),
        "the admin's command: {n:#}"
    );
    assert!(
        n["reason"]
            .as_str()
            .is_some_and(|r| r.contains("~/.ssh (uid 0, mode 0755)")),
        "{n:#}"
    );
    assert!(
        plan_changes(&plan, "node2").is_empty(),
        "no chown, no chmod: {n:#}"
    );

    // Apply changes nothing on node2; the others are written.
    let Ran { stdout, .. } = live.run(&["apply", "--accept-new-host-keys", "--yes"]);
    let after: Snapshot = live
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&node2_home))
        .collect();
    assert_eq!(before, after, "node2 untouched:\n{stdout}");
    assert!(
        live.cluster
            .read_file("node1", WORKER_USER, ".ssh/id_ed25519.pub")
            .is_some(),
        "{stdout}"
    );
    // The admin's command, run, lets trustmesh do the rest.
    as_root(&live, "node2", "chown -R agilab: /home/agilab/.ssh");
    live.run(&["apply", "--yes"]).expect_exit(0);
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
