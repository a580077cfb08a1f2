//! litehammer: a load-testing harness for SQLite configurations.

pub mod cli;
pub mod config;
pub mod crash;
pub mod engine;
pub mod error;
pub mod findings;
pub mod metrics;
pub mod report;
pub mod workload;

mod commands;

pub use error::Status;

/// Runs one command; `main` maps the status or error to the exit code.
pub fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    match cli.command {
        cli::Command::Run(args) => commands::run(args),
        cli::Command::Validate(args) => commands::validate(args),
        cli::Command::ListScenarios => commands::list_scenarios(),
        cli::Command::Crash(args) => commands::crash(args),
        cli::Command::CrashChild(args) => commands::crash_child(args),
        cli::Command::WorkerChild => engine::process::child_main()
            .map(|()| Status::Ok)
            .map_err(|e| anyhow::anyhow!("worker process: {e}")),
        cli::Command::Report(args) => commands::report(args),
        cli::Command::Compare(args) => commands::compare(args),
        cli::Command::Probe(args) => commands::probe(args),
    }
}
