//! The SQLite target: rusqlite's raw statement calls, exactly what the hot loop always ran.

use crate::config::sqlite::ReadBack;
use crate::metrics::ErrorKind;
use crate::targets::{Connect, Target};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, Statement};

pub(crate) struct Sqlite;

impl Target for Sqlite {
    type Db = super::backend::SqliteDb;
    type Conn = Connection;
    type Stmt<'c> = Statement<'c>;
    type Cached<'c> = rusqlite::CachedStatement<'c>;
    type Error = rusqlite::Error;

    #[inline]
    fn prepare_cached<'c>(conn: &'c Connection, sql: &str) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
        conn.prepare_cached(sql)
    }

    #[inline]
    fn prepare<'c>(conn: &'c Connection, sql: &str) -> rusqlite::Result<Statement<'c>> {
        conn.prepare(sql)
    }

    #[inline]
    fn bind(stmt: &mut Statement<'_>, index: usize, value: ValueRef<'_>) -> rusqlite::Result<()> {
        stmt.raw_bind_parameter(index, ToSqlOutput::Borrowed(value))
    }

    #[inline]
    fn run(stmt: &mut Statement<'_>, captures: &[usize], captured: &mut [Value]) -> rusqlite::Result<()> {
        run_statement(stmt, captures, captured)
    }

    #[inline]
    fn control(stmt: &mut Statement<'_>) -> rusqlite::Result<()> {
        stmt.raw_execute().map(drop)
    }

    #[inline]
    fn changes(conn: &Connection) -> u64 {
        conn.changes()
    }

    #[inline]
    fn last_insert_id(conn: &Connection) -> i64 {
        conn.last_insert_rowid()
    }

    #[inline]
    fn in_transaction(conn: &Connection) -> bool {
        !conn.is_autocommit()
    }

    fn connect(db: &super::backend::SqliteDb, how: Connect) -> rusqlite::Result<(Connection, Option<ReadBack>)> {
        super::backend::open(db, how)
    }

    fn take_lock_waits(db: &super::backend::SqliteDb, how: Connect) -> Option<super::busy::HandlerStats> {
        super::backend::take_lock_waits(db, how)
    }

    #[inline]
    fn lock_waited_ns() -> u64 {
        super::busy::waited_ns()
    }

    #[inline]
    fn classify(e: &rusqlite::Error) -> ErrorKind {
        crate::metrics::classify(e)
    }
}

/// Steps through every row; keeps the wanted columns of the first row (NULL if none).
#[inline]
pub(crate) fn run_statement(
    stmt: &mut Statement<'_>,
    captures: &[usize],
    captured: &mut [Value],
) -> rusqlite::Result<()> {
    let mut rows = stmt.raw_query();
    let mut first = true;
    while let Some(row) = rows.next()? {
        if first && !captures.is_empty() {
            for (slot, col) in captures.iter().enumerate() {
                captured[slot] = row.get(*col)?;
            }
        }
        first = false;
    }
    if first {
        captured.iter_mut().for_each(|v| *v = Value::Null);
    }
    Ok(())
}
