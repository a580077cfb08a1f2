//! Figures per configuration: runs with the same id (repeats) folded into one set of numbers.
//!
//! Throughput and p99 get mean ± stddev and min–max across repeats; the other percentiles come
//! from the repeats' histograms merged (percentiles are never averaged).

use super::model::{GroupReport, OpReport, Report, RunReport, RunStatus};
use crate::metrics::{ErrorCounts, LatencySummary, decode_histogram};

/// One configuration: every run of one id, in report order.
pub(crate) struct Config<'a> {
    pub id: &'a str,
    pub runs: Vec<&'a RunReport>,
}

/// The configurations of a report, in order of first appearance.
pub(crate) fn configurations(report: &Report) -> Vec<Config<'_>> {
    let mut configs: Vec<Config> = Vec::new();
    for run in &report.runs {
        match configs.iter_mut().find(|c| c.id == run.id) {
            Some(c) => c.runs.push(run),
            None => configs.push(Config {
                id: &run.id,
                runs: vec![run],
            }),
        }
    }
    configs
}

/// What a table row or a chart series is about: a group's transactions, or one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Subject<'a> {
    Transactions { group: &'a str },
    Op { group: &'a str, op: &'a str },
}

impl Subject<'_> {
    pub(crate) fn title(&self) -> String {
        match self {
            Subject::Transactions { group } => format!("{group}: transactions"),
            Subject::Op { group, op } => format!("{group} / {op}"),
        }
    }
}

/// The subjects of a report in order: per group, its transactions then each operation.
pub(crate) fn subjects(report: &Report) -> Vec<Subject<'_>> {
    let mut out = Vec::new();
    for run in &report.runs {
        for g in &run.groups {
            let tx = Subject::Transactions { group: &g.name };
            if !out.contains(&tx) {
                out.push(tx);
            }
            for op in &g.ops {
                let subject = Subject::Op {
                    group: &g.name,
                    op: &op.name,
                };
                if !out.contains(&subject) {
                    out.push(subject);
                }
            }
        }
    }
    out
}

/// One run's numbers for a subject.
pub(crate) struct Sample<'a> {
    pub throughput: f64,
    pub latency: &'a LatencySummary,
    pub histogram: &'a str,
    pub errors: ErrorCounts,
}

pub(crate) fn sample<'a>(run: &'a RunReport, subject: Subject) -> Option<Sample<'a>> {
    let group = |name: &str| -> Option<&'a GroupReport> { run.groups.iter().find(|g| g.name == name) };
    match subject {
        Subject::Transactions { group: name } => {
            let g = group(name)?;
            let errors = g.all_errors();
            Some(Sample {
                throughput: g.transactions.throughput_per_s,
                latency: &g.transactions.latency_us,
                histogram: &g.transactions.histogram_v2,
                errors,
            })
        }
        Subject::Op { group: name, op } => {
            let o: &OpReport = group(name)?.ops.iter().find(|o| o.name == op)?;
            Some(Sample {
                throughput: o.throughput_per_s,
                latency: &o.latency_us,
                histogram: &o.histogram_v2,
                errors: o.errors,
            })
        }
    }
}

/// Mean, sample standard deviation, min and max of a few values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub n: usize,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub(crate) fn of(values: &[f64]) -> Option<Spread> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Spread {
            n,
            mean,
            stddev: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// Whether two spreads' min–max ranges overlap.
    pub(crate) fn overlaps(&self, other: &Spread) -> bool {
        self.min <= other.max && other.min <= self.max
    }
}

#[derive(Debug, thiserror::Error)]
#[error("run `{run}`, {subject}: the histogram does not decode: {message}")]
pub(crate) struct BadHistogram {
    pub run: String,
    pub subject: String,
    pub message: String,
}

/// A configuration's figures for one subject.
pub(crate) struct Figures {
    pub throughput: Spread,
    pub p50: Spread,
    pub p99: Spread,
    /// Percentiles of all repeats together (merged histograms); the run's own with one repeat.
    pub pooled: LatencySummary,
    pub errors: ErrorCounts,
}

pub(crate) fn figures(config: &Config, subject: Subject) -> Result<Option<Figures>, BadHistogram> {
    let samples: Vec<Sample> = config.runs.iter().filter_map(|r| sample(r, subject)).collect();
    let Some(first) = samples.first() else {
        return Ok(None);
    };
    let mut errors = ErrorCounts::default();
    samples.iter().for_each(|s| errors.merge(&s.errors));
    let pooled = if samples.len() == 1 {
        *first.latency
    } else {
        pooled_latency(config, subject, &samples)?
    };
    let throughputs: Vec<f64> = samples.iter().map(|s| s.throughput).collect();
    let p50s: Vec<f64> = samples.iter().map(|s| s.latency.p50).collect();
    let p99s: Vec<f64> = samples.iter().map(|s| s.latency.p99).collect();
    Ok(Some(Figures {
        throughput: Spread::of(&throughputs).expect("at least one sample"),
        p50: Spread::of(&p50s).expect("at least one sample"),
        p99: Spread::of(&p99s).expect("at least one sample"),
        pooled,
        errors,
    }))
}

fn pooled_latency(config: &Config, subject: Subject, samples: &[Sample]) -> Result<LatencySummary, BadHistogram> {
    let mut merged = crate::metrics::new_histogram();
    for s in samples {
        let h = decode(config.id, subject, s.histogram)?;
        merged.add(&h).expect("auto-resizing histograms add");
    }
    Ok(LatencySummary::of(&merged))
}

pub(crate) fn decode(run: &str, subject: Subject, text: &str) -> Result<hdrhistogram::Histogram<u64>, BadHistogram> {
    decode_histogram(text).map_err(|message| BadHistogram {
        run: run.to_string(),
        subject: subject.title(),
        message,
    })
}

/// The verdict over every repeat: the first failing one, else `ok`.
pub(crate) fn verification(config: &Config) -> String {
    let bad = config
        .runs
        .iter()
        .find(|r| r.status == RunStatus::Failed || r.verification.as_ref().is_some_and(|v| !v.ok));
    let run = bad.copied().unwrap_or(config.runs[0]);
    let verdict = super::format::verdict(run);
    match (bad, config.runs.len()) {
        (None, n) if n > 1 => format!("{verdict} ×{n}"),
        _ => verdict,
    }
}

/// The number of repeats: the largest count of runs sharing an id.
pub(crate) fn max_repeats(configs: &[Config]) -> usize {
    configs.iter().map(|c| c.runs.len()).max().unwrap_or(0)
}

/// Finds the baseline configuration: see [`id_matches`].
pub(crate) fn find_baseline<'a>(configs: &'a [Config<'a>], spec: &str) -> Option<&'a Config<'a>> {
    configs.iter().find(|c| id_matches(c.id, spec))
}

/// Whether a run id (`key=value,...`) is the one `spec` names: the id itself, or the same
/// assignments in any order, with or without the `sqlite.` prefix.
pub(crate) fn id_matches(id: &str, spec: &str) -> bool {
    let wanted = parse_assignments(spec);
    id == spec || (!wanted.is_empty() && parse_assignments(id) == wanted)
}

fn parse_assignments(spec: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = spec
        .split(',')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| {
            let k = k.trim();
            (k.strip_prefix("sqlite.").unwrap_or(k).to_string(), v.trim().to_string())
        })
        .collect();
    pairs.sort();
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_uses_sample_stddev_and_range() {
        let s = Spread::of(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!((s.n, s.mean, s.min, s.max), (3, 12.0, 10.0, 14.0));
        assert!((s.stddev - 2.0).abs() < 1e-9);
        assert_eq!(Spread::of(&[5.0]).unwrap().stddev, 0.0);
        assert!(Spread::of(&[]).is_none());
        let other = Spread::of(&[14.5, 20.0]).unwrap();
        assert!(!s.overlaps(&other));
        assert!(s.overlaps(&Spread::of(&[13.0, 20.0]).unwrap()));
    }

    #[test]
    fn assignments_match_in_any_order() {
        assert!(id_matches(
            "journal_mode=delete,synchronous=full",
            "synchronous=full, sqlite.journal_mode=delete"
        ));
        assert!(id_matches("default", "default"));
        assert!(!id_matches(
            "journal_mode=delete,synchronous=full",
            "journal_mode=delete"
        ));
    }
}
