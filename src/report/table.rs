//! The terminal summary: one row per run and group, the answer at a glance.

use super::format::{Table, format_rate, format_us, run_label, verdict};
use super::model::{GroupReport, Report, RunReport};
use super::{Exporter, RenderError};

/// One row per (run, group): committed transactions per second, transaction latency,
/// errors, and the verification verdict.
pub(crate) fn summary(report: &Report) -> Table {
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
    let errors = g.all_errors();
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

/// The terminal table as an exporter, with a header line naming the scenario.
pub(crate) struct Terminal;

impl Exporter for Terminal {
    fn render(&self, report: &Report) -> Result<Vec<u8>, RenderError> {
        let cleaned = crate::report::format::cleaned(report, crate::report::format::one_line);
        let report = &cleaned;
        let env = &report.environment;
        let mut out = format!(
            "{} — SQLite {} ({} build), {} on {}\n\n",
            report.scenario.name, env.sqlite_version, env.build_profile, env.filesystem, env.db_dir
        );
        if let Some(load) = super::page::noise_line(report) {
            out.insert_str(out.len() - 1, &format!("machine load: {load}\n"));
        }
        report
            .noise_warnings
            .iter()
            .for_each(|w| out.push_str(&format!("{w}\n")));
        if !report.noise_warnings.is_empty() {
            out.push('\n');
        }
        if let Some((header, lines)) = report.verdict.split_first() {
            out.push_str(&format!("{header}\n"));
            lines.iter().for_each(|l| out.push_str(&format!("  {l}\n")));
            out.push('\n');
        }
        if let Some(capacity) = &report.capacity {
            out.push_str(&super::capacity::text(capacity));
            out.push('\n');
        }
        if !(report.capacity.is_some() && report.runs.is_empty()) {
            out.push_str(&summary(report).to_text());
        }
        let notes: Vec<String> = report
            .runs
            .iter()
            .flat_map(|r| super::notes::notes(r).into_iter().chain(super::notes::open_loop(r)))
            .collect();
        if !notes.is_empty() {
            out.push('\n');
            notes.iter().for_each(|n| out.push_str(&format!("{n}\n")));
        }
        if !report.findings.is_empty() {
            out.push_str("\nfindings:\n");
            report.findings.iter().for_each(|f| out.push_str(&format!("  {f}\n")));
        }
        if let Some(decision) = &report.decision {
            out.push_str(&format!(
                "\nspeed × durability (group `{}`; lost: most acknowledged commits missing after one crash trial):\n{}",
                decision.group,
                crate::report::decision::table(decision).to_text()
            ));
            out.push_str("\nrecommendation:\n");
            decision
                .recommendation
                .iter()
                .for_each(|l| out.push_str(&format!("  {l}\n")));
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
        assert!(t.to_markdown().contains("| x\\|&lt;y>& |"));
        assert!(t.to_html().contains("<td>x|&lt;y&gt;&amp;</td>"));
    }
}
