//! Method 2, power loss: the ledger runs on the simulated disk, power is cut at a disk event
//! chosen uniformly over a crash-free run's events, each crash model rebuilds the disk, and a
//! fresh connection recovers and checks it (optionally also through SQLite's unix VFS).

use super::CrashError;
use super::check::{self, Expected, TrialCheck};
use super::disk::Disk;
use super::ledger::{self, Ledger};
use super::model::{self, Model};
use super::vfs::{self, Mount};
use crate::config::sqlite::SqliteSettings;
use crate::report::model::durability::TrialResult;
use crate::workload::rng::Rng;
use std::path::Path;
use std::sync::Mutex;

const DB: &str = "ledger.db";

/// SQLite's PRNG is process-global: one power-loss workload at a time, so trials reproduce.
static PRNG_LOCK: Mutex<()> = Mutex::new(());

pub(crate) struct PowerPlan<'a> {
    pub settings: &'a SqliteSettings,
    pub seed: u64,
    pub max_rows: u32,
    /// Ledger transactions per trial (the crash usually comes before the last).
    pub transactions: u32,
    pub trials: u32,
    pub models: &'a [Model],
    /// Where `--cross-check` writes rebooted images for the unix VFS.
    pub cross_check: Option<&'a Path>,
}

/// The disk at the moment power went out, and what the committer knew.
struct Crashed {
    disk: Disk,
    acknowledged: u64,
    attempted: u64,
}

/// The set-up disk and the crash-free run's event count, shared by every trial.
struct Prepared {
    base: Disk,
    ledger: Ledger,
    events: u64,
}

/// Runs every trial; results per model, in the order of `plan.models`.
pub(crate) fn run(plan: &PowerPlan<'_>) -> Result<Vec<Vec<TrialResult>>, CrashError> {
    let _serial = PRNG_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let prepared = prepare(plan)?;
    let mut results = vec![Vec::with_capacity(plan.trials as usize); plan.models.len()];
    for t in 0..plan.trials {
        if crate::interrupt::cancelled() {
            break;
        }
        let cut = crash_event(plan.seed, t, prepared.events);
        let crashed = workload(plan, &prepared, Some(cut), false)?;
        for (i, &model) in plan.models.iter().enumerate() {
            results[i].push(judge(plan, &prepared, &crashed, model, t, cut)?);
        }
    }
    Ok(results)
}

/// One trial again, with every disk event printed: the I/O trace and the verdict.
pub(crate) fn replay(plan: &PowerPlan<'_>, model: Model, trial: u32) -> Result<String, CrashError> {
    let _serial = PRNG_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let prepared = prepare(plan)?;
    let cut = crash_event(plan.seed, trial, prepared.events);
    let mut crashed = workload(plan, &prepared, Some(cut), true)?;
    let trace = crashed.disk.trace.take().unwrap_or_default();
    let result = judge(plan, &prepared, &crashed, model, trial, cut)?;
    let mut out = format!(
        "trial {trial}, model {}: power cut at event {cut} of {} (crash-free run)\n",
        model.as_str(),
        prepared.events
    );
    for line in trace {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "acknowledged {} (attempted {}), sector size {}\nresult: {}\n",
        crashed.acknowledged,
        crashed.attempted,
        result.sector_size.map_or("-".to_string(), |s| s.to_string()),
        serde_json::to_string(&result).expect("trial serializes")
    ));
    Ok(out)
}

fn crash_event(seed: u64, trial: u32, events: u64) -> u64 {
    1 + Rng::derive(seed, trial as u64).below(events)
}

fn prepare(plan: &PowerPlan<'_>) -> Result<Prepared, CrashError> {
    let ledger = Ledger::new(plan.seed, plan.max_rows);
    let mut prepared = Prepared {
        base: base_disk(plan.settings)?,
        ledger,
        events: 0,
    };
    let free = workload(plan, &prepared, None, false)?;
    if free.acknowledged != plan.transactions as u64 || free.disk.events == 0 {
        return Err(CrashError::Child(format!(
            "the crash-free run on the simulated disk committed {} of {} transactions",
            free.acknowledged, plan.transactions
        )));
    }
    prepared.events = free.disk.events;
    Ok(prepared)
}

/// A fresh database with the settings and the ledger schema, cleanly shut down: all durable.
fn base_disk(settings: &SqliteSettings) -> Result<Disk, CrashError> {
    let mount = Mount::new(Disk::default())?;
    let mut conn = mount.open(DB)?;
    crate::targets::sqlite::settings::apply_to_new_database(settings, &conn)?;
    crate::targets::sqlite::settings::apply_and_check(settings, &mut conn)?;
    ledger::create_schema(&conn)?;
    drop(conn);
    let mut disk = std::mem::take(&mut *mount.disk());
    disk.settle();
    disk.events = 0;
    Ok(disk)
}

/// Commits the ledger on a copy of the base disk until it ends or power is cut at `cut`.
fn workload(plan: &PowerPlan<'_>, prepared: &Prepared, cut: Option<u64>, trace: bool) -> Result<Crashed, CrashError> {
    let mut disk = prepared.base.clone();
    disk.cut_at = cut;
    disk.trace = trace.then(Vec::new);
    let mount = Mount::new(disk)?;
    vfs::reseed_prng(plan.seed);
    let (mut acknowledged, mut attempted) = (0, 0);
    let mut conn = mount.open(DB)?;
    if let Err(e) = crate::targets::sqlite::settings::apply_and_check(plan.settings, &mut conn)
        && !mount.disk().power_off
    {
        return Err(e.into());
    }
    for tx in 1..=plan.transactions as u64 {
        if mount.disk().power_off {
            break;
        }
        attempted = tx;
        let committed = ledger::commit(&conn, &prepared.ledger, tx);
        // Nothing SQLite returns once power is out counts as acknowledged.
        if mount.disk().power_off {
            break;
        }
        committed?;
        acknowledged = tx;
    }
    drop(conn);
    let disk = std::mem::take(&mut *mount.disk());
    Ok(Crashed {
        disk,
        acknowledged,
        attempted,
    })
}

fn judge(
    plan: &PowerPlan<'_>,
    prepared: &Prepared,
    crashed: &Crashed,
    model: Model,
    trial: u32,
    cut: u64,
) -> Result<TrialResult, CrashError> {
    let mut rng = Rng::derive(plan.seed ^ model.stream(), trial as u64);
    let (rebooted, sector_size) = model::reboot(&crashed.disk, model, &mut rng);
    let expected = Expected {
        acknowledged: crashed.acknowledged,
        attempted: crashed.attempted,
    };
    let cross = match plan.cross_check {
        Some(dir) => Some(recover_on_unix(&rebooted, dir, &prepared.ledger, expected)?),
        None => None,
    };
    let check = recover_on_simulator(rebooted, &prepared.ledger, expected)?;
    Ok(TrialResult {
        trial,
        kill_after_ms: None,
        crash_event: Some(cut),
        events: Some(prepared.events),
        sector_size,
        cross_check_agrees: cross.map(|c| c == check),
        check,
    })
}

fn unreadable(expected: Expected, e: impl std::fmt::Display) -> TrialCheck {
    TrialCheck {
        acknowledged: expected.acknowledged,
        lost: expected.acknowledged,
        integrity: format!("error opening the database: {e}"),
        ..TrialCheck::default()
    }
}

fn recover_on_simulator(disk: Disk, ledger: &Ledger, expected: Expected) -> Result<TrialCheck, CrashError> {
    let mount = Mount::new(disk)?;
    Ok(match mount.open(DB) {
        Ok(conn) => check::check(&conn, ledger, expected),
        Err(e) => unreadable(expected, e),
    })
}

/// The same image as real files in a temp dir, recovered by SQLite's own unix VFS.
fn recover_on_unix(disk: &Disk, dir: &Path, ledger: &Ledger, expected: Expected) -> Result<TrialCheck, CrashError> {
    let scratch = tempfile::tempdir_in(dir)?;
    for (name, image) in disk.files() {
        std::fs::write(scratch.path().join(name), image.to_bytes())?;
    }
    Ok(match rusqlite::Connection::open(scratch.path().join(DB)) {
        Ok(conn) => check::check(&conn, ledger, expected),
        Err(e) => unreadable(expected, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sqlite::{JournalMode, Synchronous};

    fn plan<'a>(settings: &'a SqliteSettings, models: &'a [Model], dir: Option<&'a Path>) -> PowerPlan<'a> {
        PowerPlan {
            settings,
            seed: 11,
            max_rows: 4,
            transactions: 12,
            trials: 12,
            models,
            cross_check: dir,
        }
    }

    fn settings(journal_mode: JournalMode, synchronous: Synchronous) -> SqliteSettings {
        SqliteSettings {
            journal_mode,
            synchronous,
            ..SqliteSettings::default()
        }
    }

    #[test]
    fn wal_full_and_delete_extra_lose_nothing_under_the_durable_model() {
        for (mode, sync) in [
            (JournalMode::Wal, Synchronous::Full),
            (JournalMode::Delete, Synchronous::Extra),
        ] {
            let s = settings(mode, sync);
            let results = run(&plan(&s, &[Model::Durable], None)).unwrap();
            for t in &results[0] {
                assert!(t.check.clean(), "{mode}/{sync}: {t:?}");
            }
            assert!(results[0].iter().any(|t| t.check.acknowledged > 0));
        }
    }

    #[test]
    fn delete_full_can_lose_only_the_last_commit() {
        // The journal's unlink is the commit, and only EXTRA syncs the directory after it.
        let s = settings(JournalMode::Delete, Synchronous::Full);
        let results = run(&plan(&s, &[Model::Durable], None)).unwrap();
        for t in &results[0] {
            assert!(
                t.check.lost <= 1 && t.check.integrity_ok() && !t.check.silent_damage(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn synchronous_off_loses_acknowledged_transactions_under_the_durable_model() {
        let s = settings(JournalMode::Wal, Synchronous::Off);
        let results = run(&plan(&s, &[Model::Durable], None)).unwrap();
        assert!(results[0].iter().any(|t| t.check.lost > 0), "{:?}", results[0]);
    }

    #[test]
    fn unix_vfs_recovers_the_same_images() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(JournalMode::Delete, Synchronous::Normal);
        let results = run(&plan(&s, &Model::ALL, Some(dir.path()))).unwrap();
        for t in results.iter().flatten() {
            assert_eq!(t.cross_check_agrees, Some(true), "{t:?}");
        }
    }
}
