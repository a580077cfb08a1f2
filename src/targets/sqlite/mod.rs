//! SQLite, the default target: the run's database file. Every other target is set up from
//! an SQLite file too (`setup.rs`), so this folder also holds what they share: the settings
//! applied and read back (`settings.rs`), the busy handlers (`busy.rs`), the external-files
//! guard (`guard.rs`), and the integrity and row checks (`check.rs`).

pub(crate) mod backend;
pub(crate) mod busy;
pub(crate) mod check;
mod conn;
pub(crate) mod guard;
pub(crate) mod settings;
pub(crate) mod setup;

pub(crate) use backend::{PROFILE, SqliteBackend, SqliteDb};
pub(crate) use conn::*;
