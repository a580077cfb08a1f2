//! SQLite, the default target.

mod conn;
pub(crate) mod guard;
pub(crate) mod setup;

pub(crate) use conn::*;
