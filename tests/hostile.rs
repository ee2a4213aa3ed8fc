//! Hostile or mistaken inventories: each costs about what a real one does
//! and gets a clear message, never a hang, an abort or a wall of text.
//!
//! The caps are in `src/inventory/limits.rs`; these tests go through the
//! public loader only. The scaling tests compare the time of an input with
//! that of one four times larger (a generous ratio, best of several runs),
//! never an absolute time, so a loaded machine does not fail them.

use std::fmt::Write as _;

mod render;

use render::render;
use trustmesh::inventory::{Inventory, InventoryError};
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
