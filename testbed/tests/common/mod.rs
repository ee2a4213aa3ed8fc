//! Helpers shared by the integration tests: running a command on a host and
//! checking it, and setting up one trust edge by hand (the way trustmesh
//! will), host keys always taken from the host's real key files.

#![allow(dead_code)]

use std::process::Output;

use testbed::Cluster;

/// Run on `host` as `user`; return the output whatever the exit status.
pub fn sh(c: &Cluster, host: &str, user: &str, script: &str) -> Output {
    c.exec(host, user, &["sh", "-c", script])
        .expect("exec on host")
}

/// Run on `host` as `user` and require success; return stdout.
pub fn ok(c: &Cluster, host: &str, user: &str, script: &str) -> String {
    let out = sh(c, host, user, script);
    assert!(
        out.status.success(),
        "`{script}` on {host} as {user} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A key pair for `user` on `host` (made on the host, never read here).
pub fn keygen(c: &Cluster, host: &str, user: &str) {
    ok(c, host, user, "mkdir -p -m 700 ~/.ssh && test -f ~/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519");
}

/// Append `line` to `~user/rel` on `host` (created with `mode`).
pub fn append(c: &Cluster, host: &str, user: &str, rel: &str, line: &str, mode: u32) {
    let mut text = c.read_file(host, user, rel).unwrap_or_default();
    text.extend_from_slice(line.as_bytes());
    if !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    c.write_file(host, user, rel, &text, mode)
        .expect("write file");
}

/// Trust `to`'s real host keys in `from`'s known_hosts.
pub fn trust_host_keys(c: &Cluster, from: &str, user: &str, to: &str) {
    for line in c.known_hosts_lines(to).expect("host keys") {
        append(c, from, user, ".ssh/known_hosts", &line, 0o644);
    }
}

/// The whole edge `user@from -> user@to`: key, authorized_keys, known_hosts.
pub fn trust(c: &Cluster, from: &str, user: &str, to: &str) {
    keygen(c, from, user);
    let public = c
        .read_file(from, user, ".ssh/id_ed25519.pub")
        .expect("public key");
    append(
        c,
        to,
        user,
        ".ssh/authorized_keys",
        &String::from_utf8_lossy(&public),
        0o600,
    );
    trust_host_keys(c, from, user, to);
}

/// `ssh` from a host with the strict options of a trust edge (no config
/// file). `extra` options come first: for ssh, the first value given wins.
pub fn ssh_cmd(c: &Cluster, to: &str, user: &str, extra: &str, remote: &str) -> String {
    let h = c.host(to);
    format!(
        "ssh {extra} -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 -p {} {user}@{} {remote}",
        h.port, h.address
    )
}
