//! Command-line definitions (clap derive) and nothing else.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "litehammer",
    version,
    about = "Load-test SQLite configurations on your own machine: WAL vs rollback, synchronous modes, concurrency, with verified results"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario (default: the built-in wal-vs-rollback comparison) and write a JSON report
    Run(RunArgs),
    /// Check a scenario file without running it: syntax, settings, and every SQL statement
    Validate(ValidateArgs),
    /// List the built-in scenarios
    ListScenarios,
    /// Measure the disk's limits: fsync/fdatasync rate and the commit ceiling per journal_mode × synchronous
    Probe(ProbeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A scenario file (TOML) or the name of a built-in scenario
    #[arg(default_value = crate::scenario::builtin::DEFAULT)]
    pub scenario: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
    /// Directory for the databases (default: a new temporary directory)
    #[arg(long, value_name = "DIR")]
    pub db_dir: Option<PathBuf>,
    /// Keep each run's database instead of deleting it afterwards
    #[arg(long)]
    pub keep_db: bool,
    /// Report file (default: results/<scenario>-<time>.json)
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print only the final table
    #[arg(short, long)]
    pub quiet: bool,
    /// Skip the short fsync probe of the database directory (no `fsync_per_sec` in the report)
    #[arg(long)]
    pub no_probe: bool,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
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

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// A scenario file (TOML) or the name of a built-in scenario
    pub scenario: String,
    #[command(flatten)]
    pub overrides: OverrideArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct OverrideArgs {
    /// Measured time per run, e.g. 30s (replaces `operations`)
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Transactions per run, shared among all workers (replaces `duration`)
    #[arg(long, value_name = "N")]
    pub operations: Option<String>,
    /// Warm-up time per run, excluded from all figures, e.g. 2s
    #[arg(long, value_name = "DURATION")]
    pub warmup: Option<String>,
    /// Seed for every generator
    #[arg(long, value_name = "N")]
    pub seed: Option<String>,
    /// Override a setting: sqlite.busy_timeout=1s, journal_mode=wal, group.writers.workers=8
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set or replace a matrix axis: journal_mode=wal,delete or group.writers.workers=1,2,4
    #[arg(long = "matrix", value_name = "KEY=V1,V2")]
    pub matrix: Vec<String>,
}
