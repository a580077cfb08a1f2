//! Per-worker recorders (mutable, on the hot path) and the summaries stored in reports.

pub(crate) mod anatomy;
pub(crate) mod app;
pub(crate) mod histogram;
pub(crate) mod timeline;

pub use histogram::decode_histogram;
pub(crate) use histogram::{encode_histogram, new_histogram};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// How a failed statement failed, from SQLite's extended result code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// SQLITE_BUSY after the busy handler gave up (or at once, where it cannot help).
    Busy,
    /// SQLITE_BUSY_SNAPSHOT (517): a WAL read transaction cannot upgrade to write.
    BusySnapshot,
    /// SQLITE_LOCKED: a conflict inside one connection or shared cache.
    Locked,
    /// SQLITE_CONSTRAINT: UNIQUE, NOT NULL, CHECK, FOREIGN KEY...
    Constraint,
    /// PostgreSQL's serialization failure (SQLSTATE 40001) under repeatable read or
    /// serializable: the transaction must be retried.
    Serialization,
    /// dqlite: the node is not the leader (or no leader was found within the timeout).
    NotLeader,
    /// dqlite: the leader lost leadership while committing; the outcome is unknown.
    LeadershipLost,
    /// dqlite: the connection broke (the node died, or paused past the request timeout);
    /// the outcome of the request is unknown.
    Disconnected,
    /// Turso's MVCC write-write conflict (`BEGIN CONCURRENT`): another transaction changed a
    /// row this one wrote, and committed first; the transaction must be retried.
    #[cfg_attr(not(feature = "turso"), allow(dead_code))]
    Conflict,
    Other,
}

pub(crate) fn classify(e: &rusqlite::Error) -> ErrorKind {
    const BUSY_SNAPSHOT: i32 = 517;
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == BUSY_SNAPSHOT => ErrorKind::BusySnapshot,
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            rusqlite::ErrorCode::DatabaseBusy => ErrorKind::Busy,
            rusqlite::ErrorCode::DatabaseLocked => ErrorKind::Locked,
            rusqlite::ErrorCode::ConstraintViolation => ErrorKind::Constraint,
            _ => ErrorKind::Other,
        },
        _ => ErrorKind::Other,
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ErrorCounts {
    pub busy: u64,
    pub busy_snapshot: u64,
    pub locked: u64,
    pub constraint: u64,
    /// PostgreSQL only (absent from SQLite reports).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub serialization: u64,
    /// dqlite only (absent from other reports), as are the next two.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_leader: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub leadership_lost: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disconnected: u64,
    /// Turso only: MVCC write-write conflicts (absent from other reports).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conflict: u64,
    pub other: u64,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ErrorCounts {
    #[inline]
    pub(crate) fn add(&mut self, kind: ErrorKind) {
        match kind {
            ErrorKind::Busy => self.busy += 1,
            ErrorKind::BusySnapshot => self.busy_snapshot += 1,
            ErrorKind::Locked => self.locked += 1,
            ErrorKind::Constraint => self.constraint += 1,
            ErrorKind::Serialization => self.serialization += 1,
            ErrorKind::NotLeader => self.not_leader += 1,
            ErrorKind::LeadershipLost => self.leadership_lost += 1,
            ErrorKind::Disconnected => self.disconnected += 1,
            ErrorKind::Conflict => self.conflict += 1,
            ErrorKind::Other => self.other += 1,
        }
    }

    pub(crate) fn merge(&mut self, o: &ErrorCounts) {
        self.busy += o.busy;
        self.busy_snapshot += o.busy_snapshot;
        self.locked += o.locked;
        self.constraint += o.constraint;
        self.serialization += o.serialization;
        self.not_leader += o.not_leader;
        self.leadership_lost += o.leadership_lost;
        self.disconnected += o.disconnected;
        self.conflict += o.conflict;
        self.other += o.other;
    }

    /// Busy and busy-snapshot together: what a user means by "SQLITE_BUSY".
    pub(crate) fn busy_total(&self) -> u64 {
        self.busy + self.busy_snapshot
    }

    pub(crate) fn total(&self) -> u64 {
        self.by_kind().iter().map(|(_, n)| n).sum()
    }

    /// Every kind with its count, in the report's order (the JSON field names).
    pub(crate) fn by_kind(&self) -> [(&'static str, u64); 10] {
        [
            ("busy", self.busy),
            ("busy_snapshot", self.busy_snapshot),
            ("locked", self.locked),
            ("constraint", self.constraint),
            ("serialization", self.serialization),
            ("not_leader", self.not_leader),
            ("leadership_lost", self.leadership_lost),
            ("disconnected", self.disconnected),
            ("conflict", self.conflict),
            ("other", self.other),
        ]
    }

    /// Failures whose write may or may not have committed (dqlite: leadership lost, a
    /// broken connection).
    pub(crate) fn in_doubt(&self) -> u64 {
        self.leadership_lost + self.disconnected
    }
}

/// Latencies (in nanoseconds) of successful executions, and failures by kind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Recorder {
    #[serde(with = "histogram::serde_v2")]
    pub latency: Histogram<u64>,
    pub errors: ErrorCounts,
    /// SQLite's message for the first failure, to tell the user what went wrong.
    pub first_error: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            errors: ErrorCounts::default(),
            first_error: None,
        }
    }
}

impl Recorder {
    #[inline]
    pub(crate) fn record_ns(&mut self, ns: u64) {
        // `record` grows the histogram (rarely: only for a new order of magnitude);
        // `saturating_record` would clamp to the current maximum instead.
        if self.latency.record(ns).is_err() {
            self.latency.saturating_record(ns);
        }
    }

    /// A failure of any target, already classified.
    #[inline]
    pub(crate) fn record_failure(&mut self, kind: ErrorKind, e: &impl std::fmt::Display) {
        self.errors.add(kind);
        if self.first_error.is_none() {
            self.first_error = Some(e.to_string());
        }
    }

    pub(crate) fn reset(&mut self) {
        self.latency.reset();
        self.errors = ErrorCounts::default();
        self.first_error = None;
    }

    pub(crate) fn merge(&mut self, other: &Recorder) {
        self.latency.add(&other.latency).expect("auto-resizing histograms add");
        self.errors.merge(&other.errors);
        if self.first_error.is_none() {
            self.first_error.clone_from(&other.first_error);
        }
    }
}

/// Latency percentiles in microseconds (fractional: recorded in nanoseconds).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatencySummary {
    pub min: f64,
    pub mean: f64,
    pub stddev: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl LatencySummary {
    pub(crate) fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            stddev: h.stdev() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p90: us(h.value_at_quantile(0.90)),
            p99: us(h.value_at_quantile(0.99)),
            p99_9: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// Jain's fairness index over per-worker counts: 1 when all equal, 1/n when one does all.
pub(crate) fn jain_index(counts: &[u64]) -> f64 {
    let n = counts.len() as f64;
    let sum: f64 = counts.iter().map(|&c| c as f64).sum();
    let squares: f64 = counts.iter().map(|&c| (c as f64).powi(2)).sum();
    if squares == 0.0 { 1.0 } else { sum * sum / (n * squares) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_uses_extended_codes() {
        let err = |code: i32| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        assert_eq!(classify(&err(5)), ErrorKind::Busy);
        assert_eq!(classify(&err(517)), ErrorKind::BusySnapshot);
        assert_eq!(classify(&err(6)), ErrorKind::Locked);
        assert_eq!(classify(&err(2067)), ErrorKind::Constraint);
        assert_eq!(classify(&err(1)), ErrorKind::Other);
    }

    #[test]
    fn histogram_roundtrips_and_merges() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        (1..=1000).for_each(|i| a.record_ns(i * 1000));
        b.record_ns(5_000_000);
        a.merge(&b);
        assert_eq!(a.latency.len(), 1001);
        let back = decode_histogram(&encode_histogram(&a.latency)).unwrap();
        assert_eq!(back.len(), 1001);
        let s = LatencySummary::of(&back);
        assert!((s.p50 - 500.0).abs() < 2.0, "{s:?}");
        assert!((s.max - 5000.0).abs() < 5.0, "{s:?}");
    }

    #[test]
    fn jain_index_bounds() {
        assert!((jain_index(&[10, 10, 10]) - 1.0).abs() < 1e-9);
        assert!((jain_index(&[30, 0, 0]) - 1.0 / 3.0).abs() < 1e-9);
    }
}
