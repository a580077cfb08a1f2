mod common;

use common::*;
use predicates::prelude::*;

#[test]
fn run_reports_consistent_counts_settings_and_verification() {
    let (dir, report, stdout) = run_tiny(&[]);
    assert!(
        stdout.contains("journal_mode=wal") && stdout.contains("report:"),
        "{stdout}"
    );
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, mode) in runs.iter().zip(["wal", "delete"]) {
        assert_eq!(run["id"], format!("journal_mode={mode}"));
        assert_eq!(run["status"], "completed");
        // Settings are what SQLite read back, and match the matrix cell and the file.
        assert_eq!(run["sqlite"]["journal_mode"], mode);
        assert_eq!(run["sqlite"]["busy_timeout"], "2s");
        assert_eq!(run["sqlite"]["synchronous"], "full");
        for group in run["groups"].as_array().unwrap() {
            let tx = &group["transactions"];
            assert_eq!(histogram_len(&tx["histogram_v2"]), tx["committed"].as_u64().unwrap());
            let mut op_successes = 0;
            for op in group["ops"].as_array().unwrap() {
                assert_eq!(
                    histogram_len(&op["histogram_v2"]),
                    op["count"].as_u64().unwrap(),
                    "{}",
                    op["name"]
                );
                op_successes += op["count"].as_u64().unwrap();
            }
            let per_tx = group["statements_per_transaction"].as_u64().unwrap();
            assert!(op_successes >= per_tx * tx["committed"].as_u64().unwrap());
            let per_worker: u64 = group["per_worker"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["transactions"].as_u64().unwrap())
                .sum();
            assert_eq!(per_worker, tx["committed"].as_u64().unwrap());
        }
        let writers = &run["groups"][0];
        assert!(
            writers["transactions"]["committed"].as_u64().unwrap() > 0,
            "writers committed nothing in {mode}"
        );
        let v = &run["verification"];
        assert_eq!(v["ok"], true);
        assert_eq!(v["integrity_check"], "ok");
        let kv = &v["tables"][0];
        assert_eq!(kv["table"], "kv");
        assert_eq!(kv["rows_before"], 100);
        assert!(kv["inserts_acknowledged"].as_u64().unwrap() > 0);
        assert_eq!(
            kv["rows_found"].as_u64().unwrap(),
            kv["rows_before"].as_u64().unwrap() + kv["inserts_acknowledged"].as_u64().unwrap()
        );
    }
    // Databases are deleted unless --keep-db.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".db"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn operation_count_runs_exactly_that_many_transactions() {
    let (_dir, report, _) = run_tiny(&["--operations", "300", "--warmup", "0s", "--matrix", "journal_mode=wal"]);
    let run = &report["runs"][0];
    let total: u64 = run["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["transactions"]["committed"].as_u64().unwrap() + g["transactions"]["rolled_back"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 300);
    assert_eq!(
        report["scenario"]["resolved"]["matrix"]["journal_mode"],
        serde_json::json!(["wal"])
    );
}

#[test]
fn overrides_change_what_sqlite_reads_back() {
    let (_dir, report, _) = run_tiny(&[
        "--duration",
        "300ms",
        "--warmup",
        "0s",
        "--set",
        "sqlite.busy_timeout=750ms",
        "--set",
        "group.writers.workers=3",
        "--matrix",
        "synchronous=off,normal",
        "--matrix",
        "journal_mode=truncate",
    ]);
    let runs = report["runs"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "journal_mode=truncate,synchronous=off",
            "journal_mode=truncate,synchronous=normal"
        ]
    );
    for (run, sync) in runs.iter().zip(["off", "normal"]) {
        assert_eq!(run["sqlite"]["synchronous"], sync);
        assert_eq!(run["sqlite"]["journal_mode"], "truncate");
        assert_eq!(run["sqlite"]["busy_timeout"], "750ms");
        assert_eq!(run["groups"][0]["workers"], 3);
        assert_eq!(run["groups"][0]["per_worker"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn keep_db_leaves_a_database_that_holds_the_rows() {
    let (_dir, report, _) = run_tiny(&["--keep-db", "--duration", "300ms", "--matrix", "journal_mode=wal"]);
    let run = &report["runs"][0];
    let path = run["database"]["path"].as_str().expect("path of the kept database");
    let conn = rusqlite::Connection::open(path).unwrap();
    let rows: u64 = conn
        .query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64;
    assert_eq!(rows, run["verification"]["tables"][0]["rows_found"].as_u64().unwrap());
}

#[test]
fn lost_rows_fail_the_command() {
    // LITEHAMMER_FAULT=lose-row deletes one acknowledged row before verification: the
    // checker must notice and the command must fail.
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    bin()
        .env("LITEHAMMER_FAULT", "lose-row")
        .arg("run")
        .arg(&scenario)
        .args([
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--matrix",
            "journal_mode=wal",
            "-o",
        ])
        .arg(&out)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("LOST 1 rows"));
    let report = read_json(&out);
    assert_schema_valid(&report);
    assert_eq!(report["runs"][0]["verification"]["lost"], 1);
    assert_eq!(report["runs"][0]["verification"]["ok"], false);
}

#[cfg(unix)]
#[test]
fn interrupt_writes_a_partial_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    // Once the first run is measuring: its first progress line.
    let args = [
        "run".as_ref(),
        scenario.as_os_str(),
        "--duration".as_ref(),
        "30s".as_ref(),
        "--warmup".as_ref(),
        "0s".as_ref(),
        "--progress-interval".as_ref(),
        "0.5".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    let mut child = interrupt_when(&args, |line| line.starts_with("  journal_mode=wal"));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let report = read_json(&out);
    assert_schema_valid(&report);
    assert_eq!(report["status"], "interrupted");
    let run = &report["runs"][0];
    assert_eq!(run["status"], "interrupted");
    assert!(run["groups"][0]["transactions"]["committed"].as_u64().unwrap() > 0);
    assert_eq!(run["verification"]["ok"], true);
    assert_eq!(
        report["runs"].as_array().unwrap().len(),
        1,
        "the second run must not start"
    );
}
