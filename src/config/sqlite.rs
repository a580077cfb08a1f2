//! The `[sqlite]` connection settings as data, with their validation. Applying them on a
//! connection and reading them back is `targets/sqlite/settings.rs`.

use crate::config::busy::BusyHandler;
use crate::config::duration::DurationValue;
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
    pub(crate) fn from_level(level: i64) -> Option<Self> {
        [Self::Off, Self::Normal, Self::Full, Self::Extra]
            .get(usize::try_from(level).ok()?)
            .copied()
    }
}

impl TempStore {
    pub(crate) fn from_level(level: i64) -> Option<Self> {
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
