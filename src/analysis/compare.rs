//! Comparing reports: runs matched by configuration id (and group), ratios B/A of throughput,
//! p50 and p99, and whether each difference is within the runs' own variation.
//!
//! Noise: when both sides have rounds, each ratio has a 95 % interval (`stats::unpaired_ratio`:
//! Welch's t-interval on the logs) and a difference is noise unless the interval excludes 1;
//! otherwise it is noise when within ± `noise_pct` percent (default 5). The gate fails only
//! on a change whose whole interval passes the threshold. Reports measured on different set-ups
//! (fingerprints) are refused unless `--allow-mismatch`.

use super::stats::{self, BadHistogram, Figures, Interval, Spread, Subject};
use crate::report::model::Report;

pub(crate) const DEFAULT_NOISE_PCT: f64 = 5.0;

/// One metric on both sides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metric {
    pub a: Spread,
    pub b: Spread,
    /// B / A of the means; infinite or NaN when A is 0.
    pub ratio: f64,
    pub noise: bool,
    /// Whether the interval excludes 1, when both sides have rounds.
    pub significant: Option<bool>,
    /// B / A with its 95 % interval, when both sides have rounds.
    pub interval: Option<Interval>,
}

/// One metric of both sides (the values of their runs), with whether their difference is noise.
fn metric(a: &[f64], b: &[f64], noise_pct: f64) -> Metric {
    let interval = stats::unpaired_ratio(a, b);
    let (a, b) = (Spread::of(a).expect("a run"), Spread::of(b).expect("a run"));
    let significant = interval.map(|i| i.excludes_one());
    let noise = match significant {
        Some(s) => !s,
        None => (b.mean - a.mean).abs() <= a.mean.abs() * noise_pct / 100.0,
    };
    Metric {
        a,
        b,
        ratio: interval.map_or(b.mean / a.mean, |i| i.ratio),
        noise,
        significant,
        interval,
    }
}

/// A configuration's group in both reports.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub id: String,
    pub group: String,
    pub throughput: Metric,
    pub p50: Metric,
    pub p99: Metric,
}

impl Row {
    /// Whether throughput dropped by more than `pct` percent; with rounds on both sides, only
    /// when the whole interval is beyond the threshold.
    pub(crate) fn slower_than(&self, pct: f64) -> bool {
        let t = &self.throughput;
        let bound = t.interval.map_or(t.ratio, |i| i.high);
        t.a.mean > 0.0 && bound < 1.0 - pct / 100.0
    }

    /// Whether p99 grew by more than `pct` percent; with rounds on both sides, only when the
    /// whole interval is beyond the threshold.
    pub(crate) fn p99_worse_than(&self, pct: f64) -> bool {
        let p = &self.p99;
        let bound = p.interval.map_or(p.ratio, |i| i.low);
        p.a.mean > 0.0 && bound > 1.0 + pct / 100.0
    }
}

pub(crate) struct Comparison {
    pub rows: Vec<Row>,
    /// Configuration ids found in only one of the two reports.
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
    /// Differences between the two reports' set-ups worth knowing before trusting a ratio.
    pub warnings: Vec<String>,
}

pub(crate) fn compare(a: &Report, b: &Report, noise_pct: f64) -> Result<Comparison, BadHistogram> {
    let (configs_a, configs_b) = (stats::configurations(a), stats::configurations(b));
    let mut rows = Vec::new();
    for ca in &configs_a {
        let Some(cb) = configs_b.iter().find(|c| c.id == ca.id) else {
            continue;
        };
        for subject in stats::subjects(a) {
            let Subject::Transactions { group } = subject else {
                continue;
            };
            if let (Some(fa), Some(fb)) = (stats::figures(ca, subject)?, stats::figures(cb, subject)?) {
                rows.push(row(ca.id, group, &fa, &fb, noise_pct));
            }
        }
    }
    let ids = |configs: &[stats::Config], others: &[stats::Config]| -> Vec<String> {
        configs
            .iter()
            .filter(|c| !others.iter().any(|o| o.id == c.id))
            .map(|c| c.id.to_string())
            .collect()
    };
    Ok(Comparison {
        rows,
        only_a: ids(&configs_a, &configs_b),
        only_b: ids(&configs_b, &configs_a),
        warnings: setup_warnings(a, b),
    })
}

fn row(id: &str, group: &str, a: &Figures, b: &Figures, noise_pct: f64) -> Row {
    let values = |f: &Figures, pick: fn(&(u32, f64, f64)) -> f64| f.rounds.iter().map(pick).collect::<Vec<f64>>();
    // p50 per round is not kept beside throughput and p99: the means, without an interval.
    let mut p50 = metric(&[a.p50.mean], &[b.p50.mean], noise_pct);
    (p50.a, p50.b) = (a.p50, b.p50);
    Row {
        id: id.to_string(),
        group: group.to_string(),
        throughput: metric(&values(a, |r| r.1), &values(b, |r| r.1), noise_pct),
        p50,
        p99: metric(&values(a, |r| r.2), &values(b, |r| r.2), noise_pct),
    }
}

/// What two reports must share for their ratios to mean a change of the code or settings
/// rather than of the set-up: each mismatch in words. `compare` refuses them unless
/// `--allow-mismatch`.
pub(crate) fn fingerprint_mismatches(a: &Report, b: &Report) -> Vec<String> {
    let (ea, eb) = (&a.environment, &b.environment);
    let pairs = [
        ("SQLite version", ea.sqlite_version.clone(), eb.sqlite_version.clone()),
        // Older reports lack the options' hash: compared only when both have it.
        match (&ea.sqlite_options_sha256, &eb.sqlite_options_sha256) {
            (Some(x), Some(y)) => ("SQLite compile options (sha256)", x.clone(), y.clone()),
            _ => ("SQLite compile options (sha256)", String::new(), String::new()),
        },
        (
            "litehammer version",
            ea.litehammer_version.clone(),
            eb.litehammer_version.clone(),
        ),
        ("build profile", ea.build_profile.clone(), eb.build_profile.clone()),
        ("filesystem", ea.filesystem.clone(), eb.filesystem.clone()),
        ("cores", ea.cores.to_string(), eb.cores.to_string()),
        ("kernel", ea.kernel.clone(), eb.kernel.clone()),
        ("scenario sha256", a.scenario.sha256.clone(), b.scenario.sha256.clone()),
    ];
    pairs
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(what, x, y)| format!("{what}: {x} vs {y}"))
        .collect()
}

fn setup_warnings(a: &Report, b: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if a.scenario.sha256 != b.scenario.sha256 {
        out.push(format!(
            "the scenarios differ (`{}` {} vs `{}` {})",
            a.scenario.name,
            &crate::report::format::prefix(&a.scenario.sha256, 8),
            b.scenario.name,
            &crate::report::format::prefix(&b.scenario.sha256, 8)
        ));
    }
    let (da, db) = (measured_s(a), measured_s(b));
    if da > 0.0 && db > 0.0 && (da / db - 1.0).abs() > 0.1 {
        out.push(format!(
            "the runs' durations differ: {da:.2} s vs {db:.2} s measured per run"
        ));
    }
    let (ea, eb) = (&a.environment, &b.environment);
    let machine = |e: &crate::report::model::Environment| {
        format!(
            "{}, kernel {}, {} cores, {} bytes of memory",
            e.os, e.kernel, e.cores, e.memory_bytes
        )
    };
    let pairs = [
        ("SQLite", ea.sqlite_version.clone(), eb.sqlite_version.clone()),
        ("build profile", ea.build_profile.clone(), eb.build_profile.clone()),
        ("CPU", ea.cpu_model.clone(), eb.cpu_model.clone()),
        ("machine", machine(ea), machine(eb)),
        ("filesystem", ea.filesystem.clone(), eb.filesystem.clone()),
    ];
    for (what, x, y) in pairs {
        if x != y {
            out.push(format!("{what} differs: {x} vs {y}"));
        }
    }
    out
}

/// The mean measured time per run of a report.
fn measured_s(r: &Report) -> f64 {
    r.runs.iter().map(|r| r.measured_s).sum::<f64>() / r.runs.len().max(1) as f64
}

/// The thresholds of `compare`'s gate, in percent.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Gate {
    pub slower: Option<f64>,
    pub p99_worse: Option<f64>,
}

/// Two capacity reports' searches, configuration by configuration (matched by id). A
/// configuration's true capacity lies between its capacity (passed twice) and the lowest
/// rate that failed above it (or beyond, when the search hit its ceiling or its budget), so
/// the ratio B/A is a range; a change is called only when the whole range is on one side.
pub(crate) struct CapacityComparison {
    pub rows: Vec<CapacityRow>,
    pub only_a: Vec<String>,
    pub only_b: Vec<String>,
}

pub(crate) struct CapacityRow {
    pub id: String,
    pub a: f64,
    pub a_failed_at: Option<f64>,
    pub b: f64,
    pub b_failed_at: Option<f64>,
    /// The range of B/A the two brackets allow (`high` is infinite without an upper end).
    pub low: f64,
    pub high: f64,
}

impl CapacityRow {
    /// B's capacity is lower than A's beyond `pct` percent over the whole range.
    pub(crate) fn dropped_more_than(&self, pct: f64) -> bool {
        self.high < 1.0 - pct / 100.0
    }
}

pub(crate) fn capacities(
    a: &crate::report::model::capacity::CapacityReport,
    b: &crate::report::model::capacity::CapacityReport,
) -> CapacityComparison {
    let mut rows = Vec::new();
    let mut only_a = Vec::new();
    for ca in &a.configurations {
        let Some(cb) = b.configurations.iter().find(|c| c.id == ca.id) else {
            only_a.push(ca.id.clone());
            continue;
        };
        let low = match ca.failed_at_per_s {
            Some(fail) if fail > 0.0 => cb.capacity_per_s / fail,
            _ => 0.0,
        };
        let high = match cb.failed_at_per_s {
            Some(fail) if ca.capacity_per_s > 0.0 => fail / ca.capacity_per_s,
            _ => f64::INFINITY,
        };
        rows.push(CapacityRow {
            id: ca.id.clone(),
            a: ca.capacity_per_s,
            a_failed_at: ca.failed_at_per_s,
            b: cb.capacity_per_s,
            b_failed_at: cb.failed_at_per_s,
            low,
            high,
        });
    }
    let only_b = b
        .configurations
        .iter()
        .filter(|c| !a.configurations.iter().any(|o| o.id == c.id))
        .map(|c| c.id.clone())
        .collect();
    CapacityComparison { rows, only_a, only_b }
}

/// Why two capacity reports' figures do not compare: different objectives.
pub(crate) fn capacity_mismatch(
    a: &crate::report::model::capacity::CapacityReport,
    b: &crate::report::model::capacity::CapacityReport,
) -> Option<String> {
    (a.slo != b.slo).then(|| {
        format!(
            "objectives differ (A: {}; B: {}): a capacity is the highest rate that met its objectives",
            a.slo.join(", "),
            b.slo.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::report::model::capacity::{CapacityReport, CapacityResult};

    fn cap(results: &[(&str, f64, Option<f64>)]) -> CapacityReport {
        CapacityReport {
            slo: vec!["p99 < 200ms".into()],
            resolution: 0.1,
            budget_s: 60.0,
            step_s: 1.0,
            configurations: results
                .iter()
                .map(|(id, c, f)| CapacityResult {
                    id: id.to_string(),
                    capacity_per_s: *c,
                    failed_at_per_s: *f,
                    settled: true,
                    reason: String::new(),
                    steps: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn capacity_ratios_are_ranges_and_only_a_whole_range_is_a_change() {
        let a = cap(&[
            ("wal", 100.0, Some(110.0)),
            ("delete", 40.0, Some(44.0)),
            ("gone", 5.0, None),
        ]);
        let b = cap(&[
            ("wal", 60.0, Some(66.0)),
            ("delete", 42.0, Some(46.0)),
            ("new", 1.0, None),
        ]);
        let c = super::capacities(&a, &b);
        assert_eq!(c.only_a, ["gone"]);
        assert_eq!(c.only_b, ["new"]);
        let wal = &c.rows[0];
        // B in [60, 66), A in [100, 110): B/A in (60/110, 66/100).
        assert!((wal.low - 60.0 / 110.0).abs() < 1e-9 && (wal.high - 0.66).abs() < 1e-9);
        assert!(wal.dropped_more_than(30.0) && !wal.dropped_more_than(40.0));
        // Overlapping brackets: no change can be called.
        let delete = &c.rows[1];
        assert!(delete.low < 1.0 && delete.high > 1.0);
        assert!(!delete.dropped_more_than(0.0));
        // A search that hit its ceiling has no upper end: the range is open.
        let open = super::capacities(&cap(&[("x", 50.0, Some(55.0))]), &cap(&[("x", 200.0, None)]));
        assert!(open.rows[0].high.is_infinite() && open.rows[0].low > 1.0);
        assert!(super::capacity_mismatch(&a, &b).is_none());
        let mut other = b.clone();
        other.slo = vec!["p99 < 50ms".into()];
        assert!(
            super::capacity_mismatch(&a, &other)
                .unwrap()
                .contains("objectives differ")
        );
    }
    use super::*;

    fn fixture() -> Report {
        serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap()
    }

    fn scaled(factor: f64) -> Report {
        let mut r = fixture();
        for run in &mut r.runs {
            for g in &mut run.groups {
                g.transactions.throughput_per_s *= factor;
            }
        }
        r
    }

    #[test]
    fn identical_reports_are_all_noise() {
        let c = compare(&fixture(), &fixture(), DEFAULT_NOISE_PCT).unwrap();
        assert_eq!(c.rows.len(), 8, "4 configurations × 2 groups");
        assert!(
            c.rows
                .iter()
                .all(|r| r.throughput.noise && r.p99.noise && r.throughput.ratio == 1.0)
        );
        assert!(c.only_a.is_empty() && c.only_b.is_empty() && c.warnings.is_empty());
    }

    #[test]
    fn a_drop_beyond_the_threshold_is_reported_and_fails_the_gate() {
        let c = compare(&fixture(), &scaled(0.8), DEFAULT_NOISE_PCT).unwrap();
        let r = &c.rows[0];
        assert!((r.throughput.ratio - 0.8).abs() < 1e-9);
        assert!(!r.throughput.noise);
        assert!(r.slower_than(10.0) && !r.slower_than(25.0));
        let text = crate::report::compare::table(
            &c,
            Gate {
                slower: Some(10.0),
                p99_worse: None,
            },
        )
        .to_text();
        assert!(
            text.contains("0.80×") && text.contains("20% slower — FAIL (> 10% slower)"),
            "{text}"
        );
        // 3% is within the default 5% noise.
        let small = compare(&fixture(), &scaled(0.97), DEFAULT_NOISE_PCT).unwrap();
        assert!(small.rows.iter().all(|r| r.throughput.noise));
    }

    #[test]
    fn with_rounds_noise_is_the_interval() {
        let overlap = metric(&[100.0, 130.0], &[125.0, 140.0], 5.0);
        assert!(overlap.noise, "not significant although the means differ by 15%");
        assert_eq!(overlap.significant, Some(false));
        let apart = metric(&[100.0, 100.5], &[103.0, 103.5], 5.0);
        assert!(
            apart.interval.is_some_and(|i| i.low > 1.0 && i.high < 1.05),
            "{apart:?}"
        );
        assert!(!apart.noise, "tight repeats: 3% is a real difference");
        assert_eq!(apart.significant, Some(true));
    }

    #[test]
    fn p99_gate_and_a_not_significant_drop_does_not_fail() {
        let mut b = fixture();
        for run in &mut b.runs {
            for g in &mut run.groups {
                g.transactions.latency_us.p99 *= 1.5;
            }
        }
        let c = compare(&fixture(), &b, DEFAULT_NOISE_PCT).unwrap();
        assert!(c.rows.iter().all(|r| r.p99_worse_than(20.0) && !r.p99_worse_than(60.0)));
        let text = crate::report::compare::table(
            &c,
            Gate {
                slower: None,
                p99_worse: Some(20.0),
            },
        )
        .to_text();
        assert!(text.contains("p99 50% worse — FAIL (p99 > 20% worse)"), "{text}");
        let mut short = fixture();
        short.runs.iter_mut().for_each(|r| r.measured_s *= 2.0);
        let c = compare(&fixture(), &short, DEFAULT_NOISE_PCT).unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("durations differ")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn unmatched_configurations_and_setup_differences_are_listed() {
        let mut b = fixture();
        b.runs.retain(|r| r.id.starts_with("journal_mode=wal"));
        b.runs[0].id = "journal_mode=wal,synchronous=off".into();
        b.environment.build_profile = "release".into();
        let c = compare(&fixture(), &b, DEFAULT_NOISE_PCT).unwrap();
        assert_eq!(c.rows.len(), 2);
        assert_eq!(c.only_a.len(), 3);
        assert_eq!(c.only_b, ["journal_mode=wal,synchronous=off"]);
        assert_eq!(c.warnings, ["build profile differs: debug vs release"]);
    }

    #[test]
    fn fingerprints_name_each_mismatch_and_skip_what_an_older_report_lacks() {
        assert!(fingerprint_mismatches(&fixture(), &fixture()).is_empty());
        let mut b = fixture();
        b.environment.cores = 64;
        b.environment.kernel = "9.9".into();
        b.environment.sqlite_options_sha256 = Some("ab".into());
        assert_eq!(
            fingerprint_mismatches(&fixture(), &b),
            ["cores: 2 vs 64", "kernel: 6.18.44-fc-v657 vs 9.9"]
        );
        let mut a = fixture();
        a.environment.sqlite_options_sha256 = Some("cd".into());
        assert_eq!(
            fingerprint_mismatches(&a, &b).len(),
            3,
            "both have the options' hash: compared"
        );
    }
}
