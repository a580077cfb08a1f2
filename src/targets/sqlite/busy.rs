//! The busy handlers at run time (the `busy_handler` setting is `config::busy`).
//!
//! rusqlite takes a plain `fn(i32) -> bool`; each worker owns its thread and its one
//! connection, so the handler's deadline and counters live in thread-locals.

use crate::config::busy::BusyHandler;
use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static INTERVAL: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static TIMEOUT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static WAIT_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static WAITED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static WAIT_HOOK: Cell<Option<fn(bool)>> = const { Cell::new(None) };
}

/// A function this thread's busy handlers call before (`true`) and after (`false`) each
/// sleep: the application model's interpreter lock holds or releases itself there.
pub fn set_wait_hook(hook: Option<fn(bool)>) {
    WAIT_HOOK.set(hook);
}

/// Sleeps `d` between the hook's two calls.
fn sleep_hooked(d: Duration, sleep: impl FnOnce(Duration)) {
    let hook = WAIT_HOOK.get();
    if let Some(h) = hook {
        h(true);
    }
    sleep(d);
    if let Some(h) = hook {
        h(false);
    }
}

/// What the handler did on this thread's connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct HandlerStats {
    pub calls: u64,
    pub waited: Duration,
}

/// Installs the handler on `conn` (after `busy_timeout` was set: installing any handler
/// replaces SQLite's timeout-based one).
pub(crate) fn install(
    conn: &mut rusqlite::Connection,
    handler: BusyHandler,
    timeout: Duration,
) -> rusqlite::Result<()> {
    match handler {
        BusyHandler::Sqlite => Ok(()),
        BusyHandler::None => conn.busy_handler(None::<fn(i32) -> bool>),
        BusyHandler::Fixed(interval) => {
            INTERVAL.set(interval);
            TIMEOUT.set(timeout);
            conn.busy_handler(Some(fixed_interval))
        }
    }
}

/// Worker connections: `sqlite` becomes litehammer's copy of SQLite's own back-off
/// schedule (`sqliteDefaultBusyCallback`: 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms,
/// then 100 ms per retry, up to busy_timeout), so the time spent waiting for locks can be
/// measured; the other handlers are installed as usual.
pub fn install_observed(
    conn: &mut rusqlite::Connection,
    handler: BusyHandler,
    timeout: Duration,
) -> rusqlite::Result<()> {
    match handler {
        BusyHandler::Sqlite => {
            TIMEOUT.set(timeout);
            conn.busy_handler(Some(sqlite_schedule))
        }
        other => install(conn, other, timeout),
    }
}

/// Time this thread spent in litehammer's busy handlers so far (not reset), ns.
#[inline]
pub fn waited_ns() -> u64 {
    WAITED.get().as_nanos() as u64
}

const DELAYS_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// SQLite's default busy callback, re-implemented: the delay for try `count`, capped so the
/// total stays within busy_timeout.
fn sqlite_schedule(count: i32) -> bool {
    // A cancelled run gives up at once (SQLite's own handler would sleep on to the timeout).
    if crate::interrupt::cancelled() {
        return false;
    }
    let count = count.max(0) as usize;
    let timeout_ms = TIMEOUT.get().as_millis() as u64;
    let last = DELAYS_MS.len() - 1;
    let (delay, prior) = if count < DELAYS_MS.len() {
        (DELAYS_MS[count], DELAYS_MS[..count].iter().sum::<u64>())
    } else {
        let totals: u64 = DELAYS_MS[..last].iter().sum();
        (DELAYS_MS[last], totals + DELAYS_MS[last] * (count - last) as u64)
    };
    let delay = if prior + delay > timeout_ms {
        match timeout_ms.checked_sub(prior) {
            Some(d) if d > 0 => d,
            _ => return false,
        }
    } else {
        delay
    };
    let now = Instant::now();
    sleep_hooked(Duration::from_millis(delay), std::thread::sleep);
    CALLS.set(CALLS.get() + 1);
    WAITED.set(WAITED.get() + now.elapsed());
    true
}

/// Sleeps `nap` in slices of at most 50 ms, and stops early on a cancel.
fn nap_unless_cancelled(nap: Duration) {
    let end = Instant::now() + nap;
    loop {
        let now = Instant::now();
        if now >= end || crate::interrupt::cancelled() {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// Counters of this thread's handler; zero for handlers that are not observed.
pub(crate) fn take_stats() -> HandlerStats {
    HandlerStats {
        calls: CALLS.replace(0),
        waited: WAITED.replace(Duration::ZERO),
    }
}

/// SQLite calls this with `count` = tries so far for the current lock; false gives up.
fn fixed_interval(count: i32) -> bool {
    let now = Instant::now();
    let started = match WAIT_STARTED.get() {
        Some(t) if count > 0 => t,
        _ => {
            WAIT_STARTED.set(Some(now));
            now
        }
    };
    let elapsed = now.duration_since(started);
    let timeout = TIMEOUT.get();
    if elapsed >= timeout {
        return false;
    }
    if crate::interrupt::cancelled() {
        return false;
    }
    let nap = INTERVAL.get().min(timeout - elapsed);
    sleep_hooked(nap, nap_unless_cancelled);
    CALLS.set(CALLS.get() + 1);
    WAITED.set(WAITED.get() + now.elapsed());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::busy::BusyHandler;

    #[test]
    fn the_sqlite_schedule_waits_up_to_the_timeout_and_is_observed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let mut waiter = rusqlite::Connection::open(&path).unwrap();
        take_stats();
        install_observed(&mut waiter, BusyHandler::Sqlite, Duration::from_millis(40)).unwrap();
        assert!(waiter.execute_batch("BEGIN IMMEDIATE").is_err());
        let stats = take_stats();
        // 1 + 2 + 5 + 10 + 15 = 33 ms, then the last 7 ms: six calls, 40 ms in all.
        assert_eq!(stats.calls, 6, "{stats:?}");
        assert!(stats.waited > Duration::ZERO, "{stats:?}");
    }

    #[test]
    fn fixed_handler_waits_and_counts_until_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let mut waiter = rusqlite::Connection::open(&path).unwrap();
        take_stats();
        install(
            &mut waiter,
            BusyHandler::Fixed(Duration::from_millis(2)),
            Duration::from_millis(30),
        )
        .unwrap();
        let err = waiter.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        assert_eq!(crate::metrics::classify(&err), crate::metrics::ErrorKind::Busy);
        let stats = take_stats();
        assert!(stats.calls >= 2, "{stats:?}");
        assert!(stats.waited >= Duration::from_millis(20), "{stats:?}");
        install(&mut waiter, BusyHandler::None, Duration::ZERO).unwrap();
        assert!(waiter.execute_batch("BEGIN IMMEDIATE").is_err());
        assert_eq!(take_stats().calls, 0);
    }
}
