//! The subcommands, one file each: glue between the CLI, the scenario loader, the engine
//! and the exporters. This file holds what several of them share.

mod apply;
mod capacity;
mod capture;
mod compare;
mod completions;
mod crash;
mod import;
mod list;
mod man;
mod probe;
mod report;
mod run;
pub(crate) mod snippet;
mod validate;

pub(crate) use apply::apply;
pub(crate) use capacity::capacity;
pub(crate) use capture::capture;
pub(crate) use compare::compare;
pub(crate) use completions::completions;
pub(crate) use crash::{crash, crash_child};
pub(crate) use import::import;
pub(crate) use list::list_scenarios;
pub(crate) use man::man;
pub(crate) use probe::probe;
pub(crate) use report::report;
pub(crate) use run::run;
pub(crate) use validate::validate;

use crate::cli::OverrideArgs;
use crate::config::limits;
use crate::config::matrix::Setting;
use crate::config::validate::{Overrides, Plan};
use crate::error::InputError;
use crate::report::output::Target;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Loads, checks and expands a scenario, then prepares everything it will execute.
/// With `from_db`, the statements are prepared against a copy of that database instead.
pub(super) fn load_plan(
    scenario: &str,
    args: &crate::cli::OverrideArgs,
    rounds: Option<u32>,
    from_db: Option<&Path>,
) -> anyhow::Result<Plan> {
    crate::targets::sqlite::guard::set_allow_external(args.allow_external_files);
    let plan = crate::config::validate::load(scenario, &overrides(args)?)?;
    confirm(&plan, plan.rounds(rounds), args.yes).map_err(|e| InputError::new(plan.source.origin.clone(), e))?;
    if args.allow_external_files {
        // Preparing would run the set-up SQL, which may change the external files.
        eprintln!(
            "warning: --allow-external-files: the set-up SQL and statements are not checked in a scratch copy \
             (that would touch the external files); only the runs execute them"
        );
    } else {
        crate::workload::check::against_sqlite(&plan, from_db)?;
    }
    Ok(plan)
}

pub(super) fn warn_if_debug_build() {
    if crate::machine::env::build_profile() == "debug" {
        eprintln!(
            "warning: this is a debug build; its numbers measure the harness more than SQLite. Use `cargo run --release`."
        );
    }
}

/// Time of the fsync probe `run` does before the first run (`--no-probe` skips it).
const RUN_PROBE_TIME: std::time::Duration = std::time::Duration::from_millis(300);

pub(super) fn assignments(flag: &str, raw: &[String]) -> Result<Vec<(String, String)>, InputError> {
    raw.iter().map(|r| split_assignment(flag, r)).collect()
}

/// `--set KEY=VALUE` flags as settings that name the flag in their errors.
pub(super) fn settings(raw: &[String]) -> Result<Vec<Setting>, InputError> {
    raw.iter()
        .map(|r| split_assignment("--set", r).map(|(k, v)| Setting::from_set(&k, &v)))
        .collect()
}

/// The typed shorthand flags and `--set`/`--matrix`, in the order they apply.
pub(super) fn overrides(args: &OverrideArgs) -> Result<Overrides, InputError> {
    use toml::Value;
    let mut set = Vec::new();
    let mut flag = |key: &str, value: Value, typed: String| {
        set.push(Setting {
            key: key.to_string(),
            value,
            flag: typed,
        })
    };
    if let Some(d) = &args.duration {
        flag("duration", Value::String(d.to_string()), format!("--duration {d}"));
    }
    if let Some(n) = args.operations {
        flag(
            "operations",
            Value::Integer(n.get() as i64),
            format!("--operations {n}"),
        );
    }
    if let Some(d) = &args.warmup {
        flag("warmup", Value::String(d.to_string()), format!("--warmup {d}"));
    }
    if let Some(seed) = args.seed {
        flag("seed", Value::Integer(seed as i64), format!("--seed {seed}"));
    }
    if let Some(n) = args.clients {
        flag("group.*.clients", Value::Integer(n.into()), format!("--clients {n}"));
    }
    if let Some(rate) = args.rate {
        flag("group.*.rate", Value::Float(rate), format!("--rate {rate}"));
    }
    if let Some(d) = &args.latency_limit {
        flag(
            "group.*.latency_limit",
            Value::String(d.to_string()),
            format!("--latency-limit {d}"),
        );
    }
    if args.skip_late {
        flag("group.*.skip_late", Value::Boolean(true), "--skip-late".into());
    }
    if let Some(m) = &args.backup {
        flag("backup", Value::String(m.clone()), format!("--backup {m}"));
    }
    let target_axis = args
        .matrix
        .iter()
        .any(|m| m.split_once('=').is_some_and(|(k, _)| k.trim() == "target"));
    if let Some(t) = &args.target
        && !target_axis
    {
        flag(
            "target",
            Value::String(t.kind.as_str().into()),
            format!("--target {}", t.kind.as_str()),
        );
    }
    if args.pg_tcp {
        flag("postgres.transport", Value::String("tcp".into()), "--pg-tcp".into());
    }
    if !args.faults.is_empty() {
        let shown: Vec<String> = args.faults.iter().map(|f| f.to_string()).collect();
        flag(
            "dqlite.faults",
            Value::Array(shown.iter().map(|f| Value::String(f.clone())).collect()),
            format!("--fault {}", shown.join(" --fault ")),
        );
    }
    set.extend(settings(&args.set)?);
    let matrix = args
        .matrix
        .iter()
        .map(|raw| split_assignment("--matrix", raw))
        .collect::<Result<_, _>>()?;
    Ok(Overrides { set, matrix })
}

pub(super) fn split_assignment(flag: &str, raw: &str) -> Result<(String, String), InputError> {
    match raw.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => Err(InputError::new(format!("{flag} {raw}"), "expected KEY=VALUE")),
    }
}

/// The user's `--db-dir` (checked: exists, is a directory, is writable), or a new temp dir
/// that is removed afterwards unless the databases are kept.
pub(super) fn database_dir(dir: Option<&Path>, keep: bool) -> Result<(PathBuf, Option<tempfile::TempDir>), InputError> {
    let Some(dir) = dir else {
        let temp = tempfile::Builder::new()
            .prefix("litehammer-")
            .tempdir()
            .map_err(|e| InputError::new("--db-dir", format!("cannot create a temporary directory: {e}")))?;
        if keep {
            return Ok((temp.keep(), None));
        }
        crate::interrupt::remove_on_abort(temp.path());
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

pub(super) fn default_output(name: &str, started: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(started).to_string();
    let compact: String = stamp.chars().filter(|c| c.is_ascii_digit()).collect();
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    PathBuf::from("results").join(format!("{safe}-{}-{}.json", &compact[..8], &compact[8..14]))
}

/// Checks every file a command will write before anything runs (see `report::output`):
/// `outputs` are (flag, path), the scenario file (when `scenario` names one) is an input.
pub(super) fn check_outputs(outputs: &[(&str, &Path)], scenario: Option<&str>) -> Result<(), InputError> {
    let targets: Vec<Target> = outputs.iter().map(|(flag, path)| Target::new(flag, path)).collect();
    let scenario = scenario.map(Path::new).filter(|p| p.is_file());
    let inputs: Vec<(&str, &Path)> = scenario.map(|p| ("scenario file", p)).into_iter().collect();
    crate::report::output::check(&targets, &inputs)
}

/// The report file: `-o` as given, or a new default name claimed with `O_EXCL` (an earlier
/// report of the same second is never replaced).
pub(super) fn claim_report_path(given: Option<&Path>, name: &str, started: SystemTime) -> Result<PathBuf, InputError> {
    match given {
        Some(path) => Ok(path.to_path_buf()),
        None => {
            let path = default_output(name, started);
            crate::report::output::claim_new(&path).map_err(|e| {
                InputError::new(
                    format!("-o {}", path.display()),
                    format!("cannot create the report: {e}"),
                )
            })
        }
    }
}

/// What a plan asks for (docs/limits.md), checked against the limits: `Err` names what is too much, with the
/// estimate, and says `--yes` when confirming would do.
pub(super) fn confirm(plan: &Plan, repeat: u32, yes: bool) -> Result<(), String> {
    let mut asks = Vec::new();
    let workers = plan.cells.iter().map(|c| c.scenario.total_workers()).max().unwrap_or(0);
    if workers > limits::MAX_WORKERS {
        return Err(format!(
            "a run would start {workers} workers (threads); the limit is {} (docs/limits.md)",
            limits::MAX_WORKERS
        ));
    }
    if workers > limits::CONFIRM_WORKERS {
        asks.push(format!("{workers} worker threads in one run"));
    }
    let runs = plan.cells.len() as u64 * u64::from(repeat.max(1));
    if runs > limits::CONFIRM_RUNS {
        asks.push(format!("{runs} runs"));
    }
    let per_run: std::time::Duration = plan
        .cells
        .iter()
        .map(|c| {
            c.scenario.warmup.0
                + c.scenario
                    .duration
                    .as_ref()
                    .map_or(std::time::Duration::ZERO, |d| d.get_ref().0)
        })
        .max()
        .unwrap_or_default();
    let total = per_run.saturating_mul(u32::try_from(runs).unwrap_or(u32::MAX));
    if total > limits::CONFIRM_TIME {
        asks.push(format!(
            "about {} of runs",
            humantime::format_duration(std::time::Duration::from_secs(total.as_secs()))
        ));
    }
    for cell in plan.cells.iter().take(1) {
        let (mut rows, mut bytes) = (0u64, 0u64);
        for p in &cell.scenario.setup.populate {
            let row: u64 = p
                .values
                .get_ref()
                .iter()
                .map(|v| v.max_len().map_or(8, |l| l as u64 / 2 + 8))
                .sum();
            rows = rows.saturating_add(p.rows);
            bytes = bytes.saturating_add(p.rows.saturating_mul(row));
        }
        if rows > limits::CONFIRM_POPULATE_ROWS || bytes > limits::CONFIRM_POPULATE_BYTES {
            asks.push(format!("a populate of {rows} rows (about {} MiB) per run", bytes >> 20));
        }
    }
    if asks.is_empty() || yes {
        return Ok(());
    }
    Err(format!(
        "this asks for {}; pass --yes to go ahead (thresholds in docs/limits.md)",
        asks.join(", ")
    ))
}
