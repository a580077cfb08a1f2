//! The one formatting module: units, escaping, run labels and error kinds, shared by the
//! terminal, Markdown and HTML renderers and by progress lines. Depends only on the model.

use super::model::{Report, RunReport, RunStatus};
use crate::metrics::ErrorCounts;

/// A plain table: headers, rows, and which columns are right-aligned.
#[derive(Clone)]
pub(crate) struct Table {
    pub headers: Vec<&'static str>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn to_text(&self) -> String {
        // A cell is one terminal line: escape line breaks and control characters.
        if self.rows.iter().flatten().any(|c| c.chars().any(char::is_control)) {
            let mut clean = self.clone();
            clean.rows.iter_mut().flatten().for_each(|c| *c = one_line(c));
            return clean.to_text();
        }
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
    pub(crate) fn to_markdown(&self) -> String {
        let cells = |row: &[String]| -> String {
            let escaped: Vec<String> = row
                .iter()
                .map(|c| no_tags(&c.replace('|', "\\|").replace(['\n', '\r'], " ")))
                .collect();
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
    pub(crate) fn to_html(&self) -> String {
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

/// `writers 1,234 tx/s p99 2.10ms`: one group in a progress line.
pub(crate) fn group_rate(name: &str, per_second: f64, p99_us: f64) -> String {
    let p99 = if per_second > 0.0 {
        format_us(p99_us)
    } else {
        "-".to_string()
    };
    format!("{name} {} tx/s p99 {p99}", format_rate(per_second))
}

/// Microseconds, shown with a unit that keeps 3 significant digits.
pub(crate) fn format_us(us: f64) -> String {
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
pub(crate) fn format_rate(rate: f64) -> String {
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

/// Escapes text for HTML and SVG content and attribute values.
pub(crate) fn escape_html(text: &str) -> String {
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

/// A run's id, with its round when there are rounds (`id #2`): what names a run's notes.
pub(crate) fn round_label(run: &RunReport) -> String {
    match run.repeat {
        Some(k) => format!("{} #{k}", run.id),
        None => run.id.clone(),
    }
}

/// The run id (with the PostgreSQL or Turso version it ran on), with `#k` for a repeated run:
/// the table's row label.
pub(crate) fn run_label(run: &RunReport) -> String {
    let id = match (&run.postgres, &run.turso) {
        (Some(pg), _) => format!("{} (PostgreSQL {})", run.id, pg.server_version),
        (None, Some(t)) if !t.version.is_empty() && !run.matrix.contains_key("target") => {
            format!("{} (Turso {})", run.id, t.version)
        }
        _ => return round_label(run),
    };
    match run.repeat {
        Some(k) => format!("{id} #{k}"),
        None => id,
    }
}

/// Errors by kind, `0` when none: `busy 3, locked 1`.
pub(crate) fn errors_cell(e: &ErrorCounts) -> String {
    let parts: Vec<String> = e
        .by_kind()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join(", ")
    }
}

/// A run's status and verification in a few words: `ok`, `LOST 3 rows`, `FAILED`.
pub(crate) fn verdict(run: &RunReport) -> String {
    let status = match run.status {
        RunStatus::Completed => "",
        RunStatus::Interrupted => " (interrupted)",
        RunStatus::Failed => "FAILED",
        RunStatus::Partial => " (partial)",
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

/// Bytes in binary units with one decimal: `15.5 GiB`.
pub(crate) fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A ratio with about 3 significant digits: `2.85×`, `0.062×`, `12.4×`.
pub(crate) fn format_ratio(r: f64) -> String {
    match r {
        r if r >= 10.0 => format!("{r:.1}×"),
        r if r >= 0.1 => format!("{r:.2}×"),
        r if r >= 0.001 => format!("{r:.3}×"),
        0.0 => "0×".to_string(),
        _ => "<0.001×".to_string(),
    }
}

/// The first `n` characters of `s` (never a byte slice: reports are input too).
pub(crate) fn prefix(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Text for one line of the terminal: newlines and control characters shown escaped.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| match c {
            '\n' => "\\n".chars().collect::<Vec<_>>(),
            c if c.is_control() => c.escape_unicode().collect(),
            c => vec![c],
        })
        .collect()
}

/// User text for Markdown: no line breaks (they end table rows and start headings), no raw
/// HTML, no backticks (they open code spans and fences). Table cells escape `|` as well.
pub(crate) fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push('\''),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// A copy of `report` with every string that came from the user (names, descriptions,
/// run ids, error messages) passed through `clean`, for an exporter that must escape them.
pub(crate) fn cleaned(report: &Report, clean: fn(&str) -> String) -> Report {
    let mut r = report.clone();
    let s = &mut r.scenario;
    s.name = clean(&s.name);
    s.description = clean(&s.description);
    s.source = clean(&s.source);
    r.verdict = r.verdict.iter().map(|l| clean(l)).collect();
    r.findings = r.findings.iter().map(|f| clean(f)).collect();
    for run in &mut r.runs {
        run.id = clean(&run.id);
        run.error = run.error.as_deref().map(clean);
        for g in &mut run.groups {
            g.name = clean(&g.name);
            g.transactions.first_error = g.transactions.first_error.as_deref().map(clean);
            for op in &mut g.ops {
                op.name = clean(&op.name);
                op.first_error = op.first_error.as_deref().map(clean);
            }
        }
        if let Some(v) = &mut run.verification {
            for c in &mut v.scenario_checks {
                c.name = clean(&c.name);
                c.detail = clean(&c.detail);
            }
        }
    }
    if let Some(d) = &mut r.decision {
        d.group = clean(&d.group);
        d.safe = d.safe.as_deref().map(clean);
        d.fastest = d.fastest.as_deref().map(clean);
        d.recommendation = d.recommendation.iter().map(|l| clean(l)).collect();
        for row in &mut d.rows {
            row.config = clean(&row.config);
            row.crash_error = row.crash_error.as_deref().map(clean);
        }
    }
    r
}

/// `<` escaped where it would open an HTML tag or comment (`<script`, `</`, `<!`), so that
/// `<0.001×` stays readable.
fn no_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '<'
            && chars
                .peek()
                .is_some_and(|n| n.is_alphabetic() || matches!(n, '/' | '!' | '?'))
        {
            out.push_str("&lt;");
        } else {
            out.push(c);
        }
    }
    out
}

/// A value of a swept axis with its unit: `16 workers`, `1 worker`, `200 req/s`,
/// `cache_size=-4000` (the key's last part names the unit).
pub(crate) fn sweep_step(axis: &str, value: f64) -> String {
    let name = axis.rsplit('.').next().unwrap_or(axis);
    let plural = |word: &str| {
        if value == 1.0 {
            format!("1 {word}")
        } else {
            format!("{value} {word}s")
        }
    };
    match name {
        "workers" => plural("worker"),
        "clients" => plural("client"),
        "rate" => format!("{value} req/s"),
        _ => format!("{name}={value}"),
    }
}

/// The unit of a swept axis, for an axis label: `workers`, `req/s`, or the key.
pub(crate) fn sweep_unit(axis: &str) -> String {
    let name = axis.rsplit('.').next().unwrap_or(axis);
    match name {
        "workers" | "clients" => name.to_string(),
        "rate" => "requests per second (rate)".to_string(),
        _ => name.to_string(),
    }
}

/// A failed-request count as the report tables show it: `0`, or `12 (3 %)` of `requests`.
pub(crate) fn failed_of(failed: u64, requests: u64) -> String {
    if failed == 0 {
        "0".to_string()
    } else {
        format!("{failed} ({})", percent(failed as f64 / requests.max(1) as f64))
    }
}

pub(crate) fn percent(share: f64) -> String {
    let pct = share * 100.0;
    if pct > 0.0 && pct < 1.0 {
        format!("{pct:.1} %")
    } else {
        format!("{pct:.0} %")
    }
}
