mod common;

use common::*;
use predicates::prelude::*;

#[test]
fn help_and_version() {
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("run").and(predicate::str::contains("validate")));
    bin()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
    bin()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--db-dir"));
}

#[test]
fn lists_builtin_scenarios() {
    bin()
        .arg("list-scenarios")
        .assert()
        .success()
        .stdout(predicate::str::contains("django (default)"));
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            bin()
                .arg("validate")
                .arg(&path)
                .assert()
                .success()
                .stdout(predicate::str::contains(": ok"));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn validate_lists_the_runs_of_the_matrix() {
    bin().args(["validate", "wal-vs-rollback"]).assert().success().stdout(
        predicate::str::contains("4 run(s)").and(predicate::str::contains("journal_mode=delete,synchronous=full")),
    );
}
