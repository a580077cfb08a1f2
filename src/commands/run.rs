//! `litehammer run`: every matrix cell in turn, the report rewritten after each run.

use super::*;
use crate::cli::RunArgs;
use crate::commands::probe::probe_fsync;
use crate::config::matrix::show_value;
use crate::config::sqlite::{JournalMode, Synchronous};
use crate::config::validate::Plan;
use crate::engine::driver::{self, RunOptions};
use crate::engine::progress::ProgressMode;
use crate::error::Status;
use crate::report::model::Environment;
use crate::report::model::{CheckKind, Report, RunReport, RunStatus, SCHEMA, ScenarioInfo, Tool};
use crate::report::{Exporter, Format, table};
use anyhow::Context;
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
    let mut outputs: Vec<(&str, &Path)> = Vec::new();
    if let Some(o) = &args.out.output {
        outputs.push(("-o", o));
    }
    for (flag, path) in [
        ("--export-markdown", &args.export_markdown),
        ("--export-html", &args.export_html),
        ("--export-csv", &args.export_csv),
    ] {
        if let Some(p) = path {
            outputs.push((flag, p));
        }
    }
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
        announce(&plan, &output, &db_dir);
    }
    let mut report = new_report(&plan, environment, started);
    // Marked partial from its first write until the last run is in it.
    report.status = RunStatus::Partial;
    let exports = exports(&args);
    write_report(&report, &output)?;
    write_exports(&report, &exports)?;
    let every = (args.progress_interval > 0.0).then(|| std::time::Duration::from_secs_f64(args.progress_interval));
    let progress = ProgressMode::detect(args.out.quiet, every);
    let opts = RunOptions {
        db_dir: db_dir.clone(),
        keep_db: args.out.keep_db,
        progress,
        repeat: args.repeat,
        backup,
        template: args.from_db.clone(),
        backends: crate::targets::Backends::new(postgres.clone()),
    };
    let total = plan.cells.len() * args.repeat as usize;
    if args.kill {
        return run_killed(&plan, &opts, report, &output, &exports);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut write_error = None;
    runtime.block_on(async {
        let cancel = driver::install_cancel();
        driver::run_cells(&plan.cells, &opts, &cancel, |run| {
            if !args.out.quiet {
                eprintln!("[{}/{total}] {}", report.runs.len() + 1, progress_line(run));
            }
            report.runs.push(run.clone());
            if let Err(e) = write_report(&report, &output).and_then(|()| write_exports(&report, &exports)) {
                write_error.get_or_insert(e);
            }
        })
        .await
    });
    report.status = Report::overall_status(&report.runs);
    if crate::interrupt::cancelled() {
        report.status = RunStatus::Interrupted;
    }
    if report.runs.len() < total && report.status == RunStatus::Completed {
        report.status = RunStatus::Interrupted;
    }
    if let Some(sweep) = &plan.scenario.sweep {
        report.findings = crate::findings::sweep::findings(sweep, &report.runs);
    }
    report.findings.extend(crate::report::backup::verdicts(&report));
    report
        .findings
        .extend(crate::findings::nplusone::findings(&report.runs));
    if args.durability && !crate::interrupt::cancelled() {
        write_report(&report, &output)?;
        durability_trials(&plan, &mut report, args.trials, &db_dir, args.out.quiet)?;
        report.decision = crate::report::decision::decide(&report)?;
    }
    write_report(&report, &output)?;
    write_exports(&report, &exports)?;
    if let Some(e) = write_error {
        return Err(e);
    }
    print!("\n{}", String::from_utf8(table::Terminal.render(&report)?)?);
    warn_if_debug_build();
    println!("\nreport: {}", output.display());
    if let Ok(Some(id)) = crate::report::snippet::recommended(&report) {
        println!(
            "apply it: litehammer apply {} --for django|rails|laravel|go|node|pragma  ({id})",
            output.display()
        );
    }
    let problems = error_problems(&report);
    for p in &problems {
        eprintln!("error: {p}");
    }
    Ok(match final_status(&report, args.fail_on_check) {
        Status::Ok if !problems.is_empty() => Status::Failed,
        status => status,
    })
}

/// `run --durability`: the crash trials (`crash`'s kill and power-loss methods, every model)
/// once per journal_mode × synchronous of the plan, attached to the first run of each.
fn durability_trials(plan: &Plan, report: &mut Report, trials: u32, db_dir: &Path, quiet: bool) -> anyhow::Result<()> {
    let opts = crate::crash::Options {
        kill: true,
        power_models: crate::crash::model::Model::ALL.to_vec(),
        transactions: 40,
        cross_check: false,
        trials,
        seed: plan.scenario.seed,
        max_rows: 4,
        kill_max_delay: std::time::Duration::from_millis(50),
        keep_db: false,
    };
    let exe = std::env::current_exe().context("cannot find the litehammer binary to run crash workers")?;
    let work = tempfile::Builder::new()
        .prefix("litehammer-crash-")
        .tempdir_in(db_dir)
        .with_context(|| format!("cannot create a directory in {}", db_dir.display()))?;
    let mut done: Vec<(JournalMode, Synchronous)> = Vec::new();
    let cells: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| c.scenario.target == crate::config::postgres::TargetKind::Sqlite)
        .filter(|c| {
            let pair = (c.scenario.sqlite.journal_mode, c.scenario.sqlite.synchronous);
            let fresh = !done.contains(&pair);
            done.push(pair);
            fresh
        })
        .collect();
    for (i, cell) in cells.iter().enumerate() {
        if crate::interrupt::cancelled() {
            break;
        }
        let Some(run) = report.runs.iter_mut().find(|r| r.id == cell.id) else {
            continue;
        };
        let dir = work.path().join(format!("config-{i}"));
        std::fs::create_dir_all(&dir)?;
        let started = std::time::Instant::now();
        let durability = crate::crash::trials(cell, &opts, &dir, &exe);
        if !quiet {
            let summary: Vec<String> = durability
                .results
                .iter()
                .map(|r| {
                    format!(
                        "{} {}/{} losing (max {})",
                        r.label(),
                        r.trials_losing,
                        r.trials,
                        r.max_lost
                    )
                })
                .chain(durability.error.iter().map(|e| format!("FAILED: {e}")))
                .collect();
            eprintln!(
                "[crash {}/{}] {}: {} ({:.1} s)",
                i + 1,
                cells.len(),
                crate::report::format::one_line(&cell.id),
                summary.join("; "),
                started.elapsed().as_secs_f64()
            );
        }
        run.durability = Some(durability);
    }
    Ok(())
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

/// A group's attempts may fail with errors other than busy/locked (constraint, I/O, full
/// disk, ...) in at most this share before the run counts as failed (docs/limits.md).
pub(crate) const MAX_NON_BUSY_ERROR_SHARE: f64 = 0.05;

/// Groups that committed nothing, or failed too often with errors other than busy, each
/// with the first error of each op and of BEGIN/COMMIT.
pub(super) fn error_problems(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    for run in report.runs.iter().filter(|r| r.status == RunStatus::Completed) {
        for g in &run.groups {
            let errors = g.all_errors();
            let non_busy = errors.constraint + errors.other;
            let executed: u64 = g.ops.iter().map(|o| o.count).sum::<u64>() + errors.total();
            let share = if executed == 0 {
                0.0
            } else {
                non_busy as f64 / executed as f64
            };
            // A group starved by busy errors alone is a finding (what litehammer shows), not a failure.
            let why = if g.transactions.committed == 0 && non_busy > 0 {
                "has no committed transaction".to_string()
            } else if share > MAX_NON_BUSY_ERROR_SHARE {
                format!(
                    "{:.0}% of its statements failed with errors other than busy (more than {:.0}%)",
                    share * 100.0,
                    MAX_NON_BUSY_ERROR_SHARE * 100.0
                )
            } else {
                continue;
            };
            let mut first: Vec<String> = g
                .ops
                .iter()
                .filter_map(|o| o.first_error.as_ref().map(|e| format!("op `{}`: {e}", o.name)))
                .collect();
            if let Some(e) = &g.transactions.first_error {
                first.push(format!("BEGIN/COMMIT: {e}"));
            }
            let first = if first.is_empty() {
                String::new()
            } else {
                format!("; first errors: {}", first.join("; "))
            };
            problems.push(format!("run `{}`: group `{}` {why}{first}", run.id, g.name));
        }
    }
    problems
}

/// `run --kill`: per cell, a ledger writer in a child process is SIGKILLed while the backup
/// runs; then the backup is restored and checked (`crash::backup`).
fn run_killed(
    plan: &Plan,
    opts: &RunOptions,
    mut report: Report,
    output: &Path,
    exports: &[(PathBuf, Box<dyn Exporter>)],
) -> anyhow::Result<Status> {
    let exe = std::env::current_exe().context("cannot find the litehammer binary to re-execute")?;
    for (i, cell) in plan.cells.iter().filter(|c| !c.scenario.backup.is_none()).enumerate() {
        let run = crate::crash::backup::killed_run(cell, i, &exe, &opts.db_dir, &opts.backup, opts.keep_db);
        eprintln!("[{}] {}", i + 1, progress_line(&run));
        report.runs.push(run);
        report.status = Report::overall_status(&report.runs);
        write_report(&report, output)?;
    }
    anyhow::ensure!(
        !report.runs.is_empty(),
        "--kill needs a backup method: --backup litestream, vacuum-into or backup-api"
    );
    report.findings.extend(crate::report::backup::verdicts(&report));
    report
        .findings
        .extend(crate::findings::nplusone::findings(&report.runs));
    write_report(&report, output)?;
    write_exports(&report, exports)?;
    print!("\n{}", String::from_utf8(table::Terminal.render(&report)?)?);
    println!("\nreport: {}", output.display());
    Ok(final_status(&report, false))
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

pub(super) fn write_exports(report: &Report, exports: &[(PathBuf, Box<dyn Exporter>)]) -> anyhow::Result<()> {
    for (path, exporter) in exports {
        let bytes = exporter.render(report)?;
        crate::report::write_file(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub(super) fn final_status(report: &Report, fail_on_check: bool) -> Status {
    let unverified = report
        .runs
        .iter()
        .any(|r| r.verification.as_ref().is_some_and(|v| !v.ok));
    let check_failed = report
        .runs
        .iter()
        .filter_map(|r| r.verification.as_ref())
        .any(|v| v.scenario_checks.iter().any(|c| c.kind == CheckKind::Metric && !c.ok));
    match report.status {
        RunStatus::Interrupted => Status::Interrupted,
        RunStatus::Failed | RunStatus::Partial => Status::Failed,
        RunStatus::Completed if unverified || (fail_on_check && check_failed) => Status::Failed,
        RunStatus::Completed => Status::Ok,
    }
}

pub(super) fn announce(plan: &Plan, output: &Path, db_dir: &Path) {
    let s = &plan.scenario;
    let length = match (&s.duration, &s.operations) {
        (Some(d), _) => format!("{} each", d.get_ref()),
        (_, Some(n)) => format!("{} transactions each", n.get_ref()),
        _ => String::new(),
    };
    eprintln!(
        "litehammer {}: scenario `{}` ({}), {} run(s), {length} after {} warm-up, SQLite {}",
        env!("CARGO_PKG_VERSION"),
        crate::report::format::one_line(&s.name),
        crate::report::format::one_line(&plan.source.origin),
        plan.cells.len(),
        s.warmup,
        rusqlite::version()
    );
    for note in crate::config::matrix::pinned_notes(&plan.axes) {
        eprintln!("pinned: {note}");
    }
    eprintln!("databases in {}; report → {}", db_dir.display(), output.display());
}

pub(super) fn progress_line(run: &RunReport) -> String {
    let groups: Vec<String> = run
        .groups
        .iter()
        .map(|g| {
            crate::report::format::group_rate(
                &crate::report::format::one_line(&g.name),
                g.transactions.throughput_per_s,
                g.transactions.latency_us.p99,
            )
        })
        .collect();
    let verdict = match (&run.verification, &run.error) {
        (_, Some(e)) => format!("FAILED: {e}"),
        (Some(v), _) if v.ok => "verified".to_string(),
        (Some(v), _) => format!("VERIFICATION FAILED (integrity {}, lost {})", v.integrity_check, v.lost),
        (None, None) => String::new(),
    };
    format!(
        "{}: {} — {verdict}",
        crate::report::format::one_line(&run.id),
        groups.join(", ")
    )
}

pub(super) fn new_report(plan: &Plan, environment: Environment, started: SystemTime) -> Report {
    // The resolved scenario shows the axes that ran (after --matrix and --set).
    let mut scenario = plan.scenario.clone();
    scenario.matrix = plan
        .axes
        .iter()
        .map(|a| {
            let shown = a.values.iter().map(|v| toml::Value::String(show_value(v))).collect();
            (a.key.clone(), toml::Spanned::new(0..0, shown))
        })
        .collect();
    let resolved = serde_json::to_value(&scenario).unwrap_or(serde_json::Value::Null);
    Report {
        schema: SCHEMA.to_string(),
        tool: Tool {
            name: "litehammer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
        created_at: humantime::format_rfc3339_seconds(started).to_string(),
        status: RunStatus::Completed,
        environment,
        scenario: ScenarioInfo {
            name: plan.scenario.name.clone(),
            description: plan.scenario.description.clone(),
            source: plan.source.origin.clone(),
            sha256: plan.source.sha256(),
            resolved,
            pinned: crate::config::matrix::pinned_notes(&plan.axes),
        },
        runs: Vec::new(),
        findings: Vec::new(),
        decision: None,
    }
}
