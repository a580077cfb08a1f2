//! Busy-handler strategies: what a connection does when another holds the lock it needs.
//!
//! - `sqlite`: SQLite's own handler, installed by `busy_timeout` (sleeps 1, 2, 5, 10, 15,
//!   20, 25, 25, 25, 50, 50 ms, then 100 ms per try). It cannot be observed from outside,
//!   so its invocations are not counted.
//! - `fixed(<interval>)`: sleeps a constant interval and retries until `busy_timeout` has
//!   passed (the approach of the Ruby sqlite3 driver and Rails).
//! - `none`: no handler; SQLITE_BUSY at once.
//!
//! rusqlite takes a plain `fn(i32) -> bool`; each worker owns its thread and its one
//! connection, so the handler's deadline and counters live in thread-locals.

use crate::config::duration::DurationValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum BusyHandler {
    #[default]
    Sqlite,
    Fixed(Duration),
    None,
}

impl FromStr for BusyHandler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "sqlite" => return Ok(BusyHandler::Sqlite),
            "none" => return Ok(BusyHandler::None),
            "fixed" | "fixed()" => return Err("`fixed` needs an interval, e.g. \"fixed(1ms)\"".into()),
            _ => {}
        }
        let inner = s
            .strip_prefix("fixed(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("unknown busy_handler `{s}`; use \"sqlite\", \"fixed(1ms)\" or \"none\""))?;
        let interval: DurationValue = inner.parse()?;
        if interval.0.is_zero() {
            return Err(format!("busy_handler `{s}`: the interval must be greater than zero"));
        }
        super::limits::wait(interval.0).map_err(|e| format!("busy_handler `{s}`: {e}"))?;
        Ok(BusyHandler::Fixed(interval.0))
    }
}

impl fmt::Display for BusyHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusyHandler::Sqlite => f.write_str("sqlite"),
            BusyHandler::Fixed(d) => write!(f, "fixed({})", humantime::format_duration(*d)),
            BusyHandler::None => f.write_str("none"),
        }
    }
}

impl Serialize for BusyHandler {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for BusyHandler {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

thread_local! {
    static INTERVAL: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static TIMEOUT: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    static WAIT_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static WAITED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
}

/// What the handler did on this thread's connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

/// Application-model groups: `sqlite` becomes litehammer's copy of SQLite's own back-off
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
    std::thread::sleep(Duration::from_millis(delay));
    CALLS.set(CALLS.get() + 1);
    WAITED.set(WAITED.get() + now.elapsed());
    true
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
    let nap = INTERVAL.get().min(timeout - elapsed);
    std::thread::sleep(nap);
    CALLS.set(CALLS.get() + 1);
    WAITED.set(WAITED.get() + now.elapsed());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn parses_and_prints_handlers() {
        assert_eq!("sqlite".parse::<BusyHandler>().unwrap(), BusyHandler::Sqlite);
        assert_eq!("none".parse::<BusyHandler>().unwrap(), BusyHandler::None);
        let fixed: BusyHandler = "fixed(1ms)".parse().unwrap();
        assert_eq!(fixed, BusyHandler::Fixed(Duration::from_millis(1)));
        assert_eq!(fixed.to_string(), "fixed(1ms)");
        for (bad, why) in [
            ("fixed", "needs an interval"),
            ("fixed(0ms)", "greater than zero"),
            ("fixed(-1ms)", "duration"),
            ("polite", "unknown busy_handler"),
        ] {
            let err = bad.parse::<BusyHandler>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
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
