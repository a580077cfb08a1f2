//! Facts about the machine, with no ties to a run: the fsync probe, the environment a report
//! records, the noise record of a run, and the WAL and file sizes read from SQLite's files.

pub(crate) mod env;
pub(crate) mod noise;
pub(crate) mod probe;
pub(crate) mod walstat;
