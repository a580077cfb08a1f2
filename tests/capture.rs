//! `litehammer capture`: a Python sqlite3 program in several processes is recorded
//! completely; bad input is exit 2; a command without SQLite says so.

mod common;

use common::bin;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the preload library into this test's target dir (`cargo test` does not).
fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "litehammer-capture", "--target-dir"])
            .arg(profile_dir.parent().unwrap())
            .status()
            .expect("run cargo build");
        assert!(st.success(), "cargo build -p litehammer-capture failed");
        profile_dir.join("liblitehammer_capture.so")
    })
    .clone()
}

fn python_ok() -> bool {
    Command::new("python3")
        .args(["-c", "import sqlite3"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn capture_app(redact: bool) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/app.py");
    let mut cmd = bin();
    cmd.arg("capture").arg("-o").arg(&trace);
    if redact {
        cmd.arg("--redact");
    }
    let out = cmd
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "timeout", "-k", "5", "120", "python3"])
        .arg(&app)
        .arg(dir.path().join("app.db"))
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir, trace, stdout)
}

#[test]
fn captures_every_statement_of_every_worker_process() {
    if !python_ok() {
        eprintln!("skipped: no python3 with sqlite3");
        return;
    }
    let (dir, trace, stdout) = capture_app(false);
    assert!(stdout.contains("4 process(es)"), "{stdout}");
    let lines = events(&trace);
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".litehammer-capture-")),
        "part files removed"
    );
    // What each worker sent, against what the trace holds for its pid.
    let mut workers = 0;
    for entry in dir.path().read_dir().unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("sent.").and_then(|r| r.strip_suffix(".json")) else {
            continue;
        };
        workers += 1;
        let pid: i64 = pid.parse().unwrap();
        let sent: Vec<(String, Vec<Value>)> =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(&name)).unwrap()).unwrap();
        let traced: Vec<&Value> = lines
            .iter()
            .filter(|l| l["kind"] == "stmt" && l["pid"] == pid)
            .collect();
        let mut want: HashMap<&str, usize> = HashMap::new();
        for (sql, _) in &sent {
            *want.entry(sql).or_default() += 1;
        }
        let mut got: HashMap<&str, usize> = HashMap::new();
        for l in &traced {
            *got.entry(l["sql"].as_str().unwrap()).or_default() += 1;
        }
        assert_eq!(got, want, "statement counts of worker {pid}");
        // Every statement it sent, with its values, is in the trace.
        for (sql, params) in &sent {
            let found = traced.iter().any(|l| {
                l["sql"] == sql.as_str()
                    && params.iter().all(|p| {
                        let lit = match p {
                            Value::String(s) => format!("'{s}'"),
                            other => other.to_string(),
                        };
                        l["expanded"].as_str().unwrap().contains(&lit)
                    })
            });
            assert!(found, "{sql} {params:?} of worker {pid} not in the trace");
        }
    }
    assert_eq!(workers, 3);

    // CPU readings: on every open and close, and on a statement after an idle gap. The
    // SELECT after each worker's 150 ms sleep carries one, and the CPU since the worker's
    // previous reading is far below the wall-clock time (sleeping burns no CPU).
    for l in lines.iter().filter(|l| l["kind"] == "open" || l["kind"] == "close") {
        assert!(l["cpu_ns"].is_i64(), "no cpu_ns on {l}");
    }
    let mut pids: Vec<i64> = lines
        .iter()
        .filter(|l| l["kind"] == "stmt" && l["sql"].as_str().is_some_and(|s| s.contains("UPDATE item")))
        .map(|l| l["pid"].as_i64().unwrap())
        .collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3);
    for pid in pids {
        let mut mine: Vec<&Value> = lines.iter().filter(|l| l["pid"] == pid).collect();
        mine.sort_by_key(|l| l["ts"].as_i64().unwrap());
        let mut last: Option<(i64, i64)> = None; // (ts at the reading, cpu_ns)
        let mut after_sleep = 0;
        for l in mine {
            let ts = l["ts"].as_i64().unwrap();
            if let Some(cpu) = l["cpu_ns"].as_i64() {
                let is_select = l["kind"] == "stmt" && l["sql"].as_str().unwrap().starts_with("SELECT id, n");
                if let (true, Some((t0, c0))) = (is_select, last)
                    && ts - t0 > 100_000_000
                {
                    after_sleep += 1;
                    assert!(
                        cpu - c0 < (ts - t0) / 2,
                        "worker {pid}: {}ns of CPU over {}ns asleep",
                        cpu - c0,
                        ts - t0
                    );
                }
                last = Some((ts, cpu));
            }
            if let Some(cpu) = l["cpu_end_ns"].as_i64() {
                last = Some((ts + l["dur_ns"].as_i64().unwrap(), cpu));
            }
        }
        assert!(
            after_sleep >= 4,
            "worker {pid}: {after_sleep} SELECTs with a CPU reading after the sleep"
        );
    }

    // The trace imports as one group of 3 worker processes.
    let scenario = dir.path().join("app.toml");
    bin()
        .arg("import")
        .arg(&trace)
        .arg("-o")
        .arg(&scenario)
        .args(["--gap", "100ms"])
        .assert()
        .success();
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(text.contains("workers = 3\nisolation = \"process\""), "{text}");
    assert!(text.contains("CREATE TABLE item"), "{text}");
    assert!(text.contains("journal_mode = [\"wal\", \"delete\"]"), "{text}");
    // Python's timeout=7 is a sqlite3_busy_timeout call: recorded, and kept by import.
    let timeouts: Vec<i64> = lines
        .iter()
        .filter(|l| l["kind"] == "busy_timeout")
        .map(|l| l["ms"].as_i64().unwrap())
        .collect();
    assert!(timeouts.iter().filter(|&&ms| ms == 7000).count() >= 3, "{timeouts:?}");
    assert!(text.contains("busy_timeout = \"7000ms\""), "{text}");
    // Rows are counted (the interposed sqlite3_step): each SELECT by key returned its row, the
    // UPDATE none; so import links the UPDATE's key to the row the SELECT read.
    for l in lines.iter().filter(|l| l["kind"] == "stmt") {
        let sql = l["sql"].as_str().unwrap();
        if sql.starts_with("SELECT id, n") {
            assert_eq!(l["rows"].as_i64(), Some(1), "{l}");
        } else if sql.starts_with("UPDATE item") {
            assert_eq!(l["rows"].as_i64(), Some(0), "{l}");
        }
        // An INSERT records the rowid it gave its (last) row; other statements none.
        if sql.starts_with("INSERT INTO item") {
            assert_eq!(l["rowid"].as_i64(), Some(50), "{l}");
        } else if sql.starts_with("INSERT INTO log") {
            assert!(l["rowid"].as_i64().is_some_and(|id| id >= 1), "{l}");
        } else {
            assert!(l.get("rowid").is_none(), "{l}");
        }
    }
    assert!(text.contains("params = [\"$0.id\"]"), "{text}");
}

#[test]
fn redact_leaves_no_literal_in_the_trace() {
    if !python_ok() {
        eprintln!("skipped: no python3 with sqlite3");
        return;
    }
    let (_dir, trace, _) = capture_app(true);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(!text.contains("zq7marker"), "a text literal survived");
    for l in events(&trace).iter().filter(|l| l["kind"] == "stmt") {
        let e = l["expanded"].as_str().unwrap();
        if e.contains("item WHERE id =") {
            assert!(e.ends_with("id = <int:1>") || e.ends_with("id = <int:2>"), "{e}");
        }
    }
    // A redacted trace imports with fitted generators.
    let scenario = trace.with_extension("toml");
    bin()
        .arg("import")
        .arg(&trace)
        .arg("-o")
        .arg(&scenario)
        .assert()
        .success();
    let s = std::fs::read_to_string(&scenario).unwrap();
    assert!(s.contains("redacted trace: fitted"), "{s}");
    assert!(!s.contains("replay("), "{s}");
}

#[test]
fn bad_commands_are_input_errors_and_no_sqlite_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.jsonl");
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .arg("python3")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--"),
        "capture without --"
    );
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "no-such-command-zq7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-command-zq7") && err.contains("not found"),
        "{err}"
    );
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .env("LITEHAMMER_CAPTURE_LIB", "/nonexistent/lib.so")
        .args(["--", "true"])
        .output()
        .unwrap();
    // The env candidate is missing; the library next to the binary may exist or not.
    if out.status.code() == Some(2) {
        assert!(String::from_utf8_lossy(&out.stderr).contains("cargo build -p litehammer-capture"));
    }
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "sh", "-c", "exit 0"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no SQLite call was seen") && err.contains("statically"),
        "{err}"
    );
    assert!(!trace.exists());
    // The command's exit status is passed on.
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "sh", "-c", "exit 3"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// Starts `capture -o DIR/t.jsonl -- ARGS`, waits for its "capturing" line, sends `sig` to
/// litehammer, and returns its output (bounded: a capture that ignores the signal fails).
fn capture_signalled(dir: &Path, args: &[&str], sig: &str) -> (Option<i32>, String) {
    capture_signalled_with(dir, args, &[sig], false)
}

/// `capture` of `args`, sent `sigs` in turn (300 ms apart) once it has started; `nohup`: with
/// SIGHUP ignored, as `nohup` starts it.
fn capture_signalled_with(dir: &Path, args: &[&str], sigs: &[&str], nohup: bool) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("litehammer"));
    // A signal ignored here (the tests run under `nohup`, say) stays ignored across exec, in
    // litehammer's command too, and the forwarded signal would then do nothing: start from
    // the default dispositions, as a terminal session does.
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
                libc::signal(sig, libc::SIG_DFL);
            }
            if nohup {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let mut child = cmd
        .arg("capture")
        .arg("-o")
        .arg(dir.join("t.jsonl"))
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .arg("--")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    while err.read_line(&mut text).unwrap_or(0) > 0 && !text.contains("capturing") {}
    for sig in sigs {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let sent = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
    let sig = sigs.join(", SIG");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("capture did not end after SIG{sig}: {text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = err.read_to_string(&mut text);
    (status.code(), text)
}

#[test]
fn under_nohup_a_hangup_is_left_alone() {
    // SIGHUP ignored (nohup): litehammer neither acts on it nor forwards it; the SIGTERM
    // after it ends the capture.
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = capture_signalled_with(
        dir.path(),
        &["sh", "-c", "exec sleep 60 </dev/null >/dev/null 2>&1"],
        &["HUP", "TERM"],
        true,
    );
    assert!(stderr.contains("killed by signal 15 (SIGTERM)"), "{stderr}");
    assert!(!stderr.contains("SIGHUP"), "{stderr}");
    assert_ne!(code, Some(0));
    no_part_directory_left(dir.path());
}

fn no_part_directory_left(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".litehammer-"))
        .collect();
    assert!(left.is_empty(), "left beside the trace: {left:?}");
}

#[test]
fn a_command_that_ignores_the_signal_is_killed_and_nothing_is_left() {
    for sig in ["INT", "TERM", "HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let (code, stderr) = capture_signalled(
            dir.path(),
            &[
                "sh",
                "-c",
                "trap '' INT TERM HUP; exec sleep 60 </dev/null >/dev/null 2>&1",
            ],
            sig,
        );
        assert!(
            stderr.contains("did not exit") && stderr.contains("killing it"),
            "SIG{sig}: {stderr}"
        );
        assert!(stderr.contains("killed by signal 9 (SIGKILL)"), "SIG{sig}: {stderr}");
        assert_ne!(code, Some(0), "SIG{sig}: {stderr}");
        no_part_directory_left(dir.path());
    }
}

#[test]
fn sighup_is_forwarded_to_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stderr) = capture_signalled(
        dir.path(),
        &["sh", "-c", "exec sleep 60 </dev/null >/dev/null 2>&1"],
        "HUP",
    );
    assert!(stderr.contains("killed by signal 1 (SIGHUP)"), "{stderr}");
    assert!(!stderr.contains("killing it"), "{stderr}");
    assert_ne!(code, Some(0));
    no_part_directory_left(dir.path());
}

#[test]
fn a_command_killed_by_a_signal_is_named_and_what_it_flushed_is_kept() {
    if !python_ok() {
        eprintln!("skipped: no python3 with sqlite3");
        return;
    }
    // Killed before anything was flushed: the kill is the reason, not static linking.
    let dir = tempfile::tempdir().unwrap();
    let early = "import sqlite3, os; c = sqlite3.connect(':memory:'); c.execute('SELECT 1'); os.kill(os.getpid(), 9)";
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(dir.path().join("t.jsonl"))
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "python3", "-c", early])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("killed by signal 9 (SIGKILL)"), "{stderr}");
    assert!(!stderr.contains("statically"), "{stderr}");
    assert_ne!(out.status.code(), Some(0));
    // Killed after a close flushed the connection's records: the trace keeps them.
    let db = dir.path().join("a.db");
    let late = format!(
        "import sqlite3, os; c = sqlite3.connect('{}'); c.execute('CREATE TABLE t(x)'); c.execute('INSERT INTO t VALUES (1)'); c.commit(); c.close(); os.kill(os.getpid(), 9)",
        db.display()
    );
    let trace = dir.path().join("late.jsonl");
    let out = bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "python3", "-c", &late])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("killed by signal 9 (SIGKILL)") && stderr.contains("trace holds"),
        "{stderr}"
    );
    let sql: Vec<String> = events(&trace)
        .iter()
        .filter_map(|e| e["sql"].as_str().map(str::to_string))
        .collect();
    assert!(sql.iter().any(|s| s.contains("INSERT INTO t")), "{sql:?}");
    no_part_directory_left(dir.path());
}

#[test]
fn capture_of_a_program_with_sqlite_compiled_in_names_the_framework_route() {
    let dir = tempfile::tempdir().unwrap();
    // A "node" (here a shell script): the route is named from the program's name.
    let node = dir.path().join("node");
    std::fs::write(&node, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    bin()
        .arg("capture")
        .arg("--lib")
        .arg(library())
        .arg("-o")
        .arg(dir.path().join("t.jsonl"))
        .arg("--")
        .arg(&node)
        .assert()
        .failure()
        .stderr(predicates::str::contains("no SQLite call was seen"))
        .stderr(predicates::str::contains("litehammer capture --snippet node"));
}

/// Statements SQLite runs inside the app's (FTS5's shadow-table statements, a trigger program)
/// are counted on the enclosing statement's line (`nested`), not written as lines of their own;
/// two cursors open at once on one connection are not nested and stay recorded in full; import
/// reports the counted statements as excluded, SQLite's own.
#[test]
fn statements_sqlite_runs_inside_the_apps_are_counted_not_recorded() {
    let fts5 = Command::new("python3")
        .args([
            "-c",
            "import sqlite3; sqlite3.connect(':memory:').execute('CREATE VIRTUAL TABLE t USING fts5(x)')",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !fts5 {
        eprintln!("skipped: no python3 with sqlite3 and FTS5");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import/fts_app.py");
    bin()
        .arg("capture")
        .arg("-o")
        .arg(&trace)
        .env("LITEHAMMER_CAPTURE_LIB", library())
        .args(["--", "timeout", "-k", "5", "120", "python3"])
        .arg(&app)
        .arg(dir.path().join("app.db"))
        .assert()
        .success();
    let stmts: Vec<Value> = events(&trace).into_iter().filter(|l| l["kind"] == "stmt").collect();
    let sql = |l: &Value| l["sql"].as_str().unwrap().trim().to_string();
    for l in &stmts {
        let s = sql(l);
        assert!(!s.contains("doc_fts_"), "FTS5's own statement recorded: {l}");
        assert!(!s.starts_with("--"), "a trigger program recorded: {l}");
    }
    let nested = |l: &Value| l["nested"].as_i64().unwrap_or(0);
    let inserts: Vec<&Value> = stmts
        .iter()
        .filter(|l| sql(l).starts_with("INSERT INTO doc("))
        .collect();
    let searches: Vec<&Value> = stmts.iter().filter(|l| sql(l).contains("MATCH")).collect();
    assert_eq!((inserts.len(), searches.len()), (12, 12));
    // Each INSERT ran the trigger program and FTS5's writes to its shadow tables; each search
    // read them. The app's own values are still there.
    for l in &inserts {
        assert!(nested(l) >= 2, "{l}");
        assert!(l["expanded"].as_str().unwrap().contains(" note "), "{l}");
    }
    for l in &searches {
        assert!(nested(l) >= 1, "{l}");
        assert!(l["rows"].as_i64().is_some_and(|r| r >= 1), "{l}");
    }
    // The two cursors stepped in turn: both recorded in full, all their rows counted.
    for q in [
        "SELECT id FROM doc ORDER BY id",
        "SELECT body FROM doc ORDER BY id DESC",
    ] {
        let l = stmts
            .iter()
            .find(|l| sql(l) == q)
            .unwrap_or_else(|| panic!("{q} not recorded"));
        assert_eq!(l["rows"].as_i64(), Some(12), "{l}");
        assert_eq!(nested(l), 0, "{l}");
    }
    // Import counts them as excluded, SQLite's own.
    let total: i64 = stmts.iter().map(nested).sum();
    let scenario = dir.path().join("fts.toml");
    let out = bin()
        .arg("import")
        .arg(&trace)
        .arg("-o")
        .arg(&scenario)
        .args(["--gap", "30ms"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "{total} SQLite's own (virtual tables' shadow tables, trigger programs)"
        )),
        "{total} nested statements: {stdout}"
    );
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(text.contains("MATCH"), "{text}");
    assert!(!text.contains("doc_fts_data"), "{text}");
}
