//! Connection settings: applied explicitly on every connection, then read back from SQLite.

use crate::config::busy::BusyHandler;
use crate::config::duration::DurationValue;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

macro_rules! pragma_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub(crate) enum $name { $($variant),+ }

        impl $name {
            pub(crate) fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            #[allow(dead_code)] // generated for every setting enum; not all are read back by name
            pub(crate) fn from_sqlite(text: &str) -> Option<Self> {
                match text.to_ascii_lowercase().as_str() { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

pragma_enum!(JournalMode { Delete = "delete", Truncate = "truncate", Persist = "persist", Memory = "memory", Wal = "wal", Off = "off" });
pragma_enum!(Synchronous { Off = "off", Normal = "normal", Full = "full", Extra = "extra" });
pragma_enum!(LockingMode { Normal = "normal", Exclusive = "exclusive" });
pragma_enum!(TempStore { Default = "default", File = "file", Memory = "memory" });

impl Synchronous {
    fn from_level(level: i64) -> Option<Self> {
        [Self::Off, Self::Normal, Self::Full, Self::Extra]
            .get(usize::try_from(level).ok()?)
            .copied()
    }
}

impl TempStore {
    fn from_level(level: i64) -> Option<Self> {
        [Self::Default, Self::File, Self::Memory]
            .get(usize::try_from(level).ok()?)
            .copied()
    }
}

/// The `[sqlite]` table of a scenario. Every field has SQLite's own default, and every
/// field is set explicitly on each connection (rusqlite's 5 s busy_timeout included).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SqliteSettings {
    pub journal_mode: JournalMode,
    pub synchronous: Synchronous,
    pub busy_timeout: DurationValue,
    pub cache_size: i64,
    pub mmap_size: u64,
    pub page_size: u32,
    pub locking_mode: LockingMode,
    pub wal_autocheckpoint: u32,
    pub temp_store: TempStore,
    pub foreign_keys: bool,
    /// What a connection does while another holds a lock it needs (see `busy.rs`).
    pub busy_handler: BusyHandler,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            journal_mode: JournalMode::Delete,
            synchronous: Synchronous::Full,
            busy_timeout: DurationValue(Duration::from_secs(5)),
            cache_size: -2000,
            mmap_size: 0,
            page_size: 4096,
            locking_mode: LockingMode::Normal,
            wal_autocheckpoint: 1000,
            temp_store: TempStore::Default,
            foreign_keys: false,
            busy_handler: BusyHandler::Sqlite,
        }
    }
}

/// What SQLite reports for each setting after it was applied: stored in the report.
pub(crate) type ReadBack = SqliteSettings;

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

impl SqliteSettings {
    pub(crate) fn validate(&self) -> Result<(), String> {
        super::limits::wait(self.busy_timeout.0).map_err(|e| format!("busy_timeout {e}"))?;
        if !(512..=65536).contains(&self.page_size) || !self.page_size.is_power_of_two() {
            return Err(format!(
                "page_size must be a power of two from 512 to 65536, got {}",
                self.page_size
            ));
        }
        Ok(())
    }

    /// Settings that belong to the database file; run once on the connection that creates it.
    pub(crate) fn apply_to_new_database(&self, conn: &Connection) -> Result<(), SettingError> {
        pragma(conn, "page_size", &self.page_size.to_string())
    }

    /// Applies every per-connection setting, in an order SQLite accepts.
    pub(crate) fn apply(&self, conn: &Connection) -> Result<(), SettingError> {
        conn.busy_timeout(self.busy_timeout.0)
            .map_err(|source| SettingError::Sqlite {
                setting: "busy_timeout",
                source,
            })?;
        self.apply_pragmas(conn)
    }

    /// Every per-connection setting but busy_timeout (whose handler the caller installs).
    pub fn apply_pragmas(&self, conn: &Connection) -> Result<(), SettingError> {
        pragma(conn, "locking_mode", self.locking_mode.as_str())?;
        pragma(conn, "journal_mode", self.journal_mode.as_str())?;
        pragma(conn, "synchronous", self.synchronous.as_str())?;
        pragma(conn, "cache_size", &self.cache_size.to_string())?;
        pragma(conn, "mmap_size", &self.mmap_size.to_string())?;
        pragma(conn, "wal_autocheckpoint", &self.wal_autocheckpoint.to_string())?;
        pragma(conn, "temp_store", self.temp_store.as_str())?;
        pragma(conn, "foreign_keys", if self.foreign_keys { "on" } else { "off" })
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
    pub(crate) fn apply_and_check(&self, conn: &mut Connection) -> Result<ReadBack, SettingError> {
        self.apply(conn)?;
        // Read back before the handler is installed: any handler resets SQLite's busy_timeout
        // (ours use it as their deadline).
        let mut actual = Self::read_back(conn)?;
        crate::config::busy::install(conn, self.busy_handler, self.busy_timeout.0).map_err(|source| {
            SettingError::Sqlite {
                setting: "busy_handler",
                source,
            }
        })?;
        actual.busy_handler = self.busy_handler;
        self.check_read_back(&actual)?;
        Ok(actual)
    }

    pub(crate) fn check_read_back(&self, actual: &ReadBack) -> Result<(), SettingError> {
        let want = serde_json::to_value(self).expect("settings serialize");
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
}

/// SQL functions litehammer adds to every worker connection:
/// `lh_sleep(ms)` sleeps `ms` milliseconds and returns it (to inject stalls in tests and demos).
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function("lh_sleep", 1, FunctionFlags::SQLITE_UTF8, |ctx| {
        let ms: i64 = ctx.get(0)?;
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms as u64));
        }
        Ok(ms)
    })
}

/// Every setting of `[sqlite]`, by its key.
pub(crate) const SETTING_NAMES: &[&str] = &[
    "journal_mode",
    "synchronous",
    "busy_timeout",
    "cache_size",
    "mmap_size",
    "page_size",
    "locking_mode",
    "wal_autocheckpoint",
    "temp_store",
    "foreign_keys",
    "busy_handler",
];

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
        s.apply_to_new_database(&conn).unwrap();
        assert_eq!(s.apply_and_check(&mut conn).unwrap(), s);
    }

    #[test]
    fn refused_setting_is_an_error() {
        let (_dir, mut conn) = file_db();
        // SQLite caps mmap_size at SQLITE_MAX_MMAP_SIZE (2 GiB in the bundled build).
        let s = SqliteSettings {
            mmap_size: 1 << 40,
            ..SqliteSettings::default()
        };
        let err = s.apply_and_check(&mut conn).unwrap_err().to_string();
        assert!(err.contains("mmap_size"), "{err}");
    }

    #[test]
    fn memory_database_refuses_wal() {
        let mut conn = Connection::open_in_memory().unwrap();
        let s = SqliteSettings {
            journal_mode: JournalMode::Wal,
            ..SqliteSettings::default()
        };
        let err = s.apply_and_check(&mut conn).unwrap_err().to_string();
        assert!(err.contains("journal_mode"), "{err}");
    }
}
