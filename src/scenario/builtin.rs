//! Scenarios compiled into the binary, runnable by name from any directory.

/// (name, TOML text). The first is the default.
const BUILTIN: &[(&str, &str)] = &[("wal-vs-rollback", include_str!("../../scenarios/wal-vs-rollback.toml"))];

pub const DEFAULT: &str = "wal-vs-rollback";

pub fn text(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_parses() {
        for name in super::names() {
            let source = crate::scenario::Source::open(name).unwrap();
            source.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
