//! The database a run measures, behind one small trait: open, prepare, bind, run, the
//! transaction statements, rows changed, the newest id, and errors by kind. The worker's hot
//! loop is generic over it, so each target gets its own compiled loop (no dynamic dispatch
//! per operation): `sqlite.rs` (the default) and `postgres.rs`.

pub(crate) mod postgres;
pub(crate) mod sqlite;
pub(crate) mod verify;

use crate::metrics::ErrorKind;
use rusqlite::types::{Value, ValueRef};

/// One database engine as the workers see it.
pub(crate) trait Target {
    /// One worker's connection.
    type Conn;
    /// A prepared statement, borrowing its connection.
    type Stmt<'c>
    where
        Self::Conn: 'c;
    /// A statement from the connection's cache (the application model prepares as it goes).
    type Cached<'c>: std::ops::DerefMut<Target = Self::Stmt<'c>>
    where
        Self::Conn: 'c;
    type Error: std::fmt::Display;

    fn prepare_cached<'c>(conn: &'c Self::Conn, sql: &str) -> Result<Self::Cached<'c>, Self::Error>;
    fn prepare<'c>(conn: &'c Self::Conn, sql: &str) -> Result<Self::Stmt<'c>, Self::Error>;
    /// Binds parameter `index` (1-based).
    fn bind(stmt: &mut Self::Stmt<'_>, index: usize, value: ValueRef<'_>) -> Result<(), Self::Error>;
    /// Executes the bound statement, stepping through every row; keeps the wanted columns of
    /// the first row in `captured` (NULL when there is no row).
    fn run(stmt: &mut Self::Stmt<'_>, captures: &[usize], captured: &mut [Value]) -> Result<(), Self::Error>;
    /// Executes a statement without parameters or rows: BEGIN, COMMIT, ROLLBACK.
    fn control(stmt: &mut Self::Stmt<'_>) -> Result<(), Self::Error>;
    /// Rows changed by the last statement.
    fn changes(conn: &Self::Conn) -> u64;
    /// The id the last insert generated (`latest(...)` generators read it).
    fn last_insert_id(conn: &Self::Conn) -> i64;
    /// Whether a transaction is open (after a failure: whether to roll back).
    fn in_transaction(conn: &Self::Conn) -> bool;
    fn classify(e: &Self::Error) -> ErrorKind;
}

/// Which target a worker connects to.
#[derive(Clone, Debug, Default)]
pub(crate) enum TargetSpec {
    /// The run's database file (`WorkerSpec::db_path`).
    #[default]
    Sqlite,
    Postgres(std::sync::Arc<postgres::PgDatabase>),
}
