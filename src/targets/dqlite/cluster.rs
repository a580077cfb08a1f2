//! The dqlite cluster a run uses: a throwaway 3-node cluster on loopback, or the one
//! `--target dqlite=HOST:PORT,...` names.
//!
//! The throwaway cluster is three `dqlite-demo` processes from Debian's `go-dqlite` package
//! (linked to `libdqlite0`): each is a complete dqlite node (go-dqlite's `app` package:
//! Raft, the SQLite VFS, joining, and promoting the first three nodes to voters), which is
//! all a node launcher of our own would be, minus a Go or C build step. Its demo HTTP API
//! is bound to a loopback port and never used. The nodes live in a private temporary
//! directory; they are killed and the directory removed when the cluster is dropped (the
//! end of the command, on success, failure, Ctrl-C and SIGTERM alike), on a second Ctrl-C
//! (`interrupt::kill_on_abort`), and by the kernel if litehammer itself dies
//! (`PR_SET_PDEATHSIG`, tied to the cluster's launcher thread, which lives as long as it).

use super::client::{self, DqError};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

/// How many nodes a throwaway cluster has.
pub(crate) const NODES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    #[error(
        "dqlite is not installed: no `dqlite-demo` on PATH (Debian/Ubuntu: apt-get install go-dqlite libdqlite0; or set LITEHAMMER_DQLITE_DEMO to the binary)"
    )]
    NotInstalled,
    #[error("the throwaway dqlite cluster: {0}")]
    Throwaway(String),
    #[error("malformed dqlite address `{0}`: use HOST:PORT[,HOST:PORT...]")]
    BadAddress(String),
    #[error("{0}")]
    Client(#[from] DqError),
}

/// One node of the throwaway cluster.
struct NodeProc {
    /// The node's database (Raft and client) address.
    addr: String,
    api: String,
    child: Option<Child>,
    paused: bool,
}

/// The throwaway cluster's processes and directory.
struct Throwaway {
    dir: PathBuf,
    binary: PathBuf,
    nodes: Mutex<Vec<NodeProc>>,
    /// Every node process started, restarts included.
    started: Mutex<Vec<u32>>,
    /// Spawns the nodes from one thread that lives as long as the cluster (the death
    /// signal of a child is tied to the thread that spawned it).
    launcher: Option<(mpsc::Sender<Spawn>, std::thread::JoinHandle<()>)>,
}

type Spawn = (Command, mpsc::Sender<std::io::Result<Child>>);

pub(crate) struct Cluster {
    /// The nodes' addresses, as clients reach them.
    pub nodes: Vec<String>,
    /// What the report and messages call it.
    pub shown: String,
    throwaway: Option<Throwaway>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("nodes", &self.nodes).finish()
    }
}

/// `dqlite-demo`: `LITEHAMMER_DQLITE_DEMO`, else the first on PATH.
pub(crate) fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LITEHAMMER_DQLITE_DEMO") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("dqlite-demo"))
        .find(|p| p.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `HOST:PORT,HOST:PORT` into addresses (each must have a port).
pub(crate) fn parse_addresses(raw: &str) -> Result<Vec<String>, ClusterError> {
    let nodes: Vec<String> = raw
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    if nodes.is_empty() {
        return Err(ClusterError::BadAddress(raw.into()));
    }
    for n in &nodes {
        let ok = n
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(ClusterError::BadAddress(n.clone()));
        }
    }
    Ok(nodes)
}

impl Cluster {
    /// An existing cluster: it must have a leader within `leader_timeout`.
    pub(crate) fn existing(raw: &str, leader_timeout: Duration) -> Result<Self, ClusterError> {
        let nodes = parse_addresses(raw)?;
        let mut leader = client::leader(&nodes, None, leader_timeout)?;
        let members = leader.cluster()?;
        Ok(Cluster {
            shown: format!(
                "existing cluster at {} ({} nodes, leader {})",
                nodes.join(","),
                members.len(),
                leader.addr
            ),
            nodes,
            throwaway: None,
        })
    }

    /// Starts `NODES` dqlite-demo nodes on loopback and waits (up to `start_timeout`) until
    /// they have a leader and every node is a voter.
    pub(crate) fn throwaway(start_timeout: Duration) -> Result<Self, ClusterError> {
        // Ports are found free, released, then bound by the nodes: another process (a
        // parallel test, another run) can take one in between, and the node exits at start.
        // That is retried with new ports, twice; each failed try removes what it started.
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::throwaway_once(start_timeout) {
                Err(ClusterError::Throwaway(why)) if tries < 3 && why.contains("exited at start") => continue,
                other => return other,
            }
        }
    }

    fn throwaway_once(start_timeout: Duration) -> Result<Self, ClusterError> {
        let binary = find_binary().ok_or(ClusterError::NotInstalled)?;
        let fail = |what: &str, e: &dyn std::fmt::Display| ClusterError::Throwaway(format!("{what}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("litehammer-dqlite-")
            .tempdir()
            .map_err(|e| fail("cannot create its directory", &e))?
            .keep();
        crate::interrupt::remove_on_abort(&dir);
        let (tx, rx) = mpsc::channel::<Spawn>();
        let launcher = std::thread::Builder::new()
            .name("dqlite-launcher".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    crate::interrupt::die_with_parent(&mut cmd, libc::SIGKILL);
                    let _ = reply.send(cmd.spawn());
                }
            });
        let launcher = match launcher {
            Ok(h) => h,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(fail("cannot start its launcher thread", &e));
            }
        };
        // From here on dropping `cluster` kills the nodes and removes the directory.
        let mut cluster = Cluster {
            nodes: Vec::new(),
            shown: String::new(),
            throwaway: Some(Throwaway {
                dir,
                binary,
                nodes: Mutex::new(Vec::new()),
                started: Mutex::new(Vec::new()),
                launcher: Some((tx, launcher)),
            }),
        };
        let mut procs = Vec::new();
        for _ in 0..NODES {
            let db = free_port().map_err(|e| fail("no free loopback port", &e))?;
            let api = free_port().map_err(|e| fail("no free loopback port", &e))?;
            procs.push(NodeProc {
                addr: format!("127.0.0.1:{db}"),
                api: format!("127.0.0.1:{api}"),
                child: None,
                paused: false,
            });
        }
        cluster.nodes = procs.iter().map(|p| p.addr.clone()).collect();
        if let Some(t) = &cluster.throwaway
            && let Ok(mut nodes) = t.nodes.lock()
        {
            *nodes = procs;
        }
        let deadline = Instant::now() + start_timeout;
        for i in 0..NODES {
            cluster.spawn(i)?;
            if i == 0 {
                // The first node bootstraps the cluster; the others join it.
                cluster.wait_for(deadline, |members| !members.is_empty())?;
            }
        }
        cluster.wait_for(deadline, |members| {
            members.len() == NODES && members.iter().all(|(_, _, role)| *role == 0)
        })?;
        cluster.shown = format!(
            "throwaway {NODES}-node cluster on loopback ({}; dqlite-demo, go-dqlite {})",
            cluster.nodes.join(","),
            go_dqlite_version()
        );
        Ok(cluster)
    }

    /// Waits until the leader's view of the members satisfies `done`, or a node exits.
    fn wait_for(&self, deadline: Instant, done: impl Fn(&[(u64, String, u64)]) -> bool) -> Result<(), ClusterError> {
        let mut last;
        loop {
            if let Some(exited) = self.exited_node() {
                return Err(ClusterError::Throwaway(exited));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match client::leader(&self.nodes, None, left.min(Duration::from_millis(500))).and_then(|mut n| n.cluster())
            {
                Ok(members) if done(&members) => return Ok(()),
                Ok(members) => {
                    last = format!(
                        "{} members, roles {:?}",
                        members.len(),
                        members.iter().map(|m| m.2).collect::<Vec<_>>()
                    )
                }
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline || crate::interrupt::cancelled() {
                return Err(ClusterError::Throwaway(format!(
                    "no leader with {NODES} voters within the start timeout ({last})"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A node that exited on its own, with the tail of its log.
    fn exited_node(&self) -> Option<String> {
        let t = self.throwaway.as_ref()?;
        let mut nodes = t.nodes.lock().ok()?;
        for n in nodes.iter_mut() {
            if let Some(c) = n.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let log = std::fs::read_to_string(log_path(&t.dir, &n.addr)).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Some(format!(
                    "node {} exited at start ({status}): {}",
                    n.addr,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
        }
        None
    }

    /// Starts node `i` (again): the first node alone, the others joining the rest.
    fn spawn(&self, i: usize) -> Result<(), ClusterError> {
        let t = self
            .throwaway
            .as_ref()
            .ok_or_else(|| ClusterError::Throwaway("not a throwaway cluster".into()))?;
        let mut nodes = t.nodes.lock().map_err(|_| ClusterError::Throwaway("poisoned".into()))?;
        let join: Vec<String> = nodes
            .iter()
            .enumerate()
            .filter(|(j, n)| *j != i && n.child.is_some())
            .map(|(_, n)| n.addr.clone())
            .collect();
        let n = &mut nodes[i];
        let log = std::fs::File::create(log_path(&t.dir, &n.addr))
            .map_err(|e| ClusterError::Throwaway(format!("cannot create a node log: {e}")))?;
        let mut cmd = Command::new(&t.binary);
        cmd.args(["--api", &n.api, "--db", &n.addr, "--dir"])
            .arg(&t.dir)
            .current_dir(&t.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| ClusterError::Throwaway(e.to_string()))?)
            .stderr(log);
        if !join.is_empty() {
            cmd.args(["--join", &join.join(",")]);
        }
        // Its own process group: the terminal's Ctrl-C reaches litehammer, which ends the
        // run in order and then stops the nodes itself.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let (reply_tx, reply_rx) = mpsc::channel();
        let sent = t
            .launcher
            .as_ref()
            .is_some_and(|(tx, _)| tx.send((cmd, reply_tx)).is_ok());
        if !sent {
            return Err(ClusterError::Throwaway("its launcher thread is gone".into()));
        }
        let child = reply_rx
            .recv()
            .map_err(|_| ClusterError::Throwaway("its launcher thread is gone".into()))?
            .map_err(|e| ClusterError::Throwaway(format!("cannot start {}: {e}", t.binary.display())))?;
        crate::interrupt::kill_on_abort(child.id());
        if let Ok(mut started) = t.started.lock() {
            started.push(child.id());
        }
        n.child = Some(child);
        n.paused = false;
        Ok(())
    }

    /// The process ids of every node started so far, restarts included (throwaway
    /// clusters only).
    pub(crate) fn pids(&self) -> Vec<u32> {
        let Some(t) = &self.throwaway else { return Vec::new() };
        t.started.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The throwaway cluster's directory.
    pub(crate) fn dir(&self) -> Option<&std::path::Path> {
        self.throwaway.as_ref().map(|t| t.dir.as_path())
    }

    /// Index of the node at `addr`.
    pub(crate) fn index_of(&self, addr: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n == addr)
    }

    /// SIGKILLs node `i` and reaps it.
    pub(crate) fn kill(&self, i: usize) -> Result<(), String> {
        let t = self.throwaway.as_ref().ok_or("faults need the throwaway cluster")?;
        let mut nodes = t.nodes.lock().map_err(|_| "poisoned")?;
        let n = nodes.get_mut(i).ok_or("no such node")?;
        let mut child = n
            .child
            .take()
            .ok_or_else(|| format!("node {} is not running", n.addr))?;
        let _ = child.kill();
        let _ = child.wait();
        Ok(())
    }

    /// SIGSTOP (`stop`) or SIGCONT node `i`.
    pub(crate) fn pause(&self, i: usize, stop: bool) -> Result<(), String> {
        let t = self.throwaway.as_ref().ok_or("faults need the throwaway cluster")?;
        let mut nodes = t.nodes.lock().map_err(|_| "poisoned")?;
        let n = nodes.get_mut(i).ok_or("no such node")?;
        let pid = n
            .child
            .as_ref()
            .ok_or_else(|| format!("node {} is not running", n.addr))?
            .id();
        unsafe {
            libc::kill(pid as i32, if stop { libc::SIGSTOP } else { libc::SIGCONT });
        }
        n.paused = stop;
        Ok(())
    }

    /// Brings the throwaway cluster back to every node running and voting (after a run's
    /// faults, before the next run): resumes paused nodes, restarts killed ones, and waits up
    /// to `timeout` for a leader with all voters.
    pub(crate) fn heal(&self, timeout: Duration) -> Result<(), ClusterError> {
        let Some(t) = &self.throwaway else { return Ok(()) };
        let down: Vec<usize> = {
            let mut nodes = t.nodes.lock().map_err(|_| ClusterError::Throwaway("poisoned".into()))?;
            for n in nodes.iter_mut().filter(|n| n.paused) {
                if let Some(c) = &n.child {
                    unsafe {
                        libc::kill(c.id() as i32, libc::SIGCONT);
                    }
                }
                n.paused = false;
            }
            (0..nodes.len()).filter(|&i| nodes[i].child.is_none()).collect()
        };
        for i in down {
            self.spawn(i)?;
        }
        self.wait_for(Instant::now() + timeout, |members| {
            members.len() == NODES && members.iter().all(|(_, _, role)| *role == 0)
        })
    }

    /// Starts a killed node `i` again on its own data.
    pub(crate) fn restart(&self, i: usize) -> Result<(), String> {
        self.spawn(i).map_err(|e| e.to_string())
    }
}

fn log_path(dir: &std::path::Path, addr: &str) -> PathBuf {
    dir.join(format!("node-{}.log", addr.replace([':', '.'], "_")))
}

/// go-dqlite's version as dpkg knows it (the demo binary prints none).
fn go_dqlite_version() -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", "go-dqlite"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "unknown version".into())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let Some(mut t) = self.throwaway.take() else { return };
        if let Ok(mut nodes) = t.nodes.lock() {
            for n in nodes.iter_mut() {
                if let Some(mut c) = n.child.take() {
                    // A paused node dies of SIGKILL too.
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
        }
        if let Some((tx, handle)) = t.launcher.take() {
            drop(tx);
            let _ = handle.join();
        }
        let _ = std::fs::remove_dir_all(&t.dir);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Skips (with a message) where dqlite is not installed, unless CI requires it.
    pub(crate) fn installed(test: &str) -> bool {
        if find_binary().is_some() {
            return true;
        }
        assert!(
            std::env::var("LITEHAMMER_REQUIRE_DQLITE").as_deref() != Ok("1"),
            "LITEHAMMER_REQUIRE_DQLITE=1 but dqlite-demo is not installed"
        );
        eprintln!("SKIPPED {test}: dqlite is not installed (apt-get install go-dqlite libdqlite0)");
        false
    }

    fn alive(pid: u32) -> bool {
        // A zombie is reaped by Drop; a live or zombie process answers signal 0.
        unsafe { libc::kill(pid as i32, 0) == 0 }
    }

    /// A value as go-dqlite's `dqlite` shell prints it (Go's `%v`).
    fn as_go_prints(v: &rusqlite::types::Value) -> String {
        use rusqlite::types::Value;
        match v {
            Value::Null => "<nil>".into(),
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Text(t) => t.clone(),
            Value::Blob(b) => format!("[{}]", b.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" ")),
        }
    }

    /// litehammer's client and go-dqlite's `dqlite` shell, an independent client, write
    /// rows each and then see the same rows.
    fn cross_check_with_the_dqlite_shell(cluster: &Cluster) {
        use rusqlite::types::Value;
        let shell = |sql: &str| {
            let out = Command::new("dqlite")
                .args(["-s", &cluster.nodes.join(","), "lh-cross-check", sql])
                .output()
                .expect("go-dqlite's `dqlite` shell (package go-dqlite) runs");
            assert!(
                out.status.success(),
                "dqlite shell: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // One database per connection: a connection of its own.
        let mut node = client::leader(&cluster.nodes, None, Duration::from_secs(10)).unwrap();
        let db = node.open("lh-cross-check").unwrap();
        node.exec_sql(db, "CREATE TABLE x(a INTEGER, b TEXT, c REAL, d BLOB)", &[])
            .unwrap();
        let (stmt, params) = node.prepare(db, "INSERT INTO x VALUES (?, ?, ?, ?)").unwrap();
        assert_eq!(params, 4);
        let rows = [
            [
                Value::Integer(-7),
                Value::Text("é|z".into()),
                Value::Null,
                Value::Blob(vec![1, 2]),
            ],
            [
                Value::Integer(1 << 40),
                Value::Text("a b".into()),
                Value::Real(1.5),
                Value::Null,
            ],
        ];
        for row in &rows {
            let r = node
                .exec(db, stmt, row.iter().map(rusqlite::types::ValueRef::from))
                .unwrap();
            assert_eq!(r.rows_affected, 1);
        }
        node.finalize(db, stmt).unwrap();
        shell("INSERT INTO x VALUES (3, 'from the shell', 0.25, NULL)");
        let sql = "SELECT a, b, c, d FROM x ORDER BY a";
        let ours: Vec<String> = node
            .query_sql(db, sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.iter().map(as_go_prints).collect::<Vec<_>>().join("|"))
            .collect();
        let theirs: Vec<String> = shell(sql)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        assert_eq!(ours.len(), 3, "{ours:?}");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn addresses_parse_and_bad_ones_are_named() {
        assert_eq!(parse_addresses("a:1, b:2").unwrap(), vec!["a:1", "b:2"]);
        for bad in ["", "a", "a:0", ":5", "a:b", "a:1,b"] {
            assert!(parse_addresses(bad).is_err(), "{bad}");
        }
    }

    /// One cluster for several checks (each costs seconds): it starts with three voters,
    /// the client follows a killed leader to the new one, a quorum-less cluster has no
    /// leader within the timeout, and dropping it leaves no process and no directory.
    #[test]
    fn a_throwaway_cluster_elects_follows_and_cleans_up() {
        if !installed("a_throwaway_cluster_elects_follows_and_cleans_up") {
            return;
        }
        let cluster = Cluster::throwaway(Duration::from_secs(60)).unwrap();
        let pids = cluster.pids();
        assert_eq!(pids.len(), NODES);
        let dir = cluster.dir().unwrap().to_path_buf();
        let mut leader = client::leader(&cluster.nodes, None, Duration::from_secs(10)).unwrap();
        let db = leader.open("lh-cluster-test").unwrap();
        leader.exec_sql(db, "CREATE TABLE t(a INTEGER, b TEXT)", &[]).unwrap();
        leader
            .exec_sql(
                db,
                "INSERT INTO t VALUES (?, ?)",
                &[rusqlite::types::Value::Integer(7), "x".to_string().into()],
            )
            .unwrap();
        cross_check_with_the_dqlite_shell(&cluster);
        let old = cluster.index_of(&leader.addr).unwrap();
        drop(leader);
        cluster.kill(old).unwrap();
        let mut next = client::leader(&cluster.nodes, None, Duration::from_secs(30)).unwrap();
        let new = cluster.index_of(&next.addr).unwrap();
        assert_ne!(new, old);
        let db = next.open("lh-cluster-test").unwrap();
        let rows = next.query_sql(db, "SELECT a, b FROM t", &[]).unwrap();
        assert_eq!(rows, vec![vec![7.into(), "x".to_string().into()]]);
        drop(next);
        // Two of three gone (both leaders): no quorum, so no leader.
        cluster.kill(new).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        let err = client::leader(&cluster.nodes, None, Duration::from_secs(2))
            .err()
            .unwrap();
        assert!(matches!(err, DqError::NoLeader { .. }), "{err}");
        assert!(err.to_string().contains("reported a leader within"), "{err}");
        drop(cluster);
        for pid in pids {
            assert!(!alive(pid), "node process {pid} outlived its cluster");
        }
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
