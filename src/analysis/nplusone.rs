//! The `n-plus-one` verdict: for each run with ops `n_plus_one_N` and `join_N`, what
//! rendering a page with 1 + N queries costs over one JOIN, per page.

use crate::report::format::{format_us, run_label};
use crate::report::model::{OpReport, RunReport};

/// One line per run and N, e.g. `target=sqlite: N=100: 1+N queries 412µs vs JOIN 95µs per
/// page (p50): N+1 costs +317µs per page (4.3×)`.
pub(crate) fn findings(runs: &[RunReport]) -> Vec<String> {
    let mut out = Vec::new();
    for run in runs {
        let ops: Vec<&OpReport> = run.groups.iter().flat_map(|g| &g.ops).collect();
        let find = |name: &str| ops.iter().find(|o| o.name == name && o.count > 0).copied();
        let mut ns: Vec<u64> = ops
            .iter()
            .filter_map(|o| o.name.strip_prefix("n_plus_one_")?.parse().ok())
            .collect();
        ns.sort_unstable();
        for n in ns {
            let (Some(many), Some(join)) = (find(&format!("n_plus_one_{n}")), find(&format!("join_{n}"))) else {
                continue;
            };
            let (a, b) = (many.latency_us.p50, join.latency_us.p50);
            let ratio = if b > 0.0 { a / b } else { f64::INFINITY };
            out.push(format!(
                "{}: N={n}: 1+N queries {} vs one JOIN {} per page (p50; p99 {} vs {}): N+1 costs {}{} per page ({ratio:.1}×), {} per extra query",
                run_label(run),
                format_us(a),
                format_us(b),
                format_us(many.latency_us.p99),
                format_us(join.latency_us.p99),
                if a >= b { "+" } else { "-" },
                format_us((a - b).abs()),
                format_us((a - b).max(0.0) / n as f64),
            ));
        }
    }
    out
}
