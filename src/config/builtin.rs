//! Scenarios compiled into the binary, runnable by name from any directory.

/// (name, TOML text). The first is the default.
const BUILTIN: &[(&str, &str)] = &[
    ("django", include_str!("../../scenarios/django.toml")),
    ("django-atomic", include_str!("../../scenarios/django-atomic.toml")),
    ("rails", include_str!("../../scenarios/rails.toml")),
    ("rails-7.0", include_str!("../../scenarios/rails-7.0.toml")),
    ("django-gthread", include_str!("../../scenarios/django-gthread.toml")),
    ("wal-vs-rollback", include_str!("../../scenarios/wal-vs-rollback.toml")),
    ("django-blog", include_str!("../../scenarios/django-blog.toml")),
    ("kv", include_str!("../../scenarios/kv.toml")),
    ("job-queue", include_str!("../../scenarios/job-queue.toml")),
    ("hot-counter", include_str!("../../scenarios/hot-counter.toml")),
    ("bulk-ingest", include_str!("../../scenarios/bulk-ingest.toml")),
    (
        "deferred-vs-immediate",
        include_str!("../../scenarios/deferred-vs-immediate.toml"),
    ),
    (
        "checkpoint-starvation",
        include_str!("../../scenarios/checkpoint-starvation.toml"),
    ),
    ("busy-handlers", include_str!("../../scenarios/busy-handlers.toml")),
    ("writer-sweep", include_str!("../../scenarios/writer-sweep.toml")),
    ("backup", include_str!("../../scenarios/backup.toml")),
    ("replica", include_str!("../../scenarios/replica.toml")),
    ("n-plus-one", include_str!("../../scenarios/n-plus-one.toml")),
    ("replicated", include_str!("../../scenarios/replicated.toml")),
    (
        "concurrent-writers",
        include_str!("../../scenarios/concurrent-writers.toml"),
    ),
    (
        "concurrent-writers-4x",
        include_str!("../../scenarios/concurrent-writers-4x.toml"),
    ),
];

pub(crate) const DEFAULT: &str = "django";

pub(crate) fn text(name: &str) -> Option<&'static str> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub(crate) fn names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_parses() {
        for name in super::names() {
            let source = crate::config::Source::open(name).unwrap();
            source.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
