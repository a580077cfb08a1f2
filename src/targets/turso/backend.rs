//! The Turso backend: a copy of the run's SQLite file opened by Turso in this process (its
//! MVCC is single-process), the settings applied and read back, row counts and
//! `integrity_check` through Turso, and the files removed on every exit path.

use super::conn::{TursoDb, TursoError, database, exec, int_of, query_one, registry, text_of};
use crate::config::Scenario;
use crate::config::sqlite::ReadBack;
use crate::report::model::{RunReport, TursoRun, Verification};
use crate::targets::verify::{Acknowledged, check_result, verify_with};
use crate::targets::{Backend, RunDatabase, TargetError, TargetSpec};
use std::path::Path;
use std::sync::Arc;
use turso::core as tc;

pub(crate) const PROFILE: crate::targets::Profile = crate::targets::Profile {
    name: "Turso",
    file: false,
    dialect: None,
};

/// The `turso` crate's version, as Cargo.lock pins it (a test keeps the two equal; the
/// engine's `turso_version()` reports the file header's SQLite version instead).
pub(crate) const VERSION: &str = "0.8.3";

pub(crate) struct TursoBackend;

impl Backend for TursoBackend {
    fn create(&self, db_path: &Path, s: &Scenario) -> Result<Box<dyn RunDatabase>, TargetError> {
        let mut name = db_path.file_name().unwrap_or_default().to_os_string();
        name.push(".turso");
        let path = db_path.with_file_name(name);
        Ok(Box::new(TursoRunDb {
            db: TursoDb {
                path,
                settings: s.turso.clone(),
            },
        }))
    }
}

/// One run's Turso database: a copy of the set-up SQLite file.
struct TursoRunDb {
    db: TursoDb,
}

fn turso_err(e: TursoError) -> TargetError {
    TargetError::Turso(e.to_string())
}

fn count(conn: &Arc<tc::Connection>, table: &str) -> Result<u64, TursoError> {
    let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
    Ok(int_of(&query_one(conn, &sql)?).unwrap_or(0).max(0) as u64)
}

impl RunDatabase for TursoRunDb {
    fn describe(&self, report: &mut RunReport) {
        let s = &self.db.settings;
        report.turso = Some(TursoRun {
            version: VERSION.to_string(),
            path: self.db.path.display().to_string(),
            journal_mode: s.journal_mode.as_str().to_string(),
            begin: match s.begin {
                crate::config::turso::TursoBegin::Group => "group".into(),
                crate::config::turso::TursoBegin::Concurrent => "concurrent".into(),
            },
            synchronous: s.synchronous.as_str().to_string(),
            busy_timeout_ms: s.busy_timeout.0.as_millis() as i64,
            mvcc_checkpoint_threshold: s.mvcc_checkpoint_threshold,
            read_back: false,
        });
    }

    /// Copies the SQLite file (the backup API, then WAL: Turso refuses rollback journals),
    /// opens it with Turso, switches it to the journal mode asked for, and counts the rows.
    fn load(&self, _s: &Scenario, source: &rusqlite::Connection, tables: &[String]) -> Result<Vec<u64>, TargetError> {
        {
            let mut dst = rusqlite::Connection::open(&self.db.path)?;
            rusqlite::backup::Backup::new(source, &mut dst)?.run_to_completion(
                1024,
                std::time::Duration::ZERO,
                None,
            )?;
            dst.pragma_update(None, "journal_mode", "wal")?;
        }
        let d = database(&self.db.path).map_err(turso_err)?;
        let conn = d.connect().map_err(|e| turso_err(e.into()))?;
        let mode = self.db.settings.journal_mode.as_str();
        let got = text_of(&query_one(&conn, &format!("PRAGMA journal_mode = '{mode}'")).map_err(turso_err)?);
        if got != mode {
            return Err(TargetError::Turso(format!(
                "turso.journal_mode: set to {mode}, but Turso reports {got}"
            )));
        }
        tables.iter().map(|t| count(&conn, t).map_err(turso_err)).collect()
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::Turso(self.db.clone())
    }

    /// What the workers read back (stored by the first that connected), and the version.
    fn record(&self, report: &mut RunReport, _read_back: Option<ReadBack>) {
        let read = registry()
            .as_ref()
            .and_then(|m| m.get(&self.db.path))
            .and_then(|o| o.read_back.clone());
        if let Some(run) = report.turso.as_mut()
            && let Some(r) = read
        {
            run.journal_mode = r.journal_mode;
            run.synchronous = r.synchronous;
            run.busy_timeout_ms = r.busy_timeout_ms;
            run.mvcc_checkpoint_threshold = r.mvcc_checkpoint_threshold;
            run.read_back = true;
        }
    }

    fn verify(&self, ack: &Acknowledged<'_>) -> Result<Verification, TargetError> {
        let d = database(&self.db.path).map_err(turso_err)?;
        let conn = d.connect().map_err(|e| turso_err(e.into()))?;
        let integrity = match query_one(&conn, "PRAGMA integrity_check") {
            Ok(v) => text_of(&v),
            Err(e) => format!("integrity_check failed: {e}"),
        };
        if std::env::var("LITEHAMMER_FAULT").as_deref() == Ok("lose-row")
            && let Some(table) = ack.tables.first()
        {
            let t = table.replace('"', "\"\"");
            let _ = exec(
                &conn,
                &format!("DELETE FROM \"{t}\" WHERE rowid = (SELECT max(rowid) FROM \"{t}\")"),
            );
        }
        verify_with(
            integrity,
            |t| count(&conn, t).map_err(turso_err),
            |c| {
                c.sql.as_ref().map(|sql| {
                    let value = query_one(&conn, sql.get_ref())
                        .map(|v| int_of(&v))
                        .map_err(|e| e.to_string());
                    check_result(c, value)
                })
            },
            ack,
        )
    }

    /// Closes the database (drops it from the process's registry) and removes its files —
    /// the copy, its WAL and MVCC log — unless `keep`.
    fn cleanup(&self, keep: bool) {
        let open = registry().as_mut().and_then(|m| m.remove(&self.db.path));
        drop(open);
        if keep {
            return;
        }
        let (Some(dir), Some(name)) = (self.db.path.parent(), self.db.path.file_name()) else {
            return;
        };
        let name = name.to_string_lossy().into_owned();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::Connect;
    use crate::targets::turso::conn::connect;

    #[test]
    fn the_recorded_version_is_the_locked_one() {
        let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
        let locked = lock
            .split("[[package]]")
            .find(|p| p.contains("\nname = \"turso\"\n"))
            .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
            .map(|v| v.trim_end_matches('"'))
            .unwrap();
        assert_eq!(VERSION, locked);
    }

    #[test]
    fn a_run_database_is_copied_counted_verified_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("r.db");
        let source = rusqlite::Connection::open(&sqlite).unwrap();
        source
            .execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t(x) VALUES (1), (2);")
            .unwrap();
        let s: Scenario = crate::config::Source {
            origin: "t".into(),
            text: "name = \"x\"\nduration = \"1s\"\ntarget = \"turso\"\n[[group]]\nname = \"w\"\nworkers = 1\n[[group.op]]\nname = \"o\"\nsql = \"SELECT 1\"\n".into(),
        }
        .parse()
        .unwrap();
        let run = TursoBackend.create(&sqlite, &s).unwrap();
        let tables = vec!["t".to_string()];
        assert_eq!(run.load(&s, &source, &tables).unwrap(), vec![2]);
        let TargetSpec::Turso(db) = run.spec() else {
            panic!("not a Turso spec")
        };
        let how = Connect {
            check: true,
            observed: false,
            statement_cache: None,
        };
        let conn = connect(&db, how).unwrap();
        exec(&conn.conn, "INSERT INTO t(x) VALUES (3)").unwrap();
        let mut report = crate::engine::driver::empty_report(&crate::config::matrix::Cell {
            id: "t".into(),
            assignments: Vec::new(),
            scenario: s.clone(),
            when: Vec::new(),
        });
        run.describe(&mut report);
        run.record(&mut report, None);
        let recorded = report.turso.as_ref().unwrap();
        assert!(recorded.read_back);
        assert_eq!(recorded.journal_mode, "mvcc");
        let ack = |inserts: u64| {
            run.verify(&Acknowledged {
                tables: &tables,
                rows_before: &[2],
                inserts: &[inserts],
                deletes: &[0],
                untracked: &[],
                checks: &[],
            })
            .unwrap()
        };
        assert!(ack(1).ok, "{:?}", ack(1));
        assert_eq!(ack(2).lost, 1);
        drop(conn);
        run.cleanup(false);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".turso"))
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
