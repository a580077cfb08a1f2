//! Reads a database's file sizes and WAL checkpoint state from outside SQLite, for the
//! timeline: WAL size, frames written (`mxFrame`), frames checkpointed (`nBackfill`, both
//! from the wal-index in the -shm file) and the WAL header's checkpoint sequence number,
//! which increases each time a checkpoint lets the WAL restart from the beginning.
//!
//! The -shm is opened once and never closed while the run's connections may hold locks on
//! it: closing any descriptor of a file releases every POSIX (fcntl) lock the process holds
//! on that file, and SQLite's WAL locks (the write lock, the read marks) are such locks on
//! the -shm. A sampler that opened and closed the -shm every 100 ms silently dropped the
//! workers' locks, so another process (Litestream's checkpoints and its writes to
//! `_litestream_seq`) could write or checkpoint in the middle of a worker's transaction:
//! committed rows were lost and readers saw "database disk image is malformed".
//! SQLite takes no locks on the -wal or the database file through this path, so those are
//! read (or stat'ed) afresh each time.

pub(crate) use crate::metrics::timeline::FileState;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// A database's files, sampled from outside SQLite. Keep it alive until every SQLite
/// connection of this process to the database is closed: dropping it closes the -shm
/// descriptors it holds (see the module's documentation).
pub(crate) struct DbFiles {
    db: PathBuf,
    wal: PathBuf,
    shm: PathBuf,
    /// The -shm, opened at the first sample that finds it, read with `pread`.
    shm_file: Option<File>,
    /// Earlier -shm files (one deleted and created again): kept open, never closed early.
    retired: Vec<File>,
}

/// The -wal header's magic number, its lowest bit (the checksums' byte order) cleared.
pub(crate) const WAL_MAGIC: u32 = 0x377f_0682;

/// The big-endian u32 at `o` (the -wal's header and frame headers).
pub(crate) fn be_u32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// The native-endian u32 at `o` (the wal-index in the -shm).
pub(crate) fn ne_u32(b: &[u8], o: usize) -> u32 {
    u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
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
            shm_file: None,
            retired: Vec::new(),
        }
    }

    pub(crate) fn sample(&mut self) -> FileState {
        let mut state = FileState {
            db_bytes: file_len(&self.db),
            wal_bytes: file_len(&self.wal),
            ..FileState::default()
        };
        if let Some(header) = read_prefix::<16>(&self.wal)
            && be_u32(&header, 0) & !1 == WAL_MAGIC
        {
            state.checkpoint_seq = Some(be_u32(&header, 12));
        }
        // wal-index: WalIndexHdr (48 bytes) twice, then WalCkptInfo; native byte order.
        if let Some(shm) = self.read_shm::<100>() {
            state.wal_frames = ne_u32(&shm, 16);
            state.checkpointed_frames = ne_u32(&shm, 96);
        }
        state
    }
}

impl DbFiles {
    /// The first `N` bytes of the -shm, through the descriptor kept open (opened, or
    /// reopened when the path now names another file, without closing the old one).
    fn read_shm<const N: usize>(&mut self) -> Option<[u8; N]> {
        let current = std::fs::metadata(&self.shm).ok()?;
        let same = |f: &File| {
            f.metadata()
                .is_ok_and(|m| m.ino() == current.ino() && m.dev() == current.dev())
        };
        if !self.shm_file.as_ref().is_some_and(same) {
            let opened = File::open(&self.shm).ok()?;
            if let Some(old) = self.shm_file.replace(opened) {
                self.retired.push(old);
            }
        }
        let mut buf = [0u8; N];
        self.shm_file.as_ref()?.read_exact_at(&mut buf, 0).ok()?;
        Some(buf)
    }
}

/// Only for files SQLite does not lock (the -wal): opening and closing them drops nothing.
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
        let mut files = DbFiles::new(&path);
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

    /// The POSIX locks `pid` holds on the file `meta` describes, from /proc/locks: (kind,
    /// first byte, last byte). The file is matched by device and inode (`MAJ:MIN:INODE`,
    /// the device in hex): an inode number alone can be another file system's file, locked
    /// by another test of this process.
    #[cfg(target_os = "linux")]
    fn posix_locks(pid: u32, meta: &std::fs::Metadata) -> Vec<(String, String, String)> {
        let dev = meta.dev();
        let key = format!("{:02x}:{:02x}:{}", libc::major(dev), libc::minor(dev), meta.ino());
        // One read(2) into a large buffer: /proc/locks is generated record by record, and read
        // in several calls while other tests of this process take and release locks it can
        // repeat or skip records (seen: a lock listed twice, another missing). Two reads that
        // agree are taken as the table.
        let read = || {
            use std::io::Read;
            let mut buf = vec![0u8; 1 << 22];
            let n = std::fs::File::open("/proc/locks").unwrap().read(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        };
        let mut table = read();
        for _ in 0..20 {
            let again = read();
            if again == table {
                break;
            }
            table = again;
        }
        let mut locks: Vec<_> = table
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                (f.get(1) == Some(&"POSIX")
                    && f.get(4) == Some(&pid.to_string().as_str())
                    && f.get(5) == Some(&key.as_str()))
                .then(|| (f[3].to_string(), f[6].to_string(), f[7].to_string()))
            })
            .collect();
        locks.sort();
        locks
    }

    /// Regression (issue 32's lost row): sampling opened and closed the -shm, which drops
    /// every POSIX lock the process holds on it, SQLite's WAL write lock included; another
    /// process (Litestream) could then write in the middle of a worker's transaction.
    #[cfg(target_os = "linux")]
    #[test]
    fn sampling_keeps_the_locks_a_transaction_holds_on_the_shm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode=wal; CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
            .unwrap();
        let shm = std::fs::metadata(sidecar(&path, "-shm")).unwrap();
        let held = || posix_locks(std::process::id(), &shm);
        let before = held();
        // The WAL write lock: byte 120 of the -shm (os_unix.c's UNIX_SHM_BASE), exclusive.
        assert!(
            before.contains(&("WRITE".into(), "120".into(), "120".into())),
            "{before:?}"
        );
        let mut files = DbFiles::new(&path);
        for _ in 0..3 {
            let state = files.sample();
            assert!(state.wal_frames > 0, "{state:?}");
            assert_eq!(held(), before, "a sample dropped the transaction's locks");
        }
        conn.execute_batch("COMMIT").unwrap();
        drop(files);
    }
}
