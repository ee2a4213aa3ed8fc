//! `certificates:` in `verify`: the certificates that end within
//! `renew_before` (or have ended), as the gathered state shows them, are
//! warned about: the next `apply` renews them.

use std::time::SystemTime;

use crate::formats::certificate;
use crate::model::inventory::expiry::{left, unix_seconds, Expiry};
use crate::model::inventory::Inventory;
use crate::model::layout::NodeFiles;
use crate::model::scope::PlanScope;
use crate::model::state::LiveState;

/// One line per certificate trustmesh issued that ends within
/// `renew_before` of `now`, for the nodes in scope.
pub fn certificates_ending(
    inv: &Inventory,
    live: &LiveState,
    scope: &PlanScope,
    now: Option<SystemTime>,
) -> Vec<String> {
    let (Some(c), Some(now)) = (&inv.certificates, now) else {
        return Vec::new();
    };
    let now = unix_seconds(now);
    let mut out = Vec::new();
    for (id, node) in inv.nodes.iter().enumerate() {
        let Some(acc) = live.account(id).filter(|_| scope.contains(id)) else {
            continue;
        };
        let Some(name) = NodeFiles::of(inv, id).certificate else {
            continue;
        };
        let info = acc
            .file(&name)
            .and_then(|f| f.content.as_deref())
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(certificate::parse);
        let Some(info) = info.filter(|i| i.key_id == inv.certificate_id(id)) else {
            continue;
        };
        let end = info.valid_before.min(i64::MAX as u64) as i64;
        if end - now > c.renew_before as i64 {
            continue;
        }
        let when = Expiry::from_unix(end);
        out.push(if end <= now {
            format!("{}'s certificate ended {when}: run `trustmesh apply` to renew it", node.name)
        } else {
            format!(
                "{}'s certificate ends in {} ({when}), within renew_before: run `trustmesh apply` to renew it",
                node.name,
                left(end - now)
            )
        });
    }
    out
}

/// The lines of [`certificates_ending`] as `verify` prints them.
pub(super) fn text(lines: &[String]) -> String {
    lines
        .iter()
        .map(|c| format!("{}\n", crate::output::escape::text(c)))
        .collect()
}
