//! The documented limits (docs/limits.md): ranges for every number and duration a user
//! gives, and the thresholds above which a command asks for `--yes`.

use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

/// Any duration written anywhere: beyond this it cannot be meant (and `Instant` arithmetic
/// would overflow long before `Duration::MAX`).
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(366 * 86_400);
/// Waits inside a run: `busy_timeout`, `busy_handler = "fixed(..)"`, retry back-off,
/// `latency_limit`, `p99_limit`, `timeline_interval`.
pub(crate) const MAX_WAIT: Duration = DAY;
pub(crate) const MIN_TIMELINE_INTERVAL: Duration = Duration::from_millis(10);
/// Timeline intervals per run (each is kept in memory and in the report).
pub(crate) const MAX_TIMELINE_INTERVALS: u128 = 100_000;
/// Open-loop rate per group, transactions per second (0 = closed loop).
pub(crate) const MIN_RATE: f64 = 0.001;
pub(crate) const MAX_RATE: f64 = 10_000_000.0;
/// `--progress-interval` seconds (0 = never).
pub(crate) const MIN_PROGRESS_S: f64 = 0.1;
pub(crate) const MAX_PROGRESS_S: f64 = 3600.0;

/// `Err` with the allowed range when `d` is a wait above `MAX_WAIT`.
pub(crate) fn wait(d: Duration) -> Result<(), String> {
    if d > MAX_WAIT {
        return Err(format!(
            "{} is too long: at most {} (docs/limits.md)",
            humantime::format_duration(d),
            humantime::format_duration(MAX_WAIT)
        ));
    }
    Ok(())
}

/// `Err` unless `rate` is 0 (closed loop) or within `MIN_RATE..=MAX_RATE`.
pub(crate) fn rate(rate: f64) -> Result<(), String> {
    if rate == 0.0 || (MIN_RATE..=MAX_RATE).contains(&rate) {
        return Ok(());
    }
    Err(format!(
        "rate must be 0 (closed loop) or {MIN_RATE} to {MAX_RATE} transactions per second, got {rate}"
    ))
}

/// `--progress-interval`: 0 or `MIN_PROGRESS_S..=MAX_PROGRESS_S` seconds.
pub(crate) fn progress_interval(raw: &str) -> Result<f64, String> {
    let s: f64 = raw
        .trim()
        .parse()
        .map_err(|_| "expected seconds, e.g. 2 or 0.5".to_string())?;
    if s == 0.0 || (MIN_PROGRESS_S..=MAX_PROGRESS_S).contains(&s) {
        return Ok(s);
    }
    Err(format!(
        "expected 0 (never) or {MIN_PROGRESS_S} to {MAX_PROGRESS_S} seconds"
    ))
}

/// The timeline interval must be at least `MIN_TIMELINE_INTERVAL`, at most `MAX_WAIT`, and
/// cut a run of `duration` into at most `MAX_TIMELINE_INTERVALS`.
pub(crate) fn timeline_interval(interval: Duration, duration: Option<Duration>) -> Result<(), String> {
    if interval < MIN_TIMELINE_INTERVAL {
        return Err(format!(
            "timeline_interval must be at least {}",
            humantime::format_duration(MIN_TIMELINE_INTERVAL)
        ));
    }
    wait(interval)?;
    if let Some(d) = duration
        && d.as_nanos() / interval.as_nanos() > MAX_TIMELINE_INTERVALS
    {
        return Err(format!(
            "timeline_interval {} cuts the {} run into more than {MAX_TIMELINE_INTERVALS} intervals; use a longer one",
            humantime::format_duration(interval),
            humantime::format_duration(d)
        ));
    }
    Ok(())
}

/// Worker threads in one run: a hard maximum, and the count above which `--yes` is needed.
pub(crate) const MAX_WORKERS: u64 = 4096;
pub(crate) const CONFIRM_WORKERS: u64 = 256;
/// Runs (matrix cells × repeats) above which `--yes` is needed.
pub(crate) const CONFIRM_RUNS: u64 = 1000;
/// Estimated total time above which `--yes` is needed.
pub(crate) const CONFIRM_TIME: Duration = DAY;
/// Populated rows, and their estimated bytes, per run above which `--yes` is needed.
pub(crate) const CONFIRM_POPULATE_ROWS: u64 = 10_000_000;
pub(crate) const CONFIRM_POPULATE_BYTES: u64 = 1 << 30;
/// Crash trials per configuration above which `--yes` is needed.
pub(crate) const CONFIRM_TRIALS: u64 = 1000;

/// What a plan asks for, checked against the limits: `Err` names what is too much, with the
/// estimate, and says `--yes` when confirming would do.
pub(crate) fn confirm(plan: &super::validate::Plan, repeat: u32, yes: bool) -> Result<(), String> {
    let mut asks = Vec::new();
    let workers = plan.cells.iter().map(|c| c.scenario.total_workers()).max().unwrap_or(0);
    if workers > MAX_WORKERS {
        return Err(format!(
            "a run would start {workers} workers (threads); the limit is {MAX_WORKERS} (docs/limits.md)"
        ));
    }
    if workers > CONFIRM_WORKERS {
        asks.push(format!("{workers} worker threads in one run"));
    }
    let runs = plan.cells.len() as u64 * u64::from(repeat.max(1));
    if runs > CONFIRM_RUNS {
        asks.push(format!("{runs} runs"));
    }
    let per_run: Duration = plan
        .cells
        .iter()
        .map(|c| c.scenario.warmup.0 + c.scenario.duration.as_ref().map_or(Duration::ZERO, |d| d.get_ref().0))
        .max()
        .unwrap_or_default();
    let total = per_run.saturating_mul(u32::try_from(runs).unwrap_or(u32::MAX));
    if total > CONFIRM_TIME {
        asks.push(format!(
            "about {} of runs",
            humantime::format_duration(Duration::from_secs(total.as_secs()))
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
        if rows > CONFIRM_POPULATE_ROWS || bytes > CONFIRM_POPULATE_BYTES {
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
