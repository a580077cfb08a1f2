//! `litehammer crash`: durability trials per journal_mode × synchronous.

use super::*;
use crate::analysis::status;
use crate::cli::{CrashArgs, CrashChildArgs};
use crate::crash;
use crate::error::{InputError, Status};
use crate::pipeline::{self, new_report};
use crate::report::durability;
use anyhow::Context;
use std::time::SystemTime;

pub(crate) fn crash(args: CrashArgs) -> anyhow::Result<Status> {
    let opts = crash_options(&args)?;
    let set = settings(&args.set)?;
    let matrix = assignments("--matrix", &args.matrix)?;
    let mut configs = crash::config::load(&set, &matrix)?;
    let beside = args.beside.as_deref().map(crash::beside::load).transpose()?;
    if let Some(spec) = &args.replay {
        return crash_replay(spec, &configs, &opts);
    }
    if let Some(o) = &args.out.output {
        let inputs: Vec<(&str, &std::path::Path)> = args
            .beside
            .as_deref()
            .map(|b| ("report given to --beside", b))
            .into_iter()
            .collect();
        crate::report::output::check(&[crate::report::output::Target::new("-o", o)], &inputs)?;
    }
    if let (Some(report), Some(path)) = (&beside, &args.beside) {
        super::report::warn_unfinished(report, path);
    }
    let (base_dir, _temp_guard) = database_dir(args.out.db_dir.as_deref(), args.out.keep_db)?;
    // A subdirectory of our own: crash tests only ever touch databases they created.
    let work = tempfile::Builder::new()
        .prefix("litehammer-crash-")
        .tempdir_in(&base_dir)
        .with_context(|| format!("cannot create a directory in {}", base_dir.display()))?;
    let started = SystemTime::now();
    let output = claim_report_path(args.out.output.as_deref(), "crash", started)?;
    // The crash trials take their seed from --seed, not from the ledger scenario.
    configs.plan.scenario.seed = opts.seed;
    let report = new_report(&configs.plan, crate::machine::env::capture(&base_dir), started);
    let exe = std::env::current_exe().context("cannot find the litehammer binary to run crash workers")?;
    let total = configs.plan.cells.len();
    if !args.out.quiet {
        eprintln!(
            "litehammer crash: {total} configuration(s), {} trial(s) each, seed {}; databases in {}; report → {}",
            opts.trials,
            opts.seed,
            work.path().display(),
            output.display()
        );
    }
    let report = pipeline::crash(&configs, &opts, report, &output, work.path(), &exe, args.out.quiet)?;
    if args.out.keep_db {
        eprintln!("databases kept in {}", work.keep().display());
    }
    print!("\n{}", durability::table(&report.runs).to_text());
    if let Some(run_report) = &beside {
        print!(
            "\nbeside {} (tx/s and p99 of its group `{}`):\n{}",
            crate::error::terminal(&run_report.scenario.name, false),
            crate::error::terminal(&crash::beside::group_name(run_report), false),
            crash::beside::table(&report.runs, run_report).to_text()
        );
    }
    println!("\nreport: {}", output.display());
    let mismatches = status::cross_check_mismatches(&report);
    if mismatches > 0 {
        eprintln!("error: {mismatches} trial(s) recovered differently through the unix VFS than through the simulator");
    }
    Ok(status::crash_status(&report))
}

pub(super) fn crash_replay(
    spec: &str,
    configs: &crash::config::Configurations,
    opts: &crash::Options,
) -> anyhow::Result<Status> {
    let flag = format!("--replay {spec}");
    let spec = crash::ReplaySpec::parse(spec).map_err(|e| InputError::new(&flag, e))?;
    let Some(cell) = configs.plan.cells.iter().find(|c| c.id == spec.config) else {
        let ids: Vec<&str> = configs.plan.cells.iter().map(|c| c.id.as_str()).collect();
        return Err(InputError::new(
            flag,
            format!(
                "no configuration `{}`; configurations: {}",
                crate::error::terminal(&spec.config, false),
                ids.join(" | ")
            ),
        )
        .into());
    };
    if spec.trial >= opts.trials {
        return Err(InputError::new(
            flag,
            format!("trial {} is not below --trials {}", spec.trial, opts.trials),
        )
        .into());
    }
    let scratch = tempfile::tempdir()?;
    print!("{}", crash::replay(cell, &spec, opts, scratch.path())?);
    Ok(Status::Ok)
}

/// Crash limits (docs/limits.md): a trial must stay short and its ledger small.
const MAX_KILL_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_ROWS: u64 = 10_000;
const MAX_TRANSACTIONS: u64 = 100_000;
const MAX_TRIALS: u64 = 1_000_000;

pub(super) fn crash_options(args: &CrashArgs) -> Result<crash::Options, InputError> {
    if args.trials == 0 {
        return Err(InputError::new("--trials 0", "give at least one trial"));
    }
    for (flag, value, max) in [
        ("--max-rows", u64::from(args.max_rows), MAX_ROWS),
        ("--transactions", u64::from(args.transactions), MAX_TRANSACTIONS),
        ("--trials", u64::from(args.trials), MAX_TRIALS),
    ] {
        if value > max {
            return Err(InputError::new(
                format!("{flag} {value}"),
                format!("at most {max} (docs/limits.md; more than 1000 --trials also need --yes)"),
            ));
        }
    }
    if u64::from(args.trials) > crate::config::limits::CONFIRM_TRIALS && !args.yes {
        return Err(InputError::new(
            format!("--trials {}", args.trials),
            format!(
                "more than {} trials per configuration; pass --yes to go ahead (docs/limits.md)",
                crate::config::limits::CONFIRM_TRIALS
            ),
        ));
    }
    if args.max_rows == 0 {
        return Err(InputError::new("--max-rows 0", "a transaction has at least one row"));
    }
    let kill_within = humantime::parse_duration(args.kill_within.trim())
        .map_err(|e| InputError::new(format!("--kill-within {}", args.kill_within), e.to_string()))?;
    if kill_within > MAX_KILL_WITHIN {
        return Err(InputError::new(
            format!("--kill-within {}", args.kill_within),
            format!(
                "at most {} (docs/limits.md)",
                humantime::format_duration(MAX_KILL_WITHIN)
            ),
        ));
    }
    if args.transactions == 0 {
        return Err(InputError::new(
            "--transactions 0",
            "give at least one transaction per trial",
        ));
    }
    use crate::cli::CrashMethod;
    let power = matches!(args.method, CrashMethod::PowerLoss | CrashMethod::Both);
    if args.cross_check && !power {
        return Err(InputError::new(
            "--cross-check",
            "applies to simulated power loss: use --method power-loss or both",
        ));
    }
    Ok(crash::Options {
        kill: matches!(args.method, CrashMethod::Kill | CrashMethod::Both),
        power_models: if power { dedup(&args.models) } else { Vec::new() },
        transactions: args.transactions,
        cross_check: args.cross_check,
        trials: args.trials,
        seed: args.seed,
        max_rows: args.max_rows,
        kill_max_delay: kill_within,
        keep_db: args.out.keep_db,
    })
}

pub(crate) fn crash_child(args: CrashChildArgs) -> anyhow::Result<Status> {
    crash::kill::child_main(&args.db, &args.settings, args.seed, args.max_rows)?;
    Ok(Status::Ok)
}

pub(super) fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(*item);
        }
    }
    out
}
