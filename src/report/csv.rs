//! The CSV exporter: one row per run × group, the terminal table's columns in raw units
//! (rates per second, latencies in microseconds), for spreadsheets and scripts.

use super::format::verdict;
use super::model::Report;
use super::{Exporter, RenderError};

/// The header row, in order.
pub(crate) const COLUMNS: [&str; 17] = [
    "run",
    "repeat",
    "group",
    "workers",
    "tx_per_s",
    "ops_per_s",
    "p50_us",
    "p99_us",
    "p99_9_us",
    "max_us",
    "committed",
    "rolled_back",
    "jain_index",
    "busy_errors",
    "other_errors",
    "status",
    "verified",
];

pub(crate) struct Csv;

impl Exporter for Csv {
    fn render(&self, report: &Report) -> Result<Vec<u8>, RenderError> {
        let mut w = ::csv::Writer::from_writer(Vec::new());
        w.write_record(COLUMNS).map_err(csv_error)?;
        for run in &report.runs {
            let status = serde_json::to_value(run.status)?
                .as_str()
                .unwrap_or_default()
                .to_string();
            for g in &run.groups {
                let errors = g.all_errors();
                let lat = &g.transactions.latency_us;
                let record: Vec<String> = vec![
                    cell(&run.id),
                    run.repeat.map_or(String::new(), |r| r.to_string()),
                    cell(&g.name),
                    g.workers.to_string(),
                    g.transactions.throughput_per_s.to_string(),
                    g.ops.iter().map(|o| o.throughput_per_s).sum::<f64>().to_string(),
                    lat.p50.to_string(),
                    lat.p99.to_string(),
                    lat.p99_9.to_string(),
                    lat.max.to_string(),
                    g.transactions.committed.to_string(),
                    g.transactions.rolled_back.to_string(),
                    g.fairness.jain_index.to_string(),
                    errors.busy_total().to_string(),
                    (errors.total() - errors.busy_total()).to_string(),
                    cell(&status),
                    cell(&verdict(run)),
                ];
                w.write_record(&record).map_err(csv_error)?;
            }
        }
        w.into_inner().map_err(|e| RenderError::Csv(e.to_string()))
    }
}

/// A text cell a spreadsheet must not take for a formula: one that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP's CSV injection advice).
/// Numbers are written by litehammer and never pass through here.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn csv_error(e: ::csv::Error) -> RenderError {
    RenderError::Csv(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_run_and_group() {
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        let text = String::from_utf8(Csv.render(&report).unwrap()).unwrap();
        let rows: usize = report.runs.iter().map(|r| r.groups.len()).sum();
        assert_eq!(text.lines().count(), rows + 1);
        assert!(text.starts_with("run,repeat,group,workers,tx_per_s,"), "{text}");
    }

    #[test]
    fn text_cells_never_start_a_formula() {
        for bad in ["=HYPERLINK(\"x\")", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"] {
            assert!(cell(bad).starts_with('\''), "{bad}");
        }
        assert_eq!(cell("writers"), "writers");
    }
}
