//! What every target's verification shares: the acknowledged writes, and row counts and
//! data checks against them.

use crate::config::Check;
use crate::report::model::{CheckKind, ScenarioCheck, TableCheck, Verification};

/// What a target without an integrity check of its own (PostgreSQL) reports in its place.
pub(crate) const NO_INTEGRITY_CHECK: &str = "not applicable (PostgreSQL)";

pub(crate) struct Acknowledged<'a> {
    pub tables: &'a [String],
    pub rows_before: &'a [u64],
    pub inserts: &'a [u64],
    pub deletes: &'a [u64],
    pub untracked: &'a [String],
    pub checks: &'a [Check],
}

/// Row counts against acknowledged writes and the scenario's data checks, on any target:
/// `count` counts a table's rows, `check` runs a `[[check]]` (`None`: not a data check);
/// `integrity` is the target's own consistency check, `ok` when it passed.
pub(crate) fn verify_with<E>(
    integrity: String,
    mut count: impl FnMut(&str) -> Result<u64, E>,
    check: impl FnMut(&Check) -> Option<ScenarioCheck>,
    ack: &Acknowledged<'_>,
) -> Result<Verification, E> {
    let mut tables = Vec::new();
    for (i, table) in ack.tables.iter().enumerate() {
        let expected = (ack.rows_before[i] + ack.inserts[i]).saturating_sub(ack.deletes[i]);
        let found = count(table)?;
        tables.push(TableCheck {
            table: table.clone(),
            rows_before: ack.rows_before[i],
            inserts_acknowledged: ack.inserts[i],
            deletes_acknowledged: ack.deletes[i],
            rows_expected: expected,
            rows_found: found,
            lost: expected.saturating_sub(found),
            unexpected: found.saturating_sub(expected),
        });
    }
    let lost: u64 = tables.iter().map(|t| t.lost).sum();
    let unexpected: u64 = tables.iter().map(|t| t.unexpected).sum();
    let scenario_checks: Vec<ScenarioCheck> = ack.checks.iter().filter_map(check).collect();
    Ok(Verification {
        ok: (integrity == "ok" || integrity == NO_INTEGRITY_CHECK)
            && lost == 0
            && unexpected == 0
            && scenario_checks.iter().all(|c| c.ok),
        scenario_checks,
        integrity_check: integrity,
        writes_acknowledged: tables
            .iter()
            .map(|t| t.inserts_acknowledged + t.deletes_acknowledged)
            .sum(),
        rows_found: tables.iter().map(|t| t.rows_found).sum(),
        lost,
        tables,
        untracked_tables: ack.untracked.to_vec(),
    })
}

/// A `[[check]]`'s result from the integer its query returned.
pub(crate) fn check_result(check: &Check, value: Result<Option<i64>, String>) -> ScenarioCheck {
    let expect = check.expect;
    let (ok, detail) = match value {
        Ok(Some(v)) => (v == expect, format!("{v} (expected {expect})")),
        Ok(None) => (false, format!("NULL (expected {expect})")),
        Err(e) => (false, format!("query failed: {e}")),
    };
    ScenarioCheck {
        name: check.name.get_ref().clone(),
        ok,
        detail,
        kind: CheckKind::Sql,
    }
}
