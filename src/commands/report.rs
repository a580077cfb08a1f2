//! `litehammer report`: render a saved JSON report in another format.

use crate::cli::ReportArgs;
use crate::error::Status;
use anyhow::Context;

/// `litehammer report`: renders a saved JSON report to stdout or a file.
pub(crate) fn report(args: ReportArgs) -> anyhow::Result<Status> {
    let report = crate::report::load(&args.input)?;
    if args.format == crate::report::Format::Hlog
        && let Some(dir) = &args.output
    {
        for (name, bytes) in crate::report::hlog::files(&report)? {
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
