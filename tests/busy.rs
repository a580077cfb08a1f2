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

/// A holder keeps the write lock (a 60 s stall inside an IMMEDIATE transaction) while a
/// waiter with `busy_timeout = "30s"` sits in the busy handler. `waiter` is the waiter's
/// group options: empty for the plain loop, app-model keys for the request loop.
fn held_lock_scenario(waiter: &str) -> String {
    format!(
        r#"
name = "held"
duration = "120s"
warmup = "0s"

[sqlite]
journal_mode = "wal"
busy_timeout = "30s"

[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER);"

[[group]]
name = "holder"
workers = 1
transaction = "immediate"

[[group.op]]
name = "hold"
sql = "SELECT lh_sleep(60000)"

[[group]]
name = "waiter"
workers = 1
transaction = "immediate"
{waiter}

[[group.op]]
name = "put"
sql = "INSERT INTO t(v) VALUES (1)"
"#
    )
}

/// Runs the held-lock scenario, sends SIGINT once both workers are measuring, and returns
/// the exit code and the report. The run must end on the signal, not on the 30 s busy
/// timeout nor the 60 s stall: the child is killed (and the test fails) if it has not ended
/// after 25 s.
fn interrupt_while_waiting_for_the_lock(waiter: &str) -> (Option<i32>, Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "held.toml", &held_lock_scenario(waiter));
    let out = dir.path().join("r.json");
    // Once both workers are measuring; the holder took the lock first or will soon, and
    // the waiter sits in the busy handler.
    let args = [
        "run".as_ref(),
        path.as_os_str(),
        "--db-dir".as_ref(),
        dir.path().as_os_str(),
        "--no-probe".as_ref(),
        "--progress-interval".as_ref(),
        "0.5".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    let mut child = interrupt_when(&args, |line| {
        line.trim_start().starts_with("default") && line.contains("waiter")
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(25);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run did not end on SIGINT: it waited out the busy timeout or the stall");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    (status.code(), read_json(&out))
}

fn assert_interrupted_and_verified(code: Option<i32>, report: &Value) {
    assert_eq!(code, Some(130));
    assert_schema_valid(report);
    let run = &report["runs"][0];
    assert_eq!(run["status"], "interrupted", "{run}");
    assert_eq!(run["verification"]["ok"], true, "{}", run["verification"]);
}

#[test]
fn ctrl_c_ends_a_long_busy_wait_in_the_plain_loop() {
    let (code, report) = interrupt_while_waiting_for_the_lock("");
    assert_interrupted_and_verified(code, &report);
    assert!(report["runs"][0]["groups"][1]["app"].is_null());
}

#[test]
fn ctrl_c_ends_a_long_busy_wait_in_the_request_loop() {
    let (code, report) = interrupt_while_waiting_for_the_lock("app_time = \"1ms\"");
    assert_interrupted_and_verified(code, &report);
    assert!(!report["runs"][0]["groups"][1]["app"].is_null());
}
