//! The PostgreSQL backend: one database per run on the run's server, loaded from the run's
//! SQLite file, verified and dropped.

use super::conn::{PgDatabase, db_message};
use super::load;
use super::server::PgServer;
use crate::config::Scenario;
use crate::config::matrix::Cell;
use crate::config::postgres::{TargetKind, Transport};
use crate::config::sqlite::ReadBack;
use crate::error::InputError;
use crate::report::model::{PostgresRun, RunReport, Verification};
use crate::targets::verify::Acknowledged;
use crate::targets::{Backend, RunDatabase, TargetError, TargetSpec};
use std::path::Path;
use std::sync::Arc;

pub(crate) const PROFILE: crate::targets::Profile = crate::targets::Profile {
    name: "PostgreSQL",
    file: false,
    dialect: Some(crate::targets::Dialect {
        translate: super::translate::for_postgres,
        begin: "BEGIN",
    }),
};

/// The run's server, shared by its runs.
pub(crate) struct PgBackend(pub Arc<PgServer>);

impl PgBackend {
    /// The server the plan's `target = "postgres"` cells use: the `--target postgres=URL`
    /// one, or a throwaway one (with TCP when a cell asks for it). `None` when no cell runs
    /// on PostgreSQL.
    pub(crate) fn start(cells: &[Cell], url: Option<&str>) -> Result<Option<Self>, InputError> {
        let cells: Vec<_> = cells
            .iter()
            .filter(|c| c.scenario.target == TargetKind::Postgres)
            .collect();
        if cells.is_empty() {
            if url.is_some() {
                return Err(InputError::new(
                    "--target",
                    "a URL is given, but no run has target = postgres",
                ));
            }
            return Ok(None);
        }
        let tcp = cells.iter().any(|c| c.scenario.postgres.transport == Transport::Tcp);
        let server = match url {
            Some(url) => PgServer::connect_url(url),
            None => PgServer::throwaway(tcp),
        }
        .map_err(|e| InputError::new("--target", e.to_string()))?;
        eprintln!("PostgreSQL: {}", server.shown);
        Ok(Some(PgBackend(Arc::new(server))))
    }
}

impl Backend for PgBackend {
    fn create(&self, db_path: &Path, s: &Scenario) -> Result<Box<dyn RunDatabase>, TargetError> {
        if !s.backup.is_none() {
            return Err(TargetError::Postgres(
                "backups (`[backup]`) are SQLite's; use target = \"sqlite\"".into(),
            ));
        }
        let db = self
            .0
            .create_database(&stem_of(db_path), &s.postgres)
            .map_err(TargetError::Postgres)?;
        let settings = &s.postgres;
        let server = &self.0;
        let shown = PostgresRun {
            server_version: server.version.clone(),
            server: server.shown.clone(),
            database: db.config.get_dbname().unwrap_or_default().to_string(),
            synchronous_commit: show_setting(&settings.synchronous_commit),
            isolation: show_setting(&settings.isolation),
            transport: if server.is_throwaway() {
                show_setting(&settings.transport)
            } else {
                "url".into()
            },
        };
        Ok(Box::new(PgRun {
            server: self.0.clone(),
            db,
            shown,
        }))
    }
}

/// A database name made of the run's file name (`litehammer_PID_INDEX_...`).
fn stem_of(db_path: &Path) -> String {
    db_path
        .file_stem()
        .map(|f| f.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect()
}

/// A setting as its TOML value reads (`off`, `serializable`).
fn show_setting<T: serde::Serialize>(v: &T) -> String {
    match toml::Value::try_from(v) {
        Ok(toml::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// One run's database on the server.
struct PgRun {
    server: Arc<PgServer>,
    db: PgDatabase,
    shown: PostgresRun,
}

impl RunDatabase for PgRun {
    fn describe(&self, report: &mut RunReport) {
        report.postgres = Some(self.shown.clone());
    }

    fn load(&self, s: &Scenario, source: &rusqlite::Connection, tables: &[String]) -> Result<Vec<u64>, TargetError> {
        load::load(&self.db, s, source).map_err(TargetError::Postgres)?;
        let mut client = self
            .db
            .config
            .connect(postgres::NoTls)
            .map_err(|e| TargetError::Postgres(db_message(&e)))?;
        load::count_rows(&mut client, tables).map_err(TargetError::Postgres)
    }

    fn spec(&self) -> TargetSpec {
        TargetSpec::Postgres(Box::new(self.db.clone()))
    }

    /// SQLite's settings do not apply; the server's are in `describe`'s record.
    fn record(&self, _report: &mut RunReport, _read_back: Option<ReadBack>) {}

    fn verify(&self, ack: &Acknowledged<'_>) -> Result<Verification, TargetError> {
        load::verify(&self.db, ack).map_err(TargetError::Postgres)
    }

    fn cleanup(&self, keep: bool) {
        if keep {
            return;
        }
        if let Err(e) = self.server.drop_database(&self.shown.database) {
            eprintln!("warning: cannot drop PostgreSQL database {}: {e}", self.shown.database);
        }
    }
}
