#![cfg(feature = "live")]
//! Time-limited edges on real sshd hosts: a reverse edge whose `expires:`
//! is a minute ahead works, then sshd refuses it once the minute is over
//! (the line's `expiry-time`), `verify` reports it `expired` without
//! failing, and the next apply removes its line; an edge whose date is a
//! year ahead works and `plan` shows its expiry.

mod live;

use std::time::{Duration, Instant};

use live::*;
use trustmesh::model::inventory::expiry::{system_now, unix_seconds, Expiry};

fn authorized_keys(live: &Live, host: &str) -> String {
    String::from_utf8(
        live.cluster
            .read_file(host, account(host), ".ssh/authorized_keys")
            .unwrap_or_default(),
    )
    .unwrap()
}

fn line_of(text: &str, source: &str) -> Option<String> {
    let marker = format!(" trustmesh:manager/{source}");
    text.lines()
        .find(|l| l.ends_with(&marker))
        .map(str::to_string)
}

#[test]
fn an_edge_works_until_it_expires_then_is_refused_reported_and_removed() {
    let now = unix_seconds(system_now());
    // A date a year ahead: the end of that day, UTC.
    let year = Expiry::from_unix(now + 365 * 86400).rfc3339()[..10].to_string();
    let year_end = Expiry::parse(&year).unwrap();
    let extra = format!("reverse:\n  - node1\n  - {{ worker: node2, expires: '{year}' }}\n");
    let live = provisioned_with(vec![worker("node1"), worker("node2")], &extra);

    // The plan shows the expiry on node2's line, before anything is made.
    let plan = live
        .run(&["plan", "--json", "--accept-new-host-keys"])
        .expect_exit(0)
        .json();
    let ak = plan_change(&plan, "manager", "edit_file", "~/.ssh/authorized_keys");
    let node2 = ak["add"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["node"] == "node2")
        .unwrap_or_else(|| panic!("no line for node2: {plan:#}"));
    assert_eq!(node2["options"], year_end.option().as_str(), "{plan:#}");
    let text = live
        .run(&["plan", "--accept-new-host-keys"])
        .expect_exit(0)
        .stdout;
    assert!(
        text.contains(&format!("+ {} ssh-ed25519", year_end.option())),
        "{text}"
    );
    live.run(&["apply", "--accept-new-host-keys", "--yes"])
        .expect_exit(0);
    let manager = authorized_keys(&live, "manager");
    assert!(
        line_of(&manager, "node2")
            .unwrap()
            .starts_with(&format!("{} ssh-ed25519 ", year_end.option())),
        "{manager}"
    );
    assert!(live.can_ssh("node2", "manager"));
    assert!(live.can_ssh("node1", "manager"));

    // node1's edge now ends a minute from now: only its line changes.
    let end = Expiry::from_unix(unix_seconds(system_now()) + 60);
    let extra = format!(
        "reverse:\n  - {{ worker: node1, expires: '{}' }}\n  - {{ worker: node2, expires: '{year}' }}\n",
        end.rfc3339()
    );
    live.write_inventory_of(&["node1", "node2"], &extra);
    live.run(&["apply", "--yes"]).expect_exit(0);
    let after = authorized_keys(&live, "manager");
    let node1_line = line_of(&after, "node1").unwrap();
    assert!(
        node1_line.starts_with(&format!("{} ssh-ed25519 ", end.option())),
        "{after}"
    );
    assert_eq!(line_of(&after, "node2"), line_of(&manager, "node2"));
    assert!(live.can_ssh("node1", "manager"), "before its end");

    // Wait for the clock to pass the end (bounded), then try once: sshd
    // refuses the key.
    let deadline = Instant::now() + Duration::from_secs(180);
    while unix_seconds(system_now()) <= end.unix() + 1 {
        assert!(
            Instant::now() < deadline,
            "the clock did not pass {end} in time"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !live.can_ssh("node1", "manager"),
        "sshd let an expired key in"
    );
    assert!(live.can_ssh("node2", "manager"));

    // verify: expired, not a failure.
    let ran = live.run(&["verify", "--json"]).expect_exit(0);
    let doc = ran.json();
    let e = verify_edge(&doc, "node1", "manager");
    assert_eq!(e["status"], "expired", "{doc:#}");
    assert_eq!(e["expires"], end.rfc3339().as_str(), "{doc:#}");
    assert_eq!(verify_edge(&doc, "node2", "manager")["status"], "ok");
    assert_eq!(doc["summary"]["expired"], 1, "{doc:#}");
    let text = live.run(&["verify"]).expect_exit(0).stdout;
    assert!(text.contains("expired"), "{text}");

    // The next plan removes the line and says why; apply does it.
    let plan = live.run(&["plan", "--json"]).expect_exit(0).json();
    let ak = plan_change(&plan, "manager", "edit_file", "~/.ssh/authorized_keys");
    let removed = ak["remove"].to_string();
    assert!(removed.contains("trustmesh:manager/node1"), "{plan:#}");
    assert!(!removed.contains("trustmesh:manager/node2"), "{plan:#}");
    let why = format!("node1's line is removed: its edge expired {end}");
    assert!(
        plan_node(&plan, "manager")["warnings"]
            .to_string()
            .contains(&why),
        "{plan:#}"
    );
    live.run(&["apply", "--yes"]).expect_exit(0);
    let last = authorized_keys(&live, "manager");
    assert!(line_of(&last, "node1").is_none(), "{last}");
    assert_eq!(line_of(&last, "node2"), line_of(&manager, "node2"));
    live.run(&["plan", "--detailed-exitcode"]).expect_exit(0);
    // Still refused, still expired, still not a failure.
    let doc = live.run(&["verify", "--json"]).expect_exit(0).json();
    assert_eq!(verify_edge(&doc, "node1", "manager")["status"], "expired");
    assert!(live.can_ssh("node2", "manager"));
}
