//! A sweep (e.g. writers 1..64 × journal_mode), computed from the runs: its findings, where
//! the claim "concurrent writes are fine" stops holding, and its view (the swept group's
//! figures at each step, rendered by `report::sweep`).

use super::stats::{self, BadHistogram, Subject};
use super::verdict;
use crate::config::Sweep;
use crate::config::matrix::canonical_key;
use crate::report::format::{format_rate, format_us, sweep_step};
use crate::report::model::{GroupReport, Report, RunReport};

/// One line per value of `sweep.by` (or one line without `by`).
pub(crate) fn findings(sweep: &Sweep, runs: &[RunReport]) -> Vec<String> {
    let axis = canonical_key(&sweep.axis);
    let by: Option<Vec<String>> = sweep.by.as_deref().map(|b| b.split(',').map(canonical_key).collect());
    let label_of = |run: &RunReport| by.as_ref().map(|by| by_label(by, &run.matrix));
    let mut keys: Vec<Option<String>> = Vec::new();
    for run in runs {
        let key = label_of(run);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .filter_map(|key| {
            let mut steps: Vec<(f64, &GroupReport)> = runs
                .iter()
                .filter(|r| label_of(r) == key)
                .filter_map(|r| Some((step_value(r, &axis)?, r.groups.iter().find(|g| g.name == sweep.group)?)))
                .collect();
            steps.sort_by(|a, b| a.0.total_cmp(&b.0));
            let label = key.map_or(String::new(), |k| format!("{k}: "));
            finding(sweep, &axis, &steps).map(|f| format!("{label}{f}"))
        })
        .collect()
}

/// `journal_mode=wal`, or `target=turso, group.writers.only=hot` for a `by` of several axes
/// (comma-separated).
fn by_label(by: &[String], matrix: &serde_json::Map<String, serde_json::Value>) -> String {
    by.iter()
        .map(|b| format!("{b}={}", matrix.get(b).and_then(|v| v.as_str()).unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(", ")
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
    let step = |v: f64| sweep_step(axis, v);
    let holds = match best {
        Some(v) => format!(
            "up to {} with no errors and {} p99 < {}",
            step(v),
            sweep.group,
            sweep.p99_limit
        ),
        None => format!("no step had zero errors and {} p99 < {}", sweep.group, sweep.p99_limit),
    };
    let broken = steps.iter().find(|(v, g)| !healthy(g) && best.is_none_or(|b| *v > b));
    let first_break = broken.map_or(String::new(), |(v, g)| {
        format!(
            " (at {}: {} errors, p99 {})",
            step(*v),
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
        "{holds}{first_break}; {} throughput {} → {}: {} → {} tx/s{ratio}; at {}: max {}, Jain fairness {:.2}",
        sweep.group,
        step(first.0),
        step(last.0),
        format_rate(t0),
        format_rate(t1),
        step(last.0),
        format_us(end.transactions.latency_us.max),
        end.fairness.jain_index
    ))
}

/// The swept group's figures at each step, one line per value of `by`.
pub(crate) struct SweepView {
    /// The swept key as in the runs' matrix, e.g. `group.writers.workers`.
    pub axis: String,
    pub group: String,
    pub by: Option<String>,
    pub lines: Vec<SweepLine>,
}

/// One value of `by` (or the group without `by`): its steps in order.
pub(crate) struct SweepLine {
    /// `journal_mode=wal` for a `by` value; the group's name without `by`.
    pub label: String,
    pub points: Vec<SweepPoint>,
}

/// One step: the swept value and the group's figures there.
pub(crate) struct SweepPoint {
    pub x: f64,
    pub tx_per_s: f64,
    pub p99_us: f64,
    pub failed: u64,
    pub requests: u64,
}

fn key(text: &str) -> String {
    let text = text.trim();
    text.strip_prefix("sqlite.").unwrap_or(text).to_string()
}

/// The sweep of a report (from its resolved scenario), `None` without one or without steps.
pub(crate) fn view(report: &Report) -> Result<Option<SweepView>, BadHistogram> {
    let Some(sweep) = report.scenario.resolved.get("sweep").filter(|s| s.is_object()) else {
        return Ok(None);
    };
    let (Some(axis), Some(group)) = (
        sweep.get("axis").and_then(|v| v.as_str()),
        sweep.get("group").and_then(|v| v.as_str()),
    ) else {
        return Ok(None);
    };
    let axis = key(axis);
    let by = sweep.get("by").and_then(|v| v.as_str()).map(key);
    let configs = stats::configurations(report);
    let cands = verdict::candidates(&configs, Subject::Transactions { group })?;
    let mut lines: Vec<SweepLine> = Vec::new();
    for cand in &cands {
        let Some(config) = configs.iter().find(|c| c.id == cand.id) else {
            continue;
        };
        let matrix = &config.runs[0].matrix;
        let Some(x) = matrix
            .get(&axis)
            .and_then(|v| v.as_str())
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        let label = match &by {
            Some(b) => by_label(&b.split(',').map(key).collect::<Vec<_>>(), matrix),
            None => group.to_string(),
        };
        let point = SweepPoint {
            x,
            tx_per_s: cand.figures.throughput.mean,
            p99_us: cand.figures.p99.mean,
            failed: cand.failed,
            requests: cand.requests,
        };
        match lines.iter_mut().find(|l| l.label == label) {
            Some(line) => line.points.push(point),
            None => lines.push(SweepLine {
                label,
                points: vec![point],
            }),
        }
    }
    lines
        .iter_mut()
        .for_each(|l| l.points.sort_by(|a, b| a.x.total_cmp(&b.x)));
    if lines.iter().all(|l| l.points.is_empty()) {
        return Ok(None);
    }
    Ok(Some(SweepView {
        axis,
        group: group.to_string(),
        by,
        lines,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::Report;

    #[test]
    fn findings_name_the_swept_value_with_its_unit() {
        let mut report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        for (run, rate) in report.runs.iter_mut().zip(["100", "200", "100", "200"]) {
            run.matrix.insert("group.writers.rate".into(), rate.into());
        }
        let sweep = Sweep {
            axis: "group.writers.rate".into(),
            group: "writers".into(),
            by: Some("journal_mode".into()),
            p99_limit: crate::config::duration::DurationValue(std::time::Duration::from_secs(10)),
        };
        let found = findings(&sweep, &report.runs);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("journal_mode=wal: up to 200 req/s with no errors"),
            "{found:?}"
        );
        assert!(found[0].contains("throughput 100 req/s → 200 req/s"), "{found:?}");
        assert!(!found.iter().any(|f| f.contains(" rate")), "{found:?}");
    }
}
