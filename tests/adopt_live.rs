//! Adopting a cluster built by hand, on the testbed: keys made with
//! `ssh-keygen` and copied with `cat >> authorized_keys` (as `ssh-copy-id`
//! does, each line with its own comment), host keys taken with
//! `ssh-keyscan`. `plan` reports the edges those lines grant and has
//! nothing to change; `apply --adopt` turns them into managed lines, every
//! other byte left alone; a mesh pair dropped from the inventory is then
//! pruned, exactly its lines.
#![cfg(feature = "live")]

mod live;

use std::collections::BTreeMap;
use std::path::PathBuf;

use live::*;

const WORKERS: [&str; 4] = ["node1", "node2", "node3", "node4"];

/// Every wanted edge of the inventory below, (source, target).
const EDGES: [(&str, &str); 11] = [
    ("manager", "node1"),
    ("manager", "node2"),
    ("manager", "node3"),
    ("manager", "node4"),
    ("node1", "manager"),
    ("node1", "node2"),
    ("node2", "node1"),
    ("node2", "node3"),
    ("node3", "node2"),
    ("node3", "node4"),
    ("node4", "node3"),
];

const MESH: &str =
    "reverse: [node1]\nmesh:\n  - [node1, node2]\n  - [node2, node3]\n  - [node3, node4]\n";

#[track_caller]
fn sh(live: &Live, host: &str, cmd: &str) -> String {
    let out = live.run_as(host, account(host), cmd);
    assert!(
        out.status.success(),
        "{host}: {cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ssh-copy-id from to`, by hand: `from`'s public key, with the comment
/// ssh-keygen gave it, appended to `to`'s authorized_keys.
fn copy_id(live: &Live, from: &str, to: &str) {
    let key = live
        .cluster
        .read_file(from, account(from), ".ssh/id_ed25519.pub")
        .expect("a public key");
    let out = live
        .cluster
        .exec_with_stdin(
            to,
            account(to),
            &[
                "sh",
                "-c",
                "mkdir -p -m 700 ~/.ssh && cat >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys",
            ],
            &key,
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ssh-keyscan to >> ~/.ssh/known_hosts` on `from`, until it has answered
/// with every host key of `to` (a loaded machine may time a scan out).
fn keyscan(live: &Live, from: &str, to: &str) {
    let h = live.cluster.host(to);
    let wanted = live.cluster.host_public_keys(to).unwrap().len();
    let scan = format!(
        "ssh-keyscan -T 30 -p {} {} 2>/dev/null | grep -v '^#' || true",
        h.port, h.address
    );
    let mut lines = String::new();
    for _ in 0..10 {
        lines = sh(live, from, &scan);
        if lines.lines().count() >= wanted {
            break;
        }
    }
    assert_eq!(
        lines.lines().count(),
        wanted,
        "ssh-keyscan of {to} on {from}:\n{lines}"
    );
    let out = live
        .cluster
        .exec_with_stdin(
            from,
            account(from),
            &[
                "sh",
                "-c",
                "mkdir -p -m 700 ~/.ssh && cat >> ~/.ssh/known_hosts && chmod 600 ~/.ssh/known_hosts",
            ],
            lines.as_bytes(),
        )
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Manager + four workers, every wanted edge granted by hand, with a line
/// of the person's own in a few files.
fn hand_built() -> Live {
    let live = start(WORKERS.iter().map(|w| worker(w)).collect());
    live.manager_keygen();
    for w in WORKERS {
        sh(
            &live,
            w,
            "mkdir -p -m 700 ~/.ssh && ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519",
        );
    }
    sh(
        &live,
        "node2",
        "printf '# set up by hand\\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvYi1sYXB0b3Atbm90LWEtcmVhbC1rZXktMDAwMDAw bob@laptop\\n' >> ~/.ssh/authorized_keys && chmod 600 ~/.ssh/authorized_keys",
    );
    for (from, to) in EDGES {
        copy_id(&live, from, to);
        keyscan(&live, from, to);
    }
    live.write_inventory_of(&WORKERS, MESH);
    live
}

/// The authorized_keys and known_hosts of every account, and every other
/// file, by path.
fn files(live: &Live) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    live.snapshot()
        .into_iter()
        .filter(|(p, _)| !p.ends_with("inventory.yaml"))
        .map(|(p, (mode, content, _))| (p, (mode, content)))
        .collect()
}

fn is_trust_file(p: &std::path::Path) -> bool {
    p.ends_with(".ssh/authorized_keys") || p.ends_with(".ssh/known_hosts")
}

#[test]
fn a_hand_built_cluster_is_reported_adopted_then_pruned_like_trustmeshs_own() {
    let live = hand_built();

    // Nothing to change: the edges are granted by the person's lines, and
    // the plan says so.
    let ran = live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    assert!(
        ran.stdout
            .contains("granted by a line trustmesh did not write"),
        "{}",
        ran.stdout
    );
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    for (from, to) in EDGES {
        let granted = plan_node(&plan, to)["granted_by_hand"].as_array().cloned();
        let granted = granted.unwrap_or_default();
        assert!(
            granted
                .iter()
                .any(|g| g["node"] == from && g["file"] == "authorized_keys"),
            "{from}'s key on {to}: {plan:#}"
        );
        let granted = plan_node(&plan, from)["granted_by_hand"]
            .as_array()
            .cloned();
        assert!(
            granted
                .unwrap_or_default()
                .iter()
                .any(|g| g["node"] == to && g["file"] == "known_hosts"),
            "{to}'s host key on {from}: {plan:#}"
        );
    }

    // --adopt previews the takeover: the old comments are shown and kept.
    let preview = live
        .run(&["plan", "--adopt", "--json"])
        .expect_exit(0)
        .json();
    let adopted = plan_change(&preview, "node2", "edit_file", "~/.ssh/authorized_keys")["adopt"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let from_manager = adopted
        .iter()
        .find(|a| a["node"] == "manager")
        .unwrap_or_else(|| panic!("{preview:#}"));
    assert_eq!(
        from_manager["old_comment"], "alice@manager",
        "{from_manager:#}"
    );

    let before = files(&live);
    let ran = live.run(&["apply", "--adopt", "--yes"]).expect_exit(0);
    let after = files(&live);

    // Same files, same modes; every line of every file the same bytes but
    // the adopted ones, whose comment only is now the marker.
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "{}",
        ran.stdout
    );
    let mut adopted = 0;
    for (path, (mode, content)) in &before {
        let (new_mode, new_content) = &after[path];
        assert_eq!(mode, new_mode, "{}", path.display());
        if !is_trust_file(path) {
            assert_eq!(content, new_content, "{}", path.display());
            continue;
        }
        let (old, new) = (
            String::from_utf8_lossy(content),
            String::from_utf8_lossy(new_content),
        );
        assert_eq!(
            old.lines().count(),
            new.lines().count(),
            "{}:\n{old}\n{new}",
            path.display()
        );
        for (o, n) in old.lines().zip(new.lines()) {
            if o == n {
                continue;
            }
            let (head, _) = n
                .rsplit_once(" trustmesh:manager/")
                .unwrap_or_else(|| panic!("{}: {o} -> {n}", path.display()));
            // known_hosts: ssh-keyscan's line had no comment; authorized_keys:
            // the key's comment (user@host) is replaced.
            assert!(
                o == head
                    || o.rsplit_once(' ')
                        .is_some_and(|(h, c)| h == head && c.contains('@')),
                "{}: {o} -> {n}",
                path.display()
            );
            adopted += 1;
        }
        assert!(old.ends_with('\n') == new.ends_with('\n'));
    }
    assert!(adopted >= 2 * EDGES.len(), "{adopted} lines adopted");
    // Converged: nothing by hand left, nothing to change.
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    for n in plan["nodes"].as_array().unwrap() {
        assert!(n.get("granted_by_hand").is_none(), "{n:#}");
    }
    for (from, to) in EDGES {
        assert!(live.can_ssh(from, to), "{from} -> {to}");
    }

    // The pair node3-node4 leaves the mesh: exactly its lines go.
    let before = files(&live);
    live.write_inventory_of(&WORKERS, &MESH.replace("  - [node3, node4]\n", ""));
    let ran = live.run(&["apply", "--yes"]).expect_exit(0);
    let after = files(&live);
    let node3_key = String::from_utf8(
        live.cluster
            .read_file("node3", WORKER_USER, ".ssh/id_ed25519.pub")
            .unwrap(),
    )
    .unwrap();
    let node4_key = String::from_utf8(
        live.cluster
            .read_file("node4", WORKER_USER, ".ssh/id_ed25519.pub")
            .unwrap(),
    )
    .unwrap();
    let blob = |k: &str| k.split_whitespace().nth(1).unwrap().to_string();
    let (b3, b4) = (blob(&node3_key), blob(&node4_key));
    let host_blobs = |h: &str| -> Vec<String> {
        live.cluster
            .host_public_keys(h)
            .unwrap()
            .iter()
            .map(|k| blob(k))
            .collect()
    };
    let (h3, h4) = (host_blobs("node3"), host_blobs("node4"));
    let mut removed = Vec::new();
    for (path, (_, content)) in &before {
        let new_content = &after[path].1;
        if !is_trust_file(path) {
            assert_eq!(content, new_content, "{}", path.display());
            continue;
        }
        let (old, new) = (
            String::from_utf8_lossy(content),
            String::from_utf8_lossy(new_content),
        );
        // What stays is the old file without the lines removed, in order.
        let mut kept = new.lines().peekable();
        for o in old.lines() {
            if kept.peek() == Some(&o) {
                kept.next();
            } else {
                removed.push((path.clone(), o.to_string()));
            }
        }
        assert!(
            kept.next().is_none(),
            "{}: lines added:\n{new}",
            path.display()
        );
    }
    let on = |host: &str, file: &str| {
        removed
            .iter()
            .filter(|(p, _)| {
                p.ends_with(format!(".ssh/{file}"))
                    && p.starts_with(live.cluster.host(host).home_of(account(host)))
            })
            .map(|(_, l)| l.clone())
            .collect::<Vec<_>>()
    };
    let all_hold = |lines: &[String], blobs: &[String]| {
        lines.len() == blobs.len()
            && lines
                .iter()
                .all(|l| blobs.iter().any(|b| l.contains(b.as_str())))
    };
    assert!(
        all_hold(&on("node3", "authorized_keys"), std::slice::from_ref(&b4)),
        "{removed:#?}\n{}",
        ran.stdout
    );
    assert!(
        all_hold(&on("node4", "authorized_keys"), std::slice::from_ref(&b3)),
        "{removed:#?}"
    );
    assert!(all_hold(&on("node3", "known_hosts"), &h4), "{removed:#?}");
    assert!(all_hold(&on("node4", "known_hosts"), &h3), "{removed:#?}");
    assert_eq!(removed.len(), 2 + h3.len() + h4.len(), "{removed:#?}");
    assert!(!live.can_ssh("node3", "node4") && !live.can_ssh("node4", "node3"));
    assert!(live.can_ssh("node2", "node3") && live.can_ssh("manager", "node4"));
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}
