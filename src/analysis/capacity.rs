//! `litehammer capacity`: the rate search and what a step's run says about the objectives.
//!
//! The search doubles the offered rate from a start until a step fails, halves it until one
//! passes (down to a floor, below which the capacity is 0), then bisects (geometrically)
//! between the highest passing and the lowest failing rate until they are within the
//! resolution. A rate's outcome is the majority of its steps: a tie is run again, and so is
//! a single failure below a rate that passed (noise, or too few requests for a percentile).
//! When the bracket is narrow, both its ends must hold twice: the capacity passed twice, and
//! the rate above it failed twice; the end in doubt is run again, so one noisy step moves
//! the search no more than one step.
//! A step passes when the run completed and verified, the achieved rate kept up with the
//! offered one, and every objective held.

use crate::config::slo::Slo;
use crate::metrics::decode_histogram;
use crate::report::model::RunReport;
use crate::report::model::capacity::{CapacityReport, CapacityResult, CapacityStep};

/// A step whose committed requests (plus one per worker, whose last arrival may fall just
/// past the stop) fall below this share of the offered ones did not keep up: arrivals queued
/// faster than they were served, and the requests still queued at the stop have no latency
/// recorded, so the step fails whatever its percentiles say.
pub(crate) const KEEP_UP: f64 = 0.95;

/// Where the search is, from the steps so far (rates with their outcome).
#[derive(Clone, Debug, Default)]
pub(crate) struct Search {
    start: f64,
    floor: f64,
    ceiling: f64,
    resolution: f64,
    history: Vec<(f64, bool)>,
}

/// What the search wants next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Next {
    /// Run a step at this offered rate.
    Step(f64),
    /// Done: the capacity (0 when even the floor failed), and whether it is only a lower
    /// bound (the ceiling passed).
    Done { capacity: f64, at_ceiling: bool },
}

impl Search {
    /// `start`: the first rate; `floor`/`ceiling`: the lowest and highest rates tried;
    /// `resolution`: the fraction at which the bracket is narrow enough.
    pub(crate) fn new(start: f64, floor: f64, ceiling: f64, resolution: f64) -> Self {
        Search {
            start: start.clamp(floor, ceiling),
            floor,
            ceiling,
            resolution,
            history: Vec::new(),
        }
    }

    pub(crate) fn record(&mut self, rate: f64, passed: bool) {
        self.history.push((rate, passed));
    }

    /// Passes and failures at `rate`.
    fn tally(&self, rate: f64) -> (usize, usize) {
        self.history.iter().filter(|(r, _)| *r == rate).fold(
            (0, 0),
            |(p, f), (_, passed)| {
                if *passed { (p + 1, f) } else { (p, f + 1) }
            },
        )
    }

    fn rates(&self) -> Vec<f64> {
        let mut rates: Vec<f64> = self.history.iter().map(|(r, _)| *r).collect();
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        rates
    }

    /// The lowest rate that failed more often than it passed.
    pub(crate) fn lowest_fail(&self) -> Option<f64> {
        self.rates().into_iter().find(|r| {
            let (p, f) = self.tally(*r);
            f > p
        })
    }

    /// The highest rate below the lowest failing one that passed more often than it failed
    /// (a pass above a failure is noise).
    pub(crate) fn highest_pass(&self) -> Option<f64> {
        let hi = self.lowest_fail().unwrap_or(f64::INFINITY);
        self.rates().into_iter().rev().find(|r| {
            let (p, f) = self.tally(*r);
            *r < hi && p > f
        })
    }

    pub(crate) fn next(&self) -> Next {
        // A rate that passed as often as it failed is run again.
        if let Some(r) = self.rates().into_iter().find(|r| {
            let (p, f) = self.tally(*r);
            p == f
        }) {
            return Next::Step(r);
        }
        // A single failure below a rate that passed contradicts it: it is run again before the
        // search trusts it (noise on a busy machine, or too few requests for the percentile).
        if let Some(hi) = self.lowest_fail() {
            let (_, fails) = self.tally(hi);
            let passed_above = self.rates().into_iter().any(|r| {
                let (p, f) = self.tally(r);
                r > hi && p > f
            });
            if fails < 2 && passed_above {
                return Next::Step(hi);
            }
        }
        match (self.highest_pass(), self.lowest_fail()) {
            (None, None) => Next::Step(self.start),
            (Some(lo), None) if lo >= self.ceiling => Next::Done {
                capacity: lo,
                at_ceiling: true,
            },
            (Some(lo), None) => Next::Step((lo * 2.0).min(self.ceiling)),
            (None, Some(hi)) if hi <= self.floor => Next::Done {
                capacity: 0.0,
                at_ceiling: false,
            },
            (None, Some(hi)) => Next::Step((hi / 2.0).max(self.floor)),
            // Narrow enough: both ends of the bracket must hold twice (the capacity passed,
            // the rate above it failed), else the end in doubt is run again.
            (Some(lo), Some(hi)) if (hi - lo) / lo <= self.resolution => {
                if self.tally(lo).0 < 2 {
                    Next::Step(lo)
                } else if self.tally(hi).1 < 2 {
                    Next::Step(hi)
                } else {
                    Next::Done {
                        capacity: lo,
                        at_ceiling: false,
                    }
                }
            }
            (Some(lo), Some(hi)) => Next::Step(round_rate((lo * hi).sqrt())),
        }
    }
}

/// Rates with three significant digits, so that steps read well and repeat exactly.
fn round_rate(r: f64) -> f64 {
    if r <= 0.0 {
        return r;
    }
    let scale = 10f64.powi(2 - r.log10().floor() as i32);
    (r * scale).round() / scale
}

/// A step's figures from its run, and whether the objectives held.
pub(crate) fn judge(run: &RunReport, offered: f64, slo: &[Slo]) -> CapacityStep {
    // Each worker's schedule may leave its last arrival just past the stop: up to one
    // request per worker is not a shortfall.
    let workers: u32 = run.groups.iter().map(|g| g.workers).sum();
    // Served requests, including those whose script rolled back on purpose.
    let committed: u64 = run
        .groups
        .iter()
        .map(|g| g.transactions.committed + g.transactions.rolled_back_by_script)
        .sum();
    let failed: u64 = run.groups.iter().map(|g| g.transactions.rolled_back).sum();
    let achieved = if run.measured_s > 0.0 {
        committed as f64 / run.measured_s
    } else {
        0.0
    };
    let mut merged = crate::metrics::new_histogram();
    for g in &run.groups {
        if let Ok(h) = decode_histogram(&g.transactions.histogram_v2) {
            let _ = merged.add(&h);
        }
    }
    let at = |p: f64| {
        if merged.is_empty() {
            0.0
        } else {
            merged.value_at_quantile(p / 100.0) as f64 / 1e6
        }
    };
    let error_share = if committed + failed == 0 {
        0.0
    } else {
        failed as f64 / (committed + failed) as f64
    };
    let mut step = CapacityStep {
        offered_per_s: offered,
        achieved_per_s: achieved,
        p50_ms: at(50.0),
        p99_ms: at(99.0),
        slo_percentile_ms: None,
        error_share,
        passed: false,
        failed: None,
    };
    // In order: the run itself, the error objective, whether it kept up, then latency.
    let mut why = None;
    if let Some(e) = &run.error {
        why = Some(format!("the run failed: {e}"));
    } else if run.verification.as_ref().is_some_and(|v| !v.ok) {
        why = Some("verification failed".to_string());
    }
    for objective in slo {
        if let (None, Slo::Errors { share }) = (&why, objective)
            && error_share >= *share
        {
            why = Some(format!("errors {:.2} % ≥ {} %", error_share * 100.0, share * 100.0));
        }
    }
    if why.is_none() && committed == 0 {
        why = Some("no request committed".to_string());
    } else if why.is_none() && ((committed + u64::from(workers)) as f64) < KEEP_UP * offered * run.measured_s {
        why = Some(format!(
            "achieved {achieved:.1}/s of {offered}/s offered (below {:.0} %): requests queued faster than they were served",
            KEEP_UP * 100.0
        ));
    }
    for objective in slo {
        if let (None, Slo::Latency { percentile, limit }) = (&why, objective) {
            let ms = at(*percentile);
            if *percentile != 50.0 && *percentile != 99.0 {
                step.slo_percentile_ms = Some(ms);
            }
            let limit_ms = limit.as_secs_f64() * 1e3;
            if ms >= limit_ms {
                why = Some(format!("p{percentile} {ms:.1} ms ≥ {limit_ms} ms"));
            }
        }
    }
    step.passed = why.is_none();
    step.failed = why;
    step
}

/// A configuration's result from its search and steps.
pub(crate) fn result(id: &str, search: &Search, steps: Vec<CapacityStep>, budget_left: bool) -> CapacityResult {
    let next = search.next();
    let settled = matches!(next, Next::Done { .. });
    let (capacity, at_ceiling) = match next {
        Next::Done { capacity, at_ceiling } => (capacity, at_ceiling),
        // Out of budget (or interrupted): the highest rate that passed, confirmed or not.
        Next::Step(_) => (search.highest_pass().unwrap_or(0.0), false),
    };
    let failed_at = search.lowest_fail();
    let why_failed = failed_at
        .and_then(|r| steps.iter().find(|s| s.offered_per_s == r && !s.passed))
        .and_then(|s| s.failed.clone());
    let reason = match (capacity > 0.0, at_ceiling, settled, &why_failed) {
        (false, _, _, Some(w)) => format!("at the lowest rate tried: {w}"),
        (false, _, _, None) => "the search ended before any step passed".to_string(),
        (true, true, _, _) => "the highest rate tried passed: the capacity is at least this".to_string(),
        (true, false, true, Some(w)) => format!("above it: {w}"),
        (true, false, _, _) if !budget_left => "the time budget ran out before the search settled".to_string(),
        (true, false, _, _) => "the search was stopped before it settled".to_string(),
    };
    CapacityResult {
        id: id.to_string(),
        capacity_per_s: capacity,
        failed_at_per_s: failed_at,
        settled,
        reason,
        steps,
    }
}

/// The verdict lines of a capacity report: each configuration's capacity, the best first,
/// and the others as a ratio of it.
pub(crate) fn verdict(report: &CapacityReport) -> Vec<String> {
    let slo = report.slo.join(", ");
    let mut lines = vec![format!(
        "capacity at {slo} (the highest offered rate that met them twice, to within {:.0} %):",
        report.resolution * 100.0
    )];
    let mut sorted: Vec<&CapacityResult> = report.configurations.iter().collect();
    sorted.sort_by(|a, b| b.capacity_per_s.total_cmp(&a.capacity_per_s));
    let best = sorted.first().map_or(0.0, |r| r.capacity_per_s);
    for r in sorted {
        let settled = if r.settled { "" } else { " (not settled)" };
        let line = if r.capacity_per_s <= 0.0 {
            format!("{}: no rate met them{settled} ({})", r.id, r.reason)
        } else if r.capacity_per_s == best {
            format!("{} sustains {} req/s{settled}", r.id, show_rate(r.capacity_per_s))
        } else {
            format!(
                "{} sustains {} req/s{settled} ({:.1}× less)",
                r.id,
                show_rate(r.capacity_per_s),
                best / r.capacity_per_s
            )
        };
        lines.push(line);
    }
    lines
}

/// The crash trials of a configuration of a capacity report (on its run at capacity).
fn durability_of<'a>(
    report: &'a crate::report::model::Report,
    id: &str,
) -> Option<&'a crate::report::model::durability::Durability> {
    report
        .runs
        .iter()
        .filter(|r| r.id == id)
        .find_map(|r| r.durability.as_ref())
}

/// The configuration to apply from a capacity report: the highest capacity; when the search
/// ran with `--durability`, the highest among those whose crash trials lost nothing. `None`
/// when no configuration met the objectives (or none that loses nothing did).
pub(crate) fn recommend(report: &crate::report::model::Report) -> Option<String> {
    let cap = report.capacity.as_ref()?;
    let crashed = cap
        .configurations
        .iter()
        .any(|c| durability_of(report, &c.id).is_some());
    cap.configurations
        .iter()
        .filter(|c| c.capacity_per_s > 0.0)
        .filter(|c| !crashed || durability_of(report, &c.id).is_some_and(super::decision::loses_nothing))
        .max_by(|a, b| a.capacity_per_s.total_cmp(&b.capacity_per_s))
        .map(|c| c.id.clone())
}

/// With `--durability`: which capacity loses nothing, and what the highest one may lose.
pub(crate) fn durability_verdict(report: &crate::report::model::Report) -> Vec<String> {
    let Some(cap) = &report.capacity else {
        return Vec::new();
    };
    if !cap
        .configurations
        .iter()
        .any(|c| durability_of(report, &c.id).is_some())
    {
        return Vec::new();
    }
    let best = cap
        .configurations
        .iter()
        .filter(|c| c.capacity_per_s > 0.0)
        .max_by(|a, b| a.capacity_per_s.total_cmp(&b.capacity_per_s));
    let safe = recommend(report).and_then(|id| cap.configurations.iter().find(|c| c.id == id));
    let mut lines = Vec::new();
    match safe {
        Some(s) => lines.push(format!(
            "loses nothing: {} sustains {} req/s and lost no acknowledged commit on power loss or a process kill ({})",
            s.id,
            show_rate(s.capacity_per_s),
            super::decision::trials_words(report)
        )),
        None => lines.push(
            "loses nothing: none — no configuration that met the objectives came through its crash trials without a loss"
                .into(),
        ),
    }
    if let Some(b) = best.filter(|b| safe.is_none_or(|s| s.id != b.id)) {
        let lost = durability_of(report, &b.id)
            .map(|d| {
                let most = d.results.iter().map(|r| r.max_lost).max().unwrap_or(0);
                format!("it lost up to {most} acknowledged commit(s) in a crash trial")
            })
            .unwrap_or_else(|| "it had no crash trials".into());
        let versus = safe.map_or(String::new(), |s| {
            format!(", {:.2}× the capacity of {}", b.capacity_per_s / s.capacity_per_s, s.id)
        });
        lines.push(format!(
            "highest capacity: {} sustains {} req/s{versus}; {lost}",
            b.id,
            show_rate(b.capacity_per_s)
        ));
    }
    lines
}

/// A rate as the verdict writes it.
pub(crate) fn show_rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{}", round_rate(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a pass function; returns its result and the steps tried.
    fn search(mut passes: impl FnMut(f64) -> bool, max_steps: usize) -> (Next, Vec<f64>) {
        let mut s = Search::new(10.0, 1.0, 100_000.0, 0.1);
        let mut tried = Vec::new();
        for _ in 0..max_steps {
            match s.next() {
                Next::Step(r) => {
                    tried.push(r);
                    s.record(r, passes(r));
                }
                done => return (done, tried),
            }
        }
        (s.next(), tried)
    }

    #[test]
    fn the_bracket_only_narrows_and_the_search_settles_within_the_resolution() {
        let knee = 237.0;
        let mut s = Search::new(10.0, 1.0, 100_000.0, 0.1);
        let (mut lo_seen, mut hi_seen) = (0.0, f64::INFINITY);
        let mut steps = 0;
        while let Next::Step(r) = s.next() {
            s.record(r, r <= knee);
            let lo = s.highest_pass().unwrap_or(0.0);
            let hi = s.lowest_fail().unwrap_or(f64::INFINITY);
            assert!(
                lo >= lo_seen && hi <= hi_seen,
                "the bracket widened at {r}: [{lo}, {hi}]"
            );
            (lo_seen, hi_seen) = (lo, hi);
            steps += 1;
            assert!(steps < 40, "the search does not end");
        }
        let Next::Done { capacity, at_ceiling } = s.next() else {
            unreachable!()
        };
        assert!(!at_ceiling);
        assert!(capacity <= knee && capacity >= knee / 1.1, "{capacity} vs knee {knee}");
    }

    /// A synthetic target whose p99 rises with the offered rate as a queue's does
    /// (10 ms / (1 - rate / 500)): with `p99 < 50 ms` the knee is at 400 req/s.
    #[test]
    fn a_queue_like_target_gives_its_knee() {
        let p99_ms = |rate: f64| {
            if rate >= 500.0 {
                f64::INFINITY
            } else {
                10.0 / (1.0 - rate / 500.0)
            }
        };
        let (done, tried) = search(|r| p99_ms(r) < 50.0, 60);
        let Next::Done { capacity, .. } = done else {
            panic!("not settled after {tried:?}")
        };
        assert!((400.0 / 1.1..=400.0).contains(&capacity), "{capacity} from {tried:?}");
    }

    #[test]
    fn a_configuration_that_never_meets_the_objectives_has_capacity_zero() {
        let (done, tried) = search(|_| false, 60);
        assert_eq!(
            done,
            Next::Done {
                capacity: 0.0,
                at_ceiling: false
            }
        );
        // Halved from the start down to the floor, and no further.
        assert_eq!(tried.last(), Some(&1.0));
        assert!(tried.windows(2).all(|w| w[1] < w[0]), "{tried:?}");
    }

    #[test]
    fn a_failed_confirmation_moves_the_capacity_down() {
        // Above 200 req/s a rate passes once and fails when it is re-run (noise at the edge):
        // no rate above 200 can be confirmed, so the capacity settles at or below it.
        let mut tried_before = Vec::new();
        let (done, tried) = search(
            |r| {
                let again = tried_before.contains(&r);
                tried_before.push(r);
                r <= 200.0 || (!again && r < 1000.0)
            },
            80,
        );
        let Next::Done { capacity, .. } = done else {
            panic!("not settled: {tried:?}")
        };
        assert!(
            tried
                .iter()
                .any(|r| *r > 200.0 && tried.iter().filter(|x| *x == r).count() >= 2)
        );
        assert!((200.0 / 1.1..=200.0).contains(&capacity), "{capacity} from {tried:?}");
    }

    #[test]
    fn a_single_failure_below_a_pass_is_run_again() {
        // The first step, at 10/s, fails by noise; the knee is at 100/s. The bracket closes
        // between 9.17 and 10, but the failure that bounds it happened once: 10 is run again,
        // passes, and the search goes on up to the knee.
        let mut noisy = true;
        let (done, tried) = search(
            |r| {
                if noisy {
                    noisy = false;
                    return false;
                }
                r <= 100.0
            },
            80,
        );
        let Next::Done { capacity, .. } = done else {
            panic!("not settled: {tried:?}")
        };
        assert!(tried.iter().filter(|r| **r == 10.0).count() >= 2, "{tried:?}");
        assert!((100.0 / 1.1..=100.0).contains(&capacity), "{capacity} from {tried:?}");
    }

    #[test]
    fn at_the_ceiling_the_capacity_is_a_lower_bound() {
        let mut s = Search::new(10.0, 1.0, 80.0, 0.1);
        while let Next::Step(r) = s.next() {
            s.record(r, true);
        }
        assert_eq!(
            s.next(),
            Next::Done {
                capacity: 80.0,
                at_ceiling: true
            }
        );
    }

    #[test]
    fn rates_keep_three_significant_digits() {
        assert_eq!(round_rate(123.456), 123.0);
        assert_eq!(round_rate(0.012345), 0.0123);
        assert_eq!(round_rate(98765.0), 98800.0);
    }
}
