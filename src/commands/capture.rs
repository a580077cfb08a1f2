//! `litehammer capture`: run a command with the preload library and merge what it recorded
//! into one trace (protocol: docs/trace-format.md, code: trace/src/protocol.rs).

use crate::cli::CaptureArgs;
use crate::error::{InputError, Status};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use litehammer_trace::protocol as proto;

const BUILD_HINT: &str = "build it with `cargo build -p litehammer-capture` (it lands in target/debug/; \
`cargo build --workspace` builds it next to litehammer), or point --lib or $LITEHAMMER_CAPTURE_LIB at it";

const NOTHING_SEEN: &str = "\
no SQLite call was seen: the command ran, but the capture library recorded no connection.
Likely reasons:
  - it does not use SQLite, or not during this run;
  - its SQLite is linked statically, so LD_PRELOAD cannot intercept it: Go (mattn/go-sqlite3,
    modernc.org/sqlite), Node's better-sqlite3, Ruby's sqlite3 gem (bundled build), rusqlite
    `bundled`, a static binary;
  - it is a setuid/setgid program (the loader ignores LD_PRELOAD for those);
  - a wrapper cleared the environment (LD_PRELOAD, LITEHAMMER_CAPTURE_OUT) before starting it.
Python's sqlite3 on Debian/Ubuntu and PHP's pdo_sqlite link libsqlite3 dynamically and work.";

/// Finds the library: the first candidate that exists, or a clear error listing where it looked.
fn find_library(explicit: Option<&Path>) -> Result<PathBuf, InputError> {
    let candidates = proto::library_candidates(explicit);
    if let Some(p) = explicit {
        let why = match std::fs::metadata(p) {
            Ok(m) if m.is_file() => return Ok(p.to_path_buf()),
            Ok(m) if m.is_dir() => "is a directory, not the library file".to_string(),
            Ok(_) => "is not a regular file (a device, FIFO or socket), not the library file".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "no such file".to_string(),
            Err(e) => format!("cannot be read: {e}"),
        };
        return Err(InputError::new(
            format!("--lib {}", p.display()),
            format!("{why}; {BUILD_HINT}"),
        ));
    }
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(InputError::new(
        proto::LIBRARY_FILE_NAME,
        format!(
            "the capture library was not found (looked in: {}); {BUILD_HINT}",
            looked.join(", ")
        ),
    ))
}

pub(crate) fn capture(args: CaptureArgs) -> anyhow::Result<Status> {
    if let Some(which) = args.snippet {
        crate::commands::snippet::print(which);
        return Ok(Status::Ok);
    }
    let Some((program, rest)) = args.command.split_first() else {
        return Err(InputError::new("capture", "expected the command to run after `--`").into());
    };
    let Some(output) = args.output.as_deref() else {
        return Err(InputError::new("capture", "expected -o TRACE.jsonl").into());
    };
    let library = find_library(args.lib.as_deref())?;
    let library = library.canonicalize().unwrap_or(library);
    // The one output check every command that writes shares (before the command runs): a
    // regular file or nothing, never a link, a device, a FIFO, a directory, the preload
    // library or the program captured.
    let mut inputs: Vec<(&str, &Path)> = vec![("capture library", library.as_path())];
    let program_path = Path::new(program);
    if program.as_encoded_bytes().contains(&b'/') {
        inputs.push(("command being captured", program_path));
    }
    crate::report::output::check(&[crate::report::output::Target::new("-o", output)], &inputs)?;
    let out_dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parts_dir = tempfile::Builder::new()
        .prefix(".litehammer-capture-")
        .tempdir_in(&out_dir)
        .map_err(|e| {
            InputError::new(
                format!("-o {}", output.display()),
                format!("cannot create a directory for the part files beside it: {e}"),
            )
        })?;
    let prefix = parts_dir.path().canonicalize()?.join("trace");
    let env = proto::child_env(
        &library,
        &prefix,
        args.redact,
        std::env::var_os("LD_PRELOAD").as_deref(),
    );

    let mut cmd = Command::new(program);
    cmd.args(rest).envs(env);
    // Its own process group: a Ctrl-C at the terminal reaches litehammer, which forwards it
    // once (the command would otherwise get it twice).
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // A SIGKILL of litehammer leaves no captured program running: it gets SIGTERM.
    crate::interrupt::die_with_parent(&mut cmd, libc::SIGTERM);
    let child = cmd.spawn().map_err(|e| {
        let what = program.to_string_lossy();
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "command not found".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied (not executable?)".to_string(),
            _ => e.to_string(),
        };
        InputError::new(format!("capture -- {what}"), why)
    })?;
    eprintln!(
        "capturing `{}` (pid {}) with {}",
        args.command
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        child.id(),
        library.display()
    );
    let status = wait_forwarding_signals(child)?;

    let parts = proto::find_parts(&prefix).with_context(|| format!("cannot list {}", parts_dir.path().display()))?;
    let code = exit_code(status);
    let killed = killed_by(status);
    if parts.is_empty() {
        nothing_seen(program, killed.as_deref());
        return Ok(status_from_code(code.max(1)));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".litehammer-trace-")
        .tempfile_in(&out_dir)
        .with_context(|| format!("cannot create a file in {}", out_dir.display()))?;
    let stats = {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        proto::merge(&parts, &mut w).map_err(|e| anyhow::anyhow!("cannot merge the part files: {e}"))?
    };
    if stats.nothing_seen() {
        nothing_seen(program, killed.as_deref());
        return Ok(status_from_code(code.max(1)));
    }
    tmp.persist(output)
        .with_context(|| format!("cannot write {}", output.display()))?;
    let (pids, conns) = count_processes_and_connections(output)?;
    println!(
        "{}: {} events ({} statements, {} opens, {} closes), {} connection(s), {} process(es), {} thread file(s){}{}",
        output.display(),
        stats.events,
        stats.by_kind.get("stmt").copied().unwrap_or(0),
        stats.by_kind.get("open").copied().unwrap_or(0),
        stats.by_kind.get("close").copied().unwrap_or(0),
        conns,
        pids,
        stats.files,
        if args.redact { ", literals redacted" } else { "" },
        if stats.truncated_lines > 0 {
            format!(
                "; {} truncated line(s) dropped (a process killed while writing)",
                stats.truncated_lines
            )
        } else {
            String::new()
        },
    );
    if args.keep_parts {
        let kept = parts_dir.keep();
        println!("part files kept in {}", kept.display());
    }
    match &killed {
        Some(how) => eprintln!(
            "the command was {how}: the trace holds what the capture library had written before \
             (it writes every {} KiB per thread, on sqlite3_close and at a normal exit)",
            proto::FLUSH_AT / 1024
        ),
        None if code != 0 => eprintln!("the command exited with status {code}"),
        None => {}
    }
    Ok(status_from_code(code))
}

/// "killed by signal 9 (SIGKILL)" when the command died of a signal.
fn killed_by(status: ExitStatus) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let sig = status.signal()?;
    let name = crate::interrupt::signal_name(sig).map_or(String::new(), |n| format!(" ({n})"));
    Some(format!("killed by signal {sig}{name}"))
}

/// Says nothing was seen, and why: the command's death by a signal first, when it died so;
/// else the usual reasons, and which framework route records this program instead.
fn nothing_seen(program: &std::ffi::OsStr, killed: Option<&str>) {
    if let Some(how) = killed {
        eprintln!(
            "no SQLite call was recorded: the command was {how}. The capture library writes what it \
             records every {} KiB per thread, on sqlite3_close and at a normal exit, so a program \
             killed before any of these leaves nothing. Capture it again and let it exit normally \
             (Ctrl-C is forwarded to it).",
            proto::FLUSH_AT / 1024
        );
        return;
    }
    eprintln!("{NOTHING_SEEN}");
    if let Some((route, why)) = crate::commands::snippet::SnippetFor::for_program(program) {
        let name = format!("{route:?}").to_ascii_lowercase();
        eprintln!(
            "For `{}`: {why}. Record it from inside instead: `litehammer capture --snippet {name}` prints what to \
             add; `litehammer import` reads what it writes (docs/capture.md).",
            program.to_string_lossy()
        );
    } else {
        eprintln!(
            "Where SQLite is compiled in, record from inside the app: `litehammer capture --snippet \
             rails|django|node|go|otel` (docs/capture.md)."
        );
    }
}

/// Distinct pids and (pid, conn) pairs of a merged trace.
fn count_processes_and_connections(path: &Path) -> anyhow::Result<(usize, usize)> {
    use std::collections::HashSet;
    use std::io::BufRead;
    let file = std::fs::File::open(path)?;
    let (mut pids, mut conns) = (HashSet::new(), HashSet::new());
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        let pid = proto::top_level_field(&line, "pid").map(str::to_string);
        if proto::top_level_field(&line, "kind") == Some("\"header\"") {
            continue;
        }
        if let Some(pid) = pid {
            if let Some(conn) = proto::top_level_field(&line, "conn") {
                conns.insert((pid.clone(), conn.to_string()));
            }
            pids.insert(pid);
        }
    }
    Ok((pids.len(), conns.len()))
}

fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1)
}

fn status_from_code(code: i32) -> Status {
    match code {
        0 => Status::Ok,
        130 => Status::Interrupted,
        c => Status::Code(c.clamp(1, 255) as u8),
    }
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// How long the command has to exit after a forwarded signal before its process group is
/// killed.
const GRACE: Duration = Duration::from_secs(3);

/// Waits for the child, forwarding SIGINT, SIGTERM and SIGHUP to it so it can exit normally
/// and the library can flush what it buffered. A command that has not exited `GRACE` after
/// the signal, or a second signal, gets SIGKILL (with every process of its group): a capture
/// always ends when asked to.
fn wait_forwarding_signals(mut child: Child) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the signal handler")?;
    let pid = child.id() as i32;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        // Under `nohup` SIGHUP is ignored, in the command too (an ignored signal stays ignored
        // across exec): then a hangup is not ours to act on, and listening would undo nohup.
        let mut hup = if ignored(libc::SIGHUP) {
            None
        } else {
            Some(signal(SignalKind::hangup())?)
        };
        let mut asked: Option<tokio::time::Instant> = None;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            let sig = tokio::select! {
                _ = int.recv() => Some(SIGINT),
                _ = term.recv() => Some(SIGTERM),
                Some(_) = async { Some(hup.as_mut()?.recv().await) } => Some(libc::SIGHUP),
                _ = tokio::time::sleep(Duration::from_millis(20)) => None,
            };
            match (sig, asked) {
                (Some(sig), None) => {
                    forward(pid, sig);
                    asked = Some(tokio::time::Instant::now());
                }
                (Some(_), Some(_)) => forward(-pid, libc::SIGKILL),
                (None, Some(at)) if at.elapsed() >= GRACE => {
                    eprintln!(
                        "the command did not exit within {} s of the signal: killing it",
                        GRACE.as_secs()
                    );
                    forward(-pid, libc::SIGKILL);
                    asked = Some(tokio::time::Instant::now() + Duration::from_secs(3600));
                }
                _ => {}
            }
        }
    })
}

/// Whether `sig` is ignored in this process (inherited, as `nohup` leaves SIGHUP).
fn ignored(sig: i32) -> bool {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

fn forward(pid: i32, sig: i32) {
    // SAFETY: kill(2) with the pid of our own child, which we have not reaped yet.
    unsafe {
        kill(pid, sig);
    }
}
