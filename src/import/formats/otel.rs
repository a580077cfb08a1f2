//! OpenTelemetry: OTLP/JSON trace exports (`ExportTraceServiceRequest`, one a line, as the
//! collector's file exporter and the SDKs' OTLP/JSON file exporters write them). The SQLite
//! client spans (`db.system.name` or `db.system` = `sqlite`) with their text (`db.query.text`
//! or `db.statement`) are the statements; their trace (`traceId`) is the request. Spans have
//! no CPU time unless a span processor adds it: `litehammer.cpu_start_ns` and
//! `litehammer.cpu_end_ns`, the thread's CPU time at the span's start and end
//! (snippets/trace/otel_cpu.py for the Python SDK, with `thread.id`).

use super::{Builder, Format, FwStmt, Imported, each_line, expand};
use crate::import::trace::{Accepts, TraceError};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufRead;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Export {
    #[serde(default, alias = "resource_spans")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    resource: Option<Resource>,
    #[serde(default, alias = "scope_spans", alias = "instrumentationLibrarySpans")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Span {
    #[serde(alias = "trace_id")]
    trace_id: String,
    #[serde(alias = "span_id")]
    span_id: String,
    #[serde(default, alias = "parent_span_id")]
    parent_span_id: String,
    #[serde(default)]
    name: String,
    /// `SpanKind`: 2 (or `SPAN_KIND_SERVER`) for a server's request span.
    #[serde(default)]
    kind: serde_json::Value,
    #[serde(alias = "start_time_unix_nano")]
    start_time_unix_nano: serde_json::Value,
    #[serde(alias = "end_time_unix_nano")]
    end_time_unix_nano: serde_json::Value,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

/// An `AnyValue` as a plain JSON value (`intValue` is a string in OTLP/JSON).
fn any_value(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    let Some(o) = v.as_object() else { return J::Null };
    if let Some(s) = o.get("stringValue").or_else(|| o.get("string_value")) {
        return s.clone();
    }
    if let Some(i) = o.get("intValue").or_else(|| o.get("int_value")) {
        return match i {
            J::String(s) => s.parse::<i64>().map(J::from).unwrap_or(J::Null),
            other => other.clone(),
        };
    }
    if let Some(d) = o.get("doubleValue").or_else(|| o.get("double_value")) {
        return d.clone();
    }
    if let Some(b) = o.get("boolValue").or_else(|| o.get("bool_value")) {
        return b.clone();
    }
    J::Null
}

fn attr<'a>(attrs: &'a [KeyValue], keys: &[&str]) -> Option<&'a serde_json::Value> {
    keys.iter()
        .find_map(|k| attrs.iter().find(|a| a.key == *k).map(|a| &a.value))
}

fn nanos(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

/// The span processor's CPU readings (snippets/trace/otel_cpu.py).
const CPU_START: &str = "litehammer.cpu_start_ns";
const CPU_END: &str = "litehammer.cpu_end_ns";

/// A span's CPU readings: both or neither; each a non-negative integer, the end not before the
/// start.
fn cpu_readings(attrs: &[KeyValue]) -> Result<Option<(i64, i64)>, String> {
    let read = |key: &str| -> Result<Option<i64>, String> {
        let Some(v) = attr(attrs, &[key]) else { return Ok(None) };
        let int = v
            .as_object()
            .and_then(|o| o.get("intValue").or_else(|| o.get("int_value")));
        let n = match int {
            Some(serde_json::Value::String(s)) => s.parse::<i64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            _ => None,
        };
        match n {
            Some(n) if n >= 0 => Ok(Some(n)),
            Some(n) => Err(format!("{key} is {n}: a CPU time cannot be negative")),
            None => Err(format!("{key} is not an integer (intValue): {v}")),
        }
    };
    match (read(CPU_START)?, read(CPU_END)?) {
        (Some(a), Some(b)) if b >= a => Ok(Some((a, b))),
        (Some(a), Some(b)) => Err(format!("{CPU_END} {b} is before {CPU_START} {a}")),
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!("{CPU_START} without {CPU_END}")),
        (None, Some(_)) => Err(format!("{CPU_END} without {CPU_START}")),
    }
}

struct DbSpan {
    line: usize,
    pid: u32,
    thread: Option<u64>,
    trace: String,
    start: i64,
    end: i64,
    sql: String,
    expanded: String,
    values: bool,
    /// The thread's CPU time at the span's start and end.
    cpu: Option<(i64, i64)>,
}

pub(crate) fn read(input: impl BufRead) -> Result<Imported, TraceError> {
    let mut spans: Vec<DbSpan> = Vec::new();
    let mut ids: HashSet<String> = HashSet::new();
    let mut parents: Vec<(usize, String, String)> = Vec::new();
    let mut no_text = 0usize;
    let mut no_pid = 0usize;
    let mut other_db = 0usize;
    // Per process and trace: from its first span's start to its last one's end (the request
    // span, the server's, holds its SQLite spans).
    let mut windows: HashMap<(u32, String), (i64, i64)> = HashMap::new();
    // The same on the CPU readings: from the first reading to the last.
    let mut cpu_windows: HashMap<(u32, String), (i64, i64)> = HashMap::new();
    // Per process: its parent, and its request spans' (the roots') server port and client
    // connections, for the queue model.
    let mut servers: BTreeMap<u32, Served> = BTreeMap::new();
    let last = each_line(input, Format::Otel, |n, e: Export| {
        for (ri, rs) in e.resource_spans.iter().enumerate() {
            let rattrs = rs
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let pid = match attr(rattrs, &["process.pid"]).map(any_value).and_then(|v| v.as_u64()) {
                Some(p) => p as u32,
                None => {
                    no_pid += 1;
                    // Each resource without a pid is a process of its own.
                    (1 << 31) | ((n as u32) << 8) | ri as u32
                }
            };
            let parent = attr(rattrs, &["process.parent_pid"])
                .map(any_value)
                .and_then(|v| v.as_u64())
                .map(|p| p as u32);
            for s in rs.scope_spans.iter().flat_map(|ss| &ss.spans) {
                ids.insert(s.span_id.clone());
                // A request span: the server's (its parent may be the client's, in another
                // service), or a root.
                let server = s.kind.as_i64() == Some(2) || s.kind.as_str() == Some("SPAN_KIND_SERVER");
                if server || s.parent_span_id.is_empty() {
                    let start = nanos(&s.start_time_unix_nano).unwrap_or_default();
                    servers.entry(pid).or_default().root(parent, start, &s.attributes);
                }
                let cpu = cpu_readings(&s.attributes)
                    .map_err(|e| TraceError::at(n, format!("OTLP span {} (`{}`): {e}", s.span_id, s.name)))?;
                if let Some((a, b)) = cpu {
                    let w = cpu_windows.entry((pid, s.trace_id.clone())).or_insert((a, b));
                    w.0 = w.0.min(a);
                    w.1 = w.1.max(b);
                }
                if let (Some(a), Some(b)) = (nanos(&s.start_time_unix_nano), nanos(&s.end_time_unix_nano))
                    && b >= a
                {
                    let w = windows.entry((pid, s.trace_id.clone())).or_insert((a, b));
                    w.0 = w.0.min(a);
                    w.1 = w.1.max(b);
                }
                let system = attr(&s.attributes, &["db.system.name", "db.system"]).map(any_value);
                let Some(system) = system else { continue };
                if system.as_str() != Some("sqlite") {
                    other_db += 1;
                    continue;
                }
                let Some(sql) = attr(&s.attributes, &["db.query.text", "db.statement"])
                    .map(any_value)
                    .and_then(|v| v.as_str().map(str::to_string))
                else {
                    no_text += 1;
                    continue;
                };
                if s.parent_span_id.is_empty() {
                    return Err(TraceError::at(
                        n,
                        format!(
                            "OTLP span {} (`{}`, trace {}) is a SQLite span without a parent: a statement outside any \
                             request. Import takes each trace's request span as the request; instrument the server \
                             (its HTTP or job instrumentation) so that database spans have a parent",
                            s.span_id, s.name, s.trace_id
                        ),
                    ));
                }
                parents.push((n, s.parent_span_id.clone(), s.span_id.clone()));
                let (start, end) = match (nanos(&s.start_time_unix_nano), nanos(&s.end_time_unix_nano)) {
                    (Some(a), Some(b)) if b >= a => (a, b),
                    _ => {
                        return Err(TraceError::at(
                            n,
                            format!(
                                "OTLP span {}: startTimeUnixNano/endTimeUnixNano missing or end before start",
                                s.span_id
                            ),
                        ));
                    }
                };
                // db.query.parameter.<key>: an index (0-based) or a name.
                let mut positional: BTreeMap<usize, serde_json::Value> = BTreeMap::new();
                let mut named = serde_json::Map::new();
                for a in &s.attributes {
                    if let Some(k) = a.key.strip_prefix("db.query.parameter.") {
                        match k.parse::<usize>() {
                            Ok(i) => {
                                positional.insert(i, any_value(&a.value));
                            }
                            Err(_) => {
                                named.insert(k.to_string(), any_value(&a.value));
                            }
                        }
                    }
                }
                let values = !positional.is_empty() || !named.is_empty();
                let expanded = if values {
                    let list: Vec<serde_json::Value> = positional.into_values().collect();
                    expand(&sql, &list, Some(&named))
                        .map_err(|e| TraceError::at(n, format!("OTLP span {}: {e}", s.span_id)))?
                } else {
                    sql.clone()
                };
                spans.push(DbSpan {
                    line: n,
                    pid,
                    thread: attr(&s.attributes, &["thread.id"])
                        .map(any_value)
                        .and_then(|v| v.as_u64()),
                    trace: s.trace_id.clone(),
                    start,
                    end,
                    sql,
                    expanded,
                    values,
                    cpu,
                });
            }
        }
        Ok(())
    })?;
    let orphans = parents.iter().filter(|(_, p, _)| !ids.contains(p)).count();
    // With CPU readings on some SQLite spans, every one must have them: a statement without
    // one would take a wall-clock gap on a CPU clock.
    let with_cpu = spans.iter().filter(|s| s.cpu.is_some()).count();
    if with_cpu > 0
        && let Some(s) = spans.iter().find(|s| s.cpu.is_none())
    {
        return Err(TraceError::at(
            s.line,
            format!(
                "OTLP SQLite span `{}` (trace {}) has no {CPU_START} / {CPU_END} where {with_cpu} other SQLite \
                 span(s) have them: every span must come through the span processor that reads the CPU \
                 (snippets/trace/otel_cpu.py), or none",
                s.sql.chars().take(60).collect::<String>(),
                s.trace
            ),
        ));
    }
    let cpu_mode = with_cpu > 0;

    // Workers: the span's thread.id; without one, each process's requests (traces) are laid
    // on as few virtual workers as never run two at once.
    let threads = spans.iter().filter(|s| s.thread.is_some()).count();
    let mut virtual_of: BTreeMap<(u32, String), u64> = BTreeMap::new();
    let mut virtual_workers = 0usize;
    {
        let mut spans_of: BTreeMap<(u32, &str), (i64, i64)> = BTreeMap::new();
        for s in spans.iter().filter(|s| s.thread.is_none()) {
            let e = spans_of.entry((s.pid, &s.trace)).or_insert_with(|| {
                windows
                    .get(&(s.pid, s.trace.clone()))
                    .copied()
                    .unwrap_or((s.start, s.end))
            });
            e.0 = e.0.min(s.start);
            e.1 = e.1.max(s.end);
        }
        let mut by_pid: BTreeMap<u32, Vec<(i64, i64, &str)>> = BTreeMap::new();
        for ((pid, trace), (a, b)) in spans_of {
            by_pid.entry(pid).or_default().push((a, b, trace));
        }
        for (pid, mut reqs) in by_pid {
            reqs.sort();
            let mut free_at: Vec<i64> = Vec::new();
            for (a, b, trace) in reqs {
                let w = match free_at.iter().position(|f| *f <= a) {
                    Some(w) => w,
                    None => {
                        free_at.push(0);
                        free_at.len() - 1
                    }
                };
                free_at[w] = b;
                virtual_of.insert((pid, trace.to_string()), w as u64 + 1);
            }
            virtual_workers += free_at.len();
        }
    }
    let without_values = spans
        .iter()
        .filter(|s| {
            !s.values && litehammer_trace::lex::tokens(&s.sql).any(|t| t.kind == litehammer_trace::lex::Kind::Param)
        })
        .count();
    // App time without CPU readings: each worker gets a clock that runs only inside its
    // requests' windows, given to import as CPU readings around each statement: the time before
    // a request's first statement and after its last (routing, rendering) counts as the
    // request's app time, the time between requests does not. It is wall-clock time: it holds
    // waiting for a core.
    // With CPU readings: a worker with a thread.id takes its thread's readings as they are (the
    // CPU between requests, the server's own work, counts, as on the other routes); a virtual
    // worker (no thread.id, so its requests may have run on several threads) a clock that runs
    // with each request's readings, from its first to its last, and not between requests.
    let worker_of = |s: &DbSpan| {
        (
            s.pid,
            s.thread
                .unwrap_or_else(|| (1 << 40) | virtual_of[&(s.pid, s.trace.clone())]),
        )
    };
    let mut b = Builder::new();
    for (pid, served) in servers {
        if let Some(a) = served.accepts() {
            b.accepts(pid, a);
        }
    }
    let mut clocks: HashMap<(u32, u64), Clock> = HashMap::new();
    {
        let mut of_worker: HashMap<(u32, u64), Vec<(i64, i64)>> = HashMap::new();
        let mut seen: HashSet<(u32, u64, &str)> = HashSet::new();
        for s in &spans {
            let w = worker_of(s);
            if seen.insert((w.0, w.1, &s.trace)) {
                let win = windows
                    .get(&(s.pid, s.trace.clone()))
                    .copied()
                    .unwrap_or((s.start, s.end));
                of_worker.entry(w).or_default().push(win);
            }
        }
        for (w, list) in of_worker {
            clocks.insert(w, Clock::new(list));
        }
    }
    // Per virtual worker and trace, with CPU readings: what to add to a reading.
    let mut cpu_offset: HashMap<(u32, String), i64> = HashMap::new();
    if cpu_mode {
        let mut of_worker: HashMap<(u32, u64), Vec<(i64, String)>> = HashMap::new();
        let mut seen: HashSet<(u32, &str)> = HashSet::new();
        for s in spans.iter().filter(|s| s.thread.is_none()) {
            if seen.insert((s.pid, &s.trace)) {
                let start = windows.get(&(s.pid, s.trace.clone())).map_or(s.start, |w| w.0);
                of_worker
                    .entry(worker_of(s))
                    .or_default()
                    .push((start, s.trace.clone()));
            }
        }
        for ((pid, _), mut list) in of_worker {
            list.sort();
            let mut clock = 0;
            for (_, trace) in list {
                let (a, b) = cpu_windows[&(pid, trace.clone())];
                cpu_offset.insert((pid, trace), clock - a);
                clock += b - a;
            }
        }
    }
    for s in spans {
        let worker = worker_of(&s);
        let (cpu_ns, cpu_end_ns) = match (s.cpu, s.thread) {
            (Some(c), Some(_)) => c,
            (Some((a, b)), None) => {
                let off = cpu_offset[&(s.pid, s.trace.clone())];
                (a + off, b + off)
            }
            (None, _) => {
                let clock = &clocks[&worker];
                (clock.at(s.start), clock.at(s.end))
            }
        };
        let tid_key = worker.1;
        let tid = b.thread(s.pid, tid_key);
        b.program(s.pid, "otel");
        let conn = b.conn(format!("{}/{tid}", s.pid));
        let request = Some(b.request(s.trace));
        b.stmt(FwStmt {
            line: s.line,
            ts: s.start,
            dur_ns: (s.end - s.start) as u64,
            pid: s.pid,
            tid,
            conn,
            request,
            sql: s.sql,
            expanded: s.expanded,
            changes: None,
            rows: None,
            cpu_ns: Some(cpu_ns),
            cpu_end_ns: Some(cpu_end_ns),
        });
    }
    let mut modelled = vec![
        "requests: one per trace (traceId); a sampling SDK exports only the sampled ones".to_string(),
        "connections: spans do not name one; modelled as one persistent connection per worker".to_string(),
        if cpu_mode {
            "CPU: the spans carry their thread's CPU time (litehammer.cpu_start_ns / litehammer.cpu_end_ns, the \
             span processor of snippets/trace/otel_cpu.py); a request's app time is its worker's CPU between its \
             statements and, before its first, since the worker's previous statement (the server's own work \
             between requests included), as on the other routes: not the wall-clock time, so not waiting for a \
             core. The processor takes its own cost out of the readings; the rest of the SDK's cost (creating \
             spans, the instrumentations) is in them"
                .to_string()
        } else {
            "CPU: spans have none; a request's app time is the wall-clock time inside its trace's spans (the \
             request span) outside its SQLite spans: before the first statement, between statements and after \
             the last; it includes waiting for a core on a loaded machine, and not the server's work outside the \
             request span (a span processor can add the CPU: snippets/trace/otel_cpu.py)"
                .to_string()
        },
        "rows changed and returned: not in the spans (unknown)".to_string(),
    ];
    if threads == 0 || virtual_workers > 0 {
        modelled.push(format!(
            "workers: {virtual_workers} virtual worker(s): spans without thread.id are laid, per process, on as few \
             workers as never run two requests at once"
        ));
        if cpu_mode {
            modelled.push(
                "CPU on virtual workers: spans without thread.id may come from several threads, so each request's \
                 readings count from its first to its last (its request span's), and the CPU between requests is \
                 not counted"
                    .to_string(),
            );
        }
    }
    if without_values > 0 {
        modelled.push(format!(
            "values: {without_values} span(s) with parameters have no db.query.parameter.* attributes \
             (instrumentations sanitize them): with --db, each `?` without a value draws from the column it is \
             compared with or written to in the copy (the script comments say which); where the copy gives no \
             evidence it is fill_in(...), for you to replace with a generator (a literal left in the text is \
             replayed as it is)"
        ));
    }
    if no_pid > 0 {
        modelled.push(format!(
            "{no_pid} resource(s) without process.pid: each taken as a process of its own"
        ));
    }
    if orphans > 0 {
        modelled.push(format!(
            "{orphans} SQLite span(s) whose parent is not in the export: their trace is still their request"
        ));
    }
    if no_text > 0 {
        modelled.push(format!(
            "{no_text} SQLite span(s) without db.query.text or db.statement: skipped (no SQL to replay)"
        ));
    }
    if other_db > 0 {
        modelled.push(format!(
            "{other_db} database span(s) of another system than sqlite: skipped"
        ));
    }
    b.finish(Format::Otel, last, modelled)
}

/// A request on the same client address and port as one of the process's requests less than
/// this long before it came on the same connection (keep-alive); one later, on a new
/// connection that got the same port (a client cycles through its ports).
const SAME_CONNECTION_NS: i64 = 5_000_000_000;

/// A process's request spans (server spans, or roots): its parent, the ports they came to, and
/// their clients' connections: the socket's attributes first (`network.*`, then the older
/// `net.*`), then the logical ones (`client.*`, `server.*`), which a proxy's forwarded
/// headers may set.
#[derive(Default)]
struct Served {
    parent: Option<u32>,
    ports: HashSet<i64>,
    /// (client address, client port, request start), in the export's order.
    clients: Vec<(String, i64, i64)>,
}

impl Served {
    fn root(&mut self, parent: Option<u32>, start: i64, attrs: &[KeyValue]) {
        self.parent = self.parent.or(parent);
        let int = |keys: &[&str]| attr(attrs, keys).map(any_value).and_then(|v| v.as_i64());
        if let Some(port) = int(&["network.local.port", "net.host.port", "server.port"]) {
            self.ports.insert(port);
        }
        let port = int(&[
            "network.peer.port",
            "net.sock.peer.port",
            "net.peer.port",
            "client.port",
        ]);
        if let Some(port) = port {
            let addr = attr(
                attrs,
                &[
                    "network.peer.address",
                    "net.sock.peer.addr",
                    "net.peer.ip",
                    "client.address",
                ],
            )
            .map(any_value)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
            self.clients.push((addr, port, start));
        }
    }

    /// None where the spans name no client port.
    fn accepts(mut self) -> Option<Accepts> {
        if self.clients.is_empty() {
            return None;
        }
        // A new connection: a client address and port not seen in SAME_CONNECTION_NS before.
        self.clients.sort_unstable_by_key(|c| c.2);
        let mut last: HashMap<(&str, i64), i64> = HashMap::new();
        let mut connections = 0;
        for (addr, port, start) in &self.clients {
            match last.insert((addr.as_str(), *port), *start) {
                Some(before) if start - before < SAME_CONNECTION_NS => {}
                _ => connections += 1,
            }
        }
        Some(Accepts {
            processes: 1,
            parent: self.parent,
            port: (self.ports.len() == 1).then(|| self.ports.into_iter().next()).flatten(),
            requests: self.clients.len(),
            connections,
        })
    }
}

/// A worker's clock that runs only inside its requests' windows (merged where they overlap).
struct Clock {
    /// Merged windows in time order, each with the clock's value at its start.
    runs: Vec<(i64, i64, i64)>,
}

impl Clock {
    fn new(mut windows: Vec<(i64, i64)>) -> Self {
        windows.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (a, b) in windows {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut total = 0;
        let runs = merged
            .into_iter()
            .map(|(a, b)| {
                let r = (a, b, total);
                total += b - a;
                r
            })
            .collect();
        Clock { runs }
    }

    /// The time spent inside the windows up to `t`.
    fn at(&self, t: i64) -> i64 {
        let i = self.runs.partition_point(|r| r.0 <= t);
        match i.checked_sub(1).map(|j| self.runs[j]) {
            Some((a, b, before)) => before + (t.min(b) - a),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn the_clock_runs_only_inside_requests() {
        let c = Clock::new(vec![(100, 200), (150, 250), (400, 450)]);
        assert_eq!(c.at(50), 0);
        assert_eq!(c.at(120), 20);
        assert_eq!(c.at(250), 150);
        assert_eq!(c.at(300), 150);
        assert_eq!(c.at(420), 170);
        assert_eq!(c.at(1000), 200);
    }
}
