//! Ansible inventories (INI or YAML) as inventory nodes.
//!
//! Mapped: each host (its inventory name made a node name), `ansible_host`,
//! `ansible_port`, `ansible_user` (and their older `ansible_ssh_*` names),
//! set on the host or in a group's vars (a host's own value first, then its
//! groups', then `all`'s, as Ansible does), numeric ranges (`web[01:03]`),
//! and the groups a host is in, directly or through `:children`, as
//! `groups:`. Said and skipped: other variables, alphabetic ranges, and
//! hosts named by a pattern that cannot be a node name.

use std::collections::{BTreeMap, BTreeSet};

use super::{group_name, node_name, DraftNode, Imported};

/// What a host or group sets.
#[derive(Debug, Default, Clone)]
struct Vars {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    /// Other variables, by name (said once each).
    other: BTreeSet<String>,
}

impl Vars {
    fn set(&mut self, k: &str, v: String) {
        match k {
            "ansible_host" | "ansible_ssh_host" => self.host = Some(v),
            "ansible_port" | "ansible_ssh_port" => self.port = Some(v),
            "ansible_user" | "ansible_ssh_user" => self.user = Some(v),
            _ => {
                self.other.insert(k.to_string());
            }
        }
    }
}

/// Hosts, groups and their vars, in the order first seen.
#[derive(Debug, Default)]
struct Model {
    hosts: Vec<(String, Option<usize>)>,
    host_vars: BTreeMap<String, Vars>,
    /// group -> hosts directly in it
    members: BTreeMap<String, BTreeSet<String>>,
    /// group -> child groups
    children: BTreeMap<String, BTreeSet<String>>,
    group_vars: BTreeMap<String, Vars>,
}

impl Model {
    fn host(&mut self, name: &str, line: Option<usize>) -> &mut Vars {
        if !self.host_vars.contains_key(name) {
            self.hosts.push((name.to_string(), line));
        }
        self.host_vars.entry(name.to_string()).or_default()
    }

    /// Every group a host is in, through children too (not `all`,
    /// `ungrouped`).
    fn groups_of(&self, host: &str) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.contains(host))
            .map(|(g, _)| g.clone())
            .collect();
        loop {
            let parents: Vec<String> = self
                .children
                .iter()
                .filter(|(p, c)| !out.contains(*p) && c.iter().any(|c| out.contains(c)))
                .map(|(p, _)| p.clone())
                .collect();
            if parents.is_empty() {
                break;
            }
            out.extend(parents);
        }
        out.remove("all");
        out.remove("ungrouped");
        out
    }

    fn into_imported(self, source: String, mut out: Imported) -> Imported {
        out.draft.source = source;
        let all = self.group_vars.get("all").cloned().unwrap_or_default();
        out.draft.default_user = all.user.clone();
        let mut said: BTreeSet<String> = BTreeSet::new();
        for (g, v) in &self.group_vars {
            for k in &v.other {
                if said.insert(format!("{g}/{k}")) {
                    out.skip(None, format!("group `{g}`: variable `{k}` not mapped"));
                }
            }
        }
        for (host, line) in &self.hosts {
            let Some(name) = node_name(host) else {
                out.skip(*line, format!("host `{host}`: no usable node name"));
                continue;
            };
            if name != *host {
                out.skip(*line, format!("host `{host}` is named `{name}` here"));
            }
            let own = &self.host_vars[host];
            let groups = self.groups_of(host);
            // A host's own value, then its groups' (sorted, first set wins),
            // then `all`'s.
            let pick = |f: fn(&Vars) -> Option<String>| {
                f(own)
                    .or_else(|| {
                        groups
                            .iter()
                            .find_map(|g| self.group_vars.get(g).and_then(f))
                    })
                    .or_else(|| f(&all))
            };
            let port = pick(|v| v.port.clone()).and_then(|p| match p.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    out.skip(*line, format!("{name}: ansible_port `{p}` is not a port"));
                    None
                }
            });
            let user = pick(|v| v.user.clone()).filter(|u| Some(u) != all.user.as_ref());
            for k in &own.other {
                out.skip(*line, format!("{name}: variable `{k}` not mapped"));
            }
            let groups: Vec<String> = groups.iter().filter_map(|g| group_name(g)).collect();
            out.draft.workers.push(DraftNode {
                name,
                address: pick(|v| v.host.clone()).unwrap_or_else(|| host.clone()),
                port,
                user,
                jump: None,
                groups,
            });
        }
        out
    }
}

/// Expand one numeric range (`web[01:03].lab` -> web01.lab, web02.lab,
/// web03.lab; a step `[1:9:2]` too). `None` for a pattern it cannot expand.
fn expand(pattern: &str) -> Option<Vec<String>> {
    let Some(open) = pattern.find('[') else {
        return Some(vec![pattern.to_string()]);
    };
    let close = open + pattern[open..].find(']')?;
    let inner = &pattern[open + 1..close];
    let mut parts = inner.split(':');
    let (a, b) = (parts.next()?, parts.next()?);
    let step: usize = parts.next().map_or(Some(1), |s| s.parse().ok())?;
    let (start, end): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
    if step == 0 || end < start || end - start > 100_000 {
        return None;
    }
    let width = if a.starts_with('0') { a.len() } else { 0 };
    let mut out = Vec::new();
    for i in (start..=end).step_by(step) {
        let rest = expand(&pattern[close + 1..])?;
        for r in rest {
            out.push(format!("{}{i:0width$}{r}", &pattern[..open]));
        }
    }
    Some(out)
}

/// `host k=v k="v w"` of an INI host line.
fn host_line(line: &str) -> (String, Vec<(String, String)>) {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    let mut it = words.into_iter();
    let host = it.next().unwrap_or_default();
    let vars = it
        .filter_map(|w| {
            w.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    (host, vars)
}

fn ini(text: &str, out: &mut Imported) -> Model {
    let mut m = Model::default();
    // (group, kind): kind is "", "children" or "vars".
    let mut section = ("ungrouped".to_string(), String::new());
    for (i, raw) in text.lines().enumerate() {
        let n = Some(i + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = match inner.split_once(':') {
                Some((g, k)) => (g.to_string(), k.to_string()),
                None => (inner.to_string(), String::new()),
            };
            m.members.entry(section.0.clone()).or_default();
            continue;
        }
        match section.1.as_str() {
            "vars" => {
                if let Some((k, v)) = line.split_once('=') {
                    let v = v.trim().trim_matches(['"', '\'']).to_string();
                    m.group_vars
                        .entry(section.0.clone())
                        .or_default()
                        .set(k.trim(), v);
                }
            }
            "children" => {
                m.children
                    .entry(section.0.clone())
                    .or_default()
                    .insert(line.to_string());
            }
            "" => {
                let (pattern, vars) = host_line(line);
                let Some(hosts) = expand(&pattern) else {
                    out.skip(n, format!("host pattern `{pattern}` not expanded"));
                    continue;
                };
                for h in hosts {
                    let v = m.host(&h, n);
                    for (k, val) in &vars {
                        v.set(k, val.clone());
                    }
                    m.members.entry(section.0.clone()).or_default().insert(h);
                }
            }
            other => out.skip(n, format!("section `[{}:{other}]` not mapped", section.0)),
        }
    }
    m
}

fn yaml_vars(v: &serde_yaml::Value, vars: &mut Vars) {
    if let Some(map) = v.as_mapping() {
        for (k, val) in map {
            let Some(k) = k.as_str() else { continue };
            let val = match val {
                serde_yaml::Value::String(s) => s.clone(),
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                _ => {
                    vars.other.insert(k.to_string());
                    continue;
                }
            };
            vars.set(k, val);
        }
    }
}

fn yaml_group(name: &str, v: &serde_yaml::Value, m: &mut Model, out: &mut Imported, depth: usize) {
    m.members.entry(name.to_string()).or_default();
    if depth > 64 {
        out.skip(None, format!("group `{name}`: nested too deep"));
        return;
    }
    let Some(map) = v.as_mapping() else { return };
    if let Some(hosts) = map.get("hosts").and_then(|h| h.as_mapping()) {
        for (h, hv) in hosts {
            let Some(pattern) = h.as_str() else { continue };
            let Some(expanded) = expand(pattern) else {
                out.skip(None, format!("host pattern `{pattern}` not expanded"));
                continue;
            };
            for host in expanded {
                yaml_vars(hv, m.host(&host, None));
                m.members.entry(name.to_string()).or_default().insert(host);
            }
        }
    }
    if let Some(vars) = map.get("vars") {
        yaml_vars(vars, m.group_vars.entry(name.to_string()).or_default());
    }
    if let Some(children) = map.get("children").and_then(|c| c.as_mapping()) {
        for (c, cv) in children {
            let Some(c) = c.as_str() else { continue };
            m.children
                .entry(name.to_string())
                .or_default()
                .insert(c.to_string());
            yaml_group(c, cv, m, out, depth + 1);
        }
    }
}

/// An Ansible inventory's text, INI or YAML (told apart by parsing: a YAML
/// mapping at the top is YAML); `source` names it in the output. A YAML
/// file that does not parse is an error with its line.
pub fn ansible(text: &str, source: &str) -> Result<Imported, serde_yaml::Error> {
    let mut out = Imported::default();
    let source = format!("`trustmesh import ansible` of {source}");
    let looks_ini = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        .is_some_and(|l| l.starts_with('[') || !l.contains(':'));
    let model = if looks_ini {
        ini(text, &mut out)
    } else {
        let doc: serde_yaml::Value = serde_yaml::from_str(text)?;
        let mut m = Model::default();
        if let Some(map) = doc.as_mapping() {
            for (g, gv) in map {
                if let Some(g) = g.as_str() {
                    yaml_group(g, gv, &mut m, &mut out, 0);
                }
            }
        }
        m
    };
    Ok(model.into_imported(source, out))
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges_expand_with_their_width() {
        assert_eq!(
            expand("w[01:03].lab").unwrap(),
            ["w01.lab", "w02.lab", "w03.lab"]
        );
        assert_eq!(expand("n[1:5:2]").unwrap(), ["n1", "n3", "n5"]);
        assert_eq!(expand("plain").unwrap(), ["plain"]);
        assert!(expand("w[a:c]").is_none());
    }
}
