//! Charts over time from a run's `timeline` (per-interval samples): throughput and p99 per
//! group (or of all groups when the entries have no per-group part), and WAL size.
//!
//! The timeline is read from the run's JSON, only the fields used here, so reports without
//! one (or older ones) still render, with a placeholder.

use super::{slug, tick_us, value_range};
use crate::analysis::stats::Config;
use crate::report::format::{format_rate, run_label};
use crate::report::model::RunReport;
use crate::report::svg::{self, Axis, LineChart, Scale, Series};
use serde::Deserialize;

/// One interval of a run: the fields of a `timeline` entry the charts use.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct TimelinePoint {
    /// End of the interval, seconds since measuring started.
    pub t_s: f64,
    /// Committed transactions of all groups in the interval.
    pub ops: f64,
    pub p99_us: f64,
    pub wal_bytes: f64,
    pub groups: Vec<GroupPoint>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub(crate) struct GroupPoint {
    pub name: String,
    pub ops: f64,
    pub p99_us: f64,
}

/// The `timeline` of a run's JSON, empty when absent or unreadable.
pub(crate) fn from_value(run: &serde_json::Value) -> Vec<TimelinePoint> {
    run.get("timeline")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default()
}

fn of_run(run: &RunReport) -> Vec<TimelinePoint> {
    serde_json::to_value(run).map_or_else(|_| Vec::new(), |v| from_value(&v))
}

/// A labelled timeline per run (`id #k` for repeats), coloured by configuration.
pub(crate) struct RunTimeline {
    pub label: String,
    pub color: &'static str,
    /// Dash pattern: the repeat number minus one, so repeats of a configuration differ.
    pub dash: usize,
    pub points: Vec<TimelinePoint>,
    /// When measuring stopped: the last interval ends here, not at its nominal end.
    pub end_s: f64,
}

/// The "Over time" section: charts, or a placeholder when no run has a timeline.
pub(crate) fn section(configs: &[Config]) -> String {
    let mut runs = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        for run in &config.runs {
            let label = run_label(run);
            runs.push(RunTimeline {
                label,
                color: svg::palette(i),
                dash: run.repeat.map_or(0, |k| k as usize - 1),
                points: of_run(run),
                end_s: if run.measured_s > 0.0 {
                    run.measured_s
                } else {
                    f64::INFINITY
                },
            });
        }
    }
    if runs.iter().all(|r| r.points.is_empty()) {
        return "<p class=\"placeholder\" id=\"no-timeline\">No timeline in this report: throughput, p99 and \
                WAL size over time need a report with per-interval samples (<code>timeline</code>), \
                written by a newer litehammer. The maximum WAL size of each run is in the JSON \
                (<code>database.wal_bytes_max</code>).</p>\n"
            .to_string();
    }
    charts(&runs).iter().map(|(id, svg)| svg::figure(id, svg)).collect()
}

/// Throughput and p99 over time per group (or overall), then WAL size; one line per run.
pub(crate) fn charts(runs: &[RunTimeline]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let groups = group_names(runs);
    let subjects: Vec<Option<&str>> = if groups.is_empty() {
        vec![None]
    } else {
        groups.iter().map(|g| Some(g.as_str())).collect()
    };
    for group in subjects {
        let (of, id) = match group {
            Some(g) => (format!(" of {g}"), format!("-{}", slug(g))),
            None => (String::new(), String::new()),
        };
        let throughput = series(runs, |dt, p| {
            let ops = ops_of(p, group)?;
            (dt > 0.0).then(|| ops / dt)
        });
        let p99 = series(runs, |_, p| p99_of(p, group));
        out.push((
            format!("throughput-over-time{id}"),
            chart(
                &format!("Throughput{of} over time"),
                "committed transactions per second",
                throughput,
                false,
                rate_tick,
            ),
        ));
        out.push((
            format!("p99-over-time{id}"),
            chart(
                &format!("p99 latency{of} over time"),
                "p99 latency (log scale)",
                p99,
                true,
                tick_us,
            ),
        ));
    }
    out.push(("wal-over-time".to_string(), wal_chart(runs)));
    out
}

/// WAL size in the binary unit that suits its largest value, so the ticks are round.
fn wal_chart(runs: &[RunTimeline]) -> String {
    let largest = runs
        .iter()
        .flat_map(|r| &r.points)
        .map(|p| p.wal_bytes)
        .fold(0.0, f64::max);
    let (unit, name) = [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|(u, _)| largest >= *u as f64)
        .unwrap_or((1, "bytes"));
    let wal = series(runs, |_, p| Some(p.wal_bytes / unit as f64));
    let label = format!("WAL file size ({name})");
    chart("WAL size over time", &label, wal, false, plain_tick)
}

fn plain_tick(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn group_names(runs: &[RunTimeline]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for g in runs.iter().flat_map(|r| &r.points).flat_map(|p| &p.groups) {
        if !names.contains(&g.name) {
            names.push(g.name.clone());
        }
    }
    names
}

fn ops_of(p: &TimelinePoint, group: Option<&str>) -> Option<f64> {
    match group {
        None => Some(p.ops),
        Some(name) => p.groups.iter().find(|g| g.name == name).map(|g| g.ops),
    }
}

/// p99 of the interval; None when nothing completed in it (no latency to show).
fn p99_of(p: &TimelinePoint, group: Option<&str>) -> Option<f64> {
    let (ops, p99) = match group {
        None => (p.ops, p.p99_us),
        Some(name) => p.groups.iter().find(|g| g.name == name).map(|g| (g.ops, g.p99_us))?,
    };
    (ops > 0.0).then_some(p99)
}

fn rate_tick(v: f64) -> String {
    if v == 0.0 { "0".into() } else { format_rate(v) }
}

/// One line per run; `y` gets each interval's length (the last one may be cut short by the
/// end of measuring) and its entry, placed at the interval's end.
fn series(runs: &[RunTimeline], y: impl Fn(f64, &TimelinePoint) -> Option<f64>) -> Vec<Series> {
    runs.iter()
        .filter(|r| !r.points.is_empty())
        .map(|r| {
            let mut start = 0.0;
            let mut points = Vec::new();
            for p in &r.points {
                let end = p.t_s.min(r.end_s);
                if let Some(v) = y(end - start, p) {
                    points.push((end, v));
                }
                start = end;
            }
            Series {
                name: r.label.clone(),
                color: r.color,
                dash: r.dash,
                points,
            }
        })
        .collect()
}

fn chart(title: &str, y_label: &str, series: Vec<Series>, log_y: bool, format: fn(f64) -> String) -> String {
    let t_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let x_ticks = svg::linear_ticks(0.0, t_max, |t| format!("{t:.0}"));
    let x_scale = Scale::Linear {
        min: 0.0,
        max: x_ticks.last().map_or(t_max, |t| t.0),
    };
    let (lo, hi) = value_range(&series);
    let (y_scale, y_ticks) = if log_y {
        svg::log_ticks(lo, hi, format)
    } else {
        let ticks = svg::linear_ticks(0.0, hi.max(1.0), format);
        let max = ticks.last().map_or(1.0, |t| t.0);
        (Scale::Linear { min: 0.0, max }, ticks)
    };
    LineChart {
        title: title.to_string(),
        x: Axis {
            label: "time since the measured phase started (s)".into(),
            scale: x_scale,
            ticks: x_ticks,
        },
        y: Axis {
            label: y_label.to_string(),
            scale: y_scale,
            ticks: y_ticks,
        },
        series,
    }
    .to_svg()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two intervals as a run's JSON holds them (fields the charts ignore included).
    fn run_json(with_groups: bool) -> serde_json::Value {
        let errors = serde_json::json!({ "busy": 0, "busy_snapshot": 0, "locked": 0, "constraint": 0, "other": 0 });
        let groups = |w: u64, r: u64| {
            if with_groups {
                serde_json::json!([
                    { "name": "writers", "ops": w, "errors": 0, "p50_us": 100.0, "p99_us": 900.0 },
                    { "name": "readers", "ops": r, "errors": 0, "p50_us": 2.0, "p99_us": 9.0 }
                ])
            } else {
                serde_json::json!([])
            }
        };
        serde_json::json!({
            "id": "x",
            "timeline": [
                { "t_s": 1.0, "ops": 100, "errors": errors, "p50_us": 10.0, "p99_us": 50.0, "db_bytes": 4096,
                  "wal_bytes": 0, "wal_frames": 0, "groups": groups(40, 60) },
                { "t_s": 2.0, "ops": 300, "errors": errors, "p50_us": 12.0, "p99_us": 80.0, "db_bytes": 8192,
                  "wal_bytes": 4096, "wal_frames": 1, "groups": groups(0, 300) }
            ]
        })
    }

    fn charts_of(json: &serde_json::Value) -> Vec<(String, String)> {
        let points = from_value(json);
        assert_eq!(points.len(), 2);
        charts(&[RunTimeline {
            label: "x".into(),
            color: svg::palette(0),
            dash: 0,
            points,
            end_s: 1.5,
        }])
    }

    #[test]
    fn per_group_charts_when_entries_have_groups() {
        let charts = charts_of(&run_json(true));
        let ids: Vec<&str> = charts.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            ids,
            [
                "throughput-over-time-writers",
                "p99-over-time-writers",
                "throughput-over-time-readers",
                "p99-over-time-readers",
                "wal-over-time"
            ]
        );
        let p99_writers = &charts[1].1;
        let line = p99_writers.split("class=\"data line\"").nth(1).unwrap();
        let d = line.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(
            d.matches('L').count(),
            0,
            "no p99 point for an interval without writes: {d}"
        );
        // The second interval was cut short at 1.5 s: 300 reads in 0.5 s.
        assert!(
            charts[2].1.contains(">600</text>"),
            "readers: 600/s in the second interval"
        );
        assert!(charts[4].1.contains("WAL file size (KiB)") && charts[4].1.contains(">4</text>"));
    }

    #[test]
    fn overall_charts_without_groups_and_nothing_without_a_timeline() {
        let charts = charts_of(&run_json(false));
        let ids: Vec<&str> = charts.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(ids, ["throughput-over-time", "p99-over-time", "wal-over-time"]);
        for (_, svg) in &charts {
            assert_eq!(svg.matches("class=\"data line\"").count(), 1);
        }
        assert!(from_value(&serde_json::json!({ "id": "old" })).is_empty());
    }
}
