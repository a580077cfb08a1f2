//! Each built-in scenario, shortened, shows the effect it exists to show (in the JSON).

mod common;

use common::*;
use serde_json::Value;

fn run_builtin(name: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let output = bin()
        .args(["run", name, "--warmup", "0s", "-o"])
        .arg(&out)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name}: {stderr}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let report = read_json(&out);
    assert_schema_valid(&report);
    for run in report["runs"].as_array().unwrap() {
        assert_eq!(
            run["verification"]["ok"], true,
            "{name} {}: {}",
            run["id"], run["verification"]
        );
    }
    report
}

fn group<'a>(run: &'a Value, name: &str) -> &'a Value {
    run["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == name)
        .unwrap_or_else(|| panic!("no group {name}"))
}

fn op<'a>(group: &'a Value, name: &str) -> &'a Value {
    group["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no op {name}"))
}

fn busy(errors: &Value) -> u64 {
    errors["busy"].as_u64().unwrap() + errors["busy_snapshot"].as_u64().unwrap()
}

fn all_errors(g: &Value) -> u64 {
    let sum = |e: &Value| {
        ["busy", "busy_snapshot", "locked", "constraint", "other"]
            .iter()
            .map(|k| e[*k].as_u64().unwrap())
            .sum::<u64>()
    };
    sum(&g["transactions"]["errors"])
        + g["ops"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| sum(&o["errors"]))
            .sum::<u64>()
}

fn checks(run: &Value) -> Vec<(String, bool)> {
    run["verification"]["scenario_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c["ok"].as_bool().unwrap()))
        .collect()
}

#[test]
fn deferred_read_then_write_gets_busy_and_immediate_does_not() {
    let report = run_builtin("deferred-vs-immediate", &["--duration", "1s"]);
    let runs = report["runs"].as_array().unwrap();
    let deferred = group(&runs[0], "transfer");
    let immediate = group(&runs[1], "transfer");
    assert_eq!(deferred["transaction"], "deferred");
    assert_eq!(immediate["transaction"], "immediate");
    assert!(busy(&op(deferred, "read_then_write")["errors"]) > 0, "{deferred}");
    assert_eq!(all_errors(immediate), 0, "{immediate}");
    assert!(immediate["transactions"]["committed"].as_u64().unwrap() > 0);
    for run in runs {
        assert_eq!(
            checks(run),
            [("no lost update (sum of balances = deposits)".to_string(), true)]
        );
    }
}

#[test]
fn retries_turn_deferred_busy_errors_into_retried_transactions() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/deferred-vs-immediate.toml"
    ))
    .unwrap();
    let text = text.replace(
        "transaction = \"deferred\"\n",
        "transaction = \"deferred\"\nretry = { max_tries = 100, backoff = \"20us\", backoff_max = \"1ms\" }\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "retry.toml", &text);
    let out = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(&path)
        .args([
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--matrix",
            "group.transfer.transaction=deferred",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    let report = read_json(&out);
    assert_schema_valid(&report);
    let tx = &report["runs"][0]["groups"][0]["transactions"];
    let (committed, failed) = (tx["committed"].as_u64().unwrap(), tx["rolled_back"].as_u64().unwrap());
    let (retried, attempts) = (tx["retried"].as_u64().unwrap(), tx["attempts"].as_u64().unwrap());
    assert!(retried > 0, "{tx}");
    assert!(attempts > committed + failed, "{tx}");
    // Every failed attempt was counted as an error on the op.
    let op_busy = busy(&report["runs"][0]["groups"][0]["ops"][0]["errors"]);
    assert_eq!(op_busy + busy(&tx["errors"]), attempts - committed, "{tx}");
}

#[test]
fn job_queue_loses_and_duplicates_nothing() {
    let report = run_builtin("job-queue", &["--duration", "1s"]);
    for run in report["runs"].as_array().unwrap() {
        let names: Vec<(String, bool)> = checks(run);
        assert_eq!(names.len(), 2);
        assert!(names.iter().all(|(_, ok)| *ok), "{names:?}");
        if run["id"] == "journal_mode=wal" {
            // Under the rollback journal the producers can hold the lock for the whole short
            // run (the busy handler is not fair), so only WAL must show claims.
            assert!(
                op(group(run, "consumers"), "claim")["count"].as_u64().unwrap() > 0,
                "{}",
                run["id"]
            );
        }
        let tables: Vec<&str> = run["verification"]["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["table"].as_str().unwrap())
            .collect();
        assert_eq!(tables, ["job", "done"]);
    }
}

#[test]
fn hot_counter_sweeps_writers_and_reports_fairness() {
    let report = run_builtin("hot-counter", &["--duration", "500ms"]);
    let runs = report["runs"].as_array().unwrap();
    let workers: Vec<usize> = runs
        .iter()
        .map(|r| group(r, "writers")["per_worker"].as_array().unwrap().len())
        .collect();
    assert_eq!(workers, [1, 2, 4, 8]);
    for run in runs {
        let fairness = &group(run, "writers")["fairness"];
        let jain = fairness["jain_index"].as_f64().unwrap();
        assert!(jain > 0.0 && jain <= 1.0 + 1e-9, "{fairness}");
        assert!(checks(run).iter().all(|(_, ok)| *ok));
    }
}

#[test]
fn bulk_ingest_batches_statements_per_transaction() {
    let report = run_builtin("bulk-ingest", &["--duration", "500ms"]);
    for (run, batch) in report["runs"].as_array().unwrap().iter().zip([1u64, 10, 100, 1000]) {
        let g = group(run, "loader");
        assert_eq!(g["statements_per_transaction"], batch);
        let committed = g["transactions"]["committed"].as_u64().unwrap();
        let rows = op(g, "insert_event")["count"].as_u64().unwrap();
        assert!(committed > 0);
        assert!(
            rows >= committed * batch && rows < (committed + 1) * batch + batch,
            "{rows} rows, {committed} commits of {batch}"
        );
        assert_eq!(
            run["verification"]["tables"][0]["inserts_acknowledged"]
                .as_u64()
                .unwrap()
                % batch,
            0
        );
    }
}

#[test]
fn kv_mixes_follow_their_weights() {
    let report = run_builtin("kv", &["--duration", "500ms"]);
    let ratios: Vec<f64> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            let g = group(run, "clients");
            let (reads, updates) = (
                op(g, "read")["count"].as_u64().unwrap(),
                op(g, "update")["count"].as_u64().unwrap(),
            );
            assert!(reads > 0);
            updates as f64 / (reads + updates) as f64
        })
        .collect();
    assert!((0.4..0.6).contains(&ratios[0]), "A: {ratios:?}");
    assert!((0.01..0.1).contains(&ratios[1]), "B: {ratios:?}");
    assert_eq!(ratios[2], 0.0, "C: {ratios:?}");
}

#[test]
fn django_blog_visitors_write_their_session_on_every_page_view() {
    let report = run_builtin("django-blog", &["--duration", "1s", "--matrix", "journal_mode=wal"]);
    let run = &report["runs"][0];
    let visitors = group(run, "visitors");
    assert_eq!(visitors["transaction"], "none");
    assert!(op(visitors, "page_view")["count"].as_u64().unwrap() > 0);
    assert_eq!(group(run, "authors")["transaction"], "immediate");
    let tracked: Vec<&str> = run["verification"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(tracked, ["blog_comment"]);
}

#[test]
fn overlapping_readers_starve_checkpoints_and_gaps_let_them_finish() {
    // Readers with gaps at 1 transaction/s: even on a loaded machine, where one long read
    // transaction takes most of a second, there is time between them for a checkpoint.
    let report = run_builtin(
        "checkpoint-starvation",
        &["--duration", "3s", "--matrix", "group.readers.rate=0,1"],
    );
    let runs = report["runs"].as_array().unwrap();
    let resets = |run: &Value| {
        run["timeline"].as_array().unwrap().last().unwrap()["wal_resets"]
            .as_u64()
            .unwrap()
    };
    let wal_max = |run: &Value| run["database"]["wal_bytes_max"].as_u64().unwrap();
    let (overlap, gaps) = (&runs[0], &runs[1]);
    assert_eq!(overlap["id"], "group.readers.rate=0");
    assert!(resets(gaps) > 0, "with gaps the WAL restarts: {}", gaps["timeline"]);
    assert!(
        resets(overlap) < resets(gaps),
        "overlap {} vs gaps {}",
        resets(overlap),
        resets(gaps)
    );
    assert!(
        wal_max(overlap) > wal_max(gaps),
        "overlap {} vs gaps {}",
        wal_max(overlap),
        wal_max(gaps)
    );
    assert!(group(overlap, "readers").get("open_loop").is_none());
    assert_eq!(group(gaps, "readers")["open_loop"]["target_rate"], 1.0);
}

#[test]
fn latest_follows_the_rows_other_workers_insert() {
    let scenario = r#"
name = "latest"
duration = "1s"
[sqlite]
journal_mode = "wal"
# Not about durability: no fsync, so a busy disk cannot stall the writer.
synchronous = "off"
[setup]
sql = "CREATE TABLE event(id INTEGER PRIMARY KEY, body TEXT); CREATE TABLE seen(v INTEGER);"
populate = [{ table = "event", rows = 1000, values = ["text(10)"] }]
[[group]]
name = "writer"
workers = 1
transaction = "none"
# Paced: two writers at full speed would starve one another (the busy handler is unfair).
rate = 300
[[group.op]]
name = "add"
sql = "INSERT INTO event(body) VALUES (?1)"
params = ["text(10)"]
[[group]]
name = "reader"
workers = 1
transaction = "none"
rate = 300
[[group.op]]
name = "note"
sql = "INSERT INTO seen(v) VALUES (?1)"
params = ["latest(event, 50)"]
[[check]]
name = "readers saw rows inserted during the run"
sql = "SELECT (SELECT max(v) FROM seen) > 1000"
expect = 1
[[check]]
name = "never older than the window, never newer than the table"
sql = "SELECT (SELECT min(v) FROM seen) >= 1000 - 50 AND (SELECT max(v) FROM seen) <= (SELECT max(id) FROM event)"
expect = 1
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "latest.toml", scenario);
    let out = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(&path)
        .args(["--warmup", "0s", "--no-probe", "-q", "-o"])
        .arg(&out)
        .assert()
        .success();
    let report = read_json(&out);
    assert_schema_valid(&report);
    assert!(
        checks(&report["runs"][0]).iter().all(|(_, ok)| *ok),
        "{}",
        report["runs"][0]["verification"]
    );
}

#[test]
fn same_seed_same_generated_values() {
    let scenario = r#"
name = "gen"
operations = 300
[setup]
sql = "CREATE TABLE g(a, b, c, d, e, f);"
[[group]]
name = "w"
workers = 1
transaction = "none"
[[group.op]]
name = "ins"
sql = "INSERT INTO g VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
params = ["uniform(1, 1000)", "zipf(1, 1000)", "gaussian(50, 10)", "choice(1, 'x', 2.5)", "text(1, 20)", "blob(1, 8)"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "gen.toml", scenario);
    let dump = |seed: &str| -> Vec<String> {
        let out = dir.path().join(format!("r{seed}.json"));
        bin()
            .arg("run")
            .arg(&path)
            .args(["--seed", seed, "--keep-db", "-q", "--db-dir"])
            .arg(dir.path())
            .arg("-o")
            .arg(&out)
            .assert()
            .success();
        let db = read_json(&out)["runs"][0]["database"]["path"]
            .as_str()
            .unwrap()
            .to_string();
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut stmt = conn
            .prepare("SELECT quote(a)||quote(b)||quote(c)||quote(d)||quote(e)||quote(f) FROM g ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    let first = dump("7");
    assert_eq!(first.len(), 300);
    assert_eq!(first, dump("7"));
    assert_ne!(first, dump("8"));
}
