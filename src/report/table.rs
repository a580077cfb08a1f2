//! The terminal summary: one row per run and group, the answer at a glance.

use super::Exporter;
use super::model::{GroupReport, Report, RunReport, RunStatus};

/// A plain table: headers, rows, and which columns are right-aligned.
pub struct Table {
    pub headers: Vec<&'static str>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn to_text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| r[c].chars().count())
                    .chain([self.headers[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| -> String {
            let padded: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(c, text)| {
                    if self.right[c] {
                        format!("{text:>w$}", w = widths[c])
                    } else {
                        format!("{text:<w$}", w = widths[c])
                    }
                })
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut out = line(self.headers.clone());
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table with the same columns and alignment.
    pub fn to_markdown(&self) -> String {
        let cells = |row: &[String]| -> String {
            let escaped: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            format!("| {} |\n", escaped.join(" | "))
        };
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let rule: Vec<String> = self
            .right
            .iter()
            .map(|&r| if r { "---:".to_string() } else { "---".to_string() })
            .collect();
        let mut out = cells(&headers);
        out.push_str(&format!("|{}|\n", rule.join("|")));
        for row in &self.rows {
            out.push_str(&cells(row));
        }
        out
    }

    /// An HTML table; right-aligned columns get `class="num"`. Cells are escaped.
    pub fn to_html(&self) -> String {
        let class = |c: usize| if self.right[c] { " class=\"num\"" } else { "" };
        let mut out = String::from("<table>\n<thead><tr>");
        for (c, h) in self.headers.iter().enumerate() {
            out.push_str(&format!("<th{}>{}</th>", class(c), escape_html(h)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (c, cell) in row.iter().enumerate() {
                out.push_str(&format!("<td{}>{}</td>", class(c), escape_html(cell)));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        out
    }
}

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// One row per (run, group): committed transactions per second, transaction latency,
/// errors, and the verification verdict.
pub fn summary(report: &Report) -> Table {
    let mut rows = Vec::new();
    for run in &report.runs {
        if run.groups.is_empty() {
            let mut row = vec![run_label(run)];
            row.extend(std::iter::repeat_n("-".to_string(), 10));
            row.push(verdict(run));
            rows.push(row);
        }
        for (i, g) in run.groups.iter().enumerate() {
            let first = i == 0;
            rows.push(group_row(run, g, first));
        }
    }
    Table {
        headers: vec![
            "run", "group", "workers", "tx/s", "ops/s", "p50", "p99", "max", "fair", "busy", "errors", "verified",
        ],
        right: vec![
            false, false, true, true, true, true, true, true, true, true, true, false,
        ],
        rows,
    }
}

fn group_row(run: &RunReport, g: &GroupReport, first: bool) -> Vec<String> {
    let mut errors = g.transactions.errors;
    g.ops.iter().for_each(|o| errors.merge(&o.errors));
    let lat = &g.transactions.latency_us;
    vec![
        if first { run_label(run) } else { String::new() },
        g.name.clone(),
        g.workers.to_string(),
        format_rate(g.transactions.throughput_per_s),
        format_rate(g.ops.iter().map(|o| o.throughput_per_s).sum()),
        format_us(lat.p50),
        format_us(lat.p99),
        format_us(lat.max),
        format!("{:.2}", g.fairness.jain_index),
        errors.busy_total().to_string(),
        (errors.total() - errors.busy_total()).to_string(),
        if first { verdict(run) } else { String::new() },
    ]
}

/// The run id, with `#k` for a repeated run.
fn run_label(run: &RunReport) -> String {
    match run.repeat {
        Some(k) => format!("{} #{k}", run.id),
        None => run.id.clone(),
    }
}

/// A run's status and verification in a few words: `ok`, `LOST 3 rows`, `FAILED`.
pub fn verdict(run: &RunReport) -> String {
    let status = match run.status {
        RunStatus::Completed => "",
        RunStatus::Interrupted => " (interrupted)",
        RunStatus::Failed => "FAILED",
    };
    match &run.verification {
        None => status.to_string(),
        Some(v) if v.ok => format!("ok{status}"),
        Some(v) if v.integrity_check != "ok" => format!("INTEGRITY: {}{status}", v.integrity_check),
        Some(v) if v.lost > 0 => format!("LOST {} rows{status}", v.lost),
        Some(v) if v.tables.iter().any(|t| t.unexpected > 0) => format!("UNEXPECTED rows{status}"),
        Some(_) => format!("CHECK FAILED{status}"),
    }
}

/// What the table cannot show: failures, failed checks, starved workers, WAL growth.
pub fn notes(run: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(e) = &run.error {
        notes.push(format!("{}: FAILED: {e}", run.id));
    }
    for g in &run.groups {
        if let Some(note) = starvation(g) {
            notes.push(format!("{}: {note}", run.id));
        }
        if let (Some(calls), Some(wait_ms)) = (g.busy_handler_calls, g.busy_wait_ms) {
            let wait = format_us(wait_ms * 1000.0);
            notes.push(format!(
                "{}: group `{}`: busy handler called {calls} times, {wait} waited in all",
                run.id, g.name
            ));
        }
        notes.extend(crate::report::anatomy::note(run, g));
    }
    if let Some(v) = &run.verification {
        for c in &v.scenario_checks {
            let verdict = match (c.kind.as_str(), c.ok) {
                ("metric", true) => "holds",
                ("metric", false) => "does NOT hold",
                (_, true) => "ok",
                (_, false) => "FAILED",
            };
            notes.push(format!("{}: check `{}`: {verdict}, {}", run.id, c.name, c.detail));
        }
    }
    if run
        .sqlite
        .as_ref()
        .is_some_and(|s| s.journal_mode == crate::config::sqlite::JournalMode::Wal)
    {
        let resets = run.timeline.last().map_or(0, |e| e.wal_resets);
        notes.push(format!(
            "{}: WAL grew to {:.1} MB; {resets} checkpoint restart(s) while measuring",
            run.id,
            run.database.wal_bytes_max as f64 / 1e6
        ));
    }
    notes
}

/// A group whose slowest worker committed less than half of its fastest: SQLite's busy
/// handler is not fair.
fn starvation(g: &GroupReport) -> Option<String> {
    if g.per_worker.len() < 2 || g.fairness.min_max_ratio >= 0.5 {
        return None;
    }
    let slowest = g.per_worker.iter().min_by_key(|w| w.transactions)?;
    let fastest = g.per_worker.iter().max_by_key(|w| w.transactions)?;
    let worst_wait = g.per_worker.iter().map(|w| w.max_latency_us).fold(0.0, f64::max);
    Some(format!(
        "group `{}` is unfair: worker {} committed {} transactions, worker {} {} (Jain index {:.2}); longest transaction {}",
        g.name,
        slowest.id,
        slowest.transactions,
        fastest.id,
        fastest.transactions,
        g.fairness.jain_index,
        format_us(worst_wait)
    ))
}

/// `writers 1,234 tx/s p99 2.10ms`: one group in a progress line.
pub fn group_rate(name: &str, per_second: f64, p99_us: f64) -> String {
    let p99 = if per_second > 0.0 {
        format_us(p99_us)
    } else {
        "-".to_string()
    };
    format!("{name} {} tx/s p99 {p99}", format_rate(per_second))
}

/// Microseconds, shown with a unit that keeps 3 significant digits.
pub fn format_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{:.2}s", us / 1_000_000.0)
    } else if us >= 1000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else if us >= 100.0 {
        format!("{us:.0}µs")
    } else {
        format!("{us:.1}µs")
    }
}

/// A rate with thousands separators and no decimals (one decimal below 10).
pub fn format_rate(rate: f64) -> String {
    if rate < 10.0 {
        return format!("{rate:.1}");
    }
    let digits = format!("{:.0}", rate);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The terminal table as an exporter, with a header line naming the scenario.
pub struct Terminal;

impl Exporter for Terminal {
    fn render(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let env = &report.environment;
        let mut out = format!(
            "{} — SQLite {} ({} build), {} on {}\n\n",
            report.scenario.name, env.sqlite_version, env.build_profile, env.filesystem, env.db_dir
        );
        out.push_str(&summary(report).to_text());
        let notes: Vec<String> = report.runs.iter().flat_map(notes).collect();
        if !notes.is_empty() {
            out.push('\n');
            notes.iter().for_each(|n| out.push_str(&format!("{n}\n")));
        }
        if !report.findings.is_empty() {
            out.push_str("\nfindings:\n");
            report.findings.iter().for_each(|f| out.push_str(&format!("  {f}\n")));
        }
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units_and_rates() {
        assert_eq!(format_us(2.345), "2.3µs");
        assert_eq!(format_us(850.0), "850µs");
        assert_eq!(format_us(1234.0), "1.23ms");
        assert_eq!(format_us(2_500_000.0), "2.50s");
        assert_eq!(format_rate(1234567.4), "1,234,567");
        assert_eq!(format_rate(999.0), "999");
        assert_eq!(format_rate(3.26), "3.3");
    }

    #[test]
    fn table_aligns_columns() {
        let t = Table {
            headers: vec!["a", "n"],
            right: vec![false, true],
            rows: vec![vec!["xyz".into(), "5".into()], vec!["q".into(), "123".into()]],
        };
        assert_eq!(t.to_text(), "a      n\nxyz    5\nq    123\n");
        assert_eq!(t.to_markdown(), "| a | n |\n|---|---:|\n| xyz | 5 |\n| q | 123 |\n");
        assert!(t.to_html().contains("<td class=\"num\">123</td>"));
    }

    #[test]
    fn markup_escapes_cells() {
        let t = Table {
            headers: vec!["a"],
            right: vec![false],
            rows: vec![vec!["x|<y>&".into()]],
        };
        assert!(t.to_markdown().contains("| x\\|<y>& |"));
        assert!(t.to_html().contains("<td>x|&lt;y&gt;&amp;</td>"));
    }
}
