//! Reads a database's file sizes and WAL checkpoint state from outside SQLite, for the
//! timeline: WAL size, frames written (`mxFrame`), frames checkpointed (`nBackfill`, both
//! from the wal-index in the -shm file) and the WAL header's checkpoint sequence number,
//! which increases each time a checkpoint lets the WAL restart from the beginning.

pub(crate) use crate::metrics::timeline::FileState;
use std::io::Read;
use std::path::{Path, PathBuf};

pub(crate) struct DbFiles {
    db: PathBuf,
    wal: PathBuf,
    shm: PathBuf,
}

pub(crate) fn sidecar(db_path: &Path, suffix: &str) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

impl DbFiles {
    pub(crate) fn new(db_path: &Path) -> Self {
        Self {
            db: db_path.to_path_buf(),
            wal: sidecar(db_path, "-wal"),
            shm: sidecar(db_path, "-shm"),
        }
    }

    pub(crate) fn sample(&self) -> FileState {
        let mut state = FileState {
            db_bytes: file_len(&self.db),
            wal_bytes: file_len(&self.wal),
            ..FileState::default()
        };
        if let Some(header) = read_prefix::<16>(&self.wal) {
            let magic = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            if magic & !1 == 0x377f_0682 {
                state.checkpoint_seq = Some(u32::from_be_bytes([header[12], header[13], header[14], header[15]]));
            }
        }
        // wal-index: WalIndexHdr (48 bytes) twice, then WalCkptInfo; native byte order.
        if let Some(shm) = read_prefix::<100>(&self.shm) {
            let at = |o: usize| u32::from_ne_bytes([shm[o], shm[o + 1], shm[o + 2], shm[o + 3]]);
            state.wal_frames = at(16);
            state.checkpointed_frames = at(96);
        }
        state
    }
}

fn read_prefix<const N: usize>(path: &Path) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    std::fs::File::open(path).ok()?.read_exact(&mut buf).ok()?;
    Some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_frames_and_checkpoints_of_a_wal_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=wal; PRAGMA wal_autocheckpoint=0; CREATE TABLE t(x);")
            .unwrap();
        for i in 0..20 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        let files = DbFiles::new(&path);
        let before = files.sample();
        assert!(before.wal_frames >= 20, "{before:?}");
        assert_eq!(before.checkpointed_frames, 0);
        conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);").unwrap();
        let after = files.sample();
        assert_eq!(after.checkpointed_frames, after.wal_frames, "{after:?}");
        conn.execute_batch("PRAGMA wal_checkpoint(RESTART); INSERT INTO t VALUES (1);")
            .unwrap();
        let restarted = files.sample();
        assert!(
            restarted.checkpoint_seq.unwrap() > before.checkpoint_seq.unwrap(),
            "{before:?} -> {restarted:?}"
        );
    }
}
