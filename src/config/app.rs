//! The application model's settings (issue 15): app time and think time as durations or
//! distributions, connection lifecycle, worker isolation, and transaction-block steps.

use crate::config::duration::DurationValue;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration drawn per use: fixed, or from a distribution. Written `"5ms"`,
/// `"uniform(3ms, 7ms)"`, `"exp(5ms)"` (mean 5 ms) or `"gaussian(5ms, 1ms)"` (mean, standard
/// deviation; negative draws become 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimeDist {
    Fixed(Duration),
    Uniform(Duration, Duration),
    Exp(Duration),
    Gaussian(Duration, Duration),
}

impl TimeDist {
    pub fn is_zero(&self) -> bool {
        matches!(self, TimeDist::Fixed(d) if d.is_zero())
    }

    /// The distribution with every duration multiplied by `factor` (finite, > 0: the caller
    /// checked): the mean scales by `factor`, the shape stays.
    pub fn scaled(self, factor: f64) -> Self {
        let m = |d: Duration| d.mul_f64(factor);
        match self {
            TimeDist::Fixed(d) => TimeDist::Fixed(m(d)),
            TimeDist::Uniform(a, b) => TimeDist::Uniform(m(a), m(b)),
            TimeDist::Exp(d) => TimeDist::Exp(m(d)),
            TimeDist::Gaussian(mean, sd) => TimeDist::Gaussian(m(mean), m(sd)),
        }
    }
}

fn args<'a>(s: &'a str, name: &str) -> Option<Vec<&'a str>> {
    let inner = s
        .strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')?;
    Some(inner.split(',').map(str::trim).collect())
}

fn dur(arg: &str, whole: &str) -> Result<Duration, String> {
    let d = arg
        .parse::<DurationValue>()
        .map(|d| d.0)
        .map_err(|e| too_long_or(e, || format!("`{whole}`: `{arg}` is not a duration like \"5ms\"")))?;
    bounded(d, whole)
}

/// A duration's own "too long" message, or `other` for a malformed one.
fn too_long_or(e: String, other: impl FnOnce() -> String) -> String {
    if e.contains("too long") { e } else { other() }
}

/// App and think times are waits inside a run: at most `limits::MAX_WAIT` (docs/limits.md).
fn bounded(d: Duration, whole: &str) -> Result<Duration, String> {
    super::limits::wait(d).map_err(|e| format!("`{whole}`: {e}"))?;
    Ok(d)
}

impl FromStr for TimeDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let usage = "use a duration (\"5ms\") or \"uniform(3ms, 7ms)\", \"exp(5ms)\", \"gaussian(5ms, 1ms)\"";
        let want = |n: usize, got: &[&str], name: &str| {
            if got.len() == n && got.iter().all(|a| !a.is_empty()) {
                Ok(())
            } else {
                Err(format!("`{s}`: {name} takes {n} duration(s); {usage}"))
            }
        };
        if let Some(a) = args(s, "uniform") {
            want(2, &a, "uniform")?;
            let (lo, hi) = (dur(a[0], s)?, dur(a[1], s)?);
            if lo > hi {
                return Err(format!("`{s}`: the lower bound is above the upper bound"));
            }
            return Ok(TimeDist::Uniform(lo, hi));
        }
        if let Some(a) = args(s, "exp") {
            want(1, &a, "exp")?;
            return Ok(TimeDist::Exp(dur(a[0], s)?));
        }
        if let Some(a) = args(s, "gaussian") {
            want(2, &a, "gaussian")?;
            return Ok(TimeDist::Gaussian(dur(a[0], s)?, dur(a[1], s)?));
        }
        if s.contains('(') {
            return Err(format!("`{s}` is not a known distribution; {usage}"));
        }
        let d = s
            .parse::<DurationValue>()
            .map_err(|e| too_long_or(e, || format!("`{s}` is not a duration or distribution; {usage}")))?;
        Ok(TimeDist::Fixed(bounded(d.0, s)?))
    }
}

impl fmt::Display for TimeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| humantime::format_duration(*d).to_string();
        match self {
            TimeDist::Fixed(a) => f.write_str(&d(a)),
            TimeDist::Uniform(a, b) => write!(f, "uniform({}, {})", d(a), d(b)),
            TimeDist::Exp(a) => write!(f, "exp({})", d(a)),
            TimeDist::Gaussian(a, b) => write!(f, "gaussian({}, {})", d(a), d(b)),
        }
    }
}

impl Serialize for TimeDist {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeDist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TimeDist;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration (\"5ms\") or a distribution (\"uniform(3ms, 7ms)\", \"exp(5ms)\", \"gaussian(5ms, 1ms)\")")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TimeDist, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visitor)
    }
}

/// Connection lifecycle of a group's workers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionMode {
    /// One connection per worker for the whole run.
    #[default]
    Persistent,
    /// A fresh connection per request: opened, every `[sqlite]` setting applied, closed.
    PerRequest,
}

impl ConnectionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionMode::Persistent => "persistent",
            ConnectionMode::PerRequest => "per-request",
        }
    }
}

/// Whether a group's workers are threads of the driver or separate OS processes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    #[default]
    Thread,
    Process,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Thread => "thread",
            Isolation::Process => "process",
        }
    }
}

/// Where a `process` group's requests wait (issue 33): in one queue for all its processes,
/// as a pre-fork server's workers share one listening socket and each request is a new
/// connection (gunicorn's sync workers), or in one queue per process, as keep-alive
/// connections stay with the process that accepted them (Puma under wrk).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    /// One queue per process, each with an equal share of the clients from the start.
    #[default]
    PerProcess,
    Shared,
    /// One queue per process, each client bound to the process that took its first request:
    /// a process free sooner gathers more clients (Node's cluster hands a new connection to
    /// the worker that answers first; Puma's workers accept only with a thread free).
    FirstFree,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::PerProcess => "per-process",
            QueueKind::Shared => "shared",
            QueueKind::FirstFree => "first-free",
        }
    }
}

/// How a group's workers run app code (issue 29): in parallel on OS threads (`native`), or
/// under one interpreter lock per worker process, as Ruby's GVL (`gvl`) and CPython's GIL
/// (`gil`) run them. See docs/app-model.md#runtimes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    #[default]
    Native,
    Gvl,
    Gil,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Native => "native",
            Runtime::Gvl => "gvl",
            Runtime::Gil => "gil",
        }
    }

    /// Whether app code needs the process's interpreter lock.
    pub fn has_lock(self) -> bool {
        self != Runtime::Native
    }

    /// Whether SQLite statements run holding the lock: the sqlite3 gem (1.4 and 2.x) calls
    /// `sqlite3_step` without releasing the GVL; CPython's `_sqlite` releases the GIL around
    /// it (`Py_BEGIN_ALLOW_THREADS`).
    pub fn statements_hold_lock(self) -> bool {
        self == Runtime::Gvl
    }

    /// The switch interval: a thread running app code past it while others wait gives the
    /// lock up. Ruby's `TIME_QUANTUM_MSEC` is 100 ms; CPython's `sys.getswitchinterval()` 5 ms.
    pub fn quantum(self) -> Duration {
        match self {
            Runtime::Native => Duration::ZERO,
            Runtime::Gvl => Duration::from_millis(100),
            Runtime::Gil => Duration::from_millis(5),
        }
    }

    /// What the waits of the busy handler do by default: the sqlite3 gem's C `busy_timeout`
    /// sleeps inside `sqlite3_step`, holding the GVL; CPython's sleeps inside `sqlite3_step`
    /// too, but with the GIL released.
    pub fn default_busy_wait(self) -> BusyWait {
        match self {
            Runtime::Gvl => BusyWait::HoldsLock,
            _ => BusyWait::ReleasesLock,
        }
    }
}

/// What a thread waiting in the busy handler does with its process's interpreter lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusyWait {
    /// Keeps it (the sqlite3 gem's C `busy_timeout`, Rails before 7.1): no other thread
    /// of the process runs app code while it waits.
    HoldsLock,
    /// Gives it up for each sleep (a Ruby `busy_handler { sleep ...; true }`, Rails 7.1+'s
    /// `timeout`; CPython).
    ReleasesLock,
}

impl BusyWait {
    pub fn as_str(self) -> &'static str {
        match self {
            BusyWait::HoldsLock => "holds-lock",
            BusyWait::ReleasesLock => "releases-lock",
        }
    }
}

/// `{ begin = "immediate" }`: the BEGIN of a transaction block inside a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockBegin {
    Deferred,
    Immediate,
    Exclusive,
}

impl BlockBegin {
    pub fn sql(self) -> &'static str {
        match self {
            BlockBegin::Deferred => "BEGIN DEFERRED",
            BlockBegin::Immediate => "BEGIN IMMEDIATE",
            BlockBegin::Exclusive => "BEGIN EXCLUSIVE",
        }
    }
}

/// What a step's SQL does to the transaction state, recognised from its first words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxControl {
    None,
    Begin,
    Commit,
    Rollback,
}

impl TxControl {
    pub fn of(sql: &str) -> Self {
        let first: String = sql
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_ascii_uppercase();
        match first.as_str() {
            "BEGIN" => TxControl::Begin,
            "COMMIT" | "END" => TxControl::Commit,
            "ROLLBACK" if !sql.to_ascii_uppercase().contains(" TO ") => TxControl::Rollback,
            _ => TxControl::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::rng::Rng;

    #[test]
    fn scaling_multiplies_every_duration_and_keeps_the_shape() {
        let ms = Duration::from_millis;
        let cases = [
            ("2ms", TimeDist::Fixed(ms(6))),
            ("uniform(1ms, 3ms)", TimeDist::Uniform(ms(3), ms(9))),
            ("exp(2ms)", TimeDist::Exp(ms(6))),
            ("gaussian(2ms, 1ms)", TimeDist::Gaussian(ms(6), ms(3))),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<TimeDist>().unwrap().scaled(3.0), want, "{text}");
        }
    }

    #[test]
    fn parses_durations_and_distributions() {
        let ms = Duration::from_millis;
        assert_eq!("5ms".parse::<TimeDist>().unwrap(), TimeDist::Fixed(ms(5)));
        assert_eq!(
            "uniform(3ms, 7ms)".parse::<TimeDist>().unwrap(),
            TimeDist::Uniform(ms(3), ms(7))
        );
        assert_eq!("exp(5ms)".parse::<TimeDist>().unwrap(), TimeDist::Exp(ms(5)));
        assert_eq!(
            "gaussian(5ms, 1ms)".parse::<TimeDist>().unwrap(),
            TimeDist::Gaussian(ms(5), ms(1))
        );
        for t in ["5ms", "uniform(3ms, 7ms)", "exp(5ms)", "gaussian(5ms, 1ms)"] {
            let d: TimeDist = t.parse().unwrap();
            assert_eq!(d.to_string().parse::<TimeDist>().unwrap(), d);
        }
        for (bad, why) in [
            ("fast", "not a duration"),
            ("uniform(3ms)", "takes 2"),
            ("uniform(7ms, 3ms)", "lower bound"),
            ("exp(fast)", "`fast` is not a duration"),
            ("gaussian(5ms)", "takes 2"),
            ("zipf(1ms)", "not a known distribution"),
            ("366d", "too long"),
            ("400d", "too long"),
            ("exp(400d)", "too long"),
            ("25h", "too long"),
            ("exp(366d)", "too long"),
            ("uniform(0ms, 366d)", "too long"),
            ("gaussian(5ms, 2d)", "too long"),
        ] {
            let err = bad.parse::<TimeDist>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn draws_have_the_right_mean() {
        let mut rng = Rng::new(3);
        for d in ["uniform(3ms, 7ms)", "exp(5ms)", "gaussian(5ms, 1ms)", "5ms"] {
            let d: TimeDist = d.parse().unwrap();
            let n = 20_000;
            let mean = (0..n)
                .map(|_| crate::engine::loops::app::sample_ns(&d, &mut rng) as f64)
                .sum::<f64>()
                / n as f64;
            assert!((mean / 5e6 - 1.0).abs() < 0.05, "{d}: {mean}");
        }
    }

    #[test]
    fn recognises_transaction_control() {
        assert_eq!(TxControl::of("BEGIN IMMEDIATE"), TxControl::Begin);
        assert_eq!(TxControl::of("  begin"), TxControl::Begin);
        assert_eq!(TxControl::of("COMMIT"), TxControl::Commit);
        assert_eq!(TxControl::of("END TRANSACTION"), TxControl::Commit);
        assert_eq!(TxControl::of("ROLLBACK"), TxControl::Rollback);
        assert_eq!(TxControl::of("ROLLBACK TO sp"), TxControl::None);
        assert_eq!(TxControl::of("SELECT 1"), TxControl::None);
    }
}
