//! `litehammer-capture`: an `LD_PRELOAD` library that records every SQLite statement an
//! application runs, as a litehammer trace (JSON lines, `docs/trace-format.md`).
//!
//! It interposes `sqlite3_open`, `sqlite3_open_v2`, `sqlite3_open16`, `sqlite3_close`,
//! `sqlite3_close_v2` (and `sqlite3_trace_v2`, so an application's own trace callback keeps
//! working alongside), forwards each to the application's SQLite, and after a successful open
//! registers a `sqlite3_trace_v2` callback (STMT | PROFILE | CLOSE) that appends one line per
//! event to a per-thread buffer. The environment protocol and the merge of the per-thread files
//! are in [`protocol`], which depends on `std` only.
//!
//! Nothing here may unwind into C: every entry point catches panics, and any failure (no
//! output configured, output not writable, an SQLite without `sqlite3_trace_v2`) leaves the
//! application running untraced.

pub mod protocol;

mod json;
mod record;
mod sqltext;
mod sys;

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

use json::Line;
use record::{Pending, config, with_local};
use sys::{Db, ForkMutex, SQLITE_ERROR, SQLITE_OK, Stmt, TraceCb, api};

const OUR_MASK: c_uint = sys::SQLITE_TRACE_STMT | sys::SQLITE_TRACE_PROFILE | sys::SQLITE_TRACE_CLOSE;

/// A gap at least this long before a statement (app code running, or the thread idle) gets the
/// thread's CPU time read at the statement's start (`cpu_ns`), so that `import` can tell app
/// CPU from waiting. Reading it costs ~0.4 µs (a system call), nothing against such a gap, and
/// a tight loop of statements never pays it.
const CPU_GAP_NS: i64 = 1_000_000;

/// A traced connection: the context pointer of our trace callback. Leaked on purpose (a few
/// dozen bytes per connection): after `sqlite3_close_v2` a zombie connection may still call back.
struct Conn {
    id: u64,
    /// The application's own `sqlite3_trace_v2` registration, called after ours.
    app_mask: AtomicU32,
    app_cb: AtomicUsize,
    app_ctx: AtomicUsize,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
/// Open traced connections by handle address (only touched on open, close and trace_v2).
static CONNS: ForkMutex<BTreeMap<usize, &'static Conn>> = ForkMutex::new(BTreeMap::new());

fn guarded(f: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Starts tracing a connection the application has just opened.
///
/// # Safety
/// `db` is a valid open connection.
unsafe fn after_open(db: *mut Db, path: Option<String>, flags: Option<c_int>) {
    if db.is_null() || config().is_none() {
        return;
    }
    let Some(api) = api() else { return };
    let conn: &'static Conn = Box::leak(Box::new(Conn {
        id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
        app_mask: AtomicU32::new(0),
        app_cb: AtomicUsize::new(0),
        app_ctx: AtomicUsize::new(0),
    }));
    CONNS.with(|c| c.insert(db as usize, conn));
    // SAFETY: valid db; the callback and its context live forever.
    unsafe { (api.trace_v2)(db, OUR_MASK, Some(trace_cb), conn as *const Conn as *mut c_void) };
    let file = api.db_filename.and_then(|f| {
        // SAFETY: valid db; the result lives as long as the connection.
        unsafe { sys::cstr(f(db, c"main".as_ptr())) }.map(|s| s.into_owned())
    });
    let ts = sys::mono_ns();
    let cpu = sys::thread_cpu_ns();
    with_local(|l| {
        let (pid, tid) = (l.pid(), l.tid());
        l.last_end_ns = ts;
        l.append(|buf| {
            let mut line = Line::start(buf, "open", ts, pid, tid);
            line.int("conn", conn.id as i64);
            line.int("cpu_ns", cpu);
            line.opt_str("path", path.as_deref());
            line.opt_str("file", file.as_deref());
            line.opt_int("flags", flags.map(i64::from));
            line.end();
        });
    });
}

/// Forgets a closed connection and writes this thread's buffer out.
fn after_close(db: *mut Db, rc: c_int) {
    if config().is_none() {
        return;
    }
    if rc == SQLITE_OK {
        CONNS.with(|c| c.remove(&(db as usize)));
    }
    record::flush_current();
}

unsafe extern "C" fn trace_cb(t: c_uint, ctx: *mut c_void, p: *mut c_void, x: *mut c_void) -> c_int {
    // SAFETY: ctx is the leaked Conn registered with this callback.
    let conn = unsafe { &*(ctx as *const Conn) };
    if t & OUR_MASK != 0 {
        // SAFETY: SQLite passes the arguments documented for event `t`.
        guarded(|| unsafe { on_event(t, conn, p, x) });
    }
    let mask = conn.app_mask.load(Ordering::Acquire);
    if mask & t != 0 {
        let cb = conn.app_cb.load(Ordering::Acquire);
        if cb != 0 {
            // SAFETY: stored from the application's sqlite3_trace_v2 call.
            let cb: TraceCb = unsafe { std::mem::transmute::<usize, TraceCb>(cb) };
            let app_ctx = conn.app_ctx.load(Ordering::Acquire) as *mut c_void;
            // SAFETY: calling the application's callback as SQLite would.
            return unsafe { cb(t, app_ctx, p, x) };
        }
    }
    0
}

/// # Safety
/// The arguments are those of a `sqlite3_trace_v2` callback for event `t`.
unsafe fn on_event(t: c_uint, conn: &Conn, p: *mut c_void, x: *mut c_void) {
    let Some(api) = api() else { return };
    match t {
        sys::SQLITE_TRACE_STMT => {
            let stmt = p as *mut Stmt;
            // SAFETY: a live statement and its connection.
            let total_changes = unsafe { (api.total_changes)((api.db_handle)(stmt)) };
            let start_ns = sys::mono_ns();
            with_local(|l| {
                let cpu_ns = if start_ns - l.last_end_ns >= CPU_GAP_NS {
                    sys::thread_cpu_ns()
                } else {
                    -1
                };
                l.remember(Pending {
                    stmt: stmt as usize,
                    start_ns,
                    total_changes,
                    cpu_ns,
                })
            });
        }
        sys::SQLITE_TRACE_PROFILE => {
            let now = sys::mono_ns();
            let stmt = p as *mut Stmt;
            // SAFETY: for PROFILE, x points at the elapsed time in ns.
            let sqlite_ns = unsafe { *(x as *const i64) };
            // SAFETY: the statement is live during the callback.
            unsafe { record_stmt(api, conn, stmt, now, sqlite_ns) };
        }
        sys::SQLITE_TRACE_CLOSE => {
            let ts = sys::mono_ns();
            let cpu = sys::thread_cpu_ns();
            with_local(|l| {
                let (pid, tid) = (l.pid(), l.tid());
                l.last_end_ns = ts;
                l.append(|buf| {
                    let mut line = Line::start(buf, "close", ts, pid, tid);
                    line.int("conn", conn.id as i64);
                    line.int("cpu_ns", cpu);
                    line.end();
                });
            });
        }
        _ => {}
    }
}

/// # Safety
/// `stmt` is a live statement.
unsafe fn record_stmt(api: &sys::Api, conn: &Conn, stmt: *mut Stmt, now: i64, sqlite_ns: i64) {
    let Some(cfg) = config() else { return };
    // SAFETY (whole block): stmt is live; returned strings are valid until the next call on it.
    unsafe {
        let db = (api.db_handle)(stmt);
        let pending = with_local(|l| l.take(stmt as usize)).flatten();
        let (ts, dur) = match pending {
            Some(q) => (q.start_ns, now - q.start_ns),
            None => (now - sqlite_ns, sqlite_ns),
        };
        let cpu_ns = pending.map_or(-1, |q| q.cpu_ns);
        // A slow statement (waiting for a lock, or syncing) mostly did not use the CPU: its
        // end gets a reading too, so its wall time is not taken for app CPU.
        let cpu_end_ns = if dur >= CPU_GAP_NS { sys::thread_cpu_ns() } else { -1 };
        let readonly = (api.stmt_readonly)(stmt) != 0;
        let changed = match pending {
            Some(q) => (api.total_changes)(db) != q.total_changes,
            None => !readonly,
        };
        let changes = if changed { (api.changes)(db) as i64 } else { 0 };
        let autocommit = (api.get_autocommit)(db) != 0;
        let sql = sys::cstr((api.sql)(stmt)).unwrap_or_default();
        let has_params = api.bind_parameter_count.is_none_or(|f| f(stmt) > 0);
        // Owned by SQLite until freed below; used in place (no copy).
        let expanded_ptr = match api.expanded_sql {
            Some(f) if has_params => f(stmt),
            _ => std::ptr::null_mut(),
        };
        let expanded = sys::cstr(expanded_ptr);
        let class = sqltext::classify(&sql);
        let redacted = cfg
            .redact
            .then(|| (sqltext::redact(&sql), expanded.as_deref().map(sqltext::redact)));
        let (sql_out, expanded_out): (&str, Option<&str>) = match &redacted {
            Some((s, e)) => (s, e.as_deref()),
            None => (&sql, expanded.as_deref()),
        };
        with_local(|l| {
            let (pid, tid) = (l.pid(), l.tid());
            l.last_end_ns = now;
            l.append(|buf| {
                let mut line = Line::start(buf, "stmt", ts, pid, tid);
                line.int("conn", conn.id as i64);
                line.int("dur_ns", dur);
                line.opt_int("cpu_ns", (cpu_ns >= 0).then_some(cpu_ns));
                line.opt_int("cpu_end_ns", (cpu_end_ns >= 0).then_some(cpu_end_ns));
                line.str("sql", sql_out);
                // Without parameters the expanded text is the SQL itself.
                line.str("expanded", expanded_out.unwrap_or(sql_out));
                line.int("changes", changes);
                line.bool("autocommit", autocommit);
                line.bool("readonly", readonly);
                line.opt_str("txn", class.txn.map(sqltext::Txn::as_str));
                line.bool("pragma", class.pragma);
                line.end();
            });
        });
        drop(expanded);
        if !expanded_ptr.is_null() {
            (api.free)(expanded_ptr as *mut c_void);
        }
    }
}

/// # Safety
/// Same contract as SQLite's `sqlite3_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_open(filename: *const c_char, pp_db: *mut *mut Db) -> c_int {
    let Some(real) = sys::real_open() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { real(filename, pp_db) };
    if rc == SQLITE_OK && !pp_db.is_null() {
        // SAFETY: a successful open stored a valid handle; filename is the caller's string.
        guarded(|| unsafe { after_open(*pp_db, sys::cstr(filename).map(|s| s.into_owned()), None) });
    }
    rc
}

/// # Safety
/// Same contract as SQLite's `sqlite3_open_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_open_v2(
    filename: *const c_char,
    pp_db: *mut *mut Db,
    flags: c_int,
    vfs: *const c_char,
) -> c_int {
    let Some(real) = sys::real_open_v2() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { real(filename, pp_db, flags, vfs) };
    if rc == SQLITE_OK && !pp_db.is_null() {
        // SAFETY: as in sqlite3_open.
        guarded(|| unsafe { after_open(*pp_db, sys::cstr(filename).map(|s| s.into_owned()), Some(flags)) });
    }
    rc
}

/// # Safety
/// Same contract as SQLite's `sqlite3_open16`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_open16(filename: *const c_void, pp_db: *mut *mut Db) -> c_int {
    let Some(real) = sys::real_open16() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding the caller's arguments.
    let rc = unsafe { real(filename, pp_db) };
    if rc == SQLITE_OK && !pp_db.is_null() {
        guarded(|| {
            // SAFETY: filename is NULL or a NUL-terminated UTF-16 string.
            let path = (!filename.is_null()).then(|| unsafe {
                let p = filename as *const u16;
                let mut n = 0;
                while *p.add(n) != 0 {
                    n += 1;
                }
                String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
            });
            // SAFETY: as in sqlite3_open.
            unsafe { after_open(*pp_db, path, None) }
        });
    }
    rc
}

/// # Safety
/// Same contract as SQLite's `sqlite3_close`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_close(db: *mut Db) -> c_int {
    let Some(real) = sys::real_close() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding.
    let rc = unsafe { real(db) };
    guarded(|| after_close(db, rc));
    rc
}

/// # Safety
/// Same contract as SQLite's `sqlite3_close_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_close_v2(db: *mut Db) -> c_int {
    let Some(real) = sys::real_close_v2() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding.
    let rc = unsafe { real(db) };
    guarded(|| after_close(db, rc));
    rc
}

/// The application's own trace registration: on a traced connection it is chained behind ours
/// (it gets exactly the events it asked for) instead of replacing it.
///
/// # Safety
/// Same contract as SQLite's `sqlite3_trace_v2`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sqlite3_trace_v2(db: *mut Db, mask: c_uint, cb: Option<TraceCb>, ctx: *mut c_void) -> c_int {
    let Some(real) = sys::real_trace_v2() else {
        return SQLITE_ERROR;
    };
    let conn = catch_unwind(|| {
        if config().is_some() {
            CONNS.with(|c| c.get(&(db as usize)).copied())
        } else {
            None
        }
    })
    .ok()
    .flatten();
    let Some(conn) = conn else {
        // SAFETY: forwarding.
        return unsafe { real(db, mask, cb, ctx) };
    };
    let (m, f) = match cb {
        Some(f) if mask != 0 => (mask, f as usize),
        _ => (0, 0),
    };
    conn.app_mask.store(0, Ordering::Release);
    conn.app_ctx.store(ctx as usize, Ordering::Release);
    conn.app_cb.store(f, Ordering::Release);
    conn.app_mask.store(m, Ordering::Release);
    // SAFETY: valid db; our callback and context live forever.
    unsafe { real(db, OUR_MASK | m, Some(trace_cb), conn as *const Conn as *mut c_void) }
}

/// `_exit` skips atexit handlers; multiprocessing children (and forked servers) leave through
/// it, so write this process's buffers first.
///
/// # Safety
/// Same contract as libc's `_exit`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    guarded(record::flush_all);
    if let Some(real) = sys::real_exit() {
        // SAFETY: libc's _exit.
        unsafe { real(status) }
    }
    loop {
        // SAFETY: the exit_group system call does not return.
        unsafe { libc::syscall(libc::SYS_exit_group, status) };
    }
}

extern "C" fn fork_prepare() {
    CONNS.raw_lock();
}

extern "C" fn fork_release() {
    // SAFETY: locked in fork_prepare, in this thread (or its copy in the child).
    unsafe { CONNS.raw_unlock() };
}

extern "C" fn init() {
    // SAFETY: plain function pointers valid for the process lifetime.
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_release), Some(fork_release)) };
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;
