//! Read replicas beside the workload (`[replica] method = "litestream-vfs"`): reader threads
//! open the Litestream file replica of the run's `[backup]` through the `litestream-vfs`
//! SQLite extension (PyPI `litestream-vfs`) while the workers commit on the primary.
//!
//! The readers run in a child process (`litehammer replica-child`, hidden), which loads the
//! extension: it is a Go shared library with its own runtime, so it stays out of the
//! process that holds the run's database, its CPU time is the child's own, and a Go fatal
//! error ends the child, not the run. The child gets its spec as one JSON line on stdin,
//! answers `ready` once every reader has read the replica, and on EOF (the workload
//! stopped) prints one JSON line with what the readers saw.
//!
//! The lag comes from the sequence the writers write: the sequence table's rowid numbers the
//! commits and its `at_ms` column holds each commit's wall-clock time. A reader that sees
//! the replica's newest rowid advance from P to M reads commits P+1..=M on the replica and
//! records each one's lag (now minus its `at_ms`): the lag distribution has one value per
//! commit a reader saw become visible. Per advance it also records the oldest of them (the
//! advance's worst lag) and the newest. A read is stale when the replica's newest rowid is below the primary's, read
//! on the primary (a plain read-only connection) just before.

use super::error::{ReplicaError, file_error};
use crate::config::replica::ReplicaSettings;
use crate::metrics::histogram::{encode_histogram, new_histogram};
use crate::report::model::backup::{LagDistribution, ReplicaReport};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const CHILD_COMMAND: &str = "replica-child";
/// The extension's entry point (`sqlite3_<name>_init` of `litestream-vfs.so`).
const ENTRY_POINT: &str = "sqlite3_litestreamvfs_init";
/// How long the readers may take to load the extension and read the replica once.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long the child may take to stop its readers and answer.
const STOP_LIMIT: Duration = Duration::from_secs(30);
const FIND_LIMIT: Duration = Duration::from_secs(20);

/// The extension found before anything runs.
#[derive(Clone, Debug)]
pub(crate) struct VfsExtension {
    pub path: PathBuf,
    /// The `litestream-vfs` package's version, from its `.dist-info` beside it.
    pub version: Option<String>,
}

/// Finds the extension: `explicit`, else the one the Python package ships.
pub(crate) fn find_extension(explicit: Option<&Path>) -> Result<VfsExtension, ReplicaError> {
    let path = match explicit {
        Some(p) if p.is_file() => p.to_path_buf(),
        Some(p) => return Err(ReplicaError::NotAFile(p.to_path_buf())),
        None => from_python()?,
    };
    let version = dist_info_version(&path);
    Ok(VfsExtension { path, version })
}

/// `litestream_vfs.loadable_path()` of the first Python that has the package.
fn from_python() -> Result<PathBuf, ReplicaError> {
    let mut why = Vec::new();
    for python in ["python3", "python"] {
        let mut cmd = Command::new(python);
        cmd.args(["-c", "import litestream_vfs; print(litestream_vfs.loadable_path())"])
            .stdin(Stdio::null());
        match crate::interrupt::output_within(&mut cmd, FIND_LIMIT) {
            Ok(out) if out.status.success() => {
                let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
                if p.is_file() {
                    return Ok(p);
                }
                why.push(format!("{python} names {}, which is not a file", p.display()));
            }
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                why.push(format!("{python}: {}", err.lines().last().unwrap_or("failed").trim()));
            }
            Err(e) => why.push(format!("{python} {e}")),
        }
    }
    Err(ReplicaError::NotInstalled(why.join("; ")))
}

/// `site-packages/litestream_vfs-X.dist-info` beside `site-packages/litestream_vfs/FILE`.
fn dist_info_version(ext: &Path) -> Option<String> {
    let site = ext.parent()?.parent()?;
    std::fs::read_dir(site).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.strip_prefix("litestream_vfs-")?
            .strip_suffix(".dist-info")
            .map(str::to_string)
    })
}

/// What the child gets on stdin.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ChildSpec {
    extension: PathBuf,
    /// The file replica Litestream writes (its directory).
    replica: PathBuf,
    /// The primary database (read-only, for the stale-read check).
    primary: PathBuf,
    sequence_table: String,
    readers: u32,
    read_interval_us: u64,
    poll_interval_ms: u64,
    query: Option<String>,
}

/// What the child answers when it stops.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ChildResult {
    reads: u64,
    stale_reads: u64,
    query_reads: u64,
    advances: u64,
    /// Per commit that became visible: now minus its commit time, µs.
    #[serde(with = "crate::metrics::histogram::serde_v2")]
    lag_us: Histogram<u64>,
    /// Commits that became visible (Σ over readers of last seen − first seen).
    commits_seen: u64,
    /// Per advance: the age of the oldest commit that just became visible, µs.
    #[serde(with = "crate::metrics::histogram::serde_v2")]
    oldest_us: Histogram<u64>,
    /// Per advance: the age of the newest visible commit, µs.
    #[serde(with = "crate::metrics::histogram::serde_v2")]
    newest_us: Histogram<u64>,
    /// Commits whose time was after the reader's clock (recorded as 0).
    clamped: u64,
    /// The newest rowid any reader saw on the replica.
    last_seen: i64,
    error: Option<String>,
}

impl Default for ChildResult {
    fn default() -> Self {
        ChildResult {
            reads: 0,
            stale_reads: 0,
            query_reads: 0,
            advances: 0,
            lag_us: new_histogram(),
            commits_seen: 0,
            oldest_us: new_histogram(),
            newest_us: new_histogram(),
            clamped: 0,
            last_seen: 0,
            error: None,
        }
    }
}

/// The running readers. Dropping it kills the child on every exit path.
pub(crate) struct ReplicaRun {
    settings: ReplicaSettings,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    ext: VfsExtension,
    exited: bool,
    litestream_version: Option<String>,
    sequence_table: String,
    replica: PathBuf,
    poll_interval_ms: u64,
}

impl ReplicaRun {
    /// Starts the readers on the file replica under `backup_dir` of the primary `db`; waits
    /// until every reader has read it once.
    /// `litestream`: the replica Litestream writes, the run's backup directory (for the
    /// logs) and Litestream's version.
    pub(crate) fn start(
        db: &Path,
        s: &crate::config::Scenario,
        litestream: (&Path, &Path, Option<String>),
        ext: &VfsExtension,
    ) -> Result<ReplicaRun, ReplicaError> {
        let (replica, dir, litestream_version) = litestream;
        let r = &s.replica;
        let sequence_table = r
            .sequence_table
            .clone()
            .or_else(|| s.backup.sequence_table.clone())
            .unwrap_or_default();
        let spec = ChildSpec {
            extension: ext.path.clone(),
            replica: replica.to_path_buf(),
            primary: db.to_path_buf(),
            sequence_table: sequence_table.clone(),
            readers: r.readers,
            read_interval_us: r.read_interval.0.as_micros() as u64,
            poll_interval_ms: r.poll_interval.0.as_millis().max(1) as u64,
            query: r.query.clone(),
        };
        let exe = std::env::current_exe().map_err(|e| ReplicaError::Child(format!("cannot find litehammer: {e}")))?;
        let log = dir.join("replica-vfs.log");
        let err_log = std::fs::File::create(dir.join("replica-child.log"))
            .map_err(file_error("write", &dir.join("replica-child.log")))?;
        let mut cmd = Command::new(&exe);
        cmd.arg(CHILD_COMMAND)
            .env("LITESTREAM_LOG_FILE", &log)
            .env_remove("LITESTREAM_REPLICA_URL")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err_log);
        super::proc::own_group_and_die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .map_err(|e| ReplicaError::Child(format!("cannot start: {e}")))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut me = ReplicaRun {
            settings: r.clone(),
            child,
            stdin,
            stdout,
            ext: ext.clone(),
            exited: false,
            litestream_version,
            sequence_table,
            replica: spec.replica.clone(),
            poll_interval_ms: spec.poll_interval_ms,
        };
        let line = serde_json::to_string(&spec).map_err(|e| ReplicaError::Child(e.to_string()))?;
        if let Some(w) = me.stdin.as_mut() {
            w.write_all(format!("{line}\n").as_bytes())
                .and_then(|()| w.flush())
                .map_err(|e| ReplicaError::Child(format!("cannot send the spec: {e}")))?;
        }
        match me.read_line(READY_LIMIT) {
            Some(l) if l.trim() == "ready" => Ok(me),
            Some(l) => {
                me.kill();
                Err(ReplicaError::NotReady(l.trim().to_string()))
            }
            None if crate::interrupt::cancelled() => {
                me.kill();
                Err(ReplicaError::Interrupted)
            }
            None => {
                me.kill();
                let log = std::fs::read_to_string(dir.join("replica-child.log")).unwrap_or_default();
                Err(ReplicaError::NotReady(format!(
                    "no answer within {} s: {}",
                    READY_LIMIT.as_secs(),
                    log.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
                )))
            }
        }
    }

    /// One line from the child, waiting at most `limit` (and not past a Ctrl-C while
    /// starting). The read runs on a helper thread so the wait can end.
    fn read_line(&mut self, limit: Duration) -> Option<String> {
        let (tx, rx) = std::sync::mpsc::channel();
        let deadline = Instant::now() + limit;
        std::thread::scope(|scope| {
            let reader = &mut self.stdout;
            scope.spawn(move || {
                let mut line = String::new();
                let n = reader.read_line(&mut line).unwrap_or(0);
                let _ = tx.send((n > 0).then_some(line));
            });
            let child = &mut self.child;
            loop {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(line) => return line,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                }
                if Instant::now() >= deadline || crate::interrupt::cancelled() && limit == READY_LIMIT {
                    // Unblock the reader thread: the child's stdout closes when it dies.
                    let _ = child.kill();
                    let _ = child.wait();
                    return rx.recv().ok().flatten();
                }
            }
        })
    }

    /// Called right when the workload stopped: the readers stop and report.
    pub(crate) fn stop(mut self, db: &Path) -> ReplicaReport {
        let primary_at_stop = primary_max(db, &self.sequence_table);
        let (cpu_s, _, _) = super::proc::proc_usage(self.child.id());
        drop(self.stdin.take());
        let answer = self.read_line(STOP_LIMIT);
        let (cpu_after, _, _) = super::proc::proc_usage(self.child.id());
        let _ = self.child.wait();
        self.exited = true;
        let mut report = ReplicaReport {
            method: self.settings.method.as_str().to_string(),
            settings: serde_json::to_value(&self.settings).unwrap_or_default(),
            extension: self.ext.path.display().to_string(),
            vfs_version: self.ext.version.clone(),
            litestream_version: self.litestream_version.clone(),
            readers: self.settings.readers,
            sequence_table: self.sequence_table.clone(),
            primary_at_stop,
            cpu_s: cpu_after.max(cpu_s),
            pid: self.child.id(),
            ..ReplicaReport::default()
        };
        match answer.as_deref().map(serde_json::from_str::<ChildResult>) {
            Some(Ok(r)) => {
                report.reads = r.reads;
                report.stale_reads = r.stale_reads;
                report.query_reads = r.query_reads;
                report.advances = r.advances;
                report.clamped = r.clamped;
                report.last_seen = r.last_seen;
                report.commits_seen = r.commits_seen;
                report.lag = LagDistribution::of(&r.lag_us);
                report.advance_lag = LagDistribution::of(&r.oldest_us);
                report.newest_age = LagDistribution::of(&r.newest_us);
                report.lag_histogram = encode_histogram(&r.lag_us);
                report.error = r.error;
            }
            Some(Err(e)) => report.error = Some(format!("unreadable answer from the replica readers: {e}")),
            None => report.error = Some("the replica readers did not answer when stopped".into()),
        }
        if report.error.is_none()
            && let Some(p) = primary_at_stop
            && report.last_seen > p
        {
            report.error = Some(format!(
                "the replica showed commit {} but the primary holds only {p}",
                report.last_seen
            ));
        }
        report
    }

    /// For the `replica = true` groups, whose workers are threads of this process: loads
    /// the extension here (once per process) and returns the replica's URI.
    pub(crate) fn open_for_groups(&self) -> Result<String, ReplicaError> {
        load_in_process(&self.ext.path)?;
        Ok(replica_uri(&self.replica, self.poll_interval_ms))
    }

    fn kill(&mut self) {
        if !self.exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.exited = true;
        }
    }
}

impl Drop for ReplicaRun {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The primary's newest sequence rowid (a read-only connection of its own).
fn primary_max(db: &Path, table: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    max_rowid(&conn, table).ok()
}

fn max_rowid(conn: &rusqlite::Connection, table: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached(&format!("SELECT coalesce(max(rowid), 0) FROM \"{table}\""))?
        .query_row([], |r| r.get(0))
}

/// The replica's URI for the VFS: the file replica's URL and the poll interval as URI
/// parameters (the extension reads them per connection).
fn replica_uri(replica: &Path, poll_ms: u64) -> String {
    let url = format!("file://{}", replica.display());
    format!(
        "file:replica.db?vfs=litestream&mode=ro&replica_url={}&poll_interval={poll_ms}ms",
        percent_encode(&url)
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.:~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `litehammer replica-child`: loads the extension, runs the readers until stdin ends.
pub(crate) fn child_main() -> Result<(), String> {
    // A Ctrl-C reaches litehammer, which stops this process through stdin.
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let stdin = std::io::stdin();
    let mut line = String::new();
    stdin.lock().read_line(&mut line).map_err(|e| e.to_string())?;
    let spec: ChildSpec = serde_json::from_str(&line).map_err(|e| format!("bad spec: {e}"))?;
    let mut out = std::io::stdout();
    let answer = |out: &mut std::io::Stdout, text: &str| {
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    };
    // The primary's connections first: once loaded, the extension's automatic extension
    // runs on every new connection, and refuses one that is not the VFS's.
    let mut primaries = Vec::new();
    for _ in 0..spec.readers {
        match open_primary(&spec.primary) {
            Ok(c) => primaries.push(c),
            Err(e) => {
                answer(&mut out, &e);
                return Ok(());
            }
        }
    }
    if let Err(e) = load_extension(&spec.extension) {
        answer(&mut out, &format!("cannot load {}: {e}", spec.extension.display()));
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let handles: Vec<_> = primaries
        .into_iter()
        .map(|primary| {
            let (spec, stop, ready) = (spec.clone(), stop.clone(), ready_tx.clone());
            std::thread::spawn(move || reader(&spec, primary, &stop, ready))
        })
        .collect();
    drop(ready_tx);
    let mut failed = None;
    for _ in 0..spec.readers {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failed.get_or_insert(e);
            }
            Err(_) => {
                failed.get_or_insert("a reader ended before it was ready".into());
            }
        }
    }
    if let Some(e) = failed {
        stop.store(true, Ordering::Release);
        answer(&mut out, &format!("reader: {e}"));
        return Ok(());
    }
    answer(&mut out, "ready");
    // Stop when the driver closes stdin.
    let mut rest = String::new();
    while stdin.lock().read_line(&mut rest).is_ok_and(|n| n > 0) {
        rest.clear();
    }
    stop.store(true, Ordering::Release);
    let mut total = ChildResult::default();
    for h in handles {
        match h.join() {
            Ok(r) => {
                total.reads += r.reads;
                total.stale_reads += r.stale_reads;
                total.query_reads += r.query_reads;
                total.advances += r.advances;
                total.clamped += r.clamped;
                total.last_seen = total.last_seen.max(r.last_seen);
                total.commits_seen += r.commits_seen;
                let _ = total.lag_us.add(&r.lag_us);
                let _ = total.oldest_us.add(&r.oldest_us);
                let _ = total.newest_us.add(&r.newest_us);
                if total.error.is_none() {
                    total.error = r.error;
                }
            }
            Err(_) => total.error = Some("a replica reader panicked".into()),
        }
    }
    answer(&mut out, &serde_json::to_string(&total).map_err(|e| e.to_string())?);
    Ok(())
}

/// Loads the extension into this process once (later calls return the first result). Its
/// automatic extension, which would refuse every later connection that is not the VFS's
/// (the verification's, the next cells'), is reset at once: the VFS stays registered.
fn load_in_process(path: &Path) -> Result<(), ReplicaError> {
    static LOADED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            let r = load_extension(path).map_err(|e| format!("cannot load {}: {e}", path.display()));
            // SAFETY: sqlite3_reset_auto_extension has no preconditions; no connection is
            // being opened by litehammer while the driver starts a cell's workers.
            unsafe { rusqlite::ffi::sqlite3_reset_auto_extension() };
            r
        })
        .clone()
        .map_err(ReplicaError::NotReady)
}

/// Loads the extension once into a throwaway connection: it registers the `litestream`
/// VFS for the whole process.
fn load_extension(path: &Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open_in_memory()?;
    // SAFETY: the extension is the one the user installed (or named) for this purpose;
    // loading is enabled only for this call.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&conn)?;
        conn.load_extension(path, Some(ENTRY_POINT))
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// One reader: its own connections to the replica (through the VFS) and to the primary.
/// A read-only connection to the primary, for the stale-read check.
fn open_primary(db: &Path) -> Result<rusqlite::Connection, String> {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("cannot open the primary: {e}"))?;
    conn.busy_timeout(Duration::from_secs(5)).map_err(|e| e.to_string())?;
    Ok(conn)
}

fn reader(
    spec: &ChildSpec,
    primary: rusqlite::Connection,
    stop: &AtomicBool,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
) -> ChildResult {
    use rusqlite::{Connection, OpenFlags};
    let mut r = ChildResult::default();
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let table = &spec.sequence_table;
    let opened = Connection::open_with_flags(replica_uri(&spec.replica, spec.poll_interval_ms), flags)
        .map_err(|e| format!("cannot open the replica through the VFS: {e}"))
        .and_then(|replica| {
            let seen = max_rowid(&replica, table).map_err(|e| format!("the replica's {table}: {e}"))?;
            replica
                .prepare(&format!("SELECT at_ms FROM \"{table}\" WHERE rowid = ?1"))
                .map_err(|e| format!("the replica's {table} needs an at_ms column: {e}"))?;
            Ok((replica, seen))
        });
    let (replica, mut seen) = match opened {
        Ok(x) => {
            let _ = ready.send(Ok(()));
            x
        }
        Err(e) => {
            let _ = ready.send(Err(e.clone()));
            r.error = Some(e);
            return r;
        }
    };
    r.last_seen = seen;
    let interval = Duration::from_micros(spec.read_interval_us);
    while !stop.load(Ordering::Acquire) {
        let t0 = Instant::now();
        let step = (|| -> rusqlite::Result<()> {
            let on_primary = max_rowid(&primary, table)?;
            let now_seen = max_rowid(&replica, table)?;
            let at = now_us();
            r.reads += 1;
            if now_seen < on_primary {
                r.stale_reads += 1;
            }
            if now_seen > seen {
                // Every commit that just became visible: its lag, then the advance's oldest
                // and newest.
                let mut stmt = replica.prepare_cached(&format!(
                    "SELECT rowid, at_ms FROM \"{table}\" WHERE rowid > ?1 AND rowid <= ?2 ORDER BY rowid"
                ))?;
                let mut rows = stmt.query([seen, now_seen])?;
                let (mut oldest, mut newest) = (None, None);
                while let Some(row) = rows.next()? {
                    let committed_ms: i64 = row.get(1)?;
                    let lag = at - committed_ms * 1000;
                    if lag < 0 {
                        r.clamped += 1;
                    }
                    let lag = lag.max(0) as u64;
                    let _ = r.lag_us.record(lag);
                    r.commits_seen += 1;
                    oldest.get_or_insert(lag);
                    newest = Some(lag);
                }
                if let (Some(o), Some(n)) = (oldest, newest) {
                    let _ = r.oldest_us.record(o);
                    let _ = r.newest_us.record(n);
                    r.advances += 1;
                }
                seen = now_seen;
                r.last_seen = seen;
            }
            if let Some(q) = &spec.query {
                let mut stmt = replica.prepare_cached(q)?;
                let mut rows = stmt.query([])?;
                while rows.next()?.is_some() {}
                r.query_reads += 1;
            }
            Ok(())
        })();
        if let Err(e) = step {
            r.error = Some(format!("replica read: {e}"));
            break;
        }
        if let Some(rest) = interval.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replica_uri_carries_the_url_and_the_poll_interval() {
        let uri = replica_uri(Path::new("/tmp/a b&c/replica"), 250);
        assert_eq!(
            uri,
            "file:replica.db?vfs=litestream&mode=ro&replica_url=file:///tmp/a%20b%26c/replica&poll_interval=250ms"
        );
    }

    #[test]
    fn the_version_comes_from_the_dist_info_beside_the_package() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("litestream_vfs")).unwrap();
        std::fs::create_dir_all(dir.path().join("litestream_vfs-0.5.17.dist-info")).unwrap();
        let so = dir.path().join("litestream_vfs/litestream-vfs.so");
        std::fs::write(&so, b"x").unwrap();
        let ext = find_extension(Some(&so)).unwrap();
        assert_eq!(ext.version.as_deref(), Some("0.5.17"));
        assert!(matches!(
            find_extension(Some(&dir.path().join("nope.so"))),
            Err(ReplicaError::NotAFile(_))
        ));
    }
}
