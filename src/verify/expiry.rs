//! Ended edges in `verify`: an edge whose `expires:` time has passed is
//! still tried, and sshd must refuse it (its line carries `expiry-time`,
//! or apply has removed it). Refused, it is reported `expired` and does
//! not fail the run ([`super::EdgeResult::refused_as_expired`]); if it
//! still holds, something lets the key in past its end, which is a
//! failure.

use std::time::SystemTime;

use super::report::{EdgeFailure, Outcome};
use crate::model::graph::Edge;
use crate::model::inventory::expiry::EdgeTime;
use crate::model::inventory::Inventory;
use crate::transport::FailureKind;

/// The outcome of `edge` given where it stands at `now`.
pub(super) fn judge(
    inv: &Inventory,
    edge: Edge,
    now: Option<SystemTime>,
    outcome: Outcome,
) -> Outcome {
    let Some(EdgeTime::Expired(at)) = inv.edge_time(edge.source, edge.target, now) else {
        return outcome;
    };
    let (source, target) = (&inv.nodes[edge.source].name, &inv.nodes[edge.target].name);
    match outcome {
        Outcome::Holds => Outcome::Fails(EdgeFailure {
            kind: FailureKind::Other,
            reason: format!("the edge expired {at}, yet {target} still lets {source}'s key in"),
            hint: Some(format!(
                "a line trustmesh did not write may let it in: `trustmesh plan` shows {target}'s \
                 authorized_keys; remove that line by hand"
            )),
        }),
        o => o,
    }
}
