//! Live progress while a run measures: an indicatif bar on a terminal, plain lines every
//! N seconds otherwise (like pgbench -P), or nothing with --quiet.

use crate::metrics::timeline::TimelineEntry;
use crate::report::format::group_rate;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub(crate) enum ProgressMode {
    Quiet,
    Lines { every: Duration },
    Bar,
}

impl ProgressMode {
    /// A bar when stderr is a terminal, else lines every `every` (`None`: never).
    pub(crate) fn detect(quiet: bool, every: Option<Duration>) -> Self {
        match (quiet, every) {
            (true, _) => ProgressMode::Quiet,
            (false, Some(every)) if !std::io::stderr().is_terminal() => ProgressMode::Lines { every },
            (false, None) if !std::io::stderr().is_terminal() => ProgressMode::Quiet,
            _ => ProgressMode::Bar,
        }
    }
}

/// Progress of one run.
pub(crate) struct RunProgress {
    mode: ProgressMode,
    label: String,
    bar: Option<ProgressBar>,
    last_line_s: f64,
}

impl RunProgress {
    /// `length`: the measured duration, if the run is time-bound.
    pub(crate) fn start(mode: ProgressMode, label: &str, length: Option<Duration>) -> Self {
        let bar = matches!(mode, ProgressMode::Bar).then(|| {
            let bar = match length {
                Some(d) => ProgressBar::new(d.as_millis() as u64),
                None => ProgressBar::new_spinner(),
            };
            let style = ProgressStyle::with_template("{prefix} [{bar:25}] {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            bar
        });
        Self {
            mode,
            label: label.to_string(),
            bar,
            last_line_s: 0.0,
        }
    }

    /// Called when a timeline interval has ended.
    pub(crate) fn interval(&mut self, entry: &TimelineEntry, interval_s: f64) {
        let text = describe(entry, interval_s);
        match self.mode {
            ProgressMode::Quiet => {}
            ProgressMode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position((entry.t_s * 1000.0) as u64);
                    bar.set_message(text);
                }
            }
            ProgressMode::Lines { every } => {
                if entry.t_s - self.last_line_s >= every.as_secs_f64() - 1e-9 {
                    self.last_line_s = entry.t_s;
                    eprintln!("  {} {:>5.0}s  {text}", self.label, entry.t_s);
                }
            }
        }
    }

    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

fn describe(e: &TimelineEntry, interval_s: f64) -> String {
    let groups: Vec<String> = e
        .groups
        .iter()
        .map(|g| group_rate(&g.name, g.ops as f64 / interval_s, g.p99_us))
        .collect();
    let busy = e.errors.busy_total();
    let other = e.errors.total() - busy;
    format!(
        "{} | busy {busy} err {other} | wal {:.1} MB",
        groups.join(", "),
        e.wal_bytes as f64 / 1e6
    )
}
