//! `litehammer-trace`: what the main crate and the capture library (`capture/`, a cdylib
//! preloaded into other programs) share. It depends on `std` only, so the library stays small.
//!
//! - [`protocol`]: how `litehammer capture` talks to the library (environment), how the library
//!   names its per-thread part files, and how those are merged into one trace
//!   (docs/trace-format.md).
//! - [`lex`]: the one SQL lexer, following SQLite's own tokenizer. The capture library uses it to
//!   find host parameters and redact literals, `import` to normalize traced statements, and the
//!   PostgreSQL translation (`workload/translate.rs`) to rewrite scenario SQL.
//! - [`redact`]: a statement's literals replaced by `<type:length>` markers, the form a redacted
//!   trace carries and [`lex`] reads back as [`lex::Kind::Redacted`].

pub mod lex;
pub mod protocol;
pub mod redact;
