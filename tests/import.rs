//! `litehammer import` on a hand-written trace (tests/fixtures/import/make_web_trace.py):
//! the expected scripts, weights, app time and workers; bad input is exit 2 naming the line.

mod common;

use common::bin;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/web.jsonl")
}

fn import(args: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("web.toml");
    bin()
        .arg("import")
        .arg(fixture())
        .arg("-o")
        .arg(&out)
        .args(args)
        .assert()
        .success();
    let text = std::fs::read_to_string(&out).unwrap();
    (dir, text)
}

fn toml_of(text: &str) -> toml::Value {
    toml::Value::Table(toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}")))
}

#[test]
fn hand_written_trace_gives_its_scripts_weights_app_time_and_workers() {
    let (_dir, text) = import(&[]);
    let v = toml_of(&text);
    let groups = v["group"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "the set-up process is not a group:\n{text}");
    let g = &groups[0];
    assert_eq!(g["workers"].as_integer(), Some(2));
    assert_eq!(g["isolation"].as_str(), Some("process"));
    assert_eq!(g["connection"].as_str(), Some("persistent"));
    assert_eq!(g["transaction"].as_str(), Some("none"));
    assert_eq!(g["think_time"].as_str(), Some("100ms"));
    let scripts = g["script"].as_array().unwrap();
    assert_eq!(scripts.len(), 2);
    let (view, comment) = (&scripts[0], &scripts[1]);
    assert_eq!(view["weight"].as_integer(), Some(6));
    assert_eq!(comment["weight"].as_integer(), Some(2));
    let steps = view["steps"].as_array().unwrap();
    assert_eq!(
        steps[0]["sql"].as_str(),
        Some("SELECT id, title, views FROM post WHERE id = ?1")
    );
    // In order per worker: worker 100 read posts 1-3, worker 101 posts 4-6.
    assert_eq!(steps[0]["params"][0].as_str(), Some("replay(1, 2, 3, 4, 5, 6)"));
    assert_eq!(steps[1]["begin"].as_str(), Some("immediate"));
    assert_eq!(steps[1]["app_time"].as_str(), Some("2ms"));
    assert_eq!(
        steps[2]["sql"].as_str(),
        Some("UPDATE post SET views = views + 1 WHERE id = ?1")
    );
    assert_eq!(steps[2]["params"][0].as_str(), Some("$0.id"), "the row step 0 read");
    assert_eq!(steps[3]["commit"].as_bool(), Some(true));
    let csteps = comment["steps"].as_array().unwrap();
    assert_eq!(csteps.len(), 1);
    assert_eq!(csteps[0]["params"][1].as_str(), Some("replay('it''s 0', 'it''s 1')"));
    // Settings, schema, populate.
    assert_eq!(v["sqlite"]["busy_timeout"].as_str(), Some("3000ms"));
    assert_eq!(v["matrix"]["journal_mode"], toml_of("x = ['wal', 'delete']")["x"]);
    assert_eq!(v["matrix"]["synchronous"], toml_of("x = ['normal', 'full']")["x"]);
    let sql = v["setup"]["sql"].as_str().unwrap();
    assert!(
        sql.contains("CREATE TABLE post(") && sql.contains("CREATE TABLE comment("),
        "{sql}"
    );
    let pop = &v["setup"]["populate"][0];
    assert_eq!(pop["table"].as_str(), Some("post"));
    assert_eq!(pop["rows"].as_integer(), Some(5));
}

#[test]
fn model_params_fit_generators() {
    let (_dir, text) = import(&["--params", "model"]);
    let v = toml_of(&text);
    let scripts = v["group"][0]["script"].as_array().unwrap();
    assert_eq!(scripts[0]["steps"][0]["params"][0].as_str(), Some("uniform(1, 6)"));
    assert_eq!(scripts[1]["steps"][0]["params"][0].as_str(), Some("uniform(1, 2)"));
    assert_eq!(scripts[1]["steps"][0]["params"][1].as_str(), Some("text(6)"));
    assert!(!text.contains("replay("), "{text}");
}

#[test]
fn db_file_gives_schema_and_row_counts_and_is_not_modified() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE post(id INTEGER PRIMARY KEY, title TEXT NOT NULL, views INTEGER NOT NULL DEFAULT 0);
         CREATE TABLE comment(id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL, body TEXT NOT NULL);
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 40)
         INSERT INTO post(title, views) SELECT 'title ' || v, v % 5 FROM s;",
    )
    .unwrap();
    drop(c);
    let before = std::fs::read(&db).unwrap();
    let (_d, text) = import(&["--db", db.to_str().unwrap()]);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let v = toml_of(&text);
    let pop = v["setup"]["populate"].as_array().unwrap();
    assert_eq!(pop.len(), 1, "{text}");
    assert_eq!(pop[0]["rows"].as_integer(), Some(40));
    assert_eq!(pop[0]["values"][1].as_str(), Some("uniform(0, 4)"));
}

fn import_err(trace_text: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("bad.jsonl");
    std::fs::write(&trace, trace_text).unwrap();
    let out = bin()
        .arg("import")
        .arg(&trace)
        .arg("-o")
        .arg(dir.path().join("x.toml"))
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!dir.path().join("x.toml").exists());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_traces_and_flags_are_input_errors_naming_file_and_line() {
    let good = std::fs::read_to_string(fixture()).unwrap();
    let cut = &good[..good.len() - 40];
    let err = import_err(cut, &[]);
    let last = cut.lines().count();
    assert!(
        err.contains(&format!("bad.jsonl:{last}:1")) && err.contains("truncated"),
        "{err}"
    );
    let mut newer: Vec<&str> = good.lines().collect();
    let line7 = newer[6].replacen("\"v\":1", "\"v\":2", 1);
    newer[6] = &line7;
    let err = import_err(&(newer.join("\n") + "\n"), &[]);
    assert!(
        err.contains("bad.jsonl:7:1") && err.contains("version 2 is newer"),
        "{err}"
    );
    let err = import_err(&good, &["--params", "guess"]);
    assert!(
        err.contains("guess") && err.contains("replay") && err.contains("model"),
        "{err}"
    );
    let err = import_err("{\"v\":1,\"kind\":\"header\",\"pid\":1}\n", &[]);
    assert!(err.contains("no events"), "{err}");
}

/// The imported scenario is written in the application model's keys (isolation,
/// connection, think_time, app_time, begin/commit steps); it validates and runs verified.
#[test]
fn imported_scenario_validates_and_runs() {
    let (dir, _text) = import(&[]);
    let scenario = dir.path().join("web.toml");
    let out = bin().arg("validate").arg(&scenario).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    bin()
        .arg("run")
        .arg(&scenario)
        .args(["--duration", "300ms", "--warmup", "0s", "--no-probe", "-q"])
        .args(["--matrix", "journal_mode=wal", "--matrix", "synchronous=normal"])
        .arg("-o")
        .arg(dir.path().join("r.json"))
        .arg("--db-dir")
        .arg(dir.path())
        .assert()
        .success();
}
