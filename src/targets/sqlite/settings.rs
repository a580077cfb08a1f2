//! SQLite's connection settings at run time: applied explicitly on every connection, then
//! read back from SQLite (the settings themselves, as data, are `config::sqlite`).

use crate::config::busy::BusyHandler;
use crate::config::duration::DurationValue;
use crate::config::sqlite::{
    JournalMode, LockingMode, ReadBack, SETTING_NAMES, SqliteSettings, Synchronous, TempStore,
};
use rusqlite::Connection;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingError {
    #[error("SQLite error while applying `{setting}`: {source}")]
    Sqlite {
        setting: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("SQLite did not take `{setting}`: asked for {requested}, SQLite reads back {actual}")]
    Refused {
        setting: &'static str,
        requested: String,
        actual: String,
    },
}

/// Settings that belong to the database file; run once on the connection that creates it.
pub(crate) fn apply_to_new_database(s: &SqliteSettings, conn: &Connection) -> Result<(), SettingError> {
    pragma(conn, "page_size", &s.page_size.to_string())
}

/// Applies every per-connection setting, in an order SQLite accepts.
pub(crate) fn apply(s: &SqliteSettings, conn: &Connection) -> Result<(), SettingError> {
    conn.busy_timeout(s.busy_timeout.0)
        .map_err(|source| SettingError::Sqlite {
            setting: "busy_timeout",
            source,
        })?;
    apply_pragmas(s, conn)
}

/// Every per-connection setting but busy_timeout (whose handler the caller installs).
pub(crate) fn apply_pragmas(s: &SqliteSettings, conn: &Connection) -> Result<(), SettingError> {
    pragma(conn, "locking_mode", s.locking_mode.as_str())?;
    pragma(conn, "journal_mode", s.journal_mode.as_str())?;
    pragma(conn, "synchronous", s.synchronous.as_str())?;
    pragma(conn, "cache_size", &s.cache_size.to_string())?;
    pragma(conn, "mmap_size", &s.mmap_size.to_string())?;
    pragma(conn, "wal_autocheckpoint", &s.wal_autocheckpoint.to_string())?;
    pragma(conn, "temp_store", s.temp_store.as_str())?;
    pragma(conn, "foreign_keys", if s.foreign_keys { "on" } else { "off" })
}

/// Reads every setting back from SQLite.
pub(crate) fn read_back(conn: &Connection) -> Result<ReadBack, SettingError> {
    let unknown = |setting: &'static str, actual: String| SettingError::Refused {
        setting,
        requested: "a known value".into(),
        actual,
    };
    let journal = query_text(conn, "journal_mode")?;
    let locking = query_text(conn, "locking_mode")?;
    let sync = query_int(conn, "synchronous")?;
    let temp = query_int(conn, "temp_store")?;
    Ok(ReadBack {
        journal_mode: JournalMode::from_sqlite(&journal).ok_or_else(|| unknown("journal_mode", journal))?,
        synchronous: Synchronous::from_level(sync).ok_or_else(|| unknown("synchronous", sync.to_string()))?,
        busy_timeout: DurationValue(Duration::from_millis(query_int(conn, "busy_timeout")? as u64)),
        cache_size: query_int(conn, "cache_size")?,
        // In-memory databases have no mmap_size row.
        mmap_size: query_int(conn, "mmap_size").unwrap_or(0) as u64,
        page_size: query_int(conn, "page_size")? as u32,
        locking_mode: LockingMode::from_sqlite(&locking).ok_or_else(|| unknown("locking_mode", locking))?,
        wal_autocheckpoint: query_int(conn, "wal_autocheckpoint")? as u32,
        temp_store: TempStore::from_level(temp).ok_or_else(|| unknown("temp_store", temp.to_string()))?,
        foreign_keys: query_int(conn, "foreign_keys")? != 0,
        // Not readable from SQLite; `apply_and_check` records the handler it installed.
        busy_handler: BusyHandler::Sqlite,
    })
}

/// Applies, reads back and fails on the first setting SQLite did not take.
pub(crate) fn apply_and_check(s: &SqliteSettings, conn: &mut Connection) -> Result<ReadBack, SettingError> {
    apply(s, conn)?;
    // Read back before the handler is installed: any handler resets SQLite's busy_timeout
    // (ours use it as their deadline).
    let mut actual = read_back(conn)?;
    super::busy::install(conn, s.busy_handler, s.busy_timeout.0).map_err(|source| SettingError::Sqlite {
        setting: "busy_handler",
        source,
    })?;
    actual.busy_handler = s.busy_handler;
    check_read_back(s, &actual)?;
    Ok(actual)
}

pub(crate) fn check_read_back(s: &SqliteSettings, actual: &ReadBack) -> Result<(), SettingError> {
    let want = serde_json::to_value(s).expect("settings serialize");
    let got = serde_json::to_value(actual).expect("settings serialize");
    for (key, requested) in want.as_object().expect("settings are an object") {
        let found = &got[key.as_str()];
        if found != requested {
            return Err(SettingError::Refused {
                setting: setting_name(key),
                requested: requested.to_string(),
                actual: found.to_string(),
            });
        }
    }
    Ok(())
}

/// SQL functions litehammer adds to every worker connection:
/// `lh_sleep(ms)` sleeps `ms` milliseconds (less when the run is cancelled) and returns it
/// (to inject stalls in tests and demos).
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function("lh_sleep", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
        let ms: i64 = ctx.get(0)?;
        // In slices, so that a Ctrl-C ends a long stall.
        let end = std::time::Instant::now() + Duration::from_millis(ms.max(0) as u64);
        while !crate::interrupt::cancelled() {
            let now = std::time::Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep((end - now).min(Duration::from_millis(50)));
        }
        Ok(ms)
    })
}

fn setting_name(key: &str) -> &'static str {
    SETTING_NAMES.iter().find(|n| **n == key).copied().unwrap_or("setting")
}

fn pragma(conn: &Connection, setting: &'static str, value: &str) -> Result<(), SettingError> {
    // PRAGMA values cannot be bound; every value here comes from a typed setting, not user text.
    let sql = format!("PRAGMA {setting} = {value}");
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|source| SettingError::Sqlite { setting, source })?;
    let mut rows = stmt.raw_query();
    while rows
        .next()
        .map_err(|source| SettingError::Sqlite { setting, source })?
        .is_some()
    {}
    Ok(())
}

fn query_text(conn: &Connection, setting: &'static str) -> Result<String, SettingError> {
    conn.pragma_query_value(None, setting, |row| row.get(0))
        .map_err(|source| SettingError::Sqlite { setting, source })
}

fn query_int(conn: &Connection, setting: &'static str) -> Result<i64, SettingError> {
    conn.pragma_query_value(None, setting, |row| row.get(0))
        .map_err(|source| SettingError::Sqlite { setting, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sqlite::*;

    fn file_db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        (dir, conn)
    }

    #[test]
    fn every_setting_reads_back_as_applied() {
        let (_dir, mut conn) = file_db();
        let s = SqliteSettings {
            journal_mode: JournalMode::Wal,
            synchronous: Synchronous::Normal,
            busy_timeout: DurationValue(Duration::from_millis(1234)),
            cache_size: -8000,
            mmap_size: 1 << 20,
            page_size: 8192,
            locking_mode: LockingMode::Normal,
            wal_autocheckpoint: 500,
            temp_store: TempStore::Memory,
            foreign_keys: true,
            busy_handler: BusyHandler::Fixed(Duration::from_millis(1)),
        };
        apply_to_new_database(&s, &conn).unwrap();
        assert_eq!(apply_and_check(&s, &mut conn).unwrap(), s);
    }

    #[test]
    fn refused_setting_is_an_error() {
        let (_dir, mut conn) = file_db();
        // SQLite caps mmap_size at SQLITE_MAX_MMAP_SIZE (2 GiB in the bundled build).
        let s = SqliteSettings {
            mmap_size: 1 << 40,
            ..SqliteSettings::default()
        };
        let err = apply_and_check(&s, &mut conn).unwrap_err().to_string();
        assert!(err.contains("mmap_size"), "{err}");
    }

    #[test]
    fn memory_database_refuses_wal() {
        let mut conn = Connection::open_in_memory().unwrap();
        let s = SqliteSettings {
            journal_mode: JournalMode::Wal,
            ..SqliteSettings::default()
        };
        let err = apply_and_check(&s, &mut conn).unwrap_err().to_string();
        assert!(err.contains("journal_mode"), "{err}");
    }
}
