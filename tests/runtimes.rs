//! Runtimes (issue 29): app code under one interpreter lock per process (`gvl`, `gil`),
//! busy-handler waits that hold or release it, proven by counters, never by clocks.

mod common;

use common::*;
use serde_json::Value;

/// Two threads of one process; the write transaction holds 150 ms of app time, longer than
/// Ruby's 100 ms switch interval, so the other thread gets the lock while the first holds
/// SQLite's write lock, and waits for it in the busy handler.
const CONTENDED: &str = r#"
name = "runtimes"
duration = "1500ms"
warmup = "0s"
seed = 9

[sqlite]
journal_mode = "wal"
synchronous = "normal"
busy_timeout = "60ms"

[setup]
sql = "CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT);"

[[group]]
name = "web"
workers = 2
clients = 2
transaction = "none"
runtime = "gvl"

[[group.script]]
name = "write"
steps = [
  { begin = "immediate" },
  { sql = "INSERT INTO c(v) VALUES (?1)", params = ["text(10)"] },
  { sql = "INSERT INTO c(v) VALUES (?1)", params = ["text(10)"], app_time = "150ms" },
  { commit = true },
]
"#;

/// Four threads, app time only between reads: the lock is contended, the database is not.
const APP_HEAVY: &str = r#"
name = "app-heavy"
duration = "1s"
warmup = "0s"
seed = 9

[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER);"
populate = [{ table = "t", rows = 10, values = ["uniform(0, 9)"] }]

[[group]]
name = "web"
workers = 4
clients = 4
transaction = "none"
app_time = "3ms"

[[group.script]]
name = "read"
steps = [{ sql = "SELECT v FROM t WHERE id = ?1", params = ["uniform(1, 10)"] }]
"#;

fn run(text: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "s.toml", text);
    let out = dir.path().join("r.json");
    let output = bin()
        .arg("run")
        .arg(&path)
        .arg("--db-dir")
        .arg(dir.path())
        .arg("-o")
        .arg(&out)
        .args(["--quiet", "--no-probe"])
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let report = read_json(&out);
    assert_schema_valid(&report);
    report
}

fn app(report: &Value, run: usize) -> &Value {
    &report["runs"][run]["groups"][0]["app"]
}

#[test]
fn under_one_lock_app_code_never_runs_on_two_threads_at_once() {
    let report = run(APP_HEAVY, &["--matrix", "group.web.runtime=native,gvl,gil"]);
    for (i, runtime) in ["native", "gvl", "gil"].iter().enumerate() {
        let a = app(&report, i);
        assert_eq!(a["runtime"], *runtime, "read back: {a}");
        let interp = &a["interpreter"];
        assert_eq!(interp["processes"], 1, "{interp}");
        assert!(interp["app_slices"].as_u64().unwrap() > 0, "{interp}");
        if *runtime == "native" {
            assert!(a.get("busy_wait").is_none(), "{a}");
            continue;
        }
        // One thread of the process at a time runs app code, so its app CPU time fits in
        // its wall time (one core's worth).
        assert_eq!(interp["max_concurrent_app"], 1, "{runtime}: {interp}");
        let share = interp["max_app_cpu_per_wall"].as_f64().unwrap();
        assert!(share <= 1.0, "{runtime}: app CPU / wall = {share}");
    }
    assert_eq!(app(&report, 1)["busy_wait"], "holds-lock");
    assert_eq!(app(&report, 2)["busy_wait"], "releases-lock");
}

#[test]
fn a_wait_that_holds_the_gvl_stops_every_other_thread_of_the_process() {
    let report = run(CONTENDED, &["--matrix", "group.web.busy_wait=holds-lock,releases-lock"]);
    let holds = &report["runs"][0]["groups"][0];
    assert_eq!(holds["app"]["busy_wait"], "holds-lock");
    let waits = holds["busy_handler_calls"].as_u64().unwrap();
    assert!(waits > 0, "the run never waited for the database lock: {holds}");
    // While one thread sleeps in the busy handler holding the GVL, no other thread of the
    // process runs a slice of app code.
    assert_eq!(
        holds["app"]["interpreter"]["app_slices_during_db_wait"], 0,
        "{}",
        holds["app"]
    );
    let releases = &report["runs"][1]["groups"][0];
    assert_eq!(releases["app"]["busy_wait"], "releases-lock");
    assert!(releases["busy_handler_calls"].as_u64().unwrap() > 0, "{releases}");
    // Released, the lock lets the thread that holds the write lock run on during the wait.
    assert!(
        releases["app"]["interpreter"]["app_slices_during_db_wait"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        releases["app"]
    );
}

fn rejected(text: &str, extra: &[&str], fragments: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", text);
    let out = bin().arg("validate").arg(&path).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "expected {f:?} in: {stderr}");
    }
}

#[test]
fn an_unknown_runtime_or_a_busy_wait_without_a_lock_is_exit_2_naming_the_key() {
    rejected(&CONTENDED.replace("\"gvl\"", "\"jvm\""), &[], &["runtime", "jvm"]);
    rejected(
        CONTENDED,
        &["--set", "group.web.runtime=jvm"],
        &["group.web.runtime", "jvm"],
    );
    let native = CONTENDED.replace("runtime = \"gvl\"", "runtime = \"native\"\nbusy_wait = \"holds-lock\"");
    rejected(&native, &[], &["busy_wait", "interpreter lock"]);
    rejected(
        CONTENDED,
        &[
            "--set",
            "group.web.runtime=native",
            "--set",
            "group.web.busy_wait=releases-lock",
        ],
        &["busy_wait", "interpreter lock"],
    );
    rejected(
        CONTENDED,
        &["--set", "group.web.busy_wait=spin"],
        &["group.web.busy_wait", "spin"],
    );
}

/// Several threads in each of several processes (Puma `workers 2, threads 2`): `workers`
/// counts every thread, `threads` groups them into processes, each with its own lock.
fn clustered(text: &str, workers: u32, threads: u32) -> String {
    text.replacen(
        "workers = 4\nclients = 4",
        &format!("workers = {workers}\nthreads = {threads}\nisolation = \"process\"\nclients = 8"),
        1,
    )
}

#[test]
fn each_process_of_several_threads_runs_app_code_on_one_thread_at_a_time() {
    let text = clustered(APP_HEAVY, 4, 2);
    let report = run(&text, &["--matrix", "group.web.runtime=native,gvl,gil"]);
    for (i, runtime) in ["native", "gvl", "gil"].iter().enumerate() {
        let group = &report["runs"][i]["groups"][0];
        let a = &group["app"];
        assert_eq!(a["runtime"], *runtime, "read back: {a}");
        assert_eq!(a["isolation"], "process", "{a}");
        assert_eq!(a["threads_per_process"], 2, "{a}");
        // Four workers in two processes of two threads each.
        let pids: Vec<u64> = a["pids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "{a}");
        let workers = group["per_worker"].as_array().unwrap();
        assert_eq!(workers.len(), 4, "{group}");
        for pid in &pids {
            let n = workers.iter().filter(|w| w["pid"].as_u64() == Some(*pid)).count();
            assert_eq!(n, 2, "process {pid} ran {n} workers: {group}");
        }
        let interp = &a["interpreter"];
        assert_eq!(interp["processes"], 2, "{interp}");
        assert!(interp["app_slices"].as_u64().unwrap() > 0, "{interp}");
        // Counted per process: never more threads at once than a process has.
        assert!(interp["max_concurrent_app"].as_u64().unwrap() <= 2, "{interp}");
        if *runtime == "native" {
            continue;
        }
        // Under its own lock, one thread of each process at a time runs app code, and a
        // process's app CPU time fits in its wall time.
        assert_eq!(interp["max_concurrent_app"], 1, "{runtime}: {interp}");
        let share = interp["max_app_cpu_per_wall"].as_f64().unwrap();
        assert!(share <= 1.0, "{runtime}: app CPU / wall = {share}");
        // Every client is served: the invariants (Little's law among them) were checked.
        let invariants = a["invariants"].as_array().unwrap();
        assert!(invariants.iter().all(|i| i["ok"] == true), "{invariants:?}");
    }
}

#[test]
fn threads_per_process_is_a_matrix_axis_read_back_into_the_report() {
    let text = clustered(APP_HEAVY, 4, 2).replace("duration = \"1s\"", "duration = \"500ms\"");
    let report = run(
        &text,
        &["--matrix", "group.web.threads=1,2,4", "--set", "group.web.runtime=gvl"],
    );
    for (i, (threads, processes)) in [(1, 4), (2, 2), (4, 1)].into_iter().enumerate() {
        let a = app(&report, i);
        assert_eq!(a["threads_per_process"], threads, "{a}");
        assert_eq!(a["interpreter"]["processes"], processes, "{a}");
        assert_eq!(a["pids"].as_array().unwrap().len(), processes, "{a}");
        assert_eq!(a["interpreter"]["max_concurrent_app"], 1, "{a}");
    }
}

#[test]
fn a_holding_wait_stops_the_other_threads_of_its_process_only() {
    // Two processes of two threads: a holding wait stops its own process's other thread;
    // a releasing one lets it run on.
    let text = CONTENDED.replace(
        "workers = 2\nclients = 2",
        "workers = 4\nthreads = 2\nisolation = \"process\"\nclients = 4",
    );
    let report = run(&text, &["--matrix", "group.web.busy_wait=holds-lock,releases-lock"]);
    let holds = &report["runs"][0]["groups"][0];
    assert_eq!(holds["app"]["threads_per_process"], 2);
    assert_eq!(holds["app"]["interpreter"]["processes"], 2);
    assert!(holds["busy_handler_calls"].as_u64().unwrap() > 0, "{holds}");
    assert_eq!(
        holds["app"]["interpreter"]["app_slices_during_db_wait"], 0,
        "{}",
        holds["app"]
    );
    let releases = &report["runs"][1]["groups"][0];
    assert!(releases["busy_handler_calls"].as_u64().unwrap() > 0, "{releases}");
    assert!(
        releases["app"]["interpreter"]["app_slices_during_db_wait"]
            .as_u64()
            .unwrap()
            > 0,
        "{}",
        releases["app"]
    );
}

#[test]
fn threads_that_cannot_run_are_exit_2_naming_the_key() {
    let four = clustered(APP_HEAVY, 4, 3);
    rejected(&four, &[], &["threads", "workers = 4 is not a multiple of threads = 3"]);
    rejected(
        &clustered(APP_HEAVY, 4, 2),
        &["--set", "group.web.threads=8"],
        &["threads", "not a multiple"],
    );
    rejected(
        &clustered(APP_HEAVY, 4, 2),
        &["--matrix", "group.web.threads=2,3"],
        &["threads", "not a multiple of threads = 3"],
    );
    rejected(
        APP_HEAVY,
        &["--set", "group.web.threads=2"],
        &["threads", "needs isolation = \"process\""],
    );
    rejected(
        &clustered(APP_HEAVY, 4, 2),
        &["--set", "group.web.threads=0"],
        &["group.web.threads"],
    );
    rejected(
        &clustered(APP_HEAVY, 4, 2),
        &["--set", "group.web.threads=many"],
        &["group.web.threads", "many"],
    );
    // As many threads as workers in one `thread` group says the same thing: accepted.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "ok.toml", APP_HEAVY);
    bin()
        .arg("validate")
        .arg(&path)
        .args(["--set", "group.web.threads=4"])
        .assert()
        .success();
}

/// Puma's keep-alive connections (issue 30): one worker, four clients that never think.
/// With `keep_alive_inline = 10` the worker serves a client's requests ten in a row and then
/// gives it back, because the three others are always due: 9 of every 10 requests are
/// inline. Without it every request goes back through the queue.
#[test]
fn keep_alive_clients_are_served_inline_up_to_the_count_then_rotate() {
    let text = APP_HEAVY
        .replace("workers = 4\nclients = 4", "workers = 1\nclients = 4")
        .replace("app_time = \"3ms\"", "app_time = \"200us\"");
    let report = run(
        &text,
        &["--matrix", "group.web.keep_alive_inline=1,10", "--duration", "600ms"],
    );
    for (i, n) in [1u64, 10].into_iter().enumerate() {
        let a = app(&report, i);
        assert_eq!(a["keep_alive_inline"], n, "read back: {a}");
        assert_eq!(a["keep_alive_wait_ms"], 200.0, "Puma's wait by default: {a}");
        let (inline, requests) = (a["inline_requests"].as_u64().unwrap(), a["requests"].as_u64().unwrap());
        assert!(requests >= 20, "{a}");
        if n == 1 {
            assert_eq!(inline, 0, "others are always due: every request rotates ({a})");
        } else {
            // Exactly 9 in 10, but for the run of requests cut by the start of measuring.
            let share = inline as f64 / requests as f64;
            assert!((0.8..=0.95).contains(&share), "{inline} of {requests} inline: {a}");
        }
        let invariants = a["invariants"].as_array().unwrap();
        assert!(invariants.iter().all(|i| i["ok"] == true), "{invariants:?}");
    }
    let plain = run(&text, &["--duration", "300ms"]);
    assert!(app(&plain, 0).get("inline_requests").is_none(), "unset: not reported");
}

#[test]
fn keep_alive_without_clients_to_keep_is_exit_2_naming_the_key() {
    rejected(
        APP_HEAVY,
        &["--set", "group.web.keep_alive_wait=50ms"],
        &["keep_alive_wait", "needs keep_alive_inline"],
    );
    rejected(
        &APP_HEAVY.replace("clients = 4", "rate = 100"),
        &["--set", "group.web.keep_alive_inline=10"],
        &["keep_alive_inline", "open-loop arrivals"],
    );
    let shared =
        clustered(APP_HEAVY, 4, 1).replace("isolation = \"process\"", "isolation = \"process\"\nqueue = \"shared\"");
    rejected(
        &shared,
        &["--set", "group.web.keep_alive_inline=10"],
        &["keep_alive_inline", "queue = \"per-process\""],
    );
    rejected(
        APP_HEAVY,
        &["--set", "group.web.keep_alive_inline=0"],
        &["group.web.keep_alive_inline"],
    );
    rejected(
        APP_HEAVY,
        &[
            "--set",
            "group.web.keep_alive_inline=10",
            "--set",
            "group.web.keep_alive_wait=400d",
        ],
        &["keep_alive_wait", "too long"],
    );
}
