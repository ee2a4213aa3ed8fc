//! The batch's encoding and decoding, without a shell.

use super::*;
use crate::transport::scripts::{cksum, REPLACE_FILE};

const OK: StepOutcome = StepOutcome::Ran(Outcome::Ok);

/// A compare-and-swap replace of `path` (shared with the shell tests).
pub(super) fn replace(path: &str, expected: &str, mode: Option<u32>, content: &[u8]) -> Action {
    Action::Replace {
        path: path.into(),
        expected: expected.into(),
        mode,
        content: content.to_vec(),
        sudo: false,
    }
}

/// The read-back's request (shared with the shell tests).
pub(super) fn probe() -> ProbeRequest {
    ProbeRequest {
        read: vec!["authorized_keys".into(), "known_hosts".into()],
        stat_only: vec!["id_ed25519".into()],
        ..Default::default()
    }
}

#[test]
fn encoding_quotes_every_word_and_puts_contents_on_stdin() {
    let steps = [
        Step::new(Action::MkdirSsh),
        Step::new(replace(
            ".ssh/authorized_keys",
            "absent",
            Some(0o600),
            b"a\n",
        ))
        .after(&[0]),
        Step::new(Action::Chmod {
            path: ".ssh/authorized_keys".into(),
            mode: 0o600,
        })
        .after(&[0, 1]),
        Step::new(replace(".ssh/known_hosts", "1 2", None, b"$(b)\n")),
    ];
    let enc = encode(&steps, &probe()).unwrap();
    assert_eq!(enc.stdin, b"a\n$(b)\n");
    let words: Vec<&str> = enc.args.iter().map(String::as_str).collect();
    let (sum_a, sum_b) = (cksum(b"a\n"), cksum(b"$(b)\n"));
    #[rustfmt::skip]
    let want = [
        "v1", "", "",
        "mkdir-ssh", "-", "0", "", "", "", "",
        "replace", "0", "2", ".ssh/authorized_keys", "absent", "0600", &sum_a,
        "chmod", "0,1", "0", "0600", ".ssh/authorized_keys", "", "",
        "replace", "-", "5", ".ssh/known_hosts", "1 2", "keep", &sum_b,
        "--probe", "--read", "authorized_keys", "known_hosts", "--stat", "id_ed25519",
    ];
    assert_eq!(words, want);
    let mut line = format!("sh -c {} trustmesh", shell_quote(scripts::BATCH));
    for w in want {
        line.push(' ');
        line.push_str(&shell_quote(w));
    }
    assert_eq!(enc.line, line);
    // No content travels in the command line.
    assert!(!enc.line.contains("$(b)"));
}

#[test]
fn a_sudo_step_brings_its_script_and_bad_steps_are_refused() {
    let sudo = Step::new(Action::Replace {
        path: "/etc/hosts".into(),
        expected: "1 2".into(),
        mode: None,
        content: b"x\n".to_vec(),
        sudo: true,
    });
    let enc = encode(&[sudo], &probe()).unwrap();
    assert_eq!(enc.args[1], REPLACE_FILE);
    assert_eq!(enc.args[2], "");
    assert_eq!(enc.args[3], "sudo-replace");
    let later = Step::new(Action::MkdirSsh).after(&[0]);
    assert!(matches!(
        encode(&[later], &probe()),
        Err(BatchError::InvalidStep { index: 0, .. })
    ));
    let nul = Step::new(Action::RemoveLeftover {
        path: ".ssh/.trustmesh.a\0b".into(),
    });
    assert!(matches!(
        encode(&[nul], &probe()),
        Err(BatchError::InvalidStep { index: 0, .. })
    ));
    let bad_probe = ProbeRequest {
        read: vec!["../x".into()],
        ..Default::default()
    };
    assert!(matches!(encode(&[], &bad_probe), Err(BatchError::Probe(_))));
}

/// A synthetic report: login noise first, outputs that look like records
/// (read by their byte counts, never by their lines), a skip, the probe.
#[test]
fn decoding_reads_records_by_their_byte_counts() {
    let probe_out = b"TRUSTMESH-PROBE-BEGIN v1\nuser a\nuid 1\ngid 1\nhostname h\nhome /h\nhome-stat dir 0700 1 1\nssh-stat missing\nTRUSTMESH-PROBE-END\n";
    let tricky = b"TM-ERR x\nstep 1 ran 0 6 0\nTM-OK\nTM-BATCH-END\n";
    let mut out = b"motd: hello\nTM-BATCH-BEGIN v0\n\nTM-BATCH-BEGIN v1\n".to_vec();
    out.extend(format!("step 0 ran 3 {} 4\n", tricky.len()).as_bytes());
    out.extend(tricky);
    out.extend(b"oops\n");
    out.extend(b"step 1 skipped 0\nstep 2 ran 0 6 0\nTM-OK\n\n");
    out.extend(format!("probe 0 {} 0\n", probe_out.len()).as_bytes());
    out.extend(probe_out);
    out.extend(b"\nTM-BATCH-END\n");
    let r = decode(&out, b"", 3).unwrap();
    assert_eq!(
        r.outcomes,
        [
            StepOutcome::Ran(Outcome::Failed("x".into())),
            StepOutcome::Skipped { after: 0 },
            OK
        ]
    );
    assert_eq!(r.read_back.unwrap().home, "/h");
    // Cut short anywhere: the steps reported so far, never a panic.
    for cut in 0..out.len() {
        match decode(&out[..cut], b"", 3) {
            Err(BatchError::Garbled { outcomes, .. }) => assert!(outcomes.len() <= 3),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    let stopped =
        b"TM-BATCH-BEGIN v1\nstep 0 ran 0 6 0\nTM-OK\n\nerror cannot read\nTM-BATCH-END\n";
    assert_eq!(
        decode(stopped, b"", 2),
        Err(BatchError::Remote {
            reason: "cannot read".into(),
            outcomes: vec![OK]
        })
    );
    // More steps than were sent is garbled, not believed.
    assert!(matches!(
        decode(&out, b"", 2),
        Err(BatchError::Garbled { .. })
    ));
}
