//! A `litehammer capacity` report's knee in each view: per configuration, the offered rate
//! of every step against what it achieved, its p50 and p99, its errors and the outcome
//! (the search is `analysis::capacity`); in HTML also a chart of p99 against the offered
//! rate, every configuration on one chart, with the latency objective drawn as a line.

use super::format::{Table, format_rate, percent};
use super::model::capacity::{CapacityReport, CapacityResult};

/// One configuration's steps, in the order of their offered rate.
pub(crate) fn steps_table(result: &CapacityResult) -> Table {
    let mut steps: Vec<_> = result.steps.iter().collect();
    steps.sort_by(|a, b| a.offered_per_s.total_cmp(&b.offered_per_s));
    let rows = steps
        .iter()
        .map(|s| {
            vec![
                format_rate(s.offered_per_s),
                format_rate(s.achieved_per_s),
                format!("{:.1} ms", s.p50_ms),
                format!("{:.1} ms", s.p99_ms),
                percent(s.error_share),
                match &s.failed {
                    None => "ok".to_string(),
                    Some(why) => format!("FAILED: {why}"),
                },
            ]
        })
        .collect();
    Table {
        headers: vec!["offered/s", "achieved/s", "p50", "p99", "errors", "objectives"],
        right: vec![true, true, true, true, true, false],
        rows,
    }
}

/// The terminal's section: a heading and the steps of each configuration.
pub(crate) fn text(report: &CapacityReport) -> String {
    let mut out = format!(
        "rate search ({}; steps of {} s):\n",
        report.slo.join(", "),
        report.step_s
    );
    for r in &report.configurations {
        out.push_str(&format!("\n{}: {}\n", r.id, summary(r)));
        out.push_str(&steps_table(r).to_text());
    }
    out
}

/// The Markdown section.
pub(crate) fn markdown(report: &CapacityReport, escape: fn(&str) -> String) -> String {
    let mut out = format!(
        "## Capacity\n\nObjectives: {}; each step measured {} s.\n\n",
        escape(&report.slo.join(", ")),
        report.step_s
    );
    for r in &report.configurations {
        out.push_str(&format!(
            "### {}\n\n{}\n\n{}\n",
            escape(&r.id),
            escape(&summary(r)),
            steps_table(r).to_markdown()
        ));
    }
    out
}

/// The capacity and why, in one line.
fn summary(r: &CapacityResult) -> String {
    let settled = if r.settled { "" } else { ", not settled" };
    if r.capacity_per_s > 0.0 {
        format!(
            "capacity {}/s{settled}; {}",
            crate::analysis::capacity::show_rate(r.capacity_per_s),
            r.reason
        )
    } else {
        format!("capacity 0{settled}; {}", r.reason)
    }
}

/// The HTML section: the knee chart (p99 against the offered rate, both log scales, every
/// configuration one line, the p99 objective a dashed line) and the steps of each.
pub(crate) fn html(report: &CapacityReport, objective_p99_ms: Option<f64>) -> String {
    use super::format::escape_html;
    use super::svg::{Axis, LineChart, Series, log_ticks, palette};
    let mut series: Vec<Series> = report
        .configurations
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut points: Vec<(f64, f64)> = r.steps.iter().map(|s| (s.offered_per_s, s.p99_ms.max(0.001))).collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                name: r.id.clone(),
                color: palette(i),
                dash: 0,
                points,
            }
        })
        .collect();
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x_min, x_max) = xs.fold((f64::INFINITY, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if let (Some(limit), true) = (objective_p99_ms, x_max > 0.0) {
        series.push(Series {
            name: format!("objective: p99 < {limit} ms"),
            color: "#888888",
            dash: 1,
            points: vec![(x_min, limit), (x_max, limit)],
        });
    }
    let mut out = String::from("<section id=\"capacity\">\n<h2>Capacity</h2>\n");
    out.push_str(&format!(
        "<p>Objectives: {}; each step measured {} s.</p>\n",
        escape_html(&report.slo.join(", ")),
        report.step_s
    ));
    if x_max > 0.0 {
        let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
        let (y_min, y_max) = ys.fold((f64::INFINITY, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let (x_scale, x_ticks) = log_ticks(x_min, x_max.max(x_min * 10.0), format_rate);
        let (y_scale, y_ticks) = log_ticks(y_min, y_max.max(y_min * 10.0), |v| format!("{v} ms"));
        let chart = LineChart {
            title: "p99 against the offered rate".to_string(),
            x: Axis {
                label: "offered requests per second (log scale)".to_string(),
                scale: x_scale,
                ticks: x_ticks,
            },
            y: Axis {
                label: "p99 (ms, log scale)".to_string(),
                scale: y_scale,
                ticks: y_ticks,
            },
            series,
        };
        out.push_str(&super::svg::figure("capacity-knee", &chart.to_svg()));
    }
    for r in &report.configurations {
        out.push_str(&format!(
            "<h3>{}</h3>\n<p>{}</p>\n{}",
            escape_html(&r.id),
            escape_html(&summary(r)),
            steps_table(r).to_html()
        ));
    }
    out.push_str("</section>\n");
    out
}

/// The limit of a `p99 < …` objective, in ms, to draw on the chart.
pub(crate) fn p99_objective_ms(report: &CapacityReport) -> Option<f64> {
    report.slo.iter().find_map(|s| {
        let limit = s.strip_prefix("p99 < ")?;
        let d: crate::config::duration::DurationValue = limit.parse().ok()?;
        Some(d.0.as_secs_f64() * 1e3)
    })
}
