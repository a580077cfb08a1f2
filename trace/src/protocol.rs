//! The capture protocol: how a launcher (`litehammer capture`) talks to the preload library,
//! how the library names its output, and how the per-thread part files are merged into one
//! trace.
//!
//! The capture library links it as well as `litehammer capture`; see `docs/trace-format.md` for
//! the format itself.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Output prefix. The library writes `{prefix}.{pid}.{tid}.jsonl`, one file per thread that
/// ran SQLite statements. Unset or empty: the library forwards every call and records nothing.
/// The capture library writes a thread's buffered records to its part file once they pass
/// this many bytes, on `sqlite3_close*`, at thread exit and at a normal process exit.
pub const FLUSH_AT: usize = 64 * 1024;

pub const ENV_OUT: &str = "LITEHAMMER_CAPTURE_OUT";
/// `1` (also `true`, `yes`, `on`): replace every literal in the recorded SQL with `<type:len>`.
pub const ENV_REDACT: &str = "LITEHAMMER_CAPTURE_REDACT";
/// The file name of the preload library as cargo builds it (`target/<profile>/`).
pub const LIBRARY_FILE_NAME: &str = "liblitehammer_capture.so";
/// The trace format version written in every line's `"v"`.
pub const FORMAT_VERSION: u32 = 1;

/// Whether an `ENV_REDACT` value turns redaction on.
pub fn redact_enabled(value: Option<&OsStr>) -> bool {
    matches!(
        value
            .and_then(OsStr::to_str)
            .map(str::trim)
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("1" | "true" | "yes" | "on")
    )
}

/// The part file one thread writes: `{prefix}.{pid}.{tid}.jsonl`.
pub fn part_path(prefix: &Path, pid: u32, tid: u32) -> PathBuf {
    let mut s = prefix.as_os_str().to_os_string();
    s.push(format!(".{pid}.{tid}.jsonl"));
    PathBuf::from(s)
}

/// The environment to add to the child process: `LD_PRELOAD` (the library placed before an
/// existing `LD_PRELOAD`, if any), `ENV_OUT` and, when redacting, `ENV_REDACT=1`.
/// `existing_preload` is the launcher's own `LD_PRELOAD` (`std::env::var_os("LD_PRELOAD")`).
pub fn child_env(
    library: &Path,
    prefix: &Path,
    redact: bool,
    existing_preload: Option<&OsStr>,
) -> Vec<(OsString, OsString)> {
    let mut preload = library.as_os_str().to_os_string();
    if let Some(old) = existing_preload.filter(|s| !s.is_empty()) {
        preload.push(":");
        preload.push(old);
    }
    let mut env = vec![
        (OsString::from("LD_PRELOAD"), preload),
        (OsString::from(ENV_OUT), prefix.as_os_str().to_os_string()),
    ];
    if redact {
        env.push((OsString::from(ENV_REDACT), OsString::from("1")));
    }
    env
}

/// Where to look for the library, in order: an explicit path, `$LITEHAMMER_CAPTURE_LIB`, then next to
/// the running executable (cargo puts `litehammer` and the library in the same
/// `target/<profile>/` when both are built, e.g. `cargo build --workspace`).
pub fn library_candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("LITEHAMMER_CAPTURE_LIB") {
        out.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        out.push(dir.join(LIBRARY_FILE_NAME));
        // Test binaries live in target/<profile>/deps.
        if let Some(up) = dir.parent() {
            out.push(up.join(LIBRARY_FILE_NAME));
        }
    }
    out
}

/// The part files written for `prefix`, sorted by (pid, tid). Files that merely share the
/// prefix but do not match `{prefix}.{pid}.{tid}.jsonl` are ignored.
pub fn find_parts(prefix: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = match prefix.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(base) = prefix.file_name().and_then(OsStr::to_str) else {
        return Ok(Vec::new());
    };
    let mut parts = Vec::new();
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let Some(rest) = rest.strip_suffix(".jsonl") else {
            continue;
        };
        let mut it = rest.split('.');
        let (Some(pid), Some(tid), None) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if let (Ok(pid), Ok(tid)) = (pid.parse::<u32>(), tid.parse::<u32>()) {
            parts.push(((pid, tid), entry.path()));
        }
    }
    parts.sort();
    Ok(parts.into_iter().map(|(_, p)| p).collect())
}

/// What went wrong while merging.
#[derive(Debug)]
pub enum MergeError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// A line that is not a JSON object with the fields the merge needs.
    BadLine {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            MergeError::BadLine { path, line, reason } => write!(f, "{}:{line}: {reason}", path.display()),
        }
    }
}

impl std::error::Error for MergeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MergeError::Io { source, .. } => Some(source),
            MergeError::BadLine { .. } => None,
        }
    }
}

/// Counts from a merge.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MergeStats {
    pub files: usize,
    pub headers: usize,
    pub events: usize,
    /// Events by `kind` (`open`, `stmt`, `close`, ...).
    pub by_kind: BTreeMap<String, usize>,
    /// A last line without its newline (a process killed mid-write): skipped.
    pub truncated_lines: usize,
}

impl MergeStats {
    /// True when no SQLite connection was seen at all: the command did not use SQLite, or
    /// used one the library cannot intercept (SQLite linked statically into the program, a
    /// static or setuid executable, or `LD_PRELOAD` dropped by the command).
    pub fn nothing_seen(&self) -> bool {
        self.events == 0
    }
}

/// Merges part files into one trace: every header line first (in the order of `parts`), then
/// every event sorted by `ts` (a stable sort, so a thread's events keep their file order on ties;
/// across files ties are broken by the order of `parts`). Holds all events in memory.
pub fn merge(parts: &[PathBuf], out: &mut dyn Write) -> Result<MergeStats, MergeError> {
    let mut stats = MergeStats {
        files: parts.len(),
        ..MergeStats::default()
    };
    let mut headers: Vec<String> = Vec::new();
    let mut events: Vec<(i128, String)> = Vec::new();
    for path in parts {
        let io_err = |source| MergeError::Io {
            path: path.clone(),
            source,
        };
        let file = fs::File::open(path).map_err(io_err)?;
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        let mut lineno = 0;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io_err)?;
            if n == 0 {
                break;
            }
            lineno += 1;
            if !line.ends_with('\n') {
                stats.truncated_lines += 1;
                break;
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let bad = |reason| MergeError::BadLine {
                path: path.clone(),
                line: lineno,
                reason,
            };
            let kind = top_level_field(text, "kind").ok_or_else(|| bad("no \"kind\""))?;
            let kind = kind.trim_matches('"').to_string();
            if kind == "header" {
                headers.push(text.to_string());
                stats.headers += 1;
                continue;
            }
            let ts = top_level_field(text, "ts")
                .and_then(|t| t.parse::<i128>().ok())
                .ok_or_else(|| bad("no integer \"ts\""))?;
            *stats.by_kind.entry(kind).or_default() += 1;
            events.push((ts, text.to_string()));
        }
    }
    events.sort_by_key(|(ts, _)| *ts);
    stats.events = events.len();
    let write_err = |source| MergeError::Io {
        path: PathBuf::from("<output>"),
        source,
    };
    for h in &headers {
        out.write_all(h.as_bytes()).map_err(write_err)?;
        out.write_all(b"\n").map_err(write_err)?;
    }
    for (_, e) in &events {
        out.write_all(e.as_bytes()).map_err(write_err)?;
        out.write_all(b"\n").map_err(write_err)?;
    }
    out.flush().map_err(write_err)?;
    Ok(stats)
}

/// The raw text of the value of top-level key `key` in a one-line JSON object (a string value
/// keeps its quotes; escapes are not decoded). A tiny scanner, so this file needs no JSON crate;
/// nested objects/arrays and strings are skipped correctly.
pub fn top_level_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => return None,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let kend = skip_string(b, i)?;
        let k = &line[i + 1..kend - 1];
        i = skip_ws(b, kend);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let vstart = i;
        let vend = skip_value(b, i)?;
        if k == key {
            return Some(line[vstart..vend].trim_end());
        }
        i = vend;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// `b[i]` is `"`; returns the index just past the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_scanner_skips_strings_and_nesting() {
        let l = r#"{"v":1,"kind":"stmt","sql":"select '\"ts\":5'","x":{"ts":9},"ts":123,"z":[1,{"a":"}"}]}"#;
        assert_eq!(top_level_field(l, "ts"), Some("123"));
        assert_eq!(top_level_field(l, "kind"), Some("\"stmt\""));
        assert_eq!(top_level_field(l, "z"), Some(r#"[1,{"a":"}"}]"#));
        assert_eq!(top_level_field(l, "nope"), None);
        assert_eq!(top_level_field("not json", "ts"), None);
    }

    #[test]
    fn names_and_env() {
        assert_eq!(
            part_path(Path::new("/tmp/t"), 12, 34),
            PathBuf::from("/tmp/t.12.34.jsonl")
        );
        assert!(redact_enabled(Some(OsStr::new("1"))));
        assert!(redact_enabled(Some(OsStr::new("TRUE"))));
        assert!(!redact_enabled(Some(OsStr::new("0"))));
        assert!(!redact_enabled(None));
        let env = child_env(
            Path::new("/l.so"),
            Path::new("/o/t"),
            true,
            Some(OsStr::new("/other.so")),
        );
        assert_eq!(env[0].1, OsString::from("/l.so:/other.so"));
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn merge_sorts_events_and_keeps_headers_first() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("trace");
        fs::write(
            part_path(&prefix, 1, 1),
            "{\"v\":1,\"kind\":\"header\",\"pid\":1}\n{\"v\":1,\"kind\":\"open\",\"ts\":10}\n{\"v\":1,\"kind\":\"stmt\",\"ts\":30}\n",
        )
        .unwrap();
        fs::write(
            part_path(&prefix, 2, 2),
            "{\"v\":1,\"kind\":\"header\",\"pid\":2}\n{\"v\":1,\"kind\":\"stmt\",\"ts\":20}\n{\"v\":1,\"kind\":\"stmt\",\"ts\":4",
        )
        .unwrap();
        fs::write(dir.path().join("trace.jsonl"), "ignored").unwrap();
        let parts = find_parts(&prefix).unwrap();
        assert_eq!(parts.len(), 2);
        let mut out = Vec::new();
        let stats = merge(&parts, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let ts: Vec<_> = out.lines().map(|l| top_level_field(l, "ts").unwrap_or("h")).collect();
        assert_eq!(ts, ["h", "h", "10", "20", "30"]);
        assert_eq!(stats.events, 3);
        assert_eq!(stats.truncated_lines, 1);
        assert_eq!(stats.by_kind["stmt"], 2);
        assert!(!stats.nothing_seen());
    }
}
