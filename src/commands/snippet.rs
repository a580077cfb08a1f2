//! `litehammer capture --snippet FRAMEWORK`: the few lines an app adds to write a trace that
//! `import` reads, for stacks whose SQLite `capture` cannot see (compiled in). The texts are
//! the files of snippets/trace/, which the tests run in real apps (docs/capture.md).

/// The framework routes (`capture --snippet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SnippetFor {
    /// Rails: an initializer subscribing to sql.active_record (config/initializers/)
    Rails,
    /// Django: a LOGGING entry for django.db.backends (settings.py)
    Django,
    /// Node better-sqlite3: a wrapper module (and an Express middleware)
    Node,
    /// Go database/sql: a driver wrapper (standard library only) and an HTTP middleware
    Go,
    /// OpenTelemetry (any language): a collector writing OTLP/JSON
    Otel,
    /// OpenTelemetry, Python SDK: a span processor putting the thread's CPU time on spans
    OtelCpu,
}

const RAILS: &str = include_str!("../../snippets/trace/rails_initializer.rb");
const DJANGO: &str = include_str!("../../snippets/trace/django_settings.py");
const NODE: &str = include_str!("../../snippets/trace/litehammer-better-sqlite3.js");
const GO: &str = include_str!("../../snippets/trace/litehammer_sql.go");
const OTEL: &str = include_str!("../../snippets/trace/otel-collector.yaml");
const OTEL_CPU: &str = include_str!("../../snippets/trace/otel_cpu.py");

impl SnippetFor {
    pub(crate) fn text(self) -> &'static str {
        match self {
            SnippetFor::Rails => RAILS,
            SnippetFor::Django => DJANGO,
            SnippetFor::Node => NODE,
            SnippetFor::Go => GO,
            SnippetFor::Otel => OTEL,
            SnippetFor::OtelCpu => OTEL_CPU,
        }
    }

    /// Where the text goes and what reads the result.
    fn usage(self) -> &'static str {
        match self {
            SnippetFor::Rails => {
                "save as config/initializers/litehammer_trace.rb; run the app under load with \
                 LITEHAMMER_TRACE=trace.jsonl; then `litehammer import trace.jsonl -o app.toml` (--from rails)"
            }
            SnippetFor::Django => {
                "append to settings.py (it sets LOGGING); run the app under load with LITEHAMMER_TRACE=trace.jsonl; \
                 then `litehammer import trace.jsonl -o app.toml` (--from django). Python's sqlite3 on \
                 Debian/Ubuntu links libsqlite3, so `litehammer capture` also works, and sees more"
            }
            SnippetFor::Node => {
                "save as litehammer-better-sqlite3.js next to the app; require it as the comment says; run with \
                 LITEHAMMER_TRACE=trace.jsonl; then `litehammer import trace.jsonl -o app.toml` (--from node)"
            }
            SnippetFor::Go => {
                "save as a package of the app (standard library only; wrap the driver and the handler as its \
                 comment says); run with LITEHAMMER_TRACE=trace.jsonl; it writes litehammer's own trace format: \
                 `litehammer import trace.jsonl -o app.toml` (--from capture)"
            }
            SnippetFor::Otel => {
                "save as otel-collector.yaml; run the collector and the app as its comment says; then \
                 `litehammer import spans.jsonl -o app.toml` (--from otel). Spans have no CPU time: for the \
                 Python SDK, `litehammer capture --snippet otel-cpu` prints a span processor that adds it (other \
                 SDKs can add the same two attributes, litehammer.cpu_start_ns and litehammer.cpu_end_ns). Spans \
                 do not name the server: behind a prefork server whose processes share one socket (gunicorn's \
                 sync worker), import with --queue shared"
            }
            SnippetFor::OtelCpu => {
                "save as otel_cpu.py beside the app; wrap the exporting span processor as its comment says; \
                 then `litehammer import spans.jsonl -o app.toml` (--from otel) takes app time from the CPU \
                 (--queue shared behind gunicorn's sync workers)"
            }
        }
    }

    /// The route for a program whose SQLite `capture` did not see, from its name and binary.
    pub(crate) fn for_program(program: &std::ffi::OsStr) -> Option<(SnippetFor, &'static str)> {
        let path = std::path::Path::new(program);
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let named = match name.as_str() {
            "node" | "nodejs" | "npm" | "npx" | "yarn" | "pnpm" => Some((
                SnippetFor::Node,
                "Node's better-sqlite3 (and node:sqlite) compile SQLite in",
            )),
            "ruby" | "rails" | "puma" | "bundle" | "rake" | "unicorn" | "falcon" => Some((
                SnippetFor::Rails,
                "the sqlite3 gem from 2.0 on ships a precompiled SQLite (Rails 8 requires it)",
            )),
            _ => None,
        };
        if named.is_some() {
            return named;
        }
        let found = if program.as_encoded_bytes().contains(&b'/') {
            Some(path.to_path_buf())
        } else {
            std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(path)).find(|f| f.is_file()))
        }?;
        let (has_sqlite, is_go) = scan_binary(&found);
        match (has_sqlite, is_go) {
            (true, true) => Some((
                SnippetFor::Go,
                "this Go program has SQLite compiled in (mattn/go-sqlite3 or modernc.org/sqlite)",
            )),
            (true, false) => Some((SnippetFor::Otel, "this program has SQLite compiled in")),
            _ => None,
        }
    }
}

/// Whether a binary holds SQLite's own code, and whether it is a Go program (its first 256 MiB).
fn scan_binary(path: &std::path::Path) -> (bool, bool) {
    use std::io::Read;
    let Ok(file) = std::fs::File::open(path) else {
        return (false, false);
    };
    let mut reader = std::io::BufReader::new(file.take(256 << 20));
    let (mut prepare, mut format, mut go) = (false, false, false);
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        carry.extend_from_slice(&buf[..n]);
        let hay = &carry[..];
        prepare |= contains(hay, b"sqlite3_prepare_v2");
        format |= contains(hay, b"SQLite format 3");
        go |= contains(hay, b"\xff Go buildinf:") || contains(hay, b"runtime.gopanic");
        let keep = carry.len().saturating_sub(32);
        carry.drain(..keep);
    }
    (prepare && format, go)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn print(which: SnippetFor) {
    print!("{}", which.text());
    eprintln!("litehammer: {}", which.usage());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_route_for_programs_with_sqlite_compiled_in() {
        assert_eq!(
            SnippetFor::for_program("node".as_ref()).map(|r| r.0),
            Some(SnippetFor::Node)
        );
        assert_eq!(
            SnippetFor::for_program("/usr/bin/puma".as_ref()).map(|r| r.0),
            Some(SnippetFor::Rails)
        );
        assert_eq!(SnippetFor::for_program("true".as_ref()), None);
    }
}
