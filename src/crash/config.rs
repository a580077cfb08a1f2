//! The configurations a crash test covers: the built-in ledger scenario, `--set` overrides and
//! matrix axes (default journal_mode × synchronous), each checked against SQLite up front.

use crate::config::Source;
use crate::config::matrix::{self, Axis, Setting};
use crate::config::sqlite::{ReadBack, SqliteSettings};
use crate::config::validate::Plan;
use crate::error::InputError;

/// The ledger as a scenario, so matrix, `--set` and the report envelope work as for `run`.
/// Only its `[sqlite]` settings matter; the crash workload itself is fixed (see `ledger.rs`).
const LEDGER_SCENARIO: &str = r#"
name = "crash-ledger"
description = "litehammer crash: ledger transactions of 1..k rows, checked exactly after each crash"
operations = 1

[[group]]
name = "ledger"
workers = 1
transaction = "immediate"

[[group.op]]
name = "insert_row"
sql = "INSERT INTO ledger(tx, pos, n, payload, sum) VALUES (?1, ?2, ?3, ?4, ?5)"
"#;

pub(crate) const DEFAULT_JOURNAL_MODES: &str = "delete,truncate,persist,wal,memory,off";
pub(crate) const DEFAULT_SYNCHRONOUS: &str = "off,normal,full,extra";

/// Keys that describe a `run` workload; the ledger has none of them.
const WORKLOAD_KEYS: &[&str] = &["duration", "operations", "warmup", "seed"];

/// The checked configurations, and every setting as SQLite read it back for each.
pub(crate) struct Configurations {
    pub plan: Plan,
    pub read_back: Vec<ReadBack>,
}

pub(crate) fn load(set: &[Setting], matrix_args: &[(String, String)]) -> Result<Configurations, InputError> {
    let source = Source {
        origin: "built-in:crash-ledger".into(),
        text: LEDGER_SCENARIO.into(),
    };
    let mut scenario = source.parse()?;
    for setting in set {
        ledger_key(&setting.key, &setting.flag)?;
        setting.apply(&mut scenario)?;
    }
    let axes = axes(matrix_args, set)?;
    let cells = matrix::expand(&scenario, &axes)
        .map_err(|(i, message)| InputError::new(format!("--matrix {}", axes[i].key), message))?;
    let read_back = cells
        .iter()
        .map(|c| check_settings(&c.scenario.sqlite).map_err(|e| InputError::new(format!("configuration {}", c.id), e)))
        .collect::<Result<_, _>>()?;
    Ok(Configurations {
        plan: Plan {
            source,
            scenario,
            axes,
            cells,
        },
        read_back,
    })
}

fn ledger_key(key: &str, flag: &str) -> Result<(), InputError> {
    let key = matrix::canonical_key(key);
    if key.starts_with("group.") || WORKLOAD_KEYS.contains(&key.as_str()) {
        return Err(InputError::new(
            flag,
            format!(
                "`{key}` does not apply to crash tests: their ledger workload is fixed; \
                 set SQLite settings (journal_mode, synchronous, page_size, ...) or use --trials/--seed"
            ),
        ));
    }
    Ok(())
}

fn axes(matrix_args: &[(String, String)], set: &[Setting]) -> Result<Vec<Axis>, InputError> {
    for (key, list) in matrix_args {
        ledger_key(key, &format!("--matrix {key}={list}"))?;
    }
    let defaults = vec![
        axis("journal_mode", DEFAULT_JOURNAL_MODES),
        axis("synchronous", DEFAULT_SYNCHRONOUS),
    ];
    matrix::resolve_axes(defaults, matrix_args, set)
}

fn axis(key: &str, list: &str) -> Axis {
    Axis {
        key: key.to_string(),
        values: list.split(',').map(matrix::parse_cli_value).collect(),
        span: None,
        pinned_from: None,
    }
}

/// Creates a scratch database with the settings; SQLite must read every one back as asked.
fn check_settings(settings: &SqliteSettings) -> Result<ReadBack, String> {
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let mut conn = rusqlite::Connection::open(scratch.path().join("check.db")).map_err(|e| e.to_string())?;
    crate::targets::sqlite::settings::apply_to_new_database(settings, &conn).map_err(|e| e.to_string())?;
    let read_back =
        crate::targets::sqlite::settings::apply_and_check(settings, &mut conn).map_err(|e| e.to_string())?;
    super::ledger::create_schema(&conn).map_err(|e| e.to_string())?;
    Ok(read_back)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sets(items: &[(&str, &str)]) -> Vec<Setting> {
        items.iter().map(|(k, v)| Setting::from_set(k, v)).collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn default_matrix_is_journal_mode_by_synchronous() {
        let c = load(&[], &[]).unwrap();
        assert_eq!(c.plan.cells.len(), 24);
        assert_eq!(c.plan.cells[0].id, "journal_mode=delete,synchronous=off");
        assert_eq!(c.read_back.len(), 24);
    }

    #[test]
    fn matrix_and_set_override_the_defaults() {
        let c = load(
            &sets(&[("page_size", "8192")]),
            &pairs(&[("journal_mode", "wal"), ("sqlite.synchronous", "normal,full")]),
        )
        .unwrap();
        let ids: Vec<_> = c.plan.cells.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "journal_mode=wal,synchronous=normal",
                "journal_mode=wal,synchronous=full"
            ]
        );
        assert!(c.read_back.iter().all(|r| r.page_size == 8192));
    }

    #[test]
    fn workload_keys_are_refused() {
        for (k, v) in [("group.ledger.workers", "2"), ("duration", "1s")] {
            let err = load(&sets(&[(k, v)]), &[]).err().expect("refused");
            assert!(err.message.contains("does not apply"), "{err}");
        }
        let err = load(&[], &pairs(&[("operations", "1,2")])).err().expect("refused");
        assert!(err.message.contains("does not apply"), "{err}");
    }
}
