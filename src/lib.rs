//! litehammer: a load-testing harness for SQLite configurations.

pub mod cli;
pub mod clock;
pub mod driver;
pub mod env;
pub mod error;
pub mod metrics;
pub mod probe;
pub mod report;
pub mod scenario;
pub mod sqlite_config;
pub mod verify;
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
        cli::Command::Probe(args) => commands::probe(args),
    }
}
