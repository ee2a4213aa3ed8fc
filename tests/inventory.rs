//! The inventory contract: worked examples stay valid (for the parser and
//! for the JSON Schema editors use), the schema matches the Rust model, and
//! every kind of mistake is reported with its place, all at once.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use trustmesh::model::inventory::{Inventory, InventoryError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("inventories"))
        .expect("inventories/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn committed_schema_matches_the_rust_model() {
    let path = root().join("schemas/inventory.schema.json");
    let generated = trustmesh::model::inventory::model::json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schemas/inventory.schema.json is out of date with src/model/inventory/model.rs; \
         regenerate it with `UPDATE_SCHEMA=1 cargo test --test inventory`"
    );
}

#[test]
fn every_example_is_valid_for_the_parser_and_the_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("schemas/inventory.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let files = examples();
    assert!(
        files.len() >= 5,
        "expected the worked examples, found {files:?}"
    );
    for file in files {
        if let Err(e) = Inventory::load(&file) {
            panic!("{} does not validate: {e:?}", file.display());
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let value: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "{} fails the schema: {errors:?}",
            file.display()
        );
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/inventory.schema.json"),
            "{} should point editors at the schema",
            file.display()
        );
    }
}

#[test]
fn the_schema_rejects_what_the_parser_rejects_structurally() {
    let schema = trustmesh::model::inventory::model::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    for bad in [
        "version: 1\nmanager: {name: m}\nworkers: [{name: a, address: h, colour: red}]\n",
        "version: 1\nmanager: {name: m}\nworkers: [{name: a, address: h, port: 70000}]\n",
        "version: 1\nmanager: {name: m}\ndefaults: {os: beos}\n",
        "version: 1\nmanager: {name: m}\nmesh: [{grp: x}]\n",
        "version: 1\nworkers: []\n",
    ] {
        let value: serde_json::Value = serde_yaml::from_str(bad).unwrap();
        assert!(!validator.is_valid(&value), "schema accepted {bad:?}");
        assert!(
            Inventory::from_str_named("t.yaml", bad).is_err(),
            "parser accepted {bad:?}"
        );
    }
}

/// (code, line, column) of every problem reported for `text`.
fn problems(text: &str) -> Vec<(String, usize, usize)> {
    match Inventory::from_str_named("t.yaml", text) {
        Ok(_) => Vec::new(),
        Err(e) => {
            let list: Vec<_> = e
                .problems()
                .iter()
                .map(|p| {
                    (
                        p.problem
                            .code
                            .trim_start_matches("trustmesh::inventory::")
                            .to_string(),
                        p.line,
                        p.column,
                    )
                })
                .collect();
            if list.is_empty() {
                vec![(format!("{e}"), 0, 0)]
            } else {
                list
            }
        }
    }
}

#[test]
fn a_file_with_many_mistakes_reports_all_of_them_with_their_places() {
    let text = std::fs::read_to_string(root().join("tests/fixtures/many-mistakes.yaml")).unwrap();
    let got = problems(&text);
    let want: Vec<(String, usize, usize)> = [
        ("unknown_key", 3, 3),
        ("value", 4, 7),
        ("fingerprint", 10, 15),
        ("address", 12, 14),
        ("user", 17, 11),
        ("duplicate_name", 11, 11),
        ("manager_name", 18, 11),
        ("unknown_node", 20, 18),
        ("manager_address", 6, 3),
        ("mesh_size", 22, 5),
        ("unknown_group", 23, 12),
    ]
    .iter()
    .map(|(c, l, col)| (c.to_string(), *l, *col))
    .collect();
    assert_eq!(got, want);
}

const OK: &str = "version: 1\nmanager: {name: m, address: 10.0.0.1}\nworkers:\n  - {name: a, address: 10.0.0.2}\n  - {name: b, address: 10.0.0.3}\n";

#[test]
fn minimal_inventory_is_valid() {
    assert_eq!(problems(OK), vec![]);
}

#[test]
fn each_mistake_has_its_own_code_and_place() {
    let cases: &[(&str, &str, usize, usize)] = &[
        ("manager: {name: m}\n", "version", 1, 1),
        ("version: 2\nmanager: {name: m}\n", "version", 1, 10),
        ("version: 1\n", "missing_key", 1, 1),
        ("version: 1\nmanager: {name: m}\nworkers: {name: a}\n", "type", 3, 10),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, adress: h}\n", "unknown_key", 4, 15),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: 'a b', address: h}\n", "name", 4, 12),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: '-h'}\n", "address", 4, 24),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h, port: 0}\n", "range", 4, 33),
        (
            "version: 1\nmanager: {name: m}\nbastions:\n  - {name: b, address: h, jump: a}\nworkers:\n  - {name: a, address: h, jump: b}\n",
            "jump_cycle",
            4,
            33,
        ),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h, jump: a}\n", "jump_cycle", 4, 33),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h, jump: zz}\n", "unknown_node", 4, 33),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h, jump: m}\n", "jump", 4, 33),
        ("version: 1\nmanager: {name: m, address: h}\nreverse: al\n", "value", 3, 10),
        ("version: 1\nmanager: {name: m}\nmesh:\n  - {grop: x}\n", "unknown_key", 4, 6),
        ("version: 1\nmanager: {name: m}\nworkers:\n  - {name: a, address: h}\nmesh: [[a, a]]\n", "mesh_repeat", 5, 12),
        ("version: 1\nmanager: {name: m}\noptions: {prune: maybe}\n", "type", 3, 18),
    ];
    let mut wrong = Vec::new();
    for (text, code, line, col) in cases {
        let got = problems(text);
        if !got
            .iter()
            .any(|(c, l, k)| c == code && l == line && k == col)
        {
            wrong.push(format!(
                "for {text:?} expected {code} at {line}:{col}, got {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn syntax_errors_carry_the_place() {
    let err = Inventory::from_str_named("t.yaml", "version: 1\nmanager: [\n").unwrap_err();
    assert!(matches!(err, InventoryError::Syntax { .. }), "{err:?}");
    let rendered = render(&err);
    assert!(rendered.contains("t.yaml:"), "{rendered}");
}

#[test]
fn defaults_groups_and_all_are_resolved() {
    let inv = Inventory::load(&root().join("inventories/grid5000.yaml")).unwrap();
    let access = inv.find("access").unwrap();
    for (_, w) in inv.workers() {
        assert_eq!(w.user.as_deref(), Some("jdoe"));
        assert_eq!(w.jump, Some(access));
    }
    assert_eq!(
        inv.nodes[access].jump, None,
        "a bastion is not reached through itself"
    );
    assert_eq!(inv.mesh, vec![vec![2, 3, 4, 5]]);
    let inv = Inventory::from_str_named(
        "t",
        "version: 1\ndefaults: {user: u, port: 2200, os: macos, key_type: rsa}\nmanager: {name: m, address: h}\nworkers:\n  - {name: a, address: h, port: 22, user: v}\n  - {name: b, address: h}\nreverse: all\n",
    )
    .unwrap();
    let a = &inv.nodes[inv.find("a").unwrap()];
    let b = &inv.nodes[inv.find("b").unwrap()];
    assert_eq!((a.port, a.user.as_deref()), (22, Some("v")));
    assert_eq!((b.port, b.user.as_deref()), (2200, Some("u")));
    assert_eq!(b.os, trustmesh::model::inventory::Os::Macos);
    assert_eq!(b.key_type, trustmesh::model::inventory::KeyType::Rsa);
    assert_eq!(
        inv.manager().user,
        None,
        "the manager's user is not taken from defaults"
    );
    assert_eq!(inv.reverse, vec![1, 2]);
    assert!(inv.options.prune);
}

fn render(e: &dyn miette::Diagnostic) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .render_report(&mut out, e)
        .unwrap();
    out
}

#[test]
fn a_missing_file_says_what_to_do() {
    let err = Inventory::load(Path::new("/nonexistent/inventory.yaml")).unwrap_err();
    let text = render(&err);
    assert!(
        text.contains("cannot read inventory /nonexistent/inventory.yaml"),
        "{text}"
    );
    assert!(text.contains("TRUSTMESH_INVENTORY"), "{text}");
}

fn yaml_value() -> impl Strategy<Value = serde_yaml::Value> {
    let leaf = prop_oneof![
        Just(serde_yaml::Value::Null),
        any::<bool>().prop_map(serde_yaml::Value::Bool),
        any::<i64>().prop_map(|n| serde_yaml::Value::Number(n.into())),
        "[a-z0-9 ._:@-]{0,12}".prop_map(serde_yaml::Value::String),
        prop_oneof![
            Just("version"),
            Just("manager"),
            Just("workers"),
            Just("name"),
            Just("address"),
            Just("mesh"),
            Just("reverse"),
            Just("all"),
            Just("group"),
            Just("jump"),
            Just("bastions"),
            Just("groups")
        ]
        .prop_map(|s| serde_yaml::Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_yaml::Value::Sequence),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("version"),
                        Just("manager"),
                        Just("workers"),
                        Just("bastions"),
                        Just("name"),
                        Just("address"),
                        Just("jump"),
                        Just("mesh"),
                        Just("reverse"),
                        Just("group"),
                        Just("defaults"),
                        Just("options"),
                        Just("user"),
                        Just("port"),
                        Just("groups"),
                        Just("x")
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| {
                let mut m = serde_yaml::Mapping::new();
                for (k, v) in kv {
                    m.insert(serde_yaml::Value::String(k.into()), v);
                }
                serde_yaml::Value::Mapping(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        let _ = Inventory::from_str_named("fuzz.yaml", &text).map_err(|e| render(&e));
    }

    #[test]
    fn arbitrary_yamlish_text_never_panics(text in "[a-z:\\[\\]{}, \\n\\-'\"&*!|>#0-9]{0,200}") {
        let _ = Inventory::from_str_named("fuzz.yaml", &text).map_err(|e| render(&e));
    }

    #[test]
    fn arbitrary_yaml_documents_never_panic(v in yaml_value()) {
        let text = serde_yaml::to_string(&v).unwrap();
        let _ = Inventory::from_str_named("fuzz.yaml", &text).map_err(|e| render(&e));
    }
}

#[test]
fn access_is_shell_by_default_sftp_on_request_and_always_on_windows() {
    use trustmesh::model::inventory::Access;
    let text = "version: 1\nmanager: { name: m }\ndefaults: { access: sftp }\nworkers:\n  - { name: a, address: 192.0.2.1, access: shell }\n  - { name: b, address: 192.0.2.2 }\n  - { name: w, address: 192.0.2.3, os: windows }\n";
    let inv = Inventory::from_str_named("a.yaml", text).unwrap();
    let access = |n: &str| inv.nodes[inv.find(n).unwrap()].access;
    assert_eq!(access("m"), Access::Shell);
    assert_eq!(access("a"), Access::Shell);
    assert_eq!(access("b"), Access::Sftp);
    assert_eq!(access("w"), Access::Sftp);
    // A Windows node has no POSIX shell: asking for one is a mistake, placed.
    let bad = "version: 1\nmanager: { name: m }\nworkers:\n  - name: w\n    address: 192.0.2.3\n    os: windows\n    access: shell\n";
    assert_eq!(problems(bad), vec![("access".to_string(), 7, 13)]);
}
