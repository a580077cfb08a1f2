//! `litehammer list-scenarios`: the built-in scenarios.

use crate::config::builtin;
use crate::error::Status;

pub(crate) fn list_scenarios() -> anyhow::Result<Status> {
    for name in builtin::names() {
        let source = crate::config::Source::open(name)?;
        let description = source.parse().map(|s| s.description).unwrap_or_default();
        let marker = if name == builtin::DEFAULT { " (default)" } else { "" };
        println!("{name}{marker}\n    {description}");
    }
    Ok(Status::Ok)
}
