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
    // Processes on persistent connections whose server the trace does not name: the scenario
    // says keep_alive_inline was not written, and when to set it.
    assert!(g.get("keep_alive_inline").is_none(), "{text}");
    assert!(
        text.contains("keep_alive_inline: not written: the trace does not name the HTTP server"),
        "{text}"
    );
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
    assert_eq!(pop[0]["values"][1].as_str(), Some("choice(0, 1, 2, 3, 4)"));
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
    validate_and_run(dir.path(), &scenario, &["--duration", "300ms"]);
}

/// `validate` passes and a short run (WAL + NORMAL, `length`: `--duration` or
/// `--operations`) succeeds, in `dir`; the report.
fn validate_and_run(dir: &Path, scenario: &Path, length: &[&str]) -> serde_json::Value {
    let out = bin().arg("validate").arg(scenario).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = dir.join("r.json");
    bin()
        .arg("run")
        .arg(scenario)
        .args(length)
        .args(["--warmup", "0s", "--no-probe", "-q"])
        .args(["--matrix", "journal_mode=wal", "--matrix", "synchronous=normal"])
        .arg("-o")
        .arg(&report)
        .arg("--db-dir")
        .arg(dir)
        .assert()
        .success();
    common::read_json(&report)
}

fn cms_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/cms.jsonl")
}

/// The database `cms.jsonl` ran on (built here, never committed): FTS5 with its sync trigger,
/// an R*Tree, composite unique keys (one a WITHOUT ROWID primary key), a view, a generated
/// column, partial and expression indexes, foreign keys.
fn cms_db(dir: &Path) -> PathBuf {
    let db = dir.join("cms.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=wal;
         CREATE TABLE content_type(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
         CREATE TABLE page(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL, views INTEGER NOT NULL DEFAULT 0,
           base_content_type_id INTEGER NOT NULL REFERENCES content_type(id), slug TEXT GENERATED ALWAYS AS (lower(title)) VIRTUAL);
         CREATE UNIQUE INDEX page_title_lower ON page(lower(title));
         CREATE INDEX page_popular ON page(views) WHERE views > 10;
         CREATE VIRTUAL TABLE page_fts USING fts5(title, body, content='page', content_rowid='id');
         CREATE TRIGGER page_ai AFTER INSERT ON page BEGIN
           INSERT INTO page_fts(rowid, title, body) VALUES (new.id, new.title, new.body); END;
         CREATE VIRTUAL TABLE geo USING rtree(id, minx, maxx, miny, maxy);
         CREATE TABLE page_revision(id INTEGER PRIMARY KEY, page_id INTEGER NOT NULL REFERENCES page(id),
           n INTEGER NOT NULL, content TEXT NOT NULL, UNIQUE(page_id, n));
         CREATE TABLE page_log(id INTEGER PRIMARY KEY, page_id INTEGER NOT NULL REFERENCES page(id),
           content_changed INTEGER NOT NULL);
         CREATE TABLE page_lock(page_id INTEGER NOT NULL, locked INTEGER NOT NULL, PRIMARY KEY(page_id)) WITHOUT ROWID;
         CREATE TABLE page_tag(page_id INTEGER NOT NULL REFERENCES page(id), tag TEXT NOT NULL,
           PRIMARY KEY(page_id, tag)) WITHOUT ROWID;
         CREATE VIEW popular AS SELECT id, title FROM page WHERE views > 10;
         INSERT INTO content_type(name) VALUES ('page'), ('news');
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 40)
         INSERT INTO page(title, body, views, base_content_type_id) SELECT 'Title ' || v, 'word' || v || ' text', v % 13, 1 FROM s;
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 40)
         INSERT INTO page_revision(page_id, n, content) SELECT 1 + (v - 1) % 20, 1 + (v - 1) / 20, 'rev' FROM s;
         INSERT INTO page_lock VALUES (1, 0), (2, 1), (3, 0);
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 30)
         INSERT INTO page_tag SELECT 1 + v % 10, 'tag' || (v % 3) FROM s;
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 10)
         INSERT INTO geo SELECT v, v, v + 1, v, v + 2 FROM s;",
    )
    .unwrap();
    db
}

fn import_cms(dir: &Path) -> (String, String) {
    let db = cms_db(dir);
    let out = dir.join("cms.toml");
    let got = bin()
        .arg("import")
        .arg(cms_fixture())
        .arg("--db")
        .arg(&db)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&got.stdout).into_owned();
    assert!(got.status.success(), "{stdout}{}", String::from_utf8_lossy(&got.stderr));
    (std::fs::read_to_string(&out).unwrap(), stdout)
}

fn script<'a>(v: &'a toml::Value, first_sql: &str) -> &'a toml::Value {
    v["group"][0]["script"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["steps"][0]["sql"].as_str().is_some_and(|q| q.contains(first_sql)))
        .unwrap_or_else(|| panic!("no script starting with {first_sql}"))
}

/// #28: the schema as SQLite has it (virtual tables without their shadow tables), the probe on
/// `:memory:` and FTS5's own statements excluded with counts, RAND() mapped, the busy timeout
/// of `sqlite3_busy_timeout` kept, links only with evidence, a self-check with no failure; and
/// the scenario validates and runs with no error and no hand edit.
#[test]
fn a_cms_trace_imports_validates_and_runs_with_no_hand_edits() {
    let dir = tempfile::tempdir().unwrap();
    let (text, stdout) = import_cms(dir.path());
    let v = toml_of(&text);
    // Schema: virtual tables, not their shadow tables, in [setup]; none of them in populate.
    let sql = v["setup"]["sql"].as_str().unwrap();
    for want in [
        "USING fts5",
        "USING rtree",
        "CREATE TRIGGER page_ai",
        "CREATE VIEW popular",
        "WITHOUT ROWID",
    ] {
        assert!(sql.contains(want), "{want} missing:\n{sql}");
    }
    for shadow in [
        "page_fts_data",
        "page_fts_idx",
        "page_fts_config",
        "page_fts_docsize",
        "geo_node",
        "geo_parent",
        "geo_rowid",
    ] {
        assert!(!text.contains(shadow), "shadow table {shadow} in the scenario:\n{text}");
    }
    let populated: Vec<&str> = v["setup"]["populate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["table"].as_str().unwrap())
        .collect();
    assert_eq!(populated, ["content_type", "page", "page_lock"], "{text}");
    assert!(sql.contains("INSERT OR IGNORE INTO \"page_revision\""), "{sql}");
    assert!(
        stdout.contains("virtual tables are created empty") && stdout.contains("--from-db"),
        "{stdout}"
    );
    // Traffic that is not the app's: counted, not replayed.
    assert!(
        stdout.contains("10 statement(s) excluded")
            && stdout.contains("6 SQLite's own")
            && stdout.contains("4 on an in-memory or temporary database"),
        "{stdout}"
    );
    assert!(!text.contains("fts5test") && !text.contains("'main'."), "{text}");
    assert_eq!(v["group"][0]["script"].as_array().unwrap().len(), 2, "{text}");
    // Connection state: the busy timeout the app set through the C API; RAND() mapped.
    assert_eq!(v["sqlite"]["busy_timeout"].as_str(), Some("30000ms"));
    assert_eq!(v["sqlite"]["foreign_keys"].as_bool(), Some(true));
    let publish = script(&v, "ORDER BY");
    let pick = publish["steps"][0]["sql"].as_str().unwrap();
    assert!(pick.contains("random()") && !pick.contains("RAND("), "{pick}");
    // Links: the view's UPDATE takes the row step 0 read (6 requests, 6 values, a row each).
    let view = script(&v, "SELECT id, title, views FROM page");
    assert_eq!(view["steps"][2]["params"][0].as_str(), Some("$0.id"));
    // content_changed = 1 equals base_content_type_id in every request: a constant, not a link;
    // page_id is not taken from the page_lock lookup that found no row, but from the page read.
    let steps = publish["steps"].as_array().unwrap();
    let log = steps
        .iter()
        .find(|s| {
            s.get("sql")
                .and_then(|q| q.as_str())
                .is_some_and(|q| q.contains("page_log"))
        })
        .unwrap();
    assert_eq!(log["params"][0].as_str(), Some("$2.id"), "{text}");
    assert_eq!(log["params"][1].as_integer(), Some(1), "{text}");
    let revision = steps
        .iter()
        .find(|s| {
            s.get("sql")
                .and_then(|q| q.as_str())
                .is_some_and(|q| q.contains("page_revision"))
        })
        .unwrap();
    assert_eq!(revision["params"][0].as_str(), Some("$2.id"), "{text}");
    assert!(
        revision["params"][1].as_str().is_some_and(|p| p.starts_with("seq(")),
        "{text}"
    );
    assert!(text.contains("step returned a row in every one"), "{text}");
    // The new revision's id, returned by INSERT … RETURNING (the trace's rowid), is linked, not
    // replayed: the run's insert makes another id.
    let inserted = steps
        .iter()
        .position(|s| {
            s.get("sql")
                .and_then(|q| q.as_str())
                .is_some_and(|q| q.contains("RETURNING id"))
        })
        .unwrap();
    let reread = &steps[inserted + 1];
    assert!(
        reread["sql"]
            .as_str()
            .unwrap()
            .starts_with("SELECT id, n FROM page_revision")
    );
    assert_eq!(
        reread["params"][0].as_str(),
        Some(format!("${inserted}.id").as_str()),
        "{text}"
    );
    assert!(text.contains("inserted (its RETURNING id) in all "), "{text}");
    // Savepoints named per thread and call (`"s201_x41"`) get one name, so the requests stay one kind.
    assert!(
        text.contains(r#"{ sql = 'SAVEPOINT "sp"' }"#) && text.contains(r#"{ sql = 'RELEASE SAVEPOINT "sp"' }"#),
        "{text}"
    );
    assert!(!text.contains("s201_x") && !text.contains("s202_x"), "{text}");
    // Publishing tags a page 1-3 times: one kind of weight 4 (2 tags: the mean), not three.
    assert_eq!(publish["weight"].as_integer(), Some(4), "{text}");
    let tags = steps
        .iter()
        .filter(|s| {
            s.get("sql")
                .and_then(|q| q.as_str())
                .is_some_and(|q| q.contains("page_tag"))
        })
        .count();
    assert_eq!(tags, 2, "{text}");
    assert!(text.contains("3 variants that differ only in how often"), "{text}");
    // The self-check ran the kinds against a copy of the database: nothing failed.
    assert!(text.contains("0 failed (0.0 % of requests"), "{text}");
    assert!(!stdout.contains("self-check"), "{stdout}");
    // It says how many requests it ran and how many runs that made: each kind's first runs
    // once more, so the runs are the requests plus one per kind.
    let line = text.lines().find(|l| l.starts_with("# Self-check: ")).unwrap();
    let number = |after: &str| -> usize {
        line.split(after)
            .next()
            .unwrap()
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (requests, runs) = (number(" request(s) of the trace"), number(" run(s), "));
    assert!(runs > requests, "{line}");

    let scenario = dir.path().join("cms.toml");
    let r = validate_and_run(dir.path(), &scenario, &["--duration", "300ms"]);
    let run = &r["runs"][0];
    assert_eq!(run["verification"]["ok"].as_bool(), Some(true));
    for op in run["groups"][0]["ops"].as_array().unwrap() {
        let e = &op["errors"];
        assert_eq!(e["constraint"].as_u64(), Some(0), "{op}");
        assert_eq!(e["other"].as_u64(), Some(0), "{op}");
    }
}

/// A composite unique key is filled in mixed radix: every row asked for is there, none repeats.
#[test]
fn composite_unique_keys_are_filled_without_violations() {
    let dir = tempfile::tempdir().unwrap();
    let (text, _) = import_cms(dir.path());
    let v = toml_of(&text);
    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.execute_batch(v["setup"]["sql"].as_str().unwrap()).unwrap();
    let count = |t: &str| -> i64 {
        c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("page_revision"), 40);
    assert_eq!(count("page_tag"), 30);
    let distinct: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT DISTINCT page_id, n FROM page_revision)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(distinct, 40);
}

/// A function the app registered that SQLite has no equivalent for: import checks what it
/// would write as `validate` does, names the function and the request kind, writes nothing
/// and exits 1 (it never says "next: litehammer validate" for a scenario that fails it).
#[test]
fn an_app_function_without_equivalent_is_a_validate_error_naming_it_and_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = vec![
        r#"{"v":1,"kind":"header","ts":0,"pid":5,"tid":5,"exe":"/usr/bin/python3","redacted":false}"#.to_string(),
        r#"{"v":1,"kind":"open","ts":1000,"pid":5,"tid":5,"conn":1,"path":"a.db","file":"/nonexistent/a.db"}"#.into(),
        r#"{"v":1,"kind":"stmt","ts":2000,"pid":5,"tid":5,"conn":1,"dur_ns":1000,"sql":"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)","changes":0}"#.into(),
    ];
    for k in 0..3 {
        let ts = 1_000_000_000 + k * 200_000_000;
        lines.push(format!(
            r#"{{"v":1,"kind":"stmt","ts":{ts},"pid":5,"tid":5,"conn":1,"dur_ns":1000,"sql":"SELECT id FROM t WHERE name REGEXP ?","expanded":"SELECT id FROM t WHERE name REGEXP '^a{k}'","changes":0}}"#
        ));
    }
    let trace = common::write(dir.path(), "re.jsonl", &(lines.join("\n") + "\n"));
    let out = dir.path().join("re.toml");
    let got = bin().arg("import").arg(&trace).arg("-o").arg(&out).output().unwrap();
    let stdout = String::from_utf8_lossy(&got.stdout);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert_eq!(got.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("does not validate") && stderr.contains("REGEXP") && stderr.contains("read_t"),
        "{stderr}"
    );
    assert!(!stdout.contains("next: litehammer validate"), "{stdout}");
    assert!(!out.exists(), "a scenario that does not validate was written");
}

fn sizes_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/sizes.jsonl")
}

fn import_sizes(dir: &Path, name: &str, args: &[&str]) -> String {
    let out = dir.join(name);
    bin()
        .arg("import")
        .arg(sizes_fixture())
        .arg("-o")
        .arg(&out)
        .args(args)
        .assert()
        .success();
    std::fs::read_to_string(&out).unwrap()
}

/// The lengths a `text_lengths(l0, …, l10)` generator draws between.
fn length_bounds(generator: &str) -> (usize, usize) {
    let inner = generator
        .strip_prefix("text_lengths(")
        .and_then(|g| g.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not a length distribution: {generator}"));
    let q: Vec<usize> = inner.split(", ").map(|l| l.parse().unwrap()).collect();
    assert_eq!(q.len(), 11, "{generator}");
    (q[0], q[10])
}

/// Runs `scenario` once (WAL + NORMAL, briefly), keeps its database and returns its path.
fn run_kept(dir: &Path, scenario: &Path) -> PathBuf {
    let dbs = dir.join(format!("dbs-{}", scenario.file_stem().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&dbs).unwrap();
    let report = dir.join("r.json");
    bin()
        .arg("run")
        .arg(scenario)
        .args(["--duration", "300ms", "--warmup", "0s", "--no-probe", "-q", "--keep-db"])
        .args(["--matrix", "journal_mode=wal", "--matrix", "synchronous=normal"])
        .arg("-o")
        .arg(&report)
        .arg("--db-dir")
        .arg(&dbs)
        .assert()
        .success();
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    PathBuf::from(r["runs"][0]["database"]["path"].as_str().unwrap())
}

/// (count, min, max, average) of `length(col)` in `table`.
fn lengths_in(db: &Path, table: &str, col: &str) -> (i64, i64, i64, f64) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(
        &format!("SELECT count(*), min(length({col})), max(length({col})), avg(length({col})) FROM {table}"),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

/// #28 fidelity of sizes: a trace whose rows carry ~2 kB text (plots of 1,800–2,400
/// characters inserted at set-up, review bodies of 1,900–2,300 in the requests) imports to
/// length distributions, not `seq()` or short text, with comments saying where each came from;
/// the run's database holds rows of those lengths. With `--db`, the copy's lengths are used.
#[test]
fn text_sizes_come_from_the_trace_and_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    // From the trace: the set-up's rows become populate, the requests' values the params.
    let text = import_sizes(dir.path(), "sizes.toml", &["--params", "model"]);
    let v = toml_of(&text);
    let pop = &v["setup"]["populate"][0];
    assert_eq!(pop["table"].as_str(), Some("movie"));
    assert_eq!(pop["columns"][1].as_str(), Some("plot"));
    let (lo, hi) = length_bounds(pop["values"][1].as_str().unwrap());
    assert!(lo >= 1800 && hi <= 2400 && hi - lo > 300, "{lo}–{hi}");
    assert!(
        text.contains("# plot: text lengths from the captured values (20 values: "),
        "{text}"
    );
    let body = v["group"][0]["script"][0]["steps"][1]["params"][1].as_str().unwrap();
    let (lo, hi) = length_bounds(body);
    assert!(lo >= 1900 && hi <= 2300, "{body}");
    assert!(
        text.contains("?2: text lengths from the captured values (8 values: "),
        "{text}"
    );
    let db = run_kept(dir.path(), &dir.path().join("sizes.toml"));
    let (rows, min, max, avg) = lengths_in(&db, "movie", "plot");
    assert_eq!(rows, 20);
    assert!(
        min >= 1800 && max <= 2400 && avg > 1900.0,
        "plots {min}–{max}, mean {avg}"
    );
    let (reviews, min, max, _) = lengths_in(&db, "review", "body");
    assert!(reviews > 0, "no review was inserted");
    assert!(min >= 1900 && max <= 2300, "review bodies {min}–{max}");

    // From a copy of the app's database: its lengths, and the same in the run's database.
    let copy = dir.path().join("movies.db");
    let c = rusqlite::Connection::open(&copy).unwrap();
    c.execute_batch(
        "CREATE TABLE movie(id INTEGER PRIMARY KEY, title TEXT NOT NULL, plot TEXT NOT NULL);
         CREATE TABLE review(id INTEGER PRIMARY KEY, movie_id INTEGER NOT NULL, body TEXT NOT NULL);
         WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 300)
         INSERT INTO movie(title, plot) SELECT 'movie ' || v, printf('%.*c', 2000 + (v * 53) % 400, 'p') FROM s;",
    )
    .unwrap();
    drop(c);
    let text = import_sizes(dir.path(), "copy.toml", &["--db", copy.to_str().unwrap()]);
    let v = toml_of(&text);
    let pop = &v["setup"]["populate"][0];
    assert_eq!(pop["rows"].as_integer(), Some(300));
    let (lo, hi) = length_bounds(pop["values"][1].as_str().unwrap());
    assert!(lo >= 2000 && hi <= 2399, "{lo}–{hi}");
    assert!(
        text.contains("# plot: text lengths from the copy, all its text values (300 values: 20"),
        "{text}"
    );
    let db = run_kept(dir.path(), &dir.path().join("copy.toml"));
    let (rows, min, max, avg) = lengths_in(&db, "movie", "plot");
    assert_eq!(rows, 300);
    assert!(
        min >= 2000 && max <= 2399 && avg > 2100.0,
        "plots {min}–{max}, mean {avg}"
    );
}

fn optional_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/optional.jsonl")
}

/// The script whose first step is `first_sql` and whose weight is `weight`.
fn script_by<'a>(v: &'a toml::Value, first_sql: &str, weight: i64) -> &'a toml::Value {
    v["group"][0]["script"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["steps"][0]["sql"].as_str() == Some(first_sql) && s["weight"].as_integer() == Some(weight))
        .unwrap_or_else(|| panic!("no script starting with {first_sql} of weight {weight}:\n{v}"))
}

/// #28 item 5: requests of one endpoint that differ in optional statements (a lookup skipped on
/// a cache hit, a savepoint block) are one request kind in weighted variants, each with its own
/// step numbers for links; an endpoint with the same first statement that writes nothing, and
/// one with the same writes but another first statement, stay kinds of their own
/// (tests/fixtures/import/make_optional_trace.py). The scenario validates and runs with no
/// error but lock errors.
#[test]
fn an_endpoint_with_optional_statements_is_one_kind_in_weighted_variants() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("optional.toml");
    let out = bin()
        .arg("import")
        .arg(optional_fixture())
        .arg("-o")
        .arg(&scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("20 request(s), 3 kind(s) (5 scripts"), "{stdout}");
    let text = std::fs::read_to_string(&scenario).unwrap();
    let v = toml_of(&text);
    assert!(
        v["description"].as_str().unwrap().ends_with("3 request kind(s)"),
        "{text}"
    );
    let page = "SELECT id, site_id, rev FROM page WHERE id = ?1";
    let site = "SELECT id, name FROM site WHERE id = ?1";
    let scripts = v["group"][0]["script"].as_array().unwrap();
    assert_eq!(scripts.len(), 5, "{text}");
    // The publish endpoint: its main variant first (6 requests), then 4 without the lock lookup,
    // then 2 with a savepoint block; the scripts are adjacent and named after the main.
    let names: Vec<&str> = scripts.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let main = scripts
        .iter()
        .find(|s| s["steps"].as_array().unwrap().len() == 6 && s["steps"][0]["sql"].as_str() == Some(page))
        .unwrap_or_else(|| panic!("no main publish script:\n{text}"));
    let main_name = main["name"].as_str().unwrap();
    let at = names.iter().position(|n| *n == main_name).unwrap();
    assert_eq!(
        &names[at..at + 3],
        [main_name, &format!("{main_name}_v2"), &format!("{main_name}_v3")],
        "{text}"
    );
    let cached = &scripts[at + 1];
    let retitled = &scripts[at + 2];
    assert_eq!(cached["weight"].as_integer(), Some(4), "{text}");
    assert_eq!(retitled["weight"].as_integer(), Some(2), "{text}");
    let update = "UPDATE page SET rev = rev + 1, site_id = ?1 WHERE id = ?2";
    // The site's id is linked to the site lookup: step 2 where the lock lookup runs, step 1 where
    // it is absent; the page id to step 0 in every variant.
    for (s, n_steps, at_update, site_step) in [(main, 6, 4, 2), (cached, 5, 3, 1), (retitled, 9, 4, 2)] {
        let steps = s["steps"].as_array().unwrap();
        assert_eq!(steps.len(), n_steps, "{text}");
        assert_eq!(steps[site_step]["sql"].as_str(), Some(site), "{text}");
        assert_eq!(steps[at_update]["sql"].as_str(), Some(update), "{text}");
        let params = steps[at_update]["params"].as_array().unwrap();
        assert_eq!(params[0].as_str(), Some(format!("${site_step}.id").as_str()), "{text}");
        assert_eq!(params[1].as_str(), Some("$0.id"), "{text}");
    }
    // The comments say why they were merged, with the counts per variant.
    assert!(
        text.contains(&format!(
            "One request kind (endpoint) in 3 weighted variants, 12 requests in all: `{main_name}` 6 × 6 statements, \
             `{main_name}_v2` 4 × 5 statements, `{main_name}_v3` 2 × 9 statements."
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("`{main_name}`'s step 1 is absent here")),
        "{text}"
    );
    assert!(
        text.contains(&format!("its steps 5, 6, 7 are not in `{main_name}`")),
        "{text}"
    );
    // The view shares publish's first statement and reads, but writes nothing; the move shares
    // its writes, but starts elsewhere: kinds of their own, no variant comment.
    let view = scripts
        .iter()
        .find(|s| s["steps"].as_array().unwrap().len() == 4 && s["steps"][0]["sql"].as_str() == Some(page))
        .unwrap_or_else(|| panic!("no view script:\n{text}"));
    assert_eq!(view["weight"].as_integer(), Some(6), "{text}");
    let moved = script_by(&v, site, 2);
    assert_eq!(moved["steps"].as_array().unwrap().len(), 4, "{text}");
    for s in [view, moved] {
        let name = s["name"].as_str().unwrap();
        assert!(!name.contains("_v"), "{text}");
        assert!(!text.contains(&format!("request kind `{name}`")), "{text}");
    }

    let r = validate_and_run(dir.path(), &scenario, &["--operations", "40"]);
    let run = &r["runs"][0];
    assert_eq!(run["verification"]["ok"].as_bool(), Some(true));
    let ops = run["groups"][0]["ops"].as_array().unwrap();
    assert_eq!(ops.len(), 5, "{run}");
    for op in ops {
        let e = &op["errors"];
        assert_eq!(e["constraint"].as_u64(), Some(0), "{op}");
        assert_eq!(e["other"].as_u64(), Some(0), "{op}");
    }
}

/// #28 item 1: the set-up process inserts sites and pages with their ids (an `INTEGER PRIMARY
/// KEY` given explicitly), comments in one bulk insert with theirs
/// (tests/fixtures/import/make_optional_trace.py). Without `--db`, populate
/// numbers those keys from the first id the app inserted (`seq(1)`), never a generator fitted to
/// the two site ids that could repeat one (`uniform(1, 2)` failed populate with "UNIQUE
/// constraint failed: site.id"). With ten times the rows, the scenario still validates and runs
/// with no constraint error.
#[test]
fn set_up_rows_inserted_with_their_ids_populate_keys_that_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("ids.toml");
    let out = bin()
        .arg("import")
        .arg(optional_fixture())
        .arg("-o")
        .arg(&scenario)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&scenario).unwrap();
    let v = toml_of(&text);
    let populate = v["setup"]["populate"].as_array().unwrap();
    let line = |table: &str| {
        populate
            .iter()
            .find(|p| p["table"].as_str() == Some(table))
            .unwrap_or_else(|| panic!("no populate line for {table}:\n{text}"))
    };
    // Sites and pages inserted one by one, comments in one bulk insert (20 rows of one statement).
    for (table, rows) in [("site", 2), ("page", 20), ("comment", 20)] {
        let p = line(table);
        assert_eq!(p["rows"].as_integer(), Some(rows), "{text}");
        assert_eq!(p["columns"][0].as_str(), Some("id"), "{text}");
        assert_eq!(p["values"][0].as_str(), Some("seq(1)"), "{text}");
    }
    assert!(
        text.contains(
            "# id: seq(1): the rowid (INTEGER PRIMARY KEY), numbered from the first key the app inserted while \
             setting up (1–2); not `uniform(1, 2)`, which could repeat a key\n"
        ),
        "{text}"
    );
    // Ten times the rows the app inserted: more than the ids it used, so a generator drawing
    // from them would repeat one.
    let scaled = text
        .replace("table = \"site\", rows = 2,", "table = \"site\", rows = 20,")
        .replace("table = \"page\", rows = 20,", "table = \"page\", rows = 200,");
    assert_ne!(scaled, text);
    std::fs::write(&scenario, &scaled).unwrap();
    let r = validate_and_run(dir.path(), &scenario, &["--operations", "40"]);
    let run = &r["runs"][0];
    assert_eq!(run["error"], serde_json::Value::Null, "{run}");
    assert_eq!(run["verification"]["ok"].as_bool(), Some(true), "{run}");
    let ops = run["groups"][0]["ops"].as_array().unwrap();
    assert!(!ops.is_empty(), "{run}");
    for op in ops {
        assert_eq!(op["errors"]["constraint"].as_u64(), Some(0), "{op}");
    }
}

/// #30: requests that look a row up by a text key (a session key) and update it
/// (tests/fixtures/import/make_session_trace.py), imported with a copy holding those keys.
/// Populate numbers the key (`seq()`: the copy's text keys cannot be drawn), so the captured
/// keys are replayed as the same numbers, the same key the same number in every statement: the
/// run's UPDATEs change rows. Replayed as captured text they matched no populated row, so the
/// imported scenario wrote nothing there (Django's session save: half the real app's write
/// transactions, and its DELETE cells ran 1.3-1.5x faster than the app).
#[test]
fn captured_text_keys_are_replayed_as_the_populated_keys() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let c = rusqlite::Connection::open(&copy).unwrap();
    c.execute_batch("CREATE TABLE session(session_key TEXT PRIMARY KEY, data TEXT NOT NULL)")
        .unwrap();
    for i in 0..20u64 {
        c.execute(
            "INSERT INTO session VALUES (?1, 'fresh')",
            [format!("{:032x}", (i + 1) * 2654435761)],
        )
        .unwrap();
    }
    drop(c);
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/sessions.jsonl");
    let scenario = dir.path().join("sessions.toml");
    bin()
        .arg("import")
        .arg(&trace)
        .arg("--db")
        .arg(&copy)
        .arg("-o")
        .arg(&scenario)
        .assert()
        .success();
    let text = std::fs::read_to_string(&scenario).unwrap();
    let v = toml_of(&text);
    assert_eq!(v["setup"]["populate"][0]["values"][0].as_str(), Some("seq()"), "{text}");
    let steps = v["group"][0]["script"][0]["steps"].as_array().unwrap();
    let select = steps[0]["params"][0].as_str().unwrap();
    let update = steps[1]["params"][1].as_str().unwrap();
    // Request n of worker w used key (w * 12 + n) * 7 % 20: 20 keys, first seen in that order.
    let keys: Vec<u64> = (0..24u64).map(|r| r * 7 % 20).collect();
    let mut first_seen: Vec<u64> = Vec::new();
    for k in &keys {
        if !first_seen.contains(k) {
            first_seen.push(*k);
        }
    }
    let numbers: Vec<String> = keys
        .iter()
        .map(|k| (1 + first_seen.iter().position(|f| f == k).unwrap()).to_string())
        .collect();
    let want = format!("replay({})", numbers.join(", "));
    assert_eq!(select, want, "{text}");
    assert_eq!(update, want, "{text}");
    assert!(
        text.contains("step 1 ?2: captured session.session_key keys numbered as populate's seq() numbers them"),
        "{text}"
    );
    // The run's UPDATEs find their rows.
    let db = run_kept(dir.path(), &scenario);
    let c = rusqlite::Connection::open(&db).unwrap();
    let visited: i64 = c
        .query_row("SELECT count(*) FROM session WHERE data LIKE 'visited %'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(visited > 0, "no UPDATE changed a row:\n{text}");
}

/// `--also`: a second trace of the same app in DELETE, whose page views spend 3× the app
/// time, gives the DELETE runs a `[[when]]` with that factor; `validate` and the report say
/// which runs it changed. Bad `--also` input is exit 2 naming the flag.
#[test]
fn a_trace_in_another_configuration_sets_its_runs_app_time() {
    let delete = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/web_delete.jsonl");
    let (dir, text) = import(&["--also", delete.to_str().unwrap()]);
    let v = toml_of(&text);
    let when = v["when"].as_array().expect("a [[when]]");
    assert_eq!(when.len(), 1, "{text}");
    assert_eq!(when[0]["match"]["journal_mode"].as_str(), Some("delete"));
    assert!(
        when[0]["match"].get("synchronous").is_none(),
        "both DELETE runs: {text}"
    );
    // 6 page views × 6 ms over 8 requests against 6 × 2 ms: 4.5 ms against 1.5 ms.
    assert_eq!(
        when[0]["set"]["group.app.app_time_scale"].as_float(),
        Some(3.0),
        "{text}"
    );
    assert!(text.contains("4500 µs in web_delete.jsonl (delete + normal"), "{text}");
    let out = bin()
        .arg("validate")
        .arg(dir.path().join("web.toml"))
        .assert()
        .success();
    let shown = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let lines: Vec<&str> = shown.lines().collect();
    let at = |id: &str| lines.iter().position(|l| l.trim() == format!("run {id}")).unwrap();
    let scaled = "group.app.app_time_scale=3.0 (when journal_mode=delete";
    assert!(
        lines[at("journal_mode=delete,synchronous=full") + 1].contains(scaled),
        "{shown}"
    );
    assert!(
        !lines[at("journal_mode=wal,synchronous=normal") + 1].contains(scaled),
        "{shown}"
    );
    // A DELETE run carries what [[when]] set in its report.
    let report = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(dir.path().join("web.toml"))
        .args(["--operations", "8", "--warmup", "0s", "--no-probe", "-q"])
        .args(["--set", "group.app.think_time=0ms"])
        .args(["--matrix", "journal_mode=delete", "--matrix", "synchronous=full"])
        .arg("-o")
        .arg(&report)
        .arg("--db-dir")
        .arg(dir.path())
        .assert()
        .success();
    let r = common::read_json(&report);
    common::assert_schema_valid(&r);
    let when = r["runs"][0]["when"].as_array().expect("the run's when");
    assert!(when[0].as_str().unwrap().contains(scaled), "{when:?}");
    // A trace that records no PRAGMAs (the Rails route) says its configuration in the flag.
    let bare = dir.path().join("bare.jsonl");
    let kept: Vec<String> = std::fs::read_to_string(&delete)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("PRAGMA journal_mode") && !l.contains("PRAGMA synchronous"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&bare, kept.concat()).unwrap();
    let stated = format!("journal_mode=delete,synchronous=normal:{}", bare.display());
    let (_d2, text2) = import(&["--also", &stated]);
    let v2 = toml_of(&text2);
    assert_eq!(
        v2["when"][0]["match"]["journal_mode"].as_str(),
        Some("delete"),
        "{text2}"
    );
    assert_eq!(
        v2["when"][0]["set"]["group.app.app_time_scale"].as_float(),
        Some(3.0),
        "{text2}"
    );
    // The same configuration twice, a trace with no journal mode, a broken trace, a stated
    // configuration the trace's PRAGMAs contradict.
    let cms = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/cms.jsonl");
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"v\":1,\"kind\":\"stmt\",\n").unwrap();
    for (also, says) in [
        (
            fixture(),
            "traced in the same configuration (journal_mode = wal, synchronous = normal)",
        ),
        (
            cms,
            "records no PRAGMA journal_mode, so its configuration is unknown: say it, as --also journal_mode=",
        ),
        (broken.clone(), "broken.jsonl:1:1: truncated"),
        (
            PathBuf::from(format!("journal_mode=persist,synchronous=normal:{}", delete.display())),
            "given as journal_mode=persist, but the trace's PRAGMAs set journal_mode = delete",
        ),
    ] {
        let out = bin()
            .arg("import")
            .arg(fixture())
            .arg("-o")
            .arg(dir.path().join("other.toml"))
            .arg("--also")
            .arg(&also)
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains("--also") && err.contains(says), "{also:?}: {err}");
        assert!(!dir.path().join("other.toml").exists());
    }
}

/// An app that runs the SQL of many concurrent requests on one long-lived connection, with no
/// idle gap, no clear break and no request ids (tests/fixtures/import/make_pool_trace.py, an
/// asyncio server's SQL thread as in Datasette): import can only take the connection for one
/// request, and says so, in its output and in the scenario; a trace whose requests it could
/// cut (web.jsonl) gets no such note.
#[test]
fn a_connection_import_cannot_cut_into_requests_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/pool.jsonl");
    let out_path = dir.path().join("pool.toml");
    let out = bin()
        .arg("import")
        .arg(&pool)
        .arg("-o")
        .arg(&out_path)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("1 request(s) of 450 statements over 1.1 s each")
            && said.contains("could not cut into the app's requests")
            && said.contains("request ids"),
        "{said}"
    );
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(
        text.contains("# Self-check: request kind `") && text.contains("could not cut into the app's requests"),
        "{text}"
    );
    let (_dir, web) = import(&[]);
    assert!(!web.contains("could not cut"), "{web}");
}
