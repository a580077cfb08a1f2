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

/// The read replicas beside the workload (`[replica]`): how long a commit took to become
/// visible on the replica, stale reads, and what the readers cost.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct ReplicaReport {
    /// `litestream-vfs`.
    pub method: String,
    /// The `[replica]` settings as run.
    pub settings: serde_json::Value,
    /// The extension loaded (`litestream-vfs.so`).
    pub extension: String,
    /// The `litestream-vfs` package's version (from its `.dist-info`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vfs_version: Option<String>,
    /// `litestream version` of the replicating process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub litestream_version: Option<String>,
    pub readers: u32,
    /// The `replica = true` groups, whose workers read the replica instead of the primary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The table whose rowid numbers the commits (its `at_ms`: the commit's time).
    pub sequence_table: String,
    /// Sequence reads on the replica, all readers, from ready to stop (warm-up included).
    pub reads: u64,
    /// Reads that saw an older newest commit than the primary held just before.
    pub stale_reads: u64,
    /// `replica.query` reads.
    #[serde(default)]
    pub query_reads: u64,
    /// Times a reader saw the replica's newest commit advance.
    pub advances: u64,
    /// Commits a reader saw become visible (one lag value each; Σ over the readers).
    pub commits_seen: u64,
    /// Commits whose time was after the reader's clock (recorded as 0).
    #[serde(default)]
    pub clamped: u64,
    /// Per commit that became visible: the time a reader first saw it minus its commit time.
    pub lag: LagDistribution,
    /// `lag` as an HDR histogram (µs; base64 of the compressed V2 encoding).
    pub lag_histogram: String,
    /// Per advance: the lag of the oldest commit that became visible with it (its worst).
    pub advance_lag: LagDistribution,
    /// Per advance: the lag of the newest commit that became visible with it.
    pub newest_age: LagDistribution,
    /// The newest commit a reader saw, and the primary's newest when the workload stopped.
    pub last_seen: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_at_stop: Option<i64>,
    /// CPU time of the readers' process (the extension's page fetches and polling), seconds.
    pub cpu_s: f64,
    /// The readers' process (gone when the run ends).
    #[serde(default)]
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A distribution of lags in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LagDistribution {
    pub count: u64,
    pub min_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LagDistribution {
    /// From a histogram of microseconds.
    pub(crate) fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            min_ms: ms(h.min()),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}
