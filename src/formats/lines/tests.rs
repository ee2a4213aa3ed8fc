use super::*;
use proptest::prelude::*;

/// A format where every line is opaque text and a line is managed when
/// it holds a marker word anywhere.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Text(String);

impl LineKind for Text {
    const FILE: &'static str = "notes";
    const ENTRY: &'static str = "note";
    type Record = Text;

    fn classify(text: &str) -> Self {
        Text(text.to_owned())
    }

    fn record(&self) -> Option<&Text> {
        Some(self)
    }
}

impl Record for Text {
    /// The toy format's comment is everything after the first word.
    fn comment(&self) -> Option<&str> {
        Some(self.0.split_once(' ')?.1)
    }
}

fn roundtrip(text: &str) -> LineFile<Text> {
    let file = LineFile::parse(text);
    assert_eq!(file.render(), text);
    file
}

fn add(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|&l| l.to_owned()).collect()
}

#[test]
fn lines_keep_their_endings() {
    let file = roundtrip("a\r\n\nb\r\r\n \tc");
    let got: Vec<(&str, LineEnding)> = file
        .lines()
        .iter()
        .map(|l| (l.text(), l.ending()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", LineEnding::CrLf),
            ("", LineEnding::Lf),
            ("b\r", LineEnding::CrLf),
            (" \tc", LineEnding::Missing),
        ]
    );
    assert_eq!(file.lines()[3].kind(), &Text(" \tc".to_owned()));
    assert!(roundtrip("").lines().is_empty());
    assert_eq!(roundtrip("\r").lines()[0].ending(), LineEnding::Missing);
    assert_eq!(
        roundtrip("x\n").lines().last().map(Line::ending),
        Some(LineEnding::Lf)
    );
}

#[test]
fn markers_are_whole_comments_and_node_names() {
    for (node, valid) in [
        ("a", true),
        ("9.a_b-c", true),
        ("N-1", true),
        ("", false),
        ("-a", false),
        ("_a", false),
        ("a/b", false),
        ("a:b", false),
        ("n\u{e9}", false),
    ] {
        assert_eq!(is_node_name(node), valid, "{node:?}");
        let comment = format!("{MARKER_PREFIX}lab/{node}");
        assert_eq!(
            Marker::parse(&comment),
            valid.then_some(Marker::new("lab", node)),
            "{comment:?}"
        );
    }
    let m = |c: &'static str| Marker::parse(c);
    assert_eq!(m("trustmesh:lab/n1"), Some(Marker::new("lab", "n1")));
    assert_eq!(m("trustmesh:lab/n1 \t"), Some(Marker::new("lab", "n1")));
    assert_eq!(
        m("trustmesh:lab/n1").unwrap().to_string(),
        "trustmesh:lab/n1"
    );
    // A marker of trustmesh before clusters were named.
    let legacy = m("trustmesh:n1").unwrap();
    assert_eq!((legacy.cluster, legacy.node), (None, "n1"));
    assert_eq!(legacy.to_string(), "trustmesh:n1");
    // Anything else is someone else's line: a mention among other
    // words, another case, a bad cluster or node name.
    for not in [
        "alice laptop, set up like trustmesh:w09",
        "trustmesh:lab/n1 extra",
        "x trustmesh:lab/n1",
        "Trustmesh:lab/n1",
        "trustmesh:lab/",
        "trustmesh:/n1",
        "trustmesh:-lab/n1",
        "trustmesh:lab/n1/x",
        "trustmesh:",
        "",
    ] {
        assert_eq!(Marker::parse(not), None, "{not:?}");
    }
}

#[test]
fn apply_edits_removes_appends_and_refuses() {
    let text = "keep\r\nold trustmesh:c/a\r\nlast trustmesh:b";
    let file = roundtrip(text);
    assert_eq!(file.apply_edits(&[], &[]).unwrap(), text);
    assert_eq!(
        file.apply_edits(&[1, 1], &add(&["new trustmesh:c/c"]))
            .unwrap(),
        "keep\r\nlast trustmesh:b\r\nnew trustmesh:c/c\r\n"
    );
    // A line with an old marker may be removed (migrated).
    assert_eq!(
        file.apply_edits(&[2], &[]).unwrap(),
        "keep\r\nold trustmesh:c/a\r\n"
    );
    // A tie in endings goes to LF.
    assert_eq!(
        roundtrip("a\r\nb\n")
            .apply_edits(&[], &add(&["x trustmesh:c/n"]))
            .unwrap(),
        "a\r\nb\nx trustmesh:c/n\n"
    );
    assert_eq!(
        roundtrip("")
            .apply_edits(&[], &add(&["x trustmesh:c/n"]))
            .unwrap(),
        "x trustmesh:c/n\n"
    );

    assert_eq!(file.apply_edits(&[0], &[]), Err(EditError::Unmanaged(0)));
    assert_eq!(file.apply_edits(&[3], &[]), Err(EditError::NoSuchLine(3)));
    for bad in [
        "no marker",
        "x trustmesh:c/a\nx",
        "x trustmesh:c/a\r",
        "",
        // Only a cluster's marker is written.
        "x trustmesh:a",
        "x trustmesh:c/a more",
    ] {
        assert_eq!(
            file.apply_edits(&[], &add(&["ok trustmesh:c/x", bad])),
            Err(EditError::BadAddedLine(1)),
            "{bad:?}"
        );
    }
}

#[test]
fn edit_errors_name_the_file() {
    use crate::formats::{authorized_keys as ak, known_hosts as kh};
    // The toy format's words, then those of the two real formats, as
    // they were before this module.
    let cases = [
        (
            EditError::<Text>::NoSuchLine(0).to_string(),
            "notes has no line 1",
        ),
        (
            EditError::<Text>::Unmanaged(4).to_string(),
            "refusing to remove line 5 of notes: it was not written by trustmesh",
        ),
        (
            EditError::<Text>::BadAddedLine(1).to_string(),
            "new notes line #2 is not a single note carrying a trustmesh: marker",
        ),
        (
            ak::KeyFileEditError::NoSuchLine(2).to_string(),
            "authorized_keys has no line 3",
        ),
        (
            kh::HostFileEditError::Unmanaged(0).to_string(),
            "refusing to remove line 1 of known_hosts: it was not written by trustmesh",
        ),
        (
            ak::KeyFileEditError::BadAddedLine(0).to_string(),
            "new authorized_keys line #1 is not a single key line carrying a trustmesh: marker",
        ),
        (
            kh::HostFileEditError::BadAddedLine(1).to_string(),
            "new known_hosts line #2 is not a single host key entry carrying a trustmesh: marker",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn key_fields_read_type_blob_and_comment() {
    const ED: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILR3a5jM8SZ8lYOJdn7V/F7IREASeVBrlnE+CfwVv2LW";
    let line = format!("x ssh-ed25519\t {ED} \t a  b \r");
    let f = key_fields(&line, 2).unwrap();
    assert_eq!(
        (f.key_type, f.base64, f.comment),
        ("ssh-ed25519", ED, Some("a  b"))
    );
    assert_eq!(
        key_fields(&format!("ssh-rsa {ED}  "), 0).unwrap().comment,
        None
    );
    for bad in [
        format!("ssh-foo {ED}"),
        format!("ssh-ed25519{ED}"),
        "ssh-ed25519".to_owned(),
        "ssh-ed25519 ".to_owned(),
        "ssh-ed25519 AAA".to_owned(),
        "ssh-ed25519 AA=A".to_owned(),
        "ssh-ed25519 A===".to_owned(),
        "ssh-ed25519 AA-_".to_owned(),
    ] {
        assert!(key_fields(&bad, 0).is_none(), "{bad:?}");
    }
    assert!(is_base64("AA=="));
    assert!(is_base64("AAA="));
    assert!(is_base64("+/09"));
}

proptest! {
    #[test]
    fn arbitrary_text_round_trips(text in any::<String>()) {
        let file = LineFile::<Text>::parse(&text);
        prop_assert_eq!(file.render(), text.clone());
        for line in file.lines() {
            prop_assert!(!line.text().contains('\n'));
            prop_assert_eq!(&line.kind().0, line.text());
        }
    }

    #[test]
    fn apply_edits_keeps_every_other_byte(
        text in "(x|x trustmesh:n|x trustmesh:c/n|\r|\n|\r\n| ){0,24}",
        remove_mask in prop::collection::vec(any::<bool>(), 24),
        add_nodes in prop::collection::vec("[a-z][a-z0-9]{0,5}", 0..3),
    ) {
        let file = LineFile::<Text>::parse(&text);
        let remove: Vec<usize> = (0..file.lines().len())
            .filter(|&i| remove_mask[i] && file.lines()[i].marker().is_some())
            .collect();
        let add: Vec<String> = add_nodes.iter().map(|n| format!("x {MARKER_PREFIX}c/{n}")).collect();
        let out = file.apply_edits(&remove, &add).unwrap();
        // The kept lines, with their bytes and endings, then the new ones.
        let kept: Vec<&Line<Text>> = file
            .lines()
            .iter()
            .enumerate()
            .filter_map(|(i, l)| (!remove.contains(&i)).then_some(l))
            .collect();
        let kept_text: String = kept.iter().map(|l| [l.text(), l.ending().as_str()].concat()).collect();
        prop_assert!(out.starts_with(&kept_text));
        let again = LineFile::<Text>::parse(&out);
        prop_assert_eq!(again.lines().len(), kept.len() + add.len());
        let tail: Vec<&str> = again.lines()[kept.len()..].iter().map(Line::text).collect();
        prop_assert_eq!(tail, add.iter().map(String::as_str).collect::<Vec<_>>());
    }
}
