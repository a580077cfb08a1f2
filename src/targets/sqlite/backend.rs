//! The SQLite backend: a run's database file, how a worker connects to it, and what the
//! driver does with it (record what was read back, verify).

use super::{busy, check, guard, settings};
use crate::config::Scenario;
use crate::config::busy::BusyHandler;
use crate::config::sqlite::{ReadBack, SqliteSettings};
use crate::report::model::{RunReport, Verification};
use crate::targets::verify::Acknowledged;
use crate::targets::{Backend, Connect, RunDatabase, TargetError, TargetSpec};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) const PROFILE: crate::targets::Profile = crate::targets::Profile {
    name: "SQLite",
    file: true,
    dialect: None,
};

/// A run's database file and the settings every connection applies.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SqliteDb {
    pub path: PathBuf,
    pub settings: SqliteSettings,
    /// A `replica = true` group's database: the Litestream replica's URI for the
    /// litestream-vfs extension (loaded by the driver), opened read-only, settings not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_uri: Option<String>,
}

/// Opens a worker's connection: litehammer's functions, the external-files guard, every
/// setting, and litehammer's copy of the busy handler (it ends its waits on Ctrl-C, which
/// SQLite's own cannot). Errors keep SQLite's code (a busy database is a busy error) and
/// say which setting failed.
pub(crate) fn open(db: &SqliteDb, how: Connect) -> rusqlite::Result<(Connection, Option<ReadBack>)> {
    if let Some(uri) = &db.replica_uri {
        return open_replica(uri, how);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(&db.path, flags)
        .map_err(|e| with_message(&e, format!("cannot open {}: {e}", db.path.display())))?;
    settings::register_functions(&conn)?;
    guard::install(&mut conn)?;
    let s = &db.settings;
    let setting = |e: settings::SettingError| match &e {
        settings::SettingError::Sqlite { source, .. } => with_message(source, e.to_string()),
        settings::SettingError::Refused { .. } => with_message(&rusqlite::Error::InvalidQuery, e.to_string()),
    };
    let read_back = if how.check {
        let read_back = settings::apply_and_check(s, &mut conn).map_err(setting)?;
        busy::install_observed(&mut conn, s.busy_handler, s.busy_timeout.0)?;
        Some(read_back)
    } else {
        // The handler first, so that lock waits while applying the settings are seen.
        busy::install_observed(&mut conn, s.busy_handler, s.busy_timeout.0)?;
        settings::apply_pragmas(s, &conn).map_err(setting)?;
        None
    };
    if let Some(n) = how.statement_cache {
        conn.set_prepared_statement_cache_capacity(n);
    }
    Ok((conn, read_back))
}

/// A worker's connection to the Litestream replica: read-only through the VFS, litehammer's
/// functions and the guard; the `[sqlite]` settings are the primary's and are not applied
/// (nothing is read back).
fn open_replica(uri: &str, how: Connect) -> rusqlite::Result<(Connection, Option<ReadBack>)> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(uri, flags)
        .map_err(|e| with_message(&e, format!("cannot open the replica {uri}: {e}")))?;
    settings::register_functions(&conn)?;
    guard::install(&mut conn)?;
    if let Some(n) = how.statement_cache {
        conn.set_prepared_statement_cache_capacity(n);
    }
    Ok((conn, None))
}

/// `e`'s SQLite error code (SQLITE_ERROR when it has none) with another message.
fn with_message(e: &rusqlite::Error, message: String) -> rusqlite::Error {
    let code = e
        .sqlite_error()
        .map_or(rusqlite::ffi::SQLITE_ERROR, |f| f.extended_code);
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message))
}

/// Lock-wait counters, reported for litehammer's handlers and for the application model
/// (whose `sqlite` handler is litehammer's copy of SQLite's schedule, observed).
pub(crate) fn take_lock_waits(db: &SqliteDb, how: Connect) -> Option<busy::HandlerStats> {
    let reported = how.observed || db.settings.busy_handler != BusyHandler::Sqlite;
    let stats = busy::take_stats();
    reported.then_some(stats)
}

pub(crate) struct SqliteBackend;

impl Backend for SqliteBackend {
    fn create(&self, db_path: &Path, s: &Scenario) -> Result<Box<dyn RunDatabase>, TargetError> {
        Ok(Box::new(SqliteRun(SqliteDb {
            path: db_path.to_path_buf(),
            settings: s.sqlite.clone(),
            replica_uri: None,
        })))
    }
}

/// A SQLite run's database: the file the driver set up.
struct SqliteRun(SqliteDb);

impl RunDatabase for SqliteRun {
    fn describe(&self, _report: &mut RunReport) {}

    fn load(&self, _s: &Scenario, source: &Connection, tables: &[String]) -> Result<Vec<u64>, TargetError> {
        Ok(check::count_rows(source, tables)?)
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::Sqlite(self.0.clone())
    }

    fn record(&self, report: &mut RunReport, read_back: Option<ReadBack>) {
        if let Some(read_back) = read_back {
            report.database.page_size = read_back.page_size;
            report.sqlite = Some(read_back);
        }
    }

    fn verify(&self, ack: &Acknowledged<'_>) -> Result<Verification, TargetError> {
        let mut conn = Connection::open_with_flags(&self.0.path, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(TargetError::VerifyOpen)?;
        guard::install(&mut conn).map_err(TargetError::VerifyOpen)?;
        let _interruptible = crate::interrupt::interruptible(&conn);
        inject_fault(&conn, ack.tables);
        check::verify(&conn, ack).map_err(TargetError::VerifyQuery)
    }

    /// The file is the driver's: it removes (or keeps) it with its sidecars.
    fn cleanup(&self, _keep: bool) {}
}

/// Test hook: `LITEHAMMER_FAULT=lose-row` deletes one row of the first tracked table before
/// verification, so tests can prove the checker catches loss end to end.
fn inject_fault(conn: &Connection, tables: &[String]) {
    if std::env::var("LITEHAMMER_FAULT").as_deref() == Ok("lose-row")
        && let Some(table) = tables.first()
    {
        let sql = format!("DELETE FROM \"{table}\" WHERE rowid = (SELECT max(rowid) FROM \"{table}\")");
        let _ = conn.execute(&sql, []);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every worker connection (the plain loop's, the request loop's first one and its
    /// per-request ones) is opened by `open`, and each refuses to write another file.
    #[test]
    fn every_kind_of_worker_connection_refuses_attach_and_vacuum_into() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb {
            path: dir.path().join("w.db"),
            settings: SqliteSettings::default(),
            replica_uri: None,
        };
        Connection::open(&db.path)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        let other = dir.path().join("other.db");
        for (name, check, observed) in [
            ("plain", true, false),
            ("app", true, true),
            ("per-request", false, true),
        ] {
            let how = Connect {
                check,
                observed,
                statement_cache: observed.then_some(8),
            };
            let (conn, read_back) = open(&db, how).unwrap();
            assert_eq!(read_back.is_some(), check, "{name}");
            let attach = conn.execute_batch(&format!("ATTACH DATABASE '{}' AS o", other.display()));
            assert!(attach.is_err(), "{name}: ATTACH of a file was allowed");
            let vacuum = conn.execute_batch(&format!("VACUUM INTO '{}'", other.display()));
            assert!(vacuum.is_err(), "{name}: VACUUM INTO a file was allowed");
            assert!(!other.exists(), "{name}: {} was written", other.display());
            // In-memory attachments stay allowed.
            conn.execute_batch("ATTACH DATABASE ':memory:' AS m").unwrap();
        }
    }

    #[test]
    fn a_setting_sqlite_refuses_names_the_setting_and_keeps_the_error_code() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb {
            path: dir.path().join("w.db"),
            settings: SqliteSettings {
                mmap_size: 1 << 40,
                ..SqliteSettings::default()
            },
            replica_uri: None,
        };
        Connection::open(&db.path).unwrap();
        let how = Connect {
            check: true,
            observed: false,
            statement_cache: None,
        };
        let err = open(&db, how).map(drop).unwrap_err();
        assert!(err.to_string().contains("mmap_size"), "{err}");
    }
}
