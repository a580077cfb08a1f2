//! `--target dqlite`: runs against a throwaway 3-node dqlite cluster through the real
//! binary, a leader killed while measuring, the clean-up of every node process and
//! directory (after success, a fault, and SIGTERM), and bad input. Tests that need dqlite
//! skip with a message when it is not installed; CI sets LITEHAMMER_REQUIRE_DQLITE=1 (and
//! installs go-dqlite and libdqlite0) so they must run.

mod common;

use common::{
    assert_exit_2, assert_schema_valid, bin, command_lines_with, installed, on_path, read_json as report, run_in, write,
};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

fn dqlite_installed() -> bool {
    installed(
        on_path("dqlite-demo").is_some(),
        "LITEHAMMER_REQUIRE_DQLITE",
        "dqlite (apt-get install go-dqlite libdqlite0)",
    )
}

fn alive(pid: u64) -> bool {
    // A reaped process is gone; a zombie would still have a /proc entry with state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
        .unwrap_or(false)
}

/// Nothing of a throwaway cluster is left under `tmp`: no directory, no node process.
fn assert_no_cluster_left(tmp: &Path) {
    let left: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("litehammer-dqlite-"))
        .collect();
    assert!(left.is_empty(), "cluster directories left behind: {left:?}");
    let running = command_lines_with(&["dqlite-demo", &tmp.to_string_lossy()]);
    assert!(running.is_empty(), "dqlite nodes still running: {running:?}");
}

/// Every node process a run reported (restarts included) is gone.
fn assert_pids_gone(run: &serde_json::Value) {
    let pids: Vec<u64> = run["dqlite"]["node_pids"]
        .as_array()
        .expect("node_pids")
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    assert!(pids.len() >= 3, "{pids:?}");
    for pid in pids {
        assert!(!alive(pid), "node process {pid} outlived litehammer");
    }
}

const SCENARIO: &str = r#"
name = "dq-tiny"
duration = "1s"
warmup = "0s"
seed = 7
timeline_interval = "100ms"

[sqlite]
busy_timeout = "5s"

[matrix]
journal_mode = ["wal", "delete"]

[setup]
sql = """
CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE kv(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT, p INTEGER REFERENCES parent(id));
CREATE INDEX kv_k ON kv(k);
"""
populate = [
  { table = "parent", rows = 10, values = ["text(5)"] },
  { table = "kv", rows = 300, values = ["uniform(1, 100)", "text(10)", "uniform(1, 10)"] },
]

[[group]]
name = "writers"
workers = 2
transaction = "immediate"
statements_per_transaction = 2
retry = { max_tries = 5 }

[[group.op]]
name = "put"
sql = "INSERT INTO kv(k, v, p) VALUES (?1, ?2, ?3)"
params = ["uniform(1, 100)", "text(5, 20)", "uniform(1, 10)"]

[[group.op]]
name = "touch"
sql = "UPDATE kv SET v = ?2 WHERE id = ?1"
params = ["uniform(1, 300)", "text(3)"]

# The application model: clients queue for workers, a connection per request.
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
  { sql = "SELECT id, k FROM kv WHERE id = ?1", params = ["uniform(1, 300)"] },
  { sql = "SELECT count(*) FROM kv WHERE k = ?1", params = ["$0.k"] },
]

[[check]]
name = "no empty values"
sql = "SELECT count(*) FROM kv WHERE v IS NULL"
expect = 0
"#;

#[test]
fn a_matrix_of_sqlite_and_dqlite_is_verified_and_no_node_is_left() {
    if !dqlite_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let out = dir.path().join("r.json");
    let assert = run_in(
        tmp.path(),
        scenario.to_str().unwrap(),
        &["--matrix", "target=sqlite,dqlite"],
        &out,
    )
    .timeout(Duration::from_secs(180))
    .assert();
    let output = assert.get_output();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = report(&out);
    assert_schema_valid(&r);
    let runs = r["runs"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    // journal_mode is dqlite's to choose: one dqlite run, not two.
    assert_eq!(
        ids,
        [
            "target=sqlite,journal_mode=wal",
            "target=sqlite,journal_mode=delete",
            "target=dqlite"
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
    let dq = &runs[2];
    assert!(dq["sqlite"].is_null());
    // Read back from the cluster: dqlite runs SQLite in WAL mode with its own VFS.
    assert_eq!(dq["dqlite"]["settings"]["journal_mode"], "wal", "{}", dq["dqlite"]);
    assert_eq!(dq["dqlite"]["busy_retry_s"], 5.0);
    assert!(dq["dqlite"]["cluster"].as_str().unwrap().contains("3-node"));
    assert_eq!(dq["verification"]["integrity_check"], "ok");
    assert_eq!(dq["verification"]["scenario_checks"][0]["ok"], true);
    assert!(dq["verification"]["writes_acknowledged"].as_u64().unwrap() > 0);
    // Every acknowledged insert is there: expected = before + acknowledged.
    let kv = &dq["verification"]["tables"][0];
    assert_eq!(kv["rows_found"], kv["rows_expected"], "{kv}");
    assert_eq!(kv["rows_before"], 300);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("target=dqlite: dqlite: throwaway 3-node cluster"),
        "{stdout}"
    );
    assert_pids_gone(dq);
    assert!(!Path::new(dq["dqlite"]["cluster_dir"].as_str().unwrap()).exists());
    assert_no_cluster_left(tmp.path());
}

/// The leader is SIGKILLed while writers write: the client finds the new leader, no
/// acknowledged write is lost, the fault has its verdict, and every node process is gone.
#[test]
fn a_killed_leader_loses_no_acknowledged_write() {
    if !dqlite_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        &SCENARIO.replace("duration = \"1s\"", "duration = \"12s\""),
    );
    let out = dir.path().join("r.json");
    let assert = run_in(
        tmp.path(),
        scenario.to_str().unwrap(),
        &["--target", "dqlite", "--fault", "kill-leader@2s"],
        &out,
    )
    .timeout(Duration::from_secs(180))
    .assert();
    let output = assert.get_output();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = report(&out);
    assert_schema_valid(&r);
    let run = &r["runs"][0];
    let fault = &run["dqlite"]["faults"][0];
    assert_eq!(fault["fault"], "kill-leader@2s", "{fault}");
    assert!(fault["injected_at_s"].as_f64().unwrap() >= 2.0, "{fault}");
    assert!(fault["error"].is_null(), "{fault}");
    let killed = fault["node"].as_str().unwrap();
    let new_leader = fault["new_leader"].as_str().expect("a new leader was elected");
    assert_ne!(killed, new_leader);
    assert_eq!(fault["lost"], 0, "{fault}");
    assert_eq!(run["verification"]["lost"], 0, "{}", run["verification"]);
    assert_eq!(run["verification"]["ok"], true, "{}", run["verification"]);
    // Writes went on after the fault: commits in the last second of the run.
    let timeline = run["timeline"].as_array().unwrap();
    let late: u64 = timeline[timeline.len() - 10..]
        .iter()
        .map(|e| e["ops"].as_u64().unwrap())
        .sum();
    assert!(late > 0, "nothing committed after the leader was killed");
    let verdict = fault["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("kill-leader at "), "{verdict}");
    assert!(verdict.contains("0 acknowledged writes lost"), "{verdict}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("fault kill-leader at"), "{stdout}");
    assert_pids_gone(run);
    assert_no_cluster_left(tmp.path());
}

/// The other faults in one run: a paused leader resumes, a killed follower and a
/// restarted node do not lose acknowledged writes, and restarts are among the PIDs checked.
#[test]
fn pause_kill_and_restart_faults_are_reported_and_lose_nothing() {
    if !dqlite_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "s.toml",
        &SCENARIO.replace("duration = \"1s\"", "duration = \"9s\""),
    );
    let out = dir.path().join("r.json");
    let assert = run_in(
        tmp.path(),
        scenario.to_str().unwrap(),
        &[
            "--target",
            "dqlite",
            "--fault",
            "pause-leader@1s+1s",
            "--fault",
            "kill-follower@4s",
            "--fault",
            "restart-node@6s",
        ],
        &out,
    )
    .timeout(Duration::from_secs(180))
    .assert();
    let output = assert.get_output();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let r = report(&out);
    assert_schema_valid(&r);
    let run = &r["runs"][0];
    let faults = run["dqlite"]["faults"].as_array().unwrap();
    let names: Vec<&str> = faults.iter().map(|f| f["fault"].as_str().unwrap()).collect();
    assert_eq!(names, ["pause-leader@1s+1s", "kill-follower@4s", "restart-node@6s"]);
    for f in faults {
        assert!(f["injected_at_s"].as_f64().is_some(), "{f}");
        assert!(f["error"].is_null(), "{f}");
        assert_eq!(f["lost"], 0, "{f}");
        assert!(
            f["verdict"].as_str().unwrap().contains("0 acknowledged writes lost"),
            "{f}"
        );
    }
    assert_eq!(run["verification"]["ok"], true, "{}", run["verification"]);
    // Three nodes, plus the restarted one, plus the one killed and healed afterwards.
    assert!(run["dqlite"]["node_pids"].as_array().unwrap().len() >= 4);
    assert_pids_gone(run);
    assert_no_cluster_left(tmp.path());
}

#[test]
fn sigterm_mid_run_removes_the_cluster() {
    if !dqlite_installed() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let long = write(
        dir.path(),
        "long.toml",
        &SCENARIO.replace("duration = \"1s\"", "duration = \"60s\""),
    );
    let out = dir.path().join("long.json");
    let exe = assert_cmd::cargo::cargo_bin("litehammer");
    let mut child = std::process::Command::new(exe)
        .env("TMPDIR", tmp.path())
        .args([
            "run",
            long.to_str().unwrap(),
            "--target",
            "dqlite",
            "--no-probe",
            "-q",
            "-o",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !(out.exists()
        && std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("litehammer-dqlite-")))
    {
        assert!(started.elapsed() < Duration::from_secs(90), "no cluster started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "litehammer ended before the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("litehammer did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let r = report(&out);
    assert_eq!(r["status"], "interrupted");
    if let Some(run) = r["runs"].as_array().and_then(|runs| runs.first())
        && !run["dqlite"]["node_pids"].is_null()
    {
        assert_pids_gone(run);
    }
    assert_no_cluster_left(tmp.path());
}

/// A fake node that answers every question with "no leader known".
fn leaderless_node() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut version = [0u8; 8];
                if s.read_exact(&mut version).is_err() {
                    return;
                }
                let mut head = [0u8; 8];
                while s.read_exact(&mut head).is_ok() {
                    let words = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                    let mut body = vec![0u8; words * 8];
                    if s.read_exact(&mut body).is_err() {
                        return;
                    }
                    // Node response: id 0, empty address.
                    let mut reply = vec![2, 0, 0, 0, 1, 0, 0, 0];
                    reply.extend_from_slice(&[0u8; 16]);
                    if s.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn bad_clusters_faults_and_features_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "s.toml", SCENARIO);
    let s = scenario.to_str().unwrap();
    let out = dir.path().join("r.json");
    let port = leaderless_node();
    let leaderless = format!("dqlite=127.0.0.1:{port}");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--target".into(), "dqlite=".into()], "needs node addresses"),
        (
            vec!["--target".into(), "dqlite=nowhere".into()],
            "malformed dqlite address `nowhere`",
        ),
        // Port 1 on loopback: nothing listens there.
        (
            vec![
                "--target".into(),
                "dqlite=127.0.0.1:1".into(),
                "--set".into(),
                "dqlite.leader_timeout=1s".into(),
            ],
            "cannot connect to dqlite node 127.0.0.1:1",
        ),
        (
            vec![
                "--target".into(),
                leaderless.clone(),
                "--set".into(),
                "dqlite.leader_timeout=1s".into(),
            ],
            "reported a leader within",
        ),
        (
            vec!["--target".into(), leaderless, "--fault".into(), "kill-leader@1s".into()],
            "--fault",
        ),
        (
            vec![
                "--target".into(),
                "dqlite".into(),
                "--fault".into(),
                "explode@1s".into(),
            ],
            "unknown fault `explode`",
        ),
        (
            vec![
                "--target".into(),
                "dqlite".into(),
                "--fault".into(),
                "kill-leader@5s".into(),
            ],
            "comes after the measured phase ends",
        ),
    ];
    for (args, needle) in cases {
        let mut cmd = bin();
        cmd.args(["run", s])
            .args(&args)
            .args(["--no-probe", "-q", "-o"])
            .arg(&out);
        let stderr = assert_exit_2(&mut cmd, &format!("{args:?}"), &[needle]);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // dqlite not installed: the packages are named.
    assert_exit_2(
        bin()
            .env("LITEHAMMER_DQLITE_DEMO", dir.path().join("no-such-binary"))
            .args(["run", s, "--target", "dqlite", "--no-probe", "-q", "-o"])
            .arg(&out),
        "dqlite not installed",
        &["apt-get install go-dqlite libdqlite0"],
    );
    // A feature the target cannot run: backups are SQLite's.
    let backup = SCENARIO.replace("[sqlite]\n", "[backup]\nmethod = \"vacuum-into\"\n\n[sqlite]\n");
    let backup = write(dir.path(), "backup.toml", &backup);
    assert_exit_2(
        bin().args(["validate", backup.to_str().unwrap(), "--target", "dqlite"]),
        "a backup on dqlite",
        &["backup", "dqlite"],
    );
}
