//! Faults injected into the throwaway cluster while a run is measured (`--fault`), on a
//! thread of their own: at each fault's time it finds the leader, kills, pauses or
//! restarts a node, and times how long the surviving nodes take to name a new leader.
//! Afterwards `report` reads the rest from the run's timeline and verification: the
//! stretch without commits, the failures by kind, p99 before, during and after, and the
//! acknowledged writes lost; and writes a verdict line per fault.

use super::client;
use super::cluster::Cluster;
use crate::config::dqlite::{Fault, FaultKind};
use crate::metrics::ErrorCounts;
use crate::metrics::timeline::RunClock;
use crate::report::model::{FaultReport, RunReport, ScenarioCheck};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the surviving nodes may take to name a new leader before the fault report
/// says there was none.
const LEADER_SEARCH: Duration = Duration::from_secs(30);

/// What the fault thread saw of one fault.
#[derive(Clone, Debug, Default)]
pub(crate) struct Event {
    pub fault: Option<Fault>,
    pub injected_at_s: Option<f64>,
    pub node: String,
    pub error: Option<String>,
    pub new_leader: Option<String>,
    pub time_to_leader_s: Option<f64>,
}

/// A run's faults: to start once the workers are ready, to finish after the run.
pub(crate) struct Faults {
    planned: Vec<Fault>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Event>>>,
    /// What `finish` collected (it runs once).
    done: Option<Vec<Event>>,
}

impl Faults {
    pub(crate) fn new(planned: &[Fault]) -> Self {
        Faults {
            planned: planned.to_vec(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
            done: None,
        }
    }

    pub(crate) fn start(&mut self, cluster: Arc<Cluster>, clock: Arc<RunClock>) {
        if self.planned.is_empty() || self.thread.is_some() {
            return;
        }
        let (planned, stop) = (self.planned.clone(), self.stop.clone());
        self.thread = std::thread::Builder::new()
            .name("dqlite-faults".into())
            .spawn(move || inject_all(&planned, &cluster, &clock, &stop))
            .ok();
    }

    /// Stops faults not yet injected and returns what happened (every planned fault);
    /// `None` when that was already returned.
    pub(crate) fn finish(&mut self) -> Option<Vec<Event>> {
        if self.done.is_some() {
            return None;
        }
        let events = self.collect();
        self.done = Some(events.clone());
        Some(events)
    }

    /// What `finish` returned, once.
    pub(crate) fn take(&mut self) -> Vec<Event> {
        self.finish();
        self.done.take().unwrap_or_default()
    }

    fn collect(&mut self) -> Vec<Event> {
        self.stop.store(true, Ordering::Release);
        let seen = self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default();
        self.planned
            .iter()
            .enumerate()
            .map(|(i, f)| {
                seen.get(i).cloned().unwrap_or_else(|| Event {
                    fault: Some(*f),
                    error: Some("not injected: the run ended first".into()),
                    ..Event::default()
                })
            })
            .collect()
    }
}

fn inject_all(planned: &[Fault], cluster: &Cluster, clock: &RunClock, stop: &AtomicBool) -> Vec<Event> {
    let mut events = Vec::new();
    for f in planned {
        // Wait for measuring to start and reach the fault's time.
        loop {
            if stop.load(Ordering::Acquire) || crate::interrupt::cancelled() {
                return events;
            }
            let now = Instant::now();
            if clock.slot(now).is_some() && clock.seconds_measured(now) >= f.at.as_secs_f64() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        events.push(inject(*f, cluster, clock));
    }
    events
}

fn inject(f: Fault, cluster: &Cluster, clock: &RunClock) -> Event {
    let mut e = Event {
        fault: Some(f),
        ..Event::default()
    };
    let leader = match client::leader(&cluster.nodes, None, Duration::from_secs(5)) {
        Ok(n) => n.addr.clone(),
        Err(err) => {
            e.error = Some(format!("no leader to find before the fault: {err}"));
            return e;
        }
    };
    let Some(leader_index) = cluster.index_of(&leader) else {
        e.error = Some(format!("the leader {leader} is not one of the cluster's nodes"));
        return e;
    };
    let followers: Vec<usize> = (0..cluster.nodes.len()).filter(|&i| i != leader_index).collect();
    let result = match f.kind {
        FaultKind::KillLeader => cluster.kill(leader_index).map(|_| leader_index),
        FaultKind::PauseLeader(_) => cluster.pause(leader_index, true).map(|_| leader_index),
        FaultKind::KillFollower | FaultKind::RestartNode => {
            let mut last = Err("no follower is running".to_string());
            for &i in &followers {
                last = cluster.kill(i).map(|_| i);
                if last.is_ok() {
                    break;
                }
            }
            last
        }
    };
    let at = Instant::now();
    e.injected_at_s = Some(clock.seconds_measured(at));
    let hit = match result {
        Ok(i) => i,
        Err(err) => {
            e.injected_at_s = None;
            e.error = Some(err);
            return e;
        }
    };
    e.node = cluster.nodes[hit].clone();
    match f.kind {
        FaultKind::KillLeader => {
            let others: Vec<String> = followers.iter().map(|&i| cluster.nodes[i].clone()).collect();
            if let Ok(n) = client::leader(&others, None, LEADER_SEARCH) {
                e.time_to_leader_s = Some(at.elapsed().as_secs_f64());
                e.new_leader = Some(n.addr.clone());
            }
        }
        FaultKind::PauseLeader(pause) => {
            // A new leader among the others while the old one is stopped (there may be
            // none if the pause is shorter than an election).
            let others: Vec<String> = followers.iter().map(|&i| cluster.nodes[i].clone()).collect();
            if let Ok(n) = client::leader(&others, None, pause) {
                e.time_to_leader_s = Some(at.elapsed().as_secs_f64());
                e.new_leader = Some(n.addr.clone());
            }
            std::thread::sleep(pause.saturating_sub(at.elapsed()));
            if let Err(err) = cluster.pause(hit, false) {
                e.error = Some(format!("resuming {}: {err}", e.node));
            }
        }
        FaultKind::RestartNode => {
            if let Err(err) = cluster.restart(hit) {
                e.error = Some(format!("restarting {}: {err}", e.node));
            }
        }
        FaultKind::KillFollower => {}
    }
    e
}

/// p99 (µs) of the transactions that completed in timeline entries `range`.
fn p99(report: &RunReport, range: std::ops::Range<usize>) -> Option<f64> {
    let mut merged = crate::metrics::timeline::interval_histogram();
    for entry in report.timeline.get(range)? {
        for g in &entry.groups {
            if let Some(h) = g
                .histogram_v2
                .as_deref()
                .and_then(|t| crate::metrics::decode_histogram(t).ok())
            {
                let _ = merged.add(&h);
            }
        }
    }
    (!merged.is_empty()).then(|| merged.value_at_quantile(0.99) as f64 / 1000.0)
}

fn seconds(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.1} s")
    }
}

/// Fills the report's fault section from the events, the timeline and the verification;
/// counts rows from writes whose outcome was unknown as in doubt rather than unexpected.
pub(crate) fn report(report: &mut RunReport, events: Vec<Event>) {
    let in_doubt: u64 = report.groups.iter().map(|g| g.all_errors().in_doubt()).sum();
    let (lost, unexpected) = report
        .verification
        .as_ref()
        .map(|v| (v.lost, v.tables.iter().map(|t| t.unexpected).sum::<u64>()))
        .unwrap_or((0, 0));
    if let Some(v) = report.verification.as_mut()
        && unexpected > 0
    {
        let ok = unexpected <= in_doubt;
        v.scenario_checks.push(ScenarioCheck {
            name: "writes in doubt".into(),
            ok,
            kind: Default::default(),
            detail: format!(
                "{unexpected} rows no acknowledged write explains; {in_doubt} requests failed with an unknown outcome (leadership lost, connection broken), which may have committed"
            ),
        });
        let only_unexpected = v.lost == 0 && (v.integrity_check == "ok") && v.scenario_checks.iter().all(|c| c.ok);
        v.ok = only_unexpected && ok;
    }
    let interval = report.timeline_interval_s;
    let faults: Vec<FaultReport> = events
        .into_iter()
        .map(|e| {
            let name = e.fault.map(|f| f.to_string()).unwrap_or_default();
            let mut r = FaultReport {
                fault: name.clone(),
                injected_at_s: e.injected_at_s,
                node: e.node,
                error: e.error.clone(),
                new_leader: e.new_leader,
                time_to_leader_s: e.time_to_leader_s,
                lost,
                unexpected,
                in_doubt,
                ..FaultReport::default()
            };
            let Some(at) = e.injected_at_s.filter(|_| interval > 0.0) else {
                r.verdict = format!("{name}: {}", e.error.unwrap_or_else(|| "not injected".into()));
                return r;
            };
            let first = (at / interval).floor() as usize;
            let n = report.timeline.len();
            // The longest run of intervals without a commit that starts at the fault's
            // interval or the next one.
            let mut window = 0usize;
            for start in [first, first + 1] {
                let run = report.timeline.iter().skip(start).take_while(|t| t.ops == 0).count();
                window = window.max(run);
            }
            r.no_commit_window_s = window as f64 * interval;
            let settle = r.time_to_leader_s.map_or(0, |t| (t / interval).ceil() as usize);
            let during_end = (first + window.max(settle) + 2).min(n);
            let mut errors = ErrorCounts::default();
            for t in report.timeline.iter().take(during_end).skip(first) {
                errors.merge(&t.errors);
            }
            r.errors = errors;
            r.p99_before_us = p99(report, 0..first.min(n));
            r.p99_during_us = p99(report, first.min(n)..during_end);
            r.p99_after_us = p99(report, during_end..n);
            r.verdict = verdict(&r, at);
            r
        })
        .collect();
    if let Some(d) = report.dqlite.as_mut() {
        d.faults = faults;
    }
}

fn verdict(r: &FaultReport, at: f64) -> String {
    let kind = r.fault.split('@').next().unwrap_or(&r.fault);
    let failed = r.errors.total();
    let kinds: Vec<String> = r
        .errors
        .by_kind()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} {n}", k.replace('_', " ")))
        .collect();
    let mut s = format!(
        "{kind} at {}: {} without commits, {failed} requests failed{}",
        seconds(at),
        seconds(r.no_commit_window_s),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    );
    if kind == "kill-leader" || kind == "pause-leader" {
        match r.time_to_leader_s {
            Some(t) => s.push_str(&format!(", new leader after {}", seconds(t))),
            None => s.push_str(", no new leader"),
        }
    }
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |us| format!("{:.0} ms", us / 1000.0));
    s.push_str(&format!(
        ", p99 {} / {} / {} before / during / after",
        ms(r.p99_before_us),
        ms(r.p99_during_us),
        ms(r.p99_after_us)
    ));
    if r.lost == 0 {
        s.push_str(", 0 acknowledged writes lost");
    } else {
        s.push_str(&format!(", LOST {} ACKNOWLEDGED WRITES", r.lost));
    }
    if r.unexpected > 0 {
        s.push_str(&format!(
            " ({} rows from {} requests in doubt)",
            r.unexpected, r.in_doubt
        ));
    }
    if let Some(err) = &r.error {
        s.push_str(&format!(" [{err}]"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::timeline::TimelineEntry;

    fn entry(t: f64, ops: u64, not_leader: u64) -> TimelineEntry {
        TimelineEntry {
            t_s: t,
            ops,
            errors: ErrorCounts {
                not_leader,
                ..ErrorCounts::default()
            },
            ..TimelineEntry::default()
        }
    }

    /// The window, the failures and the verdict come from the timeline around the fault.
    #[test]
    fn the_verdict_reads_the_window_and_failures_around_the_fault() {
        let cell = crate::config::matrix::Cell {
            id: "x".into(),
            assignments: Vec::new(),
            scenario: crate::config::Source::open("django").unwrap().parse().unwrap(),
            when: Vec::new(),
        };
        let mut run = crate::engine::driver::empty_report(&cell);
        run.timeline_interval_s = 0.5;
        run.timeline = vec![
            entry(0.5, 10, 0),
            entry(1.0, 10, 0),
            entry(1.5, 2, 3),
            entry(2.0, 0, 5),
            entry(2.5, 0, 1),
            entry(3.0, 8, 0),
            entry(3.5, 9, 0),
        ];
        run.dqlite = Some(Default::default());
        let events = vec![
            Event {
                fault: Some("kill-leader@1s".parse().unwrap()),
                injected_at_s: Some(1.2),
                node: "n1".into(),
                new_leader: Some("n2".into()),
                time_to_leader_s: Some(0.9),
                ..Event::default()
            },
            Event {
                fault: Some("kill-follower@3s".parse().unwrap()),
                error: Some("not injected: the run ended first".into()),
                ..Event::default()
            },
        ];
        report(&mut run, events);
        let f = &run.dqlite.as_ref().unwrap().faults;
        assert_eq!(f[0].no_commit_window_s, 1.0);
        assert_eq!(f[0].errors.not_leader, 9);
        assert!(
            f[0].verdict.starts_with("kill-leader at 1.20 s: 1.00 s without commits, 9 requests failed (not leader 9), new leader after 0.90 s"),
            "{}",
            f[0].verdict
        );
        assert!(f[0].verdict.contains("0 acknowledged writes lost"), "{}", f[0].verdict);
        assert!(f[1].verdict.contains("not injected"), "{}", f[1].verdict);
    }
}
