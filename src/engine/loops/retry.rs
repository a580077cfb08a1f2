//! The retry back-off both loops share: the group's `[retry]` sleep before a retry, doubling
//! per retry up to `backoff_max`, with jitter, in slices, so that a stop or a Ctrl-C ends it.

use crate::config::scenario::Retry;
use crate::engine::cancel::{Phase, PhaseFlag};
use std::time::{Duration, Instant};

/// The longest slice of a back-off sleep: how late a stop can be seen.
const SLICE: Duration = Duration::from_millis(50);

/// The sleep before retry `attempt` (1 = the first retry), `jitter` drawn from [0, 1).
pub(crate) fn delay(retry: &Retry, attempt: u32, jitter: f64) -> Duration {
    let base = retry.backoff.0;
    let doubled = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = retry.backoff_max.map_or(base, |m| doubled.min(m.0));
    capped.mul_f64(0.5 + jitter)
}

/// Sleeps the back-off before retry `attempt`, ending early when the run stops or is
/// cancelled (the driver unparks the worker when the phase changes).
pub(crate) fn back_off(retry: &Retry, attempt: u32, jitter: f64, phase: &PhaseFlag) {
    if retry.backoff.0.is_zero() {
        return;
    }
    let end = Instant::now() + delay(retry, attempt, jitter);
    while phase.get() != Phase::Stop && !crate::interrupt::cancelled() {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::park_timeout((end - now).min(SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::duration::DurationValue;

    fn retry(backoff_ms: u64, max_ms: Option<u64>) -> Retry {
        Retry {
            max_tries: std::num::NonZeroU32::new(5).unwrap(),
            backoff: DurationValue(Duration::from_millis(backoff_ms)),
            backoff_max: max_ms.map(|m| DurationValue(Duration::from_millis(m))),
        }
    }

    #[test]
    fn the_delay_doubles_up_to_the_cap_with_jitter() {
        let r = retry(10, Some(35));
        assert_eq!(delay(&r, 1, 0.5), Duration::from_millis(10));
        assert_eq!(delay(&r, 2, 0.5), Duration::from_millis(20));
        assert_eq!(delay(&r, 3, 0.5), Duration::from_millis(35));
        assert_eq!(delay(&r, 9, 0.0), Duration::from_micros(17_500));
        // Without a cap the base is not doubled (as before: `backoff_max` turns doubling on).
        assert_eq!(delay(&retry(10, None), 4, 0.5), Duration::from_millis(10));
    }

    #[test]
    fn a_stopped_phase_ends_an_hour_long_back_off() {
        let phase = PhaseFlag::default();
        phase.set(Phase::Stop);
        // Returns at once: no slice is slept once the phase is Stop.
        back_off(&retry(3_600_000, None), 1, 0.5, &phase);
    }
}
