//! Analysis: what a report's runs mean, as pure functions of the report model. The pipeline
//! computes each result once and stores it in the report (`verdict`, `findings`,
//! `decision`, the status); the views in `report/` render the stored results, and lay out
//! the statistics of `stats` and the sweep's view (`sweep::view`).

pub(crate) mod backup;
pub(crate) mod capacity;
pub(crate) mod checks;
pub(crate) mod compare;
pub(crate) mod decision;
pub(crate) mod invariants;
pub(crate) mod noise;
pub(crate) mod nplusone;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod sweep;
pub(crate) mod verdict;

use crate::config::Sweep;
use crate::report::model::Report;

/// The findings of a report's runs: the sweep's (when the scenario has one), then the
/// backup verdicts and the N+1 verdicts.
pub(crate) fn findings(report: &Report, sweep: Option<&Sweep>) -> Vec<String> {
    let mut findings = sweep.map_or_else(Vec::new, |s| sweep::findings(s, &report.runs));
    findings.extend(backup::verdicts(report));
    findings.extend(nplusone::findings(&report.runs));
    findings
}

/// The results that follow from the runs alone, recomputed as each run comes in (the report
/// and its exports are rewritten after each): the noise guard's marks and warnings, and the
/// verdict.
pub(crate) fn refresh(report: &mut Report) -> Result<(), stats::BadHistogram> {
    report.noise_warnings = noise::judge(report);
    report.verdict = verdict::lines(report)?;
    Ok(())
}

/// The stored results a saved report may lack (written by an older litehammer, or cut short
/// before its analysis), computed when it is loaded, so that the views only render.
pub(crate) fn complete(report: &mut Report) -> Result<(), stats::BadHistogram> {
    if report.verdict.is_empty() {
        refresh(report)?;
    }
    if report.decision.is_none() {
        report.decision = decision::decide(report)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_report_is_completed_with_its_verdict_and_decision() {
        let mut report = decision::tests::fixture();
        report.decision = None;
        assert!(report.verdict.is_empty());
        complete(&mut report).unwrap();
        assert_eq!(report.verdict, verdict::lines(&report).unwrap());
        assert!(
            report.verdict[0].starts_with("verdict (single run"),
            "{:?}",
            report.verdict
        );
        assert_eq!(report.decision.as_ref().map(|d| d.group.as_str()), Some("writers"));
    }
}
