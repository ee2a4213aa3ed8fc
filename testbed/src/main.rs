//! `testbed`: start, use and stop a cluster from a shell (the demo script).
//! All the work is done by the library; this file only reads arguments.

use std::path::PathBuf;
use std::process::ExitCode;

use testbed::{Cluster, ClusterSpec};

const USAGE: &str = "\
usage:
  testbed up --state DIR --spec FILE      start the cluster in FILE (JSON), leave it running
  testbed down --state DIR                stop it and remove DIR (kept with TESTBED_KEEP=1)
  testbed exec --state DIR HOST USER -- CMD...
                                          run CMD as USER on HOST (stdin passed, exit code returned)
  testbed info --state DIR                list the hosts: name, address, port, pid
  testbed known-hosts --state DIR HOST... known_hosts lines for the hosts' real keys
  testbed share --state DIR FILE          copy FILE where every host's accounts can reach it; print the path";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("testbed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Pull `--name VALUE` out of `args`.
fn take_opt(args: &mut Vec<String>, name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    if i + 1 >= args.len() {
        return None;
    }
    let value = args.remove(i + 1);
    args.remove(i);
    Some(value)
}

fn usage_error(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{msg}\n{USAGE}"))
}

fn print_hosts(cluster: &Cluster) {
    println!(
        "{:<12} {:<16} {:>5}  {:>7}  NOTE",
        "HOST", "ADDRESS", "PORT", "PID"
    );
    for h in cluster.hosts() {
        let mut note = Vec::new();
        if let Some(b) = &h.behind {
            note.push(format!("behind {b}"));
        }
        if h.password.is_some() {
            note.push("password login".to_string());
        }
        note.push(format!("users {}", h.users.join(",")));
        let pid = h.pid().map_or("-".to_string(), |p| p.to_string());
        println!(
            "{:<12} {:<16} {:>5}  {:>7}  {}",
            h.name,
            h.address,
            h.port,
            pid,
            note.join("; ")
        );
    }
}

fn run(args: &[String]) -> std::io::Result<ExitCode> {
    let Some((command, rest)) = args.split_first() else {
        return Err(usage_error("no command"));
    };
    // Everything after `--` belongs to the command run by `exec`.
    let split = rest.iter().position(|a| a == "--").unwrap_or(rest.len());
    let mut opts: Vec<String> = rest[..split].to_vec();
    let trailing: Vec<String> = rest
        .get(split + 1..)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    let state = take_opt(&mut opts, "--state").map(PathBuf::from);
    let state = || {
        state
            .clone()
            .ok_or_else(|| usage_error("--state DIR is required"))
    };
    match command.as_str() {
        "up" => {
            let spec_path = take_opt(&mut opts, "--spec")
                .ok_or_else(|| usage_error("--spec FILE is required"))?;
            if !opts.is_empty() {
                return Err(usage_error(&format!(
                    "unexpected arguments: {}",
                    opts.join(" ")
                )));
            }
            let text = std::fs::read_to_string(&spec_path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{spec_path}: {e}")))?;
            let cluster = Cluster::start_in(ClusterSpec::from_json(&text)?, &state()?)?;
            print_hosts(&cluster);
            if let Some(ns) = cluster.isolated_netns() {
                println!(
                    "isolated: the hosts are on a private loopback (network namespace {ns}), \
                     since their port is taken on every address here; reach them with `testbed exec`"
                );
            }
            let dir = cluster.detach()?;
            println!("cluster up; state in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        "down" => {
            let cluster = Cluster::attach(&state()?)?;
            let pids = cluster.pids();
            cluster.shutdown();
            println!("cluster down (stopped sshd pids {pids:?})");
            Ok(ExitCode::SUCCESS)
        }
        "info" => {
            print_hosts(&Cluster::attach(&state()?)?);
            Ok(ExitCode::SUCCESS)
        }
        "known-hosts" => {
            let cluster = Cluster::attach(&state()?)?;
            for h in &opts {
                for line in cluster.known_hosts_lines(h)? {
                    println!("{line}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        "share" => {
            let [file] = opts.as_slice() else {
                return Err(usage_error("share needs one FILE"));
            };
            let cluster = Cluster::attach(&state()?)?;
            println!("{}", cluster.share(std::path::Path::new(file))?.display());
            Ok(ExitCode::SUCCESS)
        }
        "exec" => {
            let [host, user] = opts.as_slice() else {
                return Err(usage_error("exec needs HOST USER -- CMD..."));
            };
            if trailing.is_empty() {
                return Err(usage_error("exec needs a command after --"));
            }
            let cluster = Cluster::attach(&state()?)?;
            let argv: Vec<&str> = trailing.iter().map(String::as_str).collect();
            let status = cluster.command(host, user, &argv)?.status()?;
            let code = match status.code() {
                Some(c) => c,
                None => {
                    use std::os::unix::process::ExitStatusExt;
                    128 + status.signal().unwrap_or(0)
                }
            };
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(usage_error(&format!("unknown command {other:?}"))),
    }
}
