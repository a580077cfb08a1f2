//! `litehammer-capture`: an `LD_PRELOAD` library that records every SQLite statement an
//! application runs, as a litehammer trace (JSON lines, `docs/trace-format.md`).
//!
//! It interposes `sqlite3_open`, `sqlite3_open_v2`, `sqlite3_open16`, `sqlite3_close`,
//! `sqlite3_close_v2` (and `sqlite3_trace_v2`, so an application's own trace callback keeps
//! working alongside), forwards each to the application's SQLite, and after a successful open
//! registers a `sqlite3_trace_v2` callback (STMT | PROFILE | CLOSE) that appends one line per
//! event to a per-thread buffer. The environment protocol, the merge of the per-thread files, the
//! SQL lexer and redaction are in the `litehammer-trace` crate (`trace/`), shared with litehammer.
//!
//! Nothing here may unwind into C: every entry point catches panics, and any failure (no
//! output configured, output not writable, an SQLite without `sqlite3_trace_v2`) leaves the
//! application running untraced.

// Unit tests build the interposed functions without their exported names (the test binary links
// its own SQLite), so nothing calls them there.
#[cfg_attr(test, allow(dead_code))]
mod bind;
mod expand;
mod json;
mod nest;
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

pub(crate) fn guarded(f: impl FnOnce()) {
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
            // SAFETY: a live statement.
            let db = unsafe { (api.db_handle)(stmt) };
            // SAFETY: for STMT, x is the NUL-terminated text SQLite traces: the statement's,
            // prefixed `-- ` when it runs inside another statement of the connection, or
            // `-- TRIGGER name` for a trigger's sub-program. Reading its first two bytes stops at
            // the NUL.
            let dashes = !x.is_null()
                && unsafe {
                    let t = x as *const u8;
                    *t == b'-' && *t.add(1) == b'-'
                };
            with_local(|l| {
                let key = stmt as usize;
                // Only a statement SQLite traces with `-- ` can be nested: the frames' connections
                // are looked up then.
                let start = if dashes {
                    // SAFETY: the frames' statements are being stepped on this thread: alive.
                    let db_of = |s: usize| unsafe { (api.db_handle)(s as *mut Stmt) } as usize;
                    nest::with_frames_db(db_of, |fr| {
                        nest::classify(fr, key, db as usize, l.is_pending(key), dashes)
                    })
                } else {
                    nest::Start::TopLevel
                };
                if let nest::Start::Nested { outer } = start {
                    // SQLite's own statement: a count on the enclosing statement's line, and
                    // nothing else (no clock, no values, no line).
                    l.count_nested(outer);
                    if outer != key {
                        l.remember(Pending::own(key));
                    }
                    return;
                }
                l.forget_own(key);
                // SAFETY: a live statement and its connection.
                let total_changes = unsafe { (api.total_changes)(db) };
                let start_ns = sys::mono_ns();
                let cpu_ns = if start_ns - l.last_end_ns >= CPU_GAP_NS {
                    sys::thread_cpu_ns()
                } else {
                    -1
                };
                l.remember(Pending {
                    stmt: key,
                    start_ns,
                    total_changes,
                    cpu_ns,
                    rows: 0,
                    nested: 0,
                    own: false,
                })
            });
        }
        sys::SQLITE_TRACE_PROFILE => {
            let stmt = p as *mut Stmt;
            // SAFETY: for PROFILE, x points at the elapsed time in ns.
            let sqlite_ns = unsafe { *(x as *const i64) };
            // SAFETY: the statement is live during the callback.
            unsafe { record_stmt(api, conn, stmt, sqlite_ns) };
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
unsafe fn record_stmt(api: &sys::Api, conn: &Conn, stmt: *mut Stmt, sqlite_ns: i64) {
    let Some(cfg) = config() else { return };
    // SAFETY (whole block): stmt is live; returned strings are valid until the next call on it.
    unsafe {
        let db = (api.db_handle)(stmt);
        with_local(|l| {
            let pending = l.take(stmt as usize);
            if pending.is_some_and(|q| q.own) {
                return; // SQLite's own statement: counted at its start
            }
            // An end without a start seen, inside another statement of this connection: SQLite's
            // own statement re-run after SQLITE_SCHEMA (SQLite does not trace the retry's start,
            // but does its end), already counted.
            if pending.is_none()
                && nest::with_frames_db(
                    |s| (api.db_handle)(s as *mut Stmt) as usize,
                    |fr| nest::inside_other_of(fr, stmt as usize, db as usize),
                )
            {
                return;
            }
            let now = sys::mono_ns();
            // Statements SQLite ran inside this one (their time is inside its `dur_ns`).
            let nested = pending.map_or(0, |q| q.nested) + std::mem::take(&mut l.orphan_nested);
            let (ts, dur) = match pending {
                Some(q) => (q.start_ns, now - q.start_ns),
                None => (now - sqlite_ns, sqlite_ns),
            };
            let cpu_ns = pending.map_or(-1, |q| q.cpu_ns);
            // Rows returned, when the library sees the application's steps (through the PLT).
            // PROFILE fires inside the step that ends the statement, so that step is not counted
            // yet; it returned no row.
            let rows = match pending {
                Some(q) if STEPS_SEEN.load(Ordering::Relaxed) => q.rows,
                _ => -1,
            };
            // A slow statement (waiting for a lock, or syncing) mostly did not use the CPU:
            // its end gets a reading too, so its wall time is not taken for app CPU.
            let cpu_end_ns = if dur >= CPU_GAP_NS { sys::thread_cpu_ns() } else { -1 };
            l.last_end_ns = now;
            let readonly = (api.stmt_readonly)(stmt) != 0;
            let changed = match pending {
                Some(q) => (api.total_changes)(db) != q.total_changes,
                None => !readonly,
            };
            let changes = if changed { (api.changes)(db) as i64 } else { 0 };
            // The rowid an INSERT gave its (last) row: a later statement that uses it (Django's
            // `INSERT … RETURNING id`, then the new row's id) can be linked to it.
            let rowid = if changed && sql_starts_with_insert((api.sql)(stmt)) {
                (api.last_insert_rowid)(db)
            } else {
                0
            };
            let autocommit = (api.get_autocommit)(db) != 0;
            let sql_ptr = (api.sql)(stmt);
            l.append_with_ids(|buf, ids| {
                buf.reserve(512);
                buf.extend_from_slice(b"{\"v\":1,\"kind\":\"stmt\",\"ts\":");
                json::push_int(buf, ts);
                buf.extend_from_slice(ids);
                buf.extend_from_slice(b",\"conn\":");
                json::push_int(buf, conn.id as i64);
                buf.extend_from_slice(b",\"dur_ns\":");
                json::push_int(buf, dur);
                if cpu_ns >= 0 {
                    buf.extend_from_slice(b",\"cpu_ns\":");
                    json::push_int(buf, cpu_ns);
                }
                if cpu_end_ns >= 0 {
                    buf.extend_from_slice(b",\"cpu_end_ns\":");
                    json::push_int(buf, cpu_end_ns);
                }
                if rows >= 0 {
                    buf.extend_from_slice(b",\"rows\":");
                    json::push_int(buf, rows);
                }
                if rowid != 0 {
                    buf.extend_from_slice(b",\"rowid\":");
                    json::push_int(buf, rowid);
                }
                if nested > 0 {
                    buf.extend_from_slice(b",\"nested\":");
                    json::push_int(buf, nested);
                }
                // The statement's entry: its template, and the values bound to it.
                bind::with_entry(stmt as usize, false, |e| {
                    refresh_template(api, stmt, sql_ptr, cfg.redact, e);
                    let Some(t) = e.template.as_deref() else { return };
                    buf.extend_from_slice(&t.sql_field);
                    write_expanded(api, stmt, cfg.redact, e, buf);
                    buf.extend_from_slice(b",\"changes\":");
                    json::push_int(buf, changes);
                    buf.extend_from_slice(match (autocommit, readonly) {
                        (true, true) => b",\"autocommit\":true,\"readonly\":true",
                        (true, false) => b",\"autocommit\":true,\"readonly\":false",
                        (false, true) => b",\"autocommit\":false,\"readonly\":true",
                        (false, false) => b",\"autocommit\":false,\"readonly\":false",
                    });
                    // `,"txn":…,"pragma":…}` and the newline.
                    if let Some(t) = e.template.as_deref() {
                        buf.extend_from_slice(&t.tail);
                    }
                });
            });
        });
    }
}

/// Whether a statement's text starts with INSERT or REPLACE, after blanks (a leading comment
/// makes it no INSERT here, which only loses the rowid).
///
/// # Safety
/// `sql` is null or a NUL-terminated string.
unsafe fn sql_starts_with_insert(sql: *const c_char) -> bool {
    if sql.is_null() {
        return false;
    }
    // SAFETY: NUL-terminated (sqlite3_sql).
    let text = unsafe { std::ffi::CStr::from_ptr(sql) }.to_bytes();
    let text = text.trim_ascii_start();
    text.get(..6).is_some_and(|h| h.eq_ignore_ascii_case(b"insert"))
        || text.get(..7).is_some_and(|h| h.eq_ignore_ascii_case(b"replace"))
}

/// Makes sure `e` holds the template of the statement's current text (`sqlite3_sql` changes
/// pointer when SQLite re-prepares a statement, rarely its text).
///
/// # Safety
/// `stmt` is live and `sql_ptr` is its `sqlite3_sql`.
unsafe fn refresh_template(api: &sys::Api, stmt: *mut Stmt, sql_ptr: *const c_char, redact: bool, e: &mut bind::Entry) {
    if e.template.is_some() && e.sql_ptr == sql_ptr as usize {
        return;
    }
    // SAFETY: NUL-terminated text owned by the statement.
    let raw: &[u8] = if sql_ptr.is_null() {
        b""
    } else {
        unsafe { std::ffi::CStr::from_ptr(sql_ptr) }.to_bytes()
    };
    let same = e.template.as_deref().is_some_and(|t| t.raw == raw);
    e.sql_ptr = sql_ptr as usize;
    if same {
        return;
    }
    // SAFETY: a live statement.
    let nparams = unsafe { (api.bind_parameter_count)(stmt) }.max(0) as u32;
    let index = |tok: &[u8]| {
        let Ok(name) = std::ffi::CString::new(tok) else {
            return 0;
        };
        // SAFETY: a live statement and a NUL-terminated name.
        unsafe { (api.bind_parameter_index)(stmt, name.as_ptr()) }
    };
    e.template = Some(Box::new(expand::Template::new(raw, nparams, redact, index)));
    e.verified = false;
    e.differs = false;
}

/// Appends what `sqlite3_snprintf("%!.15g")` of the application's SQLite prints.
fn fmt_real(api: &sys::Api, v: f64, out: &mut Vec<u8>) {
    let mut buf = [0 as c_char; 40];
    // SAFETY: a 40-byte buffer (SQLite truncates and NUL-terminates) and one double argument.
    unsafe {
        (api.snprintf)(buf.len() as c_int, buf.as_mut_ptr(), c"%!.15g".as_ptr(), v);
        out.extend_from_slice(std::ffi::CStr::from_ptr(buf.as_ptr()).to_bytes());
    }
}

/// `sqlite3_expanded_sql`, lossy UTF-8 (`None`: SQLite returned NULL).
///
/// # Safety
/// `stmt` is live.
unsafe fn sqlite_expanded(api: &sys::Api, stmt: *mut Stmt) -> Option<String> {
    let f = api.expanded_sql?;
    // SAFETY: live statement; the result is ours to free.
    unsafe {
        let p = f(stmt);
        let s = sys::cstr(p).map(|s| s.into_owned());
        if !p.is_null() {
            (api.free)(p as *mut c_void);
        }
        s
    }
}

/// Writes the `expanded` field (a JSON string): the template with the mirrored values, checked
/// once per statement against `sqlite3_expanded_sql`, which is used instead when they differ or
/// when the values are not known.
///
/// # Safety
/// `stmt` is live (inside its trace callback).
unsafe fn write_expanded(api: &sys::Api, stmt: *mut Stmt, redact: bool, e: &mut bind::Entry, buf: &mut Vec<u8>) {
    let Some(t) = e.template.as_deref() else { return };
    if t.nparams == 0 {
        buf.extend_from_slice(&t.sql_json);
        return;
    }
    let real = |v: f64, out: &mut Vec<u8>| fmt_real(api, v, out);
    if e.known && e.bind_seen && t.mapped && !e.differs {
        if !e.verified {
            let mut ours = Vec::new();
            expand::write_expanded(
                &mut ours,
                t.plain_pieces.as_ref().unwrap_or(&t.pieces),
                &e.values,
                false,
                &real,
            );
            // SAFETY: live statement.
            match unsafe { sqlite_expanded(api, stmt) } {
                Some(theirs) => {
                    let mut escaped = Vec::with_capacity(theirs.len());
                    json::escape_inner(&mut escaped, &theirs);
                    if escaped == ours {
                        e.verified = true;
                    } else {
                        e.differs = true;
                    }
                }
                None => e.verified = true,
            }
        }
        if !e.differs {
            buf.push(b'"');
            expand::write_expanded(buf, &t.pieces, &e.values, redact, &real);
            buf.push(b'"');
            return;
        }
    }
    // SAFETY: live statement.
    match unsafe { sqlite_expanded(api, stmt) } {
        Some(s) if redact => json::escape(buf, &litehammer_trace::redact::literals(&s)),
        Some(s) => json::escape(buf, &s),
        None => buf.extend_from_slice(&t.sql_json),
    }
}

/// # Safety
/// Same contract as SQLite's `sqlite3_open`.
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sqlite3_close_v2(db: *mut Db) -> c_int {
    let Some(real) = sys::real_close_v2() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding.
    let rc = unsafe { real(db) };
    guarded(|| after_close(db, rc));
    rc
}

/// The application's `sqlite3_step` calls reach the library: `rows` can be counted.
static STEPS_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Counts the rows each traced execution returns (`rows` in its line), so that import links a
/// value to a SELECT's row only where the SELECT returned one. The trace callback's STMT event
/// (inside the first step) has already registered the execution.
///
/// # Safety
/// Same contract as SQLite's `sqlite3_step`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sqlite3_step(stmt: *mut Stmt) -> c_int {
    let Some(real) = sys::real_step() else {
        return SQLITE_ERROR;
    };
    if config().is_none() {
        // SAFETY: forwarding.
        return unsafe { real(stmt) };
    }
    // While it runs, the statements SQLite starts on this thread are nested in it.
    let pushed = nest::enter(stmt as usize);
    // SAFETY: forwarding.
    let rc = unsafe { real(stmt) };
    nest::leave(pushed);
    STEPS_SEEN.store(true, Ordering::Relaxed);
    guarded(|| {
        with_local(|l| {
            if let Some(q) = l.pending.iter_mut().rev().find(|q| q.stmt == stmt as usize) {
                q.rows += i64::from(rc == sys::SQLITE_ROW);
            }
        });
    });
    rc
}

/// The busy timeout the application sets through the C API (Python's `timeout=`, Django's
/// `OPTIONS["timeout"]`): a `busy_timeout` event on a traced connection, so that import keeps
/// the app's value.
///
/// # Safety
/// Same contract as SQLite's `sqlite3_busy_timeout`.
#[cfg_attr(not(test), unsafe(no_mangle))]
pub unsafe extern "C" fn sqlite3_busy_timeout(db: *mut Db, ms: c_int) -> c_int {
    let Some(real) = sys::real_busy_timeout() else {
        return SQLITE_ERROR;
    };
    // SAFETY: forwarding.
    let rc = unsafe { real(db, ms) };
    if rc == SQLITE_OK {
        guarded(|| {
            if config().is_none() {
                return;
            }
            let Some(conn) = CONNS.with(|c| c.get(&(db as usize)).copied()) else {
                return;
            };
            let ts = sys::mono_ns();
            with_local(|l| {
                let (pid, tid) = (l.pid(), l.tid());
                l.append(|buf| {
                    let mut line = Line::start(buf, "busy_timeout", ts, pid, tid);
                    line.int("conn", conn.id as i64);
                    line.int("ms", i64::from(ms));
                    line.end();
                });
            });
        });
    }
    rc
}

/// The application's own trace registration: on a traced connection it is chained behind ours
/// (it gets exactly the events it asked for) instead of replacing it.
///
/// # Safety
/// Same contract as SQLite's `sqlite3_trace_v2`.
#[cfg_attr(not(test), unsafe(no_mangle))]
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
#[cfg_attr(not(test), unsafe(no_mangle))]
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
