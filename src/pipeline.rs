//! One run, from plan to final report: the runs (the report rewritten after each), the
//! analysis (findings, the `--durability` crash trials and decision, each stored in the
//! report), the final report and its status. The commands map their arguments to it and
//! print what it returns.

use crate::analysis::stats::BadHistogram;
use crate::analysis::{self, status};
use crate::config::matrix::show_value;
use crate::config::sqlite::{JournalMode, Synchronous};
use crate::config::validate::Plan;
use crate::engine::driver::{self, RunOptions};
use crate::error::Status;
use crate::report::model::{Environment, Report, RunReport, RunStatus, SCHEMA, ScenarioInfo, Tool};
use crate::report::{Exporter, RenderError, json::Json};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Why the pipeline stopped before its final report.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PipelineError {
    #[error("cannot write the report to {}", path.display())]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    WriteExport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error(transparent)]
    Analysis(#[from] BadHistogram),
    #[error("cannot find the litehammer binary to {what}")]
    Exe {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create a directory in {}", path.display())]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A saved report that cannot be read (exit code 2).
    #[error("{0}")]
    Input(#[from] crate::error::InputError),
    #[error("--kill needs a backup method: --backup litestream, vacuum-into or backup-api")]
    NothingToKill,
}

/// Where the report goes: the JSON file and the exports rewritten beside it.
pub(crate) struct Outputs {
    pub report: PathBuf,
    pub exports: Vec<(PathBuf, Box<dyn Exporter>)>,
}

/// What a run asks beside the plan and the engine's options.
pub(crate) struct Steps {
    pub quiet: bool,
    /// `run --durability --trials N`: crash trials per journal_mode × synchronous.
    pub durability_trials: Option<u32>,
    /// `--fail-on-check`: a failed metric check fails the run.
    pub fail_on_check: bool,
    /// `--fail-on-noise`: a run the noise guard marked (or fsync drift) fails the run.
    pub fail_on_noise: bool,
    /// Probe the fsync rate again after the runs (off with `--no-probe`).
    pub probe_after: bool,
}

/// The final report, and how the run ended: its status and the error problems behind it.
pub(crate) struct Finished {
    pub report: Report,
    pub status: Status,
    /// Groups whose errors fail the run (`analysis::status::error_problems`).
    pub problems: Vec<String>,
}

/// Runs every cell of the plan, then analyses the runs; the report (and its exports) is
/// written before the first run, after each, and at the end.
pub(crate) fn run(
    plan: &Plan,
    opts: &RunOptions,
    mut report: Report,
    outputs: &Outputs,
    steps: &Steps,
) -> Result<Finished, PipelineError> {
    start(&mut report, outputs)?;
    let total = plan.cells.len() * opts.repeat as usize;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut write_error = None;
    runtime.block_on(async {
        let cancel = driver::install_cancel();
        driver::run_cells(&plan.cells, opts, &cancel, |run| {
            if !steps.quiet {
                eprintln!("[{}/{total}] {}", report.runs.len() + 1, progress_line(run));
            }
            report.runs.push(run.clone());
            // The report lists runs by configuration (matrix order), then round; `sequence`
            // keeps the order they ran in.
            let cell = |r: &RunReport| plan.cells.iter().position(|c| c.id == r.id);
            report.runs.sort_by_key(|r| (cell(r), r.repeat));
            if let Err(e) = analysis::refresh(&mut report)
                .map_err(PipelineError::from)
                .and_then(|()| write(&report, outputs))
            {
                write_error.get_or_insert(e);
            }
        })
        .await
    });
    report.status = status::overall(&report.runs);
    if crate::interrupt::cancelled() || (report.runs.len() < total && report.status == RunStatus::Completed) {
        report.status = RunStatus::Interrupted;
    }
    if steps.probe_after && !crate::interrupt::cancelled() {
        let time = std::time::Duration::from_millis(300);
        report.environment.fsync_per_sec_after =
            crate::machine::probe::sync_rate(&opts.db_dir, time, crate::machine::probe::SyncKind::Fsync).ok();
    }
    analysis::refresh(&mut report)?;
    report.findings = analysis::findings(&report, plan.scenario.sweep.as_ref());
    if let Some(trials) = steps.durability_trials
        && !crate::interrupt::cancelled()
    {
        write_report(&report, &outputs.report)?;
        durability_trials(plan, &mut report, trials, &opts.db_dir, steps.quiet)?;
        report.decision = analysis::decision::decide(&report)?;
    }
    write(&report, outputs)?;
    if let Some(e) = write_error {
        return Err(e);
    }
    let mut problems = status::error_problems(&report);
    problems.extend(status::invariant_problems(&report));
    if steps.fail_on_noise && !report.noise_warnings.is_empty() {
        problems.push("--fail-on-noise: the noise guard marked this report (warnings above the verdict)".to_string());
    }
    let status = match status::final_status(&report, steps.fail_on_check) {
        Status::Ok if !problems.is_empty() => Status::Failed,
        status => status,
    };
    Ok(Finished {
        report,
        status,
        problems,
    })
}

/// `run --kill`: per cell with a backup, a ledger writer in a child process is SIGKILLed
/// while the backup runs; then the backup is restored and checked (`crash::backup`).
pub(crate) fn run_killed(
    plan: &Plan,
    opts: &RunOptions,
    mut report: Report,
    outputs: &Outputs,
) -> Result<Finished, PipelineError> {
    start(&mut report, outputs)?;
    let exe = std::env::current_exe().map_err(|source| PipelineError::Exe {
        what: "re-execute",
        source,
    })?;
    for (i, cell) in plan.cells.iter().filter(|c| !c.scenario.backup.is_none()).enumerate() {
        let run = crate::crash::backup::killed_run(cell, i, &exe, &opts.db_dir, &opts.backup, opts.keep_db);
        eprintln!("[{}] {}", i + 1, progress_line(&run));
        report.runs.push(run);
        report.status = status::overall(&report.runs);
        write_report(&report, &outputs.report)?;
    }
    if report.runs.is_empty() {
        return Err(PipelineError::NothingToKill);
    }
    analysis::refresh(&mut report)?;
    report.findings = analysis::findings(&report, None);
    write(&report, outputs)?;
    let status = status::final_status(&report, false);
    Ok(Finished {
        report,
        status,
        problems: Vec::new(),
    })
}

/// `litehammer crash`: each configuration's crash trials in turn (`crash::run_config`), the
/// report rewritten after each.
pub(crate) fn crash(
    configs: &crate::crash::config::Configurations,
    opts: &crate::crash::Options,
    mut report: Report,
    output: &Path,
    work: &Path,
    exe: &Path,
    quiet: bool,
) -> Result<Report, PipelineError> {
    report.status = RunStatus::Partial;
    write_report(&report, output)?;
    let total = configs.plan.cells.len();
    for (i, cell) in configs.plan.cells.iter().enumerate() {
        if crate::interrupt::cancelled() {
            break;
        }
        let dir = work.join(format!("config-{i}"));
        std::fs::create_dir_all(&dir)?;
        let run = crate::crash::run_config(cell, &configs.read_back[i], opts, &dir, exe);
        if !quiet {
            eprintln!("[{}/{total}] {}", i + 1, crate::crash::progress_line(&run));
        }
        report.runs.push(run);
        write_report(&report, output)?;
    }
    report.status = status::overall(&report.runs);
    if crate::interrupt::cancelled() {
        report.status = RunStatus::Interrupted;
    }
    write_report(&report, output)?;
    Ok(report)
}

/// `run --durability`: the crash trials (`crash`'s kill and power-loss methods, every model)
/// once per journal_mode × synchronous of the plan, attached to the first run of each.
fn durability_trials(
    plan: &Plan,
    report: &mut Report,
    trials: u32,
    db_dir: &Path,
    quiet: bool,
) -> Result<(), PipelineError> {
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
    let exe = std::env::current_exe().map_err(|source| PipelineError::Exe {
        what: "run crash workers",
        source,
    })?;
    let work = tempfile::Builder::new()
        .prefix("litehammer-crash-")
        .tempdir_in(db_dir)
        .map_err(|source| PipelineError::WorkDir {
            path: db_dir.to_path_buf(),
            source,
        })?;
    let mut done: Vec<(JournalMode, Synchronous)> = Vec::new();
    let cells: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| crate::targets::profile(c.scenario.target).file)
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

/// The first write: the report marked partial until the last run is in it.
fn start(report: &mut Report, outputs: &Outputs) -> Result<(), PipelineError> {
    report.status = RunStatus::Partial;
    write(report, outputs)
}

/// Rewrites the report and every export.
fn write(report: &Report, outputs: &Outputs) -> Result<(), PipelineError> {
    write_report(report, &outputs.report)?;
    write_exports(report, &outputs.exports)
}

pub(crate) fn write_report(report: &Report, path: &Path) -> Result<(), PipelineError> {
    let bytes = Json.render(report)?;
    crate::report::write_file(path, &bytes).map_err(|source| PipelineError::WriteReport {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn write_exports(report: &Report, exports: &[(PathBuf, Box<dyn Exporter>)]) -> Result<(), PipelineError> {
    for (path, exporter) in exports {
        let bytes = exporter.render(report)?;
        crate::report::write_file(path, &bytes).map_err(|source| PipelineError::WriteExport {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// A saved report as the views expect it: the results a report cut short before its
/// analysis lacks are computed now (`analysis::complete`).
pub(crate) fn load_report(path: &Path) -> Result<Report, PipelineError> {
    let mut report = crate::report::load(path)?;
    analysis::complete(&mut report)?;
    Ok(report)
}

/// The run's first lines on stderr: what runs, for how long, and where its files go.
pub(crate) fn announce(plan: &Plan, output: &Path, db_dir: &Path) {
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

/// One line per finished run: each group's rate and p99, and whether it verified.
pub(crate) fn progress_line(run: &RunReport) -> String {
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
        crate::report::format::one_line(&crate::report::format::round_label(run)),
        groups.join(", ")
    )
}

/// The report before its first run: the plan's scenario as resolved, no runs yet.
pub(crate) fn new_report(plan: &Plan, environment: Environment, started: SystemTime) -> Report {
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
        verdict: Vec::new(),
        noise_warnings: Vec::new(),
        findings: Vec::new(),
        decision: None,
        capacity: None,
    }
}

/// `litehammer capacity`: what the rate search needs beside the plan.
pub(crate) struct CapacityPlan {
    pub slo: Vec<crate::config::slo::Slo>,
    pub budget: std::time::Duration,
    /// Each step's measured phase and warm-up.
    pub step: std::time::Duration,
    pub warmup: std::time::Duration,
    /// The first offered rate, and the search's resolution (0.1: within 10 %).
    pub start_rate: f64,
    pub resolution: f64,
    pub quiet: bool,
    /// `--durability`: crash trials per configuration and method/model after the search.
    pub durability_trials: Option<u32>,
}

/// Runs each cell's rate search (`analysis::capacity`): short open-loop runs at offered
/// rates, the budget shared evenly among the cells. The report holds every step, and in
/// `runs` each cell's last run at its capacity (which the usual views show).
pub(crate) fn capacity(
    plan: &Plan,
    opts: &RunOptions,
    mut report: Report,
    outputs: &Outputs,
    cap: &CapacityPlan,
) -> Result<Finished, PipelineError> {
    use crate::analysis::capacity::{Next, Search, judge, result};
    start(&mut report, outputs)?;
    report.capacity = Some(crate::report::model::capacity::CapacityReport {
        slo: cap.slo.iter().map(ToString::to_string).collect(),
        resolution: cap.resolution,
        budget_s: cap.budget.as_secs_f64(),
        step_s: cap.step.as_secs_f64(),
        configurations: Vec::new(),
    });
    let began = std::time::Instant::now();
    let share = cap.budget / plan.cells.len().max(1) as u32;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut write_error = None;
    runtime.block_on(async {
        let cancel = driver::install_cancel();
        for (i, cell) in plan.cells.iter().enumerate() {
            let deadline = began + share * (i as u32 + 1);
            let mut search = Search::new(
                cap.start_rate,
                crate::config::slo::RATE_FLOOR,
                crate::config::slo::RATE_CEILING,
                cap.resolution,
            );
            let mut steps = Vec::new();
            let mut at_capacity: Option<RunReport> = None;
            let mut budget_left = true;
            while let Next::Step(rate) = search.next() {
                if crate::interrupt::cancelled() {
                    break;
                }
                if std::time::Instant::now() + step_time(cell, rate, cap) > deadline {
                    budget_left = false;
                    break;
                }
                let step_cell = at_rate(cell, rate, cap);
                let Some(run) = driver::run_cells(&[step_cell], opts, &cancel, |_| {})
                    .await
                    .into_iter()
                    .next()
                else {
                    break;
                };
                if run.status == RunStatus::Interrupted {
                    break;
                }
                let step = judge(&run, rate, &cap.slo);
                if !cap.quiet {
                    eprintln!(
                        "[{}] {rate}/s offered: {:.1}/s, p99 {:.1} ms — {}",
                        crate::report::format::one_line(&cell.id),
                        step.achieved_per_s,
                        step.p99_ms,
                        step.failed
                            .as_deref()
                            .map_or("ok".to_string(), crate::report::format::one_line)
                    );
                }
                search.record(rate, step.passed);
                if step.passed && search.highest_pass() == Some(rate) {
                    at_capacity = Some(run);
                }
                steps.push(step);
                let partial = result(&cell.id, &search, steps.clone(), budget_left);
                if let Some(c) = report.capacity.as_mut() {
                    c.configurations.truncate(i);
                    c.configurations.push(partial);
                }
                if let Err(e) = write(&report, outputs) {
                    write_error.get_or_insert(e);
                }
            }
            let done = result(&cell.id, &search, steps, budget_left);
            if let Some(run) = at_capacity.filter(|_| done.capacity_per_s > 0.0) {
                report.runs.push(run);
            }
            if let Some(c) = report.capacity.as_mut() {
                c.configurations.truncate(i);
                c.configurations.push(done);
            }
            if crate::interrupt::cancelled() {
                break;
            }
        }
    });
    report.status = if crate::interrupt::cancelled() {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    if let Some(trials) = cap.durability_trials
        && !crate::interrupt::cancelled()
    {
        write_report(&report, &outputs.report)?;
        durability_trials(plan, &mut report, trials, &opts.db_dir, cap.quiet)?;
    }
    if let Some(c) = &report.capacity {
        report.verdict = crate::analysis::capacity::verdict(c);
        report
            .verdict
            .extend(crate::analysis::capacity::durability_verdict(&report));
    }
    write(&report, outputs)?;
    if let Some(e) = write_error {
        return Err(e);
    }
    let status = match report.status {
        RunStatus::Interrupted => Status::Interrupted,
        _ => Status::Ok,
    };
    Ok(Finished {
        report,
        status,
        problems: Vec::new(),
    })
}

/// The wall time a step at `rate` takes: its warm-up and measured phase.
fn step_time(cell: &crate::config::matrix::Cell, rate: f64, cap: &CapacityPlan) -> std::time::Duration {
    cap.warmup + measured_time(cell, rate, cap)
}

/// A step's measured phase: `--step`, or longer at low rates so that every worker sees a few
/// arrivals (at most 4 steps).
fn measured_time(cell: &crate::config::matrix::Cell, rate: f64, cap: &CapacityPlan) -> std::time::Duration {
    let workers: u32 = cell.scenario.group.iter().map(|g| g.workers.get()).sum();
    let enough = std::time::Duration::from_secs_f64(f64::from(4 * workers.max(1)) / rate);
    enough.clamp(cap.step, cap.step * 4)
}

/// A cell at an offered rate: every group open-loop at its share of `rate` (by workers),
/// clients dropped (the workers are the concurrency cap; arrivals beyond them queue, and
/// their wait is part of the latency), a short warm-up and measured phase.
fn at_rate(cell: &crate::config::matrix::Cell, rate: f64, cap: &CapacityPlan) -> crate::config::matrix::Cell {
    let measured = measured_time(cell, rate, cap);
    let mut cell = cell.clone();
    let s = &mut cell.scenario;
    let workers: u32 = s.group.iter().map(|g| g.workers.get()).sum();
    for g in &mut s.group {
        g.rate = Some(rate * f64::from(g.workers.get()) / f64::from(workers.max(1)));
        g.clients = None;
    }
    s.duration = Some(toml::Spanned::new(
        0..0,
        crate::config::duration::DurationValue(measured),
    ));
    s.operations = None;
    s.warmup = crate::config::duration::DurationValue(cap.warmup);
    cell
}
