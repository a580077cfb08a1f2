//! Harness overhead: litehammer's real worker loop (scenario → driver → report) against a
//! bare rusqlite loop executing the same prepared statements, in one process, alternating
//! the two to share the machine's noise.
//!
//!     cargo bench --bench overhead [-- --duration 2s --rounds 5 --case insert|point|update|mix
//!         --update-rows 1000001 --db-dir DIR --only bare|litehammer --probe --progress]
//!
//! The fair protocol: per case, one template database is created once, as a run creates it
//! (`BenchPlan::create_database`: set-up SQL, populate, WAL checkpointed and closed). Every
//! round, each side runs on its own copy of that template made by the same function
//! (`BenchPlan::copy_database`: copy the closed file, sync the copy, open it, apply the
//! settings, close, as `run --from-db` does),
//! so both start from the same bytes with no `-wal` file and reopen the database: with an
//! empty WAL every read transaction also fstat()s the database file, which a loop that has
//! just written its own database (WAL frames present) skips. Both step every statement to
//! SQLITE_DONE; neither reads the columns.
//!
//! Prints, per case, each round's transactions/s of both loops and the medians of the
//! ratios litehammer / bare; the target is ≥ 0.95. Beside the wall-clock ratio it prints the
//! ratio of transactions per CPU-second of the loops' own threads (read from
//! /proc/self/task/*/schedstat by a sampler thread), which other processes competing for the
//! CPUs barely move, and each loop's context switches per 1,000 transactions. Both loops run
//! without a warm-up (the template's pages are in the OS page cache), so every transaction
//! and every CPU-nanosecond of their threads is counted.
//!
//! `--probe` runs `litehammer run`'s 0.3 s fsync probe before each litehammer run, as `run`
//! does before its first cell; `--progress` prints its progress lines (every second) on
//! stderr. `--only` runs one side (for `perf record`, `strace -ff`). With `--db-dir`, the
//! templates are kept there and reused by later invocations.

use litehammer::testing::{BenchOptions, BenchPlan, Rng};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Rows of every case's table, but the update case's (`--update-rows`).
const ROWS: u64 = 100_000;
const TABLE: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);";
/// Length of the text the insert and update cases bind (litehammer's `text(40)`).
const TEXT_LEN: usize = 40;

/// One comparison: a scenario for litehammer and the same statements for the bare loop.
struct Case {
    name: &'static str,
    description: String,
    workers: u32,
    rows: u64,
    /// `[sqlite]` lines of the scenario.
    sqlite: &'static str,
    /// `transaction` of the group; `none` is autocommit.
    transaction: &'static str,
    ops: Vec<BareOp>,
}

/// A statement, its weight, its litehammer parameter generators and the bare loop's binder.
struct BareOp {
    sql: &'static str,
    weight: u64,
    params: String,
    bind: Bind,
}

#[derive(Clone, Copy)]
enum Bind {
    /// `uniform(1, 1000000)`, `text(40)`.
    Insert,
    /// `uniform(1, rows)`.
    Key(u64),
    /// `uniform(1, 1000000)`, `text(40)`, `uniform(1, rows)`.
    Update(u64),
}

/// A bare worker's random text: slices of a random pool, as litehammer's `text(n)`.
struct TextPool(Box<[u8]>);

impl TextPool {
    fn new(rng: &mut Rng) -> Self {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
        Self(
            (0..4096)
                .map(|_| CHARS[rng.below(CHARS.len() as u64) as usize])
                .collect(),
        )
    }

    #[inline]
    fn text(&self, rng: &mut Rng) -> &[u8] {
        let start = rng.below((self.0.len() - TEXT_LEN) as u64 + 1) as usize;
        &self.0[start..start + TEXT_LEN]
    }
}

impl Bind {
    #[inline]
    fn bind(self, stmt: &mut Statement<'_>, rng: &mut Rng, pool: &TextPool) -> rusqlite::Result<()> {
        let int = |v: u64| ToSqlOutput::Borrowed(ValueRef::Integer(v as i64));
        match self {
            Bind::Insert => {
                stmt.raw_bind_parameter(1, int(1 + rng.below(1_000_000)))?;
                stmt.raw_bind_parameter(2, ToSqlOutput::Borrowed(ValueRef::Text(pool.text(rng))))
            }
            Bind::Key(rows) => stmt.raw_bind_parameter(1, int(1 + rng.below(rows))),
            Bind::Update(rows) => {
                stmt.raw_bind_parameter(1, int(1 + rng.below(1_000_000)))?;
                stmt.raw_bind_parameter(2, ToSqlOutput::Borrowed(ValueRef::Text(pool.text(rng))))?;
                stmt.raw_bind_parameter(3, int(1 + rng.below(rows)))
            }
        }
    }
}

fn cases(update_rows: u64) -> Vec<Case> {
    let point = |rows: u64| BareOp {
        sql: "SELECT k, v FROM t WHERE id = ?1",
        weight: 3,
        params: format!(r#"["uniform(1, {rows})"]"#),
        bind: Bind::Key(rows),
    };
    vec![
        Case {
            name: "insert",
            description: "(a) autocommit INSERT, WAL + NORMAL, 40-byte text, 1 worker".into(),
            workers: 1,
            rows: ROWS,
            sqlite: "journal_mode = \"wal\"\nsynchronous = \"normal\"",
            transaction: "none",
            ops: vec![BareOp {
                sql: "INSERT INTO t(k, v) VALUES (?1, ?2)",
                weight: 1,
                params: format!(r#"["uniform(1, 1000000)", "text({TEXT_LEN})"]"#),
                bind: Bind::Insert,
            }],
        },
        Case {
            name: "point",
            description: format!("(b) point SELECT by random primary key, {ROWS} rows, 64 MB cache, 1 worker"),
            workers: 1,
            rows: ROWS,
            sqlite: "journal_mode = \"wal\"\nsynchronous = \"normal\"\ncache_size = -65536",
            transaction: "none",
            ops: vec![point(ROWS)],
        },
        Case {
            name: "update",
            description: format!(
                "(c) UPDATE of one random row per BEGIN IMMEDIATE, {update_rows} rows, WAL + NORMAL, 4 writers"
            ),
            workers: 4,
            rows: update_rows,
            sqlite: "journal_mode = \"wal\"\nsynchronous = \"normal\"\nbusy_timeout = \"5s\"",
            transaction: "immediate",
            ops: vec![BareOp {
                sql: "UPDATE t SET k = ?1, v = ?2 WHERE id = ?3",
                weight: 1,
                params: format!(r#"["uniform(1, 1000000)", "text({TEXT_LEN})", "uniform(1, {update_rows})"]"#),
                bind: Bind::Update(update_rows),
            }],
        },
        Case {
            name: "mix",
            description: format!("(d) read-only mix (3 point : 1 range of 10), {ROWS} rows, 8 workers"),
            workers: 8,
            rows: ROWS,
            sqlite: "journal_mode = \"wal\"\nsynchronous = \"normal\"",
            transaction: "none",
            ops: vec![
                point(ROWS),
                BareOp {
                    sql: "SELECT id, k FROM t WHERE id BETWEEN ?1 AND ?1 + 9",
                    weight: 1,
                    params: format!(r#"["uniform(1, {ROWS})"]"#),
                    bind: Bind::Key(ROWS),
                },
            ],
        },
    ]
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    Both,
    Bare,
    Litehammer,
}

struct Options {
    duration: Duration,
    rounds: usize,
    case: Option<String>,
    db_dir: Option<PathBuf>,
    update_rows: u64,
    only: Only,
    probe: bool,
    progress: bool,
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
    for case in cases(opts.update_rows)
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
        update_rows: 1_000_001,
        only: Only::Both,
        probe: false,
        progress: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--duration" => opts.duration = humantime::parse_duration(&value()).expect("--duration"),
            "--rounds" => opts.rounds = value().parse().expect("--rounds"),
            "--case" => opts.case = Some(value()),
            "--db-dir" => opts.db_dir = Some(PathBuf::from(value())),
            "--update-rows" => opts.update_rows = value().parse().expect("--update-rows"),
            "--only" => {
                opts.only = match value().as_str() {
                    "bare" => Only::Bare,
                    "litehammer" => Only::Litehammer,
                    other => panic!("--only bare|litehammer, not {other}"),
                }
            }
            "--probe" => opts.probe = true,
            "--progress" => opts.progress = true,
            "--bench" => {} // added by `cargo bench`
            other => panic!("unknown flag {other}; see the comment at the top of benches/overhead.rs"),
        }
    }
    opts
}

/// One loop's result: wall-clock throughput, transactions per CPU-second of its threads,
/// and its threads' context switches per 1,000 transactions.
#[derive(Clone, Copy, Default)]
struct Measurement {
    /// Transactions counted (committed), for per-transaction figures (callgrind).
    count: u64,
    per_s: f64,
    per_cpu_s: f64,
    switches_per_k: f64,
}

/// Alternates bare and litehammer (bare first on even rounds) and prints the medians.
fn compare(case: &Case, opts: &Options, dir: &Path) -> String {
    println!("{}", case.description);
    let scenario_file = dir.join(format!("bench-{}.toml", case.name));
    std::fs::write(&scenario_file, scenario_text(case, opts)).expect("write scenario");
    let plan =
        BenchPlan::load(scenario_file.to_str().expect("utf-8 path")).unwrap_or_else(|e| panic!("bench scenario: {e}"));
    let template = dir.join(format!("template-{}-{}.db", case.name, case.rows));
    if template.exists() {
        println!("  template: reusing {}", template.display());
    } else {
        let start = Instant::now();
        let partial = template.with_extension("partial");
        remove_database(&partial);
        plan.create_database(&partial).expect("template database");
        std::fs::rename(&partial, &template).expect("template in place");
        println!(
            "  template: {} rows populated in {:.1} s",
            case.rows,
            start.elapsed().as_secs_f64()
        );
    }
    let bench_opts = BenchOptions {
        template: Some(template.clone()),
        probe: opts.probe,
        progress: opts.progress.then_some(Duration::from_secs(1)),
    };
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        let bare = || match opts.only {
            Only::Litehammer => Measurement::default(),
            _ => bare_run(case, &plan, &template, opts, dir, round),
        };
        let lh = || match opts.only {
            Only::Bare => Measurement::default(),
            _ => litehammer_run(&plan, &bench_opts, dir),
        };
        let (b, l) = if round % 2 == 0 {
            let b = bare();
            (b, lh())
        } else {
            let l = lh();
            (bare(), l)
        };
        println!(
            "  round {}: bare {:>9.0} tx/s {:>9.0} /cpu-s {:>6.1} cs/k {:>9} tx   litehammer {:>9.0} tx/s {:>9.0} /cpu-s {:>6.1} cs/k {:>9} tx   ratio {:.3} wall, {:.3} cpu",
            round + 1,
            b.per_s,
            b.per_cpu_s,
            b.switches_per_k,
            b.count,
            l.per_s,
            l.per_cpu_s,
            l.switches_per_k,
            l.count,
            l.per_s / b.per_s,
            l.per_cpu_s / b.per_cpu_s
        );
        rounds.push((b, l));
    }
    let _ = std::fs::remove_file(&scenario_file);
    if opts.db_dir.is_none() {
        remove_database(&template);
    }
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
    let mut text = format!(
        "name = \"bench-{}\"\nduration = \"{}ms\"\nwarmup = \"0s\"\n\n[sqlite]\n{}\n\n\
         [setup]\nsql = \"{TABLE}\"\n\
         populate = [{{ table = \"t\", rows = {}, values = [\"uniform(1, 1000000)\", \"text(20, 100)\"] }}]\n\n\
         [[group]]\nname = \"g\"\nworkers = {}\ntransaction = \"{}\"\n",
        case.name,
        opts.duration.as_millis(),
        case.sqlite,
        case.rows,
        case.workers,
        case.transaction,
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
fn litehammer_run(plan: &BenchPlan, bench_opts: &BenchOptions, dir: &Path) -> Measurement {
    let sampler = CpuSampler::start("worker-");
    let run = plan.run(dir, bench_opts);
    let cpu = sampler.stop();
    assert!(run.error.is_none(), "litehammer run failed: {:?}", run.error);
    assert!(run.verified, "verification failed");
    Measurement {
        count: run.committed,
        per_s: run.per_s,
        per_cpu_s: run.committed as f64 / cpu.seconds,
        switches_per_k: cpu.switches as f64 * 1000.0 / run.committed as f64,
    }
}

const RUN: u8 = 0;
const STOP: u8 = 1;

/// The bare loop: a copy of the template made as litehammer makes its own, the same
/// settings, one thread and connection per worker, bind + step to completion, count.
fn bare_run(case: &Case, plan: &BenchPlan, template: &Path, opts: &Options, dir: &Path, round: usize) -> Measurement {
    let path = dir.join(format!("bare-{}-{round}.db", case.name));
    remove_database(&path);
    plan.copy_database(template, &path).expect("bare copy");
    let phase = Arc::new(AtomicU8::new(RUN));
    let ready = Arc::new(Barrier::new(case.workers as usize + 1));
    let sampler = CpuSampler::start("bare-");
    let threads: Vec<_> = (0..case.workers)
        .map(|w| {
            let (phase, ready) = (phase.clone(), ready.clone());
            let conn = plan.open_configured(&path).expect("open and configure");
            let ops: Vec<(&'static str, u64, Bind)> = case.ops.iter().map(|o| (o.sql, o.weight, o.bind)).collect();
            let transaction = case.transaction != "none";
            std::thread::Builder::new()
                .name(format!("bare-{w}"))
                .spawn(move || bare_worker(&conn, &ops, transaction, &phase, &ready, Rng::derive(99, w as u64)))
                .expect("spawn")
        })
        .collect();
    ready.wait();
    let start = Instant::now();
    std::thread::sleep(opts.duration);
    // Like litehammer's measured time: it ends at the stop; the count includes the
    // transaction each worker had in flight then.
    let elapsed = start.elapsed().as_secs_f64();
    phase.store(STOP, Ordering::Release);
    let total: u64 = threads.into_iter().map(|t| t.join().expect("bare worker")).sum();
    let cpu = sampler.stop();
    remove_database(&path);
    Measurement {
        count: total,
        per_s: total as f64 / elapsed,
        per_cpu_s: total as f64 / cpu.seconds,
        switches_per_k: cpu.switches as f64 * 1000.0 / total as f64,
    }
}

fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// Committed transactions until the phase says stop. In a transaction group each
/// transaction is BEGIN IMMEDIATE, the statement, COMMIT; an error rolls it back.
fn bare_worker(
    conn: &Connection,
    ops: &[(&'static str, u64, Bind)],
    transaction: bool,
    phase: &AtomicU8,
    ready: &Barrier,
    mut rng: Rng,
) -> u64 {
    let mut stmts: Vec<Statement<'_>> = ops.iter().map(|o| conn.prepare(o.0).expect("prepare")).collect();
    let mut begin = conn.prepare("BEGIN IMMEDIATE").expect("prepare");
    let mut commit = conn.prepare("COMMIT").expect("prepare");
    let mut rollback = conn.prepare("ROLLBACK").expect("prepare");
    let pool = TextPool::new(&mut rng);
    let total_weight: u64 = ops.iter().map(|o| o.1).sum();
    ready.wait();
    let mut done = 0u64;
    while phase.load(Ordering::Acquire) != STOP {
        let i = pick(ops, total_weight, &mut rng);
        let ok = (|| -> rusqlite::Result<()> {
            if transaction {
                begin.raw_execute()?;
            }
            ops[i].2.bind(&mut stmts[i], &mut rng, &pool)?;
            let mut rows = stmts[i].raw_query();
            while rows.next()?.is_some() {}
            if transaction {
                commit.raw_execute()?;
            }
            Ok(())
        })()
        .is_ok();
        if ok {
            done += 1;
        } else if !conn.is_autocommit() {
            let _ = rollback.raw_execute();
        }
    }
    done
}

/// CPU time and context switches of this process's threads whose name starts with a
/// prefix: a thread polls /proc/self/task/*/{schedstat,status} every 2 ms and keeps each
/// thread's last reading (a thread's last <2 ms before it exits are missed, alike for both
/// loops).
struct CpuSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<HashMap<String, (u64, u64)>>,
}

struct Cpu {
    seconds: f64,
    switches: u64,
}

impl CpuSampler {
    fn start(prefix: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new().name("cpu-sampler".into()).spawn(move || {
            let mut last: HashMap<String, (u64, u64)> = HashMap::new();
            let mut poll = || {
                for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
                    let path = task.path();
                    let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
                    if !comm.starts_with(prefix) {
                        continue;
                    }
                    let stat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
                    let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
                    let switches = status
                        .lines()
                        .filter(|l| l.contains("ctxt_switches:"))
                        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                        .sum();
                    if let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse().ok()) {
                        last.insert(task.file_name().to_string_lossy().into_owned(), (ns, switches));
                    }
                }
            };
            while !flag.load(Ordering::Relaxed) {
                poll();
                std::thread::sleep(Duration::from_millis(2));
            }
            last
        });
        Self {
            stop,
            thread: thread.expect("spawn the sampler"),
        }
    }

    fn stop(self) -> Cpu {
        self.stop.store(true, Ordering::Relaxed);
        let last = self.thread.join().expect("sampler");
        Cpu {
            seconds: last.values().map(|v| v.0).sum::<u64>() as f64 / 1e9,
            switches: last.values().map(|v| v.1).sum(),
        }
    }
}

#[inline]
fn pick(ops: &[(&'static str, u64, Bind)], total_weight: u64, rng: &mut Rng) -> usize {
    if ops.len() == 1 {
        return 0;
    }
    let mut r = rng.below(total_weight);
    ops.iter()
        .position(|o| {
            let hit = r < o.1;
            r = r.saturating_sub(o.1);
            hit
        })
        .unwrap_or(0)
}
