//! Worker outputs → the report's per-group summaries (histograms merged with `add`).

use crate::config::Arrival;
use crate::engine::loops::plain::{TxCounts, WorkerOutput};
use crate::metrics::{LatencySummary, Recorder, encode_histogram, jain_index, new_histogram};
use crate::report::model::{
    AppReport, BlockReport, Fairness, GroupReport, InterpReport, OpReport, OpenLoopReport, TransactionReport,
    WorkerReport,
};
use crate::workload::{GroupPlan, Workload};
use hdrhistogram::Histogram;

pub(crate) fn summarize(workload: &Workload, outputs: &[WorkerOutput], measured_s: f64) -> Vec<GroupReport> {
    workload
        .groups
        .iter()
        .enumerate()
        .map(|(gi, group)| {
            let mine: Vec<&WorkerOutput> = outputs.iter().filter(|o| o.group_index == gi).collect();
            group_report(group, &mine, measured_s)
        })
        .collect()
}

fn rate(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { n as f64 / seconds } else { 0.0 }
}

fn group_report(group: &GroupPlan, mine: &[&WorkerOutput], measured_s: f64) -> GroupReport {
    let ops = group
        .ops
        .iter()
        .enumerate()
        .map(|(oi, op)| {
            let merged = merge(mine.iter().map(|o| &o.ops[oi]));
            OpReport {
                name: op.name.clone(),
                count: merged.latency.len(),
                errors: merged.errors,
                throughput_per_s: rate(merged.latency.len(), measured_s),
                latency_us: LatencySummary::of(&merged.latency),
                histogram_v2: encode_histogram(&merged.latency),
                first_error: merged.first_error,
            }
        })
        .collect();
    let tx = merge(mine.iter().map(|o| &o.transactions));
    let mut counts = TxCounts::default();
    mine.iter().for_each(|o| counts.merge(&o.counts));
    let per_worker: Vec<WorkerReport> = mine
        .iter()
        .map(|o| WorkerReport {
            id: o.index,
            transactions: o.counts.committed,
            rolled_back: o.counts.failed,
            max_latency_us: o.transactions.latency.max() as f64 / 1000.0,
            busy_handler_calls: o.busy_handler.map(|b| b.calls),
            busy_wait_ms: o.busy_handler.map(|b| b.waited.as_secs_f64() * 1000.0),
            cpu_ms: o.cpu_ns.map(|ns| ns as f64 / 1e6),
            pid: Some(o.pid),
        })
        .collect();
    let observed = mine.iter().all(|o| o.busy_handler.is_some());
    let busy_handler_calls = observed.then(|| per_worker.iter().filter_map(|w| w.busy_handler_calls).sum());
    let busy_wait_ms = observed.then(|| per_worker.iter().filter_map(|w| w.busy_wait_ms).sum());
    GroupReport {
        name: group.name.clone(),
        workers: group.workers,
        transaction: group.transaction.as_str().to_string(),
        statements_per_transaction: group.statements_per_transaction,
        ops,
        transactions: TransactionReport {
            committed: counts.committed,
            rolled_back: counts.failed,
            rolled_back_by_script: counts.script_rolled_back,
            retried_errors: counts.retried_errors,
            retried: counts.retried,
            attempts: counts.attempts,
            errors: tx.errors,
            throughput_per_s: rate(counts.committed, measured_s),
            latency_us: LatencySummary::of(&tx.latency),
            histogram_v2: encode_histogram(&tx.latency),
            first_error: tx.first_error,
        },
        open_loop: open_loop(group, mine, &counts, measured_s),
        fairness: fairness(&per_worker),
        app: app_report(group, mine, &tx.latency, counts.committed),
        per_worker,
        busy_handler_calls,
        busy_wait_ms,
    }
}

fn app_report(
    group: &GroupPlan,
    mine: &[&WorkerOutput],
    latency: &Histogram<u64>,
    completed: u64,
) -> Option<AppReport> {
    let plan = group.app.as_ref()?;
    let mut stats = crate::engine::loops::app::AppStats::new(crate::engine::loops::app::blocks_of(group));
    mine.iter()
        .filter_map(|o| o.app.as_deref())
        .for_each(|a| stats.merge(a));
    let mut pids: Vec<u32> = mine.iter().map(|o| o.pid).collect();
    pids.sort_unstable();
    pids.dedup();
    let cpu_ns: u64 = mine.iter().filter_map(|o| o.cpu_ns).sum();
    let p99 = if latency.is_empty() {
        0
    } else {
        latency.value_at_quantile(0.99)
    };
    Some(AppReport {
        clients: if group.pacing.is_some() { 0 } else { plan.clients },
        think_time: plan.think_time.map(|t| t.to_string()),
        app_time: group
            .ops
            .iter()
            .filter_map(|o| o.app_time.map(|t| (o.name.clone(), t.to_string())))
            .collect(),
        connection: plan.connection.as_str().to_string(),
        isolation: plan.isolation.as_str().to_string(),
        pids,
        connections_opened: stats.connections_opened,
        queue_wait_us: LatencySummary::of(&stats.queue_wait),
        anatomy: stats.anatomy.summary(p99),
        cpu_ms_per_request: if completed == 0 {
            0.0
        } else {
            cpu_ns as f64 / 1e6 / completed as f64
        },
        blocks: stats
            .blocks
            .iter()
            .map(|b| BlockReport {
                op: group.ops[b.op].name.clone(),
                begin_step: b.begin_step,
                committed: b.committed,
                retried: b.retried,
                rolled_back: b.failed,
                errors: b.errors,
            })
            .collect(),
        runtime: plan.runtime.as_str().to_string(),
        busy_wait: plan.busy_wait.map(|b| b.as_str().to_string()),
        threads_per_process: plan.threads_per_process,
        queue: (plan.isolation == crate::config::app::Isolation::Process).then(|| {
            match (plan.shared_queue, plan.first_free) {
                (true, _) => "shared",
                (false, true) => "first-free",
                (false, false) => "per-process",
            }
            .to_string()
        }),
        clients_per_process: clients_per_process(mine),
        keep_alive_inline: plan.keep_alive.map(|k| k.inline),
        keep_alive_wait_ms: plan.keep_alive.map(|k| k.wait_ns as f64 / 1e6),
        inline_requests: plan.keep_alive.map(|_| stats.inline),
        interpreter: interp_report(mine, stats.requests),
        requests: stats.requests,
        mean_latency_ms: mean_ms(stats.latency_sum_ns, stats.requests),
        mean_think_ms: mean_ms(stats.think_sum_ns, stats.thinks),
        invariants: Vec::new(),
    })
}

/// `queue = "first-free"`: the clients each process bound, most first (empty otherwise).
fn clients_per_process(mine: &[&WorkerOutput]) -> Vec<u32> {
    let mut by_pid: std::collections::BTreeMap<u32, u32> = Default::default();
    for o in mine {
        if let Some(n) = o.app.as_ref().and_then(|a| a.bound_clients) {
            by_pid.insert(o.pid, n);
        }
    }
    let mut counts: Vec<u32> = by_pid.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts
}

/// The workers' interpreter-lock counters, grouped by process.
fn interp_report(mine: &[&WorkerOutput], requests: u64) -> Option<InterpReport> {
    let mut by_pid: std::collections::BTreeMap<u32, Vec<crate::metrics::app::InterpStats>> = Default::default();
    for o in mine {
        if let Some(s) = o.app.as_ref().and_then(|a| a.interp) {
            by_pid.entry(o.pid).or_default().push(s);
        }
    }
    if by_pid.is_empty() {
        return None;
    }
    let all = || by_pid.values().flatten();
    let max_app_cpu_per_wall = by_pid
        .values()
        .map(|threads| {
            let cpu: u64 = threads.iter().map(|s| s.app_cpu_ns).sum();
            let start = threads.iter().map(|s| s.start_ns).min().unwrap_or(0);
            let end = threads.iter().map(|s| s.end_ns).max().unwrap_or(0);
            if end > start {
                cpu as f64 / (end - start) as f64
            } else {
                0.0
            }
        })
        .fold(0.0, f64::max);
    Some(InterpReport {
        processes: by_pid.len() as u32,
        app_cpu_ms: all().map(|s| s.app_cpu_ns).sum::<u64>() as f64 / 1e6,
        max_app_cpu_per_wall,
        max_concurrent_app: all().map(|s| s.max_concurrent_app).max().unwrap_or(0),
        lock_wait_ms_per_request: mean_ms(all().map(|s| s.lock_wait_ns).sum(), requests),
        app_slices: all().map(|s| s.app_slices).sum(),
        app_slices_during_db_wait: all().map(|s| s.app_slices_during_db_wait).sum(),
    })
}

fn mean_ms(sum_ns: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { sum_ns as f64 / n as f64 / 1e6 }
}

fn open_loop(group: &GroupPlan, mine: &[&WorkerOutput], counts: &TxCounts, measured_s: f64) -> Option<OpenLoopReport> {
    let pacing = group.pacing?;
    let service = merge_histograms(mine.iter().filter_map(|o| o.service.as_ref()));
    let lag = merge_histograms(mine.iter().filter_map(|o| o.schedule_lag.as_ref()));
    Some(OpenLoopReport {
        target_rate: pacing.group_rate,
        // Arrivals served, whether or not their script committed.
        achieved_rate: rate(counts.committed + counts.script_rolled_back, measured_s),
        arrival: match pacing.arrival {
            Arrival::Fixed => "fixed",
            Arrival::Poisson => "poisson",
        }
        .to_string(),
        service_us: LatencySummary::of(&service),
        service_histogram_v2: encode_histogram(&service),
        schedule_lag_us: LatencySummary::of(&lag),
        latency_limit_ms: group.latency_limit.map(|d| d.as_secs_f64() * 1000.0),
        late: counts.late,
        skipped: counts.skipped,
    })
}

fn merge<'a>(recorders: impl Iterator<Item = &'a Recorder>) -> Recorder {
    let mut total = Recorder::default();
    recorders.for_each(|r| total.merge(r));
    total
}

fn merge_histograms<'a>(hs: impl Iterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut total = new_histogram();
    hs.for_each(|h| total.add(h).expect("auto-resizing histograms add"));
    total
}

fn fairness(workers: &[WorkerReport]) -> Fairness {
    let counts: Vec<u64> = workers.iter().map(|w| w.transactions).collect();
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    Fairness {
        jain_index: jain_index(&counts),
        min_max_ratio: if max == 0 { 1.0 } else { min as f64 / max as f64 },
    }
}
