//! The external-files policy (docs/limits.md): scenario SQL may only touch the run's own
//! database. An SQLite authorizer on every connection that runs scenario SQL denies
//! `ATTACH` of any file (and so `VACUUM INTO`, which attaches its target) and the
//! directory pragmas, unless the command was given `--allow-external-files`.

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOW_EXTERNAL: AtomicBool = AtomicBool::new(false);

/// Set once by the command from `--allow-external-files`.
pub(crate) fn set_allow_external(allow: bool) {
    ALLOW_EXTERNAL.store(allow, Ordering::Relaxed);
}

pub(crate) fn external_allowed() -> bool {
    ALLOW_EXTERNAL.load(Ordering::Relaxed)
}

/// The hint SQLite's "not authorized" gets in litehammer's messages.
pub(crate) const DENIED: &str = "ATTACH and VACUUM INTO may only use ':memory:' (litehammer only writes databases \
     it created); pass --allow-external-files to allow other files";

/// Installs the authorizer (a no-op with `--allow-external-files`).
pub(crate) fn install(conn: &mut Connection) -> rusqlite::Result<()> {
    if external_allowed() {
        return Ok(());
    }
    conn.authorizer(Some(decide))
}

/// The policy's answer for one action (also consulted by authorizers that replace this one
/// for a while, such as the workload's write analysis).
pub(crate) fn decide(ctx: AuthContext<'_>) -> Authorization {
    if external_allowed() {
        return Authorization::Allow;
    }
    match ctx.action {
        AuthAction::Attach { filename } if in_memory(filename) => Authorization::Allow,
        // A file name, a URI, or a computed name (SQLite passes no name then).
        AuthAction::Attach { .. } => Authorization::Deny,
        AuthAction::Unknown { code, .. } if code == rusqlite::ffi::SQLITE_ATTACH => Authorization::Deny,
        AuthAction::Pragma {
            pragma_name,
            pragma_value: Some(_),
        } if ["temp_store_directory", "data_store_directory"].contains(&pragma_name.to_ascii_lowercase().as_str()) => {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// Whether a statement would write a file of its own when run: `VACUUM INTO` (its target is
/// only attached, and so only denied, when it runs; this finds it at prepare time).
pub(crate) fn vacuums_into(conn: &Connection, sql: &str) -> bool {
    if external_allowed() {
        return false;
    }
    let Ok(mut stmt) = conn.prepare(&format!("EXPLAIN {sql}")) else {
        return false;
    };
    let Ok(rows) = stmt.query_map([], |r| Ok((r.get::<_, String>(1)?, r.get::<_, i64>(3)?))) else {
        return false;
    };
    rows.flatten().any(|(opcode, p2)| opcode == "Vacuum" && p2 != 0)
}

fn in_memory(name: &str) -> bool {
    name.is_empty() || name == ":memory:" || name.starts_with("file::memory:")
}

/// An SQLite error message with the policy's explanation when the authorizer denied it.
pub(crate) fn explain(message: String) -> String {
    if message.contains("not authorized") || message.contains("authorization denied") {
        format!("{message}: {DENIED}")
    } else {
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denies_attach_of_files_and_vacuum_into_but_not_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("main.db")).unwrap();
        install(&mut conn).unwrap();
        conn.execute_batch("CREATE TABLE t(a)").unwrap();
        let other = dir.path().join("other.db").display().to_string();
        for sql in [
            format!("ATTACH '{other}' AS o"),
            format!("ATTACH 'file:{other}?mode=rwc' AS o"),
            format!("ATTACH '{other}' || '' AS o"),
            format!("VACUUM INTO '{other}'"),
            format!("PRAGMA temp_store_directory = '{}'", dir.path().display()),
        ] {
            assert!(conn.execute_batch(&sql).is_err(), "{sql}");
        }
        assert!(!dir.path().join("other.db").exists());
        conn.execute_batch("ATTACH ':memory:' AS m; CREATE TABLE m.x(a); DETACH m;")
            .unwrap();
    }
}
