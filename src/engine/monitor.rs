//! What the driver watches while a run is live: worker messages (interval samples into the
//! timeline, final outputs), file sizes every 100 ms, and the progress display.

use crate::engine::error::RunError;
use crate::engine::loops::plain::{Message, WorkerOutput};
use crate::engine::progress::RunProgress;
use crate::machine::walstat::DbFiles;
use crate::metrics::timeline::{RunClock, TimelineBuilder, TimelineEntry};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Collects what the workers send while a run is live: interval samples into the
/// timeline, final outputs; samples file sizes and drives the progress display.
pub(crate) struct Monitor {
    files: DbFiles,
    wal_bytes_max: u64,
    timeline: TimelineBuilder,
    clock: Arc<RunClock>,
    progress: RunProgress,
    next_slot_to_close: u64,
    workers: usize,
    outputs: Vec<WorkerOutput>,
    failure: Option<RunError>,
}

pub(crate) struct MonitorResult {
    /// The database's files, with the -shm descriptor still open: hold them until every
    /// connection of this process to the database is closed (`walstat`: closing it would
    /// drop their locks).
    pub files: DbFiles,
    pub wal_bytes_max: u64,
    pub timeline: Vec<TimelineEntry>,
    pub outputs: Result<Vec<WorkerOutput>, RunError>,
}

impl Monitor {
    pub(crate) fn new(
        db_path: &Path,
        groups: Vec<String>,
        clock: Arc<RunClock>,
        progress: RunProgress,
        workers: usize,
    ) -> Self {
        Self {
            files: DbFiles::new(db_path),
            wal_bytes_max: 0,
            timeline: TimelineBuilder::new(clock.interval(), groups),
            clock,
            progress,
            next_slot_to_close: 0,
            workers,
            outputs: Vec::with_capacity(workers),
            failure: None,
        }
    }

    pub(crate) fn handle(&mut self, msg: Message) {
        match msg {
            Message::Interval(sample) => self.timeline.add(&sample),
            Message::Done { result: Ok(out), .. } => self.outputs.push(*out),
            Message::Done { index, result: Err(e) } => {
                self.failure.get_or_insert(RunError::Worker { index, message: e });
            }
            Message::Ready { .. } => {}
        }
    }

    pub(crate) fn all_finished(&self) -> bool {
        self.outputs.len() + usize::from(self.failure.is_some()) >= self.workers
    }

    /// Every 100 ms: file sizes, and for each interval that just ended its file state
    /// and a progress update.
    pub(crate) fn tick(&mut self, now: Instant) {
        let state = self.files.sample();
        self.wal_bytes_max = self.wal_bytes_max.max(state.wal_bytes);
        // Intervals are closed a little after they end, so workers have shipped their samples.
        let Some(current) = now.checked_sub(CLOSE_GRACE).and_then(|t| self.clock.slot(t)) else {
            return;
        };
        while self.next_slot_to_close < current {
            let slot = self.next_slot_to_close;
            self.timeline.record_files(slot, state);
            if let Some(entry) = self.timeline.peek(slot) {
                self.progress.interval(&entry, self.clock.interval().as_secs_f64());
            }
            self.next_slot_to_close += 1;
        }
        self.timeline.close_old(current);
    }

    /// After Stop: waits for every worker's final message.
    pub(crate) async fn drain(&mut self, rx: &mut mpsc::UnboundedReceiver<Message>) {
        while !self.all_finished() {
            match rx.recv().await {
                Some(m) => self.handle(m),
                None => break,
            }
        }
    }

    /// At Stop, while the workers' connections are still open (the last one to close
    /// checkpoints and deletes the WAL): the file state for every interval not yet closed.
    pub(crate) fn record_final_files(&mut self) {
        let state = self.files.sample();
        self.wal_bytes_max = self.wal_bytes_max.max(state.wal_bytes);
        if let Some(current) = self.clock.slot(Instant::now()) {
            for slot in self.next_slot_to_close..=current {
                self.timeline.record_files(slot, state);
            }
            self.next_slot_to_close = current + 1;
        }
    }

    pub(crate) fn finish(self, end: Instant) -> MonitorResult {
        let last = self.clock.slot(end);
        self.progress.finish();
        let outputs = match self.failure {
            Some(e) => Err(e),
            None => Ok(self.outputs),
        };
        MonitorResult {
            files: self.files,
            wal_bytes_max: self.wal_bytes_max,
            timeline: self.timeline.finish(last, self.clock.seconds_measured(end)),
            outputs,
        }
    }
}
