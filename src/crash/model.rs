//! Crash models: what the disk holds after power comes back, built from the disk at the cut.
//!
//! - `durable`: exactly what was synced (file data after xSync, directory entries after a
//!   directory sync). The optimistic model: a disk that honours fsync and loses the rest.
//! - `reorder`: as durable, plus any subset of the unsynced sector writes, truncates and
//!   directory changes, landed in any order (sectors of 512 or 4096 bytes, chosen per trial).
//! - `torn`: as reorder, and some unsynced sectors that did not land hold garbage.

use super::disk::{DirOp, Disk, Image, Pending};
use crate::workload::rng::Rng;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Model {
    /// Only synced data and directory entries survive
    Durable,
    /// Plus any subset of unsynced sector writes, truncates and directory changes, in any order
    Reorder,
    /// As reorder, and some unwritten sectors hold garbage
    Torn,
}

impl Model {
    pub(crate) const ALL: [Model; 3] = [Model::Durable, Model::Reorder, Model::Torn];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Model::Durable => "durable",
            Model::Reorder => "reorder",
            Model::Torn => "torn",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Distinguishes the random streams of the models.
    pub(crate) fn stream(self) -> u64 {
        match self {
            Model::Durable => 0xD0,
            Model::Reorder => 0xE0,
            Model::Torn => 0xF0,
        }
    }
}

/// The rebooted disk (settled), and the sector size used (reorder and torn).
pub(crate) fn reboot(disk: &Disk, model: Model, rng: &mut Rng) -> (Disk, Option<u32>) {
    match model {
        Model::Durable => (durable(disk), None),
        Model::Reorder => reorder(disk, rng, false),
        Model::Torn => reorder(disk, rng, true),
    }
}

fn durable(disk: &Disk) -> Disk {
    let files = disk
        .durable_names
        .iter()
        .map(|(name, &inode)| (name.clone(), disk.inodes[inode].durable.clone()))
        .collect();
    Disk::from_files(files)
}

/// One unsynced change that may or may not land.
enum Unit {
    Sector { inode: usize, offset: u64, data: Vec<u8> },
    Truncate { inode: usize, len: u64 },
    Dir(DirOp),
}

fn units(disk: &Disk, sector: u64) -> Vec<Unit> {
    let mut units = Vec::new();
    for (inode, file) in disk.inodes.iter().enumerate() {
        for change in &file.pending {
            match change {
                Pending::Truncate { len } => units.push(Unit::Truncate { inode, len: *len }),
                Pending::Write { offset, data } => split_sectors(inode, *offset, data, sector, &mut units),
            }
        }
    }
    units.extend(disk.dir_pending.iter().cloned().map(Unit::Dir));
    units
}

fn split_sectors(inode: usize, offset: u64, data: &[u8], sector: u64, units: &mut Vec<Unit>) {
    let mut done = 0usize;
    while done < data.len() {
        let at = offset + done as u64;
        let n = ((sector - at % sector) as usize).min(data.len() - done);
        units.push(Unit::Sector {
            inode,
            offset: at,
            data: data[done..done + n].to_vec(),
        });
        done += n;
    }
}

fn reorder(disk: &Disk, rng: &mut Rng, torn: bool) -> (Disk, Option<u32>) {
    let sector: u64 = if rng.below(2) == 0 { 512 } else { 4096 };
    let mut images: Vec<Image> = disk.inodes.iter().map(|f| f.durable.clone()).collect();
    let mut names = disk.durable_names.clone();
    let (mut landed, missed): (Vec<Unit>, Vec<Unit>) = units(disk, sector).into_iter().partition(|_| rng.below(2) == 0);
    shuffle(&mut landed, rng);
    for unit in &landed {
        match unit {
            Unit::Sector { inode, offset, data } => images[*inode].write(*offset, data),
            Unit::Truncate { inode, len } => images[*inode].truncate(*len),
            Unit::Dir(op) => op.apply(&mut names),
        }
    }
    if torn {
        for unit in &missed {
            if let Unit::Sector { inode, offset, data } = unit
                && rng.below(2) == 0
            {
                garbage(&mut images[*inode], *offset, data.len(), rng);
            }
        }
    }
    let files: BTreeMap<String, Image> = names
        .into_iter()
        .map(|(name, inode)| (name, std::mem::take(&mut images[inode])))
        .collect();
    (Disk::from_files(files), Some(sector as u32))
}

/// Random bytes over the part of a sector that lies inside the file.
fn garbage(image: &mut Image, offset: u64, len: usize, rng: &mut Rng) {
    let len = image.len.saturating_sub(offset).min(len as u64) as usize;
    if len == 0 {
        return;
    }
    let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    image.write(offset, &bytes);
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "f" durable as 8 KiB of 1s, then an unsynced 8 KiB write of 2s and an unsynced new file.
    fn crashed_disk() -> Disk {
        let mut disk = Disk::default();
        let f = disk.create("f");
        disk.write(f, "f", 0, &[1u8; 8192]);
        disk.settle();
        disk.write(f, "f", 0, &[2u8; 8192]);
        let g = disk.create("g");
        disk.write(g, "g", 0, b"new");
        disk
    }

    #[test]
    fn durable_keeps_only_synced_data_and_entries() {
        let (rebooted, sector) = reboot(&crashed_disk(), Model::Durable, &mut Rng::new(1));
        assert_eq!(sector, None);
        let files = rebooted.files();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["f"]);
        assert_eq!(files["f"].to_bytes(), vec![1u8; 8192]);
    }

    #[test]
    fn reorder_lands_subsets_of_sectors_and_torn_adds_garbage() {
        let mut mixed = false;
        let mut garbage_seen = false;
        for seed in 0..40 {
            let (rebooted, sector) = reboot(&crashed_disk(), Model::Reorder, &mut Rng::new(seed));
            let bytes = rebooted.files()["f"].to_bytes();
            assert!(bytes.iter().all(|&b| b == 1 || b == 2), "reorder writes only real data");
            let s = sector.unwrap() as usize;
            assert!(
                bytes.chunks(s).all(|c| c.iter().all(|&b| b == c[0])),
                "whole sectors land"
            );
            mixed |= bytes.contains(&1) && bytes.contains(&2);
            let (torn, _) = reboot(&crashed_disk(), Model::Torn, &mut Rng::new(seed));
            garbage_seen |= torn.files()["f"].to_bytes().iter().any(|&b| b != 1 && b != 2);
        }
        assert!(mixed, "some trial lands part of the unsynced write");
        assert!(garbage_seen, "some torn trial leaves garbage");
    }

    #[test]
    fn same_seed_same_reboot() {
        let a = reboot(&crashed_disk(), Model::Torn, &mut Rng::new(9)).0.files();
        let b = reboot(&crashed_disk(), Model::Torn, &mut Rng::new(9)).0.files();
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, image) in &a {
            assert_eq!(image.to_bytes(), b[name].to_bytes());
        }
    }
}
