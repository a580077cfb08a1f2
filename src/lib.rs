//! litehammer: a load-testing harness for SQLite configurations.

pub mod busy;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod crash;
pub mod driver;
pub mod env;
pub mod error;
pub mod metrics;
pub mod monitor;
pub mod pacing;
pub mod probe;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod sqlite_config;
pub mod summary;
pub mod sweep;
pub mod timeline;
pub mod verify;
pub mod walstat;
pub mod worker;
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
        cli::Command::Report(args) => commands::report(args),
        cli::Command::Compare(args) => commands::compare(args),
        cli::Command::Probe(args) => commands::probe(args),
    }
}
