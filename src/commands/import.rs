//! `litehammer import`: a trace becomes a scenario file (see `crate::import`).

use crate::cli::{ImportArgs, ParamsMode, ServerQueue};
use crate::config::app::QueueKind;
use crate::error::{InputError, Status};
use crate::import::{self, ImportError};
use crate::report::output::Target;
use anyhow::Context;

pub(crate) fn import(args: ImportArgs) -> anyhow::Result<Status> {
    let name = args.name.clone().unwrap_or_else(|| {
        args.output
            .file_stem()
            .map_or("imported".into(), |s| s.to_string_lossy().into_owned())
    });
    let opts = import::Options {
        trace: args.trace.clone(),
        replay: args.params == ParamsMode::Replay,
        db: args.db.clone(),
        gap_ns: args.gap.0.as_nanos() as u64,
        name,
        from: args.from,
        also: args.also.clone(),
        queue: args.queue.map(|q| match q {
            ServerQueue::Shared => QueueKind::Shared,
            ServerQueue::PerProcess => QueueKind::PerProcess,
            ServerQueue::FirstFree => QueueKind::FirstFree,
        }),
    };
    // The one output check every command that writes shares: a regular file or nothing,
    // never a link, a device, a FIFO, a directory, the trace or the database read.
    let mut inputs: Vec<(&str, &std::path::Path)> = vec![("input trace", args.trace.as_path())];
    if let Some(db) = &args.db {
        inputs.push(("database given to --db", db.as_path()));
    }
    let also: Vec<std::path::PathBuf> = args.also.iter().map(|a| import::also_spec(a).1).collect();
    for path in &also {
        inputs.push(("trace given to --also", path.as_path()));
    }
    crate::report::output::check(&[Target::new("-o", &args.output)], &inputs)?;
    let origin = args.trace.display().to_string();
    let outcome = import::import(&opts).map_err(|e| match e {
        ImportError::Trace(t) => {
            let mut err = InputError::new(&origin, t.message);
            if t.line > 0 {
                err.position = Some((t.line, 1));
            }
            err
        }
        ImportError::Db(m) => InputError::new("--db", m),
        ImportError::Also(path, t) => {
            let mut err = InputError::new(format!("--also {}", path.display()), t.message);
            if t.line > 0 {
                err.position = Some((t.line, 1));
            }
            err
        }
        ImportError::AlsoConfig(path, m) => InputError::new(format!("--also {}", path.display()), m),
        other => InputError::new(&origin, other.to_string()),
    })?;
    // Import writes only what `validate` accepts: the scenario is checked as the next
    // command would check it (parsed, expanded, every statement prepared on a scratch
    // database) before it is written.
    let source = crate::config::Source {
        origin: args.output.display().to_string(),
        text: outcome.text.clone(),
    };
    let checked = crate::config::validate::load_source(source, &Default::default())
        .and_then(|plan| crate::workload::check::against_sqlite(&plan, None));
    // Values the trace does not hold (OpenTelemetry sanitizes them) are `fill_in(...)`: a
    // scenario whose only gaps are those is written for the user to replace them, and says
    // so. Anything else that does not validate (an app function with no equivalent among them)
    // is not written.
    let mut left_to_fill = None;
    if let Err(e) = checked {
        let text = crate::error::render(&anyhow::Error::from(e));
        if text.contains("left to fill in by `litehammer import`") && only_missing_values(&outcome.text) {
            left_to_fill = Some(text);
        } else if outcome.no_schema && args.db.is_none() {
            // Not a gap in import: nothing said what the tables are.
            return Err(InputError::new(
                &origin,
                "no schema: the trace has no CREATE statement and the database it names cannot be read, so no \
                 statement can prepare; give a copy of the app's database with --db FILE (nothing was written)",
            )
            .into());
        } else if let Some((db, table)) = args.db.as_deref().zip(missing_table(&text))
            && crate::import::schema::read_db(db)
                .is_ok_and(|info| !info.tables.iter().any(|t| t.name.eq_ignore_ascii_case(table)))
        {
            // Not a gap in import either: the copy given is not this app's database.
            return Err(InputError::new(
                "--db",
                format!(
                    "{}: has no table `{table}`, which the trace's statements use: is it this app's database? Give a \
                     copy of it from before the traced run (nothing was written)",
                    db.display()
                ),
            )
            .into());
        } else {
            eprintln!(
                "error: the scenario imported from {} does not validate, so it was not written: {text}",
                args.trace.display(),
            );
            eprintln!("this is a gap in import; please report it with the trace (or its --redact capture)");
            return Ok(Status::Failed);
        }
    }
    crate::report::output::write(&args.output, outcome.text.as_bytes())
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    if outcome.format != crate::import::formats::Format::Capture {
        println!(
            "format: {} (--from {})",
            outcome.format.describe(),
            outcome.format.name()
        );
        for m in &outcome.modelled {
            println!("  modelled: {m}");
        }
    }
    println!(
        "{}: {} statements → {} group(s):",
        args.output.display(),
        outcome.statements,
        outcome.groups.len()
    );
    for (name, workers, requests, kinds, scripts) in &outcome.groups {
        let variants = if scripts > kinds {
            format!(" ({scripts} scripts: kinds with optional statements are weighted variants)")
        } else {
            String::new()
        };
        println!("  {name}: {workers} worker(s), {requests} request(s), {kinds} kind(s){variants}");
    }
    for n in &outcome.notes {
        println!("  note: {n}");
    }
    match left_to_fill {
        Some(first) => println!(
            "next: replace each fill_in(...) in {} with a generator (the notes above name them), then \
             litehammer validate {}; the first one: {first}",
            args.output.display(),
            args.output.display()
        ),
        None => println!("next: litehammer validate {}", args.output.display()),
    }
    Ok(Status::Ok)
}

/// Whether every `fill_in(...)` of the scenario stands for a value the trace does not hold.
fn only_missing_values(text: &str) -> bool {
    text.split("fill_in('").skip(1).all(|rest| {
        rest.split("')")
            .next()
            .is_some_and(|why| why.ends_with("the trace has no value for it"))
    })
}

/// The table a statement did not find (SQLite's `no such table: NAME`), from a check's error.
fn missing_table(error: &str) -> Option<&str> {
    let rest = error.split_once("no such table: ")?.1;
    let name = rest
        .split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ')')
        .next()?;
    // `main.t` names the table t of the schema main.
    let name = name.rsplit('.').next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_fill_ins_for_missing_values_let_the_scenario_be_written() {
        let missing = "params = [\"fill_in('parameter ?1 of step 0: the trace has no value for it')\"]";
        assert!(super::only_missing_values(missing));
        let function = "params = [\"fill_in('REGEXP in read_t: no built-in equivalent')\"]";
        assert!(!super::only_missing_values(&format!("{missing}\n{function}")));
    }

    #[test]
    fn the_missing_table_is_read_from_sqlites_message() {
        let text = "step 0 in group `app`: SQL does not prepare: no such table: blog_post\n    55 | ...";
        assert_eq!(super::missing_table(text), Some("blog_post"));
        assert_eq!(super::missing_table("no such table: main.t"), Some("t"));
        assert_eq!(super::missing_table("no such column: x"), None);
    }
}
