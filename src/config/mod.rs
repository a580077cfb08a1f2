//! Configuration: what a scenario file and the command line may say, validated and
//! expanded into one cell per run. Depends on nothing above it (no engine, no report).

pub mod app;
pub mod builtin;
pub mod busy;
pub mod duration;
pub mod matrix;
pub mod scenario;
pub mod sqlite;
pub mod validate;

pub use scenario::*;
