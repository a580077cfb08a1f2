//! The request worker of application-model groups (issue 15).
//!
//! A request is taken from the group's queue (or issued by the worker's own client after its
//! think time), served on a persistent or a per-request connection, and timed in contiguous
//! segments on the hot path's clock, so its latency anatomy adds up: queue wait, app time
//! (a calibrated CPU spin on this thread), lock wait (inside the busy handler), statement
//! execution, COMMIT, and connection set-up.
//!
//! Groups that use none of the model never enter this module: `worker::worker_main` branches
//! once, before the loop.

use crate::config::app::TxControl;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::loops::clock::Clock;
use crate::engine::loops::interp;
use crate::engine::loops::plain::{Message, TxCounts, WorkerOutput, WorkerSpec};
use crate::engine::loops::queue::Ticket;
use crate::metrics::anatomy::{PARTS, Part};
pub(crate) use crate::metrics::app::{AppStats, BlockStats};
use crate::metrics::timeline::{IntervalSample, interval_histogram};
use crate::metrics::{ErrorCounts, ErrorKind, Recorder};
use crate::targets::{Connect, Target, WithTarget};
use crate::workload::params::Generator;
use crate::workload::rng::Rng;
use crate::workload::{AppPlan, GroupPlan, Inline, ParamPlan, RowEffect};
use hdrhistogram::Histogram;
use rusqlite::types::{Value, ValueRef};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// The transaction blocks of a group's operations, in order (the layout of `AppStats::blocks`).
pub fn blocks_of(group: &GroupPlan) -> Vec<BlockStats> {
    let mut blocks = Vec::new();
    if group.transaction.begin_sql().is_some() {
        return blocks;
    }
    for (oi, op) in group.ops.iter().enumerate() {
        for (si, step) in op.steps.iter().enumerate() {
            if step.control == TxControl::Begin {
                blocks.push(BlockStats {
                    op: oi,
                    begin_step: si,
                    ..Default::default()
                });
            }
        }
    }
    blocks
}

/// Steps that run (and are retried) together: one autocommit statement, a transaction block,
/// or with a group transaction mode the whole script inside BEGIN ... COMMIT.
#[derive(Clone, Copy, Debug)]
struct Unit {
    first: usize,
    end: usize,
    /// The group's BEGIN runs before the first step and COMMIT after the last.
    group_begin: bool,
    /// Index into `AppStats::blocks`.
    block: Option<usize>,
    /// The block ends in ROLLBACK: nothing it wrote is acknowledged.
    rolls_back: bool,
}

fn units_of(group: &GroupPlan) -> Vec<Vec<Unit>> {
    let mut block_index = 0;
    group
        .ops
        .iter()
        .map(|op| {
            let n = op.steps.len();
            if group.transaction.begin_sql().is_some() {
                return vec![Unit {
                    first: 0,
                    end: n,
                    group_begin: true,
                    block: None,
                    rolls_back: false,
                }];
            }
            let mut units = Vec::new();
            let mut i = 0;
            while i < n {
                if op.steps[i].control == TxControl::Begin {
                    let close = (i + 1..n)
                        .find(|&j| matches!(op.steps[j].control, TxControl::Commit | TxControl::Rollback))
                        .unwrap_or(n - 1);
                    units.push(Unit {
                        first: i,
                        end: close + 1,
                        group_begin: false,
                        block: Some(block_index),
                        rolls_back: op.steps[close].control == TxControl::Rollback,
                    });
                    block_index += 1;
                    i = close + 1;
                } else {
                    units.push(Unit {
                        first: i,
                        end: i + 1,
                        group_begin: false,
                        block: None,
                        rolls_back: false,
                    });
                    i += 1;
                }
            }
            units
        })
        .collect()
}

/// Spin iterations per nanosecond on this machine, measured once per process (or given by
/// the driver to worker processes, so they don't measure while competing for the cores).
static SPIN_RATE: OnceLock<f64> = OnceLock::new();

#[inline(never)]
fn spin_iterations(n: u64) -> u64 {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = std::hint::black_box(x);
    }
    x
}

/// Iterations of the spin loop per nanosecond of CPU time (best of several tries).
pub fn spin_rate() -> f64 {
    *SPIN_RATE.get_or_init(|| {
        const N: u64 = 2_000_000;
        // Timed in this thread's CPU time, not wall time: a loaded machine preempting the
        // calibration must not make the spin shorter.
        let best = (0..5)
            .map(|_| {
                let t = crate::engine::loops::clock::thread_cpu_ns();
                std::hint::black_box(spin_iterations(N));
                crate::engine::loops::clock::thread_cpu_ns().saturating_sub(t).max(1) as f64
            })
            .fold(f64::MAX, f64::min);
        N as f64 / best
    })
}

/// Uses a rate measured elsewhere (worker processes get the driver's).
pub fn set_spin_rate(rate: f64) {
    let _ = SPIN_RATE.set(rate);
}

/// Burns `ns` of CPU time (as measured unloaded): under contention it takes longer, as
/// application code does.
#[inline]
pub fn spin(ns: u64) {
    if ns > 0 {
        std::hint::black_box(spin_iterations((ns as f64 * spin_rate()) as u64));
    }
}

/// The longest spin between two looks at the stop token.
const SPIN_SLICE_NS: u64 = 1_000_000;

/// Runs an application-model worker until the run stops; sends Ready, samples and Done.
pub fn worker_main(spec: WorkerSpec, phase: &PhaseFlag, tx: &UnboundedSender<Message>) {
    spin_rate();
    spec.target.with(AppLoop { spec: &spec, phase, tx })
}

/// How the request loop connects: lock waits observed, a statement cache for the group's
/// steps; the first connection reads the settings back, per-request ones only apply them.
fn connect_how(spec: &WorkerSpec, check: bool) -> Connect {
    let steps: usize = spec.group.ops.iter().map(|o| o.steps.len()).sum();
    Connect {
        check,
        observed: true,
        statement_cache: Some(steps + 4),
    }
}

/// The request loop, instantiated for one target.
struct AppLoop<'a> {
    spec: &'a WorkerSpec,
    phase: &'a PhaseFlag,
    tx: &'a UnboundedSender<Message>,
}

impl WithTarget for AppLoop<'_> {
    type Out = ();
    fn run<T: Target>(self, db: &T::Db) {
        match T::connect(db, connect_how(self.spec, true)) {
            Ok((conn, read_back)) => serve::<T>(self.spec, db, conn, read_back, self.phase, self.tx),
            Err(e) => {
                let _ = self.tx.send(Message::Ready {
                    index: self.spec.index,
                    result: Err(e.to_string()),
                });
            }
        }
    }
}

fn serve<T: Target>(
    spec: &WorkerSpec,
    db: &T::Db,
    conn: T::Conn,
    read_back: Option<crate::config::sqlite::ReadBack>,
    phase: &PhaseFlag,
    tx: &UnboundedSender<Message>,
) {
    let index = spec.index;
    let plan = spec.group.app.clone().expect("an application-model group");
    let persistent = plan.connection == crate::config::app::ConnectionMode::Persistent;
    if let Some(lock) = &spec.interp {
        crate::engine::loops::interp::bind(lock.clone());
    }
    let mut worker = RequestWorker::<T>::new(spec, db, plan, persistent.then_some(conn), phase, tx.clone());
    if !crate::engine::loops::plain::ready_and_wait(index, read_back, phase, tx) {
        return;
    }
    worker.run(phase);
    let output = worker.into_output();
    if let Some(q) = &spec.queue {
        q.wake_all();
    }
    let _ = tx.send(Message::Done {
        index,
        result: Ok(Box::new(output)),
    });
}

struct RequestWorker<'s, T: Target> {
    spec: &'s WorkerSpec,
    db: &'s T::Db,
    /// Read by the retry back-off, so that a stop ends it.
    phase: &'s PhaseFlag,
    /// How per-request connections are opened (and lock waits taken).
    per_request: Connect,
    group: &'s GroupPlan,
    plan: AppPlan,
    conn: Option<T::Conn>,
    units: Vec<Vec<Unit>>,
    /// Per operation, step and parameter.
    generators: Vec<Vec<Vec<Option<Generator>>>>,
    /// Per operation and step: the captured first-row values.
    captured: Vec<Vec<Vec<Value>>>,
    rng: Rng,
    /// App and think time draws, back-off jitter (not replayed on retries).
    timing: Rng,
    ticks: Clock,
    /// End of the last segment (ticks) and the current request's parts (ns).
    mark: u64,
    parts: [u64; PARTS],
    budget: Option<u64>,
    measuring: bool,
    cpu_start: u64,
    ops: Vec<Recorder>,
    transactions: Recorder,
    counts: TxCounts,
    stats: AppStats,
    interval_slot: Option<u64>,
    interval_committed: u64,
    /// The last request succeeded but every unit of it rolled back (the script's ROLLBACK
    /// or `commit = false`): SQLite committed none of it.
    script_rolled_back: bool,
    interval_errors: ErrorCounts,
    interval_latency: Histogram<u64>,
    sender: UnboundedSender<Message>,
    pending_inserts: Vec<u64>,
    pending_deletes: Vec<u64>,
    acked_inserts: Vec<u64>,
    acked_deletes: Vec<u64>,
    /// When the last response was sent (ticks): a queue-less client's next request is
    /// issued after it.
    last_end: Option<u64>,
    /// Per operation and step: the savepoint statement it is, if any.
    savepoints: Vec<Vec<Option<Savepoint>>>,
    /// Open savepoints, innermost last, each with the pending counts when it began: a
    /// `ROLLBACK TO` undoes what SQLite undid, so its rows are never acknowledged.
    open_savepoints: Vec<(String, Vec<u64>, Vec<u64>)>,
}

type StepError<T> = (ErrorKind, <T as Target>::Error);

impl<'s, T: Target> RequestWorker<'s, T> {
    fn new(
        spec: &'s WorkerSpec,
        db: &'s T::Db,
        plan: AppPlan,
        conn: Option<T::Conn>,
        phase: &'s PhaseFlag,
        sender: UnboundedSender<Message>,
    ) -> Self {
        let group = &*spec.group;
        let mut rng = Rng::derive(spec.seed, spec.index as u64);
        let generators = group
            .ops
            .iter()
            .map(|op| {
                op.steps
                    .iter()
                    .map(|step| crate::engine::loops::plain::step_generators(step, &mut rng, spec))
                    .collect()
            })
            .collect();
        let captured = group
            .ops
            .iter()
            .map(|op| op.steps.iter().map(|s| vec![Value::Null; s.captures.len()]).collect())
            .collect();
        let tables = spec.tracked_tables;
        Self {
            spec,
            group,
            plan,
            conn,
            db,
            phase,
            per_request: connect_how(spec, false),
            units: units_of(group),
            generators,
            captured,
            rng,
            timing: Rng::derive(spec.seed, 0xA99_0000_0000 + spec.index as u64),
            ticks: Clock::get(),
            mark: 0,
            parts: [0; PARTS],
            budget: spec.budget,
            measuring: false,
            cpu_start: 0,
            ops: vec![Recorder::default(); group.ops.len()],
            transactions: Recorder::default(),
            counts: TxCounts::default(),
            stats: AppStats::new(blocks_of(group)),
            interval_slot: None,
            interval_committed: 0,
            script_rolled_back: false,
            interval_errors: ErrorCounts::default(),
            interval_latency: interval_histogram(),
            sender,
            pending_inserts: vec![0; tables],
            pending_deletes: vec![0; tables],
            acked_inserts: vec![0; tables],
            acked_deletes: vec![0; tables],
            savepoints: group
                .ops
                .iter()
                .map(|op| op.steps.iter().map(|st| Savepoint::of(st.target_sql())).collect())
                .collect(),
            open_savepoints: Vec::new(),
            last_end: None,
        }
    }

    fn run(&mut self, phase: &PhaseFlag) {
        let queue = self.spec.queue.clone();
        let keep_alive = self.plan.keep_alive;
        // A keep-alive client this worker serves inline (its next request), and how many of
        // its requests it has served in a row.
        let mut held: Option<Ticket> = None;
        let mut served = 0u32;
        loop {
            match phase.get() {
                Phase::Stop => break,
                Phase::Measure if !self.measuring => self.reset_measurements(),
                _ => {}
            }
            if self.measuring && self.budget == Some(0) {
                break;
            }
            let inline = held.is_some();
            let ticket = match &queue {
                Some(q) => match held.take() {
                    Some(t) => t,
                    None => match q.take(phase) {
                        Some(t) => {
                            served = 0;
                            t
                        }
                        None => break,
                    },
                },
                None => {
                    if let Some(think) = self.plan.think_time {
                        let ns = sample_ns(&think, &mut self.timing);
                        let at = Instant::now() + Duration::from_nanos(ns);
                        if !crate::engine::loops::pacing::wait_until(at, phase) {
                            break;
                        }
                    }
                    let issued = self.ticks.now();
                    // The client was out of the system from its last response to now: its
                    // think time and its own turn around the loop (Little's law's cycle).
                    if let Some(end) = self.last_end {
                        let gap = self.ticks.ns_between(end, issued);
                        self.note_think(gap);
                    }
                    Ticket { issued, client: false }
                }
            };
            // Without a queue the request starts when it is issued: no queue wait at all.
            let start = if queue.is_some() {
                self.ticks.now()
            } else {
                ticket.issued
            };
            self.mark = start;
            self.parts = [0; PARTS];
            self.parts[Part::Queue as usize] = self.ticks.ns_between(ticket.issued, start);
            let op = self.group.choose(&mut self.rng);
            let outcome = self.request(op);
            // The response is written: the thread waits for its next request without the
            // interpreter lock.
            interp::release();
            let end = self.mark;
            self.last_end = Some(end);
            // How long this worker stays on its keep-alive client's connection (ns after `end`).
            let mut stay_ns = 0;
            if let Some(q) = &queue {
                let think = self.plan.think_time.map_or(0, |t| sample_ns(&t, &mut self.timing));
                if ticket.client && self.plan.think_time.is_some() {
                    self.note_think(think);
                }
                match keep_alive.filter(|_| ticket.client) {
                    // Puma: after `inline` requests in a row the client goes back to the
                    // reactor if another request waits; else the thread waits (up to `wait_ns`)
                    // for the client's next one on the same connection.
                    Some(ka) => {
                        served += 1;
                        match ka.after(served, think, || q.has_due()) {
                            Inline::Hold { stay_ns: s } => {
                                held = Some(q.inline_ticket(end, think));
                                stay_ns = s;
                            }
                            Inline::GiveBack { stay_ns: s } => {
                                stay_ns = s;
                                q.done(ticket, end, think, phase);
                            }
                        }
                    }
                    None => q.done(ticket, end, think, phase),
                }
            }
            if self.measuring {
                self.record(op, outcome, self.ticks.ns_between(ticket.issued, end));
                self.budget = self.budget.map(|b| b - 1);
                self.stats.inline += u64::from(inline);
            }
            if stay_ns > 0 {
                let left = stay_ns.saturating_sub(self.ticks.ns_between(end, self.ticks.now()));
                let until = Instant::now() + Duration::from_nanos(left);
                if !crate::engine::loops::pacing::wait_until(until, phase) {
                    break;
                }
            }
        }
        self.ship_interval();
    }

    /// A closed-loop client's think time, counted for Little's law while measuring.
    #[inline]
    fn note_think(&mut self, ns: u64) {
        if self.measuring {
            self.stats.thinks += 1;
            self.stats.think_sum_ns += ns;
        }
    }

    fn reset_measurements(&mut self) {
        self.measuring = true;
        self.ops.iter_mut().for_each(Recorder::reset);
        self.transactions.reset();
        self.counts = TxCounts::default();
        let blocks = blocks_of(self.group);
        self.stats = AppStats::new(blocks);
        T::take_lock_waits(self.db, self.per_request);
        interp::start_measuring();
        self.cpu_start = crate::engine::loops::clock::thread_cpu_ns();
    }

    /// Closes the current segment as `part`.
    #[inline]
    fn seg(&mut self, part: Part) {
        let now = self.ticks.now();
        self.parts[part as usize] += self.ticks.ns_between(self.mark, now);
        self.mark = now;
    }

    /// Closes a database segment: the busy handler's time since `waited_before` is lock wait.
    #[inline]
    fn seg_db(&mut self, part: Part, waited_before: u64) {
        let now = self.ticks.now();
        let ns = self.ticks.ns_between(self.mark, now);
        let lock = T::lock_waited_ns().saturating_sub(waited_before).min(ns);
        self.parts[Part::Lock as usize] += lock;
        self.parts[part as usize] += ns - lock;
        self.mark = now;
    }

    /// App time: spun in slices, each holding the process's interpreter lock (if any).
    fn app(&mut self, ns: u64) {
        if ns > 0 {
            let mut left = ns;
            while left > 0 && self.phase.get() != Phase::Stop {
                let slice = left.min(SPIN_SLICE_NS);
                interp::app_slice(|| spin(slice));
                left -= slice;
            }
            self.seg(Part::App);
        }
    }

    /// One request: connection, app time and the operation's units. Returns the attempts.
    fn request(&mut self, op: usize) -> Result<u32, StepError<T>> {
        if self.conn.is_none() {
            let w0 = T::lock_waited_ns();
            let opened = T::connect(self.db, self.per_request).map(|(c, _)| c);
            self.seg_db(Part::Connect, w0);
            match opened {
                Ok(c) => {
                    self.conn = Some(c);
                    if self.measuring {
                        self.stats.connections_opened += 1;
                    }
                }
                Err(e) => return Err((T::classify(&e), e)),
            }
        }
        let plan_op = &self.group.ops[op];
        let gaps = plan_op.steps.len() as u64 + 1;
        let share = plan_op.app_time.map_or(0, |t| sample_ns(&t, &mut self.timing) / gaps);
        let mut attempts = 1;
        let mut result = Ok(());
        let mut committed_any = false;
        for u in 0..self.units[op].len() {
            let unit = self.units[op][u];
            self.app(share);
            match self.unit(op, unit, share) {
                Ok(a) => {
                    attempts += a - 1;
                    committed_any |= !unit.rolls_back;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.script_rolled_back = result.is_ok() && !committed_any && !self.units[op].is_empty();
        if result.is_ok() {
            self.app(share);
        }
        // A request that leaves a transaction open (an unreleased SAVEPOINT) committed
        // none of it: roll it back, as closing the connection would, and acknowledge nothing.
        if self.conn.as_ref().is_some_and(|c| T::in_transaction(c)) {
            self.rollback();
        }
        if self.plan.connection == crate::config::app::ConnectionMode::PerRequest {
            drop(self.conn.take());
            self.seg(Part::Connect);
        }
        result.map(|()| attempts)
    }

    /// A unit, retried on busy/locked errors as the group's retry policy allows.
    fn unit(&mut self, op: usize, unit: Unit, share: u64) -> Result<u32, StepError<T>> {
        let max_tries = self.group.retry.as_ref().map_or(1, |r| r.max_tries.get());
        let rng_at_start = (max_tries > 1).then(|| self.rng.clone());
        let mut attempts = 1;
        loop {
            match self.attempt(op, unit, share) {
                Ok(()) => {
                    // What SQLite did: a block that ended in ROLLBACK committed nothing, and
                    // a unit that left a transaction open (an unreleased SAVEPOINT outside a
                    // block) has committed nothing yet.
                    let open = self.conn.as_ref().is_some_and(|c| T::in_transaction(c));
                    if unit.rolls_back {
                        self.discard();
                    } else if !open {
                        self.acknowledge();
                    }
                    if let Some(b) = unit.block.filter(|_| self.measuring) {
                        if unit.rolls_back {
                            self.stats.blocks[b].failed += 1;
                        } else {
                            self.stats.blocks[b].committed += 1;
                        }
                        self.stats.blocks[b].retried += u64::from(attempts > 1);
                    }
                    return Ok(attempts);
                }
                Err((kind, e)) => {
                    self.rollback();
                    if let Some(b) = unit.block.filter(|_| self.measuring) {
                        self.stats.blocks[b].errors.add(kind);
                    }
                    if attempts < max_tries
                        && matches!(
                            kind,
                            ErrorKind::Busy
                                | ErrorKind::BusySnapshot
                                | ErrorKind::Locked
                                | ErrorKind::Serialization
                                | ErrorKind::Conflict
                        )
                    {
                        // Each failed attempt is counted by kind, as the plain loop counts it
                        // (a conflict or busy error that a retry then got past).
                        if self.measuring {
                            self.transactions.record_failure(kind, &e);
                            self.counts.retried_errors += 1;
                        }
                        self.backoff(attempts);
                        self.rng = rng_at_start.clone().expect("kept when retries are allowed");
                        attempts += 1;
                        continue;
                    }
                    if let Some(b) = unit.block.filter(|_| self.measuring) {
                        self.stats.blocks[b].failed += 1;
                        self.stats.blocks[b].retried += u64::from(attempts > 1);
                    }
                    return Err((kind, e));
                }
            }
        }
    }

    fn attempt(&mut self, op: usize, unit: Unit, share: u64) -> Result<(), StepError<T>> {
        if unit.group_begin {
            let sql = self
                .group
                .begin_for(self.group.transaction.begin_sql().expect("a group transaction mode"));
            self.control(sql, Part::Execute)?;
        }
        for i in unit.first..unit.end {
            if i != unit.first {
                self.app(share);
            }
            if let Some(t) = self.group.ops[op].steps[i].app_time {
                let ns = sample_ns(&t, &mut self.timing);
                self.app(ns);
            }
            self.step(op, i)?;
        }
        if unit.group_begin {
            self.control("COMMIT", Part::Commit)?;
        }
        Ok(())
    }

    fn control(&mut self, sql: &str, part: Part) -> Result<(), StepError<T>> {
        interp::for_statement();
        let w0 = T::lock_waited_ns();
        let conn = self.conn.as_ref().expect("connected");
        let r = T::prepare_cached(conn, sql).and_then(|mut s| T::control(&mut s));
        self.seg_db(part, w0);
        r.map_err(|e| (T::classify(&e), e))
    }

    fn step(&mut self, op: usize, si: usize) -> Result<(), StepError<T>> {
        interp::for_statement();
        let w0 = T::lock_waited_ns();
        let step = &self.group.ops[op].steps[si];
        let part = match step.control {
            TxControl::Commit => Part::Commit,
            _ => Part::Execute,
        };
        let conn = self.conn.as_ref().expect("connected");
        let result = (|| {
            let mut stmt = T::prepare_cached(conn, step.target_sql())?;
            let (earlier, rest) = self.captured[op].split_at_mut(si);
            let generators = &mut self.generators[op][si];
            for (p, param) in step.params.iter().enumerate() {
                match (param, &mut generators[p]) {
                    (ParamPlan::Gen(_), Some(g)) => T::bind(&mut stmt, p + 1, g.next(&mut self.rng))?,
                    (ParamPlan::Ref { step: from, slot }, _) => {
                        T::bind(&mut stmt, p + 1, ValueRef::from(&earlier[*from][*slot]))?
                    }
                    (ParamPlan::Gen(_), None) => unreachable!("generators are built for every generator parameter"),
                }
            }
            T::run(&mut stmt, &step.captures, &mut rest[0])?;
            match step.effect {
                RowEffect::Insert(t) => self.pending_inserts[t] += T::changes(conn),
                RowEffect::Delete(t) => self.pending_deletes[t] += T::changes(conn),
                RowEffect::None => {}
            }
            if let Some(l) = step.bumps_latest {
                self.spec.latest[l]
                    .1
                    .fetch_max(T::last_insert_id(conn), Ordering::Relaxed);
            }
            Ok(())
        })();
        self.seg_db(part, w0);
        if result.is_ok() {
            self.follow_savepoint(op, si);
        }
        result.map_err(|e| (T::classify(&e), e))
    }

    /// Keeps the pending counts in step with a savepoint statement that succeeded.
    fn follow_savepoint(&mut self, op: usize, si: usize) {
        let Some(sp) = &self.savepoints[op][si] else { return };
        match sp {
            Savepoint::Begin(name) => {
                self.open_savepoints
                    .push((name.clone(), self.pending_inserts.clone(), self.pending_deletes.clone()));
            }
            Savepoint::Release(name) => {
                if let Some(i) = self.open_savepoints.iter().rposition(|(n, _, _)| n == name) {
                    self.open_savepoints.truncate(i);
                }
            }
            Savepoint::RollbackTo(name) => {
                if let Some(i) = self.open_savepoints.iter().rposition(|(n, _, _)| n == name) {
                    self.open_savepoints.truncate(i + 1);
                    let (_, ins, del) = &self.open_savepoints[i];
                    self.pending_inserts.clone_from(ins);
                    self.pending_deletes.clone_from(del);
                }
            }
        }
    }

    fn rollback(&mut self) {
        self.discard();
        if let Some(conn) = &self.conn
            && T::in_transaction(conn)
        {
            interp::for_statement();
            let _ = T::prepare_cached(conn, "ROLLBACK").and_then(|mut s| T::control(&mut s));
            self.seg(Part::Execute);
        }
    }

    fn backoff(&mut self, attempt: u32) {
        let Some(retry) = &self.group.retry else { return };
        if !retry.backoff.0.is_zero() {
            super::retry::back_off(retry, attempt, self.timing.unit(), self.phase);
        }
        self.seg(Part::Lock);
    }

    fn acknowledge(&mut self) {
        self.open_savepoints.clear();
        for (a, p) in self.acked_inserts.iter_mut().zip(self.pending_inserts.iter_mut()) {
            *a += std::mem::take(p);
        }
        for (a, p) in self.acked_deletes.iter_mut().zip(self.pending_deletes.iter_mut()) {
            *a += std::mem::take(p);
        }
    }

    fn discard(&mut self) {
        self.pending_inserts.iter_mut().for_each(|p| *p = 0);
        self.pending_deletes.iter_mut().for_each(|p| *p = 0);
        self.open_savepoints.clear();
    }

    fn record(&mut self, op: usize, outcome: Result<u32, StepError<T>>, latency_ns: u64) {
        let slot = self.spec.clock.slot(Instant::now());
        if slot != self.interval_slot {
            self.ship_interval();
            self.interval_slot = slot;
        }
        self.stats.requests += 1;
        self.stats.latency_sum_ns += latency_ns;
        match outcome {
            Ok(attempts) => {
                self.ops[op].record_ns(latency_ns);
                self.transactions.record_ns(latency_ns);
                let _ = self.interval_latency.record(latency_ns);
                // A request that succeeded but whose script rolled back everything it did
                // is served, yet no transaction committed: not counted in tx/s.
                if self.script_rolled_back {
                    self.counts.script_rolled_back += 1;
                } else {
                    self.interval_committed += 1;
                    self.counts.committed += 1;
                }
                self.counts.attempts += attempts as u64;
                self.counts.retried += u64::from(attempts > 1);
                if self
                    .group
                    .latency_limit
                    .is_some_and(|limit| latency_ns > limit.as_nanos() as u64)
                {
                    self.counts.late += 1;
                }
                self.stats.anatomy.record(latency_ns, &self.parts);
                let _ = self.stats.queue_wait.record(self.parts[Part::Queue as usize]);
            }
            Err((kind, e)) => {
                // Once per failed request, by kind, under its op and in the group's
                // transactions, so that `transactions.errors` adds up to `rolled_back`.
                self.ops[op].record_failure(kind, &e);
                self.transactions.errors.add(kind);
                self.interval_errors.add(kind);
                self.counts.failed += 1;
                self.counts.attempts += 1;
            }
        }
    }

    fn ship_interval(&mut self) {
        let Some(slot) = self.interval_slot else { return };
        if self.interval_committed == 0 && self.interval_errors.total() == 0 {
            return;
        }
        let sample = IntervalSample {
            group: self.spec.group_index,
            slot,
            committed: std::mem::take(&mut self.interval_committed),
            errors: std::mem::take(&mut self.interval_errors),
            latency: std::mem::replace(&mut self.interval_latency, interval_histogram()),
        };
        let _ = self.sender.send(Message::Interval(Box::new(sample)));
    }

    fn into_output(mut self) -> WorkerOutput {
        self.stats.interp = interp::finish();
        self.stats.bound_clients = self.spec.queue.as_ref().and_then(|q| q.bound_clients());
        let cpu_ns = crate::engine::loops::clock::thread_cpu_ns().saturating_sub(self.cpu_start);
        WorkerOutput {
            index: self.spec.index,
            group_index: self.spec.group_index,
            ops: self.ops,
            transactions: self.transactions,
            service: None,
            schedule_lag: None,
            counts: self.counts,
            busy_handler: T::take_lock_waits(self.db, self.per_request),
            acked_inserts: self.acked_inserts,
            acked_deletes: self.acked_deletes,
            cpu_ns: self.measuring.then_some(cpu_ns),
            pid: std::process::id(),
            app: Some(Box::new(self.stats)),
        }
    }
}

use crate::config::app::TimeDist;

/// A savepoint statement of a step, as SQLite reads it: `SAVEPOINT name`,
/// `RELEASE [SAVEPOINT] name`, `ROLLBACK [TRANSACTION] TO [SAVEPOINT] name`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Savepoint {
    Begin(String),
    Release(String),
    RollbackTo(String),
}

impl Savepoint {
    fn of(sql: &str) -> Option<Savepoint> {
        let words: Vec<String> = sql
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .map(|w| w.to_string())
            .collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let name = |i: usize| -> Option<String> {
            let w = words.get(i)?;
            Some(w.trim_matches(['"', '`', '[', ']', '\'']).to_ascii_lowercase())
        };
        let at = |i: usize, w: &str| upper.get(i).is_some_and(|u| u == w);
        match upper.first().map(String::as_str)? {
            "SAVEPOINT" => name(1).map(Savepoint::Begin),
            "RELEASE" => name(if at(1, "SAVEPOINT") { 2 } else { 1 }).map(Savepoint::Release),
            "ROLLBACK" => {
                let mut i = 1;
                if at(i, "TRANSACTION") {
                    i += 1;
                }
                if !at(i, "TO") {
                    return None;
                }
                i += 1;
                if at(i, "SAVEPOINT") {
                    i += 1;
                }
                name(i).map(Savepoint::RollbackTo)
            }
            _ => None,
        }
    }
}

/// One draw of an app, think or back-off time, in nanoseconds.
pub fn sample_ns(dist: &TimeDist, rng: &mut Rng) -> u64 {
    match *dist {
        TimeDist::Fixed(d) => d.as_nanos() as u64,
        TimeDist::Uniform(a, b) => {
            let (a, b) = (a.as_nanos() as u64, b.as_nanos() as u64);
            a + rng.below(b - a + 1)
        }
        TimeDist::Exp(mean) => (-(mean.as_nanos() as f64) * (1.0 - rng.unit()).ln()) as u64,
        TimeDist::Gaussian(mean, sd) => {
            // Box-Muller.
            let u1 = 1.0 - rng.unit();
            let u2 = rng.unit();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (mean.as_nanos() as f64 + z * sd.as_nanos() as f64).max(0.0) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_savepoint_statements_as_sqlite_does() {
        let b = |n: &str| Some(Savepoint::Begin(n.into()));
        assert_eq!(Savepoint::of("SAVEPOINT a"), b("a"));
        assert_eq!(Savepoint::of("  savepoint \"A\";"), b("a"));
        assert_eq!(Savepoint::of("RELEASE a"), Some(Savepoint::Release("a".into())));
        assert_eq!(
            Savepoint::of("release savepoint a"),
            Some(Savepoint::Release("a".into()))
        );
        for sql in [
            "ROLLBACK TO a",
            "rollback transaction to savepoint a",
            "ROLLBACK TO SAVEPOINT a",
        ] {
            assert_eq!(Savepoint::of(sql), Some(Savepoint::RollbackTo("a".into())), "{sql}");
        }
        assert_eq!(Savepoint::of("ROLLBACK"), None);
        assert_eq!(Savepoint::of("INSERT INTO t VALUES (1)"), None);
    }

    #[test]
    fn the_spin_burns_cpu_in_proportion() {
        spin_rate();
        let before = crate::engine::loops::clock::thread_cpu_ns();
        spin(2_000_000);
        let short = crate::engine::loops::clock::thread_cpu_ns() - before;
        let before = crate::engine::loops::clock::thread_cpu_ns();
        spin(20_000_000);
        let long = crate::engine::loops::clock::thread_cpu_ns() - before;
        assert!(long > 3 * short, "{short} ns vs {long} ns of CPU");
    }
}
