//! `litehammer validate`: load, check and prepare a scenario without running it.

use super::*;
use crate::cli::ValidateArgs;
use crate::error::Status;

pub(crate) fn validate(args: ValidateArgs) -> anyhow::Result<Status> {
    let plan = load_plan(&args.scenario, &args.overrides, Some(1), None)?;
    let s = &plan.scenario;
    println!(
        "{}: ok — scenario `{}`, {} run(s), {} group(s), {} worker(s); every statement prepared against the set-up schema",
        plan.source.origin,
        s.name,
        plan.cells.len(),
        s.group.len(),
        s.total_workers()
    );
    for note in crate::config::matrix::pinned_notes(&plan.axes) {
        println!("  pinned: {note}");
    }
    // The programs `run` needs beside SQLite (litestream, the litestream-vfs extension): the
    // scenario is valid, but it cannot run on this machine until they are installed.
    if let Err((what, message)) = crate::engine::backup::check_programs(&plan.cells, None) {
        println!("  warning: `run` needs a program that is not here ({what}): {message}");
    }
    for cell in &plan.cells {
        println!("  run {}", cell.id);
        for w in &cell.when {
            println!("      {w}");
        }
    }
    Ok(Status::Ok)
}
