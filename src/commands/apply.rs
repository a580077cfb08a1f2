//! `litehammer apply REPORT --for FRAMEWORK`: the settings of one configuration of a report
//! as a snippet to paste into an application's configuration (`report/snippet.rs`, with the
//! snippet data files of `snippets/`).

use crate::cli::ApplyArgs;
use crate::error::Status;
use crate::report::snippet;

pub(crate) fn apply(args: ApplyArgs) -> anyhow::Result<Status> {
    let report = crate::pipeline::load_report(&args.report)?;
    let id = snippet::choose(&report, args.config.as_deref())?;
    // The snippet alone on stdout (it is pasted or piped); what it rests on, on stderr.
    if args.config.is_none()
        && let Some(why) = snippet::unconfirmed(&report)
    {
        eprintln!("note: {id} is the fastest measured, not a confirmed best: {why}");
    }
    print!("{}", snippet::snippet(&report, &id, args.framework)?);
    Ok(Status::Ok)
}
