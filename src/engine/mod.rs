//! The run engine: one fresh database per cell, the workers' loops (threads or processes),
//! pacing, the monitor, progress, and the summary of what the workers recorded; backups that
//! run beside a run. What a worker talks to is `crate::targets`.

pub(crate) mod backup;
pub(crate) mod cancel;
pub(crate) mod driver;
pub(crate) mod error;
pub(crate) mod loops;
pub(crate) mod monitor;
pub(crate) mod process;
pub(crate) mod progress;
pub(crate) mod summary;
