//! Capturing the environment a report was measured in (the type is the report model's).

use crate::report::model::Environment;
use std::path::Path;

pub(crate) fn build_profile() -> &'static str {
    if cfg!(debug_assertions) { "debug" } else { "release" }
}

/// The environment of a run whose databases are in `db_dir`.
pub(crate) fn capture(db_dir: &Path) -> Environment {
    Environment {
        sqlite_version: rusqlite::version().to_string(),
        sqlite_options_sha256: sqlite_options_sha256(),
        rusqlite_version: env!("LITEHAMMER_RUSQLITE_VERSION").to_string(),
        litehammer_version: env!("CARGO_PKG_VERSION").to_string(),
        os: os_name(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| std::env::consts::OS.to_string()),
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        memory_bytes: memory_bytes(),
        filesystem: filesystem_of(db_dir),
        db_dir: db_dir.display().to_string(),
        fsync_per_sec: None,
        fsync_per_sec_after: None,
        build_profile: build_profile().to_string(),
    }
}

/// sha256 of `PRAGMA compile_options` (one option per line) of the SQLite litehammer runs.
fn sqlite_options_sha256() -> Option<String> {
    use sha2::Digest;
    let conn = rusqlite::Connection::open_in_memory().ok()?;
    let mut stmt = conn.prepare("PRAGMA compile_options").ok()?;
    let options = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .ok()?
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    let digest = sha2::Sha256::digest(options.join("\n").as_bytes());
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn os_name() -> String {
    let release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn memory_bytes() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The filesystem type of the mount holding `dir` (longest matching mount point).
pub(crate) fn filesystem_of(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, mount, fstype) = (f.next()?, f.next()?, f.next()?);
            dir.starts_with(mount).then(|| (mount.len(), fstype.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".to_string(), |(_, fs)| fs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn captures_versions_and_a_filesystem() {
        let env = super::capture(&std::env::temp_dir());
        assert!(env.sqlite_version.starts_with('3'), "{}", env.sqlite_version);
        assert_ne!(env.rusqlite_version, "unknown");
        assert!(env.cores >= 1);
        if cfg!(target_os = "linux") {
            assert_ne!(env.filesystem, "unknown");
        }
    }
}
