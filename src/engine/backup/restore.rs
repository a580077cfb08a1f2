//! After a backup stopped: restore its replica (`litestream restore -o NEWFILE`) or take its
//! last backup file, check the copy against what the workload acknowledged, and measure the
//! lag: acknowledged commits (and milliseconds) missing when the app stopped and after
//! Litestream's final sync.

use super::error::BackupError;
use crate::config::backup::BackupMethod;
use crate::report::model::backup::{BackupReport, Lag, RestoreCheck};
use crate::targets::sqlite::check::integrity_check;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What the stopped backup left: its cost, and the file a restore starts from.
pub(crate) struct Stopped {
    pub report: BackupReport,
    /// Litestream: a copy of the replica as it was when the workload stopped.
    pub at_stop: Option<PathBuf>,
    pub litestream: Option<PathBuf>,
}

/// The file a restore of an in-process backup starts from.
pub(crate) const LATEST: &str = "latest.db";

/// An exact checker: the copy and the acknowledged count in, the intact prefix out.
pub(crate) type ExactCheck<'a> = dyn Fn(&Connection, u64) -> Prefix + 'a;

/// How a restored copy is judged.
pub(crate) struct CheckSpec<'a> {
    /// The workload's tracked tables: without an exact check, their row counts in the copy
    /// must not exceed those in the database.
    pub tracked_tables: &'a [String],
    /// `[backup] sequence_table`: rows 1..k, the exact check of ordinary runs.
    pub sequence_table: Option<&'a str>,
    /// `run --kill`: the acknowledged commits, from the killed workload's output...
    pub acknowledged: Option<u64>,
    /// ...when each was acknowledged (ms from the start, index = commit - 1)...
    pub ack_ms: Option<&'a [f64]>,
    /// ...and the exact checker of its ledger: the intact prefix 1..k of the copy.
    pub exact: Option<&'a ExactCheck<'a>>,
}

/// What a copy holds: commits 1..`commits`, and whether it is otherwise exact and undamaged.
pub(crate) struct Prefix {
    pub commits: u64,
    pub check: RestoreCheck,
}

pub(crate) fn restore_and_check(
    db: &Path,
    dir: &Path,
    method: BackupMethod,
    stopped: Stopped,
    spec: &CheckSpec<'_>,
) -> BackupReport {
    let mut report = stopped.report;
    let main = match Connection::open(db) {
        Ok(c) => c,
        Err(e) => return failed(report, format!("cannot open the database: {e}")),
    };
    let acknowledged = match acknowledged(&main, spec) {
        Ok(n) => n,
        Err(e) => return failed(report, format!("cannot count acknowledged commits: {e}")),
    };
    report.acknowledged_commits = acknowledged;
    let restored = dir.join("restored.db");
    let started = Instant::now();
    let result = match (method, &stopped.litestream) {
        (BackupMethod::Litestream, Some(bin)) => {
            if let Some(at_stop) = &stopped.at_stop {
                let copy = dir.join("at-stop.db");
                match litestream_restore(bin, at_stop, &copy) {
                    Ok(()) => report.lag_at_stop = judge(&copy, &main, spec, acknowledged).ok().map(|(l, _)| l),
                    Err(e) => {
                        report
                            .error
                            .get_or_insert(format!("restore of the replica as at stop: {e}"));
                    }
                }
            }
            litestream_restore(bin, &dir.join("replica"), &restored)
        }
        _ => {
            let latest = dir.join(LATEST);
            if latest.exists() {
                std::fs::copy(&latest, &restored).map(|_| ()).map_err(BackupError::Copy)
            } else {
                Err(BackupError::NoBackup)
            }
        }
    };
    report.restore_s = started.elapsed().as_secs_f64();
    if let Err(e) = result {
        return failed(report, format!("restore failed: {e}"));
    }
    match judge(&restored, &main, spec, acknowledged) {
        Ok((lag, mut check)) => {
            if method == BackupMethod::Litestream {
                // Litestream replicates continuously and syncs at its stop: a restore with
                // none of the acknowledged commits restored nothing. That is a failed
                // backup, not an intact prefix of length 0. (A periodic copy taken before
                // the first commit is that copy's lag, reported as such.)
                if lag.commits_restored == 0 && acknowledged > 0 {
                    check.ok = false;
                    check.detail = format!(
                        "the restored copy holds none of the {acknowledged} acknowledged commits: the backup restored nothing"
                    );
                }
                report.lag_after_final_sync = Some(lag);
            } else {
                report.lag_at_stop = Some(lag);
            }
            report.restore = check;
        }
        Err(e) => return failed(report, format!("cannot check the restored copy: {e}")),
    }
    report
}

fn failed(mut report: BackupReport, message: String) -> BackupReport {
    report.restore = RestoreCheck {
        ok: false,
        integrity_check: String::new(),
        method: String::new(),
        detail: message.clone(),
    };
    report.error.get_or_insert(message);
    report
}

/// A restore of a test-sized replica takes seconds; one that has not ended in this long hangs.
const RESTORE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

fn litestream_restore(bin: &Path, replica: &Path, out: &Path) -> Result<(), BackupError> {
    let _ = std::fs::remove_file(out);
    let mut restore = Command::new(bin);
    restore
        .arg("restore")
        .arg("-o")
        .arg(out)
        .arg(format!("file://{}", replica.display()))
        .stdin(Stdio::null());
    let output = crate::interrupt::output_within(&mut restore, RESTORE_LIMIT).map_err(|e| BackupError::Child {
        what: "litestream restore".into(),
        source: e,
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BackupError::RestoreFailed {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

fn quote(t: &str) -> String {
    format!("\"{}\"", t.replace('"', "\"\""))
}

fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

/// Commits acknowledged when the app stopped: given (`--kill`), or the database's own rows.
fn acknowledged(main: &Connection, spec: &CheckSpec<'_>) -> rusqlite::Result<u64> {
    if let Some(n) = spec.acknowledged {
        return Ok(n);
    }
    match spec.sequence_table {
        Some(t) => count(main, t),
        None => spec.tracked_tables.iter().map(|t| count(main, t)).sum(),
    }
}

fn judge(
    copy: &Path,
    main: &Connection,
    spec: &CheckSpec<'_>,
    acknowledged: u64,
) -> rusqlite::Result<(Lag, RestoreCheck)> {
    // Read-only and never created: a restore that wrote no file must not be checked as an
    // empty database.
    let conn = Connection::open_with_flags(copy, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let prefix = match spec.exact {
        Some(exact) => exact(&conn, acknowledged),
        None => match spec.sequence_table {
            Some(table) => sequence_prefix(&conn, table, acknowledged)?,
            None => row_counts(&conn, main, spec.tracked_tables)?,
        },
    };
    let k = prefix.commits.min(acknowledged);
    let ms = lag_ms(main, spec, k, acknowledged);
    Ok((
        Lag {
            commits_restored: prefix.commits,
            commits_missing: acknowledged.saturating_sub(prefix.commits),
            ms,
        },
        prefix.check,
    ))
}

/// The time between the newest commit in the copy and the last acknowledged one.
fn lag_ms(main: &Connection, spec: &CheckSpec<'_>, k: u64, acknowledged: u64) -> Option<f64> {
    if k >= acknowledged {
        return Some(0.0);
    }
    let first = k.max(1);
    if let Some(times) = spec.ack_ms {
        let at = |n: u64| times.get(n as usize - 1).copied();
        return Some(at(acknowledged)? - at(first)?);
    }
    let table = quote(spec.sequence_table?);
    let at = |n: u64| {
        main.query_row(
            &format!("SELECT at_ms FROM {table} WHERE rowid = ?1"),
            [n as i64],
            |r| r.get::<_, f64>(0),
        )
        .ok()
    };
    Some(at(acknowledged)? - at(first)?)
}

/// Rows 1..k of the sequence table, nothing else, and an intact file.
fn sequence_prefix(conn: &Connection, table: &str, acknowledged: u64) -> rusqlite::Result<Prefix> {
    let integrity = integrity_check(conn, 5)?;
    let (n, min, max): (i64, Option<i64>, Option<i64>) = conn.query_row(
        &format!("SELECT count(*), min(rowid), max(rowid) FROM {}", quote(table)),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let n = n as u64;
    let contiguous = n == 0 || (min == Some(1) && max == Some(n as i64));
    let ok = integrity == "ok" && contiguous && n <= acknowledged;
    let detail = if ok {
        format!("commits 1..{n} of {acknowledged}, contiguous")
    } else if !contiguous {
        format!("{n} rows but rowids {min:?}..{max:?}: not a prefix")
    } else if n > acknowledged {
        format!("{n} commits, more than the {acknowledged} acknowledged")
    } else {
        format!("integrity_check: {integrity}")
    };
    Ok(Prefix {
        commits: n,
        check: RestoreCheck {
            ok,
            integrity_check: integrity,
            method: "sequence".into(),
            detail,
        },
    })
}

/// Without a sequence: an intact file whose tracked tables hold no more rows than the database.
fn row_counts(conn: &Connection, main: &Connection, tables: &[String]) -> rusqlite::Result<Prefix> {
    let integrity = integrity_check(conn, 5)?;
    let mut total = 0;
    let mut over = Vec::new();
    for t in tables {
        let (copy, live) = (count(conn, t)?, count(main, t)?);
        total += copy;
        if copy > live {
            over.push(format!("{t}: {copy} > {live}"));
        }
    }
    let ok = integrity == "ok" && over.is_empty();
    let detail = if over.is_empty() {
        format!("{total} tracked rows, none beyond the database's")
    } else {
        format!("more rows than acknowledged: {}", over.join(", "))
    };
    Ok(Prefix {
        commits: total,
        check: RestoreCheck {
            ok: ok && integrity == "ok",
            integrity_check: integrity,
            method: "row counts".into(),
            detail,
        },
    })
}
