//! `--target postgres`: runs against a throwaway PostgreSQL server through the real binary,
//! its clean-up (after success, failure and Ctrl-C), verification on PostgreSQL, and bad
//! input. Tests that need PostgreSQL skip with a message when it is not installed; CI sets
//! LITEHAMMER_REQUIRE_POSTGRES=1 (and installs the `postgresql` package) so they must run.

mod common;

use common::{assert_exit_2, bin, command_lines_with, installed, read_json as report, run_ids, run_in, write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn postgres_installed() -> bool {
    let found = std::env::var_os("LITEHAMMER_PG_BIN")
        .map(|d| Path::new(&d).join("initdb").is_file())
        .unwrap_or(false)
        || std::fs::read_dir("/usr/lib/postgresql")
            .map(|dirs| dirs.flatten().any(|d| d.path().join("bin/initdb").is_file()))
            .unwrap_or(false);
    installed(
        found,
        "LITEHAMMER_REQUIRE_POSTGRES",
        "PostgreSQL (apt-get install postgresql)",
    )
}

/// A temporary directory the `postgres` user can enter (the throwaway server runs as it
/// when the tests run as root): the binary's TMPDIR, so a test sees what it leaves behind.
fn tmpdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Nothing of a throwaway server is left: no directory, no process using one.
fn assert_no_server_left(tmp: &Path) {
    let left: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("litehammer-pg-"))
        .collect();
    assert!(left.is_empty(), "server directories left behind: {left:?}");
    let needle = tmp.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let running = command_lines_with(&["postgres", &needle]);
        if running.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "postgres still running: {running:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SCENARIO: &str = r#"
name = "pg-tiny"
duration = "300ms"
warmup = "0s"
seed = 7

[matrix]
journal_mode = ["wal", "delete"]

[setup]
sql = "CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT);"
populate = [{ table = "kv", rows = 200, values = ["uniform(1, 100)", "text(10)"] }]

[[group]]
name = "writers"
workers = 2
transaction = "immediate"
statements_per_transaction = 2
retry = { max_tries = 5 }

[[group.op]]
name = "put"
sql = "INSERT INTO kv(k, v) VALUES (?1, ?2)"
params = ["uniform(1, 100)", "text(5, 20)"]

[[group.op]]
name = "touch"
sql = "UPDATE kv SET v = ?2 WHERE id = ?1"
params = ["uniform(1, 200)", "text(3)"]

# The application model: 3 clients queue for 2 workers, a connection per request, app time.
[[group]]
name = "readers"
workers = 2
clients = 3
connection = "per-request"
app_time = "1ms"
transaction = "none"

[[group.script]]
name = "get_then_count"
steps = [
  { sql = "SELECT id, k FROM kv WHERE id = ?1", params = ["uniform(1, 200)"] },
  { sql = "SELECT count(*) FROM kv WHERE k = ?1", params = ["$0.k"] },
]

[[check]]
name = "no empty values"
sql = "SELECT count(*) FROM kv WHERE v IS NULL"
expect = 0
"#;

#[test]
fn one_report_holds_both_targets_verified_and_no_server_is_left() {
    if !postgres_installed() {
        return;
    }
    let tmp = tmpdir();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = dir.path().join("r.json");
    let assert = run_in(
        tmp.path(),
        scenario.to_str().unwrap(),
        &["--matrix", "target=sqlite,postgres"],
        &out,
    )
    .timeout(Duration::from_secs(120))
    .assert();
    let output = assert.get_output();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = report(&out);
    let runs = r["runs"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // journal_mode does not apply to PostgreSQL: one PostgreSQL run, not two.
    assert_eq!(
        ids,
        [
            "target=sqlite,journal_mode=wal",
            "target=sqlite,journal_mode=delete",
            "target=postgres"
        ]
    );
    for run in runs {
        assert_eq!(run["status"], "completed", "{run}");
        assert_eq!(run["verification"]["ok"], true, "{}", run["verification"]);
        for group in run["groups"].as_array().unwrap() {
            let committed = group["transactions"]["committed"].as_u64().unwrap();
            assert!(committed > 0, "{} {}: nothing committed", run["id"], group["name"]);
        }
    }
    let pg = &runs[2];
    assert!(pg["sqlite"].is_null());
    assert!(
        pg["postgres"]["server_version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric)
    );
    assert_eq!(pg["verification"]["scenario_checks"][0]["ok"], true);
    // The PostgreSQL run acknowledged inserts, and found them all.
    assert!(pg["verification"]["writes_acknowledged"].as_u64().unwrap() > 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("target=postgres (PostgreSQL "), "{stdout}");
    assert_no_server_left(tmp.path());
}

#[test]
fn a_lost_row_on_postgres_is_caught_over_tcp_too() {
    if !postgres_installed() {
        return;
    }
    let tmp = tmpdir();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = dir.path().join("r.json");
    let assert = run_in(
        tmp.path(),
        scenario.to_str().unwrap(),
        &["--target", "postgres", "--pg-tcp"],
        &out,
    )
    .env("LITEHAMMER_FAULT", "lose-row")
    .timeout(Duration::from_secs(120))
    .assert();
    assert.code(1);
    let r = report(&out);
    let run = &r["runs"][0];
    assert_eq!(run["postgres"]["transport"], "tcp");
    assert_eq!(run["verification"]["ok"], false);
    assert_eq!(run["verification"]["lost"], 1, "{}", run["verification"]);
    assert_no_server_left(tmp.path());
}

#[test]
fn a_failing_run_and_ctrl_c_still_remove_the_server() {
    if !postgres_installed() {
        return;
    }
    let tmp = tmpdir();
    let dir = tempfile::tempdir().unwrap();
    // The set-up fails on PostgreSQL only (its override is broken SQL).
    let broken = SCENARIO.replace(
        "[setup]\n",
        "[setup]\npostgres = \"CREATE TABLE kv(id bigint primary key, k bigint, v text); CREATE TABLE kv(x int);\"\n",
    );
    let scenario = write(dir.path(), "broken.toml", &broken);
    let out = dir.path().join("r.json");
    let assert = run_in(tmp.path(), scenario.to_str().unwrap(), &["--target", "postgres"], &out)
        .timeout(Duration::from_secs(120))
        .assert();
    assert.code(1);
    let r = report(&out);
    assert_eq!(r["runs"][0]["status"], "failed");
    let error = r["runs"][0]["error"].as_str().unwrap();
    assert!(error.contains("already exists"), "{error}");
    assert_no_server_left(tmp.path());

    // Ctrl-C in the middle of a long run: the run stops in order, the server goes.
    let long = write(
        dir.path(),
        "long.toml",
        &SCENARIO.replace("duration = \"300ms\"", "duration = \"60s\""),
    );
    let exe = assert_cmd::cargo::cargo_bin("litehammer");
    let mut child = std::process::Command::new(exe)
        .env("TMPDIR", tmp.path())
        .env_remove("LITEHAMMER_FAULT")
        .args([
            "run",
            long.to_str().unwrap(),
            "--target",
            "postgres",
            "--no-probe",
            "-q",
            "-o",
        ])
        .arg(dir.path().join("long.json"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Wait for the server's directory and the report's first write (after the server
    // started), then for the workers to be under way.
    let long_report = dir.path().join("long.json");
    while !(long_report.exists()
        && std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("litehammer-pg-")))
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no server started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "litehammer ended before the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    unsafe_kill(child.id(), "INT");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("litehammer did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let r = report(&dir.path().join("long.json"));
    assert_eq!(r["status"], "interrupted");
    assert_no_server_left(tmp.path());
}

fn unsafe_kill(pid: u32, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

#[test]
fn bad_targets_and_untranslatable_sql_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let s = scenario.to_str().unwrap();
    let out = dir.path().join("r.json");
    for (target, needle) in [
        ("mysql", "unknown target `mysql`"),
        ("postgres=", "needs a URL"),
        ("postgres=localhost:5432", "must start with postgres://"),
        ("postgres=postgres://u:secret@h:notaport/db", "malformed PostgreSQL URL"),
        // Port 1 on loopback: nothing listens there.
        (
            "postgres=postgres://lh:secret@127.0.0.1:1/postgres",
            "cannot connect to PostgreSQL",
        ),
    ] {
        let stderr = assert_exit_2(
            bin()
                .args(["run", s, "--target", target, "--no-probe", "-q", "-o"])
                .arg(&out),
            &format!("--target {target}"),
            &[needle],
        );
        assert!(!stderr.contains("secret"), "the password is shown: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let bad = SCENARIO.replace(
        "sql = \"UPDATE kv SET v = ?2 WHERE id = ?1\"",
        "sql = \"INSERT OR REPLACE INTO kv(id, v) VALUES (?1, ?2)\"",
    );
    let bad = write(dir.path(), "bad.toml", &bad);
    assert_exit_2(
        bin().args(["validate", bad.to_str().unwrap(), "--target", "postgres"]),
        "untranslatable SQL",
        &["op `touch`", "INSERT OR REPLACE", "postgres = "],
    );
    // The same scenario is fine for SQLite.
    bin().args(["validate", bad.to_str().unwrap()]).assert().success();
}

#[test]
fn n_plus_one_reports_what_it_costs_on_each_target() {
    if !postgres_installed() {
        return;
    }
    let tmp = tmpdir();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let assert = run_in(
        tmp.path(),
        "n-plus-one",
        &["--duration", "500ms", "--warmup", "0s"],
        &out,
    )
    .timeout(Duration::from_secs(180))
    .assert();
    let output = assert.get_output();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = report(&out);
    let ids = run_ids(&r);
    assert_eq!(
        ids,
        [
            "target=sqlite",
            "target=postgres,postgres.transport=unix",
            "target=postgres,postgres.transport=tcp"
        ]
    );
    let findings: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for id in &ids {
        for n in ["N=10", "N=100"] {
            assert!(
                findings
                    .iter()
                    .any(|f| f.starts_with(id) && f.contains(n) && f.contains("N+1 costs")),
                "{id} {n}: {findings:?}"
            );
        }
    }
    // Over TCP each of the 100 extra queries is a round trip: the 1+N page is slower.
    let tcp = &r["runs"][2]["groups"][0]["ops"];
    let p50 = |name: &str| {
        tcp.as_array().unwrap().iter().find(|o| o["name"] == name).unwrap()["latency_us"]["p50"]
            .as_f64()
            .unwrap()
    };
    assert!(p50("n_plus_one_100") > p50("join_100"), "{tcp}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("findings:"), "{stdout}");
    assert_no_server_left(tmp.path());
}

/// Process workers (`isolation = "process"`) run on PostgreSQL too: each child process gets
/// the run's database over its pipe and connects itself.
#[test]
fn process_workers_run_on_postgres() {
    if !postgres_installed() {
        return;
    }
    let tmp = tmpdir();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        r#"
name = "pg-processes"
operations = 60
warmup = "0s"
seed = 5

[setup]
sql = "CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT);"
populate = [{ table = "kv", rows = 50, values = ["uniform(1, 100)", "text(10)"] }]

[[group]]
name = "web"
workers = 2
clients = 4
isolation = "process"
app_time = "1ms"
transaction = "none"

[[group.script]]
name = "view"
steps = [
  { sql = "SELECT k FROM kv WHERE id = ?1", params = ["uniform(1, 50)"] },
  { begin = "immediate" },
  { sql = "INSERT INTO kv(k, v) VALUES (?1, ?2)", params = ["$0.k", "text(5)"] },
  { commit = true },
]
"#,
    );
    let out = dir.path().join("r.json");
    let assert = run_in(tmp.path(), scenario.to_str().unwrap(), &["--target", "postgres"], &out)
        .timeout(Duration::from_secs(120))
        .assert();
    let output = assert.get_output();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = report(&out);
    let run = &r["runs"][0];
    assert_eq!(run["status"], "completed", "{run}");
    assert!(run["sqlite"].is_null());
    assert!(run["postgres"]["database"].as_str().is_some());
    let g = &run["groups"][0];
    assert_eq!(g["app"]["isolation"], "process");
    let mut pids: Vec<u64> = g["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_u64().unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 2, "two worker processes");
    let committed = g["transactions"]["committed"].as_u64().unwrap();
    assert_eq!(committed + g["transactions"]["rolled_back"].as_u64().unwrap(), 60);
    // Every insert the processes acknowledged is in PostgreSQL.
    let v = &run["verification"];
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["writes_acknowledged"].as_u64().unwrap(), committed, "{v}");
    assert_no_server_left(tmp.path());
}
