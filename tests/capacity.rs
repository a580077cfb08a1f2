//! `litehammer capacity` through the real binary: the search ends within its budget with
//! every step in the report, a configuration that never meets its objectives says so, and
//! bad input names the flag. No test asserts a timing or a capacity figure.

mod common;

use common::*;
use serde_json::Value;

const KV: &str = r#"
name = "cap"
duration = "1s"
warmup = "0s"
seed = 3

[setup]
sql = "CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT); INSERT INTO kv VALUES (1, 'taken');"
populate = [{ table = "kv", rows = 50, values = ["text(5)"] }]

[[group]]
name = "web"
workers = 2

[[group.op]]
name = "get"
sql = "SELECT v FROM kv WHERE id = ?1"
params = ["uniform(1, 50)"]
"#;

fn capacity(text: &str, extra: &[&str]) -> (Option<i32>, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cap.toml", text);
    let out = dir.path().join("r.json");
    let output = bin()
        .arg("capacity")
        .arg(&path)
        .arg("--db-dir")
        .arg(dir.path())
        .args(["-o"])
        .arg(&out)
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let report = if out.exists() { read_json(&out) } else { Value::Null };
    (output.status.code(), report, stderr)
}

#[test]
fn the_search_stays_within_its_budget_and_records_every_step() {
    let (code, report, stderr) = capacity(
        KV,
        &[
            "--slo",
            "p99<500ms",
            "--budget",
            "6s",
            "--step",
            "300ms",
            "--step-warmup",
            "0s",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_schema_valid(&report);
    let cap = &report["capacity"];
    assert_eq!(cap["slo"][0], "p99 < 500ms");
    let configs = cap["configurations"].as_array().unwrap();
    assert_eq!(configs.len(), 1);
    let steps = configs[0]["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    // The budget of 6 s holds at most 6 / 0.3 steps of 300 ms (steps at low rates are longer).
    assert!(steps.len() <= 20, "{} steps", steps.len());
    let capacity = configs[0]["capacity_per_s"].as_f64().unwrap();
    // The capacity is a rate that passed (or 0), never one that failed.
    if capacity > 0.0 {
        assert!(
            steps
                .iter()
                .any(|s| s["offered_per_s"] == configs[0]["capacity_per_s"] && s["passed"] == true),
            "{configs:?}"
        );
        // The run at the capacity is in `runs`, for the usual views.
        assert_eq!(report["runs"].as_array().unwrap().len(), 1);
    }
    for s in steps.iter().filter(|s| s["passed"] == false) {
        assert!(s["failed"].as_str().is_some(), "a failed step says why: {s}");
    }
    assert!(!report["verdict"].as_array().unwrap().is_empty());
}

#[test]
fn a_configuration_that_never_meets_its_objectives_has_capacity_zero_and_a_reason() {
    // Every request violates the primary key: the error objective never holds.
    let failing = KV.replace(
        "sql = \"SELECT v FROM kv WHERE id = ?1\"\nparams = [\"uniform(1, 50)\"]",
        "sql = \"INSERT INTO kv(id, v) VALUES (1, 'again')\"",
    );
    let (code, report, stderr) = capacity(
        &failing,
        &[
            "--slo",
            "errors<1%",
            "--budget",
            "20s",
            "--step",
            "200ms",
            "--step-warmup",
            "0s",
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let config = &report["capacity"]["configurations"][0];
    assert_eq!(config["capacity_per_s"], 0.0, "{config}");
    assert!(
        config["reason"].as_str().unwrap().contains("errors"),
        "{}",
        config["reason"]
    );
    assert!(config["steps"].as_array().unwrap().iter().all(|s| s["passed"] == false));
    assert!(report["runs"].as_array().unwrap().is_empty());
    let verdict = report["verdict"].as_array().unwrap();
    assert!(
        verdict.iter().any(|l| l.as_str().unwrap().contains("no rate met them")),
        "{verdict:?}"
    );
}

#[test]
fn bad_capacity_input_names_the_flag() {
    for (args, flag) in [
        (&["--slo", "p100<1s"][..], "--slo"),
        (&["--slo", "p99<fast"][..], "--slo"),
        (&["--slo", "errors<2"][..], "--slo"),
        (&["--slo", "p99<1s", "--budget", "0s"][..], "--budget"),
        (&["--slo", "p99<1s", "--step", "1ms"][..], "--step"),
        (&["--slo", "p99<1s", "--resolution", "0"][..], "--resolution"),
        (&["--slo", "p99<1s", "--start-rate", "-5"][..], "--start-rate"),
        (&["--slo", "p99<1s", "--rate", "100"][..], "--rate"),
        (&[][..], "--slo"),
    ] {
        let out = bin()
            .arg("capacity")
            .arg("kv")
            .args(args)
            .arg("--yes")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} should name {flag}: {stderr}");
    }
}
