use super::*;
use crate::Inventory;

/// The text validates as an inventory; its nodes by name.
#[track_caller]
fn valid(text: &str) -> Inventory {
    Inventory::from_str_named("imported.yaml", text)
        .unwrap_or_else(|e| panic!("does not validate: {e:?}\n{text}"))
}

fn node<'a>(inv: &'a Inventory, name: &str) -> &'a crate::model::inventory::Node {
    &inv.nodes[inv.find(name).unwrap_or_else(|| panic!("{name} missing"))]
}

const SSH_CONFIG: &str = "\
# my cluster
Host *
    ServerAliveInterval 30
    User everyone

Host gw
    HostName gw.example.org
    User jdoe

Host node1 n1
    HostName 10.0.0.11
    Port 2222
    User=agilab
    ForwardAgent yes

Host node2
    HostName 10.0.0.12
    ProxyJump gw

Host node3
    HostName %h
    ProxyJump ops@hop.example.org:2200

Host db-*.prod !db-9.prod
    User dba

Match host node4 exec \"true\"
    User other

Host node4
    Hostname \"10.0.0.14\"

Host node5
    ProxyCommand ssh -W %h:%p gw
Include ~/.ssh/more.conf
";

#[test]
fn ssh_config_hosts_jumps_and_what_is_skipped() {
    let imported = ssh_config(SSH_CONFIG, "~/.ssh/config");
    let text = emit(&imported);
    let inv = valid(&text);
    let n1 = node(&inv, "node1");
    assert_eq!(n1.address.as_deref(), Some("10.0.0.11"));
    assert_eq!(n1.port, 2222);
    assert_eq!(n1.user.as_deref(), Some("agilab"));
    assert_eq!(node(&inv, "node2").jump, inv.find("gw"));
    assert_eq!(node(&inv, "node3").address.as_deref(), Some("node3"));
    // A jump that is not an alias becomes a bastion of its own.
    let hop = node(&inv, "hop.example.org");
    assert_eq!((hop.user.as_deref(), hop.port), (Some("ops"), 2200));
    assert_eq!(node(&inv, "node3").jump, inv.find("hop.example.org"));
    assert_eq!(node(&inv, "node4").address.as_deref(), Some("10.0.0.14"));
    assert!(inv.find("node5").is_some());
    for role_of in ["gw", "hop.example.org"] {
        assert_eq!(
            node(&inv, role_of).role,
            crate::model::inventory::Role::Bastion,
            "{role_of}"
        );
    }
    // Every skipped thing is said, with its line.
    for said in [
        "line 2: `Host *`",
        "line 10: alias `n1`",
        "node1: not mapped: forwardagent",
        "line 24: `Host db-*.prod !db-9.prod`: a pattern",
        "line 27: `Match host node4",
        "line 34: node5: `ProxyCommand`",
        "line 35: `Include ~/.ssh/more.conf`",
    ] {
        assert!(text.contains(said), "`{said}` not in:\n{text}");
    }
    // No host made of a pattern.
    assert!(!text.contains("name: db-"), "{text}");
}

#[test]
fn ssh_config_first_value_wins_and_names_are_made_valid() {
    let text = emit(&ssh_config(
        "Host web\n  Port 22\nHost web\n  Port 2200\n  User late\nHost \"odd name\"\n  HostName 10.1.1.1\n",
        "cfg",
    ));
    let inv = valid(&text);
    let web = node(&inv, "web");
    assert_eq!((web.port, web.user.as_deref()), (22, Some("late")));
    assert!(inv.find("odd-name").is_some(), "{text}");
    assert!(text.contains("`odd name` is named `odd-name`"), "{text}");
}

const ANSIBLE_INI: &str = "\
mgmt ansible_host=10.0.0.5

[web]
web[01:03] ansible_user=deploy
web9 ansible_host=10.0.1.9 ansible_port=2201 ansible_python_interpreter=/usr/bin/python3

[db]
db1 ansible_host=10.0.2.1 ansible_ssh_port=2222

[compute:children]
web
db

[db:vars]
ansible_user=postgres

[all:vars]
ansible_user=ops
";

#[test]
fn ansible_ini_hosts_groups_ports_and_vars() {
    let text = emit(&ansible(ANSIBLE_INI, "hosts.ini").unwrap());
    let inv = valid(&text);
    assert_eq!(inv.workers().count(), 6, "{text}");
    let web9 = node(&inv, "web9");
    assert_eq!(
        (web9.address.as_deref(), web9.port),
        (Some("10.0.1.9"), 2201)
    );
    assert_eq!(web9.user.as_deref(), Some("ops"));
    assert_eq!(node(&inv, "web02").user.as_deref(), Some("deploy"));
    let db1 = node(&inv, "db1");
    assert_eq!((db1.port, db1.user.as_deref()), (2222, Some("postgres")));
    assert_eq!(node(&inv, "mgmt").address.as_deref(), Some("10.0.0.5"));
    assert!(text.contains("groups: [compute, web]"), "{text}");
    assert!(text.contains("groups: [compute, db]"), "{text}");
    assert!(
        text.contains("web9: variable `ansible_python_interpreter` not mapped"),
        "{text}"
    );
    assert!(text.contains("defaults:\n  user: ops"), "{text}");
}

const ANSIBLE_YAML: &str = "\
all:
  vars:
    ansible_user: ops
  hosts:
    mgmt:
      ansible_host: 10.0.0.5
  children:
    gpu:
      hosts:
        gpu[1:2]:
          ansible_port: 2022
        gpu9:
          ansible_host: 10.0.3.9
          ansible_become: true
      vars:
        ansible_user: cuda
    storage:
      hosts:
        nas1:
          ansible_host: 10.0.4.1
";

#[test]
fn ansible_yaml_hosts_groups_ports_and_vars() {
    let text = emit(&ansible(ANSIBLE_YAML, "hosts.yml").unwrap());
    let inv = valid(&text);
    assert_eq!(inv.workers().count(), 5, "{text}");
    let gpu2 = node(&inv, "gpu2");
    assert_eq!((gpu2.port, gpu2.user.as_deref()), (2022, Some("cuda")));
    assert_eq!(node(&inv, "nas1").user.as_deref(), Some("ops"));
    assert!(text.contains("groups: [gpu]"), "{text}");
    assert!(text.contains("groups: [storage]"), "{text}");
    assert!(
        text.contains("gpu9: variable `ansible_become` not mapped"),
        "{text}"
    );
}

#[test]
fn a_broken_yaml_inventory_is_an_error_not_an_empty_one() {
    assert!(ansible("all:\n  hosts: [unclosed\n", "bad.yml").is_err());
}

#[test]
fn hostile_values_stay_quoted_and_comments_stay_one_line() {
    let mut imported = ssh_config("Host h1\n  HostName 10.0.0.1\n", "x");
    imported.draft.workers[0].user = Some("a: b # c".into());
    imported.skipped.push(Skipped {
        line: Some(1),
        what: "evil\nversion: 2\u{1b}[2J\u{202e}".into(),
    });
    let text = emit(&imported);
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
    assert!(!text.contains("\nversion: 2"), "{text}");
    // `a: b # c` is not a valid account name: the value reaches the
    // validator intact (and is refused there), not cut by YAML.
    let e = Inventory::from_str_named("i.yaml", &text).unwrap_err();
    assert!(format!("{e:?}").contains("a: b # c"), "{e:?}");
}

#[test]
fn the_starter_inventory_validates() {
    valid(STARTER);
}

#[test]
fn node_names_are_made_valid() {
    assert_eq!(node_name("web 1").as_deref(), Some("web-1"));
    assert_eq!(node_name("..a..b").as_deref(), Some("a.b"));
    assert_eq!(node_name("-x").as_deref(), Some("x"));
    assert_eq!(node_name("*"), None);
}
