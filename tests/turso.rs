//! `--target turso`: Turso in process (the `turso` crate, nothing to install) through the
//! real binary: BEGIN CONCURRENT on MVCC, write-write conflicts counted and retried,
//! verification against the acknowledged writes, the settings read back, the files removed,
//! and the bad input it refuses (exit 2 naming the key).

#![cfg(feature = "turso")]

mod common;

use common::{assert_schema_valid, bin, read_json, write};
use serde_json::Value;
use std::path::Path;

/// Writers that all bump one row (and log each bump) in BEGIN CONCURRENT transactions:
/// with more than one writer, MVCC must report write-write conflicts, and retries make
/// every transaction commit in the end.
const HOT: &str = r#"
name = "hot"
duration = "600ms"
warmup = "0s"
target = "turso"

[turso]
journal_mode = "mvcc"
synchronous = "normal"

[setup]
sql = """
CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO counter VALUES (1, 0);
CREATE TABLE hit(id INTEGER PRIMARY KEY, worker INTEGER NOT NULL);
"""

[[group]]
name = "writers"
workers = 4
transaction = "concurrent"
retry = { max_tries = 1000 }

[[group.script]]
name = "bump"
app_time = "200us"
steps = [
  { sql = "UPDATE counter SET n = n + 1 WHERE id = 1" },
  { sql = "INSERT INTO hit(id, worker) VALUES (?1, ?2)", params = ["seq()", "worker_id()"] },
]

[[check]]
name = "no lost update"
sql = "SELECT (SELECT n FROM counter WHERE id = 1) - (SELECT count(*) FROM hit)"
expect = 0
"#;

fn run(dir: &Path, scenario: &str, extra: &[&str]) -> (Value, std::process::Output) {
    let file = write(dir, "s.toml", scenario);
    let out = dir.join("r.json");
    let output = bin()
        .arg("run")
        .arg(&file)
        .arg("--no-probe")
        .arg("-o")
        .arg(&out)
        .arg("--db-dir")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_json(&out);
    assert_schema_valid(&report);
    (report, output)
}

/// What the run left in its database directory of Turso's files.
fn turso_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".turso"))
        .collect()
}

#[test]
fn a_conflict_is_counted_and_retried_and_the_run_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = run(dir.path(), HOT, &[]);
    let run = &report["runs"][0];
    let turso = &run["turso"];
    assert_eq!(turso["journal_mode"], "mvcc", "{turso}");
    assert_eq!(turso["synchronous"], "normal", "{turso}");
    assert_eq!(turso["read_back"], true, "{turso}");
    assert!(!turso["version"].as_str().unwrap().is_empty());
    let tx = &run["groups"][0]["transactions"];
    let conflicts = tx["errors"]["conflict"].as_u64().unwrap_or(0);
    assert!(conflicts > 0, "four writers on one row never conflicted: {tx}");
    assert!(tx["retried"].as_u64().unwrap() > 0, "no conflict was retried: {tx}");
    assert!(tx["committed"].as_u64().unwrap() > 0, "{tx}");
    assert_eq!(tx["rolled_back"], 0, "a transaction gave up despite retries: {tx}");
    let v = &run["verification"];
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["lost"], 0);
    let hit = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "hit")
        .unwrap();
    assert_eq!(hit["rows_found"], hit["inserts_acknowledged"], "{hit}");
    assert_eq!(hit["inserts_acknowledged"], tx["committed"], "{hit} vs {tx}");
    assert!(v["scenario_checks"][0]["ok"].as_bool().unwrap(), "{v}");
    assert!(
        turso_files(dir.path()).is_empty(),
        "left: {:?}",
        turso_files(dir.path())
    );
}

#[test]
fn a_lost_row_fails_verification_on_turso() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", HOT);
    let out = dir.path().join("r.json");
    bin()
        .env("LITEHAMMER_FAULT", "lose-row")
        .arg("run")
        .arg(&file)
        .args(["--no-probe", "--set", "group.writers.workers=1", "-o"])
        .arg(&out)
        .arg("--db-dir")
        .arg(dir.path())
        .assert()
        .code(1);
    let v = &read_json(&out)["runs"][0]["verification"];
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["lost"], 1, "{v}");
}

#[test]
fn sqlite_and_turso_pair_in_one_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = HOT
        .replace("target = \"turso\"\n", "")
        .replace("transaction = \"concurrent\"", "transaction = \"immediate\"")
        .replace(
            "journal_mode = \"mvcc\"\n",
            "journal_mode = \"mvcc\"\nbegin = \"concurrent\"\n",
        )
        .replace(
            "[setup]",
            "[sqlite]\njournal_mode = \"wal\"\n[matrix]\ntarget = [\"sqlite\", \"turso\"]\n[setup]",
        );
    let (report, _) = run(dir.path(), &scenario, &["--set", "group.writers.workers=2"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["sqlite"]["journal_mode"], "wal");
    assert_eq!(runs[0]["groups"][0]["transaction"], "immediate");
    assert!(runs[0]["turso"].is_null());
    assert_eq!(runs[1]["groups"][0]["transaction"], "concurrent");
    assert_eq!(runs[1]["turso"]["begin"], "concurrent");
    assert!(runs.iter().all(|r| r["verification"]["ok"] == true));
}

/// Runs `validate` and expects exit 2 with `key` named on stderr.
fn refused(scenario: &str, extra: &[&str], key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", scenario);
    let out = bin().arg("validate").arg(&file).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(key), "`{key}` not named: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn turso_with_worker_processes_is_refused_naming_the_key() {
    let scenario = HOT.replace("retry = {", "isolation = \"process\"\nretry = {");
    refused(&scenario, &[], "group.writers.isolation");
}

#[test]
fn what_turso_cannot_do_is_refused_naming_the_key() {
    // BEGIN CONCURRENT on SQLite.
    refused(HOT, &["--target", "sqlite"], "group.writers.transaction");
    // BEGIN CONCURRENT without MVCC.
    refused(HOT, &["--set", "turso.journal_mode=wal"], "group.writers.transaction");
    // A journal mode Turso does not have.
    refused(HOT, &["--set", "turso.journal_mode=delete"], "turso.journal_mode");
    // A backup of Turso's files.
    refused(HOT, &["--set", "backup=vacuum-into"], "backup");
    // A setting Turso does not have.
    refused(HOT, &["--set", "turso.mmap_size=0"], "turso.mmap_size");
    // --target turso takes no URL.
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "s.toml", HOT);
    let out = bin()
        .arg("validate")
        .arg(&file)
        .args(["--target", "turso=x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
