//! Findings of a sweep (e.g. writers 1..64 × journal_mode), computed from the runs: where
//! the claim "concurrent writes are fine" stops holding.

use crate::config::Sweep;
use crate::config::matrix::canonical_key;
use crate::report::format::{format_rate, format_us};
use crate::report::model::{GroupReport, RunReport};

/// One line per value of `sweep.by` (or one line without `by`).
pub(crate) fn findings(sweep: &Sweep, runs: &[RunReport]) -> Vec<String> {
    let axis = canonical_key(&sweep.axis);
    let by = sweep.by.as_deref().map(canonical_key);
    let mut keys: Vec<Option<String>> = Vec::new();
    for run in runs {
        let key = by
            .as_ref()
            .map(|b| run.matrix.get(b).and_then(|v| v.as_str()).unwrap_or("?").to_string());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .filter_map(|key| {
            let mut steps: Vec<(f64, &GroupReport)> = runs
                .iter()
                .filter(|r| {
                    by.as_ref()
                        .is_none_or(|b| r.matrix.get(b).and_then(|v| v.as_str()) == key.as_deref())
                })
                .filter_map(|r| Some((step_value(r, &axis)?, r.groups.iter().find(|g| g.name == sweep.group)?)))
                .collect();
            steps.sort_by(|a, b| a.0.total_cmp(&b.0));
            let label = match (&by, &key) {
                (Some(b), Some(k)) => format!("{b}={k}: "),
                _ => String::new(),
            };
            finding(sweep, &axis, &steps).map(|f| format!("{label}{f}"))
        })
        .collect()
}

fn step_value(run: &RunReport, axis: &str) -> Option<f64> {
    run.matrix.get(axis)?.as_str()?.parse().ok()
}

fn errors(g: &GroupReport) -> u64 {
    g.all_errors().total()
}

fn finding(sweep: &Sweep, axis: &str, steps: &[(f64, &GroupReport)]) -> Option<String> {
    let (first, last) = (steps.first()?, steps.last()?);
    let limit_us = sweep.p99_limit.as_secs_f64() * 1e6;
    let healthy = |g: &GroupReport| errors(g) == 0 && g.transactions.latency_us.p99 < limit_us;
    let best = steps
        .iter()
        .filter(|(_, g)| healthy(g))
        .map(|(v, _)| *v)
        .reduce(f64::max);
    let name = axis.rsplit('.').next().unwrap_or(axis);
    let holds = match best {
        Some(v) => format!(
            "up to {v} {name} with no errors and {} p99 < {}",
            sweep.group, sweep.p99_limit
        ),
        None => format!("no step had zero errors and {} p99 < {}", sweep.group, sweep.p99_limit),
    };
    let broken = steps.iter().find(|(v, g)| !healthy(g) && best.is_none_or(|b| *v > b));
    let first_break = broken.map_or(String::new(), |(v, g)| {
        format!(
            " (at {v}: {} errors, p99 {})",
            errors(g),
            format_us(g.transactions.latency_us.p99)
        )
    });
    let (t0, t1) = (
        first.1.transactions.throughput_per_s,
        last.1.transactions.throughput_per_s,
    );
    let ratio = if t0 > 0.0 {
        format!(" (×{:.2})", t1 / t0)
    } else {
        String::new()
    };
    let end = &last.1;
    Some(format!(
        "{holds}{first_break}; {} throughput {} → {} {name}: {} → {} tx/s{ratio}; at {}: max {}, Jain fairness {:.2}",
        sweep.group,
        first.0,
        last.0,
        format_rate(t0),
        format_rate(t1),
        last.0,
        format_us(end.transactions.latency_us.max),
        end.fairness.jain_index
    ))
}
