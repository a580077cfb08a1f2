//! Rails: `ActiveSupport::Notifications` `sql.active_record` events (and
//! `transaction.active_record`, Rails 7.1+), one JSON line each, as the initializer of
//! `litehammer capture --snippet rails` writes them:
//!
//! `{"event":"sql.active_record","pid":1,"tid":2,"ts_ns":…,"dur_ns":…,"cpu_ns":…,"cpu_end_ns":…,
//!   "request":"…","connection_id":…,"name":"Post Load","sql":"SELECT … WHERE id = ?",
//!   "type_casted_binds":[1],"cached":false,"program":"puma"}`

use super::{Builder, Format, FwStmt, Imported, each_line, expand, key_of};
use crate::import::sql::Verb;
use crate::import::trace::TraceError;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::io::BufRead;

#[derive(Deserialize)]
struct Line {
    event: String,
    pid: Option<u32>,
    tid: Option<u64>,
    ts_ns: Option<i64>,
    dur_ns: Option<u64>,
    /// Milliseconds, as `ActiveSupport::Notifications::Event#duration` gives it.
    duration: Option<f64>,
    cpu_ns: Option<i64>,
    cpu_end_ns: Option<i64>,
    request: Option<serde_json::Value>,
    connection_id: Option<serde_json::Value>,
    sql: Option<String>,
    name: Option<String>,
    binds: Option<serde_json::Value>,
    type_casted_binds: Option<serde_json::Value>,
    #[serde(default)]
    cached: bool,
    /// `transaction.active_record`: commit, rollback, restart, incomplete.
    outcome: Option<String>,
    row_count: Option<i64>,
    program: Option<String>,
    /// `server`: the Rack env's `SERVER_SOFTWARE` (`puma 5.6.5 …`) and `rack.multithread`.
    software: Option<String>,
    multithread: Option<bool>,
}

struct Txn {
    line: usize,
    ts: i64,
    dur: u64,
    pid: u32,
    tid: u32,
    request: Option<u64>,
    outcome: String,
}

/// The initializer's line naming the Rack server, once per process (not an Active Support event).
pub(crate) const SERVER_EVENT: &str = "server.rack";

pub(crate) fn read(input: impl BufRead) -> Result<Imported, TraceError> {
    let mut b = Builder::new();
    let mut cached = 0usize;
    let mut no_cpu = 0usize;
    let mut conns: BTreeSet<String> = BTreeSet::new();
    let mut no_conn = 0usize;
    let mut txn_sql = false;
    let mut txns: Vec<Txn> = Vec::new();
    let last = each_line(input, Format::Rails, |n, l: Line| {
        let missing = |f: &str| TraceError::at(n, format!("Rails event: missing field `{f}`"));
        let pid = l.pid.ok_or_else(|| missing("pid"))?;
        let tid = b.thread(pid, l.tid.unwrap_or(pid as u64));
        if l.event == SERVER_EVENT {
            // The Rack server the process runs (`SERVER_SOFTWARE`), once per process.
            b.program(pid, l.program.as_deref().unwrap_or("rails"));
            if let Some(s) = l.software.as_deref().filter(|s| !s.is_empty()) {
                b.server(pid, s, l.multithread.unwrap_or(false));
            }
            return Ok(());
        }
        let ts = l.ts_ns.ok_or_else(|| missing("ts_ns"))?;
        let dur = match (l.dur_ns, l.duration) {
            (Some(d), _) => d,
            (None, Some(ms)) if ms >= 0.0 => (ms * 1e6).round() as u64,
            _ => return Err(missing("dur_ns")),
        };
        b.program(pid, l.program.as_deref().unwrap_or("rails"));
        let request = key_of(l.request.as_ref()).map(|k| b.request(k));
        match l.event.as_str() {
            "sql.active_record" => {}
            "transaction.active_record" => {
                txns.push(Txn {
                    line: n,
                    ts,
                    dur,
                    pid,
                    tid,
                    request,
                    outcome: l.outcome.unwrap_or_else(|| "commit".into()),
                });
                return Ok(());
            }
            // Other Active Record events (instantiation, strict loading …) run no SQL.
            _ => return Ok(()),
        }
        let sql = l.sql.ok_or_else(|| missing("sql"))?;
        if l.cached {
            // A query-cache hit: Rails answered from memory, SQLite never saw it.
            cached += 1;
            return Ok(());
        }
        let binds = l.type_casted_binds.or(l.binds).unwrap_or(serde_json::Value::Null);
        let (positional, named) = match &binds {
            serde_json::Value::Null => (Vec::new(), None),
            serde_json::Value::Array(a) => (a.clone(), None),
            serde_json::Value::Object(o) => (Vec::new(), Some(o)),
            other => {
                return Err(TraceError::at(
                    n,
                    format!("Rails event: `type_casted_binds` is {other}, expected an array of values"),
                ));
            }
        };
        let expanded = expand(&sql, &positional, named).map_err(|e| {
            TraceError::at(
                n,
                format!(
                    "Rails event{}: binds of a type litehammer cannot replay: {e}",
                    l.name.as_deref().map(|x| format!(" `{x}`")).unwrap_or_default()
                ),
            )
        })?;
        if matches!(Verb::of(&sql), Verb::Begin | Verb::Commit | Verb::Rollback) {
            txn_sql = true;
        }
        if l.cpu_ns.is_none() {
            no_cpu += 1;
        }
        match key_of(l.connection_id.as_ref()) {
            Some(c) => {
                conns.insert(format!("{pid}/{c}"));
            }
            None => no_conn += 1,
        }
        // The pool lends a thread a connection per request: one connection per worker thread.
        let conn = b.conn(format!("{pid}/{tid}"));
        b.stmt(FwStmt {
            line: n,
            ts,
            dur_ns: dur,
            pid,
            tid,
            conn,
            request,
            sql,
            expanded,
            changes: None,
            rows: l.row_count,
            cpu_ns: l.cpu_ns,
            cpu_end_ns: l.cpu_end_ns,
        });
        Ok(())
    })?;
    let mut modelled = vec![format!(
        "connections: Rails' pool lends each request a connection ({} distinct connection_id seen{}); modelled as \
         one persistent connection per worker thread",
        conns.len(),
        if no_conn > 0 {
            format!(", {no_conn} event(s) without one")
        } else {
            String::new()
        }
    )];
    modelled.push(
        "rows changed: sql.active_record does not carry them (changes unknown; INSERT keys get seq(...) from the \
         schema)"
            .into(),
    );
    if cached > 0 {
        modelled.push(format!(
            "{cached} query-cache hit(s) (cached: true) never reached SQLite: not replayed"
        ));
    }
    if no_cpu > 0 {
        modelled.push(format!(
            "{no_cpu} statement(s) without CPU readings (cpu_ns): the wall-clock gap before them is taken as app \
             time"
        ));
    }
    if !txns.is_empty() {
        if txn_sql {
            modelled.push(format!(
                "{} transaction.active_record event(s) ignored: the sql.active_record events already hold the \
                 BEGIN and COMMIT statements",
                txns.len()
            ));
        } else {
            modelled.push(format!(
                "{} transaction(s) from transaction.active_record: BEGIN at its start and COMMIT (or ROLLBACK) at \
                 its end, each of duration 0 (Rails sent no statement event for them)",
                txns.len()
            ));
            for t in txns {
                let conn = b.conn(format!("{}/{}", t.pid, t.tid));
                let end = if t.outcome == "commit" { "COMMIT" } else { "ROLLBACK" };
                // Just before the first statement, which may start at the same instant.
                for (ts, sql) in [(t.ts - 1, "BEGIN"), (t.ts + t.dur as i64, end)] {
                    b.stmt(FwStmt {
                        line: t.line,
                        ts,
                        dur_ns: 0,
                        pid: t.pid,
                        tid: t.tid,
                        conn,
                        request: t.request,
                        sql: sql.into(),
                        expanded: sql.into(),
                        changes: None,
                        rows: None,
                        cpu_ns: None,
                        cpu_end_ns: None,
                    });
                }
            }
        }
    }
    b.finish(Format::Rails, last, modelled)
}
