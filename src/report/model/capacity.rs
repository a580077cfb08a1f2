//! A `litehammer capacity` report's search: per configuration, every step of the rate search
//! and the highest rate whose objectives held (`analysis/capacity.rs`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CapacityReport {
    /// The objectives, as given (`p99 < 200ms`, `errors < 0.1%`).
    pub slo: Vec<String>,
    /// The search stops when the highest passing and the lowest failing rate are within
    /// this fraction of each other (0.1: 10 %).
    pub resolution: f64,
    /// The time budget of the whole search, and of each step's measured phase.
    pub budget_s: f64,
    pub step_s: f64,
    pub configurations: Vec<CapacityResult>,
}

/// One configuration's search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CapacityResult {
    /// The run id of the configuration (as `run` names it).
    pub id: String,
    /// The highest offered rate (requests per second, all groups) that met every objective,
    /// passed twice; 0 when none did.
    pub capacity_per_s: f64,
    /// The lowest offered rate that failed, when one did (the capacity is below it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at_per_s: Option<f64>,
    /// The search reached its resolution and confirmed the capacity within the budget.
    pub settled: bool,
    /// Why the capacity is what it is, in words (e.g. the objective that failed above it).
    pub reason: String,
    pub steps: Vec<CapacityStep>,
}

/// One short run at an offered rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct CapacityStep {
    pub offered_per_s: f64,
    /// Committed requests per second.
    pub achieved_per_s: f64,
    /// Of requests, from their intended start (queue wait included).
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The latency objective's own percentile, when it is not p50 or p99.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_percentile_ms: Option<f64>,
    /// Failed requests over all requests.
    pub error_share: f64,
    pub passed: bool,
    /// The first objective (or condition) that did not hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}
