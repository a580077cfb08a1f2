//! The durability table the terminal, Markdown and HTML views share.

use super::format::Table;
use super::model::durability::{Durability, DurabilityResult};
use super::model::{Report, RunReport};

/// Whether the report is a crash report: runs with a durability section and nothing measured
/// (`run --durability` reports measure too: they get the decision table, `decision.rs`).
pub(crate) fn present(report: &Report) -> bool {
    report
        .runs
        .iter()
        .any(|r| r.durability.is_some() && r.groups.is_empty())
}

/// The durability table: one row per configuration and method (and model).
pub(crate) fn table(runs: &[RunReport]) -> Table {
    let mut rows = Vec::new();
    for run in runs {
        let Some(durability) = &run.durability else { continue };
        if durability.results.is_empty() {
            rows.push(failed_row(run));
        }
        for (i, r) in durability.results.iter().enumerate() {
            rows.push(result_row(if i == 0 { &run.id } else { "" }, r));
        }
    }
    Table {
        headers: vec![
            "configuration",
            "method",
            "trials",
            "acked",
            "trials losing acked",
            "max lost",
            "integrity fail",
            "atomicity",
            "silent damage",
            "cross-check",
        ],
        right: vec![false, false, true, true, true, true, true, true, true, false],
        rows,
    }
}

/// The damage columns every durability table ends with: max lost, integrity fail,
/// atomicity, silent damage.
pub(crate) fn damage_cells(r: &DurabilityResult) -> [String; 4] {
    [
        r.max_lost.to_string(),
        r.integrity_failures.to_string(),
        r.atomicity_violations.to_string(),
        r.silent_damage.to_string(),
    ]
}

fn result_row(id: &str, r: &DurabilityResult) -> Vec<String> {
    let cross = match r.cross_check {
        Some(c) if c.mismatches == 0 => format!("agrees ({})", c.compared),
        Some(c) => format!("{} MISMATCH", c.mismatches),
        None => "-".into(),
    };
    let head = [
        id.to_string(),
        r.label(),
        r.trials.to_string(),
        r.acknowledged_total.to_string(),
        r.trials_losing.to_string(),
    ];
    head.into_iter().chain(damage_cells(r)).chain([cross]).collect()
}

fn failed_row(run: &RunReport) -> Vec<String> {
    let mut row = vec![run.id.clone(), "FAILED".into()];
    row.extend(std::iter::repeat_n("-".to_string(), 8));
    row
}

/// What was crashed and how, for the environment list: trials, seed, ledger size.
pub(crate) fn runs_line(report: &Report) -> Option<String> {
    if !present(report) {
        return None;
    }
    let sections: Vec<&Durability> = report.runs.iter().filter_map(|r| r.durability.as_ref()).collect();
    let first = sections.first()?;
    let trials = sections
        .iter()
        .flat_map(|d| &d.results)
        .map(|r| r.trials)
        .max()
        .unwrap_or(0);
    let mut line = format!(
        "{} configuration(s) crashed, {trials} trial(s) per method, seed {}, 1–{} rows per ledger transaction",
        sections.len(),
        first.seed,
        first.max_rows
    );
    if let Some(n) = first.transactions {
        line.push_str(&format!("; power loss: {n} transactions per trial"));
    }
    if let Some(ms) = first.kill_within_ms {
        line.push_str(&format!("; kill: within {ms:.0} ms of the worker being ready"));
    }
    Some(line)
}

/// A paragraph naming each method and crash model in the report and pointing to the README
/// for their assumptions.
pub(crate) fn legend(report: &Report) -> String {
    let mut labels: Vec<String> = Vec::new();
    for r in report
        .runs
        .iter()
        .filter_map(|r| r.durability.as_ref())
        .flat_map(|d| &d.results)
    {
        if !labels.contains(&r.label()) {
            labels.push(r.label());
        }
    }
    let methods: Vec<String> = labels
        .iter()
        .map(|label| match describe(label) {
            Some(text) => format!("`{label}` — {text}"),
            None => format!("`{label}`"),
        })
        .collect();
    format!(
        "Crash methods: {}. trials losing acked: trials in which a transaction whose COMMIT had returned \
         was not fully present after recovery; silent damage: damage `PRAGMA integrity_check` does not see. \
         The models' assumptions, and what they leave out, are in the README (\"Durability: litehammer crash\"): \
         read the numbers as exposure under a model, not as probabilities.",
        methods.join("; ")
    )
}

/// One line on a method or power-loss model (the wording of `litehammer crash --help`).
fn describe(label: &str) -> Option<&'static str> {
    Some(match label {
        "kill" => "SIGKILL of the committing process (real files, the OS page cache survives)",
        "power-loss/durable" => "simulated power loss, only synced data and directory entries survive",
        "power-loss/reorder" => {
            "as durable, plus any subset of unsynced sector writes, truncates and directory changes, in any order"
        }
        "power-loss/torn" => "as reorder, and some unwritten sectors hold garbage",
        _ => return None,
    })
}
