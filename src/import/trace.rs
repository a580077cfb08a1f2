//! Reading a trace (docs/trace-format.md): typed events, with errors that name the line.

use serde::Deserialize;
use std::io::BufRead;

/// The newest trace format version this litehammer reads: the one capture writes.
pub(crate) const FORMAT_VERSION: u64 = litehammer_trace::protocol::FORMAT_VERSION as u64;

/// What is wrong with a trace, with its 1-based line (0: the file as a whole).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct TraceError {
    pub line: usize,
    pub message: String,
}

impl TraceError {
    pub(crate) fn at(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub pid: u32,
    pub exe: Option<String>,
    pub redacted: bool,
    /// The HTTP server the process runs and whether it serves on several threads, where a
    /// framework hook records it (Django's `SERVER_SOFTWARE`); a captured trace does not.
    pub server: Option<(String, bool)>,
    /// How the process took its requests' connections, where its request spans show it (OTel).
    pub accepts: Option<Accepts>,
}

/// What a process's request spans show about its server, for the queue model: the process
/// that started it, the port it served, and how many requests came on how many client
/// connections (a client address and port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepts {
    /// Processes summed into this (one per header; more in a worker group's sum).
    pub processes: usize,
    /// `process.parent_pid`.
    pub parent: Option<u32>,
    /// The port the requests came to (`server.port`, `net.host.port`).
    pub port: Option<i64>,
    /// Requests whose client port the spans name.
    pub requests: usize,
    /// Distinct client connections (address and port) among them.
    pub connections: usize,
}

impl Accepts {
    /// A worker group's sum over its processes: the parent and the port where all agree.
    pub(crate) fn sum<'a>(all: impl IntoIterator<Item = &'a Accepts>) -> Option<Accepts> {
        let mut it = all.into_iter();
        let mut out = it.next()?.clone();
        for a in it {
            out.processes += a.processes;
            out.requests += a.requests;
            out.connections += a.connections;
            if out.parent != a.parent {
                out.parent = None;
            }
            if out.port != a.port {
                out.port = None;
            }
        }
        Some(out)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub dur_ns: u64,
    pub sql: String,
    pub expanded: String,
    pub changes: Option<i64>,
    pub autocommit: Option<bool>,
    pub txn: Option<String>,
    pub pragma: bool,
    /// Rows the statement returned (`SQLITE_ROW` steps), when the producer counted them.
    pub rows: Option<i64>,
    /// The rowid an INSERT gave its last row (`sqlite3_last_insert_rowid`), when recorded.
    pub rowid: Option<i64>,
    /// The request (unit of work) the statement belongs to, when the producer knows it (a
    /// framework's request id); statements of one request are one request in the scenario.
    pub request: Option<u64>,
    /// Statements SQLite ran inside this one (FTS5 and R*Tree shadow-table statements, trigger
    /// programs) that the producer counted instead of writing lines for them (`nested`).
    pub nested: u64,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Open {
        file: Option<String>,
    },
    Stmt(Stmt),
    Close,
    /// `sqlite3_busy_timeout(db, ms)` on the connection (Python's `timeout=`, Django's
    /// `OPTIONS["timeout"]`): `litehammer capture` records the call.
    BusyTimeout(i64),
}

#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub line: usize,
    pub ts: i64,
    pub pid: u32,
    pub tid: u32,
    pub conn: u64,
    pub kind: Kind,
    /// The thread's CPU time (ns) at the event's start, when the producer read it.
    pub cpu_ns: Option<i64>,
    /// The thread's CPU time at a statement's end, when the producer read it.
    pub cpu_end_ns: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub headers: Vec<Header>,
    /// Sorted by `ts` (stable: file order on ties).
    pub events: Vec<Event>,
}

impl Trace {
    pub(crate) fn redacted(&self) -> bool {
        self.headers.iter().any(|h| h.redacted)
    }

    /// The process's header, if the trace has one.
    fn header(&self, pid: u32) -> Option<&Header> {
        self.headers.iter().find(|h| h.pid == pid)
    }

    pub(crate) fn server_of(&self, pid: u32) -> Option<&(String, bool)> {
        self.header(pid).and_then(|h| h.server.as_ref())
    }

    pub(crate) fn accepts_of(&self, pid: u32) -> Option<&Accepts> {
        self.header(pid).and_then(|h| h.accepts.as_ref())
    }

    pub(crate) fn exe_of(&self, pid: u32) -> Option<&str> {
        self.header(pid).and_then(|h| h.exe.as_deref())
    }
}

#[derive(Deserialize)]
struct Raw {
    v: Option<u64>,
    kind: Option<String>,
    ts: Option<i64>,
    pid: Option<u32>,
    tid: Option<u32>,
    exe: Option<String>,
    #[serde(default)]
    redacted: bool,
    conn: Option<u64>,
    file: Option<String>,
    path: Option<String>,
    dur_ns: Option<u64>,
    cpu_ns: Option<i64>,
    cpu_end_ns: Option<i64>,
    sql: Option<String>,
    expanded: Option<String>,
    changes: Option<i64>,
    autocommit: Option<bool>,
    txn: Option<String>,
    #[serde(default)]
    pragma: bool,
    rows: Option<i64>,
    rowid: Option<i64>,
    ms: Option<i64>,
    request: Option<u64>,
    #[serde(default)]
    nested: u64,
}

/// The longest line any trace reader accepts: a statement with its values inlined fits many
/// times over; a longer line is refused (with its number) without being held in memory.
pub(crate) const MAX_LINE: usize = 16 << 20;

/// Lines of a trace, each at most [`MAX_LINE`] bytes: a longer one is an error naming it,
/// found after reading at most that much of it (never held whole).
pub(crate) struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    lineno: usize,
    max: usize,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(input: R) -> Self {
        Self::with_max(input, MAX_LINE)
    }

    pub(crate) fn with_max(input: R, max: usize) -> Self {
        Self {
            input,
            buf: Vec::new(),
            lineno: 0,
            max,
        }
    }

    /// The next line (1-based number, text without the newline, whether it had one), or None
    /// at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<(usize, &str, bool)>, TraceError> {
        self.buf.clear();
        let line = self.lineno + 1;
        let mut complete = false;
        let mut any = false;
        loop {
            let chunk = self
                .input
                .fill_buf()
                .map_err(|e| TraceError::at(line, format!("cannot read: {e}")))?;
            if chunk.is_empty() {
                break;
            }
            any = true;
            let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            if self.buf.len() + take > self.max + 1 {
                return Err(TraceError::at(
                    line,
                    format!(
                        "line is longer than {}: not an event this reader takes (a trace line holds one \
                         statement; check that this is the right file)",
                        if self.max >= 1 << 20 {
                            format!("{} MiB", self.max >> 20)
                        } else {
                            format!("{} bytes", self.max)
                        }
                    ),
                ));
            }
            self.buf.extend_from_slice(&chunk[..take]);
            self.input.consume(take);
            if done {
                complete = true;
                break;
            }
        }
        if !any {
            return Ok(None);
        }
        self.lineno = line;
        if complete {
            self.buf.pop();
        }
        let text = std::str::from_utf8(&self.buf).map_err(|e| TraceError::at(line, format!("not UTF-8 text: {e}")))?;
        Ok(Some((line, text, complete)))
    }
}

pub(crate) fn read(input: impl BufRead) -> Result<Trace, TraceError> {
    let mut trace = Trace::default();
    let mut lines = Lines::new(input);
    let mut lineno = 0;
    while let Some((n, line, complete)) = lines.next_line()? {
        lineno = n;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let raw: Raw = match serde_json::from_str(text) {
            Ok(raw) => raw,
            Err(e) if !complete || e.is_eof() => {
                return Err(TraceError::at(
                    lineno,
                    "truncated trace: this line ends in the middle of an event (the trace was cut off \
                     while it was written; re-capture, or delete the partial last line)",
                ));
            }
            Err(e) => return Err(TraceError::at(lineno, format!("not a trace event (JSON object): {e}"))),
        };
        parse_line(raw, lineno, &mut trace)?;
    }
    if trace.events.is_empty() {
        return Err(TraceError::at(
            lineno,
            "the trace has no events (no open, stmt or close line)",
        ));
    }
    trace.events.sort_by_key(|e| e.ts);
    Ok(trace)
}

fn parse_line(raw: Raw, line: usize, trace: &mut Trace) -> Result<(), TraceError> {
    let missing = |field: &str| TraceError::at(line, format!("missing field `{field}`"));
    let v = raw.v.ok_or_else(|| missing("v"))?;
    if v > FORMAT_VERSION {
        return Err(TraceError::at(
            line,
            format!(
                "trace format version {v} is newer than this litehammer reads (version {FORMAT_VERSION}); \
                 update litehammer"
            ),
        ));
    }
    if v == 0 {
        return Err(TraceError::at(
            line,
            "trace format version 0 does not exist (expected 1)",
        ));
    }
    let kind = raw.kind.ok_or_else(|| missing("kind"))?;
    let pid = raw.pid.ok_or_else(|| missing("pid"))?;
    if kind == "header" {
        trace.headers.push(Header {
            pid,
            exe: raw.exe,
            redacted: raw.redacted,
            server: None,
            accepts: None,
        });
        return Ok(());
    }
    let ts = raw.ts.ok_or_else(|| missing("ts"))?;
    let tid = raw.tid.unwrap_or(pid);
    let conn = raw.conn.ok_or_else(|| missing("conn"))?;
    let kind = match kind.as_str() {
        "open" => Kind::Open {
            file: raw.file.filter(|f| !f.is_empty()).or(raw.path),
        },
        "close" => Kind::Close,
        "busy_timeout" => Kind::BusyTimeout(raw.ms.ok_or_else(|| missing("ms"))?),
        "stmt" => {
            let sql = raw.sql.ok_or_else(|| missing("sql"))?;
            Kind::Stmt(Stmt {
                dur_ns: raw.dur_ns.unwrap_or(0),
                expanded: raw.expanded.unwrap_or_else(|| sql.clone()),
                sql,
                changes: raw.changes,
                autocommit: raw.autocommit,
                txn: raw.txn,
                pragma: raw.pragma,
                rows: raw.rows,
                rowid: raw.rowid,
                request: raw.request,
                nested: raw.nested,
            })
        }
        // Consumers ignore what they do not know (a newer producer's extra kinds).
        _ => return Ok(()),
    };
    trace.events.push(Event {
        line,
        ts,
        pid,
        tid,
        conn,
        kind,
        cpu_ns: raw.cpu_ns,
        cpu_end_ns: raw.cpu_end_ns,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, TraceError> {
        read(text.as_bytes())
    }

    const OPEN: &str =
        r#"{"v":1,"kind":"open","ts":5,"pid":1,"tid":1,"conn":1,"path":"a.db","file":"/x/a.db","flags":6}"#;

    #[test]
    fn reads_events_sorted_and_ignores_unknown_fields() {
        let t = parse(&format!(
            "{{\"v\":1,\"kind\":\"header\",\"ts\":1,\"pid\":1,\"tid\":1,\"redacted\":false,\"x_extra\":[1]}}\n\
             {{\"v\":1,\"kind\":\"stmt\",\"ts\":9,\"pid\":1,\"tid\":1,\"conn\":1,\"dur_ns\":3,\"sql\":\"SELECT 1\",\"expanded\":\"SELECT 1\",\"changes\":0,\"autocommit\":true,\"readonly\":true,\"txn\":null,\"pragma\":false}}\n\
             {OPEN}\n"
        ))
        .unwrap();
        assert_eq!(t.events.len(), 2);
        assert!(matches!(t.events[0].kind, Kind::Open { .. }));
        assert_eq!(t.events[1].line, 2);
    }

    #[test]
    fn truncated_newer_and_bad_lines_name_the_line() {
        let e = parse(&format!("{OPEN}\n{{\"v\":1,\"kind\":\"stmt\",\"ts\":9,\"pi")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("truncated"), "{e}");
        let e = parse(&format!("{OPEN}\n{}\n", OPEN.replace("\"v\":1", "\"v\":2"))).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("version 2 is newer"), "{e}");
        let e = parse("hello\n").unwrap_err();
        assert!(e.message.contains("not a trace event"), "{e}");
        let e = parse(&OPEN.replace("\"conn\":1,", "")).unwrap_err();
        assert!(e.message.contains("`conn`"), "{e}");
        assert!(parse("").unwrap_err().message.contains("no events"));
    }
}
