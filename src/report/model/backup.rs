//! A run's backup (`[backup]`, `run --backup`): what the backup cost, how far the replica
//! lagged, and whether its restore was verified.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct BackupReport {
    /// `litestream`, `vacuum-into` or `backup-api`.
    pub method: String,
    /// The `[backup]` settings as run (interval, step_pages, Litestream settings).
    pub settings: serde_json::Value,
    /// Litestream: the binary, its version and the generated configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub litestream: Option<LitestreamInfo>,
    /// The workload was SIGKILLed mid-run (`run --kill`).
    #[serde(default)]
    pub killed: bool,
    /// vacuum-into, backup-api: backups completed, and their durations.
    #[serde(default)]
    pub backups: u64,
    #[serde(default)]
    pub backup_ms_mean: f64,
    #[serde(default)]
    pub backup_ms_max: f64,
    /// The backup's own CPU time (the litestream process, or the backup thread), seconds.
    pub cpu_s: f64,
    /// Bytes the backup read and wrote on storage (`/proc/.../io` read_bytes, write_bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bytes: Option<u64>,
    /// WAL restarts in the measured phase (from the timeline).
    #[serde(default)]
    pub checkpoint_restarts: u32,
    /// Commits acknowledged to the application when it stopped.
    pub acknowledged_commits: u64,
    /// What the replica lacked when the application stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_at_stop: Option<Lag>,
    /// What it lacked after Litestream's final sync (its shutdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_after_final_sync: Option<Lag>,
    /// Seconds to restore the replica into a new file (litestream restore, or a copy of the last backup).
    pub restore_s: f64,
    pub restore: RestoreCheck,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct LitestreamInfo {
    pub binary: String,
    pub version: String,
    pub config: String,
    /// The replicating process (gone when the run ends).
    pub pid: u32,
}

/// Acknowledged commits (or, without a sequence table, tracked rows) missing from the replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Lag {
    /// Acknowledged commits the replica holds.
    pub commits_restored: u64,
    pub commits_missing: u64,
    /// Time between the last acknowledged commit and the newest commit in the replica, ms
    /// (with a sequence table that has `at_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RestoreCheck {
    /// Nothing damaged, and exactly a prefix of the acknowledged transactions.
    pub ok: bool,
    pub integrity_check: String,
    /// How the restore was checked: `sequence`, `ledger` (exact) or `row counts`.
    pub method: String,
    pub detail: String,
}
