mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

/// Runs `litehammer crash` with the given flags in a temp dir; returns the report.
fn crash(args: &[&str]) -> (tempfile::TempDir, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crash.json");
    let assert = bin()
        .arg("crash")
        .args(args)
        .arg("--db-dir")
        .arg(dir.path())
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let report = read_json(&out);
    assert_schema_valid(&report);
    (dir, report, stdout)
}

fn results(run: &Value) -> &Vec<Value> {
    run["durability"]["results"].as_array().expect("durability results")
}

#[test]
fn kill_trials_produce_a_valid_report_and_table() {
    let (dir, report, stdout) = crash(&[
        "--method",
        "kill",
        "--trials",
        "3",
        "--seed",
        "5",
        "--matrix",
        "journal_mode=wal,delete",
        "--matrix",
        "synchronous=normal",
        "--kill-within",
        "30ms",
    ]);
    assert!(stdout.contains("journal_mode=wal,synchronous=normal"), "{stdout}");
    assert!(stdout.contains("trials losing acked"), "{stdout}");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, mode) in runs.iter().zip(["wal", "delete"]) {
        assert_eq!(run["sqlite"]["journal_mode"], mode);
        assert_eq!(run["status"], "completed");
        let kill = &results(run)[0];
        assert_eq!(kill["method"], "kill");
        assert_eq!(kill["trials"], 3);
        assert_eq!(kill["per_trial"].as_array().unwrap().len(), 3);
        // A process crash loses nothing the OS accepted: SQLite's writes are in the page cache.
        assert_eq!(kill["trials_losing"], 0, "{kill}");
        assert_eq!(kill["integrity_failures"], 0, "{kill}");
    }
    // Every crash database lives in a subdirectory the command created, and is removed after.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "crash.json")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn bad_crash_input_exits_2() {
    let cases: &[&[&str]] = &[
        &["--trials", "0"],
        &["--method", "meteor"],
        &["--set", "group.ledger.workers=4"],
        &["--matrix", "duration=1s,2s"],
        &["--matrix", "journal_mode=wall"],
    ];
    for args in cases {
        bin()
            .arg("crash")
            .args(*args)
            .assert()
            .code(2)
            .stderr(predicate::str::is_empty().not());
    }
}
