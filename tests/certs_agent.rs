//! A user CA held by an ssh-agent (`certificates: { ca: CA.pub, agent:
//! ... }`, issue #22 part 2), in memory and at a fixed "now": the
//! inventory's checks placed in the file; with the agent holding the CA,
//! no CA is made, every certificate is signed by the agent (its socket in
//! the request) and the cluster converges; an agent that does not hold
//! the CA, answers nowhere, or has no socket blocks each certificate due
//! with a finding (the step, what to do) while plain edges and the
//! `cert-authority` lines still converge; `--rotate-keys @ca` is refused
//! with what to do.

mod support;

use std::sync::{Arc, Mutex};

use support::*;
use trustmesh::model::inventory::certificates::CaAgent;
use trustmesh::model::inventory::Inventory;
use trustmesh::model::state::AgentKeys;
use trustmesh::node::SignRequest;
use trustmesh::plan::{Change, LiveState, Plan, PlanScope};

const SOCKET: &str = "/tmp/ssh-test/agent.1";

fn cluster(settings: &str) -> String {
    format!(
        "version: 1\ncluster: lab\ndefaults: {{ user: agilab }}\nmanager: {{ name: manager, address: 10.0.0.1, user: alice }}\nworkers:\n\
         \x20 - {{ name: w01, address: 10.0.0.11, groups: [g] }}\n\
         \x20 - {{ name: w02, address: 10.0.0.12, groups: [g] }}\n\
         \x20 - {{ name: w03, address: 10.0.0.13, groups: [g] }}\n\
         reverse: all\nmesh:\n  - group: g\ncertificates:\n{settings}"
    )
}

const AGENT: &str = "  ca: ~/.ssh/trustmesh_ca.pub\n  agent: true\n";

/// A fresh cluster whose manager has the CA's public key, and whose
/// agent said `agent`.
fn fresh(i: &Inventory, agent: AgentKeys) -> LiveState {
    let mut live = fresh_cluster(i);
    let m = account_at(&mut live, Inventory::MANAGER);
    set_file(
        m,
        "trustmesh_ca.pub",
        0o644,
        &format!("{} trustmesh-ca:lab\n", test_ca_public()),
    );
    m.ca_agent = Some(Box::new(agent));
    live
}

fn holding() -> AgentKeys {
    AgentKeys::Holds {
        socket: SOCKET.into(),
        keys: vec![
            format!("ssh-ed25519 {}", fake_key("another")),
            test_ca_public(),
        ],
    }
}

fn issues(p: &Plan) -> Vec<&trustmesh::plan::CertIssue> {
    p.nodes
        .iter()
        .flat_map(|n| &n.changes)
        .filter_map(|c| match c {
            Change::IssueCertificate(i) => Some(i),
            _ => None,
        })
        .collect()
}

/// (line, message) of every problem of `text`, in `inventory.yaml`.
fn problems(text: &str) -> Vec<(usize, String)> {
    let err = Inventory::from_str_at("inventory.yaml", text, day(0)).unwrap_err();
    err.located()
        .into_iter()
        .map(|l| {
            assert_eq!(l.file, "inventory.yaml");
            (l.line.unwrap(), l.message)
        })
        .collect()
}

#[test]
fn the_agent_settings_are_checked_with_their_place_in_the_file() {
    // `ca` of an agent is its public key (line 13 holds `ca:`).
    let p = problems(&cluster("  ca: ~/.ssh/trustmesh_ca\n  agent: true\n"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, 13, "{p:?}");
    assert!(
        p[0].1
            .contains("with `agent:`, `ca` names the user CA's public key"),
        "{p:?}"
    );
    // A key file CA is the private key.
    let p = problems(&cluster("  ca: ~/.ssh/trustmesh_ca.pub\n"));
    assert_eq!(p[0].0, 13, "{p:?}");
    assert!(
        p[0].1.contains("is a public key: without `agent:`"),
        "{p:?}"
    );
    // A socket that cannot be one (line 14 holds `agent:`).
    for socket in ["\"\"", "agent.sock"] {
        let p = problems(&cluster(&format!(
            "  ca: ~/.ssh/ca.pub\n  agent: {socket}\n"
        )));
        assert_eq!(p.len(), 1, "{socket}: {p:?}");
        assert_eq!(p[0].0, 14, "{p:?}");
        assert!(p[0].1.contains("socket"), "{p:?}");
    }
    let p = problems(&cluster("  agent: /tmp/$SOCK\n"));
    assert_eq!(p[0].0, 13, "{p:?}");
    // `agent: true` takes the public key by default; a socket is kept.
    let on = inv(&cluster("  agent: true\n"));
    let c = on.certificates.as_ref().unwrap();
    assert_eq!(
        (c.ca.as_str(), c.agent.clone()),
        ("~/.ssh/trustmesh_ca.pub", Some(CaAgent::Environment))
    );
    let at = inv(&cluster(
        "  ca: ~/.ssh/ca.pub\n  agent: ~/.ssh/agent.sock\n",
    ));
    assert_eq!(
        at.certificates.as_ref().unwrap().agent,
        Some(CaAgent::Socket("~/.ssh/agent.sock".into()))
    );
    let off = inv(&cluster("  agent: false\n"));
    assert_eq!(off.certificates.as_ref().unwrap().agent, None);
}

#[test]
fn with_the_agent_holding_the_ca_no_ca_is_made_and_the_agent_signs() {
    let i = inv(&cluster(AGENT));
    let live = fresh(&i, holding());
    let p = plan_at(&i, &live, day(0));
    let shown = text(&p);
    assert!(!shown.contains("create user CA"), "{shown}");
    assert!(
        p.nodes
            .iter()
            .flat_map(|n| &n.changes)
            .all(|c| !matches!(c, Change::CreateUserCa { .. })),
        "{shown}"
    );
    assert!(
        shown.contains(&format!(
            "the user CA ~/.ssh/trustmesh_ca.pub is held by the ssh-agent at {SOCKET}"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("+ issue certificate for w02: ~/.ssh/id_ed25519-cert.pub (principals lab:group:g,lab:reverse, valid 1w, serial 1796428800), signed on the manager by the ssh-agent"),
        "{shown}"
    );
    let all = issues(&p);
    assert_eq!(all.len(), 3);
    for c in all {
        assert_eq!(c.ca, "~/.ssh/trustmesh_ca.pub");
        assert_eq!(c.agent.as_deref(), Some(SOCKET));
    }
    assert!(!p.incomplete());
    // The real apply in memory: the manager's door is asked to sign with
    // the agent, and the cluster converges on the CA's certificates.
    let asked: Arc<Mutex<Vec<SignRequest>>> = Arc::default();
    let log = asked.clone();
    let doors = memory_doors(&i, &live, move |name, d| {
        let log = log.clone();
        if name != "manager" {
            return d;
        }
        d.with_signer(Box::new(move |r: &SignRequest| {
            log.lock().unwrap().push(r.clone());
            sign(r)
        }))
    });
    let (report, _rt) = apply_with(&i, &p, &doors);
    assert!(!report.failed(), "{report:#?}");
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 3);
    for r in asked.iter() {
        assert_eq!(r.ca.as_plan(), "~/.ssh/trustmesh_ca.pub");
        assert_eq!(r.agent.as_ref().map(|a| a.as_plan()), Some(SOCKET));
    }
    let mut after = converge_at(&i, live, day(0));
    let w = account_of(&mut after, &i, "w01");
    let ak = content(w, "authorized_keys");
    assert!(
        ak.contains(&format!(
            "cert-authority,principals=\"lab:group:g\" {} trustmesh:lab/manager",
            test_ca_public()
        )),
        "{ak}"
    );
    let cert = ssh_key::Certificate::from_openssh(content(w, "id_ed25519-cert.pub").trim())
        .expect("a certificate");
    assert_eq!(cert.signature_key(), test_ca().public_key().key_data());
    let again = plan_at(&i, &after, day(0));
    assert!(again.is_empty() && !again.incomplete(), "{}", text(&again));
}

#[test]
fn an_agent_without_the_ca_blocks_each_certificate_and_plain_edges_converge() {
    let i = inv(&cluster(AGENT));
    let without = AgentKeys::Holds {
        socket: SOCKET.into(),
        keys: vec![format!("ssh-ed25519 {}", fake_key("another"))],
    };
    let cases = [
        (
            without,
            "does not hold the user CA ~/.ssh/trustmesh_ca.pub (SHA256:",
        ),
        (
            AgentKeys::Unreachable {
                socket: SOCKET.into(),
                reason: "Error connecting to agent: No such file or directory".into(),
            },
            "no ssh-agent answered at /tmp/ssh-test/agent.1 (ssh-add -L: Error connecting",
        ),
        (
            AgentKeys::NoSocket,
            "SSH_AUTH_SOCK is not set where trustmesh runs",
        ),
    ];
    for (agent, why) in cases {
        let live = fresh(&i, agent);
        let p = plan_at(&i, &live, day(0));
        let shown = text(&p);
        assert!(issues(&p).is_empty(), "{shown}");
        assert!(p.incomplete(), "{shown}");
        for w in ["w01", "w02", "w03"] {
            let f = node_plan(&p, w).signing_blocked.as_ref().expect(w);
            assert_eq!(f.step, "sign");
            assert!(
                f.reason.starts_with(&format!(
                    "the certificate of {w} is due (issue) and not signed: "
                )),
                "{f:?}"
            );
            assert!(f.reason.contains(why), "{f:?}");
            let hint = f.hint.as_ref().unwrap().to_string();
            assert!(hint.contains("ssh-add ~/.ssh/trustmesh_ca"), "{hint}");
        }
        assert!(
            shown.contains("blocked (sign): the certificate of w01 is due"),
            "{shown}"
        );
        assert!(shown.contains("hint: "), "{shown}");
        // Plain edges and the CA's lines are planned; the JSON names the
        // step.
        let json = serde_json::to_value(&p).unwrap();
        let w1 = json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == "w01")
            .unwrap();
        assert_eq!(w1["signing_blocked"]["step"], "sign", "{w1:#}");
        // Applied: the manager's key and the CA's line are on every worker,
        // nothing is signed, and the plan stays incomplete until the agent
        // holds the CA.
        let mut after = converge_at(&i, live, day(0));
        for w in ["w01", "w03"] {
            let acc = account_of(&mut after, &i, w);
            let ak = content(acc, "authorized_keys").to_string();
            assert!(ak.contains("trustmesh:lab/manager"), "{w}: {ak}");
            assert!(ak.contains(&test_ca_public()), "{w}: {ak}");
            assert_eq!(content(acc, "id_ed25519-cert.pub"), "", "{w}");
        }
        let again = plan_at(&i, &after, day(0));
        assert!(again.is_empty() && again.incomplete(), "{}", text(&again));
        // Once the agent holds it, the certificates are signed.
        account_at(&mut after, Inventory::MANAGER).ca_agent = Some(Box::new(holding()));
        let now = plan_at(&i, &after, day(0));
        assert_eq!(issues(&now).len(), 3, "{}", text(&now));
        assert!(!now.incomplete());
    }
}

#[test]
fn an_unreadable_ca_public_key_blocks_signing_on_the_manager() {
    let i = inv(&cluster(AGENT));
    let mut live = fresh(&i, holding());
    let m = account_at(&mut live, Inventory::MANAGER);
    m.files.retain(|f| f.name != "trustmesh_ca.pub");
    m.files.push(missing("trustmesh_ca.pub"));
    let p = plan_at(&i, &live, day(0));
    let shown = text(&p);
    assert!(issues(&p).is_empty(), "{shown}");
    assert!(!shown.contains("create user CA"), "{shown}");
    let f = node_plan(&p, "manager").signing_blocked.as_ref().unwrap();
    assert!(
        f.reason.contains("~/.ssh/trustmesh_ca.pub does not exist"),
        "{f:?}"
    );
    assert!(p.incomplete());
}

#[test]
fn rotating_an_agent_ca_is_refused_with_what_to_do() {
    let i = inv(&cluster(AGENT));
    let live = converge_at(&i, fresh(&i, holding()), day(0));
    let scope = PlanScope {
        rotate_ca: true,
        now: Some(day(0)),
        ..Default::default()
    };
    let p = trustmesh::plan::plan(&i, &trustmesh::TrustGraph::build(&i), &live, &scope);
    assert!(p.is_empty(), "{}", text(&p));
    let r = node_plan(&p, "manager").rotation_refused.as_ref().unwrap();
    assert!(
        r.finding.reason.contains("an ssh-agent holds it"),
        "{:?}",
        r.finding
    );
    let hint = r.finding.hint.as_ref().unwrap().to_string();
    assert!(hint.contains("ssh-add NEW"), "{hint}");
    assert!(p.incomplete());
}
