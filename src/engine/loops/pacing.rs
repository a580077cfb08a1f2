//! Open-loop pacing: each worker's schedule of intended start times, and an accurate wait.

use crate::config::Arrival;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::workload::Pacing;
use crate::workload::rng::Rng;
use std::time::{Duration, Instant};

/// Open-loop schedule: intended start times at a fixed or Poisson rate.
pub(crate) struct Pacer {
    next: Instant,
    mean_gap_s: f64,
    arrival: Arrival,
    rng: Rng,
}

impl Pacer {
    /// `index_in_group` staggers the workers of a group; `worker` (the run-wide index) and
    /// `seed` make the Poisson draws reproducible.
    pub(crate) fn new(p: Pacing, index_in_group: u32, seed: u64, worker: u32) -> Self {
        let mean_gap_s = 1.0 / p.per_worker_rate;
        // Stagger the workers of a group evenly across one gap.
        let offset = mean_gap_s * index_in_group as f64 / p.workers as f64;
        let rng = Rng::derive(seed, 0x5EED_0000_0000 + worker as u64);
        Self {
            next: Instant::now() + Duration::from_secs_f64(offset),
            mean_gap_s,
            arrival: p.arrival,
            rng,
        }
    }

    /// The next intended start time.
    pub(crate) fn next_start(&mut self) -> Instant {
        let at = self.next;
        let gap = match self.arrival {
            Arrival::Fixed => self.mean_gap_s,
            Arrival::Poisson => -self.mean_gap_s * (1.0 - self.rng.unit()).ln(),
        };
        self.next += Duration::from_secs_f64(gap);
        at
    }
}

/// Sleeps until `at` (coarse sleep, then a short spin for sub-millisecond accuracy).
/// Returns false if the run stopped meanwhile.
pub(crate) fn wait_until(at: Instant, phase: &PhaseFlag) -> bool {
    loop {
        let now = Instant::now();
        if now >= at {
            return true;
        }
        if phase.get() == Phase::Stop {
            return false;
        }
        let left = at - now;
        if left > Duration::from_micros(300) {
            std::thread::sleep((left - Duration::from_micros(200)).min(Duration::from_millis(20)));
        } else {
            std::thread::yield_now();
        }
    }
}
