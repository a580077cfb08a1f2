//! `--beside RUN.json`: the durability table joined with a `run` report of the same
//! configurations, so speed and what a crash costs are read in one line.

use crate::config::sqlite::{JournalMode, Synchronous};
use crate::error::InputError;
use crate::report::durability;
use crate::report::format::{Table, format_rate, format_us};
use crate::report::model::{Report, RunReport};
use std::path::Path;

pub(crate) fn load(path: &Path) -> Result<Report, InputError> {
    let origin = format!("--beside {}", path.display());
    // The same checks `report` and `compare` make: the schema version, duplicate runs.
    let report = crate::report::load(path).map_err(|e| InputError::new(&origin, e.message))?;
    if !report.runs.iter().any(|r| !r.groups.is_empty()) {
        return Err(InputError::new(
            origin,
            "the report has no measured runs (is it a crash report?)",
        ));
    }
    Ok(report)
}

/// Committed transactions per second and p99 of the report's first worker group (in the
/// built-in scenarios, the writers) in the first measured run with these settings.
struct Speed {
    tx_per_s: f64,
    p99_us: f64,
}

/// The group whose speed the table shows.
pub(crate) fn group_name(report: &Report) -> String {
    report
        .runs
        .iter()
        .find_map(|r| r.groups.first())
        .map_or_else(String::new, |g| g.name.clone())
}

fn speed(report: &Report, journal: JournalMode, sync: Synchronous) -> Option<Speed> {
    let run = report.runs.iter().find(|r| {
        !r.groups.is_empty()
            && r.sqlite
                .as_ref()
                .is_some_and(|s| s.journal_mode == journal && s.synchronous == sync)
    })?;
    let group = run.groups.first()?;
    Some(Speed {
        tx_per_s: group.transactions.throughput_per_s,
        p99_us: group.transactions.latency_us.p99,
    })
}

/// One row per crash configuration and method/model, with the run report's speed beside it.
pub(crate) fn table(crash_runs: &[RunReport], run_report: &Report) -> Table {
    let mut rows = Vec::new();
    for run in crash_runs {
        let (Some(settings), Some(durability)) = (&run.sqlite, &run.durability) else {
            continue;
        };
        let here = speed(run_report, settings.journal_mode, settings.synchronous);
        let full = speed(run_report, settings.journal_mode, Synchronous::Full);
        for (i, r) in durability.results.iter().enumerate() {
            let first = i == 0;
            let show = |text: String| if first { text } else { String::new() };
            let head = [
                show(run.id.clone()),
                show(here.as_ref().map_or("-".into(), |s| format_rate(s.tx_per_s))),
                show(here.as_ref().map_or("-".into(), |s| format_us(s.p99_us))),
                show(relative(here.as_ref(), full.as_ref())),
                r.label(),
                format!("{}/{}", r.trials_losing, r.trials),
            ];
            rows.push(head.into_iter().chain(durability::damage_cells(r)).collect());
        }
    }
    Table {
        headers: vec![
            "configuration",
            "tx/s",
            "p99",
            "vs sync=full",
            "method",
            "trials losing acked",
            "max lost",
            "integrity fail",
            "atomicity",
            "silent damage",
        ],
        right: vec![false, true, true, true, false, true, true, true, true, true],
        rows,
    }
}

fn relative(here: Option<&Speed>, full: Option<&Speed>) -> String {
    match (here, full) {
        (Some(h), Some(f)) if f.tx_per_s > 0.0 => format!("{:.2}×", h.tx_per_s / f.tx_per_s),
        _ => "-".into(),
    }
}
