//! Process isolation (issue 15): a group's workers as separate OS processes, each the binary
//! re-executed (`litehammer worker-child`, hidden), as `crash --method kill` does.
//!
//! One small framed protocol over the child's stdin and stdout: every frame is a 4-byte
//! little-endian length and a JSON body.
//! - driver → child: one `Spec` frame, then one `Control` frame per phase change; EOF = stop.
//! - child → driver: `Ready`, `Interval` samples (once per timeline interval), `Done`.
//!
//! The child ignores SIGINT: a Ctrl-C reaches the whole process group, and the driver stops
//! its children through the protocol, so verification and the report work as with threads.
//! Each child process runs one worker, so the group's clients (or arrival rate) are shared
//! out among the processes, each with its own queue, as a pre-fork server's listen queue
//! would be without the shared accept.

use crate::config::Scenario;
use crate::config::sqlite::ReadBack;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::loops::app::{AppStats, BlockStats};
use crate::engine::loops::plain::{Message, TxCounts, WorkerOutput, WorkerSpec};
use crate::metrics::anatomy::Anatomy;
use crate::metrics::timeline::{IntervalSample, RunClock};
use crate::metrics::{ErrorCounts, Recorder, decode_histogram, encode_histogram};
use crate::targets::TargetSpec;
use crate::targets::sqlite::busy::HandlerStats;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub const CHILD_COMMAND: &str = "worker-child";

/// What a worker process needs: the scenario (after overrides), which worker it is, and the
/// driver's measurements it must share.
#[derive(Serialize, Deserialize)]
pub struct Spec {
    /// The cell's scenario as TOML.
    pub scenario: String,
    pub group_index: usize,
    pub index: u32,
    pub total_workers: u32,
    pub index_in_group: u32,
    /// The run's SQLite file, which the workload is compiled against (on every target).
    pub db_path: PathBuf,
    /// What the worker connects to.
    pub target: TargetSpec,
    pub budget: Option<u64>,
    pub tracked_tables: usize,
    pub latest: Vec<(String, i64)>,
    pub spin_rate: f64,
    pub timeline_interval_ns: u64,
    /// This process's share of the group's clients / arrival rate.
    pub clients: u32,
    pub rate: Option<f64>,
}

#[derive(Serialize, Deserialize)]
enum Control {
    Phase(u8),
    /// The user cancelled the run (Ctrl-C, SIGTERM): waits in the busy handler end too.
    Cancel,
}

#[derive(Serialize, Deserialize)]
struct WireRecorder {
    latency: String,
    errors: ErrorCounts,
    first_error: Option<String>,
}

impl WireRecorder {
    fn from(r: &Recorder) -> Self {
        Self {
            latency: encode_histogram(&r.latency),
            errors: r.errors,
            first_error: r.first_error.clone(),
        }
    }

    fn into_recorder(self) -> Result<Recorder, String> {
        Ok(Recorder {
            latency: decode_histogram(&self.latency)?,
            errors: self.errors,
            first_error: self.first_error,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct WireBlock {
    op: usize,
    begin_step: usize,
    committed: u64,
    retried: u64,
    failed: u64,
    errors: ErrorCounts,
}

#[derive(Serialize, Deserialize)]
struct WireApp {
    anatomy: Anatomy,
    queue_wait: String,
    connections_opened: u64,
    blocks: Vec<WireBlock>,
}

#[derive(Serialize, Deserialize)]
struct WireOutput {
    index: u32,
    group_index: usize,
    ops: Vec<WireRecorder>,
    transactions: WireRecorder,
    counts: [u64; 6],
    busy: Option<(u64, u64)>,
    acked_inserts: Vec<u64>,
    acked_deletes: Vec<u64>,
    cpu_ns: Option<u64>,
    pid: u32,
    app: Option<WireApp>,
}

#[derive(Serialize, Deserialize)]
enum Frame {
    Ready {
        index: u32,
        result: Result<Option<ReadBack>, String>,
    },
    Interval {
        group: usize,
        slot: u64,
        committed: u64,
        errors: ErrorCounts,
        latency: String,
    },
    Done {
        index: u32,
        result: Result<Box<WireOutput>, String>,
    },
}

fn write_frame<T: Serialize>(out: &mut impl Write, value: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    out.write_all(&(body.len() as u32).to_le_bytes())?;
    out.write_all(&body)?;
    out.flush()
}

fn read_frame<T: for<'de> Deserialize<'de>>(input: &mut impl Read) -> std::io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut body)?;
    serde_json::from_slice(&body).map(Some).map_err(std::io::Error::other)
}

fn to_wire(o: &WorkerOutput) -> WireOutput {
    let c = &o.counts;
    WireOutput {
        index: o.index,
        group_index: o.group_index,
        ops: o.ops.iter().map(WireRecorder::from).collect(),
        transactions: WireRecorder::from(&o.transactions),
        counts: [c.committed, c.failed, c.retried, c.attempts, c.late, c.skipped],
        busy: o.busy_handler.map(|b| (b.calls, b.waited.as_nanos() as u64)),
        acked_inserts: o.acked_inserts.clone(),
        acked_deletes: o.acked_deletes.clone(),
        cpu_ns: o.cpu_ns,
        pid: o.pid,
        app: o.app.as_ref().map(|a| WireApp {
            anatomy: a.anatomy.clone(),
            queue_wait: encode_histogram(&a.queue_wait),
            connections_opened: a.connections_opened,
            blocks: a
                .blocks
                .iter()
                .map(|b| WireBlock {
                    op: b.op,
                    begin_step: b.begin_step,
                    committed: b.committed,
                    retried: b.retried,
                    failed: b.failed,
                    errors: b.errors,
                })
                .collect(),
        }),
    }
}

fn from_wire(w: WireOutput) -> Result<WorkerOutput, String> {
    let [committed, failed, retried, attempts, late, skipped] = w.counts;
    Ok(WorkerOutput {
        index: w.index,
        group_index: w.group_index,
        ops: w
            .ops
            .into_iter()
            .map(WireRecorder::into_recorder)
            .collect::<Result<_, _>>()?,
        transactions: w.transactions.into_recorder()?,
        service: None,
        schedule_lag: None,
        counts: TxCounts {
            committed,
            failed,
            retried,
            attempts,
            late,
            skipped,
        },
        busy_handler: w.busy.map(|(calls, ns)| HandlerStats {
            calls,
            waited: Duration::from_nanos(ns),
        }),
        acked_inserts: w.acked_inserts,
        acked_deletes: w.acked_deletes,
        cpu_ns: w.cpu_ns,
        pid: w.pid,
        app: match w.app {
            None => None,
            Some(a) => Some(Box::new(AppStats {
                anatomy: a.anatomy,
                queue_wait: decode_histogram(&a.queue_wait)?,
                connections_opened: a.connections_opened,
                blocks: a
                    .blocks
                    .into_iter()
                    .map(|b| BlockStats {
                        op: b.op,
                        begin_step: b.begin_step,
                        committed: b.committed,
                        retried: b.retried,
                        failed: b.failed,
                        errors: b.errors,
                    })
                    .collect(),
            })),
        },
    })
}

/// Driver side: starts one worker process; a thread relays its frames as `Message`s and the
/// run phase to it. The returned handle ends when the child has exited.
pub fn spawn(
    spec: &WorkerSpec,
    scenario: &Scenario,
    db_path: &Path,
    phase: Arc<PhaseFlag>,
    tx: UnboundedSender<Message>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let app = spec
        .group
        .app
        .as_ref()
        .expect("process workers are application-model workers");
    let workers = spec.group.workers;
    let share = |n: u32| n / workers + u32::from(spec.index_in_group < n % workers);
    let child_spec = Spec {
        scenario: toml::to_string(scenario).map_err(std::io::Error::other)?,
        group_index: spec.group_index,
        index: spec.index,
        total_workers: spec.total_workers,
        index_in_group: spec.index_in_group,
        db_path: db_path.to_path_buf(),
        target: spec.target.clone(),
        budget: spec.budget,
        tracked_tables: spec.tracked_tables,
        latest: spec
            .latest
            .iter()
            .map(|(t, v)| (t.clone(), v.load(std::sync::atomic::Ordering::Relaxed)))
            .collect(),
        spin_rate: crate::engine::loops::app::spin_rate(),
        timeline_interval_ns: spec.clock.interval().as_nanos() as u64,
        clients: share(app.clients).max(1),
        rate: spec.group.pacing.map(|p| p.per_worker_rate),
    };
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .arg(CHILD_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    write_frame(&mut stdin, &child_spec)?;
    let index = spec.index;
    std::thread::Builder::new()
        .name(format!("worker-{index}-process"))
        .spawn(move || {
            let exited = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let relay_phase = {
                let phase = phase.clone();
                let exited = exited.clone();
                std::thread::spawn(move || {
                    let mut sent = Phase::Starting;
                    let mut cancel_sent = false;
                    while !exited.load(std::sync::atomic::Ordering::Acquire) {
                        if !cancel_sent && crate::interrupt::cancelled() {
                            if write_frame(&mut stdin, &Control::Cancel).is_err() {
                                return;
                            }
                            cancel_sent = true;
                        }
                        let now = phase.get();
                        if now != sent {
                            if write_frame(&mut stdin, &Control::Phase(now as u8)).is_err() {
                                return;
                            }
                            sent = now;
                        }
                        if now == Phase::Stop {
                            return; // dropping stdin closes the pipe
                        }
                        std::thread::park_timeout(Duration::from_millis(2));
                    }
                })
            };
            let mut done = false;
            while let Ok(Some(frame)) = read_frame::<Frame>(&mut stdout) {
                let message = match frame {
                    Frame::Ready { index, result } => Message::Ready { index, result },
                    Frame::Interval {
                        group,
                        slot,
                        committed,
                        errors,
                        latency,
                    } => match decode_histogram(&latency) {
                        Ok(latency) => Message::Interval(Box::new(IntervalSample {
                            group,
                            slot,
                            committed,
                            errors,
                            latency,
                        })),
                        Err(_) => continue,
                    },
                    Frame::Done { index, result } => {
                        done = true;
                        Message::Done {
                            index,
                            result: result.and_then(|w| from_wire(*w)).map(Box::new),
                        }
                    }
                };
                if tx.send(message).is_err() {
                    break;
                }
            }
            let status = child.wait();
            // Only this child's relay stops; the others' workers go on (budgets end unevenly).
            exited.store(true, std::sync::atomic::Ordering::Release);
            let _ = relay_phase.join();
            if !done {
                let _ = tx.send(Message::Done {
                    index,
                    result: Err(format!("worker process exited without its results ({status:?})")),
                });
            }
        })
}

/// Child side: reads its spec, runs one worker, relays the worker's messages as frames.
pub fn child_main() -> Result<(), String> {
    // SAFETY: setting a signal disposition to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    let mut stdin = std::io::stdin().lock();
    let spec: Spec = read_frame(&mut stdin)
        .map_err(|e| e.to_string())?
        .ok_or("no worker spec on stdin")?;
    crate::engine::loops::app::set_spin_rate(spec.spin_rate);
    let scenario: Scenario = toml::from_str(&spec.scenario).map_err(|e| e.to_string())?;
    let mut conn = rusqlite::Connection::open(&spec.db_path).map_err(|e| e.to_string())?;
    let workload = crate::workload::Workload::compile(&scenario, &mut conn).map_err(|e| e.message)?;
    drop(conn);
    let group = workload.groups[spec.group_index].clone();
    let clock = Arc::new(RunClock::new(Duration::from_nanos(spec.timeline_interval_ns)));
    let queue = match spec.rate {
        Some(rate) => Some(Arc::new(crate::engine::loops::queue::RequestQueue::arrivals(
            rate,
            group.pacing.map_or(crate::config::Arrival::Fixed, |p| p.arrival),
            scenario.seed ^ u64::from(spec.index),
        ))),
        None => (spec.clients > 1).then(|| Arc::new(crate::engine::loops::queue::RequestQueue::clients(spec.clients))),
    };
    let worker = WorkerSpec {
        index: spec.index,
        total_workers: spec.total_workers,
        group_index: spec.group_index,
        index_in_group: spec.index_in_group,
        group: Arc::new(group),
        seed: scenario.seed,
        tracked_tables: spec.tracked_tables,
        budget: spec.budget,
        clock: clock.clone(),
        latest: Arc::new(
            spec.latest
                .iter()
                .map(|(t, v)| (t.clone(), Arc::new(AtomicI64::new(*v))))
                .collect(),
        ),
        queue,
        target: spec.target.clone(),
    };
    let phase = Arc::new(PhaseFlag::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let handle = crate::engine::loops::spawn::spawn(worker, phase.clone(), tx).map_err(|e| e.to_string())?;
    let control = {
        let phase = phase.clone();
        let clock = clock.clone();
        let thread = handle.thread().clone();
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                match read_frame::<Control>(&mut stdin) {
                    Ok(Some(Control::Cancel)) => crate::interrupt::cancel(),
                    Ok(Some(Control::Phase(p))) => {
                        let p = match p {
                            0 => Phase::Starting,
                            1 => Phase::Warmup,
                            2 => Phase::Measure,
                            _ => Phase::Stop,
                        };
                        if p == Phase::Measure {
                            clock.start_measuring(std::time::Instant::now());
                        }
                        phase.set(p);
                        thread.unpark();
                    }
                    _ => {
                        phase.set(Phase::Stop);
                        thread.unpark();
                        return;
                    }
                }
            }
        })
    };
    drop(stdin);
    let mut out = std::io::stdout().lock();
    while let Some(message) = rx.blocking_recv() {
        let frame = match message {
            Message::Ready { index, result } => Frame::Ready { index, result },
            Message::Interval(s) => Frame::Interval {
                group: s.group,
                slot: s.slot,
                committed: s.committed,
                errors: s.errors,
                latency: encode_histogram(&s.latency),
            },
            Message::Done { index, result } => Frame::Done {
                index,
                result: result.map(|o| Box::new(to_wire(&o))),
            },
        };
        let last = matches!(frame, Frame::Done { .. });
        write_frame(&mut out, &frame).map_err(|e| e.to_string())?;
        if last {
            break;
        }
    }
    let _ = handle.join();
    drop(control);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Control::Phase(2)).unwrap();
        write_frame(&mut buf, &Control::Phase(3)).unwrap();
        let mut r = buf.as_slice();
        assert!(matches!(
            read_frame::<Control>(&mut r).unwrap(),
            Some(Control::Phase(2))
        ));
        assert!(matches!(
            read_frame::<Control>(&mut r).unwrap(),
            Some(Control::Phase(3))
        ));
        assert!(read_frame::<Control>(&mut r).unwrap().is_none());
    }
}
