//! The hot path's stopwatch. Reading `Instant` costs ~25 ns per call in a VM (a vDSO
//! `clock_gettime`), which is several percent of a 2 µs point SELECT timed twice per
//! operation. Where the kernel itself keeps time with the CPU's invariant time-stamp counter
//! (x86_64, clocksource `tsc`), the worker reads the counter directly (~10 ns) and scales
//! ticks to nanoseconds with a factor calibrated once against `Instant`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A monotonic tick source; differences of two readings convert to nanoseconds.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Nanoseconds per tick in 32.32 fixed point; 0 when reading `Instant` instead.
    ns_per_tick_q32: u64,
    origin: Instant,
}

const CALIBRATION: Duration = Duration::from_millis(20);

impl Clock {
    /// The process-wide clock, calibrated on first use (~20 ms when the TSC is used).
    pub fn get() -> Clock {
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
    pub fn instant() -> Clock {
        Clock {
            ns_per_tick_q32: 0,
            origin: Instant::now(),
        }
    }

    /// Whether this clock reads the time-stamp counter.
    pub fn is_tsc(&self) -> bool {
        self.ns_per_tick_q32 != 0
    }

    /// A reading: ticks, only meaningful as a difference.
    #[inline]
    pub fn now(&self) -> u64 {
        if self.is_tsc() {
            read_tsc()
        } else {
            self.origin.elapsed().as_nanos() as u64
        }
    }

    /// Nanoseconds since an earlier reading.
    #[inline]
    pub fn ns_since(&self, start: u64) -> u64 {
        let ticks = self.now().saturating_sub(start);
        if self.is_tsc() {
            ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64
        } else {
            ticks
        }
    }

    fn calibrate() -> Clock {
        let (t0, c0) = (Instant::now(), read_tsc());
        std::thread::sleep(CALIBRATION);
        let (c1, t1) = (read_tsc(), Instant::now());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock agrees with `Instant` over the same interval (a units check, loose enough
    /// for a preempted test thread).
    fn agrees_with_instant(clock: Clock) {
        let (i0, c0) = (Instant::now(), clock.now());
        std::thread::sleep(Duration::from_millis(50));
        let (ns, reference) = (clock.ns_since(c0) as f64, i0.elapsed().as_nanos() as f64);
        assert!(
            (ns - reference).abs() < 0.1 * reference + 2e6,
            "{ns} ns vs Instant {reference} ns"
        );
    }

    #[test]
    fn both_clocks_measure_nanoseconds() {
        agrees_with_instant(Clock::instant());
        agrees_with_instant(Clock::get());
    }
}
