//! `run --from-db FILE`: every run starts from a copy of an existing database, with the
//! scenario's set-up skipped; bad files are refused before anything runs (exit 2).

mod common;
use common::{bin, read_json, write};
use std::path::Path;

/// The set-up SQL would fail on the copy (the table exists there), so a run that completes
/// shows it was skipped.
const SCENARIO: &str = r#"
name = "from-db"
operations = 20
warmup = "0s"
seed = 3

[sqlite]
journal_mode = "wal"
synchronous = "normal"

[setup]
sql = "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT);"

[[group]]
name = "w"
workers = 1
transaction = "none"

[[group.op]]
name = "put"
sql = "INSERT INTO kv(v) VALUES (?1)"
params = ["text(8)"]
"#;

fn seeded(dir: &Path, rows: u32) -> std::path::PathBuf {
    let path = dir.join("seeded.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    for i in 0..rows {
        conn.execute("INSERT INTO kv(v) VALUES (?1)", [format!("seed-{i}")])
            .unwrap();
    }
    drop(conn); // the last connection checkpoints and removes the -wal
    path
}

fn count(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM kv", [], |r| r.get(0)).unwrap()
}

#[test]
fn each_run_starts_from_a_copy_and_the_original_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let from = seeded(dir.path(), 50);
    let before = std::fs::read(&from).unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let dbs = dir.path().join("dbs");
    std::fs::create_dir(&dbs).unwrap();
    let out = dir.path().join("r.json");
    bin()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--quiet",
            "--no-probe",
            "--keep-db",
            "--repeat",
            "2",
        ])
        .arg("--from-db")
        .arg(&from)
        .arg("--db-dir")
        .arg(&dbs)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let report = read_json(&out);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["verification"]["ok"], true, "{run}");
        assert_eq!(run["groups"][0]["transactions"]["committed"], 20);
        // Each kept database is its own copy: the seeded rows plus this run's 20 only.
        let kept = run["database"]["path"].as_str().unwrap();
        assert_eq!(count(Path::new(kept)), 70, "{kept}");
    }
    assert_eq!(std::fs::read(&from).unwrap(), before, "the --from-db file was modified");
    assert!(!Path::new(&format!("{}-wal", from.display())).exists());
}

fn refused(dir: &Path, from: &Path, expect: &str) {
    let scenario = write(dir, "s.toml", SCENARIO);
    let assert = bin()
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--no-probe"])
        .arg("--from-db")
        .arg(from)
        .arg("--db-dir")
        .arg(dir)
        .arg("-o")
        .arg(dir.join("r.json"))
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("--from-db"), "{stderr}");
    assert!(stderr.contains(expect), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join("r.json").exists(), "a report was written for refused input");
}

#[test]
fn a_missing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    refused(dir.path(), &dir.path().join("nope.db"), "cannot read");
}

#[test]
fn a_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "notes.db", "these are not the pages you are looking for\n");
    refused(dir.path(), &text, "is not an SQLite database");
}

#[test]
fn a_database_with_a_non_empty_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let from = seeded(dir.path(), 3);
    // As an open (or crashed) writer leaves it: commits in the -wal, not yet in the file.
    std::fs::write(format!("{}-wal", from.display()), [1u8; 64]).unwrap();
    refused(dir.path(), &from, "non-empty");
}

/// A rollback-journal database with 50 committed rows, and a connection in the middle of a
/// transaction that has spilled uncommitted pages into the file (its `-journal` is hot).
fn mid_transaction(dir: &Path) -> (std::path::PathBuf, rusqlite::Connection) {
    let path = dir.join("delete.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE; CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    for i in 0..50 {
        conn.execute("INSERT INTO kv(v) VALUES (?1)", [format!("seed-{i}")])
            .unwrap();
    }
    // A one-page cache makes the transaction write its pages into the file before COMMIT.
    conn.execute_batch(
        "PRAGMA cache_size = 1; BEGIN; \
         INSERT INTO kv(v) SELECT printf('%.500c', 'x') FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) SELECT i FROM n);",
    )
    .unwrap();
    (path, conn)
}

#[test]
fn a_database_with_a_hot_journal_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (live, writer) = mid_transaction(dir.path());
    // The state a writer that died mid-transaction leaves: the file and its hot journal.
    let from = dir.path().join("crashed.db");
    std::fs::copy(&live, &from).unwrap();
    std::fs::copy(
        format!("{}-journal", live.display()),
        format!("{}-journal", from.display()),
    )
    .unwrap();
    drop(writer);
    let (db, journal) = (
        std::fs::read(&from).unwrap(),
        std::fs::read(format!("{}-journal", from.display())).unwrap(),
    );
    refused(dir.path(), &from, "hot journal");
    assert_eq!(std::fs::read(&from).unwrap(), db, "the --from-db file was changed");
    assert_eq!(
        std::fs::read(format!("{}-journal", from.display())).unwrap(),
        journal,
        "its journal was changed or rolled back"
    );
}

#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.db");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    refused(dir.path(), &fifo, "not a regular file");
}

#[test]
fn a_copy_taken_while_another_process_writes_holds_only_committed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (from, writer) = mid_transaction(dir.path());
    // The writer holds its lock (its pages half in the file) for a moment, then rolls back:
    // the copy waits for the lock instead of copying the torn file.
    let rollback = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        writer.execute_batch("ROLLBACK").unwrap();
    });
    let scenario = write(
        dir.path(),
        "s.toml",
        &SCENARIO.replace("journal_mode = \"wal\"", "journal_mode = \"delete\""),
    );
    let dbs = dir.path().join("dbs");
    std::fs::create_dir(&dbs).unwrap();
    let out = dir.path().join("r.json");
    bin()
        .args(["run", scenario.to_str().unwrap(), "--quiet", "--no-probe", "--keep-db"])
        .arg("--from-db")
        .arg(&from)
        .arg("--db-dir")
        .arg(&dbs)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    rollback.join().unwrap();
    let report = read_json(&out);
    let kept = report["runs"][0]["database"]["path"].as_str().unwrap().to_string();
    assert_eq!(count(Path::new(&kept)), 50 + 20, "the copy holds uncommitted rows");
    assert_eq!(count(&from), 50);
}
