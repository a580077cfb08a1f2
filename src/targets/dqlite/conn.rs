//! The dqlite target: one connection per worker to the cluster's leader, through
//! litehammer's own client. When the leader goes ("not leader", "leadership lost", a broken
//! connection), the request fails with that kind, the connection is dropped, and the next
//! request finds the new leader (within `leader_timeout`) and prepares its statements again.

use super::client::{self, DqError, Node, codes};
use super::wire;
use crate::config::sqlite::ReadBack;
use crate::metrics::ErrorKind;
use crate::targets::Target;
use crate::targets::sqlite::busy::HandlerStats;
use rusqlite::types::{Value, ValueRef};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;

/// One run's database on the cluster, as the workers reach it (also over a worker
/// process's pipe).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct DqDatabase {
    pub nodes: Vec<String>,
    /// The run's own database in the cluster.
    pub name: String,
    pub leader_timeout_ms: u64,
    /// How long a statement answered with SQLITE_BUSY is retried (the scenario's
    /// `sqlite.busy_timeout`: dqlite's server has no busy handler, so the client plays it).
    pub busy_timeout_ms: u64,
}

impl DqDatabase {
    pub(crate) fn leader_timeout(&self) -> Duration {
        Duration::from_millis(self.leader_timeout_ms)
    }

    /// A connection to the leader with the run's database open.
    pub(crate) fn session(&self) -> Result<Session, DqError> {
        let hint = LAST_LEADER.lock().ok().and_then(|l| l.clone());
        let mut node = client::leader(&self.nodes, hint.as_deref(), self.leader_timeout())?;
        if let Ok(mut l) = LAST_LEADER.lock()
            && l.as_deref() != Some(node.addr.as_str())
        {
            *l = Some(node.addr.clone());
        }
        let db = node.open(&self.name)?;
        Ok(Session { node, db })
    }
}

/// The leader this process saw last: a new connection asks it first.
static LAST_LEADER: Mutex<Option<String>> = Mutex::new(None);

/// A connection to the leader and the database open on it.
pub(crate) struct Session {
    pub node: Node,
    pub db: u32,
}

impl Session {
    /// Rows of a query (set-up, counts, checks, read-back).
    pub(crate) fn query(&mut self, sql: &str) -> Result<Vec<Vec<Value>>, DqError> {
        self.node.query_sql(self.db, sql, &[])
    }

    pub(crate) fn exec(&mut self, sql: &str, params: &[Value]) -> Result<client::ExecResult, DqError> {
        self.node.exec_sql(self.db, sql, params)
    }
}

pub(crate) struct Dqlite;

/// A prepared statement on the current session (`generation` says which).
#[derive(Clone, Copy)]
struct Prepared {
    id: u32,
    generation: u64,
}

/// One worker's connection.
pub(crate) struct DqConn {
    db: DqDatabase,
    session: RefCell<Option<Session>>,
    /// Counts sessions: a statement prepared on an older one is prepared again.
    generation: Cell<u64>,
    cache: RefCell<HashMap<Rc<str>, Prepared>>,
    changes: Cell<u64>,
    last_id: Cell<i64>,
    in_tx: Cell<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    None,
    Begin,
    Commit,
    Rollback,
}

pub(crate) struct DqStmt<'c> {
    conn: &'c DqConn,
    sql: Rc<str>,
    prepared: Prepared,
    params: Vec<Value>,
    /// Yields rows (run with QUERY), else run with EXEC (rows changed, the new id).
    rows: bool,
    /// A RETURNING statement: its rows are the rows it changed.
    returning: bool,
    control: Control,
    /// From the cache: the cache keeps it prepared; else finalized when dropped.
    cached: bool,
}

/// A dqlite error shown as the server or the client said it.
#[derive(Debug)]
pub(crate) struct DqConnError(pub DqError);

impl std::fmt::Display for DqConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl DqConn {
    fn connect(db: &DqDatabase) -> Result<Self, DqError> {
        let conn = DqConn {
            db: db.clone(),
            session: RefCell::new(None),
            generation: Cell::new(0),
            cache: RefCell::default(),
            changes: Cell::new(0),
            last_id: Cell::new(0),
            in_tx: Cell::new(false),
        };
        conn.ensure()?;
        Ok(conn)
    }

    /// A session to the leader, finding it when there is none.
    fn ensure(&self) -> Result<(), DqError> {
        if self.session.borrow().is_none() {
            let session = self.db.session()?;
            *self.session.borrow_mut() = Some(session);
            self.generation.set(self.generation.get() + 1);
        }
        Ok(())
    }

    /// After an error: a lost leader or connection drops the session (and the transaction
    /// with it).
    fn failed(&self, e: DqError) -> DqConnError {
        if e.loses_connection() {
            if let Some(s) = self.session.borrow_mut().take() {
                s.node.shutdown();
            }
            self.in_tx.set(false);
            if let Ok(mut l) = LAST_LEADER.lock() {
                *l = None;
            }
        }
        DqConnError(e)
    }

    fn with_session<T>(&self, f: impl FnOnce(&mut Session) -> Result<T, DqError>) -> Result<T, DqConnError> {
        self.ensure().map_err(DqConnError)?;
        let result = {
            let mut s = self.session.borrow_mut();
            f(s.as_mut().expect("ensured"))
        };
        result.map_err(|e| self.failed(e))
    }

    /// The statement's id on the current session, preparing it again after a new one.
    fn prepared(&self, sql: &Rc<str>, p: Prepared) -> Result<Prepared, DqConnError> {
        self.ensure().map_err(DqConnError)?;
        if p.generation == self.generation.get() {
            return Ok(p);
        }
        let (id, _) = self.with_session(|s| s.node.prepare(s.db, sql))?;
        let fresh = Prepared {
            id,
            generation: self.generation.get(),
        };
        if let Some(c) = self.cache.borrow_mut().get_mut(sql) {
            *c = fresh;
        }
        Ok(fresh)
    }
}

/// What SQL text says about how to run it.
fn kind_of(sql: &str) -> (bool, bool, Control) {
    let head: String = sql
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    let returning = sql.to_ascii_uppercase().contains("RETURNING");
    let rows = returning || matches!(head.as_str(), "SELECT" | "WITH" | "PRAGMA" | "VALUES" | "EXPLAIN");
    let control = match head.as_str() {
        "BEGIN" => Control::Begin,
        "COMMIT" | "END" => Control::Commit,
        "ROLLBACK" => Control::Rollback,
        _ => Control::None,
    };
    (rows, returning, control)
}

fn statement<'c>(conn: &'c DqConn, sql: &str, cached: bool) -> Result<DqStmt<'c>, DqConnError> {
    let sql: Rc<str> = Rc::from(sql);
    let found = if cached {
        conn.cache.borrow().get(&sql).copied()
    } else {
        None
    };
    let (prepared, params) = match found {
        Some(p) => (conn.prepared(&sql, p)?, None),
        None => {
            let (id, params) = conn.with_session(|s| s.node.prepare(s.db, &sql))?;
            let p = Prepared {
                id,
                generation: conn.generation.get(),
            };
            if cached {
                conn.cache.borrow_mut().insert(sql.clone(), p);
            }
            (p, Some(params))
        }
    };
    let (rows, returning, control) = kind_of(&sql);
    let n = params.unwrap_or_else(|| sql.matches('?').count() as u64) as usize;
    Ok(DqStmt {
        conn,
        sql,
        prepared,
        params: vec![Value::Null; n],
        rows,
        returning,
        control,
        cached,
    })
}

impl Drop for DqStmt<'_> {
    fn drop(&mut self) {
        if self.cached || self.prepared.generation != self.conn.generation.get() {
            return;
        }
        if let Ok(mut s) = self.conn.session.try_borrow_mut()
            && let Some(s) = s.as_mut()
        {
            let _ = s.node.finalize(s.db, self.prepared.id);
        }
    }
}

/// A cached statement of the application model (`Target::Cached`).
pub(crate) struct Cached<'c>(DqStmt<'c>);

impl<'c> std::ops::Deref for Cached<'c> {
    type Target = DqStmt<'c>;
    fn deref(&self) -> &DqStmt<'c> {
        &self.0
    }
}

impl<'c> std::ops::DerefMut for Cached<'c> {
    fn deref_mut(&mut self) -> &mut DqStmt<'c> {
        &mut self.0
    }
}

/// Replaces a parameter value, reusing its text or blob buffer.
fn set_value(slot: &mut Value, value: ValueRef<'_>) {
    match (value, &mut *slot) {
        (ValueRef::Text(t), Value::Text(s)) => {
            s.clear();
            s.push_str(&String::from_utf8_lossy(t));
        }
        (ValueRef::Blob(b), Value::Blob(v)) => {
            v.clear();
            v.extend_from_slice(b);
        }
        (v, _) => *slot = wire::owned(v),
    }
}

impl Target for Dqlite {
    type Db = DqDatabase;
    type Conn = DqConn;
    type Stmt<'c> = DqStmt<'c>;
    type Cached<'c> = Cached<'c>;
    type Error = DqConnError;

    fn prepare_cached<'c>(conn: &'c DqConn, sql: &str) -> Result<Cached<'c>, DqConnError> {
        statement(conn, sql, true).map(Cached)
    }

    fn prepare<'c>(conn: &'c DqConn, sql: &str) -> Result<DqStmt<'c>, DqConnError> {
        statement(conn, sql, false)
    }

    #[inline]
    fn bind(stmt: &mut DqStmt<'_>, index: usize, value: ValueRef<'_>) -> Result<(), DqConnError> {
        match stmt.params.get_mut(index - 1) {
            Some(slot) => set_value(slot, value),
            None => {
                stmt.params.resize(index, Value::Null);
                set_value(&mut stmt.params[index - 1], value);
            }
        }
        Ok(())
    }

    fn run(stmt: &mut DqStmt<'_>, captures: &[usize], captured: &mut [Value]) -> Result<(), DqConnError> {
        let conn = stmt.conn;
        // A transaction that died with its connection is already rolled back.
        if stmt.control == Control::Rollback && conn.session.borrow().is_none() {
            conn.in_tx.set(false);
            return Ok(());
        }
        stmt.prepared = conn.prepared(&stmt.sql, stmt.prepared)?;
        let id = stmt.prepared.id;
        let mut waited = Duration::ZERO;
        let budget = Duration::from_millis(conn.db.busy_timeout_ms);
        let mut tries = 0usize;
        let result = loop {
            let result = attempt(stmt, id, captures, captured);
            match &result {
                Err(DqConnError(DqError::Server { code, .. })) if code & 0xff == codes::BUSY && waited < budget => {
                    // SQLite's own busy handler schedule (sqliteDefaultBusyCallback).
                    const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];
                    let delay = Duration::from_millis(DELAYS_MS[tries.min(DELAYS_MS.len() - 1)]).min(budget - waited);
                    std::thread::sleep(delay);
                    waited += delay;
                    tries += 1;
                }
                _ => break result,
            }
        };
        if !waited.is_zero() {
            LOCK_WAITED_NS.with(|w| w.set(w.get() + waited.as_nanos() as u64));
        }
        let r = result?;
        conn.changes.set(r.rows_affected);
        if !stmt.rows {
            conn.last_id.set(r.last_insert_id);
        }
        Ok(())
    }

    fn control(stmt: &mut DqStmt<'_>) -> Result<(), DqConnError> {
        Self::run(stmt, &[], &mut [])
    }

    #[inline]
    fn changes(conn: &DqConn) -> u64 {
        conn.changes.get()
    }

    fn last_insert_id(conn: &DqConn) -> i64 {
        conn.last_id.get()
    }

    #[inline]
    fn in_transaction(conn: &DqConn) -> bool {
        conn.in_tx.get()
    }

    fn connect(db: &DqDatabase, how: crate::targets::Connect) -> Result<(DqConn, Option<ReadBack>), DqConnError> {
        let conn = DqConn::connect(db).map_err(DqConnError)?;
        let read_back = if how.check { Some(read_back(&conn)?) } else { None };
        Ok((conn, read_back))
    }

    fn take_lock_waits(_db: &DqDatabase, _how: crate::targets::Connect) -> Option<HandlerStats> {
        None
    }

    fn lock_waited_ns() -> u64 {
        LOCK_WAITED_NS.with(Cell::get)
    }

    fn classify(e: &DqConnError) -> ErrorKind {
        classify(&e.0)
    }
}

/// One try of a statement; keeps the transaction state.
fn attempt(
    stmt: &DqStmt<'_>,
    id: u32,
    captures: &[usize],
    captured: &mut [Value],
) -> Result<client::ExecResult, DqConnError> {
    let conn = stmt.conn;
    let params = stmt.params.iter().map(ValueRef::from);
    let result = if stmt.rows {
        captured.iter_mut().for_each(|v| *v = Value::Null);
        conn.with_session(|s| {
            s.node.query(s.db, id, params, |row, col, v| {
                if row == 0 {
                    for (slot, want) in captures.iter().enumerate() {
                        if *want == col {
                            captured[slot] = wire::owned(v);
                        }
                    }
                }
            })
        })
        .map(|n| client::ExecResult {
            last_insert_id: conn.last_id.get(),
            rows_affected: if stmt.returning { n } else { 0 },
        })
    } else {
        conn.with_session(|s| s.node.exec(s.db, id, params))
    };
    match stmt.control {
        Control::Begin => conn.in_tx.set(result.is_ok()),
        Control::Commit | Control::Rollback => conn.in_tx.set(false),
        Control::None => {}
    }
    result
}

thread_local! {
    /// Time this thread spent retrying SQLITE_BUSY, ns.
    static LOCK_WAITED_NS: Cell<u64> = const { Cell::new(0) };
}

/// Error kinds: dqlite's own (not leader, leadership lost, connection lost) and SQLite's.
pub(crate) fn classify(e: &DqError) -> ErrorKind {
    match e {
        DqError::Server { code, .. } => match *code {
            c if codes::is_not_leader(c) => ErrorKind::NotLeader,
            c if codes::is_leadership_lost(c) => ErrorKind::LeadershipLost,
            c if c & 0xff == codes::BUSY => ErrorKind::Busy,
            c if c & 0xff == codes::LOCKED => ErrorKind::Locked,
            c if c & 0xff == codes::CONSTRAINT => ErrorKind::Constraint,
            _ => ErrorKind::Other,
        },
        DqError::Io { .. } | DqError::Connect { .. } | DqError::Malformed { .. } | DqError::Unexpected { .. } => {
            ErrorKind::Disconnected
        }
        DqError::NoLeader { .. } => ErrorKind::NotLeader,
        DqError::Client(_) => ErrorKind::Other,
    }
}

/// The settings the cluster's SQLite runs with, as a worker's connection reads them (dqlite
/// chooses them itself: WAL, its own VFS, durability by replication; a scenario's
/// `[sqlite]` settings do not apply). A value SQLite reports in a form litehammer does not
/// know fails the run.
fn read_back(conn: &DqConn) -> Result<ReadBack, DqConnError> {
    use crate::config::sqlite::{JournalMode, LockingMode, Synchronous, TempStore};
    let one = |pragma: &str| -> Result<Value, DqConnError> {
        let rows = conn.with_session(|s| s.query(&format!("PRAGMA {pragma}")))?;
        Ok(rows
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Value::Null))
    };
    let int = |pragma: &str| -> Result<i64, DqConnError> {
        match one(pragma)? {
            Value::Integer(i) => Ok(i),
            Value::Null => Ok(0),
            other => Err(refused(pragma, &other)),
        }
    };
    let text = |pragma: &str| -> Result<String, DqConnError> {
        match one(pragma)? {
            Value::Text(t) => Ok(t),
            other => Err(refused(pragma, &other)),
        }
    };
    let journal = text("journal_mode")?;
    let locking = text("locking_mode")?;
    let sync = int("synchronous")?;
    let temp = int("temp_store")?;
    Ok(ReadBack {
        journal_mode: JournalMode::from_sqlite(&journal)
            .ok_or_else(|| refused("journal_mode", &Value::Text(journal)))?,
        synchronous: Synchronous::from_level(sync).ok_or_else(|| refused("synchronous", &Value::Integer(sync)))?,
        busy_timeout: crate::config::duration::DurationValue(Duration::from_millis(int("busy_timeout")?.max(0) as u64)),
        cache_size: int("cache_size")?,
        mmap_size: int("mmap_size")?.max(0) as u64,
        page_size: int("page_size")?.max(0) as u32,
        locking_mode: LockingMode::from_sqlite(&locking)
            .ok_or_else(|| refused("locking_mode", &Value::Text(locking)))?,
        wal_autocheckpoint: int("wal_autocheckpoint")?.max(0) as u32,
        temp_store: TempStore::from_level(temp).ok_or_else(|| refused("temp_store", &Value::Integer(temp)))?,
        foreign_keys: int("foreign_keys")? != 0,
        busy_handler: crate::config::busy::BusyHandler::Sqlite,
    })
}

fn refused(pragma: &str, got: &Value) -> DqConnError {
    DqConnError(DqError::Client(format!(
        "PRAGMA {pragma} read back as {got:?}, which litehammer does not know"
    )))
}
