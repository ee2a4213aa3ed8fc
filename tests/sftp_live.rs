//! A node whose account has no shell, only SFTP (`ForceCommand
//! internal-sftp`, as locked-down accounts and, in effect, Windows
//! workers have): read, written, cut half way and re-run on real sshd.
#![cfg(feature = "live")]

mod live;

use live::*;

/// A key no node of the cluster holds.
const OUTSIDER: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOutsiderOutsiderOutsiderOutsiderOutsider1";
/// The key of a node that left the inventory.
const RETIRED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIKlphhPdUwvRtltjfIXcJ7feSKU4DrkQUkn1oHLuF7IO";

fn locked_keys(live: &Live) -> Vec<u8> {
    live.cluster
        .read_file("locked", WORKER_USER, ".ssh/authorized_keys")
        .unwrap()
}

fn leftovers(live: &Live) -> Vec<(String, u64)> {
    let dir = live
        .cluster
        .host("locked")
        .home_of(WORKER_USER)
        .join(".ssh");
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(".trustmesh.")
                .then(|| (name, e.metadata().unwrap().len()))
        })
        .collect();
    out.sort();
    out
}

/// `sftp -b` from `from` to locked, BatchMode and strict host keys: lists
/// `~/.ssh`.
fn sftp_works(live: &Live, from: &str) -> Result<String, String> {
    let h = live.cluster.host("locked");
    let cmd = format!(
        "echo 'ls -a .ssh' | sftp -b - -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o ConnectTimeout=5 -P {} {WORKER_USER}@{}",
        h.port, h.address
    );
    let out = live.run_as(from, account(from), &cmd);
    let (stdout, stderr) = text(&out);
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}\n{stderr}"))
    }
}

#[test]
fn an_sftp_only_account_is_planned_applied_cut_and_converged() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]),
        HostSpec::new("locked", &[WORKER_USER]).sshd_option("ForceCommand internal-sftp"),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node1");
    live.authorize_manager_on("locked");
    // The account really has no shell (its host key from the testbed, in
    // a file of the test's own, checked strictly).
    let h = live.cluster.host("locked");
    let name = trustmesh::model::target::SshTarget::new(&h.address.to_string(), h.port).short();
    let known: String = live
        .cluster
        .host_public_keys("locked")
        .unwrap()
        .iter()
        .map(|k| format!("{name} {k}\n"))
        .collect();
    live.cluster
        .write_file(
            "manager",
            MANAGER_USER,
            "test_known_hosts",
            known.as_bytes(),
            0o644,
        )
        .unwrap();
    let ssh_true = live.run_as(
        "manager",
        MANAGER_USER,
        &format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=~/test_known_hosts \
             -p {} {WORKER_USER}@{} 'echo shell-ran'",
            h.port, h.address
        ),
    );
    // The login itself works (internal-sftp then ends with a status of
    // its own on the empty input).
    let err = String::from_utf8_lossy(&ssh_true.stderr);
    assert!(
        !err.contains("Host key verification failed") && !err.contains("Permission denied"),
        "the login itself must work: {err}"
    );
    assert!(
        !String::from_utf8_lossy(&ssh_true.stdout).contains("shell-ran"),
        "ForceCommand internal-sftp must stop commands"
    );

    // Lines of others (CRLF, options, a mention of a marker, another
    // cluster's, an unknown old marker) and a line of this cluster for a
    // node that left the inventory (pruned).
    let mut before = locked_keys(&live);
    let foreign = format!(
        "# keys of the lab, edited by hand\r\n\
         from=\"10.0.0.0/8\",no-pty ssh-ed25519 {OUTSIDER} backup@lab\r\n\
         ssh-ed25519 {OUTSIDER} alice laptop, set up like trustmesh:node9\n\
         ssh-ed25519 {OUTSIDER} trustmesh:othercluster/node1\n\
         ssh-ed25519 {OUTSIDER} trustmesh:stranger\n"
    );
    before.extend_from_slice(foreign.as_bytes());
    let retired = format!("ssh-ed25519 {RETIRED} trustmesh:manager/gone\n");
    before.extend_from_slice(retired.as_bytes());
    live.cluster
        .write_file(
            "locked",
            WORKER_USER,
            ".ssh/authorized_keys",
            &before,
            0o600,
        )
        .unwrap();
    let inv = live.inventory(&["node1", "locked"], "mesh:\n  - [node1, locked]\n", &|w| {
        if w == "locked" {
            "    access: sftp\n".into()
        } else {
            String::new()
        }
    });
    live.write_inventory(&inv);

    // The plan reads it over SFTP: node1's key goes in (known after
    // apply), the retired line goes; locked's own key cannot be made
    // without a shell, which the plan says instead of trying.
    let plan = live
        .run(&["plan", "--accept-new-host-keys", "--json"])
        .expect_exit(0)
        .json();
    let locked = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "locked")
        .unwrap()
        .clone();
    assert_eq!(locked["status"], "planned", "{locked:#}");
    let changes = locked["changes"].as_array().unwrap();
    let edit = changes
        .iter()
        .find(|c| c["action"] == "edit_file" && c["path"] == "~/.ssh/authorized_keys")
        .unwrap_or_else(|| panic!("{locked:#}"));
    assert_eq!(edit["add"].as_array().unwrap().len(), 1, "{edit:#}");
    assert_eq!(edit["remove"].as_array().unwrap().len(), 1, "{edit:#}");
    assert!(
        !changes.iter().any(|c| c["action"] == "generate_key"),
        "{locked:#}"
    );
    let warnings = locked["warnings"].to_string();
    assert!(
        warnings.contains("blocked") && warnings.contains("SFTP"),
        "{warnings}"
    );

    // A transfer cut half way (the SFTP session killed after 40 bytes of
    // the upload, by the test hook): the file is whole, the old one.
    let cut = live
        .cluster
        .exec(
            "manager",
            MANAGER_USER,
            &[
                "sh",
                "-c",
                "cd ~ && exec \"$@\"",
                "sh",
                "env",
                "NO_COLOR=1",
                "TMPDIR=/tmp",
                "TRUSTMESH_TEST_SFTP_CUT_AFTER=40",
                live.bin(),
                "apply",
                "--yes",
                "--accept-new-host-keys",
            ],
        )
        .unwrap();
    let (stdout, stderr) = text(&cut);
    assert_eq!(cut.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("cut after 40 bytes"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        locked_keys(&live),
        before,
        "the cut left the file as it was"
    );
    assert_eq!(
        live.cluster
            .read_file("locked", WORKER_USER, ".ssh/known_hosts"),
        None,
        "a new file cut half way is not there at all"
    );
    // The half-written temporary files are there, 40 bytes each (one per
    // upload that reached the server before its session was killed): the
    // cut was real, in the middle of the transfer.
    let left = leftovers(&live);
    assert!(!left.is_empty(), "{left:?}");
    assert!(left.iter().all(|(_, len)| *len == 40), "{left:?}");

    // The full apply: every foreign line kept byte for byte, in order;
    // the retired line gone; node1's key added; the mode kept.
    live.run(&["apply", "--yes", "--accept-new-host-keys"])
        .expect_exit(0);
    let after = String::from_utf8(locked_keys(&live)).unwrap();
    let manager_line = String::from_utf8(
        live.cluster
            .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
            .unwrap(),
    )
    .unwrap();
    assert!(
        after.starts_with(&format!("{manager_line}{foreign}")),
        "{after}"
    );
    assert!(!after.contains("trustmesh:manager/gone"), "{after}");
    assert!(after.contains(" trustmesh:manager/node1"), "{after}");
    use std::os::unix::fs::PermissionsExt;
    let path = live
        .cluster
        .host("locked")
        .home_of(WORKER_USER)
        .join(".ssh/authorized_keys");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The edges into it hold, tried with plain sftp.
    let listing = sftp_works(&live, "manager").unwrap();
    assert!(listing.contains("authorized_keys"), "{listing}");
    sftp_works(&live, "node1").unwrap();

    // A second apply changes nothing (the fresh leftover is not swept
    // before it is ten minutes old).
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let once = locked_keys(&live);
    live.run(&["apply", "--yes"]).expect_exit(0);
    assert_eq!(locked_keys(&live), once);

    // The temporary files the cut left are swept once ten minutes old,
    // over SFTP too.
    for (name, _) in &left {
        let out = live.run_as(
            "locked",
            WORKER_USER,
            &format!("touch -d '-11 minutes' ~/.ssh/{name}"),
        );
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let swept = live.run(&["plan"]).expect_exit(0).stdout;
    assert!(swept.contains("(left by an interrupted run)"), "{swept}");
    live.run(&["apply", "--yes"]).expect_exit(0);
    assert!(leftovers(&live).is_empty());
    assert_eq!(locked_keys(&live), once);

    // verify tries the edges into it with an `sftp -b` listing, and says
    // why none is tried from it.
    let report = live.run(&["verify", "--json"]).json();
    let edge = |s: &str, t: &str| verify_edge(&report, s, t).clone();
    assert_eq!(edge("manager", "locked")["status"], "ok", "{report}");
    assert_eq!(edge("node1", "locked")["status"], "ok", "{report}");
    let from_locked = edge("locked", "node1");
    assert_eq!(from_locked["status"], "not_tried", "{report}");
    assert!(
        from_locked.to_string().contains("reached over SFTP only"),
        "{from_locked}"
    );

    // A private key under a public file's name is refused over SFTP as the
    // probe refuses it (after its first bytes, src/transport/files.rs):
    // the node is blocked, and the key is in no plan.
    let secret = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
    let key = format!(
        "-----BEGIN OPENSSH PRIVATE KEY-----\n{secret}\n-----END OPENSSH PRIVATE KEY-----\n"
    );
    live.cluster
        .write_file(
            "locked",
            WORKER_USER,
            ".ssh/known_hosts",
            key.as_bytes(),
            0o600,
        )
        .unwrap();
    let ran = live.run(&["plan", "--json"]);
    let raw = format!("{}{}", ran.stdout, ran.stderr);
    assert!(!raw.contains(secret), "{raw}");
    let plan = ran.expect_exit(1).json();
    let n = plan_node(&plan, "locked");
    assert_eq!(n["status"], "blocked", "{plan:#}");
    assert!(
        n["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("known_hosts cannot be read"),
        "{plan:#}"
    );
}
