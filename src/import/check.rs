//! The self-check after import: every SQL step of the written scenario is prepared against a
//! scratch copy of the app's database (or its schema), functions the app registered on its
//! connections are mapped to built-in SQL where an equivalent exists (or left as a `fill_in`
//! that `validate` names), and each request kind runs its first captured requests once, with
//! the scenario's step references, so a scenario that fails is not written silently.

use super::requests::RequestKind;
use super::scenario::{ScriptOut, StepKind};
use super::sql::{self, Value};
use litehammer_trace::lex::Kind;
use rusqlite::Connection;
use rusqlite::types::Value as Sv;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Requests of each kind the check runs.
const REQUESTS_PER_KIND: usize = 5;
/// The whole check stops after this much statement time (a slow scan on a big copy).
const BUDGET: Duration = Duration::from_secs(10);

/// A kind whose requests hold at least this many statements on average, over at least
/// `LONG_REQUEST_NS`, is taken for a connection import could not cut into the app's requests.
const LONG_REQUEST_STATEMENTS: usize = 300;
const LONG_REQUEST_NS: i64 = 1_000_000_000;

/// Functions apps register on their connections (Django's `RAND` for `order_by('?')`, its
/// `BITXOR`, `REPEAT`) and the built-in SQL that does the same: (name, arity, template with
/// `{0}`, `{1}` for the arguments).
const MAPPED: [(&str, usize, &str); 3] = [
    ("rand", 0, "(random() / 18446744073709551616.0 + 0.5)"),
    ("bitxor", 2, "((({0}) | ({1})) - (({0}) & ({1})))"),
    ("repeat", 2, "replace(hex(zeroblob({1})), '00', {0})"),
];

pub(crate) struct Checker {
    conn: Connection,
    _dir: Option<tempfile::TempDir>,
    /// What the scratch database is, for the report.
    pub scratch: String,
    started: Instant,
    spent: Duration,
    /// Weighted requests tried and failed (weight × share of the kind's tried requests).
    weight_tried: f64,
    weight_failed: f64,
    requests_tried: usize,
    /// Of those, runs of a kind's first request once more (at the kind's end).
    requests_again: usize,
    requests_failed: usize,
    /// Why steps failed: (kind, step, message), each once.
    pub failures: Vec<(String, usize, String)>,
    /// Set-up statements that do not run.
    pub setup_errors: Vec<String>,
    pub out_of_time: bool,
    /// The scratch copy holds the capture's own writes: UNIQUE failures there are not counted.
    after_capture: bool,
    /// Draws of `seq(...)` parameters so far.
    counter: i64,
    /// Kinds whose requests look like whole connections, not the app's requests: (kind,
    /// requests, mean statements per request, mean seconds per request).
    pub uncut: Vec<(String, usize, usize, f64)>,
}

fn to_sql(v: &Value) -> Sv {
    match v {
        Value::Int(i) => Sv::Integer(*i),
        Value::Real(r) => Sv::Real(*r),
        Value::Text(t) => Sv::Text(t.clone()),
        Value::Blob(b) => Sv::Blob(b.clone()),
        Value::Null | Value::Redacted(..) | Value::Unknown => Sv::Null,
    }
}

impl Checker {
    /// A scratch copy of `db` (and its `-wal`) when given, else an in-memory database made by
    /// `setup_sql` (its fills skipped: only the schema matters there).
    /// `before`: `db` is the app's database as it was before the capture (`--db`); otherwise it
    /// is the file as the capture left it, where the trace's own inserts may already be.
    pub(crate) fn new(db: Option<&Path>, before: bool, setup_sql: &[String]) -> Self {
        if let Some(db) = db
            && let Ok(dir) = tempfile::tempdir()
        {
            let copy = dir.path().join("scratch.db");
            let mut wal = db.as_os_str().to_os_string();
            wal.push("-wal");
            let copied = std::fs::copy(db, &copy).is_ok()
                && (!Path::new(&wal).is_file() || std::fs::copy(&wal, dir.path().join("scratch.db-wal")).is_ok());
            if copied && let Ok(conn) = Connection::open(&copy) {
                let when = if before {
                    ""
                } else {
                    " as the capture left it (rows the trace inserts may already be there)"
                };
                let mut me = Self::with(conn, Some(dir), format!("a scratch copy of {}{when}", db.display()));
                me.after_capture = !before;
                return me;
            }
        }
        let conn = Connection::open_in_memory().expect("an in-memory database opens");
        let mut me = Self::with(
            conn,
            None,
            "an empty database with the scenario's schema (no rows: a step reference to a missing row gives NULL)"
                .into(),
        );
        for (i, stmt) in setup_sql.iter().enumerate() {
            if stmt.starts_with("INSERT OR IGNORE") || stmt.starts_with("PRAGMA") {
                continue;
            }
            if let Err(e) = me.conn.execute_batch(stmt) {
                me.setup_errors.push(format!("[setup] statement {}: {e}", i + 1));
            }
        }
        me
    }

    fn with(conn: Connection, dir: Option<tempfile::TempDir>, scratch: String) -> Self {
        Self {
            conn,
            _dir: dir,
            scratch,
            started: Instant::now(),
            spent: Duration::ZERO,
            weight_tried: 0.0,
            weight_failed: 0.0,
            requests_tried: 0,
            requests_again: 0,
            requests_failed: 0,
            failures: Vec::new(),
            setup_errors: Vec::new(),
            out_of_time: false,
            after_capture: false,
            counter: 0,
            uncut: Vec::new(),
        }
    }

    /// Notes a kind whose requests are each hundreds of statements over a second or more: a
    /// worker's long-lived connection that import could not cut (no idle gap over `--gap`, no
    /// clear break in the worker's CPU, no request ids). An app that runs the SQL of many
    /// concurrent requests on a few connections (an asyncio server with a pool of SQL threads,
    /// as Datasette does) interleaves its requests there, and no gap tells them apart: the
    /// scenario would replay a few endless "requests" (Datasette 1.0: one per SQL thread's
    /// connection, 6,000–45,000 statements each over 12 s, for about 7,100 HTTP requests).
    pub(crate) fn look_for_uncut(&mut self, script: &ScriptOut, kind: &RequestKind) {
        let n = kind.instances.len();
        if n == 0 {
            return;
        }
        let statements = kind.instances.iter().map(|r| r.steps.len()).sum::<usize>() / n;
        let span = kind.instances.iter().map(|r| r.end - r.start).sum::<i64>() / n as i64;
        if statements >= LONG_REQUEST_STATEMENTS && span >= LONG_REQUEST_NS {
            self.uncut
                .push((script.name.clone(), kind.weight(), statements, span as f64 / 1e9));
        }
    }

    /// Prepares each SQL step of `script`, mapping app-registered functions; a function with no
    /// equivalent becomes a `fill_in` parameter naming it and the kind. Returns notes.
    pub(crate) fn map_functions(&mut self, script: &mut ScriptOut) -> Vec<String> {
        let mut notes = Vec::new();
        let name = script.name.clone();
        for (i, step) in script.steps.iter_mut().enumerate() {
            let StepKind::Sql { sql, params } = &mut step.kind else {
                continue;
            };
            let mut mapped = Vec::new();
            for _ in 0..8 {
                let Err(e) = self.conn.prepare(sql) else { break };
                let msg = e.to_string();
                let Some(f) = msg
                    .split("no such function: ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                else {
                    self.failures.push((name.clone(), i, msg));
                    break;
                };
                match map_function(sql, f) {
                    Some(new) => {
                        mapped.push(f.to_string());
                        *sql = new;
                    }
                    None => {
                        let what = format!(
                            "request kind `{name}` step {i} calls {f}(), a function the app registered on its \
                             connections; SQLite has no built-in equivalent litehammer knows. Rewrite the step's \
                             SQL without it"
                        );
                        params.push(toml::Value::String(format!("fill_in('{}')", what.replace('\'', ""))));
                        script.comments.push(format!("step {i}: {what}."));
                        notes.push(format!("{what} (validate stops there)"));
                        break;
                    }
                }
            }
            if !mapped.is_empty() {
                script.comments.push(format!(
                    "step {i}: {} registered by the app on its connections, mapped to built-in SQL.",
                    mapped.join(", ")
                ));
            }
        }
        notes
    }

    /// An INSERT step whose parameters fill every column of a unique key of its table (PRIMARY
    /// KEY, UNIQUE, a unique index) must not repeat a key when `replay(...)` cycles or a
    /// generator draws again: the last key column that is not a step reference counts up from
    /// above every value the copy and the trace hold (`seq(max + 1)`).
    pub(crate) fn keep_keys_unique(&self, script: &mut ScriptOut, kind: &RequestKind) {
        // Keys already counting in this script (table.column): a second step inserting into
        // the same key counts from a billion further, so the two never meet.
        let mut counting: Vec<String> = Vec::new();
        for (i, step) in script.steps.iter_mut().enumerate() {
            let StepKind::Sql { sql, params } = &mut step.kind else {
                continue;
            };
            let Some((table, columns)) = sql::insert_columns(sql) else {
                continue;
            };
            let Ok(keys) = super::schema::unique_keys(&self.conn, &table) else {
                continue;
            };
            for (key, expression, _) in keys {
                if expression || key.iter().any(String::is_empty) {
                    continue;
                }
                let positions: Option<Vec<usize>> = key
                    .iter()
                    .map(|k| columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
                    .collect();
                let Some(positions) = positions else { continue };
                let fresh = |p: &toml::Value| p.as_str().is_some_and(|s| s.starts_with("seq("));
                if positions.iter().any(|&p| params.get(p).is_some_and(fresh)) {
                    continue;
                }
                let Some(&p) = positions.iter().rev().find(|&&p| {
                    params
                        .get(p)
                        .is_some_and(|v| !v.as_str().is_some_and(|s| s.starts_with('$')))
                }) else {
                    continue;
                };
                let col = &columns[p];
                let in_db: Option<i64> = self
                    .conn
                    .query_row(
                        &format!(
                            "SELECT max(CAST({} AS INTEGER)) FROM \"{}\"",
                            format_args!("\"{}\"", col.replace('"', "\"\"")),
                            table.replace('"', "\"\"")
                        ),
                        [],
                        |r| r.get(0),
                    )
                    .ok()
                    .flatten();
                let in_trace = kind
                    .instances
                    .iter()
                    .filter_map(|r| match r.steps.get(i)?.norm.values.get(p)? {
                        Value::Int(v) => Some(*v),
                        _ => None,
                    })
                    .max();
                let which = format!("{table}.{col}").to_ascii_lowercase();
                let earlier = counting.iter().filter(|c| **c == which).count() as i64;
                counting.push(which);
                let start = in_db
                    .into_iter()
                    .chain(in_trace)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1)
                    .saturating_add(earlier * 1_000_000_000);
                params[p] = toml::Value::String(format!("seq({start})"));
                script.comments.push(format!(
                    "step {i} ?{}: seq({start}), not the captured values: {col} completes the unique key ({}) of \
                     {table}, which replaying or redrawing would repeat",
                    p + 1,
                    key.join(", ")
                ));
            }
        }
    }

    /// Runs the kind's first captured requests against the scratch database: captured values,
    /// and `$N.col` from the row step N returned here.
    pub(crate) fn run(&mut self, script: &ScriptOut, kind: &RequestKind) {
        self.look_for_uncut(script, kind);
        // The first request once more at the end: replay(...) cycles, and a key it inserted
        // must not collide with itself.
        let tried = kind.instances.len().min(REQUESTS_PER_KIND) + 1;
        let mut failed = 0;
        for r in kind.instances.iter().take(tried - 1).chain(kind.instances.first()) {
            if self.spent > BUDGET || self.started.elapsed() > 6 * BUDGET {
                self.out_of_time = true;
                return;
            }
            let t0 = Instant::now();
            let mut rows: Vec<HashMap<String, Sv>> = Vec::new();
            let mut error = false;
            for (i, step) in script.steps.iter().enumerate() {
                let got = match &step.kind {
                    StepKind::Begin(mode) => self
                        .conn
                        .execute_batch(&format!("BEGIN {mode}"))
                        .map(|_| HashMap::new()),
                    StepKind::Commit(true) => self.conn.execute_batch("COMMIT").map(|_| HashMap::new()),
                    StepKind::Commit(false) => self.conn.execute_batch("ROLLBACK").map(|_| HashMap::new()),
                    StepKind::Sql { sql, params } => {
                        if params
                            .iter()
                            .any(|p| p.as_str().is_some_and(|s| s.starts_with("fill_in(")))
                        {
                            error = true;
                            rows.push(HashMap::new());
                            continue;
                        }
                        let values: Vec<Sv> = params
                            .iter()
                            .enumerate()
                            .map(|(p, v)| match v.as_str().and_then(|s| s.strip_prefix('$')) {
                                None if let Some(start) = v.as_str().and_then(|s| {
                                    s.strip_prefix("seq(")?.strip_suffix(')')?.trim().parse::<i64>().ok()
                                }) =>
                                {
                                    self.counter += 1;
                                    Sv::Integer(start + self.counter - 1)
                                }
                                Some(link) => link
                                    .split_once('.')
                                    .and_then(|(n, col)| rows.get(n.parse::<usize>().ok()?)?.get(col).cloned())
                                    .unwrap_or(Sv::Null),
                                None => r
                                    .steps
                                    .get(i)
                                    .and_then(|s| s.norm.values.get(p))
                                    .map_or(Sv::Null, to_sql),
                            })
                            .collect();
                        self.execute(sql, &values)
                    }
                };
                match got {
                    Ok(row) => rows.push(row),
                    Err(e) if self.after_capture && e.to_string().contains("UNIQUE constraint failed") => {
                        rows.push(HashMap::new());
                    }
                    Err(e) => {
                        error = true;
                        rows.push(HashMap::new());
                        let msg = e.to_string();
                        if !self.failures.iter().any(|f| f.0 == script.name && f.1 == i) {
                            self.failures.push((script.name.clone(), i, msg));
                        }
                    }
                }
            }
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.spent += t0.elapsed();
            failed += usize::from(error);
        }
        if tried > 0 {
            self.requests_tried += tried;
            self.requests_again += 1;
            self.requests_failed += failed;
            self.weight_tried += script.weight as f64;
            self.weight_failed += script.weight as f64 * failed as f64 / tried as f64;
        }
    }

    fn execute(&self, sql: &str, values: &[Sv]) -> rusqlite::Result<HashMap<String, Sv>> {
        let mut stmt = self.conn.prepare(sql)?;
        let names: Vec<String> = stmt.column_names().map(|s| s.to_string()).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(values.iter()))?;
        let mut first = HashMap::new();
        if let Some(row) = rows.next()? {
            for (c, n) in names.iter().enumerate() {
                first.insert(n.clone(), row.get::<_, Sv>(c)?);
            }
        }
        while rows.next()?.is_some() {}
        Ok(first)
    }

    /// The share of requests (weighted by the kinds' weights) that failed in the check.
    pub(crate) fn error_share(&self) -> f64 {
        if self.weight_tried > 0.0 {
            self.weight_failed / self.weight_tried
        } else {
            0.0
        }
    }

    /// What the check found: the scenario's comment lines and, when anything failed, the notes
    /// the output prints (what failed and what to do).
    pub(crate) fn report(&self) -> (Vec<String>, Vec<String>) {
        let share = self.error_share();
        let mut comments = vec![format!(
            "Self-check: {} request(s) of the trace (each kind's first ones) run against {}, and each kind's \
             first once more (replayed values cycle back to it): {} run(s), {} failed ({:.1} % of requests, \
             weighted by kind){}.",
            self.requests_tried - self.requests_again,
            self.scratch,
            self.requests_tried,
            self.requests_failed,
            100.0 * share,
            if self.out_of_time {
                "; stopped at its time budget"
            } else {
                ""
            }
        )];
        let mut notes = Vec::new();
        for (kind, requests, statements, secs) in &self.uncut {
            let line = format!(
                "request kind `{kind}`: {requests} request(s) of {statements} statements over {secs:.1} s each, on \
                 average: long-lived connections that import could not cut into the app's requests (no idle gap \
                 over --gap, no clear break in the worker's CPU, no request ids). If the app serves short \
                 requests, they interleave on its connections (an event loop with a pool of SQL threads, e.g. \
                 Datasette): this kind is not one of them, and its timing is not the app's. Give the trace the \
                 producer's request ids (the `request` field, docs/trace-format.md)"
            );
            comments.push(format!("Self-check: {line}"));
            notes.push(format!("self-check: {line}"));
        }
        for e in &self.setup_errors {
            comments.push(format!("Self-check: {e}"));
            notes.push(format!("self-check: {e}"));
        }
        let lock = |m: &str| m.contains("locked") || m.contains("busy");
        for (kind, step, msg) in &self.failures {
            let line = format!("request kind `{kind}` step {step} fails: {msg}");
            comments.push(format!("Self-check: {line}"));
            if !lock(msg) {
                notes.push(format!("self-check: {line}"));
            }
        }
        if share > 0.01 && self.failures.iter().any(|f| !lock(&f.2)) {
            notes.push(format!(
                "self-check: {:.1} % of requests fail with errors the trace did not have (above 1 %). Fix the \
                 steps named above in the scenario (a fill_in, a function, a step reference), or re-import with \
                 --db COPY (a copy of the app's database from before the capture) and --params replay",
                100.0 * share
            ));
        }
        (comments, notes)
    }
}

/// `sql` with every call of `name` replaced by its built-in equivalent (see `MAPPED`); None
/// when there is none or a call has another number of arguments.
pub(crate) fn map_function(sql: &str, name: &str) -> Option<String> {
    let (_, arity, template) = MAPPED.iter().find(|m| m.0.eq_ignore_ascii_case(name))?;
    let toks = sql::tokenize(sql);
    let text = |i: usize| &sql[toks[i].start..toks[i].end];
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    let mut found = false;
    while i < toks.len() {
        if toks[i].kind == Kind::Word
            && text(i).eq_ignore_ascii_case(name)
            && toks.get(i + 1).is_some_and(|_| text(i + 1) == "(")
        {
            // The arguments: top-level commas up to the matching parenthesis.
            let (mut depth, mut j, mut start) = (0usize, i + 1, toks[i + 1].end);
            let mut args: Vec<String> = Vec::new();
            loop {
                let t = text(j);
                if t == "(" {
                    depth += 1;
                } else if t == ")" {
                    depth -= 1;
                    if depth == 0 {
                        let arg = sql[start..toks[j].start].trim();
                        if !arg.is_empty() || !args.is_empty() {
                            args.push(arg.to_string());
                        }
                        break;
                    }
                } else if t == "," && depth == 1 {
                    args.push(sql[start..toks[j].start].trim().to_string());
                    start = toks[j].end;
                }
                j += 1;
                if j >= toks.len() {
                    return None;
                }
            }
            if args.len() != *arity {
                return None;
            }
            let mut repl = template.to_string();
            for (k, a) in args.iter().enumerate() {
                repl = repl.replace(&format!("{{{k}}}"), a);
            }
            out.push_str(&sql[last..toks[i].start]);
            out.push_str(&repl);
            last = toks[j].end;
            i = j + 1;
            found = true;
            continue;
        }
        i += 1;
    }
    out.push_str(&sql[last..]);
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_functions_map_to_built_in_sql() {
        let q = map_function("SELECT id FROM page ORDER BY RAND() LIMIT 1", "RAND").unwrap();
        assert_eq!(
            q,
            "SELECT id FROM page ORDER BY (random() / 18446744073709551616.0 + 0.5) LIMIT 1"
        );
        let c = Connection::open_in_memory().unwrap();
        let x: f64 = c
            .query_row(&map_function("SELECT rand()", "rand").unwrap(), [], |r| r.get(0))
            .unwrap();
        assert!((0.0..1.0).contains(&x), "{x}");
        let q = map_function("SELECT BITXOR(a, f(b, c)) FROM t", "bitxor").unwrap();
        assert_eq!(q, "SELECT (((a) | (f(b, c))) - ((a) & (f(b, c)))) FROM t");
        let v: i64 = c
            .query_row(&map_function("SELECT bitxor(12, 10)", "bitxor").unwrap(), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, 6);
        let s: String = c
            .query_row(&map_function("SELECT repeat('ab', 3)", "repeat").unwrap(), [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(s, "ababab");
        assert_eq!(map_function("SELECT rand(1)", "rand"), None, "another arity");
        assert_eq!(map_function("SELECT x REGEXP 'a'", "regexp"), None, "no equivalent");
    }
}
