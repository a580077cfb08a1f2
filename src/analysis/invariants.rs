//! The accounting of an application-model run, checked (issue 29): Little's law for a
//! closed loop, the latency anatomy adding up to the latency, and each failed request
//! counted once by kind in the group's transactions. A run whose checked invariants fail
//! fails (`status::invariant_problems`, exit 1).

use crate::report::model::{GroupReport, Invariant, RunReport};

/// Little's law may be off by this share (clients vs throughput × (latency + think)).
pub(crate) const LITTLE_TOLERANCE: f64 = 0.10;
/// The anatomy's parts may differ from the total by this share (clock rounding).
const ANATOMY_TOLERANCE: f64 = 0.01;
/// Little's law needs a steady state: this many client cycles (latency + think) in the
/// measured phase, or a warm-up of at least one cycle and `WARM_CYCLES` measured.
const COLD_CYCLES: f64 = 10.0;
const WARM_CYCLES: f64 = 3.0;

/// Fills in `app.invariants` of every application-model group of a run. `budgeted`: the
/// run ended after a number of transactions (`operations`), each worker after its share, so
/// the population of clients shrank at the end and Little's law is not checked.
pub(crate) fn check_run(run: &mut RunReport, budgeted: bool) {
    let (warmup_s, measured_s) = (run.warmup_s, run.measured_s);
    // Why the machine was too busy to trust this run (the noise guard's reasons), if it was.
    let busy = run
        .noise
        .as_ref()
        .map(crate::analysis::noise::reasons)
        .unwrap_or_default();
    for g in &mut run.groups {
        let invariants = of_group(g, warmup_s, measured_s, budgeted, &busy);
        if let Some(app) = &mut g.app {
            app.invariants = invariants;
        }
    }
}

fn unchecked(name: &str, detail: String) -> Invariant {
    Invariant {
        name: name.to_string(),
        checked: false,
        ok: true,
        expected: 0.0,
        measured: 0.0,
        detail,
    }
}

fn of_group(g: &GroupReport, warmup_s: f64, measured_s: f64, budgeted: bool, busy: &[String]) -> Vec<Invariant> {
    if g.app.is_none() {
        return Vec::new();
    }
    let little = if budgeted {
        unchecked(
            "littles_law",
            "a run of a number of transactions (`operations`): each worker stops after its share, \
             so the clients do not all stay to the end"
                .into(),
        )
    } else {
        match littles_law(g, warmup_s, measured_s) {
            // On a machine too busy to trust, other processes stall the workers and the
            // driver unevenly at the phase's edges, which moves the count of requests that
            // finish inside it: a miss there says nothing about litehammer's accounting, and
            // it does not fail the run (the noise guard already marks it).
            i if !i.ok && !busy.is_empty() => unchecked(
                "littles_law",
                format!(
                    "the machine was too busy to check it ({}): {}; run on a quiet machine to check it",
                    busy.join("; "),
                    i.detail
                ),
            ),
            i => i,
        }
    };
    vec![little, anatomy_adds_up(g), errors_match_rolled_back(g)]
}

/// Whether `predicted` clients (throughput × cycle) are within the tolerance of `clients`.
fn within(predicted: f64, clients: f64) -> bool {
    (predicted - clients).abs() <= LITTLE_TOLERANCE * clients
}

/// Closed loop: clients = throughput × (mean latency + mean think time).
fn littles_law(g: &GroupReport, warmup_s: f64, measured_s: f64) -> Invariant {
    const NAME: &str = "littles_law";
    let app = g.app.as_ref().expect("an application-model group");
    if g.open_loop.is_some() {
        return unchecked(
            NAME,
            "open loop: arrivals at a rate, not a fixed number of clients".into(),
        );
    }
    if app.requests == 0 || measured_s <= 0.0 {
        return unchecked(NAME, "no request finished while measuring".into());
    }
    let throughput = app.requests as f64 / measured_s;
    let cycle_s = (app.mean_latency_ms + app.mean_think_ms) / 1000.0;
    let cycles = measured_s / cycle_s;
    let steady = cycles >= COLD_CYCLES || (warmup_s >= cycle_s && cycles >= WARM_CYCLES);
    let predicted = throughput * cycle_s;
    let formula = format!(
        "{throughput:.1} req/s × ({:.3} ms latency + {:.3} ms think) = {predicted:.1} clients for {}",
        app.mean_latency_ms, app.mean_think_ms, app.clients
    );
    // A heavy tail (a few requests of seconds in a run of seconds) shifts the requests that
    // finish inside the measured phase: the latency a request caught at an edge is in the
    // middle of has the size-biased mean E[R²]/E[R]; with more than the tolerance of the
    // phase, its edges weigh too much.
    let l = &g.transactions.latency_us;
    let biased_s = if l.mean > 0.0 {
        (l.stddev * l.stddev + l.mean * l.mean) / l.mean / 1e6
    } else {
        0.0
    };
    if steady && biased_s > LITTLE_TOLERANCE * measured_s {
        return unchecked(
            NAME,
            format!(
                "the tail is too long for the run: a request in progress at an edge of the measured phase \
                 takes {:.0} ms on average (E[R²]/E[R]), more than {:.0} % of the phase ({measured_s:.1} s): \
                 run longer ({formula})",
                biased_s * 1000.0,
                LITTLE_TOLERANCE * 100.0
            ),
        );
    }
    if !steady {
        return unchecked(
            NAME,
            format!(
                "not a steady state: the measured phase holds {cycles:.1} client cycles (latency + think) \
                 and the warm-up {:.1}; Little's law needs {COLD_CYCLES} measured, or a warm-up of 1 and \
                 {WARM_CYCLES} measured: run longer ({formula})",
                warmup_s / cycle_s
            ),
        );
    }
    let clients = f64::from(app.clients);
    let ok = within(predicted, clients);
    Invariant {
        name: NAME.to_string(),
        checked: true,
        ok,
        expected: clients,
        measured: predicted,
        detail: format!("{formula} (within {:.0} %: {ok})", LITTLE_TOLERANCE * 100.0),
    }
}

/// The mean of each part of the anatomy adds up to the mean latency of the requests.
fn anatomy_adds_up(g: &GroupReport) -> Invariant {
    const NAME: &str = "anatomy_adds_up";
    let a = &g.app.as_ref().expect("an application-model group").anatomy;
    if a.requests == 0 {
        return unchecked(NAME, "no committed request".into());
    }
    let sum = a.mean_ms.sum();
    let ok = (sum - a.total_mean_ms).abs() <= ANATOMY_TOLERANCE * a.total_mean_ms + 1e-3;
    Invariant {
        name: NAME.to_string(),
        checked: true,
        ok,
        expected: a.total_mean_ms,
        measured: sum,
        detail: format!(
            "parts {sum:.4} ms vs total {:.4} ms per request (within {:.0} %: {ok})",
            a.total_mean_ms,
            ANATOMY_TOLERANCE * 100.0
        ),
    }
}

/// Each failed request is counted once by kind in `transactions.errors` and under its op,
/// so both add up to `transactions.rolled_back`.
fn errors_match_rolled_back(g: &GroupReport) -> Invariant {
    let in_tx = g.transactions.errors.total();
    let in_ops: u64 = g.ops.iter().map(|o| o.errors.total()).sum();
    let rolled_back = g.transactions.rolled_back;
    // Every failed attempt is in the transactions' errors; the attempts a retry followed are
    // counted apart, and the ops count each failed request once.
    let retried = g.transactions.retried_errors;
    let ok = in_tx == rolled_back + retried && in_ops == rolled_back;
    Invariant {
        name: "errors_match_rolled_back".to_string(),
        checked: true,
        ok,
        expected: (rolled_back + retried) as f64,
        measured: in_tx as f64,
        detail: format!(
            "{rolled_back} rolled back + {retried} retried attempts, {in_tx} errors in transactions, {in_ops} in the ops"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_app(requests: u64, mean_latency_ms: f64) -> RunReport {
        let mut report: crate::report::model::Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        let mut run = report.runs.remove(0);
        run.measured_s = 10.0;
        run.warmup_s = 1.0;
        let app = serde_json::json!({
            "clients": 16, "connection": "persistent", "isolation": "thread", "pids": [1],
            "connections_opened": 0,
            "queue_wait_us": {"min": 0.0, "mean": 0.0, "stddev": 0.0, "p50": 0.0, "p90": 0.0,
                              "p99": 0.0, "p99_9": 0.0, "max": 0.0},
            "anatomy": {"requests": requests, "mean_ms": {"app": 1.0, "queue": mean_latency_ms - 1.0,
                        "lock": 0.0, "execute": 0.0, "commit": 0.0, "connect": 0.0},
                        "total_mean_ms": mean_latency_ms, "p99_requests": 1,
                        "p99_share": {"app": 1.0, "queue": 0.0, "lock": 0.0, "execute": 0.0,
                                      "commit": 0.0, "connect": 0.0}},
            "cpu_ms_per_request": 1.0, "requests": requests, "mean_latency_ms": mean_latency_ms,
            "mean_think_ms": 0.0
        });
        let g = &mut run.groups[0];
        g.open_loop = None;
        g.app = Some(serde_json::from_value(app).unwrap());
        g.transactions.rolled_back = 0;
        g.transactions.errors = Default::default();
        g.ops.iter_mut().for_each(|o| o.errors = Default::default());
        run
    }

    fn failed(run: &RunReport) -> Vec<&str> {
        let app = run.groups[0].app.as_ref().unwrap();
        app.invariants
            .iter()
            .filter(|i| i.checked && !i.ok)
            .map(|i| i.name.as_str())
            .collect()
    }

    #[test]
    fn a_run_that_adds_up_passes_and_one_that_does_not_fails_by_name() {
        // 16 clients, 1600 req/s, 10 ms each: Little's law holds.
        let mut run = with_app(16_000, 10.0);
        check_run(&mut run, false);
        assert!(
            failed(&run).is_empty(),
            "{:?}",
            run.groups[0].app.as_ref().unwrap().invariants
        );
        // The latency lost its queue wait: 16 clients but 1600 req/s × 2 ms = 3.2.
        let mut run = with_app(16_000, 2.0);
        check_run(&mut run, false);
        assert_eq!(failed(&run), ["littles_law"]);
        // The same on a machine too busy to trust: not checked, and it says why.
        let mut run = with_app(16_000, 2.0);
        run.noise = Some(crate::report::model::Noise {
            other_cpu_cores: 1.5,
            cpus: 2,
            ..Default::default()
        });
        check_run(&mut run, false);
        assert!(failed(&run).is_empty());
        let little = &run.groups[0].app.as_ref().unwrap().invariants[0];
        assert!(!little.checked && little.detail.contains("too busy"), "{little:?}");
        assert!(
            little.detail.contains("other processes used 1.50 of 2 cores"),
            "{little:?}"
        );
        // The same with a budget: not checked.
        let mut run = with_app(16_000, 2.0);
        check_run(&mut run, true);
        assert!(failed(&run).is_empty());
        // Parts that do not add up, and a rolled-back request without its error.
        let mut run = with_app(16_000, 10.0);
        run.groups[0].app.as_mut().unwrap().anatomy.mean_ms.lock = 3.0;
        run.groups[0].transactions.rolled_back = 1;
        check_run(&mut run, false);
        assert_eq!(failed(&run), ["anatomy_adds_up", "errors_match_rolled_back"]);
        let mut report: crate::report::model::Report =
            serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        report.runs = vec![run];
        let problems = crate::analysis::status::invariant_problems(&report);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("anatomy_adds_up"), "{problems:?}");
    }

    #[test]
    fn a_latency_without_its_queue_wait_breaks_the_law() {
        // 100 clients at 1000 req/s spend 100 ms per cycle.
        assert!(within(1000.0 * 0.100, 100.0));
        assert!(
            within(1000.0 * (0.050 + 0.050), 100.0),
            "think time is part of the cycle"
        );
        assert!(within(1000.0 * 0.095, 100.0));
        // Issue 29's process workers: 199 req/s × 37 ms for 500 clients.
        assert!(!within(199.0 * 0.037, 500.0));
    }
}
