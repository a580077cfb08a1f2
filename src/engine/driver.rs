//! Orchestration on tokio: one fresh database per matrix cell, worker threads started
//! together, warm-up then measurement, stop on time, budget or Ctrl-C; then merge,
//! verify and hand each finished run to the caller (which writes the report at once).

use crate::config::Scenario;
use crate::config::matrix::{Cell, show_value};
use crate::config::sqlite::ReadBack;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::error::RunError;
use crate::engine::loops::plain::{Message, WorkerOutput, WorkerSpec};
use crate::engine::monitor::Monitor;
use crate::engine::progress::{ProgressMode, RunProgress};
use crate::engine::summary;
use crate::machine::walstat::{file_len, sidecar};
use crate::metrics::timeline::RunClock;
use crate::report::model::{DatabaseReport, RunReport, RunStatus};
use crate::targets::sqlite::setup::{self, SetupError};
use crate::targets::verify::Acknowledged;
use crate::targets::{Backends, RunDatabase, TargetSpec};
use crate::workload::Workload;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

#[derive(Clone)]
pub(crate) struct RunOptions {
    pub db_dir: PathBuf,
    pub keep_db: bool,
    pub progress: ProgressMode,
    /// Rounds: each runs every cell once (fresh database each); at least 1.
    pub repeat: u32,
    /// Seeds the order of the cells within each round (with more than one round).
    pub order_seed: u64,
    pub backup: crate::engine::backup::BackupEnv,
    /// Start each run from a copy of this database instead of creating one (set-up and
    /// populate skipped): `run --from-db`, and the overhead benchmark, whose bare loop reads
    /// a copy made the same way.
    pub template: Option<PathBuf>,
    /// The targets the cells run on, each set up once (a PostgreSQL server, started or
    /// reached).
    pub backends: Backends,
}

/// Becomes true on the first Ctrl-C / SIGTERM; runs end their loops, not the process.
pub(crate) type Cancel = watch::Receiver<bool>;

/// The run's view of the process's cancellation token (`crate::interrupt`, whose signal
/// handling the command installed): becomes true on the first Ctrl-C / SIGTERM.
pub(crate) fn install_cancel() -> Cancel {
    let (tx, rx) = watch::channel(crate::interrupt::cancelled());
    tokio::spawn(async move {
        while !crate::interrupt::cancelled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tx.send(true);
    });
    rx
}

/// Runs `opts.repeat` rounds; each round runs every cell once, on a fresh database, in an
/// order shuffled with `opts.order_seed` (one round: the matrix order), so drift on the
/// machine spreads over every configuration instead of landing on one. Calls `on_run` after
/// each run; stops early when cancelled. With several rounds, runs carry `repeat = Some(k)`
/// (the round, 1-based); every run carries `sequence`, its 1-based place in the execution order.
pub(crate) async fn run_cells(
    cells: &[Cell],
    opts: &RunOptions,
    cancel: &Cancel,
    mut on_run: impl FnMut(&RunReport),
) -> Vec<RunReport> {
    let repeat = opts.repeat.max(1);
    let mut runs = Vec::new();
    for k in 1..=repeat {
        for i in round_order(cells.len(), repeat, opts.order_seed, k) {
            if *cancel.borrow() {
                return runs;
            }
            let index = runs.len();
            let mut run = run_cell(index, &cells[i], opts, cancel.clone()).await;
            run.repeat = (repeat > 1).then_some(k);
            run.sequence = Some(index as u32 + 1);
            on_run(&run);
            runs.push(run);
        }
    }
    runs
}

/// The cells' order in round `round` (1-based) of `rounds`: the matrix order for a single
/// round, else a Fisher–Yates shuffle seeded by the seed and the round.
pub(crate) fn round_order(cells: usize, rounds: u32, seed: u64, round: u32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cells).collect();
    if rounds > 1 {
        let mut rng = crate::workload::rng::Rng::derive(seed ^ 0x726F_756E_6473, u64::from(round));
        for i in (1..order.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
    }
    order
}

async fn run_cell(index: usize, cell: &Cell, opts: &RunOptions, cancel: Cancel) -> RunReport {
    let stem = format!("litehammer-{}-{index}-{}", std::process::id(), sanitize(&cell.id));
    let db_path = free_database_path(&opts.db_dir, &stem);
    let mut report = empty_report(cell);
    let mut target = None;
    let outcome = execute(&db_path, cell, &mut report, &mut target, opts, cancel).await;
    // The database is created with O_EXCL: when that failed, the file is not ours.
    let created = !matches!(outcome, Err(RunError::Setup(SetupError::Create { .. })));
    if let Err(e) = outcome {
        report.status = if e.interrupted() {
            RunStatus::Interrupted
        } else {
            RunStatus::Failed
        };
        report.error = Some(e.to_string());
    }
    if let Some(target) = target {
        // What happened to the target while measuring (dqlite's faults), also when the run
        // failed; then its clean-up.
        let keep = opts.keep_db;
        let (after, mut moved) = (target.clone(), std::mem::replace(&mut report, empty_report(cell)));
        moved = tokio::task::spawn_blocking(move || {
            after.after(&mut moved);
            moved
        })
        .await
        .unwrap_or_else(|_| empty_report(cell));
        report = moved;
        let _ = tokio::task::spawn_blocking(move || target.cleanup(keep)).await;
    }
    if !created {
        return report;
    }
    report.database.db_bytes = file_len(&db_path);
    if opts.keep_db {
        report.database.path = Some(db_path.display().to_string());
    } else {
        remove_database(&db_path);
        crate::engine::backup::remove_dir(&db_path, &cell.scenario.backup);
    }
    report
}

/// A run report with only the cell's identity filled in (also the base of crash reports).
pub(crate) fn empty_report(cell: &Cell) -> RunReport {
    RunReport {
        id: cell.id.clone(),
        repeat: None,
        sequence: None,
        noise: None,
        matrix: cell
            .assignments
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(show_value(v))))
            .collect(),
        when: cell.when.clone(),
        sqlite: None,
        status: RunStatus::Completed,
        error: None,
        warmup_s: cell.scenario.warmup.as_secs_f64(),
        measured_s: 0.0,
        groups: Vec::new(),
        database: DatabaseReport::default(),
        verification: None,
        timeline_interval_s: cell.scenario.timeline_interval.as_secs_f64(),
        timeline: Vec::new(),
        durability: None,
        backup: None,
        replica: None,
        postgres: None,
        dqlite: None,
        turso: None,
    }
}

struct Prepared {
    workload: Workload,
    rows_before: Vec<u64>,
    /// Newest rowid of each table `latest(...)` reads, shared by the workers.
    latest: Arc<Vec<(String, Arc<AtomicI64>)>>,
}

/// The run's SQLite file (set-up and populate, or a copy of the template), which every
/// target is set up from; then the target's own database loaded from it.
fn prepare_database(
    path: &Path,
    s: &Scenario,
    template: Option<&Path>,
    target: &dyn RunDatabase,
) -> Result<Prepared, RunError> {
    let mut conn = match template {
        Some(from) => setup::copy_database(from, path, &s.sqlite)?,
        None => setup::create_database(path, &s.sqlite, &s.setup, s.seed)?,
    };
    let workload = Workload::compile(s, &mut conn).map_err(|e| RunError::Compile(e.message))?;
    let rows_before = target.load(s, &conn, &workload.tracked_tables)?;
    let latest = workload
        .latest_tables
        .iter()
        .map(|t| {
            Ok((
                t.clone(),
                Arc::new(AtomicI64::new(crate::workload::newest_rowid(&conn, t)?)),
            ))
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Prepared {
        workload,
        rows_before,
        latest: Arc::new(latest),
    })
}

async fn execute(
    db_path: &Path,
    cell: &Cell,
    report: &mut RunReport,
    created: &mut Option<Arc<dyn RunDatabase>>,
    opts: &RunOptions,
    cancel: Cancel,
) -> Result<(), RunError> {
    let s = &cell.scenario;
    let backend = opts.backends.for_kind(s.target)?;
    let target: Arc<dyn RunDatabase> = {
        let (path, scenario) = (db_path.to_path_buf(), s.clone());
        Arc::from(tokio::task::spawn_blocking(move || backend.create(&path, &scenario)).await??)
    };
    target.describe(report);
    *created = Some(target.clone());
    let prepared = {
        let (path, scenario, template) = (db_path.to_path_buf(), s.clone(), opts.template.clone());
        let target = target.clone();
        tokio::task::spawn_blocking(move || prepare_database(&path, &scenario, template.as_deref(), &*target)).await??
    };
    let backup = crate::engine::backup::start_for_run(db_path, s, &opts.backup)?;
    let replica = crate::engine::backup::start_replica(db_path, s, backup.as_ref(), &opts.backup)?;
    let phase = Arc::new(PhaseFlag::default());
    let clock = Arc::new(RunClock::new(s.timeline_interval.0));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let on_replica = crate::engine::backup::replica_groups(s, replica.as_ref())?;
    let Spawned { handles, workers } =
        spawn_workers(s, &prepared, target.spec(), on_replica.as_ref(), &phase, &clock, tx)?;
    let read_back = match await_ready(&mut rx, workers).await {
        Ok(rb) => rb,
        Err(e) => {
            stop_and_join(&phase, handles, workers, &mut rx).await;
            return Err(e);
        }
    };
    target.record(report, read_back);
    target.during(clock.clone());

    let groups = prepared.workload.groups.iter().map(|g| g.name.clone()).collect();
    let progress = RunProgress::start(opts.progress, &cell.id, s.duration.as_ref().map(|d| d.get_ref().0));
    let mut monitor = Monitor::new(db_path, groups, clock.clone(), progress, workers);
    let (measured, interrupted) = drive_phases(s, &phase, &clock, &handles, &mut rx, &mut monitor, cancel).await;
    monitor.drain(&mut rx).await;
    let measure_end = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    let replica = replica.map(|r| {
        let mut report = r.stop(db_path);
        if on_replica.is_some() {
            report.groups = s
                .group
                .iter()
                .filter(|g| g.replica)
                .map(|g| g.name.get_ref().clone())
                .collect();
        }
        report
    });
    let finished = monitor.finish(measure_end);
    // Open until this function returns, after the backup's and the verification's
    // connections have closed: closing the -shm drops this process's SQLite locks on it.
    let _shm_open = finished.files;
    report.database.wal_bytes_max = finished.wal_bytes_max;
    report.timeline = finished.timeline;
    let outputs = finished.outputs?;
    let backup =
        backup.map(|b| crate::engine::backup::finish_for_run(b, db_path, s, &prepared.workload.tracked_tables, report));
    report.measured_s = measured
        .as_ref()
        .map_or(0.0, |(start, stop, _)| stop.duration_since(*start).as_secs_f64());
    report.noise = measured.map(|(_, _, noise)| noise);
    report.groups = summary::summarize(&prepared.workload, &outputs, report.measured_s);
    crate::analysis::invariants::check_run(report, s.operations.is_some());
    if interrupted {
        report.status = RunStatus::Interrupted;
    }
    let mut verification = {
        let (inserts, deletes) = acknowledged(&prepared, &outputs);
        let (target, checks) = (target.clone(), s.check.clone());
        let (tables, rows_before, untracked) = (
            prepared.workload.tracked_tables.clone(),
            prepared.rows_before.clone(),
            prepared.workload.untracked_tables.clone(),
        );
        tokio::task::spawn_blocking(move || {
            target.verify(&Acknowledged {
                tables: &tables,
                rows_before: &rows_before,
                inserts: &inserts,
                deletes: &deletes,
                untracked: &untracked,
                checks: &checks,
            })
        })
        .await??
    };
    let metric_checks = s
        .check
        .iter()
        .filter_map(|c| c.expr.as_ref().map(|e| (c.name.get_ref(), e.get_ref())));
    verification
        .scenario_checks
        .extend(metric_checks.map(|(name, e)| crate::analysis::checks::evaluate(e, name, report)));
    if let Some(b) = backup {
        crate::engine::backup::attach(report, &mut verification, b);
    }
    if let Some(r) = replica {
        crate::engine::backup::attach_replica(report, &mut verification, r);
    }
    report.verification = Some(verification);
    Ok(())
}

/// The workers started: one handle per worker thread, or per worker process (which runs
/// `threads` workers), and how many workers they run in all.
struct Spawned {
    handles: Vec<std::thread::JoinHandle<()>>,
    workers: usize,
}

fn spawn_workers(
    s: &Scenario,
    prepared: &Prepared,
    target: TargetSpec,
    on_replica: Option<&TargetSpec>,
    phase: &Arc<PhaseFlag>,
    clock: &Arc<RunClock>,
    tx: mpsc::UnboundedSender<Message>,
) -> Result<Spawned, RunError> {
    let workload = &prepared.workload;
    let total = workload.total_workers();
    let budget_total = s.operations.as_ref().map(|o| o.get_ref().get());
    let mut handles = Vec::with_capacity(total as usize);
    let mut index = 0u32;
    for (group_index, group) in workload.groups.iter().enumerate() {
        let group = Arc::new(group.clone());
        let queue = match group_queue(&group, s.seed) {
            Ok(q) => q,
            Err(source) => {
                phase.set(Phase::Stop);
                unpark(&handles);
                return Err(RunError::Spawn { index, source });
            }
        };
        // A `replica = true` group reads the replica when the cell has one.
        let group_target = on_replica
            .filter(|_| s.group.iter().any(|g| g.name.get_ref() == &group.name && g.replica))
            .unwrap_or(&target);
        // A thread group's workers are threads of this process: one interpreter lock.
        let interp = group
            .app
            .as_ref()
            .filter(|a| a.isolation == crate::config::app::Isolation::Thread)
            .map(|a| Arc::new(crate::engine::loops::interp::InterpLock::new(a.runtime, a.busy_wait)));
        // A process group's workers run `threads_per_process` to a process.
        let per_process = group
            .app
            .as_ref()
            .filter(|a| a.isolation == crate::config::app::Isolation::Process)
            .map(|a| a.threads_per_process.max(1));
        let mut specs = Vec::new();
        for index_in_group in 0..group.workers {
            let budget = budget_total.map(|n| n / total as u64 + u64::from((index as u64) < n % total as u64));
            specs.push(WorkerSpec {
                index,
                total_workers: total,
                group_index,
                index_in_group,
                group: group.clone(),
                seed: s.seed,
                tracked_tables: workload.tracked_tables.len(),
                budget,
                clock: clock.clone(),
                latest: prepared.latest.clone(),
                queue: queue.clone(),
                target: group_target.clone(),
                interp: interp.clone(),
            });
            index += 1;
            let spawned = match per_process {
                Some(n) if specs.len() as u32 == n || index_in_group + 1 == group.workers => {
                    crate::engine::process::spawn(&std::mem::take(&mut specs), phase.clone(), tx.clone())
                }
                Some(_) => continue,
                None => {
                    let spec = specs.pop().expect("just pushed");
                    crate::engine::loops::spawn::spawn(spec, phase.clone(), tx.clone())
                }
            };
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    phase.set(Phase::Stop);
                    unpark(&handles);
                    return Err(RunError::Spawn {
                        index: index - 1,
                        source: e,
                    });
                }
            }
        }
    }
    Ok(Spawned {
        handles,
        workers: total as usize,
    })
}

/// An application-model group's shared queue: with more (or fewer) clients than workers, or
/// with arrivals at a rate. Otherwise each worker serves its own client, with no queue.
/// A `process` group has one only with `queue = "shared"` (in shared memory, which its
/// processes map); otherwise each process has its own share (`engine::process`).
fn group_queue(
    group: &crate::workload::GroupPlan,
    seed: u64,
) -> std::io::Result<Option<Arc<crate::engine::loops::queue::RequestQueue>>> {
    use crate::engine::loops::queue::RequestQueue;
    let Some(app) = group.app.as_ref() else {
        return Ok(None);
    };
    let queued = group.pacing.is_some() || app.clients != group.workers;
    if app.isolation == crate::config::app::Isolation::Process {
        // `queue = "first-free"`: the pool of clients not yet bound to a process, which the
        // processes claim from (`RequestQueue::first_free`).
        if app.first_free && group.pacing.is_none() {
            return Ok(Some(Arc::new(RequestQueue::shared_clients(app.clients)?)));
        }
        if !(app.shared_queue && queued) {
            return Ok(None);
        }
        return Ok(Some(Arc::new(match group.pacing {
            Some(p) => RequestQueue::shared_arrivals(p.group_rate, p.arrival, seed)?,
            None => RequestQueue::shared_clients(app.clients)?,
        })));
    }
    if let Some(p) = group.pacing {
        return Ok(Some(Arc::new(RequestQueue::arrivals(
            p.group_rate,
            p.arrival,
            seed,
            (0, 1),
        ))));
    }
    Ok(queued.then(|| Arc::new(RequestQueue::clients(app.clients))))
}

/// Waits until every worker has opened, configured and prepared; returns the settings
/// read back (all workers must agree), or the first worker's error.
async fn await_ready(rx: &mut mpsc::UnboundedReceiver<Message>, workers: usize) -> Result<Option<ReadBack>, RunError> {
    let mut first: Option<Option<ReadBack>> = None;
    let mut failure = None;
    let mut answered = 0;
    while answered < workers {
        let Some(msg) = rx.recv().await else {
            return Err(RunError::WorkersGone);
        };
        answered += 1;
        match msg {
            // A replica group's workers read nothing back (their settings are the replica's).
            Message::Ready { result: Ok(None), .. } if first.is_some() => {}
            Message::Ready { result: Ok(rb), .. } => match &first {
                Some(None) => first = Some(rb),
                Some(f) if *f != rb => failure = failure.or(Some(RunError::SettingsDiffer)),
                Some(_) => {}
                None => first = Some(rb),
            },
            Message::Ready {
                index,
                result: Err(message),
            } => failure = failure.or(Some(RunError::Worker { index, message })),
            Message::Done { index, result } => {
                failure = failure.or(Some(RunError::EndedEarly {
                    index,
                    message: result.err(),
                }))
            }
            Message::Interval(_) => answered -= 1,
        }
    }
    match (failure, first) {
        (Some(e), _) => Err(e),
        (None, Some(rb)) => Ok(rb),
        (None, None) => Err(RunError::NoWorkers),
    }
}

async fn stop_and_join(
    phase: &PhaseFlag,
    handles: Vec<std::thread::JoinHandle<()>>,
    workers: usize,
    rx: &mut mpsc::UnboundedReceiver<Message>,
) {
    phase.set(Phase::Stop);
    unpark(&handles);
    let mut done = 0;
    while done < workers {
        match rx.recv().await {
            Some(Message::Done { .. }) => done += 1,
            Some(_) => {}
            None => break,
        }
    }
    for h in handles {
        let _ = h.join();
    }
}

fn unpark(handles: &[std::thread::JoinHandle<()>]) {
    handles.iter().for_each(|h| h.thread().unpark());
}

#[derive(Debug, PartialEq, Eq)]
enum PhaseEnd {
    Elapsed,
    AllDone,
    Interrupted,
}

/// Warm-up, then the measured phase until the duration passes, every worker has spent its
/// budget, or a cancel arrives. Returns when measurement began and when it stopped, and whether
/// it was interrupted.
async fn drive_phases(
    s: &Scenario,
    phase: &PhaseFlag,
    clock: &RunClock,
    handles: &[std::thread::JoinHandle<()>],
    rx: &mut mpsc::UnboundedReceiver<Message>,
    monitor: &mut Monitor,
    mut cancel: Cancel,
) -> (Option<(Instant, Instant, crate::report::model::Noise)>, bool) {
    let warmup = s.warmup.0;
    if !warmup.is_zero() {
        phase.set(Phase::Warmup);
        unpark(handles);
        let end = watch_phase(Some(Instant::now() + warmup), rx, monitor, &mut cancel).await;
        if end != PhaseEnd::Elapsed {
            phase.set(Phase::Stop);
            return (None, end == PhaseEnd::Interrupted);
        }
    }
    let noise = crate::machine::noise::Snapshot::take();
    let start = Instant::now();
    clock.start_measuring(start);
    phase.set(Phase::Measure);
    unpark(handles);
    let deadline = s.duration.as_ref().map(|d| start + d.get_ref().0);
    let end = watch_phase(deadline, rx, monitor, &mut cancel).await;
    // The measured time ends here, at the stop, as a duration run's ends at its deadline.
    // Each worker still finishes (and records, so no tail is hidden) the transaction it
    // has in flight, at most one per worker; the time that takes — a writer asleep in
    // SQLite's busy handler, up to 100 ms per try — is not measured time.
    let stop = Instant::now();
    phase.set(Phase::Stop);
    let noise = noise.until(&crate::machine::noise::Snapshot::take());
    monitor.record_final_files();
    (Some((start, stop, noise)), end == PhaseEnd::Interrupted)
}

/// Consumes worker messages and samples the files until the deadline, the end of all
/// workers, or a cancel.
async fn watch_phase(
    deadline: Option<Instant>,
    rx: &mut mpsc::UnboundedReceiver<Message>,
    monitor: &mut Monitor,
    cancel: &mut Cancel,
) -> PhaseEnd {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let sleep = tokio::time::sleep_until(
        deadline
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365))
            .into(),
    );
    tokio::pin!(sleep);
    let mut cancel_alive = true;
    loop {
        tokio::select! {
            r = cancel.wait_for(|c| *c), if cancel_alive => match r {
                Ok(_) => return PhaseEnd::Interrupted,
                Err(_) => cancel_alive = false,
            },
            _ = &mut sleep, if deadline.is_some() => return PhaseEnd::Elapsed,
            msg = rx.recv() => match msg {
                Some(m) => {
                    monitor.handle(m);
                    if monitor.all_finished() {
                        return PhaseEnd::AllDone;
                    }
                }
                None => return PhaseEnd::AllDone,
            },
            _ = tick.tick() => monitor.tick(Instant::now()),
        }
    }
}

/// Rows inserted and deleted per tracked table by the workers' committed transactions.
fn acknowledged(prepared: &Prepared, outputs: &[WorkerOutput]) -> (Vec<u64>, Vec<u64>) {
    let tables = prepared.workload.tracked_tables.len();
    let sum = |pick: fn(&WorkerOutput) -> &Vec<u64>| -> Vec<u64> {
        (0..tables).map(|t| outputs.iter().map(|o| pick(o)[t]).sum()).collect()
    };
    (sum(|o| &o.acked_inserts), sum(|o| &o.acked_deletes))
}

/// `DIR/STEM.db`, or `DIR/STEM-2.db`, ... : the first name where neither the database nor
/// any of its sidecar files exists (a kept database, another process's file, a stray WAL).
fn free_database_path(dir: &Path, stem: &str) -> PathBuf {
    let taken = |p: &Path| {
        ["", "-wal", "-shm", "-journal"]
            .iter()
            .any(|s| std::fs::symlink_metadata(sidecar(p, s)).is_ok())
    };
    (1..)
        .map(|k| match k {
            1 => dir.join(format!("{stem}.db")),
            k => dir.join(format!("{stem}-{k}.db")),
        })
        .find(|p| !taken(p))
        .expect("an unbounded range ends only at a free name")
}

/// Removes a database this run created, with the sidecars SQLite made for it.
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

#[cfg(test)]
mod tests {
    use super::round_order;

    #[test]
    fn a_round_runs_every_cell_once_in_a_seeded_order() {
        assert_eq!(
            round_order(4, 1, 7, 1),
            [0, 1, 2, 3],
            "a single round keeps the matrix order"
        );
        let rounds: Vec<Vec<usize>> = (1..=5).map(|k| round_order(6, 5, 7, k)).collect();
        for r in &rounds {
            let mut sorted = r.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4, 5]);
        }
        assert!(rounds.windows(2).any(|w| w[0] != w[1]), "{rounds:?}");
        assert_eq!(round_order(6, 5, 7, 3), rounds[2]);
        assert_ne!((1..=5).map(|k| round_order(6, 5, 8, k)).collect::<Vec<_>>(), rounds);
    }
}
