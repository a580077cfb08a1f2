//! Findings: pure functions of a finished report (metric checks, sweep findings).

pub mod checks;
pub mod sweep;
