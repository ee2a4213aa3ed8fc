//! Time-limited edges: `expires:` on a reverse entry, a mesh group or a
//! node (every edge from it).
//!
//! A value is a date, `YYYY-MM-DD`, meaning the end of that day in UTC
//! (its last second, 23:59:59), or an RFC 3339 time
//! (`2026-12-05T10:00:00Z`, `2026-12-05T11:00:00+01:00`; fractions of a
//! second are dropped). The edge's `authorized_keys` line carries
//! `expiry-time="YYYYMMDDHHMM[SS]Z"` (OpenSSH 7.7+), and sshd refuses the
//! key once that time has passed; the next `apply` removes the line.
//!
//! An edge granted twice (a pair in two mesh entries, a worker listed twice
//! in `reverse:`) lasts as long as its longest grant: one without
//! `expires:` never ends. A node's own `expires:` ends every edge from it
//! at the latest then. Edges from the manager never expire.
//!
//! The clock is never read here except in [`system_now`], the one place
//! the command line takes "now" from; the planner, `graph` and `verify`
//! are given it ([`crate::plan::PlanScope::now`]), so tests are
//! deterministic.

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::spans::Path;
use super::validate::problem;
use super::{Inventory, NodeId, Problem};
use crate::model::inventory::model::{InventoryFile, MeshEntry, Reverse, ReverseEntry};

/// The code of the warning `validate` gives for a time already past.
pub const PAST_CODE: &str = "trustmesh::inventory::expires_past";

/// The default of `options.expiry_warning_days`.
pub const DEFAULT_WARNING_DAYS: u32 = 7;

/// The one place the command line reads the clock.
pub fn system_now() -> SystemTime {
    SystemTime::now()
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The end of an edge: the last second (Unix time, UTC) sshd still lets
/// its key in (sshd refuses a key whose `expiry-time` is before now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Expiry(i64);

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `(year, month, day)` of a day count from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A fixed-width decimal number, digits only.
fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY-MM-DD` at the start of `s`: the day count.
fn date(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    if s.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("not a date");
    }
    let (Some(y), Some(m), Some(d)) = (digits(&s[0..4]), digits(&s[5..7]), digits(&s[8..10]))
    else {
        return Err("not a date");
    };
    if !(1970..=9999).contains(&y) {
        return Err("the year is out of range (1970 to 9999)");
    }
    if !(1..=12).contains(&m) {
        return Err("there is no such month");
    }
    if d < 1 || d > days_in_month(y, m) {
        return Err("there is no such day in that month");
    }
    Ok(days_from_civil(y, m, d))
}

impl Expiry {
    /// From Unix seconds.
    pub fn from_unix(secs: i64) -> Expiry {
        Expiry(secs)
    }

    /// Unix seconds of the last second the edge is open.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// Parse an inventory value: `YYYY-MM-DD` (the end of that day, UTC)
    /// or an RFC 3339 time. The error says what is wrong.
    pub fn parse(s: &str) -> Result<Expiry, &'static str> {
        let s = s.trim();
        if s.len() == 10 {
            return date(s).map(|d| Expiry(d * 86400 + 86399));
        }
        if s.len() < 19 {
            return Err("not a date or an RFC 3339 time");
        }
        let day = date(&s[..10])?;
        let b = s.as_bytes();
        if !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return Err("not a date or an RFC 3339 time");
        }
        let (Some(h), Some(mi), Some(sec)) =
            (digits(&s[11..13]), digits(&s[14..16]), digits(&s[17..19]))
        else {
            return Err("not a date or an RFC 3339 time");
        };
        if h > 23 || mi > 59 || sec > 60 {
            return Err("there is no such time of day");
        }
        let mut rest = &s[19..];
        if let Some(frac) = rest.strip_prefix('.') {
            let end = frac
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(frac.len());
            if end == 0 {
                return Err("a `.` with no fraction of a second after it");
            }
            rest = &frac[end..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
                let (Some(oh), Some(om)) = (digits(&o[1..3]), digits(&o[4..6])) else {
                    return Err("the time zone offset is not `+HH:MM`");
                };
                if oh > 23 || om > 59 {
                    return Err("the time zone offset is not `+HH:MM`");
                }
                let off = oh * 3600 + om * 60;
                if o.starts_with('-') {
                    -off
                } else {
                    off
                }
            }
            "" => return Err("the time has no time zone (add `Z` for UTC, or `+HH:MM`)"),
            _ => return Err("the time zone is not `Z` or `+HH:MM`"),
        };
        // A leap second is the last second of its minute.
        let secs = day * 86400 + h * 3600 + mi * 60 + sec.min(59) - offset;
        Ok(Expiry(secs))
    }

    fn parts(self) -> (i64, i64, i64, i64, i64, i64) {
        let days = self.0.div_euclid(86400);
        let rem = self.0.rem_euclid(86400);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// The value of `expiry-time="..."`: `YYYYMMDDHHMMZ`, with the seconds
    /// when they are not zero (`YYYYMMDDHHMMSSZ`), in UTC.
    pub fn option_value(self) -> String {
        let (y, m, d, h, mi, s) = self.parts();
        if s == 0 {
            format!("{y:04}{m:02}{d:02}{h:02}{mi:02}Z")
        } else {
            format!("{y:04}{m:02}{d:02}{h:02}{mi:02}{s:02}Z")
        }
    }

    /// The option trustmesh writes: `expiry-time="YYYYMMDDHHMM[SS]Z"`.
    pub fn option(self) -> String {
        format!("expiry-time=\"{}\"", self.option_value())
    }

    /// Whether an option is an `expiry-time` in the form trustmesh writes
    /// (`expiry-time="` then 12 or 14 digits then `Z"`): trustmesh's own
    /// on a managed line. Any other `expiry-time` is an admin's.
    pub fn is_own_option(option: &str) -> bool {
        let Some(v) = option
            .strip_prefix("expiry-time=\"")
            .and_then(|v| v.strip_suffix("Z\""))
        else {
            return false;
        };
        (v.len() == 12 || v.len() == 14) && v.bytes().all(|b| b.is_ascii_digit())
    }

    /// RFC 3339, UTC: `2026-12-05T10:00:00Z`.
    pub fn rfc3339(self) -> String {
        let (y, m, d, h, mi, s) = self.parts();
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

/// `2026-12-05 10:00 UTC` (seconds shown when not zero).
impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d, h, mi, s) = self.parts();
        if s == 0 {
            write!(f, "{y:04}-{m:02}-{d:02} {h:02}:{mi:02} UTC")
        } else {
            write!(f, "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
        }
    }
}

/// Where an edge stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeTime {
    /// It ends at this time, later than the warning window.
    Until(Expiry),
    /// It ends within the warning window.
    Expiring(Expiry),
    /// It has ended: sshd refuses its key, and apply removes its lines.
    Expired(Expiry),
}

impl EdgeTime {
    pub fn at(self) -> Expiry {
        match self {
            EdgeTime::Until(e) | EdgeTime::Expiring(e) | EdgeTime::Expired(e) => e,
        }
    }

    pub fn is_expired(self) -> bool {
        matches!(self, EdgeTime::Expired(_))
    }

    /// `expired 2026-12-05 10:00 UTC`, `expires 2026-12-05 10:00 UTC (in 2 days)`.
    pub fn describe(self, now: i64) -> String {
        match self {
            EdgeTime::Expired(e) => format!("expired {e}"),
            EdgeTime::Expiring(e) => format!("expires {e} (in {})", left(e.unix() - now)),
            EdgeTime::Until(e) => format!("expires {e}"),
        }
    }
}

/// `2 days`, `5 hours`, `3 minutes`: how long is left, roughly.
pub(crate) fn left(secs: i64) -> String {
    let (n, unit) = if secs >= 2 * 86400 {
        (secs / 86400, "day")
    } else if secs >= 2 * 3600 {
        (secs / 3600, "hour")
    } else if secs >= 120 {
        (secs / 60, "minute")
    } else {
        (secs.max(0), "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The `expires:` values of an inventory, resolved per edge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expiries {
    /// `expires:` of each node (every edge from it); empty when no node
    /// has one.
    node: Vec<Option<Expiry>>,
    /// Reverse edges, by worker: only those every grant of which ends.
    reverse: HashMap<NodeId, Expiry>,
    /// Mesh pairs (lower id first) every entry of which ends: the latest.
    mesh: HashMap<(NodeId, NodeId), Expiry>,
    /// Every value, with its place in the file (for `validate`'s warning
    /// on a time already past).
    values: Vec<(Path, Expiry)>,
}

impl Expiries {
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Every value with its path in the file.
    pub fn values(&self) -> &[(Path, Expiry)] {
        &self.values
    }
}

impl Inventory {
    /// When the edge `source -> target` ends, if it does.
    pub fn expires(&self, source: NodeId, target: NodeId) -> Option<Expiry> {
        let e = &self.expiry;
        if e.is_empty() || source == Inventory::MANAGER {
            return None;
        }
        let node = e.node.get(source).copied().flatten();
        let edge = if target == Inventory::MANAGER {
            e.reverse.get(&source).copied()
        } else {
            e.mesh
                .get(&(source.min(target), source.max(target)))
                .copied()
        };
        match (node, edge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Where the edge `source -> target` stands at `now` (`None`: no clock,
    /// so only its end is known), with `options.expiry_warning_days` as the
    /// window.
    pub fn edge_time(
        &self,
        source: NodeId,
        target: NodeId,
        now: Option<SystemTime>,
    ) -> Option<EdgeTime> {
        let at = self.expires(source, target)?;
        let Some(now) = now.map(unix_seconds) else {
            return Some(EdgeTime::Until(at));
        };
        let window = i64::from(self.options.expiry_warning_days) * 86400;
        Some(if at.unix() < now {
            EdgeTime::Expired(at)
        } else if at.unix() - now <= window {
            EdgeTime::Expiring(at)
        } else {
            EdgeTime::Until(at)
        })
    }
}

/// Parse `value` at `p`; a malformed one is a problem.
fn parse_at(p: Path, value: &str, problems: &mut Vec<Problem>) -> Option<(Path, Expiry)> {
    match Expiry::parse(value) {
        Ok(e) => Some((p, e)),
        Err(why) => {
            problems.push(problem(
                p,
                "trustmesh::inventory::expires",
                format!(
                    "`{}` is not a time trustmesh reads for `expires`: {why}",
                    super::limits::shown(value)
                ),
                "not a date or an RFC 3339 time",
                Some(
                    "write a date, `2026-12-31` (the end of that day, UTC), or an RFC 3339 time, \
                     `2026-12-31T18:00:00Z`"
                        .into(),
                ),
            ));
            None
        }
    }
}

/// Check every `expires:` of `file` and resolve them per edge. `ids` maps
/// a node's name to its id; `mesh` holds the members of each mesh entry
/// as resolved (used only when no problem was found).
pub(super) fn resolve(
    file: &InventoryFile,
    ids: &HashMap<&str, NodeId>,
    mesh: &[Vec<NodeId>],
    problems: &mut Vec<Problem>,
) -> Expiries {
    let root = Path::root();
    let mut out = Expiries::default();
    let nodes = std::iter::once(None)
        .chain(
            file.bastions
                .iter()
                .enumerate()
                .map(|(i, s)| Some((root.key("bastions").index(i), s))),
        )
        .chain(
            file.workers
                .iter()
                .enumerate()
                .map(|(i, s)| Some((root.key("workers").index(i), s))),
        );
    let mut node = Vec::new();
    for n in nodes {
        let parsed = n.and_then(|(p, spec)| {
            let v = spec.expires.as_deref()?;
            parse_at(p.key("expires"), v, problems)
        });
        node.push(parsed.as_ref().map(|(_, e)| *e));
        out.values.extend(parsed);
    }
    if node.iter().any(Option::is_some) {
        out.node = node;
    }
    if let Reverse::Some(list) = &file.reverse {
        // None: a grant without an end.
        let mut by_worker: HashMap<NodeId, Option<Expiry>> = HashMap::new();
        for (i, entry) in list.iter().enumerate() {
            let end = match entry {
                ReverseEntry::Detailed(d) => match d.expires.as_deref() {
                    Some(v) => {
                        let Some((p, e)) =
                            parse_at(root.key("reverse").index(i).key("expires"), v, problems)
                        else {
                            continue;
                        };
                        out.values.push((p, e));
                        Some(e)
                    }
                    None => None,
                },
                ReverseEntry::Name(_) => None,
            };
            let Some(&id) = ids.get(entry.worker()) else {
                continue;
            };
            by_worker
                .entry(id)
                .and_modify(|old| *old = old.zip(end).map(|(a, b)| a.max(b)))
                .or_insert(end);
        }
        out.reverse = by_worker
            .into_iter()
            .filter_map(|(id, e)| Some((id, e?)))
            .collect();
    }
    let mut ends: Vec<Option<Expiry>> = Vec::with_capacity(file.mesh.len());
    for (i, entry) in file.mesh.iter().enumerate() {
        let end = match entry {
            MeshEntry::Group(g) => g.expires.as_deref().and_then(|v| {
                let (p, e) = parse_at(root.key("mesh").index(i).key("expires"), v, problems)?;
                out.values.push((p, e));
                Some(e)
            }),
            MeshEntry::Names(_) => None,
        };
        ends.push(end);
    }
    if ends.iter().any(Option::is_some) && problems.is_empty() && ends.len() == mesh.len() {
        // Pairs of entries without an end never end, whatever other entries
        // say: those entries go first and mark their pairs.
        let mut order: Vec<usize> = (0..mesh.len()).collect();
        order.sort_by_key(|&i| ends[i].is_some());
        let mut pairs: HashMap<(NodeId, NodeId), Option<Expiry>> = HashMap::new();
        for i in order {
            let members = &mesh[i];
            let end = ends[i];
            for (k, &a) in members.iter().enumerate() {
                for &b in &members[k + 1..] {
                    let key = (a.min(b), a.max(b));
                    match end {
                        None => {
                            pairs.insert(key, None);
                        }
                        Some(e) => {
                            pairs
                                .entry(key)
                                .and_modify(|old| *old = old.map(|o| o.max(e)))
                                .or_insert(Some(e));
                        }
                    }
                }
            }
        }
        out.mesh = pairs
            .into_iter()
            .filter_map(|(k, e)| Some((k, e?)))
            .collect();
    }
    out
}

/// `validate`'s warnings: each `expires:` already past at `now`.
pub(super) fn warnings(
    inv: &Inventory,
    now: SystemTime,
) -> Vec<(Path, &'static str, String, String)> {
    let now = unix_seconds(now);
    inv.expiry
        .values()
        .iter()
        .filter(|(_, e)| e.unix() < now)
        .map(|(p, e)| {
            (
                p.clone(),
                PAST_CODE,
                format!("`{p}` is already past ({e}): the edges it ends are refused by sshd and removed by the next apply"),
                "set a later time, or remove the entry if the access is over".to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_end_with_their_day_and_times_keep_their_offset() {
        let d = Expiry::parse("2026-12-05").unwrap();
        assert_eq!(d.to_string(), "2026-12-05 23:59:59 UTC");
        assert_eq!(d.option(), "expiry-time=\"20261205235959Z\"");
        let t = Expiry::parse("2026-12-05T10:00:00Z").unwrap();
        assert_eq!(t.to_string(), "2026-12-05 10:00 UTC");
        assert_eq!(t.option_value(), "202612051000Z");
        assert_eq!(t.rfc3339(), "2026-12-05T10:00:00Z");
        assert_eq!(
            Expiry::parse("2026-12-05T11:30:00+01:30").unwrap(),
            Expiry::parse("2026-12-05T10:00:00.999Z").unwrap()
        );
        assert_eq!(
            Expiry::parse("2024-02-29T00:00:00-00:00").unwrap().unix(),
            1709164800
        );
        assert_eq!(Expiry::parse("1970-01-01T00:00:00Z").unwrap().unix(), 0);
    }

    #[test]
    fn malformed_values_say_why() {
        for (v, why) in [
            ("2026-13-01", "no such month"),
            ("2026-02-29", "no such day"),
            ("2026-12-05T10:00:00", "no time zone"),
            ("2026-12-05T25:00:00Z", "no such time"),
            ("tomorrow", "not a date"),
            ("2026-12-05T10:00Z", "not a date or an RFC 3339"),
            ("1969-12-31", "out of range"),
        ] {
            let e = Expiry::parse(v).unwrap_err();
            assert!(e.contains(why), "{v}: {e}");
        }
    }

    #[test]
    fn only_the_form_trustmesh_writes_is_its_own() {
        assert!(Expiry::is_own_option("expiry-time=\"202612051000Z\""));
        assert!(Expiry::is_own_option("expiry-time=\"20261205100059Z\""));
        assert!(!Expiry::is_own_option("expiry-time=\"20261205\""));
        assert!(!Expiry::is_own_option("expiry-time=\"202612051000\""));
        assert!(!Expiry::is_own_option("from=\"202612051000Z\""));
    }

    #[test]
    fn what_is_left_reads_roughly() {
        assert_eq!(left(3 * 86400 + 5), "3 days");
        assert_eq!(left(86400), "24 hours");
        assert_eq!(left(61), "61 seconds");
        assert_eq!(left(600), "10 minutes");
    }
}
