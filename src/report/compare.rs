//! The table of `litehammer compare` (the comparison itself is `analysis::compare`).

use super::format::{Table, format_rate, format_ratio};
use crate::analysis::compare::{CapacityComparison, Comparison, Gate, Metric, Row};
use crate::analysis::stats::Spread;

/// One row per matched configuration and group; `~` marks a ratio within noise.
pub(crate) fn table(comparison: &Comparison, gate: Gate) -> Table {
    let rows = comparison
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
                verdict(r, gate),
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
    let text = match m.interval {
        Some(i) => format!(
            "{} [{}–{}]",
            format_ratio(m.ratio),
            format_ratio(i.low),
            format_ratio(i.high)
        ),
        None => format_ratio(m.ratio),
    };
    if m.noise { format!("~{text}") } else { text }
}

fn verdict(r: &Row, gate: Gate) -> String {
    let t = &r.throughput;
    let mut text = match () {
        _ if !t.ratio.is_finite() => "no throughput in A".to_string(),
        _ if t.noise => "within noise".to_string(),
        _ if t.ratio >= 1.0 => format!("{:.0}% faster", (t.ratio - 1.0) * 100.0),
        _ => format!("{:.0}% slower", (1.0 - t.ratio) * 100.0),
    };
    match t.significant {
        Some(true) => text.push_str(" (95 % interval excludes no change)"),
        Some(false) => text.push_str(" (95 % interval includes no change)"),
        None => {}
    }
    if !r.p99.noise && r.p99.ratio.is_finite() {
        let p = &r.p99;
        let words = if p.ratio >= 1.0 {
            format!("p99 {:.0}% worse", (p.ratio - 1.0) * 100.0)
        } else {
            format!("p99 {:.0}% better", (1.0 - p.ratio) * 100.0)
        };
        text.push_str(&format!("; {words}"));
    }
    if let Some(pct) = gate.slower.filter(|&pct| r.slower_than(pct)) {
        text.push_str(&format!(" — FAIL (> {pct}% slower)"));
    }
    if let Some(pct) = gate.p99_worse.filter(|&pct| r.p99_worse_than(pct)) {
        text.push_str(&format!(" — FAIL (p99 > {pct}% worse)"));
    }
    text
}

/// One row per configuration of two capacity reports: each capacity with its bracket, the
/// range of B/A, and what can be said of it.
pub(crate) fn capacity_table(c: &CapacityComparison, fail_below_pct: Option<f64>) -> Table {
    let bracket = |cap: f64, fail: Option<f64>| match fail {
        _ if cap <= 0.0 => format!("0 (failed at {})", fail.map_or("every rate".into(), format_rate)),
        Some(f) => format!("{} (< {})", format_rate(cap), format_rate(f)),
        None => format!("≥ {}", format_rate(cap)),
    };
    let rows = c
        .rows
        .iter()
        .map(|r| {
            let range = if r.high.is_finite() {
                format!("{}–{}", format_ratio(r.low), format_ratio(r.high))
            } else {
                format!("≥ {}", format_ratio(r.low))
            };
            let mut verdict = if r.a <= 0.0 && r.b <= 0.0 {
                "neither met the objectives".to_string()
            } else if r.low > 1.0 {
                format!("B sustains more (at least {:.0}% more)", (r.low - 1.0) * 100.0)
            } else if r.high < 1.0 {
                format!("B sustains less (at least {:.0}% less)", (1.0 - r.high) * 100.0)
            } else {
                "cannot tell: the brackets overlap".to_string()
            };
            if fail_below_pct.is_some_and(|p| r.dropped_more_than(p)) {
                verdict.push_str(" — FAIL");
            }
            vec![
                r.id.clone(),
                bracket(r.a, r.a_failed_at),
                bracket(r.b, r.b_failed_at),
                range,
                verdict,
            ]
        })
        .collect();
    Table {
        headers: vec!["configuration", "A req/s", "B req/s", "B/A", "verdict"],
        right: vec![false, true, true, true, false],
        rows,
    }
}
