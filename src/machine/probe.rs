//! The machine's limits: how many fsync / fdatasync calls per second the database directory
//! sustains, whether its filesystem makes them durable, and the single-connection commit
//! ceiling (autocommit INSERT) for each journal_mode × synchronous.

use crate::config::sqlite::{JournalMode, SqliteSettings, Synchronous};
use crate::report::format::{Table, format_rate};
use crate::report::model::Environment;
use crate::targets::sqlite::settings::SettingError;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) const SCHEMA: &str = "litehammer.probe/1";

/// The journal modes and synchronous levels whose commit ceiling the probe measures.
pub(crate) const JOURNAL_MODES: [JournalMode; 3] = [JournalMode::Wal, JournalMode::Delete, JournalMode::Truncate];
pub(crate) const SYNC_LEVELS: [Synchronous; 4] = [
    Synchronous::Off,
    Synchronous::Normal,
    Synchronous::Full,
    Synchronous::Extra,
];

/// Filesystems where fsync does not reach stable storage (or may not).
const NOT_DURABLE: [(&str, &str); 3] = [
    (
        "tmpfs",
        "tmpfs lives in memory: fsync is a no-op and nothing survives a power loss",
    ),
    (
        "ramfs",
        "ramfs lives in memory: fsync is a no-op and nothing survives a power loss",
    ),
    (
        "overlay",
        "overlay (a container's filesystem): fsync goes to an upper layer that may be memory or a volatile disk; mount a volume for the databases",
    ),
];

/// Above this many syncs per second no device with a real durability barrier is involved.
const IMPLAUSIBLE_SYNC_RATE: f64 = 200_000.0;

/// How long each measurement runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProbeTimes {
    pub sync: Duration,
    pub commit: Duration,
}

impl ProbeTimes {
    /// ~4 s in all: 0.5 s per sync kind, 0.25 s per journal_mode × synchronous.
    pub(crate) const DEFAULT: Self = Self {
        sync: Duration::from_millis(500),
        commit: Duration::from_millis(250),
    };
    /// ~0.8 s in all, for a first look (and tests).
    pub(crate) const QUICK: Self = Self {
        sync: Duration::from_millis(100),
        commit: Duration::from_millis(50),
    };
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error("probe file in {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("probe database ({journal_mode}, synchronous={synchronous}): {message}")]
    Sqlite {
        journal_mode: JournalMode,
        synchronous: Synchronous,
        message: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ProbeReport {
    pub schema: String,
    pub environment: Environment,
    pub filesystem: String,
    pub fsync_per_sec: f64,
    pub fdatasync_per_sec: f64,
    /// Why the sync rates may not mean durability here (empty when nothing is suspicious).
    pub warnings: Vec<String>,
    pub commit_ceiling: Vec<CommitCeiling>,
}

/// Autocommit INSERTs per second on one connection, and that rate over the fsync rate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CommitCeiling {
    pub journal_mode: JournalMode,
    pub synchronous: Synchronous,
    pub commits_per_sec: f64,
    pub ratio_to_fsync: f64,
}

/// The full probe of `dir`: sync rates, warnings and the commit ceiling table.
pub(crate) fn probe(dir: &Path, times: ProbeTimes) -> Result<ProbeReport, ProbeError> {
    let mut environment = crate::machine::env::capture(dir);
    let fsync_per_sec = sync_rate(dir, times.sync, SyncKind::Fsync)?;
    let fdatasync_per_sec = sync_rate(dir, times.sync, SyncKind::Fdatasync)?;
    environment.fsync_per_sec = Some(fsync_per_sec);
    let mut commit_ceiling = Vec::new();
    for journal_mode in JOURNAL_MODES {
        for synchronous in SYNC_LEVELS {
            let commits_per_sec = commit_rate(dir, journal_mode, synchronous, times.commit)?;
            commit_ceiling.push(CommitCeiling {
                journal_mode,
                synchronous,
                commits_per_sec,
                ratio_to_fsync: commits_per_sec / fsync_per_sec.max(f64::MIN_POSITIVE),
            });
        }
    }
    Ok(ProbeReport {
        schema: SCHEMA.to_string(),
        filesystem: environment.filesystem.clone(),
        warnings: durability_warnings(&environment.filesystem, fsync_per_sec),
        environment,
        fsync_per_sec,
        fdatasync_per_sec,
        commit_ceiling,
    })
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum SyncKind {
    /// `fsync(2)`: data and all metadata.
    Fsync,
    /// `fdatasync(2)`: data and the metadata needed to read it back (what SQLite uses on Linux).
    Fdatasync,
}

/// Syncs per second on a scratch file in `dir`, each after rewriting its first 4 KiB page
/// (a sync of a clean file costs nothing and would measure nothing).
pub(crate) fn sync_rate(dir: &Path, time: Duration, kind: SyncKind) -> Result<f64, ProbeError> {
    let io = |source| ProbeError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let mut file = tempfile::Builder::new()
        .prefix(".litehammer-probe-")
        .tempfile_in(dir)
        .map_err(io)?;
    let page = [0x5au8; 4096];
    file.write_all(&page).map_err(io)?;
    file.as_file().sync_all().map_err(io)?;
    let (start, mut syncs) = (Instant::now(), 0u64);
    while start.elapsed() < time || syncs == 0 {
        file.as_file().write_all_at(&page[..512], 0).map_err(io)?;
        sync(file.as_file(), kind).map_err(io)?;
        syncs += 1;
    }
    Ok(syncs as f64 / start.elapsed().as_secs_f64())
}

fn sync(file: &File, kind: SyncKind) -> std::io::Result<()> {
    match kind {
        SyncKind::Fsync => file.sync_all(),
        SyncKind::Fdatasync => file.sync_data(),
    }
}

/// Autocommit INSERTs per second on one connection to a fresh database in `dir`.
pub(crate) fn commit_rate(
    dir: &Path,
    journal_mode: JournalMode,
    synchronous: Synchronous,
    time: Duration,
) -> Result<f64, ProbeError> {
    let fail = |message: String| ProbeError::Sqlite {
        journal_mode,
        synchronous,
        message,
    };
    let scratch = tempfile::Builder::new()
        .prefix(".litehammer-probe-")
        .tempdir_in(dir)
        .map_err(|source| ProbeError::Io {
            dir: dir.display().to_string(),
            source,
        })?;
    let settings = SqliteSettings {
        journal_mode,
        synchronous,
        ..SqliteSettings::default()
    };
    let conn = open_probe_database(&scratch.path().join("probe.db"), &settings).map_err(|e| fail(e.to_string()))?;
    insert_loop(&conn, time).map_err(|e| fail(e.to_string()))
}

fn open_probe_database(path: &Path, settings: &SqliteSettings) -> Result<Connection, SettingError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let sqlite = |source| SettingError::Sqlite {
        setting: "open",
        source,
    };
    let mut conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    crate::targets::sqlite::settings::apply_to_new_database(settings, &conn)?;
    crate::targets::sqlite::settings::apply_and_check(settings, &mut conn)?;
    conn.execute_batch("CREATE TABLE probe(id INTEGER PRIMARY KEY, v BLOB)")
        .map_err(sqlite)?;
    Ok(conn)
}

fn insert_loop(conn: &Connection, time: Duration) -> rusqlite::Result<f64> {
    let mut stmt = conn.prepare("INSERT INTO probe(v) VALUES (?1)")?;
    let value = [0xa5u8; 100];
    let (start, mut commits) = (Instant::now(), 0u64);
    while start.elapsed() < time || commits == 0 {
        stmt.raw_bind_parameter(1, ToSqlOutput::Borrowed(ValueRef::Blob(&value)))?;
        stmt.raw_execute()?;
        commits += 1;
    }
    Ok(commits as f64 / start.elapsed().as_secs_f64())
}

/// Why syncs on this filesystem may not be durability barriers.
pub(crate) fn durability_warnings(filesystem: &str, fsync_per_sec: f64) -> Vec<String> {
    let mut warnings: Vec<String> = NOT_DURABLE
        .iter()
        .filter(|(fs, _)| *fs == filesystem)
        .map(|(_, why)| format!("{filesystem}: {why}"))
        .collect();
    if fsync_per_sec > IMPLAUSIBLE_SYNC_RATE {
        warnings.push(format!(
            "{} fsync/s is faster than any durable device: the filesystem or a volatile write cache does not honour fsync",
            format_rate(fsync_per_sec)
        ));
    }
    warnings
}

/// The probe as text: directory, sync rates, warnings and the commit ceiling table.
pub(crate) fn to_text(report: &ProbeReport) -> String {
    let env = &report.environment;
    let mut out = format!(
        "{} ({}), SQLite {}, {} build\n\nfsync      {:>10}/s\nfdatasync  {:>10}/s\n",
        env.db_dir,
        report.filesystem,
        env.sqlite_version,
        env.build_profile,
        format_rate(report.fsync_per_sec),
        format_rate(report.fdatasync_per_sec)
    );
    for w in &report.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str("\nsingle-connection commit ceiling (autocommit INSERT):\n");
    out.push_str(&ceiling_table(&report.commit_ceiling).to_text());
    out
}

pub(crate) fn ceiling_table(rows: &[CommitCeiling]) -> Table {
    Table {
        headers: vec!["journal_mode", "synchronous", "commits/s", "× fsync"],
        right: vec![false, false, true, true],
        rows: rows
            .iter()
            .map(|c| {
                vec![
                    c.journal_mode.to_string(),
                    c.synchronous.to_string(),
                    format_rate(c.commits_per_sec),
                    format!("{:.2}", c.ratio_to_fsync),
                ]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_filesystems_and_implausible_rates_warn() {
        assert!(durability_warnings("ext4", 9000.0).is_empty());
        assert_eq!(durability_warnings("tmpfs", 9000.0).len(), 1);
        assert!(durability_warnings("overlay", 9000.0)[0].contains("volume"));
        assert!(durability_warnings("ext4", 1e6)[0].contains("does not honour fsync"));
    }

    #[test]
    fn sync_and_commit_rates_are_positive() {
        let dir = tempfile::tempdir().unwrap();
        let t = Duration::from_millis(20);
        assert!(sync_rate(dir.path(), t, SyncKind::Fdatasync).unwrap() > 0.0);
        assert!(commit_rate(dir.path(), JournalMode::Wal, Synchronous::Normal, t).unwrap() > 0.0);
        // Scratch files are removed.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
