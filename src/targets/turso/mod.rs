//! Turso (the Rust rewrite of SQLite, crate `turso`) as a target, in process: a copy of the
//! run's SQLite file opened by Turso, in WAL or MVCC mode (`backend.rs`), and the workers'
//! connections on Turso's synchronous statement API (`conn.rs`). See docs/mvcc.md.

pub(crate) mod backend;
pub(crate) mod conn;

pub(crate) use backend::{PROFILE, TursoBackend};
pub(crate) use conn::{Turso, TursoDb};
