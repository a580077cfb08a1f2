//! Comparing reports: runs matched by configuration id (and group), ratios B/A of throughput,
//! p50 and p99, and whether each difference is within the runs' own variation.
//!
//! Noise: when both sides have repeats, a difference is noise if the repeats' min–max ranges
//! overlap; otherwise if it is within ± `noise_pct` percent (default 5).

use super::format::{Table, format_rate};
use super::model::Report;
use super::stats::{self, BadHistogram, Figures, Spread, Subject};

pub(crate) const DEFAULT_NOISE_PCT: f64 = 5.0;

/// One metric on both sides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Metric {
    pub a: Spread,
    pub b: Spread,
    /// B / A of the means; infinite or NaN when A is 0.
    pub ratio: f64,
    pub noise: bool,
}

impl Metric {
    fn new(a: Spread, b: Spread, noise_pct: f64) -> Metric {
        let noise = if a.n > 1 && b.n > 1 {
            a.overlaps(&b)
        } else {
            (b.mean - a.mean).abs() <= a.mean.abs() * noise_pct / 100.0
        };
        Metric {
            a,
            b,
            ratio: b.mean / a.mean,
            noise,
        }
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
    /// Whether throughput dropped by more than `pct` percent.
    pub(crate) fn slower_than(&self, pct: f64) -> bool {
        self.throughput.a.mean > 0.0 && self.throughput.ratio < 1.0 - pct / 100.0
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
    Row {
        id: id.to_string(),
        group: group.to_string(),
        throughput: Metric::new(a.throughput, b.throughput, noise_pct),
        p50: Metric::new(a.p50, b.p50, noise_pct),
        p99: Metric::new(a.p99, b.p99, noise_pct),
    }
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
    let (ea, eb) = (&a.environment, &b.environment);
    let pairs = [
        ("SQLite", &ea.sqlite_version, &eb.sqlite_version),
        ("build profile", &ea.build_profile, &eb.build_profile),
        ("CPU", &ea.cpu_model, &eb.cpu_model),
        ("filesystem", &ea.filesystem, &eb.filesystem),
    ];
    for (what, x, y) in pairs {
        if x != y {
            out.push(format!("{what} differs: {x} vs {y}"));
        }
    }
    out
}

impl Comparison {
    /// One row per matched configuration and group; `~` marks a ratio within noise.
    pub(crate) fn table(&self, fail_if_slower: Option<f64>) -> Table {
        let rows = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.group.clone(),
                    spread_rate(&r.throughput.a),
                    spread_rate(&r.throughput.b),
                    ratio(&r.throughput),
                    ratio(&r.p50),
                    ratio(&r.p99),
                    verdict(r, fail_if_slower),
                ]
            })
            .collect();
        Table {
            headers: vec![
                "configuration",
                "group",
                "A tx/s",
                "B tx/s",
                "tx/s B/A",
                "p50 B/A",
                "p99 B/A",
                "verdict",
            ],
            right: vec![false, false, true, true, true, true, true, false],
            rows,
        }
    }
}

fn spread_rate(s: &Spread) -> String {
    if s.n > 1 {
        format!("{} ± {}", format_rate(s.mean), format_rate(s.stddev))
    } else {
        format_rate(s.mean)
    }
}

fn ratio(m: &Metric) -> String {
    if !m.ratio.is_finite() {
        return "–".to_string();
    }
    let text = super::format::format_ratio(m.ratio);
    if m.noise { format!("~{text}") } else { text }
}

fn verdict(r: &Row, fail_if_slower: Option<f64>) -> String {
    let t = &r.throughput;
    let mut text = match () {
        _ if !t.ratio.is_finite() => "no throughput in A".to_string(),
        _ if t.noise => "within noise".to_string(),
        _ if t.ratio >= 1.0 => format!("{:.0}% faster", (t.ratio - 1.0) * 100.0),
        _ => format!("{:.0}% slower", (1.0 - t.ratio) * 100.0),
    };
    if let Some(pct) = fail_if_slower.filter(|&pct| r.slower_than(pct)) {
        text.push_str(&format!(" — FAIL (> {pct}% slower)"));
    }
    text
}

#[cfg(test)]
mod tests {
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
        let text = c.table(Some(10.0)).to_text();
        assert!(
            text.contains("0.80×") && text.contains("20% slower — FAIL (> 10% slower)"),
            "{text}"
        );
        // 3% is within the default 5% noise.
        let small = compare(&fixture(), &scaled(0.97), DEFAULT_NOISE_PCT).unwrap();
        assert!(small.rows.iter().all(|r| r.throughput.noise));
    }

    #[test]
    fn with_repeats_noise_is_the_overlap_of_ranges() {
        let spread = |v: &[f64]| Spread::of(v).unwrap();
        let overlap = Metric::new(spread(&[100.0, 130.0]), spread(&[125.0, 140.0]), 5.0);
        assert!(overlap.noise, "ranges overlap although the means differ by 22%");
        let apart = Metric::new(spread(&[100.0, 101.0]), spread(&[103.0, 104.0]), 5.0);
        assert!(!apart.noise, "tight repeats: 3% is a real difference");
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
}
