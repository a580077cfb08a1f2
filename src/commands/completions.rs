//! `litehammer completions SHELL`: the shell completion script, from the clap definitions.

use crate::cli::{Cli, CompletionsArgs};
use crate::error::Status;
use clap::CommandFactory;

pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<Status> {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "litehammer", &mut std::io::stdout());
    Ok(Status::Ok)
}
