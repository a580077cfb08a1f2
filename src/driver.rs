//! Orchestration on tokio: one fresh database per matrix cell, worker threads started
//! together, warm-up then measurement, stop on time, budget or Ctrl-C; then merge,
//! verify and hand each finished run to the caller (which writes the report at once).

use crate::metrics::{LatencySummary, Recorder, jain_index};
use crate::report::model::{
    DatabaseReport, Fairness, GroupReport, OpReport, RunReport, RunStatus, TransactionReport, WorkerReport,
};
use crate::scenario::Scenario;
use crate::scenario::matrix::{Cell, show_value};
use crate::sqlite_config::ReadBack;
use crate::verify::{self, Acknowledged};
use crate::worker::{self, Message, Phase, PhaseFlag, WorkerOutput, WorkerSpec};
use crate::workload::{Workload, setup};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub db_dir: PathBuf,
    pub keep_db: bool,
    /// Runs of each cell (fresh database each); at least 1.
    pub repeat: u32,
}

/// Becomes true on the first Ctrl-C / SIGTERM; runs end their loops, not the process.
pub type Cancel = watch::Receiver<bool>;

/// Installs the signal handlers: the first signal cancels, a second one exits at once.
pub fn install_cancel() -> Cancel {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut count = 0;
        loop {
            wait_for_signal().await;
            count += 1;
            if count > 1 {
                eprintln!("\nsecond interrupt: aborting without a report");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted: finishing in-flight transactions, verifying, writing the report (Ctrl-C again to abort)"
            );
            let _ = tx.send(true);
        }
    });
    rx
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs every cell in order, each `opts.repeat` times on a fresh database, calling `on_run`
/// after each run; stops early when cancelled. Repeated runs carry `repeat = Some(k)`, 1-based.
pub async fn run_cells(
    cells: &[Cell],
    opts: &RunOptions,
    cancel: &Cancel,
    mut on_run: impl FnMut(&RunReport),
) -> Vec<RunReport> {
    let repeat = opts.repeat.max(1);
    let mut runs = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        for k in 1..=repeat {
            if *cancel.borrow() {
                return runs;
            }
            let index = i * repeat as usize + (k - 1) as usize;
            let mut run = run_cell(index, cell, opts, cancel.clone()).await;
            run.repeat = (repeat > 1).then_some(k);
            on_run(&run);
            runs.push(run);
        }
    }
    runs
}

async fn run_cell(index: usize, cell: &Cell, opts: &RunOptions, cancel: Cancel) -> RunReport {
    let db_path = opts.db_dir.join(format!(
        "litehammer-{}-{index}-{}.db",
        std::process::id(),
        sanitize(&cell.id)
    ));
    let mut report = empty_report(cell);
    let outcome = execute(&db_path, cell, &mut report, cancel).await;
    if let Err(e) = outcome {
        report.status = RunStatus::Failed;
        report.error = Some(e);
    }
    report.database.db_bytes = file_len(&db_path);
    if opts.keep_db {
        report.database.path = Some(db_path.display().to_string());
    } else {
        remove_database(&db_path);
    }
    report
}

fn empty_report(cell: &Cell) -> RunReport {
    RunReport {
        id: cell.id.clone(),
        repeat: None,
        matrix: cell
            .assignments
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(show_value(v))))
            .collect(),
        sqlite: None,
        status: RunStatus::Completed,
        error: None,
        warmup_s: cell.scenario.warmup.as_secs_f64(),
        measured_s: 0.0,
        groups: Vec::new(),
        database: DatabaseReport::default(),
        verification: None,
    }
}

struct Prepared {
    workload: Workload,
    rows_before: Vec<u64>,
}

fn prepare_database(path: &Path, s: &Scenario) -> Result<Prepared, String> {
    let mut conn = setup::create_database(path, &s.sqlite, &s.setup, s.seed).map_err(|e| e.to_string())?;
    let workload = Workload::compile(s, &mut conn).map_err(|e| e.message)?;
    let rows_before = verify::count_rows(&conn, &workload.tracked_tables).map_err(|e| e.to_string())?;
    Ok(Prepared { workload, rows_before })
}

async fn execute(db_path: &Path, cell: &Cell, report: &mut RunReport, cancel: Cancel) -> Result<(), String> {
    let s = &cell.scenario;
    let prepared = {
        let (path, scenario) = (db_path.to_path_buf(), s.clone());
        tokio::task::spawn_blocking(move || prepare_database(&path, &scenario))
            .await
            .map_err(|e| e.to_string())??
    };
    let phase = Arc::new(PhaseFlag::default());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handles = spawn_workers(db_path, s, &prepared.workload, &phase, tx)?;
    let ready = await_ready(&mut rx, handles.len()).await;
    let read_back = match ready {
        Ok(rb) => rb,
        Err(e) => {
            stop_and_join(&phase, handles, &mut rx).await;
            return Err(e);
        }
    };
    report.sqlite = Some(read_back);
    report.database.page_size = report.sqlite.as_ref().map_or(0, |r| r.page_size);

    let sampler = WalSampler::start(db_path);
    let (measure_start, interrupted) = drive_phases(s, &phase, &handles, cancel).await;
    let outputs = collect_outputs(&mut rx, handles.len()).await;
    let measure_end = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    report.database.wal_bytes_max = sampler.stop().await;
    let outputs = outputs?;
    report.measured_s = measure_start.map_or(0.0, |t| measure_end.duration_since(t).as_secs_f64());
    report.groups = summarize(&prepared.workload, &outputs, report.measured_s);
    if interrupted {
        report.status = RunStatus::Interrupted;
    }
    report.verification = Some(verify_after(db_path, &prepared, &outputs)?);
    Ok(())
}

fn spawn_workers(
    db_path: &Path,
    s: &Scenario,
    workload: &Workload,
    phase: &Arc<PhaseFlag>,
    tx: mpsc::UnboundedSender<Message>,
) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    let total = workload.total_workers();
    let budget_total = s.operations.as_ref().map(|o| o.get_ref().get());
    let mut handles = Vec::with_capacity(total as usize);
    let mut index = 0u32;
    for (group_index, group) in workload.groups.iter().enumerate() {
        let group = Arc::new(group.clone());
        for _ in 0..group.workers {
            let budget = budget_total.map(|n| n / total as u64 + u64::from((index as u64) < n % total as u64));
            let spec = WorkerSpec {
                index,
                total_workers: total,
                group_index,
                group: group.clone(),
                db_path: db_path.to_path_buf(),
                settings: s.sqlite.clone(),
                seed: s.seed,
                tracked_tables: workload.tracked_tables.len(),
                budget,
            };
            let handle = worker::spawn(spec, phase.clone(), tx.clone());
            match handle {
                Ok(h) => handles.push(h),
                Err(e) => {
                    phase.set(Phase::Stop);
                    return Err(format!("cannot start worker thread {index}: {e}"));
                }
            }
            index += 1;
        }
    }
    Ok(handles)
}

/// Waits until every worker has opened, configured and prepared; returns the settings
/// read back (all workers must agree), or the first worker's error.
async fn await_ready(rx: &mut mpsc::UnboundedReceiver<Message>, workers: usize) -> Result<ReadBack, String> {
    let mut first: Option<ReadBack> = None;
    let mut failure = None;
    for _ in 0..workers {
        match rx.recv().await {
            Some(Message::Ready { result: Ok(rb), .. }) => match &first {
                Some(f) if *f != rb => failure = failure.or(Some("workers read back different settings".to_string())),
                Some(_) => {}
                None => first = Some(rb),
            },
            Some(Message::Ready { index, result: Err(e) }) => {
                failure = failure.or(Some(format!("worker {index}: {e}")))
            }
            Some(Message::Done { index, result }) => {
                failure = failure.or(Some(format!(
                    "worker {index} ended before starting: {:?}",
                    result.err()
                )))
            }
            None => return Err("workers disappeared while starting".into()),
        }
    }
    match (failure, first) {
        (Some(e), _) => Err(e),
        (None, Some(rb)) => Ok(rb),
        (None, None) => Err("no workers".into()),
    }
}

async fn stop_and_join(
    phase: &PhaseFlag,
    handles: Vec<std::thread::JoinHandle<()>>,
    rx: &mut mpsc::UnboundedReceiver<Message>,
) {
    phase.set(Phase::Stop);
    unpark(&handles);
    drop(collect_outputs(rx, handles.len()).await);
    for h in handles {
        let _ = h.join();
    }
}

fn unpark(handles: &[std::thread::JoinHandle<()>]) {
    handles.iter().for_each(|h| h.thread().unpark());
}

/// Warm-up, then the measured phase until the duration passes, the budget is spent (the
/// workers stop themselves) or a cancel arrives. Returns when measurement began and
/// whether the run was interrupted.
async fn drive_phases(
    s: &Scenario,
    phase: &PhaseFlag,
    handles: &[std::thread::JoinHandle<()>],
    mut cancel: Cancel,
) -> (Option<Instant>, bool) {
    let warmup = s.warmup.0;
    if !warmup.is_zero() {
        phase.set(Phase::Warmup);
        unpark(handles);
        if cancelled_within(&mut cancel, warmup).await {
            phase.set(Phase::Stop);
            return (None, true);
        }
    }
    phase.set(Phase::Measure);
    unpark(handles);
    let start = Instant::now();
    let interrupted = match &s.duration {
        Some(d) => cancelled_within(&mut cancel, d.get_ref().0).await,
        // Operation-count run: the workers stop by themselves.
        None => wait_cancelled_or(&mut cancel, handles).await,
    };
    phase.set(Phase::Stop);
    (Some(start), interrupted)
}

async fn cancelled_within(cancel: &mut Cancel, limit: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(limit) => false,
        r = cancel.wait_for(|c| *c) => r.is_ok(),
    }
}

/// Polls for all worker threads to finish (budget runs), or a cancel.
async fn wait_cancelled_or(cancel: &mut Cancel, handles: &[std::thread::JoinHandle<()>]) -> bool {
    loop {
        if handles.iter().all(|h| h.is_finished()) {
            return false;
        }
        if cancelled_within(cancel, Duration::from_millis(20)).await {
            return true;
        }
    }
}

async fn collect_outputs(
    rx: &mut mpsc::UnboundedReceiver<Message>,
    workers: usize,
) -> Result<Vec<WorkerOutput>, String> {
    let mut outputs = Vec::with_capacity(workers);
    let mut failure = None;
    while outputs.len() + usize::from(failure.is_some()) < workers {
        match rx.recv().await {
            Some(Message::Done { result: Ok(out), .. }) => outputs.push(*out),
            Some(Message::Done { index, result: Err(e) }) => failure = Some(format!("worker {index}: {e}")),
            Some(Message::Ready { .. }) => {}
            None => break,
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(outputs),
    }
}

fn summarize(workload: &Workload, outputs: &[WorkerOutput], measured_s: f64) -> Vec<GroupReport> {
    let rate = |n: u64| if measured_s > 0.0 { n as f64 / measured_s } else { 0.0 };
    workload
        .groups
        .iter()
        .enumerate()
        .map(|(gi, group)| {
            let mine: Vec<&WorkerOutput> = outputs.iter().filter(|o| o.group_index == gi).collect();
            let ops = group
                .ops
                .iter()
                .enumerate()
                .map(|(oi, op)| {
                    let merged = merge(mine.iter().map(|o| &o.ops[oi]));
                    OpReport {
                        name: op.name.clone(),
                        count: merged.latency.len(),
                        errors: merged.errors,
                        throughput_per_s: rate(merged.latency.len()),
                        latency_us: LatencySummary::of(&merged.latency),
                        histogram_v2: crate::metrics::encode_histogram(&merged.latency),
                        first_error: merged.first_error,
                    }
                })
                .collect();
            let tx = merge(mine.iter().map(|o| &o.transactions));
            let committed: u64 = mine.iter().map(|o| o.committed).sum();
            let per_worker: Vec<WorkerReport> = mine
                .iter()
                .map(|o| WorkerReport {
                    id: o.index,
                    transactions: o.committed,
                    rolled_back: o.rolled_back,
                    max_latency_us: o.transactions.latency.max() as f64 / 1000.0,
                })
                .collect();
            GroupReport {
                name: group.name.clone(),
                workers: group.workers,
                transaction: group.transaction.as_str().to_string(),
                statements_per_transaction: group.statements_per_transaction,
                ops,
                transactions: TransactionReport {
                    committed,
                    rolled_back: mine.iter().map(|o| o.rolled_back).sum(),
                    errors: tx.errors,
                    throughput_per_s: rate(committed),
                    latency_us: LatencySummary::of(&tx.latency),
                    histogram_v2: crate::metrics::encode_histogram(&tx.latency),
                    first_error: tx.first_error,
                },
                fairness: fairness(&per_worker),
                per_worker,
            }
        })
        .collect()
}

fn merge<'a>(recorders: impl Iterator<Item = &'a Recorder>) -> Recorder {
    let mut total = Recorder::default();
    recorders.for_each(|r| total.merge(r));
    total
}

fn fairness(workers: &[WorkerReport]) -> Fairness {
    let counts: Vec<u64> = workers.iter().map(|w| w.transactions).collect();
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    Fairness {
        jain_index: jain_index(&counts),
        min_max_ratio: if max == 0 { 1.0 } else { min as f64 / max as f64 },
    }
}

fn verify_after(
    db_path: &Path,
    prepared: &Prepared,
    outputs: &[WorkerOutput],
) -> Result<crate::report::model::Verification, String> {
    let tables = prepared.workload.tracked_tables.len();
    let sum = |pick: fn(&WorkerOutput) -> &Vec<u64>| -> Vec<u64> {
        (0..tables).map(|t| outputs.iter().map(|o| pick(o)[t]).sum()).collect()
    };
    let inserts = sum(|o| &o.acked_inserts);
    let deletes = sum(|o| &o.acked_deletes);
    let conn = rusqlite::Connection::open_with_flags(db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("verification cannot open the database: {e}"))?;
    inject_fault(&conn, &prepared.workload.tracked_tables);
    verify::verify(
        &conn,
        &Acknowledged {
            tables: &prepared.workload.tracked_tables,
            rows_before: &prepared.rows_before,
            inserts: &inserts,
            deletes: &deletes,
            untracked: &prepared.workload.untracked_tables,
        },
    )
    .map_err(|e| format!("verification failed to query the database: {e}"))
}

/// Test hook: `LITEHAMMER_FAULT=lose-row` deletes one row of the first tracked table before
/// verification, so tests can prove the checker catches loss end to end.
fn inject_fault(conn: &rusqlite::Connection, tables: &[String]) {
    if std::env::var("LITEHAMMER_FAULT").as_deref() == Ok("lose-row")
        && let Some(table) = tables.first()
    {
        let sql = format!("DELETE FROM \"{table}\" WHERE rowid = (SELECT max(rowid) FROM \"{table}\")");
        let _ = conn.execute(&sql, []);
    }
}

/// Samples the WAL file size every 100 ms while a run is measured.
struct WalSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl WalSampler {
    fn start(db_path: &Path) -> Self {
        let wal = sidecar(db_path, "-wal");
        let (stop, max) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (stop2, max2) = (stop.clone(), max.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !stop2.load(Ordering::Relaxed) {
                tick.tick().await;
                max2.fetch_max(file_len(&wal), Ordering::Relaxed);
            }
        });
        Self { stop, max, task }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.max.load(Ordering::Relaxed)
    }
}

fn sidecar(db_path: &Path, suffix: &str) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn remove_database(db_path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(sidecar(db_path, suffix));
    }
}

fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    s.chars().take(80).collect()
}
