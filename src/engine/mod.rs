//! The run engine: one fresh database per cell, workers, pacing, the monitor, progress,
//! verification and the summary of what the workers recorded.

pub mod app;
pub mod clock;
pub mod driver;
pub mod env;
pub mod monitor;
pub mod pacing;
pub mod probe;
pub mod process;
pub mod queue;
pub mod progress;
pub mod summary;
pub mod verify;
pub mod walstat;
pub mod worker;
