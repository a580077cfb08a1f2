//! Busy-handler strategies, metric checks and the writer sweep.

mod common;

use common::*;
use serde_json::Value;

fn run(args: &[&str]) -> (Value, i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let output = bin()
        .arg("run")
        .args(args)
        .args(["--warmup", "0s", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let report = read_json(&out);
    assert_schema_valid(&report);
    (report, output.status.code().unwrap_or(-1), stdout)
}

fn writers(report: &Value, run: usize) -> &Value {
    &report["runs"][run]["groups"][0]
}

fn busy_errors(g: &Value) -> u64 {
    let op: u64 = g["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["errors"]["busy"].as_u64().unwrap())
        .sum();
    op + g["transactions"]["errors"]["busy"].as_u64().unwrap()
}

#[test]
fn no_handler_fails_at_once_and_a_fixed_handler_waits_and_counts() {
    let (report, code, stdout) = run(&[
        "busy-handlers",
        "--duration",
        "500ms",
        "--matrix",
        "busy_handler=none,fixed(1ms)",
    ]);
    assert_eq!(code, 0, "metric checks are findings, not failures: {stdout}");
    let none = writers(&report, 0);
    let fixed = writers(&report, 1);
    assert_eq!(report["runs"][0]["sqlite"]["busy_handler"], "none");
    assert_eq!(report["runs"][1]["sqlite"]["busy_handler"], "fixed(1ms)");
    assert!(busy_errors(none) > 0, "{none}");
    assert_eq!(busy_errors(fixed), 0, "{fixed}");
    assert!(fixed["busy_handler_calls"].as_u64().unwrap() > 0, "{fixed}");
    assert!(fixed["busy_wait_ms"].as_f64().unwrap() > 0.0);
    let per_worker: u64 = fixed["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["busy_handler_calls"].as_u64().unwrap())
        .sum();
    assert_eq!(per_worker, fixed["busy_handler_calls"].as_u64().unwrap());
    assert!(stdout.contains("busy handler called"), "{stdout}");
}

#[test]
fn metric_checks_carry_measured_values_and_can_decide_the_exit_code() {
    let (report, code, stdout) = run(&[
        "busy-handlers",
        "--duration",
        "300ms",
        "--matrix",
        "busy_handler=none",
        "--fail-on-check",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let checks = report["runs"][0]["verification"]["scenario_checks"].as_array().unwrap();
    let busy = checks
        .iter()
        .find(|c| c["name"] == "no busy errors")
        .expect("check present");
    assert_eq!(busy["kind"], "metric");
    assert_eq!(busy["ok"], false);
    let measured: u64 = busy["detail"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(measured, busy_errors(writers(&report, 0)));
    let sql = checks.iter().find(|c| c["kind"] == "sql").unwrap();
    assert_eq!(sql["ok"], true, "{sql}");
    assert_eq!(
        report["runs"][0]["verification"]["ok"], true,
        "metric checks do not fail the verification"
    );
    assert!(stdout.contains("does NOT hold"), "{stdout}");
}

#[test]
fn writer_sweep_runs_each_step_and_ends_with_a_finding_per_journal_mode() {
    let (report, code, stdout) = run(&[
        "writer-sweep",
        "--duration",
        "200ms",
        "--matrix",
        "group.writers.workers=1,2,4",
    ]);
    assert_eq!(code, 0, "{stdout}");
    let runs = report["runs"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], "journal_mode=wal,group.writers.workers=1");
    assert_eq!(ids.len(), 6);
    let counts: Vec<usize> = runs
        .iter()
        .map(|r| r["groups"][0]["per_worker"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [1, 2, 4, 1, 2, 4]);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(
        findings[0].as_str().unwrap().starts_with("journal_mode=wal: "),
        "{findings:?}"
    );
    assert!(
        findings[1]
            .as_str()
            .unwrap()
            .contains("writers throughput 1 worker → 4 workers"),
        "{findings:?}"
    );
    assert!(stdout.contains("findings:"), "{stdout}");
}
