//! The request queue in front of a group's server workers (issue 15).
//!
//! Closed loop: `clients` tokens, each a client whose next request is issued at a known
//! tick (its previous response plus its think time). A free worker takes the earliest
//! issued request that is due, so requests wait in FIFO order while every worker is busy,
//! as connections wait in a server's accept queue. Clients are virtual: nobody sleeps for
//! them, so think time burns no CPU.
//!
//! Open loop (`rate`): arrivals at a fixed or Poisson rate for the whole group, taken in
//! order by whichever worker is free.
//!
//! Used only by application-model groups; one lock per request.

use crate::config::Arrival;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::loops::clock::Clock;
use crate::engine::loops::shared_queue::{Due, State};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Longest single wait before the run phase is checked again.
const POLL: Duration = Duration::from_millis(5);

pub struct RequestQueue {
    inner: Inner,
    clock: Clock,
}

enum Inner {
    /// One process's queue (its threads'): the state in the hot path's clock ticks, and its
    /// heap of waiting clients.
    Local {
        state: Mutex<(State, Vec<u64>)>,
        ready: Condvar,
        /// Arrivals: this queue's place among the group's queues (k, n) and the mean gap, ns.
        slot: (u32, u32),
        gap_ns: u64,
        /// `queue = "first-free"`: the group's clients not yet bound to a process.
        pool: Option<Pool>,
    },
    /// Shared by a group's worker processes (`queue = "shared"`).
    Shared(crate::engine::loops::shared_queue::SharedQueue),
}

/// The group's unbound clients (`queue = "first-free"`), in the shared memory the driver
/// created: each take of a process's queue first claims one of them, while any is left, and
/// keeps it. Every process claims its first client before any claims a second, as Node's
/// cluster primary hands its first connections to the idle workers in turn; after that the
/// process free first takes the next (the worker that acknowledges a connection first gets
/// the next one). Starting the processes a few milliseconds apart must not decide it. Once
/// the pool is empty (it never refills) the queue no longer looks at it.
struct Pool {
    queue: crate::engine::loops::shared_queue::SharedQueue,
    /// The group's processes: claims by all of them come before a second claim.
    processes: u32,
    empty: std::sync::atomic::AtomicBool,
    /// Clients this process claimed.
    bound: std::sync::atomic::AtomicU32,
}

/// A request taken from the queue: when it was issued (ticks).
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    pub issued: u64,
    /// Closed loop: the client comes back after its think time.
    pub client: bool,
}

impl RequestQueue {
    pub fn clients(clients: u32) -> Self {
        Self::local(State::clients(clients), (0, 1), 0, Clock::get())
    }

    /// Arrivals at `rate` per second. `slot` = (k, n): this queue is the k-th of the group's
    /// n queues (one per worker process, each with its share of the rate). The first arrival
    /// is put on a grid of CLOCK_MONOTONIC, which every process reads alike, shifted by k/n of
    /// a gap, so that the n fixed-rate streams interleave into one evenly spaced stream, as
    /// one load generator's requests reach a server. Started independently, they arrived
    /// together: 4 processes at 5/s each sent 4 requests at once every 200 ms, which queued
    /// for 2 cores and inflated app time by 60 % (12.5 ms for 8 ms asked, issue 33).
    pub fn arrivals(rate: f64, arrival: Arrival, seed: u64, slot: (u32, u32)) -> Self {
        let clock = Clock::get();
        let gap_ns = (1e9 / rate) as u64;
        let state = State::arrivals(clock.ticks_for(gap_ns) as f64, arrival, seed);
        Self::local(state, slot, gap_ns.max(1), clock)
    }

    fn local(state: State, slot: (u32, u32), gap_ns: u64, clock: Clock) -> Self {
        let heap = vec![0; state.cap()];
        Self {
            inner: Inner::Local {
                state: Mutex::new((state, heap)),
                ready: Condvar::new(),
                slot,
                gap_ns,
                pool: None,
            },
            clock,
        }
    }

    /// A worker process's own queue under `queue = "first-free"`: it starts with no client
    /// and binds those it claims from the group's pool (descriptor `fd`, the driver's
    /// `shared_clients` of all `clients`), one of the group's `processes`.
    pub fn first_free(fd: std::os::fd::RawFd, clients: u32, processes: u32) -> std::io::Result<Self> {
        let pool = Pool {
            queue: crate::engine::loops::shared_queue::SharedQueue::attach(fd)?,
            processes,
            empty: std::sync::atomic::AtomicBool::new(false),
            bound: std::sync::atomic::AtomicU32::new(0),
        };
        let mut q = Self::local(State::no_clients(clients), (0, 1), 0, Clock::get());
        if let Inner::Local { pool: p, .. } = &mut q.inner {
            *p = Some(pool);
        }
        Ok(q)
    }

    /// Under `queue = "first-free"`: how many of the group's clients this process bound.
    pub fn bound_clients(&self) -> Option<u32> {
        match &self.inner {
            Inner::Local { pool: Some(p), .. } => Some(p.bound.load(std::sync::atomic::Ordering::Relaxed)),
            _ => None,
        }
    }

    /// One queue of `clients` for all of a group's worker processes (see `shared_queue`).
    pub fn shared_clients(clients: u32) -> std::io::Result<Self> {
        Ok(Self {
            inner: Inner::Shared(crate::engine::loops::shared_queue::SharedQueue::clients(clients)?),
            clock: Clock::get(),
        })
    }

    /// One stream of arrivals for all of a group's worker processes.
    pub fn shared_arrivals(rate: f64, arrival: Arrival, seed: u64) -> std::io::Result<Self> {
        Ok(Self {
            inner: Inner::Shared(crate::engine::loops::shared_queue::SharedQueue::arrivals(
                rate, arrival, seed,
            )?),
            clock: Clock::get(),
        })
    }

    /// A worker process's mapping of the driver's shared queue (descriptor `fd`).
    pub fn attach(fd: std::os::fd::RawFd) -> std::io::Result<Self> {
        Ok(Self {
            inner: Inner::Shared(crate::engine::loops::shared_queue::SharedQueue::attach(fd)?),
            clock: Clock::get(),
        })
    }

    /// The descriptor of a shared queue, which worker processes inherit.
    pub fn shared_fd(&self) -> Option<std::os::fd::RawFd> {
        match &self.inner {
            Inner::Shared(q) => Some(q.fd()),
            Inner::Local { .. } => None,
        }
    }

    /// The local tick reading of a CLOCK_MONOTONIC time in the past.
    fn ticks_of(&self, mono_ns: u64) -> u64 {
        let (now_ns, now) = (crate::engine::loops::interp::monotonic_ns(), self.clock.now());
        now.saturating_sub(self.clock.ticks_for(now_ns.saturating_sub(mono_ns)))
    }

    /// The next due request, waiting for one; `None` once the run stops.
    pub fn take(&self, phase: &PhaseFlag) -> Option<Ticket> {
        let (state, ready, slot, gap_ns, pool) = match &self.inner {
            Inner::Local {
                state,
                ready,
                slot,
                gap_ns,
                pool,
            } => (state, ready, *slot, *gap_ns, pool.as_ref()),
            Inner::Shared(q) => {
                return q.take(phase).map(|t| Ticket {
                    issued: self.ticks_of(t.issued),
                    client: t.client,
                });
            }
        };
        let mut guard = state.lock().expect("queue lock");
        loop {
            if phase.get() == Phase::Stop {
                return None;
            }
            let (state, heap) = &mut *guard;
            if let Some(pool) = pool.filter(|p| !p.empty.load(std::sync::atomic::Ordering::Relaxed)) {
                use crate::engine::loops::shared_queue::Claim;
                let bound = pool.bound.load(std::sync::atomic::Ordering::Relaxed);
                match pool.queue.claim(phase, if bound == 0 { 0 } else { pool.processes }) {
                    Claim::Took(t, last) => {
                        state.give_back(heap, self.ticks_of(t.issued));
                        pool.bound.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if last {
                            pool.empty.store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Claim::NotYet => {}
                    Claim::Empty => pool.empty.store(true, std::sync::atomic::Ordering::Relaxed),
                }
            }
            let first = |now: u64| {
                let mono = crate::engine::loops::interp::monotonic_ns();
                now + self.clock.ticks_for(first_arrival_in(mono, gap_ns, slot))
            };
            let wait_ns = match state.take(heap, self.clock.now(), first) {
                Due::Take(t) => {
                    return Some(Ticket {
                        issued: t.issued,
                        client: t.client,
                    });
                }
                Due::Wait(u64::MAX) => POLL.as_nanos() as u64,
                Due::Wait(ticks) => self.clock.ns_between(0, ticks),
            };
            let wait = Duration::from_nanos(wait_ns).min(POLL);
            guard = ready.wait_timeout(guard, wait).expect("queue lock").0;
        }
    }

    /// A closed-loop client got its response at `end` (ticks) and thinks for `think_ns`.
    pub fn done(&self, ticket: Ticket, end: u64, think_ns: u64, phase: &PhaseFlag) {
        if !ticket.client {
            return;
        }
        let (state, ready) = match &self.inner {
            Inner::Local { state, ready, .. } => (state, ready),
            Inner::Shared(q) => {
                let ago = self.clock.ns_between(end, self.clock.now());
                let end_ns = crate::engine::loops::interp::monotonic_ns().saturating_sub(ago);
                return q.done(end_ns, think_ns, phase);
            }
        };
        let at = end + self.clock.ticks_for(think_ns).max(1);
        {
            let (state, heap) = &mut *state.lock().expect("queue lock");
            state.give_back(heap, at);
        }
        ready.notify_one();
    }

    /// Whether another client's request is due now (a keep-alive worker then gives its
    /// client back after `keep_alive_inline` requests). A shared queue holds no keep-alive
    /// clients (validation refuses the pair), so it answers yes. So do clients not yet bound
    /// (`queue = "first-free"`): a worker serving one client inline must come back to the
    /// queue to claim them, or they would never be served.
    pub fn has_due(&self) -> bool {
        match &self.inner {
            Inner::Local { pool: Some(p), .. } if !p.empty.load(std::sync::atomic::Ordering::Relaxed) => true,
            Inner::Local { state, .. } => {
                let (state, heap) = &*state.lock().expect("queue lock");
                state.has_due(heap, self.clock.now())
            }
            Inner::Shared(_) => true,
        }
    }

    /// A client served inline by the worker holding it: its next request is issued when its
    /// think time after `end` (ticks) is over.
    pub fn inline_ticket(&self, end: u64, think_ns: u64) -> Ticket {
        Ticket {
            issued: end + self.clock.ticks_for(think_ns),
            client: true,
        }
    }

    /// Wakes every waiting worker (the run is stopping).
    pub fn wake_all(&self) {
        match &self.inner {
            Inner::Local { ready, .. } => ready.notify_all(),
            Inner::Shared(q) => q.wake_all(),
        }
    }
}

/// Nanoseconds from `mono_ns` to the first point of the grid `j × gap + k/n × gap` at or
/// after it (the grid every process of a group computes alike).
fn first_arrival_in(mono_ns: u64, gap_ns: u64, (k, n): (u32, u32)) -> u64 {
    let offset = (u128::from(gap_ns) * u128::from(k) / u128::from(n.max(1))) as u64;
    let phase = (mono_ns + gap_ns - offset % gap_ns) % gap_ns;
    (gap_ns - phase) % gap_ns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_served_in_issue_order_and_come_back() {
        let q = RequestQueue::clients(2);
        let phase = PhaseFlag::default();
        phase.set(Phase::Measure);
        let a = q.take(&phase).unwrap();
        let b = q.take(&phase).unwrap();
        assert!(a.client && b.client);
        let clock = Clock::get();
        q.done(b, clock.now(), 0, &phase);
        q.done(a, clock.now(), 0, &phase);
        let first = q.take(&phase).unwrap();
        let second = q.take(&phase).unwrap();
        assert!(first.issued <= second.issued);
        phase.set(Phase::Stop);
        assert!(q.take(&phase).is_none(), "an empty queue ends when the run stops");
    }

    #[test]
    fn every_client_issues_its_first_request_at_the_start() {
        // Regression (issue 29): the first requests were issued when taken, so with many
        // clients per worker most requests of a short run had no queue wait at all.
        let q = RequestQueue::clients(3);
        let phase = PhaseFlag::default();
        let a = q.take(&phase).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let b = q.take(&phase).unwrap();
        let c = q.take(&phase).unwrap();
        assert_eq!((a.issued, a.issued), (b.issued, c.issued));
    }

    #[test]
    fn a_due_client_is_seen_only_once_its_request_is_issued() {
        let q = RequestQueue::clients(2);
        let phase = PhaseFlag::default();
        assert!(q.has_due(), "both clients issue their first request at the start");
        let a = q.take(&phase).unwrap();
        assert!(q.has_due(), "one still waits");
        let b = q.take(&phase).unwrap();
        assert!(!q.has_due(), "nobody waits");
        let clock = Clock::get();
        // Back in an hour: not due now.
        q.done(a, clock.now(), 3_600_000_000_000, &phase);
        assert!(!q.has_due());
        q.done(b, clock.now(), 0, &phase);
        assert!(q.has_due());
        let inline = q.inline_ticket(5, 0);
        assert!(
            inline.client && inline.issued == 5,
            "an inline request is issued at the response"
        );
    }

    #[test]
    fn first_free_queues_bind_the_clients_they_claim_and_keep_them() {
        // The driver's pool of 3 clients, and two processes' queues on it.
        let pool = RequestQueue::shared_clients(3).unwrap();
        let fd = || {
            // SAFETY: dup of the pool's own descriptor, as a worker process inherits it.
            unsafe { libc::dup(pool.shared_fd().unwrap()) }
        };
        let a = RequestQueue::first_free(fd(), 3, 2).unwrap();
        let b = RequestQueue::first_free(fd(), 3, 2).unwrap();
        let phase = PhaseFlag::default();
        phase.set(Phase::Measure);
        assert_eq!((a.bound_clients(), b.bound_clients()), (Some(0), Some(0)));
        let a1 = a.take(&phase).unwrap();
        assert!(a1.client);
        // (A's second claim would wait for B's first: `shared_queue`'s test.)
        let b1 = b.take(&phase).unwrap();
        let a2 = a.take(&phase).unwrap();
        assert_eq!((a.bound_clients(), b.bound_clients()), (Some(2), Some(1)));
        // Every client issues its first request at the start (the pool's CLOCK_MONOTONIC time,
        // read in each queue's ticks: equal but for the nanoseconds between two readings).
        let clock = Clock::get();
        let apart = clock.ns_between(a1.issued.min(a2.issued), a1.issued.max(a2.issued));
        assert!(apart < 1_000_000, "{apart} ns apart");
        // A client comes back to the queue of the process that served it, and only there.
        b.done(b1, clock.now(), 0, &phase);
        assert!(b.has_due() && !a.has_due());
        assert!(b.take(&phase).is_some());
        a.done(a1, clock.now(), 0, &phase);
        a.done(a2, clock.now(), 0, &phase);
        assert!(a.take(&phase).is_some() && a.take(&phase).is_some());
        assert_eq!(
            (a.bound_clients(), b.bound_clients()),
            (Some(2), Some(1)),
            "the pool is empty"
        );
        assert_eq!(
            RequestQueue::clients(2).bound_clients(),
            None,
            "an even share binds nothing"
        );
    }

    #[test]
    fn a_queue_without_clients_serves_nothing_and_ends_with_the_run() {
        let q = RequestQueue::clients(0);
        let phase = PhaseFlag::default();
        phase.set(Phase::Stop);
        assert!(q.take(&phase).is_none());
    }

    #[test]
    fn the_queues_of_a_group_interleave_their_arrivals() {
        // 4 queues at one gap of 200: their first arrivals fall 50 apart on the grid, at
        // any starting instant.
        for now in [0u64, 1, 37, 199, 200, 12_345] {
            let mut at: Vec<u64> = (0..4)
                .map(|k| (now + first_arrival_in(now, 200, (k, 4))) % 200)
                .collect();
            at.sort_unstable();
            assert_eq!(at, vec![0, 50, 100, 150], "from {now}");
            for k in 0..4 {
                assert!(first_arrival_in(now, 200, (k, 4)) < 200, "within one gap");
            }
        }
        assert_eq!(first_arrival_in(400, 200, (0, 1)), 0, "on the grid: now");
    }

    #[test]
    fn arrivals_are_spaced_by_the_rate() {
        let q = RequestQueue::arrivals(1e6, Arrival::Fixed, 1, (0, 1));
        let phase = PhaseFlag::default();
        let a = q.take(&phase).unwrap();
        let b = q.take(&phase).unwrap();
        assert!(!a.client);
        assert!(b.issued > a.issued);
    }
}
