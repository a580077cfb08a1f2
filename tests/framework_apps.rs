//! The snippets of `litehammer capture --snippet` run in real apps: a Rails 6.1 app (Debian's
//! ruby-rails), a Django app (pip), the Express + better-sqlite3 12.11.1 app of
//! calibration/node (npm), and the net/http + database/sql app of calibration/go (Debian's
//! golang-go and mattn/go-sqlite3). Each test writes the printed snippet into its app, drives a few
//! requests, imports the trace and checks the request kinds. A WSGI app instrumented with the
//! OpenTelemetry Python SDK (pip) exports OTLP/JSON spans for the OTel route. A test whose stack
//! is not installed is skipped with a message, unless LITEHAMMER_REQUIRE_RAILS / _DJANGO / _NODE /
//! _GO / _OTEL is 1.

mod common;

use common::{bin, installed};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn works(cmd: &mut Command) -> bool {
    cmd.output().is_ok_and(|o| o.status.success())
}

fn snippet(which: &str) -> String {
    let out = bin().args(["capture", "--snippet", which]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Imports `trace` (format detected) and returns (stdout, scenario, [(weight, steps)]).
fn import(dir: &Path, trace: &Path, expect_format: &str) -> (String, String, Vec<(i64, Vec<String>)>) {
    let out = dir.join("app.toml");
    let assert = bin().arg("import").arg(trace).arg("-o").arg(&out).assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    assert!(stdout.contains(expect_format), "{stdout}");
    bin().arg("validate").arg(&out).assert().success();
    let text = std::fs::read_to_string(&out).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    let kinds = kinds_of(&v);
    (stdout, text, kinds)
}

/// A scenario's request kinds: (weight, the steps' SQL, with BEGIN and COMMIT for block steps).
fn kinds_of(v: &toml::Value) -> Vec<(i64, Vec<String>)> {
    v["group"][0]["script"]
        .as_array()
        .unwrap()
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
        .collect()
}

fn has_kind(kinds: &[(i64, Vec<String>)], weight: i64, starts: &[&str], text: &str) {
    assert!(
        kinds.iter().any(|(w, steps)| *w == weight
            && steps.len() == starts.len()
            && steps.iter().zip(starts).all(|(s, p)| s.starts_with(p))),
        "no kind of weight {weight} with steps {starts:?} in:\n{text}"
    );
}

#[test]
fn rails_initializer_traces_a_rails_61_app() {
    if !installed(
        works(Command::new("ruby").args(["-e", "require 'rails'; require 'active_record'; require 'sqlite3'"])),
        "LITEHAMMER_REQUIRE_RAILS",
        "Rails with sqlite3 (ruby-rails, ruby-sqlite3)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/frameworks/rails_app.rb"),
        dir.path().join("app.rb"),
    )
    .unwrap();
    std::fs::write(dir.path().join("litehammer_trace.rb"), snippet("rails")).unwrap();
    let trace = dir.path().join("trace.jsonl");
    let st = Command::new("ruby")
        .arg("app.rb")
        .current_dir(dir.path())
        .env("APP_DB", dir.path().join("blog.sqlite3"))
        .env("LITEHAMMER_TRACE", &trace)
        .env("RAILS_ENV", "production")
        .env("VIEWS", "7")
        .env("COMMENTS", "4")
        .status()
        .unwrap();
    assert!(st.success());
    let (stdout, text, kinds) = import(dir.path(), &trace, "format: Rails sql.active_record");
    assert!(
        stdout.contains("one persistent connection per worker thread"),
        "{stdout}"
    );
    // The first view and the first comment also read the schema (Rails' column cache): the
    // other 6 views and 3 comments are one kind each.
    has_kind(
        &kinds,
        6,
        &[
            r#"SELECT "posts".* FROM "posts""#,
            r#"SELECT "comments".* FROM "comments""#,
            r#"UPDATE "posts" SET views = views + 1"#,
        ],
        &text,
    );
    has_kind(
        &kinds,
        3,
        &["BEGIN", r#"SELECT "posts".*"#, r#"INSERT INTO "comments""#, "COMMIT"],
        &text,
    );
    // Those first two, with the schema read as an optional statement, are weighted variants of
    // the view and comment kinds (#28 item 5), not kinds of their own. (The app's seeding at
    // start-up is not counted here: how the idle-gap rule splits it depends on the machine's
    // load, and an exact request or kind count for the whole trace failed once in a loaded run.)
    assert!(
        text.contains("One request kind (endpoint) in 2 weighted variants, 7 requests in all")
            && text.contains("One request kind (endpoint) in 2 weighted variants, 4 requests in all"),
        "{text}"
    );
}

/// A Python with Django: $LITEHAMMER_DJANGO_PYTHON, else python3.
fn django_python() -> PathBuf {
    std::env::var_os("LITEHAMMER_DJANGO_PYTHON").map_or_else(|| "python3".into(), PathBuf::from)
}

#[test]
fn django_logging_entry_traces_a_django_app() {
    let python = django_python();
    if !installed(
        works(Command::new(&python).args(["-c", "import django"])),
        "LITEHAMMER_REQUIRE_DJANGO",
        "Django (pip install -r calibration/django/requirements.txt; or LITEHAMMER_DJANGO_PYTHON)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("tests/fixtures/frameworks/django_blog.py"),
        dir.path().join("blog.py"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("settings.py"),
        format!("from blog import *  # noqa\n{}", snippet("django")),
    )
    .unwrap();
    let trace = dir.path().join("trace.jsonl");
    let out = Command::new(&python)
        .args(["-c", "import django; django.setup(); import blog; blog.drive(7, 4)"])
        .current_dir(dir.path())
        .env("APP_DB", dir.path().join("blog.sqlite3"))
        .env("LITEHAMMER_TRACE", &trace)
        .env("DJANGO_SETTINGS_MODULE", "settings")
        .env("PYTHONPATH", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("Logging error"), "{stderr}");
    let (stdout, text, kinds) = import(dir.path(), &trace, "format: the Django django.db.backends log");
    assert!(stdout.contains("setting(s) the hook read at connect"), "{stdout}");
    // The handler counts its own CPU; import takes it out of the app time.
    assert!(stdout.contains("the trace's own cost"), "{stdout}");
    let written = std::fs::read_to_string(&trace).unwrap();
    let spent: Vec<i64> = written
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["tracer_ns"].as_i64())
        .collect();
    assert!(
        spent.len() == written.lines().count() && spent.iter().any(|&t| t > 0),
        "{written}"
    );
    has_kind(
        &kinds,
        7,
        &[
            "SELECT id, title, views FROM post",
            "SELECT id, body FROM comment",
            "UPDATE post SET views",
        ],
        &text,
    );
    has_kind(
        &kinds,
        4,
        &["BEGIN", "INSERT INTO comment", "UPDATE post SET comments", "COMMIT"],
        &text,
    );
}

#[test]
fn node_wrapper_traces_the_express_better_sqlite3_app() {
    let app = root().join("calibration/node");
    if !installed(
        works(Command::new("node").arg("--version")) && app.join("node_modules/better-sqlite3").is_dir(),
        "LITEHAMMER_REQUIRE_NODE",
        "Node with calibration/node's packages (cd calibration/node && npm install)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The wrapper as printed, where the app loads it from.
    assert_eq!(
        snippet("node"),
        std::fs::read_to_string(root().join("snippets/trace/litehammer-better-sqlite3.js")).unwrap()
    );
    let db = dir.path().join("blog.db");
    let seed = Command::new("node")
        .arg(app.join("server.js"))
        .arg("seed")
        .arg(&db)
        .arg("10")
        .status()
        .unwrap();
    assert!(seed.success());
    let before = dir.path().join("before.db");
    std::fs::copy(&db, &before).unwrap();
    let trace = dir.path().join("trace.jsonl");
    let st = Command::new("node")
        .arg(app.join("drive.js"))
        .arg(&db)
        .args(["7", "4"])
        .env("LITEHAMMER_TRACE", &trace)
        .status()
        .unwrap();
    assert!(st.success());
    // The process said which server it is, once (not a cluster worker).
    let said: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &serde_json::Value| l["event"] == "server")
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0]["software"].as_str().unwrap().starts_with("node/"), "{said:?}");
    assert_eq!(said[0]["cluster"], false, "{said:?}");
    let (stdout, text, kinds) = import(dir.path(), &trace, "format: the better-sqlite3 wrapper");
    // The wrapper reads the process's CPU: import says at which throughput the app time was
    // measured, in the scenario and in its output.
    assert!(
        text.contains("App time is the CPU the app burnt per request in this trace: at "),
        "{text}"
    );
    assert!(
        stdout.contains("app time is the app's CPU per request at the traced run's"),
        "{stdout}"
    );
    has_kind(
        &kinds,
        7,
        &[
            "SELECT id, title, body, views, comments FROM post",
            "SELECT id, author",
            "UPDATE post SET views",
        ],
        &text,
    );
    has_kind(
        &kinds,
        4,
        &["BEGIN", "INSERT INTO comment", "UPDATE post SET comments", "COMMIT"],
        &text,
    );
    assert!(text.contains("journal_mode = [\"wal\""), "{text}");
}

#[test]
fn go_wrapper_traces_a_net_http_database_sql_app() {
    let mattn =
        std::env::var("GO_SQLITE3_DIR").unwrap_or_else(|_| "/usr/share/gocode/src/github.com/mattn/go-sqlite3".into());
    if !installed(
        works(Command::new("go").arg("version")) && Path::new(&mattn).join("sqlite3.go").is_file(),
        "LITEHAMMER_REQUIRE_GO",
        "Go with mattn/go-sqlite3 (apt-get install golang-go golang-github-mattn-go-sqlite3-dev)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The app of calibration/go with the wrapper as printed, built offline.
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("litehammer")).unwrap();
    std::fs::copy(root().join("calibration/go/main.go"), src.join("main.go")).unwrap();
    std::fs::write(src.join("litehammer/litehammer_sql.go"), snippet("go")).unwrap();
    std::fs::write(
        src.join("go.mod"),
        format!(
            "module goapp\n\ngo 1.19\n\nrequire github.com/mattn/go-sqlite3 v1.14.16\n\n\
             replace github.com/mattn/go-sqlite3 => {mattn}\n"
        ),
    )
    .unwrap();
    let app = dir.path().join("goapp");
    let out = Command::new("go")
        .args(["build", "-o"])
        .arg(&app)
        .arg(".")
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GO111MODULE", "on")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = dir.path().join("blog.db");
    assert!(
        Command::new(&app)
            .arg("seed")
            .arg(&db)
            .arg("10")
            .status()
            .unwrap()
            .success()
    );
    let before = dir.path().join("before.db");
    std::fs::copy(&db, &before).unwrap();
    let trace = dir.path().join("trace.jsonl");
    let st = Command::new(&app)
        .arg("drive")
        .arg(&db)
        .args(["7", "4"])
        .env("LITEHAMMER_TRACE", &trace)
        .status()
        .unwrap();
    assert!(st.success());
    let lines = std::fs::read_to_string(&trace).unwrap();
    // A header, an open, the 4 settings, 7 × 3 + 4 × 4 statements.
    assert_eq!(lines.lines().count(), 1 + 1 + 4 + 7 * 3 + 4 * 4, "{lines}");
    assert!(lines.contains(r#""expanded":"INSERT INTO comment (post_id, author, body, created) VALUES (1, 'visitor', 'it''s 0', datetime('now'))""#), "{lines}");
    let (stdout, text, kinds) = import(dir.path(), &trace, "11 request(s), 2 kind(s)");
    assert!(stdout.contains("41 statements"), "{stdout}");
    has_kind(
        &kinds,
        7,
        &[
            "SELECT id, title, body, views, comments FROM post",
            "SELECT id, author",
            "UPDATE post SET views",
        ],
        &text,
    );
    has_kind(
        &kinds,
        4,
        &["BEGIN", "INSERT INTO comment", "UPDATE post SET comments", "COMMIT"],
        &text,
    );
    // The settings the wrapper read at connect: the DSN's WAL and busy timeout, _txlock=immediate.
    assert!(text.contains("journal_mode = [\"wal\""), "{text}");
    assert!(text.contains("busy_timeout = \"5000ms\""), "{text}");
    assert!(text.contains("{ begin = \"immediate\" }"), "{text}");
    assert!(text.contains("rows = 10"), "{text}");
}

/// A Python with the OpenTelemetry SDK: $LITEHAMMER_OTEL_PYTHON, else python3.
fn otel_python() -> PathBuf {
    std::env::var_os("LITEHAMMER_OTEL_PYTHON").map_or_else(|| "python3".into(), PathBuf::from)
}

#[test]
fn otel_sdk_spans_of_a_wsgi_app_import_as_its_requests() {
    let python = otel_python();
    if !installed(
        works(Command::new(&python).args([
            "-c",
            "import opentelemetry.sdk.trace, opentelemetry.instrumentation.sqlite3, \
             opentelemetry.instrumentation.wsgi, opentelemetry.exporter.otlp.proto.common",
        ])),
        "LITEHAMMER_REQUIRE_OTEL",
        "the OpenTelemetry SDK (pip install -r tests/fixtures/frameworks/otel-requirements.txt; or \
         LITEHAMMER_OTEL_PYTHON)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("blog.db");
    let spans = dir.path().join("spans.jsonl");
    // The span processor that reads the CPU, as `capture --snippet otel-cpu` prints it.
    let printed = bin().args(["capture", "--snippet", "otel-cpu"]).assert().success();
    std::fs::write(dir.path().join("otel_cpu.py"), &printed.get_output().stdout).unwrap();
    let out = Command::new(&python)
        .arg(root().join("tests/fixtures/frameworks/otel_app.py"))
        .arg(&db)
        .arg(&spans)
        .args(["7", "4"])
        .env("LITEHAMMER_OTEL_CPU", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 11 server spans and 7 × 5 + 4 × 6 SQLite spans (2 PRAGMAs a request), one export a line.
    let lines = std::fs::read_to_string(&spans).unwrap();
    assert_eq!(lines.lines().count(), 11 + 7 * 5 + 4 * 6, "{lines}");
    // Every span carries the thread's CPU at its start and end (integers, the end not before
    // the start) and its thread.
    let mut n = 0;
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for s in v["resourceSpans"][0]["scopeSpans"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|ss| ss["spans"].as_array().unwrap())
        {
            let int = |key: &str| -> Option<i64> {
                s["attributes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|kv| kv["key"] == key)
                    .and_then(|kv| kv["value"]["intValue"].as_str())
                    .and_then(|v| v.parse().ok())
            };
            let (a, b) = (int("litehammer.cpu_start_ns"), int("litehammer.cpu_end_ns"));
            assert!(matches!((a, b), (Some(a), Some(b)) if 0 <= a && a <= b), "{s}");
            assert!(int("thread.id").is_some(), "{s}");
            n += 1;
        }
    }
    assert_eq!(n, 11 + 7 * 5 + 4 * 6);
    let scenario = dir.path().join("app.toml");
    let assert = bin()
        .arg("import")
        .arg(&spans)
        .arg("-o")
        .arg(&scenario)
        .arg("--db")
        .arg(&db)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for said in [
        "format: OTLP/JSON spans",
        "59 statements",
        "11 request(s), 2 kind(s)",
        // The SDK's sqlite3 instrumentation records no values: each `?` is drawn from the
        // column it meets in the --db copy (src/import/sanitized.rs).
        "29 span(s) with parameters have no db.query.parameter",
        "7 sanitized parameter(s) modelled from the --db copy",
        "next: litehammer validate",
        // App time from the readings, not the wall clock.
        "the spans carry their thread's CPU time",
    ] {
        assert!(stdout.contains(said), "stdout lacks {said:?}:\n{stdout}");
    }
    assert!(!stdout.contains("spans have none"), "{stdout}");
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(text.contains("the spans carry their thread's CPU time"), "{text}");
    let v: toml::Value = toml::from_str(&text).unwrap();
    let kinds = kinds_of(&v);
    has_kind(
        &kinds,
        7,
        &[
            "SELECT id, title, body, views, comments FROM post",
            "SELECT id, author",
            "UPDATE post SET views",
        ],
        &text,
    );
    has_kind(
        &kinds,
        4,
        &["BEGIN", "INSERT INTO comment", "UPDATE post SET comments", "COMMIT"],
        &text,
    );
    // The PRAGMAs each request ran are settings, not steps.
    assert!(text.contains("busy_timeout = \"5000ms\""), "{text}");
    assert!(text.contains("synchronous = [\"normal\""), "{text}");
    // Nothing left to fill in: the post ids, authors and bodies come from the copy.
    assert!(!text.contains("fill_in('"), "{text}");
    // The self-check does not run kinds without captured values (NULLs would fail it).
    assert!(!stdout.contains("self-check:"), "{stdout}");
    assert!(text.contains("Self-check: not run for this kind"), "{text}");
    assert!(text.contains("compared with post.id"), "{text}");
    bin().arg("validate").arg(&scenario).assert().success();
}
