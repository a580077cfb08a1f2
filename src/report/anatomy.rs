//! The latency anatomy of application-model groups (issue 15) in each view: a compact line
//! in the terminal, a table in Markdown, and a stacked bar per configuration in HTML.
//! Groups without the model have no anatomy, and these views show nothing for them.

use super::format::{Table, errors_cell, escape_html, format_us};
use super::model::{GroupReport, Report, RunReport};
use crate::metrics::anatomy::{AnatomyReport, PART_NAMES, PARTS};
use std::fmt::Write;

fn app_groups(report: &Report) -> Vec<(&RunReport, &GroupReport)> {
    report
        .runs
        .iter()
        .flat_map(|r| r.groups.iter().map(move |g| (r, g)))
        .filter(|(_, g)| g.app.is_some())
        .collect()
}

fn ms(v: f64) -> String {
    format_us(v * 1000.0)
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The parts worth showing: those that are not zero everywhere.
fn shown(anatomies: &[&AnatomyReport]) -> Vec<usize> {
    (0..PARTS)
        .filter(|&i| anatomies.iter().any(|a| a.mean_ms.values()[i] > 0.0))
        .collect()
}

/// The terminal's compact line for one group, e.g.
/// `anatomy of `web`: 14.2ms = app 6.1ms + queue 5.0ms + ...; p99: queue 71%, app 18%`.
pub fn note(run: &RunReport, g: &GroupReport) -> Option<String> {
    let app = g.app.as_ref()?;
    let a = &app.anatomy;
    if a.requests == 0 {
        return None;
    }
    let parts = shown(&[a]);
    let means: Vec<String> = parts
        .iter()
        .map(|&i| format!("{} {}", PART_NAMES[i], ms(a.mean_ms.values()[i])))
        .collect();
    let mut tail: Vec<(usize, f64)> = parts.iter().map(|&i| (i, a.p99_share.values()[i])).collect();
    tail.sort_by(|x, y| y.1.total_cmp(&x.1));
    let tail: Vec<String> = tail
        .iter()
        .take(3)
        .map(|(i, v)| format!("{} {}", PART_NAMES[*i], pct(*v)))
        .collect();
    let mut line = format!(
        "{}: group `{}`: per request {} = {}; p99 share: {}",
        super::format::round_label(run),
        g.name,
        ms(a.total_mean_ms),
        means.join(" + "),
        tail.join(", ")
    );
    let _ = write!(
        line,
        " ({} clients, {} workers as {}, {} connection",
        app.clients,
        g.workers,
        workers_as(app, g.workers),
        app.connection
    );
    if app.connections_opened > 0 {
        let _ = write!(line, ", {} opened", app.connections_opened);
    }
    if !app.clients_per_process.is_empty() {
        let counts: Vec<String> = app.clients_per_process.iter().map(u32::to_string).collect();
        let _ = write!(line, ", clients bound to the first free process: {}", counts.join(", "));
    }
    if let Some(n) = app.keep_alive_inline {
        let _ = write!(line, ", keep-alive: up to {n} requests inline");
        if let Some(i) = app.inline_requests.filter(|_| app.requests > 0) {
            let _ = write!(line, " ({:.0}% served so)", 100.0 * i as f64 / app.requests as f64);
        }
    }
    if let Some(wait) = &app.busy_wait {
        // An interpreter lock (issue 29): which, and what a busy-handler wait does with it.
        let how = if wait == "holds-lock" { "holding" } else { "releasing" };
        let _ = write!(line, ", under the {}, busy waits {how} it", app.runtime.to_uppercase());
    }
    line.push(')');
    Some(line)
}

/// How a group's workers ran: threads of one process, one process each, or several
/// processes of several threads each (`threads` with process isolation).
fn workers_as(app: &crate::report::model::AppReport, workers: u32) -> String {
    match (app.isolation.as_str(), app.threads_per_process) {
        ("process", t) if t > 1 => format!("{} processes × {t} threads", workers / t),
        ("process", _) => "processes".to_string(),
        _ => "threads".to_string(),
    }
}

/// The Markdown's isolation: `process`, or `process 2×5` for several threads per process.
fn isolation_cell(app: &crate::report::model::AppReport, workers: u32) -> String {
    match app.threads_per_process {
        t if app.isolation == "process" && t > 1 => format!("process {}×{t}", workers / t),
        _ => app.isolation.clone(),
    }
}

/// Markdown: one row per run and application-model group.
pub fn markdown(report: &Report) -> Option<String> {
    let groups = app_groups(report);
    if groups.is_empty() {
        return None;
    }
    let anatomies: Vec<&AnatomyReport> = groups.iter().map(|(_, g)| &g.app.as_ref().unwrap().anatomy).collect();
    let parts = shown(&anatomies);
    let mut headers: Vec<&'static str> = vec!["run", "group", "clients/workers", "connection", "mean/request"];
    headers.extend(parts.iter().map(|&i| PART_NAMES[i]));
    headers.extend(["p99 share", "queue p99", "CPU/request"]);
    let right: Vec<bool> = (0..headers.len())
        .map(|c| (4..5 + parts.len()).contains(&c) || c > 5 + parts.len())
        .collect();
    let mut rows = Vec::new();
    for (run, g) in &groups {
        let app = g.app.as_ref().expect("filtered");
        let a = &app.anatomy;
        let mut row = vec![
            super::format::round_label(run),
            g.name.clone(),
            match &app.busy_wait {
                Some(wait) => format!(
                    "{}/{} {} ({}, {wait})",
                    app.clients,
                    g.workers,
                    isolation_cell(app, g.workers),
                    app.runtime
                ),
                None => format!("{}/{} {}", app.clients, g.workers, isolation_cell(app, g.workers)),
            },
            app.connection.clone(),
            ms(a.total_mean_ms),
        ];
        row.extend(parts.iter().map(|&i| ms(a.mean_ms.values()[i])));
        row.push(
            parts
                .iter()
                .map(|&i| format!("{} {}", PART_NAMES[i], pct(a.p99_share.values()[i])))
                .collect::<Vec<_>>()
                .join(", "),
        );
        row.push(format_us(app.queue_wait_us.p99));
        row.push(ms(app.cpu_ms_per_request));
        rows.push(row);
    }
    let table = Table { headers, right, rows };
    let mut out = String::from(
        "Where a request's time went (application model): mean per completed request, and each part's share of the requests at or above p99. \
         Lock wait is time inside the busy handler (SQLite's own back-off schedule, re-implemented so it can be measured).\n\n",
    );
    out.push_str(&table.to_markdown());
    let blocks: Vec<String> = groups
        .iter()
        .flat_map(|(run, g)| {
            g.app.as_ref().unwrap().blocks.iter().map(move |b| {
                format!(
                    "- {} `{}` op `{}` block at step {}: {} committed, {} retried, {} rolled back, errors: {}",
                    super::format::round_label(run),
                    g.name,
                    b.op,
                    b.begin_step,
                    b.committed,
                    b.retried,
                    b.rolled_back,
                    errors_cell(&b.errors)
                )
            })
        })
        .collect();
    if !blocks.is_empty() {
        out.push_str("\nTransaction blocks:\n\n");
        out.push_str(&blocks.join("\n"));
        out.push('\n');
    }
    Some(out)
}

const PART_COLORS: [&str; PARTS] = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#b07aa1"];

/// HTML: a stacked horizontal bar of the mean anatomy per configuration (and group).
pub fn html(report: &Report) -> Option<String> {
    let groups = app_groups(report);
    if groups.is_empty() {
        return None;
    }
    let (label_w, bar_w, row_h, top) = (260.0, 520.0, 26.0, 40.0);
    let max = groups
        .iter()
        .map(|(_, g)| g.app.as_ref().unwrap().anatomy.total_mean_ms)
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let height = top + row_h * groups.len() as f64 + 50.0;
    let width = label_w + bar_w + 100.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\">\n\
         <title>Latency anatomy: mean time per request</title>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">Latency anatomy: mean time per request</text>\n",
        width / 2.0
    );
    for (row, (run, g)) in groups.iter().enumerate() {
        let a = &g.app.as_ref().unwrap().anatomy;
        let y = top + row_h * row as f64;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            label_w - 6.0,
            y + row_h * 0.6,
            escape_html(&format!("{} · {}", super::format::round_label(run), g.name))
        );
        let mut x = label_w;
        for (i, v) in a.mean_ms.values().iter().enumerate() {
            if *v <= 0.0 {
                continue;
            }
            let w = v / max * bar_w;
            let _ = writeln!(
                svg,
                "<path class=\"data\" data-series=\"{row}\" d=\"M{x:.1},{:.1}h{w:.1}v{:.1}h{:.1}z\" fill=\"{}\"><title>{}: {}</title></path>",
                y + 3.0,
                row_h - 6.0,
                -w,
                PART_COLORS[i],
                PART_NAMES[i],
                escape_html(&ms(*v))
            );
            x += w;
        }
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{}</text>",
            x + 4.0,
            y + row_h * 0.6,
            escape_html(&ms(a.total_mean_ms))
        );
    }
    let legend_y = top + row_h * groups.len() as f64 + 20.0;
    for (i, name) in PART_NAMES.iter().enumerate() {
        let x = label_w + i as f64 * 90.0;
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{name}</text>",
            legend_y - 9.0,
            PART_COLORS[i],
            x + 14.0,
            legend_y
        );
    }
    svg.push_str("</svg>\n");
    let table = markdown_table_html(&groups);
    Some(format!(
        "<h2>Latency anatomy</h2>\n<p>Where a request's time went: app time (CPU), queue wait, lock wait (inside the busy handler), statement execution, COMMIT (with fsync) and opening the connection.</p>\n{}{table}",
        super::svg::figure("anatomy", &svg)
    ))
}

fn markdown_table_html(groups: &[(&RunReport, &GroupReport)]) -> String {
    let mut out = String::from("<table>\n<tr><th>run</th><th>group</th><th>p99 share</th></tr>\n");
    for (run, g) in groups {
        let a = &g.app.as_ref().unwrap().anatomy;
        let shares: Vec<String> = (0..PARTS)
            .filter(|&i| a.p99_share.values()[i] > 0.0)
            .map(|i| format!("{} {}", PART_NAMES[i], pct(a.p99_share.values()[i])))
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&super::format::round_label(run)),
            escape_html(&g.name),
            escape_html(&shares.join(", "))
        );
    }
    out.push_str("</table>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::anatomy::Parts;
    use crate::report::Exporter;
    use crate::report::model::AppReport;

    fn with_app() -> Report {
        let mut report: Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report.json")).expect("fixture is a report");
        let parts = Parts {
            app: 6.0,
            queue: 3.0,
            lock: 0.5,
            execute: 0.4,
            commit: 0.1,
            connect: 0.0,
        };
        report.runs[0].groups[0].app = Some(AppReport {
            clients: 16,
            think_time: None,
            app_time: Default::default(),
            connection: "per-request".into(),
            isolation: "process".into(),
            pids: vec![10, 11],
            connections_opened: 100,
            queue_wait_us: Default::default(),
            anatomy: AnatomyReport {
                requests: 100,
                mean_ms: parts,
                total_mean_ms: 10.0,
                p99_requests: 1,
                p99_share: Parts {
                    app: 0.2,
                    queue: 0.8,
                    ..Default::default()
                },
            },
            cpu_ms_per_request: 6.5,
            blocks: Vec::new(),
            requests: 0,
            mean_latency_ms: 0.0,
            mean_think_ms: 0.0,
            invariants: Vec::new(),
            runtime: "native".into(),
            busy_wait: None,
            threads_per_process: 1,
            queue: None,
            clients_per_process: Vec::new(),
            keep_alive_inline: None,
            keep_alive_wait_ms: None,
            inline_requests: None,
            interpreter: None,
        });
        report
    }

    #[test]
    fn every_view_shows_the_anatomy_of_model_groups_only() {
        let report = with_app();
        let run = &report.runs[0];
        let line = note(run, &run.groups[0]).unwrap();
        assert!(line.contains("app 6.00ms") && line.contains("queue 80%"), "{line}");
        assert!(line.contains("as processes") && line.contains("100 opened"), "{line}");
        assert!(!line.contains("keep-alive"), "{line}");
        let mut kept = report.clone();
        kept.runs[0].groups[0].app.as_mut().unwrap().keep_alive_inline = Some(10);
        let line = note(&kept.runs[0], &kept.runs[0].groups[0]).unwrap();
        assert!(line.contains("keep-alive: up to 10 requests inline"), "{line}");
        assert!(!line.contains("bound"), "{line}");
        kept.runs[0].groups[0].app.as_mut().unwrap().clients_per_process = vec![9, 5, 1, 1];
        let line = note(&kept.runs[0], &kept.runs[0].groups[0]).unwrap();
        assert!(
            line.contains("clients bound to the first free process: 9, 5, 1, 1"),
            "{line}"
        );
        // With rounds the line names its round, as the table row and the other notes do.
        kept.runs[0].repeat = Some(2);
        let line = note(&kept.runs[0], &kept.runs[0].groups[0]).unwrap();
        assert!(line.starts_with(&format!("{} #2: group", kept.runs[0].id)), "{line}");
        assert!(note(run, &run.groups[1]).is_none());
        let md = String::from_utf8(
            crate::report::markdown::Markdown { baseline: None }
                .render(&report)
                .unwrap(),
        )
        .unwrap();
        assert!(md.contains("## Latency anatomy"), "{md}");
        assert!(md.contains("16/"), "{md}");
        let page = String::from_utf8(crate::report::html::Html::default().render(&report).unwrap()).unwrap();
        assert!(
            page.contains("chart-anatomy") && page.contains("<title>app: 6.00ms</title>"),
            "anatomy bar"
        );
        // Reports without model groups have no anatomy section.
        let plain: Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report.json")).expect("fixture is a report");
        assert!(markdown(&plain).is_none() && html(&plain).is_none());
    }
}
