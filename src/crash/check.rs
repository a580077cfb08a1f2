//! The checker: after recovery, compares the ledger in a database with what was acknowledged.

use super::ledger::{Ledger, checksum};
pub(crate) use crate::report::model::durability::TrialCheck;
use crate::targets::sqlite::check::integrity_check;
use rusqlite::Connection;
use std::collections::BTreeMap;

/// What the committing side knows when the crash happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expected {
    /// Transactions `1..=acknowledged` were acknowledged (COMMIT returned OK and that was recorded).
    pub acknowledged: u64,
    /// The highest transaction id ever begun; rows of later ids cannot exist.
    pub attempted: u64,
}

struct RowRecord {
    pos: i64,
    n: i64,
    payload: Vec<u8>,
    sum: i64,
}

/// Checks a recovered database. Never fails: an unreadable database is a finding.
pub(crate) fn check(conn: &Connection, ledger: &Ledger, expected: Expected) -> TrialCheck {
    let mut integrity = integrity_check(conn, 5).unwrap_or_else(|e| format!("error: {e}"));
    let (rows, read_error) = read_rows(conn);
    if let Some(e) = read_error
        && integrity == "ok"
    {
        integrity = format!("error reading the ledger: {e}");
    }
    judge(&rows, ledger, expected, integrity)
}

fn judge(rows: &BTreeMap<u64, Vec<RowRecord>>, ledger: &Ledger, expected: Expected, integrity: String) -> TrialCheck {
    let mut result = TrialCheck {
        acknowledged: expected.acknowledged,
        integrity,
        ..TrialCheck::default()
    };
    let mut intact = std::collections::BTreeSet::new();
    for (&tx, records) in rows {
        if tx == 0 || tx > expected.attempted {
            result.damaged_rows += records.len() as u64;
            continue;
        }
        let n = ledger.rows_in(tx) as i64;
        let mut good_positions = std::collections::BTreeSet::new();
        for r in records {
            if row_is_right(ledger, tx, n, r) {
                good_positions.insert(r.pos);
            } else {
                result.damaged_rows += 1;
            }
        }
        if good_positions.len() as i64 == n {
            intact.insert(tx);
        } else if !good_positions.is_empty() {
            result.partial += 1;
        }
    }
    result.lost = (1..=expected.acknowledged).filter(|tx| !intact.contains(tx)).count() as u64;
    if let Some(&latest) = rows.keys().filter(|&&tx| tx <= expected.attempted).max() {
        result.order_gaps = (1..latest).filter(|tx| !rows.contains_key(tx)).count() as u64;
    }
    result
}

fn row_is_right(ledger: &Ledger, tx: u64, n: i64, r: &RowRecord) -> bool {
    r.n == n
        && (0..n).contains(&r.pos)
        && r.sum == checksum(&r.payload)
        && r.payload == ledger.payload(tx, r.pos as u32)
}

/// Every ledger row by transaction, and the error that stopped reading, if any. A missing
/// ledger table reads as empty (the database file itself did not survive).
fn read_rows(conn: &Connection) -> (BTreeMap<u64, Vec<RowRecord>>, Option<rusqlite::Error>) {
    let mut rows: BTreeMap<u64, Vec<RowRecord>> = BTreeMap::new();
    let mut stmt = match conn.prepare("SELECT tx, pos, n, payload, sum FROM ledger") {
        Ok(stmt) => stmt,
        Err(e) if e.to_string().contains("no such table") => return (rows, None),
        Err(e) => return (rows, Some(e)),
    };
    let mut cursor = match stmt.query([]) {
        Ok(c) => c,
        Err(e) => return (rows, Some(e)),
    };
    loop {
        match cursor.next() {
            Ok(Some(row)) => match record(row) {
                Ok((tx, r)) => rows.entry(tx).or_default().push(r),
                Err(e) => return (rows, Some(e)),
            },
            Ok(None) => return (rows, None),
            Err(e) => return (rows, Some(e)),
        }
    }
}

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, RowRecord)> {
    let tx: i64 = row.get(0)?;
    let payload = match row.get_ref(3)? {
        rusqlite::types::ValueRef::Blob(b) => b.to_vec(),
        other => other.as_bytes().map(<[u8]>::to_vec).unwrap_or_default(),
    };
    Ok((
        tx.max(0) as u64,
        RowRecord {
            pos: row.get(1)?,
            n: row.get(2)?,
            payload,
            sum: row.get(4).unwrap_or(0),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::ledger;

    /// A database with transactions 1..=6 committed.
    fn ledger_db(ledger: &Ledger) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        ledger::create_schema(&conn).unwrap();
        for tx in 1..=6 {
            ledger::commit(&conn, ledger, tx).unwrap();
        }
        conn
    }

    fn multi_row_tx(ledger: &Ledger) -> u64 {
        (2..=5)
            .find(|&tx| ledger.rows_in(tx) >= 2)
            .expect("a transaction with 2+ rows")
    }

    const ALL_ACKED: Expected = Expected {
        acknowledged: 6,
        attempted: 6,
    };

    #[test]
    fn intact_ledger_is_clean() {
        let ledger = Ledger::new(3, 4);
        let conn = ledger_db(&ledger);
        let result = check(&conn, &ledger, ALL_ACKED);
        assert!(result.clean(), "{result:?}");
        assert_eq!(result.acknowledged, 6);
    }

    #[test]
    fn detects_a_lost_transaction_and_the_gap_it_leaves() {
        let ledger = Ledger::new(3, 4);
        let conn = ledger_db(&ledger);
        conn.execute("DELETE FROM ledger WHERE tx = 4", []).unwrap();
        let result = check(&conn, &ledger, ALL_ACKED);
        assert_eq!(
            (result.lost, result.order_gaps, result.partial),
            (1, 1, 0),
            "{result:?}"
        );
        assert!(result.integrity_ok() && result.silent_damage());
    }

    #[test]
    fn losing_the_latest_transactions_is_loss_without_gaps() {
        let ledger = Ledger::new(3, 4);
        let conn = ledger_db(&ledger);
        conn.execute("DELETE FROM ledger WHERE tx >= 5", []).unwrap();
        let result = check(&conn, &ledger, ALL_ACKED);
        assert_eq!((result.lost, result.order_gaps), (2, 0), "{result:?}");
        assert!(!result.silent_damage());
    }

    #[test]
    fn detects_a_partly_present_transaction() {
        let ledger = Ledger::new(3, 4);
        let conn = ledger_db(&ledger);
        let tx = multi_row_tx(&ledger);
        conn.execute("DELETE FROM ledger WHERE tx = ?1 AND pos = 1", [tx as i64])
            .unwrap();
        let result = check(&conn, &ledger, ALL_ACKED);
        assert_eq!(
            (result.lost, result.partial, result.damaged_rows),
            (1, 1, 0),
            "{result:?}"
        );
    }

    #[test]
    fn detects_damaged_bytes_and_foreign_rows() {
        let ledger = Ledger::new(3, 4);
        let conn = ledger_db(&ledger);
        conn.execute(
            "UPDATE ledger SET payload = zeroblob(length(payload)) WHERE tx = 2 AND pos = 0",
            [],
        )
        .unwrap();
        conn.execute("INSERT INTO ledger VALUES (99, 0, 1, x'00', 0)", [])
            .unwrap();
        let result = check(&conn, &ledger, ALL_ACKED);
        assert_eq!(result.damaged_rows, 2, "{result:?}");
        assert_eq!(result.lost, 1, "{result:?}");
        assert!(result.integrity_ok());
    }

    #[test]
    fn unacknowledged_transaction_fully_present_is_allowed_but_not_partly() {
        let ledger = Ledger::new(3, 4);
        let conn = ledger_db(&ledger);
        let in_flight = Expected {
            acknowledged: 5,
            attempted: 6,
        };
        assert!(check(&conn, &ledger, in_flight).clean());
        let tx = 6;
        conn.execute("DELETE FROM ledger WHERE tx = ?1 AND pos = 0", [tx])
            .unwrap();
        let result = check(&conn, &ledger, in_flight);
        assert_eq!((result.lost, result.partial), (0, u64::from(ledger.rows_in(6) > 1)));
    }

    #[test]
    fn bytes_flipped_in_the_file_are_silent_damage_integrity_check_misses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let ledger = Ledger::new(3, 4);
        drop(ledger_db_at(&path, &ledger));
        let mut bytes = std::fs::read(&path).unwrap();
        let payload = ledger.payload(2, 0);
        // Page splits leave dead copies of cells behind: damage every copy.
        let copies: Vec<usize> = (0..bytes.len() - 32)
            .filter(|&i| bytes[i..i + 32] == payload[..32])
            .collect();
        assert!(!copies.is_empty(), "payload stored inline");
        for at in copies {
            bytes[at + 10] ^= 0xff;
        }
        std::fs::write(&path, bytes).unwrap();
        let conn = Connection::open(&path).unwrap();
        let result = check(&conn, &ledger, ALL_ACKED);
        assert!(
            result.integrity_ok(),
            "integrity_check does not read payloads: {result:?}"
        );
        assert_eq!((result.damaged_rows, result.lost), (1, 1), "{result:?}");
    }

    fn ledger_db_at(path: &std::path::Path, ledger: &Ledger) -> Connection {
        let conn = Connection::open(path).unwrap();
        ledger::create_schema(&conn).unwrap();
        for tx in 1..=6 {
            ledger::commit(&conn, ledger, tx).unwrap();
        }
        conn
    }

    #[test]
    fn missing_table_is_total_loss_not_an_error() {
        let ledger = Ledger::new(3, 4);
        let conn = Connection::open_in_memory().unwrap();
        let result = check(&conn, &ledger, ALL_ACKED);
        assert_eq!(result.lost, 6);
        assert!(result.integrity_ok());
    }
}
