//! Command-line definitions (clap derive) and nothing else.

use crate::config::duration::DurationValue;
use clap::{Args, Parser, Subcommand};
use std::num::NonZeroU64;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "litehammer",
    version,
    about = "Load-test SQLite configurations on your own machine: WAL vs rollback, synchronous modes, concurrency, with verified results"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a scenario (default: the built-in `django` web-app comparison) and write a JSON report
    Run(Box<RunArgs>),
    /// Find the highest request rate each configuration sustains within latency and error objectives
    Capacity(Box<CapacityArgs>),
    /// Check a scenario file without running it: syntax, settings, and every SQL statement
    Validate(ValidateArgs),
    /// List the built-in scenarios
    ListScenarios,
    /// Crash a checkable ledger workload per configuration and count what acknowledged commits survive
    Crash(CrashArgs),
    /// Internal: the committing worker of `crash --method kill`
    #[command(hide = true)]
    CrashChild(CrashChildArgs),
    /// Internal: one worker process of a group with `isolation = "process"` (spec on stdin)
    #[command(hide = true)]
    WorkerChild,
    #[command(hide = true)]
    ReplicaChild,
    /// Render a saved JSON report as Markdown, HTML, JSON, CSV or HdrHistogram interval logs
    Report(ReportArgs),
    /// Compare reports run by run: throughput, p50 and p99 of B relative to A, with a noise warning
    Compare(CompareArgs),
    /// Measure the disk's limits: fsync/fdatasync rate and the commit ceiling per journal_mode × synchronous
    Probe(ProbeArgs),
    /// Record a program's SQLite statements as a trace: capture -o TRACE.jsonl -- COMMAND [ARGS...]
    Capture(CaptureArgs),
    /// Turn a captured trace into a scenario file on the application model
    Import(ImportArgs),
    /// Print the settings snippet for a framework (Django, Rails, Laravel, Go, Node, plain PRAGMAs) from a report
    Apply(ApplyArgs),
    /// Print a shell completion script (bash, zsh, fish) to standard output
    Completions(CompletionsArgs),
    /// Print the man page (roff) to standard output
    Man,
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// A JSON report written by `litehammer run`
    pub report: PathBuf,
    /// The configuration to apply: a run id or KEY=VALUE,... (default: the verdict's best)
    #[arg(long, value_name = "ID")]
    pub config: Option<String>,
    /// The framework or driver to write the settings for
    #[arg(long = "for", value_enum, value_name = "FRAMEWORK")]
    pub framework: Framework,
}

pub(crate) use crate::report::snippet::Framework;

#[derive(Debug, Args)]
pub(crate) struct CaptureArgs {
    /// The trace to write (JSON lines, docs/trace-format.md)
    #[arg(short, long, value_name = "TRACE.jsonl", required_unless_present = "snippet")]
    pub output: Option<PathBuf>,
    /// Replace every literal value in the recorded SQL with its type and length
    #[arg(long)]
    pub redact: bool,
    /// The preload library (default: $LITEHAMMER_CAPTURE_LIB, else liblitehammer_capture.so next to litehammer)
    #[arg(long, value_name = "FILE")]
    pub lib: Option<PathBuf>,
    /// Keep the per-thread part files (their directory is printed)
    #[arg(long)]
    pub keep_parts: bool,
    /// Print the lines an app adds to write a trace itself (for SQLite compiled into it) and exit
    #[arg(long, value_enum, value_name = "FRAMEWORK", conflicts_with_all = ["output", "command", "redact", "lib", "keep_parts"])]
    pub snippet: Option<crate::commands::snippet::SnippetFor>,
    /// The command to run, after `--`
    #[arg(last = true, required_unless_present = "snippet", value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

/// `import --params`: how the imported scenario produces statement parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ParamsMode {
    /// The captured values, in order, per worker
    Replay,
    /// Generators fitted to the captured values (ranges, lengths, choices)
    Model,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A trace written by `litehammer capture` (or any producer of docs/trace-format.md)
    pub trace: PathBuf,
    /// The scenario file to write (TOML)
    #[arg(short, long, value_name = "SCENARIO.toml")]
    pub output: PathBuf,
    /// Statement parameters: replay the captured values in order, or fit generators to them
    #[arg(long, value_enum, default_value = "replay")]
    pub params: ParamsMode,
    /// A copy of the app's database as it was before the capture (opened read-only): schema and row counts
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Idle time that separates two requests on one connection (outside transactions)
    #[arg(long, value_name = "DURATION", default_value = "50ms", allow_hyphen_values = true)]
    pub gap: DurationValue,
    /// Scenario name (default: the output file's stem)
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub name: Option<String>,
    /// The trace's format (default: detected from its first line)
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub from: Option<crate::import::formats::Format>,
    /// Another trace of the same app under the same load, captured in another configuration
    /// (journal mode, synchronous): the cells nearest to it replay the app's CPU per request
    /// measured there (a [[when]] with group.NAME.app_time_scale). Where the trace records no
    /// PRAGMAs, say them: journal_mode=delete,synchronous=normal:TRACE. Repeatable
    #[arg(long, value_name = "TRACE")]
    pub also: Vec<PathBuf>,
    /// How the app's server queues requests for its processes, which the SQL cannot show:
    /// shared (one listening socket, connections closed after each response: gunicorn's sync
    /// worker), per-process (keep-alive connections stay on a process, an equal share each:
    /// Puma) or first-free (each connection stays with the process that took it first: Node's
    /// cluster). Default: from the server a framework hook recorded or the request spans show
    /// (OpenTelemetry), else per-process
    #[arg(long, value_enum, value_name = "QUEUE")]
    pub queue: Option<ServerQueue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ServerQueue {
    Shared,
    PerProcess,
    FirstFree,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A scenario file (TOML) or the name of a built-in scenario
    #[arg(default_value = crate::config::builtin::DEFAULT)]
    pub scenario: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Skip the short fsync probes of the database directory before and after the runs (no
    /// `fsync_per_sec` in the report)
    #[arg(long)]
    pub no_probe: bool,
    /// Exit 1 when a scenario's metric check (`[[check]] expr = ...`) does not hold
    #[arg(long)]
    pub fail_on_check: bool,
    /// Exit 1 when the noise guard marks a run noisy or the fsync rate drifted (docs/reports.md)
    #[arg(long)]
    pub fail_on_noise: bool,
    /// When stderr is not a terminal: print a progress line every N seconds (0: never)
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, allow_hyphen_values = true, value_parser = crate::config::limits::progress_interval)]
    pub progress_interval: f64,
    /// Rounds: each runs every configuration once, on a fresh database, in a seeded shuffled
    /// order; the verdict's intervals come from them (default: the scenario's `rounds`, else 1)
    #[arg(long, visible_alias = "repeat", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: Option<u32>,
    /// Start every run from a copy of this SQLite database (closed, its WAL checkpointed)
    /// instead of a fresh one: the scenario's set-up SQL and populate are skipped
    #[arg(long, value_name = "FILE", conflicts_with = "kill")]
    pub from_db: Option<PathBuf>,
    /// Also write a Markdown report (rewritten after every run, like the JSON)
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
    /// Also write a self-contained HTML report with charts (rewritten after every run)
    #[arg(long, value_name = "FILE")]
    pub export_html: Option<PathBuf>,
    /// Also write a CSV file, one row per run × group in raw units (rewritten after every run)
    #[arg(long, value_name = "FILE")]
    pub export_csv: Option<PathBuf>,
    /// Baseline for the ratio column: a run id or KEY=VALUE,... (default: the first run)
    #[arg(long, value_name = "CONFIG")]
    pub baseline: Option<String>,
    /// The litestream binary for `backup = "litestream"` (default: `litestream` on PATH)
    #[arg(long, value_name = "PATH")]
    pub litestream: Option<PathBuf>,
    /// With a backup: SIGKILL the workload (a ledger writer in a child process) after the
    /// duration, then restore the backup and check it (not with a `[replica]`)
    #[arg(long, conflicts_with = "durability")]
    pub kill: bool,
    /// Also crash every journal_mode × synchronous of the run (process kill and simulated
    /// power loss, as `litehammer crash`) and print the decision table and a recommendation
    #[arg(long)]
    pub durability: bool,
    /// With --durability: crash trials per configuration and method/model
    #[arg(long, value_name = "N", default_value_t = DURABILITY_TRIALS, requires = "durability",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub trials: u32,
}

/// `run --durability`'s default `--trials`: the default run (4 configurations) then spends
/// seconds, not minutes, on crashes (docs/durability.md).
pub(crate) const DURABILITY_TRIALS: u32 = 20;

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// A JSON report written by `litehammer run`
    pub input: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value = "md")]
    pub format: crate::report::Format,
    /// Output file (default: standard output); with `--format hlog` the directory for the .hlog files
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Baseline for the ratio column: a run id or KEY=VALUE,... (default: the first run)
    #[arg(long, value_name = "CONFIG")]
    pub baseline: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CompareArgs {
    /// The baseline report (A), then one or more reports (B) each compared with it
    #[arg(required = true, num_args = 2.., value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Exit with status 1 when any matched throughput drops by more than PCT percent (with
    /// rounds on both sides: only when the drop's whole 95 % interval passes PCT)
    #[arg(long, value_name = "PCT")]
    pub fail_if_slower: Option<f64>,
    /// Exit with status 1 when any matched p99 grows by more than PCT percent (with rounds:
    /// only when the growth's whole 95 % interval passes PCT)
    #[arg(long, value_name = "PCT")]
    pub fail_if_p99_worse: Option<f64>,
    /// Capacity reports: exit with status 1 when any configuration's capacity drops by more
    /// than PCT percent over the whole range its search brackets allow
    #[arg(long, value_name = "PCT")]
    pub fail_if_capacity_drops: Option<f64>,
    /// Compare reports whose fingerprints differ (SQLite version and options, litehammer
    /// version and build profile, filesystem, cores, kernel, scenario sha256): warn instead of
    /// refusing
    #[arg(long)]
    pub allow_mismatch: bool,
    /// Differences within ±PCT percent are noise (used unless both sides have rounds)
    #[arg(long, value_name = "PCT", default_value_t = crate::analysis::compare::DEFAULT_NOISE_PCT)]
    pub noise: f64,
    /// Print Markdown tables instead of plain text
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// Directory to probe (default: a new temporary directory, where `run` puts databases by default)
    #[arg(long, value_name = "DIR")]
    pub db_dir: Option<PathBuf>,
    /// Shorter measurements (~1 s instead of ~4 s), for a first look
    #[arg(long)]
    pub quick: bool,
    /// Also write the probe as JSON to this file
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Where a command's databases and report go (`run`, `crash`).
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Directory for the databases (default: a new temporary directory)
    #[arg(long, value_name = "DIR")]
    pub db_dir: Option<PathBuf>,
    /// Keep the databases instead of deleting them afterwards
    #[arg(long)]
    pub keep_db: bool,
    /// Report file (default: results/<scenario>-<time>.json; `crash`: results/crash-<time>.json)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print only the final table
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CapacityArgs {
    /// A scenario file (TOML) or the name of a built-in scenario
    #[arg(default_value = crate::config::builtin::DEFAULT)]
    pub scenario: String,
    /// An objective every step must meet, e.g. "p99<200ms" or "errors<0.1%" (repeatable)
    #[arg(long = "slo", value_name = "OBJECTIVE", required = true, value_parser = parse_slo)]
    pub slo: Vec<crate::config::slo::Slo>,
    /// Time for the whole search, shared evenly by the configurations
    #[arg(long, value_name = "DURATION", default_value = "3m", allow_hyphen_values = true, value_parser = parse_budget)]
    pub budget: DurationValue,
    /// Measured time of each step (each also warms up for --step-warmup)
    #[arg(long, value_name = "DURATION", default_value = "3s", allow_hyphen_values = true, value_parser = parse_step)]
    pub step: DurationValue,
    /// Warm-up of each step
    #[arg(long, value_name = "DURATION", default_value = "1s", allow_hyphen_values = true)]
    pub step_warmup: DurationValue,
    /// The first offered rate, in requests per second (all groups together)
    #[arg(long, value_name = "PER_SECOND", default_value_t = 10.0, allow_hyphen_values = true, value_parser = parse_start_rate)]
    pub start_rate: f64,
    /// Stop when the highest passing and lowest failing rates are within this many percent
    #[arg(long, value_name = "PCT", default_value_t = 10.0, allow_hyphen_values = true, value_parser = parse_resolution)]
    pub resolution: f64,
    #[command(flatten)]
    pub overrides: OverrideArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Also write a Markdown report
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<PathBuf>,
    /// Also write a self-contained HTML report
    #[arg(long, value_name = "FILE")]
    pub export_html: Option<PathBuf>,
    /// Also crash every journal_mode × synchronous (process kill and simulated power loss, as
    /// `litehammer crash`): the recommendation is then the highest capacity that loses nothing
    #[arg(long)]
    pub durability: bool,
    /// With --durability: crash trials per configuration and method/model
    #[arg(long, value_name = "N", default_value_t = DURABILITY_TRIALS, requires = "durability",
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub trials: u32,
}

fn parse_slo(raw: &str) -> Result<crate::config::slo::Slo, String> {
    raw.parse()
}

fn parse_budget(raw: &str) -> Result<DurationValue, String> {
    let d: DurationValue = raw.parse()?;
    if d.0 < std::time::Duration::from_secs(1) {
        return Err("the budget must be at least 1s".into());
    }
    crate::config::limits::wait(d.0)?;
    Ok(d)
}

fn parse_step(raw: &str) -> Result<DurationValue, String> {
    let d: DurationValue = raw.parse()?;
    if d.0 < std::time::Duration::from_millis(100) {
        return Err("a step must measure at least 100ms".into());
    }
    crate::config::limits::wait(d.0)?;
    Ok(d)
}

fn parse_start_rate(raw: &str) -> Result<f64, String> {
    let r: f64 = raw.parse().map_err(|_| format!("`{raw}` is not a number"))?;
    if !(crate::config::slo::RATE_FLOOR..=crate::config::slo::RATE_CEILING).contains(&r) {
        return Err(format!(
            "the start rate must be from {} to {} per second",
            crate::config::slo::RATE_FLOOR,
            crate::config::slo::RATE_CEILING
        ));
    }
    Ok(r)
}

fn parse_resolution(raw: &str) -> Result<f64, String> {
    let r: f64 = raw.parse().map_err(|_| format!("`{raw}` is not a number"))?;
    if !(1.0..=100.0).contains(&r) {
        return Err("the resolution must be from 1 to 100 percent".into());
    }
    Ok(r / 100.0)
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// A scenario file (TOML) or the name of a built-in scenario
    pub scenario: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct OverrideArgs {
    /// Go ahead with a request above the confirmation thresholds of docs/limits.md (many workers, runs, rows or hours)
    #[arg(long)]
    pub yes: bool,
    /// Let scenario SQL ATTACH or VACUUM INTO files other than the run's own database (see docs/limits.md)
    #[arg(long)]
    pub allow_external_files: bool,
    /// Measured time per run, e.g. 30s (replaces `operations`)
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub duration: Option<DurationValue>,
    /// Transactions per run, shared among all workers (replaces `duration`)
    #[arg(long, value_name = "N")]
    pub operations: Option<NonZeroU64>,
    /// Warm-up time per run, excluded from all figures, e.g. 2s
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub warmup: Option<DurationValue>,
    /// Seed for every generator
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Override a setting: sqlite.busy_timeout=1s, journal_mode=wal, group.writers.workers=8
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set or replace a matrix axis: journal_mode=wal,delete or group.writers.workers=1,2,4
    #[arg(long = "matrix", value_name = "KEY=V1,V2")]
    pub matrix: Vec<String>,
    /// Closed loop for every group: N clients each, queueing for its workers as a load
    /// generator's connections do (wrk's and oha's -c; sets group.*.clients). The workers are
    /// `workers` (pgbench's -c is those, the database sessions)
    #[arg(short = 'c', long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "rate")]
    pub clients: Option<u32>,
    /// Open loop for every group: transactions per second per group
    #[arg(long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Count transactions slower than this (from their intended start) as late, e.g. 50ms
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub latency_limit: Option<DurationValue>,
    /// With --rate and --latency-limit: skip transactions already late at their turn
    #[arg(long)]
    pub skip_late: bool,
    /// A backup beside the workload: none, litestream, vacuum-into, backup-api (sets `backup`)
    #[arg(long, value_name = "METHOD")]
    pub backup: Option<String>,
    /// The database measured: sqlite (default), turso (Turso in process; docs/mvcc.md), postgres
    /// (a private throwaway server from /usr/lib/postgresql/*/bin), or postgres=URL (an existing
    /// server; litehammer creates and drops a database of its own there), dqlite (a throwaway
    /// 3-node cluster on loopback) or dqlite=HOST:PORT,... (an existing cluster). With `--matrix target=...` only the URL counts
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    pub target: Option<TargetArg>,
    /// The throwaway PostgreSQL server also listens on loopback TCP, and the workers use it
    /// (sets `postgres.transport = "tcp"`)
    #[arg(long)]
    pub pg_tcp: bool,
    /// A fault injected into the throwaway dqlite cluster while measuring (repeatable):
    /// kill-leader@T, kill-follower@T, pause-leader@T+D, restart-node@T (sets `dqlite.faults`)
    #[arg(long = "fault", value_name = "FAULT", value_parser = parse_fault)]
    pub faults: Vec<crate::config::dqlite::Fault>,
}

fn parse_fault(raw: &str) -> Result<crate::config::dqlite::Fault, String> {
    raw.parse()
}

/// `--target sqlite`, `--target postgres`, `--target postgres=postgres://...`.
#[derive(Clone, Debug)]
pub(crate) struct TargetArg {
    pub kind: crate::config::postgres::TargetKind,
    pub url: Option<String>,
}

fn parse_target(raw: &str) -> Result<TargetArg, String> {
    use crate::config::postgres::TargetKind;
    let (name, url) = match raw.split_once('=') {
        Some((n, u)) => (n, Some(u.to_string())),
        None => (raw, None),
    };
    let kind = match name.trim() {
        "sqlite" if url.is_none() => TargetKind::Sqlite,
        "sqlite" => return Err("sqlite takes no URL (use --db-dir for where its files go)".into()),
        "postgres" | "postgresql" => TargetKind::Postgres,
        "dqlite" => TargetKind::Dqlite,
        "turso" if url.is_none() => TargetKind::Turso,
        "turso" => return Err("turso takes no URL (it runs in process; use --db-dir for where its files go)".into()),
        other => {
            return Err(format!(
                "unknown target `{other}`: use sqlite, turso, postgres, postgres=URL (postgres://user:password@host:port/database), dqlite, or dqlite=HOST:PORT,..."
            ));
        }
    };
    if url.as_deref().is_some_and(|u| u.trim().is_empty()) {
        return Err(match kind {
            TargetKind::Dqlite => "dqlite= needs node addresses: dqlite=HOST:PORT,HOST:PORT,...".into(),
            _ => "postgres= needs a URL: postgres=postgres://user:password@host:port/database".into(),
        });
    }
    Ok(TargetArg { kind, url })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CrashMethod {
    /// SIGKILL the committing process; real files, the OS page cache survives
    Kill,
    /// Cut power on a simulated disk at a random disk event; see --model
    PowerLoss,
    /// Kill, then power loss
    Both,
}

#[derive(Debug, Args)]
pub(crate) struct CrashArgs {
    /// How to crash
    #[arg(long, value_enum, default_value = "both")]
    pub method: CrashMethod,
    /// Power loss: what the rebooted disk holds (comma-separated)
    #[arg(
        long = "model",
        value_enum,
        value_delimiter = ',',
        default_value = "durable,reorder,torn"
    )]
    pub models: Vec<crate::crash::model::Model>,
    /// Trials per configuration (and per crash model)
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub trials: u32,
    /// Go ahead with more than 1000 trials per configuration (docs/limits.md)
    #[arg(long)]
    pub yes: bool,
    /// Seed for the ledger contents and the crash moments
    #[arg(long, default_value_t = 42, value_name = "S")]
    pub seed: u64,
    /// Rows per ledger transaction are uniform in 1..=K
    #[arg(long, default_value_t = 4, value_name = "K")]
    pub max_rows: u32,
    /// Power loss: ledger transactions per trial (power is cut somewhere in them)
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub transactions: u32,
    /// Power loss: also recover every rebooted image through SQLite's unix VFS and compare
    #[arg(long)]
    pub cross_check: bool,
    /// Power loss: print one trial's I/O trace and verdict instead of running, e.g.
    /// "journal_mode=wal,synchronous=normal:torn:7"
    #[arg(long, value_name = "CONFIG:MODEL:TRIAL")]
    pub replay: Option<String>,
    /// A `run` report of the same configurations: print one table with its throughput and p99 beside the durability columns
    #[arg(long, value_name = "RUN.json")]
    pub beside: Option<PathBuf>,
    /// Kill: the latest moment to kill the worker after it is ready, e.g. 50ms
    #[arg(long, default_value = "50ms", value_name = "DURATION", allow_hyphen_values = true)]
    pub kill_within: String,
    /// Override a SQLite setting: page_size=8192, sqlite.cache_size=-4000
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set or replace a matrix axis (default journal_mode=delete,truncate,persist,wal,memory,off and synchronous=off,normal,full,extra)
    #[arg(long = "matrix", value_name = "KEY=V1,V2")]
    pub matrix: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CrashChildArgs {
    #[arg(long)]
    pub db: PathBuf,
    #[arg(long)]
    pub seed: u64,
    #[arg(long)]
    pub max_rows: u32,
    /// The SQLite settings as JSON
    #[arg(long)]
    pub settings: String,
}

/// `--rate`: transactions per second per group, 0 (closed loop) or a finite positive number.
fn parse_rate(raw: &str) -> Result<f64, String> {
    let rate: f64 = raw
        .trim()
        .parse()
        .map_err(|_| "expected transactions per second, e.g. 200 or 0.5".to_string())?;
    if !rate.is_finite() || rate < 0.0 {
        return Err("expected a finite number ≥ 0 (0 = closed loop)".into());
    }
    crate::config::limits::rate(rate)?;
    Ok(rate)
}
