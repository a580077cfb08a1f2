//! What the table cannot show, one line each: failures, checks, starved workers, WAL growth,
//! the latency anatomy. The terminal, Markdown and HTML all print these.

use super::format::format_us;
use super::model::{CheckKind, GroupReport, RunReport};

/// The replica's line: the lag distribution (commit on the primary → visible on the
/// replica), stale reads, the versions.
pub(crate) fn replica_line(r: &super::model::backup::ReplicaReport) -> String {
    let secs = |ms: f64| format!("{:.2} s", ms / 1000.0);
    let lag = if r.lag.count == 0 {
        "no commit became visible while it read".to_string()
    } else {
        format!(
            "lag p50 {}, p90 {}, p99 {}, max {} over {} commit(s) seen in {} advance(s)",
            secs(r.lag.p50_ms),
            secs(r.lag.p90_ms),
            secs(r.lag.p99_ms),
            secs(r.lag.max_ms),
            r.lag.count,
            r.advances
        )
    };
    let version = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    let poll = r.settings.get("poll_interval").and_then(|v| v.as_str()).unwrap_or("?");
    format!(
        "replica {lag} (commit on the primary → visible to {} reader(s), litestream-vfs {}, litestream {}, poll {poll}); stale reads {} of {}; readers' CPU {:.2} s",
        r.readers,
        version(&r.vfs_version),
        version(&r.litestream_version),
        r.stale_reads,
        r.reads,
        r.cpu_s
    )
}

/// What the table cannot show: failures, failed checks, starved workers, WAL growth.
pub(crate) fn notes(run: &RunReport) -> Vec<String> {
    let mut notes = Vec::new();
    // With rounds, the round too, as in the table: each round's run has its own notes.
    let id = super::format::round_label(run);
    if let Some(e) = &run.error {
        notes.push(format!("{}: FAILED: {e}", id));
    }
    for w in &run.when {
        notes.push(format!("{}: [[when]] set {w}", id));
    }
    for g in &run.groups {
        if let Some(note) = starvation(g) {
            notes.push(format!("{}: {note}", id));
        }
        // Nothing to say where the handler never ran (a read-only or uncontended group).
        if let (Some(calls @ 1..), Some(wait_ms)) = (g.busy_handler_calls, g.busy_wait_ms) {
            let wait = format_us(wait_ms * 1000.0);
            notes.push(format!(
                "{}: group `{}`: busy handler called {calls} times, {wait} waited in all (waits inside SQLite for \
                 a lock; the table's `busy` counts the SQLITE_BUSY errors that reached the app)",
                id, g.name
            ));
        }
        if g.transactions.rolled_back_by_script > 0 {
            notes.push(format!(
                "{}: group `{}`: {} requests succeeded but their script rolled back all they did \
                 (ROLLBACK or commit = false): served, not counted as committed nor in tx/s",
                id, g.name, g.transactions.rolled_back_by_script
            ));
        }
        notes.extend(crate::report::anatomy::note(run, g));
    }
    if let Some(v) = &run.verification {
        for c in &v.scenario_checks {
            let verdict = match (c.kind, c.ok) {
                (CheckKind::Metric, true) => "holds",
                (CheckKind::Metric, false) => "does NOT hold",
                (CheckKind::Sql, true) => "ok",
                (CheckKind::Sql, false) => "FAILED",
            };
            notes.push(format!("{}: check `{}`: {verdict}, {}", id, c.name, c.detail));
        }
    }
    if let Some(d) = &run.dqlite {
        let s = d.settings.as_ref();
        notes.push(format!(
            "{}: dqlite: {}; read back journal_mode={}, synchronous={}, foreign_keys={}; SQLITE_BUSY retried for {} s by litehammer's client",
            id,
            d.cluster,
            s.map_or("?".to_string(), |s| s.journal_mode.to_string()),
            s.map_or("?".to_string(), |s| s.synchronous.to_string()),
            s.map_or("?".to_string(), |s| s.foreign_keys.to_string()),
            d.busy_retry_s
        ));
        for f in &d.faults {
            notes.push(format!("{}: fault {}", id, f.verdict));
        }
    }
    if let Some(r) = &run.replica {
        notes.push(format!("{}: {}", id, replica_line(r)));
    }
    let resets = run.timeline.last().map_or(0, |e| e.wal_resets);
    // Nothing to say where the WAL never grew (a read-only run).
    if run
        .sqlite
        .as_ref()
        .is_some_and(|s| s.journal_mode == crate::config::sqlite::JournalMode::Wal)
        && (run.database.wal_bytes_max > 0 || resets > 0)
    {
        notes.push(format!(
            "{}: WAL grew to {:.1} MB; {resets} checkpoint restart(s) while measuring",
            id,
            run.database.wal_bytes_max as f64 / 1e6
        ));
    }
    notes
}

/// Open-loop groups: the rate asked for, the rate achieved, and how many were late or skipped.
pub(crate) fn open_loop(run: &RunReport) -> Vec<String> {
    run.groups
        .iter()
        .filter_map(|g| {
            let ol = g.open_loop.as_ref()?;
            Some(format!(
                "{}: group `{}`: target {} tx/s, achieved {} tx/s, {} late, {} skipped",
                super::format::run_label(run),
                g.name,
                super::format::format_rate(ol.target_rate),
                super::format::format_rate(ol.achieved_rate),
                ol.late,
                ol.skipped
            ))
        })
        .collect()
}

/// A group whose slowest worker committed less than half of its fastest: SQLite's busy
/// handler is not fair.
fn starvation(g: &GroupReport) -> Option<String> {
    if g.per_worker.len() < 2 || g.fairness.min_max_ratio >= 0.5 || g.uneven_by_design() {
        return None;
    }
    let slowest = g.per_worker.iter().min_by_key(|w| w.transactions)?;
    let fastest = g.per_worker.iter().max_by_key(|w| w.transactions)?;
    let worst_wait = g.per_worker.iter().map(|w| w.max_latency_us).fold(0.0, f64::max);
    Some(format!(
        "group `{}` is unfair: worker {} committed {} transactions, worker {} {} (Jain index {:.2}); longest transaction {}",
        g.name,
        slowest.id,
        slowest.transactions,
        fastest.id,
        fastest.transactions,
        g.fairness.jain_index,
        format_us(worst_wait)
    ))
}

#[cfg(test)]
mod tests {
    use crate::report::model::Report;

    #[test]
    fn workers_uneven_by_design_are_not_called_unfair() {
        let report: Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report.json")).expect("fixture is a report");
        let mut g = report.runs[0].groups[0].clone();
        g.per_worker[1].transactions = 100;
        g.fairness.min_max_ratio = 100.0 / 4775.0;
        assert!(super::starvation(&g).is_some_and(|n| n.contains("is unfair")));
        // Clients bound to the first free process, and per-process queues with fewer clients
        // than processes: uneven on purpose.
        let app = |queue: &str, clients: u32| {
            serde_json::from_value(serde_json::json!({
                "clients": clients, "connection": "persistent", "isolation": "process", "pids": [1, 2],
                "connections_opened": 0, "queue": queue, "threads_per_process": 1,
                "queue_wait_us": {"min": 0.0, "mean": 0.0, "stddev": 0.0, "p50": 0.0, "p90": 0.0,
                                  "p99": 0.0, "p99_9": 0.0, "max": 0.0},
                "anatomy": {"requests": 0, "mean_ms": {"app": 0.0, "queue": 0.0, "lock": 0.0, "execute": 0.0,
                            "commit": 0.0, "connect": 0.0}, "total_mean_ms": 0.0, "p99_requests": 0,
                            "p99_share": {"app": 0.0, "queue": 0.0, "lock": 0.0, "execute": 0.0,
                                          "commit": 0.0, "connect": 0.0}},
                "cpu_ms_per_request": 0.0
            }))
            .unwrap()
        };
        for (queue, clients, by_design) in [
            ("first-free", 16, true),
            ("per-process", 1, true),
            ("per-process", 16, false),
            ("shared", 1, false),
        ] {
            g.app = Some(app(queue, clients));
            assert_eq!(g.uneven_by_design(), by_design, "{queue} {clients}");
            assert_eq!(super::starvation(&g).is_none(), by_design, "{queue} {clients}");
        }
    }

    #[test]
    fn a_rounds_notes_name_the_round_as_its_table_row_does() {
        let mut report: Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report.json")).expect("fixture is a report");
        let run = &mut report.runs[0];
        run.error = Some("boom".into());
        let id = run.id.clone();
        assert!(super::notes(run).iter().any(|n| n == &format!("{id}: FAILED: boom")));
        // A read-only run's WAL and busy handler say nothing: no note for them.
        run.database.wal_bytes_max = 0;
        run.timeline.clear();
        run.groups.iter_mut().for_each(|g| g.busy_handler_calls = Some(0));
        assert!(
            super::notes(run)
                .iter()
                .all(|n| !n.contains("WAL grew") && !n.contains("busy handler")),
            "{:?}",
            super::notes(run)
        );
        run.repeat = Some(2);
        let notes = super::notes(run);
        assert!(!notes.is_empty());
        assert!(notes.iter().all(|n| n.starts_with(&format!("{id} #2: "))), "{notes:?}");
        assert_eq!(crate::report::format::run_label(run), format!("{id} #2"));
    }
}
