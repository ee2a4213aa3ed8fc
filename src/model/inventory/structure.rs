//! Structural checks: is every key known, every value of the right type?
//!
//! serde stops at the first mismatch, but a user who fixes one mistake only
//! to be shown the next one wastes a run per typo. This checker walks the
//! YAML value against the JSON Schema generated from [`super::model`] (the
//! same schema editors use) and collects every mismatch with its path. Only
//! the subset of JSON Schema that schemars emits is understood: `$ref`,
//! `allOf`, `anyOf`, `oneOf`, `type`, `enum`, `properties`, `required`,
//! `additionalProperties`, `items`, `minimum`, `maximum` and integer
//! `format`s. Patterns are left to [`super::validate`], which can say more
//! precisely what is wrong with a name or a fingerprint.

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

use super::limits::shown;
use super::spans::{Path, Seg};
use super::Problem;

/// Check `value` against the inventory schema, returning every mismatch.
pub fn check(schema: &Json, value: &Yaml) -> Vec<Problem> {
    let mut errs = Vec::new();
    Walker { root: schema }.check(schema, value, &Path::root(), &mut errs);
    errs
}

struct Walker<'a> {
    root: &'a Json,
}

fn kind_of(v: &Yaml) -> &'static str {
    match v {
        Yaml::Null => "nothing",
        Yaml::Bool(_) => "a boolean",
        Yaml::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Yaml::Number(_) => "a number",
        Yaml::String(_) => "text",
        Yaml::Sequence(_) => "a list",
        Yaml::Mapping(_) => "a mapping",
        Yaml::Tagged(_) => "a tagged value",
    }
}

fn type_matches(ty: &str, v: &Yaml) -> bool {
    match (ty, v) {
        ("null", Yaml::Null) => true,
        ("boolean", Yaml::Bool(_)) => true,
        ("integer", Yaml::Number(n)) => n.is_i64() || n.is_u64(),
        ("number", Yaml::Number(_)) => true,
        ("string", Yaml::String(_)) => true,
        ("array", Yaml::Sequence(_)) => true,
        ("object", Yaml::Mapping(_)) => true,
        _ => false,
    }
}

fn type_word(ty: &str) -> &'static str {
    match ty {
        "null" => "nothing",
        "boolean" => "true or false",
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "text",
        "array" => "a list",
        "object" => "a mapping",
        _ => "a value",
    }
}

fn types_of(schema: &Json) -> Vec<&str> {
    match schema.get("type") {
        Some(Json::String(s)) => vec![s.as_str()],
        Some(Json::Array(a)) => a.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn yaml_to_json_scalar(v: &Yaml) -> Option<Json> {
    match v {
        Yaml::Null => Some(Json::Null),
        Yaml::Bool(b) => Some(Json::Bool(*b)),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Json::from(i))
            } else if let Some(u) = n.as_u64() {
                Some(Json::from(u))
            } else {
                n.as_f64().map(Json::from)
            }
        }
        Yaml::String(s) => Some(Json::String(s.clone())),
        _ => None,
    }
}

fn show(v: &Yaml) -> String {
    match v {
        Yaml::String(s) => format!("`{}`", shown(s)),
        Yaml::Number(n) => format!("`{n}`"),
        Yaml::Bool(b) => format!("`{b}`"),
        other => kind_of(other).to_string(),
    }
}

/// The closest of `candidates` to `word`, when it is close enough to be a
/// likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

impl<'a> Walker<'a> {
    fn resolve(&self, schema: &'a Json) -> &'a Json {
        let mut s = schema;
        for _ in 0..16 {
            match s.get("$ref").and_then(Json::as_str) {
                Some(r) => {
                    let name = r.rsplit('/').next().unwrap_or_default();
                    match self
                        .root
                        .get("definitions")
                        .or_else(|| self.root.get("$defs"))
                        .and_then(|d| d.get(name))
                    {
                        Some(t) => s = t,
                        None => return s,
                    }
                }
                None => return s,
            }
        }
        s
    }

    /// The schema that decides a branch's shape: through `$ref` and a
    /// single-element `allOf` (how schemars wraps a described reference).
    fn shape_of(&self, schema: &'a Json) -> &'a Json {
        let mut s = self.resolve(schema);
        for _ in 0..8 {
            match s.get("allOf").and_then(Json::as_array) {
                Some(all) if all.len() == 1 && s.get("type").is_none() => s = self.resolve(&all[0]),
                _ => break,
            }
        }
        s
    }

    fn errors_of(&self, schema: &'a Json, v: &Yaml, path: &Path) -> Vec<Problem> {
        let mut e = Vec::new();
        self.check(schema, v, path, &mut e);
        e
    }

    /// A short description of what a schema accepts, for "expected ...".
    fn describe(&self, schema: &'a Json) -> String {
        let s = self.shape_of(schema);
        if let Some(e) = s.get("enum").and_then(Json::as_array) {
            let vals: Vec<String> = e.iter().map(|v| v.to_string().replace('"', "`")).collect();
            return format!("one of {}", vals.join(", "));
        }
        let tys = types_of(s);
        if tys.contains(&"object") {
            if let Some(props) = s.get("properties").and_then(Json::as_object) {
                let keys: Vec<String> = props.keys().map(|k| format!("`{k}:`")).collect();
                return format!("a mapping with {}", keys.join(", "));
            }
        }
        if tys.contains(&"array") {
            if let Some(item) = s.get("items") {
                return format!("a list of {}", self.describe(item));
            }
        }
        if !tys.is_empty() {
            return tys
                .iter()
                .map(|t| type_word(t))
                .collect::<Vec<_>>()
                .join(" or ");
        }
        "a valid value".to_string()
    }

    fn check(&self, schema: &'a Json, v: &Yaml, path: &Path, errs: &mut Vec<Problem>) {
        let schema = self.resolve(schema);
        if let Yaml::Tagged(t) = v {
            errs.push(Problem {
                extra: Vec::new(),
                path: path.clone(),
                at_key: false,
                code: "trustmesh::inventory::tag",
                message: format!(
                    "YAML tag `{}` is not supported here",
                    shown(&t.tag.to_string())
                ),
                label: "tagged value".into(),
                help: Some("remove the `!tag`: the inventory holds plain values".into()),
            });
            return;
        }
        if let Some(all) = schema.get("allOf").and_then(Json::as_array) {
            for s in all {
                self.check(s, v, path, errs);
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(branches) = schema.get(key).and_then(Json::as_array) {
                self.check_any(branches, v, path, errs);
            }
        }
        let tys = types_of(schema);
        if !tys.is_empty() && !tys.iter().any(|t| type_matches(t, v)) {
            let want: Vec<&str> = tys
                .iter()
                .filter(|t| **t != "null")
                .map(|t| type_word(t))
                .collect();
            errs.push(wrong_type(
                path,
                v,
                &want.join(" or "),
                format!("expected {}", want.join(" or ")),
                schema
                    .get("description")
                    .and_then(Json::as_str)
                    .map(|d| format!("`{}`: {}", last_key(path), d)),
            ));
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Json::as_array) {
            let got = yaml_to_json_scalar(v);
            if !got.as_ref().is_some_and(|g| allowed.contains(g)) {
                let names: Vec<&str> = allowed.iter().filter_map(Json::as_str).collect();
                let guess = match v {
                    Yaml::String(s) => did_you_mean(s, names.iter().copied()),
                    _ => None,
                };
                errs.push(Problem {
                    extra: Vec::new(),
                    path: path.clone(),
                    at_key: false,
                    code: "trustmesh::inventory::value",
                    message: format!("{} is not a valid `{}`", show(v), last_key(path)),
                    label: format!("expected one of: {}", names.join(", ")),
                    help: Some(match guess {
                        Some(g) => format!("did you mean `{g}`?"),
                        None => format!("use one of: {}", names.join(", ")),
                    }),
                });
                return;
            }
        }
        if let Yaml::Number(n) = v {
            self.check_range(schema, n, path, errs);
        }
        if let Yaml::Mapping(m) = v {
            self.check_mapping(schema, m, path, errs);
        }
        if let (Yaml::Sequence(items), Some(item_schema)) = (v, schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.check(item_schema, item, &path.index(i), errs);
            }
        }
    }

    fn check_any(&self, branches: &'a [Json], v: &Yaml, path: &Path, errs: &mut Vec<Problem>) {
        let mut results = Vec::new();
        for b in branches {
            let e = self.errors_of(b, v, path);
            if e.is_empty() {
                return;
            }
            results.push((b, e));
        }
        // Report the errors of the one branch of the right shape, when there
        // is one: "unknown key `grop`" says more than "expected ...".
        let shaped: Vec<_> = results
            .iter()
            .filter(|(b, _)| {
                let r = self.shape_of(b);
                let tys = types_of(r);
                tys.iter().any(|t| type_matches(t, v))
                    || (tys.is_empty() && r.get("enum").is_some() && matches!(v, Yaml::String(_)))
            })
            .collect();
        if shaped.len() == 1 {
            errs.extend(shaped[0].1.iter().cloned());
            return;
        }
        let wants: Vec<String> = branches
            .iter()
            .filter(|b| types_of(self.shape_of(b)) != ["null"])
            .map(|b| self.describe(b))
            .collect();
        errs.push(wrong_type(
            path,
            v,
            &wants.join(", or "),
            format!("found {}", kind_of(v)),
            Some(format!("write {}", wants.join(", or "))),
        ));
    }

    fn check_range(
        &self,
        schema: &Json,
        n: &serde_yaml::Number,
        path: &Path,
        errs: &mut Vec<Problem>,
    ) {
        let Some(x) = n.as_f64() else { return };
        let fmt_max = match schema.get("format").and_then(Json::as_str) {
            Some("uint8") => Some(u8::MAX as f64),
            Some("uint16") => Some(u16::MAX as f64),
            Some("uint32") => Some(u32::MAX as f64),
            _ => None,
        };
        let min = schema.get("minimum").and_then(Json::as_f64);
        let max = schema.get("maximum").and_then(Json::as_f64).or(fmt_max);
        let low = min.is_some_and(|m| x < m);
        let high = max.is_some_and(|m| x > m);
        if low || high {
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("from {a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            errs.push(Problem {
                extra: Vec::new(),
                path: path.clone(),
                at_key: false,
                code: "trustmesh::inventory::range",
                message: format!("`{}` is out of range: {}", path, n),
                label: format!("must be {range}"),
                help: Some(format!("`{}` must be {range}", last_key(path))),
            });
        }
    }

    fn check_mapping(
        &self,
        schema: &'a Json,
        m: &serde_yaml::Mapping,
        path: &Path,
        errs: &mut Vec<Problem>,
    ) {
        let props = schema.get("properties").and_then(Json::as_object);
        let additional = schema.get("additionalProperties");
        for (k, val) in m {
            let Some(key) = k.as_str() else {
                errs.push(Problem {
                    extra: Vec::new(),
                    path: path.clone(),
                    at_key: false,
                    code: "trustmesh::inventory::key",
                    message: format!("a key in `{path}` is {}, not text", kind_of(k)),
                    label: "keys must be text".into(),
                    help: Some("write keys as plain words, such as `name:`".into()),
                });
                continue;
            };
            let child = path.key(key);
            match props.and_then(|p| p.get(key)) {
                Some(s) => self.check(s, val, &child, errs),
                None => match additional {
                    Some(Json::Bool(false)) => {
                        let names = props
                            .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>())
                            .unwrap_or_default();
                        let help = match did_you_mean(key, names.iter().copied()) {
                            Some(g) => format!("did you mean `{g}`?"),
                            None => format!("known keys here: {}", names.join(", ")),
                        };
                        errs.push(Problem {
                            extra: Vec::new(),
                            path: child,
                            at_key: true,
                            code: "trustmesh::inventory::unknown_key",
                            message: format!("unknown key `{}` in {}", shown(key), where_(path)),
                            label: "unknown key".into(),
                            help: Some(help),
                        });
                    }
                    Some(s @ Json::Object(_)) => self.check(s, val, &child, errs),
                    _ => {}
                },
            }
        }
        if let Some(req) = schema.get("required").and_then(Json::as_array) {
            for r in req.iter().filter_map(Json::as_str) {
                if !m.contains_key(r) {
                    let desc = props
                        .and_then(|p| p.get(r))
                        .and_then(|s| s.get("description"))
                        .and_then(Json::as_str)
                        .unwrap_or("");
                    errs.push(Problem {
                        extra: Vec::new(),
                        path: path.clone(),
                        at_key: false,
                        code: "trustmesh::inventory::missing_key",
                        message: format!("missing key `{r}` in {}", where_(path)),
                        label: format!("`{r}` is missing here"),
                        help: Some(if desc.is_empty() {
                            format!("add `{r}:`")
                        } else {
                            format!("add `{r}:` ({})", desc.trim_end_matches('.'))
                        }),
                    });
                }
            }
        }
    }
}

/// "`PATH` must be WANT, found KIND".
fn wrong_type(path: &Path, v: &Yaml, want: &str, label: String, help: Option<String>) -> Problem {
    Problem {
        extra: Vec::new(),
        path: path.clone(),
        at_key: false,
        code: "trustmesh::inventory::type",
        message: format!("`{path}` must be {want}, found {}", kind_of(v)),
        label,
        help,
    }
}

fn last_key(path: &Path) -> String {
    for seg in path.0.iter().rev() {
        if let Seg::Key(k) = seg {
            return k.clone();
        }
    }
    path.to_string()
}

fn where_(path: &Path) -> String {
    if path.0.is_empty() {
        "the inventory".to_string()
    } else {
        format!("`{path}`")
    }
}
