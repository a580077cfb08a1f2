//! Finding the application's own SQLite (and libc) functions, the clocks, and a mutex that is
//! safe to hold across `fork` via `pthread_atfork`.

use std::cell::UnsafeCell;
use std::ffi::{CStr, c_char, c_int, c_uint, c_void};
use std::sync::OnceLock;

pub type Db = c_void;
pub type Stmt = c_void;
pub type TraceCb = unsafe extern "C" fn(c_uint, *mut c_void, *mut c_void, *mut c_void) -> c_int;

pub const SQLITE_OK: c_int = 0;
pub const SQLITE_ERROR: c_int = 1;
pub const SQLITE_MISUSE: c_int = 21;
pub const SQLITE_RANGE: c_int = 25;
pub const SQLITE_ROW: c_int = 100;
pub const SQLITE_TRACE_STMT: c_uint = 0x01;
pub const SQLITE_TRACE_PROFILE: c_uint = 0x02;
pub const SQLITE_TRACE_CLOSE: c_uint = 0x08;

/// Looks `name` up in the objects after this library (`RTLD_NEXT`); when the application loaded
/// SQLite with `RTLD_LOCAL` (Python's `_sqlite3` extension does), it is not in the global scope
/// `RTLD_NEXT` searches, so fall back to the already-loaded `libsqlite3.so.0`, and as a last resort
/// load it.
pub fn resolve(name: &CStr) -> *mut c_void {
    // SAFETY: dlsym/dlopen with valid NUL-terminated strings.
    unsafe {
        let p = libc::dlsym(libc::RTLD_NEXT, name.as_ptr());
        if !p.is_null() {
            return p;
        }
        for (lib, flags) in [
            (c"libsqlite3.so.0", libc::RTLD_NOLOAD | libc::RTLD_LAZY),
            (c"libsqlite3.so", libc::RTLD_NOLOAD | libc::RTLD_LAZY),
            (c"libsqlite3.so.0", libc::RTLD_LAZY | libc::RTLD_LOCAL),
        ] {
            let h = libc::dlopen(lib.as_ptr(), flags);
            if !h.is_null() {
                let p = libc::dlsym(h, name.as_ptr());
                if !p.is_null() {
                    return p;
                }
            }
        }
        std::ptr::null_mut()
    }
}

/// Defines a lazily resolved pointer to the real function `$sym` of type `$ty`.
macro_rules! real_fn {
    ($fn_name:ident, $sym:literal, $ty:ty) => {
        pub fn $fn_name() -> Option<$ty> {
            static CELL: OnceLock<usize> = OnceLock::new();
            let p = *CELL.get_or_init(|| resolve($sym) as usize);
            // SAFETY: the symbol has this C signature in every SQLite/libc.
            (p != 0).then(|| unsafe { std::mem::transmute::<usize, $ty>(p) })
        }
    };
}

pub type OpenFn = unsafe extern "C" fn(*const c_char, *mut *mut Db) -> c_int;
pub type Open16Fn = unsafe extern "C" fn(*const c_void, *mut *mut Db) -> c_int;
pub type OpenV2Fn = unsafe extern "C" fn(*const c_char, *mut *mut Db, c_int, *const c_char) -> c_int;
pub type CloseFn = unsafe extern "C" fn(*mut Db) -> c_int;
pub type TraceV2Fn = unsafe extern "C" fn(*mut Db, c_uint, Option<TraceCb>, *mut c_void) -> c_int;
pub type ExitFn = unsafe extern "C" fn(c_int) -> !;
pub type BusyTimeoutFn = unsafe extern "C" fn(*mut Db, c_int) -> c_int;
pub type StepFn = unsafe extern "C" fn(*mut Stmt) -> c_int;

real_fn!(real_open, c"sqlite3_open", OpenFn);
real_fn!(real_open16, c"sqlite3_open16", Open16Fn);
real_fn!(real_open_v2, c"sqlite3_open_v2", OpenV2Fn);
real_fn!(real_close, c"sqlite3_close", CloseFn);
real_fn!(real_close_v2, c"sqlite3_close_v2", CloseFn);
real_fn!(real_trace_v2, c"sqlite3_trace_v2", TraceV2Fn);
real_fn!(real_exit, c"_exit", ExitFn);
real_fn!(real_busy_timeout, c"sqlite3_busy_timeout", BusyTimeoutFn);
real_fn!(real_step, c"sqlite3_step", StepFn);

/// The SQLite functions the trace callback uses.
pub struct Api {
    pub trace_v2: TraceV2Fn,
    pub sql: unsafe extern "C" fn(*mut Stmt) -> *const c_char,
    pub expanded_sql: Option<unsafe extern "C" fn(*mut Stmt) -> *mut c_char>,
    pub bind_parameter_count: unsafe extern "C" fn(*mut Stmt) -> c_int,
    pub bind_parameter_index: unsafe extern "C" fn(*mut Stmt, *const c_char) -> c_int,
    pub snprintf: unsafe extern "C" fn(c_int, *mut c_char, *const c_char, ...) -> *mut c_char,
    pub free: unsafe extern "C" fn(*mut c_void),
    pub changes: unsafe extern "C" fn(*mut Db) -> c_int,
    pub total_changes: unsafe extern "C" fn(*mut Db) -> c_int,
    pub last_insert_rowid: unsafe extern "C" fn(*mut Db) -> i64,
    pub get_autocommit: unsafe extern "C" fn(*mut Db) -> c_int,
    pub db_filename: Option<unsafe extern "C" fn(*mut Db, *const c_char) -> *const c_char>,
    pub stmt_readonly: unsafe extern "C" fn(*mut Stmt) -> c_int,
    pub db_handle: unsafe extern "C" fn(*mut Stmt) -> *mut Db,
    pub libversion: unsafe extern "C" fn() -> *const c_char,
}

/// The API, resolved once; `None` if this SQLite lacks something the capture needs
/// (e.g. `sqlite3_trace_v2`, SQLite < 3.14): then calls are forwarded and nothing is recorded.
pub fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        /// A function pointer of type `T` (the caller names the right C signature).
        fn get<T: Copy>(name: &CStr) -> Option<T> {
            assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
            let p = resolve(name);
            // SAFETY: T is a function pointer type matching the symbol's C signature.
            (!p.is_null()).then(|| unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
        }
        Some(Api {
            trace_v2: real_trace_v2()?,
            sql: get(c"sqlite3_sql")?,
            expanded_sql: get(c"sqlite3_expanded_sql"),
            bind_parameter_count: get(c"sqlite3_bind_parameter_count")?,
            bind_parameter_index: get(c"sqlite3_bind_parameter_index")?,
            snprintf: get(c"sqlite3_snprintf")?,
            free: get(c"sqlite3_free")?,
            changes: get(c"sqlite3_changes")?,
            total_changes: get(c"sqlite3_total_changes")?,
            last_insert_rowid: get(c"sqlite3_last_insert_rowid")?,
            get_autocommit: get(c"sqlite3_get_autocommit")?,
            db_filename: get(c"sqlite3_db_filename"),
            stmt_readonly: get(c"sqlite3_stmt_readonly")?,
            db_handle: get(c"sqlite3_db_handle")?,
            libversion: get(c"sqlite3_libversion")?,
        })
    })
    .as_ref()
}

pub fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

pub fn mono_ns() -> i64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// The calling thread's CPU time (user + system), ns.
pub fn thread_cpu_ns() -> i64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

pub fn getpid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getpid() }
}

pub fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

pub fn getppid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::getppid() }
}

/// Text from a C string (lossy), `None` for NULL.
///
/// # Safety
/// `p` is NULL or a valid NUL-terminated string.
pub unsafe fn cstr<'a>(p: *const c_char) -> Option<std::borrow::Cow<'a, str>> {
    if p.is_null() {
        return None;
    }
    // SAFETY: per the contract.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    // from_utf8 has an ASCII fast path that to_string_lossy lacks.
    Some(match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    })
}

/// A pthread mutex around `T`, so `pthread_atfork` can hold it across `fork` (a `std` mutex
/// held by another thread at `fork` would stay locked forever in the child).
pub struct ForkMutex<T> {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is only reached while `lock` is held.
unsafe impl<T: Send> Sync for ForkMutex<T> {}

impl<T> ForkMutex<T> {
    pub const fn new(data: T) -> Self {
        ForkMutex {
            lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
            data: UnsafeCell::new(data),
        }
    }

    pub fn raw_lock(&self) {
        // SAFETY: a statically initialised mutex.
        unsafe { libc::pthread_mutex_lock(self.lock.get()) };
    }

    /// # Safety
    /// The caller holds the lock (taken with `raw_lock` in this process image).
    pub unsafe fn raw_unlock(&self) {
        // SAFETY: per the contract.
        unsafe { libc::pthread_mutex_unlock(self.lock.get()) };
    }

    /// # Safety
    /// The caller holds the lock.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get_locked(&self) -> &mut T {
        // SAFETY: per the contract, exclusive access.
        unsafe { &mut *self.data.get() }
    }

    /// Like `with`, but gives up (`None`) if the lock stays taken for about `tries` ms.
    pub fn try_with<R>(&self, tries: u32, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        for i in 0..tries.max(1) {
            // SAFETY: a statically initialised mutex.
            if unsafe { libc::pthread_mutex_trylock(self.lock.get()) } == 0 {
                // SAFETY: locked just above; unlocked right after.
                let r = f(unsafe { self.get_locked() });
                // SAFETY: locked above.
                unsafe { self.raw_unlock() };
                return Some(r);
            }
            if i + 1 < tries {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        None
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        struct Unlock<'a, T>(&'a ForkMutex<T>);
        impl<T> Drop for Unlock<'_, T> {
            fn drop(&mut self) {
                // SAFETY: locked just below.
                unsafe { self.0.raw_unlock() }
            }
        }
        self.raw_lock();
        let _u = Unlock(self);
        // SAFETY: locked.
        f(unsafe { self.get_locked() })
    }
}
