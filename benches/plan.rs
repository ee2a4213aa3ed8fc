//! The pure planner on synthetic clusters of 100, 1,000 and 10,000 workers.
//!
//! Every worker sits in a mesh group of (at most) 100 workers and has a
//! reverse edge to the manager, so the 10,000-worker cluster has
//! 10,000 forward + 10,000 reverse + 100 × 9,900 mesh = 1,010,000 directed
//! edges. Each size is planned against two live states, both held in memory:
//!
//! * `fresh`: only the manager has a key pair; everything is to add;
//! * `noop`: the fresh plan applied (`support::apply_on_memory`); the replan
//!   is checked to be empty during set-up.
//!
//! Timed: `TrustGraph::build` + `plan::plan` together (`build+plan`), the
//! planner alone on a prebuilt graph (`plan`), and the graph alone
//! (`graph/N/build`). Inventory parsing and live-state set-up are not timed.
//!
//! `certgroup/N` is certificate mode at scale: one mesh group of 1,000,
//! 2,500, 5,000 and 10,000 workers (n × (n − 1) edges: 100 million at
//! 10,000), every worker with a reverse edge, user and host certificates
//! on, every worker root and serving a host certificate; planned fresh
//! (`build+plan`, throughput per worker: flat when linear). Each worker's
//! planned `authorized_keys` holds two managed lines (the manager's, one
//! `cert-authority` line) and its `known_hosts` two (the `@cert-authority`
//! line, the manager's key); checked during set-up.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench --bench plan
//! ```
//!
//! One case, once, for memory measurements (the binary is the path that
//! `cargo bench --bench plan --no-run` prints; cases `N-fresh`, `N-noop`,
//! and `N-cert` for `certgroup/N`):
//!
//! ```text
//! PLAN_BENCH_ONE=10000-noop /usr/bin/time -v /work/target-bench/release/deps/plan-HASH
//! ```
//!
//! runs set-up, then `build+plan` once for time, once more for heap, and
//! prints the heap in use before and at its peak during planning (a counting
//! allocator, on only in this mode), and the resident set
//! (`/proc/self/status`, the peak reset after set-up through
//! `/proc/self/clear_refs`). `time -v` gives the whole process's peak,
//! set-up included.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use trustmesh::model::inventory::Inventory;
use trustmesh::plan::{self, LiveState, Plan, PlanScope};
use trustmesh::TrustGraph;

#[path = "../tests/support/mod.rs"]
mod support;

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const CERT_SIZES: [usize; 4] = [1_000, 2_500, 5_000, 10_000];
const GROUP: usize = 100;

/// The inventory text: a manager and `workers` workers in groups of
/// `GROUP`, every group meshed, every worker with a reverse edge.
fn inventory_text(workers: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(workers * 80 + 1024);
    s.push_str("version: 1\ndefaults:\n  user: bench\n");
    s.push_str("manager:\n  name: manager\n  address: 10.0.0.1\n");
    s.push_str("workers:\n");
    for i in 0..workers {
        let _ = writeln!(
            s,
            "  - name: w{i:05}\n    address: 10.{}.{}.{}\n    groups: [g{}]",
            1 + i / 65_536,
            (i / 256) % 256,
            i % 256,
            i / GROUP
        );
    }
    s.push_str("reverse: all\nmesh:\n");
    for g in 0..workers.div_ceil(GROUP) {
        let _ = writeln!(s, "  - group: g{g}");
    }
    s
}

fn expected_edges(workers: usize) -> usize {
    let mesh: usize = (0..workers.div_ceil(GROUP))
        .map(|g| {
            let k = GROUP.min(workers - g * GROUP);
            k * (k - 1)
        })
        .sum();
    2 * workers + mesh
}

/// One size: inventory, graph and both live states.
struct Case {
    inv: Inventory,
    graph: TrustGraph,
    fresh: LiveState,
    noop: LiveState,
}

fn run(inv: &Inventory, live: &LiveState) -> Plan {
    plan::plan(inv, &TrustGraph::build(inv), live, &PlanScope::default())
}

/// The live state after `apply` of the plan made on `live`.
///
/// `apply_on_memory` looks every "known after apply" key up by name with a
/// linear search, which at a million lines takes far longer than the
/// planner; the generated keys are `support::with_key`'s, so they are filled
/// in here first (the empty replan checked by the caller proves it right).
fn converge(inv: &Inventory, plan: &Plan, live: &LiveState) -> LiveState {
    let mut resolved = plan.clone();
    for np in &mut resolved.nodes {
        for c in &mut np.changes {
            if let plan::Change::EditFile(e) = c {
                for l in &mut e.add {
                    if l.base64.is_none() {
                        assert_eq!(&*l.key_type, "ssh-ed25519");
                        l.base64 = Some(support::fake_key(&l.node).into());
                    }
                }
            }
        }
    }
    support::apply_on_memory(inv, &resolved, live)
}

fn setup_inventory(workers: usize) -> Inventory {
    let text = inventory_text(workers);
    let inv = Inventory::from_str_named(&format!("bench-{workers}.yaml"), &text)
        .unwrap_or_else(|e| panic!("bench inventory does not load: {e:?}"));
    assert_eq!(inv.nodes.len(), workers + 1);
    inv
}

fn setup(workers: usize, want_noop: bool) -> Case {
    let t = Instant::now();
    let inv = setup_inventory(workers);
    let graph = TrustGraph::build(&inv);
    assert_eq!(graph.edge_count(), expected_edges(workers));
    let fresh = support::fresh_cluster(&inv);
    let noop = if want_noop {
        let first = run(&inv, &fresh);
        assert!(!first.is_empty());
        let noop = converge(&inv, &first, &fresh);
        drop(first);
        let again = run(&inv, &noop);
        assert!(
            again.is_empty(),
            "{workers} workers: the replan of the applied plan is not empty"
        );
        noop
    } else {
        LiveState { nodes: Vec::new() }
    };
    eprintln!(
        "set-up of {workers} workers ({} edges): {:.1?}",
        graph.edge_count(),
        t.elapsed()
    );
    Case {
        inv,
        graph,
        fresh,
        noop,
    }
}

/// Set-up runs on first use, so a filtered run (`cargo bench --bench plan
/// -- 100/`) only builds what it times.
fn case(workers: usize) -> &'static Case {
    static CASES: [OnceLock<Case>; SIZES.len()] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = SIZES.iter().position(|&s| s == workers).unwrap();
    CASES[i].get_or_init(|| setup(workers, true))
}

/// One group of `workers` in certificate mode: inventory and fresh state
/// (set up on first use), the per-worker line counts checked once.
fn cert_case(workers: usize) -> &'static (Inventory, LiveState) {
    static CASES: [OnceLock<(Inventory, LiveState)>; CERT_SIZES.len()] =
        [const { OnceLock::new() }; CERT_SIZES.len()];
    let i = CERT_SIZES.iter().position(|&s| s == workers).unwrap();
    CASES[i].get_or_init(|| {
        let t = Instant::now();
        let inv = Inventory::from_str_named("certgroup.yaml", &support::one_group(workers, true))
            .unwrap_or_else(|e| panic!("the certificate group does not load: {e:?}"));
        let live = support::rooted(&inv);
        let p = run(&inv, &live);
        for n in p.nodes.iter().filter(|n| n.node != "m") {
            for role in [plan::FileRole::AuthorizedKeys, plan::FileRole::KnownHosts] {
                let lines: usize = n
                    .changes
                    .iter()
                    .filter_map(|c| match c {
                        plan::Change::EditFile(e) if e.file == role => Some(e.add.len()),
                        _ => None,
                    })
                    .sum();
                assert_eq!(lines, 2, "{}: {role:?}", n.node);
            }
        }
        eprintln!(
            "set-up of one certificate group of {workers} workers: {:.1?}",
            t.elapsed()
        );
        (inv, live)
    })
}

fn bench_cert_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("certgroup");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for workers in CERT_SIZES {
        g.throughput(Throughput::Elements(workers as u64));
        g.bench_function(format!("{workers}/build+plan"), |b| {
            let (inv, live) = cert_case(workers);
            b.iter(|| run(black_box(inv), black_box(live)))
        });
    }
    g.finish();
}

fn bench_plan(c: &mut Criterion) {
    for workers in SIZES {
        let edges = expected_edges(workers);
        let mut g = c.benchmark_group(format!("plan/{workers}"));
        g.throughput(Throughput::Elements(edges as u64));
        if workers >= 1_000 {
            g.sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(if workers >= 10_000 { 10 } else { 5 }));
        }
        for state in ["fresh", "noop"] {
            g.bench_function(format!("{state}/build+plan"), |b| {
                let c = case(workers);
                let live = if state == "fresh" { &c.fresh } else { &c.noop };
                b.iter(|| {
                    let graph = TrustGraph::build(black_box(&c.inv));
                    plan::plan(&c.inv, &graph, black_box(live), &PlanScope::default())
                })
            });
            g.bench_function(format!("{state}/plan"), |b| {
                let c = case(workers);
                let live = if state == "fresh" { &c.fresh } else { &c.noop };
                b.iter(|| {
                    plan::plan(
                        black_box(&c.inv),
                        &c.graph,
                        black_box(live),
                        &PlanScope::default(),
                    )
                })
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("graph/{workers}"));
        g.throughput(Throughput::Elements(edges as u64));
        if workers >= 1_000 {
            g.sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        }
        g.bench_function("build", |b| {
            let c = case(workers);
            b.iter(|| TrustGraph::build(black_box(&c.inv)))
        });
        g.finish();
    }
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time (user + system) of this process so far, in milliseconds
/// (`/proc/self/stat`, 100 ticks a second).
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() * 10
}

/// Heap accounting for `PLAN_BENCH_ONE` (off, and nearly free, while
/// criterion times).
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

    pub struct Counting;

    static ON: AtomicBool = AtomicBool::new(false);
    static LIVE: AtomicIsize = AtomicIsize::new(0);
    static PEAK: AtomicIsize = AtomicIsize::new(0);

    fn add(n: isize) {
        let now = LIVE.fetch_add(n, Relaxed) + n;
        PEAK.fetch_max(now, Relaxed);
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let p = System.alloc(l);
            if ON.load(Relaxed) && !p.is_null() {
                add(l.size() as isize);
            }
            p
        }
        unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
            let p = System.alloc_zeroed(l);
            if ON.load(Relaxed) && !p.is_null() {
                add(l.size() as isize);
            }
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            System.dealloc(p, l);
            if ON.load(Relaxed) {
                add(-(l.size() as isize));
            }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            let q = System.realloc(p, l, new);
            if ON.load(Relaxed) && !q.is_null() {
                add(new as isize - l.size() as isize);
            }
            q
        }
    }

    /// Count allocations (or stop: what is allocated and freed meanwhile
    /// leaves the count as it was).
    pub fn count(on: bool) {
        ON.store(on, Relaxed);
    }

    /// Bytes in use now.
    pub fn live() -> isize {
        LIVE.load(Relaxed)
    }

    /// The most bytes in use since the last reset.
    pub fn peak() -> isize {
        PEAK.load(Relaxed)
    }

    pub fn reset_peak() {
        PEAK.store(LIVE.load(Relaxed), Relaxed);
    }
}

#[global_allocator]
static ALLOC: heap::Counting = heap::Counting;

fn mib(bytes: isize) -> isize {
    bytes >> 20
}

/// `PLAN_BENCH_ONE=N-fresh|N-noop`: set up, plan once, report, exit.
fn run_one(spec: &str) {
    heap::count(true);
    let (n, state) = spec
        .split_once('-')
        .unwrap_or_else(|| panic!("PLAN_BENCH_ONE={spec}: want N-fresh or N-noop"));
    let workers: usize = n.parse().expect("PLAN_BENCH_ONE: N is a number");
    let noop = match state {
        "fresh" | "cert" => false,
        "noop" => true,
        _ => panic!("PLAN_BENCH_ONE={spec}: want N-fresh, N-noop or N-cert"),
    };
    let (inv, graph, live) = if state == "cert" {
        let (inv, live) = cert_case(workers);
        (inv.clone(), TrustGraph::build(inv), live.clone())
    } else {
        let c = setup(workers, noop);
        let live = if noop { c.noop } else { c.fresh };
        (c.inv, c.graph, live)
    };
    // Only the inventory and the live state stay, as in `trustmesh plan`.
    drop(graph);
    let (setup_rss, setup_peak) = rss_kib();
    // Once for time and resident set, without counting (the counter's
    // atomics slow a 2-thread run down)...
    heap::count(false);
    // Reset the resident peak to the current resident set (Linux >= 4.0).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let (t, cpu) = (Instant::now(), cpu_ms());
    let graph = TrustGraph::build(&inv);
    let p = plan::plan(&inv, &graph, &live, &PlanScope::default());
    let (took, cpu) = (t.elapsed(), cpu_ms() - cpu);
    let (rss, rss_peak) = rss_kib();
    drop((graph, p));
    // ...and once for the heap.
    heap::count(true);
    let heap_before = heap::live();
    heap::reset_peak();
    let graph = TrustGraph::build(&inv);
    let p = plan::plan(&inv, &graph, &live, &PlanScope::default());
    let heap_peak = heap::peak();
    let edges = graph.edge_count();
    drop(graph);
    let plan_bytes = heap::live() - heap_before;
    let s = p.summary();
    println!(
        "{workers} workers, {state}: {edges} edges; build+plan {took:.1?} wall, {cpu} ms CPU; \
         plan: {} nodes, +{} ~{} -{}",
        p.nodes.len(),
        s.add,
        s.change,
        s.remove
    );
    println!(
        "heap: {} MiB in use before planning (inventory, live state), peak {} MiB while planning \
         (+{} MiB), the plan holds {} MiB",
        mib(heap_before),
        mib(heap_peak),
        mib(heap_peak - heap_before),
        mib(plan_bytes)
    );
    println!(
        "rss: {} MiB peak during set-up, {} MiB before planning, {} MiB after, {} MiB peak while \
         planning{}",
        setup_peak / 1024,
        setup_rss / 1024,
        rss / 1024,
        rss_peak / 1024,
        if reset {
            ""
        } else {
            " (not reset: includes set-up)"
        }
    );
    black_box(p);
}

criterion_group!(benches, bench_plan, bench_cert_group);

fn main() {
    if let Ok(spec) = std::env::var("PLAN_BENCH_ONE") {
        run_one(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
