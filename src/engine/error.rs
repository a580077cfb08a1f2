//! Why a run failed. The message of each variant is what the report's `error` field and
//! the terminal show; workers report their own failures as text through the protocol.

use crate::targets::sqlite::setup::SetupError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("{0}")]
    Setup(#[from] SetupError),
    /// An op or script that prepared in `validate` but not against this run's database.
    #[error("{0}")]
    Compile(String),
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot start worker thread {index}: {source}")]
    Spawn { index: u32, source: std::io::Error },
    /// A worker process's own words start with its pid: "worker 2 (pid N) was killed ...".
    #[error("worker {index}{}{message}", if message.starts_with("(pid ") { " " } else { ": " })]
    Worker { index: u32, message: String },
    #[error("worker {index} ended before starting: {message:?}")]
    EndedEarly { index: u32, message: Option<String> },
    #[error("workers read back different settings")]
    SettingsDiffer,
    #[error("workers disappeared while starting")]
    WorkersGone,
    #[error("no workers")]
    NoWorkers,
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Target(#[from] crate::targets::TargetError),
    #[error("backup: {0}")]
    Backup(#[from] crate::engine::backup::error::BackupError),
    #[error("replica: {0}")]
    Replica(#[from] crate::engine::backup::error::ReplicaError),
}

impl RunError {
    /// Ctrl-C or SIGTERM while the run was still starting (waiting for Litestream's first
    /// snapshot, or the replica readers): the run was interrupted, not failed.
    pub(crate) fn interrupted(&self) -> bool {
        use crate::engine::backup::error::{BackupError, ReplicaError};
        matches!(
            self,
            RunError::Backup(BackupError::Interrupted { .. })
                | RunError::Replica(ReplicaError::Interrupted | ReplicaError::Backup(BackupError::Interrupted { .. }))
        )
    }
}
