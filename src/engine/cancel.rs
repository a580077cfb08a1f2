//! The run phase: one flag set by the driver and read by every worker between
//! transactions. `Phase::Stop` is the cancellation signal every wait must honour.

use std::sync::atomic::{AtomicU8, Ordering};

/// The run phase, set by the driver and read by every worker between transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Phase {
    Starting = 0,
    Warmup = 1,
    Measure = 2,
    Stop = 3,
}

#[derive(Debug, Default)]
pub(crate) struct PhaseFlag(AtomicU8);

impl PhaseFlag {
    pub(crate) fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    #[inline]
    pub(crate) fn get(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Warmup,
            2 => Phase::Measure,
            _ => Phase::Stop,
        }
    }
}
