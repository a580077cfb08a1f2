//! Node: the JSON lines the better-sqlite3 wrapper of `litehammer capture --snippet node`
//! writes (better-sqlite3's own `verbose` callback has no timing and cuts values at 32 bytes):
//!
//! `{"driver":"better-sqlite3","pid":1,"ts_ns":…,"dur_ns":…,"cpu_ns":…,"cpu_end_ns":…,"conn":1,
//!   "request":7,"method":"get","sql":"SELECT … WHERE id = ?","params":[3],"changes":0,"rows":1}`
//! `{"driver":"better-sqlite3","event":"open","pid":1,"ts_ns":…,"conn":1,"file":"/srv/app.db"}`
//! `{"driver":"better-sqlite3","event":"server","pid":1,"ts_ns":…,"software":"node/20.19.2",
//!   "cluster":true}` (once per process, at its first request through the middleware: whether
//!   it is a cluster worker, for the queue model)
//!
//! `params` are the arguments as the app passed them: values, arrays of values, and an object
//! for named parameters. `BEGIN`/`COMMIT`/`ROLLBACK` lines come from the wrapped
//! `db.transaction(fn)` (better-sqlite3 runs them itself).

use super::{Builder, Format, FwStmt, Imported, each_line, expand, key_of};
use crate::import::trace::TraceError;
use serde::Deserialize;
use std::io::BufRead;

#[derive(Deserialize)]
struct Line {
    event: Option<String>,
    pid: Option<u32>,
    ts_ns: Option<i64>,
    dur_ns: Option<u64>,
    cpu_ns: Option<i64>,
    cpu_end_ns: Option<i64>,
    conn: Option<serde_json::Value>,
    request: Option<serde_json::Value>,
    sql: Option<String>,
    params: Option<serde_json::Value>,
    changes: Option<i64>,
    rows: Option<i64>,
    file: Option<String>,
    program: Option<String>,
    software: Option<String>,
    cluster: Option<bool>,
}

pub(crate) fn read(input: impl BufRead) -> Result<Imported, TraceError> {
    let mut b = Builder::new();
    let mut no_cpu = 0usize;
    let mut no_request = 0usize;
    let last = each_line(input, Format::Node, |n, l: Line| {
        let missing = |f: &str| TraceError::at(n, format!("better-sqlite3 wrapper line: missing field `{f}`"));
        let pid = l.pid.ok_or_else(|| missing("pid"))?;
        // Node runs JavaScript (and better-sqlite3's synchronous calls) on one thread.
        let tid = pid;
        b.program(pid, l.program.as_deref().unwrap_or("node"));
        let ts = l.ts_ns.ok_or_else(|| missing("ts_ns"))?;
        if l.event.as_deref() == Some("server") {
            // The process's server, once: Node, and whether a cluster worker.
            let software = l.software.ok_or_else(|| missing("software"))?;
            let cluster = if l.cluster.unwrap_or(false) {
                " cluster worker"
            } else {
                ""
            };
            b.server(pid, &format!("{software}{cluster}"), false);
            return Ok(());
        }
        let conn = b.conn(format!(
            "{pid}/{}",
            key_of(l.conn.as_ref()).ok_or_else(|| missing("conn"))?
        ));
        match l.event.as_deref() {
            None => {}
            Some("open") => {
                b.open_close(n, ts, pid, tid, conn, Some(l.file), l.cpu_ns);
                return Ok(());
            }
            Some("close") => {
                b.open_close(n, ts, pid, tid, conn, None, l.cpu_ns);
                return Ok(());
            }
            Some(other) => {
                return Err(TraceError::at(
                    n,
                    format!("better-sqlite3 wrapper line: unknown event `{other}` (expected open, close or server)"),
                ));
            }
        }
        let sql = l.sql.ok_or_else(|| missing("sql"))?;
        let dur = l.dur_ns.ok_or_else(|| missing("dur_ns"))?;
        let mut positional = Vec::new();
        let mut named = None;
        match l.params {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(args)) => {
                for a in args {
                    match a {
                        serde_json::Value::Array(list) => positional.extend(list),
                        serde_json::Value::Object(o) if super::blob(&o).is_none() => named = Some(o),
                        v => positional.push(v),
                    }
                }
            }
            Some(other) => {
                return Err(TraceError::at(
                    n,
                    format!("better-sqlite3 wrapper line: `params` is {other}, expected the array of arguments"),
                ));
            }
        }
        let expanded = expand(&sql, &positional, named.as_ref())
            .map_err(|e| TraceError::at(n, format!("better-sqlite3 wrapper line: {e}")))?;
        if l.cpu_ns.is_none() {
            no_cpu += 1;
        }
        let request = key_of(l.request.as_ref()).map(|k| b.request(k));
        if request.is_none() && crate::import::sql::Verb::of(&sql) != crate::import::sql::Verb::Pragma {
            no_request += 1;
        }
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
            changes: l.changes,
            rows: l.rows,
            cpu_ns: l.cpu_ns,
            cpu_end_ns: l.cpu_end_ns,
        });
        Ok(())
    })?;
    let mut modelled = vec![
        "CPU: process.cpuUsage() (the process, µs; Node runs JavaScript on one thread, its GC helpers included)"
            .to_string(),
        "transactions: the BEGIN and COMMIT/ROLLBACK (SAVEPOINT/RELEASE when nested) of db.transaction() are \
         statements better-sqlite3 prepares itself; the wrapper times them as any other"
            .to_string(),
    ];
    if no_cpu > 0 {
        modelled.push(format!(
            "{no_cpu} statement(s) without a CPU reading: the wall-clock gap before them is taken as app time"
        ));
    }
    if no_request > 0 {
        modelled.push(format!(
            "{no_request} statement(s) outside a request (no `request`: the wrapper's middleware was not on their \
             path): cut into requests at idle gaps"
        ));
    }
    b.finish(Format::Node, last, modelled)
}
