//! The crash workload: a ledger of transactions whose every byte can be recomputed from the seed.
//!
//! Transaction `tx` (1, 2, 3, ...) writes `rows_in(tx)` rows; row `pos` carries the transaction id,
//! its position, the transaction's row count, a payload of 100 B – 3 KB and the payload's checksum.
//! One writer commits the transactions in order, so the acknowledged ones are always `1..=A`.

use crate::workload::rng::Rng;
use rusqlite::{Connection, params};

pub(crate) const SCHEMA_SQL: &str = "CREATE TABLE ledger(\
    tx INTEGER NOT NULL, pos INTEGER NOT NULL, n INTEGER NOT NULL, \
    payload BLOB NOT NULL, sum INTEGER NOT NULL, PRIMARY KEY (tx, pos))";

const INSERT_SQL: &str = "INSERT INTO ledger(tx, pos, n, payload, sum) VALUES (?1, ?2, ?3, ?4, ?5)";

pub(crate) const MIN_PAYLOAD: u64 = 100;
pub(crate) const MAX_PAYLOAD: u64 = 3000;

/// What the ledger of one trial contains, as a function of the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ledger {
    pub seed: u64,
    /// Rows per transaction are uniform in `1..=max_rows`.
    pub max_rows: u32,
}

impl Ledger {
    pub(crate) fn new(seed: u64, max_rows: u32) -> Self {
        Self {
            seed,
            max_rows: max_rows.max(1),
        }
    }

    /// The row count of transaction `tx`.
    pub(crate) fn rows_in(&self, tx: u64) -> u32 {
        1 + Rng::derive(self.seed, tx).below(self.max_rows as u64) as u32
    }

    /// The payload of row `pos` of transaction `tx`: random bytes of random length.
    pub(crate) fn payload(&self, tx: u64, pos: u32) -> Vec<u8> {
        let mut rng = Rng::derive(self.seed ^ 0x5EED_1ED6_E700_0000, (tx << 16) | pos as u64);
        let len = (MIN_PAYLOAD + rng.below(MAX_PAYLOAD - MIN_PAYLOAD + 1)) as usize;
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        bytes.truncate(len);
        bytes
    }
}

/// FNV-1a over the payload, stored beside it so damaged bytes show without the seed.
pub(crate) fn checksum(payload: &[u8]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in payload {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

pub(crate) fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA_SQL)
}

/// Writes transaction `tx` in one IMMEDIATE transaction. `Ok` means COMMIT returned OK.
pub(crate) fn commit(conn: &Connection, ledger: &Ledger, tx: u64) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = insert_rows(conn, ledger, tx).and_then(|()| conn.execute_batch("COMMIT"));
    if result.is_err() && !conn.is_autocommit() {
        // Best effort: after a crash of the disk this fails too, which is what a crash looks like.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn insert_rows(conn: &Connection, ledger: &Ledger, tx: u64) -> rusqlite::Result<()> {
    let n = ledger.rows_in(tx);
    let mut stmt = conn.prepare_cached(INSERT_SQL)?;
    for pos in 0..n {
        let payload = ledger.payload(tx, pos);
        stmt.execute(params![tx as i64, pos, n, &payload, checksum(&payload)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_is_a_function_of_the_seed() {
        let a = Ledger::new(7, 4);
        let b = Ledger::new(8, 4);
        assert_eq!(a.payload(3, 1), a.payload(3, 1));
        assert_ne!(a.payload(3, 1), b.payload(3, 1));
        assert_ne!(a.payload(3, 1), a.payload(3, 2));
        for tx in 1..200 {
            assert!((1..=4).contains(&a.rows_in(tx)));
            let len = a.payload(tx, 0).len() as u64;
            assert!((MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len));
        }
        assert!((1..200).any(|tx| a.rows_in(tx) == 4) && (1..200).any(|tx| a.rows_in(tx) == 1));
    }

    #[test]
    fn commit_writes_all_rows_of_a_transaction() {
        let conn = Connection::open_in_memory().unwrap();
        create_schema(&conn).unwrap();
        let ledger = Ledger::new(1, 3);
        for tx in 1..=5 {
            commit(&conn, &ledger, tx).unwrap();
        }
        let rows: i64 = conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, (1..=5).map(|tx| ledger.rows_in(tx) as i64).sum::<i64>());
    }
}
