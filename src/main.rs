use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = litehammer::cli::Cli::parse();
    match litehammer::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) => {
            eprintln!("error: {}", litehammer::error::render(&err));
            ExitCode::from(litehammer::error::exit_code(&err))
        }
    }
}
