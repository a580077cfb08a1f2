//! `litehammer run`: the arguments mapped to the run pipeline (`pipeline.rs`), then the
//! summary on the terminal.

use super::*;
use crate::cli::RunArgs;
use crate::commands::probe::probe_fsync;
use crate::config::validate::Plan;
use crate::engine::driver::RunOptions;
use crate::engine::progress::ProgressMode;
use crate::error::Status;
use crate::pipeline::{self, Outputs, Steps};
use crate::report::{Exporter, Format, table};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `--from-db FILE` must be an SQLite database whose every commit is in the file: a copy
/// of the main file alone leaves out what a non-empty `-wal` still holds.
fn check_from_db(path: &Path) -> Result<(), crate::error::InputError> {
    use std::io::Read;
    let fail = |message: String| crate::error::InputError::new("--from-db", message);
    let mut header = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut header))
        .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
    if header != b"SQLite format 3\0" {
        return Err(fail(format!("{} is not an SQLite database", path.display())));
    }
    let wal = crate::machine::walstat::sidecar(path, "-wal");
    if crate::machine::walstat::file_len(&wal) > 0 {
        return Err(fail(format!(
            "{} has a non-empty {}: commits still in it would be missing from the copy; \
             checkpoint it first (`sqlite3 FILE 'PRAGMA wal_checkpoint(TRUNCATE)'`)",
            path.display(),
            wal.display()
        )));
    }
    Ok(())
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<Status> {
    let outputs: Vec<(&str, &Path)> = [
        ("-o", &args.out.output),
        ("--export-markdown", &args.export_markdown),
        ("--export-html", &args.export_html),
        ("--export-csv", &args.export_csv),
    ]
    .into_iter()
    .filter_map(|(flag, path)| Some((flag, path.as_deref()?)))
    .collect();
    check_outputs(&outputs, Some(&args.scenario))?;
    if let Some(from) = &args.from_db {
        check_from_db(from)?;
    }
    let plan = load_plan(&args.scenario, &args.overrides, args.repeat, args.from_db.as_deref())?;
    if args.from_db.is_some()
        && plan
            .cells
            .iter()
            .any(|c| c.scenario.target != crate::config::postgres::TargetKind::Sqlite)
    {
        return Err(
            crate::error::InputError::new("--from-db", "only for SQLite runs, not with target = postgres").into(),
        );
    }
    if let Some(spec) = &args.baseline {
        let ids: Vec<&str> = plan.cells.iter().map(|c| c.id.as_str()).collect();
        crate::report::page::check_baseline(&ids, spec)?;
    }
    let backup = crate::engine::backup::check_env(&plan.cells, args.litestream.as_deref())
        .map_err(|(what, message)| crate::error::InputError::new(what, message))?;
    let postgres = start_postgres(&plan, args.overrides.target.as_ref())?;
    let (db_dir, _temp_guard) = database_dir(args.out.db_dir.as_deref(), args.out.keep_db)?;
    let mut environment = crate::machine::env::capture(&db_dir);
    if !args.no_probe {
        environment.fsync_per_sec = Some(probe_fsync(&db_dir, args.out.quiet)?);
    }
    let started = SystemTime::now();
    let output = claim_report_path(args.out.output.as_deref(), &plan.scenario.name, started)?;
    if !args.out.quiet {
        pipeline::announce(&plan, &output, &db_dir);
    }
    let report = pipeline::new_report(&plan, environment, started);
    let outputs = Outputs {
        report: output.clone(),
        exports: exports(&args),
    };
    let every = (args.progress_interval > 0.0).then(|| std::time::Duration::from_secs_f64(args.progress_interval));
    let opts = RunOptions {
        db_dir: db_dir.clone(),
        keep_db: args.out.keep_db,
        progress: ProgressMode::detect(args.out.quiet, every),
        repeat: args.repeat,
        backup,
        template: args.from_db.clone(),
        backends: crate::targets::Backends::new(postgres.clone()),
    };
    let steps = Steps {
        quiet: args.out.quiet,
        durability_trials: args.durability.then_some(args.trials),
        fail_on_check: args.fail_on_check,
    };
    let finished = if args.kill {
        pipeline::run_killed(&plan, &opts, report, &outputs)?
    } else {
        pipeline::run(&plan, &opts, report, &outputs, &steps)?
    };
    print!("\n{}", String::from_utf8(table::Terminal.render(&finished.report)?)?);
    if !args.kill {
        warn_if_debug_build();
    }
    println!("\nreport: {}", output.display());
    if !args.kill
        && let Ok(Some(id)) = crate::report::snippet::recommended(&finished.report)
    {
        println!(
            "apply it: litehammer apply {} --for django|rails|laravel|go|node|pragma  ({id})",
            output.display()
        );
    }
    finished.problems.iter().for_each(|p| eprintln!("error: {p}"));
    Ok(finished.status)
}

/// The PostgreSQL server the plan's `target = "postgres"` runs use: the `--target
/// postgres=URL` one, or a throwaway one (with TCP when a run asks for it). Not started
/// when every run is SQLite's.
fn start_postgres(
    plan: &Plan,
    target: Option<&crate::cli::TargetArg>,
) -> anyhow::Result<Option<std::sync::Arc<crate::targets::postgres::server::PgServer>>> {
    use crate::config::postgres::{TargetKind, Transport};
    use crate::targets::postgres::server::PgServer;
    let cells: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| c.scenario.target == TargetKind::Postgres)
        .collect();
    let url = target.and_then(|t| t.url.as_deref());
    if cells.is_empty() {
        if url.is_some() {
            return Err(
                crate::error::InputError::new("--target", "a URL is given, but no run has target = postgres").into(),
            );
        }
        return Ok(None);
    }
    let tcp = cells.iter().any(|c| c.scenario.postgres.transport == Transport::Tcp);
    let server = match url {
        Some(url) => PgServer::connect_url(url),
        None => PgServer::throwaway(tcp),
    }
    .map_err(|e| crate::error::InputError::new("--target", e.to_string()))?;
    eprintln!("PostgreSQL: {}", server.shown);
    Ok(Some(std::sync::Arc::new(server)))
}

/// The extra files `run` writes after every run, beside the JSON.
pub(super) fn exports(args: &RunArgs) -> Vec<(PathBuf, Box<dyn Exporter>)> {
    [
        (&args.export_markdown, Format::Md),
        (&args.export_html, Format::Html),
        (&args.export_csv, Format::Csv),
    ]
    .into_iter()
    .filter_map(|(path, format)| Some((path.clone()?, format.exporter(args.baseline.clone()))))
    .collect()
}
