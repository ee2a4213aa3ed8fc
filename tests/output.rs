//! What trustmesh prints is safe on a terminal: text from a node, from ssh
//! or from the inventory is escaped in every text renderer (the plan, the
//! apply report, the verify matrix), the renderer's own colours stay, and
//! JSON holds the text as it is (serde_json escapes the controls).

mod support;

use std::sync::Arc;

use support::*;
use trustmesh::apply::{ActionResult, ApplyReport, NodeReport};
use trustmesh::model::graph::{Edge, EdgeKind};
use trustmesh::model::inventory::Inventory;
use trustmesh::output::escape::is_escaped;
use trustmesh::output::{self as render, PlanTextOptions};
use trustmesh::plan::{
    BlockRole, BlockWrite, Change, FileEdit, FileRole, NodeFiles, NodeStatus, Plan, PlannedLine,
};
use trustmesh::transport::FailureKind;
use trustmesh::verify::{self, EdgeFailure, EdgeOutcome, EdgeResult, VerifyReport};

/// Clears the screen, moves the cursor up over what was printed, a C1 CSI,
/// a right-to-left override, a bell, a carriage return, a newline, a tab
/// and DEL.
const HOSTILE: &str = "\x1b[2J\x1b[12A\u{9b}1m\u{202e}\x07\r\n\t\x7f";

fn demo() -> Inventory {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("inventories/demo.yaml");
    Inventory::load(&path).unwrap()
}

/// `out` with the colour sequences the renderers add (`ESC [ digits ; m`)
/// taken out.
fn without_colours(out: &str) -> String {
    let mut s = String::new();
    let mut rest = out;
    while let Some(i) = rest.find("\x1b[") {
        s.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let n = tail
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(tail.len());
        if tail[n..].starts_with('m') {
            rest = &tail[n + 1..];
        } else {
            // Not a colour: kept, for the check to find.
            s.push_str("\x1b[");
            rest = tail;
        }
    }
    s.push_str(rest);
    s
}

/// No control (but the renderer's newlines, and with `color` its own
/// colour sequences) in `out`.
#[track_caller]
fn assert_safe(out: &str, color: bool) {
    let checked = if color {
        without_colours(out)
    } else {
        out.to_string()
    };
    let bad: Vec<char> = checked
        .chars()
        .filter(|&c| is_escaped(c) && c != '\n')
        .collect();
    assert!(bad.is_empty(), "raw controls {bad:?} in:\n{out:?}");
}

fn plan_text(p: &Plan, color: bool) -> String {
    let mut out = Vec::new();
    render::render_text(
        p,
        PlanTextOptions {
            color,
            ..PlanTextOptions::default()
        },
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// A converged demo cluster where node2's authorized_keys also holds a
/// managed-looking line whose options clear the terminal.
fn hostile_line_plan() -> (Plan, String) {
    let inv = demo();
    let mut live = converged(&inv);
    let node2 = inv.find("node2").unwrap();
    let files = NodeFiles::of(&inv, node2);
    let acc = account_at(&mut live, node2);
    let line = format!(
        "command=\"\x1b[2J\x1b[12A\" ssh-ed25519 {} trustmesh:demo/ghost",
        fake_key("ghost")
    );
    let ak = format!("{}{line}\n", content(acc, &files.authorized_keys));
    set_file(acc, &files.authorized_keys, 0o600, &ak);
    (run(&inv, &live), line)
}

#[test]
fn a_hostile_authorized_keys_line_is_printed_escaped_in_the_plan() {
    let (p, line) = hostile_line_plan();
    assert!(!p.is_empty(), "the ghost's line is pruned:\n{p:?}");
    for color in [false, true] {
        let t = plan_text(&p, color);
        assert_safe(&t, color);
        assert!(!t.contains("\x1b[2J") && !t.contains("\x1b[12A"), "{t:?}");
        assert!(
            t.contains("- command=\"\\e[2J\\e[12A\" ssh-ed25519 AAAAC3NzaC1l…"),
            "{t}"
        );
    }
    // JSON holds the line as it is, its controls escaped the JSON way.
    let mut out = Vec::new();
    render::render_json(&p, &mut out).unwrap();
    assert!(!out.contains(&0x1b), "a raw ESC in the JSON");
    let json = String::from_utf8(out).unwrap();
    assert!(
        json.contains("command=\\\"\\u001b[2J\\u001b[12A\\\""),
        "{json}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.to_string().contains("\\u001b[2J"));
    assert!(
        json.contains(&serde_json::to_string(&line).unwrap()[1..line.len()]),
        "{json}"
    );
}

/// Every string of a plan that a node, ssh or the inventory can fill,
/// hostile, in every kind of change.
fn hostile_plan() -> Plan {
    let inv = demo();
    let mut p = run(&inv, &fresh_cluster(&inv));
    let h = || HOSTILE.to_string();
    let line = PlannedLine {
        names: Some(Arc::from(HOSTILE)),
        clear_name: Some(Arc::from(HOSTILE)),
        key_type: Arc::from(HOSTILE),
        base64: None,
        node: Arc::from(HOSTILE),
        marker: Arc::from(HOSTILE),
        replaces: false,
        options: Some(Arc::from(HOSTILE)),
        fingerprint: Some(Arc::from(HOSTILE)),
    };
    let known = PlannedLine {
        base64: Some(Arc::from(HOSTILE)),
        names: None,
        ..line.clone()
    };
    let edit = FileEdit {
        path: h(),
        file: FileRole::AuthorizedKeys,
        create: false,
        kept: vec![(0, h())],
        remove: vec![(1, format!("{HOSTILE} removed"))],
        remove_on_request: vec![(2, format!("{HOSTILE} by hand"))],
        adopt: Vec::new(),
        add: vec![line, known],
        after_rotation_of: Some(h()),
    };
    let block = |role, create| {
        Change::WriteBlock(BlockWrite {
            path: h(),
            role,
            marker: h(),
            create,
            old: vec![h(), "old".into()],
            new: Some(Arc::from(vec![h(), "new".to_string()])),
            sudo: false,
        })
    };
    let changes = vec![
        Change::CreateDir {
            path: h(),
            mode: 0o700,
        },
        Change::Mode {
            path: h(),
            from: 0o755,
            to: 0o700,
        },
        Change::Owner {
            path: h(),
            from: 0,
            to: 1000,
        },
        Change::GenerateKey {
            path: h(),
            key_type: h(),
        },
        Change::RotateKey {
            path: h(),
            key_type: h(),
            new_path: h(),
            aside_path: h(),
            old_fingerprint: h(),
            targets: vec![h()],
        },
        Change::RemoveLeftover { path: h() },
        Change::SetAcl {
            path: h(),
            command: h(),
        },
        Change::EditFile(edit.clone()),
        Change::EditFile(FileEdit {
            after_rotation_of: None,
            create: true,
            ..edit
        }),
        block(BlockRole::HostsBlock, false),
        block(BlockRole::SshConfigFile, true),
        block(BlockRole::SshConfigInclude, false),
    ];
    p.header.push(h());
    p.notes.push(h());
    let statuses = [
        NodeStatus::Planned,
        NodeStatus::Unreachable(trustmesh::model::finding::Finding::new(
            &h(),
            h(),
            Some(h().into()),
        )),
        NodeStatus::Skipped { reason: h() },
        NodeStatus::Blocked(trustmesh::model::finding::Finding::plan(h(), Some(h()))),
    ];
    for (node, status) in p.nodes.iter_mut().zip(statuses.into_iter().cycle()) {
        node.node = format!("{}{HOSTILE}", node.node);
        node.target = h();
        node.status = status;
        node.changes.extend(changes.iter().cloned());
        node.warnings.push(h());
    }
    p
}

#[test]
fn every_field_of_a_plan_is_escaped_and_the_colours_stay() {
    let p = hostile_plan();
    let plain = plan_text(&p, false);
    assert_safe(&plain, false);
    assert!(plain.contains("\\e[2J\\e[12A\\u{009b}1m\\u{202e}\\x07\\r\\n\\t\\x7f"));
    let coloured = plan_text(&p, true);
    assert_safe(&coloured, true);
    assert!(coloured.contains("\x1b[32m+\x1b[0m"), "{coloured:?}");
    assert_eq!(without_colours(&coloured), plain);
    // Verbose, full keys: the same.
    let mut out = Vec::new();
    render::render_text(
        &p,
        PlanTextOptions {
            color: false,
            full_keys: true,
            verbose: true,
        },
        &mut out,
    )
    .unwrap();
    assert_safe(&String::from_utf8(out).unwrap(), false);
}

#[test]
fn the_apply_report_is_escaped() {
    let h = || HOSTILE.to_string();
    let report = ApplyReport {
        nodes: vec![NodeReport {
            node: h(),
            results: vec![
                ActionResult::Done { what: h() },
                ActionResult::Failed {
                    what: h(),
                    reason: format!("replace ~/.ssh/authorized_keys: {HOSTILE}"),
                },
                ActionResult::Conflict { what: h() },
                ActionResult::Skipped {
                    what: h(),
                    because: h(),
                },
            ],
        }],
    };
    for color in [false, true] {
        let mut out = Vec::new();
        render::render_report(&report, color, &mut out).unwrap();
        let t = String::from_utf8(out).unwrap();
        assert_safe(&t, color);
        assert!(
            t.contains("replace ~/.ssh/authorized_keys: \\e[2J\\e[12A"),
            "{t}"
        );
    }
}

fn edge(source: &str, target: &str, outcome: EdgeOutcome) -> EdgeResult {
    EdgeResult {
        edge: Edge {
            kind: EdgeKind::Mesh,
            source: 0,
            target: 0,
        },
        source: source.into(),
        target: target.into(),
        policy: "full".into(),
        outcome,
        time: None,
    }
}

/// `nodes` nodes named `n<i><suffix>`, every edge failing or not tried
/// with hostile stderr but one in three.
fn hostile_verify(nodes: usize, suffix: &str) -> VerifyReport {
    // ssh's stderr as a node's banner or a jump host may fill it.
    let stderr = format!("agilab@127.0.0.4: Permission denied (publickey).{HOSTILE}");
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}{suffix}")).collect();
    let mut edges = Vec::new();
    for (i, s) in names.iter().enumerate() {
        for (j, t) in names.iter().enumerate() {
            let outcome = match (i + j) % 3 {
                _ if i == j => continue,
                0 => EdgeOutcome::Holds,
                1 => EdgeOutcome::Fails(EdgeFailure::new(
                    FailureKind::AuthRejected,
                    stderr.clone(),
                    Some(format!("hint {HOSTILE}").into()),
                )),
                _ => EdgeOutcome::not_tried(stderr.clone(), Some(HOSTILE.into())),
            };
            edges.push(edge(s, t, outcome));
        }
    }
    VerifyReport {
        nodes: names,
        edges,
        certificates_ending: Vec::new(),
    }
}

fn verify_text(r: &VerifyReport, color: bool) -> String {
    let mut out = Vec::new();
    verify::render_text(
        r,
        verify::VerifyTextOptions {
            color,
            quiet: false,
        },
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_verify_matrix_escapes_ssh_stderr_and_names() {
    // A matrix (few nodes) and a list (many).
    for (nodes, suffix) in [(3, "\x1b[2J"), (3, HOSTILE), (20, HOSTILE)] {
        let r = hostile_verify(nodes, suffix);
        for color in [false, true] {
            let t = verify_text(&r, color);
            assert_safe(&t, color);
            assert!(
                t.contains("(publickey).\\e[2J\\e[12A\\u{009b}1m\\u{202e}\\x07\\r\\n\\t\\x7f"),
                "{t}"
            );
        }
    }
    // The matrix: its columns are as wide as the names as printed.
    let t = verify_text(&hostile_verify(3, "\x1b[2J"), false);
    let mut lines = t.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    assert_eq!(header, "         n0\\e[2J  n1\\e[2J  n2\\e[2J", "{t}");
    assert_eq!(row, "n0\\e[2J  -        FAIL     ?", "{t}");
    // JSON: the text as it is, no raw ESC.
    let mut out = Vec::new();
    verify::render_json(&hostile_verify(3, HOSTILE), &mut out).unwrap();
    assert!(!out.contains(&0x1b));
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["nodes"][0], format!("n0{HOSTILE}"));
}

/// `trustmesh ARGS` on this checkout: exit code, stdout, stderr.
fn trustmesh(args: &[&str]) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .args(args)
        .env_remove("TRUSTMESH_INVENTORY")
        .env_remove("NO_COLOR")
        .output()
        .expect("run trustmesh");
    (out.status.code(), out.stdout, out.stderr)
}

#[test]
fn inventory_mistakes_are_printed_escaped_colours_or_not() {
    let dir = tempfile::tempdir().unwrap();
    // YAML's own escapes put ESC, a C1 CSI and an override in the values;
    // a raw ESC sits in a comment of the file itself, shown in the excerpt.
    let path = dir.path().join("inventory.yaml");
    std::fs::write(
        &path,
        "version: 1 # \x1b[2J\nmanager: {name: m}\nworkers:\n  - {name: \"w\\e[2J\", address: \"a\\e[12A\\u009b\\u202e\"}\n  - {nmae: \"\\e]0;t\\a\"}\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    for color in ["--color=never", "--color=always"] {
        let (code, stdout, stderr) = trustmesh(&["validate", color, path]);
        let err = String::from_utf8(stderr).unwrap();
        assert_eq!(code, Some(1), "{err}");
        assert!(stdout.is_empty());
        assert_safe(&err, false);
        assert!(err.contains("\\e[2J"), "{err}");
    }
}
