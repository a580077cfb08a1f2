//! The `[backup]` section: which backup runs beside the workload (`none`, `litestream`,
//! `vacuum-into`, `backup-api`), how often, and the Litestream settings generated into its
//! configuration. Override keys: `backup` (the method, also a matrix axis) and `backup.<field>`.

use super::duration::DurationValue;
use super::section::Section;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum BackupMethod {
    #[default]
    None,
    /// The `litestream` binary replicating to a file replica.
    Litestream,
    /// `VACUUM INTO` a new file every `interval`.
    VacuumInto,
    /// SQLite's online backup API every `interval`, `step_pages` pages per step.
    BackupApi,
}

impl BackupMethod {
    pub(crate) const NAMES: &'static [&'static str] = &["none", "litestream", "vacuum-into", "backup-api"];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BackupMethod::None => "none",
            BackupMethod::Litestream => "litestream",
            BackupMethod::VacuumInto => "vacuum-into",
            BackupMethod::BackupApi => "backup-api",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackupSettings {
    #[serde(default)]
    pub method: BackupMethod,
    /// vacuum-into and backup-api: time from the end of one backup to the start of the next.
    #[serde(default = "one_second")]
    pub interval: DurationValue,
    /// backup-api: pages copied per step (-1: all in one step).
    #[serde(default = "default_step_pages")]
    pub step_pages: i32,
    /// Where replicas and backup files go (default: beside the run's database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_dir: Option<PathBuf>,
    /// A table whose rowid numbers the committed transactions 1, 2, 3, ... (one row each,
    /// never deleted), with an optional `at_ms` column: the restore must hold exactly
    /// rows 1..k, and the lag is counted in commits and milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_table: Option<String>,
    /// Litestream: how often the replica is written (`sync-interval`).
    #[serde(default = "one_second")]
    pub sync_interval: DurationValue,
    /// Litestream: how often it looks at the WAL (`monitor-interval`).
    #[serde(default = "one_second")]
    pub monitor_interval: DurationValue,
    /// Litestream: time-based PASSIVE checkpoint (`checkpoint-interval`).
    #[serde(default = "one_minute")]
    pub checkpoint_interval: DurationValue,
    /// Litestream: PASSIVE checkpoint once the WAL has this many pages (`min-checkpoint-page-count`).
    #[serde(default = "default_min_checkpoint")]
    pub min_checkpoint_page_count: u64,
    /// Litestream: TRUNCATE checkpoint (blocks writers) past this many pages; 0 = never (`truncate-page-n`).
    #[serde(default = "default_truncate")]
    pub truncate_page_n: u64,
}

impl Default for BackupSettings {
    fn default() -> Self {
        toml::from_str("").expect("defaults deserialize")
    }
}

fn one_second() -> DurationValue {
    DurationValue(Duration::from_secs(1))
}

fn one_minute() -> DurationValue {
    DurationValue(Duration::from_secs(60))
}

fn default_step_pages() -> i32 {
    100
}

fn default_min_checkpoint() -> u64 {
    1000
}

fn default_truncate() -> u64 {
    121_359
}

impl BackupSettings {
    pub(crate) fn is_none(&self) -> bool {
        self.method == BackupMethod::None
    }

    /// Cross-field rules; the message names the key.
    pub(crate) fn validate(&self) -> Result<(), (String, &'static str)> {
        let positive = [
            (self.interval, "interval"),
            (self.sync_interval, "sync_interval"),
            (self.monitor_interval, "monitor_interval"),
            (self.checkpoint_interval, "checkpoint_interval"),
        ];
        for (d, key) in positive {
            if d.0.is_zero() {
                return Err((format!("backup.{key} must be greater than zero"), key));
            }
        }
        if self.step_pages == 0 || self.step_pages < -1 {
            return Err((
                format!(
                    "backup.step_pages must be a page count ≥ 1 or -1 (all), got {}",
                    self.step_pages
                ),
                "step_pages",
            ));
        }
        Ok(())
    }

    /// The Litestream configuration for one database and a file replica.
    pub(crate) fn litestream_yaml(&self, db: &std::path::Path, replica: &std::path::Path) -> String {
        let ms = |d: DurationValue| format!("{}ms", d.0.as_millis());
        format!(
            "dbs:\n  - path: {}\n    monitor-interval: {}\n    checkpoint-interval: {}\n    min-checkpoint-page-count: {}\n    truncate-page-n: {}\n    replicas:\n      - type: file\n        path: {}\n        sync-interval: {}\n",
            yaml_string(&db.display().to_string()),
            ms(self.monitor_interval),
            ms(self.checkpoint_interval),
            self.min_checkpoint_page_count,
            self.truncate_page_n,
            yaml_string(&replica.display().to_string()),
            ms(self.sync_interval),
        )
    }
}

fn yaml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The override keys `backup` (the method) and `backup.<field>`.
pub(crate) const SECTION: Section<BackupSettings> = Section {
    name: "backup",
    methods: BackupMethod::NAMES,
    optional: &["replica_dir", "sequence_table"],
    validate: BackupSettings::validate,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut b = BackupSettings::default();
        assert!(b.is_none());
        SECTION
            .set(&mut b, None, &toml::Value::String("vacuum-into".into()))
            .unwrap();
        assert_eq!(b.method, BackupMethod::VacuumInto);
        assert!(SECTION.set(&mut b, None, &toml::Value::String("rsync".into())).is_err());
        assert!(
            SECTION
                .set(&mut b, Some("interval"), &toml::Value::String("0s".into()))
                .is_err()
        );
        assert!(
            SECTION
                .set(&mut b, Some("step_pages"), &toml::Value::Integer(0))
                .is_err()
        );
        let e = SECTION.set(&mut b, Some("nope"), &toml::Value::Integer(1)).unwrap_err();
        assert!(
            e.starts_with("unknown backup setting `nope`; use backup (the method: none, litestream"),
            "{e}"
        );
        assert!(
            e.contains("|step_pages|") && e.ends_with("|replica_dir|sequence_table>"),
            "{e}"
        );
        let e = SECTION
            .set(&mut b, None, &toml::Value::String("rsync".into()))
            .unwrap_err();
        assert!(
            e.ends_with("; backup methods: none, litestream, vacuum-into, backup-api"),
            "{e}"
        );
        let yaml = b.litestream_yaml(std::path::Path::new("/tmp/a.db"), std::path::Path::new("/tmp/r"));
        assert!(yaml.contains("sync-interval: 1000ms"), "{yaml}");
    }
}
