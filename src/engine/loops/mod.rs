//! The workers' loops: the plain hot loop (`plain.rs`) and the application model's request
//! loop (`app.rs`), started on a thread of their own (`spawn.rs`), with the clock, open-loop
//! pacing, the request queue (one process's, or shared by worker processes: `shared_queue.rs`) and the retry back-off they share, and the interpreter lock of
//! the request loop's runtimes (`interp.rs`).

pub(crate) mod app;
pub(crate) mod clock;
pub(crate) mod interp;
pub(crate) mod pacing;
pub(crate) mod plain;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod shared_queue;
pub(crate) mod spawn;
