//! The backup beside the workload: `VACUUM INTO` or the online backup API every interval on
//! a thread with its own connection, or the `litestream` binary as a child process
//! replicating to a file replica. Started before the warm-up, stopped when the workload
//! stops; then `engine::backup::restore` restores the replica and checks it.

pub(crate) mod error;
mod ltx;
mod proc;
pub(crate) mod replica;
pub(crate) mod restore;
mod wal;

pub(crate) use error::BackupError;
use error::file_error;
use ltx::{copy_ltx, has_ltx};
use proc::{io_bytes, own_group_and_die_with_parent, proc_usage, signal, thread_cpu_s};

use crate::config::backup::{BackupMethod, BackupSettings};
use crate::report::model::backup::{BackupReport, LitestreamInfo};
use restore::{LATEST, Stopped};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the first Litestream snapshot may take before the run fails.
const LITESTREAM_READY: Duration = Duration::from_secs(20);
/// `litestream version` answers at once; one that does not in this long hangs.
const VERSION_LIMIT: Duration = Duration::from_secs(10);
/// How long Litestream may take for its final sync after SIGTERM.
const LITESTREAM_STOP: Duration = Duration::from_secs(40);

/// What `run` knows about the backup tools, beside the scenario's `[backup]`.
#[derive(Clone, Debug, Default)]
pub(crate) struct BackupEnv {
    /// The litestream binary (`--litestream`, or found on PATH), checked executable.
    pub litestream: Option<PathBuf>,
    /// The `litestream-vfs` extension, when a cell has a `[replica]`.
    pub vfs: Option<replica::VfsExtension>,
}

/// Finds the litestream binary: `explicit`, else `litestream` on PATH. The error says how
/// to install it.
pub(crate) fn find_litestream(explicit: Option<&Path>) -> Result<PathBuf, BackupError> {
    if let Some(p) = explicit {
        return if is_executable(p) {
            Ok(p.to_path_buf())
        } else {
            Err(BackupError::NotExecutable(p.to_path_buf()))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("litestream"))
        .find(|p| is_executable(p))
        .ok_or(BackupError::NotOnPath)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Checks that `dir` exists (or can be created) and is writable.
pub(crate) fn check_writable_dir(dir: &Path) -> Result<(), BackupError> {
    std::fs::create_dir_all(dir).map_err(file_error("create the replica dir", dir))?;
    let probe = dir.join(format!(".litehammer-probe-{}", std::process::id()));
    std::fs::write(&probe, b"x").map_err(file_error("write to the replica dir", dir))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// A running backup. Dropping it stops it (kills Litestream) on every exit path.
pub(crate) struct BackupRun {
    settings: BackupSettings,
    /// Replica or backup files of this run.
    pub dir: PathBuf,
    inner: Inner,
    started: Instant,
}

enum Inner {
    Litestream(LitestreamChild),
    Thread {
        stop: Arc<AtomicBool>,
        handle: Option<std::thread::JoinHandle<ThreadStats>>,
    },
}

impl BackupRun {
    /// Starts the scenario's backup of `db` (which exists), files under `dir`.
    pub(crate) fn start(
        db: &Path,
        settings: &BackupSettings,
        dir: &Path,
        env: &BackupEnv,
    ) -> Result<Option<BackupRun>, BackupError> {
        if settings.is_none() {
            return Ok(None);
        }
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(file_error("create", dir))?;
        let inner = match settings.method {
            BackupMethod::None => unreachable!(),
            BackupMethod::Litestream => {
                let bin = match &env.litestream {
                    Some(b) => b.clone(),
                    None => find_litestream(None)?,
                };
                Inner::Litestream(LitestreamChild::start(&bin, db, settings, dir)?)
            }
            BackupMethod::VacuumInto | BackupMethod::BackupApi => {
                let stop = Arc::new(AtomicBool::new(false));
                let (db, dir, s, flag) = (db.to_path_buf(), dir.to_path_buf(), settings.clone(), stop.clone());
                let handle = std::thread::Builder::new()
                    .name("backup".into())
                    .spawn(move || backup_loop(&db, &dir, &s, &flag))
                    .map_err(BackupError::Thread)?;
                Inner::Thread {
                    stop,
                    handle: Some(handle),
                }
            }
        };
        Ok(Some(BackupRun {
            settings: settings.clone(),
            dir: dir.to_path_buf(),
            inner,
            started: Instant::now(),
        }))
    }

    /// The file replica Litestream writes (Litestream runs only).
    pub(crate) fn replica_path(&self) -> PathBuf {
        self.dir.join("replica")
    }

    /// The Litestream version (Litestream runs only).
    pub(crate) fn litestream_version(&self) -> Option<String> {
        match &self.inner {
            Inner::Litestream(child) => Some(child.info.version.clone()),
            Inner::Thread { .. } => None,
        }
    }

    /// Called right when the workload stopped: saves what the replica holds now, then stops
    /// the backup (Litestream: SIGTERM, its final sync, exit).
    pub(crate) fn stop(mut self) -> Stopped {
        let mut report = BackupReport {
            method: self.settings.method.as_str().to_string(),
            settings: serde_json::to_value(&self.settings).unwrap_or_default(),
            ..BackupReport::default()
        };
        let mut at_stop = None;
        let mut litestream = None;
        match &mut self.inner {
            Inner::Litestream(child) => {
                let copy = self.dir.join("at-stop");
                match copy_ltx(&child.replica, &copy) {
                    Ok(()) => at_stop = Some(copy),
                    Err(e) => report.error = Some(format!("cannot copy the replica at stop: {e}")),
                }
                let (cpu, read, write) = proc_usage(child.child.id());
                report.cpu_s = cpu;
                report.read_bytes = read;
                report.write_bytes = write;
                if let Err(e) = child.terminate() {
                    report.error.get_or_insert(e.to_string());
                }
                report.litestream = Some(child.info.clone());
                litestream = Some(child.bin.clone());
            }
            Inner::Thread { stop, handle } => {
                stop.store(true, Ordering::Release);
                if let Some(h) = handle.take() {
                    match h.join() {
                        Ok(stats) => {
                            report.backups = stats.durations.len() as u64;
                            report.backup_ms_mean = mean(&stats.durations);
                            report.backup_ms_max = stats.durations.iter().cloned().fold(0.0, f64::max);
                            report.cpu_s = stats.cpu_s;
                            report.read_bytes = stats.read_bytes;
                            report.write_bytes = stats.write_bytes;
                            report.error = stats.error;
                        }
                        Err(_) => report.error = Some("the backup thread panicked".into()),
                    }
                }
            }
        }
        let _ = self.started;
        Stopped {
            report,
            at_stop,
            litestream,
            past_index: None,
        }
    }

    /// Stops the backup, restores its replica or last file and checks it against `db`, the
    /// database the workload wrote (all its commits acknowledged, or `acknowledged` given).
    pub(crate) fn finish(self, db: &Path, check: &restore::CheckSpec<'_>) -> BackupReport {
        let dir = self.dir.clone();
        let method = self.settings.method;
        // `run --kill` (the acknowledged count given): the writer was SIGKILLed and no
        // connection of this process has its database open, so the -shm may be read (and its
        // descriptor closed) — now, before Litestream's shutdown checkpoints the WAL.
        let past_index = (method == BackupMethod::Litestream && check.acknowledged.is_some())
            .then(|| wal::past_index(db))
            .flatten();
        let mut stopped = self.stop();
        stopped.past_index = past_index;
        restore::restore_and_check(db, &dir, method, stopped, check)
    }
}

impl Drop for BackupRun {
    fn drop(&mut self) {
        match &mut self.inner {
            Inner::Litestream(child) => child.kill(),
            Inner::Thread { stop, handle } => {
                stop.store(true, Ordering::Release);
                if let Some(h) = handle.take() {
                    let _ = h.join();
                }
            }
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The litestream child process.
struct LitestreamChild {
    child: Child,
    bin: PathBuf,
    replica: PathBuf,
    log: PathBuf,
    info: LitestreamInfo,
    exited: bool,
}

impl LitestreamChild {
    fn start(bin: &Path, db: &Path, s: &BackupSettings, dir: &Path) -> Result<Self, BackupError> {
        let replica = dir.join("replica");
        let config = s.litestream_yaml(db, &replica);
        let config_path = dir.join("litestream.yml");
        let log = dir.join("litestream.log");
        std::fs::write(&config_path, &config).map_err(file_error("write", &config_path))?;
        let version =
            crate::interrupt::output_within(Command::new(bin).arg("version").stdin(Stdio::null()), VERSION_LIMIT)
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .map_err(|e| BackupError::Child {
                    what: format!("{} version", bin.display()),
                    source: e,
                })?;
        let log_file = std::fs::File::create(&log).map_err(file_error("write", &log))?;
        let log_err = log_file.try_clone().map_err(file_error("write", &log))?;
        let mut cmd = Command::new(bin);
        cmd.arg("replicate")
            .arg("-config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        own_group_and_die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(file_error("start", bin))?;
        let pid = child.id();
        let mut me = LitestreamChild {
            child,
            bin: bin.to_path_buf(),
            replica,
            log,
            info: LitestreamInfo {
                binary: bin.display().to_string(),
                version,
                config,
                pid,
            },
            exited: false,
        };
        me.wait_for_snapshot()?;
        Ok(me)
    }

    /// Waits until the first snapshot is in the replica.
    fn wait_for_snapshot(&mut self) -> Result<(), BackupError> {
        let deadline = Instant::now() + LITESTREAM_READY;
        while Instant::now() < deadline {
            if crate::interrupt::cancelled() {
                self.kill();
                return Err(BackupError::Interrupted { pid: self.info.pid });
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exited = true;
                return Err(BackupError::ExitedAtStart {
                    status,
                    log: self.log_tail(),
                });
            }
            if has_ltx(&self.replica) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(BackupError::NoSnapshot {
            waited: LITESTREAM_READY,
            log: self.log_tail(),
        })
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// SIGTERM: Litestream syncs what it has not yet replicated and exits.
    fn terminate(&mut self) -> Result<(), BackupError> {
        if self.exited {
            return Ok(());
        }
        signal(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + LITESTREAM_STOP;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                self.exited = true;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        Err(BackupError::NotStopped(LITESTREAM_STOP))
    }

    fn kill(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = true;
        }
    }
}

struct ThreadStats {
    durations: Vec<f64>,
    cpu_s: f64,
    read_bytes: Option<u64>,
    write_bytes: Option<u64>,
    error: Option<String>,
}

fn backup_loop(db: &Path, dir: &Path, s: &BackupSettings, stop: &AtomicBool) -> ThreadStats {
    let cpu0 = thread_cpu_s();
    let (r0, w0) = io_bytes("/proc/thread-self/io");
    let mut stats = ThreadStats {
        durations: Vec::new(),
        cpu_s: 0.0,
        read_bytes: None,
        write_bytes: None,
        error: None,
    };
    match Connection::open(db) {
        Ok(conn) => {
            let _ = conn.busy_timeout(Duration::from_secs(10));
            while !stop.load(Ordering::Acquire) {
                let t0 = Instant::now();
                match backup_once(&conn, dir, s, stop) {
                    Ok(true) => stats.durations.push(t0.elapsed().as_secs_f64() * 1000.0),
                    Ok(false) => break,
                    Err(e) => {
                        stats.error = Some(format!("{}: {e}", s.method.as_str()));
                        break;
                    }
                }
                let until = Instant::now() + s.interval.0;
                while !stop.load(Ordering::Acquire) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5).min(until - Instant::now()));
                }
            }
        }
        Err(e) => stats.error = Some(format!("cannot open the database: {e}")),
    }
    stats.cpu_s = thread_cpu_s() - cpu0;
    let (r1, w1) = io_bytes("/proc/thread-self/io");
    stats.read_bytes = r1.zip(r0).map(|(a, b)| a.saturating_sub(b));
    stats.write_bytes = w1.zip(w0).map(|(a, b)| a.saturating_sub(b));
    stats
}

/// One backup into a temporary file, renamed over `latest.db` when complete. `Ok(false)`:
/// stopped before it completed.
fn backup_once(conn: &Connection, dir: &Path, s: &BackupSettings, stop: &AtomicBool) -> rusqlite::Result<bool> {
    let tmp = dir.join("backup.tmp");
    let _ = std::fs::remove_file(&tmp);
    match s.method {
        BackupMethod::VacuumInto => {
            conn.execute("VACUUM INTO ?1", [tmp.display().to_string()])?;
        }
        _ => {
            use rusqlite::backup::{Backup, StepResult};
            let mut dst = Connection::open(&tmp)?;
            let backup = Backup::new(conn, &mut dst)?;
            loop {
                if stop.load(Ordering::Acquire) {
                    return Ok(false);
                }
                match backup.step(s.step_pages)? {
                    StepResult::Done => break,
                    StepResult::More => {}
                    StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(1)),
                    _ => {}
                }
            }
        }
    }
    std::fs::rename(&tmp, dir.join(LATEST)).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(true)
}

/// Where a run's replica or backup files go: `[backup] replica_dir`, else beside the database.
pub(crate) fn dir_for(db: &Path, s: &BackupSettings) -> PathBuf {
    let name = format!(
        "{}.backup",
        db.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    match &s.replica_dir {
        Some(d) => d.join(name),
        None => db.with_file_name(name),
    }
}

/// The driver's hook before the workers start.
pub(crate) fn start_for_run(
    db: &Path,
    s: &crate::config::Scenario,
    env: &BackupEnv,
) -> Result<Option<BackupRun>, crate::engine::error::RunError> {
    BackupRun::start(db, &s.backup, &dir_for(db, &s.backup), env).map_err(crate::engine::error::RunError::from)
}

/// The driver's hook after the workers stopped: stop, restore, check; the restore's verdict
/// joins the run's verification as a data check.
pub(crate) fn finish_for_run(
    run: BackupRun,
    db: &Path,
    s: &crate::config::Scenario,
    tracked: &[String],
    report: &crate::report::model::RunReport,
) -> BackupReport {
    let spec = restore::CheckSpec {
        tracked_tables: tracked,
        sequence_table: s.backup.sequence_table.as_deref(),
        acknowledged: None,
        ack_ms: None,
        exact: None,
    };
    let mut b = run.finish(db, &spec);
    b.checkpoint_restarts = report.timeline.last().map_or(0, |t| t.wal_resets);
    b
}

/// Adds the restore's verdict to the verification and the backup to the report.
pub(crate) fn attach(
    report: &mut crate::report::model::RunReport,
    verification: &mut crate::report::model::Verification,
    backup: BackupReport,
) {
    let ok = backup.restore.ok && backup.error.is_none();
    let detail = match &backup.error {
        Some(e) => e.clone(),
        None => backup.restore.detail.clone(),
    };
    verification.scenario_checks.push(crate::report::model::ScenarioCheck {
        name: format!("{} restore", backup.method),
        ok,
        kind: crate::report::model::CheckKind::Sql,
        detail,
    });
    verification.ok &= ok;
    report.backup = Some(backup);
}

/// The driver's hook once the backup runs: the replica readers, when the scenario has them.
pub(crate) fn start_replica(
    db: &Path,
    s: &crate::config::Scenario,
    backup: Option<&BackupRun>,
    env: &BackupEnv,
) -> Result<Option<replica::ReplicaRun>, crate::engine::error::RunError> {
    let (Some(backup), false) = (backup, s.replica.is_none()) else {
        return Ok(None);
    };
    let ext = match &env.vfs {
        Some(e) => e.clone(),
        None => {
            replica::find_extension(s.replica.extension.as_deref()).map_err(crate::engine::error::RunError::from)?
        }
    };
    let litestream = (backup.replica_path(), backup.dir.clone(), backup.litestream_version());
    replica::ReplicaRun::start(db, s, (&litestream.0, &litestream.1, litestream.2), &ext)
        .map(Some)
        .map_err(crate::engine::error::RunError::from)
}

/// The target of the `replica = true` groups when the cell has a replica: the extension
/// loaded into this process, and the replica's URI.
pub(crate) fn replica_groups(
    s: &crate::config::Scenario,
    replica: Option<&replica::ReplicaRun>,
) -> Result<Option<crate::targets::TargetSpec>, crate::engine::error::RunError> {
    let Some(r) = replica.filter(|_| s.group.iter().any(|g| g.replica)) else {
        return Ok(None);
    };
    let uri = r.open_for_groups().map_err(crate::engine::error::RunError::from)?;
    let db = crate::targets::sqlite::SqliteDb {
        path: PathBuf::from(&uri),
        settings: s.sqlite.clone(),
        replica_uri: Some(uri),
    };
    Ok(Some(crate::targets::TargetSpec::Sqlite(db)))
}

/// Adds the replica to the report, and its check to the verification.
pub(crate) fn attach_replica(
    report: &mut crate::report::model::RunReport,
    verification: &mut crate::report::model::Verification,
    replica: crate::report::model::backup::ReplicaReport,
) {
    let ok = replica.error.is_none();
    verification.scenario_checks.push(crate::report::model::ScenarioCheck {
        name: "replica reads".into(),
        ok,
        kind: crate::report::model::CheckKind::Sql,
        detail: match &replica.error {
            Some(e) => e.clone(),
            None => format!(
                "{} reads, newest commit seen {} of {} on the primary",
                replica.reads,
                replica.last_seen,
                replica.primary_at_stop.map_or("?".into(), |p| p.to_string())
            ),
        },
    });
    verification.ok &= ok;
    report.replica = Some(replica);
}

/// Removes a run's backup files (unless the databases are kept), and Litestream's own
/// directory beside the database (`.NAME-litestream`, its local LTX files).
pub(crate) fn remove_dir(db: &Path, s: &BackupSettings) {
    if !s.is_none() {
        let _ = std::fs::remove_dir_all(dir_for(db, s));
    }
    if s.method == BackupMethod::Litestream {
        let _ = std::fs::remove_dir_all(litestream_meta_dir(db));
    }
}

/// Where Litestream keeps its state for `db`: `.NAME-litestream` in the database's directory.
fn litestream_meta_dir(db: &Path) -> PathBuf {
    let name = db
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    db.with_file_name(format!(".{name}-litestream"))
}

/// Before anything runs: the programs the cells need ([`check_programs`]), and every replica
/// dir writable. Errors are bad input: (what, message).
pub(crate) fn check_env(
    cells: &[crate::config::matrix::Cell],
    litestream: Option<&Path>,
) -> Result<BackupEnv, (String, String)> {
    let env = check_programs(cells, litestream)?;
    for cell in cells {
        let b = &cell.scenario.backup;
        if let (Some(dir), false) = (&b.replica_dir, b.is_none()) {
            check_writable_dir(dir).map_err(|e| ("backup.replica_dir".to_string(), e.to_string()))?;
        }
    }
    Ok(env)
}

/// The litestream binary when a cell needs it, and the litestream-vfs extension when a cell
/// reads a replica; nothing on disk is touched (what `validate` checks too).
pub(crate) fn check_programs(
    cells: &[crate::config::matrix::Cell],
    litestream: Option<&Path>,
) -> Result<BackupEnv, (String, String)> {
    let mut env = BackupEnv::default();
    for cell in cells {
        let b = &cell.scenario.backup;
        if b.method == BackupMethod::Litestream && env.litestream.is_none() {
            let what = match litestream {
                Some(p) => format!("--litestream {}", p.display()),
                None => "backup = \"litestream\"".to_string(),
            };
            env.litestream = Some(find_litestream(litestream).map_err(|e| (what, e.to_string()))?);
        }
        if !cell.scenario.replica.is_none() && env.vfs.is_none() {
            let ext = replica::find_extension(cell.scenario.replica.extension.as_deref())
                .map_err(|e| ("replica".to_string(), e.to_string()))?;
            env.vfs = Some(ext);
        }
    }
    if let (Some(p), None) = (litestream, &env.litestream) {
        env.litestream =
            Some(find_litestream(Some(p)).map_err(|e| (format!("--litestream {}", p.display()), e.to_string()))?);
    }
    Ok(env)
}
