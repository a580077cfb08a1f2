//! Creating a fresh database: settings, schema, and fast batched populate.

use crate::config::sqlite::{JournalMode, SqliteSettings};
use crate::config::{Populate, Setup};
use crate::targets::sqlite::settings::SettingError;
use crate::workload::params::GeneratorSpec;
use crate::workload::rng::Rng;
use crate::workload::sqlite_message;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

const POPULATE_BATCH: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error("cannot create database {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(transparent)]
    Setting(#[from] SettingError),
    #[error("[setup] sql failed: {0}")]
    Sql(String),
    #[error("[setup] populate of `{table}`: {message}")]
    Populate { table: String, message: String },
    #[error("cannot copy {from}: {message}")]
    Copy { from: PathBuf, message: String },
}

/// Creates a new database file (never an existing one), applies the settings and
/// runs the set-up SQL and populate. Returns the open connection.
pub(crate) fn create_database(
    path: &Path,
    settings: &SqliteSettings,
    setup: &Setup,
    seed: u64,
) -> Result<Connection, SetupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| SetupError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    let mut conn = open_guarded(path)?;
    let _interruptible = crate::interrupt::interruptible(&conn);
    crate::targets::sqlite::settings::apply_to_new_database(settings, &conn)?;
    crate::targets::sqlite::settings::apply_and_check(settings, &mut conn)?;
    if let Some(sql) = &setup.sql {
        conn.execute_batch(sql.get_ref())
            .map_err(|e| SetupError::Sql(crate::targets::sqlite::guard::explain(sqlite_message(&e))))?;
        if !conn.is_autocommit() {
            return Err(SetupError::Sql(
                "the set-up SQL leaves a transaction open (BEGIN or SAVEPOINT without COMMIT or RELEASE); \
                 end it in the set-up SQL"
                    .into(),
            ));
        }
    }
    if setup.populate.iter().any(|p| p.rows > 0) {
        populate_all(&mut conn, settings, &setup.populate, seed)?;
        // Populate ran with synchronous = OFF: write its pages out now, or the measured
        // phase's first checkpoint (which fsyncs the database file) would.
        std::fs::File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(|source| SetupError::Create {
                path: path.to_path_buf(),
                source,
            })?;
    }
    Ok(conn)
}

/// Opens `path` read-write with litehammer's functions and the external-files guard, as
/// every connection that runs scenario SQL is.
fn open_guarded(path: &Path) -> Result<Connection, SetupError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(|source| SetupError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    crate::targets::sqlite::settings::register_functions(&conn).map_err(|e| SetupError::Sql(sqlite_message(&e)))?;
    crate::targets::sqlite::guard::install(&mut conn).map_err(|e| SetupError::Sql(sqlite_message(&e)))?;
    Ok(conn)
}

/// Opens an existing database as a worker does: litehammer's functions, the external-files
/// guard, and the settings checked as read back.
pub(crate) fn open_existing(path: &Path, settings: &SqliteSettings) -> Result<Connection, SetupError> {
    let mut conn = open_guarded(path)?;
    crate::targets::sqlite::settings::apply_and_check(settings, &mut conn)?;
    Ok(conn)
}

/// A copy of an existing database at a new path, with the settings applied and checked.
/// Returns the open connection.
pub(crate) fn copy_database(from: &Path, path: &Path, settings: &SqliteSettings) -> Result<Connection, SetupError> {
    copy_file(from, path)?;
    open_existing(path, settings)
}

/// Copies a database to a new path (never an existing one) and syncs the copy, so its
/// write-back is done before anything is measured on it: otherwise the first checkpoint's
/// fsync of the database file would write the whole copy out.
pub(crate) fn copy_file(from: &Path, path: &Path) -> Result<(), SetupError> {
    copy_committed(from, path, true)?;
    let create = |source| SetupError::Create {
        path: path.to_path_buf(),
        source,
    };
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(create)
}

/// A copy that is only read and then deleted (the statement check's): not synced, so its
/// pages are dropped from the page cache unwritten when it is deleted, instead of loading
/// the disk (and, on a `discard` mount, its deletion the next measured phase).
pub(crate) fn scratch_copy(from: &Path, path: &Path) -> Result<(), SetupError> {
    copy_committed(from, path, false)
}

/// How long a copy waits for another process's write lock on the source to go away.
const COPY_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A committed state of `from`, copied through SQLite's backup API in one read transaction:
/// a transaction another process is writing is either wholly in the copy or not at all,
/// and a hot journal (a writer that died mid-transaction) is refused rather than copied
/// half-applied. `from` is opened read-only: litehammer never changes it, so it does not
/// roll that journal back either; the message says how.
fn copy_committed(from: &Path, path: &Path, durable: bool) -> Result<(), SetupError> {
    use rusqlite::backup::{Backup, StepResult};
    let fail = |message: String| SetupError::Copy {
        from: from.to_path_buf(),
        message,
    };
    regular_file(from).map_err(fail)?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| SetupError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    if wal_mode(from).map_err(fail)? {
        // Even a read-only connection creates `-wal` and `-shm` beside a WAL database, and
        // leaves them: litehammer would be writing beside the user's file. A WAL database
        // whose -wal is empty has every commit in its file (check_template refuses a
        // non-empty one), so a byte copy is a committed state, as long as nothing wrote it
        // meanwhile: checked before and after.
        let before = file_state(from).map_err(fail)?;
        let mut source = std::fs::File::open(from).map_err(|e| fail(e.to_string()))?;
        std::io::copy(&mut source, &mut target).map_err(|source| SetupError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        if file_state(from).map_err(fail)? != before {
            return Err(fail(
                "it was written while it was copied (its -wal or its file changed); copy it when the app is stopped"
                    .into(),
            ));
        }
        return Ok(());
    }
    drop(target);
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = Connection::open_with_flags(from, flags).map_err(|e| fail(sqlite_message(&e)))?;
    let open = |source| SetupError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut copy = Connection::open(path).map_err(open)?;
    if !durable {
        copy.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")
            .map_err(open)?;
    }
    let deadline = std::time::Instant::now() + COPY_LOCK_WAIT;
    let backup = Backup::new(&source, &mut copy).map_err(|e| fail(sqlite_message(&e)))?;
    loop {
        // -1: every page in one step, so one read transaction sees one committed state.
        match backup.step(-1).map_err(|e| fail(copy_message(&e)))? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => {
                if crate::interrupt::cancelled() {
                    return Err(fail("interrupted while waiting for another process's lock".into()));
                }
                if std::time::Instant::now() >= deadline {
                    return Err(fail(format!(
                        "another process has held a write lock on it for {} s; try again when it is idle",
                        COPY_LOCK_WAIT.as_secs()
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => return Err(fail("SQLite's backup API gave an unknown step result".into())),
        }
    }
}

/// The message for a failed copy: a hot journal gets its cause and its remedy.
fn copy_message(e: &rusqlite::Error) -> String {
    match e.sqlite_error() {
        Some(err) if err.extended_code == rusqlite::ffi::SQLITE_READONLY_ROLLBACK => {
            "it has a hot journal (a writer died mid-transaction): the committed state needs that \
             journal rolled back first, which litehammer will not do to your file; open it once \
             with `sqlite3 FILE 'PRAGMA integrity_check'` (that rolls it back), then try again"
                .into()
        }
        _ => sqlite_message(e),
    }
}

/// Whether the database file's header says WAL (its read and write versions are 2).
fn wal_mode(path: &Path) -> Result<bool, String> {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| format!("cannot read its header: {e}"))?;
    Ok(header[18] == 2 || header[19] == 2)
}

/// What a writer changes: the file's size and modification time, and the -wal's length.
fn file_state(path: &Path) -> Result<(u64, Option<std::time::SystemTime>, u64), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let wal = crate::machine::walstat::file_len(&crate::machine::walstat::sidecar(path, "-wal"));
    Ok((meta.len(), meta.modified().ok(), wal))
}

/// A regular file (following links), checked without opening it: a FIFO would block.
fn regular_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    Ok(())
}

fn populate_all(
    conn: &mut Connection,
    settings: &SqliteSettings,
    populate: &[Populate],
    seed: u64,
) -> Result<(), SetupError> {
    // Populating is not measured: skip fsyncs, then restore the scenario's settings.
    conn.execute_batch("PRAGMA synchronous = OFF")
        .map_err(|e| SetupError::Sql(sqlite_message(&e)))?;
    for (i, p) in populate.iter().enumerate() {
        fill_table(conn, p, Rng::derive(seed, 1_000_000 + i as u64))?;
    }
    if settings.journal_mode == JournalMode::Wal {
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(|e| SetupError::Sql(sqlite_message(&e)))?;
    }
    crate::targets::sqlite::settings::apply_and_check(settings, conn)?;
    Ok(())
}

/// The INSERT statement a populate entry runs; prepared during validation too.
pub(crate) fn populate_sql(conn: &Connection, p: &Populate) -> Result<String, SetupError> {
    let table = p.table.get_ref();
    let fail = |message: String| SetupError::Populate {
        table: table.clone(),
        message,
    };
    let values = p.values.get_ref().len();
    let columns = match &p.columns {
        Some(cols) => cols.clone(),
        None => default_columns(conn, table, values).map_err(fail)?,
    };
    if columns.len() != values {
        return Err(fail(format!(
            "{} column(s) named but {values} value(s) given",
            columns.len()
        )));
    }
    let quoted: Vec<String> = columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect();
    let marks: Vec<String> = (1..=values).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO \"{}\" ({}) VALUES ({})",
        table.replace('"', "\"\""),
        quoted.join(", "),
        marks.join(", ")
    );
    conn.prepare(&sql).map_err(|e| fail(sqlite_message(&e)))?;
    Ok(sql)
}

fn default_columns(conn: &Connection, table: &str, values: usize) -> Result<Vec<String>, String> {
    let mut stmt = conn
        .prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")
        .map_err(|e| e.to_string())?;
    let cols: Vec<(String, String, i64)> = stmt
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    if cols.is_empty() {
        return Err("no such table (create it in [setup] sql)".into());
    }
    let rowid_alias = cols.iter().filter(|c| c.2 > 0).count() == 1
        && cols.iter().any(|c| c.2 == 1 && c.1.eq_ignore_ascii_case("INTEGER"));
    let names: Vec<String> = cols.iter().map(|c| c.0.clone()).collect();
    if values == names.len() {
        Ok(names)
    } else if values + 1 == names.len() && rowid_alias {
        Ok(cols.into_iter().filter(|c| c.2 == 0).map(|c| c.0).collect())
    } else {
        Err(format!(
            "{values} value(s) for {} column(s) ({}); name the columns with `columns = [...]`",
            names.len(),
            names.join(", ")
        ))
    }
}

fn fill_table(conn: &Connection, p: &Populate, mut rng: Rng) -> Result<(), SetupError> {
    let table = p.table.get_ref().clone();
    let fail = |e: rusqlite::Error| SetupError::Populate {
        table: table.clone(),
        message: sqlite_message(&e),
    };
    let sql = populate_sql(conn, p)?;
    let mut generators: Vec<_> = p
        .values
        .get_ref()
        .iter()
        .map(|g: &GeneratorSpec| crate::workload::params::instantiate(g, &mut rng, 0, 1, &[]))
        .collect();
    let mut stmt = conn.prepare(&sql).map_err(fail)?;
    let mut done = 0;
    while done < p.rows {
        // Between batches: a stop ends populate (each insert is too short to interrupt).
        if crate::interrupt::cancelled() {
            return Err(fail(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                Some("populate interrupted".into()),
            )));
        }
        let batch = POPULATE_BATCH.min(p.rows - done);
        conn.execute_batch("BEGIN").map_err(fail)?;
        for _ in 0..batch {
            for (i, g) in generators.iter_mut().enumerate() {
                stmt.raw_bind_parameter(i + 1, rusqlite::types::ToSqlOutput::Borrowed(g.next(&mut rng)))
                    .map_err(fail)?;
            }
            stmt.raw_execute().map_err(fail)?;
        }
        conn.execute_batch("COMMIT").map_err(fail)?;
        done += batch;
    }
    Ok(())
}

/// A database a run may start from (`--from-db FILE`): an SQLite database whose every commit
/// is in the file (a copy of the main file alone leaves out what a non-empty `-wal` still
/// holds). The error is a plain message; the caller names the flag.
pub(crate) fn check_template(path: &Path) -> Result<(), String> {
    use std::io::Read;
    regular_file(path)?;
    let mut header = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut header))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if header != b"SQLite format 3\0" {
        return Err(format!("{} is not an SQLite database", path.display()));
    }
    let wal = crate::machine::walstat::sidecar(path, "-wal");
    if crate::machine::walstat::file_len(&wal) > 0 {
        return Err(format!(
            "{} has a non-empty {}: commits still in it would be missing from the copy; \
             checkpoint it first (`sqlite3 FILE 'PRAGMA wal_checkpoint(TRUNCATE)'`)",
            path.display(),
            wal.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn setup(text: &str) -> Setup {
        let full = format!("name = \"x\"\nduration = \"1s\"\n{text}");
        Source {
            origin: "t".into(),
            text: full,
        }
        .parse()
        .unwrap()
        .setup
    }

    #[test]
    fn populates_skipping_rowid_alias_and_refuses_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let s = setup(
            "[setup]\nsql = \"CREATE TABLE post(id INTEGER PRIMARY KEY, title TEXT, n INT)\"\npopulate = [{ table = \"post\", rows = 25000, values = [\"text(5, 10)\", \"uniform(1, 9)\"] }]\n",
        );
        let conn = create_database(&path, &SqliteSettings::default(), &s, 1).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM post WHERE n BETWEEN 1 AND 9", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 25000);
        drop(conn);
        let again = create_database(&path, &SqliteSettings::default(), &s, 1).unwrap_err();
        assert!(matches!(again, SetupError::Create { .. }), "{again}");
    }

    #[test]
    fn populate_value_count_mismatch_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let s = setup(
            "[setup]\nsql = \"CREATE TABLE t(a, b, c)\"\npopulate = [{ table = \"t\", rows = 1, values = [1] }]\n",
        );
        let err = create_database(&dir.path().join("q.db"), &SqliteSettings::default(), &s, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 value(s) for 3 column(s)"), "{err}");
    }
}
