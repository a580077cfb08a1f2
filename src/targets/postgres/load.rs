//! A run's PostgreSQL database: the set-up SQL translated (or `[setup] postgres`), then the
//! rows of the SQLite database the set-up and populate made, copied in with COPY, so both
//! targets start from the same data; afterwards the row counts and the data checks.

use super::conn::{PgDatabase, db_message};
use super::translate;
use crate::config::{Check, Scenario};
use crate::report::model::Verification;
use crate::targets::verify::{self, Acknowledged};
use postgres::{Client, NoTls};
use rusqlite::types::ValueRef;
use std::io::Write;

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates the schema on `db` and copies every table's rows from `sqlite`.
pub(crate) fn load(db: &PgDatabase, s: &Scenario, sqlite: &rusqlite::Connection) -> Result<(), String> {
    let mut client = db.config.connect(NoTls).map_err(|e| db_message(&e))?;
    let schema = match (&s.setup.postgres, &s.setup.sql) {
        (Some(pg), _) => pg.get_ref().clone(),
        (None, Some(sql)) => translate::for_postgres(sql.get_ref(), None).map_err(|e| format!("[setup] sql: {e}"))?,
        (None, None) => String::new(),
    };
    client
        .batch_execute(&schema)
        .map_err(|e| format!("[setup] sql on PostgreSQL: {}", db_message(&e)))?;
    let tables: Vec<String> = {
        let mut stmt = sqlite
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
            .map_err(|e| e.to_string())?;
        stmt.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
            .map_err(|e| e.to_string())?
    };
    if tables.is_empty() {
        return Ok(());
    }
    // The set-up's own inserts ran on both; the copy brings SQLite's rows, so start empty.
    let all: Vec<String> = tables.iter().map(|t| quote(t)).collect();
    client
        .batch_execute(&format!("TRUNCATE {} RESTART IDENTITY CASCADE", all.join(", ")))
        .map_err(|e| format!("preparing the copy: {}", db_message(&e)))?;
    for table in &tables {
        copy_table(&mut client, sqlite, table).map_err(|e| format!("copying `{table}` to PostgreSQL: {e}"))?;
    }
    reset_identities(&mut client).map_err(|e| format!("after the copy: {}", db_message(&e)))?;
    client.batch_execute("ANALYZE").map_err(|e| db_message(&e))?;
    Ok(())
}

fn copy_table(client: &mut Client, sqlite: &rusqlite::Connection, table: &str) -> Result<(), String> {
    let mut stmt = sqlite
        .prepare(&format!("SELECT * FROM {}", quote(table)))
        .map_err(|e| e.to_string())?;
    let columns: Vec<String> = stmt.column_names().map(quote).collect();
    let n = columns.len();
    let sql = format!("COPY {} ({}) FROM STDIN", quote(table), columns.join(", "));
    let mut writer = client.copy_in(&sql).map_err(|e| db_message(&e))?;
    let mut rows = stmt.query([]).map_err(|e| e.to_string())?;
    let mut line = String::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        line.clear();
        for i in 0..n {
            if i > 0 {
                line.push('\t');
            }
            copy_value(&mut line, row.get_ref(i).map_err(|e| e.to_string())?);
        }
        line.push('\n');
        writer.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    }
    writer.finish().map_err(|e| db_message(&e))?;
    Ok(())
}

/// One value in COPY's text format.
fn copy_value(out: &mut String, v: ValueRef<'_>) {
    use std::fmt::Write as _;
    match v {
        ValueRef::Null => out.push_str("\\N"),
        ValueRef::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::Real(f) => {
            let _ = write!(out, "{f}");
        }
        ValueRef::Text(t) => {
            for c in String::from_utf8_lossy(t).chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
        ValueRef::Blob(b) => {
            out.push_str("\\\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
    }
}

/// Identity columns continue after the copied ids, as SQLite's rowids would.
fn reset_identities(client: &mut Client) -> Result<(), postgres::Error> {
    let rows = client.query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND is_identity = 'YES'",
        &[],
    )?;
    for row in rows {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let sql = format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), max({c})) FROM {t} HAVING max({c}) IS NOT NULL",
            c = quote(&column),
            t = quote(&table)
        );
        client.query(&sql, &[&quote(&table), &column])?;
    }
    Ok(())
}

/// Rows of each tracked table.
pub(crate) fn count_rows(client: &mut Client, tables: &[String]) -> Result<Vec<u64>, String> {
    tables
        .iter()
        .map(|t| count(client, t).map_err(|e| db_message(&e)))
        .collect()
}

fn count(client: &mut Client, table: &str) -> Result<u64, postgres::Error> {
    let row = client.query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])?;
    Ok(row.get::<_, i64>(0) as u64)
}

/// A `[[check]]` query for PostgreSQL (its override, or the translation), cast to bigint
/// (PostgreSQL's sum() is numeric).
pub(crate) fn check_sql(check: &Check) -> Option<Result<String, String>> {
    let sql = check.sql.as_ref()?;
    Some(
        translate::for_postgres(sql.get_ref(), check.postgres.as_ref().map(|p| p.get_ref().as_str()))
            .map(|q| format!("SELECT (q.v)::bigint FROM ({}) AS q(v)", q.trim().trim_end_matches(';'))),
    )
}

/// Row counts against the acknowledged writes, and the data checks, on PostgreSQL.
pub(crate) fn verify(db: &PgDatabase, ack: &Acknowledged<'_>) -> Result<Verification, String> {
    let mut client = db.config.connect(NoTls).map_err(|e| db_message(&e))?;
    inject_fault(&mut client, ack.tables);
    let checks: Vec<(String, Result<Option<i64>, String>)> = ack
        .checks
        .iter()
        .filter_map(|c| {
            let sql = check_sql(c)?;
            let value = sql.and_then(|q| {
                client
                    .query_one(&q, &[])
                    .map(|r| r.get::<_, Option<i64>>(0))
                    .map_err(|e| db_message(&e))
            });
            Some((c.name.get_ref().clone(), value))
        })
        .collect();
    let mut results = checks.into_iter();
    verify::verify_with(
        verify::NO_INTEGRITY_CHECK.to_string(),
        |t| count(&mut client, t).map_err(|e| db_message(&e)),
        |c| {
            c.sql.as_ref()?;
            let (_, value) = results.next()?;
            Some(verify::check_result(c, value))
        },
        ack,
    )
}

/// `LITEHAMMER_FAULT=lose-row` (tests): deletes one row of the first tracked table behind
/// the workers' backs, so the verification must report it lost.
fn inject_fault(client: &mut Client, tables: &[String]) {
    if std::env::var("LITEHAMMER_FAULT").as_deref() == Ok("lose-row")
        && let Some(table) = tables.first()
    {
        let t = quote(table);
        let _ = client.batch_execute(&format!("DELETE FROM {t} WHERE ctid = (SELECT max(ctid) FROM {t})"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_what_copy_needs() {
        let mut s = String::new();
        copy_value(&mut s, ValueRef::Text(b"a\tb\\c\nd"));
        assert_eq!(s, "a\\tb\\\\c\\nd");
        s.clear();
        copy_value(&mut s, ValueRef::Blob(&[0, 255]));
        assert_eq!(s, "\\\\x00ff");
        s.clear();
        copy_value(&mut s, ValueRef::Null);
        assert_eq!(s, "\\N");
    }
}
