//! Ended edges in `verify`: an edge whose `expires:` time has passed is
//! still tried, and sshd must refuse it (its line carries `expiry-time`,
//! or apply has removed it). Refused, it is reported `expired` and does
//! not fail the run ([`super::EdgeResult::refused_as_expired`]); if it
//! still holds, something lets the key in past its end, which is a
//! failure.

use std::time::SystemTime;

use super::report::{EdgeFailure, EdgeOutcome};
use crate::model::finding::Hint;
use crate::model::graph::Edge;
use crate::model::inventory::expiry::EdgeTime;
use crate::model::inventory::Inventory;
use crate::transport::FailureKind;

/// The outcome of `edge` given where it stands at `now`.
pub(super) fn judge(
    inv: &Inventory,
    edge: Edge,
    now: Option<SystemTime>,
    outcome: EdgeOutcome,
) -> EdgeOutcome {
    let Some(EdgeTime::Expired(at)) = inv.edge_time(edge.source, edge.target, now) else {
        return outcome;
    };
    let (source, target) = (&inv.nodes[edge.source].name, &inv.nodes[edge.target].name);
    match outcome {
        EdgeOutcome::Holds => EdgeOutcome::Fails(EdgeFailure::new(
            FailureKind::Other,
            format!("the edge expired {at}, yet {target} still lets {source}'s key in"),
            Some(Hint::Text(format!(
                "a line trustmesh did not write may let it in: `trustmesh plan` shows {target}'s \
                 authorized_keys; remove that line by hand"
            ))),
        )),
        o => o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::graph::EdgeKind;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn an_ended_edge_that_still_holds_fails_and_a_refused_one_is_left_as_it_is() {
        let inv = Inventory::from_str_named(
            "t.yaml",
            "version: 1\nmanager: { name: m, address: 10.0.0.1 }\nworkers:\n  - { name: w1, address: 10.0.0.2 }\n\
             reverse:\n  - { worker: w1, expires: '2026-12-05T10:00:00Z' }\n",
        )
        .unwrap();
        let edge = Edge {
            kind: EdgeKind::Reverse,
            source: 1,
            target: 0,
        };
        let at = |secs| Some(UNIX_EPOCH + Duration::from_secs(secs));
        // 2026-12-05 10:00:01 UTC: ended.
        let after = at(1_796_464_801);
        match judge(&inv, edge, after, EdgeOutcome::Holds) {
            EdgeOutcome::Fails(f) => {
                assert!(
                    f.finding
                        .reason
                        .contains("expired 2026-12-05 10:00 UTC, yet m still lets w1's key in"),
                    "{f:?}"
                )
            }
            o => panic!("{o:?}"),
        }
        let refused = EdgeOutcome::Fails(EdgeFailure::new(
            FailureKind::AuthRejected,
            "denied".into(),
            None,
        ));
        assert_eq!(judge(&inv, edge, after, refused.clone()), refused);
        // Before its end, or with no clock, an edge is judged as any other.
        assert_eq!(
            judge(&inv, edge, at(1_796_464_800), EdgeOutcome::Holds),
            EdgeOutcome::Holds
        );
        assert_eq!(
            judge(&inv, edge, None, EdgeOutcome::Holds),
            EdgeOutcome::Holds
        );
    }
}
