//! Which database a run measures (`target`), and the `[postgres]` settings: the analogues of
//! SQLite's durability and locking settings, each usable as a matrix axis.

use serde::{Deserialize, Serialize};

/// The database engine a run measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TargetKind {
    #[default]
    Sqlite,
    Postgres,
    /// A replicated SQLite cluster (Raft): docs/replicated.md.
    Dqlite,
    /// Turso (the Rust rewrite of SQLite, crate `turso`), in process: docs/mvcc.md.
    Turso,
}

impl TargetKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TargetKind::Sqlite => "sqlite",
            TargetKind::Postgres => "postgres",
            TargetKind::Dqlite => "dqlite",
            TargetKind::Turso => "turso",
        }
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        *self == TargetKind::Sqlite
    }
}

/// `synchronous_commit`: whether COMMIT waits for the WAL flush.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SynchronousCommit {
    #[default]
    On,
    Off,
}

/// The transaction isolation level of every transaction (`default_transaction_isolation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum IsolationLevel {
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl IsolationLevel {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            IsolationLevel::ReadCommitted => "read committed",
            IsolationLevel::RepeatableRead => "repeatable read",
            IsolationLevel::Serializable => "serializable",
        }
    }
}

/// How the workers reach the server: its unix socket, or TCP on the loopback interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    #[default]
    Unix,
    Tcp,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostgresSettings {
    #[serde(default)]
    pub synchronous_commit: SynchronousCommit,
    #[serde(default)]
    pub isolation: IsolationLevel,
    /// Only for the throwaway server (a URL names its own host); `--pg-tcp` sets `tcp`.
    #[serde(default)]
    pub transport: Transport,
}

impl PostgresSettings {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The session settings every connection sends first.
    pub(crate) fn session_sql(&self) -> String {
        format!(
            "SET synchronous_commit = {}; SET default_transaction_isolation = '{}'",
            match self.synchronous_commit {
                SynchronousCommit::On => "on",
                SynchronousCommit::Off => "off",
            },
            self.isolation.sql()
        )
    }
}

/// The `[postgres]` keys overrides and matrix axes may set (as `postgres.KEY`).
pub(crate) const SETTING_NAMES: &[&str] = &["synchronous_commit", "isolation", "transport"];

/// Sets one `[postgres]` key; the error is a plain message (the caller says where).
pub(crate) fn set(settings: &mut PostgresSettings, key: &str, value: &toml::Value) -> Result<(), String> {
    let mut table = toml::Table::try_from(&*settings).map_err(|e| e.to_string())?;
    if !SETTING_NAMES.contains(&key) {
        return Err(format!(
            "unknown setting `postgres.{key}`; use one of postgres.{}",
            SETTING_NAMES.join(", postgres.")
        ));
    }
    table.insert(key.to_string(), value.clone());
    *settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("postgres.{key}: {}", e.message().trim_end()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_bad_values_are_named() {
        let mut s = PostgresSettings::default();
        set(&mut s, "isolation", &toml::Value::String("serializable".into())).unwrap();
        set(&mut s, "synchronous_commit", &toml::Value::String("off".into())).unwrap();
        assert_eq!(s.isolation, IsolationLevel::Serializable);
        assert!(s.session_sql().contains("synchronous_commit = off"));
        let err = set(&mut s, "isolation", &toml::Value::String("snapshot".into())).unwrap_err();
        assert!(err.contains("postgres.isolation"), "{err}");
        assert!(set(&mut s, "fsync", &toml::Value::Boolean(false)).is_err());
    }
}
