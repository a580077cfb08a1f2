//! The Markdown exporter: environment, then one table per group and operation with a row per
//! configuration (crash reports: the durability table instead), ready to paste into a pull
//! request or a wiki. The HTML page reuses the tables.

use super::durability;
use super::model::Report;
use super::page::{environment, legend, measured, problems, resolve_baseline, subject_table};
use super::{Exporter, RenderError};
use crate::analysis::stats;

/// Markdown-escapes a line of text (the characters that would start emphasis, a link, HTML or a
/// table cell); backticks stay: they mark code spans.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '|' | '<' | '>' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Markdown, with ratios against `baseline` (an id or `key=value,...`; default the first run).
#[derive(Default)]
pub(crate) struct Markdown {
    pub baseline: Option<String>,
}

impl Exporter for Markdown {
    fn render(&self, report: &Report) -> Result<Vec<u8>, RenderError> {
        let cleaned = crate::report::format::cleaned(report, crate::report::format::md_text);
        let report = &cleaned;
        let configs = stats::configurations(report);
        let baseline = resolve_baseline(&configs, self.baseline.as_deref())?;
        let mut out = format!("# litehammer: {}\n\n", report.scenario.name);
        if !report.scenario.description.is_empty() {
            out.push_str(&format!("{}\n\n", report.scenario.description));
        }
        if !report.noise_warnings.is_empty() {
            report
                .noise_warnings
                .iter()
                .for_each(|w| out.push_str(&format!("> {}\n", escape_markdown(w.trim_start()))));
            out.push('\n');
        }
        if let Some((header, lines)) = report.verdict.split_first() {
            out.push_str(&format!("## Verdict\n\n{}\n\n", escape_markdown(header)));
            lines
                .iter()
                .for_each(|l| out.push_str(&format!("- {}\n", escape_markdown(l))));
            out.push('\n');
        }
        if let Some(capacity) = &report.capacity {
            out.push_str(&super::capacity::markdown(capacity, escape_markdown));
            out.push('\n');
        }
        if let Some(decision) = &report.decision {
            out.push_str(&format!(
                "## Speed × durability\n\n{}\n\n{}\n**Recommendation**\n\n",
                escape_markdown(&super::decision::legend(decision, report)),
                super::decision::table(decision).to_markdown()
            ));
            decision
                .recommendation
                .iter()
                .for_each(|l| out.push_str(&format!("- {}\n", escape_markdown(l))));
            out.push('\n');
        }
        // Tilde fences: a backtick fence on a line of its own is what the hostile tests look
        // for as text injected from a scenario (whose line breaks `cleaned` removes).
        if let Some(apply) = super::snippet::ApplyIt::of(report)? {
            out.push_str(&format!(
                "## Apply it\n\n{}\n\n~~~sql\n{}~~~\n\n~~~python\n{}~~~\n\n{}\n\n",
                apply.intro(),
                apply.pragma,
                apply.django,
                apply.others()
            ));
        }
        out.push_str("## Environment\n\n");
        for (label, value) in environment(report, &configs, baseline) {
            out.push_str(&format!("- **{label}**: {value}\n"));
        }
        let subjects = stats::subjects(report);
        if measured(report, &subjects) {
            out.push_str(&format!("\n## Results\n\n{}\n", legend(&configs)));
            for subject in subjects {
                let table = subject_table(&configs, subject, baseline)?;
                out.push_str(&format!("\n### {}\n\n{}", subject.title(), table.to_markdown()));
            }
        }
        if let Some(sweep) = crate::analysis::sweep::view(report)? {
            out.push_str(&format!(
                "\n## {}\n\n{}",
                super::sweep::title(&sweep),
                super::sweep::table(&sweep).to_markdown()
            ));
        }
        if let Some(anatomy) = crate::report::anatomy::markdown(report) {
            out.push_str(&format!("\n## Latency anatomy\n\n{anatomy}"));
        }
        if durability::present(report) || crate::analysis::decision::present(report) {
            let title = if durability::present(report) {
                "Durability"
            } else {
                "Crash trials"
            };
            out.push_str(&format!(
                "\n## {title}\n\n{}\n\n{}",
                durability::legend(report),
                durability::table(&report.runs).to_markdown()
            ));
        }
        let notes = super::page::conclusions(report);
        if !notes.is_empty() {
            out.push_str("\n## Notes\n\n");
            notes
                .iter()
                .for_each(|n| out.push_str(&format!("- {}\n", escape_markdown(n))));
        }
        let problems = problems(report);
        if !problems.is_empty() {
            out.push_str("\n## Problems\n\n");
            problems.iter().for_each(|p| out.push_str(&format!("- {p}\n")));
        }
        Ok(out.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::format::{format_bytes, format_ratio};

    fn fixture() -> Report {
        let text = include_str!("../../tests/fixtures/report.json");
        serde_json::from_str(text).expect("fixture is a report")
    }

    fn crash_fixture() -> Report {
        let text = include_str!("../../tests/fixtures/crash.json");
        serde_json::from_str(text).expect("crash fixture is a report")
    }

    fn render(report: &Report, baseline: Option<&str>) -> String {
        let md = Markdown {
            baseline: baseline.map(str::to_string),
        };
        let mut report = report.clone();
        crate::analysis::complete(&mut report).unwrap();
        String::from_utf8(md.render(&report).unwrap()).unwrap()
    }

    #[test]
    fn markdown_of_the_fixture() {
        insta::assert_snapshot!(render(&fixture(), None));
    }

    #[test]
    fn markdown_of_the_crash_fixture() {
        insta::assert_snapshot!(render(&crash_fixture(), None));
    }

    #[test]
    fn markdown_of_a_durability_run() {
        let text = render(&crate::analysis::decision::tests::fixture(), None);
        let verdict = text.find("## Verdict").unwrap();
        let decision = text.find("## Speed × durability").unwrap();
        let apply = text.find("## Apply it").unwrap();
        assert!(verdict < decision && decision < apply, "{text}");
        assert!(text.contains("## Crash trials"), "{text}");
        assert!(
            text.contains("For `journal_mode=wal,synchronous=full`, the recommended"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn markdown_of_a_sweep_has_its_table() {
        let text = render(&crate::report::sweep::tests::fixture(), None);
        assert!(
            text.contains("## Sweep: writers against requests per second (rate)"),
            "{text}"
        );
        assert!(text.contains("| journal_mode=delete | 100 req/s |"), "{text}");
    }

    #[test]
    fn crash_report_shows_durability_not_empty_results() {
        let text = render(&crash_fixture(), None);
        assert!(text.contains("## Durability"), "{text}");
        assert!(!text.contains("## Results"), "{text}");
        assert!(!text.contains("**Baseline**"), "{text}");
        assert!(text.contains("- **Runs**: 4 configuration(s) crashed, 5 trial(s) per method, seed 1"));
        let rows = text.lines().filter(|l| l.contains("| power-loss/")).count();
        assert_eq!(rows, 4 * 3, "a row per configuration and power-loss model");
        let run_report = render(&fixture(), None);
        assert!(!run_report.contains("## Durability"), "{run_report}");
    }

    #[test]
    fn markdown_with_a_named_baseline() {
        let text = render(&fixture(), Some("synchronous=full,journal_mode=delete"));
        assert!(text.contains("- **Baseline**: `journal_mode=delete,synchronous=full`"));
        assert!(text.contains("| journal_mode=delete,synchronous=full | "));
        let baseline_rows = text.lines().filter(|l| l.contains("| baseline |")).count();
        assert_eq!(baseline_rows, stats::subjects(&fixture()).len());
    }

    #[test]
    fn unknown_baseline_is_bad_input() {
        let err = Markdown {
            baseline: Some("journal_mode=off".into()),
        }
        .render(&fixture())
        .unwrap_err();
        let RenderError::Input(input) = err else {
            panic!("an InputError: {err}")
        };
        assert!(input.message.contains("journal_mode=wal,synchronous=normal"), "{input}");
    }

    #[test]
    fn repeats_show_mean_stddev_and_range() {
        let mut report = fixture();
        let mut second = report.runs[0].clone();
        report.runs[0].repeat = Some(1);
        second.repeat = Some(2);
        for g in &mut second.groups {
            g.transactions.throughput_per_s *= 2.0;
        }
        report.runs.insert(1, second);
        let text = render(&report, None);
        assert!(text.contains("| configuration | runs | tx/s | tx/s range |"), "{text}");
        let row = text
            .lines()
            .find(|l| l.starts_with("| journal_mode=wal,synchronous=normal"))
            .unwrap();
        assert!(
            row.contains("| 2 |") && row.contains(" ± ") && row.contains("ok ×2"),
            "{row}"
        );
    }

    #[test]
    fn no_successful_execution_shows_no_latency() {
        let mut report = fixture();
        let readers = &mut report.runs[2].groups[1].transactions;
        readers.throughput_per_s = 0.0;
        readers.latency_us = Default::default();
        let text = render(&report, None);
        let section = text.split("### readers: transactions").nth(1).unwrap();
        let row = section
            .lines()
            .find(|l| l.starts_with("| journal_mode=delete,synchronous=normal"))
            .unwrap();
        assert!(row.contains("| 0.0 | 0× | – | – | – | – | busy 2 |"), "{row}");
    }

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(16 * 1024 * 1024 * 1024 + 1), "16.0 GiB");
        assert_eq!(format_ratio(2.854), "2.85×");
        assert_eq!(format_ratio(0.0616), "0.062×");
        assert_eq!(format_ratio(0.0004), "<0.001×");
        assert_eq!(format_ratio(0.0), "0×");
    }
}
