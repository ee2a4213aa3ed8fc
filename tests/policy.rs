//! Least-privilege edges, in memory: SFTP-only reverse edges and
//! `restrict_source` put their options on the lines trustmesh writes, an
//! admin's own options on a managed line survive a rewrite unless they
//! conflict, turning a policy off takes away only what trustmesh added, and
//! a `from=` that would shut the manager out of a node is refused.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{Change, LiveState, NodeFiles, NodeStatus, Plan};

const INV: &str = "\
version: 1
cluster: lab
defaults: { user: agilab }
manager: { name: manager, address: 10.0.0.1, user: alice }
workers:
  - { name: w01, address: 10.0.0.11 }
  - { name: w02, address: 10.0.0.12 }
  - { name: w03, address: 10.0.0.13 }
  - { name: w04, address: 10.0.0.14, source_addresses: [10.0.9.0/24] }
reverse: [w01, { worker: w02, sftp_only: true }]
mesh:
  - [w03, w04]
options: { restrict_source: true }
";

fn inv(text: &str) -> Inventory {
    Inventory::from_str_named("inventory.yaml", text).unwrap()
}

fn authorized_keys(live: &mut LiveState, inv: &Inventory, node: &str) -> String {
    let name = NodeFiles::of(inv, inv.find(node).unwrap()).authorized_keys;
    content(account_of(live, inv, node), &name).to_string()
}

fn set_authorized_keys(live: &mut LiveState, inv: &Inventory, node: &str, text: &str) {
    let name = NodeFiles::of(inv, inv.find(node).unwrap()).authorized_keys;
    set_file(account_of(live, inv, node), &name, 0o600, text);
}

/// The line of `source`'s key in `text`.
fn line_of<'t>(text: &'t str, source: &str) -> &'t str {
    let marker = format!(" trustmesh:lab/{source}");
    text.lines()
        .find(|l| l.ends_with(&marker))
        .unwrap_or_else(|| panic!("no line for {source} in:\n{text}"))
}

fn edits(p: &Plan) -> usize {
    p.nodes
        .iter()
        .flat_map(|n| &n.changes)
        .filter(|c| matches!(c, Change::EditFile(_)))
        .count()
}

#[test]
fn policies_put_their_options_on_the_lines_and_a_second_plan_is_empty() {
    let i = inv(INV);
    let mut live = converged(&i);
    let manager = authorized_keys(&mut live, &i, "manager");
    assert!(
        line_of(&manager, "w02")
            .starts_with(r#"restrict,command="internal-sftp",from="10.0.0.12" ssh-ed25519 "#),
        "{manager}"
    );
    assert!(
        line_of(&manager, "w01").starts_with(r#"from="10.0.0.11" ssh-ed25519 "#),
        "{manager}"
    );
    // A mesh line carries its source's address, or its source_addresses.
    let w04 = authorized_keys(&mut live, &i, "w04");
    assert!(
        line_of(&w04, "w03").starts_with(r#"from="10.0.0.13" "#),
        "{w04}"
    );
    let w03 = authorized_keys(&mut live, &i, "w03");
    assert!(
        line_of(&w03, "w04").starts_with(r#"from="10.0.9.0/24" "#),
        "{w03}"
    );
    // The manager's own line on every worker: from the manager's address.
    assert!(
        line_of(&w03, "manager").starts_with(r#"from="10.0.0.1" "#),
        "{w03}"
    );
}

#[test]
fn turning_restrict_source_off_removes_only_what_trustmesh_added() {
    let i = inv(INV);
    let mut live = converged(&i);
    // An admin hardens w01's managed line by hand, and adds a line of
    // their own with a from= of their own.
    let before = authorized_keys(&mut live, &i, "manager");
    let w01 = line_of(&before, "w01").to_string();
    let hardened = w01.replacen(
        r#"from="10.0.0.11" "#,
        r#"from="10.0.0.11",no-port-forwarding "#,
        1,
    );
    let own = format!(
        r#"from="10.7.7.7" ssh-ed25519 {} admin@laptop"#,
        fake_key("laptop")
    );
    let edited = before.replace(&w01, &hardened) + &own + "\n";
    set_authorized_keys(&mut live, &i, "manager", &edited);
    // With the option on, the admin's option is kept: nothing to do.
    assert!(run(&i, &live).is_empty(), "{}", text_of(&i, &live));

    let off = inv(&INV.replace("options: { restrict_source: true }", ""));
    let p = run(&off, &live);
    let after_text = text(&p);
    assert!(
        after_text.contains("options.restrict_source is off"),
        "{after_text}"
    );
    let mut after = apply_on_memory(&off, &p, &live);
    let manager = authorized_keys(&mut after, &off, "manager");
    assert!(
        line_of(&manager, "w01").starts_with("no-port-forwarding ssh-ed25519 "),
        "{manager}"
    );
    // The SFTP-only edge stays SFTP-only; only its from= goes.
    assert!(
        line_of(&manager, "w02").starts_with(r#"restrict,command="internal-sftp" ssh-ed25519 "#),
        "{manager}"
    );
    assert!(
        manager.contains(&own),
        "the admin's own line is kept byte for byte"
    );
    let w04 = authorized_keys(&mut after, &off, "w04");
    assert!(line_of(&w04, "w03").starts_with("ssh-ed25519 "), "{w04}");
    assert!(run(&off, &after).is_empty());
}

fn text_of(i: &Inventory, live: &LiveState) -> String {
    text(&run(i, live))
}

#[test]
fn an_admin_option_that_reopens_an_sftp_only_edge_is_dropped_and_said() {
    let i = inv(INV);
    let mut live = converged(&i);
    let before = authorized_keys(&mut live, &i, "manager");
    let w02 = line_of(&before, "w02").to_string();
    let widened = w02.replacen(
        "restrict,",
        "restrict,pty,port-forwarding,no-agent-forwarding,",
        1,
    );
    set_authorized_keys(&mut live, &i, "manager", &before.replace(&w02, &widened));
    let p = run(&i, &live);
    assert_eq!(edits(&p), 1, "{}", text(&p));
    let shown = text(&p);
    assert!(
        shown.contains("the option `pty` on w02's line conflicts"),
        "{shown}"
    );
    assert!(
        shown.contains("the option `port-forwarding` on w02's line conflicts"),
        "{shown}"
    );
    let mut after = apply_on_memory(&i, &p, &live);
    let manager = authorized_keys(&mut after, &i, "manager");
    assert!(
        line_of(&manager, "w02").starts_with(
            r#"restrict,command="internal-sftp",from="10.0.0.12",no-agent-forwarding ssh-ed25519 "#
        ),
        "{manager}"
    );
}

#[test]
fn an_edge_turned_sftp_only_and_back_rewrites_only_its_line() {
    let full = inv(&INV.replace("{ worker: w02, sftp_only: true }", "w02"));
    let mut live = converged(&full);
    let i = inv(INV);
    let p = run(&i, &live);
    assert_eq!(edits(&p), 1, "{}", text(&p));
    let mut after = apply_on_memory(&i, &p, &live);
    let manager = authorized_keys(&mut after, &i, "manager");
    assert!(
        line_of(&manager, "w02").starts_with("restrict,"),
        "{manager}"
    );
    let p = run(&full, &after);
    assert_eq!(edits(&p), 1, "{}", text(&p));
    let mut back = apply_on_memory(&full, &p, &after);
    assert_eq!(
        authorized_keys(&mut back, &full, "manager"),
        authorized_keys(&mut live, &full, "manager")
    );
}

#[test]
fn a_from_that_would_shut_the_manager_out_is_refused() {
    let i = inv(INV);
    let mut live = converged(&i);
    account_of(&mut live, &i, "w01").client_address = Some("10.0.0.1".into());
    assert!(run(&i, &live).is_empty());
    // The worker sees the manager's connections come from elsewhere (NAT).
    account_of(&mut live, &i, "w01").client_address = Some("172.16.0.9".into());
    let p = run(&i, &live);
    let w01 = &p.nodes[i.find("w01").unwrap()];
    match &w01.status {
        NodeStatus::Blocked(trustmesh::model::finding::Finding { reason, hint, .. }) => {
            assert!(reason.contains("172.16.0.9"), "{reason}");
            assert!(
                hint.as_ref()
                    .map(|h| h.to_string())
                    .unwrap_or_default()
                    .contains("`source_addresses:` of manager"),
                "{hint:?}"
            );
        }
        other => panic!("w01 should be blocked, is {other:?}"),
    }
    // Saying so in the inventory settles it.
    let fixed = inv(&INV.replace(
        "user: alice }",
        "user: alice, source_addresses: [10.0.0.1, 172.16.0.0/16] }",
    ));
    let p = run(&fixed, &live);
    assert!(
        matches!(p.nodes[i.find("w01").unwrap()].status, NodeStatus::Planned),
        "{}",
        text(&p)
    );
}

#[test]
fn restrict_source_needs_an_address_each_edge_can_be_restricted_to() {
    let err = |text: &str| -> String {
        match Inventory::from_str_named("inventory.yaml", text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => format!("{:?}", miette::Report::new(e)),
        }
    };
    // A host name cannot be matched by from= without UseDNS.
    let e = err(&INV.replace("address: 10.0.0.13", "address: w03.lab.example.org"));
    assert!(
        e.contains("w03's address `w03.lab.example.org` is a host name"),
        "{e}"
    );
    assert!(e.contains("source_addresses"), "{e}");
    // A node behind a jump host sees the jump host, not the manager.
    let jumped = INV.replace(
        "workers:\n",
        "bastions:\n  - { name: gw, address: 10.0.0.2 }\nworkers:\n  - { name: hidden, address: 192.168.5.5, jump: gw }\n",
    );
    let e = err(&jumped);
    assert!(e.contains("hidden is reached through gw"), "{e}");
    let ok = jumped.replace(
        "address: 10.0.0.2 }",
        "address: 10.0.0.2, source_addresses: [192.168.5.1] }",
    );
    let i = inv(&ok);
    assert_eq!(
        i.seen_from(0, i.find("hidden").unwrap()).unwrap(),
        "192.168.5.1"
    );
    // Entries are addresses or ranges.
    let e = err(&INV.replace("[10.0.9.0/24]", "[10.0.9.0/33, 'host.example']"));
    assert!(
        e.contains("`10.0.9.0/33` is not an IP address or a CIDR range"),
        "{e}"
    );
    assert!(
        e.contains("`host.example` is not an IP address or a CIDR range"),
        "{e}"
    );
    // Without restrict_source, none of it matters.
    inv(&INV
        .replace("address: 10.0.0.13", "address: w03.lab.example.org")
        .replace("options: { restrict_source: true }", ""));
}

#[test]
fn the_managers_line_on_an_sftp_node_gets_no_from_and_the_plan_says_why() {
    let i = inv(&INV.replace(
        "  - { name: w04,",
        "  - { name: w05, address: 10.0.0.15, access: sftp }\n  - { name: w04,",
    ));
    let mut live = converged(&i);
    let w05 = authorized_keys(&mut live, &i, "w05");
    assert!(
        line_of(&w05, "manager").starts_with("ssh-ed25519 "),
        "{w05}"
    );
    let shown = text(&run(&i, &fresh_cluster(&i)));
    assert!(
        shown.contains("the manager's own line on w05 gets no from="),
        "{shown}"
    );
    // The other nodes' manager lines are restricted as before.
    let w01 = authorized_keys(&mut live, &i, "w01");
    assert!(line_of(&w01, "manager").starts_with("from="), "{w01}");
}

#[test]
fn a_restriction_taken_away_is_said_in_the_plan() {
    let i = inv(INV);
    let live = converged(&i);
    let full = inv(&INV.replace("{ worker: w02, sftp_only: true }", "w02"));
    let shown = text(&run(&full, &live));
    assert!(
        shown.contains(r#"w02's line loses `restrict,command="internal-sftp"`"#),
        "{shown}"
    );
}
