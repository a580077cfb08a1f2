//! End to end: run a Python program (three processes, fork and spawn, two threads each) with the
//! library preloaded and check the trace against what the program says it ran.
//! Skips with a message when python3 (with its sqlite3 module) is missing.

#[path = "../src/protocol.rs"]
mod protocol;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

const MARKER: &str = "zq7marker";
const NUMBER: i64 = 918_273_645_000;

/// The cdylib in target/<profile>/ (this test binary is in target/<profile>/deps/). `cargo test`
/// does not put the cdylib there, so build it (once per test binary; a no-op when up to date).
fn library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let exe = std::env::current_exe().expect("test exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "litehammer-capture", "--target-dir"])
            .arg(profile_dir.parent().unwrap());
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build");
        assert!(st.success(), "cargo build -p litehammer-capture failed");
        let lib = profile_dir.join(protocol::LIBRARY_FILE_NAME);
        assert!(lib.exists(), "{} missing", lib.display());
        lib
    })
    .clone()
}

fn python_ok() -> bool {
    Command::new("python3")
        .args(["-c", "import sqlite3"])
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Run {
    dir: tempfile::TempDir,
    prefix: PathBuf,
    sqlite_version: String,
}

fn run_workload(redact: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("trace");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/workload.py");
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "120", "python3"])
        .arg(&script)
        .arg(dir.path())
        .arg(MARKER)
        .arg(NUMBER.to_string());
    for (k, v) in protocol::child_env(&library(), &prefix, redact, None) {
        cmd.env(k, v);
    }
    cmd.env_remove(protocol::ENV_REDACT);
    if redact {
        cmd.env(protocol::ENV_REDACT, "1");
    }
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "workload failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let sqlite_version = String::from_utf8(out.stdout).unwrap().trim().to_string();
    Run {
        dir,
        prefix,
        sqlite_version,
    }
}

struct Expect {
    opens: usize,
    closes: Option<usize>,
    stmts: Vec<String>,
}

/// What the program ran, by (pid, tid).
fn expectations(dir: &Path) -> BTreeMap<(i64, i64), Expect> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !name.starts_with("expect.") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        let key = (v["pid"].as_i64().unwrap(), v["tid"].as_i64().unwrap());
        let stmts = v["stmts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let exp = Expect {
            opens: v["opens"].as_u64().unwrap() as usize,
            closes: v["closes"].as_u64().map(|c| c as usize),
            stmts,
        };
        assert!(out.insert(key, exp).is_none());
    }
    out
}

/// Merges the part files (as `litehammer capture` will) and parses every line.
fn merged(run: &Run) -> (Vec<Value>, protocol::MergeStats, Vec<PathBuf>) {
    let parts = protocol::find_parts(&run.prefix).unwrap();
    let mut buf = Vec::new();
    let stats = protocol::merge(&parts, &mut buf).unwrap();
    let lines = String::from_utf8(buf)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect();
    (lines, stats, parts)
}

fn multiset<'a>(it: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for s in it {
        *m.entry(s).or_default() += 1;
    }
    m
}

fn check_common(run: &Run, lines: &[Value], stats: &protocol::MergeStats, parts: &[PathBuf], redacted: bool) {
    let exp = expectations(run.dir.path());
    // 3 workers x 2 threads + the parent.
    assert_eq!(exp.len(), 7, "expectation files");
    assert_eq!(stats.truncated_lines, 0);
    assert!(!stats.nothing_seen());

    // One header per part file, first in the merged output; events sorted by ts.
    let headers: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "header").collect();
    assert_eq!(headers.len(), parts.len());
    assert!(lines[..headers.len()].iter().all(|l| l["kind"] == "header"));
    for h in &headers {
        assert_eq!(h["v"], 1);
        assert_eq!(h["sqlite_version"], run.sqlite_version.as_str());
        assert_eq!(h["redacted"], redacted);
        assert_eq!(h["clock"], "monotonic");
        assert!(h["anchor_wall_ns"].as_i64().unwrap() > 1_600_000_000_000_000_000);
    }
    let events = &lines[headers.len()..];
    assert!(
        events.windows(2).all(|w| w[0]["ts"].as_i64() <= w[1]["ts"].as_i64()),
        "merged order"
    );
    assert!(events.iter().all(|e| e["v"] == 1));

    // Part files are named by the pid/tid in their lines.
    for p in parts {
        let text = std::fs::read_to_string(p).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let name = protocol::part_path(
            &run.prefix,
            first["pid"].as_u64().unwrap() as u32,
            first["tid"].as_u64().unwrap() as u32,
        );
        assert_eq!(&name, p);
    }

    // Per thread: opens, closes and the statement count match what the program did.
    for (&(pid, tid), e) in &exp {
        let mine: Vec<&Value> = events.iter().filter(|l| l["pid"] == pid && l["tid"] == tid).collect();
        let count = |k: &str| mine.iter().filter(|l| l["kind"] == k).count();
        assert_eq!(count("open"), e.opens, "opens of {pid}/{tid}");
        if let Some(c) = e.closes {
            assert_eq!(count("close"), c, "closes of {pid}/{tid}");
        }
        let stmts: Vec<&Value> = mine.iter().copied().filter(|l| l["kind"] == "stmt").collect();
        assert_eq!(stmts.len(), e.stmts.len(), "statements of {pid}/{tid}");
        // Statements belong to the connection opened on this thread.
        let conns: std::collections::BTreeSet<u64> = mine.iter().map(|l| l["conn"].as_u64().unwrap()).collect();
        assert_eq!(conns.len(), 1, "one connection per thread");

        if e.stmts.len() > 1 {
            let by_txn = |t: &str| stmts.iter().filter(|s| s["txn"] == t).count();
            assert_eq!(by_txn("begin"), 1);
            assert_eq!(by_txn("commit"), 1);
            assert_eq!(by_txn("savepoint"), 1);
            assert_eq!(by_txn("release"), 1);
            assert_eq!(stmts.iter().filter(|s| s["pragma"] == true).count(), 1);
            let update = stmts
                .iter()
                .find(|s| s["sql"].as_str().unwrap().starts_with("UPDATE"))
                .unwrap();
            assert_eq!(update["changes"], 5);
            assert_eq!(update["autocommit"], true);
            let inserts: Vec<_> = stmts
                .iter()
                .filter(|s| s["sql"].as_str().unwrap().starts_with("INSERT"))
                .collect();
            assert!(
                inserts
                    .iter()
                    .all(|s| s["changes"] == 1 && s["autocommit"] == false && s["readonly"] == false)
            );
            let selects = stmts
                .iter()
                .filter(|s| s["sql"].as_str().unwrap().starts_with("SELECT"));
            assert!(selects.clone().all(|s| s["changes"] == 0 && s["readonly"] == true));
            assert!(stmts.iter().all(|s| s["dur_ns"].as_i64().unwrap() >= 0));
            assert!(stmts.iter().any(|s| s["dur_ns"].as_i64().unwrap() > 0));
        }
        if !redacted {
            let got = multiset(stmts.iter().map(|s| s["expanded"].as_str().unwrap()));
            let want = multiset(e.stmts.iter().map(String::as_str));
            assert_eq!(got, want, "expanded SQL of {pid}/{tid}");
        }
    }
}

#[test]
fn captures_every_statement_of_every_process_and_thread() {
    if !python_ok() {
        eprintln!("SKIP: python3 with sqlite3 not found");
        return;
    }
    let run = run_workload(false);
    let (lines, stats, parts) = merged(&run);
    check_common(&run, &lines, &stats, &parts, false);
    let all = lines.iter().map(|l| l.to_string()).collect::<String>();
    assert!(all.contains(MARKER));
    // SQL as written keeps its placeholders.
    assert!(
        lines
            .iter()
            .any(|l| l["sql"] == "INSERT INTO t(id, name, n) VALUES(?, ?, ?)")
    );
}

#[test]
fn redaction_leaves_no_literal() {
    if !python_ok() {
        eprintln!("SKIP: python3 with sqlite3 not found");
        return;
    }
    let run = run_workload(true);
    let (lines, stats, parts) = merged(&run);
    check_common(&run, &lines, &stats, &parts, true);
    for p in &parts {
        let raw = std::fs::read_to_string(p).unwrap();
        assert!(!raw.contains(MARKER), "marker text in {}", p.display());
        assert!(
            !raw.contains(&NUMBER.to_string()[..9]),
            "marker number in {}",
            p.display()
        );
    }
    let insert = lines
        .iter()
        .find(|l| l["sql"] == "INSERT INTO t(id, name, n) VALUES(?, ?, ?)")
        .unwrap();
    let e = insert["expanded"].as_str().unwrap();
    assert!(e.starts_with("INSERT INTO t(id, name, n) VALUES(<int:"), "{e}");
    assert!(e.contains(", <text:") && e.ends_with(", <int:12>)"), "{e}");
}

/// Runs a Python snippet with the library preloaded and `LITEHAMMER_CAPTURE_OUT=prefix`.
fn run_python(code: &str, prefix: &Path) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "60", "python3", "-c", code]);
    for (k, v) in protocol::child_env(&library(), prefix, false, None) {
        cmd.env(k, v);
    }
    cmd.env_remove(protocol::ENV_REDACT);
    let out = cmd.output().expect("run python3");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn app_trace_callback_still_works_and_bad_output_is_harmless() {
    if !python_ok() {
        eprintln!("SKIP: python3 with sqlite3 not found");
        return;
    }
    let code = r#"
import sqlite3
seen = []
c = sqlite3.connect(":memory:")
c.set_trace_callback(seen.append)
c.execute("CREATE TABLE t(a)")
c.execute("INSERT INTO t VALUES(?)", (7,))
c.set_trace_callback(None)
c.execute("SELECT * FROM t").fetchall()
c.close()
print(seen)
"#;
    // The application's own callback (sqlite3_trace_v2 STMT) keeps working next to ours.
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("t");
    let out = run_python(code, &prefix);
    assert!(
        out.contains("'CREATE TABLE t(a)'") && out.contains("INSERT INTO t VALUES(7)"),
        "{out}"
    );
    assert!(out.contains("'BEGIN "), "{out}");
    assert!(!out.contains("SELECT"), "callback removed: {out}");
    let parts = protocol::find_parts(&prefix).unwrap();
    let mut buf = Vec::new();
    let stats = protocol::merge(&parts, &mut buf).unwrap();
    // CREATE, BEGIN, INSERT, SELECT, and the COMMIT that close() does not issue: 4.
    assert_eq!(stats.by_kind.get("stmt"), Some(&4), "{}", String::from_utf8_lossy(&buf));
    assert_eq!(stats.by_kind.get("open"), Some(&1));
    assert_eq!(stats.by_kind.get("close"), Some(&1));

    // An output prefix in a missing directory: the program runs as usual, nothing is written.
    let missing = dir.path().join("no/such/dir/t");
    let out = run_python(code, &missing);
    assert!(out.contains("INSERT INTO t VALUES(7)"));
    assert!(!dir.path().join("no").exists());
}
