//! The operator's own tools around the inventory: `init`, `import`, shell
//! completions and man pages, each run as the binary and checked with the
//! real consumer (bash's completion machinery, `man -l`, `validate`).

use std::path::Path;
use std::process::Command;

fn trustmesh(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_trustmesh"))
        .args(args)
        .current_dir(dir)
        .env_remove("TRUSTMESH_INVENTORY")
        .env("NO_COLOR", "1")
        .output()
        .expect("run trustmesh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[track_caller]
fn validates(dir: &Path, file: &str) {
    let (code, out, err) = trustmesh(&["validate", file], dir);
    assert_eq!(
        code,
        0,
        "{out}{err}\n{}",
        std::fs::read_to_string(dir.join(file)).unwrap()
    );
}

#[test]
fn bash_completes_a_command_name() {
    let dir = tempfile::tempdir().unwrap();
    let (code, script, _) = trustmesh(&["completions", "bash"], dir.path());
    assert_eq!(code, 0);
    let file = dir.path().join("trustmesh.bash");
    std::fs::write(&file, script).unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let out = Command::new("bash")
            .arg("-c")
            .arg(
                r#"source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
                   _trustmesh trustmesh "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
                   printf '%s\n' "${COMPREPLY[@]}""#,
            )
            .arg("bash")
            .arg(&file)
            .args(&words)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("trustmesh ap").trim(), "apply");
    let flags = complete("trustmesh apply --rot");
    assert_eq!(flags.trim(), "--rotate-keys", "{flags}");
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let (code, out, err) = trustmesh(&["completions", shell], Path::new("."));
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("apply"), "{shell}");
    }
}

#[test]
fn man_pages_render_with_man() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = trustmesh(&["man", "--out", "pages"], dir.path());
    assert_eq!(code, 0, "{err}");
    for (page, says) in [
        ("trustmesh.1", "Declarative SSH trust"),
        ("trustmesh-apply.1", "--rotate-keys"),
        ("trustmesh-plan.1", "--detailed-exitcode"),
        ("trustmesh-import.1", "ssh-config"),
    ] {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.path().join("pages").join(page))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man is installed (apt-get install man-db; scripts/setup.sh does)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // man may render `-` as a hyphen: compare without them.
        let plain = |s: &str| s.replace(['-', '\u{2010}', '\u{2212}'], "");
        assert!(
            plain(&text).contains(&plain(says)),
            "{page} lacks {says}:\n{text}"
        );
    }
}

#[test]
fn init_writes_a_valid_starter_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = trustmesh(&["init"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    validates(dir.path(), "inventory.yaml");
    std::fs::write(dir.path().join("inventory.yaml"), "mine\n").unwrap();
    let (code, _, err) = trustmesh(&["init"], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("exists"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("inventory.yaml")).unwrap(),
        b"mine\n"
    );
}

#[test]
fn imports_print_inventories_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config"),
        "Host *\n  User x\nHost gw\n  HostName 10.0.0.1\nHost n1\n  HostName 10.0.0.2\n  ProxyJump gw\nMatch all\n  Port 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("hosts.ini"),
        "[web]\nw[1:3] ansible_port=2200\n[web:vars]\nansible_user=deploy\n",
    )
    .unwrap();
    for (args, file) in [
        (["import", "ssh-config", "config"], "from-ssh.yaml"),
        (["import", "ansible", "hosts.ini"], "from-ansible.yaml"),
    ] {
        let (code, out, err) = trustmesh(&args, dir.path());
        assert_eq!(code, 0, "{err}");
        std::fs::write(dir.path().join(file), &out).unwrap();
        validates(dir.path(), file);
    }
    let (code, _, err) = trustmesh(&["import", "ansible", "missing.ini"], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("missing.ini"), "{err}");
}
