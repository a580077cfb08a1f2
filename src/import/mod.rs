//! `litehammer import`: a captured trace (docs/trace-format.md) becomes a scenario on the
//! application model. `trace` reads it, `sql` normalizes statements, `requests` cuts
//! requests and groups workers and kinds, `params` fits values and times, `schema` reads the
//! app's database, `scenario` writes the TOML.

pub(crate) mod check;
pub(crate) mod formats;
pub(crate) mod params;
pub(crate) mod requests;
pub(crate) mod sanitized;
pub(crate) mod scenario;
pub(crate) mod schema;
pub(crate) mod sql;
pub(crate) mod trace;

use crate::config::app::QueueKind;
use litehammer_trace::lex::Kind;
use requests::{Analysis, RequestKind, WorkerGroup};
use scenario::{GroupOut, PopulateOut, ScenarioOut, ScriptOut, StepKind, StepOut};
use sql::Verb;
use std::path::{Path, PathBuf};

pub(crate) struct Options {
    pub trace: PathBuf,
    pub replay: bool,
    pub db: Option<PathBuf>,
    pub gap_ns: u64,
    pub name: String,
    /// The trace's format; None: detected from its first line.
    pub from: Option<formats::Format>,
    /// Traces of the same app in other configurations (`--also`): their CPU per request.
    pub also: Vec<PathBuf>,
    /// `--queue`; None: from the trace.
    pub queue: Option<QueueKind>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ImportError {
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
    #[error("{0}")]
    Db(String),
    #[error("the trace has {0} statement(s) but no request to replay: only PRAGMAs, schema and set-up writes")]
    NoRequests(usize),
    #[error("--also {}: {}", .0.display(), .1.message)]
    Also(PathBuf, trace::TraceError),
    #[error("--also {}: {}", .0.display(), .1)]
    AlsoConfig(PathBuf, String),
}

/// What import found, for its summary line.
pub(crate) struct Outcome {
    pub text: String,
    pub statements: usize,
    /// Per group: name, workers, requests, request kinds (endpoints), scripts (a kind with
    /// optional statements is several weighted scripts).
    pub groups: Vec<(String, usize, usize, usize, usize)>,
    pub notes: Vec<String>,
    pub format: formats::Format,
    /// What the format lacks and import modelled.
    pub modelled: Vec<String>,
    /// No schema: no CREATE in the trace, no --db, the captured database not readable.
    pub no_schema: bool,
}

pub(crate) fn import(opts: &Options) -> Result<Outcome, ImportError> {
    let formats::Imported {
        trace,
        format,
        modelled,
    } = formats::read_file(&opts.trace, opts.from)?;
    let redacted = trace.redacted();
    let given_db = match &opts.db {
        Some(db) => Some(schema::read_db(db).map_err(|e| ImportError::Db(format!("{}: {e}", db.display())))?),
        None => None,
    };
    let vtabs = given_db.as_ref().map(|d| d.virtual_tables.clone()).unwrap_or_default();
    let mut analysis = requests::analyze(&trace, opts.gap_ns, &vtabs);
    let mut out = ScenarioOut {
        name: opts.name.clone(),
        ..ScenarioOut::default()
    };
    let mut notes = Vec::new();
    let trace_name = opts.trace.display().to_string();
    if format != formats::Format::Capture {
        out.comments.push(format!(
            "Format: {} (--from {}). What it does not record is modelled:\n{}",
            format.describe(),
            format.name(),
            modelled
                .iter()
                .map(|m| format!("- {m}."))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    out.comments.push(format!(
        "Imported by `litehammer import` from {trace_name}: {} statements, {} worker group(s).\n\
         Parameters: {}. Check the comments below; `litehammer validate` on this file names anything left to fill in.",
        analysis.statements,
        analysis.groups.len(),
        if opts.replay && !redacted {
            "the captured values, replayed in order per worker (replay(...))"
        } else if redacted {
            "fitted to types and lengths (the trace is redacted)"
        } else {
            "generators fitted to the captured values"
        }
    ));

    // Schema and data.
    let db_info = database(opts, given_db, &analysis, &mut out.setup_comments, &mut notes);
    if let Some(info) = &db_info
        && info.virtual_tables.iter().any(|v| !vtabs.contains(v))
    {
        // The captured file named virtual tables the trace did not create: their shadow
        // tables' statements are SQLite's.
        analysis = requests::analyze(&trace, opts.gap_ns, &info.virtual_tables);
    }
    if analysis.groups.is_empty() {
        return Err(ImportError::NoRequests(analysis.statements));
    }
    excluded(&analysis, &mut out, &mut notes);
    start_cuts(&analysis, &mut out, &mut notes);
    let traced = settings(&analysis, db_info.as_ref().is_some_and(|d| d.wal), &mut out);
    if let Some(info) = &db_info {
        out.setup_sql = info.schema.clone();
        out.setup_sql.extend(info.fills.iter().cloned());
        for n in &info.notes {
            out.setup_comments.push(format!("Data: {n}."));
            notes.push(format!("data: {n}"));
        }
        for t in info
            .tables
            .iter()
            .filter(|t| t.rows > 0 && !t.columns.is_empty() && !t.filled)
        {
            out.populate.push(PopulateOut {
                comments: t.comments.clone(),
                table: t.name.clone(),
                rows: t.rows,
                columns: t.columns.iter().map(|c| c.0.clone()).collect(),
                values: t.columns.iter().map(|c| c.1.clone()).collect(),
            });
        }
    } else {
        out.setup_sql = analysis.schema.iter().map(|s| unredact_ddl(s)).collect();
        setup_writes_populate(&analysis, &mut out);
    }
    if out.setup_sql.is_empty() {
        let msg = "FILL IN: no schema found: the trace has no CREATE statement, no --db was given and the \
                   captured database file is not readable. Paste the CREATE statements into `sql` (or re-run \
                   import with --db FILE); until then `litehammer validate` reports \"no such table\".";
        out.setup_comments.push(msg.into());
        notes.push(msg.into());
    }

    // Text keys populate numbers: the lookups of captured keys are numbered alike.
    let keys = params::Keys::of(out.populate.iter().flat_map(|p| {
        p.columns
            .iter()
            .zip(&p.values)
            .map(|(c, v)| (p.table.as_str(), c.as_str(), v.as_str(), p.rows))
    }));
    if let Some(queue) = opts.queue
        && !analysis.groups.iter().any(|g| g.isolation_process)
    {
        notes.push(format!(
            "--queue {}: the trace has no group of processes (a queue is per group of processes); not used",
            queue.as_str()
        ));
    }
    let mut groups = Vec::new();
    let mut kinds_of = Vec::new();
    for g in &analysis.groups {
        let (group, kinds) = group_out(g, opts.queue, opts.replay && !redacted, &keys, &mut notes);
        let endpoints = kinds
            .iter()
            .filter(|k| k.optional.as_ref().is_none_or(|o| o.variant == 1))
            .count();
        groups.push((
            g.name.clone(),
            group.workers,
            g.requests.len(),
            endpoints,
            group.scripts.len(),
        ));
        out.groups.push(group);
        kinds_of.push(kinds);
    }
    // Values the trace lacks (sanitized spans): drawn from the database copy where it says.
    if let Some(info) = &db_info {
        sanitized::model(info, &mut out.groups, &mut notes);
    }
    if !opts.also.is_empty() {
        let vtabs = db_info.as_ref().map_or(vtabs, |d| d.virtual_tables.clone());
        also_traces(opts, &vtabs, &analysis, traced, &mut out, &mut notes)?;
    }
    // The self-check: functions mapped, every kind run once per captured request (a few).
    let mut checker = check::Checker::new(
        db_info.as_ref().map(|d| d.source.as_path()),
        opts.db.is_some(),
        &out.setup_sql,
    );
    for (group, kinds) in out.groups.iter_mut().zip(&kinds_of) {
        for (script, kind) in group.scripts.iter_mut().zip(kinds) {
            notes.extend(checker.map_functions(script));
            checker.keep_keys_unique(script, kind);
            if redacted {
                continue;
            }
            if sanitized::lacks_values(kind) {
                script.comments.push(sanitized::UNCHECKED.into());
            } else {
                checker.run(script, kind);
            }
        }
    }
    let (mut check_comments, check_notes) = checker.report();
    if redacted {
        check_comments = vec![format!(
            "Self-check: the trace is redacted, so no request was run; every statement was prepared against {}.",
            checker.scratch
        )];
    }
    out.comments.extend(check_comments);
    notes.extend(check_notes);
    let kinds: usize = groups.iter().map(|g| g.3).sum();
    out.description = format!(
        "Imported from {}: {} statements, {} group(s), {kinds} request kind(s)",
        Path::new(&trace_name)
            .file_name()
            .map_or(trace_name.clone(), |f| f.to_string_lossy().into_owned()),
        analysis.statements,
        out.groups.len()
    );
    Ok(Outcome {
        no_schema: out.setup_sql.is_empty(),
        text: out.render(),
        statements: analysis.statements,
        groups,
        notes,
        format,
        modelled,
    })
}

/// Says where requests were cut before the statements that begin them (`start_statements`):
/// a model, so the scenario and the output say it.
fn start_cuts(analysis: &Analysis, out: &mut ScenarioOut, notes: &mut Vec<String>) {
    let cuts = &analysis.start_cuts;
    if cuts.is_empty() {
        return;
    }
    let mut statements: Vec<&str> = cuts
        .iter()
        .flat_map(|c| c.statements.iter().map(String::as_str))
        .collect();
    statements.sort_unstable();
    statements.dedup();
    // The shortest median gap before a start and the longest before any other statement.
    let (start, inside) = cuts
        .iter()
        .fold((u64::MAX, 0), |(s, i), c| (s.min(c.start_gap), i.max(c.inside_gap)));
    let text = format!(
        "requests: on {} worker(s) whose persistent connections show no clear break between requests in their \
         gaps one by one (no request ids), a request starts at every {} outside a transaction: the median of the \
         worker's time before it (its CPU where the trace reads it) is {:.2} ms or more, the app's work between \
         two requests, and at most {:.2} ms before any other statement seen 20 times or more. A request that \
         runs it twice is cut in two; give the trace the producer's request ids (docs/trace-format.md) to be \
         exact",
        cuts.len(),
        statements
            .iter()
            .map(|s| format!("`{}`", s.chars().take(80).collect::<String>()))
            .collect::<Vec<_>>()
            .join(", "),
        start as f64 / 1e6,
        inside as f64 / 1e6,
    );
    out.comments.push(text.clone());
    notes.push(text);
}

/// Traffic that is not the app's on its database: counted, not replayed.
fn excluded(analysis: &Analysis, out: &mut ScenarioOut, notes: &mut Vec<String>) {
    if analysis.excluded.is_empty() {
        return;
    }
    let total: usize = analysis.excluded.values().sum();
    let parts: Vec<String> = analysis.excluded.iter().map(|(why, n)| format!("{n} {why}")).collect();
    let text = format!(
        "{total} statement(s) excluded, not replayed against the app's database{}: {}",
        analysis
            .main_file
            .as_deref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default(),
        parts.join("; ")
    );
    out.comments.push(format!("{text}."));
    notes.push(text);
}

fn database(
    opts: &Options,
    given: Option<schema::DbInfo>,
    analysis: &Analysis,
    comments: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<schema::DbInfo> {
    if let (Some(db), Some(info)) = (&opts.db, given) {
        comments.push(format!(
            "Schema and row counts from --db {} (read from a copy; the file was not modified).",
            db.display()
        ));
        return Some(info);
    }
    if !analysis.schema.is_empty() {
        comments.push("Schema: the CREATE statements the app ran during the capture.".into());
        return None;
    }
    let files = analysis.main_file.iter().chain(
        analysis
            .files
            .iter()
            .filter(|f| analysis.main_file.as_ref() != Some(*f)),
    );
    for f in files.take(1) {
        let path = Path::new(f);
        if path.is_absolute() && path.is_file() {
            match schema::read_db(path) {
                Ok(info) => {
                    comments.push(format!(
                        "Schema and row counts from the captured database {f} as it is now (read from a copy). \
                         For the data as it was before the capture, re-run import with --db COPY."
                    ));
                    return Some(info);
                }
                Err(e) => notes.push(format!("cannot read the captured database {f}: {e}")),
            }
        }
    }
    None
}

/// A redacted CREATE (DEFAULT <int:1>) cannot run: placeholders become neutral literals.
fn unredact_ddl(sql: &str) -> String {
    let toks = sql::tokenize(sql);
    let mut out = String::new();
    let mut last = 0;
    for t in toks.iter().filter(|t| t.kind == Kind::Redacted) {
        out.push_str(&sql[last..t.start]);
        out.push_str(if sql[t.start..].starts_with("<text") { "''" } else { "0" });
        last = t.end;
    }
    out.push_str(&sql[last..]);
    out
}

/// Rows the app inserted while setting up (before its last CREATE) become populate lines.
fn setup_writes_populate(analysis: &Analysis, out: &mut ScenarioOut) {
    use std::collections::BTreeMap;
    let mut by_stmt: BTreeMap<String, Vec<&requests::Exec>> = BTreeMap::new();
    for e in analysis.setup_writes.iter().filter(|e| e.verb == Verb::Insert) {
        by_stmt.entry(e.norm.text.clone()).or_default().push(e);
    }
    // The schema as SQLite reads it, for the columns that must not repeat a value.
    let schema = schema_db(&out.setup_sql);
    // Per table.column kept distinct: the keys earlier populate lines take.
    let mut taken: BTreeMap<(String, String), Vec<(i64, i64)>> = BTreeMap::new();
    for (text, execs) in by_stmt {
        let Some((table, columns, per)) = sql::insert_rows(&text) else {
            out.setup_comments.push(format!(
                "The app inserted {} row(s) with `{text}` while setting up; add a populate line for them.",
                execs.len()
            ));
            continue;
        };
        let rows: u64 = execs
            .iter()
            .map(|e| e.changes.unwrap_or(per as i64).max(0) as u64)
            .sum();
        // A bulk insert's rows, each as if inserted alone.
        let execs: Vec<requests::Exec> = execs
            .iter()
            .flat_map(|e| {
                let n = columns.len();
                if per == 1 || e.norm.values.len() != n * per {
                    return vec![(*e).clone()];
                }
                e.norm
                    .values
                    .chunks(n)
                    .map(|row| {
                        let mut one = (*e).clone();
                        one.norm.values = row.to_vec();
                        one
                    })
                    .collect()
            })
            .collect();
        let kind = RequestKind {
            variants: Vec::new(),
            optional: None,
            evidence: Vec::new(),
            instances: execs
                .iter()
                .map(|e| requests::Request {
                    actor: (0, 0),
                    start: e.ts,
                    end: e.end(),
                    steps: vec![e.clone()],
                    lead_gap: None,
                    trail_gap: None,
                    cpu: None,
                })
                .collect(),
        };
        let fitted = params::step_params(
            &kind,
            &params::Inserted::default(),
            &params::Keys::default(),
            0,
            false,
            0,
        );
        if fitted.len() != columns.len() {
            continue;
        }
        let mut comments: Vec<String> = columns
            .iter()
            .zip(&fitted)
            .filter_map(|(c, p)| {
                p.note
                    .as_ref()
                    .map(|n| format!("{c}: {n}, of the rows the app inserted while setting up"))
            })
            .collect();
        let mut values: Vec<String> = fitted
            .into_iter()
            .map(|p| match p.value {
                toml::Value::String(s) => s,
                // A constant: populate's values are generators.
                other => format!("const({other})"),
            })
            .collect();
        // A rowid alias or single-column unique key gets values that never repeat, whatever was
        // fitted to the few the app inserted.
        let distinct = schema
            .as_ref()
            .and_then(|c| schema::distinct_columns(c, &table).ok())
            .unwrap_or_default();
        for (i, c) in columns.iter().enumerate() {
            let Some((_, rowid)) = distinct.iter().find(|d| d.0.eq_ignore_ascii_case(c)) else {
                continue;
            };
            let seen: Vec<&sql::Value> = execs.iter().filter_map(|e| e.norm.values.get(i)).collect();
            let key = (table.to_ascii_lowercase(), c.to_ascii_lowercase());
            let held = taken.entry(key).or_default();
            let till = |start: i64| start.saturating_add(rows.min(i64::MAX as u64) as i64);
            let Some((generator, start, why)) = params::distinct_generator(&seen, &values[i], *rowid, rows, held)
            else {
                if let Some(start) = values[i]
                    .strip_prefix("seq(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    held.push((start, till(start)));
                }
                continue;
            };
            comments.retain(|k| !k.starts_with(&format!("{c}: ")));
            comments.push(format!("{c}: {why}"));
            values[i] = generator;
            held.push((start, till(start)));
        }
        // A composite key none of whose columns is numbered: said, not changed (a copy of the
        // database, `--db`, fills such a table by key).
        let keys = schema
            .as_ref()
            .and_then(|c| schema::unique_keys(c, &table).ok())
            .unwrap_or_default();
        for (key, expression, _) in keys {
            if expression || key.len() < 2 || key.iter().any(String::is_empty) {
                continue;
            }
            let at: Option<Vec<usize>> = key
                .iter()
                .map(|k| columns.iter().position(|c| c.eq_ignore_ascii_case(k)))
                .collect();
            if at.is_some_and(|at| !at.iter().any(|&p| values[p].starts_with("seq("))) {
                comments.push(format!(
                    "({}): a composite unique key; these generators may repeat it when drawing more rows than \
                     the app inserted (re-import with --db COPY to fill the table by key)",
                    key.join(", ")
                ));
            }
        }
        out.populate.push(PopulateOut {
            comments,
            table,
            rows,
            columns,
            values,
        });
    }
}

/// An in-memory database with the schema of `setup_sql` (its statements that fail, fills and
/// PRAGMAs skipped): SQLite's own reading of the keys.
fn schema_db(setup_sql: &[String]) -> Option<rusqlite::Connection> {
    let conn = rusqlite::Connection::open_in_memory().ok()?;
    for stmt in setup_sql {
        let head = stmt.trim_start().to_ascii_uppercase();
        if head.starts_with("CREATE") {
            let _ = conn.execute_batch(stmt);
        }
    }
    Some(conn)
}

/// The PRAGMAs the app set become `[sqlite]`; journal_mode and synchronous the matrix.
/// A `PRAGMA journal_mode` value litehammer can set, lower case.
fn journal_value(v: &str) -> Option<&str> {
    matches!(v, "delete" | "truncate" | "persist" | "memory" | "wal" | "off").then_some(v)
}

/// The journal mode and synchronous the app set last in the trace, where it set them.
fn traced_config(pragmas: &[(String, String, usize)]) -> (Option<String>, Option<String>) {
    let mut journal = None;
    let mut sync = None;
    for (k, v, _) in pragmas {
        match k.as_str() {
            "journal_mode" => {
                if let Some(j) = journal_value(v) {
                    journal = Some(j.to_string());
                }
            }
            "synchronous" => {
                sync = match v.as_str() {
                    "0" | "off" => Some("off"),
                    "1" | "normal" => Some("normal"),
                    "2" | "full" => Some("full"),
                    "3" | "extra" => Some("extra"),
                    _ => None,
                }
                .map(str::to_string);
            }
            _ => {}
        }
    }
    (journal, sync)
}

/// Writes `[sqlite]` and `[matrix]` from the app's PRAGMAs; returns the traced journal mode
/// and synchronous (the first value of each axis).
fn settings(analysis: &Analysis, file_is_wal: bool, out: &mut ScenarioOut) -> (String, String) {
    use toml::Value as V;
    let (journal, sync) = traced_config(&analysis.pragmas);
    let mut seen = std::collections::BTreeMap::new();
    let mut ignored: Vec<(String, usize, usize)> = Vec::new();
    for (k, v, line) in &analysis.pragmas {
        let value = match k.as_str() {
            "journal_mode" if journal_value(v).is_some() => continue,
            "synchronous" => continue,
            "busy_timeout" => v.parse::<u64>().ok().map(|ms| V::String(format!("{ms}ms"))),
            "cache_size" | "mmap_size" | "wal_autocheckpoint" | "page_size" => v.parse::<i64>().ok().map(V::Integer),
            "foreign_keys" => match v.as_str() {
                "1" | "on" | "true" | "yes" => Some(V::Boolean(true)),
                "0" | "off" | "false" | "no" => Some(V::Boolean(false)),
                _ => None,
            },
            "temp_store" => match v.as_str() {
                "0" | "default" => Some(V::String("default".into())),
                "1" | "file" => Some(V::String("file".into())),
                "2" | "memory" => Some(V::String("memory".into())),
                _ => None,
            },
            "locking_mode" if matches!(v.as_str(), "normal" | "exclusive") => Some(V::String(v.clone())),
            _ => None,
        };
        match value {
            Some(value) => {
                seen.insert(k.clone(), (value, *line));
            }
            None => {
                let text = format!("PRAGMA {k} = {v}");
                match ignored.iter_mut().find(|(t, ..)| *t == text) {
                    Some((_, _, n)) => *n += 1,
                    None => ignored.push((text, *line, 1)),
                }
            }
        }
    }
    if !seen.contains_key("busy_timeout") {
        out.sqlite.push((
            "busy_timeout".into(),
            V::String("5s".into()),
            Some(
                "not in the trace (no PRAGMA busy_timeout and no sqlite3_busy_timeout call recorded; a trace from an \
                 older capture or another producer may lack the call): 5 s assumed; fill in the app's"
                    .into(),
            ),
        ));
    }
    for (k, (v, line)) in seen {
        out.sqlite.push((
            k,
            v,
            Some(format!(
                "set by the app (trace line {line}: a PRAGMA or sqlite3_busy_timeout)"
            )),
        ));
    }
    if !ignored.is_empty() {
        let list: Vec<String> = ignored
            .iter()
            .map(|(t, line, n)| match n {
                1 => format!("{t} (line {line})"),
                n => format!("{t} ({n} times, first on line {line})"),
            })
            .collect();
        out.sqlite_comments.push(format!(
            "PRAGMAs the app ran that are not litehammer settings (not applied): {}",
            list.join(", ")
        ));
    }
    let journal = journal.unwrap_or_else(|| if file_is_wal { "wal" } else { "delete" }.into());
    let sync = sync.unwrap_or_else(|| "full".into());
    let axis = |first: String, others: [&str; 2]| {
        let mut v = vec![first];
        for o in others {
            if !v.iter().any(|x| x == o) {
                v.push(o.to_string());
            }
        }
        v
    };
    out.matrix
        .push(("journal_mode".into(), axis(journal.clone(), ["wal", "delete"])));
    out.matrix
        .push(("synchronous".into(), axis(sync.clone(), ["normal", "full"])));
    (journal, sync)
}

/// The app time before step `i` of a request that import writes: the first step's only with
/// per-request connections or CPU readings (a persistent connection's idle time before its
/// first statement is think time, not app time).
fn step_app_gap(r: &requests::Request, i: usize, per_request: bool) -> Option<u64> {
    (i > 0 || per_request || r.cpu.is_some())
        .then(|| r.app_gap(i))
        .flatten()
}

/// The app time import writes per request of a group, on average (ns): the sum of its
/// steps' app gaps, as `script_out` takes them.
fn app_ns_per_request(g: &WorkerGroup) -> Option<f64> {
    let sums: Vec<u64> = g
        .requests
        .iter()
        .map(|r| {
            (0..r.steps.len())
                .filter_map(|i| step_app_gap(r, i, g.per_request))
                .sum()
        })
        .collect();
    (!sums.is_empty()).then(|| sums.iter().sum::<u64>() as f64 / sums.len() as f64)
}

/// One traced configuration: where it came from and each group's app time per request.
struct Traced {
    label: String,
    journal: String,
    sync: String,
    /// Per group: name, app time per request (ns), req/s.
    groups: Vec<(String, f64, f64)>,
}

impl Traced {
    fn of(label: String, journal: String, sync: String, analysis: &Analysis) -> Self {
        let groups = analysis
            .groups
            .iter()
            .filter_map(|g| {
                let span_s = g.span_ns as f64 / 1e9;
                let rate = if span_s > 0.0 {
                    g.requests.len() as f64 / span_s
                } else {
                    0.0
                };
                app_ns_per_request(g).map(|ns| (g.name.clone(), ns, rate))
            })
            .collect();
        Traced {
            label,
            journal,
            sync,
            groups,
        }
    }

    fn describe(&self, group: &str) -> String {
        let (ns, rate) = self
            .groups
            .iter()
            .find(|g| g.0 == group)
            .map_or((0.0, 0.0), |g| (g.1, g.2));
        format!(
            "{:.0} µs in {} ({} + {}, {rate:.1} req/s)",
            ns / 1e3,
            self.label,
            self.journal,
            self.sync
        )
    }
}

/// An `--also` value: `FILE`, or `journal_mode=J,synchronous=S:FILE` where the trace does not
/// record the PRAGMAs (the Rails and OpenTelemetry routes). A value whose part before the first
/// `:` is not such a list is a file name.
pub(crate) fn also_spec(given: &Path) -> (Option<(String, String)>, PathBuf) {
    let text = given.to_string_lossy();
    let Some((head, rest)) = text.split_once(':') else {
        return (None, given.to_path_buf());
    };
    let mut journal = None;
    let mut sync = None;
    for pair in head.split(',') {
        match pair
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim().to_ascii_lowercase()))
        {
            Some(("journal_mode", v)) if journal_value(&v).is_some() => journal = Some(v),
            Some(("synchronous", v)) if matches!(v.as_str(), "off" | "normal" | "full" | "extra") => sync = Some(v),
            _ => return (None, given.to_path_buf()),
        }
    }
    match (journal, sync) {
        (Some(j), Some(s)) if !rest.is_empty() => (Some((j, s)), PathBuf::from(rest)),
        _ => (None, given.to_path_buf()),
    }
}

/// `--also`: traces of the same app in other configurations. Each matrix cell replays the app
/// time of the traced configuration nearest to it (the same journal mode first, then the same
/// synchronous; the main trace on a tie), as a factor on the main trace's app times
/// (`[[when]]` setting `group.NAME.app_time_scale`). An app's CPU per request depends on its
/// throughput (docs/capture.md, "Why DELETE runs fast"), so one trace cannot serve all cells.
fn also_traces(
    opts: &Options,
    vtabs: &[String],
    primary: &Analysis,
    traced: (String, String),
    out: &mut ScenarioOut,
    notes: &mut Vec<String>,
) -> Result<(), ImportError> {
    let file = |p: &Path| {
        p.file_name()
            .map_or(p.display().to_string(), |f| f.to_string_lossy().into_owned())
    };
    let mut traces = vec![Traced::of(file(&opts.trace), traced.0, traced.1, primary)];
    for given in &opts.also {
        let (stated, path) = also_spec(given);
        let label = path.display().to_string();
        let imported = formats::read_file(&path, None).map_err(|e| ImportError::Also(path.clone(), e))?;
        let a = requests::analyze(&imported.trace, opts.gap_ns, vtabs);
        let (traced_journal, traced_sync) = traced_config(&a.pragmas);
        let (journal, sync) = match stated {
            Some((j, s)) => {
                for (key, said, seen) in [("journal_mode", &j, &traced_journal), ("synchronous", &s, &traced_sync)] {
                    if let Some(seen) = seen
                        && seen != said
                    {
                        return Err(ImportError::AlsoConfig(
                            path.clone(),
                            format!("given as {key}={said}, but the trace's PRAGMAs set {key} = {seen}"),
                        ));
                    }
                }
                (j, s)
            }
            None => {
                let journal = traced_journal.ok_or_else(|| {
                    ImportError::AlsoConfig(
                        path.clone(),
                        format!(
                            "the trace records no PRAGMA journal_mode, so its configuration is unknown: say it, as \
                             --also journal_mode=delete,synchronous=normal:{label}"
                        ),
                    )
                })?;
                let sync = match traced_sync {
                    Some(s) => s,
                    None => {
                        notes.push(format!(
                            "--also {label}: no PRAGMA synchronous in the trace; SQLite's default (full) assumed"
                        ));
                        "full".into()
                    }
                };
                (journal, sync)
            }
        };
        if let Some(same) = traces.iter().find(|t| t.journal == journal && t.sync == sync) {
            return Err(ImportError::AlsoConfig(
                path.clone(),
                format!(
                    "traced in the same configuration (journal_mode = {journal}, synchronous = {sync}) as {}; \
                     give traces of other configurations",
                    same.label
                ),
            ));
        }
        if a.groups.is_empty() {
            return Err(ImportError::AlsoConfig(
                path.clone(),
                format!("the trace has {} statement(s) but no request", a.statements),
            ));
        }
        traces.push(Traced::of(file(&path), journal, sync, &a));
    }
    let axis = |k: &str| {
        out.matrix
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (journals, syncs) = (axis("journal_mode"), axis("synchronous"));
    let nearest = |j: &str, s: &str| {
        (0..traces.len())
            .min_by_key(|&t| 2 * usize::from(traces[t].journal != j) + usize::from(traces[t].sync != s))
            .unwrap_or(0)
    };
    let main = &traces[0];
    let mut entries: Vec<(Vec<(String, String)>, usize)> = Vec::new();
    for j in &journals {
        let picks: Vec<usize> = syncs.iter().map(|s| nearest(j, s)).collect();
        if picks.iter().all(|&t| t == picks[0]) {
            if picks[0] != 0 {
                entries.push((vec![("journal_mode".into(), j.clone())], picks[0]));
            }
            continue;
        }
        for (s, &t) in syncs.iter().zip(&picks) {
            if t != 0 {
                entries.push((
                    vec![("journal_mode".into(), j.clone()), ("synchronous".into(), s.clone())],
                    t,
                ));
            }
        }
    }
    let mut used = vec![false; traces.len()];
    for (matches, t) in entries {
        let other = &traces[t];
        let shown: Vec<String> = matches.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut set = Vec::new();
        let mut lines = Vec::new();
        for (name, ns, _) in &main.groups {
            let Some((_, other_ns, _)) = other.groups.iter().find(|g| &g.0 == name) else {
                notes.push(format!(
                    "--also {}: no group `{name}` in it; {} keeps the app time of {}",
                    other.label,
                    shown.join(","),
                    main.label
                ));
                continue;
            };
            let scale = (other_ns / ns * 100.0).round() / 100.0;
            if *ns <= 0.0 || crate::config::limits::app_time_scale(scale).is_err() {
                notes.push(format!(
                    "--also {}: group `{name}`'s app time there is {scale}× the main trace's, outside {}..{}; not used",
                    other.label,
                    crate::config::limits::MIN_SCALE,
                    crate::config::limits::MAX_SCALE
                ));
                continue;
            }
            lines.push(format!(
                "{name}: {} against {}: every app time × {scale}.",
                other.describe(name),
                main.describe(name)
            ));
            set.push((format!("group.{name}.app_time_scale"), scale));
        }
        if set.is_empty() {
            continue;
        }
        used[t] = true;
        notes.push(format!(
            "--also {}: the runs with {} replay its app time per request ({})",
            other.label,
            shown.join(","),
            set.iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.when.push(scenario::WhenOut {
            comment: format!(
                "The runs with {} replay the app time per request as traced in {} ({} + {}), the traced \
                 configuration nearest to them: an app's CPU per request depends on its throughput (docs/capture.md, \
                 \"Why DELETE runs fast\").\n{}",
                shown.join(", "),
                other.label,
                other.journal,
                other.sync,
                lines.join("\n")
            ),
            matches,
            set,
            why: format!(
                "app time per request from {} ({} + {})",
                other.label, other.journal, other.sync
            ),
        });
    }
    for (t, other) in traces.iter().enumerate().skip(1) {
        if !used[t] {
            notes.push(format!(
                "--also {}: no run of the matrix is nearer to its configuration ({} + {}) than to another trace's; \
                 not used",
                other.label, other.journal, other.sync
            ));
        }
    }
    Ok(())
}

/// How a process group's requests wait for its processes, which the SQL cannot show: from
/// `--queue`, else from the server a framework hook recorded or the request spans show. Returns the scenario's `queue`
/// (None: the per-process default) and why.
fn queue_of(g: &WorkerGroup, given: Option<QueueKind>) -> (Option<&'static str>, String) {
    let threaded = g.actors.len() > g.processes || g.server.as_ref().is_some_and(|s| s.1);
    // Several processes of one parent serving one port, as the request spans show them.
    let one_socket = g
        .accepts
        .as_ref()
        .filter(|a| a.processes > 1 && a.parent.is_some() && a.port.is_some());
    let evidence = |a: &trace::Accepts| {
        format!(
            "the request spans show {} processes of one parent (process.parent_pid {}) serving one port ({})",
            a.processes,
            a.parent.unwrap_or_default(),
            a.port.unwrap_or_default()
        )
    };
    // About one connection per request on one socket: a prefork server.
    if given.is_none()
        && g.server.is_none()
        && !threaded
        && let Some(a) = one_socket.filter(|a| a.connections * 2 >= a.requests)
    {
        return (
            Some("shared"),
            format!(
                "queue = \"shared\": {}, and their {} requests came on {} client connections (a client address \
                 and port not seen in the 5 s before), about one per request. These are processes that accept from \
                 one listening socket and close the connection after each response (a prefork server such as \
                 gunicorn's sync worker), so a request waits for whichever process is free first. If a proxy \
                 spreads the requests evenly over them, import with --queue per-process",
                evidence(a),
                a.requests,
                a.connections,
            ),
        );
    }
    match (given, &g.server) {
        (Some(QueueKind::Shared), _) => (
            Some("shared"),
            "queue = \"shared\" (import --queue shared): the processes take requests from one queue, as from a \
             listening socket they share"
                .into(),
        ),
        (Some(QueueKind::PerProcess), _) => (
            None,
            "queue: per-process (import --queue per-process): each process serves its own share of the clients".into(),
        ),
        (Some(QueueKind::FirstFree), _) => (
            Some("first-free"),
            "queue = \"first-free\" (import --queue first-free): each client stays with the process that took its \
             first request, as Node's cluster hands a keep-alive connection to the worker that answers first \
             (docs/app-model.md)"
                .into(),
        ),
        (None, Some((server, _))) if server.starts_with("node/") && server.ends_with(" cluster worker") => (
            Some("first-free"),
            format!(
                "queue = \"first-free\": the processes ran {server}s. The cluster primary hands each new \
                 connection to the worker that acknowledges first, and a keep-alive connection stays there, so \
                 a worker that was busy (in SQLite, in a busy-handler sleep) when the clients connected keeps \
                 fewer of them (docs/app-model.md). For processes behind a proxy that spreads requests evenly, \
                 import with --queue per-process"
            ),
        ),
        (None, Some((server, false))) if server.starts_with("gunicorn/") && !threaded => (
            Some("shared"),
            format!(
                "queue = \"shared\": the processes ran {server} with one thread each (its sync worker), which \
                 accepts from one listening socket shared by all and closes the connection after each response, \
                 so a request waits for whichever process is free first. Servers that keep a connection on its \
                 process (gunicorn's gthread, Puma) are per-process (import --queue per-process)"
            ),
        ),
        (None, server) => (
            None,
            format!(
                "queue: per-process (the default): each process serves its own share of the clients, as a server \
                 that keeps each keep-alive connection on one process{}{}. If the processes accept from one \
                 listening socket and close connections after each response (gunicorn's sync worker), import \
                 with --queue shared; if each connection stays with the process that took it first (Node's \
                 cluster), with --queue first-free",
                server.as_ref().map_or(String::new(), |s| format!(
                    " ({} recorded {})",
                    s.0,
                    if s.1 { "threads" } else { "no threads" }
                )),
                match one_socket {
                    Some(a) if server.is_none() => format!(
                        " ({}, and their {} requests came on {} client connections{})",
                        evidence(a),
                        a.requests,
                        a.connections,
                        if threaded { ", on several threads" } else { "" }
                    ),
                    _ => String::new(),
                }
            ),
        ),
    }
}

/// Puma 5 and 6 serve up to `max_fast_inline` (10) requests of a keep-alive connection in a
/// row before giving it back (docs/app-model.md, "Keep-alive connections served inline"):
/// `keep_alive_inline = 10` where the trace recorded Puma of those versions.
fn keep_alive_of(g: &WorkerGroup) -> Option<(u32, String)> {
    let (server, _) = g.server.as_ref()?;
    let mut words = server.split_whitespace();
    if words.next()? != "puma" {
        return None;
    }
    let major: u32 = words.next()?.split('.').next()?.parse().ok()?;
    matches!(major, 5 | 6).then(|| {
        (
            10,
            format!(
                "keep_alive_inline = 10: the app ran {server}, whose thread serves up to max_fast_inline (10 by \
                 default) requests of one keep-alive connection in a row, waiting up to 200 ms for each, before it \
                 gives the connection back (docs/app-model.md). Set it to the app's max_fast_inline; remove it \
                 for clients that do not keep connections alive"
            ),
        )
    })
}

fn group_out(
    g: &WorkerGroup,
    queue: Option<QueueKind>,
    replay: bool,
    keys: &params::Keys,
    notes: &mut Vec<String>,
) -> (GroupOut, Vec<RequestKind>) {
    let total = g.requests.len();
    let span_s = g.span_ns as f64 / 1e9;
    let mut out = GroupOut {
        name: g.name.clone(),
        workers: g.concurrency,
        isolation: if g.isolation_process { "process" } else { "thread" },
        connection: if g.per_request { "per-request" } else { "persistent" },
        think_time: params::fit_time(&g.idle),
        ..GroupOut::default()
    };
    let rate = if span_s > 0.0 { total as f64 / span_s } else { 0.0 };
    out.comments.push(format!(
        "Observed: {} worker(s) of {} in {} process(es), at most {} at once; {total} request(s) in {span_s:.2} s ({rate:.1} req/s).",
        g.actors.len(),
        g.exe,
        g.processes,
        g.concurrency,
    ));
    let with_cpu = g.requests.iter().filter(|r| r.cpu.is_some()).count();
    if total > 0 && with_cpu * 2 > total {
        out.comments.push(format!(
            "App time is the CPU the app burnt per request in this trace: at {rate:.1} req/s, in the traced \
             configuration (the first value of each [matrix] axis). An app's CPU per request grows where it serves \
             fewer requests and waits more (fsync, the busy handler), so configurations much slower or faster \
             than the traced one are replayed with its CPU; capture in the configuration you want the answer \
             for (docs/capture.md, \"Why DELETE runs fast\")."
        ));
        notes.push(format!(
            "{}: app time is the app's CPU per request at the traced run's {rate:.1} req/s and configuration; \
             configurations much slower or faster than it are replayed with that CPU (docs/capture.md, \"Why \
             DELETE runs fast\")",
            g.name
        ));
    }
    if out.think_time.is_some() {
        out.comments.push(
            "think_time: the idle time between a worker's requests (median or distribution). For an open loop, \
             replace it with rate = the req/s above."
                .into(),
        );
        if g.requests.iter().any(|r| r.cpu.is_some()) {
            out.comments.push(
                "With CPU readings it is the time between requests minus the app's CPU then, so it also holds \
                 waiting for a CPU. If a load generator kept the workers busy (wrk -c C, a queue of clients), \
                 model that instead: clients = C and no think_time."
                    .into(),
            );
        }
    }
    if g.isolation_process {
        let (queue, comment) = queue_of(g, queue);
        out.queue = queue;
        out.comments.push(comment.clone());
        notes.push(format!("{}: {comment}", g.name));
    }
    if out.queue != Some("shared")
        && let Some((n, comment)) = keep_alive_of(g)
    {
        out.keep_alive_inline = Some(n);
        out.comments.push(comment.clone());
        notes.push(format!("{}: {comment}", g.name));
    } else if out.queue != Some("shared") && g.server.is_none() && !g.per_request && g.isolation_process {
        // Processes on persistent connections, server unknown (a captured trace): the one
        // server setting import cannot see and that moves the tail most (the Rails proof).
        let comment = "keep_alive_inline: not written: the trace does not name the HTTP server. If it serves \
                       several requests of one keep-alive connection in a row (Puma 5 and 6: max_fast_inline, 10 \
                       by default), set keep_alive_inline = 10 (or --set group.NAME.keep_alive_inline=10): without \
                       it the imported p99 of a busy Puma app was 0.18–0.63 of the real one, with it 0.76–0.95 \
                       (docs/capture.md, the Rails proof)";
        out.comments.push(comment.into());
        notes.push(format!("{}: {comment}", g.name));
    }
    let kinds = requests::kinds(g);
    // Names in use, and the next suffix to try per base name: thousands of kinds with one
    // base name (`read_t`) must not cost a scan of every name per kind.
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut next: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut endpoint = String::new();
    let mut script_names: Vec<String> = Vec::with_capacity(kinds.len());
    for kind in &kinds {
        let mut name = match &kind.optional {
            Some(o) if o.variant > 1 => format!("{endpoint}_v{}", o.variant),
            _ => requests::kind_name(kind),
        };
        if names.contains(&name) {
            let k = next.entry(name.clone()).or_insert(2);
            while names.contains(&format!("{name}_{k}")) {
                *k += 1;
            }
            let suffixed = format!("{name}_{k}");
            *k += 1;
            name = suffixed;
        }
        names.insert(name.clone());
        if kind.optional.as_ref().is_none_or(|o| o.variant == 1) {
            endpoint = name.clone();
        }
        script_names.push(name);
    }
    for (i, kind) in kinds.iter().enumerate() {
        // The scripts of the kind's endpoint, main first (a variant follows its main).
        let main = i + 1 - kind.optional.as_ref().map_or(1, |o| o.variant);
        let count = kind.optional.as_ref().map_or(1, |o| o.variants.len());
        let siblings = &script_names[main..main + count];
        out.scripts.push(script_out(
            kind,
            script_names[i].clone(),
            siblings,
            total,
            g.per_request,
            replay,
            keys,
            notes,
        ));
    }
    (out, kinds)
}

/// Why a kind with optional statements is one endpoint, on its main variant's script; on the
/// others, which variant it is and how its steps differ from the main's.
/// `siblings`: the endpoint's scripts, main first.
fn optional_comment(o: &requests::Optional, siblings: &[String], weight: usize) -> String {
    let endpoint = &siblings[0];
    let total: usize = o.variants.iter().map(|v| v.0).sum();
    let writes = if o.writes.is_empty() {
        "no table".to_string()
    } else {
        o.writes.join(", ")
    };
    let steps = |xs: &[usize]| {
        let list = xs.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        if xs.len() == 1 {
            format!("step {list} is")
        } else {
            format!("steps {list} are")
        }
    };
    if o.variant == 1 {
        let list: Vec<String> = o
            .variants
            .iter()
            .enumerate()
            .map(|(i, (requests, statements))| format!("`{}` {requests} × {statements} statements", siblings[i]))
            .collect();
        return format!(
            "One request kind (endpoint) in {} weighted variants, {total} requests in all: {}. They were merged \
             because they start with the same statement, write the same tables ({writes}) and align on a shared \
             skeleton of statements (at least half of each): the differences are optional statements, present in \
             some requests and not others. Each variant is a script with its own steps, weighted by its requests; \
             its `$N.col` links count its own steps. This is the main variant ({weight} requests).",
            o.variants.len(),
            list.join(", ")
        );
    }
    let mut diff = Vec::new();
    if !o.added.is_empty() {
        diff.push(format!("its {} not in `{endpoint}`", steps(&o.added)));
    }
    if !o.omitted.is_empty() {
        diff.push(format!("`{endpoint}`'s {} absent here", steps(&o.omitted)));
    }
    format!(
        "Variant {} of the request kind `{endpoint}` ({weight} of its {total} requests): the same first statement \
         and tables written ({writes}); {} of its {} statements (repetitions written once) are, in order, \
         statements of `{endpoint}`'s {}{}. Step numbers (`$N.col`) are this variant's own.",
        o.variant,
        o.skeleton,
        o.shape_len,
        o.main_shape_len,
        if diff.is_empty() {
            String::new()
        } else {
            format!("; {}", diff.join(", "))
        }
    )
}

#[allow(clippy::too_many_arguments)]
fn script_out(
    kind: &RequestKind,
    name: String,
    siblings: &[String],
    total: usize,
    per_request: bool,
    replay: bool,
    keys: &params::Keys,
    notes: &mut Vec<String>,
) -> ScriptOut {
    let n = kind.instances.len();
    let weight = kind.weight();
    let mut sc = ScriptOut {
        name: name.clone(),
        weight,
        ..ScriptOut::default()
    };
    sc.comments.push(format!(
        "{weight} of {total} requests ({:.1} %).",
        100.0 * weight as f64 / total as f64
    ));
    if let Some(o) = &kind.optional {
        sc.comments.push(optional_comment(o, siblings, weight));
    }
    if !kind.variants.is_empty() {
        let list: Vec<String> = kind
            .variants
            .iter()
            .map(|(len, count)| format!("{len} statements × {count}"))
            .collect();
        sc.comments.push(format!(
            "One endpoint, {} variants that differ only in how often a statement or block repeats ({}): \
             the steps are those of the most frequent ({} statements, {n} requests), whose captured values \
             and times are used.",
            kind.variants.len(),
            list.join(", "),
            kind.instances[0].steps.len()
        ));
    }
    let replay_len = params::replay_len(kind);
    if replay && replay_len < n {
        sc.comments.push(format!(
            "replay(...) holds the first {replay_len} of {n} executions (size limit); they repeat in a cycle."
        ));
    }
    let first = &kind.instances[0];
    let inserted = params::Inserted::of(kind);
    for (i, step) in first.steps.iter().enumerate() {
        let gaps: Vec<u64> = kind
            .instances
            .iter()
            .filter_map(|r| step_app_gap(r, i, per_request))
            .collect();
        let app_time = params::fit_time(&gaps);
        let kind_of = match step.verb {
            Verb::Begin => {
                let up = step.sql.to_ascii_uppercase();
                StepKind::Begin(if up.contains("IMMEDIATE") {
                    "immediate"
                } else if up.contains("EXCLUSIVE") {
                    "exclusive"
                } else {
                    "deferred"
                })
            }
            Verb::Commit => StepKind::Commit(true),
            Verb::Rollback => StepKind::Commit(false),
            _ => {
                let ps = params::step_params(kind, &inserted, keys, i, replay, replay_len);
                for (p, out) in ps.iter().enumerate() {
                    if let Some(note) = &out.note {
                        sc.comments.push(format!("step {i} ?{}: {note}", p + 1));
                        if note.contains("fill_in") {
                            notes.push(format!("{name} step {i}: {note}"));
                        }
                    }
                }
                StepKind::Sql {
                    sql: step.norm.text.clone(),
                    params: ps.into_iter().map(|p| p.value).collect(),
                }
            }
        };
        sc.steps.push(StepOut {
            kind: kind_of,
            app_time,
        });
    }
    let with_cpu = kind.instances.iter().filter(|r| r.cpu.is_some()).count();
    if with_cpu * 2 > n {
        sc.comments.push(
            "App time is the app's CPU time (the trace has CPU readings), not the wall-clock gaps, which also hold \
             waiting for a CPU. The first step's app_time also holds the CPU spent outside the connection (before \
             its open, after its close; with request ids, since the worker's previous statement), where SQLite holds no \
             lock."
                .into(),
        );
    } else if per_request {
        let trail: Vec<u64> = kind.instances.iter().filter_map(|r| r.trail_gap).collect();
        if let Some(t) = params::fit_time(&trail) {
            sc.comments.push(format!(
                "After the last statement the app spent {t} before closing the connection (not modelled: app time \
                 after the last step would need a step of its own)."
            ));
        }
    }
    sc
}
