//! Open loop (rate), coordinated-omission-free latency, latency limits and the timeline.

mod common;

use common::*;
use serde_json::Value;

/// One worker doing trivial reads at a fixed rate; every 100th read sleeps 300 ms
/// (`lh_sleep`), a stall that delays the reads scheduled behind it.
const PACED: &str = r#"
name = "paced"
duration = "2s"
seed = 1

[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER); INSERT INTO t VALUES (1, 1);"

[[group]]
name = "clients"
workers = 1
transaction = "none"
rate = 100

[[group.op]]
name = "read"
sql = "SELECT v, lh_sleep(CASE WHEN ?1 % 100 = 50 THEN 300 ELSE 0 END) FROM t WHERE id = 1"
params = ["seq(0)"]
"#;

fn run(text: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", text);
    let out = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(&scenario)
        .arg("-o")
        .arg(&out)
        .args(extra)
        .assert()
        .success();
    let report = read_json(&out);
    assert_schema_valid(&report);
    report
}

#[test]
fn a_stall_is_charged_to_every_delayed_transaction_but_not_to_service_time() {
    let report = run(PACED, &[]);
    let group = &report["runs"][0]["groups"][0];
    let open = &group["open_loop"];
    assert_eq!(open["target_rate"], 100.0);
    assert_eq!(open["arrival"], "fixed");
    let intended = &group["transactions"]["latency_us"];
    let service = &open["service_us"];
    // The stall itself (>= 300 ms of sleep) appears in both...
    assert!(intended["max"].as_f64().unwrap() >= 300_000.0, "{intended}");
    assert!(service["max"].as_f64().unwrap() >= 300_000.0, "{service}");
    // ...but only the intended-start latency charges it to the ~30 reads queued behind it.
    let (i90, s90) = (intended["p90"].as_f64().unwrap(), service["p90"].as_f64().unwrap());
    assert!(i90 > 10.0 * s90, "intended p90 {i90} µs vs service p90 {s90} µs");
    assert!(
        open["schedule_lag_us"]["max"].as_f64().unwrap() > 100_000.0,
        "{}",
        open["schedule_lag_us"]
    );
}

#[test]
fn open_loop_achieves_its_target_rate() {
    let text = PACED
        .replace("% 100 = 50", "% 100000 = 99999")
        .replace("rate = 100", "rate = 200");
    let report = run(&text, &["--set", "group.clients.workers=2"]);
    let open = &report["runs"][0]["groups"][0]["open_loop"];
    let achieved = open["achieved_rate"].as_f64().unwrap();
    // The schedule, not the machine, sets the rate: 200/s of trivial reads is far below capacity.
    assert!(
        (180.0..=220.0).contains(&achieved),
        "achieved {achieved}/s for a target of 200/s"
    );
}

#[test]
fn poisson_arrivals_and_the_cli_rate_flag() {
    let text = PACED
        .replace("% 100 = 50", "% 100000 = 99999")
        .replace("rate = 100\n", "");
    let report = run(
        &text,
        &[
            "--rate",
            "150",
            "--set",
            "group.clients.arrival=poisson",
            "--duration",
            "1s",
        ],
    );
    let open = &report["runs"][0]["groups"][0]["open_loop"];
    assert_eq!(open["target_rate"], 150.0);
    assert_eq!(open["arrival"], "poisson");
    assert!(open["achieved_rate"].as_f64().unwrap() > 0.0);
}

#[test]
fn latency_limit_counts_late_and_skip_late_skips() {
    let late = run(PACED, &["--latency-limit", "50ms"]);
    let open = &late["runs"][0]["groups"][0]["open_loop"];
    assert_eq!(open["latency_limit_ms"], 50.0);
    assert!(open["late"].as_u64().unwrap() > 0, "{open}");
    assert_eq!(open["skipped"], 0);
    let skipped = run(PACED, &["--latency-limit", "50ms", "--skip-late"]);
    let open = &skipped["runs"][0]["groups"][0]["open_loop"];
    assert!(open["skipped"].as_u64().unwrap() > 0, "{open}");
}

#[test]
fn timeline_has_an_entry_per_interval_that_adds_up_to_the_totals() {
    let report = run(
        &TINY.replace(
            "duration = \"1s\"",
            "duration = \"1500ms\"\ntimeline_interval = \"500ms\"",
        ),
        &[],
    );
    for run in report["runs"].as_array().unwrap() {
        let timeline = run["timeline"].as_array().unwrap();
        assert!(timeline.len() >= 3, "{} entries", timeline.len());
        assert_eq!(run["timeline_interval_s"], 0.5);
        let timeline_ops: u64 = timeline.iter().map(|e| e["ops"].as_u64().unwrap()).sum();
        let committed: u64 = run["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["transactions"]["committed"].as_u64().unwrap())
            .sum();
        assert_eq!(timeline_ops, committed, "{}", run["id"]);
        let t: Vec<f64> = timeline.iter().map(|e| e["t_s"].as_f64().unwrap()).collect();
        assert!(t.windows(2).all(|w| w[1] > w[0]), "{t:?}");
        assert!(timeline.iter().all(|e| e["db_bytes"].as_u64().unwrap() > 0));
    }
    let wal = &report["runs"][0]["timeline"];
    assert!(
        wal.as_array()
            .unwrap()
            .iter()
            .any(|e| e["wal_frames"].as_u64().unwrap() > 0),
        "{wal}"
    );
}

#[test]
fn bad_rate_settings_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", PACED);
    for args in [vec!["--rate", "-5"], vec!["--skip-late"], vec!["--latency-limit", "0s"]] {
        let out = bin().arg("validate").arg(&scenario).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
