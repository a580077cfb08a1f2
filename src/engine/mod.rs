//! The run engine: one fresh database per cell, workers, pacing, the monitor, progress,
//! verification and the summary of what the workers recorded.

pub(crate) mod app;
pub(crate) mod backup;
pub(crate) mod cancel;
pub(crate) mod clock;
pub(crate) mod driver;
pub(crate) mod env;
pub(crate) mod error;
pub(crate) mod monitor;
pub(crate) mod pacing;
pub(crate) mod probe;
pub(crate) mod process;
pub(crate) mod progress;
pub(crate) mod queue;
pub(crate) mod restore;
pub(crate) mod spawn;
pub(crate) mod summary;
pub(crate) mod target;
pub(crate) mod verify;
pub(crate) mod walstat;
pub(crate) mod worker;
