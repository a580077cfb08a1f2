//! `litehammer apply REPORT --for FRAMEWORK`: the settings of one configuration of a report
//! as a snippet to paste into an application's configuration. The snippets are data files in
//! `snippets/` (one per framework) with `{{placeholders}}`.

use crate::cli::{ApplyArgs, Framework};
use crate::config::sqlite::ReadBack;
use crate::error::{InputError, Status};
use crate::report::model::Report;
use crate::report::stats;

const DJANGO: &str = include_str!("../../snippets/django.py");
const RAILS: &str = include_str!("../../snippets/rails.yml");
const LARAVEL: &str = include_str!("../../snippets/laravel.php");
const GO: &str = include_str!("../../snippets/go.txt");
const NODE: &str = include_str!("../../snippets/node.js");
const PRAGMA: &str = include_str!("../../snippets/pragma.sql");

pub(crate) fn apply(args: ApplyArgs) -> anyhow::Result<Status> {
    let report = crate::report::load(&args.report)?;
    let id = choose(&report, args.config.as_deref())?;
    print!("{}", snippet(&report, &id, args.framework)?);
    Ok(Status::Ok)
}

/// The configuration named by `--config`, or the verdict's best of the first group.
pub(crate) fn choose(report: &Report, spec: Option<&str>) -> anyhow::Result<String> {
    let configs = stats::configurations(report);
    if let Some(spec) = spec {
        let ids: Vec<&str> = configs.iter().map(|c| c.id).collect();
        return match stats::find_baseline(&configs, spec) {
            Some(c) => Ok(c.id.to_string()),
            None => Err(InputError::new(
                format!("--config {spec}"),
                format!("no configuration matches; the report has: {}", ids.join("; ")),
            )
            .into()),
        };
    }
    let subject = stats::subjects(report)
        .into_iter()
        .find(|s| matches!(s, stats::Subject::Transactions { .. }));
    if let Some(subject) = subject {
        let candidates = crate::report::verdict::candidates(&configs, subject)?;
        if let Some(best) = crate::report::verdict::best(&candidates) {
            return Ok(candidates[best].id.to_string());
        }
    }
    configs
        .first()
        .map(|c| c.id.to_string())
        .ok_or_else(|| InputError::new("REPORT", "the report has no runs").into())
}

/// The framework's snippet filled in with the configuration's settings as SQLite read them back.
pub(crate) fn snippet(report: &Report, id: &str, framework: Framework) -> anyhow::Result<String> {
    let run = report
        .runs
        .iter()
        .find(|r| r.id == id && r.sqlite.is_some())
        .ok_or_else(|| InputError::new(format!("--config {id}"), "no run of it read its settings back"))?;
    let sqlite: &ReadBack = run.sqlite.as_ref().expect("found with settings");
    let mode = run
        .groups
        .iter()
        .map(|g| g.transaction.as_str())
        .find(|t| matches!(*t, "immediate" | "exclusive"))
        .unwrap_or("deferred");
    let template = match framework {
        Framework::Django => DJANGO,
        Framework::Rails => RAILS,
        Framework::Laravel => LARAVEL,
        Framework::Go => GO,
        Framework::Node => NODE,
        Framework::Pragma => PRAGMA,
    };
    let busy_ms = (sqlite.busy_timeout.as_secs_f64() * 1000.0).round() as u64;
    let values = [
        ("config", id.to_string()),
        ("journal_mode", sqlite.journal_mode.as_str().to_string()),
        ("JOURNAL_MODE", sqlite.journal_mode.as_str().to_uppercase()),
        ("synchronous", sqlite.synchronous.as_str().to_string()),
        ("SYNCHRONOUS", sqlite.synchronous.as_str().to_uppercase()),
        ("busy_timeout_ms", busy_ms.to_string()),
        ("cache_size", sqlite.cache_size.to_string()),
        ("transaction_mode", mode.to_string()),
        ("TRANSACTION_MODE", mode.to_uppercase()),
    ];
    Ok(fill(template, &values))
}

/// Replaces every `{{name}}` with its value.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        let id = choose(&report, None).unwrap();
        for f in [
            Framework::Django,
            Framework::Rails,
            Framework::Laravel,
            Framework::Go,
            Framework::Node,
            Framework::Pragma,
        ] {
            let text = snippet(&report, &id, f).unwrap();
            assert!(!text.contains("{{"), "{f:?}: {text}");
            assert!(
                text.contains("per connection") || text.contains("Per connection"),
                "{f:?}"
            );
            assert!(text.contains("persists") || text.contains("Persists"), "{f:?}");
        }
    }
}
