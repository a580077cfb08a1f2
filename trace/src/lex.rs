//! The SQL lexer: SQLite's lexical rules (`sqlite3GetToken` in SQLite's `tokenize.c`), plus the
//! `<type:length>` marker a redacted trace puts where a literal was.
//!
//! [`tokens`] cuts the whole text into [`Token`]s, whitespace and comments included, so the
//! tokens' texts joined are the input again. It never fails: an unterminated string, quoted
//! identifier or block comment runs to the end of the text and is marked incomplete, and any other
//! character is a one-byte [`Kind::Punct`] (operators such as `<=` or `||` are two). Every token
//! boundary is an ASCII byte or an end of the text, so slicing by a token never splits a character.
//!
//! Where it differs from SQLite: a number followed by identifier characters (`12abc`, which
//! SQLite rejects as one illegal token) ends where the number ends, and the marker is a token of
//! its own (no statement SQLite accepts contains one: it would lex as a name followed by a
//! parameter).

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A run of whitespace (space, tab, newline, form feed, carriage return).
    Space,
    /// `-- …` up to the end of the line (the newline is not part of it) or `/* … */`.
    Comment,
    /// A keyword or a bare name: a letter, `_` or non-ASCII byte, then also digits and `$`.
    Word,
    /// `42`, `1.5`, `.5`, `1e5`, `2.5E-3`, `0x1F`, and `1_000` (digit separators, SQLite 3.46+).
    Number,
    /// `'text'`, a doubled quote standing for one.
    Str,
    /// `X'0a1b'` (or `x'…'`).
    Blob,
    /// `"name"` or `` `name` `` (a doubled quote standing for one) or `[name]`.
    QuotedIdent,
    /// A host parameter: `?`, `?NNN`, `:name`, `@name`, `$name`, `#name` (also Tcl's `$a::b` and
    /// `$a(x)` forms). A sigil with no name after it is a [`Kind::Punct`].
    Param,
    /// A redaction marker: `<int:3>`, `<real:4>`, `<text:12>`, `<blob:2>` (see [`marker`]).
    Redacted,
    /// Any other single character.
    Punct,
}

/// One token: its kind and its byte range in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
    /// False for a string, blob, quoted identifier or block comment that the text ends inside.
    pub complete: bool,
}

impl Token {
    /// The token's text in `sql` (the text it was cut from).
    pub fn text<'a>(&self, sql: &'a str) -> &'a str {
        &sql[self.start..self.end]
    }

    /// Whitespace or a comment.
    pub fn is_trivia(&self) -> bool {
        matches!(self.kind, Kind::Space | Kind::Comment)
    }
}

/// The tokens of `sql`, in order, covering all of it.
pub fn tokens(sql: &str) -> Tokens<'_> {
    Tokens {
        b: sql.as_bytes(),
        i: 0,
    }
}

/// The iterator [`tokens`] returns.
#[derive(Clone, Debug)]
pub struct Tokens<'a> {
    b: &'a [u8],
    i: usize,
}

impl Iterator for Tokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let start = self.i;
        let (kind, end, complete) = token_at(self.b, start)?;
        self.i = end;
        Some(Token {
            kind,
            start,
            end,
            complete,
        })
    }
}

/// The type and length of a redaction marker (`<text:12>` → `("text", 12)`), or `None` when
/// `text` is not exactly one.
pub fn marker(text: &str) -> Option<(&str, usize)> {
    let (ty, len) = text.strip_prefix('<')?.strip_suffix('>')?.split_once(':')?;
    let known = matches!(ty, "int" | "real" | "text" | "blob");
    let digits = !len.is_empty() && len.bytes().all(|c| c.is_ascii_digit());
    if !(known && digits) {
        return None;
    }
    Some((ty, len.parse().ok()?))
}

/// The token at `b[i]`: its kind, end and completeness; `None` at the end of the text.
fn token_at(b: &[u8], i: usize) -> Option<(Kind, usize, bool)> {
    let n = b.len();
    let c = *b.get(i)?;
    let next = b.get(i + 1).copied();
    let whole = |kind, end| Some((kind, end, true));
    match c {
        _ if c.is_ascii_whitespace() => whole(Kind::Space, run(b, i, |c| c.is_ascii_whitespace())),
        b'-' if next == Some(b'-') => whole(Kind::Comment, find(b, i + 2, b"\n").unwrap_or(n)),
        b'/' if next == Some(b'*') => Some(match find(b, i + 2, b"*/") {
            Some(p) => (Kind::Comment, p + 2, true),
            None => (Kind::Comment, n, false),
        }),
        b'x' | b'X' if next == Some(b'\'') => {
            let (end, complete) = quoted(b, i + 1, b'\'');
            Some((Kind::Blob, end, complete))
        }
        b'\'' => {
            let (end, complete) = quoted(b, i, b'\'');
            Some((Kind::Str, end, complete))
        }
        b'"' | b'`' => {
            let (end, complete) = quoted(b, i, c);
            Some((Kind::QuotedIdent, end, complete))
        }
        b'[' => Some(match find(b, i + 1, b"]") {
            Some(p) => (Kind::QuotedIdent, p + 1, true),
            None => (Kind::QuotedIdent, n, false),
        }),
        // A marker is at most `<blob:` and 20 digits and `>`.
        b'<' => match find(&b[..n.min(i + 32)], i + 1, b">") {
            Some(p) if std::str::from_utf8(&b[i..=p]).is_ok_and(|m| marker(m).is_some()) => {
                whole(Kind::Redacted, p + 1)
            }
            _ => whole(Kind::Punct, i + 1),
        },
        b'0'..=b'9' => whole(Kind::Number, number(b, i)),
        b'.' if next.is_some_and(|d| d.is_ascii_digit()) => whole(Kind::Number, number(b, i)),
        b'?' => whole(Kind::Param, run(b, i + 1, |c| c.is_ascii_digit())),
        b':' | b'@' | b'$' | b'#' => match named_param(b, i) {
            Some(end) => whole(Kind::Param, end),
            None => whole(Kind::Punct, i + 1),
        },
        _ if is_ident_start(c) => whole(Kind::Word, run(b, i + 1, is_ident_char)),
        _ => whole(Kind::Punct, i + 1),
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// The end of the run of bytes from `i` that satisfy `f`.
fn run(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && f(b[i]) {
        i += 1;
    }
    i
}

/// Where `pat` first occurs at or after `from`.
fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| from + p)
}

/// `b[open]` is the quote `q`; a doubled quote stands for one. Returns the end (past the closing
/// quote, or the end of the text) and whether the closing quote was there.
fn quoted(b: &[u8], open: usize, q: u8) -> (usize, bool) {
    let mut i = open + 1;
    while i < b.len() {
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (b.len(), false)
}

/// A numeric literal at `i` (a digit, or `.` before a digit): decimal with an optional fraction
/// and exponent, or `0x` with at least one hex digit; `_` digit separators are taken.
fn number(b: &[u8], i: usize) -> usize {
    let digit_or_sep = |c: u8| c.is_ascii_digit() || c == b'_';
    if b[i] == b'0' && matches!(b.get(i + 1), Some(b'x' | b'X')) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit) {
        return run(b, i + 2, |c| c.is_ascii_hexdigit() || c == b'_');
    }
    let mut i = run(b, i, digit_or_sep);
    if b.get(i) == Some(&b'.') {
        i = run(b, i + 1, digit_or_sep);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        if b.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = run(b, i + 1 + sign, |c| c.is_ascii_digit());
        }
    }
    i
}

/// `:name`, `@name`, `$name`, `#name` at `i`, with Tcl's `$a::b` and `$a(x)` forms: the end, or
/// `None` when no name follows the sigil.
fn named_param(b: &[u8], i: usize) -> Option<usize> {
    let n = b.len();
    let mut j = i + 1;
    let mut len = 0;
    while j < n {
        let d = b[j];
        if is_ident_char(d) {
            len += 1;
        } else if d == b'(' && len > 0 {
            j = run(b, j + 1, |c| !c.is_ascii_whitespace() && c != b')');
            if b.get(j) == Some(&b')') {
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
    (len > 0).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `(kind, text)` of every token but whitespace.
    fn lex(sql: &str) -> Vec<(Kind, &str)> {
        tokens(sql)
            .filter(|t| t.kind != Kind::Space)
            .map(|t| (t.kind, t.text(sql)))
            .collect()
    }

    fn one(sql: &str) -> Token {
        let all: Vec<Token> = tokens(sql).collect();
        assert_eq!(all.len(), 1, "{sql}: {all:?}");
        all[0]
    }

    #[test]
    fn strings_with_doubled_quotes_and_blobs() {
        assert_eq!(lex("'it''s' ''"), [(Kind::Str, "'it''s'"), (Kind::Str, "''")]);
        assert_eq!(lex("'a''''b'"), [(Kind::Str, "'a''''b'")]);
        assert_eq!(lex("X'0aFF' x''"), [(Kind::Blob, "X'0aFF'"), (Kind::Blob, "x''")]);
        // A name ending in x is not a blob.
        assert_eq!(lex("max'a'"), [(Kind::Word, "max"), (Kind::Str, "'a'")]);
        assert_eq!(lex("'héllo ✓'"), [(Kind::Str, "'héllo ✓'")]);
        for open in ["'abc", "'it''", "x'0a", "\"name", "`a``", "[name", "/* c *"] {
            let t = one(open);
            assert!(!t.complete, "{open}");
            assert_eq!(t.end, open.len());
        }
        assert!(one("'it'''").complete);
    }

    #[test]
    fn comments() {
        assert_eq!(
            lex("a -- x 'y' ?1\nb /* c\n'd' */ c/**/d"),
            [
                (Kind::Word, "a"),
                (Kind::Comment, "-- x 'y' ?1"),
                (Kind::Word, "b"),
                (Kind::Comment, "/* c\n'd' */"),
                (Kind::Word, "c"),
                (Kind::Comment, "/**/"),
                (Kind::Word, "d"),
            ]
        );
        assert_eq!(lex("-- to the end"), [(Kind::Comment, "-- to the end")]);
        assert_eq!(
            lex("a-b/c"),
            [
                (Kind::Word, "a"),
                (Kind::Punct, "-"),
                (Kind::Word, "b"),
                (Kind::Punct, "/"),
                (Kind::Word, "c")
            ]
        );
        assert!(!one("/*/").complete);
    }

    #[test]
    fn numbers() {
        for n in [
            "0", "42", "1.5", ".5", "1.", "1e5", "1E+5", "2.5e-3", "0x1F", "0XaB", "1_000",
        ] {
            assert_eq!(lex(n), [(Kind::Number, n)], "{n}");
        }
        // The exponent needs a digit; hex needs a hex digit; a number ends where it ends.
        assert_eq!(lex("1e"), [(Kind::Number, "1"), (Kind::Word, "e")]);
        assert_eq!(
            lex("1e+x"),
            [
                (Kind::Number, "1"),
                (Kind::Word, "e"),
                (Kind::Punct, "+"),
                (Kind::Word, "x")
            ]
        );
        assert_eq!(lex("0x"), [(Kind::Number, "0"), (Kind::Word, "x")]);
        assert_eq!(lex("0x_1"), [(Kind::Number, "0"), (Kind::Word, "x_1")]);
        assert_eq!(lex("12abc"), [(Kind::Number, "12"), (Kind::Word, "abc")]);
        assert_eq!(lex("1.2.3"), [(Kind::Number, "1.2"), (Kind::Number, ".3")]);
        assert_eq!(lex("-7"), [(Kind::Punct, "-"), (Kind::Number, "7")]);
        assert_eq!(lex("t.c1"), [(Kind::Word, "t"), (Kind::Punct, "."), (Kind::Word, "c1")]);
    }

    #[test]
    fn parameters() {
        for p in [
            "?", "?1", "?123", ":name", ":1", "@p2", "$v3", "#n", "$a::b", "$a(x y", "$a(xy)", ":a$b", "@é",
        ] {
            let want = p.split(' ').next().unwrap();
            assert_eq!(lex(p)[0], (Kind::Param, want), "{p}");
        }
        assert_eq!(lex("?1abc"), [(Kind::Param, "?1"), (Kind::Word, "abc")]);
        assert_eq!(
            lex("?,?2"),
            [(Kind::Param, "?"), (Kind::Punct, ","), (Kind::Param, "?2")]
        );
        // A sigil without a name is punctuation.
        assert_eq!(
            lex(": @ $ #"),
            [
                (Kind::Punct, ":"),
                (Kind::Punct, "@"),
                (Kind::Punct, "$"),
                (Kind::Punct, "#")
            ]
        );
        assert_eq!(lex("a$b"), [(Kind::Word, "a$b")]);
    }

    #[test]
    fn quoted_identifiers() {
        assert_eq!(
            lex(r#""a ""b"" c" `d``e` [f "g" h] "#),
            [
                (Kind::QuotedIdent, r#""a ""b"" c""#),
                (Kind::QuotedIdent, "`d``e`"),
                (Kind::QuotedIdent, r#"[f "g" h]"#),
            ]
        );
        assert_eq!(lex("[a]]"), [(Kind::QuotedIdent, "[a]"), (Kind::Punct, "]")]);
    }

    #[test]
    fn redaction_markers() {
        assert_eq!(
            lex("a=<int:3> AND b>-<real:12>,<text:0>,<blob:2>"),
            [
                (Kind::Word, "a"),
                (Kind::Punct, "="),
                (Kind::Redacted, "<int:3>"),
                (Kind::Word, "AND"),
                (Kind::Word, "b"),
                (Kind::Punct, ">"),
                (Kind::Punct, "-"),
                (Kind::Redacted, "<real:12>"),
                (Kind::Punct, ","),
                (Kind::Redacted, "<text:0>"),
                (Kind::Punct, ","),
                (Kind::Redacted, "<blob:2>"),
            ]
        );
        assert_eq!(marker("<text:12>"), Some(("text", 12)));
        for not in ["<date:1>", "<int:>", "<int:1x>", "<int:-1>", "<int 1>", "<int:1", "a<b"] {
            assert_eq!(marker(not), None, "{not}");
        }
        assert_eq!(lex("a<b:1>c")[1], (Kind::Punct, "<"));
        assert_eq!(
            lex("a<=b"),
            [
                (Kind::Word, "a"),
                (Kind::Punct, "<"),
                (Kind::Punct, "="),
                (Kind::Word, "b")
            ]
        );
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            lex("SELECT t1.x_2, héllo FROM \"t\";"),
            [
                (Kind::Word, "SELECT"),
                (Kind::Word, "t1"),
                (Kind::Punct, "."),
                (Kind::Word, "x_2"),
                (Kind::Punct, ","),
                (Kind::Word, "héllo"),
                (Kind::Word, "FROM"),
                (Kind::QuotedIdent, "\"t\""),
                (Kind::Punct, ";"),
            ]
        );
        assert_eq!(tokens("").count(), 0);
        let spaces: Vec<_> = tokens(" \t\n\r\x0c x").map(|t| (t.kind, t.start, t.end)).collect();
        assert_eq!(spaces, [(Kind::Space, 0, 6), (Kind::Word, 6, 7)]);
    }

    /// SQL-like text: the pieces the lexer treats specially, in any order.
    fn sqlish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("'"),
            Just("''"),
            Just("\""),
            Just("`"),
            Just("["),
            Just("]"),
            Just("x'"),
            Just("X"),
            Just("--"),
            Just("/*"),
            Just("*/"),
            Just("*"),
            Just("/"),
            Just("-"),
            Just("\n"),
            Just(" "),
            Just("?"),
            Just(":"),
            Just("@"),
            Just("$"),
            Just("#"),
            Just("::"),
            Just("("),
            Just(")"),
            Just("0x"),
            Just("1"),
            Just("."),
            Just("e"),
            Just("+"),
            Just("_"),
            Just("<int:3>"),
            Just("<"),
            Just(">"),
            Just("é"),
            Just("✓"),
            Just("select"),
            Just("a"),
            Just(","),
            Just(";"),
            Just("\t"),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    fn check_round_trip(sql: &str) -> Result<(), TestCaseError> {
        let mut joined = String::new();
        let mut at = 0;
        for t in tokens(sql) {
            prop_assert_eq!(t.start, at, "tokens are contiguous");
            prop_assert!(t.end > t.start, "tokens are not empty");
            prop_assert!(t.complete || t.end == sql.len(), "only the last token is incomplete");
            joined.push_str(t.text(sql));
            at = t.end;
        }
        prop_assert_eq!(joined, sql);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The tokens' texts joined are the input, token after token with no gap or overlap, each
        /// sliced on character boundaries.
        #[test]
        fn tokens_join_back_to_the_input(sql in sqlish()) {
            check_round_trip(&sql)?;
        }

        #[test]
        fn any_text_joins_back(sql in any::<String>()) {
            check_round_trip(&sql)?;
        }
    }
}
