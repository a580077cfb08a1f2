//! The HTML exporter: one self-contained page (inline CSS, inline SVG, a few lines of inline
//! script, nothing fetched) with charts and the Markdown report's tables.

use super::durability;
use super::format::{errors_cell, escape_html, format_rate};
use super::model::Report;
use super::page;
use super::svg::{self, Axis, Bar, BarChart, LineChart, Scale, Series};
use super::{Exporter, RenderError};
use crate::analysis::stats::{self, Config, Subject};
use std::fmt::Write;

pub(crate) use super::svg::{tick_us, value_range};

pub(crate) mod timeline;

/// HTML, with ratios against `baseline` (an id or `key=value,...`; default the first run).
#[derive(Default)]
pub(crate) struct Html {
    pub baseline: Option<String>,
}

impl Exporter for Html {
    fn render(&self, report: &Report) -> Result<Vec<u8>, RenderError> {
        let configs = stats::configurations(report);
        let baseline = page::resolve_baseline(&configs, self.baseline.as_deref())?;
        let subjects = stats::subjects(report);
        let title = format!("litehammer: {}", report.scenario.name);
        let mut body = format!("<h1>{}</h1>\n", escape_html(&title));
        if !report.scenario.description.is_empty() {
            let _ = writeln!(body, "<p>{}</p>", escape_html(&report.scenario.description));
        }
        body.push_str(&verdict(report));
        if let Some(capacity) = &report.capacity {
            body.push_str(&super::capacity::html(
                capacity,
                super::capacity::p99_objective_ms(capacity),
            ));
        }
        body.push_str(&decision_section(report)?);
        body.push_str(&apply_section(report)?);
        body.push_str(&environment(report, &configs, baseline));
        if page::measured(report, &subjects) {
            body.push_str(&measured(&configs, &subjects, baseline)?);
        }
        if let Some(sweep) = crate::analysis::sweep::view(report)? {
            let (latency, throughput) = super::sweep::charts(&sweep);
            let content = format!(
                "{}{}{}",
                svg::figure("sweep-p99", &latency.to_svg()),
                svg::figure("sweep-throughput", &throughput.to_svg()),
                super::sweep::table(&sweep).to_html()
            );
            body.push_str(&section(&super::sweep::title(&sweep), &content));
        }
        if let Some(anatomy) = crate::report::anatomy::html(report) {
            body.push_str(&anatomy);
        }
        if durability::present(report) || crate::analysis::decision::present(report) {
            body.push_str(&durability_section(report));
        }
        body.push_str(&notes(report));
        body.push_str(&problems(report));
        Ok(page(&title, &body).into_bytes())
    }
}

/// Charts and tables of the measured runs.
fn measured(configs: &[Config], subjects: &[Subject], baseline: Option<&Config>) -> Result<String, RenderError> {
    let mut out = section("Throughput", &throughput_charts(configs, subjects)?);
    out.push_str(&section("Latency percentiles", &percentile_charts(configs, subjects)?));
    out.push_str(&section("Over time", &timeline::section(configs)));
    out.push_str(&section("Errors", &svg::figure("errors", &errors_chart(configs)?)));
    out.push_str(&tables(configs, subjects, baseline)?);
    Ok(out)
}

/// `run --durability`: the decision table and the recommendation.
fn decision_section(report: &Report) -> Result<String, RenderError> {
    let Some(decision) = &report.decision else {
        return Ok(String::new());
    };
    let items: String = decision
        .recommendation
        .iter()
        .map(|l| format!("<li>{}</li>\n", escape_html(l)))
        .collect();
    let content = format!(
        "<p class=\"hint\">{}</p>\n{}<h3>Recommendation</h3>\n<ul id=\"recommendation\">\n{items}</ul>\n",
        code_spans(&escape_html(&super::decision::legend(decision, report))),
        super::decision::table(decision).to_html()
    );
    Ok(format!(
        "<section id=\"decision\">\n{}</section>\n",
        section("Speed × durability", &content)
    ))
}

/// "Apply it": the recommended configuration as plain PRAGMAs and Django settings.
fn apply_section(report: &Report) -> Result<String, RenderError> {
    let Some(apply) = super::snippet::ApplyIt::of(report)? else {
        return Ok(String::new());
    };
    let content = format!(
        "<p>{}</p>\n<pre><code class=\"language-sql\">{}</code></pre>\n<pre><code class=\"language-python\">{}</code></pre>\n<p>{}</p>\n",
        code_spans(&escape_html(&apply.intro())),
        escape_html(&apply.pragma),
        escape_html(&apply.django),
        code_spans(&escape_html(&apply.others()))
    );
    Ok(format!(
        "<section id=\"apply\">\n{}</section>\n",
        section("Apply it", &content)
    ))
}

/// Crash reports: what the rows mean, a chart of trials losing commits, the durability table.
fn durability_section(report: &Report) -> String {
    let legend = code_spans(&escape_html(&durability::legend(report)));
    let content = format!(
        "<p class=\"hint\">{legend}</p>\n{}{}",
        svg::figure("durability", &durability_chart(report)),
        durability::table(&report.runs).to_html()
    );
    let title = if durability::present(report) {
        "Durability"
    } else {
        "Crash trials"
    };
    section(title, &content)
}

/// One bar per configuration and method/model: trials that lost acknowledged commits, on an
/// axis reaching the number of trials; a configuration's bars share its colour.
fn durability_chart(report: &Report) -> String {
    let mut bars = Vec::new();
    let mut colors = Vec::new();
    let mut trials = 0;
    for (i, run) in report.runs.iter().enumerate() {
        for r in run.durability.iter().flat_map(|d| &d.results) {
            trials = trials.max(r.trials);
            bars.push(Bar {
                label: format!("{} · {}", run.id, r.model.as_deref().unwrap_or(&r.method)),
                segments: vec![r.trials_losing as f64],
                range: None,
                value_text: format!("{}/{}", r.trials_losing, r.trials),
            });
            colors.push(svg::palette(i));
        }
    }
    let chart = BarChart {
        title: "Trials losing acknowledged commits, per configuration and crash method".into(),
        value_label: "trials in which at least one acknowledged transaction was lost".into(),
        bars,
        colors,
        segment_names: Vec::new(),
        format: |v| format!("{v:.0}"),
        min_extent: trials.max(1) as f64,
    };
    chart.to_svg()
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1000px;margin:2em auto;\
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}th,td{padding:.25em .6em;border-bottom:1px solid #e5e5e5;\
text-align:left;white-space:nowrap}th.num,td.num{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1em 0}svg.chart{width:100%;max-width:760px;height:auto;display:block}\
.legend-item{cursor:pointer}.legend-item.off{opacity:.3}.hint,.placeholder{color:#666;font-size:.9em}\
.placeholder{border:1px dashed #bbb;padding:1em;max-width:740px}dt{font-weight:bold;float:left;clear:left;width:7em}\
dd{margin:0 0 .2em 7.5em}code{background:#f3f3f3;padding:0 .2em}\
pre{background:#f3f3f3;padding:.6em;overflow-x:auto;font-size:.85em}pre code{padding:0}\
.warning{background:#fff4e5;border-left:4px solid #e69500;padding:.4em .6em;margin:.3em 0}";

/// Hides or shows a configuration when its legend entry is clicked; marks the page ready.
const SCRIPT: &str = "(function(){\
document.querySelectorAll('svg.chart').forEach(function(svg){\
svg.querySelectorAll('.legend-item').forEach(function(item){\
item.addEventListener('click',function(){\
var off=item.classList.toggle('off');var s=item.getAttribute('data-series');\
svg.querySelectorAll('.data[data-series=\"'+s+'\"]').forEach(function(el){el.style.display=off?'none':'';});});});});\
document.body.setAttribute('data-ready','ok');})();";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n{body}<script>{SCRIPT}</script>\n</body>\n</html>\n",
        escape_html(title)
    )
}

fn section(title: &str, content: &str) -> String {
    format!("<h2>{}</h2>\n{content}", escape_html(title))
}

/// The environment lines as a definition list (Markdown's `code` spans become `<code>`).
fn environment(report: &Report, configs: &[Config], baseline: Option<&Config>) -> String {
    let mut out = String::from("<h2>Environment</h2>\n<dl>\n");
    for (label, value) in page::environment(report, configs, baseline) {
        let _ = writeln!(out, "<dt>{label}</dt><dd>{}</dd>", code_spans(&escape_html(&value)));
    }
    out.push_str("</dl>\n");
    out
}

fn code_spans(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        match i % 2 {
            1 => {
                let _ = write!(out, "<code>{part}</code>");
            }
            _ => out.push_str(part),
        }
    }
    out
}

fn tables(configs: &[Config], subjects: &[Subject], baseline: Option<&Config>) -> Result<String, RenderError> {
    let mut out = format!(
        "<h2>Tables</h2>\n<p class=\"hint\">{}</p>\n",
        escape_html(&page::legend(configs))
    );
    for subject in subjects {
        let table = page::subject_table(configs, *subject, baseline)?;
        let _ = write!(out, "<h3>{}</h3>\n{}", escape_html(&subject.title()), table.to_html());
    }
    Ok(out)
}

/// The verdict lines, first on the page.
fn verdict(report: &Report) -> String {
    let warnings: String = report
        .noise_warnings
        .iter()
        .map(|w| format!("<p class=\"warning\">{}</p>\n", escape_html(w.trim_start())))
        .collect();
    let Some((header, lines)) = report.verdict.split_first() else {
        return warnings;
    };
    let items: String = lines.iter().map(|l| format!("<li>{}</li>\n", escape_html(l))).collect();
    format!(
        "{warnings}<section id=\"verdict\">\n<h2>Verdict</h2>\n<p class=\"hint\">{}</p>\n<ul>\n{items}</ul>\n</section>\n",
        escape_html(header)
    )
}

/// What the terminal concludes beside the table: checks, unfair workers, WAL growth, findings.
fn notes(report: &Report) -> String {
    let list = page::conclusions(report);
    if list.is_empty() {
        return String::new();
    }
    let items: String = list
        .iter()
        .map(|n| format!("<li>{}</li>\n", code_spans(&escape_html(n))))
        .collect();
    format!("<h2>Notes</h2>\n<ul>\n{items}</ul>\n")
}

fn problems(report: &Report) -> String {
    let list = page::problems(report);
    if list.is_empty() {
        return String::new();
    }
    let items: String = list
        .iter()
        .map(|p| format!("<li>{}</li>\n", code_spans(&escape_html(p))))
        .collect();
    format!("<h2>Problems</h2>\n<ul>\n{items}</ul>\n")
}

/// One bar chart per group: committed transactions per second of each configuration, with
/// the min–max range across repeats.
fn throughput_charts(configs: &[Config], subjects: &[Subject]) -> Result<String, RenderError> {
    let mut out = String::new();
    for subject in subjects.iter().filter(|s| matches!(s, Subject::Transactions { .. })) {
        let mut bars = Vec::new();
        let mut colors = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            let Some(f) = stats::figures(config, *subject)? else {
                continue;
            };
            let t = f.throughput;
            let text = if t.n > 1 {
                format!("{} ± {}", format_rate(t.mean), format_rate(t.stddev))
            } else {
                format_rate(t.mean)
            };
            bars.push(Bar {
                label: config.id.to_string(),
                segments: vec![t.mean],
                range: (t.n > 1).then_some((t.min, t.max)),
                value_text: text,
            });
            colors.push(svg::palette(i));
        }
        let Subject::Transactions { group } = subject else {
            continue;
        };
        let chart = BarChart {
            title: format!("Throughput of {group} per configuration"),
            value_label: if stats::max_repeats(configs) > 1 {
                "committed transactions per second (mean; whiskers: min–max across repeats)".into()
            } else {
                "committed transactions per second".into()
            },
            bars,
            colors,
            segment_names: Vec::new(),
            format: |v| if v == 0.0 { "0".into() } else { format_rate(v) },
            min_extent: 1.0,
        };
        out.push_str(&svg::figure(&format!("throughput-{}", slug(group)), &chart.to_svg()));
    }
    Ok(out)
}

/// One chart per group and operation: latency by percentile, one curve per configuration.
fn percentile_charts(configs: &[Config], subjects: &[Subject]) -> Result<String, RenderError> {
    let mut out = String::from(
        "<p class=\"hint\">Latency at each percentile, HDR style: the x axis stretches the tail \
         (90%, 99%, 99.9%…), both axes are logarithmic. Click a legend entry to hide or show a configuration.</p>\n",
    );
    for subject in subjects {
        let mut series = Vec::new();
        for (i, config) in configs.iter().enumerate() {
            if let Some(points) = percentile_curve(config, *subject)? {
                series.push(Series {
                    name: config.id.to_string(),
                    color: svg::palette(i),
                    dash: 0,
                    points,
                });
            }
        }
        let chart = percentile_chart(format!("Latency by percentile: {}", subject.title()), series);
        out.push_str(&svg::figure(
            &format!("latency-{}", slug(&subject.title())),
            &chart.to_svg(),
        ));
    }
    Ok(out)
}

/// (nines, latency µs) of every repeat's histogram merged; None when nothing was recorded.
fn percentile_curve(config: &Config, subject: Subject) -> Result<Option<Vec<(f64, f64)>>, RenderError> {
    let mut merged = crate::metrics::new_histogram();
    for run in &config.runs {
        if let Some(s) = stats::sample(run, subject) {
            merged
                .add(stats::decode(config.id, subject, s.histogram)?)
                .map_err(|e| RenderError::Merge(e.to_string()))?;
        }
    }
    if merged.is_empty() {
        return Ok(None);
    }
    let top = (merged.len() as f64).log10().clamp(1.0, 6.0);
    let steps = (top / 0.05).ceil() as usize;
    let mut points: Vec<(f64, f64)> = (0..steps)
        .map(|k| k as f64 * 0.05)
        .map(|x| (x, merged.value_at_quantile(1.0 - 10f64.powf(-x)) as f64 / 1000.0))
        .collect();
    points.push((top, merged.max() as f64 / 1000.0));
    Ok(Some(points))
}

fn percentile_chart(title: String, series: Vec<Series>) -> LineChart {
    let top = series
        .iter()
        .flat_map(|s| s.points.last())
        .map(|p| p.0)
        .fold(1.0, f64::max);
    let (lo, hi) = value_range(&series);
    let (y_scale, y_ticks) = svg::log_ticks(lo, hi, tick_us);
    LineChart {
        title,
        x: Axis {
            label: "percentile (log scale of nines: 90%, 99%, 99.9%…)".into(),
            scale: Scale::Linear {
                min: 0.0,
                max: top.ceil(),
            },
            ticks: svg::nines_ticks(top),
        },
        y: Axis {
            label: "latency (log scale)".into(),
            scale: y_scale,
            ticks: y_ticks,
        },
        series,
    }
}

/// Errors of each configuration (all groups, all repeats), stacked by kind.
fn errors_chart(configs: &[Config]) -> Result<String, RenderError> {
    let kinds = crate::metrics::ErrorCounts::default().by_kind().map(|(k, _)| k);
    let mut bars = Vec::new();
    let mut total = 0;
    for config in configs {
        let mut e = crate::metrics::ErrorCounts::default();
        for run in &config.runs {
            for g in &run.groups {
                if let Some(s) = stats::sample(run, Subject::Transactions { group: &g.name }) {
                    e.merge(&s.errors);
                }
            }
        }
        total += e.total();
        bars.push(Bar {
            label: config.id.to_string(),
            segments: e.by_kind().iter().map(|&(_, c)| c as f64).collect(),
            range: None,
            value_text: errors_cell(&e),
        });
    }
    let none = if total == 0 { " (none in any run)" } else { "" };
    let chart = BarChart {
        title: format!("Errors per configuration, by kind{none}"),
        value_label: "failed statements, BEGINs and COMMITs (count, all groups and repeats)".into(),
        bars,
        colors: (0..kinds.len()).map(|k| svg::palette(k + 2)).collect(),
        segment_names: kinds.iter().map(|k| k.to_string()).collect(),
        format: |v| format!("{v:.0}"),
        min_extent: 5.0,
    };
    Ok(chart.to_svg())
}

pub(crate) fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Report {
        serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap()
    }

    fn render(report: &Report) -> String {
        let mut report = report.clone();
        crate::analysis::complete(&mut report).unwrap();
        String::from_utf8(Html::default().render(&report).unwrap()).unwrap()
    }

    #[test]
    fn page_is_self_contained() {
        let html = render(&fixture());
        for external in ["<link", "src=", "@import", "url(", "http://", "https://"] {
            let allowed = html.matches("http://www.w3.org/2000/svg").count();
            let found = html.matches(external).count();
            let expected = if external == "http://" { allowed } else { 0 };
            assert_eq!(found, expected, "{external}");
        }
    }

    #[test]
    fn every_chart_has_data_paths_and_the_timeline_placeholder_shows() {
        let html = render(&fixture());
        // 2 throughput charts (groups), 5 percentile charts (2 groups + 3 ops), 1 errors chart.
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 8);
        for chart in html.split("<svg class=\"chart\"").skip(1) {
            let chart = &chart[..chart.find("</svg>").unwrap()];
            assert!(chart.contains("class=\"data "), "{chart}");
            assert!(chart.contains("<text class=\"label\""), "axis labels");
        }
        assert!(html.contains("id=\"no-timeline\""));
        assert!(html.contains("<td class=\"num\">30,911</td>"));
    }

    #[test]
    fn crash_report_has_the_durability_table_and_chart_only() {
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/crash.json")).unwrap();
        let html = render(&report);
        assert!(html.contains("<h2>Durability</h2>"));
        assert!(html.contains("<th class=\"num\">trials losing acked</th>"));
        assert!(html.contains("<td>journal_mode=delete,synchronous=full</td><td>kill</td>"));
        for absent in ["<h2>Throughput", "<h2>Tables", "<dt>Baseline"] {
            assert!(!html.contains(absent), "{absent}");
        }
        assert_eq!(html.matches("<svg class=\"chart\"").count(), 1);
        // 4 configurations × (kill + 3 power-loss models); the full bar of a configuration
        // losing commits in all 5 trials.
        assert_eq!(html.matches("class=\"data bar\"").count(), 16);
        assert!(html.contains("<title>journal_mode=wal,synchronous=off · durable: 5</title>"));
    }

    #[test]
    fn durability_run_has_the_decision_and_apply_it_first() {
        let html = render(&crate::analysis::decision::tests::fixture());
        let (verdict, decision, apply, env) = (
            html.find("id=\"verdict\"").unwrap(),
            html.find("id=\"decision\"").unwrap(),
            html.find("id=\"apply\"").unwrap(),
            html.find("<h2>Environment</h2>").unwrap(),
        );
        assert!(verdict < decision && decision < apply && apply < env);
        assert!(html.contains("<th class=\"num\">lost on power loss</th>"), "{html}");
        assert!(
            html.contains("<li>loses nothing: journal_mode=wal,synchronous=full"),
            "{html}"
        );
        assert!(html.contains("PRAGMA synchronous=full;"), "{html}");
        assert!(html.contains("&quot;init_command&quot;"), "{html}");
        assert!(html.contains("<h2>Crash trials</h2>"), "{html}");
    }

    #[test]
    fn a_sweep_gets_charts_of_p99_and_throughput() {
        let html = render(&crate::report::sweep::tests::fixture());
        for id in ["sweep-p99", "sweep-throughput"] {
            let at = html.find(&format!("id=\"chart-{id}\"")).expect(id);
            let chart = &html[at..];
            let chart = &chart[..chart.find("</svg>").unwrap()];
            assert_eq!(chart.matches("class=\"data line\"").count(), 2, "{chart}");
        }
    }

    #[test]
    fn percentile_curve_follows_the_histogram() {
        let report = fixture();
        let configs = stats::configurations(&report);
        let subject = Subject::Transactions { group: "writers" };
        let curve = percentile_curve(&configs[0], subject).unwrap().unwrap();
        let summary = stats::sample(configs[0].runs[0], subject).unwrap().latency;
        let at = |x: f64| curve.iter().find(|p| (p.0 - x).abs() < 1e-9).unwrap().1;
        assert!((at(2.0) - summary.p99).abs() <= summary.p99 * 0.01, "p99");
        assert_eq!(curve.last().unwrap().1, summary.max);
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1), "non-decreasing");
    }

    #[test]
    fn latency_ticks_are_compact() {
        let labels: Vec<String> = [0.1, 1.0, 10.0, 100.0, 1000.0, 100_000.0, 1_000_000.0]
            .map(tick_us)
            .to_vec();
        assert_eq!(labels, ["0.1µs", "1µs", "10µs", "100µs", "1ms", "100ms", "1s"]);
    }

    #[test]
    fn slugs_are_stable() {
        assert_eq!(slug("writers / put"), "writers-put");
        assert_eq!(slug("readers: transactions"), "readers-transactions");
    }
}
