//! The `expanded` field without `sqlite3_expanded_sql`: a statement's text is split once into a
//! [`Template`] (JSON-escaped text between host parameters, and each parameter's index), and each
//! execution writes the template with the values the application bound (mirrored by the
//! interposed `sqlite3_bind_*`, see `bind.rs`) straight into the trace buffer.
//!
//! The result is byte for byte what `sqlite3_expanded_sql` prints (`NULL`, `%lld`, `%!.15g`
//! through the application's own `sqlite3_snprintf`, `'text'` with `''` for a quote and cut at
//! the first NUL, `x'hex'`, `zeroblob(N)`); the library checks that against SQLite once per
//! prepared statement and falls back to `sqlite3_expanded_sql` for a statement where it differs.

use crate::json;
use crate::sqltext;
use litehammer_trace::lex::{self, Kind};
use litehammer_trace::redact;

/// A value bound to a host parameter, as SQLite stores it.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Int(i64),
    /// Never NaN: `sqlite3_bind_double` stores NaN as NULL.
    Real(f64),
    Text(Vec<u8>),
    Blob(Vec<u8>),
    /// `sqlite3_bind_zeroblob`: that many zero bytes.
    Zero(i64),
}

impl Value {
    /// Sets `self` to a text or blob value, reusing the allocation already there.
    pub fn set_bytes(&mut self, blob: bool, bytes: &[u8]) {
        match self {
            Value::Text(v) if !blob => {
                v.clear();
                v.extend_from_slice(bytes);
            }
            Value::Blob(v) if blob => {
                v.clear();
                v.extend_from_slice(bytes);
            }
            _ if blob => *self = Value::Blob(bytes.to_vec()),
            _ => *self = Value::Text(bytes.to_vec()),
        }
    }
}

/// A statement's text, prepared for writing: everything that does not change between executions.
#[derive(Debug)]
pub struct Template {
    /// The raw text (`sqlite3_sql`), to recognise the statement again.
    pub raw: Vec<u8>,
    /// The `sql` field: a JSON string, quotes included (redacted when redacting).
    pub sql_json: Vec<u8>,
    /// `,"sql":SQL_JSON,"expanded":`, written in one piece.
    pub sql_field: Vec<u8>,
    /// The `expanded` field's pieces: JSON-escaped text (no quotes; redacted when redacting),
    /// then the 1-based index of the parameter that follows it (0 after the last piece).
    pub pieces: Vec<(Vec<u8>, u32)>,
    /// The same pieces unredacted (only kept when redacting: for the check against SQLite).
    pub plain_pieces: Option<Vec<(Vec<u8>, u32)>>,
    /// `sqlite3_bind_parameter_count`.
    pub nparams: u32,
    /// The parameters could all be mapped to an index (else: always `sqlite3_expanded_sql`).
    pub mapped: bool,
    /// The end of the line: `,"txn":…,"pragma":…}` and the newline.
    pub tail: Vec<u8>,
}

impl Template {
    /// Splits `raw` (the statement's text) at its host parameters. `param_index` is
    /// `sqlite3_bind_parameter_index` for a named parameter (its token, prefix included).
    pub fn new(raw: &[u8], nparams: u32, redact: bool, param_index: impl Fn(&[u8]) -> i32) -> Template {
        let text = String::from_utf8_lossy(raw);
        let class = sqltext::classify(&text);
        let mut sql_json = Vec::with_capacity(text.len() + 2);
        let shown = if redact {
            redact::literals(&text)
        } else {
            text.to_string()
        };
        json::escape(&mut sql_json, &shown);
        let mut tail = Vec::with_capacity(32);
        tail.extend_from_slice(b",\"txn\":");
        match class.txn {
            Some(t) => json::escape(&mut tail, t.as_str()),
            None => tail.extend_from_slice(b"null"),
        }
        tail.extend_from_slice(if class.pragma {
            b",\"pragma\":true}\n"
        } else {
            b",\"pragma\":false}\n"
        });

        let (split, mapped) = split_params(&text, nparams, param_index);
        let escaped = |redacted: bool| -> Vec<(Vec<u8>, u32)> {
            split
                .iter()
                .map(|(piece, idx)| {
                    let piece = &text[piece.clone()];
                    let mut out = Vec::with_capacity(piece.len());
                    if redacted {
                        json::escape_inner(&mut out, &redact::literals(piece));
                    } else {
                        json::escape_inner(&mut out, piece);
                    }
                    (out, *idx)
                })
                .collect()
        };
        let mut sql_field = Vec::with_capacity(sql_json.len() + 20);
        sql_field.extend_from_slice(b",\"sql\":");
        sql_field.extend_from_slice(&sql_json);
        sql_field.extend_from_slice(b",\"expanded\":");
        Template {
            raw: raw.to_vec(),
            sql_json,
            sql_field,
            pieces: escaped(redact),
            plain_pieces: redact.then(|| escaped(false)),
            nparams,
            mapped,
            tail,
        }
    }
}

/// The text before each host parameter (byte ranges of `sql`) and the parameter's 1-based index,
/// numbered as `sqlite3_expanded_sql` does (`?` takes the next index after the highest so far,
/// `?NNN` is NNN, a named one is looked up); the last range is followed by 0. The flag is false
/// when some index is outside `1..=nparams`.
fn split_params(
    sql: &str,
    nparams: u32,
    param_index: impl Fn(&[u8]) -> i32,
) -> (Vec<(std::ops::Range<usize>, u32)>, bool) {
    let mut out = Vec::new();
    let mut mapped = true;
    let mut next_index: i64 = 1;
    let n = sql.len();
    if nparams == 0 {
        return (vec![(0..n, 0)], true);
    }
    let mut start = 0;
    for t in lex::tokens(sql).filter(|t| t.kind == Kind::Param) {
        let tok = &sql.as_bytes()[t.start..t.end];
        let idx: i64 = if tok[0] == b'?' {
            if tok.len() > 1 {
                sql[t.start + 1..t.end].parse().unwrap_or(0)
            } else {
                next_index
            }
        } else {
            i64::from(param_index(tok))
        };
        if idx < 1 || idx > i64::from(nparams) {
            mapped = false;
        }
        next_index = next_index.max(idx + 1);
        out.push((start..t.start, idx.clamp(0, i64::from(u32::MAX)) as u32));
        start = t.end;
    }
    out.push((start..n, 0));
    (out, mapped)
}

/// Writes the `expanded` value (without its quotes) from `pieces` and the bound `values`
/// (a missing value is NULL). `fmt_real` appends what `sqlite3_snprintf("%!.15g")` prints.
pub fn write_expanded(
    out: &mut Vec<u8>,
    pieces: &[(Vec<u8>, u32)],
    values: &[Value],
    redact: bool,
    fmt_real: &dyn Fn(f64, &mut Vec<u8>),
) {
    for (text, idx) in pieces {
        out.extend_from_slice(text);
        if *idx == 0 {
            continue;
        }
        let v = values.get(*idx as usize - 1).unwrap_or(&Value::Null);
        write_literal(out, v, redact, fmt_real);
    }
}

/// One value as an SQL literal, JSON-escaped (or its `<type:length>` tag when redacting, as
/// `redact::literals` would turn the literal).
fn write_literal(out: &mut Vec<u8>, v: &Value, redact: bool, fmt_real: &dyn Fn(f64, &mut Vec<u8>)) {
    match v {
        Value::Null => out.extend_from_slice(b"NULL"),
        Value::Int(i) if redact => {
            if *i < 0 {
                out.push(b'-');
            }
            push_tag(out, "int", decimal_len(i.unsigned_abs()));
        }
        Value::Int(i) => json::push_int(out, *i),
        Value::Real(r) => {
            let mut lit = Vec::with_capacity(24);
            fmt_real(*r, &mut lit);
            let lit = String::from_utf8_lossy(&lit);
            if redact {
                json::escape_inner(out, &redact::literals(&lit));
            } else {
                json::escape_inner(out, &lit);
            }
        }
        Value::Text(bytes) => {
            // `%.*q` stops at the first NUL; the trace text is lossy UTF-8.
            let bytes = bytes.iter().position(|&b| b == 0).map_or(&bytes[..], |p| &bytes[..p]);
            let text = String::from_utf8_lossy(bytes);
            if redact {
                push_tag(out, "text", text.chars().count());
                return;
            }
            out.push(b'\'');
            let mut first = true;
            for part in text.split('\'') {
                if !first {
                    out.extend_from_slice(b"''");
                }
                first = false;
                json::escape_inner(out, part);
            }
            out.push(b'\'');
        }
        Value::Blob(bytes) if redact => push_tag(out, "blob", bytes.len()),
        Value::Blob(bytes) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.reserve(bytes.len() * 2 + 3);
            out.extend_from_slice(b"x'");
            for &b in bytes {
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            out.push(b'\'');
        }
        Value::Zero(n) => {
            // SQLite prints it with %d (its count is an int).
            let n = i64::from(*n as i32);
            out.extend_from_slice(b"zeroblob(");
            if redact {
                if n < 0 {
                    out.push(b'-');
                }
                push_tag(out, "int", decimal_len(n.unsigned_abs()));
            } else {
                json::push_int(out, n);
            }
            out.push(b')');
        }
    }
}

fn push_tag(out: &mut Vec<u8>, kind: &str, len: usize) {
    out.push(b'<');
    out.extend_from_slice(kind.as_bytes());
    out.push(b':');
    json::push_int(out, len as i64);
    out.push(b'>');
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;
    use std::ffi::{CStr, CString, c_char, c_int};

    fn fmt_real(v: f64, out: &mut Vec<u8>) {
        let mut buf = [0 as c_char; 64];
        // SAFETY: a 64-byte buffer and a format taking one double.
        unsafe { ffi::sqlite3_snprintf(buf.len() as c_int, buf.as_mut_ptr(), c"%!.15g".as_ptr(), v) };
        // SAFETY: sqlite3_snprintf always NUL-terminates.
        out.extend_from_slice(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_bytes());
    }

    /// Prepares `sql` in a fresh in-memory database, binds `values` (1-based, in order) through
    /// the C API, and returns (sqlite3_expanded_sql JSON-escaped, ours, ours redacted,
    /// `redact::literals` of SQLite's).
    fn both(sql: &str, values: &[Value]) -> (String, String, String, String) {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t(a, b, c, d, e, f, g, h, a$b)")
            .unwrap();
        // SAFETY: plain C API use on a live connection; every pointer outlives its use.
        unsafe {
            let db = conn.handle();
            let mut stmt = std::ptr::null_mut();
            let c = CString::new(sql).unwrap();
            assert_eq!(
                ffi::sqlite3_prepare_v2(db, c.as_ptr(), -1, &mut stmt, std::ptr::null_mut()),
                0,
                "{sql}"
            );
            for (i, v) in values.iter().enumerate() {
                let i = i as c_int + 1;
                let rc = match v {
                    Value::Null => ffi::sqlite3_bind_null(stmt, i),
                    Value::Int(x) => ffi::sqlite3_bind_int64(stmt, i, *x),
                    Value::Real(x) => ffi::sqlite3_bind_double(stmt, i, *x),
                    Value::Text(b) => ffi::sqlite3_bind_text(
                        stmt,
                        i,
                        b.as_ptr() as *const c_char,
                        b.len() as c_int,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                    Value::Blob(b) => ffi::sqlite3_bind_blob(
                        stmt,
                        i,
                        b.as_ptr() as *const _,
                        b.len() as c_int,
                        ffi::SQLITE_TRANSIENT(),
                    ),
                    Value::Zero(n) => ffi::sqlite3_bind_zeroblob(stmt, i, *n as c_int),
                };
                assert_eq!(rc, 0, "bind {i}");
            }
            let nparams = ffi::sqlite3_bind_parameter_count(stmt) as u32;
            let raw = CStr::from_ptr(ffi::sqlite3_sql(stmt)).to_bytes().to_vec();
            let index = |tok: &[u8]| {
                let c = CString::new(tok).unwrap();
                ffi::sqlite3_bind_parameter_index(stmt, c.as_ptr())
            };
            let p = ffi::sqlite3_expanded_sql(stmt);
            let theirs = String::from_utf8_lossy(CStr::from_ptr(p).to_bytes()).into_owned();
            ffi::sqlite3_free(p as *mut _);
            ffi::sqlite3_finalize(stmt);

            let t = Template::new(&raw, nparams, false, index);
            assert!(t.mapped, "{sql}");
            let mut ours = Vec::new();
            write_expanded(&mut ours, &t.pieces, values, false, &fmt_real);
            let tr = Template::new(&raw, nparams, true, index);
            let mut red = Vec::new();
            write_expanded(&mut red, &tr.pieces, values, true, &fmt_real);
            let mut theirs_json = Vec::new();
            json::escape_inner(&mut theirs_json, &theirs);
            let mut their_red = Vec::new();
            json::escape_inner(&mut their_red, &redact::literals(&theirs));
            let s = |v: Vec<u8>| String::from_utf8(v).unwrap();
            (s(theirs_json), s(ours), s(red), s(their_red))
        }
    }

    fn same(sql: &str, values: &[Value]) {
        let (theirs, ours, red, their_red) = both(sql, values);
        assert_eq!(ours, theirs, "{sql} {values:?}");
        assert_eq!(red, their_red, "redacted: {sql} {values:?}");
    }

    #[test]
    fn equals_sqlite3_expanded_sql_for_every_type() {
        let text = |s: &str| Value::Text(s.as_bytes().to_vec());
        let sql = "INSERT INTO t(a, b, c, d, e, f, g, h) VALUES(?, ?, ?, ?, ?, ?, ?, ?)";
        same(
            sql,
            &[
                Value::Int(42),
                Value::Int(i64::MIN),
                Value::Real(1.5),
                text("it's a \"quote\"\n\\ tab\t"),
                Value::Blob(vec![0, 0xab, 0x7f, 0xff]),
                Value::Null,
                Value::Zero(3),
                text(""),
            ],
        );
        for r in [
            0.0,
            -0.0,
            2.0,
            -0.25,
            1e20,
            1e-7,
            123_456_789.123_456_79,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.0 / 3.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            same("SELECT ?", &[Value::Real(r)]);
        }
        for i in [0, -1, 7, 1234567890123, i64::MAX] {
            same("SELECT a FROM t WHERE a = ?", &[Value::Int(i)]);
        }
        // Text cut at a NUL, invalid UTF-8, non-ASCII, control characters.
        same("SELECT ?", &[Value::Text(b"ab\0cd".to_vec())]);
        same("SELECT ?", &[Value::Text(vec![b'a', 0xff, 0xc3, b'\''])]);
        same("SELECT ?", &[text("héllo wörld ✓ \u{1}\u{7f}")]);
        same("SELECT ?", &[Value::Blob(vec![])]);
        // Unbound parameters are NULL.
        same("SELECT ?, ?, ?", &[Value::Int(1)]);
    }

    #[test]
    fn parameter_forms_and_numbering() {
        let v: Vec<Value> = (1..=6).map(|i| Value::Int(i * 11)).collect();
        same("SELECT ?2, ?1, ?, ?", &v[..4]);
        same("SELECT :a, @b, $c, :a, ?, $d::x(yz)", &v[..5]);
        same("SELECT ?5, ?", &v);
        same("SELECT :a, ?3, :b, ?", &v[..5]);
        // Parameters inside strings, quoted names and comments are text.
        same(
            "SELECT '?' || ? AS \"?x\", 1 AS [?y], 2 AS `?z` -- ? :n\n, /* ?1 */ ? FROM t WHERE a$b IS NULL OR 1",
            &v[..2],
        );
        same("SELECT x'0a' || ?, 1.5e3, ?", &v[..2]);
        // Redacted literals around parameters.
        same(
            "SELECT a FROM t WHERE a = 'secret' AND b = ? AND c > 12.5",
            &[text("x")],
        );
        fn text(s: &str) -> Value {
            Value::Text(s.as_bytes().to_vec())
        }
    }

    #[test]
    fn unmappable_parameters_are_flagged() {
        let t = Template::new(b"SELECT ?9", 1, false, |_| 0);
        assert!(!t.mapped);
        let t = Template::new(b"SELECT :x", 1, false, |_| 0);
        assert!(!t.mapped);
        let t = Template::new(b"SELECT 1", 0, false, |_| 0);
        assert!(t.mapped);
        assert_eq!(t.pieces, vec![(b"SELECT 1".to_vec(), 0)]);
    }

    #[test]
    fn classification_and_sql_are_cached() {
        let t = Template::new(b"BEGIN IMMEDIATE", 0, false, |_| 0);
        assert_eq!(t.tail, b",\"txn\":\"begin\",\"pragma\":false}\n");
        let t = Template::new(b"PRAGMA user_version = 7", 0, true, |_| 0);
        assert_eq!(t.sql_json, b"\"PRAGMA user_version = <int:1>\"");
        assert_eq!(t.tail, b",\"txn\":null,\"pragma\":true}\n");
    }

    #[test]
    fn a_redacted_value_never_merges_with_the_text_around_it() {
        // `a-?` with -5 expands to `a--5`, which a redaction of the whole text reads as a comment.
        let t = Template::new(b"SELECT a-? FROM t", 1, true, |_| 0);
        let mut out = Vec::new();
        write_expanded(&mut out, &t.pieces, &[Value::Int(-5)], true, &fmt_real);
        assert_eq!(String::from_utf8(out).unwrap(), "SELECT a--<int:1> FROM t");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn random_values_equal_sqlite(
            i in proptest::num::i64::ANY,
            r in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO,
            s in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let values = [Value::Int(i), Value::Real(r), Value::Text(s), Value::Blob(b)];
            let (theirs, ours, red, their_red) = both("SELECT ?, ?, :t, @b", &values);
            proptest::prop_assert_eq!(ours, theirs);
            proptest::prop_assert_eq!(red, their_red);
        }
    }
}
