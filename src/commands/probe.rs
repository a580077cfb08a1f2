//! `litehammer probe`: the disk's fsync rate and the commit ceiling per configuration.

use super::*;
use crate::cli::ProbeArgs;
use crate::error::Status;
use crate::machine::env;
use crate::machine::probe::{self, ProbeTimes, SyncKind};
use anyhow::Context;
use std::path::Path;

pub(crate) fn probe(args: ProbeArgs) -> anyhow::Result<Status> {
    if let Some(path) = &args.output {
        check_outputs(&[("-o", path)], None)?;
    }
    let (dir, _temp_guard) = database_dir(args.db_dir.as_deref(), false)?;
    let times = if args.quick {
        ProbeTimes::QUICK
    } else {
        ProbeTimes::DEFAULT
    };
    let report = probe::probe(&dir, times)?;
    print!("{}", probe::to_text(&report));
    if let Some(path) = &args.output {
        let bytes = serde_json::to_vec_pretty(&report)?;
        crate::report::write_file(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nprobe: {}", path.display());
    }
    warn_if_debug_build();
    Ok(Status::Ok)
}

/// The db dir's fsync rate for the report, with the filesystem's durability warnings.
pub(super) fn probe_fsync(db_dir: &Path, quiet: bool) -> anyhow::Result<f64> {
    let rate = probe::sync_rate(db_dir, RUN_PROBE_TIME, SyncKind::Fsync)?;
    if !quiet {
        for w in probe::durability_warnings(&env::filesystem_of(db_dir), rate) {
            eprintln!("warning: {w}");
        }
    }
    Ok(rate)
}
