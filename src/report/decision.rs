//! The decision table of a `run --durability` report (computed by `analysis::decision` and
//! stored in the report's `decision`): one row per configuration, the two named ones marked.

use super::format::{Table, failed_of, format_rate, format_us};
use super::model::Report;
use super::model::durability::Decision;
use crate::analysis::decision::{damage_words, trials_words};

/// The decision table: one row per configuration, the two named ones marked.
pub(crate) fn table(decision: &Decision) -> Table {
    let lost = |n: Option<u64>, error: &Option<String>| match (n, error) {
        (Some(n), _) => n.to_string(),
        (None, Some(_)) => "failed".into(),
        (None, None) => "-".into(),
    };
    let rows = decision
        .rows
        .iter()
        .map(|r| {
            let errors = failed_of(r.failed, r.requests);
            let mut marks = Vec::new();
            if decision.safe.as_deref() == Some(&r.config) {
                marks.push("loses nothing");
            }
            if decision.fastest.as_deref() == Some(&r.config) {
                marks.push("fastest");
            }
            vec![
                r.config.clone(),
                format_rate(r.tx_per_s),
                format_us(r.p99_us),
                errors,
                lost(r.kill_max_lost, &r.crash_error),
                lost(r.power_loss_max_lost, &r.crash_error),
                damage_words(r),
                marks.join(", "),
            ]
        })
        .collect();
    Table {
        headers: vec![
            "configuration",
            "tx/s",
            "p99",
            "errors",
            "lost on kill",
            "lost on power loss",
            "damage",
            "pick",
        ],
        right: vec![false, true, true, true, true, true, false, false],
        rows,
    }
}

/// One line on what the lost and damage columns mean.
pub(crate) fn legend(decision: &Decision, report: &Report) -> String {
    format!(
        "Speed of group `{}` (tx/s, p99, failed requests); lost: the most acknowledged commits missing after one \
         crash trial ({}); damage: trials with an integrity_check failure, a partial transaction or silent damage. \
         Exposure under a model, not a probability: see docs/durability.md.",
        decision.group,
        trials_words(report)
    )
}
