//! What frameworks write about their SQL, read into the trace model (docs/trace-format.md):
//! Rails `sql.active_record` events, the Django `django.db.backends` log, a Node
//! better-sqlite3 wrapper and OTLP/JSON spans, each as JSON lines written by the snippet
//! `litehammer capture --snippet FRAMEWORK` prints (snippets/trace/; docs/capture.md). Each reader says what
//! its format lacks and how import models it (`Modelled`), never filling it in silently.

pub(crate) mod django;
pub(crate) mod node;
pub(crate) mod otel;
pub(crate) mod rails;

use super::trace::{self, Accepts, Event, Header, Kind, Lines, Stmt, Trace, TraceError};
use litehammer_trace::lex;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// The formats `import` reads (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `litehammer capture`'s trace (docs/trace-format.md)
    Capture,
    /// Rails `sql.active_record` (+ `transaction.active_record`) events as JSON lines
    Rails,
    /// The Django `django.db.backends` log as JSON lines
    Django,
    /// The better-sqlite3 wrapper's JSON lines (Node)
    Node,
    /// OTLP/JSON spans (OpenTelemetry, any language), one export request a line
    Otel,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Capture => "capture",
            Format::Rails => "rails",
            Format::Django => "django",
            Format::Node => "node",
            Format::Otel => "otel",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Format::Capture => "a litehammer capture trace",
            Format::Rails => "Rails sql.active_record events (JSON lines)",
            Format::Django => "the Django django.db.backends log (JSON lines)",
            Format::Node => "the better-sqlite3 wrapper's JSON lines",
            Format::Otel => "OTLP/JSON spans",
        }
    }
}

/// A trace read from any format, with what the format could not say and import modelled.
pub(crate) struct Imported {
    pub trace: Trace,
    pub format: Format,
    /// One sentence each: what is modelled and how (scenario comments and command output).
    pub modelled: Vec<String>,
}

/// Which format a line is, from its keys.
fn format_of(v: &serde_json::Value) -> Option<Format> {
    let o = v.as_object()?;
    if o.contains_key("resourceSpans") {
        return Some(Format::Otel);
    }
    if o.get("event")
        .and_then(|e| e.as_str())
        .is_some_and(|e| e.ends_with(".active_record") || e == rails::SERVER_EVENT)
    {
        return Some(Format::Rails);
    }
    if o.get("logger").and_then(|l| l.as_str()) == Some("django.db.backends") {
        return Some(Format::Django);
    }
    if o.get("driver").and_then(|d| d.as_str()) == Some("better-sqlite3") {
        return Some(Format::Node);
    }
    if o.contains_key("v") && o.contains_key("kind") {
        return Some(Format::Capture);
    }
    None
}

const EXPECTED: &str = "expected one of: a litehammer capture trace (`\"v\":1,\"kind\":…`), Rails \
sql.active_record events (`\"event\":\"sql.active_record\"`), the Django backends log \
(`\"logger\":\"django.db.backends\"`), the better-sqlite3 wrapper (`\"driver\":\"better-sqlite3\"`), \
OTLP/JSON (`\"resourceSpans\"`); `litehammer capture --snippet FRAMEWORK` prints what writes each";

/// Reads `path` as `from`, or as the format its first line shows.
pub(crate) fn read_file(path: &Path, from: Option<Format>) -> Result<Imported, TraceError> {
    let open = || {
        // A directory opens on Linux, and only its first read fails: say what it is, with no
        // line to point at.
        if path.is_dir() {
            return Err(TraceError::at(0, "is a directory, not a trace file".to_string()));
        }
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| TraceError::at(0, format!("cannot read the trace: {e}")))
    };
    let format = match from {
        Some(f) => f,
        None => detect(open()?)?,
    };
    read(open()?, format)
}

/// The format of the first non-empty line.
pub(crate) fn detect(input: impl BufRead) -> Result<Format, TraceError> {
    let mut lines = Lines::new(input);
    while let Some((n, text, complete)) = lines.next_line()? {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            if !complete || e.is_eof() {
                TraceError::at(n, "truncated: this line ends in the middle of a JSON object")
            } else {
                TraceError::at(
                    n,
                    format!("not a JSON object ({e}): not a trace format import reads; {EXPECTED}"),
                )
            }
        })?;
        return format_of(&v).ok_or_else(|| {
            TraceError::at(
                n,
                format!(
                    "a JSON object of no format import reads (keys: {}); {EXPECTED}",
                    keys(&v)
                ),
            )
        });
    }
    Err(TraceError::at(0, "the trace is empty"))
}

fn keys(v: &serde_json::Value) -> String {
    match v.as_object() {
        Some(o) => o.keys().take(8).cloned().collect::<Vec<_>>().join(", "),
        None => "not an object".into(),
    }
}

pub(crate) fn read(input: impl BufRead, format: Format) -> Result<Imported, TraceError> {
    match format {
        Format::Capture => Ok(Imported {
            trace: trace::read(input)?,
            format,
            modelled: Vec::new(),
        }),
        Format::Rails => rails::read(input),
        Format::Django => django::read(input),
        Format::Node => node::read(input),
        Format::Otel => otel::read(input),
    }
}

/// Each JSON line of a framework format, parsed as `T`, with errors naming the line.
pub(crate) fn each_line<T: serde::de::DeserializeOwned>(
    input: impl BufRead,
    format: Format,
    mut f: impl FnMut(usize, T) -> Result<(), TraceError>,
) -> Result<usize, TraceError> {
    let mut lines = Lines::new(input);
    let mut last = 0;
    while let Some((n, text, complete)) = lines.next_line()? {
        last = n;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) if !complete || e.is_eof() => {
                return Err(TraceError::at(
                    n,
                    "truncated: this line ends in the middle of a JSON object (the app was stopped while \
                     writing it; delete the partial last line)",
                ));
            }
            Err(e) => return Err(TraceError::at(n, format!("not a JSON object: {e}"))),
        };
        match format_of(&v) {
            Some(f) if f == format => {}
            other => {
                return Err(TraceError::at(
                    n,
                    format!(
                        "not {}: this line is {} (keys: {}); every line of one file must be one format",
                        format.describe(),
                        other.map_or("of no format import reads", Format::describe),
                        keys(&v)
                    ),
                ));
            }
        }
        let item: T =
            serde_json::from_value(v).map_err(|e| TraceError::at(n, format!("{}: {e}", format.describe())))?;
        f(n, item)?;
    }
    Ok(last)
}

/// One statement as a framework reports it.
pub(crate) struct FwStmt {
    pub line: usize,
    /// Start, ns on the producer's clock.
    pub ts: i64,
    pub dur_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub conn: u64,
    pub request: Option<u64>,
    pub sql: String,
    pub expanded: String,
    pub changes: Option<i64>,
    pub rows: Option<i64>,
    pub cpu_ns: Option<i64>,
    pub cpu_end_ns: Option<i64>,
}

/// Builds a trace from framework events: headers per process, ids for string keys.
pub(crate) struct Builder {
    trace: Trace,
    programs: HashMap<u32, String>,
    servers: HashMap<u32, (String, bool)>,
    accepts: HashMap<u32, Accepts>,
    requests: HashMap<String, u64>,
    conns: HashMap<String, u64>,
    threads: HashMap<(u32, u64), u32>,
}

/// A request or connection key: a string or a number; None for null or absent.
pub(crate) fn key_of(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Builder {
    pub(crate) fn new() -> Self {
        Self {
            trace: Trace::default(),
            programs: HashMap::new(),
            servers: HashMap::new(),
            accepts: HashMap::new(),
            requests: HashMap::new(),
            conns: HashMap::new(),
            threads: HashMap::new(),
        }
    }

    /// A small thread id for a producer's thread key within a process (a Ruby thread's
    /// object id does not fit the trace's 32 bits).
    pub(crate) fn thread(&mut self, pid: u32, key: u64) -> u32 {
        if let Ok(k) = u32::try_from(key) {
            return k;
        }
        let n = u32::MAX - self.threads.len() as u32;
        *self.threads.entry((pid, key)).or_insert(n)
    }

    /// The process's program name (the worker group's name), first one wins.
    pub(crate) fn program(&mut self, pid: u32, name: &str) {
        self.programs.entry(pid).or_insert_with(|| name.to_string());
    }

    /// The HTTP server a process runs (`gunicorn/27.0.1`), and whether it serves on threads.
    pub(crate) fn server(&mut self, pid: u32, software: &str, multithread: bool) {
        self.servers.insert(pid, (software.to_string(), multithread));
    }

    /// What a process's request spans show about how it took connections.
    pub(crate) fn accepts(&mut self, pid: u32, accepts: Accepts) {
        self.accepts.insert(pid, accepts);
    }

    /// A numeric id for a producer's request key (a UUID, a trace id, a number).
    pub(crate) fn request(&mut self, key: String) -> u64 {
        let n = self.requests.len() as u64 + 1;
        *self.requests.entry(key).or_insert(n)
    }

    /// A numeric id for a producer's connection key.
    pub(crate) fn conn(&mut self, key: String) -> u64 {
        let n = self.conns.len() as u64 + 1;
        *self.conns.entry(key).or_insert(n)
    }

    pub(crate) fn statements(&self) -> usize {
        self.trace
            .events
            .iter()
            .filter(|e| matches!(e.kind, Kind::Stmt(_)))
            .count()
    }

    pub(crate) fn stmt(&mut self, s: FwStmt) {
        self.trace.events.push(Event {
            line: s.line,
            ts: s.ts,
            pid: s.pid,
            tid: s.tid,
            conn: s.conn,
            kind: Kind::Stmt(Stmt {
                dur_ns: s.dur_ns,
                sql: s.sql,
                expanded: s.expanded,
                changes: s.changes,
                autocommit: None,
                txn: None,
                pragma: false,
                rows: s.rows,
                rowid: None,
                request: s.request,
                nested: 0,
            }),
            cpu_ns: s.cpu_ns,
            cpu_end_ns: s.cpu_end_ns,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn open_close(
        &mut self,
        line: usize,
        ts: i64,
        pid: u32,
        tid: u32,
        conn: u64,
        open: Option<Option<String>>,
        cpu_ns: Option<i64>,
    ) {
        self.trace.events.push(Event {
            line,
            ts,
            pid,
            tid,
            conn,
            kind: match open {
                Some(file) => Kind::Open { file },
                None => Kind::Close,
            },
            cpu_ns,
            cpu_end_ns: None,
        });
    }

    pub(crate) fn finish(
        mut self,
        format: Format,
        last_line: usize,
        modelled: Vec<String>,
    ) -> Result<Imported, TraceError> {
        if self.statements() == 0 {
            return Err(TraceError::at(
                last_line,
                format!("no SQL statement in {} (nothing to import)", format.describe()),
            ));
        }
        let mut pids: Vec<(u32, String)> = self.programs.into_iter().collect();
        pids.sort();
        for (pid, exe) in pids {
            self.trace.headers.push(Header {
                pid,
                exe: Some(exe),
                redacted: false,
                server: self.servers.remove(&pid),
                accepts: self.accepts.remove(&pid),
            });
        }
        self.trace.events.sort_by_key(|e| e.ts);
        Ok(Imported {
            trace: self.trace,
            format,
            modelled,
        })
    }
}

/// A JSON value as an SQL literal the way `sqlite3_expanded_sql` writes it; Err names the type
/// that has no SQL value (an array, an object other than a blob).
pub(crate) fn literal(v: &serde_json::Value) -> Result<String, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => "NULL".into(),
        J::Bool(b) => (if *b { "1" } else { "0" }).into(),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                // Beyond SQLite's 64-bit integers: SQLite would store a real.
                format!("{:?}", u as f64)
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                let s = format!("{f:?}");
                if s.contains(['.', 'e', 'E']) {
                    s
                } else {
                    format!("{s}.0")
                }
            }
        }
        J::String(s) => format!("'{}'", s.replace('\'', "''")),
        J::Object(o) if o.len() == 1 && o.get("$int").and_then(|i| i.as_str()).is_some_and(is_integer) => {
            o["$int"].as_str().unwrap_or("0").to_string()
        }
        J::Object(o) => match blob(o) {
            Some(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("x'{hex}'")
            }
            None => {
                return Err(format!(
                    "an object ({}), not an SQL value (null, boolean, number, string, or a blob as \
                     {{\"$blob\":\"HEX\"}})",
                    short(v)
                ));
            }
        },
        J::Array(_) => {
            return Err(format!(
                "an array ({}), not an SQL value (null, boolean, number, string, or a blob as {{\"$blob\":\"HEX\"}})",
                short(v)
            ));
        }
    })
}

fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

fn short(v: &serde_json::Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// `{"$blob":"0a0b"}` (the snippets) or Node's `{"type":"Buffer","data":[10,11]}`.
fn blob(o: &serde_json::Map<String, serde_json::Value>) -> Option<Vec<u8>> {
    if let Some(hex) = o.get("$blob").and_then(|h| h.as_str()) {
        if o.len() != 1 || hex.len() % 2 != 0 {
            return None;
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
    }
    if o.get("type").and_then(|t| t.as_str()) == Some("Buffer") {
        return o
            .get("data")?
            .as_array()?
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
    }
    None
}

/// `sql` with its parameters replaced by the values: positional ones (`?`, `?NNN`) from
/// `positional` in SQLite's numbering, named ones (`:n`, `@n`, `$n`) from `named` by name
/// (with or without the sigil). Err says which parameter has no value or which value is not SQL.
pub(crate) fn expand(
    sql: &str,
    positional: &[serde_json::Value],
    named: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<String, String> {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut last = 0;
    let mut next_index = 0usize;
    let mut names: Vec<String> = Vec::new();
    let mut used = 0usize;
    for t in lex::tokens(sql).filter(|t| t.kind == lex::Kind::Param) {
        let text = &sql[t.start..t.end];
        let value = if let Some(num) = text.strip_prefix('?') {
            let index = if num.is_empty() {
                next_index + 1
            } else {
                num.parse::<usize>()
                    .map_err(|_| format!("parameter {text} is not a number"))?
            };
            next_index = next_index.max(index);
            used = used.max(index);
            positional.get(index.wrapping_sub(1)).ok_or_else(|| {
                format!(
                    "parameter {text} (number {index}) has no value: {} given",
                    positional.len()
                )
            })?
        } else {
            let name = &text[1..];
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
            named
                .and_then(|m| m.get(name).or_else(|| m.get(text)))
                .ok_or_else(|| format!("named parameter {text} has no value"))?
        };
        out.push_str(&sql[last..t.start]);
        out.push_str(&literal(value).map_err(|e| format!("the value of {text} is {e}"))?);
        last = t.end;
    }
    if used < positional.len() {
        return Err(format!(
            "{} value(s) given for {used} positional parameter(s) (the values do not belong to this SQL)",
            positional.len()
        ));
    }
    out.push_str(&sql[last..]);
    Ok(out)
}

/// Seconds (a float) as ns.
pub(crate) fn secs_to_ns(s: f64) -> i64 {
    (s * 1e9).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expands_positional_numbered_and_named_parameters() {
        let v = [json!(1), json!("it's"), json!(null), json!(1.5), json!(true)];
        assert_eq!(
            expand("SELECT ? , ?, ?, ?, ? FROM t", &v, None).unwrap(),
            "SELECT 1 , 'it''s', NULL, 1.5, 1 FROM t"
        );
        assert_eq!(
            expand("SELECT ?2, ?1", &[json!(1), json!(2)], None).unwrap(),
            "SELECT 2, 1"
        );
        let named = json!({"id": 7, "$b": {"$blob": "0a0b"}});
        assert_eq!(
            expand("SELECT :id, $b WHERE x = ':id'", &[], named.as_object()).unwrap(),
            "SELECT 7, x'0a0b' WHERE x = ':id'"
        );
        assert_eq!(
            literal(&json!({"type": "Buffer", "data": [255, 0]})).unwrap(),
            "x'ff00'"
        );
        assert_eq!(literal(&json!(2.0)).unwrap(), "2.0");
        assert_eq!(
            literal(&json!({"$int": "-9007199254740993"})).unwrap(),
            "-9007199254740993"
        );
    }

    #[test]
    fn missing_extra_and_unknown_values_are_errors() {
        assert!(
            expand("SELECT ?, ?", &[json!(1)], None)
                .unwrap_err()
                .contains("no value")
        );
        assert!(
            expand("SELECT ?", &[json!(1), json!(2)], None)
                .unwrap_err()
                .contains("2 value(s)")
        );
        let e = expand("SELECT ?", &[json!({"a": 1})], None).unwrap_err();
        assert!(e.contains("an object"), "{e}");
        assert!(
            expand("SELECT ?", &[json!([1])], None)
                .unwrap_err()
                .contains("an array")
        );
        assert!(expand("SELECT :x", &[], None).unwrap_err().contains(":x"));
    }

    #[test]
    fn detects_each_format_from_its_first_line() {
        let cases = [
            (r#"{"v":1,"kind":"header","pid":1}"#, Format::Capture),
            (r#"{"event":"sql.active_record","sql":"SELECT 1"}"#, Format::Rails),
            (r#"{"logger":"django.db.backends","sql":"SELECT 1"}"#, Format::Django),
            (r#"{"driver":"better-sqlite3","sql":"SELECT 1"}"#, Format::Node),
            (r#"{"resourceSpans":[]}"#, Format::Otel),
        ];
        for (line, f) in cases {
            assert_eq!(detect(format!("\n{line}\n").as_bytes()).unwrap(), f, "{line}");
        }
        let e = detect(&b"{\"a\":1}\n"[..]).unwrap_err();
        assert!(e.message.contains("no format") && e.line == 1, "{e}");
        let e = detect(&b"SELECT 1\n"[..]).unwrap_err();
        assert!(e.message.contains("not a JSON object"), "{e}");
    }

    #[test]
    fn a_line_longer_than_the_cap_is_an_error_naming_it_without_reading_it_whole() {
        let mut text = b"{\"a\":1}\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5000));
        text.push(b'\n');
        let mut lines = Lines::with_max(&text[..], 1024);
        assert!(lines.next_line().unwrap().is_some());
        let e = lines.next_line().unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("longer than"), "{e}");
    }
}
