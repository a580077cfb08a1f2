//! The subcommands: glue between the CLI, the scenario loader, the driver and the exporters.

use crate::cli::{OverrideArgs, ProbeArgs, RunArgs, ValidateArgs};
use crate::driver::{self, RunOptions};
use crate::env::{self, Environment};
use crate::error::{InputError, Status};
use crate::probe::{self, ProbeTimes, SyncKind};
use crate::report::model::{Report, RunReport, RunStatus, SCHEMA, ScenarioInfo, Tool};
use crate::report::{Exporter, json::Json, table};
use crate::scenario::builtin;
use crate::scenario::matrix::show_value;
use crate::scenario::validate::{self, Overrides, Plan};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub fn run(args: RunArgs) -> anyhow::Result<Status> {
    let plan = validate::load(&args.scenario, &overrides(&args.overrides)?)?;
    let (db_dir, _temp_guard) = database_dir(args.db_dir.as_deref(), args.keep_db)?;
    let mut environment = Environment::capture(&db_dir);
    if !args.no_probe {
        environment.fsync_per_sec = Some(probe_fsync(&db_dir, args.quiet)?);
    }
    let started = SystemTime::now();
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&plan.scenario.name, started));
    if !args.quiet {
        announce(&plan, &output, &db_dir);
    }
    let mut report = new_report(&plan, environment, started);
    let opts = RunOptions {
        db_dir: db_dir.clone(),
        keep_db: args.keep_db,
    };
    let total = plan.cells.len();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut write_error = None;
    runtime.block_on(async {
        let cancel = driver::install_cancel();
        driver::run_cells(&plan.cells, &opts, &cancel, |run| {
            if !args.quiet {
                eprintln!("[{}/{total}] {}", report.runs.len() + 1, progress_line(run));
            }
            report.runs.push(run.clone());
            report.status = Report::overall_status(&report.runs);
            if let Err(e) = write_report(&report, &output) {
                write_error.get_or_insert(e);
            }
        })
        .await
    });
    if report.runs.len() < total && report.status == RunStatus::Completed {
        report.status = RunStatus::Interrupted;
        write_report(&report, &output)?;
    }
    if let Some(e) = write_error {
        return Err(e);
    }
    print!("\n{}", String::from_utf8(table::Terminal.render(&report)?)?);
    warn_if_debug_build();
    println!("\nreport: {}", output.display());
    Ok(final_status(&report))
}

fn final_status(report: &Report) -> Status {
    let unverified = report
        .runs
        .iter()
        .any(|r| r.verification.as_ref().is_some_and(|v| !v.ok));
    match report.status {
        RunStatus::Interrupted => Status::Interrupted,
        RunStatus::Failed => Status::Failed,
        RunStatus::Completed if unverified => Status::Failed,
        RunStatus::Completed => Status::Ok,
    }
}

fn warn_if_debug_build() {
    if env::build_profile() == "debug" {
        eprintln!(
            "warning: this is a debug build; its numbers measure the harness more than SQLite. Use `cargo run --release`."
        );
    }
}

/// Time of the fsync probe `run` does before the first run (`--no-probe` skips it).
const RUN_PROBE_TIME: std::time::Duration = std::time::Duration::from_millis(300);

/// The db dir's fsync rate for the report, with the filesystem's durability warnings.
fn probe_fsync(db_dir: &Path, quiet: bool) -> anyhow::Result<f64> {
    let rate = probe::sync_rate(db_dir, RUN_PROBE_TIME, SyncKind::Fsync)?;
    if !quiet {
        for w in probe::durability_warnings(&env::filesystem_of(db_dir), rate) {
            eprintln!("warning: {w}");
        }
    }
    Ok(rate)
}

pub fn probe(args: ProbeArgs) -> anyhow::Result<Status> {
    let (dir, _temp_guard) = database_dir(args.db_dir.as_deref(), false)?;
    let times = if args.quick {
        ProbeTimes::QUICK
    } else {
        ProbeTimes::DEFAULT
    };
    let report = probe::probe(&dir, times)?;
    print!("{}", probe::to_text(&report));
    if let Some(path) = &args.output {
        let bytes = serde_json::to_vec_pretty(&report)?;
        crate::report::write_file(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nprobe: {}", path.display());
    }
    warn_if_debug_build();
    Ok(Status::Ok)
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<Status> {
    let plan = validate::load(&args.scenario, &overrides(&args.overrides)?)?;
    let s = &plan.scenario;
    println!(
        "{}: ok — scenario `{}`, {} run(s), {} group(s), {} worker(s); every statement prepared against the set-up schema",
        plan.source.origin,
        s.name,
        plan.cells.len(),
        s.group.len(),
        s.total_workers()
    );
    for cell in &plan.cells {
        println!("  run {}", cell.id);
    }
    Ok(Status::Ok)
}

pub fn list_scenarios() -> anyhow::Result<Status> {
    for name in builtin::names() {
        let source = crate::scenario::Source::open(name)?;
        let description = source.parse().map(|s| s.description).unwrap_or_default();
        let marker = if name == builtin::DEFAULT { " (default)" } else { "" };
        println!("{name}{marker}\n    {description}");
    }
    Ok(Status::Ok)
}

fn overrides(args: &OverrideArgs) -> Result<Overrides, InputError> {
    let mut set = Vec::new();
    let named = [
        ("duration", &args.duration),
        ("operations", &args.operations),
        ("warmup", &args.warmup),
        ("seed", &args.seed),
    ];
    for (key, value) in named {
        if let Some(v) = value {
            set.push((key.to_string(), v.clone()));
        }
    }
    for raw in &args.set {
        set.push(split_assignment("--set", raw)?);
    }
    let matrix = args
        .matrix
        .iter()
        .map(|raw| split_assignment("--matrix", raw))
        .collect::<Result<_, _>>()?;
    Ok(Overrides { set, matrix })
}

fn split_assignment(flag: &str, raw: &str) -> Result<(String, String), InputError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(InputError::new(format!("{flag} {raw}"), "expected KEY=VALUE")),
    }
}

/// The user's `--db-dir` (checked: exists, is a directory, is writable), or a new temp dir
/// that is removed afterwards unless the databases are kept.
fn database_dir(dir: Option<&Path>, keep: bool) -> Result<(PathBuf, Option<tempfile::TempDir>), InputError> {
    let Some(dir) = dir else {
        let temp = tempfile::Builder::new()
            .prefix("litehammer-")
            .tempdir()
            .map_err(|e| InputError::new("--db-dir", format!("cannot create a temporary directory: {e}")))?;
        if keep {
            return Ok((temp.keep(), None));
        }
        return Ok((temp.path().to_path_buf(), Some(temp)));
    };
    let flag = format!("--db-dir {}", dir.display());
    let meta = std::fs::metadata(dir).map_err(|e| InputError::new(&flag, format!("directory not found: {e}")))?;
    if !meta.is_dir() {
        return Err(InputError::new(&flag, "not a directory"));
    }
    tempfile::tempfile_in(dir).map_err(|e| InputError::new(&flag, format!("directory is not writable: {e}")))?;
    Ok((dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()), None))
}

fn default_output(name: &str, started: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let compact: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    PathBuf::from("results").join(format!("{safe}-{}-{}.json", &compact[..8], &compact[8..14]))
}

fn announce(plan: &Plan, output: &Path, db_dir: &Path) {
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
    eprintln!("databases in {}; report → {}", db_dir.display(), output.display());
}

fn progress_line(run: &RunReport) -> String {
    let groups: Vec<String> = run
        .groups
        .iter()
        .map(|g| {
            format!(
                "{} {} tx/s p99 {}",
                g.name,
                table::format_rate(g.transactions.throughput_per_s),
                table::format_us(g.transactions.latency_us.p99)
            )
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

fn new_report(plan: &Plan, environment: Environment, started: SystemTime) -> Report {
    let mut resolved = serde_json::to_value(&plan.scenario).unwrap_or(serde_json::Value::Null);
    let axes: serde_json::Map<String, serde_json::Value> = plan
        .axes
        .iter()
        .map(|a| {
            (
                a.key.clone(),
                a.values
                    .iter()
                    .map(|v| serde_json::Value::String(show_value(v)))
                    .collect(),
            )
        })
        .collect();
    resolved["matrix"] = serde_json::Value::Object(axes);
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
        },
        runs: Vec::new(),
    }
}

fn write_report(report: &Report, path: &Path) -> anyhow::Result<()> {
    let bytes = Json.render(report)?;
    crate::report::write_file(path, &bytes).with_context(|| format!("cannot write the report to {}", path.display()))
}
