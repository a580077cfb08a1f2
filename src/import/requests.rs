//! From events to requests: connections per worker (pid, tid), set-up statements and
//! settings pulled out, requests cut at connection close or idle gaps, worker groups and
//! request kinds.

use super::sql::{self, Normalized, Verb};
use super::trace::{Accepts, Event, Kind, Trace};
use std::collections::{BTreeMap, HashMap};

/// A worker as the trace shows it: one thread of one process.
pub(crate) type Actor = (u32, u32);

/// One statement execution.
#[derive(Clone, Debug)]
pub(crate) struct Exec {
    pub norm: Normalized,
    pub verb: Verb,
    /// The statement as written, whitespace collapsed (BEGIN variants, schema).
    pub sql: String,
    pub ts: i64,
    pub dur: u64,
    pub changes: Option<i64>,
    /// `sqlite3_get_autocommit` after it, when the producer knows.
    pub autocommit: Option<bool>,
    /// Rows it returned, when the producer counted them.
    pub rows: Option<i64>,
    /// The rowid an INSERT gave its last row, when the producer recorded it.
    pub rowid: Option<i64>,
    pub line: usize,
    /// The share of the gap before it (since the worker's previous event) that the worker spent
    /// on the CPU, when the trace has CPU readings around that gap.
    pub cpu_share: Option<f64>,
    /// The producer's request id (a framework's request), when it knows it.
    pub request: Option<u64>,
    /// The wall-clock gap since the worker's previous event (None for its first).
    pub gap_before: Option<u64>,
    /// Statements SQLite ran inside this one that the producer counted, not recorded (the
    /// trace's `nested`): excluded as SQLite's own, with the others.
    pub nested: u64,
}

impl Exec {
    pub(crate) fn end(&self) -> i64 {
        self.ts + self.dur as i64
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub actor: Actor,
    pub start: i64,
    pub end: i64,
    pub steps: Vec<Exec>,
    /// Per-request connections: from the open (and its PRAGMAs) to the first statement.
    pub lead_gap: Option<u64>,
    /// Per-request connections: from the last statement's end to the close.
    pub trail_gap: Option<u64>,
    /// Per-request connections whose open and close carry CPU readings.
    pub cpu: Option<RequestCpu>,
}

/// Where a per-request connection's time outside its statements went, from the CPU readings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestCpu {
    /// App CPU from the open (and its PRAGMAs) to the first statement, ns.
    pub lead: u64,
    /// App CPU from the last statement to the close.
    pub trail: u64,
    /// App CPU between the worker's previous event (the previous request's close) and the open.
    pub outside: u64,
    /// The rest of that time: the worker idle (or waiting for a CPU).
    pub idle: u64,
}

impl Request {
    /// The CPU-corrected gap before step `i` (for step 0 of a per-request connection: the lead
    /// gap); the wall-clock gap when the trace has no CPU reading for it.
    pub(crate) fn app_gap(&self, i: usize) -> Option<u64> {
        if i == 0 {
            return match self.cpu {
                Some(c) => Some(c.lead + c.trail + c.outside),
                None => self.lead_gap,
            };
        }
        let wall = (self.steps[i].ts - self.steps[i - 1].end()).max(0) as u64;
        Some(match self.steps[i].cpu_share {
            Some(share) => (wall as f64 * share).round() as u64,
            None => wall,
        })
    }
}

/// Per worker: the last CPU reading and what happened since it.
struct CpuState {
    /// The thread's CPU time at the last reading.
    anchor: Option<i64>,
    /// Statement time since it (assumed CPU: SQLite's work), without overlaps.
    stmts: i64,
    /// Wall time of the gaps since it.
    gaps: i64,
    /// The events since it whose gap has no reading of its own.
    pending: Vec<usize>,
    /// The end of the worker's latest event (statements nest: FTS5's own statements run
    /// inside the app's).
    last_end: i64,
}

/// Per event of the trace: the wall-clock gap since its worker's previous event (None for its
/// first) and the share of that gap the worker spent on the CPU (None without readings).
///
/// The capture library reads the thread's CPU time only at gaps of 1 ms or more. The CPU
/// between two readings, less the statements' time (SQLite's work), is spread over all the
/// gaps between them in proportion to their wall time. Short gaps are not taken as all CPU:
/// under a saturated server (4 workers on 2 cores) half of their wall time is a wait for a
/// core, and taking it for app CPU doubled the imported app time (Wagtail, issue 28).
fn cpu_shares(events: &[super::trace::Event]) -> Vec<(Option<u64>, Option<f64>)> {
    let mut out = vec![(None, None); events.len()];
    let mut states: HashMap<Actor, CpuState> = HashMap::new();
    for (i, ev) in events.iter().enumerate() {
        let dur = match &ev.kind {
            Kind::Stmt(s) => s.dur_ns as i64,
            _ => 0,
        };
        let actor = (ev.pid, ev.tid);
        let first = !states.contains_key(&actor);
        let st = states.entry(actor).or_insert(CpuState {
            anchor: None,
            stmts: 0,
            gaps: 0,
            pending: Vec::new(),
            last_end: ev.ts,
        });
        let wall = (ev.ts - st.last_end).max(0);
        out[i].0 = (!first).then_some(wall as u64);
        st.gaps += wall;
        match (ev.cpu_ns, st.anchor) {
            (Some(c), Some(a)) => {
                let gap_cpu = (c - a - st.stmts).max(0);
                let share = if st.gaps > 0 {
                    (gap_cpu as f64 / st.gaps as f64).min(1.0)
                } else {
                    1.0
                };
                for &j in &st.pending {
                    out[j].1 = Some(share);
                }
                out[i].1 = Some(share);
                (st.anchor, st.stmts, st.gaps) = (Some(c), 0, 0);
                st.pending.clear();
            }
            (Some(c), None) => {
                (st.anchor, st.stmts, st.gaps) = (Some(c), 0, 0);
                st.pending.clear();
            }
            (None, _) => st.pending.push(i),
        }
        let end = ev.ts + dur;
        match ev.cpu_end_ns {
            Some(c) => {
                (st.anchor, st.stmts, st.gaps) = (Some(c), 0, 0);
                st.pending.clear();
            }
            None => st.stmts += (end - ev.ts.max(st.last_end)).max(0),
        }
        st.last_end = st.last_end.max(end);
    }
    out
}

impl Request {
    pub(crate) fn key(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.norm.text.clone()).collect()
    }
}

/// A group of workers of one kind: processes of one program, or threads of one process.
#[derive(Debug)]
pub(crate) struct WorkerGroup {
    pub name: String,
    pub exe: String,
    /// The HTTP server its processes run and whether on threads, where the trace says.
    pub server: Option<(String, bool)>,
    /// How its processes took connections, where the trace shows it (summed over them).
    pub accepts: Option<Accepts>,
    pub actors: Vec<Actor>,
    pub processes: usize,
    pub isolation_process: bool,
    pub per_request: bool,
    /// The most actors active at once (first to last request).
    pub concurrency: usize,
    pub requests: Vec<Request>,
    /// Idle time between a worker's consecutive requests, ns.
    pub idle: Vec<u64>,
    pub span_ns: i64,
}

/// One request kind: its statement sequence and every instance, by worker then time.
#[derive(Debug)]
pub(crate) struct RequestKind {
    /// The requests with the kind's exact statement sequence (the representative variant).
    pub instances: Vec<Request>,
    /// Requests of the same endpoint whose statement sequences differ only in how often a
    /// statement or block repeats: (statements per request, requests), every variant,
    /// representative included. Empty when there is one variant.
    pub variants: Vec<(usize, usize)>,
    /// Set when the kind is one of several variants of one endpoint that differ in optional
    /// statements (see `merge_optional`).
    pub optional: Option<Optional>,
    /// A variant's evidence for links beyond its own requests: those of the endpoint's other
    /// variants that hold every statement of this one in order, cut down to its steps and to
    /// what a link needs (values, rows, rowids; no texts), at most `EVIDENCE_MAX`. Used for
    /// `$N.col` links only, not for values or times.
    pub evidence: Vec<Request>,
}

/// The most requests of other variants a variant keeps as evidence for its links.
const EVIDENCE_MAX: usize = 20;

/// One variant of an endpoint whose requests differ in optional statements: the variants keep
/// their own steps (and so their own step numbers for `$N.col`), each a weighted script.
#[derive(Clone, Debug)]
pub(crate) struct Optional {
    /// This kind's variant number: 1 is the endpoint's main variant (the most requests).
    pub variant: usize,
    /// Every variant of the endpoint, main first: (requests, statements of its steps).
    pub variants: Vec<(usize, usize)>,
    /// Statements of the main's shape (repetitions written once) that this variant's shape
    /// shares in order (the skeleton), and the two shapes' lengths.
    pub skeleton: usize,
    pub shape_len: usize,
    pub main_shape_len: usize,
    /// This variant's steps that the main lacks, and the main's steps this variant lacks
    /// (step numbers); empty when the alignment was too large to list.
    pub added: Vec<usize>,
    pub omitted: Vec<usize>,
    /// The tables the endpoint writes (the same in every variant).
    pub writes: Vec<String>,
}

impl RequestKind {
    /// Every request the kind stands for (all its variants).
    pub(crate) fn weight(&self) -> usize {
        if self.variants.is_empty() {
            self.instances.len()
        } else {
            self.variants.iter().map(|v| v.1).sum()
        }
    }
}

/// A statement sequence with each run of a repeated statement or block (up to 4 statements)
/// written once: requests of one endpoint that loop a variable number of times share it.
fn shape(key: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < key.len() {
        let block = (1..=4).find(|&l| i + 2 * l <= key.len() && key[i..i + l] == key[i + l..i + 2 * l]);
        match block {
            Some(l) => {
                let mut j = i + l;
                while j + l <= key.len() && key[j..j + l] == key[i..i + l] {
                    j += l;
                }
                out.extend_from_slice(&key[i..i + l]);
                i = j;
            }
            None => {
                out.push(key[i].clone());
                i += 1;
            }
        }
    }
    out
}

#[derive(Debug, Default)]
pub(crate) struct Analysis {
    /// `PRAGMA name = value` the app ran, in order, with the trace line.
    pub pragmas: Vec<(String, String, usize)>,
    /// CREATE/ALTER statements, first seen order, deduplicated.
    pub schema: Vec<String>,
    /// Statements of the set-up phase (up to a worker's last CREATE) that changed rows.
    pub setup_writes: Vec<Exec>,
    /// Database files the app opened.
    pub files: Vec<String>,
    pub groups: Vec<WorkerGroup>,
    pub statements: usize,
    /// Statement counts by normalized text over the whole trace (the statement mix).
    pub mix: BTreeMap<String, usize>,
    /// Statements kept apart, not replayed: why (another database, SQLite's own) and how many.
    pub excluded: BTreeMap<String, usize>,
    /// The database file the app's traffic goes to (most statements), when the trace names one.
    pub main_file: Option<String>,
    /// Workers whose requests were cut before the statements that begin them
    /// (`start_statements`).
    pub start_cuts: Vec<StartCut>,
}

/// A worker's requests cut before the statements that begin them: where its gaps one by one
/// show no break (`request_break`), but the median gap before each statement does.
#[derive(Debug, Clone)]
pub(crate) struct StartCut {
    /// The normalized statements a request starts with.
    pub statements: Vec<String>,
    /// The shortest of their median gaps, ns (the worker's CPU where the trace reads it).
    pub start_gap: u64,
    /// The longest median gap before any other statement, ns.
    pub inside_gap: u64,
}

struct Conn {
    actor: Option<Actor>,
    /// The database file (`open`'s `file`, else its `path`); None when the open is not in the trace.
    file: Option<String>,
    /// `sqlite3_busy_timeout` calls on it: (ms, trace line).
    busy_timeout: Vec<(i64, usize)>,
    open: Option<i64>,
    close: Option<i64>,
    items: Vec<Exec>,
    first_ts: i64,
    /// The gap before the open (since the worker's previous event) and its CPU share.
    outside: Option<(u64, Option<f64>)>,
    /// The CPU share of the gap before the close.
    close_share: Option<f64>,
}

/// `vtabs`: the app's virtual tables (lower case), whose shadow tables only SQLite touches.
pub(crate) fn analyze(trace: &Trace, gap_ns: u64, vtabs: &[String]) -> Analysis {
    let mut a = Analysis::default();
    let mut open: HashMap<(u32, u64), Conn> = HashMap::new();
    let mut done: Vec<Conn> = Vec::new();
    let shares = cpu_shares(&trace.events);
    for (i, ev) in trace.events.iter().enumerate() {
        let key = (ev.pid, ev.conn);
        let actor = (ev.pid, ev.tid);
        let (wall, share) = shares[i];
        match &ev.kind {
            Kind::Open { file } => {
                if let Some(f) = file
                    && !a.files.contains(f)
                {
                    a.files.push(f.clone());
                }
                if let Some(old) = open.remove(&key) {
                    done.push(old);
                }
                let mut c = new_conn(Some(ev.ts), ev.ts);
                c.file = file.clone();
                c.outside = wall.map(|w| (w, share));
                open.insert(key, c);
            }
            Kind::BusyTimeout(ms) => {
                let c = open.entry(key).or_insert_with(|| new_conn(None, ev.ts));
                c.busy_timeout.push((*ms, ev.line));
            }
            Kind::Close => {
                if let Some(mut c) = open.remove(&key) {
                    c.close = Some(ev.ts);
                    c.close_share = share;
                    done.push(c);
                }
            }
            Kind::Stmt(s) => {
                a.statements += 1 + s.nested as usize;
                let c = open.entry(key).or_insert_with(|| new_conn(None, ev.ts));
                c.actor.get_or_insert(actor);
                let mut e = exec_of(ev, s);
                e.cpu_share = share;
                e.gap_before = wall;
                c.items.push(e);
            }
        }
    }
    done.extend(open.into_values());
    done.retain(|c| c.actor.is_some() && !c.items.is_empty());
    exclude_other_traffic(&mut a, &mut done, vtabs);
    let mut timeouts: Vec<(usize, i64)> = done
        .iter()
        .flat_map(|c| c.busy_timeout.iter().map(|(ms, line)| (*line, *ms)))
        .collect();
    timeouts.sort_unstable();
    for (line, ms) in timeouts {
        a.pragmas.push(("busy_timeout".into(), ms.max(0).to_string(), line));
    }
    done.sort_by_key(|c| c.first_ts);

    // Per worker: its connections in time order.
    let mut by_actor: BTreeMap<Actor, Vec<Conn>> = BTreeMap::new();
    for c in done {
        by_actor.entry(c.actor.expect("retained")).or_default().push(c);
    }
    let first_ts: BTreeMap<Actor, i64> = by_actor
        .iter()
        .map(|(a, conns)| (*a, conns.iter().map(|c| c.first_ts).min().unwrap_or(0)))
        .collect();
    let mut requests: BTreeMap<Actor, (bool, Vec<Request>)> = BTreeMap::new();
    for (actor, conns) in by_actor {
        // A connection that served several of the producer's requests (request ids) is not
        // one per request, whatever the opens and closes say.
        let shared = conns.iter().any(|c| {
            let mut ids = c.items.iter().filter_map(|e| e.request);
            ids.next().is_some_and(|first| ids.any(|id| id != first))
        });
        // A per-request connection carries one request: most of the worker's connections have
        // no idle gap (outside a transaction) inside them (more than half). A pool of a few long
        // connections, opened and closed once each, is not one per request.
        let per_request = !shared
            && conns.len() >= 2
            && conns.iter().filter(|c| c.open.is_some() && c.close.is_some()).count() * 2 >= conns.len()
            && conns.iter().filter(|c| !has_idle_gap(&c.items, gap_ns)).count() * 2 > conns.len();
        // A worker that creates tables is setting up: up to its last CREATE, and while no
        // other worker has started yet.
        let last_create = conns
            .iter()
            .flat_map(|c| &c.items)
            .filter(|e| e.verb == Verb::Create)
            .map(|e| e.ts)
            .max();
        let others_start = first_ts.iter().filter(|(a, _)| **a != actor).map(|(_, t)| *t).min();
        let last_create = last_create.map(|t| match others_start {
            Some(o) if o > t => o - 1,
            _ => t,
        });
        // A pool's requests are cut at idle gaps longer than `--gap`, and where the worker's
        // own work between two statements is longer than the break between the two clusters of
        // such gaps, when there is a clear one (see `request_break`).
        let busy_break = if per_request {
            None
        } else {
            // Gaps longer than --gap are cut anyway; the break is sought among the others.
            let gaps: Vec<u64> = conns
                .iter()
                .flat_map(|c| idle_gaps(&c.items).filter(|g| g.wall <= gap_ns).map(|g| g.busy))
                .collect();
            request_break(&gaps, gap_ns)
        };
        let starts = if per_request || busy_break.is_some() {
            None
        } else {
            start_statements(&conns, gap_ns)
        };
        if let Some(cut) = &starts {
            a.start_cuts.push(cut.clone());
        }
        let starts = starts.map(|c| c.statements);
        let mut reqs = Vec::new();
        for c in conns {
            let mut body: Vec<Exec> = Vec::new();
            let mut ready = c.open.unwrap_or(c.first_ts);
            for e in c.items {
                *a.mix.entry(e.norm.text.clone()).or_default() += 1;
                if e.verb == Verb::Pragma {
                    if let Some((k, v)) = sql::pragma_assignment(&e.sql) {
                        a.pragmas.push((k, v, e.line));
                    }
                    if body.is_empty() {
                        ready = e.end();
                    }
                    continue;
                }
                if e.verb == Verb::Create {
                    if !a.schema.contains(&e.sql) {
                        a.schema.push(e.sql.clone());
                    }
                    ready = e.end();
                    continue;
                }
                if last_create.is_some_and(|t| e.ts <= t) {
                    if matches!(e.verb, Verb::Insert | Verb::Update | Verb::Delete) {
                        a.setup_writes.push(e);
                    }
                    ready = body.last().map_or(ready, Exec::end);
                    continue;
                }
                body.push(e);
            }
            if body.is_empty() {
                continue;
            }
            if per_request {
                let first = body[0].ts;
                let last = body.last().map_or(first, Exec::end);
                let lead_gap = (first - ready).max(0) as u64;
                let trail_gap = c.close.map(|t| (t - last).max(0) as u64);
                // CPU readings at the open, the first statement and the close: the app's CPU
                // outside SQLite, apart from the worker's idle (or run-queue) time.
                // A gap without a reading of its own was shorter than the producer's threshold
                // (1 ms for litehammer capture): taken as CPU.
                let cpu = match (c.outside, trail_gap) {
                    (Some((out_wall, Some(out_share))), Some(trail)) => {
                        let lead_share = body[0].cpu_share.unwrap_or(1.0);
                        let trail_share = c.close_share.unwrap_or(1.0);
                        let outside = (out_wall as f64 * out_share).round() as u64;
                        Some(RequestCpu {
                            lead: (lead_gap as f64 * lead_share).round() as u64,
                            trail: (trail as f64 * trail_share).round() as u64,
                            outside,
                            idle: out_wall - outside.min(out_wall),
                        })
                    }
                    _ => None,
                };
                reqs.push(Request {
                    actor,
                    start: c.open.unwrap_or(first),
                    end: c.close.unwrap_or(last),
                    lead_gap: Some(lead_gap),
                    trail_gap,
                    cpu,
                    steps: body,
                });
            } else {
                split_bursts(actor, body, gap_ns, busy_break, starts.as_deref(), &mut reqs);
            }
        }
        // In time order: a pool's connections take turns, so one connection's requests are
        // not all before the next one's (the idle time between requests reads neighbours).
        reqs.sort_by_key(|r: &Request| r.start);
        if !reqs.is_empty() {
            requests.insert(actor, (per_request, reqs));
        }
    }
    a.pragmas.sort_by_key(|p| p.2);
    a.groups = group_workers(trace, requests);
    a
}

/// Keeps the app's traffic: connections to an in-memory or temporary database, or to a file
/// other than the main one (the one with the most statements), and statements SQLite ran on
/// its own (shadow tables of virtual tables, trigger programs) are counted in `excluded`.
fn exclude_other_traffic(a: &mut Analysis, conns: &mut Vec<Conn>, vtabs: &[String]) {
    let mut per_file: BTreeMap<&str, usize> = BTreeMap::new();
    for c in conns.iter() {
        if let Some(f) = c.file.as_deref().filter(|f| !sql::is_scratch_database(Some(f))) {
            *per_file.entry(f).or_default() += c.items.len();
        }
    }
    let main = per_file
        .iter()
        .max_by_key(|(f, n)| (**n, std::cmp::Reverse(**f)))
        .map(|(f, _)| f.to_string());
    let mut vtabs: Vec<String> = vtabs.to_vec();
    for c in conns.iter() {
        for e in &c.items {
            if e.verb == Verb::Create
                && let Some(v) = sql::virtual_table_name(&e.sql)
                && !vtabs.contains(&v.to_ascii_lowercase())
            {
                vtabs.push(v.to_ascii_lowercase());
            }
        }
    }
    const OWN: &str = "SQLite's own (virtual tables' shadow tables, trigger programs)";
    conns.retain_mut(|c| {
        let other = match c.file.as_deref() {
            Some(f) if sql::is_scratch_database(Some(f)) => {
                Some("on an in-memory or temporary database (a separate connection, e.g. a feature probe)".to_string())
            }
            Some(f) if main.as_deref().is_some_and(|m| m != f) => Some(format!("on another database file ({f})")),
            _ => None,
        };
        // Statements SQLite ran inside the app's: lines of their own in older traces (told by
        // their text), counts on the enclosing statement's line (`nested`) since the capture
        // library counts them.
        let nested: usize = c.items.iter().map(|e| e.nested as usize).sum();
        if let Some(why) = other {
            *a.excluded.entry(why).or_default() += c.items.len() + nested;
            return false;
        }
        let before = c.items.len();
        c.items.retain(|e| !sql::is_internal(&e.sql, &vtabs));
        let own = before - c.items.len() + nested;
        if own > 0 {
            *a.excluded.entry(OWN.to_string()).or_default() += own;
        }
        !c.items.is_empty()
    });
    a.main_file = main;
}

fn new_conn(open: Option<i64>, ts: i64) -> Conn {
    Conn {
        actor: None,
        file: None,
        busy_timeout: Vec::new(),
        open,
        close: None,
        items: Vec::new(),
        first_ts: ts,
        outside: None,
        close_share: None,
    }
}

fn exec_of(ev: &Event, s: &super::trace::Stmt) -> Exec {
    let verb = match s.txn.as_deref() {
        Some("begin") => Verb::Begin,
        Some("commit") => Verb::Commit,
        Some("rollback") => Verb::Rollback,
        _ if s.pragma => Verb::Pragma,
        _ => Verb::of(&s.sql),
    };
    let mut norm = sql::normalize(&s.sql, &s.expanded);
    if matches!(verb, Verb::Begin | Verb::Commit | Verb::Rollback) {
        norm.text = norm.text.to_ascii_uppercase();
    }
    Exec {
        norm,
        verb,
        sql: sql::collapse(&s.sql),
        ts: ev.ts,
        dur: s.dur_ns,
        changes: s.changes,
        autocommit: s.autocommit,
        rows: s.rows,
        rowid: s.rowid,
        line: ev.line,
        cpu_share: None,
        request: s.request,
        gap_before: None,
        nested: s.nested,
    }
}

/// Whether a connection's statements hold an idle gap longer than `gap_ns` outside a
/// transaction: where `split_bursts` would start a new request.
fn has_idle_gap(items: &[Exec], gap_ns: u64) -> bool {
    idle_cuts(items, gap_ns, None, None).next().is_some()
}

/// The positions in `items` where a new request starts: after an idle gap longer than
/// `gap_ns` since the previous statement's end, or (with `busy_break`) after a gap in which the
/// worker worked longer than `busy_break`, or (with `starts`) before a statement that begins
/// requests; never inside a transaction.
fn idle_cuts<'a>(
    items: &'a [Exec],
    gap_ns: u64,
    busy_break: Option<u64>,
    starts: Option<&'a [String]>,
) -> impl Iterator<Item = usize> + 'a {
    idle_gaps(items).filter_map(move |g| {
        (g.wall > gap_ns
            || busy_break.is_some_and(|b| g.busy > b)
            || starts.is_some_and(|s| s.contains(&items[g.at].norm.text)))
        .then_some(g.at)
    })
}

/// A gap between a connection's consecutive statements outside a transaction, where a request
/// could end.
struct IdleGap {
    /// The position of the statement after it.
    at: usize,
    /// Since the previous statement's end, ns.
    wall: u64,
    /// The worker's CPU in it (its own work: the app between two queries, or between two
    /// requests); the wall-clock gap when the trace has no CPU reading for it.
    busy: u64,
}

fn idle_gaps(items: &[Exec]) -> impl Iterator<Item = IdleGap> + '_ {
    let mut in_txn = false;
    items.iter().enumerate().filter_map(move |(i, e)| {
        let gap = (i > 0 && !in_txn).then(|| {
            let wall = (e.ts - items[i - 1].end()).max(0) as u64;
            // The CPU share is of the gap since the worker's previous event (on any connection).
            let busy = match e.cpu_share {
                Some(share) => (wall.min(e.gap_before.unwrap_or(wall)) as f64 * share).round() as u64,
                None => wall,
            };
            IdleGap { at: i, wall, busy }
        });
        in_txn = match (e.autocommit, e.verb) {
            (Some(auto), _) => !auto,
            (None, Verb::Begin) => true,
            (None, Verb::Commit | Verb::Rollback) => false,
            (None, _) => in_txn,
        };
        gap
    })
}

/// The shortest gap the request cut takes for one between two requests: an app's own work
/// between two requests (the response, parsing the next one) takes longer than that (and the
/// capture library reads the CPU only at gaps of 1 ms or more).
const MIN_REQUEST_GAP: u64 = 1_000_000;

/// How wide the empty stretch between the two clusters of gaps must be (a factor between the
/// longest gap below it and the shortest above) for the break to cut requests.
const CLEAR_BREAK: f64 = 2.0;

/// Where a worker's gaps (its CPU in each gap, or the wall clock without readings) between the
/// statements of its long-lived connections (a pool) without request ids, up to `--gap`, split into two
/// clusters, when they clearly do: the gaps inside a request (the app between two queries)
/// and the gaps between requests (the response, parsing the next request). None when the gaps
/// show no clear break below `gap_ns` with the gaps above it at least `MIN_REQUEST_GAP`.
///
/// A worker kept busy (a load generator's queue: `wrk -c 16` against 4 workers) goes from one
/// request to the next with no idle time, so few gaps are longer than `--gap`, and cutting at
/// `--gap` alone ran many requests into one (Trac 1.6 under a write-heavy mix: 160 requests
/// where the app served about 1,430). Its own work between requests is still far longer than
/// between two queries of a request: its CPU in the gaps is 0.01–3 ms inside a request and
/// mostly 5.6–32 ms between requests, with no gap between 3.2 and 5.6 ms. The wall clock is not used where there
/// are readings: a worker that waited for a core inside a request (4 workers on 2 cores) shows
/// wall-clock gaps of 3–15 ms there.
///
/// The clusters are Otsu's (the split of log(gap) that best separates two groups); the break is
/// the widest empty stretch between the two clusters' means, at its geometric middle, used when
/// it spans a factor of `CLEAR_BREAK` or more.
fn request_break(gaps: &[u64], gap_ns: u64) -> Option<u64> {
    let mut logs: Vec<f64> = gaps.iter().filter(|&&g| g > 0).map(|&g| (g as f64).ln()).collect();
    if logs.len() < 20 {
        return None;
    }
    logs.sort_by(f64::total_cmp);
    let n = logs.len() as f64;
    let total: f64 = logs.iter().sum();
    // Otsu: the split (after index k) that maximizes the between-cluster variance.
    let (mut best, mut at, mut below) = (0.0_f64, None, 0.0_f64);
    for k in 0..logs.len() - 1 {
        below += logs[k];
        if logs[k] == logs[k + 1] {
            continue;
        }
        let w0 = (k + 1) as f64 / n;
        let (m0, m1) = (below / (k + 1) as f64, (total - below) / (n - (k + 1) as f64));
        let between = w0 * (1.0 - w0) * (m0 - m1).powi(2);
        if between > best {
            (best, at) = (between, Some((m0, m1)));
        }
    }
    let (m0, m1) = at?;
    // The widest stretch between consecutive gaps that lies between the two means.
    let (width, middle, upper) = logs
        .windows(2)
        .filter(|w| w[0] >= m0 - 1e-9 && w[1] <= m1 + 1e-9)
        .map(|w| (w[1] - w[0], (w[0] + w[1]) / 2.0, w[1].exp()))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    let cut = middle.exp() as u64;
    (width >= CLEAR_BREAK.ln() && upper >= MIN_REQUEST_GAP as f64 && cut < gap_ns).then_some(cut)
}

/// How many gaps before a statement its median needs to count in `start_statements`.
const MIN_STARTS: usize = 20;

/// How far apart (a factor) the median gaps before the statements that begin requests and
/// before all the others must be for `start_statements` to cut at them.
const START_BREAK: f64 = 3.0;

/// The shortest median gap `start_statements` divides by: below it, timestamps and CPU
/// readings are too coarse for a ratio to mean anything.
const MIN_MEDIAN_GAP: u64 = 10_000;

/// Where a worker kept busy shows no clear break in its gaps one by one (`request_break`):
/// the statements that begin its requests, from the median gap before each statement. Every
/// time, a request's first statement follows the app's work between two requests (the
/// response, parsing the next request, routing), so its median gap is far longer than any
/// other statement's, though single gaps overlap. Rails 6.1 under Puma, kept busy by 16
/// keep-alive connections (session 14, pass 1): on the wall clock, the time before
/// `SELECT "posts".*` had a median of 2.3 ms (10th percentile 0.8), before the other statements
/// at most 0.45 ms (90th percentile up to 2.0); as import reads it (the worker's CPU where the
/// trace has a reading), 1.1 ms against 0.28. Only statements without the producer's request
/// id count (those with one are that request). The break is the highest step between
/// consecutive medians (statements with at least `MIN_STARTS` gaps) that spans `START_BREAK`
/// with `MIN_REQUEST_GAP` or more above it: the statements above it begin requests. None
/// without such a step, or where the statements that follow idle gaps longer than `--gap`
/// (known request starts, when there are 5 or more) are mostly not among them.
fn start_statements(conns: &[Conn], gap_ns: u64) -> Option<StartCut> {
    let mut by: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut after_idle: Vec<&str> = Vec::new();
    for c in conns {
        for g in idle_gaps(&c.items).filter(|g| c.items[g.at].request.is_none()) {
            let sql = c.items[g.at].norm.text.as_str();
            if g.wall > gap_ns {
                after_idle.push(sql);
            } else {
                by.entry(sql).or_default().push(g.busy);
            }
        }
    }
    let mut medians: Vec<(u64, &str)> = by
        .into_iter()
        .filter(|(_, v)| v.len() >= MIN_STARTS)
        .map(|(sql, mut v)| {
            v.sort_unstable();
            (v[v.len() / 2], sql)
        })
        .collect();
    medians.sort_unstable();
    let i = medians
        .windows(2)
        .rposition(|w| w[1].0 >= MIN_REQUEST_GAP && w[1].0 as f64 >= START_BREAK * w[0].0.max(MIN_MEDIAN_GAP) as f64)?;
    let starts = &medians[i + 1..];
    let known = after_idle
        .iter()
        .filter(|sql| starts.iter().any(|m| m.1 == **sql))
        .count();
    if after_idle.len() >= 5 && known * 2 < after_idle.len() {
        return None;
    }
    Some(StartCut {
        statements: {
            let mut s: Vec<String> = starts.iter().map(|m| m.1.to_string()).collect();
            s.sort_unstable();
            s
        },
        start_gap: medians[i + 1].0,
        inside_gap: medians[i].0,
    })
}

/// Persistent connections: a request is a run of statements; a new one starts after an idle
/// gap longer than `gap_ns`, or after a gap in which the worker worked longer than
/// `busy_break` (`request_break`), or before a statement of `starts` (`start_statements`),
/// never inside a transaction.
fn split_bursts(
    actor: Actor,
    body: Vec<Exec>,
    gap_ns: u64,
    busy_break: Option<u64>,
    starts: Option<&[String]>,
    out: &mut Vec<Request>,
) {
    // Statements that carry the producer's request id are that request, whatever the gaps
    // (and even when requests interleave on one worker); the others are cut at idle gaps.
    let mut by_request: Vec<(u64, Vec<Exec>)> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut rest = Vec::new();
    for e in body {
        match e.request {
            Some(id) => {
                let i = *index.entry(id).or_insert_with(|| {
                    by_request.push((id, Vec::new()));
                    by_request.len() - 1
                });
                by_request[i].1.push(e);
            }
            None => rest.push(e),
        }
    }
    let mut cuts: Vec<Request> = by_request
        .into_iter()
        .map(|(_, steps)| with_outside_cpu(request_of(actor, steps)))
        .collect();
    // Cut from the end, so that each `split_off` leaves the earlier statements in `rest`.
    let cuts_at: Vec<usize> = idle_cuts(&rest, gap_ns, busy_break, starts).collect();
    for &at in cuts_at.iter().rev() {
        let tail = rest.split_off(at);
        cuts.push(with_outside_cpu(request_of(actor, tail)));
    }
    if !rest.is_empty() {
        cuts.push(with_outside_cpu(request_of(actor, rest)));
    }
    cuts.sort_by_key(|r| r.start);
    out.extend(cuts);
}

/// With CPU readings, the app's CPU between the worker's previous statement and the request's
/// first (the framework's routing, rendering, the previous response) is the request's own work
/// outside SQLite, as for a per-request connection; the rest of that time the worker was idle
/// (or waiting for a CPU).
fn with_outside_cpu(mut r: Request) -> Request {
    if let (Some(gap), Some(share)) = (r.steps[0].gap_before, r.steps[0].cpu_share) {
        let outside = (gap as f64 * share).round() as u64;
        r.cpu = Some(RequestCpu {
            lead: 0,
            trail: 0,
            outside,
            idle: gap - outside.min(gap),
        });
    }
    r
}

fn request_of(actor: Actor, steps: Vec<Exec>) -> Request {
    let start = steps[0].ts;
    let end = steps.iter().map(Exec::end).max().unwrap_or(start);
    Request {
        actor,
        start,
        end,
        steps,
        lead_gap: None,
        trail_gap: None,
        cpu: None,
    }
}

fn exe_name(trace: &Trace, pid: u32) -> String {
    trace
        .exe_of(pid)
        .and_then(|e| std::path::Path::new(e).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".to_string())
}

fn group_workers(trace: &Trace, requests: BTreeMap<Actor, (bool, Vec<Request>)>) -> Vec<WorkerGroup> {
    let mut threads_per_pid: HashMap<u32, usize> = HashMap::new();
    for (pid, _) in requests.keys() {
        *threads_per_pid.entry(*pid).or_default() += 1;
    }
    type Member = (Actor, bool, Vec<Request>);
    let mut by_kind: BTreeMap<(String, bool), Vec<Member>> = BTreeMap::new();
    for (actor, (per_request, reqs)) in requests {
        let threaded = threads_per_pid[&actor.0] > 1;
        by_kind
            .entry((exe_name(trace, actor.0), threaded))
            .or_default()
            .push((actor, per_request, reqs));
    }
    let several = by_kind.len() > 1;
    let mut groups = Vec::new();
    for ((exe, threaded), members) in by_kind {
        let mut pids: Vec<u32> = members.iter().map(|(a, ..)| a.0).collect();
        pids.dedup();
        let processes = pids.len();
        let isolation_process = processes > 1;
        let per_request = members.iter().filter(|m| m.1).count() * 2 > members.len();
        let lifetimes: Vec<(i64, i64)> = members
            .iter()
            .map(|(_, _, r)| (r[0].start, r.last().map_or(r[0].end, |l| l.end)))
            .collect();
        let mut idle = Vec::new();
        for (_, _, reqs) in &members {
            for w in reqs.windows(2) {
                idle.push(match w[1].cpu {
                    Some(c) => c.idle,
                    None => (w[1].start - w[0].end).max(0) as u64,
                });
            }
        }
        let start = lifetimes.iter().map(|l| l.0).min().unwrap_or(0);
        let end = lifetimes.iter().map(|l| l.1).max().unwrap_or(0);
        let base = exe
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
            .to_string();
        let base = if base.is_empty() { "app".to_string() } else { base };
        let name = match (several, isolation_process, threaded) {
            (false, _, _) => "app".to_string(),
            (true, true, _) => format!("{base}-processes"),
            (true, false, true) => format!("{base}-threads"),
            (true, false, false) => format!("{base}-{}", members[0].0.0),
        };
        groups.push(WorkerGroup {
            name,
            server: pids.iter().find_map(|p| trace.server_of(*p)).cloned(),
            accepts: Accepts::sum(pids.iter().filter_map(|p| trace.accepts_of(*p))),
            exe,
            actors: members.iter().map(|m| m.0).collect(),
            processes,
            isolation_process,
            per_request,
            concurrency: max_overlap(&lifetimes),
            requests: members.into_iter().flat_map(|m| m.2).collect(),
            idle,
            span_ns: end - start,
        });
    }
    groups
}

fn max_overlap(spans: &[(i64, i64)]) -> usize {
    let mut points: Vec<(i64, i32)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    // Ends before starts at the same instant.
    points.sort();
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in points {
        cur += d;
        best = best.max(cur);
    }
    best.max(1) as usize
}

/// A group's requests by kind, most frequent first; instances by worker, then time. Requests
/// whose sequences differ only in repetition counts (the same `shape`) are one kind: its steps
/// are those of the most frequent variant (the one nearest the mean length on a tie: its
/// captured values are the evidence for links and values), and its weight counts every variant.
pub(crate) fn kinds(group: &WorkerGroup) -> Vec<RequestKind> {
    let mut by_shape: HashMap<Vec<String>, BTreeMap<Vec<String>, Vec<Request>>> = HashMap::new();
    let mut order: Vec<Vec<String>> = Vec::new();
    for r in &group.requests {
        let key = r.key();
        let sh = shape(&key);
        if !by_shape.contains_key(&sh) {
            order.push(sh.clone());
        }
        by_shape.entry(sh).or_default().entry(key).or_default().push(r.clone());
    }
    let mut out: Vec<RequestKind> = order
        .into_iter()
        .map(|sh| {
            let variants = by_shape.remove(&sh).unwrap_or_default();
            let total: usize = variants.values().map(Vec::len).sum();
            let mean = variants.iter().map(|(k, v)| k.len() * v.len()).sum::<usize>() as f64 / total.max(1) as f64;
            let mut counts: Vec<(usize, usize)> = variants.iter().map(|(k, v)| (k.len(), v.len())).collect();
            counts.sort_unstable();
            let best = variants
                .iter()
                .min_by(|a, b| {
                    let d = |k: &Vec<String>| (k.len() as f64 - mean).abs();
                    b.1.len().cmp(&a.1.len()).then(d(a.0).total_cmp(&d(b.0)))
                })
                .map(|(k, _)| k.clone())
                .unwrap_or_default();
            let mut variants = variants;
            let mut instances = variants.remove(&best).unwrap_or_default();
            instances.sort_by_key(|r| (r.actor, r.start));
            RequestKind {
                instances,
                variants: if counts.len() > 1 { counts } else { Vec::new() },
                optional: None,
                evidence: Vec::new(),
            }
        })
        .collect();
    out.sort_by_key(|k| std::cmp::Reverse(k.weight()));
    merge_optional(out, ALIGN_BUDGET)
}

/// The most alignment-table cells (and statements compared) one group's merging may cost: with
/// thousands of long kinds of one signature, the rest stay kinds of their own (1,500 one-off
/// variants of 62 statements added 2.3 s to a 14.5 s debug-build import).
const ALIGN_BUDGET: usize = 100_000_000;

/// `align` while the budget lasts: None when this table would exceed what is left.
fn align_within<T: PartialEq>(budget: &mut usize, a: &[T], b: &[T]) -> Option<Vec<(usize, usize)>> {
    let cells = (a.len() + 1).saturating_mul(b.len() + 1);
    if cells > *budget {
        return None;
    }
    *budget -= cells;
    align(a, b)
}

/// The most cells an alignment table may have (two shapes of 2,000 statements each): longer
/// requests are not aligned, and stay kinds of their own.
const ALIGN_MAX_CELLS: usize = 4_000_000;

/// The longest common subsequence of `a` and `b`, as pairs of indices in order; None when the
/// table would exceed `ALIGN_MAX_CELLS`.
fn align<T: PartialEq>(a: &[T], b: &[T]) -> Option<Vec<(usize, usize)>> {
    let (n, m) = (a.len(), b.len());
    if (n + 1).saturating_mul(m + 1) > ALIGN_MAX_CELLS {
        return None;
    }
    // t[i][j]: the LCS of a[i..] and b[j..].
    let w = m + 1;
    let mut t = vec![0u16; (n + 1) * w];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i * w + j] = if a[i] == b[j] {
                t[(i + 1) * w + j + 1] + 1
            } else {
                t[(i + 1) * w + j].max(t[i * w + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut pairs = Vec::with_capacity(t[0] as usize);
    while i < n && j < m {
        if a[i] == b[j] {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if t[(i + 1) * w + j] >= t[i * w + j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    Some(pairs)
}

/// An endpoint's first data statement and the tables it writes (sorted).
type Signature = (Option<String>, Vec<String>);

/// How many elements two sorted lists share, repeats counted (their multiset intersection).
fn common(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// The length of the longest common subsequence (two rows of the table), while the budget
/// lasts; None when this table would exceed what is left or `ALIGN_MAX_CELLS`.
fn lcs_len_within(budget: &mut usize, a: &[u32], b: &[u32]) -> Option<usize> {
    let cells = (a.len() + 1).saturating_mul(b.len() + 1);
    if cells > *budget || cells > ALIGN_MAX_CELLS {
        return None;
    }
    *budget -= cells;
    let mut prev = vec![0u32; b.len() + 1];
    let mut cur = vec![0u32; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y { prev[j] + 1 } else { prev[j + 1].max(cur[j]) };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()] as usize)
}

/// What keeps two endpoints apart: the first statement that reads or writes data, and the
/// set of tables written.
fn signature(kind: &RequestKind) -> Signature {
    let steps = &kind.instances[0].steps;
    let data = |v: Verb| matches!(v, Verb::Select | Verb::Insert | Verb::Update | Verb::Delete);
    let first = steps.iter().find(|s| data(s.verb)).map(|s| s.norm.text.clone());
    let mut writes: Vec<String> = steps
        .iter()
        .filter(|s| matches!(s.verb, Verb::Insert | Verb::Update | Verb::Delete))
        .map(|s| sql::main_table(&s.sql).unwrap_or_else(|| s.norm.text.clone()))
        .collect();
    writes.sort_unstable();
    writes.dedup();
    (first, writes)
}

/// Kinds (most requests first) that are one endpoint with optional statements become its
/// weighted variants, main first. A kind joins the heaviest earlier kind (an endpoint's main)
/// that has the same first data statement, writes the same tables, and whose shape it aligns
/// with on a shared skeleton (a common subsequence) of at least 2 statements and at least half
/// of the longer shape: the differences are statements inserted or omitted around it. Kinds
/// are compared with the mains only, so an endpoint does not drift by chains of small steps.
/// Alignments stop when `budget` (table cells) is spent.
fn merge_optional(kinds: Vec<RequestKind>, mut budget: usize) -> Vec<RequestKind> {
    struct Member {
        kind: RequestKind,
        /// The shape, statements as numbers (`ids`), and the same sorted.
        shape: Vec<u32>,
        sorted: Vec<u32>,
        skeleton: usize,
    }
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut intern = |key: Vec<String>| -> Vec<u32> {
        key.into_iter()
            .map(|t| {
                let next = ids.len() as u32;
                *ids.entry(t).or_insert(next)
            })
            .collect()
    };
    let mut endpoints: Vec<(Vec<Member>, Signature)> = Vec::new();
    for kind in kinds {
        let shape = intern(shape(&kind.instances[0].key()));
        let mut sorted = shape.clone();
        sorted.sort_unstable();
        let sig = signature(&kind);
        let mut joined = None;
        for (e, (members, esig)) in endpoints.iter().enumerate() {
            let main = &members[0];
            let longer = main.shape.len().max(shape.len());
            // The statements the two share, repeats counted, bound the skeleton from above.
            let bound = common(&main.sorted, &sorted);
            if *esig != sig || bound < 2 || bound * 2 < longer {
                continue;
            }
            let Some(l) = lcs_len_within(&mut budget, &main.shape, &shape) else {
                continue;
            };
            if l >= 2 && l * 2 >= longer {
                joined = Some((e, l));
                break;
            }
        }
        let own = shape.len();
        let member = |skeleton| Member {
            kind,
            shape,
            sorted,
            skeleton,
        };
        match joined {
            Some((e, skeleton)) => endpoints[e].0.push(member(skeleton)),
            None => endpoints.push((vec![member(own)], sig)),
        }
    }
    let mut endpoints: Vec<(Vec<Member>, Vec<String>)> = endpoints.into_iter().map(|(m, s)| (m, s.1)).collect();
    // Endpoints by the requests they stand for; a stable sort keeps the order of ties.
    endpoints.sort_by_key(|(m, _)| std::cmp::Reverse(m.iter().map(|x| x.kind.weight()).sum::<usize>()));
    let mut out = Vec::new();
    for (members, writes) in endpoints {
        if members.len() == 1 {
            out.extend(members.into_iter().map(|m| m.kind));
            continue;
        }
        let variants: Vec<(usize, usize)> = members
            .iter()
            .map(|m| (m.kind.weight(), m.kind.instances[0].steps.len()))
            .collect();
        let main_shape_len = members[0].shape.len();
        let keys: Vec<Vec<u32>> = members.iter().map(|m| intern(m.kind.instances[0].key())).collect();
        let sorted: Vec<Vec<u32>> = keys
            .iter()
            .map(|k| {
                let mut k = k.clone();
                k.sort_unstable();
                k
            })
            .collect();
        let main_key = &keys[0];
        let mut evidence: Vec<Vec<Request>> = vec![Vec::new(); members.len()];
        // At most as many projections in all as the endpoint has requests: memory at most doubles.
        let mut left: usize = members.iter().map(|m| m.kind.instances.len()).sum();
        for (i, key) in keys.iter().enumerate() {
            for (j, other) in members.iter().enumerate() {
                if i == j || evidence[i].len() >= EVIDENCE_MAX || left == 0 {
                    continue;
                }
                // Another variant holds this one's statements in order: every one of them.
                let cost = key.len() + keys[j].len();
                if cost > budget {
                    break;
                }
                budget -= cost;
                if common(&sorted[i], &sorted[j]) < key.len() {
                    continue;
                }
                let Some(pairs) = align_within(&mut budget, key, &keys[j]) else {
                    continue;
                };
                if pairs.len() < key.len() {
                    continue;
                }
                let room = (EVIDENCE_MAX - evidence[i].len()).min(left);
                left -= room.min(other.kind.instances.len());
                // Only what a link needs (values, rows, rowid): not the texts again.
                let light = |e: &Exec| Exec {
                    norm: sql::Normalized {
                        text: String::new(),
                        values: e.norm.values.clone(),
                    },
                    sql: String::new(),
                    ..*e
                };
                evidence[i].extend(other.kind.instances.iter().take(room).map(|r| Request {
                    steps: pairs.iter().map(|&(_, b)| light(&r.steps[b])).collect(),
                    lead_gap: None,
                    trail_gap: None,
                    cpu: None,
                    ..*r
                }));
            }
        }
        for ((i, m), evidence) in members.into_iter().enumerate().zip(evidence) {
            let key = &keys[i];
            let aligned = if i > 0 {
                align_within(&mut budget, main_key, key)
            } else {
                None
            };
            let (added, omitted) = match aligned {
                Some(pairs) => {
                    let (mut in_main, mut in_this) = (vec![false; main_key.len()], vec![false; key.len()]);
                    for (a, b) in pairs {
                        in_main[a] = true;
                        in_this[b] = true;
                    }
                    (
                        (0..key.len()).filter(|&j| !in_this[j]).collect(),
                        (0..main_key.len()).filter(|&j| !in_main[j]).collect(),
                    )
                }
                _ => (Vec::new(), Vec::new()),
            };
            let mut kind = m.kind;
            kind.optional = Some(Optional {
                variant: i + 1,
                variants: variants.clone(),
                skeleton: m.skeleton,
                shape_len: m.shape.len(),
                main_shape_len,
                added,
                omitted,
                writes: writes.clone(),
            });
            kind.evidence = evidence;
            out.push(kind);
        }
    }
    out
}

/// A short name for a kind: verb and table of each statement, consecutive repeats merged.
pub(crate) fn kind_name(kind: &RequestKind) -> String {
    let mut parts: Vec<String> = Vec::new();
    for step in &kind.instances[0].steps {
        let verb = match step.verb {
            Verb::Select => "read",
            Verb::Insert => "insert",
            Verb::Update => "update",
            Verb::Delete => "delete",
            _ => continue,
        };
        let part = match sql::main_table(&step.sql) {
            Some(t) => format!("{verb}_{t}"),
            None => verb.to_string(),
        };
        if parts.last() != Some(&part) {
            parts.push(part);
        }
    }
    if parts.is_empty() {
        return "transaction".into();
    }
    if parts.len() > 4 {
        let n = parts.len() - 3;
        parts.truncate(3);
        parts.push(format!("{n}_more"));
    }
    parts.join("+")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    /// One worker, per-request connections, with CPU readings (`with_cpu`) or without: every
    /// gap is twice as long on the wall clock as on the CPU (the worker waited for a CPU half
    /// the time).
    fn trace(with_cpu: bool) -> Trace {
        let mut lines = Vec::new();
        let (mut t, mut cpu) = (1_000 * MS, 10 * MS);
        // An event after `wall` ns of which `on_cpu` were CPU; a statement then runs 0.1 ms.
        let mut event = |kind: &str, conn: i64, wall: i64, on_cpu: i64, sql: Option<&str>| {
            t += wall;
            cpu += on_cpu;
            let reading = if with_cpu {
                format!(r#","cpu_ns":{cpu}"#)
            } else {
                String::new()
            };
            let stmt = sql.map_or(String::new(), |q| {
                format!(r#","dur_ns":100000,"sql":"{q}","expanded":"{q}""#)
            });
            lines.push(format!(
                r#"{{"v":1,"kind":"{kind}","ts":{t},"pid":7,"tid":7,"conn":{conn}{reading}{stmt}}}"#
            ));
            if sql.is_some() {
                t += 100_000;
                cpu += 100_000;
            }
        };
        for conn in 1..=3 {
            // 8 ms outside the previous connection (2 ms of CPU), then 4 ms (2 ms) before the
            // first statement, 6 ms (3 ms) before the second, 2 ms (1 ms) to the close.
            event(
                "open",
                conn,
                if conn == 1 { 0 } else { 8 * MS },
                if conn == 1 { 0 } else { 2 * MS },
                None,
            );
            event("stmt", conn, 4 * MS, 2 * MS, Some("SELECT 1"));
            event("stmt", conn, 6 * MS, 3 * MS, Some("SELECT 2"));
            event("close", conn, 2 * MS, MS, None);
        }
        crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace")
    }

    /// One worker (pid 7) with a pool of two connections, as Trac keeps: a short one at
    /// start-up, then a long one whose statements `serve` writes (`stmt(at, sql)`) from the
    /// time it is given; it returns the time after its last one.
    fn pool(serve: impl FnOnce(&mut dyn FnMut(i64, &str), i64) -> i64) -> Trace {
        let mut lines = Vec::new();
        let mut line = |kind: &str, conn: i64, at: i64, sql: Option<&str>| {
            let stmt = sql.map_or(String::new(), |q| {
                format!(r#","dur_ns":100000,"sql":"{q}","expanded":"{q}""#)
            });
            lines.push(format!(
                r#"{{"v":1,"kind":"{kind}","ts":{at},"pid":7,"tid":7,"conn":{conn}{stmt}}}"#
            ));
        };
        let t = 1_000 * MS;
        line("open", 1, t, None);
        line("stmt", 1, t + MS, Some("SELECT 0"));
        line("close", 1, t + 2 * MS, None);
        let t = t + 3 * MS;
        line("open", 2, t, None);
        let t = serve(&mut |at, q| line("stmt", 2, at, Some(q)), t);
        line("close", 2, t + MS, None);
        crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace")
    }

    /// [`pool`] whose long connection serves `requests` requests of 3 statements, 1 ms apart,
    /// with an idle gap of `idle` ms before each.
    fn pooled(requests: i64, idle: i64) -> Trace {
        pool(|stmt, mut t| {
            for _ in 0..requests {
                t += idle * MS;
                for q in ["SELECT 1", "SELECT 2", "SELECT 3"] {
                    stmt(t, q);
                    t += MS;
                }
            }
            t
        })
    }

    #[test]
    fn a_pool_of_long_connections_is_not_one_per_request() {
        // Two connections, both opened and closed: before, that was enough to take them for
        // per-request connections (two requests of 1 and 300 statements).
        let a = analyze(&pooled(100, 60), 50 * MS as u64, &[]);
        let g = &a.groups[0];
        assert!(!g.per_request);
        // The long connection is cut at its idle gaps: 100 requests, and the start-up one.
        assert_eq!(g.requests.len(), 101);
        assert!(g.requests[1..].iter().all(|r| r.steps.len() == 3));
        // With no idle gap longer than --gap nothing in the trace tells the requests apart
        // (a framework route's request ids would): one request per connection, as before.
        let a = analyze(&pooled(100, 10), 50 * MS as u64, &[]);
        assert!(a.groups[0].per_request);
        assert_eq!(a.groups[0].requests.len(), 2);
    }

    /// One worker with a pool of two connections, kept busy: `n` requests of 3 statements,
    /// 0.2 ms apart inside a request and `between` µs apart between requests (the app's own work:
    /// no idle time), with one idle gap of 60 ms halfway (so the worker is seen to pool).
    fn busy_pool(n: i64, between: i64) -> Trace {
        let us = 1_000;
        pool(|stmt, mut t| {
            for i in 0..n {
                if i == n / 2 {
                    t += 60 * MS;
                }
                for q in ["SELECT 1", "SELECT 2", "SELECT 3"] {
                    stmt(t, q);
                    t += 300 * us;
                }
                t += between * us - 200 * us;
            }
            t
        })
    }

    #[test]
    fn a_busy_pool_is_cut_at_the_break_between_its_two_clusters_of_gaps() {
        // 8 ms between requests, far below --gap (50 ms): before, the 100 requests ran into two
        // (cut at the one idle gap).
        let a = analyze(&busy_pool(100, 8_000), 50 * MS as u64, &[]);
        let g = &a.groups[0];
        assert!(!g.per_request);
        assert_eq!(g.requests.len(), 101, "the start-up request and 100 of 3 statements");
        assert!(g.requests[1..].iter().all(|r| r.steps.len() == 3));
        // The break is the geometric middle of the empty stretch between the clusters (0.2 ms
        // inside requests, 8 ms between): sqrt(0.2 ms x 8 ms) = 1.265 ms.
        let gaps: Vec<u64> = [200_000u64; 200].into_iter().chain([8 * MS as u64; 99]).collect();
        let cut = request_break(&gaps, 50 * MS as u64).expect("two clear clusters");
        assert!((1_264_000..1_266_000).contains(&cut), "{cut}");
        // A cluster above the break shorter than 1 ms is not taken for the work between
        // requests (it takes longer), nor a break above --gap (--gap cuts there already).
        let tight: Vec<u64> = [20_000u64; 200].into_iter().chain([400_000; 99]).collect();
        assert_eq!(request_break(&tight, 50 * MS as u64), None);
        let wide: Vec<u64> = [MS as u64; 200].into_iter().chain([5_000 * MS as u64; 99]).collect();
        assert_eq!(request_break(&wide, 50 * MS as u64), None);
    }

    /// [`pool`] kept busy with `n` requests of three statements whose gaps overlap one by one:
    /// 0.8–4 ms before each request's first statement (the app's work between requests), mostly
    /// 0.2–0.6 ms before the others but 0.6–2.5 ms before one in ten; one idle gap of 60 ms
    /// halfway (so the worker is seen to pool). `first` names each request's first statement.
    fn overlapping_pool(n: i64, first: impl Fn(i64) -> &'static str) -> Trace {
        let us = 1_000;
        pool(|stmt, mut t| {
            for i in 0..n {
                if i == n / 2 {
                    t += 60 * MS;
                }
                t += (800 + (i * 37 % 33) * 100) * us;
                stmt(t, first(i));
                t += 100 * us;
                for (j, q) in ["SELECT b FROM t", "SELECT c FROM t"].into_iter().enumerate() {
                    let k = i * 2 + j as i64;
                    t += if k % 10 == 0 {
                        600 + (k * 7 % 20) * 100
                    } else {
                        200 + (k * 13 % 5) * 100
                    } * us;
                    stmt(t, q);
                    t += 100 * us;
                }
            }
            t
        })
    }

    #[test]
    fn a_busy_pool_without_a_break_in_its_gaps_is_cut_before_the_statement_that_begins_requests() {
        let a = analyze(&overlapping_pool(100, |_| "SELECT a FROM t"), 50 * MS as u64, &[]);
        let g = &a.groups[0];
        assert!(!g.per_request);
        assert_eq!(a.start_cuts.len(), 1, "{:?}", a.start_cuts);
        let cut = &a.start_cuts[0];
        assert_eq!(cut.statements, ["SELECT a FROM t"]);
        assert!(cut.start_gap >= 3 * cut.inside_gap, "{cut:?}");
        assert_eq!(g.requests.len(), 101, "the start-up request and 100 of 3 statements");
        assert!(
            g.requests[1..]
                .iter()
                .all(|r| r.steps.len() == 3 && r.steps[0].sql == "SELECT a FROM t")
        );
        // The gaps one by one show no break.
        let steps: Vec<&Exec> = g.requests[1..].iter().flat_map(|r| &r.steps).collect();
        let gaps: Vec<u64> = steps
            .windows(2)
            .map(|w| (w[1].ts - w[0].end()) as u64)
            .filter(|&gap| gap < 50 * MS as u64)
            .collect();
        assert_eq!(request_break(&gaps, 50 * MS as u64), None);
        // Requests that begin with either of two statements: both are starts.
        let a = analyze(
            &overlapping_pool(100, |i| {
                if i % 3 == 0 {
                    "SELECT d FROM t"
                } else {
                    "SELECT a FROM t"
                }
            }),
            50 * MS as u64,
            &[],
        );
        assert_eq!(a.start_cuts[0].statements, ["SELECT a FROM t", "SELECT d FROM t"]);
        assert_eq!(a.groups[0].requests.len(), 101);
    }

    #[test]
    fn start_statements_need_the_known_starts_and_leave_request_ids_alone() {
        // Idle gaps over --gap before `SELECT c FROM t`, a statement inside the requests: the
        // statements after idle gaps are where requests began, and SELECT a is not one of
        // them, so nothing is cut at it.
        let trace = pool(|stmt, mut t| {
            for i in 0..100 {
                t += (800 + (i * 37 % 33) * 100) * 1_000;
                stmt(t, "SELECT a FROM t");
                t += 100_000;
                t += if i % 10 == 0 { 60 * MS } else { 300_000 };
                stmt(t, "SELECT c FROM t");
                t += 100_000;
            }
            t
        });
        let a = analyze(&trace, 50 * MS as u64, &[]);
        assert!(a.start_cuts.is_empty(), "{:?}", a.start_cuts);
        // Statements with the producer's request ids are those requests: their gaps are not
        // counted, and nothing is cut.
        let mut trace = overlapping_pool(100, |_| "SELECT a FROM t");
        for (k, e) in trace.events.iter_mut().enumerate() {
            if let Kind::Stmt(s) = &mut e.kind {
                s.request = Some(1 + k as u64 / 3);
            }
        }
        let a = analyze(&trace, 50 * MS as u64, &[]);
        assert!(a.start_cuts.is_empty(), "{:?}", a.start_cuts);
    }

    #[test]
    fn statements_whose_median_gaps_are_alike_are_not_taken_for_request_starts() {
        // Every statement follows gaps of 0.8–4 ms: nothing tells a request's first apart.
        let trace = pool(|stmt, mut t| {
            for i in 0..100 {
                if i == 50 {
                    t += 60 * MS;
                }
                for q in ["SELECT a FROM t", "SELECT b FROM t", "SELECT c FROM t"] {
                    t += (800 + (i * 37 % 33) * 100) * 1_000;
                    stmt(t, q);
                    t += 100_000;
                }
            }
            t
        });
        let a = analyze(&trace, 50 * MS as u64, &[]);
        assert!(a.start_cuts.is_empty(), "{:?}", a.start_cuts);
        assert_eq!(a.groups[0].requests.len(), 3, "the start-up request and the two halves");
    }

    #[test]
    fn gaps_without_two_clear_clusters_keep_the_gap_option() {
        // Gaps spread evenly from 0.1 ms to 40 ms on a log scale: no break to believe.
        let gaps: Vec<u64> = (0..300).map(|i| (1e5 * 400f64.powf(i as f64 / 299.0)) as u64).collect();
        assert_eq!(request_break(&gaps, 50 * MS as u64), None);
        // Too few gaps to tell.
        assert_eq!(request_break(&[200_000, 5 * MS as u64], 50 * MS as u64), None);
        // Clusters 1.5 times apart are not clearly two.
        let close: Vec<u64> = [2 * MS as u64; 200].into_iter().chain([3 * MS as u64; 99]).collect();
        assert_eq!(request_break(&close, 50 * MS as u64), None);
    }

    /// One worker, one long connection, CPU readings on every statement: `n` requests of 3
    /// statements (0.1 ms each). Between requests, 8 ms on the wall clock of which 7 ms on the
    /// CPU (the response, the next request); inside a request, 0.2 ms (0.1 ms CPU), except that
    /// in every 4th request the worker waited 6 ms for a core before its second statement (0.1
    /// ms CPU). One idle gap of 60 ms halfway.
    fn busy_pool_waiting_for_a_core(n: i64) -> Trace {
        let mut lines = Vec::new();
        let (mut t, mut cpu) = (1_000 * MS, 10 * MS);
        let mut stmt = |wall: i64, on_cpu: i64, q: &str| {
            t += wall;
            cpu += on_cpu;
            lines.push(format!(
                r#"{{"v":1,"kind":"stmt","ts":{t},"pid":7,"tid":7,"conn":1,"cpu_ns":{cpu},"dur_ns":100000,"sql":"{q}","expanded":"{q}"}}"#
            ));
            t += 100_000;
            cpu += 100_000;
        };
        for i in 0..n {
            let (wall, on_cpu) = match i {
                0 => (0, 0),
                _ if i == n / 2 => (60 * MS, MS),
                _ => (8 * MS, 7 * MS),
            };
            stmt(wall, on_cpu, "SELECT 1");
            stmt(if i % 4 == 0 { 6 * MS } else { MS / 5 }, MS / 10, "SELECT 2");
            stmt(MS / 5, MS / 10, "SELECT 3");
        }
        crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace")
    }

    #[test]
    fn with_cpu_readings_a_busy_pool_is_cut_where_the_worker_worked_not_where_it_waited() {
        let a = analyze(&busy_pool_waiting_for_a_core(100), 50 * MS as u64, &[]);
        let g = &a.groups[0];
        assert!(!g.per_request);
        // On the wall clock the 6 ms waits inside 25 requests would look like the 8 ms gaps
        // between requests; on the CPU they are 0.1 ms against 7 ms.
        assert_eq!(g.requests.len(), 100);
        for r in &g.requests {
            let sqls: Vec<&str> = r.steps.iter().map(|s| s.sql.as_str()).collect();
            assert_eq!(sqls, ["SELECT 1", "SELECT 2", "SELECT 3"]);
        }
    }

    /// One worker with a pool of two long connections (as Trac keeps, with no request ids) and
    /// CPU readings on every event: 4 requests of 3 statements (0.1 ms each), alternating
    /// between the two connections. Before request `k` the worker sat 60 ms on the wall clock,
    /// `10 + 5k` ms of it on the CPU (the framework routing, rendering the previous response);
    /// inside a request, 1 ms (0.5 ms CPU) before the second statement and 2 ms (0.5 ms CPU)
    /// before the third.
    fn pooled_with_cpu() -> Trace {
        let mut lines = Vec::new();
        let (mut t, mut cpu) = (1_000 * MS, 10 * MS);
        let mut event = |kind: &str, conn: i64, wall: i64, on_cpu: i64, sql: Option<&str>| {
            t += wall;
            cpu += on_cpu;
            let stmt = sql.map_or(String::new(), |q| {
                format!(r#","dur_ns":100000,"sql":"{q}","expanded":"{q}""#)
            });
            lines.push(format!(
                r#"{{"v":1,"kind":"{kind}","ts":{t},"pid":7,"tid":7,"conn":{conn},"cpu_ns":{cpu}{stmt}}}"#
            ));
            if sql.is_some() {
                t += 100_000;
                cpu += 100_000;
            }
        };
        event("open", 1, 0, 0, None);
        event("open", 2, 0, 0, None);
        for k in 0..4 {
            let conn = 1 + k % 2;
            event("stmt", conn, 60 * MS, (10 + 5 * k) * MS, Some("SELECT 1"));
            event("stmt", conn, MS, MS / 2, Some("SELECT 2"));
            event("stmt", conn, 2 * MS, MS / 2, Some("SELECT 3"));
        }
        event("close", 1, MS, MS, None);
        event("close", 2, 0, 0, None);
        crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace")
    }

    #[test]
    fn requests_cut_at_idle_gaps_in_a_pool_take_the_cpu_before_them_as_app_time() {
        let a = analyze(&pooled_with_cpu(), 50 * MS as u64, &[]);
        let g = &a.groups[0];
        assert!(!g.per_request, "two long connections, each with idle gaps: a pool");
        assert_eq!(g.requests.len(), 4);
        let ms = |x: f64| (x * MS as f64) as u64;
        let mut starts: Vec<i64> = g.requests.iter().map(|r| r.start).collect();
        starts.sort_unstable();
        for (k, start) in starts.iter().enumerate() {
            let r = g.requests.iter().find(|r| r.start == *start).expect("a request");
            let sqls: Vec<&str> = r.steps.iter().map(|s| s.sql.as_str()).collect();
            assert_eq!(sqls, ["SELECT 1", "SELECT 2", "SELECT 3"]);
            let c = r.cpu.expect("readings around the gap before the request");
            let before = 10.0 + 5.0 * k as f64;
            // The CPU of the 60 ms gap since the worker's previous event (on either connection)
            // is the request's first-step app time; the rest of the gap the worker was idle.
            assert_eq!((c.lead, c.trail), (0, 0), "request {k}");
            assert_eq!(c.outside, ms(before), "request {k}");
            assert_eq!(c.idle, ms(60.0 - before), "request {k}");
            assert_eq!(r.app_gap(0), Some(ms(before)), "request {k}");
            // Later steps: the CPU of their own gaps (0.5 ms of 1 ms, 0.5 ms of 2 ms).
            assert_eq!(r.app_gap(1), Some(ms(0.5)), "request {k}");
            assert_eq!(r.app_gap(2), Some(ms(0.5)), "request {k}");
        }
        // Idle between the worker's consecutive requests, in time order: 60 ms less the CPU.
        assert_eq!(g.idle, vec![ms(45.0), ms(40.0), ms(35.0)]);
    }

    #[test]
    fn cpu_readings_turn_wall_gaps_into_app_cpu_and_idle() {
        let a = analyze(&trace(true), 50 * MS as u64, &[]);
        let g = &a.groups[0];
        assert!(g.per_request);
        assert_eq!(g.requests.len(), 3);
        // The first request has no previous close: no outside time, so no CPU split.
        assert!(g.requests[0].cpu.is_none());
        assert_eq!(g.requests[0].app_gap(0), Some(4 * MS as u64), "wall-clock lead gap");
        for r in &g.requests[1..] {
            let c = r.cpu.expect("readings around the request");
            assert_eq!(c.lead, 2 * MS as u64);
            assert_eq!(c.trail, MS as u64);
            assert_eq!(c.outside, 2 * MS as u64);
            assert_eq!(c.idle, 6 * MS as u64);
            // Step 0: lead + trail + outside CPU; step 1: the CPU of its 6 ms gap.
            assert_eq!(r.app_gap(0), Some(5 * MS as u64));
            assert_eq!(r.app_gap(1), Some(3 * MS as u64));
        }
        assert_eq!(
            g.idle,
            vec![6 * MS as u64, 6 * MS as u64],
            "idle = wall minus CPU between requests"
        );
    }

    #[test]
    fn short_gaps_without_readings_share_the_cpu_the_next_reading_finds() {
        // A worker that got a core half the time: after a reading, three statements of 0.1 ms
        // each after gaps of 0.5 ms (too short for a reading), then a statement whose start
        // reading finds, since the last reading, 0.4 ms of statements and 1 ms of the 2 ms of
        // gaps on the CPU. Every gap is half CPU; short gaps used to count as all CPU.
        let (t0, c0) = (1_000 * MS, 10 * MS);
        let us = 1_000;
        let stmt = |ts: i64, cpu: Option<i64>| {
            let reading = cpu.map_or(String::new(), |c| format!(r#","cpu_ns":{c}"#));
            format!(
                r#"{{"v":1,"kind":"stmt","ts":{ts},"pid":7,"tid":7,"conn":1{reading},"dur_ns":100000,"sql":"SELECT 1","expanded":"SELECT 1"}}"#
            )
        };
        let mut lines = vec![format!(
            r#"{{"v":1,"kind":"open","ts":{t0},"pid":7,"tid":7,"conn":1,"cpu_ns":{c0}}}"#
        )];
        // A 2 ms first gap with a reading: 1 ms of it on the CPU.
        lines.push(stmt(t0 + 2 * MS, Some(c0 + MS)));
        let mut ts = t0 + 2 * MS + 100 * us;
        for _ in 0..3 {
            ts += 500 * us;
            lines.push(stmt(ts, None));
            ts += 100 * us;
        }
        ts += 500 * us;
        // Since the last reading: 4 statements of 0.1 ms (one before the gaps) and 4 gaps.
        lines.push(stmt(ts, Some(c0 + MS + 400 * us + 1_000 * us)));
        let trace = crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace");
        let shares = cpu_shares(&trace.events);
        assert_eq!(shares[1], (Some(2 * MS as u64), Some(0.5)));
        for (wall, share) in &shares[2..] {
            assert_eq!(*wall, Some(500 * us as u64));
            assert_eq!(*share, Some(0.5), "{shares:?}");
        }
    }

    #[test]
    fn repeated_statements_and_blocks_share_a_shape() {
        let k = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(shape(&k(&["a", "b", "b", "b", "c"])), k(&["a", "b", "c"]));
        assert_eq!(
            shape(&k(&["a", "x", "y", "x", "y", "x", "y", "c"])),
            k(&["a", "x", "y", "c"])
        );
        assert_eq!(shape(&k(&["a", "x", "y", "c"])), k(&["a", "x", "y", "c"]));
        assert_ne!(shape(&k(&["a", "b"])), shape(&k(&["b", "a"])));
    }

    /// One worker, a connection per request: each request a list of statements (`?` is the
    /// request's number), every statement returning a row.
    fn requests_trace(requests: &[&[&str]]) -> Trace {
        let mut lines = Vec::new();
        let mut t = 1_000 * MS;
        for (n, sqls) in requests.iter().enumerate() {
            let conn = n + 1;
            lines.push(format!(
                r#"{{"v":1,"kind":"open","ts":{t},"pid":7,"tid":7,"conn":{conn}}}"#
            ));
            for q in *sqls {
                t += MS;
                let expanded = q.replace('?', &(n + 1).to_string());
                lines.push(format!(
                    r#"{{"v":1,"kind":"stmt","ts":{t},"pid":7,"tid":7,"conn":{conn},"dur_ns":100000,"sql":"{q}","expanded":"{expanded}","rows":1}}"#
                ));
            }
            t += MS;
            lines.push(format!(
                r#"{{"v":1,"kind":"close","ts":{t},"pid":7,"tid":7,"conn":{conn}}}"#
            ));
            t += 10 * MS;
        }
        crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace")
    }

    /// The kinds of a one-worker trace: (script statements, weight, variant number).
    fn kinds_of(requests: &[&[&str]]) -> Vec<(Vec<String>, usize, Option<usize>)> {
        let a = analyze(&requests_trace(requests), 50 * MS as u64, &[]);
        kinds(&a.groups[0])
            .iter()
            .map(|k| (k.instances[0].key(), k.weight(), k.optional.as_ref().map(|o| o.variant)))
            .collect()
    }

    const PAGE: &str = "SELECT id, site_id FROM page WHERE id = ?";
    const LOCK: &str = "SELECT until FROM page_lock WHERE page_id = ?";
    const SITE: &str = "SELECT id, name FROM site WHERE id = ?";
    const WRITE: &str = "UPDATE page SET rev = rev + 1 WHERE id = ?";

    #[test]
    fn an_endpoint_with_an_optional_block_is_one_kind_in_weighted_variants() {
        let full: &[&str] = &[
            PAGE,
            LOCK,
            SITE,
            "BEGIN",
            WRITE,
            "SAVEPOINT x",
            WRITE,
            "RELEASE x",
            "COMMIT",
        ];
        let short: &[&str] = &[PAGE, SITE, "BEGIN", WRITE, "COMMIT"];
        let a = analyze(&requests_trace(&[full, short, full, full, short]), 50 * MS as u64, &[]);
        let ks = kinds(&a.groups[0]);
        assert_eq!(ks.len(), 2, "{ks:?}");
        let (main, other) = (ks[0].optional.as_ref().unwrap(), ks[1].optional.as_ref().unwrap());
        assert_eq!((main.variant, other.variant), (1, 2));
        assert_eq!(ks[0].weight(), 3);
        assert_eq!(ks[1].weight(), 2);
        assert_eq!(main.variants, vec![(3, 9), (2, 5)]);
        assert_eq!(main.writes, vec!["page".to_string()]);
        // The short variant lacks the main's lock lookup and its savepoint block.
        assert_eq!(other.omitted, vec![1, 5, 6, 7]);
        assert!(other.added.is_empty());
        assert_eq!((other.skeleton, other.shape_len, other.main_shape_len), (5, 5, 9));
        // A statement only the lighter variant has is listed as added.
        let extra: &[&str] = &[PAGE, SITE, "SELECT 1 FROM audit WHERE id = ?", "BEGIN", WRITE, "COMMIT"];
        let ks = kinds_of(&[short, extra, short]);
        assert_eq!(ks.len(), 2);
        assert_eq!(ks[1].2, Some(2));
        let a = analyze(&requests_trace(&[short, extra, short]), 50 * MS as u64, &[]);
        let o = kinds(&a.groups[0])[1].optional.clone().unwrap();
        assert_eq!((o.added, o.omitted), (vec![2], vec![]));
        // With no alignment budget left, nothing is merged.
        let mut ks = kinds(&a.groups[0]);
        for k in &mut ks {
            k.optional = None;
        }
        assert!(merge_optional(ks, 0).iter().all(|k| k.optional.is_none()));
    }

    #[test]
    fn different_endpoints_stay_apart() {
        let publish: &[&str] = &[PAGE, LOCK, SITE, "BEGIN", WRITE, "COMMIT"];
        // The same first statement and most of publish's statements, but it writes nothing.
        let view: &[&str] = &[PAGE, LOCK, SITE, "SELECT body FROM comment WHERE page_id = ?"];
        // Publish's writes and most of its statements, but another first statement.
        let moved: &[&str] = &[SITE, LOCK, "BEGIN", WRITE, "COMMIT"];
        // Another table written after the same reads.
        let tagged: &[&str] = &[
            PAGE,
            LOCK,
            SITE,
            "BEGIN",
            "INSERT INTO tag(page_id) VALUES (?)",
            "COMMIT",
        ];
        let ks = kinds_of(&[publish, view, moved, tagged, publish]);
        assert_eq!(ks.len(), 4, "{ks:?}");
        assert!(ks.iter().all(|k| k.2.is_none()), "{ks:?}");
        // Two statements sharing one: too short a skeleton to call the rest optional.
        let ks = kinds_of(&[&[PAGE, LOCK], &[PAGE, SITE]]);
        assert_eq!(ks.len(), 2);
        assert!(ks.iter().all(|k| k.2.is_none()));
        // A shape less than half of which the other holds.
        let long: &[&str] = &[
            PAGE,
            LOCK,
            SITE,
            "SELECT a FROM b WHERE c = ?",
            "SELECT d FROM e WHERE f = ?",
        ];
        let ks = kinds_of(&[long, &[PAGE, LOCK]]);
        assert_eq!(ks.len(), 2);
        assert!(ks.iter().all(|k| k.2.is_none()));
    }

    #[test]
    fn a_variant_seen_once_links_on_the_evidence_of_variants_that_hold_its_steps() {
        let set = "UPDATE page SET site_id = ? WHERE id = ?";
        let full: &[&str] = &[PAGE, LOCK, SITE, "BEGIN", set, "COMMIT"];
        let cached: &[&str] = &[PAGE, SITE, "BEGIN", set, "COMMIT"];
        let a = analyze(&requests_trace(&[full, full, cached, full]), 50 * MS as u64, &[]);
        let ks = kinds(&a.groups[0]);
        assert_eq!(ks.len(), 2);
        // The main's 3 requests, cut down to the cached variant's steps, are its evidence.
        assert_eq!(ks[1].instances.len(), 1);
        assert_eq!(ks[1].evidence.len(), 3);
        // Request 1's lock lookup dropped: its page read, site read, BEGIN, UPDATE and COMMIT.
        let values = |r: &Request| r.steps.iter().map(|e| e.norm.values.clone()).collect::<Vec<_>>();
        assert_eq!(ks[1].evidence[0].steps.len(), 5);
        let main_first = &ks[0].instances[0];
        assert_eq!(
            values(&ks[1].evidence[0]),
            [0, 2, 3, 4, 5].map(|i| main_first.steps[i].norm.values.clone())
        );
        assert_ne!(values(&ks[1].evidence[0]), values(&ks[1].instances[0]));
        assert!(
            ks[0].evidence.is_empty(),
            "the main holds a step the cached variant lacks"
        );
        let link = |k: &RequestKind, step: usize| {
            let inserted = crate::import::params::Inserted::of(k);
            crate::import::params::step_params(k, &inserted, &crate::import::params::Keys::default(), step, false, 0)
                .remove(0)
        };
        let main = link(&ks[0], 4);
        assert_eq!(main.value.as_str(), Some("$2.id"), "{main:?}");
        let cached = link(&ks[1], 3);
        assert_eq!(cached.value.as_str(), Some("$1.id"), "{cached:?}");
        assert!(
            cached
                .note
                .as_deref()
                .is_some_and(|n| n.contains("in all 4 requests, 3 of them of the kind's other variants")),
            "{cached:?}"
        );
        // Without that evidence a request seen once is not linked.
        let mut alone = ks.into_iter().nth(1).unwrap();
        alone.evidence.clear();
        assert_ne!(link(&alone, 3).value.as_str(), Some("$1.id"));
    }

    #[test]
    fn repetitions_and_optional_steps_together() {
        // Repetition variants of the main stay one kind; the optional variant is another script.
        let one: &[&str] = &[PAGE, "BEGIN", WRITE, "COMMIT"];
        let three: &[&str] = &[PAGE, "BEGIN", WRITE, WRITE, WRITE, "COMMIT"];
        let with_site: &[&str] = &[PAGE, SITE, "BEGIN", WRITE, "COMMIT"];
        let ks = kinds_of(&[one, three, one, with_site]);
        assert_eq!(ks.len(), 2, "{ks:?}");
        assert_eq!((ks[0].1, ks[0].2), (3, Some(1)));
        assert_eq!((ks[1].1, ks[1].2), (1, Some(2)));
    }

    #[test]
    fn alignment_is_a_longest_common_subsequence() {
        let a = ["a", "b", "c", "d"];
        let b = ["a", "c", "x", "d"];
        assert_eq!(align(&a, &b), Some(vec![(0, 0), (2, 1), (3, 3)]));
        assert_eq!(align::<&str>(&[], &b), Some(vec![]));
        let big = vec![0u8; 3000];
        assert_eq!(align(&big, &big), None, "too large a table");
    }

    #[test]
    fn sqlite_s_own_statements_are_excluded_as_lines_or_as_counts() {
        // The same work in the two forms a trace may hold: the older one, where each statement
        // FTS5 ran inside the app's INSERT (and on the `:memory:` probe) is a line, and the
        // newer one, where the capture library counts them on the enclosing line (`nested`).
        let st = |ts: i64, conn: i64, sql: &str, extra: &str| {
            format!(
                r#"{{"v":1,"kind":"stmt","ts":{ts},"pid":7,"tid":7,"conn":{conn},"dur_ns":1000,"sql":"{sql}","expanded":"{sql}"{extra}}}"#
            )
        };
        let open = |ts: i64, conn: i64, file: &str| {
            format!(
                r#"{{"v":1,"kind":"open","ts":{ts},"pid":7,"tid":7,"conn":{conn},"path":"{file}","file":"{file}"}}"#
            )
        };
        let shadow = "REPLACE INTO 'main'.'doc_fts_data'(id, block) VALUES(?,?)";
        let insert = "INSERT INTO doc(body) VALUES (1)";
        let mut old = vec![open(1, 1, "/x/app.db"), open(2, 2, ":memory:")];
        let mut new = old.clone();
        old.push(st(10, 2, "SELECT 1", ""));
        old.push(st(11, 2, shadow, ""));
        new.push(st(10, 2, "SELECT 1", r#","nested":1"#));
        for i in 0..4 {
            let t = 100 + i * 10;
            old.push(st(t, 1, insert, ""));
            for k in 0..3 {
                old.push(st(t + 1 + k, 1, shadow, ""));
            }
            new.push(st(t, 1, insert, r#","nested":3"#));
        }
        let read = |lines: &[String]| {
            crate::import::trace::read(std::io::Cursor::new(lines.join("\n") + "\n")).expect("a valid trace")
        };
        for lines in [&old, &new] {
            let a = analyze(&read(lines), 50 * MS as u64, &[]);
            let want: BTreeMap<String, usize> = [
                (
                    "SQLite's own (virtual tables' shadow tables, trigger programs)".to_string(),
                    12,
                ),
                (
                    "on an in-memory or temporary database (a separate connection, e.g. a feature probe)".to_string(),
                    2,
                ),
            ]
            .into();
            assert_eq!(a.excluded, want);
            assert_eq!(a.statements, 18);
            assert_eq!(a.mix.values().sum::<usize>(), 4, "{:?}", a.mix);
        }
    }

    #[test]
    fn without_readings_gaps_stay_wall_clock() {
        let a = analyze(&trace(false), 50 * MS as u64, &[]);
        let r = &a.groups[0].requests[1];
        assert!(r.cpu.is_none());
        assert_eq!(r.app_gap(0), Some(4 * MS as u64));
        assert_eq!(r.app_gap(1), Some(6 * MS as u64));
        assert_eq!(a.groups[0].idle, vec![8 * MS as u64, 8 * MS as u64]);
    }
}
