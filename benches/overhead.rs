//! Harness overhead: litehammer's real worker loop (scenario → driver → report) against a
//! bare rusqlite loop executing the same prepared statements on an identically set-up
//! database, in one process, alternating the two to share the machine's noise.
//!
//!     cargo bench --bench overhead [-- --duration 2s --rounds 5 --case insert|point|mix --db-dir DIR]
//!
//! Prints, per case, each round's transactions/s of both loops and the medians; the ratio
//! litehammer / bare should be ≥ 0.95. Beside the wall-clock ratio it prints the ratio of
//! operations per CPU-second of the loops' own threads (read from /proc/self/task/*/schedstat
//! by a sampler thread), which other processes competing for the CPUs barely move. Both
//! loops run without a warm-up for that (a populated database's pages are warm in a few ms),
//! so every operation and every CPU-nanosecond of their threads is counted.

use litehammer::testing::{BenchPlan, Rng};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const ROWS: u64 = 10_000;
const TABLE: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);";
const TEXT: &[u8] =
    b"abcdefghij klmnopqrstuvwxyz ABCDEFGHIJ 0123456789 abcdefghij klmnopqrstuvwxyz ABCDEFGHIJ 0123456789";

/// One comparison: a scenario for litehammer and the same statements for the bare loop.
struct Case {
    name: &'static str,
    description: &'static str,
    workers: u32,
    journal_mode: &'static str,
    synchronous: &'static str,
    populate: bool,
    ops: &'static [BareOp],
}

/// A statement, its weight, its litehammer parameter generators and the bare loop's binder.
struct BareOp {
    sql: &'static str,
    weight: u64,
    params: &'static str,
    bind: fn(&mut Statement<'_>, &mut Rng) -> rusqlite::Result<()>,
}

fn bind_insert(stmt: &mut Statement<'_>, rng: &mut Rng) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(
        1,
        ToSqlOutput::Borrowed(ValueRef::Integer(1 + rng.below(1_000_000) as i64)),
    )?;
    let start = rng.below((TEXT.len() - 20) as u64) as usize;
    stmt.raw_bind_parameter(2, ToSqlOutput::Borrowed(ValueRef::Text(&TEXT[start..start + 20])))
}

fn bind_key(stmt: &mut Statement<'_>, rng: &mut Rng) -> rusqlite::Result<()> {
    stmt.raw_bind_parameter(1, ToSqlOutput::Borrowed(ValueRef::Integer(1 + rng.below(ROWS) as i64)))
}

const INSERT: BareOp = BareOp {
    sql: "INSERT INTO t(k, v) VALUES (?1, ?2)",
    weight: 1,
    params: r#"["uniform(1, 1000000)", "text(20)"]"#,
    bind: bind_insert,
};
const POINT: BareOp = BareOp {
    sql: "SELECT k, v FROM t WHERE id = ?1",
    weight: 3,
    params: r#"["uniform(1, 10000)"]"#,
    bind: bind_key,
};
const RANGE: BareOp = BareOp {
    sql: "SELECT id, k FROM t WHERE id BETWEEN ?1 AND ?1 + 9",
    weight: 1,
    params: r#"["uniform(1, 10000)"]"#,
    bind: bind_key,
};

const CASES: [Case; 3] = [
    Case {
        name: "insert",
        description: "(a) autocommit INSERT, WAL + synchronous=OFF, 1 worker",
        workers: 1,
        journal_mode: "wal",
        synchronous: "off",
        populate: false,
        ops: &[INSERT],
    },
    Case {
        name: "point",
        description: "(b) point SELECT by primary key, warm cache, 1 worker",
        workers: 1,
        journal_mode: "wal",
        synchronous: "normal",
        populate: true,
        ops: &[POINT],
    },
    Case {
        name: "mix",
        description: "(c) read-only mix (3 point : 1 range of 10), 8 workers",
        workers: 8,
        journal_mode: "wal",
        synchronous: "normal",
        populate: true,
        ops: &[POINT, RANGE],
    },
];

struct Options {
    duration: Duration,
    rounds: usize,
    case: Option<String>,
    db_dir: Option<PathBuf>,
}

fn main() {
    let opts = parse_args();
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run `cargo bench --bench overhead` for meaningful ratios");
    }
    let temp = tempfile::Builder::new()
        .prefix("litehammer-bench-")
        .tempdir()
        .expect("temp dir");
    let dir = opts.db_dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    println!(
        "overhead: {} per measurement, {} round(s), databases in {}\n",
        humantime::format_duration(opts.duration),
        opts.rounds,
        dir.display()
    );
    let mut summary = Vec::new();
    for case in CASES
        .iter()
        .filter(|c| opts.case.as_deref().is_none_or(|n| n == c.name))
    {
        summary.push(compare(case, &opts, &dir));
    }
    println!("\n| case | bare tx/s | litehammer tx/s | ratio, wall clock | ratio, per CPU-second |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for line in summary {
        println!("{line}");
    }
}

fn parse_args() -> Options {
    let mut opts = Options {
        duration: Duration::from_secs(2),
        rounds: 5,
        case: None,
        db_dir: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => opts.duration = humantime::parse_duration(&value()).expect("--duration"),
            "--rounds" => opts.rounds = value().parse().expect("--rounds"),
            "--case" => opts.case = Some(value()),
            "--db-dir" => opts.db_dir = Some(PathBuf::from(value())),
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown flag {other}; see the comment at the top of benches/overhead.rs"),
        }
    }
    opts
}

/// One loop's result: wall-clock throughput, and operations per CPU-second of its threads.
#[derive(Clone, Copy)]
struct Measurement {
    per_s: f64,
    per_cpu_s: f64,
}

/// Alternates bare and litehammer (bare first on even rounds) and prints the medians.
fn compare(case: &Case, opts: &Options, dir: &Path) -> String {
    println!("{}", case.description);
    let scenario_file = dir.join(format!("bench-{}.toml", case.name));
    std::fs::write(&scenario_file, scenario_text(case, opts)).expect("write scenario");
    let plan =
        BenchPlan::load(scenario_file.to_str().expect("utf-8 path")).unwrap_or_else(|e| panic!("bench scenario: {e}"));
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        let (b, l) = if round % 2 == 0 {
            let b = bare_run(case, &plan, opts, dir, round);
            (b, litehammer_run(&plan, dir))
        } else {
            let l = litehammer_run(&plan, dir);
            (bare_run(case, &plan, opts, dir, round), l)
        };
        println!(
            "  round {}: bare {:>9.0} tx/s {:>9.0} /cpu-s   litehammer {:>9.0} tx/s {:>9.0} /cpu-s   ratio {:.3} wall, {:.3} cpu",
            round + 1,
            b.per_s,
            b.per_cpu_s,
            l.per_s,
            l.per_cpu_s,
            l.per_s / b.per_s,
            l.per_cpu_s / b.per_cpu_s
        );
        rounds.push((b, l));
    }
    let _ = std::fs::remove_file(&scenario_file);
    let column = |f: &dyn Fn(&(Measurement, Measurement)) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        median(&mut v)
    };
    format!(
        "| {} | {:.0} | {:.0} | **{:.3}** | **{:.3}** |",
        case.description,
        column(&|r| r.0.per_s),
        column(&|r| r.1.per_s),
        column(&|r| r.1.per_s / r.0.per_s),
        column(&|r| r.1.per_cpu_s / r.0.per_cpu_s),
    )
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn scenario_text(case: &Case, opts: &Options) -> String {
    let populate = if case.populate {
        format!(
            "populate = [{{ table = \"t\", rows = {ROWS}, values = [\"uniform(1, 1000000)\", \"text(20, 100)\"] }}]"
        )
    } else {
        String::new()
    };
    let mut text = format!(
        "name = \"bench-{}\"\nduration = \"{}ms\"\nwarmup = \"0s\"\n\n[sqlite]\njournal_mode = \"{}\"\nsynchronous = \"{}\"\n\n\
         [setup]\nsql = \"{TABLE}\"\n{populate}\n\n[[group]]\nname = \"g\"\nworkers = {}\ntransaction = \"none\"\n",
        case.name,
        opts.duration.as_millis(),
        case.journal_mode,
        case.synchronous,
        case.workers
    );
    for (i, op) in case.ops.iter().enumerate() {
        text.push_str(&format!(
            "\n[[group.op]]\nname = \"op{i}\"\nweight = {}\nsql = \"{}\"\nparams = {}\n",
            op.weight, op.sql, op.params
        ));
    }
    text
}

/// litehammer's committed transactions per second, through the library as `run` does it.
fn litehammer_run(plan: &BenchPlan, dir: &Path) -> Measurement {
    let sampler = CpuSampler::start("worker-");
    let run = plan.run(dir);
    let cpu_s = sampler.stop();
    assert!(run.error.is_none(), "litehammer run failed: {:?}", run.error);
    assert!(run.verified, "verification failed");
    Measurement {
        per_s: run.per_s,
        per_cpu_s: run.committed as f64 / cpu_s,
    }
}

const RUN: u8 = 0;
const STOP: u8 = 1;

/// The bare loop: the same database set-up and settings, one thread and connection per
/// worker, bind + step to completion, count.
fn bare_run(case: &Case, plan: &BenchPlan, opts: &Options, dir: &Path, round: usize) -> Measurement {
    let path = dir.join(format!("bare-{}-{round}.db", case.name));
    plan.create_database(&path).expect("bare set-up");
    let phase = Arc::new(AtomicU8::new(RUN));
    let ready = Arc::new(Barrier::new(case.workers as usize + 1));
    let sampler = CpuSampler::start("bare-");
    let threads: Vec<_> = (0..case.workers)
        .map(|w| {
            let (phase, ready) = (phase.clone(), ready.clone());
            let conn = plan.open_configured(&path).expect("open and configure");
            let ops = case.ops;
            std::thread::Builder::new()
                .name(format!("bare-{w}"))
                .spawn(move || bare_worker(&conn, ops, &phase, &ready, Rng::derive(99, w as u64)))
                .expect("spawn")
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    std::thread::sleep(opts.duration);
    phase.store(STOP, Ordering::Release);
    let elapsed = start.elapsed().as_secs_f64();
    let total: u64 = threads.into_iter().map(|t| t.join().expect("bare worker")).sum();
    let cpu_s = sampler.stop();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Measurement {
        per_s: total as f64 / elapsed,
        per_cpu_s: total as f64 / cpu_s,
    }
}

fn bare_worker(conn: &Connection, ops: &[BareOp], phase: &AtomicU8, ready: &Barrier, mut rng: Rng) -> u64 {
    let mut stmts: Vec<Statement<'_>> = ops.iter().map(|o| conn.prepare(o.sql).expect("prepare")).collect();
    let total_weight: u64 = ops.iter().map(|o| o.weight).sum();
    ready.wait();
    let mut done = 0u64;
    while phase.load(Ordering::Acquire) != STOP {
        let i = pick(ops, total_weight, &mut rng);
        (ops[i].bind)(&mut stmts[i], &mut rng).expect("bind");
        let mut rows = stmts[i].raw_query();
        while rows.next().expect("step").is_some() {}
        done += 1;
    }
    done
}

/// CPU time of this process's threads whose name starts with a prefix: a thread polls
/// /proc/self/task/*/schedstat every 2 ms and keeps each thread's last reading (a thread's
/// last <2 ms before it exits are missed, alike for both loops).
struct CpuSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<HashMap<String, u64>>,
}

impl CpuSampler {
    fn start(prefix: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut last: HashMap<String, u64> = HashMap::new();
            let mut poll = || {
                for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
                    let path = task.path();
                    let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                    if !comm.starts_with(prefix) {
                        continue;
                    }
                    let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
                    if let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse().ok()) {
                        last.insert(task.file_name().to_string_lossy().into_owned(), ns);
                    }
                }
            };
            while !flag.load(Ordering::Relaxed) {
                poll();
                std::thread::sleep(Duration::from_millis(2));
            }
            last
        });
        Self { stop, thread }
    }

    /// CPU-seconds of the matching threads.
    fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let last = self.thread.join().expect("sampler");
        last.values().sum::<u64>() as f64 / 1e9
    }
}

#[inline]
fn pick(ops: &[BareOp], total_weight: u64, rng: &mut Rng) -> usize {
    if ops.len() == 1 {
        return 0;
    }
    let mut r = rng.below(total_weight);
    ops.iter()
        .position(|o| {
            let hit = r < o.weight;
            r = r.saturating_sub(o.weight);
            hit
        })
        .unwrap_or(0)
}
