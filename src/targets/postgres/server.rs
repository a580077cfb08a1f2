//! The PostgreSQL server a run uses: a private throwaway one (initdb into a temporary
//! directory, unix socket only unless TCP is asked for, fsync on, stopped and removed when
//! dropped, on Ctrl-C and on failure too), or the one a URL names. Either way each run gets
//! a database of its own with a unique name, and only databases made here are dropped.

use super::conn::PgDatabase;
use crate::config::postgres::{PostgresSettings, Transport};
use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// initdb takes seconds; one that has not finished in this long hangs (it is killed).
const INITDB_LIMIT: Duration = Duration::from_secs(120);

/// Why no server could be used; every one is bad input or a missing installation (exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
    #[error(
        "PostgreSQL is not installed: no initdb under /usr/lib/postgresql/*/bin (Debian/Ubuntu: apt-get install postgresql; or set LITEHAMMER_PG_BIN to the directory holding initdb and postgres)"
    )]
    NotInstalled,
    #[error("LITEHAMMER_PG_BIN={}: {message}", .dir.display())]
    PgBin { dir: PathBuf, message: String },
    #[error(
        "running as root, PostgreSQL must run as another user, and there is no `postgres` system user (Debian's postgresql package creates it)"
    )]
    NoPostgresUser,
    #[error("the throwaway PostgreSQL server: {0}")]
    Throwaway(String),
    #[error("malformed PostgreSQL URL `{url}`: {message} (e.g. postgres://user:password@localhost:5432/postgres)")]
    BadUrl { url: String, message: String },
    #[error("cannot connect to PostgreSQL at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("PostgreSQL at {url}: {message}")]
    Server { url: String, message: String },
}

/// A running throwaway server: its directory (data, socket, log) and the postmaster.
struct Throwaway {
    dir: PathBuf,
    child: Child,
}

pub(crate) struct PgServer {
    /// How to reach the server (maintenance database), over the unix socket or the URL's way.
    base: postgres::Config,
    /// The throwaway server's loopback TCP port, when it was started with `--pg-tcp`.
    tcp_port: Option<u16>,
    /// The throwaway server's password for TCP connections (random, per server).
    password: String,
    /// What the report and errors call the server (a URL without its password).
    pub shown: String,
    pub version: String,
    throwaway: Option<Throwaway>,
    /// Databases this process created and has not dropped yet.
    created: Mutex<Vec<String>>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("shown", &self.shown)
            .field("version", &self.version)
            .finish()
    }
}

/// The directory holding `initdb` and `postgres`: `LITEHAMMER_PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin` (Debian's layout).
pub(crate) fn find_binaries() -> Result<PathBuf, ServerError> {
    if let Some(dir) = std::env::var_os("LITEHAMMER_PG_BIN") {
        let dir = PathBuf::from(dir);
        let fail = |message: String| ServerError::PgBin {
            dir: dir.clone(),
            message,
        };
        if !dir.is_dir() {
            return Err(fail("is not a directory (it must hold initdb and postgres)".into()));
        }
        for program in ["initdb", "postgres"] {
            if !dir.join(program).is_file() {
                return Err(fail(format!("holds no `{program}`")));
            }
        }
        return Ok(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| ServerError::NotInstalled)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or(ServerError::NotInstalled)
}

/// A URL without its password (userinfo, `password=` query parameter or key/value), for
/// messages and the report.
fn redact(url: &str) -> String {
    crate::error::redact_secrets(url)
}

/// `15.18` of `15.18 (Debian 15.18-0+deb12u1)`.
fn server_version(client: &mut Client) -> Result<String, postgres::Error> {
    let full: String = client.query_one("SHOW server_version", &[])?.get(0);
    Ok(full.split_whitespace().next().unwrap_or_default().to_string())
}

impl PgServer {
    /// The server a URL names; checks it can be reached and logged into.
    pub(crate) fn connect_url(url: &str) -> Result<Self, ServerError> {
        let shown = redact(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ServerError::BadUrl {
                url: shown,
                message: "it must start with postgres:// or postgresql://".into(),
            });
        }
        let mut base: postgres::Config = url.parse().map_err(|e: postgres::Error| ServerError::BadUrl {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        if base.get_hosts().is_empty() {
            return Err(ServerError::BadUrl {
                url: shown,
                message: "it names no host".into(),
            });
        }
        if base.get_connect_timeout().is_none() {
            base.connect_timeout(Duration::from_secs(5));
        }
        let mut client = base.connect(NoTls).map_err(|e| ServerError::Connect {
            url: shown.clone(),
            message: connect_message(&e),
        })?;
        let version = server_version(&mut client).map_err(|e| ServerError::Server {
            url: shown.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            base,
            tcp_port: None,
            password: String::new(),
            shown,
            version,
            throwaway: None,
            created: Mutex::new(Vec::new()),
        })
    }

    /// Starts a private server from the installed binaries; `tcp` adds loopback TCP.
    pub(crate) fn throwaway(tcp: bool) -> Result<Self, ServerError> {
        let bin = find_binaries()?;
        let fail = |what: &str, e: &dyn std::fmt::Display| ServerError::Throwaway(format!("{what}: {e}"));
        let run_as = run_as_user()?;
        let dir = tempfile::Builder::new()
            .prefix("litehammer-pg-")
            .tempdir()
            .map_err(|e| fail("cannot create its directory", &e))?
            .keep();
        crate::interrupt::remove_on_abort(&dir);
        // From here on the directory is removed on every way out (Drop, or the error path).
        let cleanup = |e: ServerError| {
            let _ = std::fs::remove_dir_all(&dir);
            e
        };
        if let Some((uid, gid)) = run_as {
            chown(&dir, uid, gid).map_err(|e| cleanup(fail("cannot hand its directory to `postgres`", &e)))?;
            if let Some(closed) = closed_ancestor(&dir, uid, gid) {
                return Err(cleanup(ServerError::Throwaway(format!(
                    "its directory is under {}, which the `postgres` user cannot enter \
                     (running as root, the server runs as `postgres`); set TMPDIR to a directory \
                     it can enter, such as /tmp",
                    closed.display()
                ))));
            }
        }
        let data = dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args(["-D"])
            .arg(&data)
            // The unix socket trusts (it is in a private directory); TCP needs the password.
            .args(["-U", "litehammer", "--auth-local=trust", "--auth-host=scram-sha-256"])
            .args(["-E", "UTF8", "--no-sync", "--no-instructions"])
            .current_dir(&dir)
            .stdin(Stdio::null());
        as_user(&mut initdb, run_as);
        let out =
            crate::interrupt::output_within(&mut initdb, INITDB_LIMIT).map_err(|e| cleanup(fail("initdb", &e)))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(cleanup(ServerError::Throwaway(format!("initdb failed: {text}"))));
        }
        let tcp_port = if tcp {
            Some(free_port().map_err(|e| cleanup(fail("no free loopback port", &e)))?)
        } else {
            None
        };
        let port = tcp_port.unwrap_or(5432);
        let log =
            std::fs::File::create(dir.join("server.log")).map_err(|e| cleanup(fail("cannot create its log", &e)))?;
        if let Some((uid, gid)) = run_as {
            let _ = chown(&dir.join("server.log"), uid, gid);
        }
        let listen = if tcp { "127.0.0.1" } else { "" };
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&dir)
            .args(["-p", &port.to_string()])
            .args(["-c", &format!("listen_addresses={listen}")])
            .args(["-c", "fsync=on", "-c", "max_connections=200"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        as_user(&mut postgres, run_as);
        // Its own process group: the terminal's Ctrl-C reaches litehammer, which ends the
        // run in order and then stops the server itself.
        std::os::unix::process::CommandExt::process_group(&mut postgres, 0);
        // SIGQUIT (PostgreSQL's immediate shutdown: the postmaster stops its backends) when
        // litehammer dies without stopping it (a SIGKILL).
        crate::interrupt::die_with_parent(&mut postgres, libc::SIGQUIT);
        let child = postgres
            .spawn()
            .map_err(|e| cleanup(fail("cannot start postgres", &e)))?;
        crate::interrupt::kill_on_abort(child.id());
        let mut base = postgres::Config::new();
        base.host_path(&dir).port(port).user("litehammer").dbname("postgres");
        let mut server = Self {
            base,
            tcp_port,
            password: String::new(),
            shown: String::new(),
            version: String::new(),
            throwaway: Some(Throwaway {
                dir: dir.clone(),
                child,
            }),
            created: Mutex::new(Vec::new()),
        };
        // Dropping `server` from here on stops the postmaster and removes the directory.
        let mut client = server.wait_ready()?;
        server.version = server_version(&mut client).map_err(|e| fail("SHOW server_version", &e))?;
        server.password = format!("lh{:08x}{:08x}", rand_suffix(), rand_suffix().rotate_left(7));
        client
            .batch_execute(&format!("ALTER ROLE litehammer PASSWORD '{}'", server.password))
            .map_err(|e| fail("setting the TCP password", &e))?;
        server.shown = format!(
            "throwaway server (PostgreSQL {}, {})",
            server.version,
            if tcp {
                "unix socket + loopback TCP"
            } else {
                "unix socket only"
            }
        );
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<Client, ServerError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(client) = self.base.connect(NoTls) {
                return Ok(client);
            }
            let t = self.throwaway.as_mut().expect("only throwaway servers wait");
            if let Ok(Some(status)) = t.child.try_wait() {
                let log = std::fs::read_to_string(t.dir.join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(ServerError::Throwaway(format!(
                    "postgres exited at start ({status}): {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            if crate::interrupt::cancelled() {
                return Err(ServerError::Throwaway(
                    "interrupted (Ctrl-C or SIGTERM) while it was starting; it was stopped".into(),
                ));
            }
            if Instant::now() > deadline {
                return Err(ServerError::Throwaway("did not accept connections within 60 s".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn is_throwaway(&self) -> bool {
        self.throwaway.is_some()
    }

    fn admin(&self) -> Result<Client, postgres::Error> {
        self.base.connect(NoTls)
    }

    /// Creates a database with a name no one else uses, for one run.
    pub(crate) fn create_database(&self, stem: &str, settings: &PostgresSettings) -> Result<PgDatabase, String> {
        let name = format!("{}_{:08x}", stem, rand_suffix());
        let mut admin = self.admin().map_err(|e| e.to_string())?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| format!("CREATE DATABASE {name}: {}", create_message(&e)))?;
        if let Ok(mut created) = self.created.lock() {
            created.push(name.clone());
        }
        let mut config = self.base.clone();
        config.dbname(&name);
        if settings.transport == Transport::Tcp {
            match (self.tcp_port, &self.throwaway) {
                (Some(port), Some(_)) => {
                    config = postgres::Config::new();
                    config
                        .host("127.0.0.1")
                        .port(port)
                        .user("litehammer")
                        .password(&self.password)
                        .dbname(&name);
                }
                (None, Some(_)) => {
                    return Err("postgres.transport = tcp needs the server started with TCP (--pg-tcp)".into());
                }
                (_, None) => {} // a URL says how to connect
            }
        }
        Ok(PgDatabase {
            config,
            settings: settings.clone(),
        })
    }

    /// Drops a database this process created (and only such a one).
    pub(crate) fn drop_database(&self, name: &str) -> Result<(), String> {
        let ours = self
            .created
            .lock()
            .map(|mut c| match c.iter().position(|n| n == name) {
                Some(i) => {
                    c.remove(i);
                    true
                }
                None => false,
            })
            .unwrap_or(false);
        if !ours {
            return Err(format!(
                "refusing to drop database `{name}`: this run did not create it"
            ));
        }
        let mut admin = self.admin().map_err(|e| e.to_string())?;
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(|e| e.to_string())
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let names: Vec<String> = self.created.lock().map(|c| c.clone()).unwrap_or_default();
        if self.throwaway.is_none() {
            for name in names {
                let _ = self.drop_database(&name);
            }
            return;
        }
        let Some(mut t) = self.throwaway.take() else { return };
        // SIGINT: PostgreSQL's fast shutdown (roll back, checkpoint, exit).
        unsafe {
            libc::kill(t.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = t.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = t.child.try_wait() {
            let _ = t.child.kill();
            let _ = t.child.wait();
        }
        let _ = std::fs::remove_dir_all(&t.dir);
    }
}

/// The message of a failed connection, with the hint that fits it.
fn connect_message(e: &postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(inner) = source {
                s = format!("{s}: {inner}");
                source = inner.source();
            }
            s
        }
    };
    match e.code().map(|c| c.code()) {
        Some("28P01") | Some("28000") => format!("{text} (check the user and password in the URL)"),
        Some("3D000") => format!("{text} (the URL's database must exist; litehammer creates its own from there)"),
        _ => text,
    }
}

/// Why CREATE DATABASE failed, in the server's words, with the usual cause named.
fn create_message(e: &postgres::Error) -> String {
    match e.code().map(|c| c.code()) {
        Some("42501") => format!(
            "{} (the URL's user needs the CREATEDB privilege: litehammer creates a database of its own \
             for each run; ALTER ROLE … CREATEDB, or use a superuser)",
            connect_message(e)
        ),
        _ => connect_message(e),
    }
}

/// The first directory above `dir` that the user `uid`/`gid` may not search (no x bit for
/// them), when there is one.
fn closed_ancestor(dir: &Path, uid: u32, gid: u32) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().skip(1).find_map(|a| {
        let m = std::fs::metadata(a).ok()?;
        let mode = m.mode();
        let searchable = if m.uid() == uid {
            mode & 0o100 != 0
        } else if m.gid() == gid {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        (!searchable).then(|| a.to_path_buf())
    })
}

fn rand_suffix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    t ^ std::process::id().rotate_left(16)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// As root: the `postgres` user's uid and gid (PostgreSQL refuses to run as root).
fn run_as_user() -> Result<Option<(u32, u32)>, ServerError> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::ffi::CString::new("postgres").expect("no NUL");
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(ServerError::NoPostgresUser);
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some((uid, gid)))
}

fn as_user(cmd: &mut Command, run_as: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid).gid(gid);
    }
}

fn chown(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    /// Skips (with a message) where PostgreSQL is not installed, unless CI requires it.
    pub(crate) fn installed(test: &str) -> bool {
        if find_binaries().is_ok() {
            return true;
        }
        assert!(
            std::env::var("LITEHAMMER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "LITEHAMMER_REQUIRE_POSTGRES=1 but PostgreSQL is not installed"
        );
        eprintln!("SKIPPED {test}: PostgreSQL is not installed (apt-get install postgresql)");
        false
    }

    /// One throwaway server for several checks (each server costs a second or two): a URL
    /// target drops only what it created; a wrong password is named; every built-in
    /// scenario's translated set-up runs and every translated statement prepares.
    #[test]
    fn url_targets_touch_only_their_own_databases() {
        if !installed("url_targets_touch_only_their_own_databases") {
            return;
        }
        let server = PgServer::throwaway(true).unwrap();
        let dir = server.throwaway.as_ref().unwrap().dir.clone();
        let port = server.tcp_port.unwrap();
        server
            .admin()
            .unwrap()
            .batch_execute("CREATE DATABASE precious")
            .unwrap();
        let url = format!("postgres://litehammer:{}@127.0.0.1:{port}/postgres", server.password);
        let remote = PgServer::connect_url(&url).unwrap();
        assert!(!remote.shown.contains(&server.password), "{}", remote.shown);
        let db = remote.create_database("lh_test", &PostgresSettings::default()).unwrap();
        let name = db.config.get_dbname().unwrap().to_string();
        assert!(name.starts_with("lh_test_"), "{name}");
        let err = remote.drop_database("precious").unwrap_err();
        assert!(err.contains("did not create"), "{err}");
        let left = remote.create_database("lh_left", &PostgresSettings::default()).unwrap();
        remote.drop_database(&name).unwrap();
        drop(remote); // drops what it still holds (`lh_left_...`), nothing else
        let names: Vec<String> = server
            .admin()
            .unwrap()
            .query("SELECT datname::text FROM pg_database", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(names.iter().any(|n| n == "precious"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("lh_")), "{names:?}");
        let _ = left;

        // A user without CREATEDB is told why litehammer needs it.
        server
            .admin()
            .unwrap()
            .batch_execute("CREATE ROLE lh_nocreate LOGIN PASSWORD 'nc'")
            .unwrap();
        let plain = PgServer::connect_url(&format!("postgres://lh_nocreate:nc@127.0.0.1:{port}/postgres")).unwrap();
        let err = plain
            .create_database("lh_test", &PostgresSettings::default())
            .unwrap_err();
        assert!(err.contains("permission denied") && err.contains("CREATEDB"), "{err}");
        drop(plain);

        let wrong = format!("postgres://litehammer:wrong@127.0.0.1:{port}/postgres");
        let err = PgServer::connect_url(&wrong).unwrap_err().to_string();
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(!err.contains("wrong@"), "{err}");

        builtins_prepare_on(&server);
        drop(server);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    fn builtins_prepare_on(server: &PgServer) {
        use crate::config::postgres::TargetKind;
        let scratch = tempfile::tempdir().unwrap();
        for (i, name) in crate::config::builtin::names().into_iter().enumerate() {
            let mut s = crate::config::Source::open(name).unwrap().parse().unwrap();
            s.target = TargetKind::Postgres;
            let path = scratch.path().join(format!("{i}.db"));
            let mut conn = crate::targets::sqlite::setup::create_database(&path, &s.sqlite, &s.setup, s.seed).unwrap();
            let workload = crate::workload::Workload::compile(&s, &mut conn).unwrap();
            let db = server.create_database("lh_builtin", &s.postgres).unwrap();
            super::super::load::load(&db, &s, &conn).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut client = db.config.connect(NoTls).unwrap();
            for step in workload.groups.iter().flat_map(|g| &g.ops).flat_map(|o| &o.steps) {
                let sql = step.target_sql();
                client
                    .prepare(sql)
                    .unwrap_or_else(|e| panic!("{name}: `{sql}`: {}", super::super::db_message(&e)));
            }
            for check in &s.check {
                if let Some(sql) = super::super::load::check_sql(check) {
                    let sql = sql.unwrap();
                    client
                        .query_one(&sql, &[])
                        .unwrap_or_else(|e| panic!("{name}: `{sql}`: {e}"));
                }
            }
            drop(client);
            server.drop_database(db.config.get_dbname().unwrap()).unwrap();
        }
    }

    #[test]
    fn bad_urls_are_named() {
        let err = PgServer::connect_url("mysql://x@y/z").unwrap_err().to_string();
        assert!(err.contains("malformed PostgreSQL URL"), "{err}");
        let err = PgServer::connect_url("postgres://u:pw@h:notaport/db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("malformed") && !err.contains("pw@"), "{err}");
    }
}
