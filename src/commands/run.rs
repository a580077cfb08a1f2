//! `litehammer run`: every matrix cell in turn, the report rewritten after each run.

use super::*;
use crate::cli::RunArgs;
use crate::commands::probe::probe_fsync;
use crate::config::matrix::show_value;
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

pub(crate) fn run(args: RunArgs) -> anyhow::Result<Status> {
    let plan = load_plan(&args.scenario, &args.overrides)?;
    if let Some(spec) = &args.baseline {
        let ids: Vec<&str> = plan.cells.iter().map(|c| c.id.as_str()).collect();
        crate::report::page::check_baseline(&ids, spec)?;
    }
    let (db_dir, _temp_guard) = database_dir(args.out.db_dir.as_deref(), args.out.keep_db)?;
    let mut environment = Environment::capture(&db_dir);
    if !args.no_probe {
        environment.fsync_per_sec = Some(probe_fsync(&db_dir, args.out.quiet)?);
    }
    let started = SystemTime::now();
    let output = args
        .out
        .output
        .clone()
        .unwrap_or_else(|| default_output(&plan.scenario.name, started));
    if !args.out.quiet {
        announce(&plan, &output, &db_dir);
    }
    let mut report = new_report(&plan, environment, started);
    let every = (args.progress_interval > 0.0).then(|| std::time::Duration::from_secs_f64(args.progress_interval));
    let progress = ProgressMode::detect(args.out.quiet, every);
    let opts = RunOptions {
        db_dir: db_dir.clone(),
        keep_db: args.out.keep_db,
        progress,
        repeat: args.repeat,
        template: None,
    };
    let exports = exports(&args);
    let total = plan.cells.len() * args.repeat as usize;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut write_error = None;
    runtime.block_on(async {
        let cancel = driver::install_cancel();
        driver::run_cells(&plan.cells, &opts, &cancel, |run| {
            if !args.out.quiet {
                eprintln!("[{}/{total}] {}", report.runs.len() + 1, progress_line(run));
            }
            report.runs.push(run.clone());
            report.status = Report::overall_status(&report.runs);
            if let Err(e) = write_report(&report, &output).and_then(|()| write_exports(&report, &exports)) {
                write_error.get_or_insert(e);
            }
        })
        .await
    });
    if report.runs.len() < total && report.status == RunStatus::Completed {
        report.status = RunStatus::Interrupted;
    }
    if let Some(sweep) = &plan.scenario.sweep {
        report.findings = crate::findings::sweep::findings(sweep, &report.runs);
    }
    write_report(&report, &output)?;
    write_exports(&report, &exports)?;
    if let Some(e) = write_error {
        return Err(e);
    }
    print!("\n{}", String::from_utf8(table::Terminal.render(&report)?)?);
    warn_if_debug_build();
    println!("\nreport: {}", output.display());
    Ok(final_status(&report, args.fail_on_check))
}

/// The extra files `run` writes after every run, beside the JSON.
pub(super) fn exports(args: &RunArgs) -> Vec<(PathBuf, Box<dyn Exporter>)> {
    [(&args.export_markdown, Format::Md), (&args.export_html, Format::Html)]
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
        RunStatus::Failed => Status::Failed,
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
        s.name,
        plan.source.origin,
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
            crate::report::format::group_rate(&g.name, g.transactions.throughput_per_s, g.transactions.latency_us.p99)
        })
        .collect();
    let verdict = match (&run.verification, &run.error) {
        (_, Some(e)) => format!("FAILED: {e}"),
        (Some(v), _) if v.ok => "verified".to_string(),
        (Some(v), _) => format!("VERIFICATION FAILED (integrity {}, lost {})", v.integrity_check, v.lost),
        (None, None) => String::new(),
    };
    format!("{}: {} — {verdict}", run.id, groups.join(", "))
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
    }
}
