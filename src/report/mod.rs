//! Reports: the model (JSON is the source of truth) and exporters, each Report → bytes.

pub(crate) mod anatomy;
pub(crate) mod capacity;
pub(crate) mod compare;
pub(crate) mod csv;
pub(crate) mod decision;
pub(crate) mod durability;
pub(crate) mod format;
pub(crate) mod hlog;
pub(crate) mod html;
pub(crate) mod json;
pub(crate) mod markdown;
pub(crate) mod model;
pub(crate) mod notes;
pub(crate) mod output;
pub(crate) mod page;
pub(crate) mod snippet;
pub(crate) mod svg;
pub(crate) mod sweep;
pub(crate) mod table;

use crate::analysis::stats::BadHistogram;
use crate::error::InputError;
use model::{Report, SCHEMA};
use std::path::Path;

/// An output format: renders a whole report to bytes, no I/O.
pub(crate) trait Exporter {
    fn render(&self, report: &Report) -> Result<Vec<u8>, RenderError>;
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    /// The format cannot render this report as asked (exit code 2).
    #[error("{0}")]
    Input(#[from] InputError),
    #[error(transparent)]
    Histogram(#[from] BadHistogram),
    #[error("cannot serialize the report: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot write the CSV: {0}")]
    Csv(String),
    /// A run's histogram of one interval does not decode (`--format hlog`).
    #[error("run `{run}`, group {group}: {message}")]
    Interval {
        run: String,
        group: String,
        message: String,
    },
    /// The repeats' histograms of one configuration do not merge.
    #[error("{0}")]
    Merge(String),
    #[error("writing the interval log: {0}")]
    IntervalLog(String),
}

/// The formats `litehammer report` renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Md,
    Html,
    Json,
    /// One row per run × group, raw units
    Csv,
    /// HdrHistogram interval logs, one `.hlog` per run × group, into the directory `-o` names
    Hlog,
}

impl Format {
    /// The exporter for this format; `baseline` names the configuration ratios are against.
    pub(crate) fn exporter(self, baseline: Option<String>) -> Box<dyn Exporter> {
        match self {
            Format::Md => Box::new(markdown::Markdown { baseline }),
            Format::Html => Box::new(html::Html { baseline }),
            Format::Json => Box::new(json::Json),
            Format::Csv => Box::new(csv::Csv),
            Format::Hlog => Box::new(NeedsDirectory),
        }
    }
}

/// `--format hlog` writes several files: it has no single-file rendering.
struct NeedsDirectory;

impl Exporter for NeedsDirectory {
    fn render(&self, _: &Report) -> Result<Vec<u8>, RenderError> {
        Err(InputError::new(
            "--format hlog",
            "writes one .hlog file per run and group: give a directory with -o DIR",
        )
        .into())
    }
}

/// Reads a saved report; a missing file, invalid JSON or another schema is bad input.
pub(crate) fn load(path: &Path) -> Result<Report, InputError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError::new(&origin, format!("cannot read: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| InputError::new(&origin, format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => {
            return Err(InputError::new(&origin, format!("schema `{other}` is not `{SCHEMA}`")));
        }
        None => {
            return Err(InputError::new(
                &origin,
                format!("not a litehammer report (no `schema: {SCHEMA}`)"),
            ));
        }
    }
    let report: Report = serde_json::from_value(value)
        .map_err(|e| InputError::new(&origin, format!("not a valid {SCHEMA} report: {e}")))?;
    // Repeats of one configuration are merged by id: two runs with one id and repeat would
    // be counted as repeats of each other.
    for (i, run) in report.runs.iter().enumerate() {
        if report.runs[..i]
            .iter()
            .any(|r| r.id == run.id && r.repeat == run.repeat)
        {
            return Err(InputError::new(
                &origin,
                format!(
                    "duplicate run id `{}`{}: each run needs its own id (and repeat number)",
                    format::one_line(&run.id),
                    run.repeat.map(|k| format!(" (repeat {k})")).unwrap_or_default()
                ),
            ));
        }
    }
    Ok(report)
}

/// Writes a file atomically (temp file + rename), so a reader never sees half a report.
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    output::write(path, bytes)
}
