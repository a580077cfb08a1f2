//! One worker: an OS thread that owns one SQLite connection and runs the hot loop.
//! Nothing here locks shared state, allocates or formats per operation: the loop reads one
//! atomic (the run phase) per transaction and records into its own histograms.

use crate::clock::Clock;
use crate::metrics::Recorder;
use crate::sqlite_config::{ReadBack, SqliteSettings};
use crate::workload::params::Generator;
use crate::workload::rng::Rng;
use crate::workload::{GroupPlan, RowEffect};
use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags, Statement};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// The run phase, set by the driver and read by every worker between transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Starting = 0,
    Warmup = 1,
    Measure = 2,
    Stop = 3,
}

#[derive(Debug, Default)]
pub struct PhaseFlag(AtomicU8);

impl PhaseFlag {
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    #[inline]
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Warmup,
            2 => Phase::Measure,
            _ => Phase::Stop,
        }
    }
}

/// What one worker needs to start.
pub struct WorkerSpec {
    /// Index among all workers of the run (generators such as `seq()` use it).
    pub index: u32,
    pub total_workers: u32,
    pub group_index: usize,
    pub group: Arc<GroupPlan>,
    pub db_path: PathBuf,
    pub settings: SqliteSettings,
    pub seed: u64,
    pub tracked_tables: usize,
    /// Measured transactions this worker executes before it stops (operation-count runs).
    pub budget: Option<u64>,
}

/// What a worker reports when it is done.
#[derive(Debug)]
pub struct WorkerOutput {
    pub index: u32,
    pub group_index: usize,
    /// Per operation of the group, measured phase only.
    pub ops: Vec<Recorder>,
    /// Whole transactions (BEGIN..COMMIT), measured phase only; begin/commit failures count here.
    pub transactions: Recorder,
    pub committed: u64,
    pub rolled_back: u64,
    /// Rows inserted / deleted per tracked table by committed transactions, whole run.
    pub acked_inserts: Vec<u64>,
    pub acked_deletes: Vec<u64>,
}

pub enum Message {
    Ready {
        index: u32,
        result: Result<ReadBack, String>,
    },
    Done {
        index: u32,
        result: Result<Box<WorkerOutput>, String>,
    },
}

pub fn spawn(
    spec: WorkerSpec,
    phase: Arc<PhaseFlag>,
    tx: UnboundedSender<Message>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("worker-{}", spec.index))
        .spawn(move || {
            let index = spec.index;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker_main(spec, &phase, &tx)));
            if outcome.is_err() {
                let _ = tx.send(Message::Done {
                    index,
                    result: Err("worker thread panicked".into()),
                });
            }
        })
}

fn worker_main(spec: WorkerSpec, phase: &PhaseFlag, tx: &UnboundedSender<Message>) {
    let index = spec.index;
    let opened = open(&spec);
    let (conn, read_back) = match opened {
        Ok(ok) => ok,
        Err(e) => {
            let _ = tx.send(Message::Ready { index, result: Err(e) });
            return;
        }
    };
    let mut session = match Session::prepare(&conn, &spec) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(Message::Ready {
                index,
                result: Err(e.to_string()),
            });
            return;
        }
    };
    if tx
        .send(Message::Ready {
            index,
            result: Ok(read_back),
        })
        .is_err()
    {
        return;
    }
    while phase.get() == Phase::Starting {
        std::thread::park_timeout(Duration::from_millis(5));
    }
    session.run(phase, spec.budget);
    let _ = tx.send(Message::Done {
        index,
        result: Ok(Box::new(session.into_output(&spec))),
    });
}

fn open(spec: &WorkerSpec) -> Result<(Connection, ReadBack), String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(&spec.db_path, flags)
        .map_err(|e| format!("cannot open {}: {e}", spec.db_path.display()))?;
    let read_back = spec.settings.apply_and_check(&conn).map_err(|e| e.to_string())?;
    Ok((conn, read_back))
}

/// A worker's prepared statements, generators and recorders.
struct Session<'c> {
    conn: &'c Connection,
    group: Arc<GroupPlan>,
    begin: Option<Statement<'c>>,
    /// Autocommit with one statement per transaction: the transaction is the statement, so it
    /// is timed and recorded once (its histogram is the ops' merged at the end).
    single: bool,
    clock: Clock,
    commit: Statement<'c>,
    rollback: Statement<'c>,
    statements: Vec<Statement<'c>>,
    generators: Vec<Vec<Generator>>,
    rng: Rng,
    ops: Vec<Recorder>,
    transactions: Recorder,
    committed: u64,
    rolled_back: u64,
    pending_inserts: Vec<u64>,
    pending_deletes: Vec<u64>,
    acked_inserts: Vec<u64>,
    acked_deletes: Vec<u64>,
}

impl<'c> Session<'c> {
    fn prepare(conn: &'c Connection, spec: &WorkerSpec) -> rusqlite::Result<Self> {
        let group = spec.group.clone();
        let mut rng = Rng::derive(spec.seed, spec.index as u64);
        let statements = group
            .ops
            .iter()
            .map(|op| conn.prepare(&op.sql))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let generators = group
            .ops
            .iter()
            .map(|op| {
                op.params
                    .iter()
                    .map(|p| p.instantiate(&mut rng, spec.index as u64, spec.total_workers as u64))
                    .collect()
            })
            .collect();
        let tables = spec.tracked_tables;
        Ok(Self {
            conn,
            begin: group.transaction.begin_sql().map(|sql| conn.prepare(sql)).transpose()?,
            single: group.transaction.begin_sql().is_none() && group.statements_per_transaction == 1,
            clock: Clock::get(),
            commit: conn.prepare("COMMIT")?,
            rollback: conn.prepare("ROLLBACK")?,
            statements,
            generators,
            rng,
            ops: vec![Recorder::default(); group.ops.len()],
            transactions: Recorder::default(),
            committed: 0,
            rolled_back: 0,
            pending_inserts: vec![0; tables],
            pending_deletes: vec![0; tables],
            acked_inserts: vec![0; tables],
            acked_deletes: vec![0; tables],
            group,
        })
    }

    /// The one worker loop: the phase decides warm-up, measuring and stopping; an optional
    /// budget ends operation-count runs.
    fn run(&mut self, phase: &PhaseFlag, mut budget: Option<u64>) {
        let mut measuring = false;
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
            let start = (!self.single).then(|| self.clock.now());
            let committed = self.transaction(measuring);
            if measuring {
                if committed {
                    if let Some(start) = start {
                        self.transactions.record_ns(self.clock.ns_since(start));
                    }
                    self.committed += 1;
                } else {
                    self.rolled_back += 1;
                }
                budget = budget.map(|b| b - 1);
            }
        }
    }

    fn reset_measurements(&mut self) {
        self.ops.iter_mut().for_each(Recorder::reset);
        self.transactions.reset();
        self.committed = 0;
        self.rolled_back = 0;
    }

    /// Runs one transaction; true when it committed.
    fn transaction(&mut self, measuring: bool) -> bool {
        if let Some(begin) = &mut self.begin
            && let Err(e) = begin.raw_execute()
        {
            if measuring {
                self.transactions.record_error(&e);
            }
            return false;
        }
        for _ in 0..self.group.statements_per_transaction {
            if !self.statement(measuring) {
                self.abort();
                return false;
            }
        }
        if self.begin.is_some()
            && let Err(e) = self.commit.raw_execute()
        {
            if measuring {
                self.transactions.record_error(&e);
            }
            self.abort();
            return false;
        }
        self.acknowledge();
        true
    }

    /// Chooses, binds and executes one operation, stepping through all its rows.
    fn statement(&mut self, measuring: bool) -> bool {
        let i = self.group.choose(&mut self.rng);
        let stmt = &mut self.statements[i];
        let mut bound = Ok(());
        for (p, generator) in self.generators[i].iter_mut().enumerate() {
            bound = bound
                .and_then(|_| stmt.raw_bind_parameter(p + 1, ToSqlOutput::Borrowed(generator.next(&mut self.rng))));
        }
        let start = self.clock.now();
        let result = bound.and_then(|_| step_all(stmt));
        let elapsed = self.clock.ns_since(start);
        match result {
            Ok(()) => {
                if measuring {
                    self.ops[i].record_ns(elapsed);
                }
                match self.group.ops[i].effect {
                    RowEffect::Insert(t) => self.pending_inserts[t] += self.conn.changes(),
                    RowEffect::Delete(t) => self.pending_deletes[t] += self.conn.changes(),
                    RowEffect::None => {}
                }
                true
            }
            Err(e) => {
                if measuring {
                    self.ops[i].record_error(&e);
                }
                false
            }
        }
    }

    fn acknowledge(&mut self) {
        for (acked, pending) in self.acked_inserts.iter_mut().zip(self.pending_inserts.iter_mut()) {
            *acked += std::mem::take(pending);
        }
        for (acked, pending) in self.acked_deletes.iter_mut().zip(self.pending_deletes.iter_mut()) {
            *acked += std::mem::take(pending);
        }
    }

    fn abort(&mut self) {
        self.pending_inserts.iter_mut().for_each(|p| *p = 0);
        self.pending_deletes.iter_mut().for_each(|p| *p = 0);
        if !self.conn.is_autocommit() {
            let _ = self.rollback.raw_execute();
        }
    }

    fn into_output(mut self, spec: &WorkerSpec) -> WorkerOutput {
        if self.single {
            self.ops.iter().for_each(|op| {
                self.transactions
                    .latency
                    .add(&op.latency)
                    .expect("auto-resizing histograms add")
            });
        }
        WorkerOutput {
            index: spec.index,
            group_index: spec.group_index,
            ops: self.ops,
            transactions: self.transactions,
            committed: self.committed,
            rolled_back: self.rolled_back,
            acked_inserts: self.acked_inserts,
            acked_deletes: self.acked_deletes,
        }
    }
}

#[inline]
fn step_all(stmt: &mut Statement<'_>) -> rusqlite::Result<()> {
    let mut rows = stmt.raw_query();
    while rows.next()?.is_some() {}
    Ok(())
}
