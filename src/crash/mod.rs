//! `litehammer crash`: durability measured. Each configuration runs the ledger workload
//! through crashes (process kill, simulated power loss) and the checker compares what
//! survived with what was acknowledged.

pub(crate) mod backup;
pub(crate) mod beside;
pub(crate) mod check;
pub(crate) mod config;
pub(crate) mod disk;
pub(crate) mod kill;
pub(crate) mod ledger;
pub(crate) mod model;
pub(crate) mod power;
pub(crate) mod vfs;

use crate::config::matrix::Cell;
use crate::config::sqlite::{ReadBack, SqliteSettings};
use crate::report::model::durability::{Durability, DurabilityResult};
use crate::report::model::{DatabaseReport, RunReport, RunStatus};
use crate::targets::sqlite::settings::SettingError;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub(crate) enum CrashError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error("{0}")]
    Child(String),
}

/// What to run for every configuration.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub kill: bool,
    /// Power-loss crash models to run; empty for none.
    pub power_models: Vec<model::Model>,
    pub transactions: u32,
    pub cross_check: bool,
    pub trials: u32,
    pub seed: u64,
    pub max_rows: u32,
    pub kill_max_delay: Duration,
    pub keep_db: bool,
}

/// The seed of one configuration: depends on its id, not its place in the matrix, so a
/// configuration gives the same trials whatever else runs beside it.
pub(crate) fn config_seed(seed: u64, config_id: &str) -> u64 {
    config_id.bytes().fold(seed ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs every method for one configuration, in a directory of its own under `dir`.
pub(crate) fn run_config(cell: &Cell, read_back: &ReadBack, opts: &Options, dir: &Path, exe: &Path) -> RunReport {
    let started = Instant::now();
    let durability = trials(cell, opts, dir, exe);
    let mut run = crate::engine::driver::empty_report(cell);
    run.sqlite = Some(read_back.clone());
    run.status = if durability.error.is_some() {
        RunStatus::Failed
    } else {
        RunStatus::Completed
    };
    run.error = durability.error.clone();
    run.warmup_s = 0.0;
    run.measured_s = started.elapsed().as_secs_f64();
    run.database = DatabaseReport {
        page_size: read_back.page_size,
        ..DatabaseReport::default()
    };
    run.durability = Some(durability);
    run
}

/// The crash trials of one configuration's SQLite settings (`crash`, and `run --durability`
/// beside a measured run); a method that could not run leaves its reason in `error`.
pub(crate) fn trials(cell: &Cell, opts: &Options, dir: &Path, exe: &Path) -> Durability {
    let seed = config_seed(opts.seed, &cell.id);
    let mut results = Vec::new();
    let mut error = None;
    if opts.kill {
        let plan = kill::KillPlan {
            exe,
            dir,
            settings: &cell.scenario.sqlite,
            trials: opts.trials,
            seed,
            max_rows: opts.max_rows,
            max_delay: opts.kill_max_delay,
            keep_db: opts.keep_db,
        };
        match kill::run(&plan) {
            Ok(trials) => results.push(DurabilityResult::from_trials("kill", None, trials)),
            Err(e) => error = Some(format!("kill trials: {e}")),
        }
    }
    if !opts.power_models.is_empty() {
        let plan = power_plan(&cell.scenario.sqlite, seed, opts, dir);
        match power::run(&plan) {
            Ok(per_model) => {
                for (model, trials) in opts.power_models.iter().zip(per_model) {
                    results.push(DurabilityResult::from_trials(
                        "power-loss",
                        Some(model.as_str()),
                        trials,
                    ));
                }
            }
            Err(e) => error = Some(format!("power-loss trials: {e}")),
        }
    }
    Durability {
        seed: opts.seed,
        max_rows: opts.max_rows,
        transactions: (!opts.power_models.is_empty()).then_some(opts.transactions),
        kill_within_ms: opts.kill.then_some(opts.kill_max_delay.as_secs_f64() * 1000.0),
        results,
        error,
    }
}

/// One line of progress: the configuration and, per method, trials losing acknowledged commits.
pub(crate) fn progress_line(run: &RunReport) -> String {
    if let Some(e) = &run.error {
        return format!("{}: FAILED: {e}", run.id);
    }
    let parts: Vec<String> = run
        .durability
        .iter()
        .flat_map(|d| &d.results)
        .map(|r| {
            format!(
                "{} {}/{} losing (max {}), integrity {}, atomicity {}, silent {}",
                r.label(),
                r.trials_losing,
                r.trials,
                r.max_lost,
                r.integrity_failures,
                r.atomicity_violations,
                r.silent_damage
            )
        })
        .collect();
    format!("{}: {}", run.id, parts.join("; "))
}

fn power_plan<'a>(settings: &'a SqliteSettings, seed: u64, opts: &'a Options, dir: &'a Path) -> power::PowerPlan<'a> {
    power::PowerPlan {
        settings,
        seed,
        max_rows: opts.max_rows,
        transactions: opts.transactions,
        trials: opts.trials,
        models: &opts.power_models,
        cross_check: opts.cross_check.then_some(dir),
    }
}

/// `--replay CONFIG:MODEL:TRIAL`: which configuration, model and trial.
pub(crate) struct ReplaySpec {
    pub config: String,
    pub model: model::Model,
    pub trial: u32,
}

impl ReplaySpec {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.rsplitn(3, ':');
        let (Some(trial), Some(model), Some(config)) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected CONFIG:MODEL:TRIAL, e.g. journal_mode=wal,synchronous=normal:torn:7".into());
        };
        let model = model::Model::from_name(model)
            .ok_or_else(|| format!("unknown crash model `{model}`; use durable, reorder or torn"))?;
        let trial = match trial.parse::<u32>() {
            Ok(t) => t,
            // A number, but more than any --trials allows: say that, not "not a number".
            Err(_) if !trial.is_empty() && trial.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(format!(
                    "trial {trial} is beyond any run of trials (--trials is at most 1000000, and trials count from 0)"
                ));
            }
            Err(_) => return Err(format!("trial must be a number, got `{trial}`")),
        };
        Ok(Self {
            config: config.to_string(),
            model,
            trial,
        })
    }
}

/// The I/O trace and verdict of one power-loss trial, exactly as `run_config` ran it.
pub(crate) fn replay(cell: &Cell, spec: &ReplaySpec, opts: &Options, dir: &Path) -> Result<String, CrashError> {
    let seed = config_seed(opts.seed, &cell.id);
    let models = [spec.model];
    let plan = power::PowerPlan {
        models: &models,
        ..power_plan(&cell.scenario.sqlite, seed, opts, dir)
    };
    power::replay(&plan, spec.model, spec.trial)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_seed_depends_on_seed_and_id_only() {
        assert_eq!(config_seed(1, "a=b"), config_seed(1, "a=b"));
        assert_ne!(config_seed(1, "a=b"), config_seed(2, "a=b"));
        assert_ne!(config_seed(1, "a=b"), config_seed(1, "a=c"));
    }
}
