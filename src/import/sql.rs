//! SQL text as import needs it: tokens, literal values, and the normalized statement
//! (every bound parameter and DML literal replaced by `?N`, comments dropped, whitespace
//! collapsed), with the values that were there.

use litehammer_trace::lex::{self, Kind, Token};
use std::fmt;

/// A captured value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    /// A redacted literal: its type (`int`, `real`, `text`, `blob`) and length.
    Redacted(String, usize),
    /// A bound parameter whose value the trace does not show.
    Unknown,
}

impl Value {
    /// As a `replay(...)` argument: `NULL`, `42`, `1.5`, `'it''s'`, `x'0a'`.
    pub(crate) fn literal(&self) -> String {
        match self {
            Value::Null | Value::Redacted(..) | Value::Unknown => "NULL".into(),
            Value::Int(i) => i.to_string(),
            Value::Real(r) => {
                let s = r.to_string();
                if s.contains(['.', 'e', 'E', 'N', 'i']) {
                    s
                } else {
                    format!("{s}.0")
                }
            }
            Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
            Value::Blob(b) => {
                let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
                format!("x'{hex}'")
            }
        }
    }

    pub(crate) fn is_known(&self) -> bool {
        !matches!(self, Value::Redacted(..) | Value::Unknown)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.literal())
    }
}

/// The tokens of `sql` without whitespace (comments kept), from the shared lexer.
pub(crate) fn tokenize(sql: &str) -> Vec<Token> {
    lex::tokens(sql).filter(|t| t.kind != Kind::Space).collect()
}

fn value_of(text: &str, kind: Kind) -> Option<Value> {
    match kind {
        Kind::Number => {
            let text = text.replace('_', "");
            if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
                return i64::from_str_radix(hex, 16).ok().map(Value::Int);
            }
            text.parse::<i64>()
                .map(Value::Int)
                .or_else(|_| text.parse::<f64>().map(Value::Real))
                .ok()
        }
        Kind::Str => Some(Value::Text(
            text[1..text.len().saturating_sub(1).max(1)].replace("''", "'"),
        )),
        Kind::Blob => {
            let hex = &text.as_bytes()[2..text.len().saturating_sub(1).max(2)];
            hex.chunks_exact(2)
                .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
                .collect::<Option<Vec<u8>>>()
                .map(Value::Blob)
        }
        Kind::Redacted => lex::marker(text).map(|(ty, len)| Value::Redacted(ty.to_string(), len)),
        Kind::Word if text.eq_ignore_ascii_case("null") => Some(Value::Null),
        _ => None,
    }
}

/// What a statement does, from its first keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verb {
    Select,
    Insert,
    Update,
    Delete,
    Begin,
    Commit,
    Rollback,
    Pragma,
    Create,
    Other,
}

impl Verb {
    pub(crate) fn of(sql: &str) -> Self {
        let toks = tokenize(sql);
        let first = toks
            .iter()
            .find(|t| t.kind != Kind::Comment)
            .map(|t| sql[t.start..t.end].to_ascii_uppercase());
        match first.as_deref() {
            Some("SELECT" | "WITH" | "VALUES") => Verb::Select,
            Some("INSERT" | "REPLACE") => Verb::Insert,
            Some("UPDATE") => Verb::Update,
            Some("DELETE") => Verb::Delete,
            Some("BEGIN") => Verb::Begin,
            Some("COMMIT" | "END") => Verb::Commit,
            Some("ROLLBACK") if !sql.to_ascii_uppercase().contains(" TO ") => Verb::Rollback,
            Some("PRAGMA") => Verb::Pragma,
            Some("CREATE" | "ALTER") => Verb::Create,
            _ => Verb::Other,
        }
    }

    fn parameterizes_literals(self) -> bool {
        matches!(self, Verb::Select | Verb::Insert | Verb::Update | Verb::Delete)
    }
}

/// A statement with its parameters pulled out.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Normalized {
    /// The statement with `?1`, `?2` … in place of every parameter and DML literal.
    pub text: String,
    pub values: Vec<Value>,
}

/// Normalizes one execution: `sql` as written (placeholders kept) and `expanded` (values in).
pub(crate) fn normalize(sql: &str, expanded: &str) -> Normalized {
    let mut n = align(sql, expanded).unwrap_or_else(|| {
        align(expanded, expanded).unwrap_or_else(|| Normalized {
            text: collapse(expanded),
            values: Vec::new(),
        })
    });
    if let Some(text) = savepoint_unnamed(&n.text) {
        n.text = text;
    }
    n
}

/// The name every savepoint gets in a scenario.
pub(crate) const SAVEPOINT_NAME: &str = "\"sp\"";

/// `SAVEPOINT name`, `RELEASE [SAVEPOINT] name` and `ROLLBACK [TRANSACTION] TO [SAVEPOINT] name`
/// with the name replaced by `"sp"`: apps name savepoints per thread and call (Django's
/// `"s140626359334848_x4"`), which would make every request a kind of its own. Nesting is
/// kept: SQLite releases or rolls back to the innermost savepoint of a name, which is the one
/// properly nested code (an `atomic` block) means. None for other statements.
fn savepoint_unnamed(text: &str) -> Option<String> {
    let toks: Vec<Token> = tokenize(text)
        .into_iter()
        .filter(|t| !matches!(t.kind, Kind::Comment | Kind::Space))
        .collect();
    let word = |t: &Token| text[t.start..t.end].to_ascii_uppercase();
    let first = word(toks.first()?);
    let named = match first.as_str() {
        "SAVEPOINT" | "RELEASE" => true,
        "ROLLBACK" => toks.iter().any(|t| word(t) == "TO"),
        _ => false,
    };
    let last = toks
        .iter()
        .rev()
        .find(|t| !(t.kind == Kind::Punct && &text[t.start..t.end] == ";"))?;
    if !named || toks.len() < 2 || !matches!(last.kind, Kind::Word | Kind::QuotedIdent | Kind::Str) {
        return None;
    }
    Some(format!("{}{SAVEPOINT_NAME}{}", &text[..last.start], &text[last.end..]))
}

fn align(sql: &str, expanded: &str) -> Option<Normalized> {
    let verb = Verb::of(sql);
    let st: Vec<Token> = tokenize(sql).into_iter().filter(|t| t.kind != Kind::Comment).collect();
    let et: Vec<Token> = tokenize(expanded)
        .into_iter()
        .filter(|t| t.kind != Kind::Comment)
        .collect();
    let same_text = sql == expanded;
    // An app that binds parameters writes its literals as part of the statement's shape; one
    // that builds SQL text has its values as literals.
    let binds = st.iter().any(|t| t.kind == Kind::Param);
    let (mut j, mut values, mut out) = (0usize, Vec::new(), String::new());
    let mut in_by = false;
    let mut prev_end: Option<usize> = None;
    for (i, t) in st.iter().enumerate() {
        let text = &sql[t.start..t.end];
        if prev_end.is_some_and(|p| p < t.start) {
            out.push(' ');
        }
        prev_end = Some(t.end);
        let upper = text.to_ascii_uppercase();
        if t.kind == Kind::Word {
            if upper == "BY"
                && i > 0
                && matches!(
                    sql[st[i - 1].start..st[i - 1].end].to_ascii_uppercase().as_str(),
                    "ORDER" | "GROUP"
                )
            {
                in_by = true;
            } else if in_by
                && matches!(
                    upper.as_str(),
                    "LIMIT" | "HAVING" | "WINDOW" | "UNION" | "EXCEPT" | "INTERSECT" | "WHERE" | "FROM"
                )
            {
                in_by = false;
            }
        }
        if t.kind == Kind::Punct && text == ")" {
            in_by = false;
        }
        if t.kind == Kind::Param {
            let value = if same_text {
                Value::Unknown
            } else {
                let (v, next) = take_value(expanded, &et, j)?;
                j = next;
                v
            };
            values.push(value);
            out.push_str(&format!("?{}", values.len()));
            continue;
        }
        // Tokens other than parameters are the same in both texts.
        if !same_text {
            let e = et.get(j)?;
            if &expanded[e.start..e.end] != text {
                return None;
            }
            j += 1;
        }
        let literal = matches!(t.kind, Kind::Number | Kind::Str | Kind::Blob | Kind::Redacted);
        let shape = binds && t.kind != Kind::Redacted;
        if literal && verb.parameterizes_literals() && !shape && !(in_by && t.kind == Kind::Number) {
            values.push(value_of(text, t.kind)?);
            out.push_str(&format!("?{}", values.len()));
        } else {
            out.push_str(text);
        }
    }
    if !same_text && j != et.len() {
        return None;
    }
    Some(Normalized { text: out, values })
}

/// One value from the expanded tokens at `j`: `NULL`, a number (with a leading `-`), a
/// string, a blob or a redaction marker.
fn take_value(expanded: &str, et: &[Token], j: usize) -> Option<(Value, usize)> {
    let t = et.get(j)?;
    let text = &expanded[t.start..t.end];
    if t.kind == Kind::Punct && text == "-" {
        let n = et.get(j + 1)?;
        if n.start == t.end && matches!(n.kind, Kind::Number | Kind::Redacted) {
            let v = value_of(&expanded[n.start..n.end], n.kind)?;
            let v = match v {
                Value::Int(i) => Value::Int(-i),
                Value::Real(r) => Value::Real(-r),
                other => other,
            };
            return Some((v, j + 2));
        }
        return None;
    }
    value_of(text, t.kind).map(|v| (v, j + 1))
}

/// Whitespace runs become one space; comments go.
pub(crate) fn collapse(sql: &str) -> String {
    let mut out = String::new();
    let mut prev: Option<usize> = None;
    for t in tokenize(sql).into_iter().filter(|t| t.kind != Kind::Comment) {
        if prev.is_some_and(|p| p < t.start) {
            out.push(' ');
        }
        out.push_str(&sql[t.start..t.end]);
        prev = Some(t.end);
    }
    out
}

/// The words of a statement (upper-cased keywords and bare names), for light parsing.
pub(crate) fn words(sql: &str) -> Vec<String> {
    tokenize(sql)
        .into_iter()
        .filter(|t| matches!(t.kind, Kind::Word | Kind::QuotedIdent | Kind::Punct | Kind::Param))
        .map(|t| sql[t.start..t.end].to_string())
        .collect()
}

/// The table a DML statement reads or writes first (for naming), unquoted.
pub(crate) fn main_table(sql: &str) -> Option<String> {
    let w = words(sql);
    let up: Vec<String> = w.iter().map(|s| s.to_ascii_uppercase()).collect();
    let after = |kw: &str| up.iter().position(|u| u == kw).and_then(|i| w.get(i + 1));
    let name = match Verb::of(sql) {
        Verb::Insert => after("INTO"),
        Verb::Update => {
            up.iter()
                .position(|u| u == "UPDATE")
                .and_then(|i| {
                    w[i + 1..].iter().zip(&up[i + 1..]).find(|(_, u)| {
                        !matches!(u.as_str(), "OR" | "ROLLBACK" | "ABORT" | "REPLACE" | "FAIL" | "IGNORE")
                    })
                })
                .map(|(n, _)| n)
        }
        Verb::Select | Verb::Delete => after("FROM"),
        _ => None,
    }?;
    Some(unquote(name))
}

pub(crate) fn unquote(name: &str) -> String {
    name.trim_matches(['"', '`', '[', ']']).to_string()
}

/// The suffixes SQLite's own virtual table modules give their shadow tables: FTS5 (`data`,
/// `idx`, `content`, `docsize`, `config`), FTS3/4 (`content`, `segments`, `segdir`, `docsize`,
/// `stat`), R*Tree (`node`, `parent`, `rowid`).
pub(crate) const SHADOW_SUFFIXES: [&str; 11] = [
    "data", "idx", "content", "docsize", "config", "segments", "segdir", "stat", "node", "parent", "rowid",
];

/// `CREATE VIRTUAL TABLE [IF NOT EXISTS] [schema.]name USING module`: the name, unquoted.
pub(crate) fn virtual_table_name(sql: &str) -> Option<String> {
    let w = words(sql);
    let up: Vec<String> = w.iter().map(|x| x.to_ascii_uppercase()).collect();
    if up.first()? != "CREATE" || up.get(1)? != "VIRTUAL" {
        return None;
    }
    let using = up.iter().position(|x| x == "USING")?;
    Some(unquote(w.get(using.checked_sub(1)?)?))
}

/// Whether `name` is a shadow table of one of the virtual tables `vtabs` (lower case).
pub(crate) fn is_shadow_of(name: &str, vtabs: &[String]) -> bool {
    let name = name.to_ascii_lowercase();
    vtabs.iter().any(|v| {
        name.strip_prefix(v.as_str())
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|suffix| SHADOW_SUFFIXES.contains(&suffix))
    })
}

/// A statement SQLite ran on its own, not the app: a trigger program (`-- TRIGGER name`), or a
/// statement on a virtual table's shadow tables (FTS5 writes `'main'.'t_data'`; FTS3 and
/// R*Tree `"main"."t_node"`): those of the known virtual tables `vtabs` (lower case), or any
/// schema-qualified name with a shadow suffix.
pub(crate) fn is_internal(sql: &str, vtabs: &[String]) -> bool {
    let toks = tokenize(sql);
    if toks
        .first()
        .is_some_and(|t| t.kind == Kind::Comment && sql[t.start..].starts_with("--"))
        && toks.len() == 1
    {
        return true;
    }
    let name = |t: &Token| -> Option<String> {
        matches!(t.kind, Kind::Word | Kind::QuotedIdent | Kind::Str).then(|| {
            let text = &sql[t.start..t.end];
            text.trim_matches(['"', '`', '[', ']', '\'']).to_ascii_lowercase()
        })
    };
    for (i, t) in toks.iter().enumerate() {
        let Some(n) = name(t) else { continue };
        if is_shadow_of(&n, vtabs) {
            return true;
        }
        // `'main'.'x_data'`: a quoted schema before a dot, then a shadow-suffixed name.
        let quoted_schema = matches!(t.kind, Kind::QuotedIdent | Kind::Str) && matches!(n.as_str(), "main" | "temp");
        if quoted_schema
            && toks.get(i + 1).is_some_and(|d| &sql[d.start..d.end] == ".")
            && let Some(next) = toks.get(i + 2).and_then(name)
            && next
                .rsplit_once('_')
                .is_some_and(|(_, suffix)| SHADOW_SUFFIXES.contains(&suffix))
        {
            return true;
        }
    }
    false
}

/// An in-memory or temporary database: `:memory:`, `""`, `file::memory:`, `mode=memory`.
pub(crate) fn is_scratch_database(file: Option<&str>) -> bool {
    match file {
        None => false,
        Some(f) => f.is_empty() || f == ":memory:" || f.starts_with("file::memory:") || f.contains("mode=memory"),
    }
}

/// The words of `INSERT INTO t (a, b) VALUES …`: the table, its columns, and the words from
/// `VALUES` on (None unless the columns are named and `VALUES` follows them).
fn insert_head(w: &[String]) -> Option<(String, Vec<String>, &[String])> {
    let into = w.iter().position(|x| x.eq_ignore_ascii_case("into"))?;
    let table = unquote(w.get(into + 1)?);
    if w.get(into + 2)? != "(" {
        return None;
    }
    let close = into + 2 + w[into + 2..].iter().position(|x| x == ")")?;
    let columns: Vec<String> = w[into + 3..close]
        .iter()
        .filter(|x| *x != ",")
        .map(|c| unquote(c))
        .collect();
    let rest = &w[close + 1..];
    rest.first()?
        .eq_ignore_ascii_case("values")
        .then_some((table, columns, rest))
}

/// `INSERT INTO t (a, b) VALUES (?1, ?2)`: the table and columns, when every value is a parameter.
pub(crate) fn insert_columns(text: &str) -> Option<(String, Vec<String>)> {
    let w = words(text);
    let (table, columns, rest) = insert_head(&w)?;
    let params = rest.iter().filter(|x| x.starts_with('?')).count();
    (params == columns.len() && rest.iter().filter(|x| *x == ")").count() == 1).then_some((table, columns))
}

/// `INSERT INTO t (a, b) VALUES (?1, ?2), (?3, ?4)`: the table, its columns and the number of
/// rows, when every value of every row is a parameter (a bulk insert: Django's `bulk_create`,
/// a fixture loader); the parameters go row by row. One row is [`insert_columns`]'s.
pub(crate) fn insert_rows(text: &str) -> Option<(String, Vec<String>, usize)> {
    if let Some((table, columns)) = insert_columns(text) {
        return Some((table, columns, 1));
    }
    let w = words(text);
    let (table, columns, rest) = insert_head(&w)?;
    if columns.is_empty() {
        return None;
    }
    let (mut i, mut rows) = (1, 0);
    loop {
        if rest.get(i)? != "(" {
            return None;
        }
        i += 1;
        for k in 0..columns.len() {
            if k > 0 {
                if rest.get(i)? != "," {
                    return None;
                }
                i += 1;
            }
            if !rest.get(i)?.starts_with('?') {
                return None;
            }
            i += 1;
        }
        if rest.get(i)? != ")" {
            return None;
        }
        i += 1;
        rows += 1;
        match rest.get(i).map(String::as_str) {
            Some(",") => i += 1,
            None | Some(";") => break,
            // RETURNING, ON CONFLICT: no parameter after the rows.
            Some(_) if !rest[i..].iter().any(|x| x.starts_with('?') || x == "(") => break,
            Some(_) => return None,
        }
    }
    Some((table, columns, rows))
}

/// `PRAGMA name = value` or `PRAGMA name(value)`: the name (lower case) and value, when set.
pub(crate) fn pragma_assignment(sql: &str) -> Option<(String, String)> {
    let w = words(sql);
    if !w.first()?.eq_ignore_ascii_case("pragma") {
        return None;
    }
    let mut rest = &w[1..];
    if rest.len() >= 2 && rest[1] == "." {
        rest = &rest[2..];
    }
    let name = rest.first()?.to_ascii_lowercase();
    let toks = tokenize(sql);
    // The value: everything after `=` or inside the parentheses.
    let text: String = match toks.iter().position(|t| matches!(&sql[t.start..t.end], "=" | "(")) {
        Some(p) => toks[p + 1..]
            .iter()
            .filter(|t| &sql[t.start..t.end] != ")" && t.kind != Kind::Comment)
            .map(|t| sql[t.start..t.end].to_string())
            .collect(),
        None => return None,
    };
    // Quoted as a string, an identifier or a name (Trac writes `PRAGMA journal_mode = `WAL``).
    let value = text.trim_matches(['\'', '"', '`', '[', ']']).to_ascii_lowercase();
    (!value.is_empty()).then_some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// #28: Django names savepoints per thread and call; they normalize to one name, so the
    /// requests of one endpoint stay one kind.
    #[test]
    fn savepoint_names_are_unified() {
        for (sql, want) in [
            (r#"SAVEPOINT "s140626359334848_x4""#, r#"SAVEPOINT "sp""#),
            (r#"RELEASE SAVEPOINT "s1_x4""#, r#"RELEASE SAVEPOINT "sp""#),
            ("ROLLBACK TO SAVEPOINT s1_x9", r#"ROLLBACK TO SAVEPOINT "sp""#),
            ("rollback transaction to x;", r#"rollback transaction to "sp";"#),
        ] {
            assert_eq!(normalize(sql, sql).text, want, "{sql}");
        }
        assert_eq!(normalize("ROLLBACK", "ROLLBACK").text, "ROLLBACK");
        assert_eq!(Verb::of(r#"ROLLBACK TO SAVEPOINT "sp""#), Verb::Other);
    }

    #[test]
    fn sqlite_internal_statements_and_virtual_tables() {
        let vt = vec!["page_fts".to_string()];
        assert_eq!(
            virtual_table_name("CREATE VIRTUAL TABLE IF NOT EXISTS \"page_fts\" USING fts5(title, body)").as_deref(),
            Some("page_fts")
        );
        assert_eq!(virtual_table_name("CREATE TABLE t(a)"), None);
        assert!(is_internal(
            "SELECT pgno FROM 'main'.'page_fts_idx' WHERE segid=? AND term<=?",
            &vt
        ));
        assert!(is_internal(
            "REPLACE INTO 'main'.'other_data'(id, block) VALUES(?,?)",
            &[]
        ));
        assert!(is_internal(
            "SELECT data FROM \"main\".\"geo_node\" WHERE nodeno = ?1",
            &[]
        ));
        assert!(is_internal("-- TRIGGER page_ai", &vt));
        assert!(!is_internal("SELECT * FROM page_fts WHERE page_fts MATCH ?", &vt));
        assert!(!is_internal("SELECT id FROM user_data WHERE id = ?", &vt));
        assert!(!is_internal("SELECT 1 -- a comment", &vt));
        assert!(is_scratch_database(Some(":memory:")));
        assert!(is_scratch_database(Some("")));
        assert!(!is_scratch_database(Some("/srv/app.db")));
    }

    #[test]
    fn aligns_bound_parameters_and_literals() {
        let n = normalize(
            "SELECT id, body FROM c WHERE post_id = ? AND x > -? AND t = :t LIMIT 10",
            "SELECT id, body FROM c WHERE post_id = 42 AND x > -1.5 AND t = 'it''s' LIMIT 10",
        );
        assert_eq!(
            n.text,
            "SELECT id, body FROM c WHERE post_id = ?1 AND x > -?2 AND t = ?3 LIMIT 10"
        );
        assert_eq!(
            n.values,
            vec![Value::Int(42), Value::Real(1.5), Value::Text("it's".into())]
        );
        let n = normalize("insert into t values(?, ?)", "insert into t values(-3, NULL)");
        assert_eq!(n.text, "insert into t values(?1, ?2)");
        assert_eq!(n.values, vec![Value::Int(-3), Value::Null]);
    }

    #[test]
    fn literal_sql_order_by_ddl_and_redaction() {
        let n = normalize(
            "SELECT a FROM t WHERE b = 'x' ORDER BY 1, 2 LIMIT 5",
            "SELECT a FROM t WHERE b = 'x' ORDER BY 1, 2 LIMIT 5",
        );
        assert_eq!(n.text, "SELECT a FROM t WHERE b = ?1 ORDER BY 1, 2 LIMIT ?2");
        assert_eq!(n.values, vec![Value::Text("x".into()), Value::Int(5)]);
        let ddl = "CREATE TABLE t(a INTEGER DEFAULT 0)";
        assert_eq!(normalize(ddl, ddl).values, vec![]);
        let n = normalize(
            "UPDATE t SET a = ? WHERE id = ?",
            "UPDATE t SET a = <text:5> WHERE id = <int:2>",
        );
        assert_eq!(
            n.values,
            vec![Value::Redacted("text".into(), 5), Value::Redacted("int".into(), 2)]
        );
        let n = normalize("SELECT * FROM t WHERE id = ?1", "SELECT * FROM t WHERE id = ?1");
        assert_eq!(n.values, vec![Value::Unknown]);
        let n = normalize("SELECT x'0aff' /* c */  ,  1", "SELECT x'0aff' /* c */  ,  1");
        assert_eq!(n.text, "SELECT ?1 , ?2");
        assert_eq!(n.values, vec![Value::Blob(vec![10, 255]), Value::Int(1)]);
        // Lexed as SQLite does: `a$b` is a name, `#n` and `$a::b` are parameters, `1_000` a number.
        let n = normalize(
            "SELECT a$b FROM t WHERE x = #n AND y = $a::b AND z > 1_000",
            "SELECT a$b FROM t WHERE x = 'p' AND y = 2 AND z > 1_000",
        );
        assert_eq!(n.text, "SELECT a$b FROM t WHERE x = ?1 AND y = ?2 AND z > 1_000");
        assert_eq!(n.values, vec![Value::Text("p".into()), Value::Int(2)]);
        let n = normalize("SELECT * FROM t WHERE z > 1_000", "SELECT * FROM t WHERE z > 1_000");
        assert_eq!(n.values, vec![Value::Int(1000)]);
    }

    #[test]
    fn verbs_tables_and_pragmas() {
        assert_eq!(Verb::of("  begin immediate"), Verb::Begin);
        assert_eq!(Verb::of("END"), Verb::Commit);
        assert_eq!(Verb::of("ROLLBACK TO sp"), Verb::Other);
        assert_eq!(main_table("SELECT a FROM \"post\" WHERE x").as_deref(), Some("post"));
        assert_eq!(
            main_table("INSERT OR IGNORE INTO kv(k) VALUES(1)").as_deref(),
            Some("kv")
        );
        assert_eq!(main_table("UPDATE OR REPLACE t SET a=1").as_deref(), Some("t"));
        assert_eq!(
            pragma_assignment("PRAGMA journal_mode=WAL"),
            Some(("journal_mode".into(), "wal".into()))
        );
        assert_eq!(
            pragma_assignment("pragma main.synchronous = 1"),
            Some(("synchronous".into(), "1".into()))
        );
        assert_eq!(
            pragma_assignment("PRAGMA busy_timeout(5000)"),
            Some(("busy_timeout".into(), "5000".into()))
        );
        assert_eq!(
            pragma_assignment("PRAGMA cache_size = -2000"),
            Some(("cache_size".into(), "-2000".into()))
        );
        assert_eq!(pragma_assignment("PRAGMA journal_mode"), None);
        // Trac quotes the value as an identifier.
        assert_eq!(
            pragma_assignment("PRAGMA journal_mode = `WAL`"),
            Some(("journal_mode".into(), "wal".into()))
        );
        assert_eq!(
            pragma_assignment("PRAGMA synchronous = [normal]"),
            Some(("synchronous".into(), "normal".into()))
        );
    }

    /// #28: a bulk insert's rows, when every value is a parameter; anything else is not one.
    #[test]
    fn insert_rows_reads_bulk_inserts() {
        let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            insert_rows("INSERT INTO site(id, name) VALUES (?1, ?2), (?3, ?4)"),
            Some(("site".into(), cols(&["id", "name"]), 2))
        );
        assert_eq!(
            insert_rows("INSERT INTO \"t\" (\"a\") VALUES (?), (?), (?) RETURNING \"a\""),
            Some(("t".into(), cols(&["a"]), 3))
        );
        assert_eq!(
            insert_rows("INSERT INTO t(a, b) VALUES (?, ?)"),
            Some(("t".into(), cols(&["a", "b"]), 1))
        );
        for not in [
            "INSERT INTO t(a, b) VALUES (?, ?), (?, 1)",
            "INSERT INTO t(a, b) VALUES (?, ?), (?)",
            "INSERT INTO t(a) VALUES (?), (lower(?))",
            "INSERT INTO t(a) SELECT ? UNION SELECT ?",
            "INSERT INTO t VALUES (?), (?)",
        ] {
            assert_eq!(insert_rows(not), None, "{not}");
        }
    }
}
