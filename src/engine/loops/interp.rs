//! The interpreter lock of a worker process (issue 29): Ruby's GVL, CPython's GIL.
//!
//! One lock per process of a group (the driver's threads of a `thread` group share one; each
//! worker process of a `process` group has its own). App time runs only while holding it;
//! under `gvl` SQLite statements run holding it too (the sqlite3 gem calls `sqlite3_step`
//! without releasing the GVL), under `gil` they run without it (CPython's `_sqlite` wraps
//! `sqlite3_step` in `Py_BEGIN_ALLOW_THREADS`). A switch timer ticks every interval (100 ms
//! for Ruby, 5 ms for CPython); a thread running app code that saw a tick while others wait
//! hands the lock on (FIFO, a ticket lock). A wait of the busy
//! handler holds or releases it as `busy_wait` says, through a hook the SQLite target's busy
//! handlers call around each sleep (`targets::sqlite::busy::set_wait_hook`).
//!
//! Every application-model process has one, `native` included (then it never locks and only
//! counts), so the report can compare: the CPU time of app code per process against its wall
//! time, and how many threads ran app code at once.

use crate::config::app::{BusyWait, Runtime};
pub use crate::metrics::app::InterpStats;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// The interpreter lock of one process, and what its threads did with it.
pub struct InterpLock {
    runtime: Runtime,
    busy_wait: BusyWait,
    quantum_ns: u64,
    /// Ticket lock: the next ticket to hand out and the one being served.
    tickets: Mutex<(u64, u64)>,
    turn: Condvar,
    /// Threads running app code right now, and the most at once.
    in_app: AtomicU32,
    max_in_app: AtomicU32,
    /// Threads inside a busy-handler wait right now.
    db_waiters: AtomicU32,
    /// The switch timer's origin (CLOCK_MONOTONIC ns): it ticks every quantum from here.
    epoch_ns: u64,
}

thread_local! {
    /// The lock of this worker thread's process, for the busy handler's hook.
    static CURRENT: RefCell<Option<Arc<InterpLock>>> = const { RefCell::new(None) };
    /// Whether this thread holds it, and when it took it (thread CPU clock is not needed).
    static HELD: Cell<bool> = const { Cell::new(false) };
    static HELD_SINCE: Cell<u64> = const { Cell::new(0) };
    static STATS: Cell<InterpStats> = const {
        Cell::new(InterpStats {
            app_cpu_ns: 0,
            lock_wait_ns: 0,
            app_slices_during_db_wait: 0,
            app_slices: 0,
            max_concurrent_app: 0,
            start_ns: 0,
            end_ns: 0,
        })
    };
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

/// CLOCK_MONOTONIC in ns: comparable between the processes of one machine.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl InterpLock {
    pub fn new(runtime: Runtime, busy_wait: Option<BusyWait>) -> Self {
        Self {
            runtime,
            busy_wait: busy_wait.unwrap_or(runtime.default_busy_wait()),
            quantum_ns: runtime.quantum().as_nanos() as u64,
            tickets: Mutex::new((0, 0)),
            turn: Condvar::new(),
            in_app: AtomicU32::new(0),
            max_in_app: AtomicU32::new(0),
            db_waiters: AtomicU32::new(0),
            epoch_ns: monotonic_ns(),
        }
    }

    fn locks(&self) -> bool {
        self.runtime.has_lock()
    }

    /// Threads waiting for the lock (besides the holder).
    fn waiting(&self) -> u64 {
        let t = self.tickets.lock().expect("interpreter lock");
        t.0.saturating_sub(t.1 + 1)
    }

    fn acquire_raw(&self) {
        let mut t = self.tickets.lock().expect("interpreter lock");
        let mine = t.0;
        t.0 += 1;
        while t.1 != mine {
            t = self.turn.wait(t).expect("interpreter lock");
        }
    }

    fn release_raw(&self) {
        let mut t = self.tickets.lock().expect("interpreter lock");
        t.1 += 1;
        drop(t);
        self.turn.notify_all();
    }
}

/// Binds this worker thread to its process's lock (and the busy handlers' hook to it).
pub fn bind(lock: Arc<InterpLock>) {
    CURRENT.with_borrow_mut(|c| *c = Some(lock));
    crate::targets::sqlite::busy::set_wait_hook(Some(around_busy_wait));
}

fn with_lock<R>(f: impl FnOnce(&InterpLock) -> R) -> Option<R> {
    CURRENT.with_borrow(|c| c.as_deref().map(f))
}

fn add(f: impl FnOnce(&mut InterpStats)) {
    if MEASURING.get() {
        let mut s = STATS.get();
        f(&mut s);
        STATS.set(s);
    }
}

/// Takes the lock if this thread does not hold it (counting the wait).
pub fn hold() {
    if HELD.get() {
        return;
    }
    let waited = with_lock(|l| {
        if !l.locks() {
            return 0;
        }
        let t0 = monotonic_ns();
        l.acquire_raw();
        let now = monotonic_ns();
        HELD_SINCE.set(now);
        now - t0
    });
    if let Some(ns) = waited {
        HELD.set(with_lock(|l| l.locks()).unwrap_or(false));
        add(|s| s.lock_wait_ns += ns);
    }
}

/// Gives the lock up if this thread holds it.
pub fn release() {
    if HELD.replace(false) {
        with_lock(|l| l.release_raw());
    }
}

/// Before a statement: under `gvl` it runs holding the lock, under `gil` without it.
pub fn for_statement() {
    match with_lock(|l| l.runtime) {
        Some(r) if r.statements_hold_lock() => hold(),
        Some(r) if r.has_lock() => release(),
        _ => {}
    }
}

/// Runs one slice of app code (`spin`) holding the lock, counted; past the switch interval,
/// with others waiting, the lock is handed on first.
pub fn app_slice(spin: impl FnOnce()) {
    let Some(lock) = CURRENT.with_borrow(|c| c.clone()) else {
        spin();
        return;
    };
    hold();
    // The switch timer ticks every quantum, whoever holds the lock (Ruby's waiting thread
    // times TIME_QUANTUM and then interrupts the holder; CPython's eval loop drops the GIL
    // on a switch request): a holder that saw a tick while others wait hands the lock on,
    // so it is preempted anywhere in its hold, mid-transaction too.
    if HELD.get() && lock.quantum_ns > 0 {
        let tick = |t: u64| t.saturating_sub(lock.epoch_ns) / lock.quantum_ns;
        if tick(monotonic_ns()) != tick(HELD_SINCE.get()) && lock.waiting() > 0 {
            release();
            hold();
        }
    }
    let during_wait = lock.db_waiters.load(Ordering::Acquire) > 0;
    let now = lock.in_app.fetch_add(1, Ordering::AcqRel) + 1;
    lock.max_in_app.fetch_max(now, Ordering::AcqRel);
    let c0 = crate::engine::loops::clock::thread_cpu_ns();
    spin();
    let cpu = crate::engine::loops::clock::thread_cpu_ns().saturating_sub(c0);
    lock.in_app.fetch_sub(1, Ordering::AcqRel);
    add(|s| {
        s.app_cpu_ns += cpu;
        s.app_slices += 1;
        s.app_slices_during_db_wait += u64::from(during_wait);
    });
}

/// The busy handlers' hook, around each sleep: `entering` before it, then after it.
fn around_busy_wait(entering: bool) {
    thread_local! {
        /// What to undo after the sleep: 1 = take the lock again, 2 = give it back.
        static UNDO: Cell<u8> = const { Cell::new(0) };
    }
    let Some(lock) = CURRENT.with_borrow(|c| c.clone()) else {
        return;
    };
    if entering {
        lock.db_waiters.fetch_add(1, Ordering::AcqRel);
        let undo = match (lock.busy_wait, HELD.get(), lock.locks()) {
            (BusyWait::ReleasesLock, true, _) => {
                release();
                1
            }
            (BusyWait::HoldsLock, false, true) => {
                hold();
                2
            }
            _ => 0,
        };
        UNDO.set(undo);
    } else {
        match UNDO.replace(0) {
            1 => hold(),
            2 => release(),
            _ => {}
        }
        lock.db_waiters.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The measured phase starts: counters from zero.
pub fn start_measuring() {
    MEASURING.set(true);
    STATS.set(InterpStats {
        start_ns: monotonic_ns(),
        ..InterpStats::default()
    });
}

/// This thread's counters at the end of the run.
pub fn finish() -> Option<InterpStats> {
    release();
    let lock = CURRENT.with_borrow(|c| c.clone())?;
    if !MEASURING.get() {
        return None;
    }
    let mut s = STATS.get();
    s.end_ns = monotonic_ns();
    s.max_concurrent_app = lock.max_in_app.load(Ordering::Acquire);
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_at_a_time_runs_app_code_under_the_lock() {
        let lock = Arc::new(InterpLock::new(Runtime::Gvl, None));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    bind(lock);
                    start_measuring();
                    for _ in 0..50 {
                        app_slice(|| crate::engine::loops::app::spin(100_000));
                        release();
                    }
                    finish().unwrap()
                })
            })
            .collect();
        let stats: Vec<InterpStats> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(stats.iter().all(|s| s.app_slices == 50));
        assert_eq!(lock.max_in_app.load(Ordering::Acquire), 1);
        let cpu: u64 = stats.iter().map(|s| s.app_cpu_ns).sum();
        let wall = stats.iter().map(|s| s.end_ns).max().unwrap() - stats.iter().map(|s| s.start_ns).min().unwrap();
        assert!(cpu <= wall, "app CPU {cpu} ns > wall {wall} ns under one lock");
    }

    #[test]
    fn native_never_locks() {
        let lock = Arc::new(InterpLock::new(Runtime::Native, None));
        bind(lock.clone());
        hold();
        assert!(!HELD.get());
        app_slice(|| {});
        assert_eq!(lock.waiting(), 0);
    }
}
