//! Configuration: what a scenario file and the command line may say, validated and
//! expanded into one cell per run. Depends on nothing above it (no engine, no report).

pub(crate) mod app;
pub(crate) mod backup;
pub(crate) mod builtin;
pub(crate) mod busy;
pub(crate) mod check;
pub(crate) mod dqlite;
pub(crate) mod duration;
pub(crate) mod generator;
pub(crate) mod lengths;
pub(crate) mod limits;
pub(crate) mod matrix;
pub(crate) mod postgres;
pub(crate) mod replica;
pub(crate) mod scenario;
pub(crate) mod section;
pub(crate) mod slo;
pub(crate) mod sqlite;
pub(crate) mod turso;
pub(crate) mod validate;

pub(crate) use scenario::*;
