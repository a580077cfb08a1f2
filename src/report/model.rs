//! The report: the JSON source of truth every other view is rendered from.

use crate::config::sqlite::ReadBack;
use crate::metrics::timeline::TimelineEntry;
use crate::metrics::{ErrorCounts, LatencySummary};
use serde::{Deserialize, Serialize};

pub(crate) mod backup;
pub(crate) mod capacity;
pub(crate) mod durability;

pub(crate) const SCHEMA: &str = "litehammer.report/1";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Report {
    pub schema: String,
    pub tool: Tool,
    pub created_at: String,
    /// completed when every run completed; otherwise the worst run status.
    pub status: RunStatus,
    pub environment: Environment,
    pub scenario: ScenarioInfo,
    pub runs: Vec<RunReport>,
    /// The verdict: a line on how noise is judged, then per group the best configuration
    /// against each other one (`analysis/verdict.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verdict: Vec<String>,
    /// The noise guard's warnings, printed above the verdict (`analysis/noise.rs`); empty
    /// when the machine was quiet enough.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noise_warnings: Vec<String>,
    /// Conclusions computed from the runs (e.g. a sweep's findings).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// `run --durability`: the decision table and recommendation (`analysis/decision.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<durability::Decision>,
    /// `litehammer capacity`: the rate search of every configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<capacity::CapacityReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Tool {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ScenarioInfo {
    pub name: String,
    pub description: String,
    /// A file path, or `built-in:NAME`.
    pub source: String,
    pub sha256: String,
    /// The scenario after defaults and command-line overrides.
    pub resolved: serde_json::Value,
    /// Matrix axes that `--set` pinned to one value, e.g.
    /// `journal_mode=delete (--set; the matrix had wal, delete)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RunStatus {
    Completed,
    Interrupted,
    Failed,
    /// A report's status while its runs are still being written (never a run's status):
    /// a report left by a killed process says so.
    Partial,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RunReport {
    /// e.g. `journal_mode=wal,synchronous=normal`; `default` without a matrix.
    pub id: String,
    /// The round (1-based) with `run --rounds N` (N > 1); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// 1-based place of this run in the execution order (rounds interleave the configurations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
    /// What else the machine did during the measured phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<Noise>,
    /// The matrix values that distinguish this run.
    pub matrix: serde_json::Map<String, serde_json::Value>,
    /// What the scenario's `[[when]]` set in this run, beyond its matrix values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<String>,
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
    /// Length of one timeline interval, seconds.
    #[serde(default)]
    pub timeline_interval_s: f64,
    /// One entry per interval of the measured phase.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Crash reports (`litehammer crash`): what survived crashes of this configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<durability::Durability>,
    /// The backup that ran beside the workload (`[backup]`, `run --backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<backup::BackupReport>,
    /// The read replicas beside the workload (`[replica]`): lag, stale reads, cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<backup::ReplicaReport>,
    /// Runs against PostgreSQL: the server and the settings (`sqlite` is then absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresRun>,
    /// Runs against Turso: its version and settings as read back (`sqlite` is then absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turso: Option<TursoRun>,
    /// Runs against a dqlite cluster: the cluster, the settings it read back, the faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dqlite: Option<DqliteRun>,
}

/// The dqlite cluster of a run (`target = "dqlite"`) and what its faults did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DqliteRun {
    /// `throwaway 3-node cluster on loopback (...)`, or the existing cluster's addresses.
    pub cluster: String,
    /// The run's own database in the cluster (emptied afterwards unless `--keep-db`).
    pub database: String,
    pub leader_timeout_s: f64,
    /// How long litehammer's client retries a statement answered with SQLITE_BUSY (the
    /// scenario's `sqlite.busy_timeout`; dqlite's server has no busy handler).
    pub busy_retry_s: f64,
    /// The throwaway cluster's directory and the process ids of its nodes (restarts
    /// included): all gone when litehammer exits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_pids: Vec<u32>,
    /// The SQLite settings as the workers' connections read them back (dqlite's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::config::sqlite::ReadBack>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultReport>,
}

/// One fault injected while measuring, and what it did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FaultReport {
    /// As written: `kill-leader@5s`.
    pub fault: String,
    /// When it was injected, seconds after measuring began (absent: it was not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injected_at_s: Option<f64>,
    /// The node it hit.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Why it could not be injected, if it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The leader after the fault, and how long after the fault the surviving nodes named
    /// it (leader faults only; absent: none within the search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_leader: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_leader_s: Option<f64>,
    /// The longest stretch from the fault on with no transaction committed, seconds (in
    /// whole timeline intervals).
    pub no_commit_window_s: f64,
    /// Failed requests from the fault to the end of the window plus one interval, by kind.
    pub errors: crate::metrics::ErrorCounts,
    /// Transaction p99 (µs) before the fault, during it (the fault's interval to one after
    /// the window) and after; absent where no transaction completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_before_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_during_us: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_after_us: Option<f64>,
    /// Acknowledged writes missing afterwards (the run's verification; Raft promises 0).
    pub lost: u64,
    /// Rows present that no acknowledged write explains, and failures whose outcome is
    /// unknown (leadership lost, connection broken): the first may be at most the second.
    pub unexpected: u64,
    pub in_doubt: u64,
    /// One line: `kill-leader at 5 s: 1.4 s without commits, 212 requests failed (...), 0 acknowledged writes lost`.
    pub verdict: String,
}

/// The Turso engine and settings of a run (`target = "turso"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TursoRun {
    /// The engine's `turso_version()` (the `turso` crate's version).
    pub version: String,
    /// The run's Turso database (a copy of the set-up SQLite file).
    pub path: String,
    pub journal_mode: String,
    /// `group` (each group's own transaction) or `concurrent` (BEGIN CONCURRENT).
    pub begin: String,
    pub synchronous: String,
    pub busy_timeout_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mvcc_checkpoint_threshold: Option<i64>,
    /// Whether the settings above are what the workers' connections read back (else: what
    /// was asked for, the run having failed before a worker connected).
    pub read_back: bool,
}

/// The PostgreSQL server and settings of a run (`target = "postgres"`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct PostgresRun {
    pub server_version: String,
    /// `throwaway server (...)`, or the URL without its password.
    pub server: String,
    /// The run's own database (dropped afterwards unless `--keep-db`).
    pub database: String,
    pub synchronous_commit: String,
    pub isolation: String,
    pub transport: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GroupReport {
    pub name: String,
    pub workers: u32,
    pub transaction: String,
    pub statements_per_transaction: u32,
    pub ops: Vec<OpReport>,
    pub transactions: TransactionReport,
    /// Present when the group ran open-loop (`rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopReport>,
    pub per_worker: Vec<WorkerReport>,
    pub fairness: Fairness,
    /// Sum over the workers of `busy_handler_calls` / `busy_wait_ms`, when observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_handler_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_wait_ms: Option<f64>,
    /// Present when the group used the application model (issue 15).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppReport>,
}

/// An application-model group: how it was configured and where its requests' time went.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppReport {
    /// Closed-loop clients (= workers unless set; 0 with `rate` arrivals).
    pub clients: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<String>,
    /// App time per execution of each operation that has one (steps' own not included).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub app_time: std::collections::BTreeMap<String, String>,
    /// `persistent` or `per-request`.
    pub connection: String,
    /// `thread` or `process`.
    pub isolation: String,
    /// The OS processes the workers ran in (the driver's own for threads).
    pub pids: Vec<u32>,
    /// Connections opened for requests while measuring (per-request: one per request).
    pub connections_opened: u64,
    /// Time requests waited for a free worker (completed requests).
    pub queue_wait_us: LatencySummary,
    /// Mean time per request in each part, and each part's share at p99.
    pub anatomy: crate::metrics::anatomy::AnatomyReport,
    /// CPU time of the workers while measuring, per completed request, ms.
    pub cpu_ms_per_request: f64,
    /// Transaction blocks inside requests (`{ begin = ... }` ... `{ commit = true }`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockReport>,
    /// Requests finished while measuring, committed or failed.
    #[serde(default)]
    pub requests: u64,
    /// Their mean latency (issue to response), failed ones included, ms.
    #[serde(default)]
    pub mean_latency_ms: f64,
    /// Mean time a client spent out of the system between a response and its next request
    /// while measuring (closed loop): think time, and without a queue the worker's own turn
    /// around its loop, ms.
    #[serde(default)]
    pub mean_think_ms: f64,
    /// `native`, `gvl` or `gil` (issue 29); absent in older reports (native).
    #[serde(default = "native")]
    pub runtime: String,
    /// With an interpreter lock: `holds-lock` or `releases-lock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_wait: Option<String>,
    /// Worker threads per OS process: `threads` for a `process` group, every worker for a
    /// `thread` group (issue 29); absent (0) in older reports.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub threads_per_process: u32,
    /// A `process` group's queue: `shared` by its processes or `per-process` (issue 33);
    /// absent for thread groups and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// `queue = "first-free"`: how many clients each process ended the run with (each stays
    /// with the process that took its first request), most first; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients_per_process: Vec<u32>,
    /// Keep-alive clients served inline (`keep_alive_inline`, Puma's `max_fast_inline`): up
    /// to this many requests of one client in a row; absent when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_inline: Option<u32>,
    /// How long a worker waits for an inline client's next request, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_wait_ms: Option<f64>,
    /// With `keep_alive_inline`: requests served inline, the client kept by its worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline_requests: Option<u64>,
    /// What the workers' processes did with their interpreter locks (and, `native`, how
    /// much app code ran at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<InterpReport>,
    /// The run's accounting checked (`analysis::invariants`); absent in older reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invariants: Vec<Invariant>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn native() -> String {
    "native".to_string()
}

/// The interpreter locks of an application-model group, over its processes (one for a
/// `thread` group, one per worker for a `process` group), while measuring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InterpReport {
    pub processes: u32,
    /// CPU time of app code, all processes, ms.
    pub app_cpu_ms: f64,
    /// The highest over the processes of app-code CPU time / the process's measured wall
    /// time: at most 1 under one interpreter lock (one core), up to the threads with `native`.
    pub max_app_cpu_per_wall: f64,
    /// The most threads of one process that ran app code at once.
    pub max_concurrent_app: u32,
    /// Time threads waited for their process's interpreter lock, per request, ms.
    pub lock_wait_ms_per_request: f64,
    /// Slices of app code (up to 1 ms each), and those run while another thread of the same
    /// process waited in the busy handler for a database lock (0 with `holds-lock`).
    pub app_slices: u64,
    pub app_slices_during_db_wait: u64,
}

/// One invariant of an application-model group's run: what should equal what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invariant {
    /// `littles_law`, `anatomy_adds_up`, `errors_match_rolled_back`.
    pub name: String,
    /// False when the run cannot show it (open loop, too short for a steady state, no
    /// requests); `ok` is then true and `detail` says why.
    pub checked: bool,
    pub ok: bool,
    pub expected: f64,
    pub measured: f64,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockReport {
    pub op: String,
    /// Index of the block's BEGIN step in the script.
    pub begin_step: usize,
    pub committed: u64,
    /// Executions that needed more than one attempt.
    pub retried: u64,
    /// Executions rolled back after all tries.
    pub rolled_back: u64,
    /// Errors per failed attempt.
    pub errors: ErrorCounts,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OpenLoopReport {
    pub target_rate: f64,
    /// Committed transactions per second.
    pub achieved_rate: f64,
    /// `fixed` or `poisson`.
    pub arrival: String,
    /// Committed transactions from their actual start (the transaction latency is from the
    /// intended start, so a stall is charged to every transaction it delayed).
    pub service_us: LatencySummary,
    pub service_histogram_v2: String,
    /// Actual start minus intended start.
    pub schedule_lag_us: LatencySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_limit_ms: Option<f64>,
    /// Committed later than the latency limit after the intended start.
    pub late: u64,
    /// Not executed because already late at their turn (`skip_late`).
    pub skipped: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OpReport {
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
pub(crate) struct TransactionReport {
    pub committed: u64,
    /// Failed after all tries and rolled back.
    pub rolled_back: u64,
    /// Application model: requests that succeeded but whose script rolled back everything it
    /// did (its blocks end in ROLLBACK or `commit = false`). Served, not committed: not in
    /// `committed` nor in `throughput_per_s`.
    #[serde(default, skip_serializing_if = "crate::metrics::is_zero")]
    pub rolled_back_by_script: u64,
    /// Application model: failed attempts that were retried. They are in `errors` by kind
    /// (as every failed attempt is), so `errors` = `rolled_back` + `retried_errors`.
    #[serde(default, skip_serializing_if = "crate::metrics::is_zero")]
    pub retried_errors: u64,
    /// Transactions that needed more than one attempt (committed or not).
    #[serde(default)]
    pub retried: u64,
    /// Attempts in all (committed + rolled back + retries).
    #[serde(default)]
    pub attempts: u64,
    /// BEGIN and COMMIT failures (statement failures are counted on their op).
    pub errors: ErrorCounts,
    pub throughput_per_s: f64,
    /// Of committed transactions, BEGIN to COMMIT, retries included; in open loop from the
    /// intended start.
    pub latency_us: LatencySummary,
    pub histogram_v2: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkerReport {
    pub id: u32,
    pub transactions: u64,
    pub rolled_back: u64,
    pub max_latency_us: f64,
    /// Calls of litehammer's busy handler (`fixed`, `none`); absent for SQLite's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_handler_calls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_wait_ms: Option<f64>,
    /// CPU time of the worker's thread (process) while measuring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Fairness {
    /// Jain's index of per-worker committed transactions: 1 = equal shares, 1/n = one worker did all.
    pub jain_index: f64,
    /// Fewest / most committed transactions of one worker.
    pub min_max_ratio: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct DatabaseReport {
    pub db_bytes: u64,
    pub wal_bytes_max: u64,
    pub page_size: u32,
    /// Set when the database was kept (`--keep-db`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Verification {
    pub ok: bool,
    /// `ok`, or the first problems SQLite's integrity_check reported.
    pub integrity_check: String,
    pub writes_acknowledged: u64,
    pub rows_found: u64,
    pub lost: u64,
    pub tables: Vec<TableCheck>,
    /// Tables written in ways whose row-count effect is not known (triggers, upserts), not counted.
    pub untracked_tables: Vec<String>,
    /// The scenario's own `[[check]]` queries.
    #[serde(default)]
    pub scenario_checks: Vec<ScenarioCheck>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ScenarioCheck {
    pub name: String,
    pub ok: bool,
    #[serde(default)]
    pub kind: CheckKind,
    /// What was measured, e.g. `0 (expected 0)`.
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TableCheck {
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

/// The machine and build a report was measured with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Environment {
    pub sqlite_version: String,
    /// sha256 of SQLite's `PRAGMA compile_options`, one per line (absent in older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlite_options_sha256: Option<String>,
    pub rusqlite_version: String,
    pub litehammer_version: String,
    pub os: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cores: u32,
    pub memory_bytes: u64,
    pub filesystem: String,
    pub db_dir: String,
    /// fsync calls per second measured in the db dir (`litehammer probe`); absent when not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fsync_per_sec: Option<f64>,
    /// The same probe after the last run (drift against `fsync_per_sec` means the disk was
    /// busy with something else); absent with `--no-probe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsync_per_sec_after: Option<f64>,
    /// `release` or `debug`: debug builds measure the harness, not SQLite.
    pub build_profile: String,
}

/// What else the machine did during one run's measured phase (`machine/noise.rs`), from
/// `/proc`; the CPU figures are in cores (1.0 = one core busy for the whole phase).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Noise {
    /// CPU used by processes outside litehammer's own process tree: the machine's busy time
    /// (`/proc/stat`) minus the tree's own (this process, its live descendants, reaped children).
    pub other_cpu_cores: f64,
    /// CPU used by litehammer's own process tree.
    pub own_cpu_cores: f64,
    /// Time the hypervisor ran something else while this machine's CPUs wanted to run.
    pub steal_cores: f64,
    /// CPUs counted by `/proc/stat`.
    pub cpus: u32,
    /// The 1-minute load average at the end of the phase.
    pub load_avg_1m: f64,
    /// Share of the phase in which some task waited for a CPU (`/proc/pressure/cpu`, `some`);
    /// absent where the kernel has no pressure stall information.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pressure: Option<f64>,
    /// Share of the phase in which some task waited for I/O (`/proc/pressure/io`, `some`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_pressure: Option<f64>,
    /// Why the noise guard marked this run noisy (empty: quiet enough); see docs/reports.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub noisy: Vec<String>,
}

/// What kind of `[[check]]` a result comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CheckKind {
    /// A data check: SQL on the database after the run (part of the verification).
    #[default]
    Sql,
    /// A finding about the measurements; decides the exit code only with `--fail-on-check`.
    Metric,
}

impl GroupReport {
    /// Whether the application model shares the work out unevenly on purpose, so that unequal
    /// counts per worker say nothing about SQLite's fairness: clients bound to the first free
    /// process (`queue = "first-free"`), or per-process queues with fewer clients than
    /// processes (a process with none serves nothing).
    pub(crate) fn uneven_by_design(&self) -> bool {
        self.app.as_ref().is_some_and(|a| match a.queue.as_deref() {
            Some("first-free") => true,
            Some("per-process") => {
                let processes = self.workers / a.threads_per_process.max(1);
                a.clients > 0 && a.clients < processes
            }
            _ => false,
        })
    }

    /// Every failure of the group: its transactions' (BEGIN/COMMIT) and its operations'.
    pub(crate) fn all_errors(&self) -> ErrorCounts {
        // An application-model group counts a failed request once under its op and once in
        // `transactions.errors` (issue 29): its ops' errors are all of them.
        if self.app.is_some() {
            let mut errors = ErrorCounts::default();
            self.ops.iter().for_each(|o| errors.merge(&o.errors));
            return errors;
        }
        let mut errors = self.transactions.errors;
        self.ops.iter().for_each(|o| errors.merge(&o.errors));
        errors
    }
}
