//! `litehammer capacity`: the rate search and what a step's run says about the objectives.
//!
//! The search doubles the offered rate from a start until a step fails, halves it until one
//! passes (down to a floor, below which the capacity is 0), then bisects (geometrically)
//! between the highest passing and the lowest failing rate until they are within the
//! resolution. The rate it settles on must have passed twice: the last step re-runs it, and
//! a failure there makes it the new lowest failing rate, so the search goes on below it.
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

    /// The lowest failing rate.
    pub(crate) fn lowest_fail(&self) -> Option<f64> {
        self.history
            .iter()
            .filter(|(_, p)| !p)
            .map(|(r, _)| *r)
            .reduce(f64::min)
    }

    /// The highest passing rate below the lowest failing one (a pass above a fail is noise).
    pub(crate) fn highest_pass(&self) -> Option<f64> {
        let hi = self.lowest_fail().unwrap_or(f64::INFINITY);
        self.history
            .iter()
            .filter(|(r, p)| *p && *r < hi)
            .map(|(r, _)| *r)
            .reduce(f64::max)
    }

    fn passes_at(&self, rate: f64) -> usize {
        self.history.iter().filter(|(r, p)| *p && *r == rate).count()
    }

    pub(crate) fn next(&self) -> Next {
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
            (Some(lo), Some(hi)) if (hi - lo) / lo <= self.resolution => {
                if self.passes_at(lo) >= 2 {
                    Next::Done {
                        capacity: lo,
                        at_ceiling: false,
                    }
                } else {
                    Next::Step(lo)
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
    let committed: u64 = run.groups.iter().map(|g| g.transactions.committed).sum();
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
                .any(|r| *r > 200.0 && tried.iter().filter(|x| *x == r).count() == 2)
        );
        assert!((200.0 / 1.1..=200.0).contains(&capacity), "{capacity} from {tried:?}");
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
