//! PostgreSQL as a target: a throwaway server or a URL's (`server.rs`), each run in a
//! database of its own loaded from the run's SQLite file (`load.rs`), and the workers'
//! connections (`conn.rs`).

pub(crate) mod backend;
mod conn;
pub(crate) mod load;
pub(crate) mod server;
pub(crate) mod translate;

pub(crate) use backend::{PROFILE, PgBackend};
pub(crate) use conn::*;
