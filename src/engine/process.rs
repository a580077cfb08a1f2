//! Process isolation (issue 15): a group's workers as separate OS processes, each the binary
//! re-executed (`litehammer worker-child`, hidden), as `crash --method kill` does.
//!
//! One small framed protocol over the child's stdin and stdout: every frame is a 4-byte
//! little-endian length and a JSON body.
//! - driver → child: one `Spec` frame, then one `Control` frame per phase change; EOF = stop.
//!   The spec carries the group as compiled (`GroupPlan`): the child neither parses the
//!   scenario nor opens the run's SQLite file.
//! - child → driver: the worker's own `Message`s (`Ready`, `Interval` samples once per
//!   timeline interval, `Done`), histograms in the reports' codec (`metrics::histogram`).
//!
//! The child ignores SIGINT: a Ctrl-C reaches the whole process group, and the driver stops
//! its children through the protocol, so verification and the report work as with threads.
//! Each child process runs the group's `threads_per_process` workers as threads of its own
//! (one by default), sharing the process's interpreter lock. With `queue = "per-process"` the
//! group's clients (or arrival rate) are shared out among the processes, each with its own
//! queue for its threads (wrk's keep-alive connections stay with the process that accepted
//! them); with `queue = "shared"` every process maps the one queue the driver created
//! (`loops::shared_queue`, its descriptor inherited), as a pre-fork server's workers share
//! one listening socket.

use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::loops::plain::{Message, WorkerSpec};
use crate::metrics::timeline::RunClock;
use crate::targets::TargetSpec;
use crate::workload::GroupPlan;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

pub const CHILD_COMMAND: &str = "worker-child";

/// What a worker process needs: its group compiled (the scenario is not sent), which workers
/// it runs, and the driver's measurements it must share.
#[derive(Serialize, Deserialize)]
struct Spec {
    group: GroupPlan,
    seed: u64,
    group_index: usize,
    /// Its first worker's index (the run's, the group's); the others follow.
    index: u32,
    total_workers: u32,
    index_in_group: u32,
    /// One per worker thread of the process: its budget of measured transactions.
    budgets: Vec<Option<u64>>,
    /// What the worker connects to.
    target: TargetSpec,
    tracked_tables: usize,
    latest: Vec<(String, i64)>,
    spin_rate: f64,
    timeline_interval_ns: u64,
    /// Where this process's requests come from.
    feed: Feed,
}

/// Where a worker process's requests come from: each kind carries only what it uses.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Feed {
    /// The group's shared queue (`queue = "shared"`): the descriptor this process inherits.
    Shared { fd: i32 },
    /// The group's pool of unbound clients (`queue = "first-free"`): the descriptor this
    /// process inherits, and the group's clients (all of which it may come to serve).
    FirstFree { fd: i32, clients: u32, processes: u32 },
    /// This process's share of the group's arrival rate (for all its threads), and its place
    /// among the group's processes (k, n), which staggers its arrivals.
    Arrivals { rate: f64, slot: (u32, u32) },
    /// This process's share of the group's clients (for all its threads).
    Clients { clients: u32 },
}

#[derive(Serialize, Deserialize)]
enum Control {
    Phase(u8),
    /// The user cancelled the run (Ctrl-C, SIGTERM): waits in the busy handler end too.
    Cancel,
}

fn write_frame<T: Serialize>(out: &mut impl Write, value: &T) -> std::io::Result<()> {
    let body = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    out.write_all(&(body.len() as u32).to_le_bytes())?;
    out.write_all(&body)?;
    out.flush()
}

fn read_frame<T: for<'de> Deserialize<'de>>(input: &mut impl Read) -> std::io::Result<Option<T>> {
    match read_body(input)? {
        Some(body) => serde_json::from_slice(&body).map(Some).map_err(std::io::Error::other),
        None => Ok(None),
    }
}

/// One frame's body; `None` at end of stream.
fn read_body(input: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Driver side: starts one worker process for `specs` (consecutive workers of one group, one
/// thread each in the child); a thread relays its frames as `Message`s and the run phase to
/// it. The returned handle ends when the child has exited.
pub fn spawn(
    specs: &[WorkerSpec],
    phase: Arc<PhaseFlag>,
    tx: UnboundedSender<Message>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let spec = &specs[0];
    let app = spec
        .group
        .app
        .as_ref()
        .expect("process workers are application-model workers");
    let threads = specs.len() as u32;
    let processes = app.processes(spec.group.workers);
    let process = spec.index_in_group / threads;
    let share = |n: u32| n / processes + u32::from(process < n % processes);
    let child_spec = Spec {
        group: (*spec.group).clone(),
        seed: spec.seed,
        group_index: spec.group_index,
        index: spec.index,
        total_workers: spec.total_workers,
        index_in_group: spec.index_in_group,
        budgets: specs.iter().map(|s| s.budget).collect(),
        target: spec.target.clone(),
        tracked_tables: spec.tracked_tables,
        latest: spec
            .latest
            .iter()
            .map(|(t, v)| (t.clone(), v.load(std::sync::atomic::Ordering::Relaxed)))
            .collect(),
        spin_rate: crate::engine::loops::app::spin_rate(),
        timeline_interval_ns: spec.clock.interval().as_nanos() as u64,
        feed: match (spec.queue.as_ref().and_then(|q| q.shared_fd()), spec.group.pacing) {
            (Some(fd), None) if app.first_free => Feed::FirstFree {
                fd,
                clients: app.clients,
                processes,
            },
            (Some(fd), _) => Feed::Shared { fd },
            (None, Some(p)) => Feed::Arrivals {
                rate: p.per_worker_rate * f64::from(threads),
                slot: (process, processes),
            },
            (None, None) => Feed::Clients {
                clients: share(app.clients),
            },
        },
    };
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    if let Feed::Shared { fd } | Feed::FirstFree { fd, .. } = child_spec.feed {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the child only clears close-on-exec on the shared
        // queue's descriptor (fcntl is async-signal-safe), so the worker process inherits it.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = command
        .arg(CHILD_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id();
    let watch = Watchdog::new(pid);
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    write_frame(&mut stdin, &child_spec)?;
    let index = spec.index;
    std::thread::Builder::new()
        .name(format!("worker-{index}-process"))
        .spawn(move || {
            let exited = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let stopped_kill = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let relay_phase = {
                let phase = phase.clone();
                let exited = exited.clone();
                let stopped_kill = stopped_kill.clone();
                std::thread::spawn(move || {
                    let mut stdin = Some(stdin);
                    let mut sent = Phase::Starting;
                    let mut cancel_sent = false;
                    let mut stopped_ticks = 0u32;
                    let mut tick = 0u32;
                    while !exited.load(std::sync::atomic::Ordering::Acquire) {
                        if let Some(pipe) = stdin.as_mut() {
                            let mut ok = true;
                            if !cancel_sent && crate::interrupt::cancelled() {
                                ok = write_frame(pipe, &Control::Cancel).is_ok();
                                cancel_sent = true;
                            }
                            let now = phase.get();
                            if ok && now != sent {
                                ok = write_frame(pipe, &Control::Phase(now as u8)).is_ok();
                                sent = now;
                            }
                            if !ok || now == Phase::Stop {
                                stdin = None; // closes the pipe: the child stops
                            }
                        }
                        // A worker process stopped (SIGSTOP, SIGTSTP) would hold the run
                        // forever: stopped for STOPPED_LIMIT of this thread's own looks
                        // (a Ctrl-Z of the whole group stops this thread too), it is killed
                        // and the run fails.
                        tick += 1;
                        if tick.is_multiple_of(WATCH_EVERY) {
                            if watch.is_stopped() {
                                stopped_ticks += 1;
                            } else {
                                stopped_ticks = 0;
                            }
                            if stopped_ticks >= STOPPED_LIMIT {
                                stopped_kill.store(true, std::sync::atomic::Ordering::Release);
                                watch.kill();
                                return;
                            }
                        }
                        std::thread::park_timeout(Duration::from_millis(2));
                    }
                })
            };
            // Which of the process's workers sent their results.
            let mut done = vec![false; threads as usize];
            let mut bad_frame = None;
            // A frame that does not decode is skipped (the stream stays in step): the child
            // must not block on a full pipe.
            while let Ok(Some(body)) = read_body(&mut stdout) {
                let message = match serde_json::from_slice::<Message>(&body) {
                    Ok(message) => message,
                    Err(e) => {
                        bad_frame.get_or_insert(e);
                        continue;
                    }
                };
                if let Message::Done { index: i, .. } = &message
                    && let Some(d) = i.checked_sub(index).and_then(|k| done.get_mut(k as usize))
                {
                    *d = true;
                }
                if tx.send(message).is_err() {
                    break;
                }
            }
            let status = child.wait();
            // Only this child's relay stops; the others' workers go on (budgets end unevenly).
            exited.store(true, std::sync::atomic::Ordering::Release);
            let _ = relay_phase.join();
            let why = match &bad_frame {
                Some(e) => format!("worker process sent a frame that does not decode: {e}"),
                None if stopped_kill.load(std::sync::atomic::Ordering::Acquire) => format!(
                    "(pid {pid}) was stopped (SIGSTOP or SIGTSTP) for {}s and was killed",
                    STOPPED_LIMIT * WATCH_EVERY * 2 / 1000
                ),
                None => exit_text(pid, status),
            };
            for (k, _) in done.iter().enumerate().filter(|(_, d)| !**d) {
                let _ = tx.send(Message::Done {
                    index: index + k as u32,
                    result: Err(why.clone()),
                });
            }
        })
}

/// The watchdog looks at the child every `WATCH_EVERY` turns of the 2 ms relay loop, and
/// kills it after `STOPPED_LIMIT` looks in a row that found it stopped (5 s).
const WATCH_EVERY: u32 = 50;
const STOPPED_LIMIT: u32 = 50;

/// Why a worker process ended without its results, in words; the driver puts "worker N"
/// before it (`RunError::Worker`).
fn exit_text(pid: u32, status: std::io::Result<std::process::ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.signal(), s.code()) {
            (Some(sig), _) => format!(
                "(pid {pid}) was killed by signal {sig}{} before sending its results",
                crate::interrupt::signal_name(sig).map_or(String::new(), |n| format!(" ({n})"))
            ),
            (None, Some(code)) => {
                format!("(pid {pid}) exited with status {code} before sending its results")
            }
            (None, None) => format!("(pid {pid}) ended without its results"),
        },
        Err(e) => format!("(pid {pid}) ended without its results (cannot wait for it: {e})"),
    }
}

/// A worker process seen from its relay: whether it is stopped, and a kill that cannot hit
/// another process (a pidfd, taken before the child can be reaped).
struct Watchdog {
    pid: u32,
    pidfd: Option<std::os::fd::OwnedFd>,
}

impl Watchdog {
    fn new(pid: u32) -> Self {
        use std::os::fd::FromRawFd;
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: `fd` is a descriptor just returned to us and owned by nobody else.
            unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
        });
        Watchdog { pid, pidfd }
    }

    /// The state letter of /proc/PID/stat is `T`: stopped by a signal.
    fn is_stopped(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('T')))
            .unwrap_or(false)
    }

    fn kill(&self) {
        use std::os::fd::AsRawFd;
        if let Some(fd) = &self.pidfd {
            // SAFETY: pidfd_send_signal on our own pidfd, no siginfo.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0u32,
                );
            }
        } else {
            // SAFETY: kill(2) with our child's pid; it is not reaped before its relay ends.
            unsafe {
                libc::kill(self.pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

/// Child side: reads its spec, runs its workers (one thread each, sharing the process's
/// interpreter lock and queue), relays their messages as frames.
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
    let threads = spec.budgets.len().max(1) as u32;
    let group = Arc::new(spec.group);
    let clock = Arc::new(RunClock::new(Duration::from_nanos(spec.timeline_interval_ns)));
    let queue = match spec.feed {
        Feed::Shared { fd } => Some(Arc::new(
            crate::engine::loops::queue::RequestQueue::attach(fd)
                .map_err(|e| format!("the group's shared queue: {e}"))?,
        )),
        Feed::FirstFree { fd, clients, processes } => Some(Arc::new(
            crate::engine::loops::queue::RequestQueue::first_free(fd, clients, processes)
                .map_err(|e| format!("the group's pool of clients: {e}"))?,
        )),
        Feed::Arrivals { rate, slot } => Some(Arc::new(crate::engine::loops::queue::RequestQueue::arrivals(
            rate,
            group.pacing.map_or(crate::config::Arrival::Fixed, |p| p.arrival),
            spec.seed ^ u64::from(spec.index),
            slot,
        ))),
        // As many clients as threads: each is served at once by its own thread, with no
        // queue. Zero (more processes than clients): an empty queue, so this process serves
        // nobody and the group has `clients` in all.
        Feed::Clients { clients } => {
            (clients != threads).then(|| Arc::new(crate::engine::loops::queue::RequestQueue::clients(clients)))
        }
    };
    // This process's own interpreter lock, shared by its threads.
    let interp = group
        .app
        .as_ref()
        .map(|a| Arc::new(crate::engine::loops::interp::InterpLock::new(a.runtime, a.busy_wait)));
    let latest = Arc::new(
        spec.latest
            .iter()
            .map(|(t, v)| (t.clone(), Arc::new(AtomicI64::new(*v))))
            .collect::<Vec<_>>(),
    );
    let phase = Arc::new(PhaseFlag::default());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut handles = Vec::with_capacity(threads as usize);
    for (k, budget) in spec.budgets.iter().enumerate() {
        let worker = WorkerSpec {
            index: spec.index + k as u32,
            total_workers: spec.total_workers,
            group_index: spec.group_index,
            index_in_group: spec.index_in_group + k as u32,
            group: group.clone(),
            seed: spec.seed,
            tracked_tables: spec.tracked_tables,
            budget: *budget,
            clock: clock.clone(),
            latest: latest.clone(),
            queue: queue.clone(),
            target: spec.target.clone(),
            interp: interp.clone(),
        };
        match crate::engine::loops::spawn::spawn(worker, phase.clone(), tx.clone()) {
            Ok(h) => handles.push(h),
            Err(e) => {
                phase.set(Phase::Stop);
                handles.iter().for_each(|h| h.thread().unpark());
                return Err(e.to_string());
            }
        }
    }
    drop(tx);
    let control = {
        let phase = phase.clone();
        let clock = clock.clone();
        let threads: Vec<std::thread::Thread> = handles.iter().map(|h| h.thread().clone()).collect();
        let unpark = move || threads.iter().for_each(|t| t.unpark());
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
                        unpark();
                    }
                    _ => {
                        phase.set(Phase::Stop);
                        unpark();
                        return;
                    }
                }
            }
        })
    };
    drop(stdin);
    let mut out = std::io::stdout().lock();
    let mut done = 0;
    while let Some(message) = rx.blocking_recv() {
        done += usize::from(matches!(message, Message::Done { .. }));
        write_frame(&mut out, &message).map_err(|e| e.to_string())?;
        if done == handles.len() {
            break;
        }
    }
    for h in handles {
        let _ = h.join();
    }
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

    #[test]
    fn worker_output_round_trips_through_a_frame() {
        use crate::engine::loops::plain::{TxCounts, WorkerOutput};
        use crate::metrics::Recorder;
        use crate::metrics::app::{AppStats, BlockStats};
        let recorder = |values: &[u64]| {
            let mut r = Recorder::default();
            for v in values {
                r.latency.record(*v).unwrap();
            }
            r.errors.busy = values.len() as u64;
            r
        };
        let mut app = AppStats::new(vec![BlockStats {
            op: 1,
            begin_step: 0,
            committed: 5,
            retried: 2,
            failed: 1,
            ..BlockStats::default()
        }]);
        app.queue_wait.record(12_345).unwrap();
        app.queue_wait.record(99_000_000).unwrap();
        app.connections_opened = 4;
        let output = WorkerOutput {
            index: 3,
            group_index: 1,
            ops: vec![recorder(&[1_000, 2_000, 3_000]), recorder(&[])],
            transactions: recorder(&[5_000, 7_000_000]),
            service: None,
            schedule_lag: Some(crate::metrics::new_histogram()),
            counts: TxCounts {
                committed: 2,
                retried: 1,
                attempts: 3,
                ..TxCounts::default()
            },
            busy_handler: None,
            acked_inserts: vec![2],
            acked_deletes: vec![0],
            cpu_ns: Some(42),
            pid: 7,
            app: Some(Box::new(app)),
        };
        let mut buf = Vec::new();
        write_frame(
            &mut buf,
            &Message::Done {
                index: 3,
                result: Ok(Box::new(output)),
            },
        )
        .unwrap();
        let Some(Message::Done {
            index: 3,
            result: Ok(back),
        }) = read_frame::<Message>(&mut buf.as_slice()).unwrap()
        else {
            panic!("not a Done frame")
        };
        let lens: Vec<u64> = back.ops.iter().map(|r| r.latency.len()).collect();
        assert_eq!(lens, [3, 0]);
        assert!(back.ops[0].latency == recorder(&[1_000, 2_000, 3_000]).latency);
        assert_eq!(back.ops[0].errors.busy, 3);
        assert_eq!(back.transactions.latency.len(), 2);
        assert_eq!(
            (back.counts.committed, back.counts.retried, back.counts.attempts),
            (2, 1, 3)
        );
        assert!(back.service.is_none());
        assert_eq!(back.schedule_lag.as_ref().map(|h| h.len()), Some(0));
        assert_eq!((back.acked_inserts, back.cpu_ns, back.pid), (vec![2], Some(42), 7));
        let app = back.app.expect("app stats");
        assert_eq!(app.queue_wait.len(), 2);
        assert_eq!(app.connections_opened, 4);
        assert_eq!(
            (
                app.blocks[0].op,
                app.blocks[0].committed,
                app.blocks[0].retried,
                app.blocks[0].failed
            ),
            (1, 5, 2, 1)
        );
    }
}
