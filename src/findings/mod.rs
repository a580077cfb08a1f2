//! Findings: pure functions of a finished report (metric checks, sweep findings).

pub(crate) mod checks;
pub(crate) mod nplusone;
pub(crate) mod sweep;
