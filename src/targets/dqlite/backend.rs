//! The dqlite backend: one database per run on the run's cluster, loaded from the run's
//! SQLite file (its schema as SQLite wrote it, then its rows), verified, and emptied.

use super::client::DqError;
use super::cluster::Cluster;
use super::conn::{DqDatabase, Session};
use super::fault::Faults;
use crate::config::Scenario;
use crate::config::matrix::Cell;
use crate::config::postgres::TargetKind;
use crate::config::sqlite::ReadBack;
use crate::error::InputError;
use crate::report::model::{DqliteRun, RunReport, Verification};
use crate::targets::verify::{self, Acknowledged};
use crate::targets::{Backend, RunDatabase, TargetError, TargetSpec};
use rusqlite::types::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) const PROFILE: crate::targets::Profile = crate::targets::Profile {
    name: "dqlite",
    file: false,
    // dqlite runs SQLite: the scenario's SQL as written.
    dialect: None,
};

/// How long the throwaway cluster may take to elect a leader with three voters.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The run's cluster, shared by its runs.
pub(crate) struct DqBackend(pub Arc<Cluster>);

fn err(e: DqError) -> TargetError {
    TargetError::Dqlite(e.to_string())
}

impl DqBackend {
    /// The cluster the plan's `target = "dqlite"` cells use: the `--target dqlite=ADDRS`
    /// one, or a throwaway one. `None` when no cell runs on dqlite.
    pub(crate) fn start(cells: &[Cell], addrs: Option<&str>) -> Result<Option<Self>, InputError> {
        let cells: Vec<_> = cells
            .iter()
            .filter(|c| c.scenario.target == TargetKind::Dqlite)
            .collect();
        let Some(first) = cells.first() else {
            if addrs.is_some() {
                return Err(InputError::new(
                    "--target",
                    "node addresses are given, but no run has target = dqlite",
                ));
            }
            return Ok(None);
        };
        let leader_timeout = first.scenario.dqlite.leader_timeout.0;
        if let Some(c) = cells.iter().find(|c| !c.scenario.dqlite.faults.is_empty()) {
            let s = &c.scenario;
            if addrs.is_some() {
                return Err(InputError::new(
                    "--fault",
                    "faults are injected into the throwaway cluster only (litehammer kills and pauses only processes it started); leave out the addresses of --target dqlite=...",
                ));
            }
            if let Some(d) = s.duration.as_ref().map(|d| d.get_ref().0)
                && let Some(f) = s.dqlite.faults.iter().find(|f| f.at >= d)
            {
                return Err(InputError::new(
                    "--fault",
                    format!(
                        "{f} comes after the measured phase ends (duration {})",
                        crate::config::duration::DurationValue(d)
                    ),
                ));
            }
        }
        let cluster = match addrs {
            Some(a) => Cluster::existing(a, leader_timeout),
            None => Cluster::throwaway(START_TIMEOUT),
        }
        .map_err(|e| InputError::new("--target", e.to_string()))?;
        eprintln!("dqlite: {}", cluster.shown);
        Ok(Some(DqBackend(Arc::new(cluster))))
    }
}

impl Backend for DqBackend {
    fn create(&self, db_path: &Path, s: &Scenario) -> Result<Box<dyn RunDatabase>, TargetError> {
        if !s.backup.is_none() {
            return Err(TargetError::Dqlite(
                "backups (`[backup]`) are SQLite's; use target = \"sqlite\"".into(),
            ));
        }
        let stem: String = db_path
            .file_stem()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .take(60)
            .collect();
        let name = format!("{stem}-{:08x}.db", rand_suffix());
        let db = DqDatabase {
            nodes: self.0.nodes.clone(),
            name: name.clone(),
            leader_timeout_ms: s.dqlite.leader_timeout.0.as_millis() as u64,
            busy_timeout_ms: s.sqlite.busy_timeout.0.as_millis() as u64,
        };
        Ok(Box::new(DqRun {
            cluster: self.0.clone(),
            shown: DqliteRun {
                cluster: self.0.shown.clone(),
                database: name,
                leader_timeout_s: s.dqlite.leader_timeout.as_secs_f64(),
                busy_retry_s: s.sqlite.busy_timeout.as_secs_f64(),
                cluster_dir: self.0.dir().map(|d| d.display().to_string()),
                node_pids: Vec::new(),
                settings: None,
                faults: Vec::new(),
            },
            db,
            faults: Mutex::new(Faults::new(&s.dqlite.faults)),
        }))
    }
}

fn rand_suffix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

/// One run's database on the cluster.
struct DqRun {
    cluster: Arc<Cluster>,
    db: DqDatabase,
    shown: DqliteRun,
    faults: Mutex<Faults>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The schema objects of the SQLite file, in creation order: (type, name, sql).
fn schema(source: &rusqlite::Connection) -> Result<Vec<(String, String, String)>, TargetError> {
    let mut stmt = source.prepare(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Creates the tables, copies every row (many rows per INSERT, a transaction per table),
/// then creates the indexes, views and triggers (so no trigger fires on the copy).
pub(crate) fn load(session: &mut Session, source: &rusqlite::Connection) -> Result<(), TargetError> {
    let objects = schema(source)?;
    for (kind, name, sql) in objects.iter().filter(|(k, _, _)| k == "table") {
        session
            .exec(sql, &[])
            .map_err(|e| TargetError::Dqlite(format!("creating {kind} `{name}`: {e}")))?;
    }
    for (_, table, _) in objects.iter().filter(|(k, _, _)| k == "table") {
        copy_table(session, source, table).map_err(|e| TargetError::Dqlite(format!("copying `{table}`: {e}")))?;
    }
    for (kind, name, sql) in objects.iter().filter(|(k, _, _)| k != "table") {
        session
            .exec(sql, &[])
            .map_err(|e| TargetError::Dqlite(format!("creating {kind} `{name}`: {e}")))?;
    }
    Ok(())
}

fn copy_table(session: &mut Session, source: &rusqlite::Connection, table: &str) -> Result<(), String> {
    let mut stmt = source
        .prepare(&format!("SELECT * FROM {}", quote(table)))
        .map_err(|e| e.to_string())?;
    let columns: Vec<String> = stmt.column_names().map(quote).collect();
    let n = columns.len();
    // A tuple of parameters holds at most 255 values.
    let per_insert = (255 / n.max(1)).max(1);
    let head = format!("INSERT INTO {} ({}) VALUES ", quote(table), columns.join(", "));
    let one = format!("({})", vec!["?"; n].join(", "));
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut batch: Vec<Value> = Vec::with_capacity(per_insert * n);
    let flush = |session: &mut Session, batch: &mut Vec<Value>| -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = batch.len() / n;
        let sql = format!("{head}{}", vec![one.as_str(); count].join(", "));
        session.exec(&sql, batch).map_err(|e| e.to_string())?;
        batch.clear();
        Ok(())
    };
    session.exec("BEGIN", &[]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        for i in 0..n {
            batch.push(row.get::<_, Value>(i).map_err(|e| e.to_string())?);
        }
        if batch.len() >= per_insert * n {
            flush(session, &mut batch)?;
        }
    }
    flush(session, &mut batch)?;
    session.exec("COMMIT", &[]).map_err(|e| e.to_string())?;
    Ok(())
}

fn integer(rows: &[Vec<Value>]) -> Option<i64> {
    match rows.first().and_then(|r| r.first()) {
        Some(Value::Integer(i)) => Some(*i),
        Some(Value::Real(f)) => Some(*f as i64),
        _ => None,
    }
}

fn count(session: &mut Session, table: &str) -> Result<u64, DqError> {
    let rows = session.query(&format!("SELECT count(*) FROM {}", quote(table)))?;
    Ok(integer(&rows).unwrap_or(0) as u64)
}

/// Row counts against the acknowledged writes, SQLite's integrity_check on the leader, and
/// the data checks.
pub(crate) fn verify(session: &mut Session, ack: &Acknowledged<'_>) -> Result<Verification, DqError> {
    if std::env::var("LITEHAMMER_FAULT").as_deref() == Ok("lose-row")
        && let Some(t) = ack.tables.first()
    {
        let t = quote(t);
        session.exec(
            &format!("DELETE FROM {t} WHERE rowid = (SELECT max(rowid) FROM {t})"),
            &[],
        )?;
    }
    let integrity = session.query("PRAGMA integrity_check")?;
    let integrity = match integrity.first().and_then(|r| r.first()) {
        Some(Value::Text(t)) => t.clone(),
        other => format!("unexpected answer {other:?}"),
    };
    let checks: Vec<Result<Option<i64>, String>> = ack
        .checks
        .iter()
        .filter_map(|c| c.sql.as_ref())
        .map(|sql| {
            session
                .query(sql.get_ref())
                .map(|r| integer(&r))
                .map_err(|e| e.to_string())
        })
        .collect();
    let mut results = checks.into_iter();
    verify::verify_with(
        integrity,
        |t| count(session, t),
        |c| {
            c.sql.as_ref()?;
            Some(verify::check_result(c, results.next()?))
        },
        ack,
    )
}

impl DqRun {
    /// Ends the faults (once) and, if any was injected, brings every node back: the
    /// verification then asks a whole cluster whether the acknowledged writes survived (as
    /// Raft promises once a quorum is back), and the next run starts from a whole cluster.
    fn settle(&self) {
        let events = match self.faults.lock() {
            Ok(mut f) => f.finish(),
            Err(_) => return,
        };
        if events.is_some_and(|e| e.iter().any(|e| e.injected_at_s.is_some()))
            && let Err(e) = self.cluster.heal(START_TIMEOUT)
        {
            eprintln!("warning: the dqlite cluster did not recover after the faults: {e}");
        }
    }
}

impl RunDatabase for DqRun {
    fn describe(&self, report: &mut RunReport) {
        let mut shown = self.shown.clone();
        shown.node_pids = self.cluster.pids();
        report.dqlite = Some(shown);
    }

    fn load(&self, _s: &Scenario, source: &rusqlite::Connection, tables: &[String]) -> Result<Vec<u64>, TargetError> {
        let mut session = self.db.session().map_err(err)?;
        load(&mut session, source)?;
        tables.iter().map(|t| count(&mut session, t).map_err(err)).collect()
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::Dqlite(self.db.clone())
    }

    fn record(&self, report: &mut RunReport, read_back: Option<ReadBack>) {
        if let Some(d) = report.dqlite.as_mut() {
            d.settings = read_back;
        }
    }

    fn verify(&self, ack: &Acknowledged<'_>) -> Result<Verification, TargetError> {
        self.settle();
        let mut session = self.db.session().map_err(err)?;
        verify(&mut session, ack).map_err(err)
    }

    /// dqlite has no request that deletes a database: its tables, indexes, views and
    /// triggers are dropped (on a throwaway cluster its directory goes too).
    fn cleanup(&self, keep: bool) {
        if keep {
            return;
        }
        let dropped = self.db.session().and_then(|mut s| {
            // Children before their parents (dqlite enforces foreign keys).
            let objects = s.query(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND type IN ('table', 'view') ORDER BY rowid DESC",
            )?;
            for o in objects {
                if let [Value::Text(kind), Value::Text(name)] = o.as_slice() {
                    s.exec(&format!("DROP {} IF EXISTS {}", kind.to_uppercase(), quote(name)), &[])?;
                }
            }
            Ok(())
        });
        if let Err(e) = dropped {
            eprintln!("warning: cannot empty dqlite database {}: {e}", self.db.name);
        }
    }

    fn during(&self, clock: Arc<crate::metrics::timeline::RunClock>) {
        if let Ok(mut f) = self.faults.lock() {
            f.start(self.cluster.clone(), clock);
        }
    }

    fn after(&self, report: &mut RunReport) {
        self.settle();
        let events = match self.faults.lock() {
            Ok(mut f) => f.take(),
            Err(_) => return,
        };
        super::fault::report(report, events);
        if let Some(d) = report.dqlite.as_mut() {
            d.node_pids = self.cluster.pids();
        }
    }
}
