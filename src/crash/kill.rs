//! Method 1, process crash: a child process commits ledger transactions and reports each
//! acknowledged id on its stdout; the parent SIGKILLs it at a random moment, then recovers
//! the database itself and checks it. The OS page cache survives, as when an app server dies.

use super::CrashError;
use super::check::{self, Expected};
use super::ledger::{self, Ledger};
use crate::config::sqlite::SqliteSettings;
use crate::report::model::durability::TrialResult;
use crate::workload::rng::Rng;
use rusqlite::Connection;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The hidden subcommand the parent runs in the child.
pub(crate) const CHILD_COMMAND: &str = "crash-child";
/// How long the child waits for set-up before the parent gives up on it.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The child stops by itself after this long, so no child outlives a stuck parent for long.
const CHILD_LIFETIME: Duration = Duration::from_secs(30);

pub(crate) struct KillPlan<'a> {
    /// The litehammer binary to re-execute.
    pub exe: &'a Path,
    /// A directory this command created; each trial gets a fresh subdirectory.
    pub dir: &'a Path,
    pub settings: &'a SqliteSettings,
    pub trials: u32,
    pub seed: u64,
    pub max_rows: u32,
    /// Kill moments are uniform in `0..max_delay` after the child is ready.
    pub max_delay: Duration,
    pub keep_db: bool,
}

pub(crate) fn run(plan: &KillPlan<'_>) -> Result<Vec<TrialResult>, CrashError> {
    (0..plan.trials)
        .take_while(|_| !crate::interrupt::cancelled())
        .map(|t| trial(plan, t))
        .collect()
}

fn trial(plan: &KillPlan<'_>, t: u32) -> Result<TrialResult, CrashError> {
    let dir = plan.dir.join(format!("trial-{t}"));
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("ledger.db");
    let mut rng = Rng::derive(plan.seed, t as u64);
    let ledger = Ledger::new(rng.next_u64(), plan.max_rows);
    let delay = Duration::from_micros(rng.below(plan.max_delay.as_micros().max(1) as u64));
    let acknowledged = crash_child(plan, &db, &ledger, delay)?;
    let conn = Connection::open(&db)?;
    let expected = Expected {
        acknowledged,
        attempted: acknowledged + 1,
    };
    let check = check::check(&conn, &ledger, expected);
    drop(conn);
    if !plan.keep_db {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(TrialResult {
        trial: t,
        kill_after_ms: Some(delay.as_secs_f64() * 1000.0),
        crash_event: None,
        events: None,
        sector_size: None,
        check,
        cross_check_agrees: None,
    })
}

/// Runs one child to its SIGKILL; returns the highest acknowledged transaction id.
fn crash_child(plan: &KillPlan<'_>, db: &Path, ledger: &Ledger, delay: Duration) -> Result<u64, CrashError> {
    let settings = serde_json::to_string(plan.settings).expect("settings serialize");
    let mut child = Command::new(plan.exe)
        .arg(CHILD_COMMAND)
        .arg("--db")
        .arg(db)
        .arg("--seed")
        .arg(ledger.seed.to_string())
        .arg("--max-rows")
        .arg(ledger.max_rows.to_string())
        .arg("--settings")
        .arg(settings)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || read_acks(stdout, ready_tx));
    let ready = ready_rx.recv_timeout(READY_TIMEOUT).is_ok();
    if ready {
        std::thread::sleep(delay);
    }
    let status = kill_and_reap(&mut child)?;
    let acknowledged = reader.join().unwrap_or(0);
    let exited_badly = status.code().is_some_and(|c| c != 0);
    if !ready || exited_badly {
        return Err(CrashError::Child(child_stderr(&mut child)));
    }
    Ok(acknowledged)
}

fn kill_and_reap(child: &mut Child) -> std::io::Result<std::process::ExitStatus> {
    // SIGKILL on unix; an error only means the child already exited, and wait reaps it either way.
    let _ = child.kill();
    child.wait()
}

/// Reads `ready` and then one acknowledged id per line until the pipe closes.
fn read_acks(stdout: ChildStdout, ready: mpsc::Sender<()>) -> u64 {
    let mut last = 0;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if line == "ready" {
            let _ = ready.send(());
        } else if let Ok(tx) = line.parse::<u64>() {
            last = last.max(tx);
        }
    }
    last
}

fn child_stderr(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    let text = text.trim();
    if text.is_empty() {
        "the crash worker exited before it was killed".to_string()
    } else {
        format!("the crash worker failed: {text}")
    }
}

/// The child: creates the database, prints `ready`, then commits transactions 1, 2, 3, ...
/// and prints each id after its COMMIT returned OK, until killed.
pub(crate) fn child_main(db: &PathBuf, settings: &str, seed: u64, max_rows: u32) -> Result<(), CrashError> {
    let settings: SqliteSettings =
        serde_json::from_str(settings).map_err(|e| CrashError::Child(format!("bad --settings: {e}")))?;
    let mut conn = Connection::open(db)?;
    crate::targets::sqlite::settings::apply_to_new_database(&settings, &conn)?;
    crate::targets::sqlite::settings::apply_and_check(&settings, &mut conn)?;
    ledger::create_schema(&conn)?;
    let ledger = Ledger::new(seed, max_rows);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let deadline = Instant::now() + CHILD_LIFETIME;
    let mut tx = 1;
    while Instant::now() < deadline {
        ledger::commit(&conn, &ledger, tx)?;
        // A closed pipe (parent gone) fails here and ends the child.
        writeln!(out, "{tx}")?;
        out.flush()?;
        tx += 1;
    }
    Ok(())
}
