//! The trust graph of each worked example, edge by edge, and its renderers.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use trustmesh::model::graph::{render, GraphFormat};
use trustmesh::{Inventory, TrustGraph};

fn load(name: &str) -> (Inventory, TrustGraph) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventories")
        .join(name);
    let inv = Inventory::load(&path).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    let g = TrustGraph::build(&inv);
    (inv, g)
}

/// Edges as "a -> b kind" strings.
fn edges(name: &str) -> BTreeSet<String> {
    let (inv, g) = load(name);
    let list: Vec<String> = g
        .edges()
        .iter()
        .map(|e| {
            format!(
                "{} -> {} {}",
                inv.nodes[e.source].name,
                inv.nodes[e.target].name,
                e.kind.as_str()
            )
        })
        .collect();
    let set: BTreeSet<String> = list.iter().cloned().collect();
    assert_eq!(set.len(), list.len(), "{name}: an edge appears twice");
    set
}

fn forward(manager: &str, nodes: &[&str]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| format!("{manager} -> {n} forward"))
        .collect()
}

fn mesh(nodes: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for a in nodes {
        for b in nodes {
            if a != b {
                out.push(format!("{a} -> {b} mesh"));
            }
        }
    }
    out
}

#[test]
fn agilab_lab() {
    let mut want = forward(
        "manager",
        &["node1", "node2", "node3", "mac-a", "mac-b", "win1"],
    );
    want.extend([
        "node1 -> manager reverse".to_string(),
        "node2 -> manager reverse".to_string(),
    ]);
    want.extend(mesh(&["mac-a", "mac-b"]));
    assert_eq!(edges("agilab.yaml"), want.into_iter().collect());
}

#[test]
fn pi_rack_full_mesh() {
    let mut want = forward("laptop", &["pi1", "pi2", "pi3", "pi4"]);
    want.extend(mesh(&["pi1", "pi2", "pi3", "pi4"]));
    assert_eq!(edges("pi-rack.yaml"), want.into_iter().collect());
}

#[test]
fn grid5000_behind_a_bastion() {
    let nodes = ["graphite-1", "graphite-2", "graphite-3", "graphite-4"];
    let mut want = forward("laptop", &["access"]);
    want.extend(forward("laptop", &nodes));
    want.extend(mesh(&nodes));
    assert_eq!(edges("grid5000.yaml"), want.into_iter().collect());
    let (inv, g) = load("grid5000.yaml");
    let access = inv.find("access").unwrap();
    let jumps: Vec<(usize, usize)> = g.jumps().to_vec();
    assert_eq!(
        jumps,
        nodes
            .iter()
            .map(|n| (inv.find(n).unwrap(), access))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        g.jump_chain(&inv, inv.find("graphite-2").unwrap()),
        vec![access]
    );
}

#[test]
fn cloud_hpc_on_a_custom_port() {
    let nodes = ["rescale-master", "rescale-node1", "rescale-node2"];
    let mut want = forward("workstation", &nodes);
    want.push("rescale-master -> workstation reverse".into());
    want.extend(mesh(&nodes));
    assert_eq!(edges("cloud-hpc.yaml"), want.into_iter().collect());
    let (inv, _) = load("cloud-hpc.yaml");
    assert_eq!(inv.nodes[inv.find("rescale-master").unwrap()].port, 32100);
}

#[test]
fn demo_cluster() {
    let mut want = forward("manager", &["node1", "node2", "node3", "node4"]);
    want.extend([
        "node1 -> manager reverse".to_string(),
        "node3 -> manager reverse".to_string(),
    ]);
    want.extend(mesh(&["node2", "node3", "node4"]));
    assert_eq!(edges("demo.yaml"), want.into_iter().collect());
}

#[test]
fn overlapping_mesh_entries_give_each_edge_once() {
    let inv = Inventory::from_str_named(
        "t",
        "version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h, groups: [g]}\n  - {name: b, address: h, groups: [g]}\n  - {name: c, address: h}\nmesh:\n  - [a, b]\n  - [b, a, c]\n  - group: g\n  - group: all\n",
    )
    .unwrap();
    let g = TrustGraph::build(&inv);
    assert_eq!(g.edge_count(), 3 + 6);
    assert_eq!(g.outgoing(1).count(), 2);
    assert_eq!(g.incoming(0).count(), 0);
}

#[test]
fn text_rendering_is_stable() {
    let (inv, g) = load("demo.yaml");
    let mut out = Vec::new();
    render(&inv, &g, GraphFormat::Text, &mut out).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap(), @r"
    nodes (5):
      manager  manager  alice@127.0.10.1
      node1    worker   agilab@127.0.10.11
      node2    worker   agilab@127.0.10.12 port 2222
      node3    worker   agilab@127.0.10.13
      node4    worker   agilab@127.0.10.14
    edges (12):
      manager -> node1  forward  full
      manager -> node2  forward  full
      manager -> node3  forward  full
      manager -> node4  forward  full
      node1 -> manager  reverse  full
      node3 -> manager  reverse  full
      node2 -> node3    mesh     full
      node2 -> node4    mesh     full
      node3 -> node2    mesh     full
      node3 -> node4    mesh     full
      node4 -> node2    mesh     full
      node4 -> node3    mesh     full
    ");
}

/// Every example renders with Graphviz's `dot` (installed by `.ci/run`).
#[test]
fn dot_output_renders_with_graphviz() {
    for name in [
        "agilab.yaml",
        "pi-rack.yaml",
        "grid5000.yaml",
        "cloud-hpc.yaml",
        "demo.yaml",
    ] {
        let (inv, g) = load(name);
        let mut dot = Vec::new();
        render(&inv, &g, GraphFormat::Dot, &mut dot).unwrap();
        let mut child = Command::new("dot")
            .arg("-Tsvg")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Graphviz `dot` is installed (apt-get install graphviz)");
        child.stdin.take().unwrap().write_all(&dot).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name}: dot failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let svg = String::from_utf8_lossy(&out.stdout);
        for n in &inv.nodes {
            let escaped = n.name.replace('-', "&#45;");
            assert!(
                svg.contains(&escaped),
                "{name}: {} missing from the SVG",
                n.name
            );
        }
    }
}

#[test]
fn mermaid_output_names_every_edge() {
    let (inv, g) = load("agilab.yaml");
    let mut out = Vec::new();
    render(&inv, &g, GraphFormat::Mermaid, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("flowchart LR\n"));
    assert_eq!(text.matches("-->|forward|").count(), 6);
    assert_eq!(text.matches("-.->|reverse").count(), 2);
    assert_eq!(text.matches("-.->|reverse, sftp-only|").count(), 1);
    assert_eq!(text.matches("==>|mesh|").count(), 2);
}
