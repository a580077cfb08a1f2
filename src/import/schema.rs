//! The schema and row counts of the app's database, read from a copy (the original is never
//! opened for writing).

use super::sql;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

#[derive(Debug, Default)]
pub(crate) struct DbInfo {
    /// CREATE statements in creation order (tables, virtual tables, indexes, views, triggers),
    /// without the shadow tables a virtual table creates itself.
    pub schema: Vec<String>,
    pub tables: Vec<TableInfo>,
    /// The file's header says WAL (file format version 2).
    pub wal: bool,
    /// Virtual tables (lower case): SQLite's statements on their shadow tables are not the app's.
    pub virtual_tables: Vec<String>,
    /// `[setup] sql` that fills a table whose unique keys `populate` cannot respect (composite
    /// keys): runs after the schema.
    pub fills: Vec<String>,
    /// Where the data cannot be made faithfully (said in the scenario and the output).
    pub notes: Vec<String>,
    /// The file read (not the copy).
    pub source: std::path::PathBuf,
}

#[derive(Debug)]
pub(crate) struct TableInfo {
    pub name: String,
    pub rows: u64,
    /// Columns to populate and a generator fitted to each one's data.
    pub columns: Vec<(String, String)>,
    /// Filled by a statement in `DbInfo::fills` instead of a populate line.
    pub filled: bool,
    /// Where each column's values and sizes came from (comments above its populate line).
    pub comments: Vec<String>,
}

/// Copies the database at `path` and its `-wal` and `-journal` (where they exist) into a new
/// temporary directory, as `copy.db`: opened there, SQLite recovers the copy as it would the
/// file, and the user's files are only read. The directory lives as long as the handle.
pub(crate) fn copy_db(path: &Path) -> Result<(tempfile::TempDir, std::path::PathBuf), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let copy = dir.path().join("copy.db");
    std::fs::copy(path, &copy).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for suffix in ["-wal", "-journal"] {
        let mut side = path.as_os_str().to_os_string();
        side.push(suffix);
        if std::fs::metadata(&side).is_ok_and(|m| m.is_file()) {
            std::fs::copy(&side, dir.path().join(format!("copy.db{suffix}")))
                .map_err(|e| format!("cannot read the {suffix} file: {e}"))?;
        }
    }
    Ok((dir, copy))
}

/// Copies `path` (and its `-wal` or `-journal`) into a temporary directory and reads the
/// copy: SQLite recovers the copy as it would the file (a hot journal rolled back, a WAL
/// read), so what is read is the committed state, and the user's files are only read.
pub(crate) fn read_db(path: &Path) -> Result<DbInfo, String> {
    // Checked without opening: a FIFO would block the copy.
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(format!("{} is not a regular file", path.display())),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let (_dir, copy) = copy_db(path)?;
    let header = std::fs::read(&copy).map_err(|e| e.to_string())?;
    if !header.starts_with(b"SQLite format 3\0") {
        return Err(format!("{} is not a SQLite database", path.display()));
    }
    let mut info = DbInfo {
        wal: header.get(18) == Some(&2),
        source: path.to_path_buf(),
        ..DbInfo::default()
    };
    // The copy is ours: opened read-write, SQLite can roll back a hot journal and give a WAL
    // copy its -shm, exactly as the app's next connection would on the original.
    let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|e| e.to_string())?;
    let err = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let kinds = table_kinds(&conn).map_err(err)?;
    let mut stmt = conn
        .prepare(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )
        .map_err(err)?;
    let rows: Vec<(String, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(err)?
        .collect::<Result<_, _>>()
        .map_err(err)?;
    for (_, _, _, sql) in &rows {
        if let Some(v) = sql::virtual_table_name(sql) {
            info.virtual_tables.push(v.to_ascii_lowercase());
        }
    }
    let kind_of = |name: &str| {
        kinds
            .iter()
            .find(|k| k.0.eq_ignore_ascii_case(name))
            .map(|k| (k.1.as_str(), k.2))
    };
    let shadow =
        |name: &str| kind_of(name).is_some_and(|k| k.0 == "shadow") || sql::is_shadow_of(name, &info.virtual_tables);
    let mut virtual_rows = Vec::new();
    for (ty, name, tbl, sql) in rows {
        // A virtual table creates its shadow tables (and their indexes) itself.
        if shadow(&name) || shadow(&tbl) {
            continue;
        }
        let virtual_table = sql::virtual_table_name(&sql).is_some();
        info.schema.push(sql);
        if virtual_table {
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {}", quote(&name)), [], |r| r.get(0))
                .unwrap_or(0);
            if n > 0 {
                virtual_rows.push(format!("{name} ({n} rows)"));
            }
        } else if ty == "table" {
            let without_rowid = kind_of(&name).is_some_and(|k| k.1);
            let (t, fill, mut notes) = table_info(&conn, &name, without_rowid).map_err(err)?;
            info.fills.extend(fill);
            info.notes.append(&mut notes);
            info.tables.push(t);
        }
    }
    if !virtual_rows.is_empty() {
        info.notes.push(format!(
            "virtual tables are created empty, not populated: {} (their content comes from the app's own \
             writes or triggers; for the real index, run with --from-db COPY)",
            virtual_rows.join(", ")
        ));
    }
    if !info.fills.is_empty() {
        // The fills run before populate fills the tables they refer to (set-up only: every
        // worker connection sets foreign_keys itself).
        info.fills.insert(0, "PRAGMA foreign_keys = OFF".into());
    }
    Ok(info)
}

/// `PRAGMA table_list`: each table's type as SQLite sees it (`table`, `view`, `virtual`,
/// `shadow`) and whether it is WITHOUT ROWID.
fn table_kinds(conn: &Connection) -> rusqlite::Result<Vec<(String, String, bool)>> {
    let mut stmt = conn.prepare("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main'")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))?;
    rows.collect()
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// What the data of one column looks like.
#[derive(Debug, Clone)]
struct Fit {
    generator: String,
    shape: Shape,
    /// Every row holds a different value.
    unique: bool,
    distinct: i64,
    /// Where the generator's values or sizes came from, for a comment.
    about: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Int(i64, i64),
    Real(f64, f64),
    Text(i64, i64),
    Blob(i64, i64),
    /// JSON kept valid by a CHECK: this empty value.
    Json(&'static str),
}

impl Fit {
    /// An SQL expression drawing a value like this column's for row `i` (0-based).
    fn sql(&self) -> String {
        let pick = |lo: i64, hi: i64| {
            if hi > lo {
                format!("{lo} + abs(random()) % {}", hi - lo + 1)
            } else {
                lo.to_string()
            }
        };
        match self.shape {
            Shape::Int(lo, _) if self.unique => format!("{lo} + i"),
            Shape::Int(lo, hi) => pick(lo, hi),
            Shape::Real(lo, hi) => format!("{lo} + (abs(random()) % 1000000) / 1000000.0 * {}", hi - lo),
            Shape::Text(..) if self.unique => "'k' || i".into(),
            Shape::Text(lo, hi) => format!("substr(hex(randomblob({})), 1, {})", hi.max(1) / 2 + 1, pick(lo, hi)),
            Shape::Blob(lo, hi) => format!("randomblob({})", pick(lo, hi)),
            Shape::Json(empty) => format!("'{empty}'"),
        }
    }

    /// How many different values a key column can take here, and the value of digit `d`.
    fn span(&self) -> i64 {
        match self.shape {
            Shape::Int(lo, hi) => (hi - lo + 1).max(self.distinct).max(1),
            _ => self.distinct.max(1),
        }
    }

    fn digit(&self, d: &str) -> String {
        match self.shape {
            Shape::Int(lo, _) => format!("{lo} + {d}"),
            Shape::Real(lo, _) => format!("{lo} + {d}"),
            Shape::Text(..) => format!("'k' || ({d})"),
            Shape::Blob(..) => format!("CAST(({d}) AS BLOB)"),
            Shape::Json(_) => format!("json_array({d})"),
        }
    }

    fn unique_generator(&self) -> String {
        match self.shape {
            Shape::Int(lo, _) => format!("seq({lo})"),
            _ => "seq()".into(),
        }
    }

    /// A unique key's column: a `seq` generator, whatever its sizes (said in the comment).
    fn keep_unique(&mut self) {
        let generator = self.unique_generator();
        if generator != self.generator {
            self.about = Some(format!(
                "{generator}: a unique key, kept unique{}",
                match self.shape {
                    Shape::Text(lo, hi) | Shape::Blob(lo, hi) if hi > 12 =>
                        format!(" (its values are {lo}–{hi} long in the copy; seq() numbers are shorter)"),
                    _ => String::new(),
                }
            ));
            self.generator = generator;
        }
    }
}

/// A table's row count and populate generators; when a composite unique key (PRIMARY KEY or
/// UNIQUE, as SQLite's index list has it) has no column that alone keeps rows apart, the table
/// is filled by an `INSERT OR IGNORE … SELECT` over a counter whose key columns count in mixed
/// radix, so no two rows share the key.
fn table_info(
    conn: &Connection,
    table: &str,
    without_rowid: bool,
) -> rusqlite::Result<(TableInfo, Option<String>, Vec<String>)> {
    let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| r.get(0))?;
    let mut cols: Vec<(String, String, i64)> = Vec::new();
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let info = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(5)?))
    })?;
    for c in info {
        cols.push(c?);
    }
    let table_sql: String = conn
        .query_row(
            "SELECT coalesce(sql, '') FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap_or_default();
    let pk_count = cols.iter().filter(|c| c.2 > 0).count();
    let rowid_alias = cols
        .iter()
        .find(|c| !without_rowid && pk_count == 1 && c.2 == 1 && c.1.eq_ignore_ascii_case("integer"))
        .map(|c| c.0.clone());
    let mut fits: Vec<(String, Fit)> = Vec::new();
    for (name, ..) in &cols {
        if Some(name) == rowid_alias.as_ref() {
            // The rowid: SQLite numbers it from 1, unless the copy's keys start later (a CMS whose
            // pages 1 and 2 are the root and the home page, a child table keyed by its parent's
            // id): then they count from there, so the keys a trace replays or joins on exist.
            let c = quote(name);
            let (lo, hi): (Option<i64>, Option<i64>) =
                conn.query_row(&format!("SELECT min({c}), max({c}) FROM {}", quote(table)), [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?;
            if let (Some(lo), Some(hi)) = (lo, hi)
                && lo > 1
            {
                fits.push((
                    name.clone(),
                    Fit {
                        generator: format!("seq({lo})"),
                        shape: Shape::Int(lo, hi),
                        unique: true,
                        distinct: rows,
                        about: Some(format!(
                            "seq({lo}): the rowid, numbered from the copy's first key ({lo}–{hi}, {rows} rows)"
                        )),
                    },
                ));
            }
            continue;
        }
        if let Some(f) = json_column(conn, table, name, &table_sql)? {
            fits.push((name.clone(), f));
        } else if let Some(f) = fit_column(conn, table, name, rows)? {
            fits.push((name.clone(), f));
        }
    }
    let mut notes = Vec::new();
    let mut composite: Vec<Vec<String>> = Vec::new();
    for (index, expression, index_sql) in unique_keys(conn, table)? {
        if index.iter().any(|c| Some(c) == rowid_alias.as_ref() || c.is_empty()) {
            continue;
        }
        // An expression over a column whose values are all different is as unique as it, once
        // that column is generated unique (a column merely distinct in the data is drawn by size).
        let over_unique = fits.iter().position(|(n, f)| {
            f.unique
                && sql::words(&index_sql)
                    .iter()
                    .any(|w| sql::unquote(w).eq_ignore_ascii_case(n))
        });
        if expression {
            match over_unique {
                Some(i) => fits[i].1.keep_unique(),
                None => notes.push(format!(
                    "{table}: a unique index on an expression; populate may repeat its values (prefer --from-db)"
                )),
            }
        }
        let key: Vec<usize> = (0..fits.len()).filter(|&i| index.contains(&fits[i].0)).collect();
        if key.is_empty() {
            continue;
        }
        if let Some(&i) = key.iter().find(|&&i| fits[i].1.unique) {
            fits[i].1.keep_unique();
            continue;
        }
        if let [only] = key[..] {
            let f = &mut fits[only].1;
            f.unique = true;
            f.keep_unique();
            continue;
        }
        composite.push(index);
    }
    let columns: Vec<(String, String)> = fits.iter().map(|(n, f)| (n.clone(), f.generator.clone())).collect();
    let comments = fits
        .iter()
        .filter_map(|(n, f)| f.about.as_ref().map(|a| format!("{n}: {a}")))
        .collect();
    let mut out = TableInfo {
        name: table.to_string(),
        rows: rows.max(0) as u64,
        columns,
        filled: false,
        comments,
    };
    let Some(key) = composite.first().filter(|_| rows > 0) else {
        return Ok((out, None, notes));
    };
    // Mixed radix: the last key column counts fastest; the first takes whatever is left over.
    let key_fits: Vec<&(String, Fit)> = key.iter().filter_map(|k| fits.iter().find(|(n, _)| n == k)).collect();
    let mut exprs: Vec<(String, String)> = fits.iter().map(|(n, f)| (n.clone(), f.sql())).collect();
    let mut stride: i64 = 1;
    for (pos, (name, fit)) in key_fits.iter().enumerate().rev() {
        let digit = if pos == 0 {
            format!("i / {stride}")
        } else {
            format!("(i / {stride}) % {}", fit.span())
        };
        if let Some(e) = exprs.iter_mut().find(|(n, _)| n == name) {
            e.1 = fit.digit(&digit);
        }
        stride = stride.saturating_mul(fit.span());
    }
    if composite.len() > 1 {
        notes.push(format!(
            "{table}: {} composite unique keys; the fill keeps ({}) apart, INSERT OR IGNORE drops rows that \
             repeat another key (prefer --from-db)",
            composite.len(),
            key.join(", ")
        ));
    }
    let names: Vec<String> = exprs.iter().map(|(n, _)| quote(n)).collect();
    let values: Vec<String> = exprs.iter().map(|(_, e)| e.clone()).collect();
    let fill = format!(
        "INSERT OR IGNORE INTO {} ({}) WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {rows}) \
         SELECT {} FROM n",
        quote(table),
        names.join(", "),
        values.join(", "),
    );
    notes.push(format!(
        "{table}: filled by an INSERT … SELECT in `sql` ({rows} rows), not populate: its composite unique key \
         ({}) counts in mixed radix, as populate's independent generators would repeat it",
        key.join(", ")
    ));
    out.filled = true;
    Ok((out, Some(fill), notes))
}

/// The columns of `table` that `populate` must fill with values that never repeat: its rowid
/// alias (the `INTEGER PRIMARY KEY` of a rowid table) and every column that alone is a unique key
/// (a single-column PRIMARY KEY, UNIQUE, a unique index, partial ones too). Each with whether it
/// is the rowid alias. Columns that are unique only together with others (a composite key) are
/// not here: their tables are filled as [`table_info`] says, when read from a copy.
pub(crate) fn distinct_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(String, bool)>> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({})", quote(table)))?;
    let cols: Vec<(String, String, i64)> = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(5)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut list = conn.prepare(&format!("PRAGMA index_list({})", quote(table)))?;
    // A primary key with an index of its own (origin "pk") is not the rowid: a WITHOUT ROWID
    // table's, or one whose type is not exactly INTEGER.
    let pk_index = list
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .any(|origin| origin == "pk");
    let pk: Vec<&(String, String, i64)> = cols.iter().filter(|c| c.2 > 0).collect();
    let mut out: Vec<(String, bool)> = Vec::new();
    if let [only] = pk.as_slice() {
        out.push((only.0.clone(), !pk_index && only.1.eq_ignore_ascii_case("integer")));
    }
    for (key, expression, _) in unique_keys(conn, table)? {
        if let [col] = key.as_slice()
            && !expression
            && !col.is_empty()
            && !out.iter().any(|o| o.0.eq_ignore_ascii_case(col))
        {
            out.push((col.clone(), false));
        }
    }
    Ok(out)
}

/// The unique keys of a table (PRIMARY KEY and UNIQUE constraints, unique indexes, partial ones
/// too): their column names (`""` for the rowid), whether one is an expression, and the index's SQL.
pub(crate) fn unique_keys(conn: &Connection, table: &str) -> rusqlite::Result<Vec<(Vec<String>, bool, String)>> {
    let mut list = conn.prepare(&format!("PRAGMA index_list({})", quote(table)))?;
    let indexes: Vec<(String, bool)> = list
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(2)? != 0)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (index, _) in indexes.into_iter().filter(|i| i.1) {
        let mut info = conn.prepare(&format!("PRAGMA index_info({})", quote(&index)))?;
        let cols: Vec<(i64, Option<String>)> = info
            .query_map([], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, Option<String>>(2)?)))?
            .collect::<Result<_, _>>()?;
        let expression = cols.iter().any(|c| c.0 == -2);
        let names = cols
            .into_iter()
            .filter(|c| c.0 != -2)
            .map(|c| {
                if c.0 == -1 {
                    String::new()
                } else {
                    c.1.unwrap_or_default()
                }
            })
            .collect();
        let sql: String = conn
            .query_row(
                "SELECT coalesce(sql, '') FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [&index],
                |r| r.get(0),
            )
            .unwrap_or_default();
        out.push((names, expression, sql));
    }
    Ok(out)
}

/// A column a CHECK constraint keeps to JSON (`CHECK (JSON_VALID("data"))`, Django's JSONField):
/// random text would fail it, so it gets the empty value of the JSON type most of its rows hold
/// (`'{}'`, `'[]'`, `'""'`, `'0'`).
fn json_column(conn: &Connection, table: &str, col: &str, table_sql: &str) -> rusqlite::Result<Option<Fit>> {
    let lower = table_sql.to_ascii_lowercase().replace(' ', "");
    let name = col.to_ascii_lowercase();
    let checked = [
        format!("json_valid(\"{name}\")"),
        format!("json_valid({name})"),
        format!("json_valid(`{name}`)"),
    ]
    .iter()
    .any(|f| lower.contains(f.as_str()));
    if !checked {
        return Ok(None);
    }
    let c = quote(col);
    let first: Option<String> = conn
        .query_row(
            &format!(
                "SELECT substr(trim({c}), 1, 1) FROM {} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                quote(table)
            ),
            [],
            |r| r.get(0),
        )
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    let empty = match first.as_deref() {
        Some("[") => "[]",
        Some("\"") => "\"\"",
        Some(d) if d.starts_with(|c: char| c.is_ascii_digit() || c == '-') => "0",
        _ => "{}",
    };
    Ok(Some(Fit {
        generator: format!("choice('{empty}')"),
        shape: Shape::Json(empty),
        unique: false,
        distinct: 1,
        about: Some(format!(
            "'{empty}': kept to JSON by a CHECK, so the empty value of the JSON most rows hold (not their sizes)"
        )),
    }))
}

/// Columns with at most this many different values get `choice(...)` with the copy's values.
const CHOICE_MAX_DISTINCT: i64 = 12;
/// Values per `choice(...)`: the copy's shares in twentieths (each value at least once).
const CHOICE_SLOTS: i64 = 20;
/// Lengths read per column for its size distribution (a sample of a larger table).
const LENGTH_SAMPLE: i64 = 20_000;

/// A generator for one column, from the type most of its values have; None for NULL-only.
/// A column with few different values draws them in the copy's proportions (`choice`); text
/// and blobs follow the copy's length distribution (`text_lengths`, from a sample of up to
/// 20,000 rows), so 2 kB bodies stay 2 kB; integers take their range. A column whose values
/// are all different is marked unique; it is generated unique (`seq`) only when a unique key
/// needs it (`keep_unique`).
fn fit_column(conn: &Connection, table: &str, col: &str, rows: i64) -> rusqlite::Result<Option<Fit>> {
    let c = quote(col);
    let sql = format!(
        "SELECT typeof({c}), min({c}), max({c}), min(length({c})), max(length({c})), count(DISTINCT {c}), count(*) \
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
            r.get::<_, i64>(6)?,
        ))
    });
    let (ty, min, max, lmin, lmax, distinct, of_type) = match got {
        Ok(v) => v,
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            return Ok(Some(Fit {
                generator: "text(8, 16)".into(),
                shape: Shape::Text(8, 16),
                unique: false,
                distinct: 0,
                about: Some("text(8, 16): the table is empty in the copy, so nothing to take sizes from".into()),
            }));
        }
        Err(e) => return Err(e),
    };
    use rusqlite::types::Value as V;
    let unique = distinct == rows && rows > 1;
    let fit = |generator: String, shape: Shape, about: Option<String>| {
        Some(Fit {
            generator,
            shape,
            unique,
            distinct,
            about,
        })
    };
    let shape = match (ty.as_str(), &min, &max) {
        ("integer", V::Integer(lo), V::Integer(hi)) => Shape::Int(*lo, *hi),
        ("real", V::Real(lo), V::Real(hi)) => Shape::Real(*lo, *hi),
        ("text", ..) => Shape::Text(lmin, lmax),
        ("blob", ..) => Shape::Blob(lmin, lmax),
        _ => return Ok(None),
    };
    if !unique
        && distinct <= CHOICE_MAX_DISTINCT
        && of_type >= 2 * distinct
        && let Some((generator, about)) = choice_of(conn, table, col, &ty, of_type)?
    {
        return Ok(fit(generator, shape, Some(about)));
    }
    Ok(match shape {
        Shape::Int(lo, hi) if unique && hi >= lo => fit(format!("seq({lo})"), shape, None),
        Shape::Int(lo, hi) => fit(format!("uniform({lo}, {hi})"), shape, None),
        Shape::Real(lo, hi) => fit(
            format!("uniform({}, {})", lo.floor() as i64, hi.ceil() as i64),
            shape,
            None,
        ),
        Shape::Text(..) | Shape::Blob(..) => {
            let mut lens = lengths(conn, table, col, &ty, of_type)?;
            let (generator, about) = super::params::sized(&ty, &mut lens);
            let sample = if (lens.len() as i64) < of_type {
                format!("a sample of {} of its {of_type} {ty} values", lens.len())
            } else {
                format!("all its {ty} values")
            };
            fit(
                generator,
                shape,
                Some(format!("{ty} lengths from the copy, {sample} ({about})")),
            )
        }
        Shape::Json(_) => None,
    })
}

/// The lengths of a column's values of type `ty` (`length()`: characters of text, bytes of
/// blobs), all of them or a random sample of about `LENGTH_SAMPLE`.
fn lengths(conn: &Connection, table: &str, col: &str, ty: &str, of_type: i64) -> rusqlite::Result<Vec<usize>> {
    let c = quote(col);
    let every = (of_type / LENGTH_SAMPLE).max(1);
    let sql = format!(
        "SELECT length({c}) FROM {} WHERE typeof({c}) = ?1 AND (?2 = 1 OR abs(random()) % ?2 = 0) LIMIT ?3",
        quote(table)
    );
    let mut stmt = conn.prepare(&sql)?;
    let lens = stmt.query_map(rusqlite::params![ty, every, 2 * LENGTH_SAMPLE], |r| {
        r.get::<_, i64>(0).map(|l| l.max(0) as usize)
    })?;
    lens.collect()
}

/// `choice(...)` over a column's few values, each repeated in proportion to its rows (in
/// twentieths, at least once); None when a value cannot be written in `choice` (a quote, a blob,
/// longer than 64 characters).
fn choice_of(
    conn: &Connection,
    table: &str,
    col: &str,
    ty: &str,
    of_type: i64,
) -> rusqlite::Result<Option<(String, String)>> {
    use rusqlite::types::Value as V;
    let c = quote(col);
    let sql = format!(
        "SELECT {c}, count(*) FROM {} WHERE typeof({c}) = ?1 GROUP BY 1 ORDER BY 2 DESC, 1",
        quote(table)
    );
    let mut stmt = conn.prepare(&sql)?;
    let counts: Vec<(V, i64)> = stmt
        .query_map([ty], |r| Ok((r.get::<_, V>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut items = Vec::new();
    let mut shares = Vec::new();
    for (v, n) in &counts {
        let literal = match v {
            V::Integer(i) => i.to_string(),
            V::Real(r) if r.is_finite() => format!("{r:?}"),
            V::Text(t) if t.len() <= 64 && !t.contains('\'') => format!("'{t}'"),
            _ => return Ok(None),
        };
        let slots = ((n * CHOICE_SLOTS + of_type / 2) / of_type.max(1)).max(1);
        shares.push(format!("{literal} in {n}"));
        items.push((literal, slots));
    }
    let gcd = items.iter().fold(0, |g, (_, s)| gcd(g, *s)).max(1);
    let list: Vec<String> = items
        .iter()
        .flat_map(|(l, s)| std::iter::repeat_n(l.clone(), (s / gcd) as usize))
        .collect();
    Ok(Some((
        format!("choice({})", list.join(", ")),
        format!(
            "the copy's {} values in their proportions ({} of its {of_type} rows)",
            items.len(),
            shares.join(", ")
        ),
    )))
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_checked_columns_get_valid_json_and_shadow_tables_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE log(id INTEGER PRIMARY KEY, data TEXT CHECK ((JSON_VALID(\"data\") OR \"data\" IS NULL)),
               tags TEXT CHECK (json_valid(tags)), note TEXT);
             INSERT INTO log(data, tags, note) VALUES ('{\"a\": 1}', '[1]', 'x'), ('{}', '[]', 'y');
             CREATE VIRTUAL TABLE doc USING fts5(body);
             INSERT INTO doc VALUES ('hello world');",
        )
        .unwrap();
        drop(c);
        let info = read_db(&path).unwrap();
        assert_eq!(info.virtual_tables, vec!["doc".to_string()]);
        assert_eq!(info.schema.len(), 2, "{:?}", info.schema);
        assert!(
            info.schema
                .iter()
                .all(|s| !s.contains("doc_data") && !s.contains("doc_idx"))
        );
        assert_eq!(info.tables.len(), 1, "only the ordinary table is populated");
        let cols = &info.tables[0].columns;
        assert_eq!(cols[0], ("data".to_string(), "choice('{}')".to_string()));
        assert_eq!(cols[1], ("tags".to_string(), "choice('[]')".to_string()));
        assert_eq!(cols[2].0, "note");
    }

    /// A database a writer died in (a hot journal beside it): what is read is the committed
    /// state (the journal rolled back on the copy), and the user's files stay as they were.
    /// #28: the columns populate must keep distinct, as SQLite reads the keys: the rowid alias
    /// (only a rowid table's `INTEGER PRIMARY KEY`), any single-column PRIMARY KEY, UNIQUE or
    /// unique index (partial ones too); not a column unique only with others (a composite key,
    /// filled by its own mechanism) nor one under a unique index on an expression.
    #[test]
    fn distinct_columns_are_the_rowid_and_single_column_unique_keys() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE site(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE u(id INT PRIMARY KEY, slug TEXT UNIQUE, a INTEGER, b INTEGER, UNIQUE(a, b));
             CREATE TABLE w(id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID;
             CREATE TABLE link(a INTEGER, b INTEGER, note TEXT, PRIMARY KEY(a, b));
             CREATE TABLE person(id integer primary key, email TEXT, nick TEXT, tag TEXT);
             CREATE UNIQUE INDEX person_email ON person(lower(email));
             CREATE UNIQUE INDEX person_nick ON person(nick) WHERE nick IS NOT NULL;
             CREATE INDEX person_tag ON person(tag);",
        )
        .unwrap();
        let d = |t: &str| distinct_columns(&c, t).unwrap();
        let s = |name: &str, rowid: bool| (name.to_string(), rowid);
        assert_eq!(d("site"), [s("id", true)]);
        assert_eq!(d("u"), [s("id", false), s("slug", false)]);
        assert_eq!(d("w"), [s("id", false)]);
        assert!(d("link").is_empty());
        assert_eq!(d("person"), [s("id", true), s("nick", false)]);
    }

    /// A FIFO is refused without being opened.
    #[test]
    fn a_hot_journal_is_rolled_back_on_the_copy_and_a_fifo_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let c = Connection::open(&live).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=delete; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 50)
             INSERT INTO t(v) SELECT 'committed' FROM s;
             PRAGMA cache_size = 1; BEGIN;
             WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 400)
             INSERT INTO t(v) SELECT printf('%.500c', 'x') FROM s;",
        )
        .unwrap();
        let crashed = dir.path().join("crashed.db");
        std::fs::copy(&live, &crashed).unwrap();
        std::fs::copy(
            dir.path().join("live.db-journal"),
            dir.path().join("crashed.db-journal"),
        )
        .unwrap();
        drop(c);
        let (db, journal) = (
            std::fs::read(&crashed).unwrap(),
            std::fs::read(dir.path().join("crashed.db-journal")).unwrap(),
        );
        let info = read_db(&crashed).unwrap();
        assert_eq!(info.tables[0].rows, 50, "the half-written transaction was read");
        assert_eq!(std::fs::read(&crashed).unwrap(), db);
        assert_eq!(std::fs::read(dir.path().join("crashed.db-journal")).unwrap(), journal);
        let fifo = dir.path().join("pipe.db");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(read_db(&fifo).unwrap_err().contains("not a regular file"));
    }

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
                ("title".to_string(), "text(4, 5)".to_string()),
                ("views".to_string(), "choice(1, 2, 0, 3, 4, 5, 6)".to_string())
            ]
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    /// #28: sizes and values from the copy: 2 kB bodies (all different, but no key) keep their
    /// lengths, not `seq()`; a 95/5 flag keeps its proportions; a unique key stays unique and
    /// says its sizes are not kept; the comments say where each came from.
    #[test]
    fn sizes_and_value_shares_come_from_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE movie(id INTEGER PRIMARY KEY, slug TEXT NOT NULL UNIQUE, plot TEXT NOT NULL,
               poster BLOB, live INTEGER NOT NULL, lang TEXT NOT NULL);
             WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < 200)
             INSERT INTO movie(slug, plot, poster, live, lang)
             SELECT printf('%.40c-%d', 's', v), v || printf('%.*c', 1800 + (v * 37) % 600, 'p'),
                    randomblob(500 + v), v % 20 <> 0, CASE WHEN v % 4 = 0 THEN 'de' ELSE 'en' END FROM s;
             CREATE TABLE movie_extra(movie_id INTEGER PRIMARY KEY, note TEXT);
             INSERT INTO movie_extra SELECT id, 'x' FROM movie WHERE id > 2;",
        )
        .unwrap();
        drop(c);
        let info = read_db(&path).unwrap();
        let t = &info.tables[0];
        let col = |n: &str| t.columns.iter().find(|c| c.0 == n).unwrap().1.clone();
        assert_eq!(col("slug"), "seq()");
        assert!(t.columns.iter().all(|c| c.0 != "id"), "ids from 1 are SQLite's own");
        let child = &info.tables[1];
        assert_eq!(child.columns[0], ("movie_id".to_string(), "seq(3)".to_string()));
        assert!(child.comments[0].contains("the rowid, numbered from the copy's first key (3–200, 198 rows)"));
        let plot = col("plot");
        assert!(plot.starts_with("text_lengths(18"), "{plot}");
        let lens: Vec<usize> = plot["text_lengths(".len()..plot.len() - 1]
            .split(", ")
            .map(|l| l.parse().unwrap())
            .collect();
        assert_eq!(lens.len(), 11);
        assert!(lens[0] >= 1800 && lens[10] <= 2403, "{plot}");
        assert!(col("poster").starts_with("blob_lengths(501, "), "{}", col("poster"));
        assert_eq!(
            col("live"),
            "choice(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0)"
        );
        assert_eq!(col("lang"), "choice('en', 'en', 'en', 'de')");
        let comments = t.comments.join("\n");
        for needle in [
            "slug: seq(): a unique key, kept unique (its values are 42–44 long in the copy",
            "plot: text lengths from the copy, all its text values (200 values: 18",
            "live: the copy's 2 values in their proportions (1 in 190, 0 in 10 of its 200 rows)",
        ] {
            assert!(comments.contains(needle), "{needle}\n{comments}");
        }
    }
}
