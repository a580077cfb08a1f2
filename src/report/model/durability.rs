//! The `durability` section of a run in a crash report (`litehammer crash`).

use serde::{Deserialize, Serialize};

/// Crash results for one configuration: one entry per method (and crash model).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Durability {
    /// `--seed`: with the configuration id it determines every trial (see `crash::config_seed`).
    pub seed: u64,
    /// Rows per ledger transaction are uniform in 1..=max_rows; payloads 100 B – 3 KB.
    pub max_rows: u32,
    /// Power loss: ledger transactions per trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<u32>,
    /// Kill: the child is killed uniformly within this many milliseconds after it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_within_ms: Option<f64>,
    pub results: Vec<DurabilityResult>,
    /// Why some trials could not run (`run --durability`: the measured run is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DurabilityResult {
    /// `kill` (SIGKILL of the committing process) or `power-loss` (simulated disk).
    pub method: String,
    /// The crash model that built the rebooted disk (power-loss only): durable, reorder, torn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub trials: u32,
    /// Trials that lost at least one acknowledged transaction.
    pub trials_losing: u32,
    /// The most acknowledged transactions lost in one trial.
    pub max_lost: u64,
    pub lost_total: u64,
    pub acknowledged_total: u64,
    /// Trials where `PRAGMA integrity_check` did not say ok (or the database could not be read).
    pub integrity_failures: u32,
    /// Trials with a transaction partly present.
    pub atomicity_violations: u32,
    /// Trials with wrong bytes or a hole in the commit order that integrity_check does not see.
    pub silent_damage: u32,
    /// Power-loss with `--cross-check`: the rebooted image recovered again through SQLite's unix VFS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheck>,
    pub per_trial: Vec<TrialResult>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct CrossCheck {
    pub compared: u32,
    /// Trials whose unix-VFS verdict differs from the simulator's.
    pub mismatches: u32,
}

/// One trial: how the crash happened and what the checker found.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct TrialResult {
    pub trial: u32,
    /// Kill: milliseconds after the worker was ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_after_ms: Option<f64>,
    /// Power loss: the disk event (1-based) at which power was cut, of `events` in a crash-free run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_event: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u64>,
    /// Reorder and torn: the sector size unsynced writes were split into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector_size: Option<u32>,
    #[serde(flatten)]
    pub check: TrialCheck,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check_agrees: Option<bool>,
}

/// The checker's verdict on one recovered database.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TrialCheck {
    pub acknowledged: u64,
    /// Acknowledged transactions not fully present (missing, or partly present).
    pub lost: u64,
    /// Transactions with some but not all of their rows (atomicity broken), acknowledged or not.
    pub partial: u64,
    /// Rows with wrong bytes, a wrong checksum or row count, or of a transaction never begun.
    pub damaged_rows: u64,
    /// Transactions entirely missing while a later one is present.
    pub order_gaps: u64,
    /// `ok`, the first problems `PRAGMA integrity_check` reported, or the error reading the database.
    pub integrity: String,
}

impl TrialCheck {
    pub(crate) fn integrity_ok(&self) -> bool {
        self.integrity == "ok"
    }

    /// Damage `integrity_check` does not see: wrong bytes, or a hole in the commit order.
    pub(crate) fn silent_damage(&self) -> bool {
        self.damaged_rows > 0 || self.order_gaps > 0
    }

    #[cfg(test)]
    pub(crate) fn clean(&self) -> bool {
        self.lost == 0 && self.partial == 0 && !self.silent_damage() && self.integrity_ok()
    }
}

/// `run --durability`: speed and what a crash loses, one row per configuration, and the
/// recommendation (computed by `analysis/decision.rs` from the runs; stored for readers of the JSON).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Decision {
    /// The group whose throughput, p99 and errors the rows show.
    pub group: String,
    pub rows: Vec<DecisionRow>,
    /// The fastest configuration that lost nothing on power loss (nor on a kill), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe: Option<String>,
    /// The fastest configuration overall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fastest: Option<String>,
    /// The recommendation in words, one line each.
    pub recommendation: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct DecisionRow {
    pub config: String,
    pub tx_per_s: f64,
    pub p99_us: f64,
    /// Requests that did not succeed, of `requests` (all repeats).
    pub failed: u64,
    pub requests: u64,
    /// The most acknowledged commits lost in one kill trial; absent when no kill trial ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_max_lost: Option<u64>,
    /// The most acknowledged commits lost in one power-loss trial, over every model run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss_max_lost: Option<u64>,
    /// Trials (all methods) with an integrity failure, a partial transaction or silent damage.
    pub integrity_failures: u32,
    pub atomicity_violations: u32,
    pub silent_damage: u32,
    /// Why the crash trials of this configuration did not all run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_error: Option<String>,
}

impl DurabilityResult {
    /// Aggregates trials into the summary counts.
    pub(crate) fn from_trials(method: &str, model: Option<&str>, per_trial: Vec<TrialResult>) -> Self {
        let count = |f: &dyn Fn(&TrialResult) -> bool| per_trial.iter().filter(|t| f(t)).count() as u32;
        let compared = count(&|t| t.cross_check_agrees.is_some());
        Self {
            method: method.to_string(),
            model: model.map(str::to_string),
            trials: per_trial.len() as u32,
            trials_losing: count(&|t| t.check.lost > 0),
            max_lost: per_trial.iter().map(|t| t.check.lost).max().unwrap_or(0),
            lost_total: per_trial.iter().map(|t| t.check.lost).sum(),
            acknowledged_total: per_trial.iter().map(|t| t.check.acknowledged).sum(),
            integrity_failures: count(&|t| !t.check.integrity_ok()),
            atomicity_violations: count(&|t| t.check.partial > 0),
            silent_damage: count(&|t| t.check.silent_damage()),
            cross_check: (compared > 0).then(|| CrossCheck {
                compared,
                mismatches: count(&|t| t.cross_check_agrees == Some(false)),
            }),
            per_trial,
        }
    }

    /// `kill`, or `power-loss/MODEL`.
    pub(crate) fn label(&self) -> String {
        match &self.model {
            Some(m) => format!("{}/{m}", self.method),
            None => self.method.clone(),
        }
    }
}
