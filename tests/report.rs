//! Reports rendered from saved JSON, `run --repeat` and `run --export-*`, driving the real binary.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report.json")
}

#[test]
fn report_renders_markdown_to_stdout() {
    bin()
        .args(["report", "--format", "md"])
        .arg(fixture())
        .assert()
        .success()
        .stdout(predicate::str::contains("## Environment"))
        .stdout(predicate::str::contains(
            "| configuration | tx/s | vs baseline | p50 | p99 | p99.9 | max | errors | verified |",
        ))
        .stdout(predicate::str::contains(
            "| journal_mode=wal,synchronous=normal ★ | 30,911 | baseline |",
        ));
}

#[test]
fn report_json_round_trips_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.json");
    bin()
        .args(["report", "--format", "json", "-o"])
        .arg(&out)
        .arg(fixture())
        .assert()
        .success()
        .stdout("");
    let copy = read_json(&out);
    assert_schema_valid(&copy);
    assert_eq!(copy, read_json(&fixture()));
}

#[test]
fn report_rejects_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = write(dir.path(), "x.json", "this is not json");
    let mut other = read_json(&fixture());
    other["schema"] = Value::from("someone.else/3");
    let other_schema = write(dir.path(), "other.json", &other.to_string());
    let mut broken = read_json(&fixture());
    broken["runs"][0]["groups"] = Value::from("nope");
    let broken = write(dir.path(), "broken.json", &broken.to_string());
    let cases: [(&Path, &str); 4] = [
        (&dir.path().join("missing.json"), "cannot read"),
        (&not_json, "not JSON"),
        (&other_schema, "schema `someone.else/3` is not `litehammer.report/1`"),
        (&broken, "not a valid litehammer.report/1 report"),
    ];
    for (path, message) in cases {
        bin()
            .arg("report")
            .arg(path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains(path.file_name().unwrap().to_str().unwrap()));
    }
    bin()
        .args(["report", "--baseline", "journal_mode=off"])
        .arg(fixture())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--baseline journal_mode=off: no configuration matches",
        ));
}

#[test]
fn run_repeat_records_each_repetition_and_exports_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    let md = dir.path().join("r.md");
    bin()
        .arg("run")
        .arg(&scenario)
        .args([
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--matrix",
            "journal_mode=wal,delete",
        ])
        .args(["--repeat", "2", "-q", "--db-dir"])
        .arg(dir.path())
        .arg("-o")
        .arg(&out)
        .arg("--export-markdown")
        .arg(&md)
        .assert()
        .success();
    let report = read_json(&out);
    assert_schema_valid(&report);
    let runs: Vec<(String, u64)> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["repeat"].as_u64().unwrap()))
        .collect();
    let expected = [
        ("journal_mode=wal", 1),
        ("journal_mode=wal", 2),
        ("journal_mode=delete", 1),
        ("journal_mode=delete", 2),
    ];
    assert_eq!(runs, expected.map(|(id, k)| (id.to_string(), k)));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| configuration | runs | tx/s | tx/s range |"), "{text}");
    assert!(text.contains("× 2 repeats"), "{text}");
    let wal_row = text.lines().find(|l| l.starts_with("| journal_mode=wal")).unwrap();
    assert!(
        wal_row.contains("| 2 |") && wal_row.contains(" ± ") && wal_row.contains("ok ×2"),
        "{wal_row}"
    );
    // The Markdown exported by `run` is what `report` renders from the saved JSON.
    bin().arg("report").arg(&out).assert().success().stdout(text);
}

#[test]
fn run_without_repeat_has_no_repeat_field() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(&scenario)
        .args([
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--matrix",
            "journal_mode=wal",
            "-q",
        ])
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let report = read_json(&out);
    assert_schema_valid(&report);
    assert!(report["runs"][0].get("repeat").is_none());
}

#[test]
fn run_rejects_an_unknown_baseline_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(&scenario)
        .args(["--baseline", "journal_mode=truncate", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("journal_mode=wal; journal_mode=delete"));
    assert!(!out.exists());
}
