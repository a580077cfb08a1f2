//! The simulated disk behind the power-loss VFS, in safe Rust.
//!
//! Every file (inode) has the image the process sees, a durable image, and the ordered list of
//! writes and truncates not yet synced; `sync` moves that list into the durable image, so its
//! cost is the size of the changes, not of the file. The directory works the same way: names
//! the process sees, durable names, and pending links/unlinks made durable by a directory sync.
//! Power is cut at a numbered disk event (write, truncate, sync, delete); from then on every
//! operation fails.

use std::collections::{BTreeMap, HashMap};

/// Files are stored in chunks of this size; a missing chunk reads as zeros.
pub(crate) const CHUNK: u64 = 4096;

/// The bytes of one file, sparse by chunk.
#[derive(Clone, Debug, Default)]
pub(crate) struct Image {
    pub len: u64,
    chunks: HashMap<u64, Box<[u8]>>,
}

impl Image {
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let at = offset + done as u64;
            let within = (at % CHUNK) as usize;
            let n = (CHUNK as usize - within).min(data.len() - done);
            let chunk = self
                .chunks
                .entry(at / CHUNK)
                .or_insert_with(|| vec![0; CHUNK as usize].into_boxed_slice());
            chunk[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        self.len = self.len.max(offset + data.len() as u64);
    }

    /// Fills `buf` from `offset`; bytes past the end read as zeros. Returns the bytes that existed.
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        let mut done = 0usize;
        while done < buf.len() {
            let at = offset + done as u64;
            let within = (at % CHUNK) as usize;
            let n = (CHUNK as usize - within).min(buf.len() - done);
            match self.chunks.get(&(at / CHUNK)) {
                Some(chunk) if at < self.len => buf[done..done + n].copy_from_slice(&chunk[within..within + n]),
                _ => buf[done..done + n].fill(0),
            }
            done += n;
        }
        let available = self.len.saturating_sub(offset).min(buf.len() as u64) as usize;
        buf[available..].fill(0);
        available
    }

    pub(crate) fn truncate(&mut self, len: u64) {
        if len < self.len {
            self.chunks.retain(|&index, _| index * CHUNK < len);
            if !len.is_multiple_of(CHUNK)
                && let Some(chunk) = self.chunks.get_mut(&(len / CHUNK))
            {
                chunk[(len % CHUNK) as usize..].fill(0);
            }
        }
        self.len = len;
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = vec![0; self.len as usize];
        self.read(0, &mut bytes);
        bytes
    }
}

/// A change to a file the process made but no sync has made durable yet.
#[derive(Clone, Debug)]
pub(crate) enum Pending {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

impl Pending {
    pub(crate) fn apply(&self, image: &mut Image) {
        match self {
            Pending::Write { offset, data } => image.write(*offset, data),
            Pending::Truncate { len } => image.truncate(*len),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Inode {
    pub visible: Image,
    pub durable: Image,
    pub pending: Vec<Pending>,
}

/// A directory change not yet made durable.
#[derive(Clone, Debug)]
pub(crate) enum DirOp {
    Link { name: String, inode: usize },
    Unlink { name: String },
}

impl DirOp {
    pub(crate) fn apply(&self, names: &mut BTreeMap<String, usize>) {
        match self {
            DirOp::Link { name, inode } => {
                names.insert(name.clone(), *inode);
            }
            DirOp::Unlink { name } => {
                names.remove(name);
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Disk {
    pub inodes: Vec<Inode>,
    /// The directory as the process sees it: name → inode.
    pub names: BTreeMap<String, usize>,
    pub durable_names: BTreeMap<String, usize>,
    pub dir_pending: Vec<DirOp>,
    /// Disk events so far (writes, truncates, syncs, deletes).
    pub events: u64,
    /// Power goes out at this event: it and everything after fail.
    pub cut_at: Option<u64>,
    pub power_off: bool,
    /// With `Some`, every event is described here (`--replay`).
    pub trace: Option<Vec<String>>,
    /// Wal-index (shared memory) regions per database file name. Never durable.
    pub shm: HashMap<String, Vec<Box<[u8]>>>,
}

impl Disk {
    /// Counts one event; false once power is out (the event does not happen).
    fn event(&mut self, describe: impl FnOnce() -> String) -> bool {
        if self.power_off {
            return false;
        }
        self.events += 1;
        let cut = self.cut_at == Some(self.events);
        if let Some(trace) = &mut self.trace {
            let mark = if cut { "  <-- power cut here" } else { "" };
            trace.push(format!("#{:<5} {}{mark}", self.events, describe()));
        }
        if cut {
            self.power_off = true;
        }
        !cut
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<usize> {
        self.names.get(name).copied()
    }

    /// Creates an empty file; its directory entry is pending until a directory sync.
    pub(crate) fn create(&mut self, name: &str) -> usize {
        let inode = self.inodes.len();
        self.inodes.push(Inode::default());
        self.names.insert(name.to_string(), inode);
        self.dir_pending.push(DirOp::Link {
            name: name.to_string(),
            inode,
        });
        inode
    }

    pub(crate) fn write(&mut self, inode: usize, name: &str, offset: u64, data: &[u8]) -> bool {
        if !self.event(|| format!("write    {name} offset {offset} length {}", data.len())) {
            return false;
        }
        let file = &mut self.inodes[inode];
        file.visible.write(offset, data);
        file.pending.push(Pending::Write {
            offset,
            data: data.to_vec(),
        });
        true
    }

    pub(crate) fn truncate(&mut self, inode: usize, name: &str, len: u64) -> bool {
        if !self.event(|| format!("truncate {name} to {len}")) {
            return false;
        }
        let file = &mut self.inodes[inode];
        file.visible.truncate(len);
        file.pending.push(Pending::Truncate { len });
        true
    }

    /// fsync: the file's pending changes become durable, and with `dir` the directory's too.
    pub(crate) fn sync(&mut self, inode: usize, name: &str, dir: bool) -> bool {
        let what = if dir { " and directory" } else { "" };
        if !self.event(|| format!("sync     {name}{what}")) {
            return false;
        }
        let file = &mut self.inodes[inode];
        for change in file.pending.drain(..) {
            change.apply(&mut file.durable);
        }
        if dir {
            self.sync_dir();
        }
        true
    }

    pub(crate) fn delete(&mut self, name: &str, sync_dir: bool) -> Option<bool> {
        self.lookup(name)?;
        let what = if sync_dir { " and sync directory" } else { "" };
        if !self.event(|| format!("delete   {name}{what}")) {
            return Some(false);
        }
        self.names.remove(name);
        self.dir_pending.push(DirOp::Unlink { name: name.to_string() });
        if sync_dir {
            self.sync_dir();
        }
        Some(true)
    }

    fn sync_dir(&mut self) {
        for op in self.dir_pending.drain(..) {
            op.apply(&mut self.durable_names);
        }
    }

    /// Everything becomes durable, as after a clean shutdown; the wal-index is dropped.
    pub(crate) fn settle(&mut self) {
        for file in &mut self.inodes {
            file.pending.clear();
            file.durable = file.visible.clone();
        }
        self.dir_pending.clear();
        self.durable_names = self.names.clone();
        self.shm.clear();
    }

    /// A settled disk holding exactly these files.
    pub(crate) fn from_files(files: BTreeMap<String, Image>) -> Self {
        let mut disk = Disk::default();
        for (name, image) in files {
            let inode = disk.create(&name);
            disk.inodes[inode].visible = image;
        }
        disk.settle();
        disk
    }

    /// The visible files by name (what `from_files` takes).
    pub(crate) fn files(&self) -> BTreeMap<String, Image> {
        self.names
            .iter()
            .map(|(name, &inode)| (name.clone(), self.inodes[inode].visible.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_reads_writes_and_truncates_across_chunks() {
        let mut img = Image::default();
        img.write(4000, &[7u8; 200]);
        assert_eq!(img.len, 4200);
        let mut buf = [1u8; 300];
        assert_eq!(img.read(3950, &mut buf), 250);
        assert_eq!(&buf[..50], &[0u8; 50][..]);
        assert_eq!(&buf[50..250], &[7u8; 200][..]);
        assert_eq!(&buf[250..], &[0u8; 50][..]);
        img.truncate(4100);
        img.truncate(5000);
        let mut tail = [1u8; 10];
        img.read(4100, &mut tail);
        assert_eq!(
            tail, [0u8; 10],
            "bytes past a truncate read as zeros after growing again"
        );
        assert_eq!(img.to_bytes().len(), 5000);
    }

    #[test]
    fn only_synced_changes_and_directory_syncs_are_durable() {
        let mut disk = Disk::default();
        let db = disk.create("db");
        assert!(disk.write(db, "db", 0, b"hello"));
        assert!(disk.sync(db, "db", false));
        assert!(disk.write(db, "db", 0, b"HELLO"));
        assert_eq!(disk.inodes[db].durable.to_bytes(), b"hello");
        assert_eq!(disk.inodes[db].visible.to_bytes(), b"HELLO");
        assert!(disk.durable_names.is_empty(), "no directory sync yet");
        let j = disk.create("db-journal");
        assert!(disk.sync(j, "db-journal", true));
        assert_eq!(
            disk.durable_names.len(),
            2,
            "a directory sync makes every entry durable"
        );
        assert_eq!(disk.delete("db-journal", false), Some(true));
        assert!(disk.durable_names.contains_key("db-journal"));
        assert_eq!(disk.events, 5);
    }

    #[test]
    fn power_cut_fails_the_event_and_everything_after() {
        let mut disk = Disk {
            cut_at: Some(2),
            trace: Some(Vec::new()),
            ..Disk::default()
        };
        let db = disk.create("db");
        assert!(disk.write(db, "db", 0, b"a"));
        assert!(!disk.write(db, "db", 1, b"b"));
        assert!(!disk.sync(db, "db", false));
        assert_eq!(disk.inodes[db].visible.to_bytes(), b"a");
        let trace = disk.trace.unwrap();
        assert_eq!(trace.len(), 2);
        assert!(trace[1].contains("power cut"), "{trace:?}");
    }
}
