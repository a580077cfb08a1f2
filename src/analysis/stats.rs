//! Figures per configuration: runs with the same id (repeats) folded into one set of numbers.
//!
//! Throughput and p99 get mean ± stddev and min–max across rounds, and the ratios between
//! configurations 95 % intervals (`paired_ratio` within a report, `unpaired_ratio` across
//! two); the other percentiles come from the rounds' histograms merged (percentiles are never
//! averaged).

use crate::metrics::{ErrorCounts, LatencySummary, decode_histogram};
use crate::report::model::{GroupReport, OpReport, Report, RunReport, RunStatus};

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

/// The first group's transactions: what the verdict's headline, the decision and the
/// recommendation are about.
pub(crate) fn first_transactions(report: &Report) -> Option<Subject<'_>> {
    subjects(report)
        .into_iter()
        .find(|s| matches!(s, Subject::Transactions { .. }))
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
}

/// The two-sided 95 % critical value of Student's t for `df` degrees of freedom: the table's
/// value at whole degrees, linear between them (Welch–Satterthwaite gives fractional ones),
/// and beyond 30 rounded down to the next entry (conservative).
pub(crate) fn t_critical_95(df: f64) -> f64 {
    const SMALL: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df.floor() {
        d if d < 1.0 || d.is_nan() => SMALL[0],
        d if d < 30.0 => {
            let (lo, hi) = (SMALL[d as usize - 1], SMALL[d as usize]);
            lo + (hi - lo) * (df - d)
        }
        d if d < 40.0 => 2.042,
        d if d < 60.0 => 2.021,
        d if d < 120.0 => 2.000,
        _ => 1.980,
    }
}

/// A ratio of two configurations' figures with its 95 % confidence interval across rounds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Interval {
    /// The geometric mean of the per-round ratios.
    pub ratio: f64,
    pub low: f64,
    pub high: f64,
    /// Rounds the interval pairs.
    pub rounds: usize,
}

impl Interval {
    /// Whether the interval excludes 1 (no difference).
    pub(crate) fn excludes_one(&self) -> bool {
        self.low > 1.0 || self.high < 1.0
    }

    pub(crate) fn inverse(&self) -> Interval {
        Interval {
            ratio: 1.0 / self.ratio,
            low: 1.0 / self.high,
            high: 1.0 / self.low,
            rounds: self.rounds,
        }
    }
}

/// The ratio `a / b` with its 95 % interval, from values paired by round (`(round, value)`):
/// a paired Student t-interval on the per-round log ratios, exponentiated. Rounds run every
/// configuration once, interleaved, so a round's pair shares the machine's state of the moment
/// and pairing removes that drift; the log makes a ratio's interval symmetric in `a/b` and
/// `b/a`; and Student's t keeps the nominal coverage with as few as 2–5 rounds, where a
/// bootstrap's percentile interval would be too narrow. `None` with fewer than 2 paired rounds
/// or a value that is not positive.
pub(crate) fn paired_ratio(a: &[(u32, f64)], b: &[(u32, f64)]) -> Option<Interval> {
    let logs: Vec<f64> = a
        .iter()
        .filter_map(|(k, x)| {
            let y = b.iter().find(|(j, _)| j == k)?.1;
            (*x > 0.0 && y > 0.0).then(|| (x / y).ln())
        })
        .collect();
    if logs.len() < 2 || logs.len() < a.len().min(b.len()) {
        return None;
    }
    let s = Spread::of(&logs)?;
    let half = t_critical_95((s.n - 1) as f64) * s.stddev / (s.n as f64).sqrt();
    Some(Interval {
        ratio: s.mean.exp(),
        low: (s.mean - half).exp(),
        high: (s.mean + half).exp(),
        rounds: s.n,
    })
}

/// The ratio `b / a` of two independent sets of runs (two reports) with its 95 % interval:
/// Welch's t-interval on the difference of the mean logs (Welch–Satterthwaite degrees of
/// freedom), exponentiated. `None` unless both sides have 2 or more positive values.
pub(crate) fn unpaired_ratio(a: &[f64], b: &[f64]) -> Option<Interval> {
    let logs = |v: &[f64]| -> Option<Spread> {
        let l: Vec<f64> = v.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect();
        (l.len() == v.len() && l.len() >= 2).then(|| Spread::of(&l)).flatten()
    };
    let (la, lb) = (logs(a)?, logs(b)?);
    let (va, vb) = (la.stddev.powi(2) / la.n as f64, lb.stddev.powi(2) / lb.n as f64);
    let se = (va + vb).sqrt();
    let d = lb.mean - la.mean;
    let half = if se == 0.0 {
        0.0
    } else {
        let df = (va + vb).powi(2) / (va.powi(2) / (la.n - 1) as f64 + vb.powi(2) / (lb.n - 1) as f64);
        t_critical_95(df) * se
    };
    Some(Interval {
        ratio: d.exp(),
        low: (d - half).exp(),
        high: (d + half).exp(),
        rounds: la.n.min(lb.n),
    })
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
    /// Per round (1-based; a run without a round is round 1): (round, throughput, p99).
    pub rounds: Vec<(u32, f64, f64)>,
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
    let rounds = config
        .runs
        .iter()
        .filter_map(|r| Some((r.repeat.unwrap_or(1), sample(r, subject)?)))
        .map(|(k, s)| (k, s.throughput, s.latency.p99))
        .collect();
    let throughputs: Vec<f64> = samples.iter().map(|s| s.throughput).collect();
    let p50s: Vec<f64> = samples.iter().map(|s| s.latency.p50).collect();
    let p99s: Vec<f64> = samples.iter().map(|s| s.latency.p99).collect();
    Ok(Some(Figures {
        throughput: Spread::of(&throughputs).expect("at least one sample"),
        p50: Spread::of(&p50s).expect("at least one sample"),
        p99: Spread::of(&p99s).expect("at least one sample"),
        pooled,
        errors,
        rounds,
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
    let verdict = crate::report::format::verdict(run);
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
    }

    #[test]
    fn the_t_table_interpolates_between_whole_degrees() {
        assert_eq!(t_critical_95(1.0), 12.706);
        assert!((t_critical_95(1.5) - 8.5045).abs() < 1e-9);
        assert_eq!(t_critical_95(2.0), 4.303);
        assert_eq!(t_critical_95(0.5), 12.706);
        assert_eq!(t_critical_95(500.0), 1.980);
    }

    #[test]
    fn unpaired_ratios_of_two_reports_have_intervals() {
        let same = unpaired_ratio(&[100.0, 102.0, 98.0, 101.0], &[99.0, 103.0, 97.0, 100.5]).unwrap();
        assert!(!same.excludes_one(), "{same:?}");
        let faster = unpaired_ratio(&[100.0, 102.0, 98.0, 101.0], &[120.0, 122.0, 119.0, 121.0]).unwrap();
        assert!(faster.low > 1.15 && faster.high < 1.25, "{faster:?}");
        assert!(unpaired_ratio(&[100.0], &[1.0, 2.0]).is_none());
    }

    /// A standard normal deviate (Box–Muller) from the crate's seeded generator.
    fn normal(rng: &mut crate::workload::rng::Rng) -> f64 {
        let u = |rng: &mut crate::workload::rng::Rng| ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (u1, u2) = (u(rng), u(rng));
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `rounds` rounds of two configurations whose true ratio is `effect`, each value with
    /// `noise` (log-normal) and a drift per round that both share (a busy moment).
    fn synthetic(rng: &mut crate::workload::rng::Rng, rounds: u32, effect: f64, noise: f64) -> Interval {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for k in 1..=rounds {
            let drift = 0.3 * normal(rng);
            a.push((k, 100.0 * effect * (drift + noise * normal(rng)).exp()));
            b.push((k, 100.0 * (drift + noise * normal(rng)).exp()));
        }
        paired_ratio(&a, &b).unwrap()
    }

    #[test]
    fn intervals_cover_the_true_ratio_near_the_nominal_95_percent() {
        let mut rng = crate::workload::rng::Rng::new(2027);
        for rounds in [3, 5, 10] {
            let trials = 4000;
            let covered = (0..trials)
                .filter(|_| {
                    let i = synthetic(&mut rng, rounds, 1.5, 0.1);
                    i.low <= 1.5 && 1.5 <= i.high
                })
                .count();
            let coverage = covered as f64 / trials as f64;
            // Whole degrees of freedom (rounds − 1): the exact t quantile, so near 95 %.
            assert!(
                (0.93..=0.975).contains(&coverage),
                "{rounds} rounds: coverage {coverage}"
            );
        }
    }

    #[test]
    fn an_a_a_pair_is_no_difference_and_a_large_effect_is_detected() {
        let mut rng = crate::workload::rng::Rng::new(7);
        let aa = (0..200)
            .filter(|_| !synthetic(&mut rng, 3, 1.0, 0.05).excludes_one())
            .count();
        assert!(aa >= 185, "A/A: {aa} of 200 no measurable difference");
        let ab = (0..200).filter(|_| synthetic(&mut rng, 3, 2.0, 0.05).low > 1.0).count();
        assert_eq!(ab, 200, "A/B 2×: detected in {ab} of 200");
        let i = paired_ratio(
            &[(1, 200.0), (2, 210.0), (3, 190.0)],
            &[(1, 100.0), (2, 100.0), (3, 100.0)],
        )
        .unwrap();
        assert!(i.excludes_one() && (i.ratio - 1.998).abs() < 0.01, "{i:?}");
        assert!(
            paired_ratio(&[(1, 1.0)], &[(1, 2.0)]).is_none(),
            "one round has no interval"
        );
        assert_eq!(i.inverse().inverse().low, i.low);
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
