//! One worker: an OS thread that owns one SQLite connection and runs the hot loop.
//! Nothing here locks shared state, allocates or formats per operation: the loop reads one
//! atomic (the run phase) per transaction, records into its own histograms, and ships a
//! small sample to the driver once per timeline interval.

use crate::config::sqlite::ReadBack;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::loops::clock::Clock;
use crate::engine::loops::pacing::{Pacer, wait_until};
use crate::metrics::timeline::{IntervalSample, RunClock, interval_histogram};
use crate::metrics::{ErrorKind, Recorder, new_histogram};
use crate::targets::{Connect, Target, TargetSpec, WithTarget};
use crate::workload::params::Generator;
use crate::workload::rng::Rng;
use crate::workload::{GroupPlan, ParamPlan, RowEffect};
use hdrhistogram::Histogram;
use rusqlite::types::{Value, ValueRef};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What one worker needs to start.
pub(crate) struct WorkerSpec {
    /// Index among all workers of the run (generators such as `seq()` use it).
    pub index: u32,
    pub total_workers: u32,
    pub group_index: usize,
    /// Index of this worker inside its group (staggers open-loop schedules).
    pub index_in_group: u32,
    pub group: Arc<GroupPlan>,
    pub seed: u64,
    pub tracked_tables: usize,
    /// Measured transactions this worker executes before it stops (operation-count runs).
    pub budget: Option<u64>,
    pub clock: Arc<RunClock>,
    /// Newest rowids of the tables `latest(...)` generators read, shared by the run's workers.
    pub latest: Arc<Vec<(String, Arc<AtomicI64>)>>,
    /// Application-model groups with more clients than workers, or with arrivals: the queue
    /// shared by the group's workers.
    pub queue: Option<Arc<crate::engine::loops::queue::RequestQueue>>,
    /// The database the worker connects to.
    pub target: TargetSpec,
    /// Application-model workers: the interpreter lock of their process (issue 29).
    pub interp: Option<Arc<crate::engine::loops::interp::InterpLock>>,
}

/// Transaction outcomes of the measured phase.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub(crate) struct TxCounts {
    pub committed: u64,
    /// Application model: requests that succeeded but whose script rolled back all it did
    /// (its blocks end in ROLLBACK or `commit = false`); not committed, not failed.
    #[serde(default)]
    pub script_rolled_back: u64,
    /// Application model: failed attempts that a retry followed (counted in the
    /// transactions' errors by kind, as the plain loop counts every failed attempt).
    #[serde(default)]
    pub retried_errors: u64,
    /// Failed after all tries (rolled back).
    pub failed: u64,
    /// Needed more than one attempt (committed or not).
    pub retried: u64,
    pub attempts: u64,
    /// Open loop with a latency limit: committed later than the limit after the intended start.
    pub late: u64,
    /// Open loop with `skip_late`: not executed because already late at their turn.
    pub skipped: u64,
}

impl TxCounts {
    pub(crate) fn merge(&mut self, o: &TxCounts) {
        self.committed += o.committed;
        self.script_rolled_back += o.script_rolled_back;
        self.retried_errors += o.retried_errors;
        self.failed += o.failed;
        self.retried += o.retried;
        self.attempts += o.attempts;
        self.late += o.late;
        self.skipped += o.skipped;
    }
}

/// What a worker reports when it is done.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerOutput {
    pub index: u32,
    pub group_index: usize,
    /// Per operation (its steps together), measured phase only; errors per failed attempt.
    pub ops: Vec<Recorder>,
    /// Committed transactions, from the intended start (open loop) or the actual start,
    /// retries included; BEGIN/COMMIT failures are counted here.
    pub transactions: Recorder,
    /// Open loop: committed transactions from their actual start (service time).
    #[serde(with = "crate::metrics::histogram::serde_v2::option")]
    pub service: Option<Histogram<u64>>,
    /// Open loop: actual start minus intended start.
    #[serde(with = "crate::metrics::histogram::serde_v2::option")]
    pub schedule_lag: Option<Histogram<u64>>,
    pub counts: TxCounts,
    /// Calls of (and time in) litehammer's busy handler while measuring; `None` for
    /// SQLite's own handler, which cannot be observed.
    pub busy_handler: Option<crate::targets::sqlite::busy::HandlerStats>,
    /// Rows inserted / deleted per tracked table by committed transactions, whole run.
    pub acked_inserts: Vec<u64>,
    pub acked_deletes: Vec<u64>,
    /// CPU time of the worker's thread (or process) while measuring.
    pub cpu_ns: Option<u64>,
    /// The OS process the worker ran in.
    pub pid: u32,
    /// Application-model groups: anatomy, queue wait, connections, blocks.
    pub app: Option<Box<crate::metrics::app::AppStats>>,
}

/// What a worker sends the driver (over a channel, or as frames from a worker process).
#[derive(Serialize, Deserialize)]
pub(crate) enum Message {
    Ready {
        index: u32,
        result: Result<Option<ReadBack>, String>,
    },
    Interval(Box<IntervalSample>),
    Done {
        index: u32,
        result: Result<Box<WorkerOutput>, String>,
    },
}

pub(crate) fn worker_main(spec: WorkerSpec, phase: &PhaseFlag, tx: &UnboundedSender<Message>) {
    spec.target.with(PlainLoop { spec: &spec, phase, tx })
}

/// How the plain loop connects: settings read back and checked, the default statement cache.
pub(crate) const CONNECT: Connect = Connect {
    check: true,
    observed: false,
    statement_cache: None,
};

/// The plain loop, instantiated for one target.
struct PlainLoop<'a> {
    spec: &'a WorkerSpec,
    phase: &'a PhaseFlag,
    tx: &'a UnboundedSender<Message>,
}

impl WithTarget for PlainLoop<'_> {
    type Out = ();
    fn run<T: Target>(self, db: &T::Db) {
        match T::connect(db, CONNECT) {
            Ok((conn, read_back)) => serve::<T>(db, &conn, read_back, self.spec, self.phase, self.tx),
            Err(e) => {
                let _ = self.tx.send(Message::Ready {
                    index: self.spec.index,
                    result: Err(e.to_string()),
                });
            }
        }
    }
}

/// Prepares, reports ready, waits for the start, runs the loop and ships the output.
fn serve<T: Target>(
    db: &T::Db,
    conn: &T::Conn,
    read_back: Option<ReadBack>,
    spec: &WorkerSpec,
    phase: &PhaseFlag,
    tx: &UnboundedSender<Message>,
) {
    let index = spec.index;
    let mut session = match Session::<T>::prepare(db, conn, spec, tx, phase) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Message::Ready {
                index,
                result: Err(e.to_string()),
            });
            return;
        }
    };
    if !ready_and_wait(index, read_back, phase, tx) {
        return;
    }
    session.run(phase, spec.budget);
    let output = session.into_output(spec);
    let _ = tx.send(Message::Done {
        index,
        result: Ok(Box::new(output)),
    });
}

/// The start-up handshake of every worker loop: reports ready (with what SQLite read back),
/// then waits for the driver to leave `Starting`. False when the driver has gone.
pub(crate) fn ready_and_wait(
    index: u32,
    read_back: Option<ReadBack>,
    phase: &PhaseFlag,
    tx: &UnboundedSender<Message>,
) -> bool {
    if tx
        .send(Message::Ready {
            index,
            result: Ok(read_back),
        })
        .is_err()
    {
        return false;
    }
    while phase.get() == Phase::Starting {
        std::thread::park_timeout(Duration::from_millis(5));
    }
    true
}

/// One prepared step of an operation, with its generators and captured first-row values.
struct StepRuntime<'c, T: Target + 'c> {
    stmt: T::Stmt<'c>,
    /// One per parameter; `None` where the parameter is a step reference.
    generators: Vec<Option<Generator>>,
    captured: Vec<Value>,
}

/// The current interval's sample, shipped when the interval changes.
struct IntervalRecorder {
    slot: Option<u64>,
    committed: u64,
    errors: crate::metrics::ErrorCounts,
    latency: Histogram<u64>,
}

enum Outcome {
    Committed { attempts: u32 },
    Failed { kind: ErrorKind, attempts: u32 },
}

/// When a transaction started: open loop needs wall-clock instants (intended start, lag);
/// closed loop uses cheap clock ticks, or none at all in single mode (the statement's own
/// timing is the transaction's).
#[derive(Clone, Copy)]
enum Started {
    Paced { intended: Instant, start: Instant },
    Closed { ticks: Option<u64> },
}

/// A worker's prepared statements, generators and recorders.
struct Session<'c, T: Target + 'c> {
    /// Read inside long transactions and back-off sleeps, so that a stop ends them.
    phase: &'c PhaseFlag,
    db: &'c T::Db,
    conn: &'c T::Conn,
    group: Arc<GroupPlan>,
    latest: Arc<Vec<(String, Arc<AtomicI64>)>>,
    clock: Arc<RunClock>,
    /// The hot path's stopwatch (the TSC where the kernel trusts it).
    ticks: Clock,
    /// Autocommit, one operation per transaction, closed loop, no retries: the transaction
    /// is the operation, timed once.
    single: bool,
    /// Latency (ns), end (ticks) and index of the last operation.
    last_op: (u64, u64, usize),
    /// Single mode: the operations' latencies already shipped in interval samples (an
    /// interval's sample is the difference, so each operation is recorded only once).
    shipped: Histogram<u64>,
    /// Tick at which the current timeline interval ends.
    interval_end: u64,
    sender: UnboundedSender<Message>,
    group_index: usize,
    begin: Option<T::Stmt<'c>>,
    commit: T::Stmt<'c>,
    rollback: T::Stmt<'c>,
    ops: Vec<Vec<StepRuntime<'c, T>>>,
    rng: Rng,
    jitter: Rng,
    pacer: Option<Pacer>,
    op_recorders: Vec<Recorder>,
    transactions: Recorder,
    service: Option<Histogram<u64>>,
    schedule_lag: Option<Histogram<u64>>,
    counts: TxCounts,
    interval: IntervalRecorder,
    pending_inserts: Vec<u64>,
    pending_deletes: Vec<u64>,
    acked_inserts: Vec<u64>,
    acked_deletes: Vec<u64>,
    /// Thread CPU time when measuring began.
    cpu_start: Option<u64>,
}

impl<'c, T: Target + 'c> Session<'c, T> {
    fn prepare(
        db: &'c T::Db,
        conn: &'c T::Conn,
        spec: &WorkerSpec,
        sender: &UnboundedSender<Message>,
        phase: &'c PhaseFlag,
    ) -> Result<Self, T::Error> {
        let group = spec.group.clone();
        let mut rng = Rng::derive(spec.seed, spec.index as u64);
        let mut ops = Vec::with_capacity(group.ops.len());
        for op in &group.ops {
            let mut steps = Vec::with_capacity(op.steps.len());
            for step in &op.steps {
                let generators = step_generators(step, &mut rng, spec);
                steps.push(StepRuntime {
                    stmt: T::prepare(conn, step.target_sql())?,
                    generators,
                    captured: vec![Value::Null; step.captures.len()],
                });
            }
            ops.push(steps);
        }
        let tables = spec.tracked_tables;
        let open_loop = group.pacing.is_some();
        let single = group.transaction.begin_sql().is_none()
            && group.statements_per_transaction == 1
            && group.pacing.is_none()
            && group.retry.is_none();
        Ok(Self {
            phase,
            db,
            conn,
            latest: spec.latest.clone(),
            clock: spec.clock.clone(),
            ticks: Clock::get(),
            single,
            last_op: (0, 0, 0),
            shipped: new_histogram(),
            interval_end: 0,
            sender: sender.clone(),
            group_index: spec.group_index,
            begin: group
                .transaction
                .begin_sql()
                .map(|sql| T::prepare(conn, group.begin_for(sql)))
                .transpose()?,
            commit: T::prepare(conn, "COMMIT")?,
            rollback: T::prepare(conn, "ROLLBACK")?,
            ops,
            rng,
            jitter: Rng::derive(spec.seed, 0x717_7E40_0000 + spec.index as u64),
            pacer: group
                .pacing
                .map(|p| Pacer::new(p, spec.index_in_group, spec.seed, spec.index)),
            op_recorders: vec![Recorder::default(); group.ops.len()],
            transactions: Recorder::default(),
            service: open_loop.then(new_histogram),
            schedule_lag: open_loop.then(new_histogram),
            counts: TxCounts::default(),
            interval: IntervalRecorder {
                slot: None,
                committed: 0,
                errors: Default::default(),
                latency: interval_histogram(),
            },
            pending_inserts: vec![0; tables],
            pending_deletes: vec![0; tables],
            acked_inserts: vec![0; tables],
            acked_deletes: vec![0; tables],
            cpu_start: None,
            group,
        })
    }

    /// The one worker loop. The phase decides warm-up, measuring and stopping; an optional
    /// budget ends operation-count runs; an optional pacer makes it open-loop.
    fn run(&mut self, phase: &PhaseFlag, mut budget: Option<u64>) {
        let mut measuring = false;
        let skip_after = if self.group.skip_late {
            self.group.latency_limit
        } else {
            None
        };
        loop {
            match phase.get() {
                Phase::Stop => break,
                Phase::Measure if !measuring => {
                    measuring = true;
                    self.reset_measurements();
                }
                _ => {}
            }
            if measuring && budget == Some(0) {
                break;
            }
            let intended = self.pacer.as_mut().map(Pacer::next_start);
            if let Some(at) = intended
                && !wait_until(at, phase)
            {
                break;
            }
            let started = match intended {
                Some(intended) => Started::Paced {
                    intended,
                    start: Instant::now(),
                },
                None => Started::Closed {
                    ticks: (!self.single).then(|| self.ticks.now()),
                },
            };
            if let (Started::Paced { intended, start }, Some(limit)) = (started, skip_after)
                && start.duration_since(intended) > limit
            {
                if measuring {
                    self.counts.skipped += 1;
                    budget = budget.map(|b| b - 1);
                }
                continue;
            }
            let outcome = self.transaction(measuring);
            if measuring {
                self.record(outcome, started);
                budget = budget.map(|b| b - 1);
            }
        }
        self.ship_interval();
    }

    fn reset_measurements(&mut self) {
        self.op_recorders.iter_mut().for_each(Recorder::reset);
        self.transactions.reset();
        self.service
            .iter_mut()
            .chain(self.schedule_lag.iter_mut())
            .for_each(Histogram::reset);
        self.counts = TxCounts::default();
        self.interval_end = 0;
        self.shipped.reset();
        T::take_lock_waits(self.db, CONNECT);
        self.cpu_start = Some(crate::engine::loops::clock::thread_cpu_ns());
    }

    /// Latency (ns) of a finished transaction and its end in ticks; records the open-loop
    /// extras (service time, schedule lag).
    fn finish_timing(&mut self, started: Started) -> (u64, u64) {
        match started {
            Started::Paced { intended, start } => {
                let end = Instant::now();
                if let Some(service) = &mut self.service {
                    let _ = service.record(end.duration_since(start).as_nanos() as u64);
                }
                if let Some(lag) = &mut self.schedule_lag {
                    let _ = lag.record(start.duration_since(intended).as_nanos() as u64);
                }
                (end.duration_since(intended).as_nanos() as u64, self.ticks.now())
            }
            Started::Closed { ticks: Some(start) } => {
                let end = self.ticks.now();
                (self.ticks.ns_between(start, end), end)
            }
            Started::Closed { ticks: None } => (self.last_op.0, self.last_op.1),
        }
    }

    /// At an interval's end (checked in ticks): ship its sample, note when the next ends.
    fn roll_interval(&mut self, end_ticks: u64) {
        let now = Instant::now();
        let slot = self.clock.slot(now);
        if slot != self.interval.slot {
            self.ship_interval();
            self.interval.slot = slot;
        }
        let left = self.clock.until_next_slot(now).unwrap_or(Duration::from_millis(1));
        self.interval_end = end_ticks + self.ticks.ticks_for(left.as_nanos() as u64).max(1);
    }

    fn record(&mut self, outcome: Outcome, started: Started) {
        let (ns, end_ticks) = self.finish_timing(started);
        if end_ticks >= self.interval_end {
            self.roll_interval(end_ticks);
        }
        let attempts = match outcome {
            Outcome::Committed { attempts } => {
                if self.single {
                    // The operation is the transaction: one record; at the end the operations'
                    // histograms become the transactions', per interval their difference.
                    self.op_recorders[self.last_op.2].record_ns(ns);
                } else {
                    self.transactions.record_ns(ns);
                    let _ = self.interval.latency.record(ns);
                }
                self.interval.committed += 1;
                self.counts.committed += 1;
                if self
                    .group
                    .latency_limit
                    .is_some_and(|limit| ns > limit.as_nanos() as u64)
                {
                    self.counts.late += 1;
                }
                attempts
            }
            Outcome::Failed { kind, attempts } => {
                self.interval.errors.add(kind);
                self.counts.failed += 1;
                attempts
            }
        };
        self.counts.attempts += attempts as u64;
        if attempts > 1 {
            self.counts.retried += 1;
        }
    }

    /// Sends the finished interval's sample (once per interval, never per operation).
    fn ship_interval(&mut self) {
        let i = &mut self.interval;
        let Some(slot) = i.slot else { return };
        if i.committed == 0 && i.errors.total() == 0 {
            return;
        }
        let sample = IntervalSample {
            group: self.group_index,
            slot,
            committed: std::mem::take(&mut i.committed),
            errors: std::mem::take(&mut i.errors),
            latency: if self.single {
                Self::since_shipped(&self.op_recorders, &mut self.shipped)
            } else {
                std::mem::replace(&mut i.latency, interval_histogram())
            },
        };
        let _ = self.sender.send(Message::Interval(Box::new(sample)));
    }

    /// Single mode: the operations' latencies recorded since the last interval sample.
    fn since_shipped(ops: &[Recorder], shipped: &mut Histogram<u64>) -> Histogram<u64> {
        let mut total = new_histogram();
        ops.iter()
            .for_each(|op| total.add(&op.latency).expect("auto-resizing histograms add"));
        let mut delta = total.clone();
        delta.subtract(&*shipped).expect("recorded latencies only grow");
        *shipped = total;
        delta
    }

    /// One transaction, retried on busy/locked errors as the group's retry policy allows.
    /// Retries replay the same random choices (the RNG is restored).
    fn transaction(&mut self, measuring: bool) -> Outcome {
        let max_tries = self.group.retry.as_ref().map_or(1, |r| r.max_tries.get());
        let rng_at_start = (max_tries > 1).then(|| self.rng.clone());
        let mut attempts = 1;
        loop {
            match self.attempt(measuring) {
                Ok(()) => return Outcome::Committed { attempts },
                Err(kind) if attempts < max_tries && is_retryable(kind) => {
                    self.backoff(attempts);
                    self.rng = rng_at_start.clone().expect("kept when retries are allowed");
                    attempts += 1;
                }
                Err(kind) => return Outcome::Failed { kind, attempts },
            }
        }
    }

    fn backoff(&mut self, attempt: u32) {
        if let Some(retry) = &self.group.retry
            && !retry.backoff.0.is_zero()
        {
            super::retry::back_off(retry, attempt, self.jitter.unit(), self.phase);
        }
    }

    fn attempt(&mut self, measuring: bool) -> Result<(), ErrorKind> {
        if let Some(begin) = &mut self.begin
            && let Err(e) = T::control(begin)
        {
            return Err(self.transaction_error(&e, measuring));
        }
        for n in 0..self.group.statements_per_transaction {
            // A long transaction stops with the run: rolled back, not committed.
            if n % 256 == 255 && self.phase.get() == Phase::Stop {
                self.abort();
                return Err(ErrorKind::Other);
            }
            if let Err(kind) = self.operation(measuring) {
                self.abort();
                return Err(kind);
            }
        }
        if self.begin.is_some()
            && let Err(e) = T::control(&mut self.commit)
        {
            let kind = self.transaction_error(&e, measuring);
            self.abort();
            return Err(kind);
        }
        self.acknowledge();
        Ok(())
    }

    fn transaction_error(&mut self, e: &T::Error, measuring: bool) -> ErrorKind {
        let kind = T::classify(e);
        if measuring {
            self.transactions.record_failure(kind, e);
        }
        kind
    }

    /// Chooses and runs one operation (all its steps); records its service time.
    fn operation(&mut self, measuring: bool) -> Result<(), ErrorKind> {
        let i = self.group.choose(&mut self.rng);
        let start = self.ticks.now();
        let result = self.execute_steps(i);
        let end = self.ticks.now();
        let elapsed = self.ticks.ns_between(start, end);
        self.last_op = (elapsed, end, i);
        match result {
            Ok(()) => {
                if measuring && !self.single {
                    self.op_recorders[i].record_ns(elapsed);
                }
                Ok(())
            }
            Err(e) => {
                let kind = T::classify(&e);
                if measuring {
                    self.op_recorders[i].record_failure(kind, &e);
                }
                Err(kind)
            }
        }
    }

    fn execute_steps(&mut self, op: usize) -> Result<(), T::Error> {
        let plan = &self.group.ops[op];
        let steps = &mut self.ops[op];
        for (s, step_plan) in plan.steps.iter().enumerate() {
            let (earlier, rest) = steps.split_at_mut(s);
            let step = &mut rest[0];
            for (p, param) in step_plan.params.iter().enumerate() {
                match (param, &mut step.generators[p]) {
                    (ParamPlan::Gen(_), Some(g)) => T::bind(&mut step.stmt, p + 1, g.next(&mut self.rng))?,
                    (ParamPlan::Ref { step: from, slot }, _) => {
                        T::bind(&mut step.stmt, p + 1, ValueRef::from(&earlier[*from].captured[*slot]))?
                    }
                    (ParamPlan::Gen(_), None) => unreachable!("generators are built for every generator parameter"),
                }
            }
            T::run(&mut step.stmt, &step_plan.captures, &mut step.captured)?;
            match step_plan.effect {
                RowEffect::Insert(t) => self.pending_inserts[t] += T::changes(self.conn),
                RowEffect::Delete(t) => self.pending_deletes[t] += T::changes(self.conn),
                RowEffect::None => {}
            }
            if let Some(l) = step_plan.bumps_latest {
                self.latest[l]
                    .1
                    .fetch_max(T::last_insert_id(self.conn), Ordering::Relaxed);
            }
            if self.begin.is_none() && step_plan.effect != RowEffect::None {
                // Autocommit: each step committed on its own.
                acknowledge(&mut self.acked_inserts, &mut self.pending_inserts);
                acknowledge(&mut self.acked_deletes, &mut self.pending_deletes);
            }
        }
        Ok(())
    }

    fn acknowledge(&mut self) {
        acknowledge(&mut self.acked_inserts, &mut self.pending_inserts);
        acknowledge(&mut self.acked_deletes, &mut self.pending_deletes);
    }

    fn abort(&mut self) {
        self.pending_inserts.iter_mut().for_each(|p| *p = 0);
        self.pending_deletes.iter_mut().for_each(|p| *p = 0);
        if T::in_transaction(self.conn) {
            let _ = T::control(&mut self.rollback);
        }
    }

    fn into_output(mut self, spec: &WorkerSpec) -> WorkerOutput {
        if self.single {
            for op in &self.op_recorders {
                self.transactions
                    .latency
                    .add(&op.latency)
                    .expect("auto-resizing histograms add");
            }
        }
        WorkerOutput {
            index: spec.index,
            group_index: spec.group_index,
            ops: self.op_recorders,
            transactions: self.transactions,
            service: self.service,
            schedule_lag: self.schedule_lag,
            counts: self.counts,
            busy_handler: T::take_lock_waits(self.db, CONNECT),
            acked_inserts: self.acked_inserts,
            acked_deletes: self.acked_deletes,
            cpu_ns: self
                .cpu_start
                .map(|t| crate::engine::loops::clock::thread_cpu_ns().saturating_sub(t)),
            pid: std::process::id(),
            app: None,
        }
    }
}

/// A worker's generators for one step's parameters, drawn from `rng` in parameter order
/// (`None` where a parameter is a step reference). Both loops call it, op by op and step by
/// step, so a worker's streams are the same in either.
pub(crate) fn step_generators(
    step: &crate::workload::StepPlan,
    rng: &mut Rng,
    spec: &WorkerSpec,
) -> Vec<Option<Generator>> {
    step.params
        .iter()
        .map(|p| match p {
            ParamPlan::Gen(g) => Some(crate::workload::params::instantiate(
                g,
                rng,
                spec.index as u64,
                spec.total_workers as u64,
                &spec.latest,
            )),
            ParamPlan::Ref { .. } => None,
        })
        .collect()
}

/// Moves pending row counts of a committed transaction into the acknowledged ones.
fn acknowledge(acked: &mut [u64], pending: &mut [u64]) {
    for (a, p) in acked.iter_mut().zip(pending.iter_mut()) {
        *a += std::mem::take(p);
    }
}

fn is_retryable(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Busy | ErrorKind::BusySnapshot | ErrorKind::Locked | ErrorKind::Serialization | ErrorKind::Conflict
    )
}
