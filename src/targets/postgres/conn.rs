//! The PostgreSQL target: one `postgres::Client` per worker (synchronous, like a worker
//! thread), prepared statements, parameters converted to the types the server inferred.

use crate::config::postgres::PostgresSettings;
use crate::config::sqlite::ReadBack;
use crate::metrics::ErrorKind;
use crate::targets::Target;
use crate::targets::sqlite::busy::HandlerStats;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, private::BytesMut, to_sql_checked};
use postgres::{Client, NoTls};
use rusqlite::types::{Value, ValueRef};
use std::cell::{Cell, RefCell};
use std::error::Error as StdError;

/// Where one run's database is and how its connections are set up. Worker processes get it
/// over their pipe (with the password: never printed, never in the report).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(into = "PgWire", from = "PgWire")]
pub(crate) struct PgDatabase {
    pub config: postgres::Config,
    pub settings: PostgresSettings,
}

/// `PgDatabase` as plain data.
#[derive(serde::Serialize, serde::Deserialize)]
struct PgWire {
    /// Unix socket directories as `unix:PATH`, else host names.
    hosts: Vec<String>,
    ports: Vec<u16>,
    user: Option<String>,
    password: Option<Vec<u8>>,
    dbname: Option<String>,
    connect_timeout_ms: Option<u64>,
    settings: PostgresSettings,
}

impl From<PgDatabase> for PgWire {
    fn from(db: PgDatabase) -> Self {
        let c = &db.config;
        PgWire {
            hosts: c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    postgres::config::Host::Tcp(name) => name.clone(),
                    postgres::config::Host::Unix(path) => format!("unix:{}", path.display()),
                })
                .collect(),
            ports: c.get_ports().to_vec(),
            user: c.get_user().map(str::to_string),
            password: c.get_password().map(<[u8]>::to_vec),
            dbname: c.get_dbname().map(str::to_string),
            connect_timeout_ms: c.get_connect_timeout().map(|d| d.as_millis() as u64),
            settings: db.settings,
        }
    }
}

impl From<PgWire> for PgDatabase {
    fn from(w: PgWire) -> Self {
        let mut config = postgres::Config::new();
        for h in &w.hosts {
            match h.strip_prefix("unix:") {
                Some(path) => config.host_path(path),
                None => config.host(h),
            };
        }
        w.ports.iter().for_each(|p| {
            config.port(*p);
        });
        if let Some(u) = &w.user {
            config.user(u);
        }
        if let Some(p) = &w.password {
            config.password(p);
        }
        if let Some(d) = &w.dbname {
            config.dbname(d);
        }
        if let Some(ms) = w.connect_timeout_ms {
            config.connect_timeout(std::time::Duration::from_millis(ms));
        }
        PgDatabase {
            config,
            settings: w.settings,
        }
    }
}

pub(crate) struct Postgres;

/// A PostgreSQL error shown with the server's message, detail and SQLSTATE (the client's
/// own Display says only "db error").
#[derive(Debug)]
pub(crate) struct PgError(pub postgres::Error);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&db_message(&self.0))
    }
}

/// The server's own message (with its detail and SQLSTATE) rather than "db error".
pub(crate) fn db_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(d) => format!("{} ({}; SQLSTATE {})", db.message(), d, db.code().code()),
            None => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        },
        None => e.to_string(),
    }
}

/// One worker's connection; the cells hold what the last statement left behind.
pub(crate) struct PgConn {
    client: RefCell<Client>,
    /// The application model's statement cache, by SQL text.
    cache: RefCell<std::collections::HashMap<String, postgres::Statement>>,
    changes: Cell<u64>,
    in_tx: Cell<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    None,
    Begin,
    End,
}

pub(crate) struct PgStmt<'c> {
    conn: &'c PgConn,
    stmt: postgres::Statement,
    params: Vec<PgParam>,
    control: Control,
}

/// Connects and applies the session settings (synchronous_commit, isolation).
pub(crate) fn connect(db: &PgDatabase) -> Result<PgConn, PgError> {
    let mut client = db.config.connect(NoTls).map_err(PgError)?;
    client.batch_execute(&db.settings.session_sql()).map_err(PgError)?;
    Ok(PgConn {
        client: RefCell::new(client),
        cache: RefCell::default(),
        changes: Cell::new(0),
        in_tx: Cell::new(false),
    })
}

impl Target for Postgres {
    type Db = PgDatabase;
    type Conn = PgConn;
    type Stmt<'c> = PgStmt<'c>;
    type Cached<'c> = Cached<'c>;
    type Error = PgError;

    fn prepare_cached<'c>(conn: &'c PgConn, sql: &str) -> Result<Cached<'c>, PgError> {
        let found = conn.cache.borrow().get(sql).cloned();
        let stmt = match found {
            Some(stmt) => stmt,
            None => {
                let stmt = conn.client.borrow_mut().prepare(sql).map_err(PgError)?;
                conn.cache.borrow_mut().insert(sql.to_string(), stmt.clone());
                stmt
            }
        };
        Ok(Cached(statement(conn, stmt, sql)))
    }

    fn prepare<'c>(conn: &'c PgConn, sql: &str) -> Result<PgStmt<'c>, PgError> {
        let stmt = conn.client.borrow_mut().prepare(sql).map_err(PgError)?;
        Ok(statement(conn, stmt, sql))
    }

    #[inline]
    fn bind(stmt: &mut PgStmt<'_>, index: usize, value: ValueRef<'_>) -> Result<(), PgError> {
        if let Some(slot) = stmt.params.get_mut(index - 1) {
            slot.set(value);
        }
        Ok(())
    }

    fn run(stmt: &mut PgStmt<'_>, captures: &[usize], captured: &mut [Value]) -> Result<(), PgError> {
        let mut client = stmt.conn.client.borrow_mut();
        let result = (|| {
            let mut rows = client.query_raw(&stmt.stmt, stmt.params.iter().map(|p| p as &dyn ToSql))?;
            let mut first = true;
            while let Some(row) = rows.next()? {
                if first && !captures.is_empty() {
                    for (slot, col) in captures.iter().enumerate() {
                        captured[slot] = value_of(&row, *col);
                    }
                }
                first = false;
            }
            if first {
                captured.iter_mut().for_each(|v| *v = Value::Null);
            }
            Ok(rows.rows_affected().unwrap_or(0))
        })();
        drop(client);
        match stmt.control {
            Control::Begin => stmt.conn.in_tx.set(result.is_ok()),
            Control::End => stmt.conn.in_tx.set(false),
            Control::None => {}
        }
        stmt.conn.changes.set(*result.as_ref().unwrap_or(&0));
        result.map(drop).map_err(PgError)
    }

    fn control(stmt: &mut PgStmt<'_>) -> Result<(), PgError> {
        Self::run(stmt, &[], &mut [])
    }

    #[inline]
    fn changes(conn: &PgConn) -> u64 {
        conn.changes.get()
    }

    /// The session's newest sequence value (identity columns are sequences); 0 before any.
    fn last_insert_id(conn: &PgConn) -> i64 {
        conn.client
            .borrow_mut()
            .query_one("SELECT lastval()", &[])
            .ok()
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .unwrap_or(0)
    }

    #[inline]
    fn in_transaction(conn: &PgConn) -> bool {
        conn.in_tx.get()
    }

    fn connect(db: &PgDatabase, _how: crate::targets::Connect) -> Result<(PgConn, Option<ReadBack>), PgError> {
        connect(db).map(|c| (c, None))
    }

    fn take_lock_waits(_db: &PgDatabase, _how: crate::targets::Connect) -> Option<HandlerStats> {
        None
    }

    fn lock_waited_ns() -> u64 {
        0
    }

    fn classify(e: &PgError) -> ErrorKind {
        classify(&e.0)
    }
}

/// A prepared statement with its parameter slots and whether it opens or ends a transaction.
fn statement<'c>(conn: &'c PgConn, stmt: postgres::Statement, sql: &str) -> PgStmt<'c> {
    let head = sql.trim_start().get(..8).unwrap_or("").to_ascii_uppercase();
    let control = if head.starts_with("BEGIN") || head.starts_with("START TR") {
        Control::Begin
    } else if head.starts_with("COMMIT") || head.starts_with("ROLLBACK") || head.starts_with("END") {
        Control::End
    } else {
        Control::None
    };
    PgStmt {
        conn,
        params: vec![PgParam::Null; stmt.params().len()],
        stmt,
        control,
    }
}

/// A cached statement of the application model (`Target::Cached`).
pub(crate) struct Cached<'c>(PgStmt<'c>);

impl<'c> std::ops::Deref for Cached<'c> {
    type Target = PgStmt<'c>;
    fn deref(&self) -> &PgStmt<'c> {
        &self.0
    }
}

impl<'c> std::ops::DerefMut for Cached<'c> {
    fn deref_mut(&mut self) -> &mut PgStmt<'c> {
        &mut self.0
    }
}

/// Error kinds by SQLSTATE: serialization failures are their own kind; deadlocks and lock
/// timeouts count as busy (the lock was not granted); class 23 as constraint violations.
pub(crate) fn classify(e: &postgres::Error) -> ErrorKind {
    let Some(code) = e.code() else { return ErrorKind::Other };
    if *code == SqlState::T_R_SERIALIZATION_FAILURE {
        ErrorKind::Serialization
    } else if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::LOCK_NOT_AVAILABLE {
        ErrorKind::Busy
    } else if code.code().starts_with("23") {
        ErrorKind::Constraint
    } else {
        ErrorKind::Other
    }
}

/// A column of a result row as SQLite's value model (step references capture these).
fn value_of(row: &postgres::Row, col: usize) -> Value {
    let Some(column) = row.columns().get(col) else {
        return Value::Null;
    };
    let ty = column.type_().clone();
    let got = match ty {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(col)
            .map(|v| v.map(|v| Value::Integer(v.into()))),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(col)
            .map(|v| v.map(|v| Value::Integer(v.into()))),
        Type::INT8 => row.try_get::<_, Option<i64>>(col).map(|v| v.map(Value::Integer)),
        Type::FLOAT4 => row
            .try_get::<_, Option<f32>>(col)
            .map(|v| v.map(|v| Value::Real(v.into()))),
        Type::FLOAT8 => row.try_get::<_, Option<f64>>(col).map(|v| v.map(Value::Real)),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(col)
            .map(|v| v.map(|v| Value::Integer(v.into()))),
        Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(col).map(|v| v.map(Value::Blob)),
        _ => row.try_get::<_, Option<String>>(col).map(|v| v.map(Value::Text)),
    };
    got.ok().flatten().unwrap_or(Value::Null)
}

/// A parameter in SQLite's value model, sent as whatever type the server inferred for it.
#[derive(Clone, Debug)]
pub(crate) enum PgParam {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl PgParam {
    /// Replaces the value, reusing the text buffer.
    pub(crate) fn set(&mut self, value: ValueRef<'_>) {
        match (value, &mut *self) {
            (ValueRef::Text(t), PgParam::Text(s)) => {
                s.clear();
                s.push_str(&String::from_utf8_lossy(t));
            }
            (ValueRef::Null, _) => *self = PgParam::Null,
            (ValueRef::Integer(i), _) => *self = PgParam::Integer(i),
            (ValueRef::Real(f), _) => *self = PgParam::Real(f),
            (ValueRef::Text(t), _) => *self = PgParam::Text(String::from_utf8_lossy(t).into_owned()),
            (ValueRef::Blob(b), _) => *self = PgParam::Blob(b.to_vec()),
        }
    }
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

type BoxError = Box<dyn StdError + Sync + Send>;

fn mismatch(what: &str, ty: &Type) -> BoxError {
    format!("cannot send {what} as PostgreSQL type {ty}").into()
}

impl ToSql for PgParam {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self {
            PgParam::Null => Ok(IsNull::Yes),
            PgParam::Integer(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::FLOAT4 => (*i as f32).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ if is_text(ty) => i.to_string().as_str().to_sql(ty, out),
                _ => Err(mismatch("an integer", ty)),
            },
            PgParam::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                Type::INT8 | Type::INT4 | Type::INT2 if f.fract() == 0.0 => PgParam::Integer(*f as i64).to_sql(ty, out),
                _ if is_text(ty) => f.to_string().as_str().to_sql(ty, out),
                _ => Err(mismatch("a real", ty)),
            },
            PgParam::Text(s) => match *ty {
                _ if is_text(ty) => s.as_str().to_sql(ty, out),
                Type::INT8 | Type::INT4 | Type::INT2 => PgParam::Integer(s.trim().parse()?).to_sql(ty, out),
                Type::FLOAT8 | Type::FLOAT4 => PgParam::Real(s.trim().parse()?).to_sql(ty, out),
                Type::BYTEA => s.as_bytes().to_sql(ty, out),
                _ => Err(mismatch("text", ty)),
            },
            PgParam::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ if is_text(ty) => String::from_utf8_lossy(b).as_ref().to_sql(ty, out),
                _ => Err(mismatch("a blob", ty)),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
