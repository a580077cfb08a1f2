//! The hot path's stopwatch. Reading `Instant` costs ~25 ns per call in a VM (a vDSO
//! `clock_gettime`), which is several percent of a 2 µs point SELECT timed twice per
//! operation. Where the kernel itself keeps time with the CPU's invariant time-stamp counter
//! (x86_64, clocksource `tsc`), the worker reads the counter directly (~10 ns) and scales
//! ticks to nanoseconds with a factor calibrated once against `Instant`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A monotonic tick source; differences of two readings convert to nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// Nanoseconds per tick in 32.32 fixed point; 0 when reading `Instant` instead.
    ns_per_tick_q32: u64,
    origin: Instant,
}

const CALIBRATION: Duration = Duration::from_millis(20);

impl Clock {
    /// The process-wide clock, calibrated on first use (~20 ms when the TSC is used).
    pub(crate) fn get() -> Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        *CLOCK.get_or_init(|| {
            if tsc_is_trusted() {
                Self::calibrate()
            } else {
                Self::instant()
            }
        })
    }

    /// A clock that reads `Instant` (the portable fallback).
    pub(crate) fn instant() -> Clock {
        Clock {
            ns_per_tick_q32: 0,
            origin: Instant::now(),
        }
    }

    /// Whether this clock reads the time-stamp counter.
    pub(crate) fn is_tsc(&self) -> bool {
        self.ns_per_tick_q32 != 0
    }

    /// A reading: ticks, only meaningful as a difference.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        if self.is_tsc() {
            read_tsc()
        } else {
            self.origin.elapsed().as_nanos() as u64
        }
    }

    #[cfg(test)]
    pub(crate) fn ns_since(&self, start: u64) -> u64 {
        let ticks = self.now().saturating_sub(start);
        if self.is_tsc() {
            ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
        } else {
            ticks
        }
    }

    /// Nanoseconds between two readings.
    #[inline]
    pub(crate) fn ns_between(&self, start: u64, end: u64) -> u64 {
        let ticks = end.saturating_sub(start);
        if self.is_tsc() {
            ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
        } else {
            ticks
        }
    }

    /// How many ticks make `ns` nanoseconds.
    pub(crate) fn ticks_for(&self, ns: u64) -> u64 {
        if self.is_tsc() {
            ((u128::from(ns) << 32) / u128::from(self.ns_per_tick_q32)) as u64
        } else {
            ns
        }
    }

    fn calibrate() -> Clock {
        let (t0, c0) = paired_reading();
        std::thread::sleep(CALIBRATION);
        let (t1, c1) = paired_reading();
        let ticks = c1.saturating_sub(c0);
        if ticks == 0 {
            return Self::instant();
        }
        let ns = t1.duration_since(t0).as_nanos();
        Clock {
            ns_per_tick_q32: ((ns << 32) / u128::from(ticks)).max(1) as u64,
            origin: t0,
        }
    }
}

/// An `Instant` and the TSC read at (nearly) the same moment: the tightest of a few tries
/// bracketed by two TSC reads, so a preemption between the reads cannot skew calibration.
fn paired_reading() -> (Instant, u64) {
    (0..8)
        .map(|_| {
            let before = read_tsc();
            let instant = Instant::now();
            let after = read_tsc();
            (
                after.saturating_sub(before),
                instant,
                before + (after.saturating_sub(before)) / 2,
            )
        })
        .min_by_key(|(width, _, _)| *width)
        .map(|(_, instant, tsc)| (instant, tsc))
        .expect("eight readings")
}

/// The kernel keeps CLOCK_MONOTONIC with the TSC only when it found the TSC invariant and
/// synchronized across CPUs; then reading it directly is as safe as `Instant`.
fn tsc_is_trusted() -> bool {
    cfg!(target_arch = "x86_64")
        && std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .is_ok_and(|s| s.trim() == "tsc")
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn read_tsc() -> u64 {
    unreachable!("the TSC is only used on x86_64")
}

/// Nanoseconds since an earlier reading (tests check the calibration with it).
/// CPU time of the calling thread, ns.
pub(crate) fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack frame.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock's reading of an interval lies between the sleep inside it and the `Instant`
    /// interval around it (1 % for calibration): a units check, not a timing one.
    fn agrees_with_instant(clock: Clock) {
        let sleep = Duration::from_millis(30);
        let outer = Instant::now();
        let start = clock.now();
        std::thread::sleep(sleep);
        let ns = clock.ns_since(start) as f64;
        let outer_ns = outer.elapsed().as_nanos() as f64;
        assert!(ns >= 0.99 * sleep.as_nanos() as f64, "{ns} ns for a {sleep:?} sleep");
        assert!(ns <= 1.01 * outer_ns, "{ns} ns within {outer_ns} ns");
    }

    #[test]
    fn both_clocks_measure_nanoseconds() {
        agrees_with_instant(Clock::instant());
        agrees_with_instant(Clock::get());
    }
}
