//! `Host` blocks of an OpenSSH client config as inventory nodes.
//!
//! Mapped: a `Host` line's first plain alias (the node's name), `HostName`
//! (its address; `%h` is the alias), `Port`, `User`, `ProxyJump` (one hop:
//! an alias of the same file, or `[user@]host[:port]`, which becomes a
//! bastion). Said and skipped: wildcard and negated patterns (`Host *`),
//! `Match` blocks, `Include`, `ProxyCommand`, chains of jumps, and any other
//! keyword set on a host. ssh_config's first-value-wins rule holds: a later
//! block for the same alias only fills what is unset.

use super::{node_name, DraftNode, Imported};

/// Keywords read; every other one set in a Host block is listed as not
/// mapped.
const MAPPED: &[&str] = &["host", "hostname", "port", "user", "proxyjump"];

/// Split `Keyword value`, `Keyword=value` or `Keyword = value`; the value
/// keeps its inner spaces, one pair of surrounding quotes is removed.
fn keyword(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (k, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    Some((k.to_ascii_lowercase(), rest.to_string()))
}

/// The arguments of a keyword: words, a double-quoted one kept whole.
fn words(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in v.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A one-argument keyword's value, its quotes removed.
fn single(v: &str) -> String {
    words(v).into_iter().next().unwrap_or_default()
}

/// One Host block being read.
struct Block {
    line: usize,
    name: Option<String>,
    settings: Vec<(usize, String, String)>,
}

/// Read an ssh client config's text; `source` names it in the output.
pub fn ssh_config(text: &str, source: &str) -> Imported {
    let mut out = Imported::default();
    out.draft.source = format!("`trustmesh import ssh-config` of {source}");
    let mut blocks: Vec<Block> = Vec::new();
    // None: before any Host line, or inside a skipped block.
    let mut current: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let Some((k, v)) = keyword(raw) else { continue };
        match k.as_str() {
            "host" => {
                current = None;
                let patterns = words(&v);
                let plain: Vec<&str> = patterns
                    .iter()
                    .map(String::as_str)
                    .filter(|p| !p.contains(['*', '?', '!']))
                    .collect();
                if plain.is_empty() {
                    out.skip(
                        Some(n),
                        format!("`Host {v}`: a pattern, not a host; set what applies to every node in `defaults:`"),
                    );
                    continue;
                }
                for p in patterns.iter().filter(|p| p.contains(['*', '?', '!'])) {
                    out.skip(Some(n), format!("pattern `{p}` of `Host {v}`"));
                }
                let Some(name) = node_name(plain[0]) else {
                    out.skip(Some(n), format!("`Host {v}`: no usable node name"));
                    continue;
                };
                if name != plain[0] {
                    out.skip(
                        Some(n),
                        format!("alias `{}` is named `{name}` here", plain[0]),
                    );
                }
                for other in &plain[1..] {
                    out.skip(
                        Some(n),
                        format!("alias `{other}` (the same host as `{name}`)"),
                    );
                }
                blocks.push(Block {
                    line: n,
                    name: Some(name),
                    settings: Vec::new(),
                });
                current = Some(blocks.len() - 1);
            }
            "match" => {
                current = None;
                out.skip(
                    Some(n),
                    format!("`Match {v}` block: conditions are not mapped"),
                );
            }
            "include" => out.skip(Some(n), format!("`Include {v}`: import that file too")),
            _ => {
                if let Some(b) = current {
                    blocks[b].settings.push((n, k, single(&v)));
                }
            }
        }
    }
    // Aliases, so that a ProxyJump can name another block.
    let aliases: Vec<String> = blocks.iter().filter_map(|b| b.name.clone()).collect();
    for b in blocks {
        let name = b.name.expect("only named blocks are kept");
        let mut node = DraftNode {
            name: name.clone(),
            ..DraftNode::default()
        };
        let mut hostname = None;
        let mut unmapped: Vec<String> = Vec::new();
        for (n, k, v) in b.settings {
            match k.as_str() {
                // First value wins, within a block as across blocks.
                "hostname" if hostname.is_none() => hostname = Some((n, v)),
                "port" if node.port.is_none() => match v.parse::<u16>() {
                    Ok(p) if p > 0 => node.port = Some(p),
                    _ => out.skip(Some(n), format!("{name}: `Port {v}` is not a port")),
                },
                "user" if node.user.is_none() => node.user = Some(v),
                "proxyjump" if node.jump.is_none() => {
                    node.jump = jump(&mut out, &aliases, &name, n, &v);
                }
                "proxycommand" => out.skip(
                    Some(n),
                    format!(
                        "{name}: `ProxyCommand`: trustmesh reaches nodes directly or with `jump:`"
                    ),
                ),
                k if !MAPPED.contains(&k) && !unmapped.iter().any(|u| u == k) => {
                    unmapped.push(k.to_string());
                }
                _ => {}
            }
        }
        node.address = match hostname {
            None => name.clone(),
            Some((_, h)) if h == "%h" => name.clone(),
            Some((n, h)) if h.contains('%') => {
                out.skip(
                    Some(n),
                    format!("{name}: `HostName {h}` has % tokens; its address is the alias"),
                );
                name.clone()
            }
            Some((_, h)) => h,
        };
        if !unmapped.is_empty() {
            out.skip(
                Some(b.line),
                format!("{name}: not mapped: {}", unmapped.join(", ")),
            );
        }
        match out.node_mut(&name) {
            // First value wins: a later block only fills what is unset.
            Some(prev) => {
                prev.port = prev.port.or(node.port);
                prev.user = prev.user.take().or(node.user);
                prev.jump = prev.jump.take().or(node.jump);
            }
            None => out.draft.workers.push(node),
        }
    }
    out.promote_jump_hosts();
    out
}

/// A `ProxyJump` value as the name of the node to jump through: an alias of
/// the file, or a new bastion for `[user@]host[:port]`.
fn jump(out: &mut Imported, aliases: &[String], name: &str, n: usize, v: &str) -> Option<String> {
    if v.eq_ignore_ascii_case("none") {
        return None;
    }
    if v.contains(',') {
        out.skip(
            Some(n),
            format!("{name}: `ProxyJump {v}`: a chain of jumps; give each bastion its own `jump:`"),
        );
        return None;
    }
    if v.contains("://") {
        out.skip(
            Some(n),
            format!("{name}: `ProxyJump {v}`: URI form not mapped"),
        );
        return None;
    }
    let (user, hostport) = match v.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, v),
    };
    let (host, port) = split_port(hostport);
    if user.is_none() && port.is_none() && aliases.iter().any(|a| a == host) {
        return Some(host.to_string());
    }
    let Some(bname) = node_name(host) else {
        out.skip(Some(n), format!("{name}: `ProxyJump {v}`: no usable name"));
        return None;
    };
    if out.node_mut(&bname).is_none() && !aliases.contains(&bname) {
        out.draft.bastions.push(DraftNode {
            name: bname.clone(),
            address: host.to_string(),
            port,
            user,
            ..DraftNode::default()
        });
    }
    Some(bname)
}

/// `host:port`, `[v6]:port` or a bare host.
fn split_port(s: &str) -> (&str, Option<u16>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h, p.parse().ok());
        }
        return (rest.trim_end_matches(']'), None);
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}
