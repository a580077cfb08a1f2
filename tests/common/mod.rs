#![allow(dead_code)]
//! Helpers shared by the integration tests: they drive the real binary.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("litehammer").expect("binary builds");
    cmd.env_remove("LITEHAMMER_FAULT");
    cmd
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// A small scenario: 2 writers (2 statements per IMMEDIATE transaction), 1 reader, 1 s.
pub const TINY: &str = r#"
name = "tiny"
description = "test scenario"
duration = "1s"
warmup = "200ms"
seed = 7

[sqlite]
busy_timeout = "2s"

[matrix]
journal_mode = ["wal", "delete"]

[setup]
sql = "CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);"
populate = [{ table = "kv", rows = 100, values = ["uniform(1, 100)", "text(10)"] }]

[[group]]
name = "writers"
workers = 2
transaction = "immediate"
statements_per_transaction = 2

[[group.op]]
name = "put"
sql = "INSERT INTO kv(k, v) VALUES (?1, ?2)"
params = ["seq()", "text(5, 20)"]

[[group.op]]
name = "touch"
sql = "UPDATE kv SET v = ?2 WHERE id = ?1"
params = ["uniform(1, 100)", "text(3)"]

[[group]]
name = "readers"
workers = 1
transaction = "none"

[[group.op]]
name = "get"
sql = "SELECT v FROM kv WHERE id = ?1"
params = ["uniform(1, 100)"]
"#;

/// The ids of a report's runs, in order.
pub fn run_ids(report: &Value) -> Vec<&str> {
    report["runs"]
        .as_array()
        .expect("the report has runs")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// An array of strings of a report (`verdict`, `findings`); empty when absent.
pub fn strings<'a>(report: &'a Value, key: &str) -> Vec<&'a str> {
    report[key]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().expect("a string")).collect())
        .unwrap_or_default()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

/// Fails the test with every schema violation listed.
pub fn assert_schema_valid(report: &Value) {
    let schema_text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&schema_text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match schema/report.schema.json:\n{}",
        errors.join("\n")
    );
}

pub fn histogram_len(encoded: &Value) -> u64 {
    litehammer::testing::decode_histogram(encoded.as_str().expect("histogram is a string"))
        .expect("histogram decodes")
        .len()
}

/// Flags for the shortest useful run of `TINY`: one configuration, 300 ms, no warm-up.
pub const SHORT_WAL: [&str; 6] = ["--duration", "300ms", "--warmup", "0s", "--matrix", "journal_mode=wal"];

/// Runs `TINY` with `extra` flags in a temp dir (databases there too); the report must
/// validate. Returns the dir (keep it alive), the report and stdout.
pub fn run_tiny(extra: &[&str]) -> (tempfile::TempDir, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("report.json");
    let assert = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--output")
        .arg(&out)
        .arg("--db-dir")
        .arg(dir.path())
        .args(extra)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let report = read_json(&out);
    assert_schema_valid(&report);
    (dir, report, stdout)
}

/// Starts `litehammer ARGS…` (stdout discarded, stderr piped), waits for the first stderr line
/// for which `measuring` holds (a progress line: the run is measuring), and sends SIGINT.
/// The rest of stderr is drained in the background; the caller waits for the exit.
pub fn interrupt_when(args: &[&std::ffi::OsStr], measuring: impl Fn(&str) -> bool) -> std::process::Child {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("litehammer"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let seen = stderr.by_ref().map_while(Result::ok).any(|line| measuring(&line));
    assert!(seen, "no progress line before the process ended");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::spawn(move || stderr.for_each(drop));
    child
}
