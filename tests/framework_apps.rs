//! The snippets of `litehammer capture --snippet` run in real apps: a Rails 6.1 app (Debian's
//! ruby-rails), a Django app (pip) and the Express + better-sqlite3 12.11.1 app of
//! calibration/node (npm). Each test writes the printed snippet into its app, drives a few
//! requests, imports the trace and checks the request kinds. A test whose stack is not
//! installed is skipped with a message, unless LITEHAMMER_REQUIRE_RAILS / _DJANGO / _NODE is 1.

mod common;

use common::bin;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the stack is here; when not, panics if `require` is set, else says it skips.
fn available(ok: bool, require: &str, what: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var(require).as_deref() != Ok("1"),
        "{require}=1 but {what} is not installed"
    );
    eprintln!("skipped: {what} is not installed (set {require}=1 to make this test mandatory)");
    false
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
    let kinds = v["group"][0]["script"]
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
        .collect();
    (stdout, text, kinds)
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
    if !available(
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
}

/// A Python with Django: $LITEHAMMER_DJANGO_PYTHON, else python3.
fn django_python() -> PathBuf {
    std::env::var_os("LITEHAMMER_DJANGO_PYTHON").map_or_else(|| "python3".into(), PathBuf::from)
}

#[test]
fn django_logging_entry_traces_a_django_app() {
    let python = django_python();
    if !available(
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
    if !available(
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
    let (_, text, kinds) = import(dir.path(), &trace, "format: the better-sqlite3 wrapper");
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
