//! options.ssh_config and options.hosts_file against real sshd hosts on
//! the testbed: `ssh <name>` works by name (port, user and jump from the
//! alias), the user's own `~/.ssh/config` keeps its bytes and does not win
//! over the aliases, `/etc/hosts` gets the cluster's names on a node whose
//! account is root and a command to run elsewhere, a saved plan is applied
//! as planned, and a second apply changes nothing.
#![cfg(feature = "live")]

mod live;

use live::*;

/// The manager's own config: a `Host *` that would send every connection
/// to port 1 as nobody, through a jump host that does not exist, if it
/// won.
const USER_CONFIG: &str = "# my own settings\nHost *\n    User nobody\n    Port 1\n    ProxyJump nobody@192.0.2.9:1\n\nHost elsewhere\n    HostName 192.0.2.1\n";

use live::stdout_of as ok;

#[test]
fn ssh_by_name_from_the_manager_through_the_bastion_and_from_a_mesh_node() {
    let live = start(vec![
        HostSpec::new("node1", &[WORKER_USER]).port(2222),
        HostSpec::new("node2", &[WORKER_USER]),
        HostSpec::new("gw", &[WORKER_USER]),
        HostSpec::new("behind", &[WORKER_USER]).behind("gw"),
    ]);
    live.manager_keygen();
    for w in ["node1", "node2", "gw", "behind"] {
        live.authorize_manager_on(w);
    }
    live.cluster
        .write_file(
            "manager",
            MANAGER_USER,
            ".ssh/config",
            USER_CONFIG.as_bytes(),
            0o600,
        )
        .unwrap();
    let h = |n: &str| live.cluster.host(n).clone();
    let (node1, node2, gw, behind) = (h("node1"), h("node2"), h("gw"), h("behind"));
    let inventory = |options: &str| {
        format!(
            "version: 1\ncluster: lab\ndefaults: {{user: {WORKER_USER}}}\nmanager: {{name: manager, address: {}, user: {MANAGER_USER}}}\n\
             bastions:\n  - {{name: gw, address: {}, port: {}}}\n\
             workers:\n  - {{name: node1, address: {}, port: {}}}\n  - {{name: node2, address: {}, port: {}}}\n  - {{name: behind, address: {}, port: {}, jump: gw}}\n\
             mesh:\n  - [node1, node2]\noptions: {{{options}}}\n",
            live.addr("manager"),
            gw.address,
            gw.port,
            node1.address,
            node1.port,
            node2.address,
            node2.port,
            behind.address,
            behind.port,
        )
    };
    live.write_inventory(&inventory("ssh_config: true"));

    let plan = live
        .run(&["plan", "--accept-new-host-keys"])
        .expect_exit(0)
        .stdout;
    assert!(
        plan.contains("+ ~/.ssh/config.d/trustmesh-lab (new file, 0600: ssh aliases)"),
        "{plan}"
    );
    assert!(plan.contains("+ Include config.d/trustmesh-lab"), "{plan}");
    assert!(plan.contains("+     ProxyJump gw"), "{plan}");
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);

    // From the manager, by name: port and user from the alias (the user's
    // `Host *` says port 1 and nobody), the hidden node through gw.
    let on_manager = |cmd: &str| ok(&live.run_as("manager", MANAGER_USER, cmd));
    for (name, port) in [("node1", node1.port), ("node2", 22), ("behind", 22)] {
        let out = on_manager(&format!(
            "ssh -o BatchMode=yes -o ConnectTimeout=5 {name} hostname"
        ));
        assert_eq!(out.trim(), name);
        let g = on_manager(&format!("ssh -G {name}"));
        assert!(g.contains(&format!("\nport {port}\n")), "{name}: {g}");
        assert!(
            g.contains(&format!("\nuser {WORKER_USER}\n")),
            "{name}: {g}"
        );
        assert!(g.contains("\nidentitiesonly yes\n"), "{name}: {g}");
        if name != "behind" {
            // The user's jump does not catch it.
            assert!(!g.contains("\nproxyjump "), "{name}: {g}");
        }
    }
    let g = on_manager("ssh -G behind");
    assert!(
        g.contains(&format!("\nhostname {}\n", behind.address)),
        "{g}"
    );
    assert!(g.contains("\nproxyjump gw\n"), "{g}");
    // The user's config: their bytes, our block above their Host *.
    let config = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/config")
        .unwrap();
    assert_eq!(
        String::from_utf8(config).unwrap(),
        format!("# BEGIN trustmesh:lab/manager\nInclude config.d/trustmesh-lab\n# END trustmesh:lab/manager\n{USER_CONFIG}")
    );
    // What the user's Host * still says for a host of their own.
    let g = on_manager("ssh -G elsewhere");
    assert!(
        g.contains("\nport 1\n")
            && g.contains("\nuser nobody\n")
            && g.contains("\nproxyjump nobody@[192.0.2.9]:1\n"),
        "{g}"
    );

    // From a mesh node, by name.
    let out = ok(&live.run_as(
        "node1",
        WORKER_USER,
        "ssh -o BatchMode=yes -o ConnectTimeout=5 node2 hostname",
    ));
    assert_eq!(out.trim(), "node2");
    let g = ok(&live.run_as("node2", WORKER_USER, "ssh -G node1"));
    assert!(g.contains(&format!("\nport {}\n", node1.port)), "{g}");
    // node1 has no edge to gw: no alias for behind there.
    let aliases = live
        .cluster
        .read_file("node1", WORKER_USER, ".ssh/config.d/trustmesh-lab")
        .unwrap();
    assert!(!String::from_utf8_lossy(&aliases).contains("behind"));

    // A second run changes nothing.
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);

    // Off again, through a saved plan: our block and our file go, the
    // user's bytes stay.
    live.write_inventory(&inventory("ssh_config: false"));
    let saved = live
        .run(&["plan", "--out", "off.plan"])
        .expect_exit(0)
        .stdout;
    assert!(
        saved.contains("- ~/.ssh/config.d/trustmesh-lab (file removed: ssh aliases)"),
        "{saved}"
    );
    live.run(&["apply", "--plan", "off.plan"]).expect_exit(0);
    let config = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/config")
        .unwrap();
    assert_eq!(String::from_utf8(config).unwrap(), USER_CONFIG);
    assert!(live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/config.d/trustmesh-lab")
        .is_none());
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
}

#[test]
fn etc_hosts_is_written_as_root_and_a_command_is_printed_elsewhere() {
    let live = start(vec![
        HostSpec::new("r1", &["root"]),
        HostSpec::new("node2", &[WORKER_USER]),
    ]);
    live.manager_keygen();
    live.authorize_manager_on("node2");
    let key = live
        .cluster
        .read_file("manager", MANAGER_USER, ".ssh/id_ed25519.pub")
        .unwrap();
    live.cluster
        .write_file("r1", "root", ".ssh/authorized_keys", &key, 0o600)
        .unwrap();
    let (r1, node2) = (
        live.cluster.host("r1").clone(),
        live.cluster.host("node2").clone(),
    );
    let etc_hosts = |host: &str, user: &str| {
        ok(&live.run_as(
            host,
            user,
            "ls -ln /etc/hosts | awk '{print $1, $3, $4}'; cat /etc/hosts",
        ))
    };
    let before_r1 = etc_hosts("r1", "root");
    let before_node2 = etc_hosts("node2", WORKER_USER);
    let inv = format!(
        "version: 1\ncluster: lab\ndefaults: {{user: {WORKER_USER}}}\nmanager: {{name: manager, address: {}, user: {MANAGER_USER}}}\n\
         workers:\n  - {{name: r1, address: {}, port: {}, user: root}}\n  - {{name: node2, address: {}, port: {}}}\n\
         options: {{hosts_file: true}}\n",
        live.addr("manager"),
        r1.address,
        r1.port,
        node2.address,
        node2.port,
    );
    live.write_inventory(&inv);
    // Planned, saved, and applied from the saved plan.
    let plan = live
        .run(&["plan", "--accept-new-host-keys", "--out", "hosts.plan"])
        .expect_exit(0)
        .stdout;
    assert!(
        plan.contains("~ /etc/hosts (the cluster's names)"),
        "{plan}"
    );
    assert!(
        plan.contains(&format!("+ {} node2", node2.address)),
        "{plan}"
    );
    // node2's account is not root and has no sudo: the command instead.
    assert!(
        plan.contains("/etc/hosts is not written here: agilab is not root"),
        "{plan}"
    );
    assert!(plan.contains("# BEGIN trustmesh:lab/node2"), "{plan}");
    live.run(&["apply", "--accept-new-host-keys", "--plan", "hosts.plan"])
        .expect_exit(0);

    // r1 resolves its peers by name; its /etc/hosts is the old one, mode
    // and owner included, with the block at the end.
    let got = ok(&live.run_as("r1", "root", "getent hosts node2"));
    assert_eq!(
        got.split_whitespace().collect::<Vec<_>>(),
        [node2.address.to_string(), "node2".to_string()]
    );
    let after_r1 = etc_hosts("r1", "root");
    let block = format!(
        "# BEGIN trustmesh:lab/r1\n{} manager\n{} r1\n{} node2\n# END trustmesh:lab/r1\n",
        live.addr("manager"),
        r1.address,
        node2.address
    );
    assert_eq!(after_r1, format!("{before_r1}{block}"));
    // Nothing changed on node2, nor in the machine's own /etc/hosts.
    assert_eq!(etc_hosts("node2", WORKER_USER), before_node2);
    assert!(!std::fs::read_to_string("/etc/hosts")
        .unwrap()
        .contains("trustmesh:lab"));
    // A second apply changes nothing.
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    let again = live.run(&["apply", "--yes"]).expect_exit(0).stdout;
    assert!(!again.contains("done"), "{again}");
    assert_eq!(etc_hosts("r1", "root"), after_r1);
}
