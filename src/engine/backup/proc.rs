//! The `/proc` accounting of a backup's or a replica's process (CPU time, storage bytes)
//! and how their child processes are started and signalled.

use std::process::Command;

/// The child gets its own process group (a terminal's Ctrl-C reaches only litehammer, which
/// then stops it after its final sync) and SIGTERM when litehammer dies, however it dies.
pub(super) fn own_group_and_die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    crate::interrupt::die_with_parent(cmd, libc::SIGTERM);
}

pub(crate) fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a pid this process spawned and has not reaped.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// CPU seconds (user + system) and storage bytes read and written of a process.
pub(super) fn proc_usage(pid: u32) -> (f64, Option<u64>, Option<u64>) {
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_cpu_ticks(&s))
        .map_or(0.0, |t| t as f64 / clock_ticks());
    let (r, w) = io_bytes(&format!("/proc/{pid}/io"));
    (cpu, r, w)
}

/// utime + stime from a /proc stat line (fields 14 and 15, after the `(comm)`).
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

pub(super) fn io_bytes(path: &str) -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    (field("read_bytes:"), field("write_bytes:"))
}

pub(super) fn thread_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_cpu_ticks_from_stat() {
        let stat = "1234 (lite stream) S 1 1234 1234 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 8 0 100 0 0";
        assert_eq!(super::stat_cpu_ticks(stat), Some(22));
    }
}
