//! Per-thread event buffers and their files.
//!
//! Each thread appends JSON lines to its own buffer (a mutex only that thread and the exit flush
//! ever take, so never contended on the hot path) and writes it to its own part file
//! `{prefix}.{pid}.{tid}.jsonl` when it passes `FLUSH_AT`, on `sqlite3_close*`, at thread exit,
//! at `exit()` (atexit) and at `_exit()` (interposed: Python's multiprocessing children leave with
//! `os._exit`). After `fork` the child's copy of a buffer is discarded, never written.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, TryLockError, Weak};

use crate::json::Line;
use crate::sys::{self, ForkMutex};
use litehammer_trace::protocol;

/// A thread's buffer is written out once it holds this many bytes (the protocol's number).
pub const FLUSH_AT: usize = litehammer_trace::protocol::FLUSH_AT;
/// Statements started (STMT) but not yet finished (PROFILE) that one thread remembers.
const MAX_PENDING: usize = 64;

/// What the environment asked for; read once.
pub struct Config {
    pub prefix: PathBuf,
    pub redact: bool,
}

pub fn config() -> Option<&'static Config> {
    static CONFIG: OnceLock<Option<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let prefix = std::env::var_os(protocol::ENV_OUT).filter(|p| !p.is_empty())?;
            let redact = protocol::redact_enabled(std::env::var_os(protocol::ENV_REDACT).as_deref());
            Some(Config {
                prefix: PathBuf::from(prefix),
                redact,
            })
        })
        .as_ref()
}

/// This process's pid as last seen by `init` or the `fork` child handler: compared on every event
/// to notice a buffer inherited through `fork` without a system call.
static CURRENT_PID: AtomicI32 = AtomicI32::new(0);
/// The pid that created buffers (0: none in this process): `_exit` flushes only then.
static ACTIVE_PID: AtomicI32 = AtomicI32::new(0);

/// Every live thread's buffer, for the flush at process exit.
static REGISTRY: ForkMutex<Vec<Weak<Mutex<Inner>>>> = ForkMutex::new(Vec::new());

struct Inner {
    pid: i32,
    tid: i32,
    buf: Vec<u8>,
    file: Option<File>,
    /// The file could not be opened or written: drop everything from now on.
    dead: bool,
}

impl Inner {
    fn new(pid: i32, tid: i32) -> Inner {
        let mut buf = Vec::with_capacity(FLUSH_AT + 4096);
        write_header(&mut buf, pid, tid);
        Inner {
            pid,
            tid,
            buf,
            file: None,
            dead: false,
        }
    }

    fn flush(&mut self) {
        if self.dead || self.buf.is_empty() || self.pid != sys::getpid() {
            return;
        }
        if self.file.is_none() {
            let Some(cfg) = config() else {
                self.dead = true;
                return;
            };
            let path = protocol::part_path(&cfg.prefix, self.pid as u32, self.tid as u32);
            match OpenOptions::new()
                .create(true)
                .append(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(path)
            {
                Ok(f) => self.file = Some(f),
                Err(_) => {
                    self.dead = true;
                    self.buf = Vec::new();
                    return;
                }
            }
        }
        if let Some(f) = self.file.as_mut()
            && f.write_all(&self.buf).is_err()
        {
            self.dead = true;
            self.buf = Vec::new();
            return;
        }
        self.buf.clear();
    }
}

fn write_header(buf: &mut Vec<u8>, pid: i32, tid: i32) {
    let version = sys::api().and_then(|a| {
        // SAFETY: sqlite3_libversion returns a static string.
        unsafe { sys::cstr((a.libversion)()) }.map(|s| s.into_owned())
    });
    let wall = sys::clock_ns(libc::CLOCK_REALTIME);
    let mono = sys::mono_ns();
    let exe = std::fs::read_link("/proc/self/exe")
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let mut l = Line::start(buf, "header", mono, pid, tid);
    l.int("ppid", sys::getppid() as i64);
    l.str("source", "litehammer-capture");
    l.str("clock", "monotonic");
    l.int("anchor_mono_ns", mono);
    l.int("anchor_wall_ns", wall);
    l.opt_str("sqlite_version", version.as_deref());
    l.opt_str("exe", exe.as_deref());
    l.bool("redacted", config().is_some_and(|c| c.redact));
    l.end();
}

/// A statement seen at STMT and not yet at PROFILE.
#[derive(Clone, Copy)]
pub struct Pending {
    pub stmt: usize,
    pub start_ns: i64,
    pub total_changes: i32,
    /// The thread's CPU time at the start, read only after an idle gap (else -1).
    pub cpu_ns: i64,
    /// How many of this execution's `sqlite3_step` calls returned a row.
    pub rows: i64,
    /// Statements SQLite ran inside this one (see `nest`): its line's `nested`.
    pub nested: i64,
    /// This execution is itself SQLite's own, nested in another: its end writes no line.
    pub own: bool,
}

impl Pending {
    /// A nested statement's execution: nothing but its address is needed at its end.
    pub fn own(stmt: usize) -> Pending {
        Pending {
            stmt,
            start_ns: 0,
            total_changes: 0,
            cpu_ns: -1,
            rows: 0,
            nested: 0,
            own: true,
        }
    }
}

pub struct Local {
    pid: i32,
    tid: i32,
    /// `,"pid":…,"tid":…` of every line.
    pid_tid: Vec<u8>,
    shared: Arc<Mutex<Inner>>,
    pub pending: Vec<Pending>,
    /// When this thread's last recorded event ended (monotonic ns): the start of the gap
    /// before its next statement.
    pub last_end_ns: i64,
    /// Nested statements whose enclosing statement's start was not seen (not pending): written
    /// on this thread's next statement line.
    pub orphan_nested: i64,
}

impl Local {
    fn new(pid: i32) -> Local {
        let tid = sys::gettid();
        let shared = Arc::new(Mutex::new(Inner::new(pid, tid)));
        REGISTRY.with(|r| {
            r.retain(|w| w.strong_count() > 0);
            r.push(Arc::downgrade(&shared));
        });
        ACTIVE_PID.store(pid, Ordering::Relaxed);
        Local {
            pid,
            tid,
            pid_tid: crate::json::pid_tid(pid, tid),
            shared,
            pending: Vec::new(),
            last_end_ns: 0,
            orphan_nested: 0,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// Appends one line (written by `f`, given `,"pid":…,"tid":…`), flushing when the buffer is
    /// full.
    pub fn append_with_ids(&self, f: impl FnOnce(&mut Vec<u8>, &[u8])) {
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if g.dead {
            return;
        }
        f(&mut g.buf, &self.pid_tid);
        if g.buf.len() >= FLUSH_AT {
            g.flush();
        }
    }

    /// Appends one line (written by `f`), flushing when the buffer is full.
    pub fn append(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if g.dead {
            return;
        }
        f(&mut g.buf);
        if g.buf.len() >= FLUSH_AT {
            g.flush();
        }
    }

    pub fn flush(&self) {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).flush();
    }

    pub fn is_pending(&self, stmt: usize) -> bool {
        self.pending.iter().any(|q| q.stmt == stmt)
    }

    /// Counts a statement SQLite ran inside `outer` (on `outer`'s line, or on this thread's
    /// next line when `outer`'s start was not seen).
    pub fn count_nested(&mut self, outer: usize) {
        match self.pending.iter_mut().rev().find(|q| q.stmt == outer && !q.own) {
            Some(q) => q.nested += 1,
            None => self.orphan_nested += 1,
        }
    }

    /// Drops a leftover nested execution of `stmt` (its end was never seen) before the
    /// application runs it at top level.
    pub fn forget_own(&mut self, stmt: usize) {
        if let Some(i) = self.pending.iter().position(|q| q.stmt == stmt && q.own) {
            self.pending.swap_remove(i);
        }
    }

    pub fn remember(&mut self, p: Pending) {
        if self.is_pending(p.stmt) {
            return; // a trigger's sub-statement of one already running
        }
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(p);
    }

    pub fn take(&mut self, stmt: usize) -> Option<Pending> {
        let i = self.pending.iter().rposition(|q| q.stmt == stmt)?;
        Some(self.pending.swap_remove(i))
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Thread exit. A buffer inherited through fork is never written (and its lock, which
        // another thread of the parent may have held at fork time, is not waited for).
        if self.pid == sys::getpid() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.flush()));
        }
    }
}

/// Drops the parent's copy of a buffer in a forked child without writing it; closes its file if
/// the lock is free, else leaks it.
fn discard_inherited(old: Local) {
    let old = std::mem::ManuallyDrop::new(old);
    if let Ok(mut g) = old.shared.try_lock() {
        g.file = None;
        g.buf = Vec::new();
        g.dead = true;
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's buffer (created on first use, replaced when inherited through
/// `fork`). `None` during thread teardown or re-entry.
pub fn with_local<R>(f: impl FnOnce(&mut Local) -> R) -> Option<R> {
    LOCAL
        .try_with(|cell| {
            let mut g = cell.try_borrow_mut().ok()?;
            let mut pid = CURRENT_PID.load(Ordering::Relaxed);
            if pid == 0 {
                pid = sys::getpid();
                CURRENT_PID.store(pid, Ordering::Relaxed);
            }
            if g.as_ref().is_none_or(|l| l.pid != pid)
                && let Some(old) = g.replace(Local::new(pid))
            {
                discard_inherited(old);
            }
            g.as_mut().map(f)
        })
        .ok()
        .flatten()
}

/// Flushes this thread's buffer if it has one.
pub fn flush_current() {
    let _ = LOCAL.try_with(|cell| {
        if let Ok(g) = cell.try_borrow()
            && let Some(l) = g.as_ref()
        {
            l.flush();
        }
    });
}

/// Flushes every thread's buffer belonging to this process.
pub fn flush_all() {
    let pid = sys::getpid();
    if ACTIVE_PID.load(Ordering::Relaxed) != pid {
        return;
    }
    // Bounded waits, never a plain lock: `_exit` may be called from a signal handler that
    // interrupted this very thread while it held one of these locks.
    let Some(live) = REGISTRY.try_with(100, |r| r.iter().filter_map(Weak::upgrade).collect::<Vec<_>>()) else {
        return;
    };
    for s in live {
        for i in 0..100 {
            match s.try_lock() {
                Ok(mut g) => {
                    if g.pid == pid {
                        g.flush();
                    }
                    break;
                }
                Err(TryLockError::Poisoned(e)) => {
                    let mut g = e.into_inner();
                    if g.pid == pid {
                        g.flush();
                    }
                    break;
                }
                Err(TryLockError::WouldBlock) if i < 99 => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(TryLockError::WouldBlock) => {}
            }
        }
    }
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(flush_all);
}

extern "C" fn fork_prepare() {
    REGISTRY.raw_lock();
}

extern "C" fn fork_parent() {
    // SAFETY: locked in fork_prepare.
    unsafe { REGISTRY.raw_unlock() };
}

extern "C" fn fork_child() {
    CURRENT_PID.store(sys::getpid(), Ordering::Relaxed);
    ACTIVE_PID.store(0, Ordering::Relaxed);
    // SAFETY: locked in fork_prepare (this is the same thread, in the child's copy). The entries
    // are the parent's threads'; they are forgotten (not dropped: another thread may have held
    // one of their locks at fork time).
    unsafe {
        let r = REGISTRY.get_locked();
        std::mem::forget(std::mem::take(r));
        REGISTRY.raw_unlock();
    }
}

/// Runs when the library is loaded (`.init_array`).
extern "C" fn init() {
    CURRENT_PID.store(sys::getpid(), Ordering::Relaxed);
    // SAFETY: plain function pointers that live as long as the process (the library is never
    // unloaded: LD_PRELOAD).
    unsafe {
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
        libc::atexit(at_exit);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;
