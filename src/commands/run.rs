//! `litehammer run`: the arguments mapped to the run pipeline (`pipeline.rs`), then the
//! summary on the terminal.

use super::*;
use crate::cli::RunArgs;
use crate::commands::probe::probe_fsync;
use crate::engine::driver::RunOptions;
use crate::engine::progress::ProgressMode;
use crate::error::Status;
use crate::pipeline::{self, Outputs, Steps};
use crate::report::{Exporter, Format, table};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

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
        crate::targets::sqlite::setup::check_template(from)
            .map_err(|message| crate::error::InputError::new("--from-db", message))?;
    }
    let plan = load_plan(&args.scenario, &args.overrides, args.rounds, args.from_db.as_deref())?;
    let rounds = plan.rounds(args.rounds);
    if args.from_db.is_some()
        && let Some(c) = plan
            .cells
            .iter()
            .find(|c| !crate::targets::profile(c.scenario.target).file)
    {
        let message = format!(
            "only for SQLite runs (a database file to copy), not with target = {}",
            c.scenario.target.as_str()
        );
        return Err(crate::error::InputError::new("--from-db", message).into());
    }
    if args.kill && plan.cells.iter().all(|c| c.scenario.backup.is_none()) {
        return Err(crate::error::InputError::new(
            "--kill",
            "needs a backup to restore after the kill: --set backup=litestream, vacuum-into or backup-api",
        )
        .into());
    }
    if args.kill
        && let Some(c) = plan.cells.iter().find(|c| !c.scenario.replica.is_none())
    {
        // The killed writer is the crash ledger's, not the scenario's groups: it writes no
        // sequence table, so the replica's lag could be neither measured nor checked.
        let message = format!(
            "cannot run with [replica] (run `{}` has replica = \"{}\"): --kill replaces the scenario's \
             groups by the crash ledger's writer, which writes no sequence table, so the replica's lag \
             could be neither measured nor checked; drop the replica (--matrix replica=none) or run \
             without --kill",
            c.id,
            c.scenario.replica.method.as_str()
        );
        return Err(crate::error::InputError::new("--kill", message).into());
    }
    if args.durability {
        // The crash trials kill a process writing an SQLite file and cut power under
        // SQLite's VFS: they have nothing to say about another target.
        let sqlite = |c: &&crate::config::matrix::Cell| c.scenario.target.is_sqlite();
        if !plan.cells.iter().any(|c| sqlite(&c)) {
            return Err(crate::error::InputError::new(
                "--durability",
                "the crash trials are SQLite's (a killed process, a power cut under SQLite's VFS); \
                 no run here has target = sqlite, so there is nothing to crash",
            )
            .into());
        }
        if plan.cells.iter().any(|c| !sqlite(&c)) {
            eprintln!(
                "note: --durability: crash trials run for the SQLite configurations only; the PostgreSQL and dqlite runs get none"
            );
        }
    }
    if let Some(spec) = &args.baseline {
        let ids: Vec<&str> = plan.cells.iter().map(|c| c.id.as_str()).collect();
        crate::report::page::check_baseline(&ids, spec)?;
    }
    let backup = crate::engine::backup::check_env(&plan.cells, args.litestream.as_deref())
        .map_err(|(what, message)| crate::error::InputError::new(what, message))?;
    let url = args
        .overrides
        .target
        .as_ref()
        .and_then(|t| Some((t.kind, t.url.as_deref()?)));
    let backends = crate::targets::Backends::start(&plan.cells, url)?;
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
        repeat: rounds,
        order_seed: plan.scenario.seed,
        backup,
        template: args.from_db.clone(),
        backends,
    };
    let steps = Steps {
        quiet: args.out.quiet,
        durability_trials: args.durability.then_some(args.trials),
        fail_on_check: args.fail_on_check,
        fail_on_noise: args.fail_on_noise,
        probe_after: !args.no_probe,
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
    // A recommendation only when the crash trials decided it or the intervals confirm it.
    let confirmed = finished.report.decision.is_some()
        || matches!(
            crate::analysis::verdict::confirmed_winner(&finished.report),
            Ok(Some(_))
        );
    if !args.kill
        && confirmed
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
