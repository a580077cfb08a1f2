//! The `[replica]` section: read replicas beside the workload. `litestream-vfs` runs reader
//! threads (in a child process) that open the Litestream file replica of `[backup] method =
//! "litestream"` through the `litestream-vfs` SQLite extension while the workers commit on
//! the primary, and measure how long a commit takes to become visible there. Override keys:
//! `replica` (the method, also a matrix axis) and `replica.<field>`.

use super::duration::DurationValue;
use super::section::Section;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ReplicaMethod {
    #[default]
    None,
    /// Readers open the Litestream replica through the `litestream-vfs` extension.
    LitestreamVfs,
}

impl ReplicaMethod {
    pub(crate) const NAMES: &'static [&'static str] = &["none", "litestream-vfs"];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReplicaMethod::None => "none",
            ReplicaMethod::LitestreamVfs => "litestream-vfs",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplicaSettings {
    #[serde(default)]
    pub method: ReplicaMethod,
    /// Reader threads on the replica (each its own connection through the VFS).
    #[serde(default = "one")]
    pub readers: u32,
    /// The table whose rowid numbers the writers' commits (one row each, never deleted),
    /// with an `at_ms` column (the commit's wall-clock time in ms): the lag is measured
    /// from it. Default: `[backup] sequence_table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_table: Option<String>,
    /// How often each reader reads the replica (its newest sequence number, then `query`).
    #[serde(default = "ten_ms")]
    pub read_interval: DurationValue,
    /// The VFS's `poll_interval`: how often it looks for new LTX files in the replica.
    #[serde(default = "one_second")]
    pub poll_interval: DurationValue,
    /// A read each reader runs after the sequence read (a query of the app's; no parameters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The extension (`litestream-vfs.so`); default: the one the Python package
    /// `litestream-vfs` ships (`litestream_vfs.loadable_path()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<PathBuf>,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

fn one() -> u32 {
    1
}

fn ten_ms() -> DurationValue {
    DurationValue(Duration::from_millis(10))
}

fn one_second() -> DurationValue {
    DurationValue(Duration::from_secs(1))
}

/// At most this many replica readers (each a connection and a thread).
pub(crate) const MAX_READERS: u32 = 64;

impl ReplicaSettings {
    pub(crate) fn is_none(&self) -> bool {
        self.method == ReplicaMethod::None
    }

    /// Rules of the section alone; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), (String, &'static str)> {
        if self.readers == 0 || self.readers > MAX_READERS {
            return Err((
                format!("replica.readers must be 1..={MAX_READERS}, got {}", self.readers),
                "readers",
            ));
        }
        for (d, key) in [
            (self.read_interval, "read_interval"),
            (self.poll_interval, "poll_interval"),
        ] {
            if d.0.is_zero() {
                return Err((format!("replica.{key} must be greater than zero"), key));
            }
        }
        if let Some(t) = &self.sequence_table
            && !is_identifier(t)
        {
            return Err((
                format!("replica.sequence_table must be a table name (letters, digits, _), got `{t}`"),
                "sequence_table",
            ));
        }
        Ok(())
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The override keys `replica` (the method) and `replica.<field>`.
pub(crate) const SECTION: Section<ReplicaSettings> = Section {
    name: "replica",
    methods: ReplicaMethod::NAMES,
    optional: &["sequence_table", "query", "extension"],
    validate: ReplicaSettings::validate,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut r = ReplicaSettings::default();
        assert!(r.is_none());
        assert_eq!(r.readers, 1);
        assert_eq!(r.poll_interval.0, Duration::from_secs(1));
        SECTION
            .set(&mut r, None, &toml::Value::String("litestream-vfs".into()))
            .unwrap();
        assert_eq!(r.method, ReplicaMethod::LitestreamVfs);
        let e = SECTION
            .set(&mut r, None, &toml::Value::String("rsync".into()))
            .unwrap_err();
        assert!(e.contains("replica methods: none, litestream-vfs"), "{e}");
        assert!(SECTION.set(&mut r, Some("readers"), &toml::Value::Integer(0)).is_err());
        assert!(
            SECTION
                .set(&mut r, Some("poll_interval"), &toml::Value::String("0s".into()))
                .is_err()
        );
        assert!(
            SECTION
                .set(&mut r, Some("sequence_table"), &toml::Value::String("a; drop".into()))
                .is_err()
        );
        SECTION
            .set(&mut r, Some("sequence_table"), &toml::Value::String("events".into()))
            .unwrap();
        assert_eq!(r.sequence_table.as_deref(), Some("events"));
        // Every field named once, the optional ones whether set or not.
        let e = SECTION.set(&mut r, Some("nope"), &toml::Value::Integer(1)).unwrap_err();
        assert!(
            e.starts_with("unknown replica setting `nope`; use replica (the method: none, litestream-vfs)"),
            "{e}"
        );
        for field in ["readers", "poll_interval", "sequence_table", "query", "extension"] {
            assert_eq!(
                e.matches(&format!("{field}|")).count() + e.matches(&format!("{field}>")).count(),
                1,
                "{field}: {e}"
            );
        }
    }
}
