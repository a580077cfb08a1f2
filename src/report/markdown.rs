//! The Markdown exporter: environment, then one table per group and operation with a row per
//! configuration (crash reports: the durability table instead), ready to paste into a pull
//! request or a wiki. The HTML page reuses the tables.

use super::Exporter;
use super::durability;
use super::model::{Report, RunStatus};
use super::stats::{self, Config, Figures, Subject};
use super::table::{Table, format_rate, format_us};
use crate::error::InputError;
use crate::metrics::ErrorCounts;

/// Markdown, with ratios against `baseline` (an id or `key=value,...`; default the first run).
#[derive(Default)]
pub struct Markdown {
    pub baseline: Option<String>,
}

impl Exporter for Markdown {
    fn render(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let configs = stats::configurations(report);
        let baseline = resolve_baseline(&configs, self.baseline.as_deref())?;
        let mut out = format!("# litehammer: {}\n\n", report.scenario.name);
        if !report.scenario.description.is_empty() {
            out.push_str(&format!("{}\n\n", report.scenario.description));
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
        if let Some(anatomy) = crate::report::anatomy::markdown(report) {
            out.push_str(&format!("\n## Latency anatomy\n\n{anatomy}"));
        }
        if durability::present(report) {
            out.push_str(&format!(
                "\n## Durability\n\n{}\n\n{}",
                durability::legend(report),
                durability::table(&report.runs).to_markdown()
            ));
        }
        let problems = problems(report);
        if !problems.is_empty() {
            out.push_str("\n## Problems\n\n");
            problems.iter().for_each(|p| out.push_str(&format!("- {p}\n")));
        }
        Ok(out.into_bytes())
    }
}

/// Whether the report has measured runs to show: any group, or not a crash report (whose
/// runs have no groups, only durability).
pub fn measured(report: &Report, subjects: &[Subject]) -> bool {
    !subjects.is_empty() || !durability::present(report)
}

/// The baseline configuration: the one `spec` names, or the first.
pub fn resolve_baseline<'a>(
    configs: &'a [Config<'a>],
    spec: Option<&str>,
) -> Result<Option<&'a Config<'a>>, InputError> {
    let Some(spec) = spec else {
        return Ok(configs.first());
    };
    let ids: Vec<&str> = configs.iter().map(|c| c.id).collect();
    check_baseline(&ids, spec)?;
    Ok(stats::find_baseline(configs, spec))
}

/// Fails when no id matches `spec`, listing the ids.
pub fn check_baseline(ids: &[&str], spec: &str) -> Result<(), InputError> {
    if ids.iter().any(|id| stats::id_matches(id, spec)) {
        return Ok(());
    }
    Err(InputError::new(
        format!("--baseline {spec}"),
        format!("no configuration matches; the report has: {}", ids.join("; ")),
    ))
}

/// How to read the tables, in one paragraph.
pub fn legend(configs: &[Config]) -> String {
    let mut text = String::from(
        "tx/s: committed transactions (or successful executions of an operation) per second; \
         latencies of successful ones, BEGIN to COMMIT for transactions; \
         vs baseline: tx/s ÷ the baseline's; ★ fastest.",
    );
    if stats::max_repeats(configs) > 1 {
        text.push_str(
            " With repeats, tx/s and p99 are mean ± standard deviation across repeats (range beside them); \
             p50, p99.9 and max are of all repeats' latencies together.",
        );
    }
    text
}

/// Label and value lines describing where and how the report was made.
pub fn environment(report: &Report, configs: &[Config], baseline: Option<&Config>) -> Vec<(&'static str, String)> {
    let env = &report.environment;
    let s = &report.scenario;
    let mut sqlite = format!(
        "{} (rusqlite {}), {} build",
        env.sqlite_version, env.rusqlite_version, env.build_profile
    );
    if env.build_profile == "debug" {
        sqlite.push_str(" — debug numbers measure the harness more than SQLite");
    }
    let mut storage = format!("{} at `{}`", env.filesystem, env.db_dir);
    if let Some(f) = env.fsync_per_sec {
        storage.push_str(&format!(", {} fsync/s", format_rate(f)));
    }
    let mut lines = vec![
        (
            "Scenario",
            format!(
                "`{}` from {} (sha256 {})",
                s.name,
                s.source,
                &s.sha256[..12.min(s.sha256.len())]
            ),
        ),
        (
            "Created",
            format!(
                "{} by litehammer {}, status {}",
                report.created_at,
                report.tool.version,
                status_word(report.status)
            ),
        ),
        ("SQLite", sqlite),
        (
            "Machine",
            format!(
                "{}, kernel {}, {} × {} cores, {} memory",
                env.os,
                env.kernel,
                env.cpu_model,
                env.cores,
                format_bytes(env.memory_bytes)
            ),
        ),
        ("Storage", storage),
        (
            "Runs",
            durability::runs_line(report).unwrap_or_else(|| runs_line(report, configs)),
        ),
    ];
    // Crash reports have no throughput to compare against a baseline.
    if let Some(b) = baseline.filter(|_| !durability::present(report)) {
        lines.push(("Baseline", format!("`{}`", b.id)));
    }
    lines
}

fn runs_line(report: &Report, configs: &[Config]) -> String {
    let measured = report.runs.iter().map(|r| r.measured_s).sum::<f64>() / report.runs.len().max(1) as f64;
    let warmup = report.runs.first().map_or(0.0, |r| r.warmup_s);
    let repeats = stats::max_repeats(configs);
    let times = if repeats > 1 {
        format!(" × {repeats} repeats")
    } else {
        String::new()
    };
    format!(
        "{} configuration(s){times}, {measured:.2} s measured per run after {warmup:.2} s warm-up",
        configs.len()
    )
}

fn status_word(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => "completed",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Failed => "failed",
    }
}

/// Bytes in binary units with one decimal: `15.5 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One row per configuration for a subject: throughput, ratio, percentiles, errors, verification.
pub fn subject_table(configs: &[Config], subject: Subject, baseline: Option<&Config>) -> anyhow::Result<Table> {
    let repeated = stats::max_repeats(configs) > 1;
    let base = match baseline {
        Some(b) => stats::figures(b, subject)?.map(|f| f.throughput.mean),
        None => None,
    };
    let mut rows = Vec::new();
    let mut fastest: Option<(usize, f64)> = None;
    for config in configs {
        let Some(f) = stats::figures(config, subject)? else {
            continue;
        };
        if fastest.is_none_or(|(_, best)| f.throughput.mean > best) {
            fastest = Some((rows.len(), f.throughput.mean));
        }
        let is_baseline = baseline.is_some_and(|b| b.id == config.id);
        rows.push(row(
            config,
            &f,
            ratio_cell(f.throughput.mean, base, is_baseline),
            repeated,
        ));
    }
    if let Some((i, _)) = fastest.filter(|_| rows.len() > 1) {
        rows[i][0].push_str(" ★");
    }
    Ok(layout(repeated, rows))
}

fn row(config: &Config, f: &Figures, ratio: String, repeated: bool) -> Vec<String> {
    let lat = &f.pooled;
    // No successful execution at all: no latency to show (not 0 µs).
    let recorded = lat.max > 0.0;
    let us = |v: f64| if recorded { format_us(v) } else { "–".to_string() };
    let tail = [
        us(lat.p99_9),
        us(lat.max),
        errors_cell(&f.errors),
        stats::verification(config),
    ];
    let head = if repeated {
        vec![
            config.id.to_string(),
            f.throughput.n.to_string(),
            format!(
                "{} ± {}",
                format_rate(f.throughput.mean),
                format_rate(f.throughput.stddev)
            ),
            format!("{}–{}", format_rate(f.throughput.min), format_rate(f.throughput.max)),
            ratio,
            us(lat.p50),
            if recorded {
                format!("{} ± {}", format_us(f.p99.mean), format_us(f.p99.stddev))
            } else {
                us(0.0)
            },
            if recorded {
                format!("{}–{}", format_us(f.p99.min), format_us(f.p99.max))
            } else {
                us(0.0)
            },
        ]
    } else {
        vec![
            config.id.to_string(),
            format_rate(f.throughput.mean),
            ratio,
            us(lat.p50),
            us(f.p99.mean),
        ]
    };
    head.into_iter().chain(tail).collect()
}

fn layout(repeated: bool, rows: Vec<Vec<String>>) -> Table {
    let (headers, right) = if repeated {
        (
            vec![
                "configuration",
                "runs",
                "tx/s",
                "tx/s range",
                "vs baseline",
                "p50",
                "p99",
                "p99 range",
                "p99.9",
                "max",
                "errors",
                "verified",
            ],
            vec![
                false, true, true, true, true, true, true, true, true, true, false, false,
            ],
        )
    } else {
        (
            vec![
                "configuration",
                "tx/s",
                "vs baseline",
                "p50",
                "p99",
                "p99.9",
                "max",
                "errors",
                "verified",
            ],
            vec![false, true, true, true, true, true, true, false, false],
        )
    };
    Table { headers, right, rows }
}

fn ratio_cell(value: f64, base: Option<f64>, is_baseline: bool) -> String {
    match base {
        _ if is_baseline => "baseline".to_string(),
        Some(b) if b > 0.0 => format_ratio(value / b),
        _ => "–".to_string(),
    }
}

/// A ratio with about 3 significant digits: `2.85×`, `0.062×`, `12.4×`.
pub fn format_ratio(r: f64) -> String {
    match r {
        r if r >= 10.0 => format!("{r:.1}×"),
        r if r >= 0.1 => format!("{r:.2}×"),
        r if r >= 0.001 => format!("{r:.3}×"),
        0.0 => "0×".to_string(),
        _ => "<0.001×".to_string(),
    }
}

/// Errors by kind, `0` when none: `busy 3, locked 1`.
pub fn errors_cell(e: &ErrorCounts) -> String {
    let kinds = [
        ("busy", e.busy),
        ("busy_snapshot", e.busy_snapshot),
        ("locked", e.locked),
        ("constraint", e.constraint),
        ("other", e.other),
    ];
    let parts: Vec<String> = kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if parts.is_empty() {
        "0".to_string()
    } else {
        parts.join(", ")
    }
}

/// Failed runs and first error messages, one line each.
pub fn problems(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for run in &report.runs {
        let label = match run.repeat {
            Some(k) => format!("`{}` #{k}", run.id),
            None => format!("`{}`", run.id),
        };
        if let Some(e) = &run.error {
            out.push(format!("{label} failed: {e}"));
        }
        for g in &run.groups {
            if let Some(e) = &g.transactions.first_error {
                out.push(format!("{label}, {}: first error: {e}", g.name));
            }
            for op in &g.ops {
                if let Some(e) = &op.first_error {
                    out.push(format!("{label}, {} / {}: first error: {e}", g.name, op.name));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        String::from_utf8(md.render(report).unwrap()).unwrap()
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
        let input = err.downcast_ref::<InputError>().expect("an InputError");
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
