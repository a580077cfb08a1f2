//! What the Markdown and HTML pages share: the environment block, the legend, the
//! baseline, one table per subject, and the problems list. Built from the model only.

use super::RenderError;
use super::durability;
use super::format::{Table, errors_cell, format_bytes, format_rate, format_ratio, format_us, run_label};
use super::model::{Report, RunStatus};
use crate::analysis::stats::{self, Config, Figures, Subject};
use crate::analysis::verdict;
use crate::error::InputError;

/// Whether the report has measured runs to show: any group, or not a crash report (whose
/// runs have no groups, only durability).
pub(crate) fn measured(report: &Report, subjects: &[Subject]) -> bool {
    !subjects.is_empty() || !durability::present(report)
}

/// The baseline configuration: the one `spec` names, or the first.
pub(crate) fn resolve_baseline<'a>(
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
pub(crate) fn check_baseline(ids: &[&str], spec: &str) -> Result<(), InputError> {
    if ids.iter().any(|id| stats::id_matches(id, spec)) {
        return Ok(());
    }
    Err(InputError::new(
        format!("--baseline {spec}"),
        format!("no configuration matches; the report has: {}", ids.join("; ")),
    ))
}

/// How to read the tables, in one paragraph.
pub(crate) fn legend(configs: &[Config]) -> String {
    let mut text = String::from(
        "tx/s: committed transactions (or successful executions of an operation) per second; \
         latencies of successful ones, from their intended start (for an app group the moment its client \
         issued the request, so the queue wait is in it; in a closed loop without a queue, BEGIN) to the end \
         (COMMIT for transactions); \
         vs baseline: tx/s ÷ the baseline's (open loop: p99 ÷ the baseline's); \
         ★ best: fastest (open loop: lowest p99 among those that kept up), among those without failed requests if any, \
         shown only when the 95 % intervals across rounds confirm it against every other configuration \
         (never with a single round).",
    );
    if stats::max_repeats(configs) > 1 {
        text.push_str(
            " With rounds, tx/s and p99 are mean ± standard deviation across rounds (range beside them); \
             p50, p99.9 and max are of all rounds' latencies together.",
        );
    }
    text
}

/// Label and value lines describing where and how the report was made.
pub(crate) fn environment(
    report: &Report,
    configs: &[Config],
    baseline: Option<&Config>,
) -> Vec<(&'static str, String)> {
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
        if let Some(a) = env.fsync_per_sec_after {
            storage.push_str(&format!(" before the runs, {} after", format_rate(a)));
        }
    }
    let mut lines = vec![
        (
            "Scenario",
            format!(
                "`{}` from {} (sha256 {})",
                s.name,
                s.source,
                &crate::report::format::prefix(&s.sha256, 12)
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
    if let Some(load) = noise_line(report) {
        let at = lines
            .iter()
            .position(|(k, _)| *k == "Storage")
            .map_or(lines.len(), |i| i + 1);
        lines.insert(at, ("Machine load", load));
    }
    // Crash reports have no throughput to compare against a baseline.
    if let Some(b) = baseline.filter(|_| !durability::present(report)) {
        lines.push(("Baseline", format!("`{}`", b.id)));
    }
    lines
}

/// What else the machine did while the runs were measured: the worst run's figures of the
/// noise record (`machine/noise.rs`), and how many runs the noise guard marked.
pub(crate) fn noise_line(report: &Report) -> Option<String> {
    let records: Vec<_> = report.runs.iter().filter_map(|r| r.noise.as_ref()).collect();
    let first = records.first()?;
    let max = |f: fn(&crate::report::model::Noise) -> f64| records.iter().map(|n| f(n)).fold(0.0, f64::max);
    let pressure = |f: fn(&crate::report::model::Noise) -> Option<f64>| {
        let v: Vec<f64> = records.iter().filter_map(|n| f(n)).collect();
        (!v.is_empty()).then(|| format!("{:.0} %", 100.0 * v.iter().copied().fold(0.0, f64::max)))
    };
    let mut line = format!(
        "other processes up to {:.2} of {} cores, steal up to {:.2}, load average up to {:.2}",
        max(|n| n.other_cpu_cores),
        first.cpus,
        max(|n| n.steal_cores),
        max(|n| n.load_avg_1m)
    );
    if let Some(p) = pressure(|n| n.cpu_pressure) {
        line.push_str(&format!(", CPU pressure up to {p}"));
    }
    if let Some(p) = pressure(|n| n.io_pressure) {
        line.push_str(&format!(", I/O pressure up to {p}"));
    }
    let noisy = records.iter().filter(|n| !n.noisy.is_empty()).count();
    line.push_str(&match noisy {
        0 => " (per run, measured phase); no run noisy".to_string(),
        n => format!(" (per run, measured phase); {n} of {} runs noisy", records.len()),
    });
    Some(line)
}

fn runs_line(report: &Report, configs: &[Config]) -> String {
    let measured = report.runs.iter().map(|r| r.measured_s).sum::<f64>() / report.runs.len().max(1) as f64;
    let warmup = report.runs.first().map_or(0.0, |r| r.warmup_s);
    let repeats = stats::max_repeats(configs);
    let times = if repeats > 1 {
        format!(" × {repeats} rounds (interleaved, seeded order)")
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
        RunStatus::Partial => "partial: still running, or killed before its last run",
    }
}

/// One row per configuration for a subject: throughput, ratio, percentiles, errors, verification.
/// The ★ and the ratio follow the verdict's rules: in open loop the ratio is of p99 (the
/// throughput is the rate that was asked for), and a configuration whose requests failed
/// gets the ★ only when every one failed some.
pub(crate) fn subject_table(
    configs: &[Config],
    subject: Subject,
    baseline: Option<&Config>,
) -> Result<Table, RenderError> {
    let repeated = stats::max_repeats(configs) > 1;
    let candidates = verdict::candidates(configs, subject)?;
    let open = !candidates.is_empty() && candidates.iter().all(|c| c.open.is_some());
    let metric = |f: &Figures| if open { f.p99.mean } else { f.throughput.mean };
    let base = baseline
        .and_then(|b| candidates.iter().find(|c| c.id == b.id))
        .map(|c| metric(&c.figures));
    let mut rows = Vec::new();
    for (config, c) in configs
        .iter()
        .filter_map(|cfg| Some((cfg, candidates.iter().find(|c| c.id == cfg.id)?)))
    {
        let is_baseline = baseline.is_some_and(|b| b.id == config.id);
        let mut ratio = ratio_cell(metric(&c.figures), base, is_baseline);
        if open && !is_baseline && ratio != "–" {
            ratio = format!("p99 {ratio}");
        }
        rows.push(row(config, &c.figures, ratio, repeated));
    }
    if let Some(i) = verdict::confirmed_best(&candidates).filter(|_| rows.len() > 1) {
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

/// Failed runs and first error messages, one line each.
pub(crate) fn problems(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for run in &report.runs {
        let label = format!("`{}`", run_label(run));
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

/// What the terminal prints below its table, for the pages: per run the checks with their
/// verdicts, unfair workers, busy-handler totals and WAL growth; open-loop target, achieved
/// and late; then the report's findings (a sweep's).
pub(crate) fn conclusions(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    // Crash reports' runs have no groups: nothing was measured to conclude about.
    for run in report.runs.iter().filter(|r| !r.groups.is_empty()) {
        let notes = super::notes::notes(run);
        out.extend(notes.into_iter().filter(|n| !n.contains(": FAILED: ")));
        out.extend(super::notes::open_loop(run));
    }
    out.extend(report.findings.iter().cloned());
    out
}
