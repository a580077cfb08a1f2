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
const HEAP_AT: usize = HEADER_AT + std::mem::size_of::<Header>().next_multiple_of(64);

const CLIENTS: u32 = 0;
const ARRIVALS: u32 = 1;

/// The words every process touches at any time (only through atomic operations).
#[repr(C)]
struct Words {
    lock: AtomicU32,
    /// Futex word: bumped by every return of a client and by `wake_all`.
    seq: AtomicU32,
}

/// The state behind the lock.
#[repr(C)]
struct Header {
    mode: u32,
    poisson: u32,
    /// Heap capacity (the group's clients) and length.
    cap: u32,
    len: u32,
    /// Clients: when the run's first request was taken (0 = not yet); every client issues
    /// its first request then.
    start_ns: u64,
    /// Arrivals: the next intended start (0 = not yet).
    next_ns: u64,
    mean_gap_ns: f64,
    rng: Rng,
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

/// A request taken: its issue time on CLOCK_MONOTONIC, and whether a client sent it.
pub struct Taken {
    pub issued_ns: u64,
    pub client: bool,
}

impl SharedQueue {
    /// A closed-loop queue of `clients` clients, all issuing their first request at the start.
    pub fn clients(clients: u32) -> std::io::Result<Self> {
        let q = Self::create(clients.max(1))?;
        let h = q.header();
        h.mode = CLIENTS;
        h.len = clients;
        // All zeros (issued at the start) is a valid heap.
        Ok(q)
    }

    /// Arrivals at `rate` per second for the whole group.
    pub fn arrivals(rate: f64, arrival: Arrival, seed: u64) -> std::io::Result<Self> {
        let q = Self::create(1)?;
        let h = q.header();
        h.mode = ARRIVALS;
        h.poisson = u32::from(arrival == Arrival::Poisson);
        h.mean_gap_ns = 1e9 / rate;
        h.rng = Rng::derive(seed, 0xA771_0000_0000);
        Ok(q)
    }

    fn create(cap: u32) -> std::io::Result<Self> {
        let size = HEAP_AT + 8 * cap as usize;
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
        q.header().cap = cap;
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
        if q.size < HEAP_AT + 8 * q.header().cap as usize {
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
    fn header(&self) -> &mut Header {
        // SAFETY: the Header follows the words, 8-aligned; the lock makes this the only
        // reference while it lives.
        unsafe { &mut *self.base.add(HEADER_AT).cast::<Header>() }
    }

    /// The heap's first `len` slots: only under the spin lock.
    #[allow(clippy::mut_from_ref)]
    fn heap(&self, len: usize) -> &mut [u64] {
        debug_assert!(HEAP_AT + 8 * len <= self.size);
        // SAFETY: `cap` ≥ `len` u64s follow the header inside the mapping (checked on
        // attach); only touched under the spin lock.
        unsafe { std::slice::from_raw_parts_mut(self.base.add(HEAP_AT).cast::<u64>(), len) }
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
            let now = monotonic_ns();
            let h = self.header();
            let wait_ns = if h.mode == CLIENTS {
                let len = h.len as usize;
                match self.heap(len).first().copied() {
                    Some(0) => {
                        pop(self.heap(len));
                        h.len -= 1;
                        if h.start_ns == 0 {
                            h.start_ns = now;
                        }
                        let issued_ns = h.start_ns;
                        self.unlock();
                        return Some(Taken {
                            issued_ns,
                            client: true,
                        });
                    }
                    Some(t) if t <= now => {
                        pop(self.heap(len));
                        h.len -= 1;
                        self.unlock();
                        return Some(Taken {
                            issued_ns: t,
                            client: true,
                        });
                    }
                    Some(t) => t - now,
                    None => POLL.as_nanos() as u64,
                }
            } else {
                if h.next_ns == 0 {
                    h.next_ns = now;
                }
                if h.next_ns <= now {
                    let issued_ns = h.next_ns;
                    let gap = if h.poisson == 1 {
                        -h.mean_gap_ns * (1.0 - h.rng.unit()).ln()
                    } else {
                        h.mean_gap_ns
                    };
                    h.next_ns += (gap as u64).max(1);
                    self.unlock();
                    return Some(Taken {
                        issued_ns,
                        client: false,
                    });
                }
                h.next_ns - now
            };
            let seq = &self.words().seq;
            let seen = seq.load(Ordering::Acquire);
            self.unlock();
            futex_wait(seq, seen, Duration::from_nanos(wait_ns).min(POLL));
        }
    }

    /// A client got its response at `end_ns` and comes back after `think_ns`.
    pub fn done(&self, end_ns: u64, think_ns: u64, phase: &PhaseFlag) {
        if !self.lock(phase) {
            return;
        }
        let h = self.header();
        let len = h.len as usize;
        if len < h.cap as usize {
            h.len += 1;
            push(self.heap(len + 1), end_ns + think_ns.max(1));
        }
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
        assert_eq!(a.issued_ns, b.issued_ns, "both clients issue at the start");
        let now = monotonic_ns();
        other.done(now, 0, &phase);
        q.done(now + 1, 0, &phase);
        let first = q.take(&phase).unwrap();
        let second = other.take(&phase).unwrap();
        assert_eq!((first.issued_ns, second.issued_ns), (now + 1, now + 2));
        phase.set(Phase::Stop);
        assert!(q.take(&phase).is_none(), "an empty queue ends when the run stops");
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
        assert_eq!(b.issued_ns - a.issued_ns, 1000);
        assert_eq!(c.issued_ns - b.issued_ns, 1000);
    }
}
