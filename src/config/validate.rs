//! Loading a scenario for a run: parse, apply command-line overrides, check its shape and
//! expand the matrix. Preparing every statement against SQLite is `workload::check`.

use super::matrix::{self, Axis, Cell};
use super::{Scenario, Source, TxMode};
use crate::error::InputError;
use std::time::Duration;

/// Command-line changes to a scenario, applied before the matrix.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overrides {
    /// `--set KEY=VALUE` and the shorthand flags (`--duration`, `--rate`, ...).
    pub set: Vec<matrix::Setting>,
    /// `--matrix KEY=V1,V2,...`: replaces a file axis of the same key, or adds one.
    pub matrix: Vec<(String, String)>,
}

/// A checked scenario, ready to run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub source: Source,
    pub scenario: Scenario,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
}

impl Plan {
    /// The rounds `run` makes: `--rounds`, else the scenario's `rounds`, else 1.
    pub(crate) fn rounds(&self, flag: Option<u32>) -> u32 {
        flag.or(self.scenario.rounds.map(|r| r.get())).unwrap_or(1)
    }
}

pub(crate) fn load(spec: &str, overrides: &Overrides) -> Result<Plan, InputError> {
    load_source(Source::open(spec)?, overrides)
}

/// As [`load`], for a scenario's text already in hand (`import` checks what it wrote).
pub(crate) fn load_source(source: Source, overrides: &Overrides) -> Result<Plan, InputError> {
    let mut scenario = source.parse()?;
    for setting in &overrides.set {
        setting.apply(&mut scenario)?;
    }
    check_shape(&scenario, &source)?;
    let axes = axes(&scenario, overrides, &source)?;
    check_checks_and_sweep(&scenario, &axes, &source)?;
    let mut cells = matrix::expand(&scenario, &axes).map_err(|(i, message)| match &axes[i].span {
        Some(span) => source
            .error_at(span.clone(), message)
            .with_key(format!("matrix.{}", axes[i].key)),
        None => InputError::new(format!("--matrix {}", axes[i].key), message),
    })?;
    matrix::apply_when(&mut cells, &axes, &overrides.set).map_err(|e| {
        let w = &scenario.when[e.entry];
        let (span, part) = if e.in_set {
            (w.set.span(), "set")
        } else {
            (w.matches.span(), "match")
        };
        source
            .error_at(span, format!("[[when]] number {}: {}", e.entry + 1, e.message))
            .with_key(if e.key.is_empty() {
                format!("when.{part}")
            } else {
                format!("when.{part}.{}", e.key)
            })
    })?;
    for cell in &cells {
        check_shape(&cell.scenario, &source)
            .and_then(|()| check_target(&cell.scenario, &source))
            .map_err(|mut e| {
                e.message = format!("in run `{}`: {}", cell.id, e.message);
                e
            })?;
    }
    Ok(Plan {
        source,
        scenario,
        axes,
        cells,
    })
}

fn axes(scenario: &Scenario, overrides: &Overrides, source: &Source) -> Result<Vec<Axis>, InputError> {
    // One axis, one spelling: `journal_mode` and `sqlite.journal_mode` are the same axis,
    // and a run id made of duplicate values would merge two runs into "repeats".
    let mut seen: Vec<String> = Vec::new();
    for (key, values) in &scenario.matrix {
        let canonical = matrix::canonical_key(key);
        if seen.contains(&canonical) {
            return Err(source
                .error_at(
                    values.span(),
                    format!("matrix axis `{canonical}` is given twice (as `{key}` too)"),
                )
                .with_key(format!("matrix.{key}")));
        }
        seen.push(canonical);
    }
    let mut flags: Vec<String> = Vec::new();
    for (key, _) in &overrides.matrix {
        let canonical = matrix::canonical_key(key);
        if flags.contains(&canonical) {
            return Err(InputError::new(
                format!("--matrix {key}"),
                format!("axis `{canonical}` is given twice; give its values in one --matrix flag"),
            ));
        }
        flags.push(canonical);
    }
    let axes = file_axes(scenario);
    let axes = matrix::resolve_axes(axes, &overrides.matrix, &overrides.set)?;
    for axis in &axes {
        let shown: Vec<String> = axis.values.iter().map(matrix::show_value).collect();
        if let Some(dup) = shown
            .iter()
            .enumerate()
            .find(|(i, v)| shown[..*i].contains(v))
            .map(|(_, v)| v)
        {
            let message = format!("matrix axis `{}` lists the value `{dup}` twice", axis.key);
            return Err(match &axis.span {
                Some(span) => source
                    .error_at(span.clone(), message)
                    .with_key(format!("matrix.{}", axis.key)),
                None => InputError::new(format!("--matrix {}", axis.key), message),
            });
        }
    }
    Ok(axes)
}

fn file_axes(scenario: &Scenario) -> Vec<Axis> {
    scenario
        .matrix
        .iter()
        .map(|(key, values)| Axis {
            key: matrix::canonical_key(key),
            values: values.get_ref().clone(),
            span: Some(values.span()),
            pinned_from: None,
        })
        .collect()
}

/// Checks serde cannot express: cross-field rules and names.
fn check_shape(s: &Scenario, source: &Source) -> Result<(), InputError> {
    match (&s.duration, &s.operations) {
        (Some(_), Some(op)) => {
            return Err(source
                .error_at(op.span(), "give either `duration` or `operations`, not both")
                .with_key("operations"));
        }
        (None, None) => return Err(source.error("give `duration` (e.g. \"20s\") or `operations` (e.g. 100000)")),
        (Some(d), None) if d.get_ref().0.is_zero() => {
            return Err(source
                .error_at(d.span(), "duration must be greater than zero")
                .with_key("duration"));
        }
        _ => {}
    }
    s.sqlite.validate().map_err(|e| {
        let key = if e.starts_with("busy_timeout") {
            "sqlite.busy_timeout"
        } else {
            "sqlite.page_size"
        };
        source.error(e).with_key(key)
    })?;
    super::limits::timeline_interval(s.timeline_interval.0, s.duration.as_ref().map(|d| d.get_ref().0))
        .map_err(|e| source.error(e).with_key("timeline_interval"))?;
    if let Some(sweep) = &s.sweep {
        super::limits::wait(sweep.p99_limit.0)
            .map_err(|e| source.error(format!("p99_limit {e}")).with_key("sweep.p99_limit"))?;
    }
    s.backup
        .validate()
        .map_err(|(m, key)| source.error(m).with_key(format!("backup.{key}")))?;
    check_replica(s, source)?;
    if s.backup.method == super::backup::BackupMethod::Litestream && s.target.is_sqlite() {
        use super::sqlite::{JournalMode, LockingMode};
        // Litestream copies the WAL from beside the database while the app holds it open: a
        // rollback journal has no WAL to copy, and an exclusive lock keeps it out.
        if s.sqlite.journal_mode != JournalMode::Wal {
            return Err(source
                .error(format!(
                    "backup = \"litestream\" replicates the WAL, so it needs journal_mode = \"wal\"; \
                     this run has journal_mode = \"{}\" (pin it with --set journal_mode=wal, or use \
                     backup = \"backup-api\" or \"vacuum-into\")",
                    s.sqlite.journal_mode.as_str()
                ))
                .with_key("sqlite.journal_mode"));
        }
        if s.sqlite.locking_mode == LockingMode::Exclusive {
            return Err(source
                .error(
                    "backup = \"litestream\" reads the database beside the workers, so it needs \
                     locking_mode = \"normal\" (an exclusive lock keeps it out)",
                )
                .with_key("sqlite.locking_mode"));
        }
    }
    if s.name.trim().is_empty() {
        return Err(source
            .error("the scenario's name is empty: give it one (it heads every report)")
            .with_key("name"));
    }
    if s.group.is_empty() {
        return Err(source.error("the scenario has no worker groups: add at least one [[group]] with a [[group.op]]"));
    }
    for (i, g) in s.group.iter().enumerate() {
        let name = g.name.get_ref();
        if name.trim().is_empty() {
            return Err(source
                .error_at(
                    g.name.span(),
                    "a group's name is empty: give it one (--set and --matrix name a group by it: group.NAME.clients)",
                )
                .with_key("group.name"));
        }
        if s.group[..i].iter().any(|other| other.name.get_ref() == name) {
            return Err(source
                .error_at(g.name.span(), format!("group name `{name}` is used twice"))
                .with_key("group.name"));
        }
        if g.op.is_empty() && g.script.is_empty() {
            return Err(source.error_at(
                g.name.span(),
                format!("group `{name}` has no [[group.op]] or [[group.script]]"),
            ));
        }
        let scripts = g.scripts();
        // One set per group: an imported scenario may have thousands of operations.
        let mut op_names = std::collections::HashSet::with_capacity(scripts.len());
        if g.transaction == TxMode::None && g.statements_per_transaction.get() > 1 {
            let message = format!(
                "group `{name}`: transaction = \"none\" (autocommit) runs one operation per transaction; \
                 use deferred/immediate/exclusive for several operations per transaction"
            );
            return Err(source.error_at(g.name.span(), message).with_key("transaction"));
        }
        for op in &scripts {
            let op_name = op.name.get_ref();
            if !op_names.insert(op_name) {
                let message = format!("operation name `{op_name}` is used twice in group `{name}`");
                return Err(source.error_at(op.name.span(), message));
            }
            if op.steps.is_empty() {
                return Err(source.error_at(op.name.span(), format!("script `{op_name}` has no steps")));
            }
        }
        check_group_options(g, source)?;
    }
    Ok(())
}

/// A `[replica]` reads what Litestream replicates: it needs `backup = "litestream"` on
/// SQLite in WAL mode, and a sequence table to measure the lag from.
fn check_replica(s: &Scenario, source: &Source) -> Result<(), InputError> {
    use super::backup::BackupMethod;
    use super::sqlite::JournalMode;
    s.replica
        .validate()
        .map_err(|(m, key)| source.error(m).with_key(format!("replica.{key}")))?;
    for g in s.group.iter().filter(|g| g.replica) {
        let name = g.name.get_ref();
        if g.isolation != super::app::Isolation::Thread {
            return Err(source
                .error_at(
                    g.name.span(),
                    format!(
                        "group `{name}`: replica = true needs isolation = \"thread\" (the replica's \
                         extension is loaded into litehammer's own process)"
                    ),
                )
                .with_key(format!("group.{name}.replica")));
        }
    }
    if s.replica.is_none() {
        return Ok(());
    }
    if !s.target.is_sqlite() {
        return Err(source
            .error("replica = \"litestream-vfs\" reads a Litestream replica of an SQLite file: use target = \"sqlite\"")
            .with_key("replica"));
    }
    if s.sqlite.journal_mode != JournalMode::Wal {
        return Err(source
            .error(format!(
                "replica = \"litestream-vfs\" reads what Litestream replicates from the WAL, so it needs \
                 journal_mode = \"wal\"; this run has journal_mode = \"{}\" (pin it with --set journal_mode=wal)",
                s.sqlite.journal_mode.as_str()
            ))
            .with_key("sqlite.journal_mode"));
    }
    if s.backup.method != BackupMethod::Litestream {
        return Err(source
            .error(format!(
                "replica = \"litestream-vfs\" reads the replica Litestream writes, so it needs backup = \"litestream\"; \
                 this run has backup = \"{}\" (--set backup=litestream)",
                s.backup.method.as_str()
            ))
            .with_key("backup"));
    }
    if s.replica.sequence_table.is_none() && s.backup.sequence_table.is_none() {
        return Err(source
            .error(
                "replica = \"litestream-vfs\" measures the lag from a sequence the writers write: set \
                 replica.sequence_table (or backup.sequence_table) to a table whose rowid numbers the commits, \
                 with an at_ms column",
            )
            .with_key("replica.sequence_table"));
    }
    Ok(())
}

/// What a run's target cannot do: `BEGIN CONCURRENT` outside Turso, and on Turso worker
/// processes (its MVCC is single-process), backups, and its settings' own rules.
fn check_target(s: &Scenario, source: &Source) -> Result<(), InputError> {
    use super::postgres::TargetKind;
    let turso = s.target == TargetKind::Turso;
    if turso {
        s.turso.validate().map_err(|(m, key)| {
            source
                .error(format!("turso.{key}: {m}"))
                .with_key(format!("turso.{key}"))
        })?;
        if !s.backup.is_none() {
            return Err(source
                .error("backups (`[backup]`) are SQLite's: Turso's MVCC log is not a file Litestream or the backup API can copy; use target = \"sqlite\"")
                .with_key("backup"));
        }
    }
    for g in &s.group {
        let name = g.name.get_ref();
        let at = |message: String, key: &str| {
            source
                .error_at(g.name.span(), format!("group `{name}`: {message}"))
                .with_key(format!("group.{name}.{key}"))
        };
        if g.transaction == TxMode::Concurrent && !turso {
            return Err(at(
                format!(
                    "transaction = \"concurrent\" (BEGIN CONCURRENT) is Turso's MVCC; this run has target = \"{}\" (use target = \"turso\", or turso.begin = \"concurrent\" to pair it with another target's BEGIN)",
                    s.target.as_str()
                ),
                "transaction",
            ));
        }
        if turso && g.transaction == TxMode::Concurrent && s.turso.journal_mode != super::turso::TursoJournal::Mvcc {
            return Err(at(
                "transaction = \"concurrent\" (BEGIN CONCURRENT) needs turso.journal_mode = \"mvcc\"".into(),
                "transaction",
            ));
        }
        if turso && g.isolation == super::app::Isolation::Process {
            return Err(at(
                "isolation = \"process\" is not supported by Turso: its database (and MVCC) lives in one process; use isolation = \"thread\"".into(),
                "isolation",
            ));
        }
    }
    Ok(())
}

fn check_group_options(g: &super::Group, source: &Source) -> Result<(), InputError> {
    let at = |message: String, key: &str| {
        source
            .error_at(g.name.span(), format!("group `{}`: {message}", g.name.get_ref()))
            .with_key(key.to_string())
    };
    if let Some(rate) = g.rate
        && let Err(e) = super::limits::rate(rate)
    {
        return Err(at(e, "rate"));
    }
    if let Some(f) = g.app_time_scale
        && let Err(e) = super::limits::app_time_scale(f)
    {
        return Err(at(e, "app_time_scale"));
    }
    if let Some(limit) = g.latency_limit
        && let Err(e) = super::limits::wait(limit.0)
    {
        return Err(at(format!("latency_limit {e}"), "latency_limit"));
    }
    if let Some(r) = &g.retry
        && let Err(e) = super::limits::wait(r.backoff.0.max(r.backoff_max.map_or(Duration::ZERO, |m| m.0)))
    {
        return Err(at(format!("retry backoff {e}"), "retry"));
    }
    if let Some(rate) = g.rate
        && !(rate.is_finite() && rate >= 0.0)
    {
        return Err(at(
            format!("rate must be transactions per second (0 = closed loop), got {rate}"),
            "rate",
        ));
    }
    if g.skip_late && (g.rate.is_none_or(|r| r == 0.0) || g.latency_limit.is_none()) {
        return Err(at(
            "skip_late needs both `rate` and `latency_limit`".into(),
            "skip_late",
        ));
    }
    if let Some(limit) = g.latency_limit
        && limit.0.is_zero()
    {
        return Err(at("latency_limit must be greater than zero".into(), "latency_limit"));
    }
    check_app_model(g, source)?;
    if let Some(r) = &g.retry
        && r.backoff_max.is_some_and(|m| m < r.backoff)
    {
        return Err(at(
            "retry.backoff_max must not be smaller than retry.backoff".into(),
            "retry",
        ));
    }
    Ok(())
}

/// The application model's rules: step markers, transaction blocks, clients vs rate.
/// `keep_alive_inline` / `keep_alive_wait`: inline serving needs a client's connection, so
/// closed-loop clients in a queue a worker keeps them in (not open-loop arrivals, not a
/// shared queue of connections closed after each request).
fn check_keep_alive(g: &super::Group, source: &Source) -> Result<(), InputError> {
    let group = g.name.get_ref();
    let (problem, key) = match (g.keep_alive_inline, g.keep_alive_wait) {
        (None, None) => return Ok(()),
        (None, Some(_)) => (
            "keep_alive_wait needs keep_alive_inline (how many requests a worker serves inline)".to_string(),
            "keep_alive_wait",
        ),
        (Some(_), _) if g.rate.is_some_and(|r| r > 0.0) => (
            "keep_alive_inline needs closed-loop clients: open-loop arrivals (rate) have no connection to keep alive"
                .to_string(),
            "keep_alive_inline",
        ),
        (Some(_), _) if g.queue == Some(super::app::QueueKind::Shared) => (
            "keep_alive_inline needs queue = \"per-process\" or \"first-free\": a shared queue models connections closed after each request (gunicorn's sync workers)"
                .to_string(),
            "keep_alive_inline",
        ),
        (Some(_), Some(w)) => match super::limits::wait(w.0) {
            Err(e) => (format!("keep_alive_wait {e}"), "keep_alive_wait"),
            Ok(()) => return Ok(()),
        },
        (Some(_), None) => return Ok(()),
    };
    Err(source
        .error_at(g.name.span(), format!("group `{group}`: {problem}"))
        .with_key(key))
}

fn check_app_model(g: &super::Group, source: &Source) -> Result<(), InputError> {
    use super::app::TxControl;
    let group = g.name.get_ref();
    for script in &g.script {
        let name = script.name.get_ref();
        let at = |message: String, key: &str| {
            source
                .error_at(
                    script.name.span(),
                    format!("script `{name}` in group `{group}`: {message}"),
                )
                .with_key(format!("group.{group}.script.{name}.{key}"))
        };
        let mut open = false;
        for (i, step) in script.steps.iter().enumerate() {
            let kinds = usize::from(!step.sql.get_ref().is_empty())
                + usize::from(step.begin.is_some())
                + usize::from(step.commit.is_some());
            if kinds != 1 {
                return Err(at(
                    format!("step {i} needs exactly one of `sql`, `begin` or `commit`"),
                    "steps",
                ));
            }
            if step.params.is_some() && step.sql.get_ref().is_empty() {
                return Err(at(format!("step {i}: `params` needs `sql`"), "steps"));
            }
            let control = match (step.begin, step.commit) {
                (Some(_), _) => TxControl::Begin,
                (None, Some(true)) => TxControl::Commit,
                (None, Some(false)) => TxControl::Rollback,
                (None, None) => TxControl::of(step.sql.get_ref()),
            };
            if control == TxControl::None {
                continue;
            }
            if g.transaction != TxMode::None {
                return Err(at(
                    format!(
                        "step {i} begins or ends a transaction block, which needs the group's transaction = \"none\" (it is \"{}\")",
                        g.transaction.as_str()
                    ),
                    "steps",
                ));
            }
            match (control, open) {
                (TxControl::Begin, true) => {
                    return Err(at(format!("step {i}: BEGIN inside an open transaction block"), "steps"));
                }
                (TxControl::Begin, false) => open = true,
                (_, false) => {
                    return Err(at(format!("step {i}: COMMIT/ROLLBACK without a BEGIN"), "steps"));
                }
                (_, true) => open = false,
            }
        }
        if open {
            return Err(at(
                "a transaction block is not closed: add `{ commit = true }`".into(),
                "steps",
            ));
        }
    }
    if let Some(clients) = g.clients
        && clients.get() > super::limits::MAX_CLIENTS
    {
        return Err(source
            .error_at(
                g.name.span(),
                format!(
                    "group `{group}`: clients = {clients} is too many: at most {} (docs/limits.md)",
                    super::limits::MAX_CLIENTS
                ),
            )
            .with_key("clients"));
    }
    if let Some(threads) = g.threads {
        let (threads, workers) = (threads.get(), g.workers.get());
        let problem = match g.isolation {
            // One process of `workers` threads: `threads` can only say so.
            super::app::Isolation::Thread if threads != workers => Some(format!(
                "threads = {threads} needs isolation = \"process\": with isolation = \"thread\" the group's {workers} workers are the threads of one process"
            )),
            super::app::Isolation::Process if threads > workers || workers % threads != 0 => Some(format!(
                "workers = {workers} is not a multiple of threads = {threads}: `workers` counts every thread of the group's processes (Puma's `workers 2, threads 5` is workers = 10, threads = 5)"
            )),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(source
                .error_at(g.name.span(), format!("group `{group}`: {problem}"))
                .with_key("threads"));
        }
    }
    if let Some(queue) = g.queue
        && g.isolation != super::app::Isolation::Process
    {
        return Err(source
            .error_at(
                g.name.span(),
                format!(
                    "group `{group}`: queue = \"{}\" needs isolation = \"process\": the workers of a thread group always share one queue",
                    queue.as_str()
                ),
            )
            .with_key("queue"));
    }
    if g.queue == Some(super::app::QueueKind::FirstFree) && g.rate.is_some_and(|r| r > 0.0) {
        return Err(source
            .error_at(
                g.name.span(),
                format!(
                    "group `{group}`: queue = \"first-free\" binds closed-loop clients to processes: open-loop arrivals (rate) have no connection to bind; use queue = \"per-process\" or \"shared\""
                ),
            )
            .with_key("queue"));
    }
    check_keep_alive(g, source)?;
    if g.busy_wait.is_some() && !g.runtime.has_lock() {
        return Err(source
            .error_at(
                g.name.span(),
                format!(
                    "group `{group}`: busy_wait = \"{}\" needs an interpreter lock: set runtime = \"gvl\" or \"gil\" (runtime is \"native\")",
                    g.busy_wait.map_or("", |b| b.as_str())
                ),
            )
            .with_key("busy_wait"));
    }
    if g.clients.is_some() && g.rate.is_some_and(|r| r > 0.0) {
        return Err(source
            .error_at(
                g.name.span(),
                format!("group `{group}`: give `clients` (closed loop) or `rate` (arrivals), not both"),
            )
            .with_key("clients"));
    }
    Ok(())
}

fn check_checks_and_sweep(s: &Scenario, axes: &[Axis], source: &Source) -> Result<(), InputError> {
    let group_exists = |name: &str| s.group.iter().any(|g| g.name.get_ref() == name);
    for c in &s.check {
        let at = |message: String| source.error_at(c.name.span(), message).with_key("check");
        match (&c.sql, &c.expr) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(at(format!(
                    "check `{}`: give either `sql` (with `expect`) or `expr`",
                    c.name.get_ref()
                )));
            }
            (None, Some(expr)) => {
                if let Some(g) = expr.get_ref().group()
                    && !group_exists(g)
                {
                    let message = format!("check `{}` names group `{g}`, which does not exist", c.name.get_ref());
                    return Err(source.error_at(expr.span(), message).with_key("check.expr"));
                }
            }
            (Some(_), None) => {}
        }
    }
    if let Some(sweep) = &s.sweep {
        let err = |message: String| source.error(message).with_key("sweep");
        let is_axis = |key: &str| axes.iter().any(|a| a.key == super::matrix::canonical_key(key));
        if !is_axis(&sweep.axis) {
            return Err(err(format!("sweep axis `{}` is not a matrix axis", sweep.axis)));
        }
        if let Some(by) = &sweep.by
            && let Some(missing) = by.split(',').find(|b| !is_axis(b))
        {
            return Err(err(format!(
                "sweep `by = \"{by}\"`: `{}` is not a matrix axis",
                missing.trim()
            )));
        }
        if !group_exists(&sweep.group) {
            return Err(err(format!("sweep group `{}` does not exist", sweep.group)));
        }
    }
    Ok(())
}
