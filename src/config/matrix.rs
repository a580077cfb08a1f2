//! Settings overrides by dotted key (`sqlite.busy_timeout`, `group.writers.workers`), used by
//! `[matrix]`, `--set` and `--matrix`, and the cartesian expansion into one cell per run.

use super::Scenario;
use crate::config::sqlite::SqliteSettings;

/// One matrix dimension: a key and the values it takes.
#[derive(Clone, Debug)]
pub(crate) struct Axis {
    pub key: String,
    pub values: Vec<toml::Value>,
    /// Byte span in the scenario file; `None` when the axis came from the command line.
    pub span: Option<std::ops::Range<usize>>,
    /// `--set` pinned this axis to one value; these are the values it had before.
    pub pinned_from: Option<Vec<toml::Value>>,
}

/// One command-line setting: a key, its value, and the flag the user typed (for errors).
#[derive(Clone, Debug)]
pub(crate) struct Setting {
    pub key: String,
    pub value: toml::Value,
    /// `--set group.writers.workers=8`, `--rate 100`: what an error message names.
    pub flag: String,
}

impl Setting {
    /// A `--set KEY=VALUE` as typed.
    pub(crate) fn from_set(key: &str, raw_value: &str) -> Self {
        Self {
            key: key.to_string(),
            value: parse_cli_value(raw_value),
            flag: format!("--set {key}={raw_value}"),
        }
    }

    /// Applies the setting to a scenario; the error names the flag.
    pub(crate) fn apply(&self, s: &mut Scenario) -> Result<(), crate::error::InputError> {
        apply(s, &self.key, &self.value).map_err(|e| crate::error::InputError::new(&self.flag, e))
    }
}

/// Builds the axes of a run from the scenario's own (`[matrix]`, or a command's defaults),
/// in this order: `--matrix KEY=V1,V2` replaces or adds an axis, then `--set KEY=V` on a key
/// that is an axis pins that axis to the one value (and the report says so). Every command
/// that expands a matrix (`run`, `validate`, `crash`) goes through here.
pub(crate) fn resolve_axes(
    mut axes: Vec<Axis>,
    matrix_args: &[(String, String)],
    set: &[Setting],
) -> Result<Vec<Axis>, crate::error::InputError> {
    use crate::error::InputError;
    for (key, list) in matrix_args {
        let key = canonical_key(key);
        let values: Vec<toml::Value> = list
            .split(',')
            .filter(|v| !v.trim().is_empty())
            .map(parse_cli_value)
            .collect();
        if values.is_empty() {
            return Err(InputError::new(
                format!("--matrix {key}"),
                "give at least one value: --matrix KEY=V1,V2",
            ));
        }
        if set.iter().any(|s| canonical_key(&s.key) == key) {
            return Err(InputError::new(
                format!("--matrix {key}"),
                format!("`{key}` is also given with --set; give it once"),
            ));
        }
        let axis = Axis {
            key: key.clone(),
            values,
            span: None,
            pinned_from: None,
        };
        match axes.iter_mut().find(|a| a.key == key) {
            Some(existing) => *existing = axis,
            None => axes.push(axis),
        }
    }
    for setting in set {
        let key = canonical_key(&setting.key);
        if let Some(axis) = axes.iter_mut().find(|a| a.key == key) {
            let before = std::mem::replace(&mut axis.values, vec![setting.value.clone()]);
            axis.pinned_from = Some(before);
        }
    }
    Ok(axes)
}

/// `journal_mode=delete (--set; the matrix had wal, delete)`, one per pinned axis.
pub(crate) fn pinned_notes(axes: &[Axis]) -> Vec<String> {
    axes.iter()
        .filter_map(|a| {
            let before = a.pinned_from.as_ref()?;
            let shown: Vec<String> = before.iter().map(show_value).collect();
            let value = a.values.first().map(show_value).unwrap_or_default();
            Some(format!(
                "{}={value} (--set; the matrix had {})",
                a.key,
                shown.join(", ")
            ))
        })
        .collect()
}

/// One run's configuration: the assignments that distinguish it, and the resulting scenario.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub id: String,
    pub assignments: Vec<(String, toml::Value)>,
    pub scenario: Scenario,
    /// What `[[when]]` set in this cell: `group.web.app_time_scale=3.4 (when journal_mode=delete)`.
    pub when: Vec<String>,
}

/// Keys of `[sqlite]` that may be written without the `sqlite.` prefix.
const SQLITE_KEYS: &[&str] = crate::config::sqlite::SETTING_NAMES;

/// The canonical form of a key: sqlite settings lose their `sqlite.` prefix.
pub(crate) fn canonical_key(key: &str) -> String {
    let key = key.trim();
    match key.strip_prefix("sqlite.") {
        Some(rest) => rest.to_string(),
        None => key.to_string(),
    }
}

/// Parses a command-line value: TOML if it is valid TOML (`8`, `true`, `"x"`), else a string.
pub(crate) fn parse_cli_value(raw: &str) -> toml::Value {
    let raw = raw.trim();
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

/// Sets one key on a scenario. Errors are plain messages; the caller says where.
pub(crate) fn apply(s: &mut Scenario, key: &str, value: &toml::Value) -> Result<(), String> {
    let key = canonical_key(key);
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        [k] if SQLITE_KEYS.contains(k) => set_sqlite(&mut s.sqlite, k, value),
        ["duration"] => {
            s.duration = Some(spanless(typed(value)?));
            s.operations = None;
            Ok(())
        }
        ["operations"] => {
            s.operations = Some(spanless(typed(value)?));
            s.duration = None;
            Ok(())
        }
        ["target"] => typed(value).map(|v| s.target = v),
        ["postgres", k] => super::postgres::set(&mut s.postgres, k, value),
        ["dqlite", k] => super::dqlite::set(&mut s.dqlite, k, value),
        ["turso", k] => super::turso::set(&mut s.turso, k, value),
        ["warmup"] => typed(value).map(|v| s.warmup = v),
        ["seed"] => typed(value).map(|v| s.seed = v),
        ["timeline_interval"] => typed(value).map(|v| s.timeline_interval = v),
        ["backup", field @ ..] if field.len() < 2 => {
            super::backup::SECTION.set(&mut s.backup, field.first().copied(), value)
        }
        ["replica", field @ ..] if field.len() < 2 => {
            super::replica::SECTION.set(&mut s.replica, field.first().copied(), value)
        }
        ["group", name, "op" | "script", op, "app_time"] => {
            let group = s
                .group
                .iter_mut()
                .find(|g| g.name.get_ref() == name)
                .ok_or_else(|| format!("no group named `{name}`"))?;
            let app_time = Some(typed(value)?);
            if let Some(o) = group.op.iter_mut().find(|o| o.name.get_ref() == op) {
                o.app_time = app_time;
            } else if let Some(o) = group.script.iter_mut().find(|o| o.name.get_ref() == op) {
                o.app_time = app_time;
            } else {
                return Err(format!("group `{name}` has no operation `{op}`"));
            }
            Ok(())
        }
        ["group", name, "op" | "script", op, "weight"] => {
            let group = s
                .group
                .iter_mut()
                .find(|g| g.name.get_ref() == name)
                .ok_or_else(|| format!("no group named `{name}`"))?;
            let weight: u32 = typed(value)?;
            let op_weight = group
                .op
                .iter_mut()
                .find(|o| o.name.get_ref() == op)
                .map(|o| &mut o.weight);
            let script_weight = group
                .script
                .iter_mut()
                .find(|o| o.name.get_ref() == op)
                .map(|o| &mut o.weight);
            let slot = op_weight
                .or(script_weight)
                .ok_or_else(|| format!("group `{name}` has no operation `{op}`"))?;
            *slot = weight;
            Ok(())
        }
        ["group", name, "only"] => {
            let group = s
                .group
                .iter_mut()
                .find(|g| g.name.get_ref() == name)
                .ok_or_else(|| format!("no group named `{name}`"))?;
            let only: String = typed(value)?;
            let mut found = false;
            for (op_name, weight) in group
                .op
                .iter_mut()
                .map(|o| (o.name.get_ref().clone(), &mut o.weight))
                .chain(
                    group
                        .script
                        .iter_mut()
                        .map(|o| (o.name.get_ref().clone(), &mut o.weight)),
                )
            {
                found |= op_name == only;
                *weight = u32::from(op_name == only) * (*weight).max(1);
            }
            if !found {
                return Err(format!("group `{name}` has no operation `{only}`"));
            }
            Ok(())
        }
        ["group", name, field] => {
            let names: Vec<String> = s.group.iter().map(|g| g.name.get_ref().clone()).collect();
            let mut matched = 0;
            for group in s.group.iter_mut().filter(|g| *name == "*" || g.name.get_ref() == name) {
                set_group_field(group, field, value)?;
                matched += 1;
            }
            if matched == 0 {
                return Err(format!("no group named `{name}` (groups: {})", names.join(", ")));
            }
            Ok(())
        }
        // A group field named bare (pgbench's -c, k6's --vus): say the key it lives under.
        [field] if GROUP_KEYS.contains(field) => {
            let groups: Vec<String> = s
                .group
                .iter()
                .map(|g| format!("group.{}.{field}", g.name.get_ref()))
                .collect();
            Err(format!(
                "unknown setting `{key}`: `{field}` is a group's; use {} (or group.*.{field} for every group)",
                if groups.is_empty() {
                    format!("group.NAME.{field}")
                } else {
                    groups.join(" or ")
                }
            ))
        }
        _ => Err(format!(
            "unknown setting `{key}`; use one of {}, sqlite.<setting>, target, postgres.<synchronous_commit|isolation|transport>, dqlite.<faults|leader_timeout>, turso.<journal_mode|begin|synchronous|busy_timeout|mvcc_checkpoint_threshold>, duration, operations, warmup, seed, timeline_interval, backup, backup.<field>, replica, replica.<field>, group.<name|*>.<{}>, group.<name>.op.<op>.weight, group.<name>.only, group.<name>.script.<script>.app_time",
            SQLITE_KEYS.join(", "),
            GROUP_KEYS.join("|")
        )),
    }
}

/// Group fields that overrides and matrix axes may set.
const GROUP_KEYS: &[&str] = &[
    "workers",
    "transaction",
    "statements_per_transaction",
    "rate",
    "arrival",
    "latency_limit",
    "skip_late",
    "app_time",
    "app_time_scale",
    "think_time",
    "clients",
    "connection",
    "isolation",
    "threads",
    "queue",
    "keep_alive_inline",
    "keep_alive_wait",
    "runtime",
    "busy_wait",
];

fn set_group_field(group: &mut super::Group, field: &str, value: &toml::Value) -> Result<(), String> {
    match field {
        "workers" => typed(value).map(|v| group.workers = v),
        "transaction" => typed(value).map(|v| group.transaction = v),
        "statements_per_transaction" => typed(value).map(|v| group.statements_per_transaction = v),
        "rate" => typed::<f64>(value)
            .or_else(|_| typed::<i64>(value).map(|i| i as f64))
            .map(|v| group.rate = Some(v)),
        "arrival" => typed(value).map(|v| group.arrival = v),
        "latency_limit" => typed(value).map(|v| group.latency_limit = Some(v)),
        "skip_late" => typed(value).map(|v| group.skip_late = v),
        "app_time" => typed(value).map(|v| group.app_time = Some(v)),
        "app_time_scale" => {
            let f = typed::<f64>(value).or_else(|_| typed::<i64>(value).map(|i| i as f64))?;
            super::limits::app_time_scale(f)?;
            group.app_time_scale = Some(f);
            Ok(())
        }
        "think_time" => typed(value).map(|v| group.think_time = Some(v)),
        "clients" => typed(value).map(|v| group.clients = Some(v)),
        "connection" => typed(value).map(|v| group.connection = v),
        "isolation" => typed(value).map(|v| group.isolation = v),
        "threads" => typed(value).map(|v| group.threads = Some(v)),
        "queue" => typed(value).map(|v| group.queue = Some(v)),
        "keep_alive_inline" => typed(value).map(|v| group.keep_alive_inline = Some(v)),
        "keep_alive_wait" => typed(value).map(|v| group.keep_alive_wait = Some(v)),
        "runtime" => typed(value).map(|v| group.runtime = v),
        "busy_wait" => typed(value).map(|v| group.busy_wait = Some(v)),
        other => Err(format!(
            "`{other}` cannot be overridden; use one of {}",
            GROUP_KEYS.join(", ")
        )),
    }
}

fn spanless<T>(value: T) -> toml::Spanned<T> {
    toml::Spanned::new(0..0, value)
}

fn typed<T: serde::de::DeserializeOwned>(value: &toml::Value) -> Result<T, String> {
    value
        .clone()
        .try_into::<T>()
        .map_err(|e| e.message().trim_end().to_string())
}

fn set_sqlite(settings: &mut SqliteSettings, key: &str, value: &toml::Value) -> Result<(), String> {
    let mut table = toml::Table::try_from(&*settings).map_err(|e| e.to_string())?;
    table.insert(key.to_string(), value.clone());
    let updated: SqliteSettings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim_end().to_string())?;
    updated.validate()?;
    *settings = updated;
    Ok(())
}

/// How a value reads in a run id: strings bare, everything else as TOML.
pub(crate) fn show_value(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The cartesian product of the axes, first axis outermost, applied to the base scenario.
/// On error returns the failing axis index and message.
pub(crate) fn expand(base: &Scenario, axes: &[Axis]) -> Result<Vec<Cell>, (usize, String)> {
    let mut cells = vec![Cell {
        id: String::new(),
        assignments: Vec::new(),
        scenario: base.clone(),
        when: Vec::new(),
    }];
    // The target is the outermost axis wherever it was given: a report lists one
    // database's runs, then the other's.
    let mut order: Vec<usize> = (0..axes.len()).collect();
    order.sort_by_key(|&i| axes[i].key != "target");
    for axis_index in order {
        let axis = &axes[axis_index];
        if axis.values.is_empty() {
            return Err((axis_index, "a matrix axis needs at least one value".into()));
        }
        let mut next = Vec::with_capacity(cells.len() * axis.values.len());
        for cell in &cells {
            for value in &axis.values {
                let mut scenario = cell.scenario.clone();
                apply(&mut scenario, &axis.key, value).map_err(|e| (axis_index, format!("value {}: {e}", value)))?;
                let mut assignments = cell.assignments.clone();
                assignments.push((canonical_key(&axis.key), value.clone()));
                next.push(Cell {
                    id: String::new(),
                    assignments,
                    scenario,
                    when: Vec::new(),
                });
            }
        }
        cells = next;
    }
    // SQLite's settings do not apply to a PostgreSQL, dqlite or Turso run, nor `postgres.*`,
    // `dqlite.*` or `turso.*` to a run on another target: such a cell drops them, and the
    // cells that become the same are one.
    use crate::config::postgres::TargetKind;
    let mixed = cells.iter().any(|c| !c.scenario.target.is_sqlite())
        || cells
            .iter()
            .flat_map(|c| &c.assignments)
            .any(|(k, _)| k.starts_with("postgres.") || k.starts_with("dqlite.") || k.starts_with("turso."));
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    cells.retain_mut(|cell| {
        if !mixed {
            return true;
        }
        let target = cell.scenario.target;
        cell.assignments.retain(|(k, _)| {
            let sqlite_key = SQLITE_KEYS.contains(&k.as_str());
            let (pg, dq, tu) = (
                k.starts_with("postgres."),
                k.starts_with("dqlite."),
                k.starts_with("turso."),
            );
            match target {
                TargetKind::Sqlite => !pg && !dq && !tu,
                TargetKind::Postgres => !sqlite_key && !dq && !tu,
                TargetKind::Dqlite => !sqlite_key && !pg && !tu,
                TargetKind::Turso => !sqlite_key && !pg && !dq,
            }
        });
        let key: Vec<String> = cell
            .assignments
            .iter()
            .map(|(k, v)| format!("{k}={}", show_value(v)))
            .collect();
        seen.insert(key.join(","))
    });
    for cell in &mut cells {
        // `turso.begin = "concurrent"`: on Turso, every transaction begins concurrently.
        let s = &mut cell.scenario;
        if s.target == TargetKind::Turso && s.turso.begin == crate::config::turso::TursoBegin::Concurrent {
            for g in s
                .group
                .iter_mut()
                .filter(|g| g.transaction != crate::config::TxMode::None)
            {
                g.transaction = crate::config::TxMode::Concurrent;
            }
        }
        cell.id = if cell.assignments.is_empty() {
            "default".to_string()
        } else {
            cell.assignments
                .iter()
                .map(|(k, v)| format!("{k}={}", show_value(v)))
                .collect::<Vec<_>>()
                .join(",")
        };
    }
    Ok(cells)
}

/// Why a `[[when]]` cannot apply: the entry (0-based), the key, and the message.
#[derive(Debug)]
pub(crate) struct WhenError {
    pub entry: usize,
    pub key: String,
    pub in_set: bool,
    pub message: String,
}

/// Applies the scenario's `[[when]]` entries to the expanded cells, in file order: an entry
/// sets its keys in every cell whose matrix values equal all of its `match` values (strings
/// compared without case). Its `match` keys must be matrix axes, and it may not set an axis
/// (that would change which cell it is). A key also given with `--set` keeps the `--set`
/// value, as `--set` pins an axis. Each cell lists what was set in `Cell::when`.
pub(crate) fn apply_when(cells: &mut [Cell], axes: &[Axis], set: &[Setting]) -> Result<(), WhenError> {
    let Some(first) = cells.first() else {
        return Ok(());
    };
    let whens = first.scenario.when.clone();
    for (entry, w) in whens.iter().enumerate() {
        let err = |key: &str, in_set: bool, message: String| WhenError {
            entry,
            key: key.to_string(),
            in_set,
            message,
        };
        if w.set.get_ref().is_empty() {
            return Err(err("", true, "`set` is empty: give at least one KEY = VALUE".into()));
        }
        if w.matches.get_ref().is_empty() {
            return Err(err(
                "",
                false,
                "`match` is empty: give a matrix axis and its value (for every run, set the key in the scenario itself)"
                    .into(),
            ));
        }
        for (key, value) in w.matches.get_ref() {
            let key = canonical_key(key);
            // A value the file's axis does not list (a typo) would match no run, silently;
            // an axis the command line replaced may drop values on purpose.
            if let Some(axis) = axes.iter().find(|a| a.key == key && a.span.is_some()) {
                let listed = || axis.values.iter().chain(axis.pinned_from.iter().flatten());
                if !listed().any(|v| show_value(v).eq_ignore_ascii_case(&show_value(value))) {
                    let values: Vec<String> = listed().map(show_value).collect();
                    return Err(err(
                        &key,
                        false,
                        format!(
                            "matches {key} = {}, which the axis does not list ({})",
                            show_value(value),
                            values.join(", ")
                        ),
                    ));
                }
            }
            if !axes.iter().any(|a| a.key == key) {
                let names: Vec<&str> = axes.iter().map(|a| a.key.as_str()).collect();
                return Err(err(
                    &key,
                    false,
                    format!(
                        "matches on `{key}`, which is not a matrix axis (axes: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                ));
            }
        }
        for key in w.set.get_ref().keys() {
            let key = canonical_key(key);
            if axes.iter().any(|a| a.key == key) {
                return Err(err(
                    &key,
                    true,
                    format!("sets `{key}`, a matrix axis: a cell's axes are its identity; give the values in [matrix]"),
                ));
            }
        }
        let shown: Vec<String> = w
            .matches
            .get_ref()
            .iter()
            .map(|(k, v)| format!("{}={}", canonical_key(k), show_value(v)))
            .collect();
        for cell in cells.iter_mut() {
            let hit = w.matches.get_ref().iter().all(|(k, v)| {
                let k = canonical_key(k);
                cell.assignments
                    .iter()
                    .any(|(ak, av)| *ak == k && show_value(av).eq_ignore_ascii_case(&show_value(v)))
            });
            if !hit {
                continue;
            }
            for (key, value) in w.set.get_ref() {
                let key = canonical_key(key);
                if set.iter().any(|s| canonical_key(&s.key) == key) {
                    cell.when
                        .push(format!("{key}: the --set value, not [[when]] {}'s", shown.join(",")));
                    continue;
                }
                apply(&mut cell.scenario, &key, value).map_err(|e| {
                    let mut shown = value.to_string();
                    if shown.len() > 40 {
                        shown = format!("{}…", shown.chars().take(40).collect::<String>());
                    }
                    err(&key, true, format!("value {shown}: {e}"))
                })?;
                let why = if w.why.is_empty() {
                    String::new()
                } else {
                    format!(": {}", w.why)
                };
                cell.when
                    .push(format!("{key}={} (when {}{why})", show_value(value), shown.join(",")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;
    use crate::config::sqlite::JournalMode;

    fn base() -> Scenario {
        Source {
            origin: "t".into(),
            text: "name = \"x\"\nduration = \"1s\"\n[[group]]\nname = \"w\"\nworkers = 1\n[[group.op]]\nname = \"o\"\nsql = \"SELECT 1\"\n".into(),
        }
        .parse()
        .unwrap()
    }

    fn axis(key: &str, values: &[&str]) -> Axis {
        Axis {
            key: key.into(),
            values: values.iter().map(|v| parse_cli_value(v)).collect(),
            span: None,
            pinned_from: None,
        }
    }

    #[test]
    fn expands_cartesian_product_in_order() {
        let cells = expand(
            &base(),
            &[
                axis("journal_mode", &["wal", "delete"]),
                axis("synchronous", &["normal", "full"]),
            ],
        )
        .unwrap();
        let ids: Vec<_> = cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "journal_mode=wal,synchronous=normal",
                "journal_mode=wal,synchronous=full",
                "journal_mode=delete,synchronous=normal",
                "journal_mode=delete,synchronous=full"
            ]
        );
        assert_eq!(cells[2].scenario.sqlite.journal_mode, JournalMode::Delete);
    }

    #[test]
    fn only_runs_one_op_of_a_group_and_turso_cells_drop_sqlite_axes() {
        let mut s = base();
        let copy = s.group[0].op[0].clone();
        s.group[0].op.push(copy);
        s.group[0].op[1].name = toml::Spanned::new(0..0, "p".to_string());
        apply(&mut s, "group.w.only", &parse_cli_value("p")).unwrap();
        assert_eq!((s.group[0].op[0].weight, s.group[0].op[1].weight), (0, 1));
        assert!(apply(&mut s, "group.w.only", &parse_cli_value("nope")).is_err());
        let cells = expand(
            &base(),
            &[
                axis("target", &["sqlite", "turso"]),
                axis("journal_mode", &["wal", "delete"]),
            ],
        )
        .unwrap();
        let ids: Vec<_> = cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "target=sqlite,journal_mode=wal",
                "target=sqlite,journal_mode=delete",
                "target=turso"
            ]
        );
    }

    fn when(matches: &str, set: &str) -> crate::config::scenario::When {
        toml::from_str(&format!("match = {matches}\nset = {set}\n")).unwrap()
    }

    #[test]
    fn when_sets_its_keys_in_the_matching_cells_only() {
        let mut s = base();
        s.group[0].app_time = Some("1ms".parse().unwrap());
        s.when = vec![
            when("{ journal_mode = \"DELETE\" }", "{ \"group.w.app_time_scale\" = 3.0 }"),
            when(
                "{ journal_mode = \"delete\", synchronous = \"full\" }",
                "{ \"group.w.workers\" = 4 }",
            ),
        ];
        let axes = [
            axis("journal_mode", &["wal", "delete"]),
            axis("synchronous", &["normal", "full"]),
        ];
        let mut cells = expand(&s, &axes).unwrap();
        apply_when(&mut cells, &axes, &[]).unwrap();
        let scale: Vec<Option<f64>> = cells.iter().map(|c| c.scenario.group[0].app_time_scale).collect();
        assert_eq!(scale, [None, None, Some(3.0), Some(3.0)]);
        let workers: Vec<u32> = cells.iter().map(|c| c.scenario.group[0].workers.get()).collect();
        assert_eq!(workers, [1, 1, 1, 4]);
        assert_eq!(cells[3].when.len(), 2);
        assert!(cells[0].when.is_empty());
        // --set wins over [[when]] and says so.
        let mut cells = expand(&s, &axes).unwrap();
        let pinned = [Setting::from_set("group.w.app_time_scale", "2")];
        apply_when(&mut cells, &axes, &pinned).unwrap();
        assert_eq!(cells[2].scenario.group[0].app_time_scale, None);
        assert!(cells[2].when[0].contains("the --set value"), "{:?}", cells[2].when);
    }

    #[test]
    fn when_refuses_unknown_axes_axis_keys_and_bad_values() {
        // An axis of the file (it has a span): a value it does not list is a typo.
        let mut from_file = axis("journal_mode", &["wal", "delete"]);
        from_file.span = Some(0..0);
        let axes = [from_file];
        for (m, set, says) in [
            (
                "{ synchronous = \"full\" }",
                "{ \"group.w.workers\" = 2 }",
                "not a matrix axis",
            ),
            (
                "{ journal_mode = \"wal\" }",
                "{ journal_mode = \"delete\" }",
                "a matrix axis",
            ),
            (
                "{ journal_mode = \"wal\" }",
                "{ \"group.w.app_time_scale\" = 0 }",
                "0.01 to 100",
            ),
            ("{ journal_mode = \"wal\" }", "{ }", "`set` is empty"),
            ("{ }", "{ \"group.w.workers\" = 2 }", "`match` is empty"),
            (
                "{ journal_mode = \"delet\" }",
                "{ \"group.w.workers\" = 2 }",
                "which the axis does not list (wal, delete)",
            ),
        ] {
            let mut s = base();
            s.when = vec![when(m, set)];
            let mut cells = expand(&s, &axes).unwrap();
            let e = apply_when(&mut cells, &axes, &[]).unwrap_err();
            assert!(e.message.contains(says), "{m} {set}: {}", e.message);
        }
    }

    #[test]
    fn group_and_sqlite_overrides() {
        let mut s = base();
        apply(&mut s, "group.w.workers", &parse_cli_value("16")).unwrap();
        apply(&mut s, "sqlite.busy_timeout", &parse_cli_value("250ms")).unwrap();
        assert_eq!(s.group[0].workers.get(), 16);
        assert_eq!(s.sqlite.busy_timeout.0, std::time::Duration::from_millis(250));
    }

    #[test]
    fn bad_overrides_explain_themselves() {
        let mut s = base();
        assert!(
            apply(&mut s, "journal_mode", &parse_cli_value("wall"))
                .unwrap_err()
                .contains("wall")
        );
        assert!(
            apply(&mut s, "group.nope.workers", &parse_cli_value("2"))
                .unwrap_err()
                .contains("no group named `nope`")
        );
        assert!(
            apply(&mut s, "group.w.workers", &parse_cli_value("0"))
                .unwrap_err()
                .contains("nonzero")
        );
        assert!(
            apply(&mut s, "jurnal_mode", &parse_cli_value("wal"))
                .unwrap_err()
                .contains("unknown setting")
        );
        assert!(
            apply(&mut s, "page_size", &parse_cli_value("1000"))
                .unwrap_err()
                .contains("power of two")
        );
    }
}
