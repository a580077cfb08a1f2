//! Starting one worker thread: the plain hot loop (`worker.rs`), or the application model's
//! request loop (`app.rs`) for a group that uses any of it.

use crate::engine::cancel::PhaseFlag;
use crate::engine::loops::plain::{Message, WorkerSpec};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

pub(crate) fn spawn(
    spec: WorkerSpec,
    phase: Arc<PhaseFlag>,
    tx: UnboundedSender<Message>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("worker-{}", spec.index))
        .spawn(move || {
            let index = spec.index;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if spec.group.app.is_some() {
                    crate::engine::loops::app::worker_main(spec, &phase, &tx)
                } else {
                    crate::engine::loops::plain::worker_main(spec, &phase, &tx)
                }
            }));
            if outcome.is_err() {
                let _ = tx.send(Message::Done {
                    index,
                    result: Err("worker thread panicked".into()),
                });
            }
        })
}
