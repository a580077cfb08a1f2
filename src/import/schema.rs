//! The schema and row counts of the app's database, read from a copy (the original is never
//! opened for writing).

use rusqlite::{Connection, OpenFlags};
use std::path::Path;

#[derive(Debug, Default)]
pub(crate) struct DbInfo {
    /// CREATE statements in creation order (tables, indexes, views, triggers).
    pub schema: Vec<String>,
    pub tables: Vec<TableInfo>,
    /// The file's header says WAL (file format version 2).
    pub wal: bool,
}

#[derive(Debug)]
pub(crate) struct TableInfo {
    pub name: String,
    pub rows: u64,
    /// Columns to populate and a generator fitted to each one's data.
    pub columns: Vec<(String, String)>,
}

/// Copies `path` (and its `-wal`) into a temporary directory and reads the copy read-only.
pub(crate) fn read_db(path: &Path) -> Result<DbInfo, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let copy = dir.path().join("copy.db");
    std::fs::copy(path, &copy).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    if Path::new(&wal).is_file() {
        std::fs::copy(&wal, dir.path().join("copy.db-wal")).map_err(|e| format!("cannot read the -wal file: {e}"))?;
    }
    let header = std::fs::read(&copy).map_err(|e| e.to_string())?;
    if !header.starts_with(b"SQLite format 3\0") {
        return Err(format!("{} is not a SQLite database", path.display()));
    }
    let mut info = DbInfo {
        wal: header.get(18) == Some(&2),
        ..DbInfo::default()
    };
    // The copy's directory is ours, so a WAL copy can get its -shm.
    let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|e| e.to_string())?;
    let err = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let mut stmt = conn
        .prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )
        .map_err(err)?;
    let rows: Vec<(String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for (ty, name, sql) in rows {
        let virtual_table = sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL");
        info.schema.push(sql);
        if ty == "table" && !virtual_table {
            info.tables.push(table_info(&conn, &name).map_err(err)?);
        }
    }
    Ok(info)
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn table_info(conn: &Connection, table: &str) -> rusqlite::Result<TableInfo> {
    let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| r.get(0))?;
    let mut cols: Vec<(String, String, i64)> = Vec::new();
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let info = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(5)?))
    })?;
    for c in info {
        cols.push(c?);
    }
    let pk_count = cols.iter().filter(|c| c.2 > 0).count();
    let mut columns = Vec::new();
    for (name, ty, pk) in &cols {
        if pk_count == 1 && *pk == 1 && ty.eq_ignore_ascii_case("integer") {
            continue; // the rowid: SQLite numbers it
        }
        if let Some(g) = fit_column(conn, table, name, rows)? {
            columns.push((name.clone(), g));
        }
    }
    Ok(TableInfo {
        name: table.to_string(),
        rows: rows.max(0) as u64,
        columns,
    })
}

/// A generator for one column, from the type most of its values have; None for NULL-only.
fn fit_column(conn: &Connection, table: &str, col: &str, rows: i64) -> rusqlite::Result<Option<String>> {
    let c = quote(col);
    let sql = format!(
        "SELECT typeof({c}), min({c}), max({c}), min(length({c})), max(length({c})), count(DISTINCT {c}) \
         FROM {} GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        quote(table)
    );
    let got = conn.query_row(&sql, [], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, rusqlite::types::Value>(1)?,
            r.get::<_, rusqlite::types::Value>(2)?,
            r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            r.get::<_, Option<i64>>(4)?.unwrap_or(0),
            r.get::<_, i64>(5)?,
        ))
    });
    let (ty, min, max, lmin, lmax, distinct) = match got {
        Ok(v) => v,
        Err(rusqlite::Error::QueryReturnedNoRows) => return Ok(Some("text(8, 16)".into())),
        Err(e) => return Err(e),
    };
    use rusqlite::types::Value as V;
    let unique = distinct == rows && rows > 1;
    Ok(match (ty.as_str(), min, max) {
        ("integer", V::Integer(lo), V::Integer(hi)) if unique => Some(format!("seq({lo})")).filter(|_| hi >= lo),
        ("integer", V::Integer(lo), V::Integer(hi)) => Some(format!("uniform({lo}, {hi})")),
        ("real", V::Real(lo), V::Real(hi)) => Some(format!("uniform({}, {})", lo.floor() as i64, hi.ceil() as i64)),
        ("text", ..) if unique => Some("seq()".into()),
        ("text", ..) => Some(format!("text({lmin}, {lmax})")),
        ("blob", ..) => Some(format!("blob({lmin}, {lmax})")),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_schema_rows_and_fits_columns_without_touching_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=wal; CREATE TABLE post(id INTEGER PRIMARY KEY, title TEXT, views INTEGER, n TEXT);
             CREATE INDEX pv ON post(views);
             WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 30)
             INSERT INTO post(title, views, n) SELECT 'abc' || v, v % 7, NULL FROM s;",
        )
        .unwrap();
        drop(c);
        let before = std::fs::read(&path).unwrap();
        let info = read_db(&path).unwrap();
        assert!(info.wal);
        assert_eq!(info.schema.len(), 2);
        assert_eq!(info.tables[0].rows, 30);
        assert_eq!(
            info.tables[0].columns,
            vec![
                ("title".to_string(), "seq()".to_string()),
                ("views".to_string(), "uniform(0, 6)".to_string())
            ]
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
