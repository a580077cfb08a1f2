//! What the library remembers per prepared statement: the values the application bound (the
//! interposed `sqlite3_bind_*` mirror them, so the trace callback never calls
//! `sqlite3_expanded_sql`) and the statement's [`Template`] (its text JSON-escaped, redacted and
//! classified once, not on every execution).
//!
//! Entries live in a table keyed by the statement's address, split into `STRIPES` spin locks so
//! that threads working on different statements rarely meet; a lock is held for a few hundred
//! instructions and never across I/O. `sqlite3_prepare*` starts a fresh entry and
//! `sqlite3_finalize` removes it. A bind the library cannot mirror (`sqlite3_bind_value`,
//! UTF-16 text, a failed bind) marks the entry unknown: that statement then uses
//! `sqlite3_expanded_sql`, as does one the library never saw prepared or never saw bound.

use std::cell::UnsafeCell;
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::expand::{Template, Value};
use crate::sys::{self, Stmt};

const STRIPES: usize = 64;

/// One prepared statement.
#[derive(Default)]
pub struct Entry {
    /// Bound values, parameter 1 first; missing ones are NULL.
    pub values: Vec<Value>,
    /// Every bind since the statement was prepared went through the library.
    pub known: bool,
    /// The library saw at least one bind (or `sqlite3_clear_bindings`) of this statement: until
    /// then its values are not trusted (the application might bind some other way).
    pub bind_seen: bool,
    pub template: Option<Box<Template>>,
    /// The `sqlite3_sql` pointer the template was made from.
    pub sql_ptr: usize,
    /// The expansion was compared with `sqlite3_expanded_sql` once and was equal.
    pub verified: bool,
    /// ... and was not: always use `sqlite3_expanded_sql` for this statement.
    pub differs: bool,
}

/// Hashes a statement address (already unique; just spread the bits).
#[derive(Default, Clone, Copy)]
pub struct AddrHash(u64);

impl Hasher for AddrHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl BuildHasher for AddrHash {
    type Hasher = AddrHash;
    fn build_hasher(&self) -> AddrHash {
        AddrHash(0)
    }
}

type Map = HashMap<usize, Entry, AddrHash>;

/// A spin lock around one stripe of the table: held for a few hundred instructions (never
/// across I/O or a call that can block), so cheaper than a mutex on this path. `fork` takes every
/// stripe (`pthread_atfork`), so a child never inherits one held by a thread that is gone.
pub struct Stripe {
    locked: AtomicBool,
    map: UnsafeCell<Map>,
}

// SAFETY: `map` is only reached while `locked` is held.
unsafe impl Sync for Stripe {}

impl Stripe {
    const fn new() -> Stripe {
        Stripe {
            locked: AtomicBool::new(false),
            map: UnsafeCell::new(HashMap::with_hasher(AddrHash(0))),
        }
    }

    fn lock(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 100 {
                std::hint::spin_loop();
            } else {
                // The holder was preempted: let it run.
                std::thread::yield_now();
            }
        }
    }

    fn unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut Map) -> R) -> R {
        struct Unlock<'a>(&'a Stripe);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                self.0.unlock();
            }
        }
        self.lock();
        let _u = Unlock(self);
        // SAFETY: locked; the closure cannot reach this stripe again (no SQLite bind call is
        // made inside it).
        f(unsafe { &mut *self.map.get() })
    }
}

static TABLE: [Stripe; STRIPES] = [const { Stripe::new() }; STRIPES];

fn stripe(stmt: usize) -> &'static Stripe {
    &TABLE[((stmt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize % STRIPES]
}

/// Runs `f` on the statement's entry, creating it (with `known` as given) when missing.
pub fn with_entry<R>(stmt: usize, known: bool, f: impl FnOnce(&mut Entry) -> R) -> R {
    stripe(stmt).with(|m| {
        f(m.entry(stmt).or_insert_with(|| Entry {
            known,
            ..Entry::default()
        }))
    })
}

fn capturing() -> bool {
    crate::record::config().is_some()
}

/// After a successful prepare: a new statement, nothing bound yet.
fn prepared(stmt: *mut Stmt) {
    if stmt.is_null() || !capturing() {
        return;
    }
    let e = Entry {
        known: true,
        ..Entry::default()
    };
    stripe(stmt as usize).with(|m| m.insert(stmt as usize, e));
}

fn finalized(stmt: *mut Stmt) {
    if stmt.is_null() || !capturing() {
        return;
    }
    stripe(stmt as usize).with(|m| m.remove(&(stmt as usize)));
}

/// After the application's bind of parameter `i` returned `rc`: on success `set` stores the
/// value the statement now holds; a failure other than a bad index or a busy statement (which
/// leave the value as it was) may have left the parameter NULL, so the entry becomes unknown.
fn bound(stmt: *mut Stmt, i: c_int, rc: c_int, set: impl FnOnce(&mut Value)) {
    if stmt.is_null() || !capturing() {
        return;
    }
    let ok = rc == sys::SQLITE_OK;
    if !ok && (rc == sys::SQLITE_RANGE || rc == sys::SQLITE_MISUSE) {
        return;
    }
    // A bind made while another statement is being stepped on this thread is SQLite's own
    // statement's (FTS5 binding a shadow-table row) or an application function's: not
    // mirrored, which spares copying FTS5's blobs; the statement uses `sqlite3_expanded_sql`
    // if it ever runs at top level.
    let nested = crate::nest::inside_other(stmt as usize);
    crate::guarded(|| {
        with_entry(stmt as usize, true, |e| {
            if !ok || i < 1 || nested {
                e.known = false;
                return;
            }
            e.bind_seen = true;
            let i = i as usize;
            if e.values.len() < i {
                e.values.resize(i, Value::Null);
            }
            set(&mut e.values[i - 1]);
        })
    });
}

/// A bind the library does not mirror: the statement falls back to `sqlite3_expanded_sql`.
fn opaque(stmt: *mut Stmt, rc: c_int) {
    if stmt.is_null() || !capturing() || rc == sys::SQLITE_RANGE || rc == sys::SQLITE_MISUSE {
        return;
    }
    crate::guarded(|| with_entry(stmt as usize, false, |e| e.known = false));
}

/// # Safety
/// `p` is NULL or points at `n` readable bytes (`n < 0`: NUL-terminated).
unsafe fn bytes<'a>(p: *const c_void, n: i64) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    Some(if n < 0 {
        // SAFETY: NUL-terminated per the contract.
        unsafe { std::ffi::CStr::from_ptr(p as *const c_char) }.to_bytes()
    } else {
        // SAFETY: n readable bytes per the contract.
        unsafe { std::slice::from_raw_parts(p as *const u8, n as usize) }
    })
}

fn set_bytes(v: &mut Value, blob: bool, b: Option<&[u8]>) {
    match b {
        Some(b) => v.set_bytes(blob, b),
        None => *v = Value::Null,
    }
}

type Destructor = Option<unsafe extern "C" fn(*mut c_void)>;

/// Declares an interposed function: resolve the real one, call it, then run `$after` with its
/// result (`rc`).
macro_rules! interpose {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $real:ident; |$rc:ident| $after:expr) => {
        fn $real() -> Option<unsafe extern "C" fn($($ty),*) -> c_int> {
            static CELL: OnceLock<usize> = OnceLock::new();
            let p = *CELL.get_or_init(|| {
                let name = concat!(stringify!($name), "\0");
                CStr::from_bytes_with_nul(name.as_bytes()).map_or(0, |n| sys::resolve(n) as usize)
            });
            // SAFETY: the symbol has this C signature in every SQLite.
            (p != 0).then(|| unsafe { std::mem::transmute::<usize, unsafe extern "C" fn($($ty),*) -> c_int>(p) })
        }

        $(#[$doc])*
        /// # Safety
        /// Same contract as SQLite's function of this name.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> c_int {
            let Some(real) = $real() else {
                return sys::SQLITE_ERROR;
            };
            // SAFETY: forwarding the caller's arguments.
            let $rc = unsafe { real($($arg),*) };
            $after;
            $rc
        }
    };
}

interpose!(fn sqlite3_prepare(db: *mut c_void, sql: *const c_char, n: c_int, out: *mut *mut Stmt, tail: *mut *const c_char)
    real_prepare; |rc| after_prepare(rc, out));
interpose!(fn sqlite3_prepare_v2(db: *mut c_void, sql: *const c_char, n: c_int, out: *mut *mut Stmt, tail: *mut *const c_char)
    real_prepare_v2; |rc| after_prepare(rc, out));
interpose!(fn sqlite3_prepare_v3(db: *mut c_void, sql: *const c_char, n: c_int, flags: u32, out: *mut *mut Stmt, tail: *mut *const c_char)
    real_prepare_v3; |rc| after_prepare(rc, out));
interpose!(fn sqlite3_prepare16(db: *mut c_void, sql: *const c_void, n: c_int, out: *mut *mut Stmt, tail: *mut *const c_void)
    real_prepare16; |rc| after_prepare(rc, out));
interpose!(fn sqlite3_prepare16_v2(db: *mut c_void, sql: *const c_void, n: c_int, out: *mut *mut Stmt, tail: *mut *const c_void)
    real_prepare16_v2; |rc| after_prepare(rc, out));
interpose!(fn sqlite3_prepare16_v3(db: *mut c_void, sql: *const c_void, n: c_int, flags: u32, out: *mut *mut Stmt, tail: *mut *const c_void)
    real_prepare16_v3; |rc| after_prepare(rc, out));

fn after_prepare(rc: c_int, out: *mut *mut Stmt) {
    if rc == sys::SQLITE_OK && !out.is_null() {
        // SAFETY: a successful prepare stored the statement (or NULL for empty SQL) there.
        let stmt = unsafe { *out };
        crate::guarded(|| prepared(stmt));
    }
}

interpose!(fn sqlite3_finalize(stmt: *mut Stmt) real_finalize; |_rc| crate::guarded(|| finalized(stmt)));
interpose!(fn sqlite3_clear_bindings(stmt: *mut Stmt) real_clear_bindings; |rc| {
    if rc == sys::SQLITE_OK && !stmt.is_null() && capturing() {
        crate::guarded(|| {
            with_entry(stmt as usize, true, |e| {
                e.values.clear();
                e.bind_seen = true;
            })
        });
    }
});
interpose!(fn sqlite3_bind_null(stmt: *mut Stmt, i: c_int) real_bind_null;
    |rc| bound(stmt, i, rc, |v| *v = Value::Null));
interpose!(fn sqlite3_bind_int(stmt: *mut Stmt, i: c_int, x: c_int) real_bind_int;
    |rc| bound(stmt, i, rc, |v| *v = Value::Int(i64::from(x))));
interpose!(fn sqlite3_bind_int64(stmt: *mut Stmt, i: c_int, x: i64) real_bind_int64;
    |rc| bound(stmt, i, rc, |v| *v = Value::Int(x)));
interpose!(fn sqlite3_bind_double(stmt: *mut Stmt, i: c_int, x: f64) real_bind_double;
    |rc| bound(stmt, i, rc, |v| *v = if x.is_nan() { Value::Null } else { Value::Real(x) }));
interpose!(fn sqlite3_bind_text(stmt: *mut Stmt, i: c_int, p: *const c_char, n: c_int, d: Destructor) real_bind_text;
    // SAFETY: the caller's text is valid until this call returns.
    |rc| bound(stmt, i, rc, |v| set_bytes(v, false, unsafe { bytes(p as *const c_void, i64::from(n)) })));
interpose!(fn sqlite3_bind_text64(stmt: *mut Stmt, i: c_int, p: *const c_char, n: u64, d: Destructor, enc: u8) real_bind_text64;
|rc| if enc == 1 {
    // SAFETY: as for sqlite3_bind_text.
    bound(stmt, i, rc, |v| set_bytes(v, false, unsafe { bytes(p as *const c_void, n.min(i64::MAX as u64) as i64) }))
} else {
    opaque(stmt, rc)
});
interpose!(fn sqlite3_bind_text16(stmt: *mut Stmt, i: c_int, p: *const c_void, n: c_int, d: Destructor) real_bind_text16;
    |rc| opaque(stmt, rc));
interpose!(fn sqlite3_bind_blob(stmt: *mut Stmt, i: c_int, p: *const c_void, n: c_int, d: Destructor) real_bind_blob;
|rc| if n < 0 {
    opaque(stmt, rc)
} else {
    // SAFETY: the caller's bytes are valid until this call returns.
    bound(stmt, i, rc, |v| set_bytes(v, true, unsafe { bytes(p, i64::from(n)) }))
});
interpose!(fn sqlite3_bind_blob64(stmt: *mut Stmt, i: c_int, p: *const c_void, n: u64, d: Destructor) real_bind_blob64;
    // SAFETY: as for sqlite3_bind_blob.
    |rc| bound(stmt, i, rc, |v| set_bytes(v, true, unsafe { bytes(p, n.min(i64::MAX as u64) as i64) })));
interpose!(fn sqlite3_bind_zeroblob(stmt: *mut Stmt, i: c_int, n: c_int) real_bind_zeroblob;
    |rc| bound(stmt, i, rc, |v| *v = Value::Zero(i64::from(n.max(0)))));
interpose!(fn sqlite3_bind_zeroblob64(stmt: *mut Stmt, i: c_int, n: u64) real_bind_zeroblob64;
    |rc| bound(stmt, i, rc, |v| *v = Value::Zero(n.min(i64::MAX as u64) as i64)));
interpose!(fn sqlite3_bind_value(stmt: *mut Stmt, i: c_int, val: *const c_void) real_bind_value;
    |rc| opaque(stmt, rc));
interpose!(fn sqlite3_bind_pointer(stmt: *mut Stmt, i: c_int, p: *mut c_void, ty: *const c_char, d: Destructor) real_bind_pointer;
    // A pointer is NULL to SQL.
    |rc| bound(stmt, i, rc, |v| *v = Value::Null));

extern "C" fn fork_prepare() {
    for s in &TABLE {
        s.lock();
    }
}

extern "C" fn fork_release() {
    for s in &TABLE {
        // Locked in fork_prepare by this thread (or its copy in the child).
        s.unlock();
    }
}

extern "C" fn init() {
    // SAFETY: plain function pointers valid for the process lifetime.
    unsafe { libc::pthread_atfork(Some(fork_prepare), Some(fork_release), Some(fork_release)) };
}

#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = init;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_created_known_and_stripes_spread() {
        let used: std::collections::HashSet<usize> = (0..1000usize)
            .map(|i| 0x5555_0000 + i * 352)
            .map(|a| stripe(a) as *const _ as usize)
            .collect();
        assert!(used.len() > STRIPES / 2, "{}", used.len());
        let a = 0x1234_5670;
        with_entry(a, true, |e| e.values.push(Value::Int(3)));
        assert!(with_entry(a, false, |e| e.known && e.values == [Value::Int(3)]));
        stripe(a).with(|m| m.remove(&a));
        assert!(!with_entry(a, false, |e| e.known));
    }
}
