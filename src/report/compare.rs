//! The table of `litehammer compare` (the comparison itself is `analysis::compare`).

use super::format::{Table, format_rate, format_ratio};
use crate::analysis::compare::{Comparison, Gate, Metric, Row};
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
