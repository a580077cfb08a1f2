//! `litehammer import` from framework formats (tests/fixtures/frameworks/make_fixtures.py: one
//! blog app written as Rails, Django, Node and OTLP/JSON traces): requests and kinds, counts,
//! what is modelled, and bad input (exit 2 naming the line, never a panic).

mod common;

use common::bin;
use std::io::Write;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/frameworks")
        .join(name)
}

/// The blog's database as it was before the trace: its schema and three posts.
fn blog_db(dir: &Path) -> PathBuf {
    let path = dir.join("blog.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch(
        "CREATE TABLE blog_post(id INTEGER PRIMARY KEY, title TEXT, body TEXT, views INTEGER, comments INTEGER);
         CREATE TABLE blog_comment(id INTEGER PRIMARY KEY, post_id INTEGER REFERENCES blog_post(id), author TEXT, body TEXT);
         INSERT INTO blog_post VALUES (1, 'a', 'x', 0, 0), (2, 'b', 'y', 0, 0), (3, 'c', 'z', 0, 0);",
    )
    .unwrap();
    path
}

struct Imported {
    _dir: tempfile::TempDir,
    toml: toml::Value,
    text: String,
    stdout: String,
}

/// `litehammer import TRACE --db DB -o OUT [extra]`, which must succeed: its stdout and the
/// scenario it wrote.
fn import_with(trace: &Path, db: &Path, out: &Path, extra: &[&str]) -> (String, String) {
    let assert = bin()
        .arg("import")
        .arg(trace)
        .arg("-o")
        .arg(out)
        .arg("--db")
        .arg(db)
        .args(extra)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    (stdout, std::fs::read_to_string(out).unwrap())
}

fn import(name: &str, extra: &[&str]) -> Imported {
    let dir = tempfile::tempdir().unwrap();
    let db = blog_db(dir.path());
    let out = dir.path().join("app.toml");
    let (stdout, text) = import_with(&fixture(name), &db, &out, extra);
    let toml = toml::Value::Table(toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}")));
    bin().arg("validate").arg(&out).assert().success();
    Imported {
        _dir: dir,
        toml,
        text,
        stdout,
    }
}

/// The `queue` an imported scenario's first group got (None: the per-process default).
fn queue(text: &str) -> Option<String> {
    let t: toml::Value = toml::from_str(text).unwrap();
    t["group"][0].get("queue").map(|q| q.as_str().unwrap().to_string())
}

/// The two request kinds of the blog, whatever the format: 6 page views, 3 comment posts.
/// `inlined`: the format writes the values into the SQL (Django), so every literal is a
/// parameter; the others keep the app's placeholders and its own literals.
fn assert_blog_kinds(imp: &Imported, inlined: bool) {
    let (views, comments) = if inlined {
        (
            "UPDATE blog_post SET views = views + ?1 WHERE id = ?2",
            "UPDATE blog_post SET comments = comments + ?1 WHERE id = ?2",
        )
    } else {
        (
            "UPDATE blog_post SET views = views + 1 WHERE id = ?1",
            "UPDATE blog_post SET comments = comments + 1 WHERE id = ?1",
        )
    };
    let groups = imp.toml["group"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{}", imp.text);
    let scripts = groups[0]["script"].as_array().unwrap();
    let mut kinds: Vec<(i64, Vec<String>)> = scripts
        .iter()
        .map(|s| {
            let steps = s["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|st| match st.get("sql") {
                    Some(sql) => sql.as_str().unwrap().to_string(),
                    None if st.get("begin").is_some() => "BEGIN".into(),
                    None => "COMMIT".into(),
                })
                .collect();
            (s["weight"].as_integer().unwrap(), steps)
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![
            (
                3,
                vec![
                    "BEGIN".to_string(),
                    "INSERT INTO blog_comment (post_id, author, body) VALUES (?1, ?2, ?3)".into(),
                    comments.into(),
                    "COMMIT".into(),
                ]
            ),
            (
                6,
                vec![
                    "SELECT id, title, body, views FROM blog_post WHERE id = ?1".to_string(),
                    "SELECT id, author, body FROM blog_comment WHERE post_id = ?1 ORDER BY id".into(),
                    views.into(),
                ]
            ),
        ],
        "{}",
        imp.text
    );
}

fn group(imp: &Imported) -> &toml::Value {
    &imp.toml["group"][0]
}

/// Whether each kind's first step has an app_time: with CPU readings, the app's CPU since the
/// worker's previous statement (its work on the request outside SQLite).
fn first_steps_have_app_time(imp: &Imported) -> bool {
    group(imp)["script"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["steps"][0].get("app_time").is_some())
}

#[test]
fn rails_events_give_threads_of_one_process_persistent_connections_and_skip_cache_hits() {
    let imp = import("rails.jsonl", &[]);
    assert_blog_kinds(&imp, false);
    let g = group(&imp);
    assert_eq!(g["workers"].as_integer(), Some(2));
    assert_eq!(g["isolation"].as_str(), Some("thread"));
    assert_eq!(g["connection"].as_str(), Some("persistent"));
    assert!(imp.stdout.contains("format: Rails"), "{}", imp.stdout);
    // 31 statements: the schema PRAGMA and 9 requests (6 × 3 + 3 × 4); 6 cache hits left out.
    assert!(imp.stdout.contains(": 31 statements"), "{}", imp.stdout);
    for said in [
        "6 query-cache hit(s) (cached: true) never reached SQLite",
        "3 distinct connection_id seen",
        "one persistent connection per worker thread",
    ] {
        assert!(imp.stdout.contains(said), "output lacks {said:?}:\n{}", imp.stdout);
        assert!(imp.text.contains(said), "scenario lacks {said:?}:\n{}", imp.text);
    }
    assert!(first_steps_have_app_time(&imp), "{}", imp.text);
    // The replayed values are the binds.
    assert!(imp.text.contains("replay('it''s comment 2'"), "{}", imp.text);
    assert_eq!(imp.toml["sqlite"]["foreign_keys"].as_bool(), Some(true));
}

#[test]
fn django_log_gives_processes_with_a_connection_per_request_and_the_settings_read_at_connect() {
    let imp = import("django.jsonl", &[]);
    assert_blog_kinds(&imp, true);
    let g = group(&imp);
    assert_eq!(g["workers"].as_integer(), Some(2));
    assert_eq!(g["isolation"].as_str(), Some("process"));
    assert_eq!(g["connection"].as_str(), Some("per-request"));
    // 30 statements of 9 requests and 4 settings for each of the 9 connections.
    assert!(imp.stdout.contains(": 66 statements"), "{}", imp.stdout);
    assert!(
        imp.stdout.contains(
            "the 4 setting(s) the hook read at connect (busy_timeout, foreign_keys, journal_mode, synchronous; 36 readings in all)"
        ),
        "{}",
        imp.stdout
    );
    assert!(
        imp.text.contains("Django logs the SQL with its values written in"),
        "{}",
        imp.text
    );
    let m = &imp.toml["matrix"];
    assert_eq!(m["journal_mode"][0].as_str(), Some("wal"));
    assert_eq!(m["synchronous"][0].as_str(), Some("normal"));
    assert_eq!(imp.toml["sqlite"]["busy_timeout"].as_str(), Some("5000ms"));
}

#[test]
fn node_wrapper_gives_processes_requests_by_id_and_its_pragmas() {
    let imp = import("node.jsonl", &[]);
    assert_blog_kinds(&imp, false);
    let g = group(&imp);
    assert_eq!(g["workers"].as_integer(), Some(2));
    assert_eq!(g["isolation"].as_str(), Some("process"));
    assert_eq!(g["connection"].as_str(), Some("persistent"));
    assert!(imp.stdout.contains(": 32 statements"), "{}", imp.stdout);
    assert!(imp.stdout.contains("process.cpuUsage()"), "{}", imp.stdout);
    assert!(first_steps_have_app_time(&imp), "{}", imp.text);
    assert_eq!(imp.toml["matrix"]["journal_mode"][0].as_str(), Some("wal"));
}

#[test]
fn node_cluster_workers_get_first_free_queues() {
    // The wrapper's server line, once per process: cluster workers keep each keep-alive
    // connection the primary handed them, first come.
    let dir = tempfile::tempdir().unwrap();
    let db = blog_db(dir.path());
    let out = dir.path().join("app.toml");
    let with_server = |cluster: bool| {
        let mut text = String::new();
        for pid in [300, 301] {
            let line = serde_json::json!({"driver": "better-sqlite3", "event": "server", "pid": pid,
                "ts_ns": 999_990_000_001i64, "software": "node/20.19.2", "cluster": cluster, "program": "server.js"});
            text.push_str(&format!("{line}\n"));
        }
        text.push_str(&std::fs::read_to_string(fixture("node.jsonl")).unwrap());
        let path = dir.path().join("server.jsonl");
        std::fs::write(&path, text).unwrap();
        import_with(&path, &db, &out, &[])
    };
    let (stdout, text) = with_server(true);
    assert_eq!(queue(&text).as_deref(), Some("first-free"), "{text}");
    assert!(stdout.contains("node/20.19.2 cluster workers"), "{stdout}");
    bin().arg("validate").arg(&out).assert().success();
    // Separate Node processes (behind a proxy): the per-process default, and the flag wins.
    let (_, text) = with_server(false);
    assert_eq!(queue(&text), None, "{text}");
    assert!(text.contains("with --queue first-free"), "{text}");
    let (_, text) = import_with(&fixture("node.jsonl"), &db, &out, &["--queue", "per-process"]);
    assert_eq!(queue(&text), None, "{text}");
    // A server line without its software is an error naming the line.
    fails(
        "bad.jsonl",
        b"{\"driver\": \"better-sqlite3\", \"event\": \"server\", \"pid\": 1, \"ts_ns\": 5}\n",
        None,
        &["bad.jsonl:1:", "software"],
    );
}

#[test]
fn otel_spans_give_one_request_per_trace_on_virtual_workers() {
    let imp = import("otel.jsonl", &[]);
    assert_blog_kinds(&imp, false);
    let g = group(&imp);
    // No thread.id: requests of one process that overlap in time need two workers.
    assert_eq!(g["workers"].as_integer(), Some(2), "{}", imp.text);
    assert!(imp.stdout.contains(": 30 statements"), "{}", imp.stdout);
    // No CPU readings: the time inside each request span outside its SQLite spans is its app
    // time, before the first statement too (the server span starts 0.3 ms before it); the
    // time between requests is not.
    assert!(first_steps_have_app_time(&imp), "{}", imp.text);
    for said in [
        "one per trace (traceId)",
        "2 virtual worker(s)",
        "spans have none",
        "the wall-clock time inside its trace's spans",
    ] {
        assert!(imp.text.contains(said), "scenario lacks {said:?}:\n{}", imp.text);
    }
}

/// Each span of the OTel fixture with CPU readings, changed by `edit` (its attributes, and
/// whether it is a SQLite span), one export a line as in the file.
fn otel_cpu_edited(edit: impl Fn(&mut Vec<serde_json::Value>, bool)) -> String {
    let mut out = String::new();
    for line in std::fs::read_to_string(fixture("otel-cpu.jsonl")).unwrap().lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in v["resourceSpans"].as_array_mut().unwrap() {
            for ss in rs["scopeSpans"].as_array_mut().unwrap() {
                for s in ss["spans"].as_array_mut().unwrap() {
                    let sqlite = s.get("parentSpanId").is_some();
                    edit(s["attributes"].as_array_mut().unwrap(), sqlite);
                }
            }
        }
        out.push_str(&serde_json::to_string(&v).unwrap());
        out.push('\n');
    }
    out
}

/// The app_time of each step of the kind whose first statement starts with `first`.
fn app_times(toml: &toml::Value, first: &str) -> Vec<String> {
    let script = toml["group"][0]["script"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            let st = &s["steps"][0];
            st.get("sql")
                .and_then(|q| q.as_str())
                .unwrap_or("BEGIN")
                .starts_with(first)
        })
        .unwrap_or_else(|| panic!("no kind starting with {first}"));
    script["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["app_time"].as_str().unwrap_or("none").to_string())
        .collect()
}

/// With the CpuTimes processor's readings (snippets/trace/otel_cpu.py), app time is the
/// thread's CPU, not the wall clock: the fixture's statements are 0.3 ms of wall time apart but
/// 0.1 + 0.05 i ms of CPU, and its requests 20 ms apart with 0.5 ms of CPU after the last
/// statement and 1 ms between requests.
#[test]
fn otel_cpu_readings_are_the_app_time() {
    let imp = import("otel-cpu.jsonl", &[]);
    assert_blog_kinds(&imp, false);
    let g = group(&imp);
    // thread.id: two threads of one process, no virtual workers.
    assert_eq!(g["workers"].as_integer(), Some(2), "{}", imp.text);
    assert!(!imp.text.contains("virtual worker"), "{}", imp.text);
    // Step 0: since the worker's previous statement, 0.5 + 1 + 0.1 ms; then the CPU gaps.
    assert_eq!(
        app_times(&imp.toml, "SELECT"),
        ["1600us", "150us", "200us"],
        "{}",
        imp.text
    );
    assert_eq!(
        app_times(&imp.toml, "BEGIN"),
        ["1600us", "150us", "200us", "250us"],
        "{}",
        imp.text
    );
    for said in ["the spans carry their thread's CPU time", "not the wall-clock time"] {
        assert!(imp.stdout.contains(said), "output lacks {said:?}:\n{}", imp.stdout);
        assert!(imp.text.contains(said), "scenario lacks {said:?}:\n{}", imp.text);
    }
    assert!(!imp.text.contains("spans have none"), "{}", imp.text);
    // The same spans without their readings: the wall clock inside the request spans.
    let dir = tempfile::tempdir().unwrap();
    let wall = dir.path().join("wall.jsonl");
    std::fs::write(
        &wall,
        otel_cpu_edited(|a, _| a.retain(|kv| !kv["key"].as_str().unwrap().starts_with("litehammer."))),
    )
    .unwrap();
    let (stdout, text) = import_with(&wall, &blog_db(dir.path()), &dir.path().join("wall.toml"), &[]);
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(app_times(&v, "SELECT")[1..], ["300us", "300us"], "{text}");
    assert!(stdout.contains("spans have none"), "{stdout}");
}

/// Spans with CPU readings but no thread.id may come from several threads of a process: each
/// request's readings count from its first to its last, not the CPU between requests.
#[test]
fn otel_cpu_readings_without_thread_ids_count_only_inside_requests() {
    let dir = tempfile::tempdir().unwrap();
    let spans = dir.path().join("nothread.jsonl");
    std::fs::write(&spans, otel_cpu_edited(|a, _| a.retain(|kv| kv["key"] != "thread.id"))).unwrap();
    let (stdout, text) = import_with(&spans, &blog_db(dir.path()), &dir.path().join("app.toml"), &[]);
    let v: toml::Value = toml::from_str(&text).unwrap();
    // Step 0: 0.5 ms after the previous request's last statement and 0.1 ms before its own first.
    assert_eq!(app_times(&v, "SELECT"), ["600us", "150us", "200us"], "{text}");
    assert_eq!(app_times(&v, "BEGIN"), ["600us", "150us", "200us", "250us"], "{text}");
    for said in [
        "2 virtual worker(s)",
        "CPU on virtual workers",
        "the CPU between requests is not counted",
    ] {
        assert!(stdout.contains(said), "output lacks {said:?}:\n{stdout}");
    }
}

/// A CPU reading that is not an integer, is negative, ends before it starts or comes alone, and
/// a SQLite span without readings among spans with them: exit 2 naming the line.
#[test]
fn bad_otel_cpu_readings_are_errors_naming_the_line() {
    let on_line_2 = |edit: &dyn Fn(&mut serde_json::Value)| -> String {
        let text = std::fs::read_to_string(fixture("otel-cpu.jsonl")).unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            if i == 1 {
                // The line's second span: a SQLite span.
                edit(&mut v["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["attributes"]);
            }
            out.push_str(&format!("{v}\n"));
        }
        out
    };
    let set = |key: &'static str, value: serde_json::Value| {
        move |attrs: &mut serde_json::Value| {
            for kv in attrs.as_array_mut().unwrap() {
                if kv["key"] == key {
                    kv["value"] = value.clone();
                }
            }
        }
    };
    use serde_json::json;
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &[&str])> = vec![
        (
            Box::new(set("litehammer.cpu_start_ns", json!({"stringValue": "12ms"}))),
            &["litehammer.cpu_start_ns is not an integer"],
        ),
        (
            Box::new(set("litehammer.cpu_end_ns", json!({"doubleValue": 1.5}))),
            &["litehammer.cpu_end_ns is not an integer"],
        ),
        (
            Box::new(set("litehammer.cpu_start_ns", json!({"intValue": "-5"}))),
            &["litehammer.cpu_start_ns is -5", "cannot be negative"],
        ),
        (
            Box::new(set("litehammer.cpu_end_ns", json!({"intValue": "1"}))),
            &["litehammer.cpu_end_ns 1 is before litehammer.cpu_start_ns"],
        ),
        (
            Box::new(|a: &mut serde_json::Value| {
                a.as_array_mut()
                    .unwrap()
                    .retain(|kv| kv["key"] != "litehammer.cpu_end_ns")
            }),
            &["litehammer.cpu_start_ns without litehammer.cpu_end_ns"],
        ),
        (
            Box::new(|a: &mut serde_json::Value| {
                a.as_array_mut()
                    .unwrap()
                    .retain(|kv| !kv["key"].as_str().unwrap().starts_with("litehammer."))
            }),
            &["has no litehammer.cpu_start_ns", "otel_cpu.py"],
        ),
    ];
    for (edit, expect) in cases {
        let text = on_line_2(&*edit);
        let mut all = vec!["otel-cpu.jsonl:2:1:"];
        all.extend_from_slice(expect);
        fails("otel-cpu.jsonl", text.as_bytes(), None, &all);
    }
}

#[test]
fn from_forces_the_format_and_a_mismatch_names_the_line() {
    let imp = import("node.jsonl", &["--from", "node"]);
    assert_blog_kinds(&imp, false);
    let dir = tempfile::tempdir().unwrap();
    bin()
        .args(["import", "--from", "django"])
        .arg(fixture("rails.jsonl"))
        .arg("-o")
        .arg(dir.path().join("x.toml"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("rails.jsonl:1:1: not the Django"))
        .stderr(predicates::str::contains("Rails sql.active_record events"));
}

/// `import` of `text` fails with exit 2 and stderr holding every one of `expect`.
fn fails(name: &str, text: &[u8], from: Option<&str>, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut cmd = bin();
    cmd.arg("import").arg(&path).arg("-o").arg(dir.path().join("x.toml"));
    if let Some(f) = from {
        cmd.args(["--from", f]);
    }
    let out = cmd.assert().code(2).get_output().clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "stderr lacks {e:?}:\n{stderr}");
    }
    assert!(!dir.path().join("x.toml").exists());
}

fn lines(name: &str, n: usize) -> String {
    let text = std::fs::read_to_string(fixture(name)).unwrap();
    text.lines().take(n).map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_truncated_last_line_is_an_error_naming_it_in_every_format() {
    for name in ["rails.jsonl", "django.jsonl", "node.jsonl", "otel.jsonl"] {
        let mut text = lines(name, 3);
        let fourth = lines(name, 4)[text.len()..].to_string();
        text.push_str(&fourth[..fourth.len() / 2]);
        fails(name, text.as_bytes(), None, &[&format!("{name}:4:1: truncated")]);
    }
}

#[test]
fn a_file_of_another_format_or_of_no_format_is_refused_with_its_line() {
    fails(
        "x.jsonl",
        b"{\"hello\": 1}\n",
        None,
        &["x.jsonl:1:1:", "no format import reads", "hello"],
    );
    fails(
        "x.jsonl",
        b"\nSELECT 1;\n",
        None,
        &["x.jsonl:2:1:", "not a JSON object"],
    );
    // A directory is not a trace: said without a line to point at.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.toml");
    let assert = bin().arg("import").arg(dir.path()).arg("-o").arg(&out).assert().code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        stderr.contains("is a directory, not a trace file") && !stderr.contains(":1:1"),
        "{stderr}"
    );
    // An empty --name is refused as the flag's.
    bin()
        .arg("import")
        .arg(fixture("node.jsonl"))
        .args(["-o"])
        .arg(&out)
        .args(["--name", ""])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--name"));
    assert!(!out.exists());
    // A Node line in the middle of a Rails file.
    let mut text = lines("rails.jsonl", 2);
    text.push_str(&lines("node.jsonl", 1));
    fails(
        "mixed.jsonl",
        text.as_bytes(),
        None,
        &["mixed.jsonl:3:1:", "not Rails", "better-sqlite3"],
    );
}

#[test]
fn a_rails_event_with_binds_of_unknown_types_names_the_line_and_the_type() {
    let mut text = lines("rails.jsonl", 2);
    text.push_str(
        r#"{"event": "sql.active_record", "pid": 100, "tid": 10, "ts_ns": 1000000900000, "dur_ns": 1000, "request": "100-1", "name": "Price Load", "sql": "SELECT * FROM price WHERE amount = ?", "type_casted_binds": [{"$type": "BigDecimal", "value": "1.5"}]}"#,
    );
    text.push('\n');
    fails(
        "rails.jsonl",
        text.as_bytes(),
        None,
        &["rails.jsonl:3:1:", "`Price Load`", "binds of a type", "BigDecimal"],
    );
    let array = text.replace(r#"[{"$type": "BigDecimal", "value": "1.5"}]"#, "[[1, 2]]");
    fails("rails.jsonl", array.as_bytes(), None, &["rails.jsonl:3:1:", "an array"]);
}

#[test]
fn an_otel_sqlite_span_without_a_parent_is_an_error_naming_the_line() {
    let text = std::fs::read_to_string(fixture("otel.jsonl")).unwrap();
    let mut out = String::new();
    for (i, l) in text.lines().enumerate() {
        // The second export's first SQLite span loses its parent.
        let l = if i == 1 {
            let at = l.find("\"parentSpanId\"").unwrap();
            let end = at + l[at..].find(", ").unwrap() + 2;
            format!("{}{}", &l[..at], &l[end..])
        } else {
            l.to_string()
        };
        out.push_str(&l);
        out.push('\n');
    }
    fails(
        "otel.jsonl",
        out.as_bytes(),
        None,
        &["otel.jsonl:2:1:", "without a parent", "instrument the server"],
    );
}

#[test]
fn a_50_mb_line_is_refused_by_its_number_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all(lines("node.jsonl", 2).as_bytes()).unwrap();
        f.write_all(br#"{"driver":"better-sqlite3","pid":300,"ts_ns":1,"dur_ns":1,"conn":1,"sql":"SELECT '"#)
            .unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..50 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"'\"}\n").unwrap();
    }
    let out = bin()
        .arg("import")
        .arg(&path)
        .arg("-o")
        .arg(dir.path().join("x.toml"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("big.jsonl:3:1: line is longer than 16 MiB"), "{stderr}");
}

#[test]
fn snippets_print_for_every_framework_and_capture_names_the_route() {
    for (which, marker) in [
        ("rails", "ActiveSupport::Notifications.subscribe(\"sql.active_record\""),
        ("django", "\"django.db.backends\""),
        ("node", "module.exports = function trace(Database)"),
        ("go", "func Wrap(d driver.Driver) driver.Driver"),
        ("otel", "exporters:"),
        ("otel-cpu", "class CpuTimes(SpanProcessor)"),
    ] {
        bin()
            .args(["capture", "--snippet", which])
            .assert()
            .success()
            .stdout(predicates::str::contains(marker))
            .stderr(predicates::str::contains("litehammer import"));
    }
    bin()
        .args(["capture", "--snippet", "node", "-o", "x.jsonl"])
        .assert()
        .code(2);
}

/// OTel spans as the SDKs export them, without values (`db.query.parameter.*` sanitized away),
/// imported with a copy of the database: every `?` the database gives evidence for is drawn
/// from the column it meets, and says so; the scenario validates with no hand edit.
#[test]
fn otel_sanitized_values_are_drawn_from_the_db_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut sanitized = String::new();
    for line in std::fs::read_to_string(fixture("otel.jsonl")).unwrap().lines() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        for rs in v["resourceSpans"].as_array_mut().unwrap() {
            for ss in rs["scopeSpans"].as_array_mut().unwrap() {
                for s in ss["spans"].as_array_mut().unwrap() {
                    if let Some(attrs) = s.get_mut("attributes").and_then(|a| a.as_array_mut()) {
                        attrs.retain(|a| !a["key"].as_str().unwrap().starts_with("db.query.parameter."));
                    }
                }
            }
        }
        sanitized.push_str(&serde_json::to_string(&v).unwrap());
        sanitized.push('\n');
    }
    assert!(!sanitized.contains("db.query.parameter."));
    let spans = dir.path().join("otel.jsonl");
    std::fs::write(&spans, sanitized).unwrap();
    // Posts 1–3 (a dense key); comments only on posts 1 and 3, by two authors.
    let db = blog_db(dir.path());
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "INSERT INTO blog_comment (post_id, author, body) VALUES (1, 'ann', 'first!'), (1, 'bob', 'agreed, and more'),
             (3, 'ann', 'a longer comment than the others'), (3, 'ann', 'ok');",
        )
        .unwrap();
    let out = dir.path().join("app.toml");
    let (stdout, text) = import_with(&spans, &db, &out, &[]);
    for said in [
        "24 span(s) with parameters have no db.query.parameter",
        "7 sanitized parameter(s) modelled from the --db copy",
        "next: litehammer validate",
    ] {
        assert!(stdout.contains(said), "stdout lacks {said:?}:\n{stdout}");
    }
    assert!(!stdout.contains("left as fill_in"), "{stdout}");
    assert!(!text.contains("fill_in('"), "{text}");
    // The self-check does not run kinds without captured values (NULLs would fail it).
    assert!(!stdout.contains("self-check:"), "{stdout}");
    assert!(text.contains("Self-check: not run for this kind"), "{text}");
    let v: toml::Value = toml::from_str(&text).unwrap();
    let scripts = v["group"][0]["script"].as_array().unwrap();
    let params = |sql_start: &str| -> Vec<String> {
        scripts
            .iter()
            .flat_map(|s| s["steps"].as_array().unwrap())
            .filter(|st| {
                st.get("sql")
                    .and_then(|s| s.as_str())
                    .is_some_and(|s| s.starts_with(sql_start))
            })
            .flat_map(|st| st["params"].as_array().unwrap().iter().map(|p| p.to_string()))
            .collect()
    };
    // Compared with the dense key blog_post.id: its range.
    assert_eq!(params("SELECT id, title"), ["\"uniform(1, 3)\""], "{text}");
    assert_eq!(params("UPDATE blog_post SET views"), ["\"uniform(1, 3)\""], "{text}");
    // Compared with blog_comment.post_id: the copy's values (1 and 3), not a range.
    let by_post = params("SELECT id, author");
    assert!(
        by_post.len() == 1 && by_post[0].starts_with("\"choice(") && !by_post[0].contains('2'),
        "{by_post:?}\n{text}"
    );
    // Written by the INSERT: each column's distribution in the copy.
    let insert = params("INSERT INTO blog_comment");
    assert_eq!(insert.len(), 3, "{text}");
    assert!(insert[0].contains("choice(") && !insert[0].contains('2'), "{insert:?}");
    assert!(insert[1].contains("'ann'") && insert[1].contains("'bob'"), "{insert:?}");
    assert!(insert[2].contains("text"), "{insert:?}");
    for said in [
        "modelled from --db: uniform(1, 3): compared with blog_post.id",
        "compared with blog_comment.post_id",
        "written to blog_comment.author",
    ] {
        assert!(text.contains(said), "scenario lacks {said:?}:\n{text}");
    }
    bin().arg("validate").arg(&out).assert().success();
}

/// The Django snippet's handler adds up the CPU its thread spent writing earlier lines
/// (`tracer_ns`); import takes it out of the CPU readings, so the trace's own cost is not
/// replayed as app time. Here each line costs 100 µs: every 300 µs gap between two statements
/// (400 µs of CPU less a 100 µs statement) becomes 200 µs.
/// The Django fixture with a `server` line per process, as the snippet writes at a process's
/// first request.
fn django_with_server(dir: &Path, software: &str, multithread: bool) -> std::path::PathBuf {
    let mut text = String::new();
    for pid in [200, 201] {
        let line = serde_json::json!({"logger": "django.db.backends", "event": "server", "pid": pid,
            "tid": pid, "cpu_ns": 1, "tracer_ns": 0, "request": null, "software": software,
            "multithread": multithread});
        text.push_str(&format!("{line}\n"));
    }
    text.push_str(&std::fs::read_to_string(fixture("django.jsonl")).unwrap());
    let path = dir.join(format!("server-{multithread}.jsonl"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn django_server_line_sets_how_requests_queue_for_the_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = blog_db(dir.path());
    let out = dir.path().join("app.toml");
    // gunicorn's sync worker: one socket for all the processes, so one queue.
    let sync = django_with_server(dir.path(), "gunicorn/27.0.1", false);
    let (stdout, text) = import_with(&sync, &db, &out, &[]);
    assert_eq!(queue(&text).as_deref(), Some("shared"), "{text}");
    assert!(
        text.contains("the processes ran gunicorn/27.0.1 with one thread each"),
        "{text}"
    );
    assert!(stdout.contains("queue = \"shared\""), "{stdout}");
    bin().arg("validate").arg(&out).assert().success();
    // --queue says otherwise: the flag wins.
    let (_, text) = import_with(&sync, &db, &out, &["--queue", "per-process"]);
    assert_eq!(queue(&text), None, "{text}");
    assert!(text.contains("import --queue per-process"), "{text}");
    // Threads (gthread) keep their connections: per-process.
    let threads = django_with_server(dir.path(), "gunicorn/27.0.1", true);
    let (_, text) = import_with(&threads, &db, &out, &[]);
    assert_eq!(queue(&text), None, "{text}");
    assert!(text.contains("gunicorn/27.0.1 recorded threads"), "{text}");
    // No server recorded (a captured trace, or an older snippet): per-process, and how to say
    // otherwise; the flag gives shared.
    let (_, text) = import_with(&fixture("django.jsonl"), &db, &out, &[]);
    assert_eq!(queue(&text), None, "{text}");
    assert!(text.contains("import with --queue shared"), "{text}");
    let (_, text) = import_with(&fixture("django.jsonl"), &db, &out, &["--queue", "shared"]);
    assert_eq!(queue(&text).as_deref(), Some("shared"), "{text}");
    bin().arg("validate").arg(&out).assert().success();
    // Connections bound to the process that took them first (Node's cluster).
    let (_, text) = import_with(&fixture("django.jsonl"), &db, &out, &["--queue", "first-free"]);
    assert_eq!(queue(&text).as_deref(), Some("first-free"), "{text}");
    assert!(text.contains("import --queue first-free"), "{text}");
    bin().arg("validate").arg(&out).assert().success();
    bin()
        .arg("import")
        .arg(fixture("django.jsonl"))
        .arg("-o")
        .arg(dir.path().join("bad.toml"))
        .args(["--queue", "fifo"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--queue"));
}

#[test]
fn import_with_no_schema_anywhere_names_db_and_writes_nothing() {
    // The fixture has no CREATE and names a database that does not exist here.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app.toml");
    // Import of the Django fixture with `--db` (or none), refused as bad input that is not a
    // gap in import, and nothing written.
    let refused = |db: Option<&Path>| {
        let mut cmd = bin();
        cmd.arg("import").arg(fixture("django.jsonl")).arg("-o").arg(&out);
        if let Some(db) = db {
            cmd.arg("--db").arg(db);
        }
        let assert = cmd.assert().code(2);
        assert!(!out.exists());
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(!stderr.contains("gap in import"), "{stderr}");
        stderr
    };
    let stderr = refused(None);
    assert!(stderr.contains("no schema") && stderr.contains("--db FILE"), "{stderr}");
    // A --db of another app (no table the trace uses) names the flag and the table.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE unrelated(id INTEGER PRIMARY KEY);")
        .unwrap();
    let stderr = refused(Some(&other));
    assert!(
        stderr.contains("--db") && stderr.contains("has no table `blog_post`"),
        "{stderr}"
    );
    // A --db that cannot be read names the flag once.
    let stderr = refused(Some(&dir.path().join("missing.db")));
    assert!(stderr.contains("--db: ") && !stderr.contains("--db: --db"), "{stderr}");
}

#[test]
fn rails_server_line_of_puma_5_or_6_gives_keep_alive_inline() {
    let dir = tempfile::tempdir().unwrap();
    let db = blog_db(dir.path());
    let out = dir.path().join("app.toml");
    let with_server = |software: &str| {
        let line = serde_json::json!({"event": "server.rack", "pid": 100, "tid": 10,
            "software": software, "multithread": true, "program": "puma"});
        let text = format!("{line}\n{}", std::fs::read_to_string(fixture("rails.jsonl")).unwrap());
        let path = dir.path().join("server.jsonl");
        std::fs::write(&path, text).unwrap();
        import_with(&path, &db, &out, &[]).1
    };
    let inline = |text: &str| -> Option<i64> {
        let t: toml::Value = toml::from_str(text).unwrap();
        t["group"][0].get("keep_alive_inline").map(|v| v.as_integer().unwrap())
    };
    let text = with_server("puma 5.6.5 Birdie's Version");
    assert_eq!(inline(&text), Some(10), "{text}");
    assert!(text.contains("the app ran puma 5.6.5 Birdie's Version"), "{text}");
    bin().arg("validate").arg(&out).assert().success();
    assert_eq!(inline(&with_server("puma 6.4.2 The Eagle of Durango")), Some(10));
    // Another major version (Puma 7 reworked its keep-alive loop), another server, none.
    assert_eq!(inline(&with_server("puma 7.0.0 Romantic Warrior")), None);
    assert_eq!(inline(&with_server("WEBrick/1.7.0 (Ruby/3.1.2/2022-04-12)")), None);
    assert_eq!(inline(&with_server("")), None);
    // Threads of one process have no process queue: --queue is said to be unused.
    let (stdout, text) = import_with(&fixture("rails.jsonl"), &db, &out, &["--queue", "shared"]);
    assert!(
        stdout.contains("--queue shared: the trace has no group of processes"),
        "{stdout}"
    );
    assert!(!text.contains("queue = \"shared\""), "{text}");
}

#[test]
fn django_tracer_cost_is_taken_out_of_the_app_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut spent = std::collections::HashMap::new();
    let mut traced = String::new();
    for line in std::fs::read_to_string(fixture("django.jsonl")).unwrap().lines() {
        let mut e: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = spent.entry(e["tid"].as_u64().unwrap()).or_insert(0u64);
        e["tracer_ns"] = (*t).into();
        *t += 100_000;
        traced.push_str(&format!("{e}\n"));
    }
    let path = dir.path().join("costed.jsonl");
    std::fs::write(&path, &traced).unwrap();
    let plain = import("django.jsonl", &[]);
    let (stdout, costed) = import_with(&path, &blog_db(dir.path()), &dir.path().join("costed.toml"), &[]);
    let count = |text: &str, what: &str| text.matches(&format!("app_time = \"{what}\"")).count();
    assert_eq!(count(&plain.text, "300us"), 5, "{}", plain.text);
    assert_eq!(count(&costed, "300us"), 0, "{costed}");
    assert_eq!(count(&costed, "200us"), 5, "{costed}");
    assert!(stdout.contains("the trace's own cost: 48 line(s)"), "{stdout}");

    // A cost above the thread's CPU time is bad input naming the line.
    let broken = traced.replacen("\"tracer_ns\":0", "\"tracer_ns\":99000000000", 1);
    std::fs::write(&path, broken).unwrap();
    bin()
        .arg("import")
        .arg(&path)
        .arg("-o")
        .arg(dir.path().join("bad.toml"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("costed.jsonl:1:"))
        .stderr(predicates::str::contains("tracer_ns"));
}

/// OTLP/JSON spans of `procs` processes of one parent (pid 499), each serving six page views
/// one after another on `port(process)`; each request's client port is `client(process, i)`.
fn otel_served(procs: u32, port: impl Fn(u32) -> i64, client: impl Fn(u32, u32) -> i64) -> String {
    otel_served_with(procs, port, client, 10, false)
}

/// [`otel_served`], the requests `every_ms` apart; with `remote_parent` each server span has a
/// parent in another service (the load generator's trace context), so it is not a root.
fn otel_served_with(
    procs: u32,
    port: impl Fn(u32) -> i64,
    client: impl Fn(u32, u32) -> i64,
    every_ms: i64,
    remote_parent: bool,
) -> String {
    let int = |k: &str, v: i64| serde_json::json!({"key": k, "value": {"intValue": v.to_string()}});
    let text = |k: &str, v: &str| serde_json::json!({"key": k, "value": {"stringValue": v}});
    let mut out = String::new();
    for p in 0..procs {
        let mut spans = Vec::new();
        for i in 0..6u32 {
            let trace = format!("{:016x}{:016x}", p + 1, i + 1);
            let start = 1_000_000_000_000i64 + i as i64 * every_ms * 1_000_000;
            let mut server = serde_json::json!({
                "traceId": trace, "spanId": format!("{:08x}{:08x}", p + 1, 2 * i), "name": "GET /posts/:id",
                "kind": 2, "startTimeUnixNano": start.to_string(), "endTimeUnixNano": (start + 2_000_000).to_string(),
                "attributes": [text("http.method", "GET"), int("net.host.port", port(p)),
                               text("net.peer.ip", "127.0.0.1"), int("net.peer.port", client(p, i))]
            });
            if remote_parent {
                server["parentSpanId"] = serde_json::json!("ffffffff00000001");
            }
            spans.push(server);
            spans.push(serde_json::json!({
                "traceId": trace, "spanId": format!("{:08x}{:08x}", p + 1, 2 * i + 1),
                "parentSpanId": format!("{:08x}{:08x}", p + 1, 2 * i), "name": "SELECT", "kind": 3,
                "startTimeUnixNano": (start + 300_000).to_string(), "endTimeUnixNano": (start + 400_000).to_string(),
                "attributes": [text("db.system", "sqlite"),
                               text("db.statement", "SELECT id, title, body, views FROM blog_post WHERE id = ?"),
                               int("db.query.parameter.0", (i % 3 + 1) as i64)]
            }));
        }
        let export = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [int("process.pid", 500 + p as i64), int("process.parent_pid", 499)]},
            "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.wsgi"}, "spans": spans}]
        }]});
        out.push_str(&serde_json::to_string(&export).unwrap());
        out.push('\n');
    }
    out
}

/// The queue model from the request spans: processes of one parent serving one port, each
/// request on a client connection of its own, are a prefork server behind one socket
/// (gunicorn's sync worker): `queue = "shared"`. On keep-alive connections, or on ports of
/// their own, they keep the per-process default, and the note gives the figures.
#[test]
fn otel_request_spans_show_processes_sharing_one_socket() {
    let dir = tempfile::tempdir().unwrap();
    let db = blog_db(dir.path());
    let cases: [(&str, String, Option<&str>, &[&str]); 5] = [
        (
            "prefork",
            otel_served(3, |_| 8000, |p, i| 40000 + (p * 10 + i) as i64),
            Some("shared"),
            &[
                "3 processes of one parent (process.parent_pid 499) serving one port (8000)",
                "their 18 requests came on 18 client connections",
            ],
        ),
        (
            "keep-alive",
            otel_served(3, |_| 8000, |p, _| 40000 + p as i64),
            None,
            &[
                "3 processes of one parent",
                "their 18 requests came on 3 client connections",
            ],
        ),
        (
            "a port each",
            otel_served(3, |p| 8000 + p as i64, |p, i| 40000 + (p * 10 + i) as i64),
            None,
            &["queue: per-process (the default)"],
        ),
        (
            // Server spans whose parent is the caller's (not roots) are the requests too.
            "remote parents",
            otel_served_with(3, |_| 8000, |p, i| 40000 + (p * 10 + i) as i64, 10, true),
            Some("shared"),
            &["their 18 requests came on 18 client connections"],
        ),
        (
            // A port used again 6 s later is a new connection (a client cycles through its
            // ports), not a keep-alive one.
            "ports reused",
            otel_served_with(3, |_| 8000, |p, i| 40000 + (p * 10 + i % 2) as i64, 6_000, false),
            Some("shared"),
            &["their 18 requests came on 18 client connections"],
        ),
    ];
    for (name, spans, want, said) in cases {
        let trace = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&trace, spans).unwrap();
        let out = dir.path().join(format!("{name}.toml"));
        let (stdout, text) = import_with(&trace, &db, &out, &[]);
        assert_eq!(queue(&text).as_deref(), want, "{name}:\n{text}");
        for s in said {
            assert!(
                stdout.contains(s) && text.contains(s),
                "{name}: lacks {s:?}:\n{stdout}\n{text}"
            );
        }
        if name == "a port each" {
            assert!(!text.contains("processes of one parent"), "{text}");
        }
        // --queue overrides what the spans show.
        let (_, text) = import_with(&trace, &db, &out, &["--queue", "per-process"]);
        assert_eq!(queue(&text), None, "{name}: --queue per-process:\n{text}");
    }
}
