//! The syntax of metric checks a scenario declares on its own results
//! ("busy_errors == 0", "group.writers.p99 < 100ms", "fairness >= 0.8"). They are evaluated
//! on a finished report by `analysis::checks`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    BusyErrors,
    Errors,
    Throughput,
    OpsPerSecond,
    RolledBack,
    Retried,
    Latency(Percentile),
    Fairness,
    MinMaxRatio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Percentile {
    P50,
    P90,
    P99,
    P999,
    Max,
}

const METRICS: &str = "busy_errors, errors, throughput, ops_per_s, rolled_back, retried, p50, p90, p99, p99_9, max, fairness, min_max_ratio";

impl Metric {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "busy_errors" => Metric::BusyErrors,
            "errors" => Metric::Errors,
            "throughput" => Metric::Throughput,
            "ops_per_s" => Metric::OpsPerSecond,
            "rolled_back" => Metric::RolledBack,
            "retried" => Metric::Retried,
            "p50" => Metric::Latency(Percentile::P50),
            "p90" => Metric::Latency(Percentile::P90),
            "p99" => Metric::Latency(Percentile::P99),
            "p99_9" => Metric::Latency(Percentile::P999),
            "max" => Metric::Latency(Percentile::Max),
            "fairness" => Metric::Fairness,
            "min_max_ratio" => Metric::MinMaxRatio,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Comparison {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Comparison {
    const ALL: [(&'static str, Comparison); 6] = [
        ("<=", Comparison::Le),
        (">=", Comparison::Ge),
        ("==", Comparison::Eq),
        ("!=", Comparison::Ne),
        ("<", Comparison::Lt),
        (">", Comparison::Gt),
    ];

    pub(crate) fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Comparison::Lt => a < b,
            Comparison::Le => a <= b,
            Comparison::Gt => a > b,
            Comparison::Ge => a >= b,
            Comparison::Eq => a == b,
            Comparison::Ne => a != b,
        }
    }
}

/// A parsed check expression: `[group.<name>.]<metric> <op> <value>`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MetricCheck {
    pub(crate) source: String,
    pub(crate) group: Option<String>,
    pub(crate) metric: Metric,
    pub(crate) comparison: Comparison,
    /// In the metric's unit (µs for latencies).
    pub(crate) threshold: f64,
}

impl MetricCheck {
    pub(crate) fn parse(source: &str) -> Result<Self, String> {
        let (op_text, comparison) = Comparison::ALL
            .iter()
            .find(|(t, _)| source.contains(t))
            .copied()
            .ok_or_else(|| format!("check `{source}` has no comparison (<, <=, >, >=, ==, !=)"))?;
        let (lhs, rhs) = source.split_once(op_text).expect("found above");
        let (lhs, rhs) = (lhs.trim(), rhs.trim());
        let (group, metric_name) = match lhs.strip_prefix("group.").and_then(|r| r.rsplit_once('.')) {
            Some((group, metric)) => (Some(group.to_string()), metric),
            None => (None, lhs),
        };
        let metric = Metric::parse(metric_name)
            .ok_or_else(|| format!("check `{source}`: unknown metric `{metric_name}`; known: {METRICS}"))?;
        let threshold = match metric {
            Metric::Latency(_) => rhs
                .parse::<crate::config::duration::DurationValue>()
                .map(|d| d.0.as_secs_f64() * 1e6)
                .map_err(|e| format!("check `{source}`: {e}"))?,
            _ => rhs
                .parse::<f64>()
                .map_err(|_| format!("check `{source}`: `{rhs}` is not a number"))?,
        };
        Ok(Self {
            source: source.trim().to_string(),
            group,
            metric,
            comparison,
            threshold,
        })
    }

    pub(crate) fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }
}

impl fmt::Display for MetricCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for MetricCheck {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for MetricCheck {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        MetricCheck::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_expressions_with_units_and_groups() {
        let c = MetricCheck::parse("group.writers.p99 < 100ms").unwrap();
        assert_eq!(c.group(), Some("writers"));
        assert_eq!(c.metric, Metric::Latency(Percentile::P99));
        assert_eq!(c.comparison, Comparison::Lt);
        assert_eq!(c.threshold, 100_000.0);
        let c = MetricCheck::parse("fairness >= 0.8").unwrap();
        assert_eq!((c.comparison, c.threshold, c.group()), (Comparison::Ge, 0.8, None));
        assert_eq!(
            MetricCheck::parse("busy_errors == 0").unwrap().comparison,
            Comparison::Eq
        );
    }

    #[test]
    fn rejects_bad_expressions() {
        for (bad, why) in [
            ("p99 100ms", "no comparison"),
            ("latency < 5ms", "unknown metric `latency`"),
            ("p99 < 100", "duration"),
            ("busy_errors == none", "not a number"),
        ] {
            let err = MetricCheck::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
