//! Evaluating a scenario's metric checks (see `config::check` for their syntax) on one
//! run: findings in the report and the terminal, not test assertions (`--fail-on-check`
//! makes them decide the exit code).

use crate::config::check::{Metric, MetricCheck, Percentile};
use crate::report::format::format_us;
use crate::report::model::{CheckKind, GroupReport, RunReport, ScenarioCheck};

/// The metric of one group (latencies in µs).
fn of_group(metric: Metric, g: &GroupReport) -> f64 {
    let errors = g.all_errors();
    let lat = &g.transactions.latency_us;
    match metric {
        Metric::BusyErrors => errors.busy_total() as f64,
        Metric::Errors => errors.total() as f64,
        Metric::Throughput => g.transactions.throughput_per_s,
        Metric::OpsPerSecond => g.ops.iter().map(|o| o.throughput_per_s).sum(),
        Metric::RolledBack => g.transactions.rolled_back as f64,
        Metric::Retried => g.transactions.retried as f64,
        Metric::Latency(Percentile::P50) => lat.p50,
        Metric::Latency(Percentile::P90) => lat.p90,
        Metric::Latency(Percentile::P99) => lat.p99,
        Metric::Latency(Percentile::P999) => lat.p99_9,
        Metric::Latency(Percentile::Max) => lat.max,
        Metric::Fairness => g.fairness.jain_index,
        Metric::MinMaxRatio => g.fairness.min_max_ratio,
    }
}

/// Over all groups: counts and rates add up, latencies take the worst, fairness the least.
fn combine(metric: Metric, values: impl Iterator<Item = f64>) -> Option<f64> {
    match metric {
        Metric::Latency(_) => values.reduce(f64::max),
        Metric::Fairness | Metric::MinMaxRatio => values.reduce(f64::min),
        _ => values.reduce(|a, b| a + b),
    }
}

/// Evaluates a metric check on one run; `no data` when the run has no such group or no data.
pub(crate) fn evaluate(check: &MetricCheck, name: &str, run: &RunReport) -> ScenarioCheck {
    let groups = run
        .groups
        .iter()
        .filter(|g| check.group.as_deref().is_none_or(|n| g.name == n));
    let measured = combine(check.metric, groups.map(|g| of_group(check.metric, g)));
    let (ok, detail) = match measured {
        Some(v) => (
            check.comparison.holds(v, check.threshold),
            format!("{} (check: {})", show(check.metric, v), check.source),
        ),
        None => (false, format!("no data (check: {})", check.source)),
    };
    ScenarioCheck {
        name: name.to_string(),
        ok,
        detail,
        kind: CheckKind::Metric,
    }
}

fn show(metric: Metric, v: f64) -> String {
    match metric {
        Metric::Latency(_) => format_us(v),
        Metric::Fairness | Metric::MinMaxRatio => format!("{v:.3}"),
        Metric::Throughput | Metric::OpsPerSecond => format!("{v:.1}/s"),
        _ => format!("{v:.0}"),
    }
}
