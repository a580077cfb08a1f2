//! The noise record of a run: what else the machine did during its measured phase, read
//! from `/proc` before and after it (the type is the report model's `Noise`).
//!
//! Other processes' CPU is the machine's busy time (`/proc/stat`: user, nice, system, irq,
//! softirq) minus the CPU of litehammer's own process tree (this process, its live
//! descendants and the children it reaped, from `/proc/<pid>/stat`), both in clock ticks;
//! divided by the elapsed ticks per CPU it is in cores. Everything reads as zero or absent
//! where `/proc` is missing. The noise guard that judges the record is
//! `analysis/noise.rs`.

use crate::report::model::Noise;

/// The counters at one instant.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    /// All ticks of every CPU (busy, idle, iowait, steal).
    total: u64,
    /// Busy ticks of every CPU (steal and guest excluded).
    busy: u64,
    steal: u64,
    cpus: u32,
    /// Ticks of litehammer's process tree.
    own: u64,
    /// `some` stall totals in µs of `/proc/pressure/cpu` and `io`.
    cpu_stall_us: Option<u64>,
    io_stall_us: Option<u64>,
    at: Option<std::time::Instant>,
}

impl Snapshot {
    pub(crate) fn take() -> Snapshot {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let (total, busy, steal, cpus) = parse_stat(&stat);
        Snapshot {
            total,
            busy,
            steal,
            cpus,
            own: own_tree_ticks(),
            cpu_stall_us: stall_total("/proc/pressure/cpu"),
            io_stall_us: stall_total("/proc/pressure/io"),
            at: Some(std::time::Instant::now()),
        }
    }

    /// The noise between this snapshot and a later one.
    pub(crate) fn until(&self, after: &Snapshot) -> Noise {
        let total = after.total.saturating_sub(self.total) as f64;
        let cpus = after.cpus.max(1);
        // Elapsed ticks per CPU: the phase's length in ticks.
        let per_cpu = total / f64::from(cpus);
        let cores = |ticks: u64| if per_cpu > 0.0 { ticks as f64 / per_cpu } else { 0.0 };
        let busy = after.busy.saturating_sub(self.busy);
        let own = after.own.saturating_sub(self.own);
        let wall_us = match (self.at, after.at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64() * 1e6,
            _ => 0.0,
        };
        let share = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) if wall_us > 0.0 => Some((b.saturating_sub(a) as f64 / wall_us).min(1.0)),
            _ => None,
        };
        // Test hook: `LITEHAMMER_FAULT=busy-machine` records every core as busy with other work.
        let fault = std::env::var("LITEHAMMER_FAULT").as_deref() == Ok("busy-machine");
        Noise {
            other_cpu_cores: if fault {
                f64::from(cpus)
            } else {
                cores(busy.saturating_sub(own))
            },
            own_cpu_cores: cores(own.min(busy)),
            steal_cores: cores(after.steal.saturating_sub(self.steal)),
            cpus,
            load_avg_1m: load_avg_1m(),
            cpu_pressure: share(self.cpu_stall_us, after.cpu_stall_us),
            io_pressure: share(self.io_stall_us, after.io_stall_us),
            noisy: Vec::new(),
        }
    }
}

/// (all ticks, busy ticks, steal ticks, CPUs) from `/proc/stat`'s `cpu` lines.
fn parse_stat(text: &str) -> (u64, u64, u64, u32) {
    let mut cpus = 0;
    let mut sums = (0, 0, 0);
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                // user nice system idle iowait irq softirq steal guest guest_nice
                let v: Vec<u64> = f.map(|x| x.parse().unwrap_or(0)).collect();
                let at = |i: usize| v.get(i).copied().unwrap_or(0);
                // guest time is already counted in user (and guest_nice in nice).
                let total = (0..8).map(at).sum::<u64>();
                let busy = at(0) + at(1) + at(2) + at(5) + at(6);
                sums = (total, busy, at(7));
            }
            Some(name) if name.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (sums.0, sums.1, sums.2, cpus)
}

/// utime + stime + cutime + cstime of `/proc/<pid>/stat`, and its parent.
fn proc_ticks(stat: &str) -> Option<(u32, u64)> {
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); ppid is field 4, utime..cstime fields 14..17.
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = (11..15)
        .map(|i| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum();
    Some((ppid, ticks))
}

/// The ticks of this process, its reaped children and every live descendant.
fn own_tree_ticks() -> u64 {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && let Some((ppid, ticks)) = proc_ticks(&stat)
        {
            procs.push((pid, ppid, ticks));
        }
    }
    let mut tree = vec![me];
    let mut total = 0;
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        for &(pid, ppid, ticks) in &procs {
            if pid == parent {
                total += ticks;
            }
            if ppid == parent && pid != parent && !tree.contains(&pid) {
                tree.push(pid);
            }
        }
        i += 1;
    }
    total
}

/// The `some` line's `total=` (µs) of a pressure file.
fn stall_total(path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with("some"))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_into_busy_steal_and_cpus() {
        let text =
            "cpu  100 10 50 800 20 5 5 10 0 0\ncpu0 50 5 25 400 10 2 3 5 0 0\ncpu1 50 5 25 400 10 3 2 5 0 0\nintr 1\n";
        assert_eq!(parse_stat(text), (1000, 170, 10, 2));
    }

    #[test]
    fn a_process_stat_with_spaces_in_its_name_parses() {
        let stat = "42 (a b) c) S 7 42 42 0 -1 4194304 100 0 0 0 11 22 3 4 20 0 1 0 5 1000 50";
        assert_eq!(proc_ticks(stat), Some((7, 40)));
    }

    #[test]
    fn a_busy_loop_of_our_own_is_not_counted_as_other_processes() {
        let before = Snapshot::take();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let n = before.until(&Snapshot::take());
        assert!(x > 0);
        if std::path::Path::new("/proc/stat").exists() {
            assert!(n.cpus >= 1);
            assert!(n.own_cpu_cores > 0.0, "{n:?}");
        }
    }
}
