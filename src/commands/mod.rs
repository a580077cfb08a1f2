//! The subcommands: glue between the CLI, the scenario loader, the driver and the exporters.

use crate::cli::{CompareArgs, CrashArgs, CrashChildArgs, OverrideArgs, ProbeArgs, ReportArgs, RunArgs, ValidateArgs};
use crate::config::builtin;
use crate::config::matrix::show_value;
use crate::config::validate::{self, Overrides, Plan};
use crate::crash;
use crate::engine::driver::{self, RunOptions};
use crate::engine::env;
use crate::engine::probe::{self, ProbeTimes, SyncKind};
use crate::engine::progress::ProgressMode;
use crate::error::{InputError, Status};
use crate::report::model::Environment;
use crate::report::model::{Report, RunReport, RunStatus, SCHEMA, ScenarioInfo, Tool};
use crate::report::{Exporter, Format, durability, json::Json, table};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Loads, checks and expands a scenario, then prepares everything it will execute.
fn load_plan(scenario: &str, args: &crate::cli::OverrideArgs) -> anyhow::Result<Plan> {
    let plan = validate::load(scenario, &overrides(args)?)?;
    crate::workload::check::against_sqlite(&plan)?;
    Ok(plan)
}

pub fn run(args: RunArgs) -> anyhow::Result<Status> {
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

/// `litehammer report`: renders a saved JSON report to stdout or a file.
pub fn report(args: ReportArgs) -> anyhow::Result<Status> {
    let report = crate::report::load(&args.input)?;
    let bytes = args.format.exporter(args.baseline.clone()).render(&report)?;
    match &args.output {
        Some(path) => {
            crate::report::write_file(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(Status::Ok)
}

/// `litehammer compare A B...`: each B against A; fails (1) on `--fail-if-slower` drops.
pub fn compare(args: CompareArgs) -> anyhow::Result<Status> {
    for (flag, value) in [("--fail-if-slower", args.fail_if_slower), ("--noise", Some(args.noise))] {
        if let Some(v) = value.filter(|v| !(0.0..=100.0).contains(v)) {
            return Err(InputError::new(format!("{flag} {v}"), "expected a percentage between 0 and 100").into());
        }
    }
    let a_path = &args.reports[0];
    let a = crate::report::load(a_path)?;
    let mut slower = Vec::new();
    for b_path in &args.reports[1..] {
        let b = crate::report::load(b_path)?;
        let c = crate::report::compare::compare(&a, &b, args.noise)?;
        if c.rows.is_empty() {
            let origin = format!("{} vs {}", a_path.display(), b_path.display());
            return Err(InputError::new(
                origin,
                "no configuration has results in both reports (runs are matched by id)",
            )
            .into());
        }
        println!("A = {} (baseline)\nB = {}", a_path.display(), b_path.display());
        c.warnings.iter().for_each(|w| println!("warning: {w}"));
        let table = c.table(args.fail_if_slower);
        println!(
            "\n{}",
            if args.markdown {
                table.to_markdown()
            } else {
                table.to_text()
            }
        );
        for (side, ids) in [("A", &c.only_a), ("B", &c.only_b)] {
            ids.iter().for_each(|id| println!("only in {side}: {id}"));
        }
        if let Some(pct) = args.fail_if_slower {
            let failing = c.rows.iter().filter(|r| r.slower_than(pct));
            slower.extend(failing.map(|r| format!("{} {} ({})", r.id, r.group, b_path.display())));
        }
    }
    println!(
        "~ marks a ratio within noise: inside the repeats' min–max ranges when both reports have repeats, \
         else within ±{}%.",
        args.noise
    );
    if slower.is_empty() {
        return Ok(Status::Ok);
    }
    eprintln!(
        "throughput dropped by more than {}% in: {}",
        args.fail_if_slower.unwrap_or_default(),
        slower.join("; ")
    );
    Ok(Status::Failed)
}

/// The extra files `run` writes after every run, beside the JSON.
fn exports(args: &RunArgs) -> Vec<(PathBuf, Box<dyn Exporter>)> {
    [(&args.export_markdown, Format::Md), (&args.export_html, Format::Html)]
        .into_iter()
        .filter_map(|(path, format)| Some((path.clone()?, format.exporter(args.baseline.clone()))))
        .collect()
}

fn write_exports(report: &Report, exports: &[(PathBuf, Box<dyn Exporter>)]) -> anyhow::Result<()> {
    for (path, exporter) in exports {
        let bytes = exporter.render(report)?;
        crate::report::write_file(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn final_status(report: &Report, fail_on_check: bool) -> Status {
    let unverified = report
        .runs
        .iter()
        .any(|r| r.verification.as_ref().is_some_and(|v| !v.ok));
    let check_failed = report
        .runs
        .iter()
        .filter_map(|r| r.verification.as_ref())
        .any(|v| v.scenario_checks.iter().any(|c| c.kind == "metric" && !c.ok));
    match report.status {
        RunStatus::Interrupted => Status::Interrupted,
        RunStatus::Failed => Status::Failed,
        RunStatus::Completed if unverified || (fail_on_check && check_failed) => Status::Failed,
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
    let plan = load_plan(&args.scenario, &args.overrides)?;
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
        let source = crate::config::Source::open(name)?;
        let description = source.parse().map(|s| s.description).unwrap_or_default();
        let marker = if name == builtin::DEFAULT { " (default)" } else { "" };
        println!("{name}{marker}\n    {description}");
    }
    Ok(Status::Ok)
}

pub fn crash(args: CrashArgs) -> anyhow::Result<Status> {
    let opts = crash_options(&args)?;
    let set = assignments("--set", &args.set)?;
    let matrix = assignments("--matrix", &args.matrix)?;
    let configs = crash::config::load(&set, &matrix)?;
    let beside = args.beside.as_deref().map(crash::beside::load).transpose()?;
    if let Some(spec) = &args.replay {
        return crash_replay(spec, &configs, &opts);
    }
    let (base_dir, _temp_guard) = database_dir(args.out.db_dir.as_deref(), args.out.keep_db)?;
    // A subdirectory of our own: crash tests only ever touch databases they created.
    let work = tempfile::Builder::new()
        .prefix("litehammer-crash-")
        .tempdir_in(&base_dir)
        .with_context(|| format!("cannot create a directory in {}", base_dir.display()))?;
    let started = SystemTime::now();
    let output = args
        .out
        .output
        .clone()
        .unwrap_or_else(|| default_output("crash", started));
    let mut report = new_report(&configs.plan, Environment::capture(&base_dir), started);
    // The crash trials take their seed from --seed, not from the ledger scenario.
    report.scenario.resolved["seed"] = serde_json::json!(opts.seed);
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
    for (i, cell) in configs.plan.cells.iter().enumerate() {
        let dir = work.path().join(format!("config-{i}"));
        std::fs::create_dir_all(&dir)?;
        let run = crash::run_config(cell, &configs.read_back[i], &opts, &dir, &exe);
        if !args.out.quiet {
            eprintln!("[{}/{total}] {}", i + 1, crash::progress_line(&run));
        }
        report.runs.push(run);
        report.status = Report::overall_status(&report.runs);
        write_report(&report, &output)?;
    }
    if args.out.keep_db {
        eprintln!("databases kept in {}", work.keep().display());
    }
    print!("\n{}", durability::table(&report.runs).to_text());
    if let Some(run_report) = &beside {
        print!(
            "\nbeside {} (tx/s and p99 of its group `{}`):\n{}",
            run_report.scenario.name,
            crash::beside::group_name(run_report),
            crash::beside::table(&report.runs, run_report).to_text()
        );
    }
    println!("\nreport: {}", output.display());
    let mismatches: u32 = report
        .runs
        .iter()
        .filter_map(|r| r.durability.as_ref())
        .flat_map(|d| &d.results)
        .filter_map(|r| r.cross_check.map(|c| c.mismatches))
        .sum();
    if mismatches > 0 {
        eprintln!("error: {mismatches} trial(s) recovered differently through the unix VFS than through the simulator");
        return Ok(Status::Failed);
    }
    // Lost commits are findings, not failures: only a run that could not be crashed fails.
    Ok(match report.status {
        RunStatus::Completed => Status::Ok,
        RunStatus::Interrupted => Status::Interrupted,
        RunStatus::Failed => Status::Failed,
    })
}

fn crash_replay(spec: &str, configs: &crash::config::Configurations, opts: &crash::Options) -> anyhow::Result<Status> {
    let flag = format!("--replay {spec}");
    let spec = crash::ReplaySpec::parse(spec).map_err(|e| InputError::new(&flag, e))?;
    let Some(cell) = configs.plan.cells.iter().find(|c| c.id == spec.config) else {
        let ids: Vec<&str> = configs.plan.cells.iter().map(|c| c.id.as_str()).collect();
        return Err(InputError::new(
            flag,
            format!(
                "no configuration `{}`; configurations: {}",
                spec.config,
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

fn crash_options(args: &CrashArgs) -> Result<crash::Options, InputError> {
    if args.trials == 0 {
        return Err(InputError::new("--trials 0", "give at least one trial"));
    }
    if args.max_rows == 0 {
        return Err(InputError::new("--max-rows 0", "a transaction has at least one row"));
    }
    let kill_within = humantime::parse_duration(args.kill_within.trim())
        .map_err(|e| InputError::new(format!("--kill-within {}", args.kill_within), e.to_string()))?;
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

pub fn crash_child(args: CrashChildArgs) -> anyhow::Result<Status> {
    crash::kill::child_main(&args.db, &args.settings, args.seed, args.max_rows)?;
    Ok(Status::Ok)
}

fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(item) {
            out.push(*item);
        }
    }
    out
}

fn assignments(flag: &str, raw: &[String]) -> Result<Vec<(String, String)>, InputError> {
    raw.iter().map(|r| split_assignment(flag, r)).collect()
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
    let per_group = [("rate", &args.rate), ("latency_limit", &args.latency_limit)];
    for (key, value) in per_group {
        if let Some(v) = value {
            set.push((format!("group.*.{key}"), v.clone()));
        }
    }
    if args.skip_late {
        set.push(("group.*.skip_late".into(), "true".into()));
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
        findings: Vec::new(),
    }
}

fn write_report(report: &Report, path: &Path) -> anyhow::Result<()> {
    let bytes = Json.render(report)?;
    crate::report::write_file(path, &bytes).with_context(|| format!("cannot write the report to {}", path.display()))
}
