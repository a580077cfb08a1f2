//! SQLite's verification after a run: integrity_check, row counts against acknowledged
//! writes, and the data checks.

use crate::config::Check;
use crate::report::model::{ScenarioCheck, Verification};
use crate::targets::verify::{Acknowledged, check_result, verify_with};
use rusqlite::Connection;

/// Counts rows of each table, before the workers start.
pub(crate) fn count_rows(conn: &Connection, tables: &[String]) -> rusqlite::Result<Vec<u64>> {
    tables.iter().map(|t| count(conn, t)).collect()
}

fn count(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
    conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).map(|n| n as u64)
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
