//! `sshd_reload.sh` under the shell matrix, with a fake `sshd` first on
//! the `PATH`: a refused config puts the old drop-in back and signals
//! nothing; an accepted one sends SIGHUP to the pid in sshd's `PidFile`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::shells::SHELLS;
use super::tests::run_in_with;
use super::*;

/// A fake `sshd` in `dir`: `-t` accepts or refuses with sshd's words,
/// `-T` names `pidfile`.
fn fake_sshd(dir: &Path, accepts: bool, pidfile: &Path) {
    let t = if accepts {
        "exit 0".to_string()
    } else {
        "echo '/etc/ssh/sshd_config.d/trustmesh-lab.conf line 2: Bad configuration option: Bogus' >&2; exit 255"
            .to_string()
    };
    let text = format!(
        "#!/bin/sh\ncase $1 in\n  -t) {t} ;;\n  -T) echo 'port 22'; echo 'pidfile {}' ;;\nesac\n",
        pidfile.display()
    );
    let p = dir.join("sshd");
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A process standing in for sshd: SIGHUP ends it.
fn stand_in(pidfile: &Path) -> Child {
    let child = Command::new("sleep").arg("60").spawn().unwrap();
    fs::write(pidfile, format!("{}\n", child.id())).unwrap();
    child
}

/// A folder with a fake sshd in `bin/` whose `-t` accepts or not, its
/// stand-in process, and the drop-in's path.
fn setup(accepts: bool) -> (tempfile::TempDir, std::path::PathBuf, Child, String) {
    let dir = tempfile::tempdir().unwrap();
    let (bin, pidfile) = (dir.path().join("bin"), dir.path().join("sshd.pid"));
    fs::create_dir(&bin).unwrap();
    fake_sshd(&bin, accepts, &pidfile);
    let sshd = stand_in(&pidfile);
    let dropin = dir.path().join("trustmesh-lab.conf");
    fs::write(&dropin, "new\n").unwrap();
    let d = dropin.to_str().unwrap().to_string();
    (dir, bin, sshd, d)
}

/// Has `child` ended within `limit`?
fn ended(child: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_refused_config_puts_the_old_drop_in_back_and_reloads_nothing() {
    if Path::new("/run/systemd/system").exists() {
        return; // systemd would be asked instead
    }
    for shell in SHELLS {
        let (dir, bin, mut sshd, d) = setup(false);
        let (d, dropin) = (d.as_str(), Path::new(&d));
        // An old drop-in is put back.
        let (out, said) = run_in_with(
            shell,
            dir.path(),
            SSHD_RELOAD,
            &[d, "keep"],
            b"old\n",
            Some(&bin),
        );
        assert_eq!(
            out,
            Outcome::Failed(format!(
                "sshd -t refused the config: /etc/ssh/sshd_config.d/trustmesh-lab.conf line 2: Bad configuration option: Bogus; \
                 the previous {d} was put back and sshd was not reloaded"
            )),
            "{shell:?}: {said}"
        );
        assert_eq!(fs::read_to_string(dropin).unwrap(), "old\n", "{shell:?}");
        // None before: removed.
        let (out, _) = run_in_with(
            shell,
            dir.path(),
            SSHD_RELOAD,
            &[d, "absent"],
            b"",
            Some(&bin),
        );
        assert!(matches!(out, Outcome::Failed(_)), "{shell:?}");
        assert!(!dropin.exists(), "{shell:?}");
        assert!(
            sshd.try_wait().unwrap().is_none(),
            "{shell:?}: sshd was signalled"
        );
        sshd.kill().unwrap();
        sshd.wait().unwrap();
    }
}

#[test]
fn an_accepted_config_reloads_the_sshd_of_the_pid_file() {
    if Path::new("/run/systemd/system").exists() {
        return;
    }
    for shell in SHELLS {
        let (dir, bin, mut sshd, d) = setup(true);
        let (d, dropin) = (d.as_str(), Path::new(&d));
        let (out, said) = run_in_with(
            shell,
            dir.path(),
            SSHD_RELOAD,
            &[d, "absent"],
            b"",
            Some(&bin),
        );
        assert_eq!(out, Outcome::Ok, "{shell:?}: {said}");
        assert!(
            ended(&mut sshd, Duration::from_secs(20)),
            "{shell:?}: no SIGHUP"
        );
        assert_eq!(fs::read_to_string(dropin).unwrap(), "new\n");
    }
}
