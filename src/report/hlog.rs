//! HdrHistogram interval logs: one `.hlog` per run × group, one line per timeline interval,
//! written with the hdrhistogram crate's interval-log writer so that HdrHistogram's own tools
//! (HistogramLogProcessor) and plotters read them. Values are nanoseconds; the max column is
//! in milliseconds (`MaxValueDivisor` 1e6).

use super::RenderError;
use super::format::one_line;
use super::model::{Report, RunReport};
use crate::error::InputError;
use crate::metrics::decode_histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use std::time::{Duration, SystemTime};

/// The files of a report: (file name, contents). Bad input when no interval has a histogram
/// (reports written before litehammer kept them, or crash reports).
pub(crate) fn files(report: &Report) -> Result<Vec<(String, Vec<u8>)>, RenderError> {
    let start = humantime::parse_rfc3339(&report.created_at).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut out = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for run in &report.runs {
        for g in &run.groups {
            if !run
                .timeline
                .iter()
                .any(|e| e.groups.iter().any(|x| x.name == g.name && x.histogram_v2.is_some()))
            {
                continue;
            }
            let name = file_name(run, &g.name);
            if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                return Err(InputError::new(
                    "--format hlog",
                    format!(
                        "{first} and run `{}` group `{}` would both be written to {name}; \
                         litehammer does not overwrite one export with another (rename a run or group)",
                        crate::error::terminal(&run.id, false),
                        crate::error::terminal(&g.name, false)
                    ),
                )
                .into());
            }
            seen.push((
                name.clone(),
                format!(
                    "run `{}` group `{}`",
                    crate::error::terminal(&run.id, false),
                    crate::error::terminal(&g.name, false)
                ),
            ));
            out.push((name, log(report, run, &g.name, start)?));
        }
    }
    if out.is_empty() {
        return Err(InputError::new(
            "--format hlog",
            "the report has no per-interval histograms (written by an older litehammer, or a crash report); re-run it to get them",
        )
        .into());
    }
    Ok(out)
}

fn log(report: &Report, run: &RunReport, group: &str, start: SystemTime) -> Result<Vec<u8>, RenderError> {
    let mut bytes = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "litehammer {}: scenario {}, run {}, group {}; transaction latency in ns",
            one_line(&report.tool.version),
            one_line(&report.scenario.name),
            one_line(&run.id),
            one_line(group)
        ))
        .with_start_time(start)
        .with_base_time(start)
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut bytes, &mut serializer)
        .map_err(|e| RenderError::IntervalLog(e.to_string()))?;
    let tag = Tag::new(group);
    let interval = run.timeline_interval_s.max(0.0);
    let mut begin = 0.0;
    for entry in &run.timeline {
        let Some(text) = entry
            .groups
            .iter()
            .find(|g| g.name == group)
            .and_then(|g| g.histogram_v2.as_deref())
        else {
            begin = entry.t_s;
            continue;
        };
        let h = decode_histogram(text).map_err(|e| RenderError::Interval {
            run: run.id.clone(),
            group: group.to_string(),
            message: e.to_string(),
        })?;
        let length = (entry.t_s - begin).max(0.0);
        writer
            .write_histogram(
                &h,
                Duration::from_secs_f64(begin.max(entry.t_s - interval).max(0.0)),
                Duration::from_secs_f64(length),
                tag,
            )
            .map_err(|e| RenderError::IntervalLog(format!("{e:?}")))?;
        begin = entry.t_s;
    }
    drop(writer);
    Ok(bytes)
}

/// `<run id>[-r<repeat>]-<group>.hlog`, with characters unsafe in file names replaced (no
/// `/`: a name never leaves the directory; it ends in `.hlog`, so it is never `.` or `..`).
pub(crate) fn file_name(run: &RunReport, group: &str) -> String {
    let repeat = run.repeat.map_or(String::new(), |r| format!("-r{r}"));
    let raw = format!("{}{repeat}-{group}", run.id);
    let safe: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '.' | ',') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.hlog")
}
