//! SQL text helpers: literal redaction and statement classification. A small tokenizer that
//! knows SQLite's lexical rules for strings, blobs, numbers, quoted identifiers, parameters and
//! comments.

/// Replaces every literal with its type and length: `'hello'` → `<text:5>` (characters of the
/// value, `''` counting as one), `X'0a0b'` → `<blob:2>` (bytes), `42` → `<int:2>` and `3.5` →
/// `<real:3>` (characters of the token). Identifiers (also `"quoted"`, `` `quoted` ``,
/// `[quoted]`), keywords, parameters (`?1`, `:name`, `@name`, `$name`) and comments are kept.
pub fn redact(sql: &str) -> String {
    let b = sql.as_bytes();
    let n = b.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let c = b[i];
        match c {
            b'\'' => {
                let (end, chars) = scan_quoted(b, i, b'\'');
                push_tag(&mut out, "text", chars);
                i = end;
            }
            b'x' | b'X' if b.get(i + 1) == Some(&b'\'') => {
                let (end, chars) = scan_quoted(b, i + 1, b'\'');
                push_tag(&mut out, "blob", chars / 2);
                i = end;
            }
            b'"' | b'`' => {
                let (end, _) = scan_quoted(b, i, c);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'[' => {
                let end = b[i..].iter().position(|&x| x == b']').map_or(n, |p| i + p + 1);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = b[i..].iter().position(|&x| x == b'\n').map_or(n, |p| i + p + 1);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(n, |p| i + 2 + p + 2);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            b'0'..=b'9' => {
                let (end, real) = scan_number(b, i);
                push_tag(&mut out, if real { "real" } else { "int" }, end - i);
                i = end;
            }
            b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (end, _) = scan_number(b, i);
                push_tag(&mut out, "real", end - i);
                i = end;
            }
            b'?' | b':' | b'@' | b'$' | b'#' => {
                let end = scan_ident(b, i + 1);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            _ if is_ident_start(c) => {
                let end = scan_ident(b, i + 1);
                out.extend_from_slice(&b[i..end]);
                i = end;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn push_tag(out: &mut Vec<u8>, kind: &str, len: usize) {
    out.push(b'<');
    out.extend_from_slice(kind.as_bytes());
    out.push(b':');
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b'>');
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn scan_ident(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ident_char(b[i]) {
        i += 1;
    }
    i
}

/// `b[start]` is the quote; a doubled quote is an escaped one. Returns the end (past the closing
/// quote, or the end of input when unterminated) and the number of characters in the value.
fn scan_quoted(b: &[u8], start: usize, q: u8) -> (usize, usize) {
    let mut i = start + 1;
    let mut chars = 0;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                chars += 1;
                i += 2;
                continue;
            }
            return (i + 1, chars);
        }
        if b[i] & 0xC0 != 0x80 {
            chars += 1;
        }
        i += 1;
    }
    (b.len(), chars)
}

/// A numeric literal at `i`: decimal with optional fraction/exponent, or `0x` hex; `_` digit
/// separators (SQLite 3.46+) are accepted. Returns the end and whether it is a real.
fn scan_number(b: &[u8], mut i: usize) -> (usize, bool) {
    let n = b.len();
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
        i += 2;
        while i < n && (b[i].is_ascii_hexdigit() || b[i] == b'_') {
            i += 1;
        }
        return (i, false);
    }
    let mut real = false;
    while i < n && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    if i < n && b[i] == b'.' {
        real = true;
        i += 1;
        while i < n && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    if i < n && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < n && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < n && b[j].is_ascii_digit() {
            real = true;
            i = j;
            while i < n && b[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    (i, real)
}

/// The token at `b[i]` as SQLite's tokenizer (`sqlite3GetToken`) sees it, for finding host
/// parameters: its end and whether it is a parameter (`?`, `?NNN`, `:name`, `@name`, `$name`,
/// `#name`, with Tcl's `$a::b` and `$a(x)` forms). Strings, blobs, quoted identifiers, comments,
/// numbers and identifiers (`a$b` is one) are skipped whole. `None` at the end.
pub fn next_token(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let n = b.len();
    let c = *b.get(i)?;
    let end = match c {
        b'\'' | b'"' | b'`' => scan_quoted(b, i, c).0,
        b'x' | b'X' if b.get(i + 1) == Some(&b'\'') => scan_quoted(b, i + 1, b'\'').0,
        b'[' => b[i..].iter().position(|&x| x == b']').map_or(n, |p| i + p + 1),
        b'-' if b.get(i + 1) == Some(&b'-') => b[i..].iter().position(|&x| x == b'\n').map_or(n, |p| i + p + 1),
        b'/' if b.get(i + 1) == Some(&b'*') => b[i + 2..]
            .windows(2)
            .position(|w| w == b"*/")
            .map_or(n, |p| i + 2 + p + 2),
        b'0'..=b'9' => scan_number(b, i).0,
        b'.' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => scan_number(b, i).0,
        b'?' => {
            let mut j = i + 1;
            while j < n && b[j].is_ascii_digit() {
                j += 1;
            }
            return Some((j, true));
        }
        b':' | b'@' | b'$' | b'#' => {
            let mut j = i + 1;
            let mut len = 0;
            while j < n {
                let d = b[j];
                if is_ident_char(d) {
                    len += 1;
                } else if d == b'(' && len > 0 {
                    j += 1;
                    while j < n && !b[j].is_ascii_whitespace() && b[j] != b')' {
                        j += 1;
                    }
                    if j < n && b[j] == b')' {
                        j += 1;
                    }
                    break;
                } else if d == b':' && b.get(j + 1) == Some(&b':') {
                    j += 1;
                } else {
                    break;
                }
                j += 1;
            }
            return Some(if len > 0 { (j, true) } else { (i + 1, false) });
        }
        _ if is_ident_start(c) => scan_ident(b, i + 1),
        _ => i + 1,
    };
    Some((end.max(i + 1), false))
}

/// Transaction-control statement kinds (the `txn` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Txn {
    Begin,
    Commit,
    Rollback,
    RollbackTo,
    Savepoint,
    Release,
}

impl Txn {
    pub fn as_str(self) -> &'static str {
        match self {
            Txn::Begin => "begin",
            Txn::Commit => "commit",
            Txn::Rollback => "rollback",
            Txn::RollbackTo => "rollback_to",
            Txn::Savepoint => "savepoint",
            Txn::Release => "release",
        }
    }
}

/// What the statement is, judged by its leading keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Class {
    pub txn: Option<Txn>,
    pub pragma: bool,
}

/// Classifies a statement by its first keyword(s), skipping leading whitespace and comments.
pub fn classify(sql: &str) -> Class {
    let b = sql.as_bytes();
    let (w1, i) = next_word(b, 0);
    let eq = |w: &[u8], k: &str| w.eq_ignore_ascii_case(k.as_bytes());
    let txn = if eq(w1, "BEGIN") {
        Some(Txn::Begin)
    } else if eq(w1, "COMMIT") || eq(w1, "END") {
        Some(Txn::Commit)
    } else if eq(w1, "ROLLBACK") {
        let (mut w2, j) = next_word(b, i);
        if eq(w2, "TRANSACTION") {
            w2 = next_word(b, j).0;
        }
        Some(if eq(w2, "TO") { Txn::RollbackTo } else { Txn::Rollback })
    } else if eq(w1, "SAVEPOINT") {
        Some(Txn::Savepoint)
    } else if eq(w1, "RELEASE") {
        Some(Txn::Release)
    } else {
        None
    };
    Class {
        txn,
        pragma: eq(w1, "PRAGMA"),
    }
}

/// The next bare word at or after `i`, skipping whitespace and comments (empty at anything else).
fn next_word(b: &[u8], mut i: usize) -> (&[u8], usize) {
    let n = b.len();
    loop {
        while i < n && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            i = b[i..].iter().position(|&x| x == b'\n').map_or(n, |p| i + p + 1);
        } else if b[i..].starts_with(b"/*") {
            i = b[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map_or(n, |p| i + 2 + p + 2);
        } else {
            break;
        }
    }
    let start = i;
    while i < n && b[i].is_ascii_alphabetic() {
        i += 1;
    }
    (&b[start..i], i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_replaced() {
        assert_eq!(
            redact("SELECT * FROM t WHERE a = 'hello' AND b = 42 AND c = 3.5 AND d = X'0A0b'"),
            "SELECT * FROM t WHERE a = <text:5> AND b = <int:2> AND c = <real:3> AND d = <blob:2>"
        );
        assert_eq!(
            redact("VALUES('it''s', -7, 1e10, .5, 2.5E-3, 0x1F, x'')"),
            "VALUES(<text:4>, -<int:1>, <real:4>, <real:2>, <real:6>, <int:4>, <blob:0>)"
        );
        assert_eq!(redact("SELECT 'héllo'"), "SELECT <text:5>");
        assert_eq!(redact("SELECT ''"), "SELECT <text:0>");
        assert_eq!(redact("SELECT 'unterminated"), "SELECT <text:12>");
    }

    #[test]
    fn identifiers_params_and_comments_are_kept() {
        let s = r#"SELECT "col 'x' 1", `b``2`, [c 3], t1.x2, ?1, ?, :n1, @p2, $v3 FROM t9 -- 'c' 5
/* 'd' 6 */ WHERE y = ?"#;
        assert_eq!(redact(s), s);
        assert_eq!(redact("SELECT \"a\"\"b\" , 'x'"), "SELECT \"a\"\"b\" , <text:1>");
        assert_eq!(redact("CREATE TABLE x1(a INTEGER)"), "CREATE TABLE x1(a INTEGER)");
        assert_eq!(redact("SELECT NULL, TRUE"), "SELECT NULL, TRUE");
    }

    #[test]
    fn expanded_sql_shapes() {
        // What sqlite3_expanded_sql produces for bound values.
        assert_eq!(
            redact("INSERT INTO t(a,b,c,d,e) VALUES(123456,'secret marker',NULL,x'deadbeef',1.25)"),
            "INSERT INTO t(a,b,c,d,e) VALUES(<int:6>,<text:13>,NULL,<blob:4>,<real:4>)"
        );
        assert_eq!(redact("SELECT 1e+20"), "SELECT <real:5>");
    }

    #[test]
    fn classification() {
        let c = |s| classify(s);
        assert_eq!(c("BEGIN IMMEDIATE").txn, Some(Txn::Begin));
        assert_eq!(c("  /* x */ -- y\n begin").txn, Some(Txn::Begin));
        assert_eq!(c("COMMIT").txn, Some(Txn::Commit));
        assert_eq!(c("end transaction").txn, Some(Txn::Commit));
        assert_eq!(c("ROLLBACK").txn, Some(Txn::Rollback));
        assert_eq!(c("ROLLBACK TO sp1").txn, Some(Txn::RollbackTo));
        assert_eq!(c("ROLLBACK TRANSACTION TO SAVEPOINT sp1").txn, Some(Txn::RollbackTo));
        assert_eq!(c("SAVEPOINT a").txn, Some(Txn::Savepoint));
        assert_eq!(c("RELEASE SAVEPOINT a").txn, Some(Txn::Release));
        assert_eq!(c("SELECT 'BEGIN'"), Class::default());
        assert_eq!(c("BEGINNING"), Class::default());
        assert!(c("pragma journal_mode=wal").pragma);
        assert_eq!(c(""), Class::default());
    }
}
