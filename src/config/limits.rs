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

/// `app_time_scale`: a factor on app times, `MIN_SCALE..=MAX_SCALE`.
pub(crate) const MIN_SCALE: f64 = 0.01;
pub(crate) const MAX_SCALE: f64 = 100.0;

/// `Err` unless `f` is a finite factor within `MIN_SCALE..=MAX_SCALE`.
pub(crate) fn app_time_scale(f: f64) -> Result<(), String> {
    if (MIN_SCALE..=MAX_SCALE).contains(&f) {
        return Ok(());
    }
    let shown = if f.abs() < 1e6 {
        format!("{f}")
    } else {
        format!("{f:e}")
    };
    Err(format!(
        "app_time_scale must be a factor from {MIN_SCALE} to {MAX_SCALE} (docs/limits.md), got {shown}"
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

/// Closed-loop clients of one group (each is a slot in the group's request queue).
pub(crate) const MAX_CLIENTS: u32 = 1_000_000;

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
