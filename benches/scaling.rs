//! Work grows linearly with hostile input: the inventory loader, both
//! line parsers and the probe report's reader, each on an input and on
//! four times that input, measured in the same run. Timings are measured
//! here, in a benchmark, never asserted in tests (a loaded machine would
//! make such a test flaky). Linear work gives a ratio about 4, quadratic
//! about 16; the run fails when a ratio reaches 10.
//!
//! `cargo bench --bench scaling`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use trustmesh::formats::authorized_keys::AuthorizedKeysFile;
use trustmesh::formats::known_hosts::KnownHostsFile;
use trustmesh::gather::probe::parse_probe_output;
use trustmesh::model::inventory::Inventory;

#[path = "../tests/render/mod.rs"]
mod render;
use render::render;

const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

/// The shortest of `runs` timings of `f`.
fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// Time `f` on `small` and on `large` (four times the input), print the
/// ratio, and fail at 10 or more.
fn assert_linear<T>(what: &str, small: &T, large: &T, f: impl Fn(&T)) {
    let run = |x: &T| best_of(3, || f(x));
    run(small); // warm up
    let (a, b) = (run(small), run(large));
    let ratio = b.as_secs_f64() / a.as_secs_f64().max(1e-6);
    println!("{what:<28} 4x the input: {ratio:>5.1}x the time ({a:?} -> {b:?})");
    assert!(
        ratio < 10.0,
        "{what}: 4x the input took {ratio:.1}x the time ({a:?} -> {b:?})"
    );
}

/// The inventory loader on an invalid text.
fn assert_linear_invalid(what: &str, small: &str, large: &str) {
    assert_linear(what, &small, &large, |text| {
        let e = Inventory::from_str_named("t.yaml", text).expect_err("invalid");
        std::hint::black_box(render(&e));
    });
}

fn many_bad_names_cost_linear_time() {
    let bad = |n: usize| {
        let mut s = String::from("version: 1\nmanager: {name: m}\nworkers:\n");
        for i in 0..n {
            let _ = writeln!(
                s,
                "  - {{name: 'bad {i}', address: 'bad {i}', jump: 'j{i}'}}"
            );
        }
        let _ = writeln!(
            s,
            "reverse: [{}]",
            (0..n)
                .map(|i| format!("r{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        s
    };
    assert_linear_invalid("bad names", &bad(1_000), &bad(4_000));
}

fn a_long_flow_line_costs_linear_time() {
    let one_line = |n: usize| {
        let items: Vec<String> = (0..n)
            .map(|i| format!("{{name: 'b {i}', address: h{i}}}"))
            .collect();
        format!(
            "version: 1\nmanager: {{name: m}}\nworkers: [{}]\n",
            items.join(", ")
        )
    };
    assert_linear_invalid("one long line", &one_line(2_000), &one_line(8_000));
}

fn many_unknown_keys_cost_linear_time() {
    let keys = |n: usize| {
        let items: Vec<String> = (0..n).map(|i| format!("  k{i}: 1")).collect();
        format!("version: 1\nmanager:\n  name: m\n{}\n", items.join("\n"))
    };
    assert_linear_invalid("unknown keys", &keys(5_000), &keys(20_000));
}

fn many_block_entries_cost_linear_time() {
    let block = |n: usize| {
        let mut s = String::from("version: 1\nmanager: {name: m}\nworkers:\n");
        for i in 0..n {
            let _ = writeln!(s, "  - name: 'bad {i}'\n    address: h{i}");
        }
        s.push_str("mesh:\n");
        for _ in 0..n {
            s.push_str("  - group: nope\n");
        }
        s
    };
    assert_linear_invalid("block entries", &block(1_000), &block(4_000));
}

fn authorized_keys_cost_linear_time() {
    let line = format!(
        "command=\"{}\" ssh-ed25519 {KEY} c trustmesh:w1\r\n",
        "a\\\"".repeat(20)
    );
    let text = |n: usize| line.repeat(n);
    assert_linear("authorized_keys lines", &text(2_000), &text(8_000), |t| {
        std::hint::black_box(AuthorizedKeysFile::parse(t).keys().count());
    });
    // One long line of options.
    let long = |n: usize| format!("{} ssh-ed25519 {KEY}\n", "\"x ".repeat(n));
    assert_linear("one long line", &long(20_000), &long(80_000), |t| {
        std::hint::black_box(AuthorizedKeysFile::parse(t).keys().count());
    });
}

fn known_hosts_cost_linear_time() {
    let text = |n: usize| {
        (0..n)
            .map(|i| {
                format!(
                    "h{i},[h{i}]:2222,10.0.{}.{} ssh-ed25519 {KEY}\n",
                    i / 256 % 256,
                    i % 256
                )
            })
            .collect::<String>()
    };
    assert_linear("known_hosts lines", &text(2_000), &text(8_000), |t| {
        std::hint::black_box(KnownHostsFile::parse(t).keys_for("h5", 22).len());
    });
    let pattern = |n: usize| format!("{} ssh-ed25519 {KEY}\n", "*,".repeat(n));
    assert_linear(
        "one long host list",
        &pattern(5_000),
        &pattern(20_000),
        |t| {
            std::hint::black_box(KnownHostsFile::parse(t).keys_for("host.example", 22).len());
        },
    );
}

fn probe_output_costs_linear_time() {
    let report = |n: usize| {
        let mut s = String::from("TRUSTMESH-PROBE-BEGIN v1\nuser u\nuid 1\ngid 2\nhostname h\nhome /h\nhome-stat dir 0755 1 2\nssh-stat missing\n");
        for i in 0..n {
            s.push_str(&format!(
                "file read f{i}\nstat file 0644 1 2\ndata 3\nx\ny\nend 0\n"
            ));
        }
        s.push_str("TRUSTMESH-PROBE-END\n");
        s.into_bytes()
    };
    assert_linear("probe records", &report(2_000), &report(8_000), |b| {
        std::hint::black_box(parse_probe_output(b).map(|a| a.files.len()).ok());
    });
    // Noise before the marker.
    let noisy = |n: usize| {
        let mut b = b"motd line\n".repeat(n);
        b.extend_from_slice(&report(1));
        b
    };
    assert_linear(
        "noise before the report",
        &noisy(20_000),
        &noisy(80_000),
        |b| {
            std::hint::black_box(parse_probe_output(b).is_ok());
        },
    );
}

fn the_inventory_loader_costs_linear_time() {
    let text = |n: usize| {
        let mut s = String::from("version: 1\nmanager: {name: m, address: 10.0.0.1}\nworkers:\n");
        for i in 0..n {
            s.push_str(&format!(
                "  - name: w{i}\n    address: 10.0.{}.{}\n    groups: [g{}]\n",
                i / 256 % 256,
                i % 256,
                i / 10
            ));
        }
        s.push_str("reverse: all\nmesh:\n");
        for g in 0..n / 10 {
            s.push_str(&format!("  - group: g{g}\n"));
        }
        s
    };
    assert_linear("a valid inventory", &text(1_000), &text(4_000), |t| {
        std::hint::black_box(Inventory::from_str_named("t.yaml", t).unwrap().nodes.len());
    });
}

/// The files this round added: a long `~/.ssh/config` with the Include
/// block set into it, an `/etc/hosts` with the block, and a long options
/// field merged with an edge's policy.
fn blocks_and_options_cost_linear_time() {
    let config = |n: usize| {
        let mut s = String::new();
        for i in 0..n {
            let _ = write!(
                s,
                "# note {i}\nHost h{i}\n    HostName 10.0.{}.{}\n    User u{i}\n",
                i / 250,
                i % 250
            );
        }
        s
    };
    let include = vec!["Include config.d/trustmesh-lab".to_string()];
    assert_linear(
        "a long ~/.ssh/config",
        &config(2_000),
        &config(8_000),
        |t| {
            let _ = std::hint::black_box(
                trustmesh::formats::ssh_config::with_include(
                    t,
                    "trustmesh:lab/manager",
                    Some(&include),
                )
                .map(|s| s.len()),
            );
        },
    );
    let hosts = |n: usize| {
        let mut s = String::from("127.0.0.1 localhost\n");
        for i in 0..n {
            let _ = writeln!(s, "10.1.{}.{} node{i}", i / 250, i % 250);
        }
        s
    };
    let lines: Vec<String> = vec!["10.0.0.1 manager".into()];
    assert_linear("a long /etc/hosts", &hosts(4_000), &hosts(16_000), |t| {
        let _ = std::hint::black_box(
            trustmesh::formats::hosts_file::with_block(t, "trustmesh:lab/manager", Some(&lines))
                .map(|s| s.len()),
        );
        std::hint::black_box(trustmesh::formats::hosts_file::names_outside(
            t,
            "trustmesh:lab/manager",
            &["manager"],
        ));
    });
    let options = |n: usize| {
        (0..n)
            .map(|i| format!("environment=\"V{i}=a,b\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    let policy = trustmesh::formats::key_options::Policy {
        sftp_only: true,
        from: Some("10.0.0.0/8".into()),
        expires: None,
    };
    assert_linear(
        "a long options field",
        &options(2_000),
        &options(8_000),
        |t| {
            std::hint::black_box(
                trustmesh::formats::key_options::merge(Some(t), &policy, Some("10.0.0.0/8"))
                    .options
                    .map(|o| o.len()),
            );
        },
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("scaling: bench");
        return;
    }
    many_bad_names_cost_linear_time();
    a_long_flow_line_costs_linear_time();
    many_unknown_keys_cost_linear_time();
    many_block_entries_cost_linear_time();
    authorized_keys_cost_linear_time();
    known_hosts_cost_linear_time();
    probe_output_costs_linear_time();
    the_inventory_loader_costs_linear_time();
    blocks_and_options_cost_linear_time();
}
