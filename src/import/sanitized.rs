//! Values an instrumentation sanitized away (OpenTelemetry's `?` without
//! `db.query.parameter.*`), modelled from a copy of the app's database (`import --db COPY`) by
//! what each parameter meets in its statement: a parameter compared with a column (`col = ?`,
//! `col IN (?, ...)`, `col > ?`, `BETWEEN ? AND ?`) draws from that column's values in the copy
//! (`uniform(min, max)` for dense integers, `choice(...)` of a sample otherwise); a value
//! written by an INSERT or an UPDATE's SET takes the column's fitted distribution (the generator
//! `populate` would use: shares, ranges, `text_lengths`); an OFFSET ranges over the table's rows.
//! Each modelled parameter says where it came from in the script's comments. Where the copy gives
//! no evidence (a LIMIT, an expression, a LIKE pattern, an empty or unique column) the
//! `fill_in(...)` stays, and says why.

use super::requests::RequestKind;
use super::scenario::{GroupOut, StepKind};
use super::schema::DbInfo;
use litehammer_trace::lex::{self, Kind};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;

/// How many rows a `choice(...)` of a column's values samples (in the copy's proportions).
const SAMPLE: i64 = 64;
/// Longest text value written into a `choice(...)`.
const MAX_TEXT: usize = 64;

/// The script comment of a kind the self-check does not run (its captured values are missing:
/// bound as NULL, its statements would fail where the app's did not).
pub(crate) const UNCHECKED: &str = "Self-check: not run for this kind: the trace has no values for its parameters \
     (each is modelled above or left to fill in); its statements were prepared, and `litehammer run` draws them";

/// Whether a kind's first request has parameters without a captured value (sanitized spans).
pub(crate) fn lacks_values(kind: &RequestKind) -> bool {
    kind.instances[0]
        .steps
        .iter()
        .any(|s| s.norm.values.contains(&super::sql::Value::Unknown))
}

/// Where a parameter sits in its statement.
#[derive(Debug, Clone, PartialEq)]
enum Place {
    /// Compared with a column: `=`, `==`, `!=`, `<>`, `IS`, `IN (...)`.
    Equal(Option<String>, String),
    /// A range bound: `<`, `>`, `<=`, `>=`, `BETWEEN`.
    Range(Option<String>, String),
    /// Written into a column: an INSERT's VALUES (the table known) or an UPDATE's SET.
    Write(Option<String>, String),
    Limit,
    Offset,
}

/// The marker import writes for a parameter the trace has no value for: its (1-based)
/// position and step.
fn missing(v: &toml::Value) -> Option<(usize, usize)> {
    let s = v.as_str()?;
    let rest = s.strip_prefix("fill_in('parameter ?")?;
    if !s.ends_with("the trace has no value for it')") {
        return None;
    }
    let (n, rest) = rest.split_once(" of step ")?;
    let (step, _) = rest.split_once(':')?;
    Some((n.parse().ok()?, step.parse().ok()?))
}

/// Replaces each `fill_in` for a missing value in `groups` with a generator drawn from the
/// copy of `info`'s database where it gives evidence; returns notes. The scripts' comments and
/// `notes` lose the "no captured value" entries of what was modelled.
pub(crate) fn model(info: &DbInfo, groups: &mut [GroupOut], notes: &mut Vec<String>) {
    let any = groups.iter().any(|g| {
        g.scripts.iter().any(|s| {
            s.steps.iter().any(
                |st| matches!(&st.kind, StepKind::Sql { params, .. } if params.iter().any(|p| missing(p).is_some())),
            )
        })
    });
    if !any {
        return;
    }
    let db = match Copy::open(info) {
        Ok(db) => db,
        Err(e) => {
            notes.push(format!(
                "values: the sanitized parameters stay fill_in(...): cannot read a copy of {}: {e}",
                info.source.display()
            ));
            return;
        }
    };
    let (mut modelled, mut left) = (0usize, 0usize);
    for g in groups.iter_mut() {
        for sc in g.scripts.iter_mut() {
            for st in sc.steps.iter_mut() {
                let StepKind::Sql { sql, params } = &mut st.kind else {
                    continue;
                };
                for p in params.iter_mut() {
                    let Some((n, step)) = missing(p) else { continue };
                    let key = format!("step {step} ?{n}: ");
                    let comment = match db.draw(sql, n) {
                        Ok((generator, why)) => {
                            modelled += 1;
                            *p = toml::Value::String(generator.clone());
                            let text = format!("modelled from --db: {generator}: {why}");
                            notes.retain(|note| {
                                !(note.starts_with(&format!("{} step {step}: ?{n} of step {step}", sc.name))
                                    && note.contains("no captured value"))
                            });
                            text
                        }
                        Err(why) => {
                            left += 1;
                            format!(
                                "no captured value, and --db gives no evidence for it ({why}): replace fill_in(...) \
                                 with a generator"
                            )
                        }
                    };
                    match sc
                        .comments
                        .iter_mut()
                        .find(|c| c.starts_with(&key) && c.contains("no captured value"))
                    {
                        Some(c) => *c = format!("{key}{comment}"),
                        None => sc.comments.push(format!("{key}{comment}")),
                    }
                }
            }
        }
    }
    if modelled > 0 {
        notes.push(format!(
            "values: {modelled} sanitized parameter(s) modelled from the --db copy (the column each is compared with or \
             written to; the script comments say which){}",
            if left > 0 {
                format!("; {left} left as fill_in(...) where the copy gives no evidence")
            } else {
                String::new()
            }
        ));
    }
}

/// A private copy of the app's database (the file and its WAL), read only.
struct Copy {
    _dir: tempfile::TempDir,
    conn: Connection,
    /// Table name (lower case) → its name as written and its columns.
    tables: HashMap<String, (String, Vec<String>)>,
    /// Fitted populate generators: (table lower case, column lower case) → generator.
    fitted: HashMap<(String, String), String>,
}

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Copy {
    fn open(info: &DbInfo) -> Result<Self, String> {
        let (dir, copy) = super::schema::copy_db(&info.source)?;
        let conn = Connection::open_with_flags(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(|e| e.to_string())?;
        let mut tables = HashMap::new();
        let names: Vec<String> = {
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                .map_err(|e| e.to_string())?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(|e| e.to_string())?
        };
        for name in names {
            let cols: Vec<String> = conn
                .prepare(&format!("PRAGMA table_info({})", q(&name)))
                .and_then(|mut s| s.query_map([], |r| r.get::<_, String>(1))?.collect())
                .map_err(|e| e.to_string())?;
            tables.insert(name.to_ascii_lowercase(), (name, cols));
        }
        let fitted = info
            .tables
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .map(|(c, g)| ((t.name.to_ascii_lowercase(), c.to_ascii_lowercase()), g.clone()))
            })
            .collect();
        Ok(Copy {
            _dir: dir,
            conn,
            tables,
            fitted,
        })
    }

    /// The generator for parameter `?n` of `sql`, and where it came from; or why there is none.
    fn draw(&self, sql: &str, n: usize) -> Result<(String, String), String> {
        let place = place(sql, n).ok_or("not compared with or written to a column")?;
        let mentioned = mentioned_tables(sql, |t| self.tables.contains_key(&t.to_ascii_lowercase()));
        match place {
            Place::Limit => Err("a LIMIT: the copy does not say the page size".into()),
            Place::Offset => {
                let table = match mentioned
                    .values()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()[..]
                {
                    [t] => t.clone(),
                    _ => return Err("an OFFSET over several tables".into()),
                };
                let rows: i64 = self
                    .conn
                    .query_row(&format!("SELECT count(*) FROM {}", q(&table)), [], |r| r.get(0))
                    .map_err(|e| e.to_string())?;
                if rows < 1 {
                    return Err(format!("an OFFSET into {table}, which is empty in the copy"));
                }
                Ok((
                    format!("uniform(0, {})", rows - 1),
                    format!("an OFFSET: anywhere in {table}'s {rows} rows in the copy"),
                ))
            }
            Place::Equal(qual, col) | Place::Range(qual, col) => {
                let table = self.resolve(&mentioned, qual.as_deref(), &col)?;
                self.values_of(&table, &col)
            }
            Place::Write(qual, col) => {
                let table = self.resolve(&mentioned, qual.as_deref(), &col)?;
                let g = self
                    .fitted
                    .get(&(table.to_ascii_lowercase(), col.to_ascii_lowercase()))
                    .ok_or_else(|| {
                        format!("{table}.{col} has no fitted values in the copy (empty or not a plain column)")
                    })?;
                if g.starts_with("seq(") {
                    return Err(format!(
                        "{table}.{col} is unique in the copy: a drawn value would repeat one of its rows"
                    ));
                }
                Ok((
                    g.clone(),
                    format!("written to {table}.{col}: that column's distribution in the copy (as populate fits it)"),
                ))
            }
        }
    }

    /// The table of `col`: its qualifier (a table or an alias), else the one table of the
    /// statement that has it.
    fn resolve(&self, mentioned: &HashMap<String, String>, qual: Option<&str>, col: &str) -> Result<String, String> {
        let has = |t: &str| {
            self.tables
                .get(&t.to_ascii_lowercase())
                .is_some_and(|(_, cols)| cols.iter().any(|c| c.eq_ignore_ascii_case(col)))
        };
        if let Some(q) = qual {
            let t = mentioned
                .get(&q.to_ascii_lowercase())
                .cloned()
                .ok_or_else(|| format!("{q}.{col}: {q} is not a table of the copy"))?;
            return if has(&t) {
                Ok(self.tables[&t.to_ascii_lowercase()].0.clone())
            } else {
                Err(format!("{t} has no column {col} in the copy"))
            };
        }
        let mut found: Vec<String> = mentioned
            .values()
            .filter(|t| has(t))
            .map(|t| self.tables[&t.to_ascii_lowercase()].0.clone())
            .collect();
        found.sort();
        found.dedup();
        match &found[..] {
            [t] => Ok(t.clone()),
            [] => Err(format!("no table of the statement has a column {col} in the copy")),
            _ => Err(format!(
                "{col} is a column of several tables of the statement ({})",
                found.join(", ")
            )),
        }
    }

    /// A generator of the values `table.col` holds in the copy.
    fn values_of(&self, table: &str, col: &str) -> Result<(String, String), String> {
        let c = q(col);
        let t = q(table);
        let (ty, rows, distinct, lo, hi): (String, i64, i64, rusqlite::types::Value, rusqlite::types::Value) = self
            .conn
            .query_row(
                &format!(
                    "SELECT typeof({c}), count(*), count(DISTINCT {c}), min({c}), max({c}) FROM {t} \
                     WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => format!("{table}.{col} has no values in the copy"),
                e => e.to_string(),
            })?;
        use rusqlite::types::Value as V;
        if let (V::Integer(lo), V::Integer(hi)) = (&lo, &hi)
            && hi - lo + 1 == distinct
            && distinct > 1
        {
            return Ok((
                format!("uniform({lo}, {hi})"),
                format!("compared with {table}.{col}: its {distinct} values in the copy are the integers {lo}–{hi}"),
            ));
        }
        // A sample of rows, so frequent values come up as often as in the copy; by rowid stride
        // where the table has one (the same sample every import), else the first rows.
        let every = (rows / SAMPLE).max(1);
        let sampled = self
            .sample(
                &format!("SELECT {c} FROM {t} WHERE typeof({c}) = ?1 AND _rowid_ % ?2 = 0 LIMIT ?3"),
                &ty,
                every,
            )
            .or_else(|_| {
                self.sample(
                    &format!("SELECT {c} FROM {t} WHERE typeof({c}) = ?1 AND ?2 > 0 LIMIT ?3"),
                    &ty,
                    every,
                )
            })
            .map_err(|e| e.to_string())?;
        let mut items: Vec<String> = Vec::new();
        for v in sampled {
            match v {
                V::Integer(i) => items.push(i.to_string()),
                V::Real(r) if r.is_finite() => items.push(format!("{r:?}")),
                V::Text(s) if s.len() <= MAX_TEXT && !s.contains('\'') && !s.contains('\\') => {
                    items.push(format!("'{s}'"))
                }
                _ => {}
            }
        }
        if items.is_empty() {
            return Err(format!(
                "{table}.{col}: no sampled value can be written in choice(...) (longer than {MAX_TEXT} characters, quotes or blobs)"
            ));
        }
        let n = items.len();
        Ok((
            format!("choice({})", items.join(", ")),
            format!(
                "compared with {table}.{col}: {n} of its {rows} {ty} values in the copy ({distinct} distinct), in their proportions"
            ),
        ))
    }

    fn sample(&self, sql: &str, ty: &str, every: i64) -> rusqlite::Result<Vec<rusqlite::types::Value>> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(rusqlite::params![ty, every, SAMPLE], |r| r.get(0))?;
        let v: Vec<rusqlite::types::Value> = rows.collect::<Result<_, _>>()?;
        if v.is_empty() {
            // The stride missed every row of this type: fall back to the first ones.
            return Err(rusqlite::Error::QueryReturnedNoRows);
        }
        Ok(v)
    }
}

/// The significant tokens of `sql` (no spaces or comments) as (kind, text).
fn sig(sql: &str) -> Vec<(Kind, &str)> {
    lex::tokens(sql)
        .filter(|t| !matches!(t.kind, Kind::Space | Kind::Comment))
        .map(|t| (t.kind, t.text(sql)))
        .collect()
}

fn ident(t: &(Kind, &str)) -> Option<String> {
    match t.0 {
        Kind::Word => Some(t.1.to_string()),
        Kind::QuotedIdent => {
            let inner = &t.1[1..t.1.len().saturating_sub(1).max(1)];
            Some(inner.replace("\"\"", "\"").replace("``", "`"))
        }
        _ => None,
    }
}

fn is_word(t: Option<&(Kind, &str)>, w: &str) -> bool {
    t.is_some_and(|t| t.0 == Kind::Word && t.1.eq_ignore_ascii_case(w))
}

/// Words that may follow a table name and are not its alias.
const NOT_ALIAS: &[&str] = &[
    "where",
    "join",
    "inner",
    "left",
    "right",
    "full",
    "cross",
    "natural",
    "on",
    "using",
    "order",
    "group",
    "limit",
    "set",
    "values",
    "default",
    "select",
    "union",
    "except",
    "intersect",
    "having",
    "window",
    "returning",
    "indexed",
    "not",
    "as",
    "outer",
    "offset",
    "do",
    "on",
];

/// The tables a statement names (after FROM, JOIN, INTO, UPDATE or a comma in a FROM list) and
/// their aliases, lower case → the table's name; `is_table` says which words are tables of the copy.
fn mentioned_tables(sql: &str, is_table: impl Fn(&str) -> bool) -> HashMap<String, String> {
    let t = sig(sql);
    let mut out = HashMap::new();
    for i in 0..t.len() {
        let Some(name) = ident(&t[i]) else { continue };
        let before = i.checked_sub(1).map(|j| &t[j]);
        let after_dot = t.get(i + 1).is_some_and(|n| n.1 == ".");
        let table_place = before.is_some_and(|b| {
            (b.0 == Kind::Word
                && ["from", "join", "into", "update"]
                    .iter()
                    .any(|w| b.1.eq_ignore_ascii_case(w)))
                || b.1 == ","
        });
        if !table_place || after_dot || !is_table(&name) {
            continue;
        }
        out.insert(name.to_ascii_lowercase(), name.clone());
        let mut k = i + 1;
        if is_word(t.get(k), "as") {
            k += 1;
        }
        if let Some(alias) = t.get(k).and_then(ident)
            && !NOT_ALIAS.iter().any(|w| alias.eq_ignore_ascii_case(w))
        {
            out.insert(alias.to_ascii_lowercase(), name.clone());
        }
    }
    out
}

/// The column before token `i` (`col` or `qual.col`), if `t[i]` ends one.
fn column_at(t: &[(Kind, &str)], i: usize) -> Option<(Option<String>, String)> {
    let col = ident(t.get(i)?)?;
    if matches!(
        col.to_ascii_lowercase().as_str(),
        "not" | "and" | "or" | "where" | "on" | "when" | "then"
    ) {
        return None;
    }
    if i >= 2 && t[i - 1].1 == "." {
        return Some((ident(&t[i - 2]), col));
    }
    Some((None, col))
}

/// Where parameter `?n` sits in `sql` (import's normalized text numbers them `?1`, `?2`, ...;
/// a bare `?` counts by position).
fn place(sql: &str, n: usize) -> Option<Place> {
    let t = sig(sql);
    let mut bare = 0;
    let at = t.iter().position(|tok| {
        if tok.0 != Kind::Param {
            return false;
        }
        if tok.1 == "?" {
            bare += 1;
            return bare == n;
        }
        tok.1.strip_prefix('?').and_then(|d| d.parse::<usize>().ok()) == Some(n)
    })?;
    // An INSERT's VALUES: the column at the same position in the column list.
    if (is_word(t.first(), "insert") || is_word(t.first(), "replace"))
        && let Some(p) = insert_column(&t, at)
    {
        return Some(p);
    }
    let prev = at.checked_sub(1).map(|j| t[j]);
    // An operator before it: the punctuation right before the parameter.
    let mut k = at;
    let mut op = String::new();
    while k > 0 && t[k - 1].0 == Kind::Punct && t[k - 1].1 != "(" && t[k - 1].1 != ")" && t[k - 1].1 != "," {
        k -= 1;
        op.insert_str(0, t[k].1);
    }
    if !op.is_empty() {
        let (qual, col) = column_at(&t, k.checked_sub(1)?)?;
        return match op.as_str() {
            "=" if in_set_clause(&t, at) => Some(Place::Write(qual, col)),
            "=" | "==" | "!=" | "<>" => Some(Place::Equal(qual, col)),
            "<" | ">" | "<=" | ">=" => Some(Place::Range(qual, col)),
            _ => None,
        };
    }
    if let Some(p) = prev {
        if is_word(Some(&p), "limit") {
            return Some(Place::Limit);
        }
        if is_word(Some(&p), "offset") {
            return Some(Place::Offset);
        }
        if is_word(Some(&p), "is") {
            let (qual, col) = column_at(&t, at.checked_sub(2)?)?;
            return Some(Place::Equal(qual, col));
        }
        if is_word(Some(&p), "between") {
            let (qual, col) = column_at(&t, at.checked_sub(2)?)?;
            return Some(Place::Range(qual, col));
        }
        if is_word(Some(&p), "and") && at >= 3 && is_word(Some(&t[at - 3]), "between") {
            let (qual, col) = column_at(&t, at.checked_sub(4)?)?;
            return Some(Place::Range(qual, col));
        }
    }
    // `col IN (?, ?, ...)`: back over the list to its `(`, then IN (or NOT IN).
    let mut k = at;
    while k > 0 && (t[k - 1].0 == Kind::Param || t[k - 1].1 == ",") {
        k -= 1;
    }
    if k >= 2 && t[k - 1].1 == "(" && is_word(Some(&t[k - 2]), "in") {
        let mut c = k - 3;
        if is_word(t.get(c), "not") {
            c = c.checked_sub(1)?;
        }
        let (qual, col) = column_at(&t, c)?;
        return Some(Place::Equal(qual, col));
    }
    // `? = col`
    if t.get(at + 1).is_some_and(|o| o.1 == "=") {
        let (qual, col) = column_at(&t, at + 2)?;
        return Some(Place::Equal(qual, col));
    }
    None
}

/// Whether token `at` is inside an UPDATE's SET clause (before its WHERE).
fn in_set_clause(t: &[(Kind, &str)], at: usize) -> bool {
    if !is_word(t.first(), "update") {
        return false;
    }
    let set = t.iter().position(|x| is_word(Some(x), "set"));
    let wh = t.iter().position(|x| is_word(Some(x), "where")).unwrap_or(t.len());
    set.is_some_and(|s| s < at && at < wh)
}

/// `INSERT INTO t (a, b) VALUES (?, ?)`: the column of the VALUES item that is exactly the
/// parameter at token `at`.
fn insert_column(t: &[(Kind, &str)], at: usize) -> Option<Place> {
    let into = t.iter().position(|x| is_word(Some(x), "into"))?;
    let mut i = into + 1;
    let mut table = ident(t.get(i)?)?;
    if t.get(i + 1).is_some_and(|x| x.1 == ".") {
        i += 2;
        table = ident(t.get(i)?)?;
    }
    i += 1;
    if is_word(t.get(i), "as") {
        i += 2;
    }
    if t.get(i)?.1 != "(" {
        return None;
    }
    let mut cols = Vec::new();
    i += 1;
    while let Some(x) = t.get(i) {
        if x.1 == ")" {
            break;
        }
        if x.1 != "," {
            cols.push(ident(x)?);
        }
        i += 1;
    }
    let values = t.iter().position(|x| is_word(Some(x), "values"))?;
    if at < values {
        return None;
    }
    // The tuple around `at`: its items at depth 1, split at commas.
    let mut open = at;
    let mut depth = 0i32;
    loop {
        open = open.checked_sub(1)?;
        match t[open].1 {
            ")" => depth += 1,
            "(" if depth == 0 => break,
            "(" => depth -= 1,
            _ => {}
        }
    }
    if open == 0 || (t[open - 1].1 != "," && !is_word(Some(&t[open - 1]), "values")) {
        return None;
    }
    let mut item = 0;
    let mut depth = 0i32;
    for (j, x) in t.iter().enumerate().skip(open + 1) {
        if j == at {
            let alone = t[j - 1].1 == "(" || t[j - 1].1 == ",";
            let ends = t.get(j + 1).is_some_and(|n| n.1 == "," || n.1 == ")");
            return (alone && ends && depth == 0)
                .then(|| cols.get(item).map(|c| Place::Write(Some(table.clone()), c.clone())))
                .flatten();
        }
        match x.1 {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => item += 1,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(t: &str, c: &str) -> Place {
        Place::Write(Some(t.into()), c.into())
    }

    #[test]
    fn places_of_parameters() {
        assert_eq!(
            place("SELECT a FROM post WHERE id = ?1", 1),
            Some(Place::Equal(None, "id".into()))
        );
        assert_eq!(
            place(
                "SELECT a FROM post p WHERE p.id >= ?1 AND p.views < ?2 LIMIT ?3 OFFSET ?4",
                2
            ),
            Some(Place::Range(Some("p".into()), "views".into()))
        );
        assert_eq!(
            place("SELECT a FROM post WHERE id >= ?1 LIMIT ?2 OFFSET ?3", 1),
            Some(Place::Range(None, "id".into()))
        );
        assert_eq!(place("SELECT a FROM post LIMIT ?1 OFFSET ?2", 1), Some(Place::Limit));
        assert_eq!(place("SELECT a FROM post LIMIT ?1 OFFSET ?2", 2), Some(Place::Offset));
        assert_eq!(
            place("SELECT a FROM post WHERE \"id\" NOT IN (?1, ?2, ?3)", 3),
            Some(Place::Equal(None, "id".into()))
        );
        assert_eq!(
            place("SELECT a FROM post WHERE views BETWEEN ?1 AND ?2", 2),
            Some(Place::Range(None, "views".into()))
        );
        assert_eq!(
            place("UPDATE post SET views = ?1, title = ?2 WHERE id = ?3", 2),
            Some(Place::Write(None, "title".into()))
        );
        assert_eq!(
            place("UPDATE post SET views = views + 1 WHERE id = ?1", 1),
            Some(Place::Equal(None, "id".into()))
        );
        assert_eq!(
            place(
                "INSERT INTO comment (post_id, author, body, created) VALUES (?1, ?2, ?3, datetime('now'))",
                3
            ),
            Some(w("comment", "body"))
        );
        assert_eq!(
            place("INSERT INTO t (a, b) VALUES (?1, ?2), (?3, ?4)", 4),
            Some(w("t", "b"))
        );
        // No evidence: an expression, a pattern.
        assert_eq!(place("UPDATE post SET views = views + ?1 WHERE id = ?2", 1), None);
        assert_eq!(place("SELECT a FROM post WHERE title LIKE ?1", 1), None);
        assert_eq!(place("INSERT INTO t (a) VALUES (lower(?1))", 1), None);
        // Bare `?` count by position.
        assert_eq!(
            place("SELECT a FROM t WHERE a = ? AND b = ?", 2),
            Some(Place::Equal(None, "b".into()))
        );
    }

    fn copy(sql: &str) -> (tempfile::TempDir, Copy) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        Connection::open(&path).unwrap().execute_batch(sql).unwrap();
        let info = super::super::schema::read_db(&path).unwrap();
        let c = Copy::open(&info).unwrap();
        (dir, c)
    }

    #[test]
    fn draws_come_from_the_copy_by_mechanism() {
        let (_d, db) = copy(
            "CREATE TABLE post (id INTEGER PRIMARY KEY, title TEXT, views INTEGER);
             CREATE TABLE comment (id INTEGER PRIMARY KEY, post_id INTEGER, author TEXT, body TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
             INSERT INTO post SELECT i, 'Post ' || i, i * 7 FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 120)
             INSERT INTO comment SELECT i, (i % 3) * 10 + 1, 'author' || (i % 2), printf('%.*c', 20 + i % 30, 'x') FROM n;",
        );
        // A dense integer key: its range.
        let (g, why) = db.draw("SELECT title FROM post WHERE id = ?1", 1).unwrap();
        assert_eq!(g, "uniform(1, 40)");
        assert!(why.contains("post.id") && why.contains("1–40"), "{why}");
        // Sparse integers: a sample of the copy's values, nothing else.
        let (g, _) = db
            .draw("SELECT c.body FROM comment AS c WHERE c.post_id IN (?1, ?2)", 2)
            .unwrap();
        let inner = g.strip_prefix("choice(").and_then(|s| s.strip_suffix(')')).unwrap();
        let vals: std::collections::BTreeSet<&str> = inner.split(", ").collect();
        assert_eq!(vals, ["1", "11", "21"].into_iter().collect(), "{g}");
        // A sparse range compared: sampled values too (views are 7, 14, ...).
        let (g, _) = db.draw("SELECT id FROM post WHERE views > ?1", 1).unwrap();
        assert!(g.starts_with("choice(7, 14, "), "{g}");
        // Written: the populate fit of the column (text lengths, shares).
        let (g, why) = db
            .draw("INSERT INTO comment (post_id, author, body) VALUES (?1, ?2, ?3)", 3)
            .unwrap();
        assert!(g.starts_with("text_lengths(") || g.starts_with("text("), "{g}");
        assert!(why.contains("comment.body"), "{why}");
        let (g, _) = db
            .draw("INSERT INTO comment (post_id, author, body) VALUES (?1, ?2, ?3)", 2)
            .unwrap();
        assert!(g.contains("'author0'") && g.contains("'author1'"), "{g}");
        // An OFFSET: within the table.
        assert_eq!(
            db.draw("SELECT id FROM post ORDER BY id LIMIT 10 OFFSET ?1", 1)
                .unwrap()
                .0,
            "uniform(0, 39)"
        );
        // No evidence: said, not invented.
        for (sql, n, why) in [
            ("SELECT id FROM post LIMIT ?1", 1, "LIMIT"),
            ("UPDATE post SET views = views + ?1 WHERE id = ?2", 1, "not compared"),
            // The rowid: SQLite numbers it; a drawn one would repeat a row.
            (
                "INSERT INTO post (id, title) VALUES (?1, ?2)",
                1,
                "post.id has no fitted values",
            ),
            (
                "SELECT p.id FROM post p JOIN comment c ON c.post_id = p.id WHERE id = ?1",
                1,
                "several tables",
            ),
            ("SELECT id FROM post WHERE nope = ?1", 1, "no table"),
        ] {
            let e = db.draw(sql, n).unwrap_err();
            assert!(e.contains(why), "{sql}: {e}");
        }
    }

    #[test]
    fn model_replaces_only_fill_ins_with_evidence_and_rewrites_their_comments() {
        use super::super::scenario::{ScriptOut, StepOut};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE post (id INTEGER PRIMARY KEY, views INTEGER);
                 INSERT INTO post VALUES (1, 0), (2, 0), (3, 5);",
            )
            .unwrap();
        let info = super::super::schema::read_db(&path).unwrap();
        let fill = |n: usize| {
            toml::Value::String(format!(
                "fill_in('parameter ?{n} of step 0: the trace has no value for it')"
            ))
        };
        let mut groups = vec![GroupOut {
            scripts: vec![ScriptOut {
                name: "view".into(),
                comments: vec![
                    "step 0 ?1: ?1 of step 0: no captured value; replace fill_in(...) with a generator".into(),
                    "step 0 ?2: ?2 of step 0: no captured value; replace fill_in(...) with a generator".into(),
                ],
                steps: vec![StepOut {
                    kind: StepKind::Sql {
                        sql: "SELECT views FROM post WHERE id = ?1 LIMIT ?2".into(),
                        params: vec![fill(1), fill(2)],
                    },
                    app_time: None,
                }],
                ..ScriptOut::default()
            }],
            ..GroupOut::default()
        }];
        let mut notes = vec![
            "view step 0: ?1 of step 0: no captured value; replace fill_in(...) with a generator".to_string(),
            "view step 0: ?2 of step 0: no captured value; replace fill_in(...) with a generator".to_string(),
        ];
        model(&info, &mut groups, &mut notes);
        let sc = &groups[0].scripts[0];
        let StepKind::Sql { params, .. } = &sc.steps[0].kind else {
            panic!()
        };
        assert_eq!(params[0].as_str(), Some("uniform(1, 3)"));
        assert!(missing(&params[1]).is_some(), "{params:?}");
        assert!(sc.comments[0].starts_with("step 0 ?1: modelled from --db: uniform(1, 3): compared with post.id"));
        assert!(sc.comments[1].contains("a LIMIT"), "{:?}", sc.comments);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("?2 of step 0"), "{notes:?}");
        assert!(
            notes[1].contains("1 sanitized parameter(s) modelled") && notes[1].contains("1 left"),
            "{notes:?}"
        );
    }
}
