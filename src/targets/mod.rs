//! The databases a run can measure, one folder each (`sqlite/`, `postgres/`, `turso/`), behind two
//! traits:
//! - `Target`, the worker's view: connect, prepare, bind, run, the transaction statements,
//!   rows changed, the newest id, errors by kind. The loops are generic over it, so each
//!   target gets its own compiled loop (no dynamic dispatch per operation).
//! - `Backend` and `RunDatabase`, the driver's view: create a run's database, load it, say
//!   what the workers connect to, record what they read back, verify, clean up.
//!
//! `TargetSpec` and `Backends` below are the one registration of a target.

pub(crate) mod dqlite;
pub(crate) mod postgres;
pub(crate) mod sqlite;
#[cfg(feature = "turso")]
pub(crate) mod turso;

/// Why `target = "turso"` cannot run in this build.
#[cfg(not(feature = "turso"))]
const NO_TURSO: &str = "this litehammer was built without Turso (its engine adds about an hour to a release \
                        build): build it with `cargo build --release --features turso` (docs/mvcc.md)";
pub(crate) mod verify;

use crate::config::Scenario;
use crate::config::sqlite::ReadBack;
use crate::metrics::ErrorKind;
use crate::report::model::{RunReport, Verification};
use rusqlite::types::{Value, ValueRef};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// One database engine as the workers see it.
pub(crate) trait Target {
    /// Where a run's database is and how to connect to it (`TargetSpec`'s variant).
    type Db;
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

    /// Opens one worker connection with every setting applied (and, on SQLite, the
    /// external-files guard and litehammer's functions installed: every connection that runs
    /// scenario SQL is opened here). Returns what the database read back, when asked.
    fn connect(db: &Self::Db, how: Connect) -> Result<(Self::Conn, Option<ReadBack>), Self::Error>;
    /// Calls of (and time in) litehammer's busy handler on this thread since the last take;
    /// `None` where nothing is observed.
    fn take_lock_waits(db: &Self::Db, how: Connect) -> Option<crate::targets::sqlite::busy::HandlerStats>;
    /// Time this thread has spent waiting for locks so far, ns (0 where not observed).
    fn lock_waited_ns() -> u64;
}

/// How a worker loop opens its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Connect {
    /// Read every setting back and fail on one the database did not take.
    pub check: bool,
    /// Report lock waits even for SQLite's default handler (the application model's anatomy).
    pub observed: bool,
    /// Capacity of the connection's statement cache (the application model prepares as it goes).
    pub statement_cache: Option<usize>,
}

/// One run's database as the workers reach it: sent to worker threads, and to worker
/// processes over their pipe. The one list of targets (with `Backends`): a new database is
/// a variant here, an arm in `with`, and its folder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum TargetSpec {
    Sqlite(sqlite::SqliteDb),
    Postgres(Box<postgres::PgDatabase>),
    Dqlite(dqlite::DqDatabase),
    #[cfg(feature = "turso")]
    Turso(turso::TursoDb),
}

/// A worker loop, instantiated once per target (static dispatch in the hot loop).
pub(crate) trait WithTarget {
    type Out;
    fn run<T: Target>(self, db: &T::Db) -> Self::Out;
}

impl TargetSpec {
    /// Runs `w` with this target's types.
    pub(crate) fn with<W: WithTarget>(&self, w: W) -> W::Out {
        match self {
            TargetSpec::Sqlite(db) => w.run::<sqlite::Sqlite>(db),
            TargetSpec::Postgres(db) => w.run::<postgres::Postgres>(db),
            TargetSpec::Dqlite(db) => w.run::<dqlite::Dqlite>(db),
            #[cfg(feature = "turso")]
            TargetSpec::Turso(db) => w.run::<turso::Turso>(db),
        }
    }
}

/// Why a target could not create, load, verify or clean up a run's database.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("dqlite: {0}")]
    Dqlite(String),
    #[error("Turso: {0}")]
    Turso(String),
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("verification cannot open the database: {0}")]
    VerifyOpen(rusqlite::Error),
    #[error("verification failed to query the database: {0}")]
    VerifyQuery(rusqlite::Error),
}

/// One kind of database as the driver sees it. Its methods block: call them off the runtime.
pub(crate) trait Backend: Send + Sync {
    /// Creates the run's own database (the SQLite file at `db_path` is the source every target
    /// is set up from).
    fn create(&self, db_path: &Path, s: &Scenario) -> Result<Box<dyn RunDatabase>, TargetError>;
}

/// One run's database on its target.
pub(crate) trait RunDatabase: Send + Sync {
    /// Names the database in the report (at once, so that a failed run still says what it
    /// used).
    fn describe(&self, report: &mut RunReport);
    /// Loads the set-up SQLite database (`source`) into the target, if it is another one, and
    /// counts the rows of `tables` before the workers start.
    fn load(&self, s: &Scenario, source: &rusqlite::Connection, tables: &[String]) -> Result<Vec<u64>, TargetError>;
    /// What the workers connect to.
    fn spec(&self) -> TargetSpec;
    /// Stores what the workers read back in the report.
    fn record(&self, report: &mut RunReport, read_back: Option<ReadBack>);
    /// Row counts against acknowledged writes, integrity, the data checks.
    fn verify(&self, ack: &verify::Acknowledged<'_>) -> Result<Verification, TargetError>;
    /// Removes what this run created on the target, unless `keep`; on every exit path.
    fn cleanup(&self, keep: bool);
    /// Starts what happens to the target while the run is measured (dqlite's faults), once
    /// the workers are ready; `clock` says when measuring starts.
    fn during(&self, _clock: Arc<crate::metrics::timeline::RunClock>) {}
    /// Ends what `during` started and adds what it saw to the report (after the
    /// verification, which it may read).
    fn after(&self, _report: &mut RunReport) {}
}

/// What the rest of litehammer may ask about a target without naming it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Profile {
    /// What messages call it ("PostgreSQL").
    pub name: &'static str,
    /// A database file of litehammer's own, which `--from-db`, `[backup]` and the crash
    /// trials work on.
    pub file: bool,
    /// How its SQL differs from SQLite's, in which scenarios are written; `None`: it is SQLite's.
    pub dialect: Option<Dialect>,
}

/// A target's SQL, from a scenario's SQLite statements.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    /// A statement in the target's SQL: `given` is the scenario's own version of it (e.g. an
    /// op's `postgres = "..."`), else the translation of `sql`.
    pub translate: fn(sql: &str, given: Option<&str>) -> Result<String, String>,
    /// The one BEGIN of every transaction mode (the isolation is a setting of its own).
    pub begin: &'static str,
}

/// The profile of a target kind (part of the registration).
pub(crate) fn profile(kind: crate::config::postgres::TargetKind) -> Profile {
    use crate::config::postgres::TargetKind;
    match kind {
        TargetKind::Sqlite => sqlite::PROFILE,
        TargetKind::Postgres => postgres::PROFILE,
        TargetKind::Dqlite => dqlite::PROFILE,
        #[cfg(feature = "turso")]
        TargetKind::Turso => turso::PROFILE,
        #[cfg(not(feature = "turso"))]
        TargetKind::Turso => Profile {
            name: "Turso",
            file: false,
            dialect: None,
        },
    }
}

/// The backends of one command, each set up once: the registry the driver picks from by
/// the cell's `target`. A new database is a field here and an arm in `for_kind`.
#[derive(Clone)]
pub(crate) struct Backends {
    sqlite: Arc<sqlite::SqliteBackend>,
    postgres: Option<Arc<postgres::PgBackend>>,
    dqlite: Option<Arc<dqlite::DqBackend>>,
    #[cfg(feature = "turso")]
    turso: Arc<turso::TursoBackend>,
}

impl Backends {
    /// The backends the plan's cells need, each started or reached once (a PostgreSQL
    /// server or a dqlite cluster is started only when a cell runs on it). `url`:
    /// `--target KIND=URL`.
    pub(crate) fn start(
        cells: &[crate::config::matrix::Cell],
        url: Option<(crate::config::postgres::TargetKind, &str)>,
    ) -> Result<Self, crate::error::InputError> {
        use crate::config::postgres::TargetKind;
        let for_kind = |kind: TargetKind| url.filter(|(k, _)| *k == kind).map(|(_, u)| u);
        if let Some((TargetKind::Sqlite, _)) = url {
            return Err(crate::error::InputError::new("--target", "sqlite takes no URL"));
        }
        #[cfg(not(feature = "turso"))]
        if let Some(c) = cells.iter().find(|c| c.scenario.target == TargetKind::Turso) {
            return Err(crate::error::InputError::new(
                format!("run `{}`: target = \"turso\"", c.id),
                NO_TURSO,
            ));
        }
        Ok(Backends {
            sqlite: Arc::new(sqlite::SqliteBackend),
            postgres: postgres::PgBackend::start(cells, for_kind(TargetKind::Postgres))?.map(Arc::new),
            dqlite: dqlite::DqBackend::start(cells, for_kind(TargetKind::Dqlite))?.map(Arc::new),
            #[cfg(feature = "turso")]
            turso: Arc::new(turso::TursoBackend),
        })
    }

    /// SQLite alone (the overhead benchmark).
    pub(crate) fn sqlite_only() -> Self {
        Backends {
            sqlite: Arc::new(sqlite::SqliteBackend),
            postgres: None,
            dqlite: None,
            #[cfg(feature = "turso")]
            turso: Arc::new(turso::TursoBackend),
        }
    }

    /// The backend of `target`, or why there is none.
    pub(crate) fn for_kind(
        &self,
        target: crate::config::postgres::TargetKind,
    ) -> Result<Arc<dyn Backend>, TargetError> {
        use crate::config::postgres::TargetKind;
        match target {
            TargetKind::Sqlite => Ok(self.sqlite.clone()),
            TargetKind::Postgres => match &self.postgres {
                Some(b) => Ok(b.clone()),
                None => Err(TargetError::Postgres("no server was started for this run".into())),
            },
            TargetKind::Dqlite => match &self.dqlite {
                Some(b) => Ok(b.clone()),
                None => Err(TargetError::Dqlite("no cluster was started for this run".into())),
            },
            #[cfg(feature = "turso")]
            TargetKind::Turso => Ok(self.turso.clone()),
            #[cfg(not(feature = "turso"))]
            TargetKind::Turso => Err(TargetError::Turso(NO_TURSO.into())),
        }
    }
}
