//! The backup verdict of each run with a backup, against the same configuration without one:
//! `litestream: writers p99 +18 %, WAL ≤ 4 MB, lag ≤ 1.2 s (37 commits); restore 0.4 s, verified`.

use crate::report::model::{Report, RunReport};

/// One line per run that had a backup.
pub(crate) fn verdicts(report: &Report) -> Vec<String> {
    report
        .runs
        .iter()
        .filter_map(|run| Some((run, run.backup.as_ref()?)))
        .map(|(run, b)| {
            let mut parts = Vec::new();
            if let Some((group, p99)) = writer_p99(run) {
                let base = baseline(report, run).and_then(writer_p99).map(|(_, p)| p);
                parts.push(match base {
                    Some(base) if base > 0.0 => format!("{group} p99 {:+.0} %", (p99 / base - 1.0) * 100.0),
                    _ => format!("{group} p99 {}", crate::report::format::format_us(p99)),
                });
            }
            parts.push(format!(
                "WAL ≤ {}",
                crate::report::format::format_bytes(run.database.wal_bytes_max)
            ));
            if let Some(lag) = b.lag_at_stop {
                let ms = lag.ms.map(|ms| format!("{:.1} s ", ms / 1000.0)).unwrap_or_default();
                parts.push(format!("lag ≤ {ms}({} commits)", lag.commits_missing));
            }
            if let Some(lag) = b.lag_after_final_sync {
                parts.push(format!("{} missing after the final sync", lag.commits_missing));
            }
            let verdict = if b.restore.ok && b.error.is_none() {
                "verified".to_string()
            } else {
                format!("NOT VERIFIED: {}", b.error.as_deref().unwrap_or(&b.restore.detail))
            };
            let killed = if b.killed { " after SIGKILL" } else { "" };
            let id = if run.id == format!("backup={}", b.method) {
                String::new()
            } else {
                format!(" [{}]", run.id)
            };
            format!(
                "{}{id}: {}; restore{killed} {:.2} s, {verdict}",
                b.method,
                parts.join(", "),
                b.restore_s
            )
        })
        .collect()
}

/// The writers' p99 (µs): the group named `writers`, else the first group.
fn writer_p99(run: &RunReport) -> Option<(String, f64)> {
    let g = run
        .groups
        .iter()
        .find(|g| g.name == "writers")
        .or_else(|| run.groups.first())?;
    Some((g.name.clone(), g.transactions.latency_us.p99))
}

/// The run with the same matrix values except `backup = none`.
fn baseline<'a>(report: &'a Report, run: &RunReport) -> Option<&'a RunReport> {
    let others = |r: &RunReport| {
        let mut m = r.matrix.clone();
        m.remove("backup");
        m
    };
    report
        .runs
        .iter()
        .find(|r| r.backup.is_none() && r.repeat == run.repeat && others(r) == others(run) && !r.groups.is_empty())
}
