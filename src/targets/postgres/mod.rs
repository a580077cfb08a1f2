//! PostgreSQL as a target.

mod conn;
pub(crate) mod load;
pub(crate) mod server;

pub(crate) use conn::*;
