//! dqlite (replicated SQLite over Raft) as a target: a throwaway 3-node cluster on loopback
//! or an existing one (`cluster.rs`), litehammer's own client of the wire protocol
//! (`wire.rs`, `client.rs`), the workers' connections (`conn.rs`), each run's database
//! loaded, verified and emptied (`backend.rs`), and faults injected while measuring
//! (`fault.rs`).

pub(crate) mod backend;
pub(crate) mod client;
pub(crate) mod cluster;
mod conn;
pub(crate) mod fault;
pub(crate) mod wire;

pub(crate) use backend::{DqBackend, PROFILE};
pub(crate) use conn::*;
