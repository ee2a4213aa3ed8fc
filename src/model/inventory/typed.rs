//! Stages 1/2 and 2 of loading: from the YAML value to the typed file,
//! the version first, then the structure against the generated schema
//! ([`super::structure`]).

use serde_yaml::Value as Yaml;

use super::limits::shown;
use super::model::InventoryFile;
use super::spans::{Path, Seg};
use super::structure;
use super::validate::problem;
use super::Problem;

/// Stages 2 and 1/2 of loading: the version, then the structure; returns the
/// typed file when it can still be built (problems in optional keys are
/// dropped from the value so later checks still run).
pub fn check_structure(value: &Yaml, problems: &mut Vec<Problem>) -> Option<InventoryFile> {
    let root = Path::root();
    let Yaml::Mapping(map) = value else {
        problems.push(problem(
            root,
            "trustmesh::inventory::type",
            "an inventory is a mapping of keys such as `version:`, `manager:` and `workers:`"
                .into(),
            "expected a mapping",
            Some("start the file with `version: 1`".into()),
        ));
        return None;
    };
    match map.get("version") {
        None => problems.push(problem(
            root.clone(),
            "trustmesh::inventory::version",
            "missing `version`".into(),
            "no `version: 1` in this file",
            Some("add `version: 1` at the top of the file".into()),
        )),
        Some(Yaml::Number(n)) if n.as_u64() == Some(1) => {}
        Some(v) => problems.push(problem(
            root.key("version"),
            "trustmesh::inventory::version",
            format!("unknown inventory version {}", scalar_text(v)),
            "this trustmesh reads version 1",
            Some("write `version: 1`, or upgrade trustmesh if the file is newer".into()),
        )),
    }
    let schema = super::model::json_schema();
    let found = structure::check(&schema, value);
    // Drop what is wrong so the remaining checks can run on the rest. Only
    // keys of mappings are removed: removing a list item would shift the
    // paths of the items after it.
    let mut pruned = value.clone();
    let mut prunable = true;
    for p in &found {
        if p.path.0.first() == Some(&Seg::Key("version".into())) {
            continue;
        }
        prunable &= remove_key(&mut pruned, &p.path);
    }
    problems.extend(
        found
            .into_iter()
            .filter(|p| p.path.0.first() != Some(&Seg::Key("version".into()))),
    );
    if !prunable {
        return None;
    }
    if let Yaml::Mapping(m) = &mut pruned {
        m.insert("version".into(), 1.into());
    }
    match serde_yaml::from_value::<InventoryFile>(pruned) {
        Ok(f) => Some(f),
        Err(e) if problems.is_empty() => {
            // The schema and the types disagree: a bug, but still no panic.
            problems.push(problem(
                Path::root(),
                "trustmesh::inventory::type",
                format!("the inventory does not fit version 1: {e}"),
                "here",
                None,
            ));
            None
        }
        Err(_) => None,
    }
}

fn scalar_text(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => format!("`{}`", shown(s)),
        Yaml::Number(n) => n.to_string(),
        Yaml::Bool(b) => b.to_string(),
        _ => "(not a number)".into(),
    }
}

/// Remove the value at `path` when its last step is a mapping key.
fn remove_key(v: &mut Yaml, path: &Path) -> bool {
    let Some((last, parents)) = path.0.split_last() else {
        return false;
    };
    let Seg::Key(last) = last else { return false };
    let mut cur = v;
    for seg in parents {
        let next = match (seg, cur) {
            (Seg::Key(k), Yaml::Mapping(m)) => m.get_mut(k.as_str()),
            (Seg::Index(i), Yaml::Sequence(s)) => s.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return false,
        }
    }
    match cur {
        Yaml::Mapping(m) => {
            // Key order does not matter to the typed file, and a shifting
            // remove would cost the mapping's length for each bad key.
            m.swap_remove(last.as_str());
            true
        }
        _ => false,
    }
}
