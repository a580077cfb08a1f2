//! Verdict lines: the answer before the table, from the model only (terminal, Markdown and
//! HTML show them first; the ★ and baseline ratios of `page.rs` use the same ranking).
//!
//! What decides "best" is what the run controlled:
//! - closed loop: throughput first, then p99;
//! - open loop (a rate was set): whether the configuration kept up with the target, then p99
//!   (throughput there is only the rate that was asked for);
//! - always: a configuration whose requests failed is never best while one without failures
//!   exists, and when it is best anyway its failure rate is said next to it.
//!
//! With rounds (`--rounds N`), each ratio carries its 95 % interval across rounds
//! (`stats::paired_ratio`) and is a difference only when the interval excludes 1 and the
//! ratio is at least [`MIN_EFFECT_PCT`] percent from 1; a single
//! round cannot tell noise from a difference, says so, and calls differences within
//! ± [`NOISE_PCT`] percent no measurable difference.

use super::stats::{self, BadHistogram, Config, Figures, Interval, Subject};
use crate::report::format::{format_rate, format_ratio, format_us, percent};
use crate::report::model::Report;
use crate::report::model::RunReport;

/// Single runs: a difference within this many percent is no measurable difference.
pub(crate) const NOISE_PCT: f64 = 5.0;
/// Rounds: a difference must also be at least this many percent, whatever its interval, or it
/// reads 1.00× and is called no measurable difference (a 0.2 % gap between two app-bound
/// configurations can have a tight interval that excludes 1).
pub(crate) const MIN_EFFECT_PCT: f64 = 1.0;
/// Open loop: a configuration kept up when it achieved this share of its target rate.
pub(crate) const KEPT_UP: f64 = 0.95;
/// Workers are unfair when the slowest committed less than this share of the fastest.
const UNFAIR: f64 = 0.5;

/// One configuration's standing for one subject.
pub(crate) struct Candidate<'a> {
    pub id: &'a str,
    pub figures: Figures,
    /// Requests that did not succeed (rolled back, failed, or skipped as late).
    pub failed: u64,
    pub requests: u64,
    /// What most failures were, in words: `SQLITE_BUSY`, ...
    pub failure_kind: &'static str,
    /// Open loop: summed target and achieved rates over the repeats (means).
    pub open: Option<(f64, f64)>,
    /// The lowest Jain index among the runs when workers were unfair.
    pub unfair: Option<f64>,
}

impl Candidate<'_> {
    pub(crate) fn failed_share(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.failed as f64 / self.requests as f64
        }
    }

    fn kept_up(&self) -> bool {
        self.open.is_none_or(|(target, achieved)| achieved >= target * KEPT_UP)
    }

    /// Clean: nothing failed and (open loop) the target was met.
    pub(crate) fn clean(&self) -> bool {
        self.failed == 0 && self.kept_up()
    }
}

fn runs_group<'a>(run: &'a RunReport, group: &str) -> Option<&'a crate::report::model::GroupReport> {
    run.groups.iter().find(|g| g.name == group)
}

/// The candidates for a subject, one per configuration that has it.
pub(crate) fn candidates<'a>(configs: &'a [Config<'a>], subject: Subject) -> Result<Vec<Candidate<'a>>, BadHistogram> {
    let mut out = Vec::new();
    for config in configs {
        let Some(figures) = stats::figures(config, subject)? else {
            continue;
        };
        let (group, op) = match subject {
            Subject::Transactions { group } => (group, None),
            Subject::Op { group, op } => (group, Some(op)),
        };
        let (mut failed, mut requests, mut skipped) = (0, 0, 0);
        let (mut target, mut achieved, mut open_runs) = (0.0, 0.0, 0);
        let mut unfair: Option<f64> = None;
        for run in &config.runs {
            let Some(g) = runs_group(run, group) else { continue };
            match op.and_then(|op| g.ops.iter().find(|o| o.name == op)) {
                Some(o) => {
                    failed += o.errors.total();
                    requests += o.count + o.errors.total();
                }
                None => {
                    failed += g.transactions.rolled_back;
                    requests +=
                        g.transactions.committed + g.transactions.rolled_back_by_script + g.transactions.rolled_back;
                }
            }
            if let Some(ol) = &g.open_loop {
                if op.is_none() {
                    failed += ol.skipped;
                    requests += ol.skipped;
                    skipped += ol.skipped;
                }
                target += ol.target_rate;
                achieved += ol.achieved_rate;
                open_runs += 1;
            }
            if g.per_worker.len() > 1 && g.fairness.min_max_ratio < UNFAIR && !g.uneven_by_design() {
                let j = g.fairness.jain_index;
                unfair = Some(unfair.map_or(j, |u| u.min(j)));
            }
        }
        let failure_kind = if skipped * 2 > failed {
            "skipped as late"
        } else {
            kind_words(&figures.errors)
        };
        let open = (open_runs > 0).then(|| (target / open_runs as f64, achieved / open_runs as f64));
        out.push(Candidate {
            id: config.id,
            figures,
            failed,
            requests,
            failure_kind,
            open,
            unfair,
        });
    }
    Ok(out)
}

fn kind_words(e: &crate::metrics::ErrorCounts) -> &'static str {
    let kinds = [
        (e.busy, "SQLITE_BUSY"),
        (e.busy_snapshot, "SQLITE_BUSY_SNAPSHOT"),
        (e.locked, "SQLITE_LOCKED"),
        (e.constraint, "constraint violations"),
        (e.serialization, "serialization failures"),
        (e.conflict, "write-write conflicts"),
        (e.other, "other errors"),
    ];
    kinds
        .iter()
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
        .map_or("errors", |(_, w)| w)
}

/// Whether the candidates ran open loop (all of them set a rate).
fn open_loop(cands: &[Candidate]) -> bool {
    !cands.is_empty() && cands.iter().all(|c| c.open.is_some())
}

/// The best candidate: among the clean ones if any, the highest throughput (closed loop) or
/// the lowest p99 (open loop). `None` without candidates.
pub(crate) fn best(cands: &[Candidate]) -> Option<usize> {
    best_among(cands, |_| true)
}

/// [`best`] among the candidates `allowed` lets through (the others are never chosen).
pub(crate) fn best_among(cands: &[Candidate], allowed: impl Fn(&Candidate) -> bool) -> Option<usize> {
    let open = open_loop(cands);
    let any_clean = cands.iter().any(|c| allowed(c) && c.clean());
    let eligible = |c: &Candidate| allowed(c) && (!any_clean || c.clean());
    let better = |a: &Candidate, b: &Candidate| {
        if open {
            // Kept up first, then lower p99.
            (a.kept_up(), -a.figures.p99.mean) > (b.kept_up(), -b.figures.p99.mean)
        } else {
            a.figures.throughput.mean > b.figures.throughput.mean
        }
    };
    let mut best: Option<usize> = None;
    for (i, c) in cands.iter().enumerate() {
        if eligible(c) && best.is_none_or(|b| better(c, &cands[b])) {
            best = Some(i);
        }
    }
    best
}

/// The verdict lines of a report: a header saying how noise is judged, then per group the
/// best configuration against each other one.
pub(crate) fn lines(report: &Report) -> Result<Vec<String>, BadHistogram> {
    let configs = stats::configurations(report);
    let repeats = stats::max_repeats(&configs);
    let mut out = Vec::new();
    for subject in stats::subjects(report) {
        let Subject::Transactions { group } = subject else {
            continue;
        };
        let cands = candidates(&configs, subject)?;
        let Some(b) = best(&cands) else { continue };
        out.extend(group_lines(group, &cands, b));
    }
    if out.is_empty() {
        return Ok(out);
    }
    let header = if repeats > 1 {
        format!(
            "verdict ({repeats} rounds, each configuration once per round in a shuffled order; \
             [low–high] is the 95 % interval across rounds, and a ratio whose interval includes 1×, \
             or that is within {MIN_EFFECT_PCT} % of it, is no measurable difference):"
        )
    } else {
        format!(
            "verdict (single run per configuration: one round cannot tell noise from a difference, so these \
             ratios are unconfirmed and differences within {NOISE_PCT} % are called no measurable difference; \
             run with --rounds 3 or more for 95 % intervals):"
        )
    };
    out.insert(0, header);
    Ok(out)
}

fn group_lines(group: &str, cands: &[Candidate], b: usize) -> Vec<String> {
    let best = &cands[b];
    let open = open_loop(cands);
    let mut lines = Vec::new();
    let own = format!("{group}: {}{}", best.id, about(best, open));
    if cands.len() == 1 {
        lines.push(format!(
            "{own} — {} tx/s, p99 {}{} (the only configuration)",
            format_rate(best.figures.throughput.mean),
            format_us(best.figures.p99.mean),
            success(best)
        ));
        return lines;
    }
    let mut first = true;
    for (i, other) in cands.iter().enumerate() {
        if i == b {
            continue;
        }
        let head = if first {
            own.clone()
        } else {
            format!("{group}: {}", best.id)
        };
        first = false;
        let body = if open {
            open_pair(best, other)
        } else {
            closed_pair(best, other)
        };
        lines.push(format!("{head} — {body}{}", other_note(best, other)));
    }
    lines
}

/// What the best configuration carries with it: failures and unfair workers.
fn about(best: &Candidate, open: bool) -> String {
    let mut notes = Vec::new();
    if best.failed > 0 {
        notes.push(format!(
            "but {} of its requests failed ({})",
            percent(best.failed_share()),
            best.failure_kind
        ));
    }
    if open
        && let Some((target, achieved)) = best.open
        && achieved < target * KEPT_UP
    {
        notes.push(format!(
            "but it achieved only {} of the {} tx/s asked for",
            format_rate(achieved),
            format_rate(target)
        ));
    }
    if let Some(j) = best.unfair {
        notes.push(format!("workers unfair (Jain index {j:.2})"));
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

/// Why another configuration is not the best although its numbers may look better.
fn other_note(best: &Candidate, other: &Candidate) -> String {
    let mut notes = Vec::new();
    if other.failed > 0 && other.failed_share() > best.failed_share() {
        notes.push(format!(
            "but {} of its requests failed ({})",
            percent(other.failed_share()),
            other.failure_kind
        ));
    }
    if let Some((target, achieved)) = other.open
        && achieved < target * KEPT_UP
    {
        notes.push(format!(
            "it achieved {} of the {} tx/s asked for",
            format_rate(achieved),
            format_rate(target)
        ));
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({}: {})", other.id, notes.join("; "))
    }
}

fn closed_pair(best: &Candidate, other: &Candidate) -> String {
    let tput = ratio(&best.figures, &other.figures, |r| r.1);
    let p99 = ratio(&other.figures, &best.figures, |r| r.2);
    let p99_words = p99_clause(p99);
    match tput {
        Some(r) if r.significant() => format!("{} the tx/s of {}, {p99_words}{}", r.show(), other.id, success(other)),
        r => format!(
            "no measurable difference in tx/s from {}{}, {p99_words}{}",
            other.id,
            r.map_or(String::new(), |r| format!(": {}", r.show())),
            success(other)
        ),
    }
}

fn open_pair(best: &Candidate, other: &Candidate) -> String {
    let p99 = ratio(&other.figures, &best.figures, |r| r.2);
    let rates = |c: &Candidate| {
        c.open.map_or(String::new(), |(t, a)| {
            format!("{} of {} tx/s", format_rate(a), format_rate(t))
        })
    };
    let latency = match p99 {
        Some(r) if r.significant() && r.value >= 1.0 => format!("p99 {} lower than {}", r.show(), other.id),
        Some(r) if r.significant() => format!("p99 {} higher than {}", r.inverse().show(), other.id),
        r => format!(
            "no measurable difference in p99 from {}{}",
            other.id,
            r.map_or(String::new(), |r| format!(": {}", r.show()))
        ),
    };
    format!(
        "{latency}{}; achieved {} vs {}",
        success(other),
        rates(best),
        rates(other)
    )
}

fn p99_clause(p99: Option<Ratio>) -> String {
    match p99 {
        Some(r) if r.significant() && r.value >= 1.0 => format!("p99 {} lower", r.show()),
        Some(r) if r.significant() => format!("p99 {} higher", r.inverse().show()),
        Some(r) => format!("no measurable difference in p99 ({})", r.show()),
        None => "no measurable difference in p99".to_string(),
    }
}

/// `, success 73 %` for a configuration whose requests failed.
fn success(c: &Candidate) -> String {
    if c.failed == 0 {
        String::new()
    } else {
        format!(" (its success rate {})", percent(1.0 - c.failed_share()))
    }
}

/// A ratio of two configurations' figures: with rounds, the geometric mean of the per-round
/// ratios and its 95 % interval (`stats::paired_ratio`); with a single round, the ratio alone.
#[derive(Clone, Copy, Debug)]
struct Ratio {
    value: f64,
    interval: Option<Interval>,
}

impl Ratio {
    /// A difference: the interval excludes 1 and the ratio is at least [`MIN_EFFECT_PCT`] away
    /// from 1; without an interval, outside ± [`NOISE_PCT`] (unconfirmed).
    fn significant(&self) -> bool {
        match self.interval {
            Some(i) => {
                i.excludes_one()
                    && (self.value - 1.0).abs() >= MIN_EFFECT_PCT / 100.0
                    && (1.0 / self.value - 1.0).abs() >= MIN_EFFECT_PCT / 100.0
            }
            None => (self.value - 1.0).abs() > NOISE_PCT / 100.0 && (1.0 / self.value - 1.0).abs() > NOISE_PCT / 100.0,
        }
    }

    /// `2.00× [1.80–2.30]`, or `2.00×` without an interval.
    fn show(&self) -> String {
        match self.interval {
            Some(i) => format!("{} [{}–{}]", format_ratio(self.value), trim(i.low), trim(i.high)),
            None => format_ratio(self.value),
        }
    }

    fn inverse(&self) -> Ratio {
        Ratio {
            value: 1.0 / self.value,
            interval: self.interval.map(|i| i.inverse()),
        }
    }
}

fn trim(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0}")
    } else if s >= 10.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.2}")
    }
}

/// `a / b` of the metric `pick` takes from a round's `(round, throughput, p99)`; `None` when
/// both are zero.
fn ratio(a: &Figures, b: &Figures, pick: fn(&(u32, f64, f64)) -> f64) -> Option<Ratio> {
    let (ma, mb) = (mean(&a.rounds, pick), mean(&b.rounds, pick));
    if mb <= 0.0 || ma <= 0.0 {
        return (ma != mb).then_some(Ratio {
            value: if mb > 0.0 { 0.0 } else { f64::INFINITY },
            interval: None,
        });
    }
    let series = |f: &Figures| f.rounds.iter().map(|r| (r.0, pick(r))).collect::<Vec<_>>();
    match stats::paired_ratio(&series(a), &series(b)) {
        Some(i) => Some(Ratio {
            value: i.ratio,
            interval: Some(i),
        }),
        None => Some(Ratio {
            value: ma / mb,
            interval: None,
        }),
    }
}

fn mean(rounds: &[(u32, f64, f64)], pick: fn(&(u32, f64, f64)) -> f64) -> f64 {
    rounds.iter().map(pick).sum::<f64>() / rounds.len().max(1) as f64
}

/// The best configuration of the report's first group when the intervals confirm it: with
/// rounds, its ratio to every other configuration (tx/s, or p99 in open loop) excludes no
/// difference. `None` with a single round: it cannot tell noise from a difference. The ★ and
/// `run`'s "apply it" line follow it.
pub(crate) fn confirmed_best(cands: &[Candidate]) -> Option<usize> {
    let b = best(cands)?;
    let open = open_loop(cands);
    let ahead = |other: &Candidate| {
        let r = if open {
            ratio(&other.figures, &cands[b].figures, |r| r.2)
        } else {
            ratio(&cands[b].figures, &other.figures, |r| r.1)
        };
        r.is_some_and(|r| r.interval.is_some_and(|i| i.low > 1.0) && r.significant())
    };
    cands.iter().enumerate().all(|(i, c)| i == b || ahead(c)).then_some(b)
}

/// [`confirmed_best`] of the report's first group's transactions, by id.
pub(crate) fn confirmed_winner(report: &Report) -> Result<Option<String>, BadHistogram> {
    let configs = stats::configurations(report);
    let Some(subject) = stats::first_transactions(report) else {
        return Ok(None);
    };
    let cands = candidates(&configs, subject)?;
    Ok(confirmed_best(&cands).map(|i| cands[i].id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tight_interval_around_a_tiny_gap_is_no_difference() {
        let r = |value: f64, low: f64, high: f64| Ratio {
            value,
            interval: Some(Interval {
                ratio: value,
                low,
                high,
                rounds: 3,
            }),
        };
        assert!(!r(1.002, 1.001, 1.003).significant(), "reads 1.00×");
        assert!(!r(0.998, 0.997, 0.999).significant());
        assert!(r(1.02, 1.01, 1.03).significant());
        assert!(r(0.98, 0.97, 0.99).significant());
        assert!(!r(1.5, 0.9, 2.0).significant(), "the interval holds 1");
    }

    fn fixture() -> Report {
        serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap()
    }

    #[test]
    fn single_runs_say_so_and_name_the_fastest() {
        let text = lines(&fixture()).unwrap().join("\n");
        assert!(text.starts_with("verdict (single run"), "{text}");
        assert!(text.contains(" the tx/s of "), "{text}");
        insta::assert_snapshot!(text);
    }

    #[test]
    fn a_configuration_with_failures_is_not_best_without_saying_so() {
        let mut report = fixture();
        // Make the slowest configuration the fastest, but with a quarter of its requests failing.
        let last = report.runs.len() - 1;
        let id = report.runs[last].id.clone();
        let g = &mut report.runs[last].groups[0];
        g.transactions.throughput_per_s *= 100.0;
        g.transactions.rolled_back = g.transactions.committed / 3;
        g.transactions.errors.busy_snapshot = g.transactions.rolled_back;
        let group = g.name.clone();
        let text = lines(&report).unwrap().join("\n");
        let best_line = text.lines().find(|l| l.starts_with(&format!("{group}: "))).unwrap();
        assert!(!best_line.starts_with(&format!("{group}: {id} ")), "{text}");
        assert!(text.contains("of its requests failed (SQLITE_BUSY_SNAPSHOT)"), "{text}");
        assert!(text.contains("its success rate 75 %"), "{text}");
    }

    #[test]
    fn equal_runs_are_no_measurable_difference() {
        let mut report = fixture();
        let first = report.runs[0].clone();
        for run in &mut report.runs {
            let id = run.id.clone();
            *run = first.clone();
            run.id = id;
        }
        let text = lines(&report).unwrap().join("\n");
        assert!(text.contains("no measurable difference in tx/s"), "{text}");
        assert!(text.contains("no measurable difference in p99"), "{text}");
        assert!(!text.contains(" the tx/s of "), "{text}");
    }

    #[test]
    fn open_loop_judges_on_latency_and_target() {
        let mut report = fixture();
        for (i, run) in report.runs.iter_mut().enumerate() {
            for g in &mut run.groups {
                g.transactions.throughput_per_s = 200.0;
                g.transactions.latency_us.p99 = 1000.0 * (4 - i) as f64;
                g.open_loop = Some(crate::report::model::OpenLoopReport {
                    target_rate: 200.0,
                    achieved_rate: if i == 0 { 120.0 } else { 199.0 },
                    arrival: "fixed".into(),
                    service_us: Default::default(),
                    service_histogram_v2: String::new(),
                    schedule_lag_us: Default::default(),
                    latency_limit_ms: None,
                    late: 0,
                    skipped: 0,
                });
            }
        }
        let last = report.runs.last().unwrap().id.clone();
        let text = lines(&report).unwrap().join("\n");
        let group = &report.runs[0].groups[0].name;
        assert!(text.contains(&format!("{group}: {last} — p99 ")), "{text}");
        assert!(!text.contains(" the tx/s of "), "{text}");
        assert!(text.contains("achieved 199 of 200 tx/s vs 120 of 200 tx/s"), "{text}");
    }

    #[test]
    fn repeats_show_the_spread() {
        let mut report = fixture();
        let mut runs = Vec::new();
        for run in &report.runs {
            for (k, f) in [0.97, 1.0, 1.03].iter().enumerate() {
                let mut r = run.clone();
                r.repeat = Some(k as u32 + 1);
                for g in &mut r.groups {
                    g.transactions.throughput_per_s *= f;
                    g.transactions.latency_us.p99 *= f;
                }
                runs.push(r);
            }
        }
        report.runs = runs;
        let text = lines(&report).unwrap().join("\n");
        assert!(text.starts_with("verdict (3 rounds"), "{text}");
        assert!(text.contains("× ["), "{text}");
    }

    /// Two configurations over 3 rounds, the second's throughput `factors[k]` × the first's.
    fn two_configs(factors: [f64; 3]) -> Report {
        let mut report = fixture();
        let first = report.runs[0].clone();
        let mut runs = Vec::new();
        for (k, f) in factors.iter().enumerate() {
            for (id, factor) in [("a=1", 1.0), ("a=2", *f)] {
                let mut r = first.clone();
                r.id = id.to_string();
                r.repeat = Some(k as u32 + 1);
                r.groups.truncate(1);
                // The round's drift, shared by both configurations.
                let drift = [1.0, 0.7, 1.2][k];
                r.groups[0].transactions.throughput_per_s = 1000.0 * drift * factor;
                runs.push(r);
            }
        }
        report.runs = runs;
        report
    }

    #[test]
    fn rounds_give_intervals_and_the_best_only_when_they_confirm_it() {
        let faster = two_configs([2.0, 1.9, 2.1]);
        let text = lines(&faster).unwrap().join("\n");
        assert!(text.contains(": a=2 — 2.00× [1.7"), "{text}");
        assert!(text.contains("] the tx/s of a=1"), "{text}");
        assert_eq!(confirmed_winner(&faster).unwrap().as_deref(), Some("a=2"));
        let same = two_configs([1.02, 0.97, 1.01]);
        let text = lines(&same).unwrap().join("\n");
        assert!(text.contains("no measurable difference in tx/s from a="), "{text}");
        assert!(text.contains("× [0.9"), "{text}");
        assert_eq!(confirmed_winner(&same).unwrap(), None);
        // A single round never confirms a best, however large the difference.
        let mut single = faster.clone();
        single.runs.retain(|r| r.repeat == Some(1));
        single.runs.iter_mut().for_each(|r| r.repeat = None);
        assert_eq!(confirmed_winner(&single).unwrap(), None);
        assert!(lines(&single).unwrap()[0].contains("cannot tell noise from a difference"));
    }
}
