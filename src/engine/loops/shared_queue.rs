//! One request queue shared by a group's worker processes (`queue = "shared"`, issue 33), as
//! a pre-fork server's workers share one listening socket: gunicorn's sync workers close
//! every connection, so each request waits in the one accept queue and the first free
//! process takes it. (With `queue = "per-process"` each process keeps its own share, as
//! keep-alive connections stay with the process that accepted them: `loops::queue`.)
//!
//! The state lives in an anonymous shared memory file (`memfd_create`) that the driver
//! creates and each worker process maps: a small header and, for clients, a binary min-heap
//! of issue times. Times are CLOCK_MONOTONIC nanoseconds, which every process reads alike.
//! A spin lock guards the few instructions of a take or a return; a waiting worker sleeps on
//! a futex word that every return bumps, for at most the time until the next due request.
//! The state and what a take or a return does to it (`State`) are the same for a process's
//! own queue (`loops::queue`), which keeps them behind a mutex, in the hot path's clock ticks.

use crate::config::Arrival;
use crate::engine::cancel::{Phase, PhaseFlag};
use crate::engine::loops::interp::monotonic_ns;
use crate::workload::rng::Rng;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Longest single wait before the run phase is checked again.
const POLL: Duration = Duration::from_millis(5);

const HEADER_AT: usize = 64;
const HEAP_AT: usize = HEADER_AT + std::mem::size_of::<State>().next_multiple_of(64);

const CLIENTS: u32 = 0;
const ARRIVALS: u32 = 1;

/// The words every process touches at any time (only through atomic operations).
#[repr(C)]
struct Words {
    lock: AtomicU32,
    /// Futex word: bumped by every return of a client and by `wake_all`.
    seq: AtomicU32,
}

/// A queue's state, in one unit of time (CLOCK_MONOTONIC ns here, the hot path's clock ticks
/// in a process's own queue, `loops::queue`), beside a binary min-heap of `cap` slots that
/// holds the waiting clients' issue times. Both kinds of queue take and return through it.
#[repr(C)]
pub(crate) struct State {
    mode: u32,
    poisson: u32,
    /// Heap capacity (the group's clients) and length.
    cap: u32,
    len: u32,
    /// Clients: when the run's first request was taken (0 = not yet); every client issues
    /// its first request then.
    start: u64,
    /// Arrivals: the next intended start (0 = not yet).
    next: u64,
    mean_gap: f64,
    rng: Rng,
}

/// What a take found: a request, or how long until the next one is due (`u64::MAX`: unknown,
/// no client is waiting).
pub(crate) enum Due {
    Take(Taken),
    Wait(u64),
}

impl State {
    /// `clients` clients, all issuing their first request at the start (an all-zero heap).
    pub(crate) fn clients(clients: u32) -> Self {
        Self {
            mode: CLIENTS,
            poisson: 0,
            cap: clients,
            len: clients,
            start: 0,
            next: 0,
            mean_gap: 0.0,
            rng: Rng::new(0),
        }
    }

    /// Room for `cap` clients and none yet: a process's own queue under `queue =
    /// "first-free"`, which gains each client it claims from the group's pool.
    pub(crate) fn no_clients(cap: u32) -> Self {
        Self {
            len: 0,
            ..Self::clients(cap)
        }
    }

    /// Arrivals `mean_gap` apart on average.
    pub(crate) fn arrivals(mean_gap: f64, arrival: Arrival, seed: u64) -> Self {
        Self {
            mode: ARRIVALS,
            poisson: u32::from(arrival == Arrival::Poisson),
            cap: 0,
            len: 0,
            start: 0,
            next: 0,
            mean_gap,
            rng: Rng::derive(seed, 0xA771_0000_0000),
        }
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap as usize
    }

    /// The next request due at `now`, from `heap` (the state's `cap` slots); the first arrival
    /// is due `first(now)` (a process's own queue puts it on the group's grid).
    pub(crate) fn take(&mut self, heap: &mut [u64], now: u64, first: impl FnOnce(u64) -> u64) -> Due {
        if self.mode == CLIENTS {
            let len = self.len as usize;
            return match heap[..len].first().copied() {
                Some(t) if t <= now => {
                    pop(&mut heap[..len]);
                    self.len -= 1;
                    // 0: the first request, issued when the run's first request was taken.
                    let issued = if t == 0 {
                        if self.start == 0 {
                            self.start = now;
                        }
                        self.start
                    } else {
                        t
                    };
                    Due::Take(Taken { issued, client: true })
                }
                Some(t) => Due::Wait(t - now),
                None => Due::Wait(u64::MAX),
            };
        }
        if self.next == 0 {
            self.next = first(now);
        }
        if self.next > now {
            return Due::Wait(self.next - now);
        }
        let issued = self.next;
        let gap = if self.poisson == 1 {
            -self.mean_gap * (1.0 - self.rng.unit()).ln()
        } else {
            self.mean_gap
        };
        self.next += (gap as u64).max(1);
        Due::Take(Taken { issued, client: false })
    }

    /// Whether a waiting client's request is due at `now` (Puma's `backlog > 0`: a request
    /// read and waiting for a thread).
    pub(crate) fn has_due(&self, heap: &[u64], now: u64) -> bool {
        self.mode == CLIENTS && self.len > 0 && heap[0] <= now
    }

    /// A client comes back at `at`.
    pub(crate) fn give_back(&mut self, heap: &mut [u64], at: u64) {
        let len = self.len as usize;
        if len < self.cap as usize {
            self.len += 1;
            push(&mut heap[..len + 1], at);
        }
    }
}

/// The driver's handle (it owns the file) or a worker process's mapping of it.
pub struct SharedQueue {
    fd: OwnedFd,
    base: *mut u8,
    size: usize,
}

// SAFETY: the mapping is only touched through atomics and under the spin lock.
unsafe impl Send for SharedQueue {}
// SAFETY: as above.
unsafe impl Sync for SharedQueue {}

/// What a claim from the pool of unbound clients found.
pub enum Claim {
    /// A client, and whether it was the last one.
    Took(Taken, bool),
    /// Not this process's turn yet: another has not claimed its first client.
    NotYet,
    Empty,
}

/// A request taken: its issue time (CLOCK_MONOTONIC ns in the shared queue, the state's unit
/// in general), and whether a client sent it.
pub struct Taken {
    pub issued: u64,
    pub client: bool,
}

impl SharedQueue {
    /// A closed-loop queue of `clients` clients, all issuing their first request at the start.
    pub fn clients(clients: u32) -> std::io::Result<Self> {
        Self::create(State::clients(clients))
    }

    /// Arrivals at `rate` per second for the whole group.
    pub fn arrivals(rate: f64, arrival: Arrival, seed: u64) -> std::io::Result<Self> {
        Self::create(State::arrivals(1e9 / rate, arrival, seed))
    }

    /// A new shared file holding `state` and its heap (all zeros: every client issued at the
    /// start, a valid heap).
    fn create(state: State) -> std::io::Result<Self> {
        let size = HEAP_AT + 8 * state.cap().max(1);
        // SAFETY: a NUL-terminated name; the flags ask for a close-on-exec descriptor.
        let raw = unsafe { libc::memfd_create(c"litehammer-queue".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on our own descriptor.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let q = Self::map(fd, size)?;
        // SAFETY: the new mapping has room for the State at HEADER_AT, and no other process
        // has it yet.
        unsafe { std::ptr::write(q.base.add(HEADER_AT).cast::<State>(), state) };
        Ok(q)
    }

    /// Maps the queue a worker process inherited as descriptor `fd`.
    pub fn attach(fd: RawFd) -> std::io::Result<Self> {
        // SAFETY: the driver passed this descriptor to this process for the queue alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: fstat into a zeroed stat we own.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let size = st.st_size as usize;
        if size < HEAP_AT {
            return Err(std::io::Error::other("the shared queue is too small"));
        }
        let q = Self::map(fd, size)?;
        if q.size < HEAP_AT + 8 * q.header().cap() {
            return Err(std::io::Error::other("the shared queue is too small for its clients"));
        }
        Ok(q)
    }

    fn map(fd: OwnedFd, size: usize) -> std::io::Result<Self> {
        // SAFETY: a new shared read-write mapping of a file of `size` bytes.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            fd,
            base: base.cast(),
            size,
        })
    }

    /// The descriptor a worker process inherits (see `engine::process`).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn words(&self) -> &Words {
        // SAFETY: the mapping (page-aligned) starts with the atomic words.
        unsafe { &*self.base.cast::<Words>() }
    }

    /// The state: only under the spin lock (or before any other process has the queue).
    #[allow(clippy::mut_from_ref)]
    fn header(&self) -> &mut State {
        // SAFETY: the State follows the words, 8-aligned; the lock makes this the only
        // reference while it lives.
        unsafe { &mut *self.base.add(HEADER_AT).cast::<State>() }
    }

    /// The heap's `cap` slots (the state's): only under the spin lock. It does not overlap
    /// the state.
    #[allow(clippy::mut_from_ref)]
    fn heap(&self, cap: usize) -> &mut [u64] {
        debug_assert!(HEAP_AT + 8 * cap <= self.size);
        // SAFETY: `cap` u64s follow the state inside the mapping (checked on attach); only
        // touched under the spin lock.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(HEAP_AT).cast::<u64>(), cap) }
    }

    /// Takes the spin lock; false if the run stopped while waiting for it.
    fn lock(&self, phase: &PhaseFlag) -> bool {
        let lock = &self.words().lock;
        let mut spins = 0u32;
        loop {
            if lock
                .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
            spins += 1;
            if spins.is_multiple_of(64) {
                // A holder preempted (or killed): give it the CPU, and see if the run ended.
                if phase.get() == Phase::Stop {
                    return false;
                }
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    fn unlock(&self) {
        self.words().lock.store(0, Ordering::Release);
    }

    /// The next due request, waiting for one; `None` once the run stops.
    pub fn take(&self, phase: &PhaseFlag) -> Option<Taken> {
        loop {
            if phase.get() == Phase::Stop || !self.lock(phase) {
                return None;
            }
            let state = self.header();
            let wait_ns = match state.take(self.heap(state.cap()), monotonic_ns(), |now| now) {
                Due::Take(t) => {
                    self.unlock();
                    return Some(t);
                }
                Due::Wait(ns) => ns,
            };
            let seq = &self.words().seq;
            let seen = seq.load(Ordering::Acquire);
            self.unlock();
            futex_wait(seq, seen, Duration::from_nanos(wait_ns).min(POLL));
        }
    }

    /// The pool of unbound clients under `queue = "first-free"` (nobody gives a client back):
    /// takes one without waiting, once at least `after` of them (all of them, if there are
    /// fewer) have been taken. `Claim::Empty` is for good; so is a run that stopped.
    pub fn claim(&self, phase: &PhaseFlag, after: u32) -> Claim {
        if !self.lock(phase) {
            return Claim::Empty;
        }
        let state = self.header();
        let claim = if state.len == 0 {
            Claim::Empty
        } else if state.cap - state.len < after.min(state.cap) {
            Claim::NotYet
        } else {
            match state.take(self.heap(state.cap()), monotonic_ns(), |now| now) {
                Due::Take(t) => Claim::Took(t, state.len == 0),
                Due::Wait(_) => Claim::NotYet,
            }
        };
        self.unlock();
        claim
    }

    /// A client got its response at `end_ns` and comes back after `think_ns`.
    pub fn done(&self, end_ns: u64, think_ns: u64, phase: &PhaseFlag) {
        if !self.lock(phase) {
            return;
        }
        let state = self.header();
        state.give_back(self.heap(state.cap()), end_ns + think_ns.max(1));
        self.unlock();
        let seq = &self.words().seq;
        seq.fetch_add(1, Ordering::Release);
        futex_wake(seq, 1);
    }

    /// Wakes every waiting worker of every process (the run is stopping).
    pub fn wake_all(&self) {
        let seq = &self.words().seq;
        seq.fetch_add(1, Ordering::Release);
        futex_wake(seq, i32::MAX);
    }
}

impl Drop for SharedQueue {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping; nothing refers to it after drop.
        unsafe {
            libc::munmap(self.base.cast(), self.size);
        }
    }
}

/// Removes the minimum of a binary min-heap (the slice is the heap before removal).
fn pop(heap: &mut [u64]) {
    let n = heap.len() - 1;
    heap.swap(0, n);
    let heap = &mut heap[..n];
    let mut i = 0;
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut m = i;
        if l < n && heap[l] < heap[m] {
            m = l;
        }
        if r < n && heap[r] < heap[m] {
            m = r;
        }
        if m == i {
            return;
        }
        heap.swap(i, m);
        i = m;
    }
}

/// Adds `v` as the last element of the slice and restores the heap order.
fn push(heap: &mut [u64], v: u64) {
    let mut i = heap.len() - 1;
    heap[i] = v;
    while i > 0 {
        let p = (i - 1) / 2;
        if heap[p] <= heap[i] {
            return;
        }
        heap.swap(p, i);
        i = p;
    }
}

fn futex_wait(word: &AtomicU32, seen: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT (shared: the word is in a MAP_SHARED mapping) on a live u32 with a
    // relative timeout; it returns at once if the word no longer holds `seen`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            seen,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE on a live u32 of the shared mapping.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_pops_in_order() {
        let mut heap = [0u64; 8];
        let mut len = 0;
        for v in [5u64, 3, 9, 1, 7, 3, 8, 2] {
            len += 1;
            push(&mut heap[..len], v);
        }
        let mut out = Vec::new();
        while len > 0 {
            out.push(heap[0]);
            pop(&mut heap[..len]);
            len -= 1;
        }
        assert_eq!(out, vec![1, 2, 3, 3, 5, 7, 8, 9]);
    }

    #[test]
    fn clients_are_served_in_issue_order_and_come_back_through_a_second_mapping() {
        let q = SharedQueue::clients(2).unwrap();
        // A second mapping of the same file, as a worker process has.
        // SAFETY: dup of our own descriptor.
        let other = SharedQueue::attach(unsafe { libc::dup(q.fd()) }).unwrap();
        let phase = PhaseFlag::default();
        phase.set(Phase::Measure);
        let a = q.take(&phase).unwrap();
        let b = other.take(&phase).unwrap();
        assert!(a.client && b.client);
        assert_eq!(a.issued, b.issued, "both clients issue at the start");
        let now = monotonic_ns();
        other.done(now, 0, &phase);
        q.done(now + 1, 0, &phase);
        let first = q.take(&phase).unwrap();
        let second = other.take(&phase).unwrap();
        assert_eq!((first.issued, second.issued), (now + 1, now + 2));
        phase.set(Phase::Stop);
        assert!(q.take(&phase).is_none(), "an empty queue ends when the run stops");
    }

    #[test]
    fn the_pool_gives_every_process_a_first_client_before_anyone_a_second() {
        let pool = SharedQueue::clients(3).unwrap();
        let phase = PhaseFlag::default();
        // Process A's first claim, then its second while B has none: not yet.
        assert!(matches!(pool.claim(&phase, 0), Claim::Took(t, false) if t.client));
        assert!(matches!(pool.claim(&phase, 2), Claim::NotYet));
        // B's first claim; now A (or B) may take the last one.
        assert!(matches!(pool.claim(&phase, 0), Claim::Took(_, false)));
        assert!(matches!(pool.claim(&phase, 2), Claim::Took(_, true)));
        assert!(
            matches!(pool.claim(&phase, 0), Claim::Empty),
            "nobody gives a client back"
        );
        // More processes than clients (2 clients, 4 processes): the first two processes to
        // look get one each, and then nobody waits for the others.
        let small = SharedQueue::clients(2).unwrap();
        assert!(matches!(small.claim(&phase, 0), Claim::Took(_, false)));
        assert!(matches!(small.claim(&phase, 4), Claim::NotYet));
        assert!(matches!(small.claim(&phase, 0), Claim::Took(_, true)));
        assert!(matches!(small.claim(&phase, 4), Claim::Empty));
    }

    #[test]
    fn a_waiting_taker_ends_when_the_run_stops() {
        let q = std::sync::Arc::new(SharedQueue::clients(1).unwrap());
        let phase = std::sync::Arc::new(PhaseFlag::default());
        assert!(q.take(&phase).is_some());
        let (q2, p2) = (q.clone(), phase.clone());
        let waiter = std::thread::spawn(move || q2.take(&p2).is_none());
        std::thread::sleep(Duration::from_millis(20));
        phase.set(Phase::Stop);
        q.wake_all();
        assert!(waiter.join().unwrap(), "no client came back: nothing to take");
    }

    #[test]
    fn arrivals_are_spaced_by_the_rate_across_mappings() {
        let q = SharedQueue::arrivals(1e6, Arrival::Fixed, 1).unwrap();
        // SAFETY: dup of our own descriptor.
        let other = SharedQueue::attach(unsafe { libc::dup(q.fd()) }).unwrap();
        let phase = PhaseFlag::default();
        let a = q.take(&phase).unwrap();
        let b = other.take(&phase).unwrap();
        let c = q.take(&phase).unwrap();
        assert!(!a.client);
        assert_eq!(b.issued - a.issued, 1000);
        assert_eq!(c.issued - b.issued, 1000);
    }
}
