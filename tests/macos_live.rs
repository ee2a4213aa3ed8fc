//! A macOS-like node on the testbed: its account's home is
//! `/Users/<name>` (from the account itself, never built as `/home/USER`),
//! `os: macos` in the inventory, in a mesh and with a reverse edge; plan,
//! apply and verify converge. (The BSD userland is not at hand: see the
//! README's list; the node scripts run under `bash --posix` with BWK awk
//! in the unit tests' shell matrix.)
#![cfg(feature = "live")]

mod live;

use live::*;

/// The mac node's account: its home is `/Users/tmmacuser`.
const MAC_USER: &str = "tmmacuser";

#[test]
fn a_node_with_its_home_under_users_converges() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("mac1", &[MAC_USER]).mac_homes(),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    let key = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
        .expect("manager key");
    live.cluster
        .write_file("mac1", MAC_USER, ".ssh/authorized_keys", &key, 0o600)
        .unwrap();
    let home = live.cluster.host("mac1").home_of(MAC_USER);
    assert!(home.ends_with(format!("Users/{MAC_USER}")), "{home:?}");
    let inv = live.inventory(
        &["node1", "mac1"],
        "reverse: [mac1]\nmesh:\n  - [node1, mac1]\n",
        &|w| {
            if w == "mac1" {
                format!("    user: {MAC_USER}\n    os: macos\n")
            } else {
                String::new()
            }
        },
    );
    live.write_inventory(&inv);

    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    // Everything landed in the /Users home, nothing under /home.
    for f in [
        "id_ed25519",
        "id_ed25519.pub",
        "authorized_keys",
        "known_hosts",
    ] {
        assert!(home.join(".ssh").join(f).is_file(), "{f} missing");
    }
    let wrong = live
        .cluster
        .host("mac1")
        .state_dir()
        .join("home")
        .join(MAC_USER);
    assert!(!wrong.exists(), "{wrong:?} was made");
    let out = live.run_as(
        "mac1",
        MAC_USER,
        "cd ~ && pwd -P && ls -ldn ~/.ssh ~/.ssh/authorized_keys | cut -c1-10",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("/Users/{MAC_USER}\ndrwx------\n-rw-------\n")
    );
    // A second plan is empty.
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    // Every edge holds: manager -> node1, mac1; mac1 -> manager; the mesh.
    let verify = live.run(&["verify"]).expect_exit(0);
    assert!(
        verify.stdout.contains("Verify: 5 of 5 edges hold."),
        "{}",
        verify.stdout
    );
    let mac = live.cluster.host("mac1");
    let from_node1 = live.run_as(
        "node1",
        WORKER_USER,
        &format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -p {} {MAC_USER}@{} pwd",
            mac.port, mac.address
        ),
    );
    assert_eq!(
        String::from_utf8_lossy(&from_node1.stdout),
        format!("/Users/{MAC_USER}\n"),
        "{}",
        String::from_utf8_lossy(&from_node1.stderr)
    );
}
