//! litehammer: a load-testing harness for SQLite configurations (and PostgreSQL beside
//! them), from a scenario file to a verified report.
//!
//! The crate map, one line per room (the whole map, file by file, is docs/architecture.md):
//!
//! - `cli`: the command line (clap definitions); `error`: exit-code errors; `interrupt`: the
//!   process's one cancellation token (Ctrl-C, SIGTERM).
//! - `commands`: one file per subcommand, mapping its arguments to the pipeline or a module.
//! - `pipeline`: one run from plan to final report: runs, analysis, status.
//! - `config`: what a scenario and the command line may say; data and validation only.
//! - `workload`: a scenario compiled into groups of weighted operations.
//! - `engine`: running a cell: the driver, the workers' loops, process isolation, backups.
//! - `targets`: the databases, one folder each (`sqlite`, `postgres`, `turso`), behind `Target` (the
//!   workers' view) and `Backend` (the driver's), registered in `targets/mod.rs`.
//! - `machine`: facts about the machine: the fsync probe, the environment, WAL sizes.
//! - `metrics`: what workers record: recorders, HDR histograms, the timeline, the anatomy.
//! - `analysis`: what the runs mean: verdict, statistics, findings, decision, status.
//! - `report`: the report model (the JSON, the source of truth) and its views.
//! - `crash`: `litehammer crash`, durability under process kill and simulated power loss.
//! - `import`: `litehammer import`, a captured trace becomes a scenario.

pub(crate) mod analysis;
pub(crate) mod cli;
pub(crate) mod config;
pub(crate) mod crash;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod import;
mod interrupt;
pub(crate) mod machine;
pub(crate) mod metrics;
pub(crate) mod report;
pub(crate) mod targets;
pub(crate) mod workload;

mod commands;
mod pipeline;

use error::Status;

/// The binary's entry point: parse the command line, run the command, and map its status
/// or error to the exit code (0 ok, 1 failed, 2 bad input, 130 interrupted).
pub fn main() -> std::process::ExitCode {
    use clap::Parser;
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout as clap prints them; a usage error quotes the
        // arguments, which may hold a password (`--target postgres=URL`).
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprint!("{}", error::redact_secrets(&e.render().to_string()));
            return std::process::ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    if matches!(
        cli.command,
        cli::Command::Run(_)
            | cli::Command::Capacity(_)
            | cli::Command::Validate(_)
            | cli::Command::Crash(_)
            | cli::Command::Probe(_)
    ) {
        interrupt::install();
        // Temporary directories that killed litehammers left (a SIGKILL cannot be handled).
        let removed = interrupt::sweep_stale(&std::env::temp_dir());
        if !removed.is_empty() {
            let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "note: removed {} temporary director{} left by litehammer processes that were killed: {}",
                removed.len(),
                if removed.len() == 1 { "y" } else { "ies" },
                crate::report::format::one_line(&names.join(", "))
            );
        }
    }
    match run(cli) {
        Ok(_) if interrupt::cancelled() => std::process::ExitCode::from(Status::Interrupted.code()),
        Ok(status) => std::process::ExitCode::from(status.code()),
        Err(err) if interrupt::cancelled() => {
            eprintln!("interrupted: {}", error::render(&err));
            std::process::ExitCode::from(Status::Interrupted.code())
        }
        Err(err) => {
            eprintln!("error: {}", error::render(&err));
            std::process::ExitCode::from(error::exit_code(&err))
        }
    }
}

/// Runs one command.
fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    match cli.command {
        cli::Command::Run(args) => commands::run(*args),
        cli::Command::Capacity(args) => commands::capacity(*args),
        cli::Command::Validate(args) => commands::validate(args),
        cli::Command::ListScenarios => commands::list_scenarios(),
        cli::Command::Crash(args) => commands::crash(args),
        cli::Command::CrashChild(args) => commands::crash_child(args),
        cli::Command::WorkerChild => engine::process::child_main()
            .map(|()| Status::Ok)
            .map_err(|e| anyhow::anyhow!("worker process: {e}")),
        cli::Command::ReplicaChild => engine::backup::replica::child_main()
            .map(|()| Status::Ok)
            .map_err(|e| anyhow::anyhow!("replica readers: {e}")),
        cli::Command::Report(args) => commands::report(args),
        cli::Command::Compare(args) => commands::compare(args),
        cli::Command::Probe(args) => commands::probe(args),
        cli::Command::Capture(args) => commands::capture(args),
        cli::Command::Import(args) => commands::import(args),
        cli::Command::Apply(args) => commands::apply(args),
        cli::Command::Completions(args) => commands::completions(args),
        cli::Command::Man => commands::man(),
    }
}

/// What the integration tests and the overhead benchmark reach inside the crate. Not an API.
#[doc(hidden)]
pub mod testing {
    /// A report file read back through the model, re-serialized.
    pub fn load_report_json(path: &std::path::Path) -> Result<serde_json::Value, String> {
        let report = crate::report::load(path).map_err(|e| e.to_string())?;
        serde_json::to_value(&report).map_err(|e| e.to_string())
    }

    pub use crate::metrics::decode_histogram;
    pub use crate::workload::rng::Rng;

    /// A scenario file loaded and checked as `run` does it.
    pub struct BenchPlan(crate::config::validate::Plan);

    /// How [`BenchPlan::run`] runs: from a copy of a template database (else a fresh one),
    /// after `run`'s 0.3 s fsync probe, with progress lines on stderr.
    #[derive(Default)]
    pub struct BenchOptions {
        pub template: Option<std::path::PathBuf>,
        pub probe: bool,
        pub progress: Option<std::time::Duration>,
    }

    /// What one litehammer run measured.
    pub struct BenchRun {
        pub per_s: f64,
        pub committed: u64,
        pub error: Option<String>,
        pub verified: bool,
    }

    impl BenchPlan {
        pub fn load(path: &str) -> Result<Self, String> {
            let plan = crate::config::validate::load(path, &Default::default()).map_err(|e| e.to_string())?;
            crate::workload::check::against_sqlite(&plan, None).map_err(|e| e.to_string())?;
            Ok(Self(plan))
        }

        fn scenario(&self) -> &crate::config::Scenario {
            &self.0.cells[0].scenario
        }

        /// The first cell's database with its set-up and populate rows, as a run creates it.
        pub fn create_database(&self, path: &std::path::Path) -> Result<(), String> {
            let s = self.scenario();
            crate::targets::sqlite::setup::create_database(path, &s.sqlite, &s.setup, s.seed)
                .map(drop)
                .map_err(|e| e.to_string())
        }

        /// A connection with every `[sqlite]` setting applied, as a worker's.
        pub fn open_configured(&self, path: &std::path::Path) -> Result<rusqlite::Connection, String> {
            let mut conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
            crate::targets::sqlite::settings::apply_and_check(&self.scenario().sqlite, &mut conn)
                .map_err(|e| e.to_string())?;
            Ok(conn)
        }

        /// A copy of a closed database made as a run with `BenchOptions::template` makes it.
        pub fn copy_database(&self, from: &std::path::Path, to: &std::path::Path) -> Result<(), String> {
            crate::targets::sqlite::setup::copy_database(from, to, &self.scenario().sqlite)
                .map(drop)
                .map_err(|e| e.to_string())
        }

        /// Runs the first cell through the engine, as `run` does.
        pub fn run(&self, db_dir: &std::path::Path, opts: &BenchOptions) -> BenchRun {
            if opts.probe {
                let time = std::time::Duration::from_millis(300);
                let _ = crate::machine::probe::sync_rate(db_dir, time, crate::machine::probe::SyncKind::Fsync);
            }
            let progress = match opts.progress {
                Some(every) => crate::engine::progress::ProgressMode::Lines { every },
                None => crate::engine::progress::ProgressMode::Quiet,
            };
            let opts = crate::engine::driver::RunOptions {
                db_dir: db_dir.to_path_buf(),
                keep_db: false,
                progress,
                repeat: 1,
                order_seed: 0,
                backup: Default::default(),
                template: opts.template.clone(),
                backends: crate::targets::Backends::sqlite_only(),
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let (_keep, cancel) = tokio::sync::watch::channel(false);
            let runs = runtime.block_on(crate::engine::driver::run_cells(
                &self.0.cells[..1],
                &opts,
                &cancel,
                |_| {},
            ));
            let run = &runs[0];
            BenchRun {
                per_s: run.groups.iter().map(|g| g.transactions.throughput_per_s).sum(),
                committed: run.groups.iter().map(|g| g.transactions.committed).sum(),
                error: run.error.clone(),
                verified: run.verification.as_ref().is_some_and(|v| v.ok),
            }
        }
    }
}
