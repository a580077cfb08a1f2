//! After `run --kill`: what the killed writer left in the WAL past SQLite's WAL index.
//!
//! A commit becomes visible when the writer publishes it in the wal-index header (`mxFrame`
//! in the -shm), after writing its frames to the -wal. A writer SIGKILLed between the two
//! leaves a whole transaction, commit frame and valid checksums included, past `mxFrame`:
//! SQLite never made it visible, and while another connection keeps the database open
//! (Litestream's does) no recovery reads it back; the next writer overwrites it, a
//! checkpoint copies only up to `mxFrame` ("the previous writer must have exited unexpectedly
//! in the middle of a transaction", SQLite's `walIndexAppend`). Litestream 0.5 reads the
//! -wal to its end and replicates such a transaction (its `WALReader` "does not enforce
//! transaction boundaries"), so its replica holds a commit the database does not, and the
//! LTX files after it apply on pages the database never had (docs/backup.md).
//!
//! The -shm is read once and its descriptor closed: only call this when no connection of
//! this process has the database open (closing a descriptor drops the process's POSIX locks
//! on the file; see `machine::walstat`).

use crate::machine::walstat::{WAL_MAGIC, be_u32 as be, ne_u32, sidecar};
use std::os::unix::fs::FileExt;
use std::path::Path;

const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// Frames with valid salts and checksums after the wal-index's last frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PastIndex {
    /// `mxFrame`: the frames SQLite made visible.
    pub index_frames: u32,
    /// Valid frames after them.
    pub frames: u32,
    /// Commit frames among them: transactions SQLite never made visible.
    pub commits: u32,
}

/// What the killed writer left past the wal-index of `db`; `None` when it cannot tell (no
/// WAL, no valid index, the index belongs to another WAL generation, or it changed while
/// being read).
pub(crate) fn past_index(db: &Path) -> Option<PastIndex> {
    let shm = std::fs::File::open(sidecar(db, "-shm")).ok()?;
    let wal = std::fs::File::open(sidecar(db, "-wal")).ok()?;
    let mut before = [0u8; 96];
    shm.read_exact_at(&mut before, 0).ok()?;
    let mut header = [0u8; WAL_HEADER];
    wal.read_exact_at(&mut header, 0).ok()?;
    let page_size = be(&header, 8) as usize;
    let index = IndexHeader::parse(&before)?;
    if be(&header, 0) & !1 != WAL_MAGIC || header[16..24] != index.salt || page_size != index.page_size {
        return None;
    }
    let frame_len = FRAME_HEADER + page_size;
    let big_endian = be(&header, 0) & 1 == 1;
    let mut cksum = if index.max_frame == 0 {
        (be(&header, 24), be(&header, 28))
    } else {
        index.frame_cksum
    };
    let mut frame = vec![0u8; frame_len];
    let mut past = PastIndex {
        index_frames: index.max_frame,
        frames: 0,
        commits: 0,
    };
    let mut offset = (WAL_HEADER + index.max_frame as usize * frame_len) as u64;
    while wal.read_exact_at(&mut frame, offset).is_ok() {
        if frame[8..16] != header[16..24] {
            break;
        }
        let next = checksum(
            checksum(cksum, &frame[..8], big_endian),
            &frame[FRAME_HEADER..],
            big_endian,
        );
        if next != (be(&frame, 16), be(&frame, 20)) {
            break;
        }
        cksum = next;
        past.frames += 1;
        if be(&frame, 4) != 0 {
            past.commits += 1;
        }
        offset += frame_len as u64;
    }
    let mut after = [0u8; 96];
    shm.read_exact_at(&mut after, 0).ok()?;
    (after == before).then_some(past)
}

/// The wal-index header (`WalIndexHdr`, native byte order), when its two copies agree.
struct IndexHeader {
    max_frame: u32,
    page_size: usize,
    frame_cksum: (u32, u32),
    /// The WAL header's salts, as bytes.
    salt: [u8; 8],
}

impl IndexHeader {
    fn parse(shm: &[u8; 96]) -> Option<Self> {
        let (first, second) = shm.split_at(48);
        if first != second || first[12] == 0 {
            return None;
        }
        let ne = |o: usize| ne_u32(first, o);
        let page_size = match u16::from_ne_bytes([first[14], first[15]]) {
            1 => 65536,
            n => n as usize,
        };
        Some(IndexHeader {
            max_frame: ne(16),
            page_size,
            frame_cksum: (ne(24), ne(28)),
            salt: first[32..40].try_into().ok()?,
        })
    }
}

/// SQLite's WAL checksum (`walChecksumBytes`) over `data`, continuing from `(s1, s2)`.
fn checksum((mut s1, mut s2): (u32, u32), data: &[u8], big_endian: bool) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let word = |o: usize| {
            let b = [pair[o], pair[o + 1], pair[o + 2], pair[o + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        s1 = s1.wrapping_add(word(0)).wrapping_add(s2);
        s2 = s2.wrapping_add(word(4)).wrapping_add(s1);
    }
    (s1, s2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// Writes `header` (the wal-index header's two copies) over the -shm's first bytes.
    fn put_index_header(shm: &Path, header: &[u8]) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(shm)
            .unwrap()
            .write_all_at(header, 0)
            .unwrap();
    }

    fn wal_db(dir: &Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=wal; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);",
        )
        .unwrap();
        for _ in 0..20 {
            conn.execute("INSERT INTO t(v) VALUES (randomblob(3000))", []).unwrap();
        }
        (path, conn)
    }

    #[test]
    fn a_database_whose_writers_finished_has_nothing_past_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let (path, conn) = wal_db(dir.path());
        let past = past_index(&path).unwrap();
        assert!(past.index_frames >= 20, "{past:?}");
        assert_eq!((past.frames, past.commits), (0, 0));
        drop(conn);
    }

    /// The state a writer SIGKILLed after writing its commit's frames and before publishing
    /// them leaves: the commit is in the -wal, the wal-index header is as before it.
    #[test]
    fn a_commit_written_but_never_published_is_found_past_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let (path, keeper) = wal_db(dir.path());
        let shm = sidecar(&path, "-shm");
        let before = std::fs::read(&shm).unwrap()[..96].to_vec();
        let writer = Connection::open(&path).unwrap();
        writer
            .execute("INSERT INTO t(v) VALUES (randomblob(20000))", [])
            .unwrap();
        drop(writer);
        let published = past_index(&path).unwrap();
        assert_eq!(published.commits, 0, "{published:?}");
        put_index_header(&shm, &before);
        let past = past_index(&path).unwrap();
        assert_eq!(past.commits, 1, "{past:?}");
        assert_eq!(past.index_frames + past.frames, published.index_frames, "{past:?}");
        let visible: i64 = keeper.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(visible, 20, "SQLite does not see the unpublished commit");
    }

    #[test]
    fn no_wal_or_a_stale_index_cannot_tell() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(past_index(&dir.path().join("none.db")), None);
        let (path, _conn) = wal_db(dir.path());
        let shm = sidecar(&path, "-shm");
        let mut header = std::fs::read(&shm).unwrap()[..96].to_vec();
        header[48] ^= 1;
        put_index_header(&shm, &header);
        assert_eq!(past_index(&path), None);
    }
}
