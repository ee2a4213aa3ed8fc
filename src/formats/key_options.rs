//! The options field of the authorized_keys lines trustmesh writes: the
//! options an edge's policy puts there, merged with those an admin added by
//! hand to a managed line.
//!
//! trustmesh owns three sets of options and nothing else:
//!
//! - `restrict,command="internal-sftp"` on an SFTP-only edge (sshd then
//!   runs its in-process SFTP server for that key whatever the client asks:
//!   SSHFS works, a shell does not); both words together are trustmesh's,
//!   either alone is an admin's;
//! - `from="<addresses>"` with `options.restrict_source`, the addresses
//!   being exactly those the inventory derives for the edge; a `from=` with
//!   another value is an admin's;
//! - `expiry-time="YYYYMMDDHHMM[SS]Z"` on an edge with `expires:`, in
//!   exactly that form (UTC, with `Z`): an `expiry-time` in that form on a
//!   managed line is trustmesh's, rewritten when `expires:` changes and
//!   taken away when it goes; one in any other form (`20261231`, local
//!   time) is an admin's, kept when the edge has no `expires:`, dropped
//!   (and named) when it has, since sshd would honour the earlier of two.
//!
//! Every other option on a managed line is an admin's and is kept when
//! trustmesh rewrites the line, in its place after trustmesh's own, unless
//! it conflicts with the edge's policy: on an SFTP-only edge an admin's
//! `command=` or an option that gives back what `restrict` takes away
//! (`pty`, `port-forwarding`, `permitopen=`...) would reopen the shell or a
//! tunnel, and under `restrict_source` another `from=` would contradict the
//! derived one. Those are dropped, and the plan says which.

use crate::model::inventory::expiry::Expiry;

/// What an edge's authorized_keys line must allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `restrict,command="internal-sftp"`.
    pub sftp_only: bool,
    /// `from="..."`: the comma-separated addresses, when restricted.
    pub from: Option<String>,
    /// `expiry-time="..."`: when the edge ends.
    pub expires: Option<Expiry>,
}

impl Policy {
    /// No option at all: a full edge from anywhere.
    pub fn is_open(&self) -> bool {
        !self.sftp_only && self.from.is_none() && self.expires.is_none()
    }

    /// How a person would name this policy: `full`, `sftp-only`, and
    /// `from ADDRESSES` when restricted.
    pub fn describe(&self) -> String {
        let mut s = if self.sftp_only { "sftp-only" } else { "full" }.to_string();
        if let Some(f) = &self.from {
            s.push_str(&format!(", from {f}"));
        }
        if let Some(e) = self.expires {
            s.push_str(&format!(", expires {e}"));
        }
        s
    }
}

/// The options a line gets, and the admin's options dropped for conflicting
/// with the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The options field, `None` when empty.
    pub options: Option<String>,
    /// Admin options left out, as written.
    pub dropped: Vec<String>,
    /// Restrictions trustmesh wrote that the policy no longer asks for,
    /// taken away (the plan says so: the edge grants more from now on).
    pub lifted: Vec<String>,
}

const SFTP_COMMAND: &str = "command=\"internal-sftp\"";

/// Options that give back what `restrict` takes away, or run something
/// else: they contradict an SFTP-only edge.
const REOPENING: [&str; 9] = [
    "command",
    "pty",
    "port-forwarding",
    "agent-forwarding",
    "x11-forwarding",
    "user-rc",
    "permitopen",
    "permitlisten",
    "tunnel",
];

/// Split an options field into its options, at commas outside double
/// quotes (a `\"` inside quotes does not end them), as sshd reads it.
pub fn split(options: &str) -> Vec<&str> {
    let s = options.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut quoted, mut i) = (0, false, 0);
    while i < s.len() {
        match s[i] {
            b'\\' if quoted && s.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                out.push(&options[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&options[start..]);
    out.retain(|o| !o.is_empty());
    out
}

/// An option's name, lower-cased (sshd compares names without case).
fn name(option: &str) -> String {
    option
        .split('=')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The `from=` value trustmesh writes for `addresses`.
fn from_option(addresses: &str) -> String {
    format!("from=\"{addresses}\"")
}

/// The options of a managed line for `policy`, from the line's current
/// options (`None` for a new line). `derived_from` is the `from=` value
/// the inventory derives for the edge even when `restrict_source` is off,
/// so that a `from=` trustmesh wrote earlier is recognised as its own and
/// removed when the option is turned off.
pub fn merge(existing: Option<&str>, policy: &Policy, derived_from: Option<&str>) -> Merged {
    // The common case, kept free of allocation: no option wanted, none
    // there.
    if existing.is_none() && policy.is_open() {
        return Merged {
            options: None,
            dropped: Vec::new(),
            lifted: Vec::new(),
        };
    }
    let current = existing.map(split).unwrap_or_default();
    let is = |o: &str, n: &str| name(o) == n;
    let ours_sftp = current.iter().any(|o| is(o, "restrict"))
        && current.iter().any(|o| o.eq_ignore_ascii_case(SFTP_COMMAND));
    let ours_from = derived_from.map(from_option);
    let mut out: Vec<String> = Vec::new();
    if policy.sftp_only {
        out.push("restrict".into());
        out.push(SFTP_COMMAND.into());
    }
    if let Some(f) = &policy.from {
        out.push(from_option(f));
    }
    if let Some(e) = policy.expires {
        out.push(e.option());
    }
    let mut dropped = Vec::new();
    let mut lifted = Vec::new();
    if policy.expires.is_none() {
        lifted.extend(
            current
                .iter()
                .filter(|o| Expiry::is_own_option(o))
                .map(|o| o.to_string()),
        );
    }
    if ours_sftp && !policy.sftp_only {
        lifted.push(format!("restrict,{SFTP_COMMAND}"));
    }
    if let Some(f) = &ours_from {
        if policy.from.is_none() && current.contains(&f.as_str()) {
            lifted.push(f.clone());
        }
    }
    for o in current {
        let n = name(o);
        // trustmesh's own options: rewritten from the policy above.
        if ours_sftp && (n == "restrict" || o.eq_ignore_ascii_case(SFTP_COMMAND)) {
            continue;
        }
        if ours_from.as_deref() == Some(o) || Expiry::is_own_option(o) {
            continue;
        }
        let conflicts = (policy.sftp_only && REOPENING.contains(&n.as_str()))
            || (policy.from.is_some() && n == "from")
            || (policy.expires.is_some() && n == "expiry-time");
        if conflicts {
            dropped.push(o.to_string());
        } else if policy.sftp_only && n == "restrict" {
            // Already there, from the policy.
        } else {
            out.push(o.to_string());
        }
    }
    // The same options in another order: the line is right as it is (an
    // admin may order them as they like).
    let mut wanted: Vec<&str> = out.iter().map(String::as_str).collect();
    let mut have = existing.map(split).unwrap_or_default();
    wanted.sort_unstable();
    have.sort_unstable();
    if dropped.is_empty() && wanted == have {
        return Merged {
            options: existing.map(str::to_string),
            dropped,
            lifted,
        };
    }
    Merged {
        options: (!out.is_empty()).then(|| out.join(",")),
        dropped,
        lifted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sftp() -> Policy {
        Policy {
            sftp_only: true,
            ..Policy::default()
        }
    }

    fn from(a: &str) -> Policy {
        Policy {
            from: Some(a.into()),
            ..Policy::default()
        }
    }

    fn opts(m: &Merged) -> Option<&str> {
        m.options.as_deref()
    }

    #[test]
    fn split_respects_quotes() {
        assert_eq!(
            split(r#"command="a,b \"c,d\"",no-pty,from="10.0.0.1,10.0.0.2""#),
            vec![
                r#"command="a,b \"c,d\"""#,
                "no-pty",
                r#"from="10.0.0.1,10.0.0.2""#
            ]
        );
        assert_eq!(split("restrict"), vec!["restrict"]);
        assert!(split("").is_empty());
    }

    #[test]
    fn an_open_edge_keeps_a_plain_line_plain() {
        let m = merge(None, &Policy::default(), Some("192.0.2.1"));
        assert_eq!(opts(&m), None);
        let m = merge(Some("no-port-forwarding"), &Policy::default(), None);
        assert_eq!(opts(&m), Some("no-port-forwarding"));
    }

    #[test]
    fn policies_write_their_options_first_and_keep_the_admins() {
        assert_eq!(
            opts(&merge(None, &sftp(), None)),
            Some(r#"restrict,command="internal-sftp""#)
        );
        assert_eq!(
            opts(&merge(
                Some("no-agent-forwarding"),
                &from("192.0.2.7"),
                None
            )),
            Some(r#"from="192.0.2.7",no-agent-forwarding"#)
        );
        let both = Policy {
            sftp_only: true,
            from: Some("10.0.0.0/8".into()),
            expires: None,
        };
        let m = merge(Some(r#"no-X11-forwarding,environment="A=1""#), &both, None);
        assert_eq!(
            opts(&m),
            Some(
                r#"restrict,command="internal-sftp",from="10.0.0.0/8",no-X11-forwarding,environment="A=1""#
            )
        );
        assert!(m.dropped.is_empty());
    }

    #[test]
    fn the_same_policy_gives_back_the_same_options() {
        for p in [sftp(), from("192.0.2.7")] {
            for admin in [None, Some("no-pty"), Some(r#"environment="X=a,b""#)] {
                let first = merge(admin, &p, p.from.as_deref());
                let again = merge(first.options.as_deref(), &p, p.from.as_deref());
                assert_eq!(first.options, again.options, "{p:?} {admin:?}");
            }
        }
    }

    #[test]
    fn the_order_an_admin_gave_is_kept() {
        let line = r#"no-pty,from="192.0.2.7""#;
        assert_eq!(
            opts(&merge(Some(line), &from("192.0.2.7"), Some("192.0.2.7"))),
            Some(line)
        );
    }

    #[test]
    fn turning_a_policy_off_removes_only_what_trustmesh_added() {
        let line = r#"restrict,command="internal-sftp",from="192.0.2.7",no-pty"#;
        let m = merge(Some(line), &Policy::default(), Some("192.0.2.7"));
        assert_eq!(opts(&m), Some("no-pty"));
        assert_eq!(
            m.lifted,
            vec![r#"restrict,command="internal-sftp""#, r#"from="192.0.2.7""#]
        );
        // A from= of another value is the admin's: kept.
        let m = merge(
            Some(r#"from="10.9.9.9",no-pty"#),
            &Policy::default(),
            Some("192.0.2.7"),
        );
        assert_eq!(opts(&m), Some(r#"from="10.9.9.9",no-pty"#));
        // `restrict` alone is the admin's too.
        let m = merge(Some("restrict,pty"), &Policy::default(), None);
        assert_eq!(opts(&m), Some("restrict,pty"));
    }

    #[test]
    fn conflicting_admin_options_are_dropped_and_named() {
        let m = merge(
            Some(r#"command="/bin/bash",pty,permitopen="h:22",no-agent-forwarding"#),
            &sftp(),
            None,
        );
        assert_eq!(
            opts(&m),
            Some(r#"restrict,command="internal-sftp",no-agent-forwarding"#)
        );
        assert_eq!(
            m.dropped,
            vec![r#"command="/bin/bash""#, "pty", r#"permitopen="h:22""#]
        );
        let m = merge(
            Some(r#"FROM="10.9.9.9""#),
            &from("192.0.2.7"),
            Some("192.0.2.7"),
        );
        assert_eq!(opts(&m), Some(r#"from="192.0.2.7""#));
        assert_eq!(m.dropped, vec![r#"FROM="10.9.9.9""#]);
    }

    fn until(t: &str) -> Policy {
        Policy {
            expires: Some(Expiry::parse(t).unwrap()),
            ..Policy::default()
        }
    }

    #[test]
    fn an_expiry_is_written_beside_the_admins_options_and_rewritten_alone() {
        let m = merge(None, &until("2026-12-05T10:00:00Z"), None);
        assert_eq!(opts(&m), Some(r#"expiry-time="202612051000Z""#));
        // An admin's options stay; a changed expiry replaces only that
        // option.
        let line = r#"expiry-time="202612051000Z",no-pty,environment="A=1""#;
        let m = merge(Some(line), &until("2027-01-31"), None);
        assert_eq!(
            opts(&m),
            Some(r#"expiry-time="20270131235959Z",no-pty,environment="A=1""#)
        );
        assert!(m.dropped.is_empty() && m.lifted.is_empty());
        // The same expiry: the line is right as it is, in the admin's order.
        let line = r#"no-pty,expiry-time="202612051000Z""#;
        let m = merge(Some(line), &until("2026-12-05T10:00:00Z"), None);
        assert_eq!(opts(&m), Some(line));
        // `expires:` removed: only trustmesh's expiry goes, and it is said.
        let m = merge(Some(line), &Policy::default(), None);
        assert_eq!(opts(&m), Some("no-pty"));
        assert_eq!(m.lifted, vec![r#"expiry-time="202612051000Z""#]);
        // An admin's expiry (another form) stays without `expires:`, and is
        // dropped and named under one (sshd would take the earlier).
        let admin = r#"expiry-time="20261231",no-pty"#;
        let m = merge(Some(admin), &Policy::default(), None);
        assert_eq!(opts(&m), Some(admin));
        let m = merge(Some(admin), &until("2026-12-05T10:00:00Z"), None);
        assert_eq!(opts(&m), Some(r#"expiry-time="202612051000Z",no-pty"#));
        assert_eq!(m.dropped, vec![r#"expiry-time="20261231""#]);
        // With the other policies, in their order.
        let all = Policy {
            sftp_only: true,
            from: Some("192.0.2.7".into()),
            expires: Expiry::parse("2026-12-05T10:00:30Z").ok(),
        };
        assert_eq!(
            opts(&merge(None, &all, None)),
            Some(
                r#"restrict,command="internal-sftp",from="192.0.2.7",expiry-time="20261205100030Z""#
            )
        );
        assert_eq!(
            all.describe(),
            "sftp-only, from 192.0.2.7, expires 2026-12-05 10:00:30 UTC"
        );
    }

    proptest! {
        /// Whatever an admin wrote, merging twice gives what merging once
        /// gave (a second plan sees nothing to do), and an option that is
        /// neither trustmesh's nor conflicting survives.
        #[test]
        fn merging_is_stable(
            admin in prop::collection::vec(
                prop::sample::select(vec![
                    "no-pty", "pty", "restrict", r#"command="internal-sftp""#, r#"command="x,y""#,
                    r#"from="192.0.2.7""#, r#"from="10.0.0.0/8""#, "no-port-forwarding",
                    r#"environment="A=b,c""#, "cert-authority",
                    r#"expiry-time="20300101""#, r#"expiry-time="203001010000Z""#,
                ]),
                0..5,
            ),
            sftp_only: bool,
            restrict: bool,
            expires: bool,
        ) {
            let existing = admin.join(",");
            let existing = (!existing.is_empty()).then_some(existing);
            let policy = Policy {
                sftp_only,
                from: restrict.then(|| "192.0.2.7".to_string()),
                expires: expires.then(|| Expiry::parse("2031-06-01T12:00:00Z").unwrap()),
            };
            let once = merge(existing.as_deref(), &policy, Some("192.0.2.7"));
            let twice = merge(once.options.as_deref(), &policy, Some("192.0.2.7"));
            prop_assert_eq!(&once.options, &twice.options);
            prop_assert!(twice.dropped.is_empty());
            let result = once.options.clone().unwrap_or_default();
            let kept = split(&result);
            prop_assert_eq!(kept.contains(&"restrict"), sftp_only || (admin.contains(&"restrict") && !admin.contains(&r#"command="internal-sftp""#)));
            if admin.contains(&"no-port-forwarding") {
                prop_assert!(kept.contains(&"no-port-forwarding"));
            }
        }
    }
}
