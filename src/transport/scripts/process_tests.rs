//! How many processes a script runs on a node: on a busy node every
//! process is the cost (#21), so a script runs one per tool it needs. A
//! fake `PATH` logs each run.

use super::shells::SHELLS;
use super::tests::{mode_of, run_in_with, set_mode, Home, SCRIPT_TOOLS};
use super::*;

/// A replace runs one process per tool it needs and reads `cksum`'s and
/// `ls`'s fields itself (no `awk`, no `dirname`): on a busy node every
/// process is the cost (#21). A logged `PATH` counts them.
#[test]
fn replace_file_runs_no_process_it_can_spare() {
    for sh in SHELLS {
        let home = Home::new(sh, &[("known_hosts", b"old\n")]);
        let fakes = tempfile::tempdir().unwrap();
        let log = fakes.path().join("log");
        for tool in SCRIPT_TOOLS.iter().chain(&["cksum"]) {
            let real = if *tool == "cksum" {
                "/usr/bin/cksum".to_string()
            } else {
                format!("/bin/busybox {tool}")
            };
            let prog = fakes.path().join(tool);
            let text = format!(
                "#!/bin/sh\necho {tool} >>'{}'\nexec {real} \"$@\"\n",
                log.display()
            );
            std::fs::write(&prog, text).unwrap();
            set_mode(&prog, 0o755);
        }
        let (o, _) = run_in_with(
            sh,
            home.path(),
            REPLACE_FILE,
            &[
                ".ssh/known_hosts",
                &cksum(b"old\n"),
                "0644",
                &cksum(b"new\n"),
            ],
            b"new\n",
            Some(fakes.path()),
        );
        assert_eq!(o, Outcome::Ok, "{sh:?}");
        assert_eq!(
            std::fs::read(home.ssh.join("known_hosts")).unwrap(),
            b"new\n"
        );
        assert_eq!(mode_of(&home.ssh.join("known_hosts")), 0o644, "{sh:?}");
        let runs = std::fs::read_to_string(&log).unwrap();
        let mut runs: Vec<&str> = runs.lines().collect();
        runs.sort_unstable();
        assert_eq!(
            runs,
            [
                "cat", "chmod", "cksum", "cksum", "cksum", "id", "ls", "mktemp", "mv", "sync",
                "sync"
            ],
            "{sh:?}"
        );
    }
}
