//! litehammer's own dqlite client: blocking `std::net` connections speaking the wire
//! protocol (`wire.rs`). `Node` is one connection to one node; `leader` finds the cluster's
//! leader as go-dqlite's connector does (ask each node who leads, then confirm with that
//! node that it still leads) and returns a connection to it.

use super::wire::{self, Decoder, Encoder, request, response};
use rusqlite::types::{Value, ValueRef};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// SQLite's primary result codes and dqlite's extended I/O codes.
pub(crate) mod codes {
    pub const BUSY: u64 = 5;
    pub const LOCKED: u64 = 6;
    pub const CONSTRAINT: u64 = 19;
    /// SQLITE_IOERR_NOT_LEADER: the node is not (or no longer) the leader.
    pub const NOT_LEADER: u64 = 10 | (40 << 8);
    /// SQLITE_IOERR_LEADERSHIP_LOST: the node lost leadership while committing.
    pub const LEADERSHIP_LOST: u64 = 10 | (41 << 8);
    /// The codes of dqlite before 1.10 (go-dqlite still accepts them).
    pub const NOT_LEADER_LEGACY: u64 = 10 | (32 << 8);
    pub const LEADERSHIP_LOST_LEGACY: u64 = 10 | (33 << 8);

    pub(crate) fn is_not_leader(code: u64) -> bool {
        code == NOT_LEADER || code == NOT_LEADER_LEGACY
    }

    pub(crate) fn is_leadership_lost(code: u64) -> bool {
        code == LEADERSHIP_LOST || code == LEADERSHIP_LOST_LEGACY
    }
}

/// How long a request may take before the connection counts as lost (a paused leader).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node may take to say who leads.
const ASK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub(crate) enum DqError {
    /// The server answered with a failure: SQLite's (extended) code and its message.
    #[error("{message} (dqlite error {code})")]
    Server { code: u64, message: String },
    /// The connection failed or broke: the node died, paused past the timeout, or is gone.
    #[error("connection to dqlite node {addr} lost: {source}")]
    Io { addr: String, source: std::io::Error },
    #[error("cannot connect to dqlite node {addr}: {message}")]
    Connect { addr: String, message: String },
    #[error("no dqlite node of {nodes} reported a leader within {waited:.1} s{last}")]
    NoLeader { nodes: String, waited: f64, last: String },
    #[error("dqlite node {addr}: {source}")]
    Malformed { addr: String, source: wire::Malformed },
    #[error("dqlite node {addr} answered a request with message type {got}")]
    Unexpected { addr: String, got: u8 },
    #[error("{0}")]
    Client(String),
}

impl DqError {
    /// Whether the connection is unusable afterwards and the leader must be found again.
    pub(crate) fn loses_connection(&self) -> bool {
        match self {
            DqError::Server { code, .. } => codes::is_not_leader(*code) || codes::is_leadership_lost(*code),
            DqError::Io { .. } | DqError::Malformed { .. } | DqError::Unexpected { .. } => true,
            _ => false,
        }
    }
}

/// What an exec reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExecResult {
    pub last_insert_id: i64,
    pub rows_affected: u64,
}

/// One connection to one node, after the handshake.
pub(crate) struct Node {
    stream: TcpStream,
    pub addr: String,
    out: Encoder,
    body: Vec<u8>,
}

fn resolve(addr: &str) -> Result<SocketAddr, DqError> {
    addr.to_socket_addrs()
        .map_err(|e| DqError::Connect {
            addr: addr.into(),
            message: e.to_string(),
        })?
        .next()
        .ok_or_else(|| DqError::Connect {
            addr: addr.into(),
            message: "the name resolves to no address".into(),
        })
}

impl Node {
    /// Connects and sends the protocol version.
    pub(crate) fn connect(addr: &str) -> Result<Self, DqError> {
        let sock = resolve(addr)?;
        let stream = TcpStream::connect_timeout(&sock, CONNECT_TIMEOUT).map_err(|e| DqError::Connect {
            addr: addr.into(),
            message: e.to_string(),
        })?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
        let _ = stream.set_write_timeout(Some(REQUEST_TIMEOUT));
        let mut node = Node {
            stream,
            addr: addr.to_string(),
            out: Encoder::default(),
            body: Vec::with_capacity(4096),
        };
        node.stream
            .write_all(&wire::VERSION.to_le_bytes())
            .map_err(|e| node.io(e))?;
        Ok(node)
    }

    fn io(&self, source: std::io::Error) -> DqError {
        DqError::Io {
            addr: self.addr.clone(),
            source,
        }
    }

    fn malformed(&self, source: wire::Malformed) -> DqError {
        DqError::Malformed {
            addr: self.addr.clone(),
            source,
        }
    }

    fn send(&mut self) -> Result<(), DqError> {
        let msg = self.out.finish();
        self.stream.write_all(msg).map_err(|e| DqError::Io {
            addr: self.addr.clone(),
            source: e,
        })
    }

    /// Receives one message into `body`; returns its type, a failure as an error.
    fn receive(&mut self) -> Result<u8, DqError> {
        let mut head = [0u8; 8];
        self.stream.read_exact(&mut head).map_err(|e| self.io(e))?;
        let (len, kind) = wire::header(head);
        self.body.resize(len, 0);
        let mut body = std::mem::take(&mut self.body);
        let read = self.stream.read_exact(&mut body);
        self.body = body;
        read.map_err(|e| self.io(e))?;
        if kind == response::FAILURE {
            let (code, message) = Decoder::new(&self.body).failure().map_err(|e| self.malformed(e))?;
            return Err(DqError::Server { code, message });
        }
        Ok(kind)
    }

    fn expect(&mut self, want: u8) -> Result<(), DqError> {
        let got = self.receive()?;
        if got != want {
            return Err(DqError::Unexpected {
                addr: self.addr.clone(),
                got,
            });
        }
        Ok(())
    }

    /// The leader's address as this node knows it (empty: it knows none).
    pub(crate) fn leader(&mut self) -> Result<String, DqError> {
        self.out.start(request::LEADER).u64(0);
        self.send()?;
        self.expect(response::NODE)?;
        let mut d = Decoder::new(&self.body);
        d.u64()
            .and_then(|_| d.text().map(str::to_string))
            .map_err(|e| self.malformed(e))
    }

    /// The cluster's nodes: id, address, role (0 voter, 1 stand-by, 2 spare).
    pub(crate) fn cluster(&mut self) -> Result<Vec<(u64, String, u64)>, DqError> {
        self.out.start(request::CLUSTER).u64(1);
        self.send()?;
        self.expect(response::NODES)?;
        Decoder::new(&self.body).nodes().map_err(|e| self.malformed(e))
    }

    /// Opens (creating it if needed) a database; returns its id.
    pub(crate) fn open(&mut self, name: &str) -> Result<u32, DqError> {
        self.out.start(request::OPEN).text(name).u64(0).text("");
        self.send()?;
        self.expect(response::DB)?;
        Decoder::new(&self.body).u32().map_err(|e| self.malformed(e))
    }

    /// Prepares one statement; returns its id and number of parameters.
    pub(crate) fn prepare(&mut self, db: u32, sql: &str) -> Result<(u32, u64), DqError> {
        self.out.start(request::PREPARE).u64(db.into()).text(sql);
        self.send()?;
        self.expect(response::STMT)?;
        let mut d = Decoder::new(&self.body);
        let parsed = (|| {
            d.u32()?;
            let id = d.u32()?;
            Ok((id, d.u64()?))
        })();
        parsed.map_err(|e| self.malformed(e))
    }

    pub(crate) fn finalize(&mut self, db: u32, stmt: u32) -> Result<(), DqError> {
        self.out.start(request::FINALIZE).u32_pair(db, stmt);
        self.send()?;
        self.expect(response::EMPTY)
    }

    /// Executes a prepared statement that yields no rows.
    pub(crate) fn exec<'a>(
        &mut self,
        db: u32,
        stmt: u32,
        params: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
    ) -> Result<ExecResult, DqError> {
        self.out
            .start(request::EXEC)
            .u32_pair(db, stmt)
            .params(params)
            .map_err(DqError::Client)?;
        self.send()?;
        self.result()
    }

    /// Executes SQL text (every statement in it), with parameters for its first.
    pub(crate) fn exec_sql(&mut self, db: u32, sql: &str, params: &[Value]) -> Result<ExecResult, DqError> {
        self.out
            .start(request::EXEC_SQL)
            .u64(db.into())
            .text(sql)
            .params(params.iter().map(ValueRef::from))
            .map_err(DqError::Client)?;
        self.send()?;
        self.result()
    }

    fn result(&mut self) -> Result<ExecResult, DqError> {
        self.expect(response::RESULT)?;
        let mut d = Decoder::new(&self.body);
        let parsed = (|| {
            Ok(ExecResult {
                last_insert_id: d.i64()?,
                rows_affected: d.u64()?,
            })
        })();
        parsed.map_err(|e| self.malformed(e))
    }

    /// Runs a prepared statement yielding rows; `each(row, column, value)` sees every value.
    /// Returns the number of rows.
    pub(crate) fn query<'a>(
        &mut self,
        db: u32,
        stmt: u32,
        params: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
        each: impl FnMut(u64, usize, ValueRef<'_>),
    ) -> Result<u64, DqError> {
        self.out
            .start(request::QUERY)
            .u32_pair(db, stmt)
            .params(params)
            .map_err(DqError::Client)?;
        self.send()?;
        self.rows(each)
    }

    /// Runs SQL text yielding rows (its first statement).
    pub(crate) fn query_sql(&mut self, db: u32, sql: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, DqError> {
        self.out
            .start(request::QUERY_SQL)
            .u64(db.into())
            .text(sql)
            .params(params.iter().map(ValueRef::from))
            .map_err(DqError::Client)?;
        self.send()?;
        let mut rows: Vec<Vec<Value>> = Vec::new();
        self.rows(|r, c, v| {
            if r as usize >= rows.len() {
                rows.push(Vec::new());
            }
            let row = &mut rows[r as usize];
            if c >= row.len() {
                row.resize(c + 1, Value::Null);
            }
            row[c] = wire::owned(v);
        })?;
        Ok(rows)
    }

    /// Reads batches of rows until the last one.
    fn rows(&mut self, mut each: impl FnMut(u64, usize, ValueRef<'_>)) -> Result<u64, DqError> {
        let mut n = 0u64;
        loop {
            self.expect(response::ROWS)?;
            let body = std::mem::take(&mut self.body);
            let mut d = Decoder::new(&body);
            let parsed = (|| -> Result<bool, wire::Malformed> {
                let columns = d.columns()?;
                loop {
                    match d.row(columns, |c, v| each(n, c, v))? {
                        None => n += 1,
                        Some(more) => return Ok(more),
                    }
                }
            })();
            self.body = body;
            match parsed {
                Ok(true) => continue,
                Ok(false) => return Ok(n),
                Err(e) => return Err(self.malformed(e)),
            }
        }
    }

    /// Closes the socket at once (the fault injector's way to drop a connection).
    pub(crate) fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Finds the leader among `nodes` within `timeout`: asks each node who leads, then asks
/// that node, and returns a connection to a node that names itself. `prefer` is tried first
/// (the leader last seen).
pub(crate) fn leader(nodes: &[String], prefer: Option<&str>, timeout: Duration) -> Result<Node, DqError> {
    let start = Instant::now();
    let mut last = String::new();
    let order: Vec<&str> = prefer
        .into_iter()
        .chain(nodes.iter().map(String::as_str).filter(|n| Some(*n) != prefer))
        .collect();
    loop {
        for addr in &order {
            match ask(addr) {
                Ok(node) => return Ok(node),
                Err(e) => last = e.to_string(),
            }
        }
        if start.elapsed() >= timeout || crate::interrupt::cancelled() {
            return Err(DqError::NoLeader {
                nodes: nodes.join(","),
                waited: start.elapsed().as_secs_f64(),
                last: if last.is_empty() {
                    last
                } else {
                    format!(" (last: {last})")
                },
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A connection to the leader by way of `addr`, or why not.
/// (A stopped node accepts connections but never answers: the question has a short
/// timeout.)
fn ask(addr: &str) -> Result<Node, DqError> {
    let mut node = Node::connect(addr)?;
    let _ = node.stream.set_read_timeout(Some(ASK_TIMEOUT));
    let said = node.leader()?;
    if said.is_empty() {
        return Err(DqError::Client(format!("{addr} knows no leader")));
    }
    let mut leader = if said == addr {
        node
    } else {
        let mut other = Node::connect(&said)?;
        let _ = other.stream.set_read_timeout(Some(ASK_TIMEOUT));
        if other.leader()? != said {
            return Err(DqError::Client(format!(
                "{addr} named {said} as leader, which denies it"
            )));
        }
        other
    };
    let _ = leader.stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    leader.addr = said;
    Ok(leader)
}
