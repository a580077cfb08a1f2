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
