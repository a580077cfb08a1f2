//! Compiled workloads: groups of weighted operations, what each operation does to row
//! counts (found by SQLite's authorizer, not by parsing SQL), and the check that every
//! cell compiles (`check.rs`). Creating a database is its target's (`targets/`).

pub(crate) mod check;
pub(crate) mod params;
pub(crate) mod rng;

use crate::config::app::{BusyWait, ConnectionMode, Isolation, Runtime, TimeDist, TxControl};
use crate::config::{Arrival, Group, Retry, Scenario, Script, TxMode};
use params::{GeneratorSpec, Param};
use rng::Rng;
use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Everything the workers of one run execute, plus the tables whose counts are verified.
#[derive(Clone, Debug)]
pub(crate) struct Workload {
    pub groups: Vec<GroupPlan>,
    /// Tables whose row count after the run must equal the count before it plus the
    /// inserts minus the deletes that were acknowledged (committed).
    pub tracked_tables: Vec<String>,
    /// Tables written in ways whose effect on the row count is not known from `changes()`
    /// (triggers, REPLACE, upserts, several tables in one statement), so not counted.
    pub untracked_tables: Vec<String>,
    /// Tables read by `latest(table)` generators.
    pub latest_tables: Vec<String>,
}

/// A group compiled: what its workers run. Serializable, so a worker process receives it as
/// compiled (the scenario is neither sent nor parsed again).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GroupPlan {
    pub name: String,
    pub workers: u32,
    pub transaction: TxMode,
    pub statements_per_transaction: u32,
    /// Operations: each is a script of one or more steps run in order.
    pub ops: Vec<OpPlan>,
    pub retry: Option<Retry>,
    /// Open loop: rate per worker and arrival process.
    pub pacing: Option<Pacing>,
    pub latency_limit: Option<Duration>,
    pub skip_late: bool,
    /// The application model (issue 15); `None` runs the plain hot loop.
    pub app: Option<AppPlan>,
    cumulative_weights: Vec<u64>,
    /// The target's own BEGIN, when its SQL is not SQLite's (statements carry `dialect_sql`).
    pub dialect_begin: Option<String>,
}

/// A group's application model: how requests arrive, wait and are served.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppPlan {
    pub think_time: Option<TimeDist>,
    /// Closed-loop clients (= workers unless set).
    pub clients: u32,
    pub connection: ConnectionMode,
    pub isolation: Isolation,
    #[serde(default)]
    pub runtime: Runtime,
    /// With an interpreter lock: what a busy-handler wait does with it.
    #[serde(default)]
    pub busy_wait: Option<BusyWait>,
    /// Worker threads per OS process: `threads` (default 1) for a `process` group, every
    /// worker for a `thread` group. The group's `workers` / this = its processes.
    #[serde(default = "one")]
    pub threads_per_process: u32,
    /// A `process` group: one queue for all its processes (else one each).
    #[serde(default)]
    pub shared_queue: bool,
    /// A `process` group with one queue each: each client stays with the process that took
    /// its first request (`queue = "first-free"`), where `false` shares them out evenly.
    #[serde(default)]
    pub first_free: bool,
    /// Keep-alive clients served inline (`keep_alive_inline`, `keep_alive_wait`).
    #[serde(default)]
    pub keep_alive: Option<KeepAlive>,
}

/// A worker serves a keep-alive client's requests in a row: it waits up to `wait_ns` for the
/// client's next request, and after `inline` of them gives the client back to the queue if
/// another client's request is due (Puma 5's `max_fast_inline` and `FAST_TRACK_KA_TIMEOUT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepAlive {
    pub inline: u32,
    pub wait_ns: u64,
}

/// What a worker does with its keep-alive client after a response (`KeepAlive::after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Inline {
    /// Waits `stay_ns` for the client's next request, and serves it.
    Hold { stay_ns: u64 },
    /// Gives the client back to the queue, after waiting `stay_ns` on its connection for
    /// nothing (the client thinks longer than `wait_ns`).
    GiveBack { stay_ns: u64 },
}

impl KeepAlive {
    /// After the `served`-th request in a row of a client that now thinks `think_ns`:
    /// Puma's `process_client` loop. From the `inline`-th on, another due request
    /// (`other_due`, asked only then: it takes the queue's lock) sends the client back to the
    /// reactor at once; otherwise the thread waits up to `wait_ns` for the next request.
    pub(crate) fn after(&self, served: u32, think_ns: u64, other_due: impl FnOnce() -> bool) -> Inline {
        if served >= self.inline && other_due() {
            Inline::GiveBack { stay_ns: 0 }
        } else if think_ns <= self.wait_ns {
            Inline::Hold { stay_ns: think_ns }
        } else {
            Inline::GiveBack { stay_ns: self.wait_ns }
        }
    }
}

/// Puma 5's `FAST_TRACK_KA_TIMEOUT`: how long a thread waits on a keep-alive connection for
/// the next request before handing the connection back to its reactor.
pub(crate) const DEFAULT_KEEP_ALIVE_WAIT: Duration = Duration::from_millis(200);

fn one() -> u32 {
    1
}

impl AppPlan {
    /// Worker processes of a `process` group (the driver's one process for a `thread` group).
    pub(crate) fn processes(&self, workers: u32) -> u32 {
        (workers / self.threads_per_process.max(1)).max(1)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pacing {
    pub group_rate: f64,
    pub per_worker_rate: f64,
    /// Workers sharing the rate (their schedules are staggered across one gap).
    pub workers: u32,
    pub arrival: Arrival,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct OpPlan {
    pub name: String,
    pub steps: Vec<StepPlan>,
    /// App time per execution, split evenly over the gaps before, between and after the steps.
    pub app_time: Option<TimeDist>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct StepPlan {
    pub sql: String,
    pub params: Vec<ParamPlan>,
    pub effect: RowEffect,
    /// Column indexes of this step's first row that later steps use (`$N.column`).
    pub captures: Vec<usize>,
    /// The table this step inserts into, if any.
    pub inserts_into: Option<String>,
    /// Index into `Workload::latest_tables` when `latest(...)` generators read that table:
    /// the worker raises its newest rowid after each insert.
    pub bumps_latest: Option<usize>,
    /// App time just before this step.
    pub app_time: Option<TimeDist>,
    /// BEGIN / COMMIT / ROLLBACK of a transaction block, or a plain statement.
    pub control: TxControl,
    /// The statement in the target's SQL when that is not SQLite's: its translation, or the
    /// scenario's own version (`postgres = "..."`).
    pub dialect_sql: Option<String>,
}

impl StepPlan {
    /// The SQL the run's target executes.
    pub(crate) fn target_sql(&self) -> &str {
        self.dialect_sql.as_deref().unwrap_or(&self.sql)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ParamPlan {
    Gen(#[serde(with = "crate::config::generator::Compiled")] GeneratorSpec),
    /// Captured value `slot` of step `step`.
    Ref {
        step: usize,
        slot: usize,
    },
}

/// What one execution of a statement does to a tracked table's row count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RowEffect {
    None,
    /// `changes()` rows were inserted into tracked table `i`.
    Insert(usize),
    /// `changes()` rows were deleted from tracked table `i`.
    Delete(usize),
}

impl GroupPlan {
    /// The group's BEGIN for the run's target (some have one BEGIN for every mode).
    pub(crate) fn begin_for<'a>(&'a self, sqlite: &'a str) -> &'a str {
        self.dialect_begin.as_deref().unwrap_or(sqlite)
    }

    /// Weighted random choice of the next operation's index.
    #[inline]
    pub(crate) fn choose(&self, rng: &mut Rng) -> usize {
        if self.ops.len() == 1 {
            return 0;
        }
        let total = *self.cumulative_weights.last().expect("a group has operations");
        let r = rng.below(total);
        self.cumulative_weights.iter().position(|&c| r < c).unwrap_or(0)
    }
}

/// Why an operation could not be compiled: group, operation (ops first, then scripts),
/// step, and the message.
#[derive(Debug)]
pub(crate) struct OpError {
    pub group: usize,
    pub op: usize,
    pub step: usize,
    pub message: String,
}

#[derive(Debug, Default)]
struct Writes {
    top_level: Vec<(WriteKind, String)>,
    from_triggers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteKind {
    Insert,
    Delete,
    Update,
}

struct Analysed {
    writes: Writes,
    upsert: bool,
    columns: Vec<String>,
}

impl Workload {
    /// Prepares every statement against `conn` (which holds the set-up schema), checks its
    /// parameters and step references, and finds which tables' row counts it changes.
    pub(crate) fn compile(scenario: &Scenario, conn: &mut Connection) -> Result<Self, OpError> {
        let dialect = crate::targets::profile(scenario.target).dialect;
        let mut analysed: Vec<Vec<Vec<Analysed>>> = Vec::new();
        let mut latest_tables: Vec<String> = Vec::new();
        for (gi, group) in scenario.group.iter().enumerate() {
            let mut ops = Vec::new();
            for (oi, script) in group.scripts().iter().enumerate() {
                let mut steps = Vec::new();
                for (si, step) in script.steps.iter().enumerate() {
                    let fail = |message: String| OpError {
                        group: gi,
                        op: oi,
                        step: si,
                        message,
                    };
                    steps.push(analyse_statement(conn, step.sql.get_ref(), step.params().len()).map_err(fail)?);
                    for table in step.params().iter().filter_map(latest_table) {
                        check_latest_table(conn, table).map_err(fail)?;
                        if !latest_tables.iter().any(|t| t == table) {
                            latest_tables.push(table.to_string());
                        }
                    }
                }
                ops.push(steps);
            }
            analysed.push(ops);
        }
        let all: Vec<&Analysed> = analysed.iter().flatten().flatten().collect();
        let (tracked, untracked) = classify_tables(&all);
        let mut groups: Vec<GroupPlan> = scenario
            .group
            .iter()
            .zip(&analysed)
            .enumerate()
            .map(|(gi, (g, ops))| group_plan(gi, g, ops, &tracked, dialect))
            .collect::<Result<_, _>>()?;
        for step in groups
            .iter_mut()
            .flat_map(|g| g.ops.iter_mut())
            .flat_map(|o| o.steps.iter_mut())
        {
            step.bumps_latest = step
                .inserts_into
                .as_ref()
                .and_then(|t| latest_tables.iter().position(|l| l == t));
        }
        Ok(Self {
            groups,
            tracked_tables: tracked,
            untracked_tables: untracked,
            latest_tables,
        })
    }

    pub(crate) fn total_workers(&self) -> u32 {
        self.groups.iter().map(|g| g.workers).sum()
    }
}

fn group_plan(
    gi: usize,
    g: &Group,
    analysed: &[Vec<Analysed>],
    tracked: &[String],
    dialect: Option<crate::targets::Dialect>,
) -> Result<GroupPlan, OpError> {
    let scripts = g.scripts();
    let mut ops = Vec::new();
    for (oi, (script, steps)) in scripts.iter().zip(analysed).enumerate() {
        let mut op = op_plan(script, steps, tracked, dialect).map_err(|(step, message)| OpError {
            group: gi,
            op: oi,
            step,
            message,
        })?;
        op.app_time = op.app_time.or(g.app_time).filter(|t| !t.is_zero());
        if let Some(f) = g.app_time_scale {
            op.app_time = op.app_time.map(|t| t.scaled(f));
            for step in &mut op.steps {
                step.app_time = step.app_time.map(|t| t.scaled(f));
            }
        }
        ops.push(op);
    }
    let app = g.uses_app_model().then(|| AppPlan {
        think_time: g.think_time.filter(|t| !t.is_zero()),
        clients: g.clients.map_or(g.workers.get(), |c| c.get()),
        connection: g.connection,
        isolation: g.isolation,
        runtime: g.runtime,
        busy_wait: g
            .runtime
            .has_lock()
            .then(|| g.busy_wait.unwrap_or(g.runtime.default_busy_wait())),
        threads_per_process: match g.isolation {
            Isolation::Process => g.threads.map_or(1, |t| t.get()),
            Isolation::Thread => g.workers.get(),
        },
        shared_queue: g.isolation == Isolation::Process && g.queue == Some(crate::config::app::QueueKind::Shared),
        first_free: g.isolation == Isolation::Process && g.queue == Some(crate::config::app::QueueKind::FirstFree),
        keep_alive: g.keep_alive_inline.map(|n| KeepAlive {
            inline: n.get(),
            wait_ns: g.keep_alive_wait.map_or(DEFAULT_KEEP_ALIVE_WAIT, |w| w.0).as_nanos() as u64,
        }),
    });
    let cumulative_weights: Vec<u64> = scripts
        .iter()
        .scan(0u64, |acc, s| {
            *acc += s.weight as u64;
            Some(*acc)
        })
        .collect();
    if cumulative_weights.last() == Some(&0) {
        return Err(OpError {
            group: gi,
            op: 0,
            step: 0,
            message: "every operation has weight 0".into(),
        });
    }
    // rate = 0 means closed loop (so a matrix axis can compare paced and unpaced readers).
    let pacing = g.rate.filter(|r| *r > 0.0).map(|rate| Pacing {
        group_rate: rate,
        per_worker_rate: rate / g.workers.get() as f64,
        workers: g.workers.get(),
        arrival: g.arrival,
    });
    Ok(GroupPlan {
        name: g.name.get_ref().clone(),
        workers: g.workers.get(),
        transaction: g.transaction,
        statements_per_transaction: g.statements_per_transaction.get(),
        ops,
        retry: g.retry.clone(),
        pacing,
        latency_limit: g.latency_limit.map(|d| d.0),
        skip_late: g.skip_late,
        app,
        cumulative_weights,
        dialect_begin: dialect.map(|d| d.begin.to_string()),
    })
}

/// Resolves `$N.column` references into capture slots; errors carry the step index.
fn op_plan(
    script: &Script,
    analysed: &[Analysed],
    tracked: &[String],
    dialect: Option<crate::targets::Dialect>,
) -> Result<OpPlan, (usize, String)> {
    let mut steps: Vec<StepPlan> = Vec::new();
    for (si, (step, a)) in script.steps.iter().zip(analysed).enumerate() {
        let mut params = Vec::new();
        for p in step.params() {
            params.push(match p {
                Param::Gen(g) => ParamPlan::Gen(g.clone()),
                Param::Ref { step: from, column } => {
                    let source = analysed.get(*from).filter(|_| *from < si).ok_or_else(|| {
                        (
                            si,
                            format!(
                                "`${from}.{column}` refers to step {from}, but only earlier steps (0..{si}) can be used"
                            ),
                        )
                    })?;
                    let col = source.columns.iter().position(|c| c == column).ok_or_else(|| {
                        (
                            si,
                            format!(
                                "step {from} returns no column `{column}` (it returns: {})",
                                source.columns.join(", ")
                            ),
                        )
                    })?;
                    let captures = &mut steps[*from].captures;
                    let slot = captures.iter().position(|c| *c == col).unwrap_or_else(|| {
                        captures.push(col);
                        captures.len() - 1
                    });
                    ParamPlan::Ref { step: *from, slot }
                }
            });
        }
        let inserts_into = a
            .writes
            .top_level
            .iter()
            .find(|(k, _)| *k == WriteKind::Insert)
            .map(|(_, t)| t.clone());
        steps.push(StepPlan {
            sql: step.sql.get_ref().clone(),
            params,
            effect: effect_of(&a.writes, tracked),
            captures: Vec::new(),
            inserts_into,
            bumps_latest: None,
            app_time: step.app_time.filter(|t| !t.is_zero()),
            control: TxControl::of(step.sql.get_ref()),
            dialect_sql: dialect
                .map(|d| (d.translate)(step.sql.get_ref(), step.postgres.as_ref().map(|p| p.get_ref().as_str())))
                .transpose()
                .map_err(|e| (si, e))?,
        });
    }
    Ok(OpPlan {
        name: script.name.get_ref().clone(),
        steps,
        app_time: script.app_time,
    })
}

fn analyse_statement(conn: &mut Connection, sql: &str, given_params: usize) -> Result<Analysed, String> {
    let seen: Arc<Mutex<Writes>> = Arc::default();
    let sink = seen.clone();
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let write = match ctx.action {
            AuthAction::Insert { table_name } => Some((WriteKind::Insert, table_name)),
            AuthAction::Delete { table_name } => Some((WriteKind::Delete, table_name)),
            AuthAction::Update { table_name, .. } => Some((WriteKind::Update, table_name)),
            _ => None,
        };
        if let Some((kind, table)) = write.filter(|(_, t)| !t.starts_with("sqlite_")) {
            let mut w = sink.lock().expect("authorizer state");
            match ctx.accessor {
                None => w.top_level.push((kind, table.to_string())),
                Some(_) => w.from_triggers.push(table.to_string()),
            }
        }
        crate::targets::sqlite::guard::decide(ctx)
    }))
    .map_err(|e| e.to_string())?;
    let prepared = conn.prepare(sql).map(|stmt| {
        let columns: Vec<String> = stmt.column_names().map(|c| c.to_string()).collect();
        (stmt.parameter_count(), columns)
    });
    crate::targets::sqlite::guard::install(conn).map_err(|e| e.to_string())?;
    let (expected, columns) = prepared.map_err(|e| {
        format!(
            "SQL does not prepare: {}",
            crate::targets::sqlite::guard::explain(sqlite_message(&e))
        )
    })?;
    if crate::targets::sqlite::guard::vacuums_into(conn, sql) {
        return Err(format!(
            "VACUUM INTO writes a file outside the run: {}",
            crate::targets::sqlite::guard::DENIED
        ));
    }
    if expected != given_params {
        return Err(format!(
            "the SQL takes {expected} parameter(s) but `params` gives {given_params}"
        ));
    }
    let mut writes = std::mem::take(&mut *seen.lock().expect("authorizer state"));
    writes.top_level.dedup();
    let upper = sql.to_ascii_uppercase();
    let upsert = upper.contains("REPLACE") || upper.contains("ON CONFLICT");
    Ok(Analysed {
        writes,
        upsert,
        columns,
    })
}

fn latest_table(p: &Param) -> Option<&str> {
    match p {
        Param::Gen(g) => g.latest_table(),
        Param::Ref { .. } => None,
    }
}

fn check_latest_table(conn: &Connection, table: &str) -> Result<(), String> {
    newest_rowid(conn, table)
        .map(|_| ())
        .map_err(|e| format!("latest({table}): {}", sqlite_message(&e)))
}

/// The largest rowid of `table` (0 when empty): where `latest(table)` starts.
pub(crate) fn newest_rowid(conn: &Connection, table: &str) -> rusqlite::Result<i64> {
    let sql = format!("SELECT coalesce(max(rowid), 0) FROM \"{}\"", table.replace('"', "\"\""));
    conn.query_row(&sql, [], |r| r.get(0))
}

/// SQLite's own message for an error, without rusqlite's wrapping.
pub(crate) fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        other => other.to_string(),
    }
}

fn classify_tables(analysed: &[&Analysed]) -> (Vec<String>, Vec<String>) {
    let mut tracked: Vec<String> = Vec::new();
    let mut untracked: Vec<String> = Vec::new();
    for Analysed { writes, upsert, .. } in analysed {
        let count_changing: Vec<&String> = writes
            .top_level
            .iter()
            .filter(|(k, _)| *k != WriteKind::Update)
            .map(|(_, t)| t)
            .collect();
        let countable = !*upsert && writes.from_triggers.is_empty() && count_changing.len() <= 1;
        for table in writes.from_triggers.iter().chain(count_changing.iter().copied()) {
            let list = if countable { &mut tracked } else { &mut untracked };
            if !list.contains(table) {
                list.push(table.clone());
            }
        }
        if *upsert {
            for (_, table) in &writes.top_level {
                if !untracked.contains(table) {
                    untracked.push(table.clone());
                }
            }
        }
    }
    tracked.retain(|t| !untracked.contains(t));
    (tracked, untracked)
}

fn effect_of(writes: &Writes, tracked: &[String]) -> RowEffect {
    let index = |table: &str| tracked.iter().position(|t| t == table);
    for (kind, table) in &writes.top_level {
        match (kind, index(table)) {
            (WriteKind::Insert, Some(i)) => return RowEffect::Insert(i),
            (WriteKind::Delete, Some(i)) => return RowEffect::Delete(i),
            _ => {}
        }
    }
    RowEffect::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn scenario(ops: &str) -> Scenario {
        let text = format!("name = \"x\"\nduration = \"1s\"\n[[group]]\nname = \"g\"\nworkers = 1\n{ops}");
        Source {
            origin: "t".into(),
            text,
        }
        .parse()
        .unwrap()
    }

    fn schema() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE a(id INTEGER PRIMARY KEY, v); CREATE TABLE b(id INTEGER PRIMARY KEY, v);
             CREATE TABLE log(x); CREATE TRIGGER t AFTER INSERT ON b BEGIN INSERT INTO log VALUES (1); END;",
        )
        .unwrap();
        conn
    }

    #[test]
    fn authorizer_finds_inserts_deletes_and_untrackable_writes() {
        let s = scenario(
            "[[group.op]]\nname = \"ins\"\nsql = \"INSERT INTO a(v) VALUES (?1)\"\nparams = [1]\n\
             [[group.op]]\nname = \"del\"\nsql = \"DELETE FROM a WHERE id = ?1\"\nparams = [1]\n\
             [[group.op]]\nname = \"upd\"\nsql = \"UPDATE a SET v = 2\"\n\
             [[group.op]]\nname = \"trig\"\nsql = \"INSERT INTO b(v) VALUES (1)\"\n\
             [[group.op]]\nname = \"read\"\nsql = \"SELECT * FROM a\"\n",
        );
        let w = Workload::compile(&s, &mut schema()).unwrap();
        assert_eq!(w.tracked_tables, ["a"]);
        assert_eq!(w.untracked_tables, ["log", "b"]);
        let effects: Vec<RowEffect> = w.groups[0].ops.iter().map(|o| o.steps[0].effect).collect();
        assert_eq!(
            effects,
            [
                RowEffect::Insert(0),
                RowEffect::Delete(0),
                RowEffect::None,
                RowEffect::None,
                RowEffect::None
            ]
        );
    }

    #[test]
    fn bad_sql_and_parameter_count_are_errors() {
        let s = scenario("[[group.op]]\nname = \"o\"\nsql = \"SELEC 1\"\n");
        let e = Workload::compile(&s, &mut schema()).unwrap_err();
        assert!(e.message.contains("syntax error"), "{}", e.message);
        let s = scenario("[[group.op]]\nname = \"o\"\nsql = \"SELECT * FROM a WHERE id = ?1\"\n");
        let e = Workload::compile(&s, &mut schema()).unwrap_err();
        assert!(e.message.contains("takes 1 parameter"), "{}", e.message);
    }

    #[test]
    fn step_references_become_captures() {
        let s = scenario(
            "[[group.script]]\nname = \"rw\"\nsteps = [\n  { sql = \"SELECT id, v FROM a WHERE id = ?1\", params = [1] },\n  { sql = \"UPDATE a SET v = ?2 WHERE id = ?1\", params = [\"$0.id\", \"$0.v\"] },\n]\n",
        );
        let w = Workload::compile(&s, &mut schema()).unwrap();
        let steps = &w.groups[0].ops[0].steps;
        assert_eq!(steps[0].captures, [0, 1]);
        assert!(matches!(steps[1].params[1], ParamPlan::Ref { step: 0, slot: 1 }));
        let bad = scenario(
            "[[group.script]]\nname = \"rw\"\nsteps = [\n  { sql = \"SELECT id FROM a\" },\n  { sql = \"UPDATE a SET v = 1 WHERE id = ?1\", params = [\"$0.nope\"] },\n]\n",
        );
        let e = Workload::compile(&bad, &mut schema()).unwrap_err();
        assert_eq!((e.op, e.step), (0, 1));
        assert!(e.message.contains("no column `nope`"), "{}", e.message);
    }

    #[test]
    fn compiled_groups_round_trip_exactly() {
        let s = scenario(
            "rate = 1000.1\narrival = \"poisson\"\nretry = { max_tries = 3, backoff = \"1ms\" }\n\
             latency_limit = \"7ms\"\napp_time = \"uniform(1ms, 2ms)\"\nthink_time = \"exp(3ms)\"\n\
             clients = 7\nconnection = \"per-request\"\nisolation = \"process\"\n\
             [[group.op]]\nname = \"w\"\nweight = 3\nsql = \"INSERT INTO a(v) VALUES (?1)\"\n\
             params = [\"zipf(1, 100000, 0.7)\"]\n\
             [[group.script]]\nname = \"rw\"\nsteps = [\n  { sql = \"BEGIN IMMEDIATE\" },\n\
             { sql = \"SELECT id, v FROM a WHERE id = ?1 AND v > ?2 AND v < ?3\", \
             params = [\"latest(a, 50)\", \"gaussian(0.1, 0.3)\", 0.30000000000000004] },\n\
             { sql = \"UPDATE a SET v = ?1 WHERE id = ?2\", params = [\"replay(NULL, 1.5, 'it''s', x'0a')\", \"$1.id\"] },\n\
             { sql = \"SELECT ?1, ?2\", params = [\"choice(1, 'b')\", \"text(3, 9)\"] },\n\
             { sql = \"COMMIT\" },\n]\n",
        );
        let w = Workload::compile(&s, &mut schema()).unwrap();
        let plan = &w.groups[0];
        let back: GroupPlan = serde_json::from_str(&serde_json::to_string(plan).unwrap()).unwrap();
        // Debug prints every field, floats in their shortest exact form.
        assert_eq!(format!("{plan:?}"), format!("{back:?}"));
        let rate = |p: &GroupPlan| p.pacing.unwrap().per_worker_rate.to_bits();
        assert_eq!(rate(plan), rate(&back));
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(
            (0..100).map(|_| plan.choose(&mut a)).collect::<Vec<_>>(),
            (0..100).map(|_| back.choose(&mut b)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn weighted_choice_follows_weights() {
        let s = scenario(
            "[[group.op]]\nname = \"a\"\nweight = 1\nsql = \"SELECT 1\"\n[[group.op]]\nname = \"b\"\nweight = 3\nsql = \"SELECT 2\"\n",
        );
        let w = Workload::compile(&s, &mut schema()).unwrap();
        let mut rng = Rng::new(1);
        let picks_b = (0..4000).filter(|_| w.groups[0].choose(&mut rng) == 1).count();
        assert!((2700..3300).contains(&picks_b), "{picks_b}");
    }

    #[test]
    fn keep_alive_holds_a_client_until_its_inline_count_and_another_request_waits() {
        let ka = KeepAlive {
            inline: 3,
            wait_ns: 200,
        };
        let asked = std::cell::Cell::new(0);
        let due = |yes: bool| {
            let asked = &asked;
            move || {
                asked.set(asked.get() + 1);
                yes
            }
        };
        // Before the third request in a row the queue is not even asked.
        assert_eq!(ka.after(1, 0, due(true)), Inline::Hold { stay_ns: 0 });
        assert_eq!(ka.after(2, 50, due(true)), Inline::Hold { stay_ns: 50 });
        assert_eq!(asked.get(), 0);
        // From the third on: back to the queue when another request is due ...
        assert_eq!(ka.after(3, 50, due(true)), Inline::GiveBack { stay_ns: 0 });
        // ... else served on inline, as Puma does with an empty backlog.
        assert_eq!(ka.after(7, 50, due(false)), Inline::Hold { stay_ns: 50 });
        assert_eq!(asked.get(), 2);
        // A client thinking past the wait goes back after the worker waited for nothing.
        assert_eq!(ka.after(1, 201, due(false)), Inline::GiveBack { stay_ns: 200 });
        assert_eq!(ka.after(1, 200, due(false)), Inline::Hold { stay_ns: 200 });
    }

    #[test]
    fn keep_alive_keys_compile_into_the_plan_with_pumas_wait_by_default() {
        let s = scenario("clients = 4\nkeep_alive_inline = 10\n[[group.op]]\nname = \"a\"\nsql = \"SELECT 1\"\n");
        let w = Workload::compile(&s, &mut schema()).unwrap();
        let app = w.groups[0].app.as_ref().expect("the keys use the application model");
        assert_eq!(
            app.keep_alive,
            Some(KeepAlive {
                inline: 10,
                wait_ns: 200_000_000
            })
        );
        let s = scenario(
            "clients = 4\nkeep_alive_inline = 2\nkeep_alive_wait = \"5ms\"\n[[group.op]]\nname = \"a\"\nsql = \"SELECT 1\"\n",
        );
        let w = Workload::compile(&s, &mut schema()).unwrap();
        assert_eq!(
            w.groups[0].app.as_ref().unwrap().keep_alive,
            Some(KeepAlive {
                inline: 2,
                wait_ns: 5_000_000
            })
        );
    }
}
