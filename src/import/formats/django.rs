//! Django: the `django.db.backends` logger's records (one per statement, and BEGIN/COMMIT/
//! ROLLBACK with Django's transaction debugging), one JSON line each, as the LOGGING entry of
//! `litehammer capture --snippet django` writes them, plus `connect`/`close` lines from its
//! `connection_created` hook:
//!
//! `{"logger":"django.db.backends","pid":1,"tid":2,"end_ns":…,"duration":0.0004,"cpu_ns":…,
//!   "sql":"SELECT … WHERE id = 3","params":[3],"alias":"default","conn":4,"request":9}`
//! `{"logger":"django.db.backends","event":"connect","pid":1,"tid":2,"ts_ns":…,"cpu_ns":…,
//!   "conn":4,"file":"/srv/app/db.sqlite3"}`
//! `{"logger":"django.db.backends","event":"server","pid":1,…,"software":"gunicorn/27.0.1",
//!   "multithread":false}` (once per process, at its first request: the server's queue model)
//!
//! Django logs the SQL with the values already in it (`last_executed_query`), at the end of the
//! statement; `executemany` logs the SQL with `%s` and a list of parameter lists.

use super::{Builder, Format, FwStmt, Imported, each_line, expand, key_of, secs_to_ns};
use crate::import::trace::TraceError;
use serde::Deserialize;
use std::io::BufRead;

#[derive(Deserialize)]
struct Line {
    event: Option<String>,
    pid: Option<u32>,
    tid: Option<u64>,
    ts_ns: Option<i64>,
    end_ns: Option<i64>,
    /// Seconds, as the record's `duration`.
    duration: Option<f64>,
    /// The thread's CPU time when the line was written (the statement's end).
    cpu_ns: Option<i64>,
    /// The thread's CPU time spent writing its earlier lines (the snippet's handler), in all:
    /// taken out of `cpu_ns`, so the trace's own cost is not replayed as app time.
    tracer_ns: Option<i64>,
    sql: Option<String>,
    params: Option<serde_json::Value>,
    alias: Option<String>,
    conn: Option<serde_json::Value>,
    request: Option<serde_json::Value>,
    file: Option<String>,
    program: Option<String>,
    /// `connect`: the connection's settings read by the hook (`PRAGMA journal_mode` …).
    settings: Option<serde_json::Map<String, serde_json::Value>>,
    /// `server`: the WSGI server's `SERVER_SOFTWARE` (`gunicorn/27.0.1`) and `wsgi.multithread`.
    software: Option<String>,
    multithread: Option<bool>,
}

/// A statement shorter than this is taken as all CPU when placing its start's CPU reading.
const CPU_STMT_NS: u64 = 1_000_000;

pub(crate) fn read(input: impl BufRead) -> Result<Imported, TraceError> {
    let mut b = Builder::new();
    let mut no_conn = 0usize;
    let mut no_cpu = 0usize;
    let mut many = 0usize;
    let mut opens = 0usize;
    // The settings' names, and how many times one was read (every connect reads them all).
    let mut settings = std::collections::BTreeSet::new();
    let mut settings_read = 0usize;
    let mut aliases: Vec<String> = Vec::new();
    let mut tracer = (0usize, 0i64);
    let last = each_line(input, Format::Django, |n, mut l: Line| {
        let missing = |f: &str| TraceError::at(n, format!("Django log record: missing field `{f}`"));
        if let (Some(c), Some(t)) = (l.cpu_ns, l.tracer_ns) {
            if t < 0 || t > c {
                return Err(TraceError::at(
                    n,
                    format!("Django log record: tracer_ns {t} is not between 0 and the thread's CPU time cpu_ns {c}"),
                ));
            }
            l.cpu_ns = Some(c - t);
            tracer = (tracer.0 + 1, tracer.1.max(t));
        }
        let pid = l.pid.ok_or_else(|| missing("pid"))?;
        let tid = b.thread(pid, l.tid.unwrap_or(pid as u64));
        b.program(pid, l.program.as_deref().unwrap_or("django"));
        let conn_key = key_of(l.conn.as_ref());
        if l.event.as_deref() == Some("server") {
            // The HTTP server the process runs (its WSGI `SERVER_SOFTWARE`), once per process.
            if let Some(s) = l.software.as_deref().filter(|s| !s.is_empty()) {
                b.server(pid, s, l.multithread.unwrap_or(false));
            }
            return Ok(());
        }
        if let Some(ev) = l.event.as_deref() {
            let ts = l.ts_ns.ok_or_else(|| missing("ts_ns"))?;
            let conn = b.conn(format!("{pid}/{}", conn_key.ok_or_else(|| missing("conn"))?));
            match ev {
                "connect" => {
                    opens += 1;
                    b.open_close(n, ts, pid, tid, conn, Some(l.file), l.cpu_ns);
                    // Django's own set-up statements run on the raw connection, unlogged: the
                    // settings the hook read stand for them, as the PRAGMAs that set them.
                    for (k, v) in l.settings.iter().flatten() {
                        let value = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        if !k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                            || !value
                                .bytes()
                                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                        {
                            return Err(TraceError::at(
                                n,
                                format!("Django connect line: setting `{k}` = {v} is not a PRAGMA value"),
                            ));
                        }
                        settings.insert(k.clone());
                        settings_read += 1;
                        let sql = format!("PRAGMA {k} = {value}");
                        b.stmt(FwStmt {
                            line: n,
                            ts,
                            dur_ns: 0,
                            pid,
                            tid,
                            conn,
                            request: None,
                            expanded: sql.clone(),
                            sql,
                            changes: None,
                            rows: None,
                            cpu_ns: None,
                            cpu_end_ns: None,
                        });
                    }
                }
                "close" => b.open_close(n, ts, pid, tid, conn, None, l.cpu_ns),
                other => {
                    return Err(TraceError::at(
                        n,
                        format!("Django log record: unknown event `{other}` (expected connect, close or server)"),
                    ));
                }
            }
            return Ok(());
        }
        let sql = l.sql.ok_or_else(|| missing("sql"))?;
        let end = l.end_ns.ok_or_else(|| missing("end_ns"))?;
        let dur = l
            .duration
            .filter(|d| *d >= 0.0)
            .map(|d| secs_to_ns(d) as u64)
            .ok_or_else(|| missing("duration"))?;
        if let Some(a) = l.alias
            && !aliases.contains(&a)
        {
            aliases.push(a);
        }
        let conn = match conn_key {
            Some(c) => b.conn(format!("{pid}/{c}")),
            None => {
                no_conn += 1;
                b.conn(format!("{pid}/thread {tid}"))
            }
        };
        let request = key_of(l.request.as_ref()).map(|k| b.request(k));
        // executemany: the SQL with %s and one parameter list per execution.
        let runs: Vec<(String, String)> = match &l.params {
            Some(serde_json::Value::Array(sets))
                if sql.contains("%s") && !sets.is_empty() && sets.iter().all(|s| s.is_array()) =>
            {
                many += 1;
                let text = sql.replace("%s", "?");
                sets.iter()
                    .map(|set| {
                        let values = set.as_array().map(Vec::as_slice).unwrap_or_default();
                        expand(&text, values, None)
                            .map(|e| (text.clone(), e))
                            .map_err(|e| TraceError::at(n, format!("Django executemany: {e}")))
                    })
                    .collect::<Result<_, _>>()?
            }
            _ => vec![(sql.clone(), sql)],
        };
        let k = runs.len() as u64;
        let each = dur / k;
        let start = end - dur as i64;
        for (i, (sql, expanded)) in runs.into_iter().enumerate() {
            let ts = start + (each * i as u64) as i64;
            let (cpu_ns, cpu_end_ns) = match l.cpu_ns {
                // The reading is at the end; a short statement is taken as all CPU (the
                // start's reading is the end's minus its duration), a long one as waiting.
                Some(c) if i as u64 + 1 == k => ((dur < CPU_STMT_NS).then(|| c - dur as i64), Some(c)),
                Some(_) => (None, None),
                None => {
                    no_cpu += 1;
                    (None, None)
                }
            };
            b.stmt(FwStmt {
                line: n,
                ts,
                dur_ns: each,
                pid,
                tid,
                conn,
                request,
                sql,
                expanded,
                changes: None,
                rows: None,
                cpu_ns,
                cpu_end_ns,
            });
        }
        Ok(())
    })?;
    let mut modelled = vec![
        "values: Django logs the SQL with its values written in (last_executed_query), so every literal of a \
         statement is a parameter (replayed as captured; a constant where it never varies), where a captured \
         trace keeps the app's own literals (`views + 1`) in the text"
            .to_string(),
        "CPU: one reading when each line is written (a statement's end); a statement under 1 ms is taken as all \
         CPU, so its start's reading is the end's minus its duration"
            .to_string(),
        "rows changed and returned: not in the log (unknown)".to_string(),
    ];
    if !settings.is_empty() {
        let names: Vec<&str> = settings.iter().map(String::as_str).collect();
        modelled.push(format!(
            "settings: Django's connection set-up (its PRAGMAs, sqlite_compileoption_used) is not logged; the \
             {} setting(s) the hook read at connect ({}; {settings_read} readings in all) are written as \
             `PRAGMA name = value` statements of duration 0",
            names.len(),
            names.join(", ")
        ));
    }
    if opens == 0 {
        modelled.push(
            "connections: no connect/close lines (the LOGGING entry without the connection_created hook): \
             requests are cut at idle gaps on one connection per thread"
                .into(),
        );
    }
    if no_conn > 0 {
        modelled.push(format!(
            "{no_conn} statement(s) without a connection id: one connection per thread"
        ));
    }
    if tracer.0 > 0 {
        modelled.push(format!(
            "the trace's own cost: {} line(s) carry the CPU their thread spent writing earlier lines (tracer_ns, \
             up to {:.1} ms on one thread); it is taken out of the CPU readings, so it is not replayed as app time",
            tracer.0,
            tracer.1 as f64 / 1e6
        ));
    }
    if no_cpu > 0 {
        modelled.push(format!(
            "{no_cpu} statement(s) without a CPU reading: the wall-clock gap before them is taken as app time"
        ));
    }
    if many > 0 {
        modelled.push(format!(
            "{many} executemany record(s): one statement per parameter list, the duration shared evenly"
        ));
    }
    if aliases.len() > 1 {
        modelled.push(format!(
            "the log has {} database aliases ({}): the app's database is the connect lines' file with the most \
             statements, the others are kept apart as for a captured trace",
            aliases.len(),
            aliases.join(", ")
        ));
    }
    b.finish(Format::Django, last, modelled)
}
