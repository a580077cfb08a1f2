//! `litehammer report`: render a saved JSON report in another format.

use crate::cli::ReportArgs;
use crate::error::Status;
use anyhow::Context;

/// `litehammer report`: renders a saved JSON report to stdout or a file.
pub(crate) fn report(args: ReportArgs) -> anyhow::Result<Status> {
    // `--format hlog` writes a directory of files (each through `write_file`).
    if let Some(path) = args
        .output
        .as_ref()
        .filter(|_| args.format != crate::report::Format::Hlog)
    {
        let target = [crate::report::output::Target::new("-o", path)];
        crate::report::output::check(&target, &[("input report", &args.input)])?;
    }
    // JSON is the report as saved; the views need the stored analysis an older report lacks.
    let report = match args.format {
        crate::report::Format::Json => crate::report::load(&args.input)?,
        _ => crate::pipeline::load_report(&args.input)?,
    };
    warn_unfinished(&report, &args.input);
    if args.format == crate::report::Format::Hlog
        && let Some(dir) = &args.output
    {
        let files = crate::report::hlog::files(&report)?;
        // The directory and every file in it pass the one output check first: a directory
        // or nothing at DIR, a regular file or nothing at each name (exit 2 otherwise).
        let dir_error = |m: &str| crate::error::InputError::new(format!("-o {}", dir.display()), m);
        match std::fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(dir_error("is a symbolic link; give the real directory").into());
            }
            Ok(m) if !m.is_dir() => {
                return Err(dir_error("--format hlog writes a directory of files: give a directory").into());
            }
            _ => {}
        }
        let targets: Vec<_> = files
            .iter()
            .map(|(name, _)| crate::report::output::Target::new("-o", &dir.join(name)))
            .collect();
        crate::report::output::check(&targets, &[("input report", &args.input)])?;
        for (name, bytes) in files {
            let path = dir.join(name);
            crate::report::write_file(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(Status::Ok);
    }
    let bytes = args.format.exporter(args.baseline.clone()).render(&report)?;
    match &args.output {
        Some(path) => {
            crate::report::write_file(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(Status::Ok)
}

/// A warning on stderr for a report whose runs did not all finish.
pub(super) fn warn_unfinished(report: &crate::report::model::Report, path: &std::path::Path) {
    use crate::report::model::RunStatus;
    match report.status {
        RunStatus::Partial => eprintln!(
            "warning: {} is partial: its run was still going or was killed before its last run was written",
            path.display()
        ),
        RunStatus::Interrupted => eprintln!(
            "warning: {} was interrupted: some runs are missing or cut short",
            path.display()
        ),
        RunStatus::Completed | RunStatus::Failed => {}
    }
}
