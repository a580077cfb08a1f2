//! Redaction: every literal of a statement replaced by its type and length, the form a trace
//! captured with `--redact` carries (docs/trace-format.md). [`crate::lex`] reads the markers back
//! as [`Kind::Redacted`].

use crate::lex::{self, Kind};

/// Replaces every literal with its type and length: `'hello'` → `<text:5>` (characters of the
/// value, `''` counting as one), `X'0a0b'` → `<blob:2>` (bytes), `42` → `<int:2>` and `3.5` →
/// `<real:3>` (characters of the token). Identifiers (also `"quoted"`, `` `quoted` ``,
/// `[quoted]`), keywords, parameters (`?1`, `:name`, `@name`, `$name`) and comments are kept.
pub fn literals(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for t in lex::tokens(sql) {
        let text = t.text(sql);
        match t.kind {
            Kind::Str => push_marker(&mut out, "text", value_chars(text, t.complete)),
            Kind::Blob => push_marker(&mut out, "blob", value_chars(&text[1..], t.complete) / 2),
            Kind::Number => {
                let hex = text.starts_with("0x") || text.starts_with("0X");
                let real = !hex && text.contains(['.', 'e', 'E']);
                push_marker(&mut out, if real { "real" } else { "int" }, text.len());
            }
            _ => out.push_str(text),
        }
    }
    out
}

/// `<kind:len>`.
fn push_marker(out: &mut String, kind: &str, len: usize) {
    out.push('<');
    out.push_str(kind);
    out.push(':');
    out.push_str(&len.to_string());
    out.push('>');
}

/// The characters of a quoted literal's value (`'it''s'` → 4): `''` is one.
fn value_chars(quoted: &str, complete: bool) -> usize {
    let inner = &quoted[1..quoted.len() - usize::from(complete)];
    inner.chars().count() - inner.matches("''").count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_replaced() {
        assert_eq!(
            literals("SELECT * FROM t WHERE a = 'hello' AND b = 42 AND c = 3.5 AND d = X'0A0b'"),
            "SELECT * FROM t WHERE a = <text:5> AND b = <int:2> AND c = <real:3> AND d = <blob:2>"
        );
        assert_eq!(
            literals("VALUES('it''s', -7, 1e10, .5, 2.5E-3, 0x1F, x'')"),
            "VALUES(<text:4>, -<int:1>, <real:4>, <real:2>, <real:6>, <int:4>, <blob:0>)"
        );
        assert_eq!(literals("SELECT 'héllo'"), "SELECT <text:5>");
        assert_eq!(literals("SELECT ''"), "SELECT <text:0>");
        assert_eq!(literals("SELECT 'unterminated"), "SELECT <text:12>");
        assert_eq!(literals("SELECT 'it''"), "SELECT <text:3>");
        assert_eq!(literals("SELECT 0x1E, 1_000"), "SELECT <int:4>, <int:5>");
    }

    #[test]
    fn identifiers_params_and_comments_are_kept() {
        let s = r#"SELECT "col 'x' 1", `b``2`, [c 3], t1.x2, ?1, ?, :n1, @p2, $v3 FROM t9 -- 'c' 5
/* 'd' 6 */ WHERE y = ?"#;
        assert_eq!(literals(s), s);
        assert_eq!(literals("SELECT \"a\"\"b\" , 'x'"), "SELECT \"a\"\"b\" , <text:1>");
        assert_eq!(literals("CREATE TABLE x1(a INTEGER)"), "CREATE TABLE x1(a INTEGER)");
        assert_eq!(literals("SELECT NULL, TRUE"), "SELECT NULL, TRUE");
        // Already redacted text stays as it is.
        assert_eq!(literals("a = <int:3>"), "a = <int:3>");
    }

    #[test]
    fn expanded_sql_shapes() {
        // What sqlite3_expanded_sql produces for bound values.
        assert_eq!(
            literals("INSERT INTO t(a,b,c,d,e) VALUES(123456,'secret marker',NULL,x'deadbeef',1.25)"),
            "INSERT INTO t(a,b,c,d,e) VALUES(<int:6>,<text:13>,NULL,<blob:4>,<real:4>)"
        );
        assert_eq!(literals("SELECT 1e+20"), "SELECT <real:5>");
    }
}
