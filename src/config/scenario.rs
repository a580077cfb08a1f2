//! The scenario model: what a TOML scenario file may say, with defaults and spans.

use super::app::{BlockBegin, BusyWait, ConnectionMode, Isolation, Runtime, TimeDist};
use super::check::MetricCheck;
use super::duration::DurationValue;
use crate::config::generator::{GeneratorSpec, Param};
use crate::config::postgres::{PostgresSettings, TargetKind};
use crate::config::sqlite::SqliteSettings;
use crate::error::InputError;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::num::{NonZeroU32, NonZeroU64};
use std::path::Path;
use toml::Spanned;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How long the measured part of each run lasts...
    pub duration: Option<Spanned<DurationValue>>,
    /// ...or how many transactions it executes in total, shared out evenly among the workers.
    pub operations: Option<Spanned<NonZeroU64>>,
    #[serde(default)]
    pub warmup: DurationValue,
    /// Length of one timeline interval in the report.
    #[serde(default = "default_interval")]
    pub timeline_interval: DurationValue,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Rounds `run` makes unless `--rounds` says otherwise (each runs every configuration once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<std::num::NonZeroU32>,
    /// The database measured: `sqlite` (default), `postgres` (see docs/postgres.md) or `dqlite`
    /// (docs/replicated.md).
    #[serde(default, skip_serializing_if = "TargetKind::is_sqlite")]
    pub target: TargetKind,
    #[serde(default)]
    pub sqlite: SqliteSettings,
    #[serde(default, skip_serializing_if = "PostgresSettings::is_default")]
    pub postgres: PostgresSettings,
    #[serde(default, skip_serializing_if = "crate::config::dqlite::DqliteSettings::is_default")]
    pub dqlite: crate::config::dqlite::DqliteSettings,
    /// The settings of `target = "turso"` runs (docs/mvcc.md).
    #[serde(default, skip_serializing_if = "crate::config::turso::TursoSettings::is_default")]
    pub turso: crate::config::turso::TursoSettings,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub matrix: IndexMap<String, Spanned<Vec<toml::Value>>>,
    /// Settings for the matrix cells that match (`[[when]]`, docs/scenario-format.md#when).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<When>,
    #[serde(default)]
    pub setup: Setup,
    #[serde(default)]
    pub group: Vec<Group>,
    /// SQL checks run on the database after each run (findings, like the verification).
    #[serde(default)]
    pub check: Vec<Check>,
    pub sweep: Option<Sweep>,
    #[serde(default, skip_serializing_if = "crate::config::backup::BackupSettings::is_none")]
    pub backup: crate::config::backup::BackupSettings,
    #[serde(default, skip_serializing_if = "crate::config::replica::ReplicaSettings::is_none")]
    pub replica: crate::config::replica::ReplicaSettings,
}

/// `[[when]]`: override keys set in every matrix cell whose axes hold the `match` values
/// (GitHub Actions' `matrix.include`, with the matching keys and the set keys apart).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct When {
    #[serde(rename = "match")]
    pub matches: Spanned<IndexMap<String, toml::Value>>,
    pub set: Spanned<IndexMap<String, toml::Value>>,
    /// Why (import writes where the values come from); shown beside the runs it changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub why: String,
}

fn default_seed() -> u64 {
    42
}

fn default_interval() -> DurationValue {
    DurationValue(std::time::Duration::from_secs(1))
}

/// A query evaluated after each run; its single integer result must equal `expect`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Check {
    pub name: Spanned<String>,
    /// A data check: the query's single integer result must equal `expect`.
    pub sql: Option<Spanned<String>>,
    /// The query for PostgreSQL, where the translation of `sql` does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Spanned<String>>,
    #[serde(default)]
    pub expect: i64,
    /// A metric check on the run's results, e.g. "group.writers.p99 < 100ms".
    pub expr: Option<Spanned<MetricCheck>>,
}

/// A worker-count (or other) sweep: the terminal and report end with one finding per value
/// of `by`: the largest `axis` value with no errors and p99 under `p99_limit` in `group`,
/// and how the group's throughput changed from the first to the last step.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sweep {
    pub axis: String,
    pub group: String,
    pub by: Option<String>,
    #[serde(default = "default_p99_limit")]
    pub p99_limit: DurationValue,
}

fn default_p99_limit() -> DurationValue {
    DurationValue(std::time::Duration::from_millis(100))
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Setup {
    pub sql: Option<Spanned<String>>,
    /// The set-up SQL for PostgreSQL, where the translation of `sql` does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Spanned<String>>,
    #[serde(default)]
    pub populate: Vec<Populate>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Populate {
    pub table: Spanned<String>,
    pub rows: u64,
    pub values: Spanned<Vec<GeneratorSpec>>,
    /// Columns the values go to; by default the table's columns, less an
    /// `INTEGER PRIMARY KEY` when one value fewer is given.
    pub columns: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TxMode {
    /// Autocommit: each statement is its own transaction (one statement per transaction).
    None,
    #[default]
    Deferred,
    Immediate,
    Exclusive,
    /// Turso's `BEGIN CONCURRENT` (MVCC): writers do not wait for each other; two that
    /// changed the same row conflict at commit, and the later one is retried.
    Concurrent,
}

impl TxMode {
    pub(crate) fn begin_sql(self) -> Option<&'static str> {
        match self {
            TxMode::None => None,
            TxMode::Deferred => Some("BEGIN DEFERRED"),
            TxMode::Immediate => Some("BEGIN IMMEDIATE"),
            TxMode::Exclusive => Some("BEGIN EXCLUSIVE"),
            TxMode::Concurrent => Some("BEGIN CONCURRENT"),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TxMode::None => "none",
            TxMode::Deferred => "deferred",
            TxMode::Immediate => "immediate",
            TxMode::Exclusive => "exclusive",
            TxMode::Concurrent => "concurrent",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    pub name: Spanned<String>,
    pub workers: NonZeroU32,
    #[serde(default)]
    pub transaction: TxMode,
    #[serde(default = "one")]
    pub statements_per_transaction: NonZeroU32,
    /// Retry transactions that fail with SQLITE_BUSY / BUSY_SNAPSHOT / LOCKED.
    pub retry: Option<Retry>,
    /// Open loop: transactions per second for the whole group, split evenly among its workers.
    pub rate: Option<f64>,
    #[serde(default)]
    pub arrival: Arrival,
    /// Transactions slower than this (from their intended start) are counted as late.
    pub latency_limit: Option<DurationValue>,
    /// With `rate` and `latency_limit`: skip transactions already late when their turn comes.
    #[serde(default)]
    pub skip_late: bool,
    /// Application model (issue 15): CPU the app burns per request, on every operation
    /// that sets none itself (split over the gaps around its steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_time: Option<TimeDist>,
    /// Multiplies every app time of the group's operations and steps (an imported app's CPU
    /// per request measured in another configuration, set by `[[when]]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_time_scale: Option<f64>,
    /// Each client sleeps this long between its requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_time: Option<TimeDist>,
    /// Closed-loop clients queueing for the `workers` server workers (default: = workers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<NonZeroU32>,
    #[serde(default, skip_serializing_if = "is_default")]
    pub connection: ConnectionMode,
    #[serde(default, skip_serializing_if = "is_default")]
    pub isolation: Isolation,
    /// With `isolation = "process"`: threads per worker process (`workers` counts them all,
    /// so `workers = 10, threads = 5` is Puma's `workers 2, threads 5`); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<NonZeroU32>,
    /// With `isolation = "process"`: one queue for all the processes (`shared`) or one each,
    /// with an equal share of the clients (`per-process`, the default) or with the clients
    /// each process took first (`first-free`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<super::app::QueueKind>,
    /// Keep-alive connections served inline: after a response, a worker waits (up to
    /// `keep_alive_wait`) for the same client's next request and serves it at once; after this
    /// many in a row it gives the client back to the queue if others are waiting (Puma's
    /// `max_fast_inline`, 10). Unset: every client goes back to the queue after each request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_inline: Option<NonZeroU32>,
    /// How long a worker waits for an inline client's next request (Puma's
    /// `FAST_TRACK_KA_TIMEOUT`, 200 ms); a client thinking longer goes back to the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_wait: Option<DurationValue>,
    /// `native`, or one interpreter lock per worker process (`gvl`, `gil`; issue 29).
    #[serde(default, skip_serializing_if = "is_default")]
    pub runtime: Runtime,
    /// What a busy-handler wait does with the interpreter lock (default: the runtime's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_wait: Option<BusyWait>,
    #[serde(default)]
    pub op: Vec<Op>,
    #[serde(default)]
    pub script: Vec<Script>,
    /// With a `[replica]`: the group's connections open the replica (read-only, through the
    /// litestream-vfs extension) instead of the primary. Without one, the primary.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replica: bool,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}

fn weight_one() -> u32 {
    1
}

/// Open-loop arrivals: evenly spaced, or a Poisson process with the same mean rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Arrival {
    #[default]
    Fixed,
    Poisson,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Retry {
    /// Attempts in all, the first included (pgbench's --max-tries).
    pub max_tries: NonZeroU32,
    /// Sleep before the first retry; doubles per retry up to `backoff_max`, with jitter.
    #[serde(default)]
    pub backoff: DurationValue,
    pub backoff_max: Option<DurationValue>,
}

/// A one-statement operation: the one-step case of a script.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Op {
    pub name: Spanned<String>,
    #[serde(default = "weight_one")]
    pub weight: u32,
    pub sql: Spanned<String>,
    /// The statement for PostgreSQL, where the translation of `sql` does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Spanned<String>>,
    #[serde(default)]
    pub params: Option<Spanned<Vec<Param>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_time: Option<TimeDist>,
}

/// Ordered statements executed together inside one transaction; a step may use a column
/// of an earlier step's first row as a parameter (`"$0.id"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Script {
    pub name: Spanned<String>,
    #[serde(default = "weight_one")]
    pub weight: u32,
    /// CPU the app burns per execution, split evenly over the gaps before, between and
    /// after the steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_time: Option<TimeDist>,
    pub steps: Vec<Step>,
}

/// A statement, or a transaction-block marker: `{ begin = "immediate" }`, `{ commit = true }`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Step {
    #[serde(default = "no_sql", skip_serializing_if = "is_no_sql")]
    pub sql: Spanned<String>,
    /// The statement for PostgreSQL, where the translation of `sql` does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<Spanned<String>>,
    #[serde(default)]
    pub params: Option<Spanned<Vec<Param>>>,
    /// CPU the app burns just before this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_time: Option<TimeDist>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub begin: Option<BlockBegin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<bool>,
}

fn no_sql() -> Spanned<String> {
    Spanned::new(0..0, String::new())
}

fn is_no_sql(s: &Spanned<String>) -> bool {
    s.get_ref().is_empty()
}

impl Step {
    pub(crate) fn params(&self) -> &[Param] {
        self.params.as_ref().map_or(&[], |p| p.get_ref())
    }
}

impl Group {
    /// Ops and scripts as one list of scripts (an op is a one-step script); block markers
    /// (`begin`, `commit`) become their SQL.
    pub(crate) fn scripts(&self) -> Vec<Script> {
        let ops = self.op.iter().map(|op| Script {
            name: op.name.clone(),
            weight: op.weight,
            app_time: op.app_time,
            steps: vec![Step {
                sql: op.sql.clone(),
                postgres: op.postgres.clone(),
                params: op.params.clone(),
                app_time: None,
                begin: None,
                commit: None,
            }],
        });
        let mut scripts: Vec<Script> = ops.chain(self.script.iter().cloned()).collect();
        for step in scripts.iter_mut().flat_map(|s| s.steps.iter_mut()) {
            if !step.sql.get_ref().is_empty() {
                continue;
            }
            let sql = match (step.begin, step.commit) {
                (Some(b), _) => b.sql(),
                (None, Some(true)) => "COMMIT",
                (None, Some(false)) => "ROLLBACK",
                (None, None) => continue,
            };
            step.sql = Spanned::new(0..0, sql.to_string());
        }
        scripts
    }

    /// Whether the group uses the application model (app or think time, a queue, per-request
    /// connections, process workers, transaction blocks): such groups run the request loop of
    /// `engine::loops::app`; all others the plain hot loop, which pays nothing for the model.
    pub fn uses_app_model(&self) -> bool {
        let timed = |t: &Option<TimeDist>| t.is_some();
        timed(&self.app_time)
            || timed(&self.think_time)
            || self.clients.is_some()
            || self.keep_alive_inline.is_some()
            || self.connection != ConnectionMode::Persistent
            || self.isolation != Isolation::Thread
            || self.runtime != Runtime::Native
            || self.op.iter().any(|o| timed(&o.app_time))
            || self.script.iter().any(|s| {
                timed(&s.app_time)
                    || s.steps.iter().any(|st| {
                        timed(&st.app_time)
                            || st.begin.is_some()
                            || st.commit.is_some()
                            || super::app::TxControl::of(st.sql.get_ref()) != super::app::TxControl::None
                    })
            })
    }
}

impl Scenario {
    pub(crate) fn total_workers(&self) -> u64 {
        self.group.iter().map(|g| g.workers.get() as u64).sum()
    }
}

/// The text a scenario came from, kept for error positions and the report.
#[derive(Clone, Debug)]
pub(crate) struct Source {
    /// A path, or `built-in:NAME`.
    pub origin: String,
    pub text: String,
}

impl Source {
    /// A built-in scenario name, or a path to a TOML file.
    pub(crate) fn open(spec: &str) -> Result<Self, InputError> {
        if let Some(text) = super::builtin::text(spec) {
            return Ok(Self {
                origin: format!("built-in:{spec}"),
                text: text.to_string(),
            });
        }
        let path = Path::new(spec);
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if path.extension().is_none() {
                format!("; built-in scenarios: {}", super::builtin::names().join(", "))
            } else {
                String::new()
            };
            InputError::new(spec, format!("cannot read scenario file: {e}{hint}"))
        })?;
        Ok(Self {
            origin: spec.to_string(),
            text,
        })
    }

    pub(crate) fn sha256(&self) -> String {
        Sha256::digest(self.text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> InputError {
        InputError::new(self.origin.clone(), message)
    }

    pub(crate) fn error_at(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> InputError {
        self.error(message).at(&self.text, span)
    }

    /// Parses the text into a scenario, mapping TOML errors to file:line:col and key.
    pub(crate) fn parse(&self) -> Result<Scenario, InputError> {
        toml::from_str::<Scenario>(&self.text).map_err(|e| {
            let mut err = self.error(e.message().trim_end().to_string());
            if let Some(key) = toml_error_key(&e) {
                err = err.with_key(key);
            }
            match e.span() {
                Some(span) => err.at(&self.text, span),
                None => err,
            }
        })
    }
}

/// The dotted key path toml attaches to a deserialization error, if any.
fn toml_error_key(e: &toml::de::Error) -> Option<String> {
    let mut bare = e.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let line = shown.lines().find_map(|l| l.strip_prefix("in `"))?;
    Some(line.trim_end_matches('`').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            origin: "t.toml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = src("name = \"x\"\nduration = \"1s\"\nworkerz = 3\n")
            .parse()
            .unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(3));
        assert!(err.message.contains("unknown field `workerz`"), "{err}");
    }

    #[test]
    fn wrong_enum_value_in_nested_table() {
        let err = src("name = \"x\"\n[sqlite]\njournal_mode = \"wall\"\n")
            .parse()
            .unwrap_err();
        assert_eq!(err.position.map(|p| p.0), Some(3));
        assert_eq!(err.key.as_deref(), Some("sqlite.journal_mode"));
        assert!(err.message.contains("wall"), "{err}");
    }

    #[test]
    fn defaults_fill_in() {
        let s = src("name = \"x\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nworkers = 2\n[[group.op]]\nname = \"o\"\nsql = \"SELECT 1\"\n")
            .parse()
            .unwrap();
        assert_eq!(s.seed, 42);
        assert_eq!(s.group[0].transaction, TxMode::Deferred);
        assert_eq!(s.group[0].op[0].weight, 1);
        assert_eq!(s.sqlite, SqliteSettings::default());
    }
}
