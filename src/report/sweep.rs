//! A sweep (`[sweep]` in the scenario) against its swept value (computed by
//! `analysis::sweep::view`): the figures of the swept group
//! at each step, one line per value of `by`. The Markdown shows them as a table, the HTML page
//! as charts of p99 and throughput against the swept value.

use super::format::{Table, failed_of, format_rate, format_us, sweep_step, sweep_unit};
use super::svg::{self, Axis, LineChart, Scale, Series};
use crate::analysis::sweep::{SweepPoint, SweepView};

/// The sweep's section title.
pub(crate) fn title(view: &SweepView) -> String {
    format!("Sweep: {} against {}", view.group, sweep_unit(&view.axis))
}

/// One row per line and step: the step with its unit, tx/s, p99, failed requests.
pub(crate) fn table(view: &SweepView) -> Table {
    let mut rows = Vec::new();
    for line in &view.lines {
        for (i, p) in line.points.iter().enumerate() {
            let failed = failed_of(p.failed, p.requests);
            rows.push(vec![
                if i == 0 { line.label.clone() } else { String::new() },
                sweep_step(&view.axis, p.x),
                format_rate(p.tx_per_s),
                format_us(p.p99_us),
                failed,
            ]);
        }
    }
    Table {
        headers: vec![
            if view.by.is_some() { "by" } else { "group" },
            "step",
            "tx/s",
            "p99",
            "failed requests",
        ],
        right: vec![false, false, true, true, true],
        rows,
    }
}

/// The x axis: the steps themselves as ticks, on a log scale when they span a factor of 8.
fn x_axis(view: &SweepView) -> Axis {
    let mut xs: Vec<f64> = view.lines.iter().flat_map(|l| l.points.iter().map(|p| p.x)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    let scale = if lo > 0.0 && hi / lo >= 8.0 {
        Scale::Log { min: lo, max: hi }
    } else if hi > lo {
        Scale::Linear { min: lo, max: hi }
    } else {
        Scale::Linear {
            min: lo - 1.0,
            max: hi + 1.0,
        }
    };
    let log = matches!(scale, Scale::Log { .. });
    Axis {
        label: format!(
            "{} ({}{})",
            sweep_unit(&view.axis),
            view.axis,
            if log { ", log scale" } else { "" }
        ),
        scale,
        ticks: xs.iter().map(|&x| (x, format!("{x}"))).collect(),
    }
}

fn series(view: &SweepView, y: fn(&SweepPoint) -> f64) -> Vec<Series> {
    view.lines
        .iter()
        .enumerate()
        .map(|(i, l)| Series {
            name: l.label.clone(),
            color: svg::palette(i),
            dash: 0,
            points: l.points.iter().map(|p| (p.x, y(p))).collect(),
        })
        .collect()
}

/// Two charts: p99 (log scale) and throughput against the swept value.
pub(crate) fn charts(view: &SweepView) -> (LineChart, LineChart) {
    let p99 = series(view, |p| p.p99_us);
    let (lo, hi) = svg::value_range(&p99);
    let (y_scale, y_ticks) = svg::log_ticks(lo, hi, svg::tick_us);
    let latency = LineChart {
        title: format!("p99 of {} against {}", view.group, sweep_unit(&view.axis)),
        x: x_axis(view),
        y: Axis {
            label: "p99 latency (log scale)".into(),
            scale: y_scale,
            ticks: y_ticks,
        },
        series: p99,
    };
    let tput = series(view, |p| p.tx_per_s);
    let top = tput
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    let ticks = svg::linear_ticks(0.0, top, |v| if v == 0.0 { "0".into() } else { format_rate(v) });
    let max = ticks.last().map_or(top, |t| t.0.max(top));
    let throughput = LineChart {
        title: format!("Throughput of {} against {}", view.group, sweep_unit(&view.axis)),
        x: x_axis(view),
        y: Axis {
            label: "committed transactions per second".into(),
            scale: Scale::Linear { min: 0.0, max },
            ticks,
        },
        series: tput,
    };
    (latency, throughput)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::analysis::sweep::view;
    use crate::report::model::Report;

    /// The run fixture as a sweep of `group.writers.rate` (100, 200) by journal_mode.
    pub(crate) fn fixture() -> Report {
        let mut report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        report.scenario.resolved["sweep"] = serde_json::json!({
            "axis": "group.writers.rate", "group": "writers", "by": "sqlite.journal_mode", "p99_limit": "100ms"
        });
        for (run, rate) in report.runs.iter_mut().zip(["100", "200", "100", "200"]) {
            run.matrix.insert("group.writers.rate".into(), rate.into());
        }
        report
    }

    #[test]
    fn a_line_per_by_value_and_a_point_per_step() {
        let view = view(&fixture()).unwrap().expect("a sweep");
        assert_eq!(view.axis, "group.writers.rate");
        let labels: Vec<&str> = view.lines.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["journal_mode=wal", "journal_mode=delete"]);
        let xs: Vec<f64> = view.lines[0].points.iter().map(|p| p.x).collect();
        assert_eq!(xs, [100.0, 200.0]);
        assert_eq!(view.lines[0].points[1].tx_per_s.round(), 4696.0);
        let md = table(&view).to_markdown();
        assert!(md.contains("| journal_mode=wal | 100 req/s | 30,911 |"), "{md}");
        let (latency, throughput) = charts(&view);
        for chart in [latency.to_svg(), throughput.to_svg()] {
            assert_eq!(chart.matches("class=\"data line\"").count(), 2, "{chart}");
            assert!(chart.contains("requests per second (rate)"), "{chart}");
        }
    }

    #[test]
    fn no_sweep_no_view() {
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        assert!(view(&report).unwrap().is_none());
    }

    #[test]
    fn steps_carry_their_unit() {
        assert_eq!(sweep_step("group.writers.workers", 16.0), "16 workers");
        assert_eq!(sweep_step("group.writers.workers", 1.0), "1 worker");
        assert_eq!(sweep_step("group.web.clients", 32.0), "32 clients");
        assert_eq!(sweep_step("group.web.rate", 200.0), "200 req/s");
        assert_eq!(sweep_step("cache_size", -4000.0), "cache_size=-4000");
    }
}
