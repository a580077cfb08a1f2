//! End to end: run a Python program (three processes, fork and spawn, two threads each) with the
//! library preloaded and check the trace against what the program says it ran.
//! Skips with a message when python3 (with its sqlite3 module) is missing.

use litehammer_trace::protocol;

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
    python_with_capture(code, &[], prefix, false)
}

/// Runs `python3 -c code args…` under the capture library (values redacted or not) and
/// returns its standard output; fails the test if it fails.
fn python_with_capture(code: &str, args: &[&Path], prefix: &Path, redact: bool) -> String {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "60", "python3", "-c", code]).args(args);
    for (k, v) in protocol::child_env(&library(), prefix, redact, None) {
        cmd.env(k, v);
    }
    if !redact {
        cmd.env_remove(protocol::ENV_REDACT);
    }
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

/// Statements with every kind of bound value, each run several times with other values (the
/// library checks its own expansion against `sqlite3_expanded_sql` on a statement's first run and
/// writes it alone afterwards), through named and numbered parameters, `executemany`, a
/// re-prepare after a schema change, and a statement that gets different types over time. Prints
/// the expanded SQL it expects, one JSON string per statement, in order.
const BIND_PROGRAM: &str = r#"
import json, re, sqlite3, sys
floats = {1.5: "1.5", -0.25: "-0.25", 2.0: "2.0", 1e20: "1.0e+20", 0.1: "0.1", 123456.0: "123456.0"}
def lit(v):
    if v is None: return "NULL"
    if isinstance(v, bool): return str(int(v))
    if isinstance(v, int): return str(v)
    if isinstance(v, float): return floats[v]
    if isinstance(v, bytes): return "x'" + v.hex() + "'"
    return "'" + v.replace("'", "''") + "'"
def expand(sql, params):
    if isinstance(params, dict):
        for k, v in params.items(): sql = sql.replace(":" + k, lit(v))
        return sql
    nxt = [1]
    def sub(m):
        i = int(m.group(1)) if m.group(1) else nxt[0]
        nxt[0] = max(nxt[0], i + 1)
        return lit(params[i - 1])
    return re.sub(r"\?(\d*)", sub, sql)
out = []
c = sqlite3.connect(sys.argv[1], isolation_level=None)
def ex(sql, params=(), expected=None):
    c.execute(sql, params).fetchall()
    out.append(expected or expand(sql, params))
ex("CREATE TABLE t(i INTEGER, r REAL, s TEXT, b BLOB, n)")
rows = [
    (7, 1.5, "it's", b"\x00\x01\xfe", None),
    (-9223372036854775808, -0.25, 'say "hi"\n\ttab\\', b"", None),
    (9223372036854775807, 2.0, "héllo ✓ zq7marker", b"\xde\xad\xbe\xef", 1),
    (0, 1e20, "", b"x", "s"),
    (42, 0.1, "''", b"''", 123456.0),
]
for r in rows:
    ex("INSERT INTO t VALUES(?, ?, ?, ?, ?)", r)
c.executemany("INSERT INTO t VALUES(?, ?, ?, ?, ?)", rows)
out += [expand("INSERT INTO t VALUES(?, ?, ?, ?, ?)", r) for r in rows]
for v in [1, "one", None, 2.0, b"\x01", 918273645000]:
    ex("SELECT count(*) FROM t WHERE n IS ?2 OR i = ?1 OR s = ?2 OR i = ?", (5, v, 8))
for k in [3, 4]:
    ex("SELECT s FROM t WHERE i > :lo AND s <> :name LIMIT 3", {"lo": k, "name": "x'y"})
ex("CREATE INDEX ti ON t(i)")
for k in [5, 6]:
    ex("SELECT s FROM t WHERE i > :lo AND s <> :name LIMIT 3", {"lo": k, "name": "after"})
ex("SELECT 'lit ?', ? -- ? not a parameter", (11,), "SELECT 'lit ?', 11 -- ? not a parameter")
c.close()
for s in out: print(json.dumps(s))
"#;

fn run_bind_program(redact: bool) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("t");
    let db = dir.path().join("db.sqlite");
    let want: Vec<String> = python_with_capture(BIND_PROGRAM, &[&db], &prefix, redact)
        .lines()
        .map(|l| serde_json::from_str::<String>(l).unwrap())
        .collect();
    let parts = protocol::find_parts(&prefix).unwrap();
    assert_eq!(parts.len(), 1);
    let text = std::fs::read_to_string(&parts[0]).unwrap();
    let got: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["kind"] == "stmt" && l["txn"].is_null())
        .map(|l| l["expanded"].as_str().unwrap().to_string())
        .collect();
    (want, got)
}

#[test]
fn bound_values_are_expanded_as_sqlite_does() {
    if !python_ok() {
        eprintln!("SKIP: python3 with sqlite3 not found");
        return;
    }
    let (want, got) = run_bind_program(false);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "statement {i}");
    }
    assert_eq!(got.len(), want.len());

    // Redacted: the same statements with every literal as its tag, and no value left.
    let (want, got) = run_bind_program(true);
    let want: Vec<String> = want.iter().map(|s| litehammer_trace::redact::literals(s)).collect();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "redacted statement {i}");
    }
    assert_eq!(got.len(), want.len());
    let all = got.concat();
    for secret in ["zq7marker", "9182736", "héllo", "dead", "1.5", "it''s"] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
}
