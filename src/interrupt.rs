//! The process's one cancellation token, from a command's first step to its last: the first
//! SIGINT/SIGTERM sets it and interrupts running SQL (`sqlite3_interrupt`); a second one
//! exits at once with status 130. Everything that waits polls it (the driver turns it into
//! the run's stop phase). A leaf module: anything may depend on it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static CANCELLED: AtomicBool = AtomicBool::new(false);
static NEXT: AtomicU64 = AtomicU64::new(0);
static RUNNING_SQL: Mutex<Vec<(u64, rusqlite::InterruptHandle)>> = Mutex::new(Vec::new());
static TEMP_DIRS: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// A temporary directory to remove even on the second signal's immediate exit. It is also
/// marked as this process's, so that the next litehammer removes it if a SIGKILL (which no
/// process can handle) leaves it behind: see [`sweep_stale`].
pub(crate) fn remove_on_abort(path: &std::path::Path) {
    if let Some(me) = Owner::me() {
        let _ = std::fs::write(path.join(OWNER_FILE), me.line());
    }
    if let Ok(mut dirs) = TEMP_DIRS.lock() {
        dirs.push(path.to_path_buf());
    }
}

/// The marker file naming the process that owns a temporary directory.
const OWNER_FILE: &str = ".litehammer-owner";

/// A process, told apart from any later one with its PID: its start time (clock ticks
/// since boot), the boot, and the PID namespace (a container's PIDs are not ours to judge).
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    pid: u32,
    start: u64,
    boot: String,
    pid_ns: String,
}

impl Owner {
    fn me() -> Option<Owner> {
        let pid = std::process::id();
        Some(Owner {
            pid,
            start: start_time(pid)?,
            boot: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()?
                .trim()
                .to_string(),
            pid_ns: std::fs::read_link("/proc/self/ns/pid").ok()?.display().to_string(),
        })
    }

    fn line(&self) -> String {
        format!("litehammer {} {} {} {}\n", self.pid, self.start, self.boot, self.pid_ns)
    }

    fn parse(text: &str) -> Option<Owner> {
        let mut f = text.split_whitespace();
        (f.next()? == "litehammer").then_some(())?;
        let owner = Owner {
            pid: f.next()?.parse().ok()?,
            start: f.next()?.parse().ok()?,
            boot: f.next()?.to_string(),
            pid_ns: f.next()?.to_string(),
        };
        f.next().is_none().then_some(owner)
    }

    /// Provably gone: same boot and PID namespace, and no process with its PID and start time.
    fn gone(&self, me: &Owner) -> bool {
        self.boot == me.boot && self.pid_ns == me.pid_ns && start_time(self.pid) != Some(self.start)
    }
}

/// Field 22 of /proc/PID/stat: the process's start time in clock ticks after boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Removes the temporary directories under `root` that a litehammer process marked as its
/// own and that outlived it (a SIGKILL, a power cut): the marker must parse, name this
/// user's directory (not a link), and a process that is provably gone; a directory holding
/// a throwaway PostgreSQL whose postmaster still runs is left. Returns what was removed.
pub(crate) fn sweep_stale(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let Some(me) = Owner::me() else {
        return Vec::new();
    };
    let uid = unsafe { libc::geteuid() };
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        // The marker, not the directory, is checked for the owner: a throwaway server's
        // directory is handed to the `postgres` user.
        let marker = dir.join(OWNER_FILE);
        let ours = std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file() && m.uid() == uid);
        if !meta.is_dir() || !ours {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&marker) else {
            continue;
        };
        let Some(owner) = Owner::parse(&text) else {
            continue;
        };
        let postmaster = std::fs::read_to_string(dir.join("data/postmaster.pid")).unwrap_or_default();
        let server_running = postmaster
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
            .is_some_and(|pid| start_time(pid).is_some());
        if owner.gone(&me) && !server_running && std::fs::remove_dir_all(&dir).is_ok() {
            removed.push(dir);
        }
    }
    removed
}

/// A child litehammer starts (the throwaway PostgreSQL server, the captured program,
/// Litestream) gets `sig` from the kernel when litehammer dies, however it dies (also by
/// SIGKILL): nothing it started outlives it. The signal is tied to the spawning thread, so
/// spawn from a thread that lives as long as the child (the command's own thread).
pub(crate) fn die_with_parent(cmd: &mut std::process::Command, sig: i32) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and raise are async-signal-safe; nothing else runs between
    // fork and exec. Set after any uid change, which would clear it.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0);
            // Litehammer died between the fork and the prctl: the kernel will not tell.
            if libc::getppid() != parent {
                libc::raise(sig);
            }
            Ok(())
        });
    }
}

static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A child process (a throwaway server) to kill on the second signal's immediate exit,
/// before the temporary directories go.
pub(crate) fn kill_on_abort(pid: u32) {
    if let Ok(mut pids) = CHILDREN.lock() {
        pids.push(pid);
    }
}

/// Whether the user asked to stop.
pub(crate) fn cancelled() -> bool {
    CANCELLED.load(Ordering::Acquire)
}

/// Cancels: as the first signal does (a worker process hears of it from the driver).
pub(crate) fn cancel() {
    CANCELLED.store(true, Ordering::Release);
    if let Ok(running) = RUNNING_SQL.lock() {
        running.iter().for_each(|(_, h)| h.interrupt());
    }
}

/// Installs the signal handling on a thread of its own (call once, before the first step).
pub(crate) fn install() {
    let _ = std::thread::Builder::new().name("signals".into()).spawn(|| {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            return;
        };
        rt.block_on(async {
            let mut count = 0;
            loop {
                wait_for_signal().await;
                count += 1;
                if count > 1 {
                    eprintln!("\nsecond interrupt: aborting without a report");
                    if let Ok(pids) = CHILDREN.lock() {
                        pids.iter().for_each(|&p| unsafe {
                            libc::kill(p as i32, libc::SIGKILL);
                        });
                        if !pids.is_empty() {
                            std::thread::sleep(std::time::Duration::from_millis(200));
                        }
                    }
                    if let Ok(dirs) = TEMP_DIRS.lock() {
                        dirs.iter().for_each(|d| {
                            let _ = std::fs::remove_dir_all(d);
                        });
                    }
                    std::process::exit(130);
                }
                eprintln!("\ninterrupted: stopping, writing what is done (Ctrl-C again to abort)");
                cancel();
            }
        });
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// While alive, a cancel interrupts the SQL running on `conn` (set-up, populate,
/// verification, validation). Interrupts at once when already cancelled.
pub(crate) struct Interruptible(u64);

pub(crate) fn interruptible(conn: &rusqlite::Connection) -> Interruptible {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    let handle = conn.get_interrupt_handle();
    if cancelled() {
        handle.interrupt();
    }
    if let Ok(mut running) = RUNNING_SQL.lock() {
        running.push((id, handle));
    }
    Interruptible(id)
}

impl Drop for Interruptible {
    fn drop(&mut self) {
        if let Ok(mut running) = RUNNING_SQL.lock() {
            running.retain(|(id, _)| *id != self.0);
        }
    }
}

/// Why a child run with [`output_within`] gave no output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChildError {
    #[error("cannot run it: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("gave no answer within {} s, so it was killed", .0.as_secs())]
    TimedOut(std::time::Duration),
    #[error("was killed: litehammer was interrupted (Ctrl-C or SIGTERM) while it ran")]
    Interrupted,
}

/// A short-lived helper program (initdb, `litestream version`, `litestream restore`) run to
/// its end as `Command::output` does, but never waited for forever: past `limit`, or when
/// the user cancels, it and every process it started (its own process group) are killed.
/// What it printed is kept up to 1 MiB per stream.
pub(crate) fn output_within(
    cmd: &mut std::process::Command,
    limit: std::time::Duration,
) -> Result<std::process::Output, ChildError> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    die_with_parent(cmd, libc::SIGKILL);
    let mut child = cmd.spawn().map_err(ChildError::Spawn)?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(1 << 20).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => return Err(ChildError::Spawn(e)),
        }
        let why = if cancelled() {
            Some(ChildError::Interrupted)
        } else if std::time::Instant::now() >= deadline {
            Some(ChildError::TimedOut(limit))
        } else {
            None
        };
        if let Some(why) = why {
            // SAFETY: kill(2) on the process group this function created for the child.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.wait();
            return Err(why);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// The name of a signal that ends processes, for messages ("killed by signal 9 (SIGKILL)").
pub(crate) fn signal_name(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_directories_of_processes_provably_gone_are_swept() {
        let root = tempfile::tempdir().unwrap();
        let me = Owner::me().unwrap();
        // A process that has ended: its PID with a start time no live process has.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let dead = Owner {
            pid: dead_pid,
            start: 1,
            ..Owner::me().unwrap()
        };
        let make = |name: &str, marker: Option<String>| {
            let d = root.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("run.db"), "x").unwrap();
            if let Some(m) = marker {
                std::fs::write(d.join(OWNER_FILE), m).unwrap();
            }
            d
        };
        let stale = make("litehammer-stale", Some(dead.line()));
        let live = make("litehammer-live", Some(me.line()));
        let unmarked = make("litehammer-unmarked", None);
        let garbled = make("litehammer-garbled", Some("litehammer 12 x".into()));
        let other_boot = make(
            "litehammer-other-boot",
            Some(
                Owner {
                    boot: "another-boot".into(),
                    ..Owner::parse(&dead.line()).unwrap()
                }
                .line(),
            ),
        );
        // A link to a stale directory is not followed.
        let target = make("elsewhere", Some(dead.line()));
        std::os::unix::fs::symlink(&target, root.path().join("litehammer-link")).unwrap();
        let removed = sweep_stale(root.path());
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(!stale.exists() && !target.exists());
        for kept in [&live, &unmarked, &garbled, &other_boot] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        assert_eq!(Owner::parse(&me.line()), Some(me));
    }

    #[test]
    fn a_child_that_hangs_is_killed_with_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild");
        // The shell starts a grandchild that would outlive a kill of the shell alone.
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("sleep 300 & echo $! > {}; wait", pidfile.display()));
        let e = output_within(&mut cmd, std::time::Duration::from_millis(300)).unwrap_err();
        assert!(matches!(e, ChildError::TimedOut(_)), "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Reaped by init, or a zombie at most: never still sleeping.
        let gone = (0..100).any(|_| {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = state.split(") ").nth(1).is_some_and(|s| !s.starts_with('Z'));
            if alive {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "the grandchild {pid} outlived the timeout");
    }

    #[test]
    fn a_child_that_ends_gives_its_output_and_status() {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg("echo out; echo err >&2; exit 3");
        let o = output_within(&mut cmd, std::time::Duration::from_secs(60)).unwrap();
        assert_eq!(o.status.code(), Some(3));
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
    }
}
