//! The Turso target: the engine's own synchronous statement API (`turso::core`, which the
//! crate's async API wraps), driven on the worker's thread — no runtime, no lock and no
//! allocation of litehammer's per operation (Turso copies a bound text or blob into its own
//! value, as its every API does).

use crate::config::sqlite::ReadBack;
use crate::config::turso::{TursoJournal, TursoSettings};
use crate::metrics::ErrorKind;
use crate::targets::sqlite::busy::HandlerStats;
use crate::targets::{Connect, Target};
use rusqlite::types::{Value, ValueRef};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use turso::core as tc;

/// Why a Turso statement failed: the engine's error, or a step result that ends it.
#[derive(Debug)]
pub(crate) enum TursoError {
    Engine(tc::LimboError),
    /// The busy handler gave up (`StepResult::Busy`).
    Busy,
    Interrupted,
    /// A setting Turso refused or read back differently; names the key.
    Setting(String),
}

impl std::fmt::Display for TursoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TursoError::Engine(e) => write!(f, "{e}"),
            TursoError::Busy => f.write_str("database is locked (Turso's busy handler gave up)"),
            TursoError::Interrupted => f.write_str("interrupted"),
            TursoError::Setting(m) => f.write_str(m),
        }
    }
}

impl From<tc::LimboError> for TursoError {
    fn from(e: tc::LimboError) -> Self {
        TursoError::Engine(e)
    }
}

/// Error kinds: a write-write conflict of MVCC is its own kind, retried like busy.
pub(crate) fn classify(e: &TursoError) -> ErrorKind {
    use tc::LimboError as L;
    match e {
        TursoError::Busy => ErrorKind::Busy,
        TursoError::Engine(L::Busy) => ErrorKind::Busy,
        TursoError::Engine(L::BusySnapshot) => ErrorKind::BusySnapshot,
        TursoError::Engine(L::WriteWriteConflict | L::Conflict(_) | L::CommitDependencyAborted) => ErrorKind::Conflict,
        TursoError::Engine(L::TableLocked) => ErrorKind::Locked,
        TursoError::Engine(L::Constraint(_) | L::ForeignKeyConstraint(_)) => ErrorKind::Constraint,
        _ => ErrorKind::Other,
    }
}

thread_local! {
    /// Time this thread slept where Turso's busy handler asked it to, ns.
    static WAITED_NS: Cell<u64> = const { Cell::new(0) };
}

/// A run's Turso database and the settings every connection applies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TursoDb {
    pub path: PathBuf,
    pub settings: TursoSettings,
}

/// What a worker's connection read back (the first one to ask stores it).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ReadBackTurso {
    pub journal_mode: String,
    pub synchronous: String,
    pub busy_timeout_ms: i64,
    pub mvcc_checkpoint_threshold: Option<i64>,
}

/// A database Turso has open in this process, with what the workers read back.
pub(super) struct Open {
    /// Kept open for the run (its workers connect to it).
    pub db: Arc<tc::Database>,
    pub read_back: Option<ReadBackTurso>,
}

/// The process's open Turso databases by path: workers look theirs up when they connect
/// (never per operation), the run's `cleanup` closes it.
static OPEN: Mutex<Option<HashMap<PathBuf, Open>>> = Mutex::new(None);

pub(super) fn registry() -> std::sync::MutexGuard<'static, Option<HashMap<PathBuf, Open>>> {
    OPEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// The run's database, opened once per process.
pub(super) fn database(path: &Path) -> Result<Arc<tc::Database>, TursoError> {
    let mut open = registry();
    let map = open.get_or_insert_with(HashMap::new);
    if let Some(o) = map.get(path) {
        return Ok(o.db.clone());
    }
    let io: Arc<dyn tc::IO> = Arc::new(tc::PlatformIO::new()?);
    let text = path
        .to_str()
        .ok_or_else(|| TursoError::Setting(format!("{} is not UTF-8", path.display())))?;
    let db = tc::Database::open(io, text, tc::OpenOptions::new(Arc::new(tc::SqliteDialect)))?;
    map.insert(
        path.to_path_buf(),
        Open {
            db: db.clone(),
            read_back: None,
        },
    );
    Ok(db)
}

/// Runs `sql` (no parameters) and returns the first column of its first row.
pub(super) fn query_one(conn: &Arc<tc::Connection>, sql: &str) -> Result<Value, TursoError> {
    let mut stmt = conn.prepare(sql)?;
    let mut first = None;
    drive(&mut stmt, |row| {
        if first.is_none() && !row.is_empty() {
            first = Some(from_turso(row.get_value(0)));
        }
    })?;
    Ok(first.unwrap_or(Value::Null))
}

pub(super) fn exec(conn: &Arc<tc::Connection>, sql: &str) -> Result<(), TursoError> {
    let mut stmt = conn.prepare(sql)?;
    drive(&mut stmt, |_| {})
}

pub(super) fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn text_of(v: &Value) -> String {
    match v {
        Value::Text(t) => t.to_ascii_lowercase(),
        Value::Integer(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// Opens one worker connection with every `[turso]` setting applied; with `how.check`, reads
/// them back, fails on one Turso did not take (naming the key), and stores them for the
/// report.
pub(crate) fn connect(db: &TursoDb, how: Connect) -> Result<TursoConn, TursoError> {
    let s = &db.settings;
    let d = database(&db.path)?;
    let conn = d.connect()?;
    let setting = |key: &str, e: TursoError| TursoError::Setting(format!("turso.{key}: Turso refused it: {e}"));
    exec(&conn, &format!("PRAGMA synchronous = {}", s.synchronous.as_str())).map_err(|e| setting("synchronous", e))?;
    conn.set_busy_timeout(s.busy_timeout.0);
    if let Some(t) = s.mvcc_checkpoint_threshold {
        exec(&conn, &format!("PRAGMA mvcc_checkpoint_threshold = {t}"))
            .map_err(|e| setting("mvcc_checkpoint_threshold", e))?;
    }
    if how.check {
        let read = read_back(&conn, s)?;
        let differs = |key: &str, want: &str, got: &str| {
            TursoError::Setting(format!("turso.{key}: set to {want}, but Turso reports {got}"))
        };
        if read.journal_mode != s.journal_mode.as_str() {
            return Err(differs("journal_mode", s.journal_mode.as_str(), &read.journal_mode));
        }
        if read.synchronous != s.synchronous.as_str() {
            return Err(differs("synchronous", s.synchronous.as_str(), &read.synchronous));
        }
        let want_ms = s.busy_timeout.0.as_millis() as i64;
        if read.busy_timeout_ms != want_ms {
            return Err(differs(
                "busy_timeout",
                &format!("{want_ms} ms"),
                &format!("{} ms", read.busy_timeout_ms),
            ));
        }
        if let (Some(want), Some(got)) = (s.mvcc_checkpoint_threshold, read.mvcc_checkpoint_threshold)
            && want != got
        {
            return Err(differs(
                "mvcc_checkpoint_threshold",
                &want.to_string(),
                &got.to_string(),
            ));
        }
        let mut open = registry();
        if let Some(o) = open.as_mut().and_then(|m| m.get_mut(&db.path)) {
            o.read_back.get_or_insert(read);
        }
    }
    let capacity = how.statement_cache.unwrap_or(0);
    Ok(TursoConn::new(conn, capacity))
}

fn read_back(conn: &Arc<tc::Connection>, s: &TursoSettings) -> Result<ReadBackTurso, TursoError> {
    let journal_mode = text_of(&query_one(conn, "PRAGMA journal_mode")?);
    let sync = query_one(conn, "PRAGMA synchronous")?;
    let synchronous = match int_of(&sync) {
        Some(level) => {
            crate::config::sqlite::Synchronous::from_level(level).map_or(level.to_string(), |l| l.as_str().to_string())
        }
        None => text_of(&sync),
    };
    let busy_timeout_ms = int_of(&query_one(conn, "PRAGMA busy_timeout")?).unwrap_or(-1);
    let mvcc_checkpoint_threshold = if s.journal_mode == TursoJournal::Mvcc {
        int_of(&query_one(conn, "PRAGMA mvcc_checkpoint_threshold")?)
    } else {
        None
    };
    Ok(ReadBackTurso {
        journal_mode,
        synchronous,
        busy_timeout_ms,
        mvcc_checkpoint_threshold,
    })
}

/// One worker's connection, with the application model's statement cache.
pub(crate) struct TursoConn {
    pub(crate) conn: Arc<tc::Connection>,
    cache: RefCell<HashMap<String, tc::Statement>>,
    capacity: usize,
}

impl TursoConn {
    pub(crate) fn new(conn: Arc<tc::Connection>, capacity: usize) -> Self {
        TursoConn {
            conn,
            cache: RefCell::default(),
            capacity,
        }
    }
}

/// A prepared statement; `'c` ties it to its connection as the trait asks.
pub(crate) struct TursoStmt<'c> {
    stmt: tc::Statement,
    _conn: std::marker::PhantomData<&'c TursoConn>,
}

/// A statement out of the connection's cache, put back (reset) when dropped.
pub(crate) struct Cached<'c> {
    conn: &'c TursoConn,
    sql: Option<String>,
    stmt: Option<TursoStmt<'c>>,
}

impl<'c> std::ops::Deref for Cached<'c> {
    type Target = TursoStmt<'c>;
    fn deref(&self) -> &TursoStmt<'c> {
        self.stmt.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Cached<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.stmt.as_mut().expect("present until dropped")
    }
}

impl Drop for Cached<'_> {
    fn drop(&mut self) {
        if let (Some(sql), Some(mut stmt)) = (self.sql.take(), self.stmt.take()) {
            let _ = stmt.stmt.reset();
            let mut cache = self.conn.cache.borrow_mut();
            if cache.len() < self.conn.capacity.max(1) {
                cache.insert(sql, stmt.stmt);
            }
        }
    }
}

/// Runs a statement to its end: steps, drives Turso's I/O, sleeps where its busy handler
/// asks to (counted as lock wait); `row` sees each row.
#[inline]
pub(crate) fn drive(stmt: &mut tc::Statement, mut row: impl FnMut(&tc::Row)) -> Result<(), TursoError> {
    loop {
        match stmt.step()? {
            tc::StepResult::Done => return Ok(()),
            tc::StepResult::Row => {
                if let Some(r) = stmt.row() {
                    row(r);
                }
            }
            tc::StepResult::IO | tc::StepResult::Yield => stmt._io().step()?,
            tc::StepResult::Sleep { duration } => {
                let start = std::time::Instant::now();
                if crate::interrupt::cancelled() {
                    return Err(TursoError::Interrupted);
                }
                std::thread::sleep(duration);
                stmt._io().step()?;
                let ns = start.elapsed().as_nanos() as u64;
                WAITED_NS.with(|w| w.set(w.get() + ns));
            }
            tc::StepResult::Busy => return Err(TursoError::Busy),
            tc::StepResult::Interrupt => return Err(TursoError::Interrupted),
        }
    }
}

/// A scenario value as Turso's (texts and blobs are copied: Turso owns its values).
#[inline]
fn to_turso(v: ValueRef<'_>) -> Result<tc::Value, TursoError> {
    Ok(match v {
        ValueRef::Null => tc::Value::Null,
        ValueRef::Integer(i) => tc::Value::from_i64(i),
        ValueRef::Real(f) => tc::Value::from_f64(f),
        ValueRef::Text(t) => tc::Value::build_text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => tc::Value::from_slice(b).map_err(|_| TursoError::Engine(tc::LimboError::OutOfMemory))?,
    })
}

/// A Turso value as rusqlite's (captured columns, verification).
pub(crate) fn from_turso(v: &tc::Value) -> Value {
    match v {
        tc::Value::Null => Value::Null,
        tc::Value::Numeric(tc::Numeric::Integer(i)) => Value::Integer(*i),
        tc::Value::Numeric(tc::Numeric::Float(f)) => Value::Real(f64::from(*f)),
        tc::Value::Text(t) => Value::Text(t.as_str().to_string()),
        tc::Value::Blob(b) => Value::Blob(b.to_vec()),
    }
}

pub(crate) struct Turso;

impl Target for Turso {
    type Db = TursoDb;
    type Conn = TursoConn;
    type Stmt<'c> = TursoStmt<'c>;
    type Cached<'c> = Cached<'c>;
    type Error = TursoError;

    fn prepare_cached<'c>(conn: &'c TursoConn, sql: &str) -> Result<Cached<'c>, TursoError> {
        let found = conn.cache.borrow_mut().remove_entry(sql);
        let (sql, stmt) = match found {
            Some((sql, stmt)) => (sql, stmt),
            None => (sql.to_string(), conn.conn.prepare(sql)?),
        };
        Ok(Cached {
            conn,
            sql: Some(sql),
            stmt: Some(TursoStmt {
                stmt,
                _conn: std::marker::PhantomData,
            }),
        })
    }

    fn prepare<'c>(conn: &'c TursoConn, sql: &str) -> Result<TursoStmt<'c>, TursoError> {
        Ok(TursoStmt {
            stmt: conn.conn.prepare(sql)?,
            _conn: std::marker::PhantomData,
        })
    }

    #[inline]
    fn bind(stmt: &mut TursoStmt<'_>, index: usize, value: ValueRef<'_>) -> Result<(), TursoError> {
        let Some(index) = std::num::NonZero::new(index) else {
            return Err(TursoError::Setting("bind index 0".into()));
        };
        stmt.stmt.bind_at(index, to_turso(value)?)?;
        Ok(())
    }

    #[inline]
    fn run(stmt: &mut TursoStmt<'_>, captures: &[usize], captured: &mut [Value]) -> Result<(), TursoError> {
        let mut first = true;
        let result = drive(&mut stmt.stmt, |row| {
            if first && !captures.is_empty() {
                for (slot, col) in captures.iter().enumerate() {
                    captured[slot] = if *col < row.len() {
                        from_turso(row.get_value(*col))
                    } else {
                        Value::Null
                    };
                }
            }
            first = false;
        });
        if first {
            captured.iter_mut().for_each(|v| *v = Value::Null);
        }
        let _ = stmt.stmt.reset();
        result
    }

    #[inline]
    fn control(stmt: &mut TursoStmt<'_>) -> Result<(), TursoError> {
        let result = drive(&mut stmt.stmt, |_| {});
        let _ = stmt.stmt.reset();
        result
    }

    #[inline]
    fn changes(conn: &TursoConn) -> u64 {
        conn.conn.changes().max(0) as u64
    }

    #[inline]
    fn last_insert_id(conn: &TursoConn) -> i64 {
        conn.conn.last_insert_rowid()
    }

    #[inline]
    fn in_transaction(conn: &TursoConn) -> bool {
        !conn.conn.get_auto_commit()
    }

    fn classify(e: &TursoError) -> ErrorKind {
        classify(e)
    }

    fn connect(db: &TursoDb, how: Connect) -> Result<(TursoConn, Option<ReadBack>), TursoError> {
        connect(db, how).map(|c| (c, None))
    }

    fn take_lock_waits(_db: &TursoDb, _how: Connect) -> Option<HandlerStats> {
        None
    }

    #[inline]
    fn lock_waited_ns() -> u64 {
        WAITED_NS.with(|w| w.get())
    }
}
