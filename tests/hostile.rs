//! Hostile or mistaken inventories: each costs about what a real one does
//! and gets a clear message, never a hang, an abort or a wall of text.
//!
//! The caps are in `src/model/inventory/limits.rs`; these tests go through the
//! public loader only. The scaling tests compare the time of an input with
//! that of one four times larger (a generous ratio, best of several runs),
//! never an absolute time, so a loaded machine does not fail them.

use std::fmt::Write as _;

mod render;
mod support;

use render::render;
use trustmesh::model::inventory::{Inventory, InventoryError};
use trustmesh::TrustGraph;

fn code(e: &InventoryError) -> String {
    use miette::Diagnostic as _;
    e.code().map(|c| c.to_string()).unwrap_or_default()
}

fn codes(e: &InventoryError) -> Vec<&'static str> {
    e.problems().iter().map(|p| p.problem.code).collect()
}

/// `n` workers named w0.. with distinct addresses, then `tail`.
fn workers(n: usize, tail: &str) -> String {
    let mut s = String::from("version: 1\nmanager: {name: m, address: 10.255.255.254}\nworkers:\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "  - {{name: w{i}, address: 10.{}.{}.{}, groups: [g{}]}}",
            i / 65_536,
            (i / 256) % 256,
            i % 256,
            i / 100
        );
    }
    s.push_str(tail);
    s
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let line = format!("# {}\n", "x".repeat(1022));
    let text = format!(
        "version: 1\nmanager: {{name: m}}\n{}",
        line.repeat(9 * 1024)
    );
    std::fs::write(&path, &text).unwrap();
    let err = Inventory::load(&path).unwrap_err();
    assert_eq!(code(&err), "trustmesh::inventory::too_large");
    let shown = render(&err);
    assert!(shown.contains(&path.display().to_string()), "{shown}");
    assert!(shown.contains("larger than 8 MiB"), "{shown}");
    let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
    assert_eq!(code(&err), "trustmesh::inventory::too_large");
}

#[test]
fn deep_nesting_is_refused_before_the_yaml_parser_runs() {
    for text in [
        format!(
            "version: 1\nmanager: {{name: m}}\nx: {}\n",
            "[".repeat(20_000)
        ),
        format!(
            "version: 1\nmanager: {{name: m}}\nx: {}\n",
            "{a: ".repeat(5_000)
        ),
        format!(
            "version: 1\nmanager: {{name: m}}\nx:\n  {}y\n",
            "- ".repeat(1_000)
        ),
        // Broken YAML that yaml-rust2 gives up on early still has its
        // nesting bounded.
        format!(
            "version: 1\nmanager: {{name: m}}\n\t{}\n",
            "[".repeat(20_000)
        ),
    ] {
        let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
        assert_eq!(code(&err), "trustmesh::inventory::too_deep", "{err:?}");
        let shown = render(&err);
        assert!(shown.contains("more than 64 deep"), "{shown}");
        assert!(shown.contains("[t.yaml:"), "{shown}");
        assert!(shown.len() < 2_000, "{shown}");
    }
    // What a real inventory nests stays fine.
    let ok = "version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h, groups: [x]}\nmesh:\n  - [a, a2]\n";
    let err = Inventory::from_str_named("t.yaml", ok).unwrap_err();
    assert_eq!(codes(&err), ["trustmesh::inventory::unknown_node"]);
}

#[test]
fn only_the_first_hundred_problems_are_shown_and_the_rest_counted() {
    let mut text = String::from("version: 1\nmanager: {name: m}\nworkers:\n");
    for i in 0..300 {
        let _ = writeln!(text, "  - {{name: 'bad {i}', address: 'bad {i}'}}");
    }
    let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
    assert_eq!(err.problems().len(), 100);
    assert_eq!(
        err.to_string(),
        "t.yaml has 600 errors (the first 100 are shown)"
    );
    let shown = render(&err);
    assert!(shown.contains("and 500 more not shown"), "{shown}");
    // The ones shown are the first ones, in file order.
    assert_eq!(err.problems()[0].line, 4);
    assert_eq!(err.problems()[99].line, 53);
}

#[test]
fn a_long_value_is_shown_cut_never_in_full() {
    let long = "x".repeat(200_000);
    let text = format!(
        "version: 1\nmanager: {{name: m}}\nworkers:\n  - {{name: a, address: '{long}', user: '{long}', jump: '{long}'}}\n  - {{name: '{long}', address: h}}\nmesh: [{{group: '{long}'}}]\n"
    );
    let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
    assert!(err.problems().len() >= 3, "{:?}", codes(&err));
    let shown = render(&err);
    assert!(shown.len() < 20_000, "{} bytes of report", shown.len());
    assert!(shown.contains("(200000 characters)"), "{shown}");
    assert!(shown.contains("[t.yaml:4:"), "{shown}");
    // The syntax error path too.
    let text = format!("version: 1\nmanager: {{name: m}}\nx: '{long}\n");
    let shown = render(&Inventory::from_str_named("t.yaml", &text).unwrap_err());
    assert!(shown.len() < 5_000, "{} bytes of report", shown.len());
}

#[test]
fn too_many_nodes_are_refused() {
    let text = workers(50_000, "");
    let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
    assert_eq!(codes(&err), ["trustmesh::inventory::too_many_nodes"]);
    let shown = render(&err);
    assert!(shown.contains("50,001 nodes"), "{shown}");
    assert!(shown.contains("at most 50,000"), "{shown}");
}

#[test]
fn a_mesh_too_big_is_refused_before_the_graph_is_built() {
    // 2,100 workers meshed: 2,100 forward + 2,100 × 2,099 mesh edges.
    let text = workers(2_100, "mesh: [{group: all}]\n");
    let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
    assert_eq!(codes(&err), ["trustmesh::inventory::too_many_edges"]);
    let shown = render(&err);
    assert!(shown.contains("4,410,000 trust edges"), "{shown}");
    assert!(shown.contains("at most 4,000,000"), "{shown}");
    assert_eq!(err.problems()[0].line, 2_104, "points at the mesh entry");
    // Many entries naming the same group are counted, not expanded.
    let many = "  - group: all\n".repeat(100_000);
    let text = workers(200, &format!("mesh:\n{many}"));
    let err = Inventory::from_str_named("t.yaml", &text).unwrap_err();
    assert_eq!(codes(&err), ["trustmesh::inventory::too_many_edges"]);
}

#[test]
fn the_benchmark_cluster_is_within_the_limits() {
    // benches/plan.rs: 10,000 workers in groups of 100, all reverse.
    let mut tail = String::from("reverse: all\nmesh:\n");
    for g in 0..100 {
        let _ = writeln!(tail, "  - group: g{g}");
    }
    let text = workers(10_000, &tail);
    let inv = Inventory::from_str_named("t.yaml", &text).unwrap();
    assert_eq!(TrustGraph::build(&inv).edge_count(), 1_010_000);
}

#[test]
fn a_byte_order_mark_is_accepted() {
    let text = "\u{feff}version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h}\n";
    let inv = Inventory::from_str_named("t.yaml", text).unwrap();
    assert_eq!(inv.nodes.len(), 2);
    // Places after it are unchanged.
    let err = Inventory::from_str_named("t.yaml", &text.replace("h}", "'-h'}")).unwrap_err();
    assert_eq!((err.problems()[0].line, err.problems()[0].column), (4, 24));
}

#[test]
fn a_repeated_key_is_shown_where_it_is_repeated() {
    let text =
        "version: 1\nmanager: {name: m}\nworkers:\n  - name: a\n    address: h\n    name: b\n";
    let err = Inventory::from_str_named("t.yaml", text).unwrap_err();
    assert_eq!(code(&err), "trustmesh::inventory::syntax");
    let shown = render(&err);
    assert!(shown.contains("[t.yaml:6:5]"), "{shown}");
    assert!(shown.contains("first used on line 4"), "{shown}");
    let text = "version: 1\nmanager: {name: m}\nversion: 1\n";
    let shown = render(&Inventory::from_str_named("t.yaml", text).unwrap_err());
    assert!(shown.contains("[t.yaml:3:1]"), "{shown}");
}

#[test]
fn an_ipv6_zone_id_gets_its_own_message() {
    let text = "version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: 'fe80::1%eth0'}\n";
    let err = Inventory::from_str_named("t.yaml", text).unwrap_err();
    assert_eq!(codes(&err), ["trustmesh::inventory::address_zone"]);
    let shown = render(&err);
    assert!(shown.contains("`%eth0`"), "{shown}");
    assert!(shown.contains("global or unique-local IPv6"), "{shown}");
    assert!(!shown.contains("port"), "{shown}");
    // Without the zone it is an address like any other.
    let ok = text.replace("%eth0", "");
    assert!(Inventory::from_str_named("t.yaml", &ok).is_ok());
}

/// (code, message, line, column) of every problem reported for `text`.
fn located(text: &str) -> Vec<(String, String, usize, usize)> {
    match Inventory::from_str_named("t.yaml", text) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems()
            .iter()
            .map(|p| {
                (
                    p.problem
                        .code
                        .trim_start_matches("trustmesh::inventory::")
                        .to_string(),
                    p.problem.message.clone(),
                    p.line,
                    p.column,
                )
            })
            .collect(),
    }
}

/// Values that ssh would read otherwise than trustmesh means them: each
/// refused with its own code and message, at the value, with what to do.
#[test]
fn values_that_reach_ssh_are_refused_each_with_its_own_message() {
    let manager =
        |key: &str, value: &str| format!("version: 1\nmanager:\n  name: m\n  {key}: {value}\n");
    // (text, code, words of the message, line, column)
    let cases: Vec<(String, &str, &str, usize, usize)> = vec![
        (manager("identity", "'${HOME}/.ssh/id'"), "path_variable", "ssh expands `${VAR}`", 4, 13),
        (manager("known_hosts", "'$HOME/kh'"), "path_variable", "ssh expands `${VAR}`", 4, 16),
        (manager("identity", r"'~/.ssh/id\'"), "path_backslash", "backslash", 4, 13),
        (manager("identity", r"'C:\keys\id'"), "path_backslash", "backslash", 4, 13),
        (manager("identity", "'-oProxyCommand=x'"), "path_dash", "starts with `-`", 4, 13),
        (manager("known_hosts", "'-kh'"), "path_dash", "starts with `-`", 4, 16),
        (manager("identity", "\"~/.ssh/id\\tx\""), "path_control", "control character", 4, 13),
        (manager("identity", "\"~/.ssh/\\e[31mid\""), "path_control", "control character", 4, 13),
        (manager("identity", "~/../../etc/ssh/key"), "path_parent", "`..`", 4, 13),
        (manager("known_hosts", "/home/me/.ssh/../kh"), "path_parent", "`..`", 4, 16),
        (manager("identity", "~bob/.ssh/id"), "path_tilde", "another account's home", 4, 13),
        (
            "version: 1\ncluster: a..b\nmanager: {name: m}\n".into(),
            "name_dots",
            "the cluster name `a..b` holds `..`",
            2,
            10,
        ),
        (
            "version: 1\ncluster: '-x'\nmanager: {name: m}\n".into(),
            "name",
            "not a valid cluster name",
            2,
            10,
        ),
        (
            "version: 1\ncluster: 'a$b'\nmanager: {name: m}\n".into(),
            "name",
            "not a valid cluster name",
            2,
            10,
        ),
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: w..1, address: h}\n".into(),
            "name_dots",
            "the node name `w..1` holds `..`",
            4,
            12,
        ),
        // Already kept out by their own rules; pinned here.
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: '-w', address: h}\n".into(),
            "name",
            "not a valid node name",
            4,
            12,
        ),
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: '-oProxyCommand=x'}\n"
                .into(),
            "address",
            "not a valid host name",
            4,
            24,
        ),
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: '${X}'}\n".into(),
            "address",
            "not a valid host name",
            4,
            24,
        ),
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: h, user: '-l'}\n".into(),
            "user",
            "not a valid account name",
            4,
            33,
        ),
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: h, user: 'a\\b'}\n"
                .into(),
            "user",
            "not a valid account name",
            4,
            33,
        ),
        (
            "version: 1\nmanager: {name: m}\nworkers:\n  - {name: w, address: h, jump: '-J'}\n".into(),
            "unknown_node",
            "no bastion or worker is named `-J`",
            4,
            33,
        ),
    ];
    let mut wrong = Vec::new();
    for (text, code, words, line, col) in &cases {
        let got = located(text);
        let hit = got
            .iter()
            .any(|(c, m, l, k)| c == code && m.contains(words) && l == line && k == col);
        // One value, one refusal.
        if !hit || got.len() != 1 {
            wrong.push(format!(
                "for {text:?} expected {code} ({words}) at {line}:{col}, got {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // And each says what to do.
    let err =
        Inventory::from_str_named("t.yaml", &manager("identity", "'${HOME}/.ssh/id'")).unwrap_err();
    let shown = render(&err);
    assert!(shown.contains("t.yaml:4:13"), "{shown}");
    assert!(shown.contains("write the path itself"), "{shown}");
    // `%` is fine: trustmesh writes it as `%%` for ssh.
    assert_eq!(located(&manager("identity", "'~/.ssh/id_%'")), vec![]);
    assert_eq!(
        located(&manager("identity", "/home/me/.ssh/id..old")),
        vec![]
    );
}

#[test]
fn a_node_named_like_a_public_host_is_warned_about_when_it_gets_an_alias() {
    let text = |options: &str, name: &str| {
        format!(
            "version: 1\nmanager: {{name: m}}\nworkers:\n  - {{name: w, address: 10.0.0.2}}\n  - {{name: {name}, address: 10.0.0.3}}\n{options}"
        )
    };
    let inv = Inventory::from_str_named(
        "t.yaml",
        &text("options: {ssh_config: true}\n", "github.com"),
    )
    .unwrap();
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    let w = &inv.warnings[0];
    assert_eq!(w.code, "trustmesh::inventory::public_name");
    assert_eq!(w.place, "t.yaml:5:12");
    let shown = w.to_string();
    assert!(shown.starts_with("t.yaml:5:12: "), "{shown}");
    assert!(
        shown.contains("`github.com` looks like a public domain name"),
        "{shown}"
    );
    assert!(shown.contains("an ssh alias"), "{shown}");
    let inv = Inventory::from_str_named(
        "t.yaml",
        &text("options: {hosts_file: true}\n", "mirror.fr"),
    )
    .unwrap();
    assert_eq!(inv.warnings.len(), 1, "{:?}", inv.warnings);
    assert!(inv.warnings[0].to_string().contains("/etc/hosts"));
    // The option off, or a name of its own: nothing to say.
    for (options, name) in [
        ("", "github.com"),
        ("options: {ssh_config: true}\n", "node1.lab"),
        ("options: {ssh_config: true}\n", "gpu.internal"),
        ("options: {ssh_config: true}\n", "n2"),
    ] {
        let inv = Inventory::from_str_named("t.yaml", &text(options, name)).unwrap();
        assert!(
            inv.warnings.is_empty(),
            "{options} {name}: {:?}",
            inv.warnings
        );
    }
}

/// `cluster:` not set: the cluster is named after the manager, so lines
/// marked with that name for nodes outside the inventory may be another
/// inventory's. Pruning them is said in the plan.
#[test]
fn pruning_lines_of_a_default_cluster_name_is_warned_about() {
    use support::*;
    let base = "version: 1\nmanager: {name: m, address: 10.0.0.1}\nworkers:\n  - {name: a, address: 10.0.0.2}\n  - {name: b, address: 10.0.0.3}\nmesh: [[a, b]]\n";
    let plan_of = |text: &str| {
        let inv = Inventory::from_str_named("t.yaml", text).unwrap();
        let mut live = converged(&inv);
        let ak = trustmesh::plan::NodeFiles::of(&inv, inv.find("a").unwrap()).authorized_keys;
        let acc = account_of(&mut live, &inv, "a");
        let old = content(acc, &ak).to_string();
        let line = format!("ssh-ed25519 {} trustmesh:m/gone\n", fake_key("gone"));
        set_file(acc, &ak, 0o600, &format!("{old}{line}"));
        let kh = trustmesh::plan::NodeFiles::of(&inv, inv.find("b").unwrap()).known_hosts;
        let acc = account_of(&mut live, &inv, "b");
        let old = content(acc, &kh).to_string();
        let line = format!(
            "10.0.0.9 ssh-ed25519 {} trustmesh:m/gone\n",
            fake_key("gone-host")
        );
        set_file(acc, &kh, 0o600, &format!("{old}{line}"));
        run(&inv, &live)
    };
    let p = plan_of(base);
    let said = |p: &trustmesh::plan::Plan, node: &str| {
        node_plan(p, node).warnings.iter().any(|w| {
            w.contains("`trustmesh:m/NODE` for nodes not in this inventory (gone)")
                && w.contains("`cluster:` is not set")
        })
    };
    assert!(said(&p, "a"), "{}", text(&p));
    assert!(said(&p, "b"), "{}", text(&p));
    assert!(!node_plan(&p, "a").changes.is_empty(), "{}", text(&p));
    assert!(!node_plan(&p, "b").changes.is_empty(), "{}", text(&p));
    // The cluster named: the same lines go, nothing to say.
    let p = plan_of(&format!("cluster: m\n{base}"));
    assert!(!said(&p, "a") && !said(&p, "b"), "{}", text(&p));
    assert!(!node_plan(&p, "a").changes.is_empty(), "{}", text(&p));
    // Not pruned: nothing removed, nothing to say.
    let p = plan_of(&format!("{base}options: {{prune: false}}\n"));
    assert!(!said(&p, "a") && !said(&p, "b"), "{}", text(&p));
}
