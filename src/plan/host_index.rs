//! The index that finds a host's entries in a large `known_hosts`, for
//! the planning of its lines (`known_hosts.rs`).

use std::borrow::Cow;
use std::collections::HashMap;

#[cfg(test)]
use crate::formats::known_hosts as kh;
use crate::formats::known_hosts::{Annotation, HostEntry, KnownHostsFile};

/// The entries of a `known_hosts` file that may match a host name: a
/// superset of those [`HostEntry::matches_host`] accepts, so that finding
/// the keys of every target does not match every entry of the file against
/// every target (a manager's file holds a line per worker).
///
/// An entry whose host field is a list of plain names (not hashed, no `*` or
/// `?`) can only match a name equal, ASCII case aside, to one of its
/// non-negated names (OpenSSH's `match_pattern_list`); such entries are
/// found by name. Every other entry is a candidate for every name.
/// [`HostEntry::matches_host`] still decides.
pub(super) struct HostIndex<'f> {
    /// Lowercased plain name -> (first, last) position in `chain`.
    plain: HashMap<Cow<'f, str>, (usize, usize)>,
    /// (line index, entry, next position for the same name), each name's
    /// entries in file order.
    chain: Vec<(usize, &'f HostEntry, usize)>,
    /// Hashed names and patterns: (line index, entry), in file order.
    other: Vec<(usize, &'f HostEntry)>,
}

impl<'f> HostIndex<'f> {
    const END: usize = usize::MAX;

    pub(super) fn new(file: &'f KnownHostsFile) -> HostIndex<'f> {
        let mut plain: HashMap<Cow<'f, str>, (usize, usize)> = HashMap::new();
        let mut chain: Vec<(usize, &HostEntry, usize)> = Vec::new();
        let mut other = Vec::new();
        for (i, e) in file.entries() {
            let hosts = e.hosts();
            if e.is_hashed() || hosts.contains(['*', '?']) {
                other.push((i, e));
                continue;
            }
            for pattern in hosts.split(',') {
                if pattern.starts_with('!') {
                    continue;
                }
                let at = chain.len();
                match plain.entry(lowercase(pattern)) {
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert((at, at));
                    }
                    std::collections::hash_map::Entry::Occupied(mut o) => {
                        let (_, last) = o.get_mut();
                        // The same name twice in one line.
                        if chain[*last].0 == i {
                            continue;
                        }
                        chain[*last].2 = at;
                        *last = at;
                    }
                }
                chain.push((i, e, Self::END));
            }
        }
        HostIndex {
            plain,
            chain,
            other,
        }
    }

    /// The entries that may match `name` (a [`kh::host_name`]), in
    /// file order, into `out`.
    pub(super) fn candidates(&self, name: &str, out: &mut Vec<&'f HostEntry>) {
        out.clear();
        let mut at = self
            .plain
            .get(&lowercase(name))
            .map_or(Self::END, |&(first, _)| first);
        let mut others = self.other.iter().peekable();
        while at != Self::END {
            let (line, entry, next) = self.chain[at];
            while let Some(&&(i, e)) = others.peek() {
                if i > line {
                    break;
                }
                out.push(e);
                others.next();
            }
            out.push(entry);
            at = next;
        }
        out.extend(others.map(|&(_, e)| e));
    }

    /// [`KnownHostsFile::keys_for`] (`host` on `port`), on the candidates
    /// for the host's name, into `keys`.
    pub(super) fn keys_for(
        candidates: &[&'f HostEntry],
        host: &str,
        port: u16,
        keys: &mut Vec<(&'f str, &'f str)>,
    ) {
        keys.clear();
        let mut matching = candidates.iter().filter(|e| e.matches_host(host, port));
        // The common case: one line for the host.
        if let (Some(only), None) = (matching.next(), matching.next()) {
            if only.annotation().is_none() {
                keys.push(only.key_id());
            }
            return;
        }
        let matching: Vec<&HostEntry> = candidates
            .iter()
            .copied()
            .filter(|e| e.matches_host(host, port))
            .collect();
        let revoked: Vec<&str> = matching
            .iter()
            .filter(|e| e.annotation() == Some(Annotation::Revoked))
            .map(|e| e.base64())
            .collect();
        for e in matching {
            if e.annotation().is_none()
                && !revoked.contains(&e.base64())
                && !keys.contains(&e.key_id())
            {
                keys.push(e.key_id());
            }
        }
    }
}

/// `s` with ASCII letters lowercased, borrowed when it has no capitals.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BLOBS: [&str; 3] = [
        "AAAAC3NzaC1lZDI1NTE5AAAAIA==",
        "AAAAB3NzaC1yc2EAAAAD",
        "AAAAE2VjZHNh",
    ];
    const NAMES: [&str; 12] = [
        "a", "A", "b", "[a]:2222", "[A]:2222", "10.0.0.1", "a*", "?", "!a", "!b", "*", "[a]:*",
    ];
    const HOSTS: [(&str, u16); 5] = [
        ("a", 22),
        ("A", 22),
        ("b", 22),
        ("a", 2222),
        ("10.0.0.1", 22),
    ];

    fn line() -> impl Strategy<Value = String> {
        let hosts = prop_oneof![
            prop::collection::vec(prop::sample::select(&NAMES[..]), 1..4).prop_map(|v| v.join(",")),
            (prop::sample::select(&HOSTS[..]), any::<u8>())
                .prop_map(|((h, p), s)| { kh::hash_host_name(&kh::host_name(h, p), [s; 20]) }),
        ];
        (
            prop::sample::select(&["", "@revoked ", "@cert-authority "][..]),
            hosts,
            prop::sample::select(&BLOBS[..]),
            prop::sample::select(&["", " trustmesh:w1", " root@x"][..]),
        )
            .prop_map(|(ann, hosts, blob, comment)| {
                format!("{ann}{hosts} ssh-ed25519 {blob}{comment}")
            })
    }

    proptest! {
        /// The index finds what `keys_for` and `matches_host` find.
        #[test]
        fn host_index_agrees_with_a_full_scan(lines in prop::collection::vec(line(), 0..12)) {
            let text = lines.join("\n");
            let file = KnownHostsFile::parse(&text);
            let index = HostIndex::new(&file);
            let (mut candidates, mut keys) = (Vec::new(), Vec::new());
            for (host, port) in HOSTS {
                index.candidates(&kh::host_name(host, port), &mut candidates);
                HostIndex::keys_for(&candidates, host, port, &mut keys);
                prop_assert_eq!(&keys, &file.keys_for(host, port));
                for blob in BLOBS {
                    let scan = |e: &HostEntry| {
                        e.marker().is_none() && e.base64() == blob && e.matches_host(host, port)
                    };
                    prop_assert_eq!(
                        candidates.iter().any(|e| scan(e)),
                        file.entries().any(|(_, e)| scan(e))
                    );
                }
            }
        }
    }
}
