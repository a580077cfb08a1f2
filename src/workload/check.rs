//! Preparing a plan against SQLite before anything runs: each matrix cell's database is
//! created (without populate rows) in a scratch directory, settings must read back as
//! asked, the set-up SQL must run, and every op and script step must prepare.

use super::{OpError, Workload};
use crate::config::Source;
use crate::config::matrix::Cell;
use crate::config::validate::Plan;
use crate::error::InputError;
use crate::targets::sqlite::setup::{self, SetupError};
use std::path::Path;

/// Creates each cell's database (without populate rows) in a scratch directory: settings
/// must read back as asked, the set-up SQL must run, every op must prepare. With
/// `from_db` (`run --from-db`), every cell is checked on one scratch copy of that database
/// instead, as its runs will start from a copy of it.
pub(crate) fn against_sqlite(Plan { source, cells, .. }: &Plan, from_db: Option<&Path>) -> Result<(), InputError> {
    let scratch = tempfile::tempdir().map_err(|e| source.error(format!("cannot create a scratch directory: {e}")))?;
    crate::interrupt::remove_on_abort(scratch.path());
    let copy = scratch.path().join("from-db.db");
    if let Some(from) = from_db {
        setup::scratch_copy(from, &copy).map_err(|e| InputError::new("--from-db", e.to_string()))?;
    }
    for (i, cell) in cells.iter().enumerate() {
        let s = &cell.scenario;
        let path = match from_db {
            Some(_) => copy.clone(),
            None => {
                let mut setup = s.setup.clone();
                setup.populate.iter_mut().for_each(|p| p.rows = 0);
                let path = scratch.path().join(format!("check-{i}.db"));
                let conn = setup::create_database(&path, &s.sqlite, &setup, s.seed)
                    .map_err(|e| setup_error(source, cell, e))?;
                for p in &s.setup.populate {
                    setup::populate_sql(&conn, p).map_err(|e| source.error_at(p.table.span(), e.to_string()))?;
                }
                path
            }
        };
        // Workers have connections of their own: what the set-up made on its connection
        // only (TEMP tables and views, attached databases) is not there for them.
        let mut conn = setup::open_existing(&path, &s.sqlite).map_err(|e| setup_error(source, cell, e))?;
        Workload::compile(s, &mut conn).map_err(|e| compile_error(source, cell, e))?;
        let profile = crate::targets::profile(s.target);
        if !profile.file && !s.backup.is_none() {
            return Err(source
                .error(format!(
                    "[backup]{}: backups are SQLite's; a {} run has none",
                    in_run(cell),
                    profile.name
                ))
                .with_key("backup"));
        }
        if let Some(dialect) = profile.dialect {
            translations(source, cell, dialect)?;
        }
        for check in &s.check {
            if let Some(sql) = &check.sql {
                prepare_check(&conn, sql.get_ref()).map_err(|message| {
                    source
                        .error_at(sql.span(), format!("check `{}`: {message}", check.name.get_ref()))
                        .with_key("check.sql")
                })?;
            }
        }
    }
    Ok(())
}

/// ` (run `ID`)` in a matrix, for messages.
fn in_run(cell: &Cell) -> String {
    if cell.assignments.is_empty() {
        String::new()
    } else {
        format!(" (run `{}`)", cell.id)
    }
}

/// A target whose SQL is not SQLite's: the set-up SQL and the data checks must translate
/// (the ops and scripts are translated by `Workload::compile`); the error names the
/// statement. Backups work on a database file of litehammer's own.
fn translations(source: &Source, cell: &Cell, dialect: crate::targets::Dialect) -> Result<(), InputError> {
    let s = &cell.scenario;
    let in_run = in_run(cell);
    match (&s.setup.postgres, &s.setup.sql) {
        (None, Some(sql)) => {
            (dialect.translate)(sql.get_ref(), None).map_err(|e| {
                source
                    .error_at(sql.span(), format!("[setup] sql{in_run}: {e}"))
                    .with_key("setup.sql")
            })?;
        }
        // The set-up's own PostgreSQL text keeps to the target's policies too.
        (Some(pg), _) => {
            (dialect.translate)("", Some(pg.get_ref())).map_err(|e| {
                source
                    .error_at(pg.span(), format!("[setup] postgres{in_run}: {e}"))
                    .with_key("setup.postgres")
            })?;
        }
        (None, None) => {}
    }
    for check in &s.check {
        if let Some(sql) = &check.sql {
            (dialect.translate)(sql.get_ref(), check.postgres.as_ref().map(|p| p.get_ref().as_str())).map_err(|e| {
                source
                    .error_at(sql.span(), format!("check `{}`{in_run}: {e}", check.name.get_ref()))
                    .with_key("check.sql")
            })?;
        }
    }
    Ok(())
}

/// A data check runs after each run on the run's database: it must prepare, only read,
/// and return one column.
fn prepare_check(conn: &rusqlite::Connection, sql: &str) -> Result<(), String> {
    let stmt = conn
        .prepare(sql)
        .map_err(|e| crate::targets::sqlite::guard::explain(e.to_string()))?;
    if !stmt.readonly() {
        return Err("a check must only read the database (a SELECT)".into());
    }
    if stmt.column_count() != 1 {
        return Err(format!(
            "a check returns one column (an integer compared with `expect`), this one returns {}",
            stmt.column_count()
        ));
    }
    Ok(())
}

fn setup_error(source: &Source, cell: &Cell, e: SetupError) -> InputError {
    let s = &cell.scenario;
    match (&e, &s.setup.sql) {
        (SetupError::Sql(_), Some(sql)) => source.error_at(sql.span(), e.to_string()).with_key("setup.sql"),
        (SetupError::Setting(_), _) if cell.assignments.is_empty() => source.error(e.to_string()).with_key("sqlite"),
        (SetupError::Setting(_), _) => source.error(format!("in run `{}`: {e}", cell.id)).with_key("sqlite"),
        _ => source.error(e.to_string()),
    }
}

/// Names the op or script (and step) that did not compile, at its SQL in the file.
fn compile_error(source: &Source, cell: &Cell, e: OpError) -> InputError {
    let group = &cell.scenario.group[e.group];
    let gname = group.name.get_ref();
    let requests = group.scripts();
    let Some(request) = requests.get(e.op) else {
        return source
            .error(format!("group `{gname}`: {}", e.message))
            .with_key(format!("group.{gname}"));
    };
    let name = request.name.get_ref();
    let in_run = if cell.assignments.is_empty() {
        String::new()
    } else {
        format!(" (run `{}`)", cell.id)
    };
    let (what, key) = if e.op < group.op.len() {
        (format!("op `{name}`"), format!("group.{gname}.op.{name}.sql"))
    } else {
        (
            format!("script `{name}` step {}", e.step),
            format!("group.{gname}.script.{name}.steps[{}]", e.step),
        )
    };
    let message = format!("{what} in group `{gname}`{in_run}: {}", e.message);
    match request.steps.get(e.step) {
        Some(step) => source.error_at(step.sql.span(), message),
        None => source.error_at(request.name.span(), message),
    }
    .with_key(key)
}
