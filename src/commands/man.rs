//! `litehammer man`: the man page (roff), from the clap definitions.

use crate::cli::Cli;
use crate::error::Status;
use clap::CommandFactory;
use std::io::Write;

pub(crate) fn man() -> anyhow::Result<Status> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    std::io::stdout().write_all(&out)?;
    Ok(Status::Ok)
}
