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
        assert_eq!(run["durability"]["seed"], 5);
        assert_eq!(run["durability"]["kill_within_ms"], 30.0);
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
        &["--model", "durable,lucky"],
        &["--transactions", "0"],
        &["--method", "kill", "--cross-check"],
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

fn per_trial(report: &Value) -> Vec<Value> {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|run| results(run).iter().map(|r| r["per_trial"].clone()))
        .collect()
}

#[test]
fn synchronous_off_loses_acknowledged_commits_on_power_loss_and_the_seed_reproduces_trials() {
    let args = [
        "--method",
        "power-loss",
        "--model",
        "durable",
        "--trials",
        "8",
        "--transactions",
        "15",
        "--seed",
        "3",
        "--matrix",
        "journal_mode=wal,delete",
        "--matrix",
        "synchronous=off",
    ];
    let (_dir, first, stdout) = crash(&args);
    assert!(stdout.contains("power-loss/durable"), "{stdout}");
    for run in first["runs"].as_array().unwrap() {
        let durable = &results(run)[0];
        assert_eq!(
            (durable["method"].as_str(), durable["model"].as_str()),
            (Some("power-loss"), Some("durable"))
        );
        assert!(
            durable["trials_losing"].as_u64().unwrap() > 0,
            "{}: {durable}",
            run["id"]
        );
        assert!(durable["max_lost"].as_u64().unwrap() > 0);
        // Acknowledged means COMMIT returned OK before the cut.
        assert!(durable["acknowledged_total"].as_u64().unwrap() > 0);
    }
    let (_dir2, second, _) = crash(&args);
    assert_eq!(
        per_trial(&first),
        per_trial(&second),
        "same seed, same per-trial results"
    );
    let (_dir3, other_seed, _) = crash(
        &[
            &args[..args.len() - 5],
            &[
                "4",
                "--matrix",
                "journal_mode=wal,delete",
                "--matrix",
                "synchronous=off",
            ],
        ]
        .concat(),
    );
    assert_ne!(per_trial(&first), per_trial(&other_seed), "the seed matters");
}

#[test]
fn synced_configurations_keep_every_commit_under_the_durable_model() {
    let (_dir, report, _) = crash(&[
        "--method",
        "power-loss",
        "--model",
        "durable",
        "--trials",
        "10",
        "--transactions",
        "10",
        "--matrix",
        "journal_mode=wal,delete",
        "--matrix",
        "synchronous=extra",
    ]);
    for run in report["runs"].as_array().unwrap() {
        let r = &results(run)[0];
        assert_eq!(r["trials_losing"], 0, "{}: {r}", run["id"]);
        assert_eq!(r["integrity_failures"], 0);
        assert_eq!(r["silent_damage"], 0);
    }
}

#[test]
fn cross_check_with_the_unix_vfs_agrees_for_every_model() {
    let (_dir, report, stdout) = crash(&[
        "--method",
        "power-loss",
        "--trials",
        "6",
        "--transactions",
        "10",
        "--cross-check",
        "--matrix",
        "journal_mode=truncate,wal,memory",
        "--matrix",
        "synchronous=normal",
    ]);
    assert!(stdout.contains("agrees"), "{stdout}");
    for run in report["runs"].as_array().unwrap() {
        let models: Vec<&str> = results(run).iter().map(|r| r["model"].as_str().unwrap()).collect();
        assert_eq!(models, ["durable", "reorder", "torn"]);
        for r in results(run) {
            assert_eq!(r["cross_check"]["compared"], 6, "{r}");
            assert_eq!(r["cross_check"]["mismatches"], 0, "{}: {r}", run["id"]);
        }
    }
}

#[test]
fn replay_prints_the_trace_of_one_trial() {
    let assert = bin()
        .args([
            "crash",
            "--matrix",
            "journal_mode=wal",
            "--matrix",
            "synchronous=normal",
            "--transactions",
            "5",
            "--replay",
            "journal_mode=wal,synchronous=normal:torn:2",
        ])
        .assert()
        .success();
    let out = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    assert!(out.contains("power cut here"), "{out}");
    let again = bin()
        .args([
            "crash",
            "--matrix",
            "journal_mode=wal",
            "--matrix",
            "synchronous=normal",
        ])
        .args([
            "--transactions",
            "5",
            "--replay",
            "journal_mode=wal,synchronous=normal:torn:2",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), out, "a replay is reproducible");
    assert!(out.contains("ledger.db-wal"), "{out}");
    assert!(out.contains("\"trial\":2"), "{out}");
    bin()
        .args(["crash", "--replay", "journal_mode=nope:torn:2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no configuration"));
    bin()
        .args(["crash", "--replay", "journal_mode=wal,synchronous=normal:melted:2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown crash model"));
}

#[test]
fn beside_joins_a_run_report_of_the_same_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let run_json = dir.path().join("run.json");
    bin()
        .arg("run")
        .arg(&scenario)
        .args(["--duration", "300ms", "--warmup", "0s", "-q", "--db-dir"])
        .arg(dir.path())
        .arg("--output")
        .arg(&run_json)
        .assert()
        .success();
    let crash_json = dir.path().join("crash.json");
    let assert = bin()
        .args(["crash", "--method", "power-loss", "--model", "durable", "--trials", "3"])
        .args([
            "--transactions",
            "5",
            "--matrix",
            "journal_mode=wal,delete",
            "--matrix",
            "synchronous=full",
        ])
        .arg("--beside")
        .arg(&run_json)
        .arg("--output")
        .arg(&crash_json)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let beside = stdout
        .split("beside tiny (tx/s and p99 of its group `writers`):")
        .nth(1)
        .unwrap_or_else(|| panic!("{stdout}"));
    for mode in ["wal", "delete"] {
        let line = beside
            .lines()
            .find(|l| l.starts_with(&format!("journal_mode={mode},synchronous=full")))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains("1.00×") && line.contains("power-loss/durable"), "{line}");
    }
    // A crash report is not a run report.
    bin()
        .args(["crash", "--beside"])
        .arg(&crash_json)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no measured runs"));
}
