//! The status policy: a report's status from its runs' statuses, the groups whose errors
//! fail a run, and the exit status of `run` and of `crash`.

use crate::error::Status;
use crate::report::model::{CheckKind, Report, RunReport, RunStatus};

/// Completed when every run completed; otherwise the worst run status.
pub(crate) fn overall(runs: &[RunReport]) -> RunStatus {
    if runs.iter().any(|r| r.status == RunStatus::Failed) {
        RunStatus::Failed
    } else if runs.iter().any(|r| r.status == RunStatus::Interrupted) {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    }
}

/// A group's attempts may fail with errors other than busy/locked (constraint, I/O, full
/// disk, ...) in at most this share before the run counts as failed (docs/limits.md).
pub(crate) const MAX_NON_BUSY_ERROR_SHARE: f64 = 0.05;

/// Groups that committed nothing, or failed too often with errors other than busy, each
/// with the first error of each op and of BEGIN/COMMIT.
pub(crate) fn error_problems(report: &Report) -> Vec<String> {
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

/// Application-model groups whose accounting does not add up (`analysis::invariants`):
/// each failed invariant of each completed run, in words.
pub(crate) fn invariant_problems(report: &Report) -> Vec<String> {
    let mut problems = Vec::new();
    for run in report.runs.iter().filter(|r| r.status == RunStatus::Completed) {
        for g in &run.groups {
            let Some(app) = &g.app else { continue };
            for i in app.invariants.iter().filter(|i| i.checked && !i.ok) {
                problems.push(format!(
                    "run `{}`: group `{}`: invariant {} does not hold: {}",
                    crate::report::format::round_label(run),
                    g.name,
                    i.name,
                    i.detail
                ));
            }
        }
    }
    problems
}

/// The exit status of a finished report: interrupted, failed (a run failed, a verification
/// failed, a metric check failed with `--fail-on-check`) or ok.
pub(crate) fn final_status(report: &Report, fail_on_check: bool) -> Status {
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

/// Trials that recovered differently through the unix VFS than through the simulator
/// (`crash --cross-check`).
pub(crate) fn cross_check_mismatches(report: &Report) -> u32 {
    report
        .runs
        .iter()
        .filter_map(|r| r.durability.as_ref())
        .flat_map(|d| &d.results)
        .filter_map(|r| r.cross_check.map(|c| c.mismatches))
        .sum()
}

/// The exit status of `crash`: a cross-check mismatch fails; lost commits are findings, not
/// failures: otherwise only a run that could not be crashed fails.
pub(crate) fn crash_status(report: &Report) -> Status {
    if cross_check_mismatches(report) > 0 {
        return Status::Failed;
    }
    match report.status {
        RunStatus::Completed => Status::Ok,
        RunStatus::Interrupted => Status::Interrupted,
        RunStatus::Failed | RunStatus::Partial => Status::Failed,
    }
}
