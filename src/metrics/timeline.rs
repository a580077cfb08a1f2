//! The per-interval timeline: workers ship one small sample per interval (never per
//! operation); the driver merges them per interval and group, adds file sizes and
//! checkpoint state, and keeps only numbers once an interval is old enough.

use crate::metrics::{ErrorCounts, LatencySummary};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Intervals younger than this keep their histograms, so late samples (from a worker that
/// was blocked, e.g. in the busy handler) still count in their percentiles.
const KEEP_OPEN: u64 = 10;

/// Shared clock: when measuring started and how long an interval is.
#[derive(Debug)]
pub(crate) struct RunClock {
    epoch: Instant,
    measure_start_ns: AtomicU64,
    interval_ns: u64,
}

impl RunClock {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            measure_start_ns: AtomicU64::new(u64::MAX),
            interval_ns: interval.as_nanos().max(1) as u64,
        }
    }

    /// Marks the start of measurement (before the phase switches to Measure).
    pub(crate) fn start_measuring(&self, at: Instant) {
        self.measure_start_ns
            .store(at.duration_since(self.epoch).as_nanos() as u64, Ordering::Release);
    }

    /// The interval an instant falls in, once measuring has started.
    #[inline]
    pub(crate) fn slot(&self, at: Instant) -> Option<u64> {
        let start = self.measure_start_ns.load(Ordering::Acquire);
        let now = at.duration_since(self.epoch).as_nanos() as u64;
        (start != u64::MAX).then(|| now.saturating_sub(start) / self.interval_ns)
    }

    /// Time from `at` to the start of the next interval (`None` before measuring).
    pub(crate) fn until_next_slot(&self, at: Instant) -> Option<Duration> {
        let start = self.measure_start_ns.load(Ordering::Acquire);
        let now = at.duration_since(self.epoch).as_nanos() as u64;
        (start != u64::MAX).then(|| {
            let into = now.saturating_sub(start) % self.interval_ns;
            Duration::from_nanos(self.interval_ns - into)
        })
    }

    /// Seconds from the start of measuring to `at` (0 before it).
    pub(crate) fn seconds_measured(&self, at: Instant) -> f64 {
        let start = self.measure_start_ns.load(Ordering::Acquire);
        let now = at.duration_since(self.epoch).as_nanos() as u64;
        if start == u64::MAX {
            0.0
        } else {
            now.saturating_sub(start) as f64 / 1e9
        }
    }

    pub(crate) fn interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }
}

/// Small histograms (2 significant digits) for intervals: percentiles within 1 %.
pub(crate) fn interval_histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant digits is valid")
}

/// One worker's transactions in one interval.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IntervalSample {
    pub group: usize,
    pub slot: u64,
    pub committed: u64,
    pub errors: ErrorCounts,
    #[serde(with = "crate::metrics::histogram::serde_v2")]
    pub latency: Histogram<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TimelineEntry {
    /// End of the interval, seconds since measuring started.
    pub t_s: f64,
    /// Committed transactions of all groups.
    pub ops: u64,
    pub errors: ErrorCounts,
    /// Transaction latency over all groups, µs.
    pub p50_us: f64,
    pub p99_us: f64,
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// Frames in the WAL and frames already checkpointed (WAL mode only).
    pub wal_frames: u32,
    pub checkpointed_frames: u32,
    /// WAL restarts since measuring began (a checkpoint completed and the WAL started over).
    pub wal_resets: u32,
    pub groups: Vec<GroupInterval>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct GroupInterval {
    pub name: String,
    pub ops: u64,
    pub errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// The interval's transaction latencies (ns, 2 significant digits) as base64 of the
    /// compressed HdrHistogram V2 encoding: what `report --format hlog` writes. Absent in
    /// older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_v2: Option<String>,
}

struct OpenSlot {
    committed: Vec<u64>,
    errors: Vec<ErrorCounts>,
    latency: Vec<Histogram<u64>>,
    files: FileState,
    files_seen: bool,
}

pub(crate) struct TimelineBuilder {
    interval_s: f64,
    groups: Vec<String>,
    open: BTreeMap<u64, OpenSlot>,
    closed: BTreeMap<u64, TimelineEntry>,
    base_checkpoint_seq: Option<u32>,
    last_checkpoint_seq: Option<u32>,
    /// The newest file state recorded: an interval with none of its own (a last, partial
    /// interval the monitor did not reach) shows this one rather than zero sizes.
    last_files: Option<FileState>,
}

impl TimelineBuilder {
    pub(crate) fn new(interval: Duration, groups: Vec<String>) -> Self {
        Self {
            interval_s: interval.as_secs_f64(),
            groups,
            open: BTreeMap::new(),
            closed: BTreeMap::new(),
            base_checkpoint_seq: None,
            last_checkpoint_seq: None,
            last_files: None,
        }
    }

    fn open_slot(&mut self, slot: u64) -> &mut OpenSlot {
        let n = self.groups.len();
        self.open.entry(slot).or_insert_with(|| OpenSlot {
            committed: vec![0; n],
            errors: vec![ErrorCounts::default(); n],
            latency: (0..n).map(|_| interval_histogram()).collect(),
            files: FileState::default(),
            files_seen: false,
        })
    }

    pub(crate) fn add(&mut self, s: &IntervalSample) {
        if let Some(entry) = self.closed.get_mut(&s.slot) {
            // Too late for percentiles; still count it.
            entry.ops += s.committed;
            entry.errors.merge(&s.errors);
            if let Some(g) = entry.groups.get_mut(s.group) {
                g.ops += s.committed;
                g.errors += s.errors.total();
            }
            return;
        }
        let slot = self.open_slot(s.slot);
        slot.committed[s.group] += s.committed;
        slot.errors[s.group].merge(&s.errors);
        let _ = slot.latency[s.group].add(&s.latency);
    }

    /// File state seen at the end of `slot`.
    pub(crate) fn record_files(&mut self, slot: u64, files: FileState) {
        if let Some(seq) = files.checkpoint_seq {
            self.base_checkpoint_seq.get_or_insert(seq);
            self.last_checkpoint_seq = Some(seq);
        }
        self.last_files = Some(files);
        if !self.closed.contains_key(&slot) {
            let open = self.open_slot(slot);
            open.files = files;
            open.files_seen = true;
        }
    }

    /// Closes intervals that are `KEEP_OPEN` behind `current`, dropping their histograms.
    pub(crate) fn close_old(&mut self, current: u64) {
        let old: Vec<u64> = self
            .open
            .range(..current.saturating_sub(KEEP_OPEN))
            .map(|(k, _)| *k)
            .collect();
        for slot in old {
            self.close(slot);
        }
    }

    fn close(&mut self, slot: u64) {
        if let Some(open) = self.open.remove(&slot) {
            let entry = self.entry(slot, &open, true);
            self.closed.insert(slot, entry);
        }
    }

    /// A summary of one interval, open or closed (for progress lines).
    pub(crate) fn peek(&self, slot: u64) -> Option<TimelineEntry> {
        match self.open.get(&slot) {
            Some(open) => Some(self.entry(slot, open, false)),
            None => self.closed.get(&slot).cloned(),
        }
    }

    /// `histograms`: whether to keep each group's histogram in the entry (not for progress lines).
    fn entry(&self, slot: u64, open: &OpenSlot, histograms: bool) -> TimelineEntry {
        let mut all = interval_histogram();
        let mut errors = ErrorCounts::default();
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(g, name)| {
                let _ = all.add(&open.latency[g]);
                errors.merge(&open.errors[g]);
                let lat = LatencySummary::of(&open.latency[g]);
                GroupInterval {
                    name: name.clone(),
                    ops: open.committed[g],
                    errors: open.errors[g].total(),
                    p50_us: lat.p50,
                    p99_us: lat.p99,
                    histogram_v2: histograms.then(|| crate::metrics::encode_histogram(&open.latency[g])),
                }
            })
            .collect();
        let lat = LatencySummary::of(&all);
        let files = match (open.files_seen, self.last_files) {
            (false, Some(last)) => last,
            _ => open.files,
        };
        TimelineEntry {
            t_s: (slot + 1) as f64 * self.interval_s,
            ops: open.committed.iter().sum(),
            errors,
            p50_us: lat.p50,
            p99_us: lat.p99,
            db_bytes: files.db_bytes,
            wal_bytes: files.wal_bytes,
            wal_frames: files.wal_frames,
            checkpointed_frames: files.checkpointed_frames,
            wal_resets: self.resets_since_start(&files),
            groups,
        }
    }

    /// The checkpoint sequence number counts WAL restarts; an invalid reading counts as none.
    fn resets_since_start(&self, files: &FileState) -> u32 {
        match (
            files.checkpoint_seq.or(self.last_checkpoint_seq),
            self.base_checkpoint_seq,
        ) {
            (Some(now), Some(base)) => now.saturating_sub(base),
            _ => 0,
        }
    }

    /// All intervals up to and including `last_slot`, in order (empty ones included).
    /// `end_s`: when measuring ended (seconds since it began); the last, partial interval
    /// ends there rather than at a whole interval.
    pub(crate) fn finish(mut self, last_slot: Option<u64>, end_s: f64) -> Vec<TimelineEntry> {
        let open: Vec<u64> = self.open.keys().copied().collect();
        open.into_iter().for_each(|s| self.close(s));
        let Some(last) = last_slot else { return Vec::new() };
        let mut entries: Vec<TimelineEntry> = (0..=last)
            .map(|slot| {
                self.closed.remove(&slot).unwrap_or_else(|| {
                    let empty = OpenSlot {
                        committed: vec![0; self.groups.len()],
                        errors: vec![ErrorCounts::default(); self.groups.len()],
                        latency: (0..self.groups.len()).map(|_| interval_histogram()).collect(),
                        files: FileState::default(),
                        files_seen: false,
                    };
                    self.entry(slot, &empty, true)
                })
            })
            .collect();
        if let Some(e) = entries.last_mut() {
            e.t_s = e.t_s.min(end_s);
        }
        entries
    }
}

/// A database's file sizes and WAL checkpoint state at one moment (read by `machine::walstat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FileState {
    pub db_bytes: u64,
    pub wal_bytes: u64,
    /// Frames in the WAL (0 when not in WAL mode or not readable).
    pub wal_frames: u32,
    /// Frames already copied back into the database by checkpoints.
    pub checkpointed_frames: u32,
    /// The WAL header's checkpoint sequence number; `None` while the header is not valid
    /// (no WAL yet, or caught while being rewritten).
    pub checkpoint_seq: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(group: usize, slot: u64, committed: u64, latency_ns: u64) -> IntervalSample {
        let mut latency = interval_histogram();
        for _ in 0..committed {
            latency.record(latency_ns).unwrap();
        }
        IntervalSample {
            group,
            slot,
            committed,
            errors: ErrorCounts::default(),
            latency,
        }
    }

    #[test]
    fn merges_per_slot_and_group_and_fills_gaps() {
        let mut b = TimelineBuilder::new(Duration::from_secs(1), vec!["w".into(), "r".into()]);
        b.add(&sample(0, 0, 10, 1_000_000));
        b.add(&sample(0, 0, 5, 1_000_000));
        b.add(&sample(1, 2, 7, 2_000));
        let t = b.finish(Some(2), 2.5);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].ops, 15);
        assert_eq!(t[0].groups[0].ops, 15);
        assert!((t[0].p99_us - 1000.0).abs() < 15.0, "{}", t[0].p99_us);
        assert_eq!(t[1].ops, 0);
        assert_eq!(t[2].groups[1].ops, 7);
        assert_eq!(t[1].t_s, 2.0);
        assert_eq!(t[2].t_s, 2.5, "the last interval ends when measuring ended");
        let h = crate::metrics::decode_histogram(t[0].groups[0].histogram_v2.as_deref().unwrap()).unwrap();
        assert_eq!(h.len(), 15, "each interval keeps its histogram");
    }

    #[test]
    fn late_samples_still_count_after_closing() {
        let mut b = TimelineBuilder::new(Duration::from_secs(1), vec!["w".into()]);
        b.add(&sample(0, 0, 3, 1000));
        b.close_old(KEEP_OPEN + 5);
        b.add(&sample(0, 0, 2, 1000));
        assert_eq!(b.finish(Some(0), 1.0)[0].ops, 5);
    }

    #[test]
    fn clock_has_no_slot_before_measuring() {
        let c = RunClock::new(Duration::from_millis(100));
        assert_eq!(c.slot(Instant::now()), None);
        let t0 = Instant::now();
        c.start_measuring(t0);
        assert_eq!(c.slot(t0 + Duration::from_millis(250)), Some(2));
    }
}
