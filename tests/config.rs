//! options.ssh_config and options.hosts_file in the planner, on live state
//! held in memory: what is planned on each node, that an apply in memory
//! converges, and that turning the options off gives the user's files back.

mod support;

use support::*;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::Privilege;
use trustmesh::plan::{BlockRole, Change, LiveState, NodeState};

const ETC_HOSTS: &str = "127.0.0.1\tlocalhost\r\n# by hand\r\n10.9.9.9 printer\r\n";
const USER_CONFIG: &str = "# mine\nHost *\n    User nobody\n    Port 1\n";

fn load(text: &str) -> Inventory {
    Inventory::from_str_named("inventory.yaml", text).unwrap()
}

fn pi_rack(options: &str) -> Inventory {
    load(&format!(
        "version: 1\ncluster: rack\ndefaults: {{user: pi}}\nmanager: {{name: laptop, address: 10.42.0.1}}\n\
         workers:\n  - {{name: pi1, address: 10.42.0.11}}\n  - {{name: pi2, address: 10.42.0.12}}\n  - {{name: pi3, address: 10.42.0.13}}\n  - {{name: far, address: far.example.org}}\n\
         mesh:\n  - [pi1, pi2, pi3]\noptions: {{{options}}}\n"
    ))
}

/// Converge by applies in memory (at most three rounds: keys come first).
fn converge(inv: &Inventory, mut live: LiveState) -> LiveState {
    for _ in 0..3 {
        let p = run(inv, &live);
        if p.is_empty() {
            return live;
        }
        live = apply_on_memory(inv, &p, &live);
    }
    let p = run(inv, &live);
    assert!(p.is_empty(), "{}", text(&p));
    live
}

/// A fresh rack where /etc/hosts was read everywhere: the manager is not
/// root, pi1 is root, pi2 has sudo -n, pi3 has neither; the manager has a
/// config of its own.
fn rack_live(inv: &Inventory) -> LiveState {
    let mut live = fresh_cluster(inv);
    for id in 0..inv.nodes.len() {
        let a = account_at(&mut live, id);
        set_file(a, "/etc/hosts", 0o644, ETC_HOSTS);
        a.privilege = Some(Privilege::None);
    }
    account_at(&mut live, 1).privilege = Some(Privilege::Root);
    account_at(&mut live, 2).privilege = Some(Privilege::Sudo);
    set_file(account_at(&mut live, 0), "config", 0o600, USER_CONFIG);
    live
}

fn blocks(p: &trustmesh::plan::Plan, node: &str) -> Vec<(BlockRole, bool)> {
    node_plan(p, node)
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::WriteBlock(b) => Some((b.role, b.sudo)),
            _ => None,
        })
        .collect()
}

#[test]
fn aliases_and_hosts_are_planned_applied_and_then_nothing_changes() {
    let inv = pi_rack("ssh_config: true, hosts_file: true");
    let live = rack_live(&inv);
    let p = run(&inv, &live);
    let t = text(&p);
    // The manager: the aliases file (after its folder), the Include.
    assert!(t.contains("+ dir ~/.ssh/config.d (0700)"), "{t}");
    assert!(
        t.contains("+ ~/.ssh/config.d/trustmesh-rack (new file, 0600: ssh aliases)"),
        "{t}"
    );
    assert!(t.contains("+ Host pi1\n"), "{t}");
    assert!(
        t.contains("~ ~/.ssh/config (the Include of the aliases)"),
        "{t}"
    );
    assert!(t.contains("+ Include config.d/trustmesh-rack"), "{t}");
    assert_eq!(
        blocks(&p, "laptop"),
        [
            (BlockRole::SshConfigFile, false),
            (BlockRole::SshConfigInclude, false)
        ]
    );
    // Root writes /etc/hosts itself, sudo -n for pi2, pi3 gets the command.
    assert_eq!(
        blocks(&p, "pi1").last(),
        Some(&(BlockRole::HostsBlock, false))
    );
    assert_eq!(
        blocks(&p, "pi2").last(),
        Some(&(BlockRole::HostsBlock, true))
    );
    assert!(!blocks(&p, "pi3").contains(&(BlockRole::HostsBlock, false)));
    assert!(
        t.contains("/etc/hosts is not written here: pi is not root"),
        "{t}"
    );
    assert!(t.contains("sudo tee -a /etc/hosts"), "{t}");
    assert!(t.contains("10.42.0.13 pi3"), "{t}");
    // A host name address is not written, and said so.
    assert!(t.contains("far has a host name for address"), "{t}");
    assert!(
        !t.contains(" far\n") || !t.contains("far.example.org far"),
        "{t}"
    );
    // pi1's aliases: its mesh peers only.
    let live = converge(&inv, live);
    let pi1 = match &live.nodes[1] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    let aliases = content(pi1, "config.d/trustmesh-rack");
    assert!(aliases.contains("Host pi2\n    HostName 10.42.0.12\n    Port 22\n    User pi\n    IdentityFile ~/.ssh/id_ed25519\n    IdentitiesOnly yes\n    ProxyCommand none\n"), "{aliases}");
    assert!(
        !aliases.contains("Host laptop"),
        "no edge to the manager: {aliases}"
    );
    let hosts = content(pi1, "/etc/hosts");
    assert!(
        hosts.starts_with(ETC_HOSTS),
        "the rest is kept byte for byte: {hosts:?}"
    );
    assert!(hosts.ends_with("# BEGIN trustmesh:rack/pi1\r\n10.42.0.1 laptop\r\n10.42.0.11 pi1\r\n10.42.0.12 pi2\r\n10.42.0.13 pi3\r\n# END trustmesh:rack/pi1\r\n"), "{hosts:?}");
    let laptop = match &live.nodes[0] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    let config = content(laptop, "config");
    assert_eq!(
        config,
        // Above the comment written on top of the user's Host block.
        format!("# BEGIN trustmesh:rack/laptop\nInclude config.d/trustmesh-rack\n# END trustmesh:rack/laptop\n{USER_CONFIG}")
    );

    // Off again (prune): the block and the file go, the user's bytes stay.
    let off = pi_rack("ssh_config: false, hosts_file: false");
    let p = run(&off, &live);
    let t = text(&p);
    assert!(
        t.contains("- ~/.ssh/config.d/trustmesh-rack (file removed: ssh aliases)"),
        "{t}"
    );
    assert!(t.contains("~/.ssh/config (block removed"), "{t}");
    assert_eq!(
        blocks(&p, "laptop"),
        [
            (BlockRole::SshConfigInclude, false),
            (BlockRole::SshConfigFile, false)
        ],
        "the Include goes first"
    );
    let live = converge(&off, live);
    let laptop = match &live.nodes[0] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    assert_eq!(content(laptop, "config"), USER_CONFIG);
    // Gone: read back (as the probe reads it) with no stat.
    assert!(laptop
        .file("config.d/trustmesh-rack")
        .and_then(|f| f.stat.as_ref())
        .is_none());
    let pi1 = match &live.nodes[1] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    assert_eq!(content(pi1, "/etc/hosts"), ETC_HOSTS);
}

#[test]
fn a_file_not_written_by_trustmesh_and_a_broken_block_are_left_alone() {
    let inv = pi_rack("ssh_config: true");
    let mut live = fresh_cluster(&inv);
    set_file(
        account_at(&mut live, 0),
        "config.d/trustmesh-rack",
        0o600,
        "Host mine\n",
    );
    set_file(
        account_at(&mut live, 1),
        "config",
        0o600,
        "# BEGIN trustmesh:rack/pi1\nInclude x\n",
    );
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(blocks(&p, "laptop").is_empty(), "{t}");
    assert!(
        t.contains("~/.ssh/config.d/trustmesh-rack exists and was not written by trustmesh"),
        "{t}"
    );
    assert!(blocks(&p, "pi1").is_empty(), "{t}");
    assert!(
        t.contains("line 1 begins trustmesh's block, which never ends"),
        "{t}"
    );
    // A config.d that is a link is not written through.
    let mut live = fresh_cluster(&inv);
    let a = account_at(&mut live, 2);
    a.files.retain(|f| f.name != "config.d");
    a.files.push(trustmesh::model::state::LiveFile {
        name: "config.d".into(),
        stat: Some(trustmesh::model::state::FileStat {
            kind: trustmesh::model::state::FileKind::Symlink,
            mode: 0o777,
            uid: UID,
            gid: UID,
        }),
        content: None,
        unreadable: false,
    });
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(blocks(&p, "pi2").is_empty(), "{t}");
    assert!(t.contains("~/.ssh/config.d is not a folder"), "{t}");
}

#[test]
fn a_node_behind_a_jump_gets_proxyjump_or_is_left_out_with_a_warning() {
    let inv = load(
        "version: 1\ncluster: g\ndefaults: {user: u}\nmanager: {name: m, address: 10.0.0.1}\n\
         bastions:\n  - {name: gw, address: 10.0.0.2, port: 2200}\n\
         workers:\n  - {name: hidden, address: 198.18.0.2, jump: gw}\n  - {name: w1, address: 10.0.0.3}\n\
         mesh:\n  - [hidden, w1]\noptions: {ssh_config: true}\n",
    );
    let live = converge(&inv, fresh_cluster(&inv));
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(
        t.contains("no ssh alias for hidden: it is reached through gw, and w1 has no edge to it"),
        "{t}"
    );
    let m = match &live.nodes[0] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    let aliases = content(m, "config.d/trustmesh-g");
    assert!(
        aliases.contains("Host gw\n    HostName 10.0.0.2\n    Port 2200\n"),
        "{aliases}"
    );
    assert!(aliases.contains("Host hidden\n    HostName 198.18.0.2\n    Port 22\n    User u\n    IdentityFile ~/.ssh/id_ed25519\n    IdentitiesOnly yes\n    ProxyJump gw\n"), "{aliases}");
    let w1 = match &live.nodes[3] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    assert!(!content(w1, "config.d/trustmesh-g").contains("hidden"));
    // hidden reaches w1 directly.
    let hidden = match &live.nodes[2] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    assert!(content(hidden, "config.d/trustmesh-g").contains("Host w1\n"));
}

#[test]
fn an_include_block_after_a_host_line_is_moved_up_and_said_so() {
    let inv = pi_rack("ssh_config: true");
    let live = converge(&inv, fresh_cluster(&inv));
    let mut live = live;
    let late = "Host a\n    Port 2\n# BEGIN trustmesh:rack/laptop\nInclude config.d/trustmesh-rack\n# END trustmesh:rack/laptop\n";
    set_file(account_at(&mut live, 0), "config", 0o600, late);
    let p = run(&inv, &live);
    let t = text(&p);
    assert!(
        t.contains("~ ~/.ssh/config (the Include of the aliases)\n      (moved above the first Host or Match line)"),
        "{t}"
    );
    let live = converge(&inv, live);
    let laptop = match &live.nodes[0] {
        NodeState::Read { account, .. } => account,
        _ => unreachable!(),
    };
    assert_eq!(
        content(laptop, "config"),
        "# BEGIN trustmesh:rack/laptop\nInclude config.d/trustmesh-rack\n# END trustmesh:rack/laptop\nHost a\n    Port 2\n"
    );
}

/// Under restrict_source a worker's edges go direct, as the from= on the
/// target's line expects: its alias for a node behind a jump worker has
/// no ProxyJump (through the jump the target would see the jump's
/// address). The manager's alias still goes through the jump.
#[test]
fn worker_aliases_go_direct_under_restrict_source() {
    let text = |restrict: bool| {
        format!(
            "version: 1\ncluster: g\ndefaults: {{user: u}}\nmanager: {{name: m, address: 10.0.0.1}}\n\
             workers:\n  - {{name: gwk, address: 10.0.0.2, source_addresses: [10.0.0.2, 198.18.0.1]}}\n  \
             - {{name: hidden, address: 198.18.0.2, jump: gwk}}\n  - {{name: w1, address: 10.0.0.3}}\n\
             mesh:\n  - [hidden, w1, gwk]\noptions: {{ssh_config: true, restrict_source: {restrict}}}\n"
        )
    };
    let aliases = |restrict: bool, node: usize| {
        let inv = load(&text(restrict));
        let live = converge(&inv, fresh_cluster(&inv));
        match &live.nodes[node] {
            NodeState::Read { account, .. } => content(account, "config.d/trustmesh-g").to_string(),
            _ => unreachable!(),
        }
    };
    let hidden_block = |a: &str| {
        let start = a.find("Host hidden\n").unwrap_or_else(|| panic!("{a}"));
        a[start..].split("\nHost ").next().unwrap().to_string()
    };
    // w1 (node 3) reaches hidden through gwk without the option, direct with it.
    assert!(hidden_block(&aliases(false, 3)).contains("ProxyJump gwk"));
    let direct = hidden_block(&aliases(true, 3));
    assert!(!direct.contains("ProxyJump"), "{direct}");
    // The manager (node 0) goes through the jump either way.
    assert!(hidden_block(&aliases(true, 0)).contains("ProxyJump gwk"));
}
