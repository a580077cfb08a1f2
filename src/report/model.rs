//! The report: the JSON source of truth every other view is rendered from.

use crate::env::Environment;
use crate::metrics::{ErrorCounts, LatencySummary};
use crate::sqlite_config::ReadBack;
use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "litehammer.report/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: Tool,
    pub created_at: String,
    /// completed when every run completed; otherwise the worst run status.
    pub status: RunStatus,
    pub environment: Environment,
    pub scenario: ScenarioInfo,
    pub runs: Vec<RunReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub description: String,
    /// A file path, or `built-in:NAME`.
    pub source: String,
    pub sha256: String,
    /// The scenario after defaults and command-line overrides.
    pub resolved: serde_json::Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Completed,
    Interrupted,
    Failed,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunReport {
    /// e.g. `journal_mode=wal,synchronous=normal`; `default` without a matrix.
    pub id: String,
    /// 1-based repetition of this configuration with `run --repeat N` (N > 1); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// The matrix values that distinguish this run.
    pub matrix: serde_json::Map<String, serde_json::Value>,
    /// Every setting as SQLite read it back on the workers' connections.
    pub sqlite: Option<ReadBack>,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub warmup_s: f64,
    pub measured_s: f64,
    pub groups: Vec<GroupReport>,
    pub database: DatabaseReport,
    pub verification: Option<Verification>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupReport {
    pub name: String,
    pub workers: u32,
    pub transaction: String,
    pub statements_per_transaction: u32,
    pub ops: Vec<OpReport>,
    pub transactions: TransactionReport,
    pub per_worker: Vec<WorkerReport>,
    pub fairness: Fairness,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OpReport {
    pub name: String,
    /// Successful executions in the measured phase.
    pub count: u64,
    pub errors: ErrorCounts,
    pub throughput_per_s: f64,
    /// Of successful executions.
    pub latency_us: LatencySummary,
    /// Base64 of the deflate-compressed HdrHistogram V2 encoding, values in nanoseconds.
    pub histogram_v2: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TransactionReport {
    pub committed: u64,
    pub rolled_back: u64,
    /// BEGIN and COMMIT failures (statement failures are counted on their op).
    pub errors: ErrorCounts,
    pub throughput_per_s: f64,
    /// Of committed transactions, BEGIN to COMMIT.
    pub latency_us: LatencySummary,
    pub histogram_v2: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerReport {
    pub id: u32,
    pub transactions: u64,
    pub rolled_back: u64,
    pub max_latency_us: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fairness {
    /// Jain's index of per-worker committed transactions: 1 = equal shares, 1/n = one worker did all.
    pub jain_index: f64,
    /// Fewest / most committed transactions of one worker.
    pub min_max_ratio: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DatabaseReport {
    pub db_bytes: u64,
    pub wal_bytes_max: u64,
    pub page_size: u32,
    /// Set when the database was kept (`--keep-db`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verification {
    pub ok: bool,
    /// `ok`, or the first problems SQLite's integrity_check reported.
    pub integrity_check: String,
    pub writes_acknowledged: u64,
    pub rows_found: u64,
    pub lost: u64,
    pub tables: Vec<TableCheck>,
    /// Tables written in ways whose row-count effect is not known (triggers, upserts), not counted.
    pub untracked_tables: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableCheck {
    pub table: String,
    pub rows_before: u64,
    pub inserts_acknowledged: u64,
    pub deletes_acknowledged: u64,
    pub rows_expected: u64,
    pub rows_found: u64,
    /// Acknowledged rows that are missing.
    pub lost: u64,
    /// Rows present that no acknowledged write explains.
    pub unexpected: u64,
}

impl Report {
    pub fn overall_status(runs: &[RunReport]) -> RunStatus {
        if runs.iter().any(|r| r.status == RunStatus::Failed) {
            RunStatus::Failed
        } else if runs.iter().any(|r| r.status == RunStatus::Interrupted) {
            RunStatus::Interrupted
        } else {
            RunStatus::Completed
        }
    }
}
