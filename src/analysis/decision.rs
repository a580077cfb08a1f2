//! `run --durability`: the decision table — speed, errors and what a crash loses, one row per
//! configuration — and the recommendation naming two configurations: the fastest that loses
//! nothing on power loss, and the fastest overall with what it may lose. A pure function of
//! the report (the crash results sit in the runs' `durability` sections), stored in it as
//! `decision` and rendered by `report::decision`.

use super::stats::{self, BadHistogram, Config, Subject};
use super::verdict::{self, Candidate};
use crate::report::format::{format_rate, format_us, percent};
use crate::report::model::durability::{Decision, DecisionRow, Durability};
use crate::report::model::{Report, RunReport, RunStatus};

/// The crash results for a configuration: those attached to one of its runs, else to a run
/// with the same journal_mode and synchronous (the trials run once per pair).
fn durability_of<'a>(report: &'a Report, config: &Config<'a>) -> Option<&'a Durability> {
    let own = config.runs.iter().find_map(|r| r.durability.as_ref());
    own.or_else(|| {
        let s = config.runs.iter().find_map(|r| r.sqlite.as_ref())?;
        report
            .runs
            .iter()
            .filter(|r| !r.groups.is_empty())
            .filter(|r| {
                r.sqlite
                    .as_ref()
                    .is_some_and(|o| o.journal_mode == s.journal_mode && o.synchronous == s.synchronous)
            })
            .find_map(|r| r.durability.as_ref())
    })
}

/// A configuration whose run failed, was interrupted or did not verify is never recommended.
fn failing(config: &Config) -> bool {
    config
        .runs
        .iter()
        .any(|r: &&RunReport| r.status != RunStatus::Completed || r.verification.as_ref().is_none_or(|v| !v.ok))
}

fn row(config: &Config, cand: &Candidate, durability: Option<&Durability>) -> DecisionRow {
    let results = durability.map_or(&[][..], |d| &d.results[..]);
    let max_of = |method: &str| {
        results
            .iter()
            .filter(|r| r.method == method)
            .map(|r| r.max_lost)
            .reduce(u64::max)
    };
    DecisionRow {
        config: config.id.to_string(),
        tx_per_s: cand.figures.throughput.mean,
        p99_us: cand.figures.p99.mean,
        failed: cand.failed,
        requests: cand.requests,
        kill_max_lost: max_of("kill"),
        power_loss_max_lost: max_of("power-loss"),
        integrity_failures: results.iter().map(|r| r.integrity_failures).sum(),
        atomicity_violations: results.iter().map(|r| r.atomicity_violations).sum(),
        silent_damage: results.iter().map(|r| r.silent_damage).sum(),
        crash_error: match durability {
            None => Some("no crash trials ran".into()),
            Some(d) => d.error.clone(),
        },
    }
}

/// A configuration's crash trials lost nothing: power-loss trials ran and lost no
/// acknowledged commit, no kill trial lost one, nothing was damaged, and no trial failed to
/// run (the rule of `safe`, on the trials themselves).
pub(crate) fn loses_nothing(d: &Durability) -> bool {
    let max_of = |method: &str| {
        d.results
            .iter()
            .filter(|r| r.method == method)
            .map(|r| r.max_lost)
            .max()
    };
    d.error.is_none()
        && max_of("power-loss") == Some(0)
        && max_of("kill").is_none_or(|k| k == 0)
        && d.results
            .iter()
            .all(|r| r.integrity_failures == 0 && r.atomicity_violations == 0 && r.silent_damage == 0)
}

/// Lost nothing on power loss (some trials ran), nothing on a kill, no damage, no error.
fn safe(row: &DecisionRow) -> bool {
    row.crash_error.is_none()
        && row.power_loss_max_lost == Some(0)
        && row.kill_max_lost.is_none_or(|k| k == 0)
        && row.integrity_failures == 0
        && row.atomicity_violations == 0
        && row.silent_damage == 0
}

/// The decision for a `run --durability` report; `None` for other reports.
pub(crate) fn decide(report: &Report) -> Result<Option<Decision>, BadHistogram> {
    if !present(report) {
        return Ok(None);
    }
    let configs = stats::configurations(report);
    let Some(subject) = stats::first_transactions(report) else {
        return Ok(None);
    };
    let Subject::Transactions { group } = subject else {
        return Ok(None);
    };
    let cands = verdict::candidates(&configs, subject)?;
    let config_of = |c: &Candidate| {
        configs
            .iter()
            .find(|k| k.id == c.id)
            .expect("a candidate is a configuration")
    };
    let rows: Vec<DecisionRow> = cands
        .iter()
        .map(|c| {
            let config = config_of(c);
            row(config, c, durability_of(report, config))
        })
        .collect();
    let usable = |c: &Candidate| !failing(config_of(c));
    let is_safe = |c: &Candidate| rows.iter().any(|r| r.config == c.id && safe(r));
    let fastest = verdict::best_among(&cands, usable);
    let safest = verdict::best_among(&cands, |c| usable(c) && is_safe(c));
    let row_of = |i: usize| &rows[i];
    let trials = trials_words(report);
    let mut recommendation = Vec::new();
    match (safest, fastest) {
        (Some(s), Some(f)) if s == f => recommendation.push(format!(
            "{}: the fastest, and it lost no acknowledged commit on power loss or a process kill ({trials}){}",
            cands[s].id,
            speed(row_of(s), &cands[s])
        )),
        (safe_pick, Some(f)) => {
            match safe_pick {
                Some(s) => recommendation.push(format!(
                    "loses nothing: {} — the fastest that lost no acknowledged commit on power loss or a process kill ({trials}){}",
                    cands[s].id,
                    speed(row_of(s), &cands[s])
                )),
                None => recommendation.push(format!(
                    "loses nothing: none — every configuration lost acknowledged commits or was damaged in some trial ({trials})"
                )),
            }
            let versus = safe_pick.map_or(String::new(), |s| {
                let (a, b) = (rows[f].tx_per_s, rows[s].tx_per_s);
                if b > 0.0 {
                    format!(", {:.2}× the tx/s of {}", a / b, cands[s].id)
                } else {
                    String::new()
                }
            });
            recommendation.push(format!(
                "fastest: {}{}{versus}; it may lose {}",
                cands[f].id,
                speed(row_of(f), &cands[f]),
                may_lose(row_of(f))
            ));
        }
        (_, None) => {
            recommendation.push("no recommendation: every configuration's run failed or did not verify".to_string())
        }
    }
    Ok(Some(Decision {
        group: group.to_string(),
        safe: safest.map(|i| cands[i].id.to_string()),
        fastest: fastest.map(|i| cands[i].id.to_string()),
        rows,
        recommendation,
    }))
}

fn speed(row: &DecisionRow, cand: &Candidate) -> String {
    let mut text = format!(" — {} tx/s, p99 {}", format_rate(row.tx_per_s), format_us(row.p99_us));
    if cand.failed > 0 {
        text.push_str(&format!(
            ", but {} of its requests failed ({})",
            percent(cand.failed_share()),
            cand.failure_kind
        ));
    }
    text
}

/// What the fastest configuration lost in the worst trial of each method.
fn may_lose(row: &DecisionRow) -> String {
    let mut parts = Vec::new();
    match row.power_loss_max_lost {
        Some(n) => parts.push(format!("up to {n} acknowledged commit(s) per power loss")),
        None => parts.push("an unknown number of commits on power loss (no trials ran)".into()),
    }
    if let Some(n) = row.kill_max_lost {
        parts.push(format!("{n} per process kill"));
    }
    let damage = damage_words(row);
    if damage != "none" {
        parts.push(format!("and the trials found damage ({damage})"));
    }
    if let Some(e) = &row.crash_error {
        parts.push(format!("(crash trials incomplete: {e})"));
    }
    parts.join(", ")
}

/// Whether the report measured runs and crashed their configurations (`run --durability`).
pub(crate) fn present(report: &Report) -> bool {
    report
        .runs
        .iter()
        .any(|r| r.durability.is_some() && !r.groups.is_empty())
}

/// The trials behind a decision in words: `3 trials per method, power-loss models durable, torn`.
pub(crate) fn trials_words(report: &Report) -> String {
    let d = report.runs.iter().filter_map(|r| r.durability.as_ref()).next();
    let Some(d) = d else { return String::new() };
    let trials = d.results.iter().map(|r| r.trials).max().unwrap_or(0);
    let models: Vec<&str> = d.results.iter().filter_map(|r| r.model.as_deref()).collect();
    let mut text = format!("{trials} trials per method");
    if !models.is_empty() {
        text.push_str(&format!(", power-loss models {}", models.join(", ")));
    }
    text
}

/// Trials with damage, in words: `none`, or `integrity 2, atomicity 1, silent 3`.
pub(crate) fn damage_words(row: &DecisionRow) -> String {
    let parts: Vec<String> = [
        ("integrity", row.integrity_failures),
        ("atomicity", row.atomicity_violations),
        ("silent", row.silent_damage),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(w, n)| format!("{w} {n}"))
    .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::model::durability::{DurabilityResult, TrialCheck, TrialResult};

    fn trial(lost: u64, integrity: &str) -> TrialResult {
        TrialResult {
            trial: 0,
            kill_after_ms: None,
            crash_event: None,
            events: None,
            sector_size: None,
            check: TrialCheck {
                acknowledged: 40,
                lost,
                integrity: integrity.into(),
                ..TrialCheck::default()
            },
            cross_check_agrees: None,
        }
    }

    /// Crash results: `kill` losing `kill_lost` in one of 3 trials, the three power-loss
    /// models losing `power_lost` in one trial each.
    pub(crate) fn crash(kill_lost: u64, power_lost: u64) -> Durability {
        let trials = |lost: u64| vec![trial(lost, "ok"), trial(0, "ok"), trial(0, "ok")];
        let mut results = vec![DurabilityResult::from_trials("kill", None, trials(kill_lost))];
        for model in ["durable", "reorder", "torn"] {
            results.push(DurabilityResult::from_trials(
                "power-loss",
                Some(model),
                trials(power_lost),
            ));
        }
        Durability {
            seed: 42,
            max_rows: 4,
            transactions: Some(40),
            kill_within_ms: Some(50.0),
            results,
            error: None,
        }
    }

    /// The run fixture (writers: wal/normal 30,911 tx/s > wal/full 4,696 > delete/normal
    /// 1,901 > delete/full 1,615) with crash results: wal/normal loses on power loss.
    pub(crate) fn fixture() -> Report {
        let mut report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        for (run, (kill, power)) in report.runs.iter_mut().zip([(0, 7), (0, 0), (0, 1), (0, 0)]) {
            run.durability = Some(crash(kill, power));
        }
        report.decision = decide(&report).unwrap();
        report
    }

    fn decision(report: &Report) -> Decision {
        decide(report).unwrap().expect("a --durability report has a decision")
    }

    #[test]
    fn the_fastest_losing_on_power_loss_is_not_the_safe_one() {
        let d = decision(&fixture());
        assert_eq!(d.group, "writers");
        assert_eq!(d.fastest.as_deref(), Some("journal_mode=wal,synchronous=normal"));
        assert_eq!(d.safe.as_deref(), Some("journal_mode=wal,synchronous=full"));
        let fastest = &d.recommendation[1];
        assert!(
            fastest.starts_with("fastest: journal_mode=wal,synchronous=normal"),
            "{fastest}"
        );
        assert!(
            fastest.contains("up to 7 acknowledged commit(s) per power loss"),
            "{fastest}"
        );
        assert!(
            fastest.contains("6.58× the tx/s of journal_mode=wal,synchronous=full"),
            "{fastest}"
        );
        let row = &d.rows[0];
        assert_eq!((row.kill_max_lost, row.power_loss_max_lost), (Some(0), Some(7)));
    }

    #[test]
    fn a_failing_configuration_is_never_named() {
        let mut report = fixture();
        report.runs[1].status = RunStatus::Failed;
        report.runs[0].verification.as_mut().unwrap().ok = false;
        let d = decision(&report);
        assert_eq!(d.fastest.as_deref(), Some("journal_mode=delete,synchronous=normal"));
        // delete/normal loses a commit on power loss: the safe one is delete/full.
        assert_eq!(d.safe.as_deref(), Some("journal_mode=delete,synchronous=full"));
    }

    #[test]
    fn damage_or_missing_trials_are_not_safe() {
        let mut report = fixture();
        let wal_full = report.runs[1].durability.as_mut().unwrap();
        wal_full.results[2] =
            DurabilityResult::from_trials("power-loss", Some("reorder"), vec![trial(0, "*** page 3 malformed")]);
        report.runs[3].durability.as_mut().unwrap().error = Some("kill trials: no child".into());
        let d = decision(&report);
        assert_eq!(d.safe, None);
        assert!(
            d.recommendation[0].starts_with("loses nothing: none"),
            "{:?}",
            d.recommendation
        );
        assert_eq!(d.rows[1].integrity_failures, 1);
        let text = crate::report::decision::table(&d).to_text();
        assert!(text.contains("integrity 1"), "{text}");
    }

    #[test]
    fn one_line_when_the_fastest_loses_nothing() {
        let mut report = fixture();
        report.runs[0].durability = Some(crash(0, 0));
        let d = decision(&report);
        assert_eq!(d.safe, d.fastest);
        assert_eq!(d.recommendation.len(), 1);
        assert!(
            d.recommendation[0].contains("the fastest, and it lost no"),
            "{:?}",
            d.recommendation
        );
    }

    #[test]
    fn failed_requests_are_said_next_to_the_pick() {
        let mut report = fixture();
        for run in &mut report.runs {
            let t = &mut run.groups[0].transactions;
            t.rolled_back = t.committed / 4;
        }
        let d = decision(&report);
        assert!(
            d.recommendation[1].contains("% of its requests failed"),
            "{:?}",
            d.recommendation
        );
    }

    #[test]
    fn a_run_report_without_crashes_has_no_decision() {
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        assert!(decide(&report).unwrap().is_none());
        let crash: Report = serde_json::from_str(include_str!("../../tests/fixtures/crash.json")).unwrap();
        assert!(decide(&crash).unwrap().is_none());
    }
}
