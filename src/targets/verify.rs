//! After a run: SQLite's integrity_check, and row counts against acknowledged writes.

use crate::config::Check;
use crate::report::model::{CheckKind, ScenarioCheck, TableCheck, Verification};
use rusqlite::Connection;

/// Counts rows of each table, before the workers start.
pub(crate) fn count_rows(conn: &Connection, tables: &[String]) -> rusqlite::Result<Vec<u64>> {
    tables.iter().map(|t| count(conn, t)).collect()
}

fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
    conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
}

/// What a target without an integrity check of its own (PostgreSQL) reports in its place.
pub(crate) const NO_INTEGRITY_CHECK: &str = "not applicable (PostgreSQL)";

pub(crate) struct Acknowledged<'a> {
    pub tables: &'a [String],
    pub rows_before: &'a [u64],
    pub inserts: &'a [u64],
    pub deletes: &'a [u64],
    pub untracked: &'a [String],
    pub checks: &'a [Check],
}

pub(crate) fn verify(conn: &Connection, ack: &Acknowledged<'_>) -> rusqlite::Result<Verification> {
    let integrity = integrity_check(conn, 20)?;
    verify_with(
        integrity,
        |t| count(conn, t),
        |c| c.sql.as_ref().map(|sql| run_sql_check(conn, c, sql.get_ref())),
        ack,
    )
}

/// Row counts against acknowledged writes and the scenario's data checks, on any target:
/// `count` counts a table's rows, `check` runs a `[[check]]` (`None`: not a data check);
/// `integrity` is the target's own consistency check, `ok` when it passed.
pub(crate) fn verify_with<E>(
    integrity: String,
    mut count: impl FnMut(&str) -> Result<u64, E>,
    check: impl FnMut(&Check) -> Option<ScenarioCheck>,
    ack: &Acknowledged<'_>,
) -> Result<Verification, E> {
    let mut tables = Vec::new();
    for (i, table) in ack.tables.iter().enumerate() {
        let expected = (ack.rows_before[i] + ack.inserts[i]).saturating_sub(ack.deletes[i]);
        let found = count(table)?;
        tables.push(TableCheck {
            table: table.clone(),
            rows_before: ack.rows_before[i],
            inserts_acknowledged: ack.inserts[i],
            deletes_acknowledged: ack.deletes[i],
            rows_expected: expected,
            rows_found: found,
            lost: expected.saturating_sub(found),
            unexpected: found.saturating_sub(expected),
        });
    }
    let lost: u64 = tables.iter().map(|t| t.lost).sum();
    let unexpected: u64 = tables.iter().map(|t| t.unexpected).sum();
    let scenario_checks: Vec<ScenarioCheck> = ack.checks.iter().filter_map(check).collect();
    Ok(Verification {
        ok: (integrity == "ok" || integrity == NO_INTEGRITY_CHECK)
            && lost == 0
            && unexpected == 0
            && scenario_checks.iter().all(|c| c.ok),
        scenario_checks,
        integrity_check: integrity,
        writes_acknowledged: tables
            .iter()
            .map(|t| t.inserts_acknowledged + t.deletes_acknowledged)
            .sum(),
        rows_found: tables.iter().map(|t| t.rows_found).sum(),
        lost,
        tables,
        untracked_tables: ack.untracked.to_vec(),
    })
}

/// A `[[check]]`'s result from the integer its query returned.
pub(crate) fn check_result(check: &Check, value: Result<Option<i64>, String>) -> ScenarioCheck {
    let expect = check.expect;
    let (ok, detail) = match value {
        Ok(Some(v)) => (v == expect, format!("{v} (expected {expect})")),
        Ok(None) => (false, format!("NULL (expected {expect})")),
        Err(e) => (false, format!("query failed: {e}")),
    };
    ScenarioCheck {
        name: check.name.get_ref().clone(),
        ok,
        detail,
        kind: CheckKind::Sql,
    }
}

/// Runs one `[[check]]` query: it must return one integer equal to `expect`.
fn run_sql_check(conn: &Connection, check: &Check, sql: &str) -> ScenarioCheck {
    let value = conn
        .query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .map_err(|e| e.to_string());
    check_result(check, value)
}

/// `ok`, or the first `limit` problems `PRAGMA integrity_check` reports, joined by `; `.
pub(crate) fn integrity_check(conn: &Connection, limit: u32) -> rusqlite::Result<String> {
    let mut stmt = conn.prepare(&format!("PRAGMA integrity_check({limit})"))?;
    let lines: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    Ok(lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_rows_are_lost_and_extra_rows_unexpected() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        let tables = vec!["t".to_string()];
        let check = |inserts: u64| {
            verify(
                &conn,
                &Acknowledged {
                    tables: &tables,
                    rows_before: &[0],
                    inserts: &[inserts],
                    deletes: &[0],
                    untracked: &[],
                    checks: &[],
                },
            )
            .unwrap()
        };
        let exact = check(3);
        assert!(exact.ok);
        let lost = check(5);
        assert!(!lost.ok);
        assert_eq!(lost.lost, 2);
        let extra = check(1);
        assert!(!extra.ok);
        assert_eq!(extra.tables[0].unexpected, 2);
    }
}
