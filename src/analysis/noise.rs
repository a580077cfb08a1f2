//! The noise guard: which runs were measured on a machine too busy to trust, judged from
//! each run's noise record (`machine/noise.rs`) and the fsync probes before and after the
//! runs. The warnings are stored in the report and every view prints them above the verdict.

use crate::report::format::format_rate;
use crate::report::model::{Noise, Report};

/// A run is noisy when other processes used more than this share of the machine's CPUs
/// during its measured phase...
pub(crate) const MAX_OTHER_CPU_SHARE: f64 = 0.25;
/// ...or steal took more than this share of the machine's CPUs...
pub(crate) const MAX_STEAL_SHARE: f64 = 0.05;
/// ...and a report is noisy when the fsync rate after the runs is outside this factor of
/// the rate before them (either way).
pub(crate) const MAX_FSYNC_DRIFT: f64 = 2.0;

/// Why a run's noise passes the guard's thresholds (empty when it does not).
pub(crate) fn reasons(n: &Noise) -> Vec<String> {
    let cpus = f64::from(n.cpus.max(1));
    let mut out = Vec::new();
    if n.other_cpu_cores > MAX_OTHER_CPU_SHARE * cpus {
        out.push(format!(
            "other processes used {:.2} of {} cores (limit {:.0} %)",
            n.other_cpu_cores,
            n.cpus,
            MAX_OTHER_CPU_SHARE * 100.0
        ));
    }
    if n.steal_cores > MAX_STEAL_SHARE * cpus {
        out.push(format!(
            "steal took {:.2} of {} cores (limit {:.0} %)",
            n.steal_cores,
            n.cpus,
            MAX_STEAL_SHARE * 100.0
        ));
    }
    out
}

/// Whether the fsync rate drifted between the probe before the runs and the one after.
pub(crate) fn fsync_drift(before: Option<f64>, after: Option<f64>) -> Option<String> {
    let (b, a) = (before?, after?);
    if b <= 0.0 || a <= 0.0 {
        return None;
    }
    let factor = if a > b { a / b } else { b / a };
    (factor > MAX_FSYNC_DRIFT).then(|| {
        format!(
            "the disk's fsync rate moved from {} to {} /s between the probes before and after the runs \
             (limit {MAX_FSYNC_DRIFT}× either way)",
            format_rate(b),
            format_rate(a)
        )
    })
}

/// Marks each run's noise record with the guard's reasons and returns the warnings for
/// above the verdict (empty on a quiet machine).
pub(crate) fn judge(report: &mut Report) -> Vec<String> {
    let mut noisy = Vec::new();
    for run in &mut report.runs {
        let label = crate::report::format::run_label(run);
        if let Some(n) = &mut run.noise {
            n.noisy = reasons(n);
            if !n.noisy.is_empty() {
                noisy.push(format!("{label}: {}", n.noisy.join("; ")));
            }
        }
    }
    let mut out = Vec::new();
    if !noisy.is_empty() {
        out.push(format!(
            "warning: {} of {} runs were measured on a busy machine, so their differences may be noise; \
             close other programs or use a quiet machine, and add rounds (--rounds):",
            noisy.len(),
            report.runs.len()
        ));
        out.extend(noisy.into_iter().map(|l| format!("  {l}")));
    }
    let env = &report.environment;
    if let Some(drift) = fsync_drift(env.fsync_per_sec, env.fsync_per_sec_after) {
        out.push(format!("warning: {drift}: another program was probably using the disk"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_flags_other_cpu_and_steal_above_their_thresholds() {
        let quiet = Noise {
            other_cpu_cores: 0.4,
            cpus: 2,
            steal_cores: 0.05,
            ..Noise::default()
        };
        assert!(reasons(&quiet).is_empty());
        let busy = Noise {
            other_cpu_cores: 0.6,
            steal_cores: 0.2,
            ..quiet
        };
        let r = reasons(&busy);
        assert_eq!(r.len(), 2, "{r:?}");
        assert!(r[0].starts_with("other processes used 0.60 of 2 cores"), "{r:?}");
    }

    #[test]
    fn fsync_drift_beyond_a_factor_of_two_is_noise() {
        assert!(fsync_drift(Some(9000.0), Some(6000.0)).is_none());
        assert!(fsync_drift(Some(9000.0), Some(1800.0)).is_some());
        assert!(fsync_drift(Some(1000.0), Some(2500.0)).is_some());
        assert!(fsync_drift(None, Some(1.0)).is_none());
    }

    #[test]
    fn a_noisy_run_is_marked_and_warned_about() {
        let mut report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        assert!(judge(&mut report).is_empty());
        report.runs[1].noise = Some(Noise {
            other_cpu_cores: 1.5,
            cpus: 2,
            ..Noise::default()
        });
        let w = judge(&mut report);
        assert!(w[0].starts_with("warning: 1 of "), "{w:?}");
        assert_eq!(report.runs[1].noise.as_ref().unwrap().noisy.len(), 1);
    }
}
