//! What application-model workers record besides the usual outputs: the latency anatomy,
//! queue waits, connections opened, and the outcomes of transaction blocks.

use super::anatomy::Anatomy;
use super::{ErrorCounts, new_histogram};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// What application-model workers record besides the usual outputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppStats {
    pub anatomy: Anatomy,
    /// Queue wait of completed requests, ns.
    #[serde(with = "super::histogram::serde_v2")]
    pub queue_wait: Histogram<u64>,
    /// Connections opened for requests while measuring (per-request connections).
    pub connections_opened: u64,
    pub blocks: Vec<BlockStats>,
    /// Requests finished while measuring, committed or failed, and the sum of their
    /// latencies (issue to response, ns): Little's law's mean time in the system.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub latency_sum_ns: u64,
    /// Time clients spent out of the system while measuring (closed loop): with a queue the
    /// think times drawn, without one the time from a response to the next request (think
    /// time and the worker's own turn around its loop); their count and sum (ns).
    #[serde(default)]
    pub thinks: u64,
    #[serde(default)]
    pub think_sum_ns: u64,
    /// Requests served inline on a keep-alive connection while measuring: the worker kept
    /// the client instead of taking from the queue (`keep_alive_inline`).
    #[serde(default)]
    pub inline: u64,
    /// This worker thread's use of its process's interpreter lock (not merged: the report
    /// groups them by process).
    #[serde(default)]
    pub interp: Option<InterpStats>,
    /// `queue = "first-free"`: the clients this thread's process bound, read at the end (not
    /// merged: the report lists them by process).
    #[serde(default)]
    pub bound_clients: Option<u32>,
}

/// One thread's counters (while measuring), sent with its results.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InterpStats {
    /// CPU time of this thread's app code (thread CPU clock around each slice), ns.
    pub app_cpu_ns: u64,
    /// Time this thread waited for the interpreter lock, ns.
    pub lock_wait_ns: u64,
    /// App-code slices this thread ran while another thread of its process was waiting in
    /// the busy handler for a database lock.
    pub app_slices_during_db_wait: u64,
    /// App-code slices in all.
    pub app_slices: u64,
    /// Most threads of the process that ran app code at once (read at the end).
    pub max_concurrent_app: u32,
    /// The measured phase on CLOCK_MONOTONIC (the same clock in every process), ns.
    pub start_ns: u64,
    pub end_ns: u64,
}

impl AppStats {
    pub fn new(blocks: Vec<BlockStats>) -> Self {
        Self {
            anatomy: Anatomy::default(),
            queue_wait: new_histogram(),
            connections_opened: 0,
            blocks,
            requests: 0,
            latency_sum_ns: 0,
            thinks: 0,
            think_sum_ns: 0,
            inline: 0,
            interp: None,
            bound_clients: None,
        }
    }

    pub fn merge(&mut self, o: &AppStats) {
        self.anatomy.merge(&o.anatomy);
        self.queue_wait
            .add(&o.queue_wait)
            .expect("auto-resizing histograms add");
        self.connections_opened += o.connections_opened;
        self.requests += o.requests;
        self.latency_sum_ns += o.latency_sum_ns;
        self.thinks += o.thinks;
        self.think_sum_ns += o.think_sum_ns;
        self.inline += o.inline;
        for (a, b) in self.blocks.iter_mut().zip(&o.blocks) {
            a.committed += b.committed;
            a.retried += b.retried;
            a.failed += b.failed;
            a.errors.merge(&b.errors);
        }
    }
}

/// Outcomes of one transaction block (`{ begin = ... }` ... `{ commit = true }`) of an operation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    pub op: usize,
    /// The BEGIN step's index in the script.
    pub begin_step: usize,
    pub committed: u64,
    /// Executions that needed more than one attempt.
    pub retried: u64,
    /// Executions rolled back after all tries.
    pub failed: u64,
    /// Errors per failed attempt.
    pub errors: ErrorCounts,
}
