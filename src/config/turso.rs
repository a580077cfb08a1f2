//! The `[turso]` settings of `target = "turso"` runs (Turso, the Rust rewrite of SQLite, in
//! process): its journal mode (`mvcc` for multi-version concurrency control), how the
//! groups' transactions begin, and the pragmas it supports. Each is a matrix axis as
//! `turso.KEY`. Applying them is `targets/turso/`.

use crate::config::duration::DurationValue;
use crate::config::sqlite::Synchronous;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Turso's journal modes (it refuses SQLite's rollback journals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TursoJournal {
    /// SQLite's WAL: one writer at a time.
    Wal,
    /// Multi-version concurrency control: `BEGIN CONCURRENT` transactions write at the same
    /// time and conflict only on the same rows, at commit.
    Mvcc,
}

impl TursoJournal {
    #[cfg_attr(not(feature = "turso"), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TursoJournal::Wal => "wal",
            TursoJournal::Mvcc => "mvcc",
        }
    }
}

/// How the groups' transactions begin on Turso.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TursoBegin {
    /// As each group's `transaction` says.
    #[default]
    Group,
    /// Every group with transactions begins them with `BEGIN CONCURRENT` (MVCC): the
    /// pairing of a matrix that runs the same groups with `BEGIN IMMEDIATE` on SQLite.
    Concurrent,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TursoSettings {
    pub journal_mode: TursoJournal,
    pub begin: TursoBegin,
    pub synchronous: Synchronous,
    pub busy_timeout: DurationValue,
    /// `PRAGMA mvcc_checkpoint_threshold` (MVCC: the log size, in bytes, that triggers a
    /// checkpoint into the database file; -1 never); `None`: Turso's default, read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mvcc_checkpoint_threshold: Option<i64>,
}

impl Default for TursoSettings {
    fn default() -> Self {
        Self {
            journal_mode: TursoJournal::Mvcc,
            begin: TursoBegin::Group,
            synchronous: Synchronous::Full,
            busy_timeout: DurationValue(Duration::from_secs(5)),
            mvcc_checkpoint_threshold: None,
        }
    }
}

impl TursoSettings {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Cross-field rules; the error names its key (without the `turso.` prefix).
    pub(crate) fn validate(&self) -> Result<(), (String, &'static str)> {
        super::limits::wait(self.busy_timeout.0).map_err(|e| (format!("busy_timeout {e}"), "busy_timeout"))?;
        if self.synchronous == Synchronous::Extra {
            return Err((
                "Turso supports synchronous = off, normal or full, not extra".into(),
                "synchronous",
            ));
        }
        if self.begin == TursoBegin::Concurrent && self.journal_mode != TursoJournal::Mvcc {
            return Err((
                "begin = \"concurrent\" (BEGIN CONCURRENT) needs journal_mode = \"mvcc\"".into(),
                "begin",
            ));
        }
        if self.mvcc_checkpoint_threshold.is_some_and(|t| t < -1) {
            return Err((
                "mvcc_checkpoint_threshold must be -1 (never), 0 or a size in bytes".into(),
                "mvcc_checkpoint_threshold",
            ));
        }
        Ok(())
    }
}

/// The `[turso]` keys overrides and matrix axes may set (as `turso.KEY`).
pub(crate) const SETTING_NAMES: &[&str] = &[
    "journal_mode",
    "begin",
    "synchronous",
    "busy_timeout",
    "mvcc_checkpoint_threshold",
];

/// Sets one `[turso]` key; the error is a plain message (the caller says where).
pub(crate) fn set(settings: &mut TursoSettings, key: &str, value: &toml::Value) -> Result<(), String> {
    if !SETTING_NAMES.contains(&key) {
        return Err(format!(
            "unknown setting `turso.{key}`; use one of turso.{}",
            SETTING_NAMES.join(", turso.")
        ));
    }
    let mut table = toml::Table::try_from(&*settings).map_err(|e| e.to_string())?;
    table.insert(key.to_string(), value.clone());
    *settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("turso.{key}: {}", e.message().trim_end()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_values_are_named() {
        let mut s = TursoSettings::default();
        set(&mut s, "journal_mode", &toml::Value::String("wal".into())).unwrap();
        assert_eq!(s.journal_mode, TursoJournal::Wal);
        set(&mut s, "begin", &toml::Value::String("concurrent".into())).unwrap();
        assert_eq!(s.validate().unwrap_err().1, "begin");
        let err = set(&mut s, "journal_mode", &toml::Value::String("delete".into())).unwrap_err();
        assert!(err.contains("turso.journal_mode"), "{err}");
        assert!(
            set(&mut s, "mmap_size", &toml::Value::Integer(0))
                .unwrap_err()
                .contains("unknown")
        );
        set(&mut s, "mvcc_checkpoint_threshold", &toml::Value::Integer(-1)).unwrap();
        assert_eq!(s.mvcc_checkpoint_threshold, Some(-1));
    }
}
