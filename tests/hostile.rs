//! Hostile input, faults and signals (issue #14): one table row per case, driving the real
//! binary. Every row gives the command and its set-up, the exit codes allowed, key words of
//! the message, and a timeout; every row also asserts "no panic (101), no hang, no temp
//! directory left behind in TMPDIR" unless it says otherwise. The classes are the issue's:
//! 1 data loss, 2 unsafe writes, 3 SQL reaching outside the run, 4 panics, 5 hangs and
//! runaway resources, 6 misleading success, 7 signals outside the measured phase,
//! 8 compare as a CI gate, 9 generators, 10 validate says ok but run fails, 11 text injection.
//! Round 3 (issue #26): 12 hangs and sizes of the application model and worker processes,
//! 13 capture/import outputs, 14 printed text, 15 secrets, 16 silent successes,
//! 17 PostgreSQL external files, 18 children die with litehammer, 19 misleading messages,
//! 20 bad combinations (--kill, litestream's journal mode) and `crash --beside` inputs,
//! 21 helper programs that hang (initdb, litestream) and the throwaway server's environment.
//!
//! `HOSTILE_STATUS=FILE cargo test --test hostile` appends one line per case to FILE;
//! `HOSTILE_CASE=TEXT` runs only the cases whose name contains TEXT.

mod common;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The runner

/// A case's private directory (also the command's working directory) and its TMPDIR.
struct Ctx {
    dir: PathBuf,
    tmp: PathBuf,
    _guard: tempfile::TempDir,
}

impl Ctx {
    fn new() -> Self {
        let guard = tempfile::tempdir().unwrap();
        let dir = guard.path().canonicalize().unwrap();
        let tmp = dir.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        std::fs::create_dir(dir.join("db")).unwrap();
        Ctx {
            dir,
            tmp,
            _guard: guard,
        }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn s(&self, name: &str) -> String {
        self.p(name).display().to_string()
    }

    fn write(&self, name: &str, text: &str) -> String {
        std::fs::write(self.p(name), text).unwrap();
        self.s(name)
    }

    /// Runs litehammer to completion (set-up steps of a case), with the case's environment.
    fn lh(&self, args: &[String]) -> std::process::Output {
        let mut cmd = Command::new(lh_path());
        cmd.args(args);
        self.env(&mut cmd);
        let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        wait_output(child, Duration::from_secs(60))
    }

    fn env(&self, cmd: &mut Command) {
        cmd.current_dir(&self.dir)
            .env("TMPDIR", &self.tmp)
            .env_remove("LITEHAMMER_FAULT")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
    }

    /// A report of TINY's two configurations (wal, delete), as JSON to mutate.
    fn base_report(&self) -> Value {
        serde_json::from_str(base_report_text()).unwrap()
    }

    fn write_json(&self, name: &str, v: &Value) -> String {
        self.write(name, &serde_json::to_string_pretty(v).unwrap())
    }

    /// Names of the entries of a directory of the case.
    fn ls(&self, name: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.p(name))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn wait_output(mut child: std::process::Child, limit: Duration) -> std::process::Output {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() || start.elapsed() > limit {
            let _ = child.kill();
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lh_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("litehammer")
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[derive(Clone, Copy, Debug)]
enum Sig {
    Int,
    Term,
    Kill,
}

impl Sig {
    fn name(self) -> &'static str {
        match self {
            Sig::Int => "INT",
            Sig::Term => "TERM",
            Sig::Kill => "KILL",
        }
    }
}

/// Signals sent while the command runs: each after its stderr marker appeared (if any)
/// and then `delay`.
#[derive(Clone, Debug)]
struct Signal {
    sig: Sig,
    after_stderr: Option<&'static str>,
    delay: Duration,
    /// After the (last) signal, the process must exit within this.
    exit_within: Duration,
}

/// How the command is started.
#[derive(Clone, Copy)]
enum Prog {
    Litehammer,
    /// As PID 1 of a new PID namespace (the container case).
    Pid1,
    /// In a private mount namespace, with a 2 MiB tmpfs mounted on `<case>/db`.
    SmallDisk,
}

type Args = Box<dyn Fn(&Ctx) -> Vec<String>>;
type After = Box<dyn Fn(&Ctx, &Out) -> Result<(), String>>;

struct Case {
    class: u8,
    name: &'static str,
    args: Args,
    prog: Prog,
    /// Allowed exit codes; empty: the process is expected to die of our SIGKILL.
    codes: Vec<i32>,
    stderr: Vec<&'static str>,
    stdout: Vec<&'static str>,
    /// Words that must not appear in stderr (e.g. "[1/" for "checked before the first run").
    not_stderr: Vec<&'static str>,
    timeout: Duration,
    signals: Vec<Signal>,
    after: Option<After>,
    /// TMPDIR may keep entries (SIGKILL cases).
    leftovers_ok: bool,
    /// The case needs root (device nodes, namespaces); skipped otherwise.
    root: bool,
    /// Extra environment of the command; `{dir}` in a value is the case's directory.
    envs: Vec<(&'static str, &'static str)>,
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Time from the last signal to the exit.
    after_signal: Option<Duration>,
}

fn case(class: u8, name: &'static str, args: impl Fn(&Ctx) -> Vec<String> + 'static) -> Case {
    Case {
        class,
        name,
        args: Box::new(args),
        prog: Prog::Litehammer,
        codes: vec![0],
        stderr: Vec::new(),
        stdout: Vec::new(),
        not_stderr: Vec::new(),
        timeout: Duration::from_secs(20),
        signals: Vec::new(),
        after: None,
        leftovers_ok: false,
        root: false,
        envs: Vec::new(),
    }
}

impl Case {
    fn code(mut self, code: i32) -> Self {
        self.codes = vec![code];
        self
    }
    fn codes(mut self, codes: &[i32]) -> Self {
        self.codes = codes.to_vec();
        self
    }
    fn killed(mut self) -> Self {
        self.codes = Vec::new();
        self.leftovers_ok = true;
        self
    }
    fn err(mut self, words: &[&'static str]) -> Self {
        self.stderr.extend(words);
        self
    }
    fn out(mut self, words: &[&'static str]) -> Self {
        self.stdout.extend(words);
        self
    }
    fn not_err(mut self, words: &[&'static str]) -> Self {
        self.not_stderr.extend(words);
        self
    }
    /// Refused before anything ran: no run progress line, no measuring.
    fn before_run(self) -> Self {
        self.not_err(&["[1/"])
    }
    fn secs(mut self, s: u64) -> Self {
        self.timeout = Duration::from_secs(s);
        self
    }
    fn signal(mut self, sig: Sig, after_stderr: Option<&'static str>, delay_ms: u64, exit_within_s: u64) -> Self {
        self.signals.push(Signal {
            sig,
            after_stderr,
            delay: Duration::from_millis(delay_ms),
            exit_within: Duration::from_secs(exit_within_s),
        });
        self
    }
    fn after(mut self, f: impl Fn(&Ctx, &Out) -> Result<(), String> + 'static) -> Self {
        self.after = Some(Box::new(f));
        self
    }
    fn prog(mut self, prog: Prog) -> Self {
        self.prog = prog;
        self.root = !matches!(prog, Prog::Litehammer);
        self
    }
    fn root(mut self) -> Self {
        self.root = true;
        self
    }
    fn env(mut self, key: &'static str, value: &'static str) -> Self {
        self.envs.push((key, value));
        self
    }
}

fn execute(c: &Case, ctx: &Ctx) -> Result<Out, String> {
    let args = (c.args)(ctx);
    let lh = lh_path();
    let mut cmd = match c.prog {
        Prog::Litehammer => {
            let mut cmd = Command::new(&lh);
            cmd.args(&args);
            cmd
        }
        Prog::Pid1 => {
            let mut cmd = Command::new("unshare");
            cmd.args(["--pid", "--fork", "--kill-child"]).arg(&lh).args(&args);
            cmd
        }
        Prog::SmallDisk => {
            let mut cmd = Command::new("unshare");
            let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
            cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o size=2m tmpfs '{}' && exec '{}' {}",
                    ctx.p("db").display(),
                    lh.display(),
                    quoted.join(" ")
                ));
            cmd
        }
    };
    ctx.env(&mut cmd);
    // Bounds for a binary that does not bound itself yet: 3 GB of address space (so 10k
    // threads fail to start instead of exhausting the machine), 1 GB per file written.
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut bounded = Command::new("prlimit");
    bounded
        .args(["--as=3000000000", "--fsize=1000000000", "--"])
        .arg(program)
        .args(args);
    let mut cmd = bounded;
    ctx.env(&mut cmd);
    for (key, value) in &c.envs {
        cmd.env(key, value.replace("{dir}", &ctx.dir.display().to_string()));
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let pid = child.id();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let stderr = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut r = BufReader::new(pipe);
            let mut line = Vec::new();
            while r.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
                stderr.lock().unwrap().push_str(&String::from_utf8_lossy(&line));
                line.clear();
            }
        })
    };
    let out_reader = {
        let mut pipe = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).to_string()
        })
    };
    let start = Instant::now();
    let mut pending: Vec<Signal> = c.signals.clone();
    pending.reverse();
    let mut marker_seen: Option<Instant> = None;
    let mut last_signal: Option<(Instant, Duration)> = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > c.timeout {
            break None;
        }
        if let Some(sig) = pending.last() {
            let seen = match sig.after_stderr {
                None => Some(start),
                Some(m) => marker_seen.or_else(|| stderr.lock().unwrap().contains(m).then(Instant::now)),
            };
            marker_seen = seen.filter(|_| sig.after_stderr.is_some());
            if let Some(t) = seen
                && t.elapsed() >= sig.delay
            {
                let target = match c.prog {
                    Prog::Litehammer => pid.to_string(),
                    // The first process of the namespace is litehammer; signal it through the group.
                    _ => format!("-{pid}"),
                };
                send(sig.sig.name(), &target);
                last_signal = Some((Instant::now(), sig.exit_within));
                marker_seen = None;
                pending.pop();
                // A signal with no delay follows at once, not one poll later.
                if pending
                    .last()
                    .is_some_and(|n| n.after_stderr.is_none() && n.delay.is_zero())
                {
                    continue;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let ended = Instant::now();
    if status.is_none() {
        send("KILL", &format!("-{pid}"));
        let _ = child.wait();
    }
    reader.join().unwrap();
    let stdout = out_reader.join().unwrap();
    let stderr = stderr.lock().unwrap().clone();
    let Some(status) = status else {
        return Err(format!(
            "hang: no exit within {:?}{}; stderr: {}",
            c.timeout,
            if pending.is_empty() {
                ""
            } else {
                " (signals still pending)"
            },
            tail(&stderr)
        ));
    };
    if !pending.is_empty() {
        return Err(format!(
            "exited ({:?}) before all signals were sent; stderr: {}",
            status.code(),
            tail(&stderr)
        ));
    }
    let after_signal = last_signal.map(|(t, _)| ended.duration_since(t));
    if let Some((t, within)) = last_signal
        && ended.duration_since(t) > within
    {
        return Err(format!(
            "took {:?} to exit after the signal (limit {within:?}); stderr: {}",
            ended.duration_since(t),
            tail(&stderr)
        ));
    }
    Ok(Out {
        code: status.code(),
        stdout,
        stderr,
        after_signal,
    })
}

/// `kill -s SIG -- TARGET` (a negative target is a process group; without `--` the
/// util-linux kill takes it for an option and signals nothing).
fn send(sig: &str, target: &str) {
    assert!(
        target.trim_start_matches('-').parse::<u32>().is_ok_and(|p| p > 1),
        "{target}"
    );
    let _ = Command::new("kill").args(["-s", sig, "--", target]).status();
}

fn tail(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let start = chars.len().saturating_sub(700);
    chars[start..].iter().collect::<String>().replace('\n', "⏎ ")
}

fn check(c: &Case, ctx: &Ctx) -> Result<(), String> {
    let out = execute(c, ctx)?;
    let ctx_err = || tail(&out.stderr);
    if out.code == Some(101) || out.stderr.contains("panicked") {
        return Err(format!("panic (exit {:?}): {}", out.code, ctx_err()));
    }
    if c.codes.is_empty() {
        if out.code.is_some() {
            return Err(format!("expected death by SIGKILL, got exit {:?}", out.code));
        }
    } else if !out.code.is_some_and(|code| c.codes.contains(&code)) {
        return Err(format!(
            "exit {:?}, expected {:?}; stderr: {}",
            out.code,
            c.codes,
            ctx_err()
        ));
    }
    let lower = out.stderr.to_lowercase();
    for w in &c.stderr {
        if !lower.contains(&w.to_lowercase()) {
            return Err(format!("stderr lacks {w:?}: {}", ctx_err()));
        }
    }
    for w in &c.not_stderr {
        if out.stderr.contains(w) {
            return Err(format!("stderr has {w:?} (should not): {}", ctx_err()));
        }
    }
    let lower_out = out.stdout.to_lowercase();
    for w in &c.stdout {
        if !lower_out.contains(&w.to_lowercase()) {
            return Err(format!("stdout lacks {w:?}: {}", tail(&out.stdout)));
        }
    }
    if let Some(after) = &c.after {
        after(ctx, &out)?;
    }
    if !c.leftovers_ok {
        let left = ctx.ls("tmp");
        if !left.is_empty() {
            return Err(format!("left behind in TMPDIR: {left:?}"));
        }
    }
    let _ = out.after_signal;
    Ok(())
}

fn run_class(class: u8) {
    let only = std::env::var("HOSTILE_CASE").ok();
    let cases: Vec<Case> = all_cases()
        .into_iter()
        .filter(|c| c.class == class && only.as_ref().is_none_or(|o| c.name.contains(o.as_str())))
        .collect();
    let root = is_root();
    let mut failures = Vec::new();
    let status = |line: String| {
        if let Ok(file) = std::env::var("HOSTILE_STATUS") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
            writeln!(f, "{line}").unwrap();
        }
    };
    for c in &cases {
        if c.root && !root {
            status(format!("class {class} | {} | SKIP (needs root)", c.name));
            continue;
        }
        let ctx = Ctx::new();
        match check(c, &ctx) {
            Ok(()) => status(format!("class {class} | {} | PASS", c.name)),
            Err(e) => {
                status(format!("class {class} | {} | FAIL | {e}", c.name));
                failures.push(format!("[{}] {e}", c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "class {class}: {} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// Scenario building blocks

/// One writer inserting into `t`, 300 ms, no warm-up: the smallest useful run.
const MIN: &str = r#"name = "h"
duration = "300ms"
warmup = "0s"
seed = 1

[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"

[[group]]
name = "w"
workers = 1

[[group.op]]
name = "ins"
sql = "INSERT INTO t(v) VALUES (?1)"
params = ["text(5)"]
"#;

/// MIN with extra top-level keys.
fn head(extra: &str) -> String {
    MIN.replacen("seed = 1\n", &format!("seed = 1\n{extra}\n"), 1)
}

/// MIN with `from` replaced by `to` (must occur).
fn with(from: &str, to: &str) -> String {
    assert!(MIN.contains(from), "{from}");
    MIN.replacen(from, to, 1)
}

fn tail_with(extra: &str) -> String {
    format!("{MIN}\n{extra}\n")
}

/// MIN with its set-up SQL replaced.
fn setup_sql(sql: &str) -> String {
    with(
        "sql = \"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"",
        &format!("sql = '''{sql}'''"),
    )
}

/// MIN with the op's SQL and params replaced.
fn op(sql: &str, params: &str) -> String {
    with(
        "sql = \"INSERT INTO t(v) VALUES (?1)\"\nparams = [\"text(5)\"]",
        &format!("sql = '''{sql}'''\nparams = {params}"),
    )
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `validate FILE` of a scenario text.
fn validate(text: String) -> impl Fn(&Ctx) -> Vec<String> {
    move |c| vec!["validate".into(), c.write("s.toml", &text)]
}

fn validate_with(text: String, extra: &'static [&'static str]) -> impl Fn(&Ctx) -> Vec<String> {
    move |c| {
        let mut v = vec!["validate".into(), c.write("s.toml", &text)];
        v.extend(strs(extra));
        v
    }
}

/// `run FILE --no-probe -o r.json --db-dir db` plus `extra`.
fn run_args(c: &Ctx, text: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec!["run".into(), c.write("s.toml", text), "--no-probe".into()];
    if !extra.contains(&"-o") {
        v.extend(["-o".into(), c.s("r.json")]);
    }
    v.extend(["--db-dir".into(), c.s("db")]);
    v.extend(strs(extra));
    v
}

fn run(text: String, extra: &'static [&'static str]) -> impl Fn(&Ctx) -> Vec<String> {
    move |c| run_args(c, &text, extra)
}

/// A run of MIN with the given flags.
fn run_min(extra: &'static [&'static str]) -> impl Fn(&Ctx) -> Vec<String> {
    run(MIN.to_string(), extra)
}

fn report_status(c: &Ctx, name: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(c.p(name)).map_err(|e| format!("no report {name}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("report {name} is not JSON: {e}"))?;
    Ok(v["status"].as_str().unwrap_or("").to_string())
}

fn expect_status(name: &'static str, want: &'static str) -> impl Fn(&Ctx, &Out) -> Result<(), String> {
    move |c, _| {
        let got = report_status(c, name)?;
        (got == want)
            .then_some(())
            .ok_or(format!("report status `{got}`, expected `{want}`"))
    }
}

fn unchanged(name: &'static str, content: &'static str) -> impl Fn(&Ctx, &Out) -> Result<(), String> {
    move |c, _| {
        let meta = std::fs::symlink_metadata(c.p(name)).map_err(|e| format!("{name} is gone: {e}"))?;
        if !meta.file_type().is_file() {
            return Err(format!("{name} is no longer a regular file"));
        }
        let now = std::fs::read_to_string(c.p(name)).unwrap_or_default();
        (now == content)
            .then_some(())
            .ok_or(format!("{name} was changed: {now:?}"))
    }
}

fn absent(name: &'static str) -> impl Fn(&Ctx, &Out) -> Result<(), String> {
    move |c, _| match std::fs::symlink_metadata(c.p(name)) {
        Ok(_) => Err(format!("{name} exists")),
        Err(_) => Ok(()),
    }
}

/// No database files left in `<case>/db`.
fn db_dir_clean(c: &Ctx, _: &Out) -> Result<(), String> {
    let left = c.ls("db");
    left.is_empty()
        .then_some(())
        .ok_or(format!("left in --db-dir: {left:?}"))
}

fn symlink(c: &Ctx, target: &str, link: &str) {
    std::os::unix::fs::symlink(c.p(target), c.p(link)).unwrap();
}

/// A table `x` with one row in `other.db`, for ATTACH cases.
fn other_db(c: &Ctx) -> String {
    let path = c.p("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE x(a); INSERT INTO x VALUES (1);")
        .unwrap();
    path.display().to_string()
}

fn other_db_intact(c: &Ctx, _: &Out) -> Result<(), String> {
    let conn = rusqlite::Connection::open(c.p("other.db")).map_err(|e| e.to_string())?;
    let n: i64 = conn
        .query_row("SELECT count(*) FROM x", [], |r| r.get(0))
        .map_err(|e| format!("other.db was changed: {e}"))?;
    (n == 1).then_some(()).ok_or(format!("other.db.x has {n} rows"))
}

fn base_report_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let ctx = Ctx::new();
        let scenario = ctx.write("tiny.toml", common::TINY);
        let out = ctx.lh(&strs(&[
            "run",
            &scenario,
            "--no-probe",
            "--duration",
            "200ms",
            "--warmup",
            "0s",
            "--db-dir",
            &ctx.s("db"),
            "-o",
            &ctx.s("base.json"),
            "-q",
        ]));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(ctx.p("base.json")).unwrap()
    })
}

/// A report with `edit` applied, written as `name`.
fn mutated_report(c: &Ctx, name: &str, edit: &dyn Fn(&mut Value)) -> String {
    let mut v = c.base_report();
    edit(&mut v);
    c.write_json(name, &v)
}

fn fail_run(run: &mut Value) {
    run["status"] = "failed".into();
    run["error"] = "worker 0: disk I/O error".into();
    run["groups"] = Value::Array(Vec::new());
}

// ---------------------------------------------------------------------------------------
// The table

fn all_cases() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(class_1());
    v.extend(class_2());
    v.extend(class_3());
    v.extend(class_4());
    v.extend(class_5());
    v.extend(class_6());
    v.extend(class_7());
    v.extend(class_8());
    v.extend(class_9());
    v.extend(class_10());
    v.extend(class_11());
    v.extend(class_12());
    v.extend(class_13());
    v.extend(class_14());
    v.extend(class_15());
    v.extend(class_16());
    v.extend(class_17());
    v.extend(class_18());
    v.extend(class_19());
    v.extend(class_20());
    v.extend(class_21());
    v
}

/// Files litehammer as PID 1 would pick first for a one-cell run of MIN in `db`.
const PID1_NAMES: [&str; 3] = ["litehammer-1-0-default.db", "litehammer-1-0-.db", "litehammer-1-0-h.db"];

fn class_1() -> Vec<Case> {
    vec![
        // The issue's example: the chosen name exists; it was refused, then deleted.
        case(1, "pid1: existing database at the chosen name is left alone", |c| {
            for name in PID1_NAMES {
                for suffix in ["", "-wal", "-journal"] {
                    std::fs::write(c.p("db").join(format!("{name}{suffix}")), "precious").unwrap();
                }
            }
            run_args(c, MIN, &[])
        })
        .prog(Prog::Pid1)
        .codes(&[0])
        .after(|c, _| {
            for name in PID1_NAMES {
                for suffix in ["", "-wal", "-journal"] {
                    let p = c.p("db").join(format!("{name}{suffix}"));
                    if std::fs::read_to_string(&p).ok().as_deref() != Some("precious") {
                        return Err(format!("{} was deleted or changed", p.display()));
                    }
                }
            }
            Ok(())
        }),
        // The issue's second example: --keep-db, then a second run as PID 1 in the same dir.
        case(
            1,
            "pid1: a database kept by the previous run survives the next run",
            |c| {
                let mut first = strs(&["--pid", "--fork", "--kill-child"]);
                first.push(lh_path().display().to_string());
                first.extend(run_args(c, MIN, &["--keep-db", "-q"]));
                let mut cmd = Command::new("unshare");
                cmd.args(&first);
                c.env(&mut cmd);
                let out = wait_output(
                    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(),
                    Duration::from_secs(30),
                );
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                let kept = c.ls("db");
                std::fs::write(c.p("kept.txt"), kept.join("\n")).unwrap();
                run_args(c, MIN, &["-o", &c.s("r2.json")])
            },
        )
        .prog(Prog::Pid1)
        .after(|c, _| {
            let kept = std::fs::read_to_string(c.p("kept.txt")).unwrap();
            let now = c.ls("db");
            for name in kept.lines().filter(|n| n.ends_with(".db")) {
                if !now.iter().any(|n| n == name) {
                    return Err(format!("kept database {name} was deleted by the next run"));
                }
            }
            Ok(())
        }),
        case(
            1,
            "pid1: a stray -wal at the chosen name is not adopted or deleted",
            |c| {
                for name in PID1_NAMES {
                    std::fs::write(c.p("db").join(format!("{name}-wal")), "stray wal").unwrap();
                }
                run_args(c, MIN, &["--matrix", "journal_mode=wal"])
            },
        )
        .prog(Prog::Pid1)
        .after(|c, _| {
            let left: Vec<String> = c.ls("db").into_iter().filter(|n| n.ends_with("-wal")).collect();
            if left.len() < PID1_NAMES.len() {
                return Err(format!("stray -wal files deleted: {left:?}"));
            }
            Ok(())
        }),
        case(
            1,
            "pid1: a kept crash directory survives a later run in the same dir",
            |c| {
                let mut first = strs(&["--pid", "--fork", "--kill-child"]);
                first.push(lh_path().display().to_string());
                first.extend(strs(&[
                    "crash",
                    "--method",
                    "kill",
                    "--trials",
                    "1",
                    "--matrix",
                    "journal_mode=wal",
                    "--matrix",
                    "synchronous=full",
                    "--keep-db",
                    "-q",
                    "--db-dir",
                    &c.s("db"),
                    "-o",
                    &c.s("crash.json"),
                ]));
                let mut cmd = Command::new("unshare");
                cmd.args(&first);
                c.env(&mut cmd);
                let out = wait_output(
                    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap(),
                    Duration::from_secs(60),
                );
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                std::fs::write(c.p("kept.txt"), c.ls("db").join("\n")).unwrap();
                run_args(c, MIN, &[])
            },
        )
        .prog(Prog::Pid1)
        .after(|c, _| {
            let kept = std::fs::read_to_string(c.p("kept.txt")).unwrap();
            let now = c.ls("db");
            for name in kept.lines() {
                if !now.iter().any(|n| n == name) {
                    return Err(format!("kept {name} was deleted"));
                }
            }
            Ok(())
        }),
        case(1, "other files in --db-dir are never touched", |c| {
            for name in [
                "a.db",
                "litehammer-x.db",
                "litehammer-0-0-default.db",
                "b.db-wal",
                "c.db-journal",
            ] {
                std::fs::write(c.p("db").join(name), "precious").unwrap();
            }
            run_args(c, MIN, &["--repeat", "2"])
        })
        .after(|c, _| {
            let now = c.ls("db");
            (now.len() == 5)
                .then_some(())
                .ok_or(format!("db dir now holds {now:?}"))
        }),
        case(1, "two runs in the same second keep both default reports", |c| {
            let scenario = c.write("s.toml", MIN);
            let out = c.lh(&strs(&["run", &scenario, "--no-probe", "-q"]));
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            strs(&["run", &scenario, "--no-probe", "-q"])
        })
        .after(|c, _| {
            let reports = c.ls("results");
            (reports.len() == 2)
                .then_some(())
                .ok_or(format!("results/ holds {reports:?}: one report overwrote the other"))
        }),
        case(
            1,
            "an existing file at a --keep-db run's name is not overwritten (repeat)",
            |c| {
                for name in PID1_NAMES {
                    let stem = name.trim_end_matches(".db").replace("-0-", "-1-");
                    std::fs::write(c.p("db").join(format!("{stem}.db")), "precious").unwrap();
                }
                run_args(c, MIN, &["--repeat", "2", "--keep-db"])
            },
        )
        .prog(Prog::Pid1)
        .after(|c, _| {
            let precious = c
                .ls("db")
                .into_iter()
                .filter(|n| std::fs::read_to_string(c.p("db").join(n)).ok().as_deref() == Some("precious"))
                .count();
            (precious == PID1_NAMES.len())
                .then_some(())
                .ok_or(format!("only {precious} precious files left: {:?}", c.ls("db")))
        }),
    ]
}

const VICTIM: &str = "victim: must not change\n";

fn class_2() -> Vec<Case> {
    vec![
        // The issue's example: a symlink planted at the fixed temp name.
        case(2, "symlink at -o FILE.partial is not written through", |c| {
            c.write("victim.txt", VICTIM);
            symlink(c, "victim.txt", "r.json.partial");
            run_args(c, MIN, &[])
        })
        .after(unchanged("victim.txt", VICTIM)),
        case(
            2,
            "symlink at --export-markdown FILE.partial is not written through",
            |c| {
                c.write("victim.txt", VICTIM);
                symlink(c, "victim.txt", "r.md.partial");
                run_args(c, MIN, &["--export-markdown", &c.s("r.md")])
            },
        )
        .after(unchanged("victim.txt", VICTIM)),
        case(2, "symlink at --export-html FILE.partial is not written through", |c| {
            c.write("victim.txt", VICTIM);
            symlink(c, "victim.txt", "r.html.partial");
            run_args(c, MIN, &["--export-html", &c.s("r.html")])
        })
        .after(unchanged("victim.txt", VICTIM)),
        case(2, "symlink at report -o FILE.partial is not written through", |c| {
            c.write("victim.txt", VICTIM);
            symlink(c, "victim.txt", "out.md.partial");
            let input = c.write("in.json", base_report_text());
            vec!["report".into(), input, "-o".into(), c.s("out.md")]
        })
        .after(unchanged("victim.txt", VICTIM)),
        case(2, "symlink at probe -o FILE.partial is not written through", |c| {
            c.write("victim.txt", VICTIM);
            symlink(c, "victim.txt", "p.json.partial");
            strs(&["probe", "--quick", "--db-dir", &c.s("db"), "-o", &c.s("p.json")])
        })
        .secs(60)
        .after(unchanged("victim.txt", VICTIM)),
        // The issue's example was -o /dev/full; a device node of our own stands in for it.
        case(2, "-o a character device is refused before the first run", |c| {
            let dev = c.s("full");
            assert!(
                Command::new("mknod")
                    .args([&dev, "c", "1", "7"])
                    .status()
                    .unwrap()
                    .success()
            );
            run_args(c, MIN, &["-o", &dev])
        })
        .root()
        .code(2)
        .err(&["regular file"])
        .before_run()
        .after(|c, _| {
            let meta = std::fs::symlink_metadata(c.p("full")).map_err(|e| e.to_string())?;
            meta.file_type()
                .is_char_device()
                .then_some(())
                .ok_or("the device node was replaced".into())
        }),
        case(2, "-o a FIFO is refused before the first run", |c| {
            assert!(Command::new("mkfifo").arg(c.p("fifo")).status().unwrap().success());
            run_args(c, MIN, &["-o", &c.s("fifo")])
        })
        .code(2)
        .err(&["regular file"])
        .before_run()
        .after(|c, _| {
            let meta = std::fs::symlink_metadata(c.p("fifo")).map_err(|e| e.to_string())?;
            meta.file_type()
                .is_fifo()
                .then_some(())
                .ok_or("the FIFO was replaced".into())
        }),
        case(2, "-o an existing directory is refused before the first run", |c| {
            std::fs::create_dir(c.p("out")).unwrap();
            run_args(c, MIN, &["-o", &format!("{}/", c.s("out"))])
        })
        .code(2)
        .err(&["-o", "directory"])
        .before_run(),
        case(2, "-o below a regular file is refused before the first run", |c| {
            c.write("file.txt", "x");
            run_args(c, MIN, &["-o", &c.s("file.txt/r.json")])
        })
        .code(2)
        .err(&["-o"])
        .before_run(),
        case(2, "-o in a read-only directory is refused before the first run", |c| {
            std::fs::create_dir(c.p("ro")).unwrap();
            std::fs::set_permissions(c.p("ro"), std::fs::Permissions::from_mode(0o555)).unwrap();
            // As root, a mode is no obstacle: use a directory nobody can write to.
            let target = if is_root() {
                "/proc/litehammer-hostile.json".to_string()
            } else {
                c.s("ro/r.json")
            };
            run_args(c, MIN, &["-o", &target])
        })
        .code(2)
        .err(&["-o"])
        .before_run(),
        case(
            2,
            "--export-markdown into a directory is refused before the first run",
            |c| {
                std::fs::create_dir(c.p("out")).unwrap();
                run_args(c, MIN, &["--export-markdown", &c.s("out")])
            },
        )
        .code(2)
        .err(&["--export-markdown", "directory"])
        .before_run(),
        case(2, "--export-html below /proc is refused before the first run", |c| {
            run_args(c, MIN, &["--export-html", "/proc/litehammer-hostile/r.html"])
        })
        .code(2)
        .err(&["--export-html"])
        .before_run(),
        case(2, "-o the scenario file itself is refused", |c| {
            let mut a = run_args(c, MIN, &[]);
            let pos = a.iter().position(|x| x == "-o").unwrap();
            a[pos + 1] = c.s("s.toml");
            a
        })
        .code(2)
        .err(&["scenario"])
        .before_run()
        .after(|c, _| {
            let now = std::fs::read_to_string(c.p("s.toml")).unwrap();
            (now == MIN)
                .then_some(())
                .ok_or("the scenario file was overwritten".into())
        }),
        case(
            2,
            "--export-html spelled differently from the scenario is refused",
            |c| {
                let mut a = run_args(c, MIN, &[]);
                a.extend(strs(&["--export-html", "./s.toml"]));
                a
            },
        )
        .code(2)
        .err(&["--export-html", "scenario"])
        .before_run(),
        case(2, "-o and --export-markdown naming one file are refused", |c| {
            run_args(c, MIN, &["--export-markdown", &c.s("r.json")])
        })
        .code(2)
        .err(&["--export-markdown", "-o"])
        .before_run(),
        case(2, "-o a symlink is refused and its target untouched", |c| {
            c.write("victim.txt", VICTIM);
            symlink(c, "victim.txt", "link.json");
            run_args(c, MIN, &["-o", &c.s("link.json")])
        })
        .code(2)
        .err(&["symbolic link"])
        .before_run()
        .after(unchanged("victim.txt", VICTIM)),
        case(2, "report -o its own input is refused", |c| {
            let input = c.write("in.json", base_report_text());
            vec![
                "report".into(),
                input.clone(),
                "--format".into(),
                "md".into(),
                "-o".into(),
                input,
            ]
        })
        .code(2)
        .err(&["-o", "input"])
        .after(|c, _| {
            let now = std::fs::read_to_string(c.p("in.json")).unwrap();
            (now == base_report_text())
                .then_some(())
                .ok_or("the input report was overwritten".into())
        }),
        case(2, "report -o a FIFO is refused", |c| {
            assert!(Command::new("mkfifo").arg(c.p("fifo")).status().unwrap().success());
            let input = c.write("in.json", base_report_text());
            vec!["report".into(), input, "-o".into(), c.s("fifo")]
        })
        .code(2)
        .err(&["regular file"])
        .after(|c, _| {
            let meta = std::fs::symlink_metadata(c.p("fifo")).map_err(|e| e.to_string())?;
            meta.file_type()
                .is_fifo()
                .then_some(())
                .ok_or("the FIFO was replaced".into())
        }),
        case(2, "probe -o a directory is refused before measuring", |c| {
            std::fs::create_dir(c.p("out")).unwrap();
            strs(&["probe", "--quick", "--db-dir", &c.s("db"), "-o", &c.s("out")])
        })
        .code(2)
        .err(&["-o", "directory"])
        .secs(10)
        .after(|_, o| {
            o.stdout
                .trim()
                .is_empty()
                .then_some(())
                .ok_or("it measured first".into())
        }),
        case(2, "crash -o a directory is refused before the first trial", |c| {
            std::fs::create_dir(c.p("out")).unwrap();
            strs(&[
                "crash",
                "--method",
                "kill",
                "--trials",
                "1",
                "--matrix",
                "journal_mode=wal",
                "--matrix",
                "synchronous=full",
                "--db-dir",
                &c.s("db"),
                "-o",
                &c.s("out"),
            ])
        })
        .code(2)
        .err(&["-o", "directory"])
        .before_run(),
        case(2, "-o in a directory that does not exist yet still works", |c| {
            let mut a = run_args(c, MIN, &[]);
            let pos = a.iter().position(|x| x == "-o").unwrap();
            a[pos + 1] = c.s("new/sub/r.json");
            a
        })
        .after(|c, _| report_status(c, "new/sub/r.json").map(|_| ())),
    ]
}

fn class_3() -> Vec<Case> {
    vec![
        // The issue's example.
        case(3, "validate: set-up ATTACH + DROP TABLE of another database is refused", |c| {
            let other = other_db(c);
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH '{other}' AS v; DROP TABLE v.x;"
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["ATTACH", "--allow-external-files"])
        .after(other_db_intact),
        case(3, "run: set-up ATTACH + DELETE in another database is refused", |c| {
            let other = other_db(c);
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH '{other}' AS v; DELETE FROM v.x;"
            ));
            run_args(c, &text, &[])
        })
        .code(2)
        .err(&["ATTACH", "--allow-external-files"])
        .before_run()
        .after(other_db_intact),
        case(3, "validate: set-up VACUUM INTO a path outside is refused", |c| {
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); VACUUM INTO '{}';",
                c.s("stolen.db")
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["VACUUM INTO", "--allow-external-files"])
        .after(absent("stolen.db")),
        case(3, "run: an op doing VACUUM INTO is refused", |c| {
            let text = op(&format!("VACUUM INTO '{}'", c.s("stolen.db")), "[]")
                .replace("workers = 1", "workers = 1\ntransaction = \"none\"");
            run_args(c, &text, &[])
        })
        .code(2)
        .err(&["--allow-external-files"])
        .after(absent("stolen.db")),
        case(3, "validate: an op that ATTACHes is refused", |c| {
            let text = op(&format!("ATTACH '{}' AS v", c.s("new.db")), "[]")
                .replace("workers = 1", "workers = 1\ntransaction = \"none\"");
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["ATTACH"])
        .after(absent("new.db")),
        case(3, "validate: a [[check]] that ATTACHes is refused", |c| {
            let text = tail_with(&format!(
                "[[check]]\nname = \"c\"\nsql = \"SELECT count(*) FROM pragma_database_list WHERE file = '' OR 1 = (SELECT 1 FROM (SELECT 1)) AND 0; ATTACH '{}' AS v\"\nexpect = 0",
                c.s("new.db")
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["check"])
        .after(absent("new.db")),
        case(3, "validate: ATTACH through a file: URI is refused", |c| {
            other_db(c);
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH 'file:{}?mode=rw' AS v; DROP TABLE v.x;",
                c.s("other.db")
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["ATTACH"])
        .after(other_db_intact),
        case(3, "validate: ATTACH of a computed path is refused", |c| {
            other_db(c);
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH '{}' || 'her.db' AS v; DROP TABLE v.x;",
                c.s("ot")
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["ATTACH"])
        .after(other_db_intact),
        case(3, "validate: ATTACH of a relative path is refused", |c| {
            other_db(c);
            let text = setup_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH 'other.db' AS v; DROP TABLE v.x;");
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["ATTACH"])
        .after(other_db_intact),
        case(3, "validate: ATTACH ':memory:' stays allowed", validate(setup_sql(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH ':memory:' AS m; CREATE TABLE m.y(a); DETACH m;",
        ))),
        case(3, "validate: PRAGMA temp_store_directory is refused", |c| {
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); PRAGMA temp_store_directory = '{}';",
                c.s("db")
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["temp_store_directory"]),
        case(3, "run --allow-external-files may ATTACH another database", |c| {
            let other = other_db(c);
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH '{other}' AS v; CREATE TABLE IF NOT EXISTS v.y(a); DETACH v;"
            ));
            run_args(c, &text, &["--allow-external-files"])
        })
        .after(|c, _| {
            let conn = rusqlite::Connection::open(c.p("other.db")).unwrap();
            conn.query_row("SELECT count(*) FROM y", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(|e| format!("the allowed ATTACH did not happen: {e}"))
        }),
        case(3, "validate --allow-external-files still changes nothing outside its scratch copy", |c| {
            let other = other_db(c);
            let text = setup_sql(&format!(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH '{other}' AS v; DROP TABLE v.x; DETACH v;"
            ));
            vec!["validate".into(), c.write("s.toml", &text), "--allow-external-files".into()]
        })
        .codes(&[0, 2])
        .err(&["external"])
        .after(other_db_intact),
        // The issue's example: an open transaction gave a false "LOST 3 rows".
        case(3, "set-up SQL that leaves a transaction open is an error (validate)", validate(setup_sql(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); BEGIN; INSERT INTO t(v) VALUES ('a'), ('b'), ('c');",
        )))
        .code(2)
        .err(&["setup.sql", "transaction"]),
        case(3, "set-up SQL that leaves a transaction open is an error (run)", run(setup_sql(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); BEGIN; INSERT INTO t(v) VALUES ('a'), ('b'), ('c');",
        ), &[]))
        .code(2)
        .err(&["transaction"])
        .before_run(),
        case(3, "set-up SQL that leaves a SAVEPOINT open is an error", validate(setup_sql(
            "SAVEPOINT s; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
        )))
        .code(2)
        .err(&["transaction"]),
    ]
}

fn class_4() -> Vec<Case> {
    let script = |steps: &str| format!("{}\n[[group.script]]\nname = \"sc\"\n{steps}\n", MIN);
    vec![
        case(4, "script step with an SQL typo names script and step", validate(script(
            "[[group.script.steps]]\nsql = \"SELECT 1\"\n[[group.script.steps]]\nsql = \"SELEC 2\"",
        )))
        .code(2)
        .err(&["sc", "step"]),
        case(4, "script step with a bad $0.column reference", validate(script(
            "[[group.script.steps]]\nsql = \"SELECT 1 AS a\"\n[[group.script.steps]]\nsql = \"SELECT ?1\"\nparams = [\"$0.nope\"]",
        )))
        .code(2)
        .err(&["sc", "nope"]),
        case(4, "script step referencing a later step", validate(script(
            "[[group.script.steps]]\nsql = \"SELECT ?1\"\nparams = [\"$5.id\"]",
        )))
        .code(2)
        .err(&["sc", "step"]),
        case(4, "busy_timeout = \"30days\"", validate(tail_with("[sqlite]\nbusy_timeout = \"30days\"")))
            .code(2)
            .err(&["busy_timeout"]),
        case(4, "--set sqlite.busy_timeout=1000years", validate_with(MIN.into(), &["--set", "sqlite.busy_timeout=1000years"]))
            .code(2)
            .err(&["busy_timeout"]),
        case(4, "busy_handler = \"fixed(1000years)\"", validate(tail_with("[sqlite]\nbusy_handler = \"fixed(1000years)\"")))
            .code(2)
            .err(&["busy_handler"]),
        case(4, "--progress-interval inf", run_min(&["--progress-interval", "inf"]))
            .code(2)
            .err(&["--progress-interval"])
            .before_run(),
        case(4, "--progress-interval nan", run_min(&["--progress-interval", "nan"]))
            .code(2)
            .err(&["--progress-interval"])
            .before_run(),
        case(4, "--progress-interval 1e300", run_min(&["--progress-interval", "1e300"]))
            .code(2)
            .err(&["--progress-interval"])
            .before_run(),
        case(4, "--progress-interval -1", run_min(&["--progress-interval=-1"]))
            .code(2)
            .err(&["--progress-interval"])
            .before_run(),
        case(4, "--duration 500000000000y", run_min(&["--duration", "500000000000y"]))
            .code(2)
            .err(&["--duration"])
            .before_run(),
        case(4, "duration = \"500000000000y\" in the file", run(with("duration = \"300ms\"", "duration = \"500000000000y\""), &[]))
            .code(2)
            .err(&["duration"])
            .before_run(),
        case(4, "--warmup 500000000000y", run_min(&["--warmup", "500000000000y"]))
            .code(2)
            .err(&["--warmup"])
            .before_run(),
        case(4, "timeline_interval = \"500000000000y\"", run(head("timeline_interval = \"500000000000y\""), &[]))
            .code(2)
            .err(&["timeline_interval"])
            .before_run(),
        case(4, "--latency-limit 500000000000y", run_min(&["--latency-limit", "500000000000y"]))
            .code(2)
            .err(&["--latency-limit"])
            .before_run(),
        case(4, "retry backoff = \"500000000000y\"", run(
            with("workers = 1", "workers = 1\nretry = { max_tries = 3, backoff = \"500000000000y\" }"),
            &[],
        ))
        .code(2)
        .err(&["backoff"])
        .before_run(),
        case(4, "sweep p99_limit = \"500000000000y\"", validate(tail_with(
            "[matrix]\n\"group.w.workers\" = [1, 2]\n[sweep]\naxis = \"group.w.workers\"\ngroup = \"w\"\np99_limit = \"500000000000y\"",
        )))
        .code(2)
        .err(&["p99_limit"]),
        case(4, "--rate 1e-300", run_min(&["--rate", "1e-300"])).code(2).err(&["--rate"]).before_run(),
        case(4, "rate = 5e-324 with poisson arrivals", run(
            with("workers = 1", "workers = 1\nrate = 5e-324\narrival = \"poisson\""),
            &[],
        ))
        .code(2)
        .err(&["rate"])
        .before_run(),
        case(4, "--rate 1e300", run_min(&["--rate", "1e300"])).code(2).err(&["--rate"]).before_run(),
        case(4, "rate = inf in the file", validate(with("workers = 1", "workers = 1\nrate = inf")))
            .code(2)
            .err(&["rate"]),
        case(4, "--seed -1", validate_with(MIN.into(), &["--seed=-1"])).code(2).err(&["--seed"]),
        case(4, "--operations 1e3", validate_with(MIN.into(), &["--operations", "1e3"]))
            .code(2)
            .err(&["--operations"]),
        case(4, "--set group.w.workers=99999999999", validate_with(MIN.into(), &["--set", "group.w.workers=99999999999"]))
            .code(2)
            .err(&["workers"]),
        case(4, "crash --kill-within 500000000000y", |c| {
            strs(&["crash", "--method", "kill", "--kill-within", "500000000000y", "--db-dir", &c.s("db")])
        })
        .code(2)
        .err(&["--kill-within"])
        .before_run(),
        // The issue's example: a multibyte sha256 sliced by bytes.
        case(4, "report: multibyte sha256", |c| {
            let input = mutated_report(c, "r.json", &|v| v["scenario"]["sha256"] = "ééééééééé".into());
            vec!["report".into(), input]
        })
        .codes(&[0, 2]),
        case(4, "compare: multibyte sha256 on both sides", |c| {
            let a = mutated_report(c, "a.json", &|v| v["scenario"]["sha256"] = "€€€€".into());
            let b = mutated_report(c, "b.json", &|v| v["scenario"]["sha256"] = "ü".into());
            vec!["compare".into(), a, b]
        })
        .codes(&[0, 2]),
        case(4, "report --format html: corrupt histogram", |c| {
            let input = mutated_report(c, "r.json", &|v| {
                v["runs"][0]["groups"][0]["ops"][0]["histogram_v2"] = "HISTFAAAA☃not base64".into()
            });
            vec!["report".into(), input, "--format".into(), "html".into()]
        })
        .codes(&[0, 1, 2]),
        case(4, "report --format html: absurd numbers", |c| {
            let input = mutated_report(c, "r.json", &|v| {
                let g = &mut v["runs"][0]["groups"][0];
                g["transactions"]["throughput_per_s"] = 1e308.into();
                g["transactions"]["latency_us"]["p99"] = (-1.0).into();
                v["runs"][0]["measured_s"] = 1e308.into();
                v["runs"][0]["timeline_interval_s"] = 0.0.into();
            });
            vec!["report".into(), input, "--format".into(), "html".into()]
        })
        .codes(&[0, 2]),
        case(4, "report --format md: no runs at all", |c| {
            let input = mutated_report(c, "r.json", &|v| v["runs"] = Value::Array(Vec::new()));
            vec!["report".into(), input]
        })
        .codes(&[0, 2]),
        case(4, "compare: a multibyte run id", |c| {
            let a = mutated_report(c, "a.json", &|v| v["runs"][0]["id"] = "ж".repeat(40).into());
            let b = mutated_report(c, "b.json", &|v| v["runs"][0]["id"] = "ж".repeat(40).into());
            vec!["compare".into(), a, b]
        })
        .codes(&[0, 2]),
        case(4, "compare --noise nan", |c| {
            let a = c.write("a.json", base_report_text());
            vec!["compare".into(), a.clone(), a, "--noise".into(), "nan".into()]
        })
        .code(2)
        .err(&["--noise"]),
        case(4, "cache_size = -9223372036854775808", validate(tail_with("[sqlite]\ncache_size = -9223372036854775808")))
            .codes(&[0, 2]),
        case(4, "mmap_size = -1", validate(tail_with("[sqlite]\nmmap_size = -1"))).codes(&[0, 2]),
    ]
}

fn class_5() -> Vec<Case> {
    let spt_huge = with(
        "workers = 1",
        "workers = 1\ntransaction = \"deferred\"\nstatements_per_transaction = 4294967295",
    )
    .replace(
        "INSERT INTO t(v) VALUES (?1)\"\nparams = [\"text(5)\"]",
        "SELECT ?1\"\nparams = [\"text(5)\"]",
    );
    let backoff = r#"name = "b"
duration = "60s"
warmup = "0s"
[sqlite]
busy_timeout = "0ms"
[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v);"
[[group]]
name = "w"
workers = 2
transaction = "exclusive"
retry = { max_tries = 1000, backoff = "1h" }
[[group.op]]
name = "hold"
sql = "INSERT INTO t(v) SELECT lh_sleep(20)"
"#;
    vec![
        // The issue's example: must refuse (or warn and ask for --yes) quickly.
        case(5, "workers = 100000 is refused at once", run(with("workers = 1", "workers = 100000"), &[]))
            .code(2)
            .err(&["workers"])
            .before_run()
            .secs(10),
        case(5, "--set group.w.workers=100000 is refused at once", validate_with(MIN.into(), &["--set", "group.w.workers=100000"]))
            .code(2)
            .err(&["workers"])
            .secs(10),
        case(5, "300 workers need --yes", run(with("workers = 1", "workers = 300"), &[]))
            .code(2)
            .err(&["--yes", "300"])
            .before_run()
            .secs(10),
        case(5, "300 workers with --yes run", run(with("workers = 1", "workers = 300"), &["--yes"])).secs(60),
        case(5, "a 10,000-cell matrix needs --yes (run)", |c| {
            let a: Vec<String> = (1..=100).map(|i| i.to_string()).collect();
            let b: Vec<String> = (1..=100).map(|i| (-i * 100).to_string()).collect();
            run_args(
                c,
                MIN,
                &["--matrix", &format!("group.w.workers={}", a.join(",")), "--matrix", &format!("cache_size={}", b.join(","))],
            )
        })
        .code(2)
        .err(&["10000", "--yes"])
        .before_run()
        .secs(15),
        case(5, "a 27,000-cell matrix needs --yes (validate)", |c| {
            let text = tail_with(&format!(
                "[matrix]\n\"group.w.workers\" = [{}]\ncache_size = [{}]\nseed = [{}]",
                (1..=30).map(|i| i.to_string()).collect::<Vec<_>>().join(","),
                (1..=30).map(|i| (-i * 100).to_string()).collect::<Vec<_>>().join(","),
                (1..=30).map(|i| i.to_string()).collect::<Vec<_>>().join(","),
            ));
            vec!["validate".into(), c.write("s.toml", &text)]
        })
        .code(2)
        .err(&["27000", "--yes"])
        .secs(15),
        case(5, "--repeat 100000 needs --yes", run_min(&["--repeat", "100000"]))
            .code(2)
            .err(&["--yes"])
            .before_run()
            .secs(10),
        case(5, "populate of 10^12 rows needs --yes", run(
            with("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"\npopulate = [{ table = \"t\", rows = 1000000000000, values = [\"text(5)\"] }]"),
            &[],
        ))
        .code(2)
        .err(&["populate", "--yes"])
        .before_run()
        .secs(10),
        case(5, "populate of 1M rows of 16 MiB text needs --yes", run(
            with("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"\npopulate = [{ table = \"t\", rows = 1000000, values = [\"text(16777216)\"] }]"),
            &[],
        ))
        .code(2)
        .err(&["--yes"])
        .before_run()
        .secs(10),
        case(5, "two 20-hour runs need --yes", run_min(&["--duration", "20h", "--matrix", "journal_mode=wal,delete"]))
            .code(2)
            .err(&["--yes"])
            .before_run()
            .secs(10),
        case(5, "crash --kill-within 1000y", |c| {
            strs(&["crash", "--method", "kill", "--kill-within", "1000y", "--db-dir", &c.s("db")])
        })
        .code(2)
        .err(&["--kill-within"])
        .before_run()
        .secs(10),
        case(5, "crash --max-rows 4294967295", |c| {
            strs(&["crash", "--method", "kill", "--max-rows", "4294967295", "--db-dir", &c.s("db")])
        })
        .code(2)
        .err(&["--max-rows"])
        .before_run()
        .secs(10),
        case(5, "crash --transactions 4294967295", |c| {
            strs(&["crash", "--method", "power-loss", "--transactions", "4294967295", "--db-dir", &c.s("db")])
        })
        .code(2)
        .err(&["--transactions"])
        .before_run()
        .secs(10),
        case(5, "crash --trials 4294967295 needs --yes", |c| {
            strs(&["crash", "--trials", "4294967295", "--db-dir", &c.s("db")])
        })
        .code(2)
        .err(&["--yes"])
        .before_run()
        .secs(10),
        case(5, "timeline_interval = \"0s\"", run(head("timeline_interval = \"0s\""), &[]))
            .code(2)
            .err(&["timeline_interval"])
            .before_run()
            .secs(10),
        case(5, "timeline_interval = \"1ns\"", run(head("timeline_interval = \"1ns\""), &[]))
            .code(2)
            .err(&["timeline_interval"])
            .before_run()
            .secs(10),
        case(5, "timeline_interval = \"1ms\" over 10 hours", validate_with(head("timeline_interval = \"1ms\""), &["--duration", "10h"]))
            .code(2)
            .err(&["timeline_interval"])
            .secs(10),
        // Ends on time; a group that committed nothing without errors is a finding, as a
        // group starved by busy waits is (docs/limits.md), so 0 and 1 are both honest.
        case(5, "huge statements_per_transaction stops on time", run(spt_huge.clone(), &[]))
            .codes(&[0, 1])
            .after(expect_status("r.json", "completed"))
            .secs(20),
        case(5, "huge statements_per_transaction stops on SIGTERM", run(spt_huge, &["--duration", "60s"]))
            .code(130)
            .signal(Sig::Term, None, 1500, 5)
            .secs(30),
        case(5, "retry backoff = \"1h\" stops on SIGINT", run(backoff.to_string(), &[]))
            .code(130)
            .signal(Sig::Int, None, 2000, 5)
            .secs(30),
        case(5, "retry backoff = \"1h\" stops when the duration ends", run(backoff.to_string(), &["--duration", "500ms"]))
            .codes(&[0, 1])
            .secs(20),
    ]
}

fn class_6() -> Vec<Case> {
    vec![
        case(6, "every transaction fails (constraint): exit 1 with the first error", run(
            op("INSERT INTO t(id, v) VALUES (1, 'x')", "[]").replace("v TEXT);", "v TEXT); INSERT INTO t VALUES (1, 'x');"),
            &[],
        ))
        .code(1)
        .err(&["no committed transaction", "UNIQUE constraint failed"]),
        case(6, "every transaction fails (integer overflow): exit 1 with the first error", run(
            op("SELECT abs(?1)", "[-9223372036854775808]"),
            &[],
        ))
        .code(1)
        .err(&["no committed transaction", "integer overflow"]),
        case(6, "half the attempts fail with non-busy errors: exit 1", run(
            format!(
                "{MIN}\n[[group.op]]\nname = \"bad\"\nsql = \"INSERT INTO t(id, v) VALUES (0, 'x')\"\n"
            )
            .replace("v TEXT);", "v TEXT); INSERT INTO t VALUES (0, 'x');"),
            &[],
        ))
        .code(1)
        .err(&["UNIQUE constraint failed", "bad"]),
        case(6, "one of two groups commits nothing: exit 1 naming it", run(
            format!(
                "{MIN}\n[[group]]\nname = \"doomed\"\nworkers = 1\n[[group.op]]\nname = \"o\"\nsql = \"SELECT abs(-9223372036854775807 - 1)\"\n"
            ),
            &[],
        ))
        .code(1)
        .err(&["doomed", "no committed transaction"]),
        // The issue's example: SQLITE_FULL mid-run printed "verified ok", exit 0.
        case(6, "the disk fills mid-run: exit 1, and the error is shown", run(
            with("params = [\"text(5)\"]", "params = [\"text(4000)\"]").replace("300ms", "3s"),
            &[],
        ))
        .prog(Prog::SmallDisk)
        .codes(&[1])
        .err(&["full"]),
        case(6, "busy errors alone do not fail a run", run(
            with("workers = 1", "workers = 3\ntransaction = \"immediate\"").replace("[setup]", "[sqlite]\nbusy_timeout = \"0ms\"\n[setup]"),
            &[],
        )),
        case(6, "a healthy run still exits 0", run_min(&[])).after(expect_status("r.json", "completed")),
        // The issue's example: SIGKILL in run 2 of 2 left a report marked `completed`.
        case(6, "SIGKILL during run 2 of 2: the report says partial", run(
            with("duration = \"300ms\"", "duration = \"5s\""),
            &["--matrix", "journal_mode=wal,delete"],
        ))
        .killed()
        .signal(Sig::Kill, Some("[1/2]"), 500, 5)
        .after(expect_status("r.json", "partial")),
        case(6, "SIGKILL during run 1 of 1: the report says partial", run(with("duration = \"300ms\"", "duration = \"10s\""), &[]))
            .killed()
            .signal(Sig::Kill, Some("report"), 1500, 5)
            .after(expect_status("r.json", "partial")),
        case(6, "report warns about a partial report", |c| {
            let input = mutated_report(c, "r.json", &|v| {
                v["status"] = "partial".into();
                v["runs"].as_array_mut().unwrap().pop();
            });
            vec!["report".into(), input]
        })
        .err(&["partial"]),
    ]
}

fn class_7() -> Vec<Case> {
    let slow_check = tail_with(
        "[[check]]\nname = \"slow\"\nsql = \"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c\"\nexpect = 0",
    );
    let endless_setup = setup_sql(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;",
    );
    let big_populate = with(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"\npopulate = [{ table = \"t\", rows = 20000000, values = [\"text(1)\"] }]",
    );
    vec![
        // The issue's examples.
        case(7, "SIGINT during verification ends it; the report says interrupted", run(slow_check.clone(), &[]))
            .code(130)
            .signal(Sig::Int, None, 2500, 5)
            .err(&["interrupted"])
            .after(|c, o| {
                expect_status("r.json", "interrupted")(c, o)?;
                db_dir_clean(c, o)
            })
            .secs(30),
        case(7, "SIGINT during run's validation step: exit 130, no scratch left", |c| {
            let mut a = run_args(c, &setup_sql(
                "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;",
            ), &[]);
            a.retain(|x| x != "--db-dir" && !x.ends_with("/db"));
            a
        })
        .code(130)
        .signal(Sig::Int, None, 1500, 5)
        .secs(30),
        case(7, "SIGTERM during validate: exit 130, no scratch left", validate(endless_setup))
            .code(130)
            .signal(Sig::Term, None, 1500, 5)
            .secs(30),
        case(7, "SIGINT during populate ends it", run(big_populate, &["--yes"]))
            .code(130)
            .signal(Sig::Int, Some("report"), 1000, 5)
            .after(|c, o| {
                expect_status("r.json", "interrupted")(c, o)?;
                db_dir_clean(c, o)
            })
            .secs(60),
        case(7, "SIGINT during crash: report written, temp dir removed", |c| {
            strs(&["crash", "--method", "kill", "--trials", "1000", "--matrix", "journal_mode=wal,delete", "--matrix", "synchronous=full", "-o", &c.s("r.json")])
        })
        .code(130)
        .signal(Sig::Int, Some("litehammer crash"), 1500, 10)
        .after(expect_status("r.json", "interrupted"))
        .secs(60),
        case(7, "SIGTERM during crash power-loss trials", |c| {
            strs(&["crash", "--method", "power-loss", "--trials", "100000", "--yes", "--matrix", "journal_mode=wal", "--matrix", "synchronous=full", "-o", &c.s("r.json")])
        })
        .code(130)
        .signal(Sig::Term, Some("litehammer crash"), 1500, 10)
        .after(expect_status("r.json", "interrupted"))
        .secs(60),
        case(7, "SIGINT during probe: exit 130, temp dir removed", |_| strs(&["probe"]))
            .code(130)
            .signal(Sig::Int, None, 1000, 5)
            .secs(30),
        case(7, "SIGINT during warm-up (default db dir in TMPDIR)", |c| {
            let mut a = run_args(c, &with("warmup = \"0s\"", "warmup = \"30s\""), &[]);
            a.retain(|x| x != "--db-dir" && !x.ends_with("/db"));
            a
        })
        .code(130)
        .signal(Sig::Int, Some("report"), 1000, 5)
        .after(expect_status("r.json", "interrupted"))
        .secs(30),
        case(7, "SIGTERM while measuring (default db dir in TMPDIR)", |c| {
            let mut a = run_args(c, &with("duration = \"300ms\"", "duration = \"30s\""), &[]);
            a.retain(|x| x != "--db-dir" && !x.ends_with("/db"));
            a
        })
        .code(130)
        .signal(Sig::Term, Some("report"), 1000, 5)
        .after(expect_status("r.json", "interrupted"))
        .secs(30),
        case(7, "a second SIGINT aborts at once and still removes the temp dir", move |c| {
            let mut a = run_args(c, &slow_check, &[]);
            a.retain(|x| x != "--db-dir" && !x.ends_with("/db"));
            a
        })
        .code(130)
        .signal(Sig::Int, None, 2500, 30)
        // At once: the first SIGINT's orderly stop (interrupt the check, write the report)
        // must still be under way, or there is nothing left for the second to abort.
        .signal(Sig::Int, None, 0, 5)
        .secs(40),
    ]
}

fn class_8() -> Vec<Case> {
    vec![
        // The issue's example.
        case(8, "a FAILED B run is reported, and --fail-if-slower fails", |c| {
            let a = c.write("a.json", base_report_text());
            let b = mutated_report(c, "b.json", &|v| fail_run(&mut v["runs"][1]));
            vec!["compare".into(), a, b, "--fail-if-slower".into(), "5".into()]
        })
        .code(1)
        .out(&["journal_mode=delete", "FAILED"])
        .err(&["failed"]),
        case(8, "a FAILED B run is reported without --fail-if-slower too", |c| {
            let a = c.write("a.json", base_report_text());
            let b = mutated_report(c, "b.json", &|v| fail_run(&mut v["runs"][1]));
            vec!["compare".into(), a, b]
        })
        .out(&["journal_mode=delete", "FAILED"]),
        case(8, "a FAILED A run is reported", |c| {
            let a = mutated_report(c, "a.json", &|v| fail_run(&mut v["runs"][0]));
            let b = c.write("b.json", base_report_text());
            vec!["compare".into(), a, b, "--fail-if-slower".into(), "5".into()]
        })
        .codes(&[0, 1])
        .out(&["journal_mode=wal", "FAILED"]),
        case(
            8,
            "B's only run FAILED: exit 1 under --fail-if-slower, not 'no results'",
            |c| {
                let a = mutated_report(c, "a.json", &|v| {
                    v["runs"].as_array_mut().unwrap().truncate(1);
                });
                let b = mutated_report(c, "b.json", &|v| {
                    v["runs"].as_array_mut().unwrap().truncate(1);
                    fail_run(&mut v["runs"][0]);
                });
                vec!["compare".into(), a, b, "--fail-if-slower".into(), "5".into()]
            },
        )
        .code(1)
        .err(&["failed"]),
        case(8, "an interrupted B run is compared with a warning", |c| {
            let a = c.write("a.json", base_report_text());
            let b = mutated_report(c, "b.json", &|v| {
                v["runs"][0]["status"] = "interrupted".into();
                v["status"] = "interrupted".into();
            });
            vec!["compare".into(), a, b]
        })
        .err(&["interrupted", "journal_mode=wal"]),
        case(8, "an interrupted A run is compared with a warning", |c| {
            let a = mutated_report(c, "a.json", &|v| v["runs"][1]["status"] = "interrupted".into());
            let b = c.write("b.json", base_report_text());
            vec!["compare".into(), a, b]
        })
        .err(&["interrupted", "journal_mode=delete"]),
        case(8, "a partial report is compared with a warning", |c| {
            let a = c.write("a.json", base_report_text());
            let b = mutated_report(c, "b.json", &|v| v["status"] = "partial".into());
            vec!["compare".into(), a, b]
        })
        .err(&["partial"]),
        case(8, "duplicate run ids in a report are refused", |c| {
            let a = c.write("a.json", base_report_text());
            let b = mutated_report(c, "b.json", &|v| v["runs"][1]["id"] = v["runs"][0]["id"].clone());
            vec!["compare".into(), a, b]
        })
        .code(2)
        .err(&["duplicate", "journal_mode=wal"]),
        case(8, "duplicate (id, repeat) pairs in a report are refused", |c| {
            let a = c.write("a.json", base_report_text());
            let b = mutated_report(c, "b.json", &|v| {
                v["runs"][1]["id"] = v["runs"][0]["id"].clone();
                v["runs"][0]["repeat"] = 1.into();
                v["runs"][1]["repeat"] = 1.into();
            });
            vec!["compare".into(), a, b]
        })
        .code(2)
        .err(&["duplicate"]),
        case(
            8,
            "--matrix with a duplicate value is refused",
            validate_with(MIN.into(), &["--matrix", "journal_mode=wal,wal"]),
        )
        .code(2)
        .err(&["journal_mode", "twice"]),
        case(
            8,
            "--matrix values equal up to case are refused",
            validate_with(MIN.into(), &["--matrix", "journal_mode=WAL,wal"]),
        )
        .code(2)
        .err(&["journal_mode"]),
        case(
            8,
            "[matrix] with a duplicate value is refused",
            validate(tail_with("[matrix]\n\"group.w.workers\" = [1, 2, 1]")),
        )
        .code(2)
        .err(&["group.w.workers", "twice"]),
        case(
            8,
            "[matrix] naming one axis by two aliases is refused",
            validate(tail_with(
                "[matrix]\njournal_mode = [\"wal\"]\n\"sqlite.journal_mode\" = [\"delete\"]",
            )),
        )
        .code(2)
        .err(&["journal_mode"]),
        case(
            8,
            "two --matrix flags for one axis (two spellings) are refused",
            validate_with(
                MIN.into(),
                &["--matrix", "journal_mode=wal", "--matrix", "sqlite.journal_mode=delete"],
            ),
        )
        .code(2)
        .err(&["--matrix", "journal_mode"]),
    ]
}

fn class_9() -> Vec<Case> {
    // Inserts the generator's values into `t.x`; the data check fails unless rows were
    // inserted and every one satisfies `check`.
    let exact = |generator: &str, check: &str| {
        let text = op("INSERT INTO t(x) VALUES (?1)", &format!("[\"{generator}\"]"))
            .replace("v TEXT);", "v TEXT, x INTEGER);");
        tail_with_text(
            &text,
            &format!(
                "[[check]]\nname = \"in range\"\nsql = \"SELECT (SELECT count(*) FROM t) > 0 AND (SELECT count(*) FROM t WHERE NOT ({check})) = 0\"\nexpect = 1"
            ),
        )
    };
    vec![
        // The issue's examples.
        case(9, "uniform beyond 2^53 stays in its bounds", run(
            exact("uniform(9007199254740993, 9007199254740993)", "x = 9007199254740993"),
            &[],
        )),
        case(9, "zipf(i64::MIN, i64::MAX) does not always return the maximum", run(
            op("INSERT INTO t(x) VALUES (?1)", "[\"zipf(-9223372036854775808, 9223372036854775807)\"]")
                .replace("v TEXT);", "v TEXT, x INTEGER);")
                + "\n[[check]]\nname = \"spread\"\nsql = \"SELECT count(DISTINCT x) > 1 FROM t\"\nexpect = 1\n",
            &[],
        )),
        case(9, "uniform(i64::MIN, i64::MAX) runs", run(
            exact("uniform(-9223372036854775808, 9223372036854775807)", "x IS NOT NULL"),
            &[],
        )),
        case(9, "gaussian(nan, nan) is bad input", validate(op("SELECT ?1", "[\"gaussian(nan, nan)\"]")))
            .code(2)
            .err(&["gaussian"]),
        case(9, "gaussian(0, inf) is bad input", validate(op("SELECT ?1", "[\"gaussian(0, inf)\"]")))
            .code(2)
            .err(&["gaussian"]),
        case(9, "gaussian(-inf, 1) is bad input", validate(op("SELECT ?1", "[\"gaussian(-inf, 1)\"]")))
            .code(2)
            .err(&["gaussian"]),
        case(9, "choice(1e400) is bad input", validate(op("SELECT ?1", "[\"choice(1e400)\"]")))
            .code(2)
            .err(&["choice"]),
        case(9, "choice(1, nan) is bad input", validate(op("SELECT ?1", "[\"choice(1, nan)\"]")))
            .code(2)
            .err(&["choice"]),
        case(9, "const(inf) is bad input", validate(op("SELECT ?1", "[\"const(inf)\"]")))
            .code(2)
            .err(&["const"]),
        case(9, "a TOML nan parameter is bad input", validate(op("SELECT ?1", "[nan]")))
            .code(2)
            .err(&["nan"]),
        case(9, "a TOML inf parameter is bad input", validate(op("SELECT ?1", "[-inf]")))
            .code(2)
            .err(&["inf"]),
        case(9, "a populate nan value is bad input", validate(with(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"\npopulate = [{ table = \"t\", rows = 10, values = [nan] }]",
        )))
        .code(2)
        .err(&["nan"]),
        case(9, "uniform(nan, 5) is bad input", validate(op("SELECT ?1", "[\"uniform(nan, 5)\"]")))
            .code(2)
            .err(&["uniform"]),
        case(9, "zipf(1, 10, nan) is bad input", validate(op("SELECT ?1", "[\"zipf(1, 10, nan)\"]")))
            .code(2)
            .err(&["zipf"]),
        case(9, "latest(t, 18446744073709551615) is bad input or works", validate(op("SELECT ?1", "[\"latest(t, 18446744073709551615)\"]")))
            .codes(&[0, 2]),
        case(9, "choice of an integer beyond 2^53 keeps it exact", run(
            exact("choice(9007199254740993)", "x = 9007199254740993"),
            &[],
        )),
        case(9, "seq beyond 2^53 keeps its start exact", run(
            exact("seq(9007199254740993)", "x >= 9007199254740993"),
            &[],
        )),
        case(9, "seq(i64::MAX) does not wrap negative", run(
            exact("seq(9223372036854775807)", "x > 0"),
            &["--set", "group.w.workers=2"],
        ))
        .codes(&[0, 1])
        .after(|_, o| {
            (o.code == Some(0) || o.stderr.contains("seq("))
                .then_some(())
                .ok_or("exit 1 without naming seq() as the cause".into())
        }),
    ]
}

fn tail_with_text(text: &str, extra: &str) -> String {
    format!("{text}\n{extra}\n")
}

fn class_10() -> Vec<Case> {
    vec![
        // The issue's examples.
        case(
            10,
            "[[check]] SQL with a typo fails validate",
            validate(tail_with(
                "[[check]]\nname = \"typo\"\nsql = \"SELEC count(*) FROM t\"\nexpect = 0",
            )),
        )
        .code(2)
        .err(&["check", "typo", "syntax error"]),
        case(
            10,
            "[[check]] SQL on a missing table fails validate",
            validate(tail_with(
                "[[check]]\nname = \"gone\"\nsql = \"SELECT count(*) FROM nope\"\nexpect = 0",
            )),
        )
        .code(2)
        .err(&["gone", "no such table"]),
        case(
            10,
            "[[check]] SQL with two columns fails validate",
            validate(tail_with(
                "[[check]]\nname = \"two\"\nsql = \"SELECT 1, 2\"\nexpect = 1",
            )),
        )
        .code(2)
        .err(&["two", "column"]),
        case(
            10,
            "[[check]] SQL that writes fails validate",
            validate(tail_with(
                "[[check]]\nname = \"writer\"\nsql = \"DELETE FROM t\"\nexpect = 0",
            )),
        )
        .code(2)
        .err(&["writer", "read"]),
        case(
            10,
            "only the second matrix cell fails to compile (weights)",
            validate_with(
                format!("{MIN}\n[[group.op]]\nname = \"other\"\nsql = \"SELECT 1\"\n"),
                &[
                    "--matrix",
                    "group.w.op.ins.weight=1,0",
                    "--matrix",
                    "group.w.op.other.weight=1,0",
                ],
            ),
        )
        .code(2)
        .err(&["weight"]),
        case(
            10,
            "a TEMP table of the set-up is not there for the workers",
            validate(
                setup_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TEMP TABLE scratch(a);")
                    .replace("INSERT INTO t(v) VALUES (?1)", "INSERT INTO scratch(a) VALUES (?1)"),
            ),
        )
        .code(2)
        .err(&["no such table"]),
        case(
            10,
            "a TEMP view of the set-up is not there for the workers",
            validate(
                setup_sql("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); CREATE TEMP VIEW tv AS SELECT * FROM t;")
                    .replace("INSERT INTO t(v) VALUES (?1)", "SELECT count(*) FROM tv WHERE v = ?1"),
            ),
        )
        .code(2)
        .err(&["no such table"]),
        case(
            10,
            "a database ATTACHed by the set-up is not there for the workers",
            validate(
                setup_sql(
                    "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); ATTACH ':memory:' AS m; CREATE TABLE m.y(a);",
                )
                .replace("INSERT INTO t(v) VALUES (?1)", "INSERT INTO m.y(a) VALUES (?1)"),
            ),
        )
        .code(2)
        .err(&["no such table"]),
        case(
            10,
            "what validate accepts, run runs (script + check + matrix)",
            run(
                format!(
                    "{MIN}\n[matrix]\njournal_mode = [\"wal\", \"delete\"]\n[[group.script]]\nname = \"sc\"\n[[group.script.steps]]\nsql = \"SELECT max(id) AS id FROM t\"\n[[group.script.steps]]\nsql = \"SELECT ?1\"\nparams = [\"$0.id\"]\n[[check]]\nname = \"c\"\nsql = \"SELECT count(*) >= 0 FROM t\"\nexpect = 1\n"
                ),
                &[],
            ),
        ),
    ]
}

fn class_11() -> Vec<Case> {
    const NAME: &str = "<script>alert(1)</script>";
    let hostile = || {
        head("description = \"line one\\n# fake heading\\n```\\n| a | b |\"")
            .replace("name = \"h\"", &format!("name = \"{NAME}\""))
            .replace("name = \"w\"", "name = \"w|x\\nFAKE ROW `tick`\"")
            .replace("name = \"ins\"", "name = \"ins\\u001b[2J\"")
    };
    let md_clean = |file: &'static str| {
        move |c: &Ctx, _: &Out| {
            let md = std::fs::read_to_string(c.p(file)).map_err(|e| format!("no {file}: {e}"))?;
            if md.contains("<script>") {
                return Err(format!("{file} has a raw <script>"));
            }
            if md
                .lines()
                .any(|l| l.starts_with("# fake") || l.starts_with("FAKE ROW") || l.trim() == "```")
            {
                return Err(format!("{file} has injected lines"));
            }
            if md.contains('\u{1b}') {
                return Err(format!("{file} has a raw escape character"));
            }
            Ok(())
        }
    };
    vec![
        case(11, "run --export-markdown escapes names and descriptions", move |c| {
            run_args(c, &hostile(), &["--export-markdown", &c.s("r.md")])
        })
        .after(md_clean("r.md")),
        case(11, "the terminal table and messages escape names", move |c| {
            run_args(c, &hostile(), &[])
        })
        .after(|_, o| {
            for (stream, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
                if text.contains('\u{1b}') {
                    return Err(format!("{stream} has a raw escape character"));
                }
                if text.lines().any(|l| l.trim_start().starts_with("FAKE ROW")) {
                    return Err(format!("{stream} has a line broken by a name: {}", tail(text)));
                }
            }
            Ok(())
        }),
        case(11, "report --format md escapes run ids and errors", |c| {
            let input = mutated_report(c, "r.json", &|v| {
                v["scenario"]["name"] = NAME.into();
                v["runs"][0]["id"] = "x|y\n## injected".into();
                fail_run(&mut v["runs"][1]);
                v["runs"][1]["error"] = "<img src=x onerror=alert(1)>\n# fake heading".into();
            });
            vec!["report".into(), input, "-o".into(), c.s("r.md")]
        })
        .after(move |c, o| {
            md_clean("r.md")(c, o)?;
            let md = std::fs::read_to_string(c.p("r.md")).unwrap();
            if md.contains("<img") || md.lines().any(|l| l.starts_with("## injected")) {
                return Err("r.md has injected HTML or a heading".into());
            }
            Ok(())
        }),
        case(11, "report --format html escapes (as it already does)", |c| {
            let input = mutated_report(c, "r.json", &|v| {
                v["scenario"]["name"] = NAME.into();
                v["scenario"]["description"] = "<img src=x onerror=alert(1)>".into();
            });
            vec![
                "report".into(),
                input,
                "--format".into(),
                "html".into(),
                "-o".into(),
                c.s("r.html"),
            ]
        })
        .after(|c, _| {
            let html = std::fs::read_to_string(c.p("r.html")).unwrap();
            (!html.contains(NAME) && !html.contains("<img src=x"))
                .then_some(())
                .ok_or("raw HTML in the HTML export".into())
        }),
        case(11, "compare --markdown escapes run ids", |c| {
            let edit = |v: &mut Value| v["runs"][0]["id"] = "a|b\n# fake heading <script>".into();
            let a = mutated_report(c, "a.json", &edit);
            let b = mutated_report(c, "b.json", &edit);
            vec!["compare".into(), a, b, "--markdown".into()]
        })
        .after(|_, o| {
            if o.stdout.contains("<script>") || o.stdout.lines().any(|l| l.starts_with("# fake")) {
                return Err(format!("compare --markdown output injected: {}", tail(&o.stdout)));
            }
            Ok(())
        }),
        case(
            11,
            "list-scenarios / validate print a hostile name safely",
            validate(hostile()),
        )
        .after(|_, o| {
            (!o.stdout.contains('\u{1b}') && !o.stdout.lines().any(|l| l.starts_with("FAKE ROW")))
                .then_some(())
                .ok_or(format!("validate output injected: {}", tail(&o.stdout)))
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Round 3 (issue #26)

/// The pids of this case's worker processes (`litehammer worker-child` with the case's
/// TMPDIR in its environment: never another case's or another user's process).
fn case_workers(tmp: &Path) -> Vec<u32> {
    let want = format!("TMPDIR={}", tmp.display());
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            cmd.split(|b| *b == 0).any(|a| a == b"worker-child") && env.split(|b| *b == 0).any(|a| a == want.as_bytes())
        })
        .collect();
    pids.sort();
    pids
}

/// Sends `sig` to the case's first worker process `delay_ms` after it appeared (at most
/// 30 s of looking), from a thread of its own.
fn signal_worker(c: &Ctx, sig: &'static str, delay_ms: u64) {
    let tmp = c.tmp.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(pid) = case_workers(&tmp).first() {
                std::thread::sleep(Duration::from_millis(delay_ms));
                send(sig, &pid.to_string());
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

fn class_12() -> Vec<Case> {
    let app = |line: &str| with("workers = 1", &format!("workers = 1\n{line}"));
    let procs = |duration: &str, extra: &str| {
        with("workers = 1", &format!("workers = 2\nisolation = \"process\"\n{extra}"))
            .replace("duration = \"300ms\"", &format!("duration = \"{duration}\""))
    };
    let script_step = tail_with(
        "[[group.script]]\nname = \"s\"\nsteps = [ { sql = \"SELECT 1\", app_time = \"uniform(1ms, 400d)\" } ]",
    );
    vec![
        // Every app/think time is a wait inside a run: at most 1 day, refused before anything runs.
        case(12, "app_time = 366d is refused", validate(app("app_time = \"366d\"")))
            .code(2)
            .err(&["app_time", "too long"])
            .secs(10),
        case(
            12,
            "app_time = exp(366d) is refused by run",
            run(app("app_time = \"exp(366d)\""), &[]),
        )
        .code(2)
        .err(&["app_time", "too long"])
        .before_run()
        .secs(10),
        case(
            12,
            "app_time = uniform(0ms, 366d) is refused",
            run(app("app_time = \"uniform(0ms, 366d)\""), &[]),
        )
        .code(2)
        .err(&["app_time", "too long"])
        .before_run()
        .secs(10),
        case(12, "app_time = 25h is refused", validate(app("app_time = \"25h\"")))
            .code(2)
            .err(&["app_time", "at most 1day"])
            .secs(10),
        case(
            12,
            "think_time = gaussian(5ms, 400d) is refused",
            validate(app("think_time = \"gaussian(5ms, 400d)\"")),
        )
        .code(2)
        .err(&["think_time", "too long"])
        .secs(10),
        case(
            12,
            "--set group.w.app_time=400d is refused naming the flag",
            validate_with(MIN.into(), &["--set", "group.w.app_time=400d"]),
        )
        .code(2)
        .err(&["app_time", "too long"])
        .secs(10),
        case(
            12,
            "an op's app_time = exp(2d) is refused",
            validate(with(
                "params = [\"text(5)\"]",
                "params = [\"text(5)\"]\napp_time = \"exp(2d)\"",
            )),
        )
        .code(2)
        .err(&["app_time", "too long"])
        .secs(10),
        case(
            12,
            "a script step's app_time = uniform(1ms, 400d) is refused",
            validate(script_step),
        )
        .code(2)
        .err(&["app_time", "too long"])
        .secs(10),
        // Sizes checked before allocating: clients is a slot each in the group's queue.
        case(
            12,
            "clients = 4294967295 is refused naming the key",
            run(app("clients = 4294967295"), &[]),
        )
        .code(2)
        .err(&["clients", "at most"])
        .before_run()
        .secs(10),
        case(
            12,
            "clients = 2000000000 is refused (validate)",
            validate(app("clients = 2000000000")),
        )
        .code(2)
        .err(&["clients"])
        .secs(10),
        case(
            12,
            "--set group.w.clients=4294967295 is refused",
            run_min(&["--set", "group.w.clients=4294967295"]),
        )
        .code(2)
        .err(&["clients"])
        .before_run()
        .secs(10),
        case(
            12,
            "clients = 1000001 is refused (one above the limit)",
            validate(app("clients = 1000001")),
        )
        .code(2)
        .err(&["clients", "1000000"])
        .secs(10),
        // The app-time spin looks at the stop token: a long spin ends with the run.
        case(
            12,
            "a 20h app_time ends with a 300ms run (threads)",
            run(app("app_time = \"20h\""), &[]),
        )
        .secs(30),
        case(
            12,
            "a 20h app_time ends with the run (processes)",
            run(procs("1s", "app_time = \"20h\""), &[]),
        )
        .secs(40),
        case(
            12,
            "SIGINT ends a 60s app_time spin at once (threads)",
            run(
                app("app_time = \"60s\"").replace("duration = \"300ms\"", "duration = \"120s\""),
                &[],
            ),
        )
        .code(130)
        .signal(Sig::Int, Some("databases in"), 1500, 5)
        .after(expect_status("r.json", "interrupted"))
        .secs(40),
        case(
            12,
            "SIGTERM ends a 60s app_time spin at once (processes)",
            run(procs("120s", "app_time = \"60s\""), &[]),
        )
        .code(130)
        .signal(Sig::Term, Some("databases in"), 2000, 8)
        .secs(40),
        // The driver watches its worker processes.
        case(12, "SIGSTOP of a worker process fails the run loudly", move |c| {
            signal_worker(c, "STOP", 800);
            run_args(c, &procs("2s", ""), &[])
        })
        .code(1)
        .err(&["worker", "was stopped", "killed"])
        .after(|c, _| {
            let left = case_workers(&c.tmp);
            left.is_empty()
                .then_some(())
                .ok_or(format!("worker processes left: {left:?}"))
        })
        .secs(60),
        case(
            12,
            "SIGSTOP of a worker process, then Ctrl-C still ends the run",
            move |c| {
                signal_worker(c, "STOP", 500);
                run_args(c, &procs("120s", ""), &[])
            },
        )
        .code(130)
        .signal(Sig::Int, Some("databases in"), 2500, 15)
        .after(|c, _| {
            let left = case_workers(&c.tmp);
            left.is_empty()
                .then_some(())
                .ok_or(format!("worker processes left: {left:?}"))
        })
        .secs(60),
        case(
            12,
            "a worker process killed by SIGKILL is named with its pid and signal",
            move |c| {
                signal_worker(c, "KILL", 800);
                run_args(c, &procs("3s", ""), &[])
            },
        )
        .code(1)
        .err(&["(pid ", "killed by signal 9"])
        .secs(60),
        case(
            12,
            "a worker process killed by SIGTERM is named with its signal",
            move |c| {
                signal_worker(c, "TERM", 800);
                run_args(c, &procs("3s", ""), &[])
            },
        )
        .code(1)
        .err(&["(pid ", "signal 15 (SIGTERM)"])
        .secs(60),
    ]
}

/// A trace of one statement, enough for `import` (its outputs are checked before it is read).
const TRACE: &str = "{\"v\":1,\"kind\":\"open\",\"pid\":1,\"tid\":1,\"conn\":1,\"t\":0,\"path\":\"app.db\"}\n";

/// `capture --lib <case>/lib.so -o OUT -- true` (the fake library is never loaded: every
/// case here is refused before the command runs).
fn capture_to(out: impl Fn(&Ctx) -> String + 'static) -> impl Fn(&Ctx) -> Vec<String> {
    move |c| {
        c.write("lib.so", "not a library");
        c.write("victim", VICTIM);
        let o = out(c);
        strs(&["capture", "--lib", &c.s("lib.so"), "-o", &o, "--", "true"])
    }
}

/// `import <case>/t.jsonl -o OUT`.
fn import_to(out: impl Fn(&Ctx) -> String + 'static) -> impl Fn(&Ctx) -> Vec<String> {
    move |c| {
        c.write("t.jsonl", TRACE);
        c.write("victim", VICTIM);
        let o = out(c);
        strs(&["import", &c.s("t.jsonl"), "-o", &o])
    }
}

fn fifo(c: &Ctx, name: &str) -> String {
    let path = c.p(name);
    let status = Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    path.display().to_string()
}

fn class_13() -> Vec<Case> {
    let link = |c: &Ctx| {
        symlink(c, "victim", "link");
        c.s("link")
    };
    let dangling = |c: &Ctx| {
        symlink(c, "nothing-here", "link");
        c.s("link")
    };
    let dir = |c: &Ctx| {
        std::fs::create_dir(c.p("out")).unwrap();
        c.s("out")
    };
    vec![
        // capture -o
        case(
            13,
            "capture -o /dev/null (a device) is refused",
            capture_to(|_| "/dev/null".into()),
        )
        .code(2)
        .err(&["-o", "not a regular file"])
        .secs(10),
        case(13, "capture -o a FIFO is refused", capture_to(|c| fifo(c, "pipe")))
            .code(2)
            .err(&["not a regular file"])
            .secs(10),
        case(
            13,
            "capture -o a symlink is refused, its target untouched",
            capture_to(link),
        )
        .code(2)
        .err(&["symbolic link"])
        .after(unchanged("victim", VICTIM))
        .secs(10),
        case(13, "capture -o a dangling symlink is refused", capture_to(dangling))
            .code(2)
            .err(&["symbolic link"])
            .after(absent("nothing-here"))
            .secs(10),
        case(
            13,
            "capture -o the preload library itself is refused",
            capture_to(|c| c.s("lib.so")),
        )
        .code(2)
        .err(&["capture library"])
        .after(unchanged("lib.so", "not a library"))
        .secs(10),
        case(
            13,
            "capture -o the preload library through dir/../ is refused",
            capture_to(|c| {
                std::fs::create_dir(c.p("d")).unwrap();
                format!("{}/d/../lib.so", c.dir.display())
            }),
        )
        .code(2)
        .err(&["capture library"])
        .after(unchanged("lib.so", "not a library"))
        .secs(10),
        case(13, "capture -o a directory is refused with exit 2", capture_to(dir))
            .code(2)
            .err(&["directory"])
            .secs(10),
        case(
            13,
            "capture -o a path ending in / is refused",
            capture_to(|c| format!("{}/", c.s("new"))),
        )
        .code(2)
        .err(&["directory"])
        .secs(10),
        case(13, "capture -o the program being captured is refused", |c| {
            c.write("lib.so", "not a library");
            let prog = c.write("prog.sh", "#!/bin/sh\nexit 0\n");
            std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
            strs(&["capture", "--lib", &c.s("lib.so"), "-o", &prog, "--", &prog])
        })
        .code(2)
        .err(&["command being captured"])
        .after(unchanged("prog.sh", "#!/bin/sh\nexit 0\n"))
        .secs(10),
        // import -o
        case(
            13,
            "import -o /dev/null (a device) is refused",
            import_to(|_| "/dev/null".into()),
        )
        .code(2)
        .err(&["-o", "not a regular file"])
        .secs(10),
        case(
            13,
            "import -o a FIFO is refused (no hang)",
            import_to(|c| fifo(c, "pipe")),
        )
        .code(2)
        .err(&["not a regular file"])
        .secs(10),
        case(
            13,
            "import -o a symlink is refused, its target untouched",
            import_to(link),
        )
        .code(2)
        .err(&["symbolic link"])
        .after(unchanged("victim", VICTIM))
        .secs(10),
        case(13, "import -o a dangling symlink is refused", import_to(dangling))
            .code(2)
            .err(&["symbolic link"])
            .after(absent("nothing-here"))
            .secs(10),
        case(
            13,
            "import -o its own input trace is refused",
            import_to(|c| c.s("t.jsonl")),
        )
        .code(2)
        .err(&["input trace"])
        .after(unchanged("t.jsonl", TRACE))
        .secs(10),
        case(
            13,
            "import -o its input trace through dir/../ is refused",
            import_to(|c| {
                std::fs::create_dir(c.p("d")).unwrap();
                format!("{}/d/../t.jsonl", c.dir.display())
            }),
        )
        .code(2)
        .err(&["input trace"])
        .after(unchanged("t.jsonl", TRACE))
        .secs(10),
        case(
            13,
            "import of a trace read through a symlink, -o the real trace, is refused",
            |c| {
                c.write("t.jsonl", TRACE);
                symlink(c, "t.jsonl", "via.jsonl");
                strs(&["import", &c.s("via.jsonl"), "-o", &c.s("t.jsonl")])
            },
        )
        .code(2)
        .err(&["input trace"])
        .after(unchanged("t.jsonl", TRACE))
        .secs(10),
        case(
            13,
            "import -o a hard link to its input trace is refused",
            import_to(|c| {
                std::fs::hard_link(c.p("t.jsonl"), c.p("hard.jsonl")).unwrap();
                c.s("hard.jsonl")
            }),
        )
        .code(2)
        .err(&["input trace"])
        .after(unchanged("t.jsonl", TRACE))
        .secs(10),
        case(13, "import -o the database given to --db is refused", |c| {
            c.write("t.jsonl", TRACE);
            let db = other_db(c);
            strs(&["import", &c.s("t.jsonl"), "--db", &db, "-o", &db])
        })
        .code(2)
        .err(&["--db"])
        .after(other_db_intact)
        .secs(10),
        case(13, "import -o a directory is refused with exit 2", import_to(dir))
            .code(2)
            .err(&["directory"])
            .secs(10),
    ]
}

/// A line a pasted snippet must never contain as code.
const PAYLOAD: &str = "import os; os.system('touch pwned')";

/// The base report with every run id followed by a line break and `PAYLOAD` (`sep` between).
fn injected_ids(c: &Ctx, sep: &'static str) -> String {
    mutated_report(c, "r.json", &|v| {
        for run in v["runs"].as_array_mut().unwrap() {
            let id = run["id"].as_str().unwrap().to_string();
            run["id"] = format!("{id}{sep}{PAYLOAD}").into();
        }
        if let Some(obj) = v.as_object_mut() {
            obj.remove("verdict");
        }
    })
}

fn apply_case(framework: &'static str, sep: &'static str) -> Case {
    let name: &'static str =
        Box::leak(format!("apply --for {framework}: a run id with {sep:?} stays in its comment").into_boxed_str());
    case(14, name, move |c| {
        let r = injected_ids(c, sep);
        strs(&["apply", &r, "--for", framework])
    })
    .secs(15)
    .after(|_, o| {
        let bad = o.stdout.lines().any(|l| l.trim_start().starts_with("import os"))
            || o.stdout.contains('\r')
            || o.stdout.contains('\u{2028}')
            || o.stdout.contains("?>\n<?php")
            || o.stdout.contains("?> import");
        (!bad)
            .then_some(())
            .ok_or(format!("snippet injected: {}", tail(&o.stdout)))
    })
}

/// The base report with its first group renamed (in the runs and their timelines).
fn renamed_group(c: &Ctx, name: &'static str, to: &str) -> String {
    let to = to.to_string();
    mutated_report(c, name, &move |v| {
        for run in v["runs"].as_array_mut().unwrap() {
            let first = run["groups"][0]["name"].as_str().unwrap().to_string();
            run["groups"][0]["name"] = to.clone().into();
            if let Some(t) = run["timeline"].as_array_mut() {
                for e in t {
                    for g in e["groups"].as_array_mut().unwrap() {
                        if g["name"] == first.as_str() {
                            g["name"] = to.clone().into();
                        }
                    }
                }
            }
        }
        if let Some(obj) = v.as_object_mut() {
            obj.remove("verdict");
        }
    })
}

fn no_escape_chars(_: &Ctx, o: &Out) -> Result<(), String> {
    let raw = |s: &str| s.contains('\u{1b}') || s.contains('\u{7}');
    (!raw(&o.stdout) && !raw(&o.stderr))
        .then_some(())
        .ok_or(format!("raw escape on the terminal: {}", tail(&o.stderr)))
}

fn class_14() -> Vec<Case> {
    let mut v = Vec::new();
    for f in ["django", "rails", "laravel", "go", "node", "pragma"] {
        v.push(apply_case(f, "\n"));
    }
    for (f, sep) in [
        ("django", "\r"),
        ("node", "\u{2028}"),
        ("rails", "\u{85}"),
        ("laravel", " ?>\n<?php "),
    ] {
        v.push(apply_case(f, sep));
    }
    let csv_cells = |words: &'static [&'static str]| {
        move |_: &Ctx, o: &Out| {
            for w in words {
                if o.stdout
                    .lines()
                    .any(|l| l.split(',').any(|cell| cell.trim_matches('"').starts_with(w)))
                {
                    return Err(format!("a CSV cell starts with {w:?}: {}", tail(&o.stdout)));
                }
            }
            Ok(())
        }
    };
    v.extend([
        case(
            14,
            "report --format csv: a group named =HYPERLINK(..) is not a formula",
            |c| {
                let r = renamed_group(c, "r.json", "=HYPERLINK(\"http://x\",\"y\")");
                strs(&["report", &r, "--format", "csv"])
            },
        )
        .secs(15)
        .after(csv_cells(&["=HYPERLINK"])),
        case(
            14,
            "report --format csv: run ids starting with + - @ are not formulas",
            |c| {
                let r = mutated_report(c, "r.json", &|v| {
                    for (i, run) in v["runs"].as_array_mut().unwrap().iter_mut().enumerate() {
                        run["id"] = ["+cmd|' /C calc'!A0", "@SUM(1+1)*cmd"][i % 2].into();
                    }
                    v.as_object_mut().unwrap().remove("verdict");
                });
                strs(&["report", &r, "--format", "csv"])
            },
        )
        .secs(15)
        .after(csv_cells(&["+cmd", "@SUM"])),
        case(14, "report --format csv: a group named -2+3 is not a formula", |c| {
            let r = renamed_group(c, "r.json", "-2+3");
            strs(&["report", &r, "--format", "csv"])
        })
        .secs(15)
        .after(csv_cells(&["-2+3"])),
        case(
            14,
            "apply --config with an escape sequence is escaped on the terminal",
            |c| {
                let r = mutated_report(c, "r.json", &|_| {});
                strs(&["apply", &r, "--config", "x\u{1b}[2J\u{1b}]0;pwned\u{7}"])
            },
        )
        .code(2)
        .err(&["--config"])
        .after(no_escape_chars)
        .secs(15),
        case(
            14,
            "apply --config against a report whose run ids hold escapes: escaped",
            |c| {
                let r = injected_ids(c, "\u{1b}[2J");
                strs(&["apply", &r, "--config", "nothing-matches"])
            },
        )
        .code(2)
        .after(no_escape_chars)
        .secs(15),
        case(
            14,
            "crash --replay with an escape sequence is escaped on the terminal",
            |_| {
                strs(&[
                    "crash",
                    "--replay",
                    "x\u{1b}[2J\u{1b}]0;pwned\u{7}:power-loss/durable:0",
                    "--transactions",
                    "5",
                ])
            },
        )
        .code(2)
        .err(&["--replay"])
        .after(no_escape_chars)
        .secs(20),
        case(
            14,
            "crash --beside: a report's scenario and group names are escaped",
            |c| {
                let r = mutated_report(c, "r.json", &|v| {
                    v["scenario"]["name"] = "tiny\u{1b}[2J\nFAKE LINE".into();
                });
                let r = {
                    let text = std::fs::read_to_string(&r).unwrap();
                    let mut v: Value = serde_json::from_str(&text).unwrap();
                    for run in v["runs"].as_array_mut().unwrap() {
                        for g in run["groups"].as_array_mut().unwrap() {
                            g["name"] = "w\u{1b}]0;x\u{7}".into();
                        }
                    }
                    c.write_json("r.json", &v)
                };
                strs(&[
                    "crash",
                    "--method",
                    "power-loss",
                    "--model",
                    "durable",
                    "--trials",
                    "1",
                    "--transactions",
                    "3",
                    "--matrix",
                    "journal_mode=wal",
                    "--matrix",
                    "synchronous=full",
                    "--beside",
                    &r,
                    "-o",
                    &c.s("c.json"),
                ])
            },
        )
        .after(|c, o| {
            no_escape_chars(c, o)?;
            (!o.stdout.lines().any(|l| l.starts_with("FAKE LINE")))
                .then_some(())
                .ok_or(format!("a line was injected: {}", tail(&o.stdout)))
        })
        .secs(60),
        // report --format hlog -o DIR: every file stays in DIR, none overwrites another.
        case(14, "hlog: a group named /../../escape stays inside DIR", |c| {
            let r = renamed_group(c, "r.json", "/../../escape");
            std::fs::create_dir(c.p("deep")).unwrap();
            strs(&["report", &r, "--format", "hlog", "-o", &c.s("deep/out")])
        })
        .secs(15)
        .after(|c, _| {
            let top: Vec<String> = c.ls("").into_iter().filter(|n| n.contains("escape")).collect();
            let deep: Vec<String> = c.ls("deep").into_iter().filter(|n| n != "out").collect();
            let inside = c.ls("deep/out");
            (top.is_empty() && deep.is_empty() && inside.iter().any(|n| n.contains("escape")))
                .then_some(())
                .ok_or(format!("escaped: top {top:?}, deep {deep:?}, inside {inside:?}"))
        }),
        case(
            14,
            "hlog: two runs whose ids sanitize to one name are refused (exit 2)",
            |c| {
                let r = mutated_report(c, "r.json", &|v| {
                    let runs = v["runs"].as_array_mut().unwrap();
                    runs[0]["id"] = "a/b".into();
                    runs[1]["id"] = "a:b".into();
                    v.as_object_mut().unwrap().remove("verdict");
                });
                strs(&["report", &r, "--format", "hlog", "-o", &c.s("out")])
            },
        )
        .code(2)
        .err(&["both", "a_b"])
        .after(absent("out"))
        .secs(15),
        case(14, "hlog: -o DIR that is a regular file is refused (exit 2)", |c| {
            let r = mutated_report(c, "r.json", &|_| {});
            c.write("victim", VICTIM);
            strs(&["report", &r, "--format", "hlog", "-o", &c.s("victim")])
        })
        .code(2)
        .err(&["directory"])
        .after(unchanged("victim", VICTIM))
        .secs(15),
        case(14, "hlog: -o DIR that is a symlink is refused (exit 2)", |c| {
            let r = mutated_report(c, "r.json", &|_| {});
            std::fs::create_dir(c.p("real")).unwrap();
            symlink(c, "real", "out");
            strs(&["report", &r, "--format", "hlog", "-o", &c.s("out")])
        })
        .code(2)
        .err(&["symbolic link"])
        .secs(15),
        case(
            14,
            "hlog: a symlink at an entry's name is refused, its target untouched",
            |c| {
                let r = mutated_report(c, "r.json", &|_| {});
                std::fs::create_dir(c.p("out")).unwrap();
                c.write("victim", VICTIM);
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
                let name = format!("{}-writers.hlog", v["runs"][0]["id"].as_str().unwrap());
                std::os::unix::fs::symlink(c.p("victim"), c.p("out").join(name)).unwrap();
                strs(&["report", &r, "--format", "hlog", "-o", &c.s("out")])
            },
        )
        .code(2)
        .err(&["symbolic link"])
        .after(unchanged("victim", VICTIM))
        .secs(15),
        case(
            14,
            "hlog: a FIFO at an entry's name is refused (exit 2, no hang)",
            |c| {
                let r = mutated_report(c, "r.json", &|_| {});
                std::fs::create_dir(c.p("out")).unwrap();
                let v: Value = serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
                let name = format!("out/{}-writers.hlog", v["runs"][1]["id"].as_str().unwrap());
                fifo(c, &name);
                strs(&["report", &r, "--format", "hlog", "-o", &c.s("out")])
            },
        )
        .code(2)
        .err(&["not a regular file"])
        .secs(15),
        case(14, "hlog: a directory at an entry's name is refused (exit 2)", |c| {
            let r = mutated_report(c, "r.json", &|_| {});
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&r).unwrap()).unwrap();
            let name = format!("{}-writers.hlog", v["runs"][0]["id"].as_str().unwrap());
            std::fs::create_dir_all(c.p("out").join(name)).unwrap();
            strs(&["report", &r, "--format", "hlog", "-o", &c.s("out")])
        })
        .code(2)
        .err(&["directory"])
        .secs(15),
        case(
            14,
            "hlog: a run id with a line break does not add lines to the log",
            |c| {
                let r = injected_ids(c, "\n");
                strs(&["report", &r, "--format", "hlog", "-o", &c.s("out")])
            },
        )
        .secs(15)
        .after(|c, _| {
            for f in c.ls("out") {
                let text = std::fs::read_to_string(c.p("out").join(&f)).unwrap_or_default();
                if text.lines().any(|l| l.starts_with("import os")) {
                    return Err(format!("{f} has an injected line"));
                }
            }
            Ok(())
        }),
    ]);
    v
}

/// Neither stream nor any file the case wrote holds the password.
fn no_secret(c: &Ctx, o: &Out) -> Result<(), String> {
    if o.stderr.contains("s3cret") || o.stdout.contains("s3cret") {
        return Err(format!("the password was printed: {}", tail(&o.stderr)));
    }
    for f in c.ls("") {
        let text = std::fs::read(c.p(&f)).unwrap_or_default();
        if text.windows(6).any(|w| w == b"s3cret") {
            return Err(format!("the password is in {f}"));
        }
    }
    Ok(())
}

fn pg_url_case(name: &'static str, target: &'static str) -> Case {
    case(15, name, move |c| run_args(c, MIN, &["--target", target]))
        .code(2)
        .after(no_secret)
        .secs(30)
}

fn class_15() -> Vec<Case> {
    vec![
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        pg_url_case(
            "a URL's userinfo password is not in the error",
            "postgres=postgres://u:s3cret@127.0.0.1:1/db",
        ),
        pg_url_case(
            "postgresql:// with a password is not in the error",
            "postgres=postgresql://u:s3cret@127.0.0.1:1/db",
        ),
        pg_url_case(
            "a ?password= query parameter is not in the error",
            "postgres=postgres://u@127.0.0.1:1/db?password=s3cret",
        ),
        pg_url_case(
            "a &password= query parameter is not in the error",
            "postgres=postgres://u@127.0.0.1:1/db?connect_timeout=2&password=s3cret",
        ),
        pg_url_case(
            "a key/value string with password= is not in the error",
            "postgres=host=127.0.0.1 port=1 password=s3cret",
        ),
        pg_url_case(
            "a key/value string with a quoted password is not in the error",
            "postgres=host=127.0.0.1 password='s3cret x'",
        ),
        pg_url_case(
            "a malformed port beside a password is not in the error",
            "postgres=postgres://u:s3cret@h:notaport/db",
        ),
        pg_url_case(
            "a password with @ in it is not in the error",
            "postgres=postgres://u:s3cret@x@127.0.0.1:1/db",
        ),
        case(
            15,
            "a misspelt target with a URL: clap's usage error hides the password",
            |c| run_args(c, MIN, &["--target", "postgress=postgres://u:s3cret@127.0.0.1:1/db"]),
        )
        .code(2)
        .err(&["unknown target"])
        .after(no_secret)
        .secs(10),
        case(15, "sqlite= with a URL: the usage error hides the password", |c| {
            run_args(c, MIN, &["--target", "sqlite=postgres://u:s3cret@127.0.0.1:1/db"])
        })
        .code(2)
        .after(no_secret)
        .secs(10),
    ]
}

/// A stand-in for `litestream`: `replicate` copies the database as it is when the run
/// starts (before any commit) into the replica and waits; `restore` does what `restore`
/// says: `snapshot` (that empty copy), `nothing` (writes no file), `empty-file` (0 bytes).
fn fake_litestream(c: &Ctx, restore: &str) -> String {
    let restore_cmd = match restore {
        "snapshot" => {
            "cp \"$rep/snap.db\" \"$out\"; [ -f \"$rep/snap.db-wal\" ] && cp \"$rep/snap.db-wal\" \"$out-wal\""
        }
        "empty-file" => ": > \"$out\"",
        _ => ":",
    };
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  version) echo v0.0.0-fake ;;\n  replicate)\n    cfg=\"$3\"; d=$(dirname \"$cfg\")\n    db=$(sed -n 's/^  - path: \"\\(.*\\)\"$/\\1/p' \"$cfg\")\n    mkdir -p \"$d/replica\"; cp \"$db\" \"$d/replica/snap.db\"; [ -f \"$db-wal\" ] && cp \"$db-wal\" \"$d/replica/snap.db-wal\"; : > \"$d/replica/0.ltx\"\n    exec sleep 120 ;;\n  restore)\n    out=\"$3\"; rep=\"${{4#file://}}\"\n    {restore_cmd}\n    exit 0 ;;\nesac\n"
    );
    let path = c.write("litestream", &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn backup_text() -> String {
    tail_with("[sqlite]\njournal_mode = \"wal\"\n\n[backup]\nmethod = \"litestream\"\nsequence_table = \"t\"")
}

fn restore_case(name: &'static str, restore: &'static str, words: &'static [&'static str]) -> Case {
    case(16, name, move |c| {
        let bin = fake_litestream(c, restore);
        run_args(c, &backup_text(), &["--litestream", &bin])
    })
    .code(1)
    .out(words)
    .after(|c, _| {
        let text = std::fs::read_to_string(c.p("r.json")).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        let ok = &v["runs"][0]["backup"]["restore"]["ok"];
        (ok == false).then_some(()).ok_or(format!("restore.ok is {ok}"))
    })
    .secs(60)
}

/// A script group (transaction = "none") with `steps`, app_time 1 ms.
fn script_text(steps: &str) -> String {
    let base = with("workers = 1", "workers = 1\ntransaction = \"none\"\napp_time = \"1ms\"");
    let base = base.replace(
        "[[group.op]]\nname = \"ins\"\nsql = \"INSERT INTO t(v) VALUES (?1)\"\nparams = [\"text(5)\"]\n",
        "",
    );
    format!("{base}\n[[group.script]]\nname = \"s\"\nsteps = [\n{steps}\n]\n")
}

fn group_of_report(c: &Ctx) -> Result<Value, String> {
    let text = std::fs::read_to_string(c.p("r.json")).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(v["runs"][0]["groups"][0].clone())
}

fn blocks_of_report(c: &Ctx) -> Result<Value, String> {
    let text = std::fs::read_to_string(c.p("r.json")).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    Ok(v["runs"][0]["groups"][0]["app"]["blocks"].clone())
}

fn class_16() -> Vec<Case> {
    vec![
        // run --durability on PostgreSQL ran no trial and said nothing.
        case(16, "run --durability --target postgres is refused", run_min(&["--durability", "--target", "postgres"]))
            .code(2)
            .err(&["--durability", "SQLite"])
            .before_run()
            .secs(10),
        case(16, "run --durability --set target=postgres is refused", run_min(&["--durability", "--set", "target=postgres"]))
            .code(2)
            .err(&["--durability"])
            .before_run()
            .secs(10),
        case(16, "run --durability with target = postgres in the file is refused", run(head("target = \"postgres\""), &["--durability"]))
            .code(2)
            .err(&["--durability"])
            .before_run()
            .secs(10),
        // A backup that restores nothing is a failure, never "verified".
        restore_case("a restore of the empty first snapshot is a failure", "snapshot", &["NOT VERIFIED", "restored nothing"]),
        restore_case("a restore that writes no file is a failure", "nothing", &["NOT VERIFIED"]),
        restore_case("a restore that writes a 0-byte file is a failure", "empty-file", &["NOT VERIFIED"]),
        // Transaction blocks: the accounting follows what SQLite did.
        case(16, "a block that ends in ROLLBACK is not counted committed", run(script_text(
            "{ begin = \"immediate\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, { commit = false }",
        ), &[]))
        .after(|c, _| {
            let b = blocks_of_report(c)?;
            (b[0]["committed"] == 0 && b[0]["rolled_back"].as_u64().unwrap_or(0) > 0)
                .then_some(())
                .ok_or(format!("blocks: {b}"))?;
            // Nor in the group's committed transactions and tx/s: served, rolled back by the script.
            let t = &group_of_report(c)?["transactions"];
            (t["committed"] == 0 && t["throughput_per_s"] == 0.0 && t["rolled_back_by_script"].as_u64().unwrap_or(0) > 0)
                .then_some(())
                .ok_or(format!("transactions: {t}"))
        })
        .secs(30),
        case(16, "a block that ends in a ROLLBACK statement is not counted committed", run(script_text(
            "{ begin = \"deferred\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, { sql = \"ROLLBACK\" }",
        ), &[]))
        .after(|c, _| {
            let b = blocks_of_report(c)?;
            (b[0]["committed"] == 0).then_some(()).ok_or(format!("blocks: {b}"))?;
            let t = &group_of_report(c)?["transactions"];
            (t["committed"] == 0).then_some(()).ok_or(format!("transactions: {t}"))
        })
        .secs(30),
        case(16, "a request that commits one block and rolls back another counts once, committed", run(script_text(
            "{ begin = \"immediate\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, { commit = true }, \
             { begin = \"immediate\" }, { sql = \"INSERT INTO t(v) VALUES ('b')\" }, { commit = false }",
        ), &[]))
        .not_err(&["LOST"])
        .after(|c, _| {
            let t = &group_of_report(c)?["transactions"];
            (t["committed"].as_u64().unwrap_or(0) > 0 && t.get("rolled_back_by_script").is_none())
                .then_some(())
                .ok_or(format!("transactions: {t}"))
        })
        .secs(30),
        case(16, "ROLLBACK TO a savepoint inside a block: no false LOST", run(script_text(
            "{ begin = \"immediate\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, { sql = \"SAVEPOINT x\" }, \
             { sql = \"INSERT INTO t(v) VALUES ('b')\" }, { sql = \"ROLLBACK TO x\" }, { commit = true }",
        ), &[]))
        .not_err(&["LOST"])
        .secs(30),
        case(16, "ROLLBACK TRANSACTION TO SAVEPOINT, nested savepoints: no false LOST", run(script_text(
            "{ begin = \"immediate\" }, { sql = \"SAVEPOINT a\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, \
             { sql = \"SAVEPOINT b\" }, { sql = \"INSERT INTO t(v) VALUES ('b')\" }, { sql = \"RELEASE b\" }, \
             { sql = \"ROLLBACK TRANSACTION TO SAVEPOINT a\" }, { sql = \"INSERT INTO t(v) VALUES ('c')\" }, { commit = true }",
        ), &[]))
        .not_err(&["LOST"])
        .secs(30),
        case(16, "a SAVEPOINT never released inside a block: committed with it, no false LOST", run(script_text(
            "{ begin = \"immediate\" }, { sql = \"SAVEPOINT x\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, { commit = true }",
        ), &[]))
        .not_err(&["LOST"])
        .secs(30),
        case(16, "a SAVEPOINT never released outside a block: nothing acknowledged, no false LOST", run(script_text(
            "{ sql = \"SAVEPOINT x\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }",
        ), &[]))
        .not_err(&["LOST"])
        .secs(30),
        case(16, "SAVEPOINT then RELEASE outside a block: the rows count", run(script_text(
            "{ sql = \"SAVEPOINT x\" }, { sql = \"INSERT INTO t(v) VALUES ('a')\" }, { sql = \"RELEASE x\" }",
        ), &[]))
        .not_err(&["LOST"])
        .secs(30),
    ]
}

/// MIN on PostgreSQL with the op's `postgres = '''SQL'''`.
fn pg_op(sql: &str) -> String {
    with(
        "params = [\"text(5)\"]",
        &format!("params = [\"text(5)\"]\npostgres = '''{sql}'''"),
    )
    .replacen("seed = 1\n", "seed = 1\ntarget = \"postgres\"\n", 1)
}

/// MIN on PostgreSQL with `[setup] postgres = '''SQL'''`.
fn pg_setup(sql: &str) -> String {
    with(
        "sql = \"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"",
        &format!("sql = \"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\"\npostgres = '''CREATE TABLE t(id bigint generated by default as identity primary key, v text); {sql}'''"),
    )
    .replacen("seed = 1\n", "seed = 1\ntarget = \"postgres\"\n", 1)
}

fn pg_refused(name: &'static str, text: String, words: &'static [&'static str]) -> Case {
    case(17, name, validate(text))
        .code(2)
        .err(words)
        .after(absent("pwned"))
        .secs(15)
}

fn class_17() -> Vec<Case> {
    vec![
        pg_refused(
            "an op's COPY … TO PROGRAM is refused",
            pg_op("COPY t TO PROGRAM 'touch pwned'"),
            &["PROGRAM", "--allow-external-files"],
        ),
        pg_refused(
            "an op's COPY … FROM PROGRAM is refused",
            pg_op("COPY t FROM PROGRAM 'cat /etc/passwd'"),
            &["PROGRAM"],
        ),
        pg_refused(
            "an op's COPY … TO a file is refused",
            pg_op("COPY t TO '/tmp/litehammer-pwned'"),
            &["COPY", "file"],
        ),
        pg_refused(
            "an op's COPY (query) TO an E'' file is refused",
            pg_op("COPY (SELECT * FROM t) TO E'/tmp/x'"),
            &["COPY"],
        ),
        pg_refused(
            "an op's pg_read_file is refused",
            pg_op("SELECT pg_read_file('/etc/passwd')"),
            &["pg_read_file"],
        ),
        pg_refused(
            "an op's lo_export is refused",
            pg_op("SELECT lo_export(1, '/tmp/x')"),
            &["lo_export"],
        ),
        pg_refused(
            "an op's dblink is refused",
            pg_op("SELECT * FROM dblink('host=x', 'select 1') AS r(a int)"),
            &["dblink"],
        ),
        pg_refused(
            "[setup] postgres COPY … FROM a file is refused",
            pg_setup("COPY t FROM '/etc/passwd';"),
            &["setup", "COPY"],
        ),
        pg_refused(
            "[setup] postgres COPY … TO PROGRAM is refused",
            pg_setup("COPY t TO PROGRAM 'touch pwned';"),
            &["setup", "PROGRAM"],
        ),
        pg_refused(
            "[setup] postgres ALTER SYSTEM is refused",
            pg_setup("ALTER SYSTEM SET work_mem = '1GB';"),
            &["ALTER SYSTEM"],
        ),
        pg_refused(
            "[setup] postgres CREATE EXTENSION is refused",
            pg_setup("CREATE EXTENSION file_fdw;"),
            &["CREATE EXTENSION"],
        ),
        pg_refused(
            "[setup] postgres a plpython3u function is refused",
            pg_setup("CREATE FUNCTION f() RETURNS int AS 'import os' LANGUAGE plpython3u;"),
            &["plpython3u"],
        ),
        pg_refused(
            "[setup] postgres LOAD is refused",
            pg_setup("LOAD '/tmp/x.so';"),
            &["LOAD"],
        ),
        pg_refused(
            "a script step's COPY … TO PROGRAM is refused",
            {
                let text = pg_op("SELECT 1");
                format!(
                    "{text}\n[[group.script]]\nname = \"s\"\nsteps = [ {{ sql = \"SELECT 1\", postgres = \"COPY t TO PROGRAM 'touch pwned'\" }} ]\n"
                )
            },
            &["PROGRAM"],
        ),
        pg_refused(
            "a data check's pg_read_file is refused",
            {
                let text = pg_op("SELECT 1");
                format!(
                    "{text}\n[[check]]\nname = \"c\"\nsql = \"SELECT count(*) FROM t\"\npostgres = \"SELECT length(pg_read_file('/etc/passwd'))\"\nexpect = 0\n"
                )
            },
            &["pg_read_file"],
        ),
        case(
            17,
            "run --target postgres refuses COPY … TO PROGRAM before starting a server",
            run(
                with(
                    "params = [\"text(5)\"]",
                    "params = [\"text(5)\"]\npostgres = '''COPY t TO PROGRAM 'touch pwned' '''",
                ),
                &["--target", "postgres"],
            ),
        )
        .code(2)
        .err(&["PROGRAM"])
        .not_err(&["PostgreSQL:"])
        .before_run()
        .after(absent("pwned"))
        .secs(15),
        case(
            17,
            "--set target=postgres refuses an op's COPY … TO a file",
            validate_with(
                with(
                    "params = [\"text(5)\"]",
                    "params = [\"text(5)\"]\npostgres = '''COPY t TO '/tmp/x' '''",
                ),
                &["--set", "target=postgres"],
            ),
        )
        .code(2)
        .err(&["COPY"])
        .secs(15),
        case(
            17,
            "a plain override still validates",
            validate(pg_op("INSERT INTO t(v) VALUES ($1)")),
        )
        .secs(15),
        case(
            17,
            "--allow-external-files lets a COPY … TO a file through validate",
            validate_with(pg_op("COPY t TO '/tmp/x'"), &["--allow-external-files"]),
        )
        .err(&["--allow-external-files"])
        .secs(15),
    ]
}

/// This case's processes named `comm` (by their TMPDIR, never another case's).
fn case_procs(tmp: &Path, comm: &str) -> Vec<u32> {
    let want = format!("TMPDIR={}", tmp.display());
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            name.trim() == comm && env.split(|b| *b == 0).any(|a| a == want.as_bytes())
        })
        .collect()
}

/// After litehammer's death, no process named `comm` of the case is left (within 10 s).
fn none_left(comm: &'static str) -> impl Fn(&Ctx, &Out) -> Result<(), String> {
    move |c, _| {
        let start = Instant::now();
        loop {
            let left = case_procs(&c.tmp, comm);
            if left.is_empty() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(10) {
                for pid in &left {
                    send("KILL", &pid.to_string());
                }
                return Err(format!("`{comm}` still running after litehammer's SIGKILL: {left:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A run of MIN (30 s) with the case's TMPDIR, SIGKILLed once its temporary directory is
/// there: what it leaves behind.
fn killed_run(c: &Ctx, extra: &[&str]) {
    let mut cmd = Command::new(lh_path());
    cmd.args(run_args(
        c,
        &MIN.replace("duration = \"300ms\"", "duration = \"30s\""),
        extra,
    ));
    // Its databases in a temporary directory of its own, not --db-dir.
    let args: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
    let at = args.iter().position(|a| a == "--db-dir").unwrap();
    let mut cmd = Command::new(lh_path());
    cmd.args(args[..at].iter().chain(&args[at + 2..]));
    c.env(&mut cmd);
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while err.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("databases in") {
        line.clear();
    }
    std::thread::sleep(Duration::from_millis(300));
    send("KILL", &child.id().to_string());
    let _ = child.wait();
    assert!(!c.ls("tmp").is_empty(), "the killed run left nothing to clean up");
}

fn class_18() -> Vec<Case> {
    let mut v = vec![
        case(
            18,
            "after a SIGKILL, the next litehammer removes the temporary directory it left",
            |c| {
                killed_run(c, &[]);
                strs(&["validate", &c.write("v.toml", MIN)])
            },
        )
        .err(&["removed 1 temporary directory"])
        .secs(60),
        case(18, "SIGKILL of capture leaves no captured program running", |c| {
            c.write("lib.so", "");
            strs(&[
                "capture",
                "--lib",
                &c.s("lib.so"),
                "-o",
                &c.s("t.jsonl"),
                "--",
                // Its output away from litehammer's pipes, so that the runner sees litehammer's end.
                "sh",
                "-c",
                "exec sleep 30 </dev/null >/dev/null 2>&1",
            ])
        })
        .killed()
        .signal(Sig::Kill, Some("capturing"), 300, 5)
        .after(none_left("sleep"))
        .secs(30),
        case(18, "SIGKILL of a run leaves no litestream running", |c| {
            let bin = fake_litestream(c, "snapshot");
            run_args(
                c,
                &backup_text().replace("duration = \"300ms\"", "duration = \"30s\""),
                &["--litestream", &bin],
            )
        })
        .killed()
        .signal(Sig::Kill, Some("databases in"), 1000, 5)
        .after(none_left("sleep"))
        .secs(40),
    ];
    let pg = std::fs::read_dir("/usr/lib/postgresql")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false)
        || std::env::var_os("LITEHAMMER_PG_BIN").is_some();
    if pg {
        v.push(
            case(18, "SIGKILL of a run leaves no throwaway PostgreSQL running", |c| {
                run_args(
                    c,
                    &MIN.replace("duration = \"300ms\"", "duration = \"30s\""),
                    &["--target", "postgres"],
                )
            })
            .killed()
            .signal(Sig::Kill, Some("PostgreSQL:"), 500, 5)
            .after(none_left("postgres"))
            .secs(90),
        );
        v.push(
            case(
                18,
                "after a SIGKILL, the next run removes the throwaway server's directory",
                |c| {
                    killed_run(c, &["--target", "postgres"]);
                    // The server hears of the death (SIGQUIT) and stops; then its directory can go.
                    let start = Instant::now();
                    while !case_procs(&c.tmp, "postgres").is_empty() && start.elapsed() < Duration::from_secs(20) {
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    strs(&["validate", &c.write("v.toml", MIN)])
                },
            )
            .err(&["removed 2 temporary directories"])
            .secs(90),
        );
    }
    v
}

fn class_19() -> Vec<Case> {
    vec![
        case(
            19,
            "crash --replay CONFIG:MODEL:999999999999 says the trial is beyond --trials",
            |_| {
                strs(&[
                    "crash",
                    "--replay",
                    "journal_mode=wal,synchronous=full:torn:999999999999",
                ])
            },
        )
        .code(2)
        .err(&["beyond"])
        .not_err(&["must be a number"])
        .secs(15),
        case(
            19,
            "crash --replay CONFIG:MODEL:5000 beyond --trials 20 says so",
            |_| {
                strs(&[
                    "crash",
                    "--replay",
                    "journal_mode=wal,synchronous=full:torn:5000",
                    "--trials",
                    "20",
                ])
            },
        )
        .code(2)
        .err(&["not below --trials"])
        .secs(15),
        case(19, "crash --replay CONFIG:MODEL:x still says not a number", |_| {
            strs(&["crash", "--replay", "journal_mode=wal,synchronous=full:torn:x"])
        })
        .code(2)
        .err(&["must be a number"])
        .secs(15),
        case(19, "capture --lib a directory says it is a directory", |c| {
            std::fs::create_dir(c.p("libdir")).unwrap();
            strs(&["capture", "--lib", &c.s("libdir"), "-o", &c.s("t.jsonl"), "--", "true"])
        })
        .code(2)
        .err(&["is a directory"])
        .not_err(&["no such file"])
        .secs(10),
        case(
            19,
            "capture --lib /dev/null (a device) says it is not a regular file",
            |c| strs(&["capture", "--lib", "/dev/null", "-o", &c.s("t.jsonl"), "--", "true"]),
        )
        .code(2)
        .err(&["not a regular file"])
        .not_err(&["no such file"])
        .secs(10),
        case(19, "capture --lib a missing file still says no such file", |c| {
            strs(&[
                "capture",
                "--lib",
                &c.s("missing.so"),
                "-o",
                &c.s("t.jsonl"),
                "--",
                "true",
            ])
        })
        .code(2)
        .err(&["no such file"])
        .secs(10),
    ]
}

/// `crash --beside REPORT` with the flags of a quick one-configuration crash run.
fn crash_beside(report: &'static str, extra: &'static [&'static str]) -> impl Fn(&Ctx) -> Vec<String> {
    move |c| {
        let mut v = strs(&[
            "crash",
            "--trials",
            "1",
            "--method",
            "kill",
            "--set",
            "journal_mode=wal",
            "--set",
            "synchronous=full",
            "--db-dir",
            &c.s("db"),
            "--beside",
            &c.s(report),
        ]);
        if !extra.contains(&"-o") {
            v.extend(["-o".into(), c.s("crash.json")]);
        }
        v.extend(
            extra
                .iter()
                .map(|a| if a.ends_with(".json") { c.s(a) } else { a.to_string() }),
        );
        v
    }
}

fn class_20() -> Vec<Case> {
    let litestream_needs_wal = |name: &'static str, mode: &'static str| {
        case(20, name, move |c| {
            let mut v = run_args(c, MIN, &["--set", "backup=litestream", "--set"]);
            v.push(format!("journal_mode={mode}"));
            v
        })
        .code(2)
        .err(&["sqlite.journal_mode", "litestream"])
        .before_run()
        .after(absent("r.json"))
        .secs(15)
    };
    vec![
        // --kill restores a backup: without one it used to run and fail with exit 1.
        case(
            20,
            "run --kill without a backup is refused before running",
            run_min(&["--kill"]),
        )
        .code(2)
        .err(&["--kill", "backup"])
        .before_run()
        .after(absent("r.json"))
        .secs(15),
        case(
            20,
            "run --kill --set backup=none is refused",
            run_min(&["--kill", "--set", "backup=none"]),
        )
        .code(2)
        .err(&["--kill"])
        .before_run()
        .secs(15),
        case(
            20,
            "run --kill with [backup] method = \"none\" in the file is refused",
            run(format!("{MIN}\n[backup]\nmethod = \"none\"\n"), &["--kill"]),
        )
        .code(2)
        .err(&["--kill"])
        .before_run()
        .secs(15),
        // Litestream replicates the WAL: other journal modes used to fail with "database is locked".
        litestream_needs_wal("backup = litestream with journal_mode = delete is refused", "delete"),
        litestream_needs_wal(
            "backup = litestream with journal_mode = truncate is refused",
            "truncate",
        ),
        litestream_needs_wal("backup = litestream with journal_mode = persist is refused", "persist"),
        litestream_needs_wal("backup = litestream with journal_mode = memory is refused", "memory"),
        litestream_needs_wal("backup = litestream with journal_mode = off is refused", "off"),
        case(
            20,
            "backup = litestream with locking_mode = exclusive is refused",
            run_min(&[
                "--set",
                "backup=litestream",
                "--set",
                "journal_mode=wal",
                "--set",
                "locking_mode=exclusive",
            ]),
        )
        .code(2)
        .err(&["sqlite.locking_mode"])
        .before_run()
        .secs(15),
        case(
            20,
            "[backup] litestream with [sqlite] journal_mode = delete in the file is refused",
            validate(format!(
                "{MIN}\n[sqlite]\njournal_mode = \"delete\"\n\n[backup]\nmethod = \"litestream\"\n"
            )),
        )
        .code(2)
        .err(&["sqlite.journal_mode"])
        .secs(15),
        case(
            20,
            "backup = litestream over a journal_mode matrix names the run",
            run(
                format!("{MIN}\n[sqlite]\njournal_mode = \"wal\"\n\n[backup]\nmethod = \"litestream\"\n"),
                &["--matrix", "journal_mode=wal,delete"],
            ),
        )
        .code(2)
        .err(&["journal_mode=delete", "sqlite.journal_mode"])
        .before_run()
        .secs(15),
        case(
            20,
            "--kill with --set backup=litestream and journal_mode = delete is refused",
            run_min(&["--kill", "--set", "backup=litestream", "--set", "journal_mode=delete"]),
        )
        .code(2)
        .err(&["sqlite.journal_mode"])
        .before_run()
        .secs(15),
        // crash --beside reads a report as `report` and `compare` do.
        case(20, "crash --beside a report of another schema version is refused", {
            let args = crash_beside("old.json", &[]);
            move |c: &Ctx| {
                mutated_report(c, "old.json", &|v| v["schema"] = "litehammer-report/0".into());
                args(c)
            }
        })
        .code(2)
        .err(&["schema"])
        .after(absent("crash.json"))
        .secs(20),
        case(20, "crash --beside a report with duplicate runs is refused", {
            let args = crash_beside("dup.json", &[]);
            move |c: &Ctx| {
                mutated_report(c, "dup.json", &|v| {
                    let first = v["runs"][0].clone();
                    v["runs"].as_array_mut().unwrap().push(first);
                });
                args(c)
            }
        })
        .code(2)
        .err(&["duplicate run id"])
        .after(absent("crash.json"))
        .secs(20),
        case(20, "crash --beside R -o R (its own output) is refused, R unchanged", {
            let args = crash_beside("same.json", &["-o", "same.json"]);
            move |c: &Ctx| {
                c.write("same.json", "{}");
                args(c)
            }
        })
        .code(2)
        .err(&["--beside"])
        .after(unchanged("same.json", "{}"))
        .secs(20),
        case(20, "crash --beside R -o dir/../R is refused", {
            let args = crash_beside("same.json", &["-o", "sub/../same.json"]);
            move |c: &Ctx| {
                c.write("same.json", "{}");
                std::fs::create_dir(c.p("sub")).unwrap();
                args(c)
            }
        })
        .code(2)
        .err(&["--beside"])
        .after(unchanged("same.json", "{}"))
        .secs(20),
        case(20, "crash --beside a partial report warns, as report and compare do", {
            let args = crash_beside("partial.json", &[]);
            move |c: &Ctx| {
                mutated_report(c, "partial.json", &|v| v["status"] = "partial".into());
                args(c)
            }
        })
        .codes(&[0, 1])
        .err(&["is partial"])
        .secs(60),
        case(20, "crash --beside a report that is not JSON is refused", {
            let args = crash_beside("bad.json", &[]);
            move |c: &Ctx| {
                c.write("bad.json", "{ not json");
                args(c)
            }
        })
        .code(2)
        .err(&["--beside", "not JSON"])
        .after(absent("crash.json"))
        .secs(20),
    ]
}

/// A fake PostgreSQL bin directory whose `initdb` hangs.
fn hanging_initdb(c: &Ctx) {
    std::fs::create_dir(c.p("pgbin")).unwrap();
    for program in ["initdb", "postgres"] {
        let path = c.write(&format!("pgbin/{program}"), "#!/bin/sh\nexec sleep 300\n");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // Running as root, the server's programs run as `postgres`: let it reach them.
    for d in [c.dir.clone(), c.tmp.clone(), c.p("pgbin")] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A fake litestream: `version` as given, `replicate` that never writes a snapshot.
fn stuck_litestream(c: &Ctx, version: &str) -> String {
    let script = format!("#!/bin/sh\ncase \"$1\" in\n  version) {version} ;;\n  *) exec sleep 120 ;;\nesac\n");
    let path = c.write("litestream", &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A trace of `requests` requests (200 ms apart) of `per_request` statements each; with
/// `distinct`, every request's statement has its own shape (a request kind each).
fn big_trace(c: &Ctx, name: &str, requests: usize, per_request: usize, distinct: bool) -> String {
    use std::fmt::Write;
    let mut t = String::new();
    t.push_str(r#"{"v":1,"kind":"header","ts":0,"pid":5,"tid":5,"exe":"/usr/bin/python3","redacted":false}"#);
    t.push('\n');
    t.push_str(r#"{"v":1,"kind":"open","ts":1000,"pid":5,"tid":5,"conn":1,"path":"a.db","file":"/nonexistent/a.db"}"#);
    t.push('\n');
    t.push_str(r#"{"v":1,"kind":"stmt","ts":2000,"pid":5,"tid":5,"conn":1,"dur_ns":1000,"sql":"CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, n INTEGER)","changes":0}"#);
    t.push('\n');
    let mut ts = 1_000_000_000u64;
    for r in 0..requests {
        ts += 200_000_000;
        for i in 0..per_request {
            ts += 10_000;
            let (sql, expanded) = if distinct {
                (
                    format!("SELECT id FROM t WHERE n = ? AND {r} = {r}"),
                    format!("SELECT id FROM t WHERE n = {i} AND {r} = {r}"),
                )
            } else {
                (
                    "INSERT INTO t(name, n) VALUES (?, ?)".to_string(),
                    format!("INSERT INTO t(name, n) VALUES ('x{i}', {i})"),
                )
            };
            let _ = writeln!(
                t,
                r#"{{"v":1,"kind":"stmt","ts":{ts},"pid":5,"tid":5,"conn":1,"dur_ns":1000,"sql":"{sql}","expanded":"{expanded}","changes":0}}"#
            );
        }
    }
    c.write(name, &t)
}

fn class_21() -> Vec<Case> {
    let mut v = vec![
        // Import's analysis was cubic in the number of request kinds with one name.
        case(21, "import of 5,000 request kinds (1.1 MB) ends and validates", |c| {
            let trace = big_trace(c, "kinds.jsonl", 5000, 1, true);
            strs(&["import", &trace, "-o", &c.s("kinds.toml")])
        })
        .out(&["5000 kind(s)", "next: litehammer validate"])
        .secs(120),
        case(
            21,
            "import of one request of 20,000 statements (4 MB) ends and validates",
            |c| {
                let trace = big_trace(c, "long.jsonl", 1, 20_000, false);
                strs(&["import", &trace, "-o", &c.s("long.toml")])
            },
        )
        .out(&["1 request(s)", "next: litehammer validate"])
        .secs(120),
        case(
            21,
            "a litestream whose `version` hangs is killed, and the run says so",
            |c| {
                let bin = stuck_litestream(c, "exec sleep 300");
                run_args(c, &backup_text(), &["--litestream", &bin])
            },
        )
        .codes(&[1, 2])
        .err(&["litestream", "version", "no answer within"])
        .after(none_left("sleep"))
        .secs(60),
        case(
            21,
            "SIGTERM while litestream's `version` hangs ends the run at once",
            |c| {
                let bin = stuck_litestream(c, "exec sleep 300");
                run_args(c, &backup_text(), &["--litestream", &bin])
            },
        )
        .codes(&[1, 2, 130, 143])
        .signal(Sig::Term, Some("databases in"), 1000, 5)
        .after(none_left("sleep"))
        .secs(40),
        case(
            21,
            "SIGINT while litestream never writes its first snapshot ends the run at once",
            |c| {
                let bin = stuck_litestream(c, "echo v0.0.0-fake");
                run_args(c, &backup_text(), &["--litestream", &bin])
            },
        )
        .codes(&[1, 2, 130])
        .signal(Sig::Int, Some("databases in"), 1000, 5)
        .after(none_left("sleep"))
        .secs(40),
        case(
            21,
            "LITEHAMMER_PG_BIN that does not exist is named",
            run_min(&["--target", "postgres"]),
        )
        .env("LITEHAMMER_PG_BIN", "{dir}/no-such-dir")
        .code(2)
        .err(&["LITEHAMMER_PG_BIN", "no-such-dir", "not a directory"])
        .before_run()
        .secs(20),
        case(21, "LITEHAMMER_PG_BIN without initdb is named", |c| {
            std::fs::create_dir(c.p("emptybin")).unwrap();
            run_args(c, MIN, &["--target", "postgres"])
        })
        .env("LITEHAMMER_PG_BIN", "{dir}/emptybin")
        .code(2)
        .err(&["LITEHAMMER_PG_BIN", "initdb"])
        .before_run()
        .secs(20),
    ];
    if is_root() {
        v.push(
            case(
                21,
                "SIGTERM while initdb hangs ends the run at once, nothing left",
                |c| {
                    hanging_initdb(c);
                    run_args(c, MIN, &["--target", "postgres"])
                },
            )
            .env("LITEHAMMER_PG_BIN", "{dir}/pgbin")
            .codes(&[1, 2, 130, 143])
            .signal(Sig::Term, None, 1500, 5)
            .after(none_left("sleep"))
            .secs(40)
            .root(),
        );
        v.push(
            case(
                21,
                "a TMPDIR the postgres user cannot enter is named, not blamed on initdb",
                |c| {
                    std::fs::set_permissions(&c.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
                    run_args(c, MIN, &["--target", "postgres"])
                },
            )
            .code(2)
            .err(&["cannot enter", "TMPDIR"])
            .not_err(&["initdb failed"])
            .before_run()
            .secs(30)
            .root(),
        );
    }
    v
}

// ---------------------------------------------------------------------------------------
// The tests

#[test]
fn class_01_data_loss() {
    run_class(1);
}

#[test]
fn class_02_unsafe_writes() {
    run_class(2);
}

#[test]
fn class_03_sql_reaching_outside_the_run() {
    run_class(3);
}

#[test]
fn class_04_panics_on_bad_input() {
    run_class(4);
}

#[test]
fn class_05_hangs_and_runaway_resources() {
    run_class(5);
}

#[test]
fn class_06_misleading_success() {
    run_class(6);
}

#[test]
fn class_07_signals_outside_the_measured_phase() {
    run_class(7);
}

#[test]
fn class_08_compare_as_a_ci_gate() {
    run_class(8);
}

#[test]
fn class_09_generators() {
    run_class(9);
}

#[test]
fn class_10_validate_ok_means_run_ok() {
    run_class(10);
}

#[test]
fn class_11_text_injection() {
    run_class(11);
}

#[test]
fn class_12_round3_hangs_and_sizes() {
    run_class(12);
}

#[test]
fn class_13_round3_capture_and_import_outputs() {
    run_class(13);
}

#[test]
fn class_14_round3_printed_text() {
    run_class(14);
}

#[test]
fn class_15_round3_secrets() {
    run_class(15);
}

#[test]
fn class_16_round3_silent_successes() {
    run_class(16);
}

#[test]
fn class_17_round3_postgres_external_files() {
    run_class(17);
}

#[test]
fn class_18_round3_children_die_with_litehammer() {
    run_class(18);
}

#[test]
fn class_19_round3_misleading_messages() {
    run_class(19);
}

#[test]
fn class_20_round3_bad_combinations_and_report_inputs() {
    run_class(20);
}

#[test]
fn class_21_round3_helper_programs_that_hang_and_the_servers_environment() {
    run_class(21);
}

// ---------------------------------------------------------------------------------------
// Fuzz-style: mutate every built-in scenario

fn builtin_scenarios() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A value of another TOML type than `value`.
fn other_type(value: &str) -> &'static str {
    let v = value.trim();
    if v.starts_with('"') || v.starts_with('\'') {
        "12"
    } else if v.starts_with('[') {
        "{ a = 1 }"
    } else if v.starts_with('{') {
        "[1, 2]"
    } else if v == "true" || v == "false" {
        "1.5"
    } else if v.parse::<f64>().is_ok() {
        "\"x\""
    } else {
        "true"
    }
}

/// Deterministic mutants of one scenario: (label, text).
fn mutants(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    // At most ~10 positions per kind, spread over the file.
    let step = (n / 10).max(1);
    let mut out = Vec::new();
    for i in (0..n).step_by(step) {
        let mut l = lines.clone();
        l.remove(i);
        out.push((format!("delete line {}", i + 1), l.join("\n")));
    }
    let assignments: Vec<usize> = (0..n)
        .filter(|&i| {
            let l = lines[i].trim_start();
            !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ")
        })
        .collect();
    let astep = (assignments.len() / 10).max(1);
    for &i in assignments.iter().step_by(astep) {
        let (key, value) = lines[i].split_once(" = ").unwrap();
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[i] = format!("{key} = {}", other_type(value));
        out.push((format!("swap type on line {}", i + 1), l.join("\n")));
        let mut d: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        d.insert(i + 1, lines[i].to_string());
        out.push((format!("duplicate key on line {}", i + 1), d.join("\n")));
    }
    let chars: Vec<char> = text.chars().collect();
    for k in 1..=8 {
        let cut = chars.len() * k / 9;
        out.push((format!("truncate at char {cut}"), chars[..cut].iter().collect()));
    }
    out
}

fn fuzz_one(ctx: &Ctx, args: &[String], timeout: Duration, allowed: &[i32]) -> Result<i32, String> {
    let c = Case {
        timeout,
        codes: allowed.to_vec(),
        ..case(0, "fuzz", {
            let args = args.to_vec();
            move |_| args.clone()
        })
    };
    let out = execute(&c, ctx)?;
    if out.code == Some(101) || out.stderr.contains("panicked") {
        return Err(format!("panic: {}", tail(&out.stderr)));
    }
    match out.code {
        Some(code) if allowed.contains(&code) => Ok(code),
        other => Err(format!("exit {other:?}: {}", tail(&out.stderr))),
    }
}

#[test]
fn fuzz_mutated_builtin_scenarios() {
    let mut failures = Vec::new();
    let mut tried = 0;
    for (file, text) in builtin_scenarios() {
        let mut ran = 0;
        for (label, mutant) in mutants(&text) {
            tried += 1;
            let ctx = Ctx::new();
            let path = ctx.write(&file, &mutant);
            match fuzz_one(
                &ctx,
                &["validate".into(), path.clone()],
                Duration::from_secs(30),
                &[0, 2],
            ) {
                Err(e) => failures.push(format!("{file}: {label}: validate: {e}")),
                // A few mutants that validate also get a very short run.
                Ok(0) if ran < 1 => {
                    ran += 1;
                    let args = strs(&[
                        "run",
                        &path,
                        "--duration",
                        "200ms",
                        "--warmup",
                        "0s",
                        "--no-probe",
                        "-q",
                        "--db-dir",
                        &ctx.s("db"),
                        "-o",
                        &ctx.s("r.json"),
                    ]);
                    if let Err(e) = fuzz_one(&ctx, &args, Duration::from_secs(120), &[0, 1, 2]) {
                        failures.push(format!("{file}: {label}: run: {e}"));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    assert!(tried > 100, "only {tried} mutants");
    assert!(
        failures.is_empty(),
        "{} of {tried} mutants failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
