//! Latency anatomy of application-model requests (issue 15): where a request's time went.
//!
//! The request worker cuts each request into contiguous segments on its own cheap clock
//! (`engine::loops::clock`), so the parts add up to the request's latency: queue wait, app time
//! (the CPU spin), lock wait (inside the busy handler), statement execution, COMMIT (with its
//! fsync) and, with `connection = "per-request"`, opening and configuring the connection.
//! Sums are kept per latency bucket (a quarter of an octave wide), so the share of each part
//! among the slowest 1 % can be found after the workers' buckets are merged, with no
//! per-request storage.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Part {
    App = 0,
    Queue = 1,
    Lock = 2,
    Execute = 3,
    Commit = 4,
    Connect = 5,
}

pub const PARTS: usize = 6;
pub const PART_NAMES: [&str; PARTS] = ["app", "queue", "lock", "execute", "commit", "connect"];

/// Quarter-octave buckets up to 2^44 ns (~4.9 h).
const BUCKETS: usize = 44 * 4;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub count: u64,
    pub total_ns: u64,
    pub parts_ns: [u64; PARTS],
}

/// Per-request part sums, bucketed by the request's total latency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anatomy {
    pub buckets: Vec<Bucket>,
}

impl Default for Anatomy {
    fn default() -> Self {
        Self {
            buckets: vec![Bucket::default(); BUCKETS],
        }
    }
}

fn bucket_of(ns: u64) -> usize {
    if ns < 4 {
        return 0;
    }
    let log = 63 - ns.leading_zeros() as usize;
    let quarter = ((ns >> (log - 2)) & 3) as usize;
    (log * 4 + quarter).min(BUCKETS - 1)
}

impl Anatomy {
    /// One request; `total_ns` is its latency, `parts` its segments (which sum to it).
    #[inline]
    pub fn record(&mut self, total_ns: u64, parts: &[u64; PARTS]) {
        let b = &mut self.buckets[bucket_of(total_ns)];
        b.count += 1;
        b.total_ns += total_ns;
        for (sum, p) in b.parts_ns.iter_mut().zip(parts) {
            *sum += p;
        }
    }

    pub fn merge(&mut self, other: &Anatomy) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            a.count += b.count;
            a.total_ns += b.total_ns;
            for (x, y) in a.parts_ns.iter_mut().zip(&b.parts_ns) {
                *x += y;
            }
        }
    }

    fn sum(buckets: &[Bucket]) -> Bucket {
        let mut s = Bucket::default();
        for b in buckets {
            s.count += b.count;
            s.total_ns += b.total_ns;
            for (x, y) in s.parts_ns.iter_mut().zip(&b.parts_ns) {
                *x += y;
            }
        }
        s
    }

    /// Mean per request (ms) of each part and of the total, and each part's share of the
    /// time of the requests at or above the p99 latency `p99_ns`.
    pub fn summary(&self, p99_ns: u64) -> AnatomyReport {
        let all = Self::sum(&self.buckets);
        let tail = Self::sum(&self.buckets[bucket_of(p99_ns)..]);
        let ms = |ns: u64| {
            if all.count == 0 {
                0.0
            } else {
                ns as f64 / all.count as f64 / 1e6
            }
        };
        let share = |ns: u64| {
            if tail.total_ns == 0 {
                0.0
            } else {
                ns as f64 / tail.total_ns as f64
            }
        };
        let parts = |f: &dyn Fn(u64) -> f64, b: &Bucket| Parts {
            app: f(b.parts_ns[Part::App as usize]),
            queue: f(b.parts_ns[Part::Queue as usize]),
            lock: f(b.parts_ns[Part::Lock as usize]),
            execute: f(b.parts_ns[Part::Execute as usize]),
            commit: f(b.parts_ns[Part::Commit as usize]),
            connect: f(b.parts_ns[Part::Connect as usize]),
        };
        AnatomyReport {
            requests: all.count,
            mean_ms: parts(&ms, &all),
            total_mean_ms: ms(all.total_ns),
            p99_requests: tail.count,
            p99_share: parts(&share, &tail),
        }
    }
}

/// One value per part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Parts {
    pub app: f64,
    pub queue: f64,
    pub lock: f64,
    pub execute: f64,
    pub commit: f64,
    pub connect: f64,
}

impl Parts {
    pub fn values(&self) -> [f64; PARTS] {
        [self.app, self.queue, self.lock, self.execute, self.commit, self.connect]
    }

    pub fn sum(&self) -> f64 {
        self.values().iter().sum()
    }
}

/// The anatomy in the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnatomyReport {
    /// Completed requests the anatomy covers.
    pub requests: u64,
    /// Mean time per request in each part, ms; they add up to `total_mean_ms`.
    pub mean_ms: Parts,
    pub total_mean_ms: f64,
    /// Requests at or above the p99 latency (to the resolution of a quarter octave).
    pub p99_requests: u64,
    /// Each part's share (0..1) of those requests' time; they add up to 1.
    pub p99_share: Parts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_add_up_and_the_tail_is_the_slow_requests() {
        let mut a = Anatomy::default();
        for _ in 0..990 {
            a.record(1_000_000, &[600_000, 0, 0, 300_000, 100_000, 0]);
        }
        let mut b = Anatomy::default();
        for _ in 0..10 {
            b.record(
                100_000_000,
                &[1_000_000, 90_000_000, 5_000_000, 3_000_000, 1_000_000, 0],
            );
        }
        a.merge(&b);
        let r = a.summary(100_000_000);
        assert_eq!(r.requests, 1000);
        assert!((r.mean_ms.sum() - r.total_mean_ms).abs() < 1e-9);
        assert!((r.p99_share.sum() - 1.0).abs() < 1e-9);
        assert_eq!(r.p99_requests, 10);
        assert!((r.p99_share.queue - 0.9).abs() < 1e-9, "{r:?}");
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for ns in (0..40).map(|s| 1u64 << s).flat_map(|v| [v, v + v / 3, v + v / 2]) {
            let b = bucket_of(ns);
            assert!(b >= last, "{ns}");
            last = b;
        }
    }
}
