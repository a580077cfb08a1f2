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

/// A temporary directory to remove even on the second signal's immediate exit.
pub(crate) fn remove_on_abort(path: &std::path::Path) {
    if let Ok(mut dirs) = TEMP_DIRS.lock() {
        dirs.push(path.to_path_buf());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
