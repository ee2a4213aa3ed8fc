//! The history of applies in memory: records built from a plan and a
//! report, read back, broken lines skipped; the file's safety; the git
//! state; the pre-commit hook and the drift job's documentation.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;
use trustmesh::apply::{ActionResult, ApplyReport, NodeReport};
use trustmesh::history::{
    self, file, ApplyOutcome, Context, HistoryRecord, InventorySource, NodeChanges, NodeResult,
};
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::saved::PlanFlags;
use trustmesh::plan::NodeFiles;

fn demo() -> Inventory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/demo.yaml");
    Inventory::load(&path).unwrap()
}

fn ctx() -> Context {
    Context {
        time: humantime::parse_rfc3339("2026-12-05T00:30:00Z").unwrap(),
        user: "alice".into(),
        cluster: "demo".into(),
        inventory: InventorySource {
            path: "/srv/inv/demo.yaml".into(),
            sha256: "ab".repeat(32),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            git_dirty: Some(true),
        },
        flags: PlanFlags {
            limit: vec!["node2".into(), "node1".into()],
            ..PlanFlags::default()
        },
        saved_plan: None,
    }
}

/// A converged demo cluster with one managed line gone from node2's
/// authorized_keys and its `~/.ssh` opened up.
fn drifted() -> trustmesh::plan::Plan {
    let inv = demo();
    let mut live = converged(&inv);
    let node2 = inv.find("node2").unwrap();
    let files = NodeFiles::of(&inv, node2);
    let acc = account_at(&mut live, node2);
    acc.ssh_dir.as_mut().unwrap().mode = 0o755;
    let ak = content(acc, &files.authorized_keys).to_string();
    let kept: String = ak
        .lines()
        .filter(|l| !l.ends_with("trustmesh:demo/node3"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(ak, kept, "node3's line was there");
    set_file(acc, &files.authorized_keys, 0o600, &kept);
    run(&inv, &live)
}

#[test]
fn changes_count_lines_files_and_keys_per_node() {
    let p = drifted();
    assert_eq!(
        history::changes(&p),
        vec![NodeChanges {
            node: "node2".into(),
            lines_added: 1,
            lines_removed: 0,
            files: 2,
            keys: 0,
        }]
    );
    // A fresh cluster: every node with changes is listed, keys counted.
    let inv = demo();
    let fresh = run(&inv, &fresh_cluster(&inv));
    let c = history::changes(&fresh);
    let with_changes = fresh.nodes.iter().filter(|n| !n.changes.is_empty()).count();
    assert_eq!(c.len(), with_changes);
    assert!(c.iter().map(|n| n.keys).sum::<usize>() >= 1, "{c:?}");
    assert!(
        c.iter().all(|n| n.files >= 1 && n.lines_added >= 1),
        "{c:?}"
    );
}

#[test]
fn a_record_holds_who_when_what_and_how_it_ended() {
    let p = drifted();
    let report = ApplyReport {
        nodes: vec![
            NodeReport {
                node: "node2".into(),
                results: vec![ActionResult::Done {
                    what: "edit ~/.ssh/authorized_keys".into(),
                }],
            },
            NodeReport {
                node: "node3".into(),
                results: vec![ActionResult::Conflict {
                    what: "~/.ssh/known_hosts".into(),
                }],
            },
            NodeReport {
                node: "node4".into(),
                results: vec![
                    ActionResult::Done {
                        what: "mkdir".into(),
                    },
                    ActionResult::Failed {
                        what: "chmod ~/.ssh".into(),
                        reason: "Operation not permitted".into(),
                    },
                ],
            },
        ],
    };
    let r = HistoryRecord::build(&ctx(), &p, &report, false);
    assert_eq!(r.format_version, history::HISTORY_FORMAT_VERSION);
    assert_eq!(r.time, "2026-12-05T00:30:00Z");
    assert_eq!(r.user, "alice");
    assert_eq!(r.flags.limit, vec!["node1", "node2"], "normalized");
    assert_eq!(r.changes.len(), 1);
    assert_eq!(
        r.results,
        vec![
            NodeResult {
                node: "node2".into(),
                result: ApplyOutcome::Ok,
                reason: None
            },
            NodeResult {
                node: "node3".into(),
                result: ApplyOutcome::Conflict,
                reason: Some("~/.ssh/known_hosts: changed since it was read".into())
            },
            NodeResult {
                node: "node4".into(),
                result: ApplyOutcome::Failed,
                reason: Some("chmod ~/.ssh: Operation not permitted".into())
            },
        ]
    );
    // One line of JSON, with every field by name.
    let line = r.to_line();
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    for field in [
        "format_version",
        "time",
        "user",
        "cluster",
        "inventory",
        "flags",
        "saved_plan",
        "changes",
        "results",
        "converged",
    ] {
        assert!(v.get(field).is_some(), "{field} missing: {line}");
    }
    for field in ["path", "sha256", "git_commit", "git_dirty"] {
        assert!(v["inventory"].get(field).is_some(), "{field} missing");
    }
    assert_eq!(v["results"][1]["result"], "conflict");
    // Read back as it was written.
    assert_eq!(history::parse(&line).records, vec![r.clone()]);
    let text = history::text_line(&r);
    assert_eq!(
        text,
        "2026-12-05T00:30:00Z  alice  0123456789ab+dirty  1 node: +1 -0 lines, 2 files, 0 keys  \
         not converged (node3 conflict, node4 failed)"
    );
}

#[test]
fn a_broken_line_is_reported_with_its_number_and_skipped() {
    let p = drifted();
    let good = HistoryRecord::build(&ctx(), &p, &ApplyReport::default(), true);
    let text = format!(
        "{}{{\"time\": \"half a line\n\n{}{{\"format_version\": 99}}\n[1, 2]\n{{\"format_version\": 1, \"time\": 3}}\n",
        good.to_line(),
        good.to_line(),
    );
    let h = history::parse(&text);
    assert_eq!(h.records, vec![good.clone(), good]);
    let lines: Vec<usize> = h.broken.iter().map(|b| b.line).collect();
    assert_eq!(lines, vec![2, 5, 6, 7], "{:?}", h.broken);
    assert!(h.broken[0].reason.starts_with("not JSON"), "{:?}", h.broken);
    assert!(h.broken[1].reason.contains("format 99"), "{:?}", h.broken);
    // --limit keeps the newest.
    let mut three = history::parse(&text);
    three.records[1].user = "bob".into();
    let last = history::last(three, Some(1));
    assert_eq!(last.records.len(), 1);
    assert_eq!(last.records[0].user, "bob");
}

#[test]
fn the_path_honours_xdg_state_home() {
    let p = history::path(
        "demo",
        Some(Path::new("/x/state")),
        Some(Path::new("/home/a")),
    );
    assert_eq!(
        p,
        Some(PathBuf::from("/x/state/trustmesh/demo/history.jsonl"))
    );
    // A relative XDG_STATE_HOME is ignored, as the spec says.
    let p = history::path("demo", Some(Path::new("rel")), Some(Path::new("/home/a")));
    assert_eq!(
        p,
        Some(PathBuf::from(
            "/home/a/.local/state/trustmesh/demo/history.jsonl"
        ))
    );
    assert_eq!(history::path("demo", None, None), None);
}

#[test]
fn the_file_is_private_appended_and_never_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/trustmesh/demo/history.jsonl");
    let r = HistoryRecord::build(&ctx(), &drifted(), &ApplyReport::default(), true);
    assert_eq!(
        file::read(&path).unwrap().records.len(),
        0,
        "no file: empty"
    );
    file::append(&path, &r).unwrap();
    file::append(&path, &r).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(
        file::read(&path).unwrap().records,
        vec![r.clone(), r.clone()]
    );

    // A symbolic link at the path is refused, and its target untouched.
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "mine\n").unwrap();
    let linked = dir.path().join("state/trustmesh/other/history.jsonl");
    std::fs::create_dir_all(linked.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &linked).unwrap();
    let e = file::append(&linked, &r).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(file::read(&linked).is_err());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine\n");
    // So is a linked folder.
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("state/trustmesh/third")).unwrap();
    let e = file::append(&dir.path().join("state/trustmesh/third/history.jsonl"), &r).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_dir(&real).unwrap().count(), 0);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn the_git_state_is_the_commit_and_whether_the_file_differs() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("inventory.yaml");
    std::fs::write(&inv, "version: 1\n").unwrap();
    // Not a repository: no commit, no dirty flag.
    assert_eq!(history::git::state(&inv), (None, None));
    git(dir.path(), &["init", "-q"]);
    // A repository without a commit yet.
    assert_eq!(history::git::state(&inv), (None, None));
    git(dir.path(), &["add", "inventory.yaml"]);
    git(dir.path(), &["commit", "-q", "-m", "inventory"]);
    let head = String::from_utf8(
        Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let head = head.trim().to_string();
    assert_eq!(history::git::state(&inv), (Some(head.clone()), Some(false)));
    // Another file changed: this one is still clean.
    std::fs::write(dir.path().join("other.yaml"), "x\n").unwrap();
    assert_eq!(history::git::state(&inv), (Some(head.clone()), Some(false)));
    std::fs::write(&inv, "version: 1\n# edited\n").unwrap();
    assert_eq!(history::git::state(&inv), (Some(head), Some(true)));
}
