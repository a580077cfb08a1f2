#![allow(dead_code)]
//! Helpers shared by the integration tests: they drive the real binary.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("litehammer").expect("binary builds");
    cmd.env_remove("LITEHAMMER_FAULT");
    cmd
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// A small scenario: 2 writers (2 statements per IMMEDIATE transaction), 1 reader, 1 s.
pub const TINY: &str = r#"
name = "tiny"
description = "test scenario"
duration = "1s"
warmup = "200ms"
seed = 7

[sqlite]
busy_timeout = "2s"

[matrix]
journal_mode = ["wal", "delete"]

[setup]
sql = "CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER, v TEXT);"
populate = [{ table = "kv", rows = 100, values = ["uniform(1, 100)", "text(10)"] }]

[[group]]
name = "writers"
workers = 2
transaction = "immediate"
statements_per_transaction = 2

[[group.op]]
name = "put"
sql = "INSERT INTO kv(k, v) VALUES (?1, ?2)"
params = ["seq()", "text(5, 20)"]

[[group.op]]
name = "touch"
sql = "UPDATE kv SET v = ?2 WHERE id = ?1"
params = ["uniform(1, 100)", "text(3)"]

[[group]]
name = "readers"
workers = 1
transaction = "none"

[[group.op]]
name = "get"
sql = "SELECT v FROM kv WHERE id = ?1"
params = ["uniform(1, 100)"]
"#;

/// The ids of a report's runs, in order.
pub fn run_ids(report: &Value) -> Vec<&str> {
    report["runs"]
        .as_array()
        .expect("the report has runs")
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

/// An array of strings of a report (`verdict`, `findings`); empty when absent.
pub fn strings<'a>(report: &'a Value, key: &str) -> Vec<&'a str> {
    report[key]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().expect("a string")).collect())
        .unwrap_or_default()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("report is JSON")
}

/// Fails the test with every schema violation listed.
pub fn assert_schema_valid(report: &Value) {
    let schema_text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/report.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&schema_text).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report does not match schema/report.schema.json:\n{}",
        errors.join("\n")
    );
}

pub fn histogram_len(encoded: &Value) -> u64 {
    litehammer::testing::decode_histogram(encoded.as_str().expect("histogram is a string"))
        .expect("histogram decodes")
        .len()
}

/// Flags for the shortest useful run of `TINY`: one configuration, 300 ms, no warm-up.
pub const SHORT_WAL: [&str; 6] = ["--duration", "300ms", "--warmup", "0s", "--matrix", "journal_mode=wal"];

/// Runs `TINY` with `extra` flags in a temp dir (databases there too); the report must
/// validate. Returns the dir (keep it alive), the report and stdout.
pub fn run_tiny(extra: &[&str]) -> (tempfile::TempDir, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("report.json");
    let assert = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--output")
        .arg(&out)
        .arg("--db-dir")
        .arg(dir.path())
        .args(extra)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let report = read_json(&out);
    assert_schema_valid(&report);
    (dir, report, stdout)
}

/// Starts `litehammer ARGS…` (stdout discarded, stderr piped), waits for the first stderr line
/// for which `measuring` holds (a progress line: the run is measuring), and sends SIGINT.
/// The rest of stderr is drained in the background; the caller waits for the exit.
pub fn interrupt_when(args: &[&std::ffi::OsStr], measuring: impl Fn(&str) -> bool) -> std::process::Child {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("litehammer"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let seen = stderr.by_ref().map_while(Result::ok).any(|line| measuring(&line));
    assert!(seen, "no progress line before the process ended");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    std::thread::spawn(move || stderr.for_each(drop));
    child
}

/// The first `name` on PATH.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether the external program a test needs is here (`found`). When it is not: a failure
/// when CI makes the test mandatory (`require`=1), else a SKIPPED line naming the test and
/// `what` is missing (with how to install it).
pub fn installed(found: bool, require: &str, what: &str) -> bool {
    if !found {
        assert!(
            std::env::var(require).as_deref() != Ok("1"),
            "{require}=1 but {what} is not installed"
        );
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("test");
        eprintln!("SKIPPED {test}: {what} is not installed (CI sets {require}=1)");
    }
    found
}

/// One process of `/proc`.
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// The command name (`/proc/PID/stat`'s second field).
    pub comm: String,
    /// The command line, its NULs as spaces.
    pub cmdline: String,
}

/// The processes running now (those that end while being read are left out).
pub fn processes() -> Vec<Proc> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let Some(ppid) = stat[close + 2..].split_whitespace().nth(1).and_then(|p| p.parse().ok()) else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        found.push(Proc {
            pid,
            ppid,
            comm: stat[open + 1..close].to_string(),
            cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
        });
    }
    found
}

/// The command lines of the running processes that contain every one of `needles`.
pub fn command_lines_with(needles: &[&str]) -> Vec<String> {
    processes()
        .into_iter()
        .map(|p| p.cmdline)
        .filter(|c| needles.iter().all(|n| c.contains(n)))
        .collect()
}

/// `litehammer run SCENARIO ARGS… --no-probe -q -o OUT`, with TMPDIR in `tmp` so that the test
/// sees what a throwaway server or cluster leaves there.
pub fn run_in(tmp: &Path, scenario: &str, args: &[&str], out: &Path) -> Command {
    let mut cmd = bin();
    cmd.env("TMPDIR", tmp)
        .args(["run", scenario])
        .args(args)
        .args(["--no-probe", "-q", "-o"])
        .arg(out);
    cmd
}

/// `litehammer ARGS… --db-dir DIR -o DIR/r.json` in a new temp dir, within `limit`: it must
/// succeed (stdout and stderr shown when not) and its report validate. Returns the dir
/// (keep it alive) and the report.
pub fn run_report(args: &[&str], limit: std::time::Duration) -> (tempfile::TempDir, Value) {
    let (dir, report, success) = run_report_any_exit(args, limit);
    assert!(success.is_ok(), "run failed: {}", success.unwrap_err());
    (dir, report)
}

/// As [`run_report`], whatever the exit status: `Err(stdout and stderr)` when it failed,
/// for a test that judges a failed run by its report.
pub fn run_report_any_exit(
    args: &[&str],
    limit: std::time::Duration,
) -> (tempfile::TempDir, Value, Result<(), String>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let output = bin()
        .args(args)
        .args(["--db-dir", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()])
        .timeout(limit)
        .output()
        .unwrap();
    let shown = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.exists(), "no report: {shown}");
    let report = read_json(&out);
    assert_schema_valid(&report);
    (dir, report, if output.status.success() { Ok(()) } else { Err(shown) })
}

/// Runs `cmd` (at most 60 s), which must exit 2 with every one of `expect` in its stderr;
/// `what` names the case in a failure. Returns the stderr.
pub fn assert_exit_2(cmd: &mut Command, what: &str, expect: &[&str]) -> String {
    let out = cmd.timeout(std::time::Duration::from_secs(60)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "{what}: expected `{e}` in: {stderr}");
    }
    stderr
}

/// Starts `litehammer ARGS… --db-dir DIR -o DIR/r.json` (a new temp dir), waits at most
/// `limit` for a child process of it that `is_child` picks (`what`, in failures), lets it run
/// 1.5 s and sends SIGINT: the run must exit 130 and the child be gone with it. Returns the
/// dir (keep it alive), the child's pid and the report.
pub fn interrupt_with_child(
    args: &[&str],
    limit: std::time::Duration,
    what: &str,
    is_child: impl Fn(&Proc) -> bool,
) -> (tempfile::TempDir, u32, Value) {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("litehammer"))
        .args(args)
        .args(["--db-dir", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()])
        .env_remove("LITEHAMMER_FAULT")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    let pid = loop {
        if let Some(p) = processes().into_iter().find(|p| p.ppid == run.id() && is_child(p)) {
            break p.pid;
        }
        assert!(Instant::now() < deadline, "no {what} appeared");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(run.id() as i32, libc::SIGINT) };
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted run exits 130");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{what} {pid} is an orphan"
    );
    let report = read_json(&out);
    (dir, pid, report)
}
