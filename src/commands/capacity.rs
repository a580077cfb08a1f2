//! `litehammer capacity`: the arguments mapped to the capacity search (`pipeline.rs`), then
//! the capacities on the terminal.

use super::*;
use crate::cli::CapacityArgs;
use crate::engine::driver::RunOptions;
use crate::engine::progress::ProgressMode;
use crate::error::Status;
use crate::pipeline::{self, CapacityPlan, Outputs};
use crate::report::{Exporter, Format, table};
use std::path::Path;
use std::time::SystemTime;

pub(crate) fn capacity(args: CapacityArgs) -> anyhow::Result<Status> {
    let outputs: Vec<(&str, &Path)> = [
        ("-o", &args.out.output),
        ("--export-markdown", &args.export_markdown),
        ("--export-html", &args.export_html),
    ]
    .into_iter()
    .filter_map(|(flag, path)| Some((flag, path.as_deref()?)))
    .collect();
    check_outputs(&outputs, Some(&args.scenario))?;
    if args.overrides.rate.is_some() {
        return Err(InputError::new("--rate", "capacity chooses the rates itself; leave --rate out").into());
    }
    if args.overrides.clients.is_some() {
        return Err(InputError::new(
            "--clients",
            "capacity offers rates (an open loop), which have no clients; leave --clients out",
        )
        .into());
    }
    let plan = load_plan(&args.scenario, &args.overrides, Some(1), None)?;
    if args.durability
        && let Some(c) = plan
            .cells
            .iter()
            .find(|c| !crate::targets::profile(c.scenario.target).file)
    {
        let message = format!(
            "the crash trials are SQLite's (a killed process, a power cut under SQLite's VFS); `{}` has target = {}",
            c.id,
            c.scenario.target.as_str()
        );
        return Err(InputError::new("--durability", message).into());
    }
    let url = args
        .overrides
        .target
        .as_ref()
        .and_then(|t| Some((t.kind, t.url.as_deref()?)));
    let backends = crate::targets::Backends::start(&plan.cells, url)?;
    let (db_dir, _temp_guard) = database_dir(args.out.db_dir.as_deref(), args.out.keep_db)?;
    let environment = crate::machine::env::capture(&db_dir);
    let started = SystemTime::now();
    let output = claim_report_path(
        args.out.output.as_deref(),
        &format!("capacity-{}", plan.scenario.name),
        started,
    )?;
    if !args.out.quiet {
        pipeline::announce(&plan, &output, &db_dir);
        eprintln!(
            "capacity: {} within {} per configuration, steps of {} after {} warm-up",
            args.slo.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            humantime::format_duration(args.budget.0 / plan.cells.len().max(1) as u32),
            args.step,
            args.step_warmup
        );
    }
    let report = pipeline::new_report(&plan, environment, started);
    let exports: Vec<(PathBuf, Box<dyn Exporter>)> =
        [(&args.export_markdown, Format::Md), (&args.export_html, Format::Html)]
            .into_iter()
            .filter_map(|(path, format)| Some((path.clone()?, format.exporter(None))))
            .collect();
    let outputs = Outputs {
        report: output.clone(),
        exports,
    };
    let opts = RunOptions {
        db_dir: db_dir.clone(),
        keep_db: args.out.keep_db,
        progress: ProgressMode::detect(true, None),
        repeat: 1,
        order_seed: plan.scenario.seed,
        backup: Default::default(),
        template: None,
        backends,
    };
    let cap = CapacityPlan {
        slo: args.slo.clone(),
        budget: args.budget.0,
        step: args.step.0,
        warmup: args.step_warmup.0,
        start_rate: args.start_rate,
        resolution: args.resolution,
        quiet: args.out.quiet,
        durability_trials: args.durability.then_some(args.trials),
    };
    let finished = pipeline::capacity(&plan, &opts, report, &outputs, &cap)?;
    print!("\n{}", String::from_utf8(table::Terminal.render(&finished.report)?)?);
    warn_if_debug_build();
    println!("\nreport: {}", output.display());
    if let Some(id) = crate::analysis::capacity::recommend(&finished.report) {
        println!(
            "apply it: litehammer apply {} --for django|rails|laravel|go|node|pragma  ({id})",
            output.display()
        );
    }
    Ok(finished.status)
}
