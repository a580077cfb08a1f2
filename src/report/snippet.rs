//! "Apply it": a configuration's settings as a snippet for a framework. The snippets are data
//! files in `snippets/` (one per framework) with `{{placeholders}}`; `litehammer apply` prints
//! them, and the Markdown and HTML pages show the plain PRAGMAs and Django's for the
//! recommended configuration.

use super::RenderError;
use super::model::Report;
use crate::analysis::stats;
use crate::error::InputError;

const DJANGO: &str = include_str!("../../snippets/django.py");
const RAILS: &str = include_str!("../../snippets/rails.yml");
const LARAVEL: &str = include_str!("../../snippets/laravel.php");
const GO: &str = include_str!("../../snippets/go.txt");
const NODE: &str = include_str!("../../snippets/node.js");
const PRAGMA: &str = include_str!("../../snippets/pragma.sql");

/// The targets of `litehammer apply`, one snippet file each in `snippets/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Framework {
    /// Django settings.py (5.1+ OPTIONS, and the connection_created signal for older versions)
    Django,
    /// Rails 8 config/database.yml
    Rails,
    /// Laravel config/database.php
    Laravel,
    /// Go DSNs for mattn/go-sqlite3 and modernc.org/sqlite
    Go,
    /// Node better-sqlite3
    Node,
    /// Plain PRAGMA statements
    Pragma,
}

/// The configuration to apply: the one `spec` names (`--config`), else the recommended one:
/// with crash results the fastest that loses nothing on power loss, else the verdict's best
/// of the first group.
pub(crate) fn choose(report: &Report, spec: Option<&str>) -> Result<String, RenderError> {
    let configs = stats::configurations(report);
    if let Some(spec) = spec {
        let ids: Vec<&str> = configs.iter().map(|c| c.id).collect();
        return match stats::find_baseline(&configs, spec) {
            Some(c) => Ok(c.id.to_string()),
            None => Err(InputError::new(
                format!("--config {spec}"),
                format!(
                    "no configuration matches; the report has: {}",
                    ids.iter()
                        .map(|id| crate::error::terminal(id, false))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )
            .into()),
        };
    }
    if let Some(id) = recommended(report)? {
        return Ok(id);
    }
    if report.capacity.is_some() {
        // Never a silent default: a capacity report without a pick has nothing to recommend.
        return Err(InputError::new(
            "REPORT",
            "no configuration met the objectives (or, with --durability, none that did lost nothing \
             in its crash trials); name one with --config to see its settings anyway",
        )
        .into());
    }
    configs
        .first()
        .map(|c| c.id.to_string())
        .ok_or_else(|| InputError::new("REPORT", "the report has no runs").into())
}

/// Why the recommended configuration of a measured report is only the fastest measured, not a
/// confirmed best: several configurations, no crash decision or capacity pick, and rounds
/// whose intervals do not put it ahead of every other (or one round). `None` when confirmed.
pub(crate) fn unconfirmed(report: &Report) -> Option<&'static str> {
    if report.decision.is_some() || report.capacity.is_some() || stats::configurations(report).len() < 2 {
        return None;
    }
    match crate::analysis::verdict::confirmed_winner(report) {
        Ok(Some(_)) => None,
        _ => Some(
            "the runs cannot tell it from every other, with one round or with intervals that overlap; run \
             with --rounds 3 or more to confirm it, or pick one with `litehammer apply --config`",
        ),
    }
}

/// The recommended configuration of a measured report, if it has one.
pub(crate) fn recommended(report: &Report) -> Result<Option<String>, RenderError> {
    // A capacity report: the highest capacity (that loses nothing, with --durability).
    if report.capacity.is_some() {
        return Ok(crate::analysis::capacity::recommend(report));
    }
    if let Some(decision) = &report.decision
        && let Some(id) = decision.safe.clone().or(decision.fastest.clone())
    {
        return Ok(Some(id));
    }
    let configs = stats::configurations(report);
    if let Some(subject) = stats::first_transactions(report) {
        let candidates = crate::analysis::verdict::candidates(&configs, subject)?;
        if let Some(best) = crate::analysis::verdict::best(&candidates) {
            return Ok(Some(candidates[best].id.to_string()));
        }
    }
    Ok(None)
}

/// The framework's snippet filled in with the configuration's settings as SQLite read them back.
pub(crate) fn snippet(report: &Report, id: &str, framework: Framework) -> Result<String, InputError> {
    let run = report
        .runs
        .iter()
        .find(|r| r.id == id && r.sqlite.is_some())
        .ok_or_else(|| InputError::new(format!("--config {id}"), "no run of it read its settings back"))?;
    let Some(sqlite) = run.sqlite.as_ref() else {
        unreachable!("found with settings")
    };
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
    use crate::config::sqlite::JournalMode;
    let journal_scope = match sqlite.journal_mode {
        JournalMode::Wal => "persists in the database file (set once, every later connection sees it)",
        JournalMode::Delete => {
            "is what every connection starts with on a database not in WAL mode (setting it once takes a WAL file out of WAL)"
        }
        _ => "does not persist: set it on every connection, like the settings below",
    };
    // What the configuration gives up on durability, on its own comment line; no line where
    // it gives up nothing.
    let durable = durability(sqlite.journal_mode, sqlite.synchronous);
    let template: String = match durable {
        Some(_) => template.to_string(),
        None => template
            .lines()
            .filter(|l| !l.contains("{{durability}}"))
            .map(|l| format!("{l}\n"))
            .collect(),
    };
    let values = [
        ("durability", durable.unwrap_or_default().to_string()),
        ("journal_scope", journal_scope.to_string()),
        ("config", comment_text(id)),
        ("journal_mode", sqlite.journal_mode.as_str().to_string()),
        ("JOURNAL_MODE", sqlite.journal_mode.as_str().to_uppercase()),
        ("synchronous", sqlite.synchronous.as_str().to_string()),
        ("SYNCHRONOUS", sqlite.synchronous.as_str().to_uppercase()),
        ("busy_timeout_ms", busy_ms.to_string()),
        ("cache_size", sqlite.cache_size.to_string()),
        ("transaction_mode", mode.to_string()),
        ("TRANSACTION_MODE", mode.to_uppercase()),
    ];
    Ok(fill(&template, &values))
}

/// What a configuration gives up on durability, in a sentence; `None` for one that syncs
/// every commit with an atomic journal.
fn durability(
    journal: crate::config::sqlite::JournalMode,
    sync: crate::config::sqlite::Synchronous,
) -> Option<&'static str> {
    use crate::config::sqlite::{JournalMode, Synchronous};
    Some(match (journal, sync) {
        (JournalMode::Memory | JournalMode::Off, _) => {
            "Durability: this journal_mode is not atomic: an app that dies in the middle of a transaction can leave \
             the database corrupt."
        }
        (_, Synchronous::Off) => {
            "Durability: synchronous=off leaves syncing to the OS: a power loss or OS crash can lose commits or \
             corrupt the database."
        }
        (JournalMode::Wal, Synchronous::Normal) => {
            "Durability: with synchronous=normal in WAL a commit reaches the disk at the next checkpoint, not at \
             COMMIT: a power loss or OS crash (not an app crash) can lose the last commits; the database stays \
             intact. synchronous=full syncs every commit."
        }
        (_, Synchronous::Normal) => {
            "Durability: with synchronous=normal and a rollback journal, a power loss at the wrong moment can \
             corrupt the database on some filesystems (a very small chance, SQLite's documentation says); \
             synchronous=full avoids it."
        }
        _ => return None,
    })
}

/// A report's text (a run id: a report can come from anyone) for the one-line comment it
/// lands in, in any of the snippets' languages: no line break or other control character
/// (Python, YAML, SQL, Go, JavaScript's U+2028/U+2029 and YAML's U+0085 end a comment), no
/// `?>` (it leaves PHP mode even inside a comment), no trailing backslash.
fn comment_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => out.extend(c.escape_unicode()),
            '>' if out.ends_with('?') => out.push_str("\\>"),
            c => out.push(c),
        }
    }
    if out.ends_with('\\') {
        out.push(' ');
    }
    out
}

/// Replaces every `{{name}}` with its value.
fn fill(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    out
}

/// The "Apply it" section of the pages: for the recommended configuration, the plain PRAGMAs
/// and Django's settings, and the command for the other frameworks.
pub(crate) struct ApplyIt {
    pub config: String,
    pub pragma: String,
    pub django: String,
    /// What the configuration gives up on durability, if anything.
    pub durability: Option<&'static str>,
    /// Why the recommendation is not a confirmed best, if it is not.
    pub unconfirmed: Option<&'static str>,
}

impl ApplyIt {
    pub(crate) fn of(report: &Report) -> Result<Option<ApplyIt>, RenderError> {
        let Some(config) = recommended(report)? else {
            return Ok(None);
        };
        let (Ok(pragma), Ok(django)) = (
            snippet(report, &config, Framework::Pragma),
            snippet(report, &config, Framework::Django),
        ) else {
            return Ok(None);
        };
        let durability = report
            .runs
            .iter()
            .find(|r| r.id == config)
            .and_then(|r| r.sqlite.as_ref())
            .and_then(|s| durability(s.journal_mode, s.synchronous));
        Ok(Some(ApplyIt {
            config,
            pragma,
            django,
            durability,
            unconfirmed: unconfirmed(report),
        }))
    }

    /// The sentence before the snippets (Markdown `code` spans).
    pub(crate) fn intro(&self) -> String {
        let what = match self.unconfirmed {
            Some(why) => format!("the fastest measured, not a confirmed best ({why})"),
            None => "the recommended configuration".to_string(),
        };
        format!(
            "For `{}`, {what}. Each snippet says which settings persist in the database \
             file (only `journal_mode=wal` does) and which must be set on every connection (synchronous, \
             busy_timeout, cache_size).{}",
            self.config,
            self.durability.map_or(String::new(), |d| format!(" {d}"))
        )
    }

    /// The sentence after them.
    pub(crate) fn others(&self) -> String {
        format!(
            "Rails, Laravel, Go and Node: `litehammer apply REPORT --for rails|laravel|go|node` \
             (add `--config ID` for another configuration than `{}`).",
            self.config
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_cannot_end_the_comment_it_lands_in() {
        for id in [
            "a\nimport os; os.system('x')",
            "a\rb",
            "a\u{2028}b",
            "a\u{85}b",
            "a\u{1b}[2Jb",
            "a ?> <?php system('x');",
            "trailing\\",
        ] {
            let t = comment_text(id);
            assert!(!t.chars().any(|c| c.is_control() || c == '\u{2028}'), "{id:?}: {t:?}");
            assert!(!t.contains("?>"), "{t}");
            assert!(!t.ends_with('\\'), "{t}");
        }
        assert_eq!(
            comment_text("journal_mode=wal,synchronous=normal"),
            "journal_mode=wal,synchronous=normal"
        );
    }

    #[test]
    fn every_configuration_that_gives_up_durability_says_what() {
        use crate::config::sqlite::{JournalMode as J, Synchronous as S};
        assert!(
            durability(J::Wal, S::Normal)
                .unwrap()
                .contains("can lose the last commits")
        );
        assert!(durability(J::Delete, S::Normal).unwrap().contains("corrupt"));
        assert!(durability(J::Wal, S::Off).unwrap().contains("synchronous=off"));
        assert!(durability(J::Memory, S::Full).unwrap().contains("not atomic"));
        assert_eq!(durability(J::Wal, S::Full), None);
        assert_eq!(durability(J::Delete, S::Extra), None);
        // The pages' "Apply it" and every snippet say it for a configuration that gives up
        // durability, on a line of its own; one that gives up nothing has no such line.
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        let apply = ApplyIt::of(&report).unwrap().unwrap();
        assert_eq!(apply.config, "journal_mode=wal,synchronous=normal");
        let said = durability(J::Wal, S::Normal).unwrap();
        assert_eq!(apply.durability, Some(said));
        assert!(apply.intro().ends_with(said), "{}", apply.intro());
        for f in [Framework::Django, Framework::Pragma, Framework::Go] {
            let text = snippet(&report, &apply.config, f).unwrap();
            assert!(text.lines().any(|l| l.ends_with(&format!(" {said}"))), "{f:?}: {text}");
            let full = snippet(&report, "journal_mode=wal,synchronous=full", f).unwrap();
            assert!(!full.contains("Durability") && !full.contains("{{"), "{f:?}: {full}");
        }
    }

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

    #[test]
    fn the_pages_snippets_are_the_data_files_filled_in() {
        let report: Report = serde_json::from_str(include_str!("../../tests/fixtures/report.json")).unwrap();
        let apply = ApplyIt::of(&report)
            .unwrap()
            .expect("a measured report has a recommendation");
        assert_eq!(apply.config, choose(&report, None).unwrap());
        // Every line without a placeholder comes from the data files as it is.
        for (text, template) in [(&apply.pragma, PRAGMA), (&apply.django, DJANGO)] {
            let fixed: Vec<&str> = template.lines().filter(|l| !l.contains("{{")).collect();
            assert!(!fixed.is_empty(), "{template}");
            assert!(fixed.iter().all(|l| text.lines().any(|t| t == *l)), "{text}");
        }
        assert!(apply.pragma.contains("PRAGMA journal_mode=wal;"), "{}", apply.pragma);
        assert!(
            apply.pragma.contains("persists in the database file"),
            "{}",
            apply.pragma
        );
    }
}
