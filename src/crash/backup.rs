//! `run --kill` with a backup: the crash ledger's writer runs in a child process (the hidden
//! `crash-child`, as `crash --method kill`), the backup runs beside it, the child is
//! SIGKILLed after the scenario's duration, and the backup is restored and checked with the
//! ledger's exact checker: the restore must hold transactions 1..k intact, nothing else
//! damaged, and lose no more than the reported lag.

use super::check::{self, Expected};
use super::kill::CHILD_COMMAND;
use super::ledger::Ledger;
use crate::config::matrix::Cell;
use crate::engine::backup::restore::{CheckSpec, Prefix};
use crate::engine::backup::{self, BackupEnv, BackupRun};
use crate::report::model::backup::RestoreCheck;
use crate::report::model::{RunReport, RunStatus, Verification};
use rusqlite::Connection;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The child commits for at most 30 s; the kill comes before that.
const MAX_KILL_AFTER: Duration = Duration::from_secs(25);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const MAX_ROWS: u32 = 4;

/// One killed run of a cell; `index` makes its directory unique.
pub(crate) fn killed_run(
    cell: &Cell,
    index: usize,
    exe: &Path,
    db_dir: &Path,
    env: &BackupEnv,
    keep: bool,
) -> RunReport {
    let mut run = crate::engine::driver::empty_report(cell);
    let dir = db_dir.join(format!("litehammer-{}-{index}-killed", std::process::id()));
    match trial(cell, &dir, exe, env, &mut run) {
        Ok(()) => {}
        Err(e) => {
            run.status = RunStatus::Failed;
            run.error = Some(e);
        }
    }
    if keep {
        run.database.path = Some(dir.join("ledger.db").display().to_string());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    run
}

fn trial(cell: &Cell, dir: &Path, exe: &Path, env: &BackupEnv, run: &mut RunReport) -> Result<(), String> {
    let s = &cell.scenario;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let db = dir.join("ledger.db");
    let ledger = Ledger::new(s.seed, MAX_ROWS);
    let kill_after = s
        .duration
        .as_ref()
        .map_or(Duration::from_secs(5), |d| d.get_ref().0)
        .min(MAX_KILL_AFTER);
    let settings = serde_json::to_string(&s.sqlite).map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg(CHILD_COMMAND)
        .arg("--db")
        .arg(&db)
        .arg("--seed")
        .arg(ledger.seed.to_string())
        .arg("--max-rows")
        .arg(MAX_ROWS.to_string())
        .arg("--settings")
        .arg(settings)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the workload child: {e}"))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let start = Instant::now();
        let mut acks = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                let _ = ready_tx.send(());
            } else if line.parse::<u64>().is_ok() {
                acks.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        acks
    });
    let kill = |child: &mut std::process::Child| {
        let _ = child.kill();
        let _ = child.wait();
    };
    if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
        kill(&mut child);
        return Err("the workload child did not start".into());
    }
    let started = BackupRun::start(&db, &s.backup, &backup::dir_for(&db, &s.backup), env);
    let backup_run = match started {
        Ok(Some(b)) => b,
        Ok(None) => {
            kill(&mut child);
            return Err("--kill needs a backup method (backup = litestream, vacuum-into or backup-api)".into());
        }
        Err(e) => {
            kill(&mut child);
            return Err(format!("backup: {e}"));
        }
    };
    std::thread::sleep(kill_after);
    kill(&mut child);
    let acks = reader.join().unwrap_or_default();
    run.measured_s = kill_after.as_secs_f64();
    let exact = |conn: &Connection, acknowledged: u64| ledger_prefix(conn, &ledger, acknowledged);
    let spec = CheckSpec {
        tracked_tables: &[],
        sequence_table: None,
        acknowledged: Some(acks.len() as u64),
        ack_ms: Some(&acks),
        exact: Some(&exact),
    };
    let mut b = backup_run.finish(&db, &spec);
    b.killed = true;
    let mut verification = Verification {
        ok: true,
        integrity_check: b.restore.integrity_check.clone(),
        writes_acknowledged: acks.len() as u64,
        rows_found: 0,
        lost: 0,
        tables: Vec::new(),
        untracked_tables: Vec::new(),
        scenario_checks: Vec::new(),
    };
    backup::attach(run, &mut verification, b);
    run.verification = Some(verification);
    Ok(())
}

/// The crash checker on a restored copy: the intact prefix, and whether anything is damaged.
fn ledger_prefix(conn: &Connection, ledger: &Ledger, acknowledged: u64) -> Prefix {
    let c = check::check(
        conn,
        ledger,
        Expected {
            acknowledged,
            attempted: acknowledged + 1,
        },
    );
    let commits = acknowledged - c.lost;
    let ok = c.integrity_ok() && !c.silent_damage() && c.partial == 0;
    let detail = if ok {
        format!("ledger transactions 1..{commits} of {acknowledged} acknowledged, intact")
    } else {
        format!(
            "damaged: integrity {}, {} damaged rows, {} partial, {} gaps",
            c.integrity, c.damaged_rows, c.partial, c.order_gaps
        )
    };
    Prefix {
        commits,
        check: RestoreCheck {
            ok,
            integrity_check: c.integrity.clone(),
            method: "ledger".into(),
            detail,
        },
    }
}
