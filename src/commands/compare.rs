//! `litehammer compare`: configurations of two or more reports side by side, as a CI gate.

use crate::cli::CompareArgs;
use crate::error::{InputError, Status};
use crate::report::model::RunStatus;

/// `litehammer compare A B...`: each B against A; fails (1) on `--fail-if-slower` drops.
pub(crate) fn compare(args: CompareArgs) -> anyhow::Result<Status> {
    for (flag, value) in [
        ("--fail-if-slower", args.fail_if_slower),
        ("--noise", Some(args.noise)),
        ("--fail-if-p99-worse", args.fail_if_p99_worse),
        ("--fail-if-capacity-drops", args.fail_if_capacity_drops),
    ] {
        let max = if flag == "--fail-if-p99-worse" { f64::MAX } else { 100.0 };
        if let Some(v) = value.filter(|v| !(0.0..=max).contains(v)) {
            return Err(InputError::new(format!("{flag} {v}"), "expected a percentage between 0 and 100").into());
        }
    }
    let a_path = &args.reports[0];
    let a = crate::pipeline::load_report(a_path)?;
    super::report::warn_unfinished(&a, a_path);
    let mut slower = Vec::new();
    let mut failed_runs = Vec::new();
    let mut worse = Vec::new();
    let mut dropped = Vec::new();
    let mut compared_runs = false;
    for b_path in &args.reports[1..] {
        let b = crate::pipeline::load_report(b_path)?;
        super::report::warn_unfinished(&b, b_path);
        let mismatches = crate::analysis::compare::fingerprint_mismatches(&a, &b);
        if !mismatches.is_empty() {
            let list = mismatches.join("; ");
            if !args.allow_mismatch {
                let origin = format!("{} vs {}", a_path.display(), b_path.display());
                let message = format!(
                    "the reports were measured on different set-ups ({list}): their ratios would mix that \
                     change in; pass --allow-mismatch to compare them anyway"
                );
                return Err(InputError::new(origin, message).into());
            }
            eprintln!("warning: --allow-mismatch: the reports' set-ups differ: {list}");
        }
        match (&a.capacity, &b.capacity) {
            (Some(ca), Some(cb)) => {
                if let Some(why) = crate::analysis::compare::capacity_mismatch(ca, cb) {
                    if !args.allow_mismatch {
                        let origin = format!("{} vs {}", a_path.display(), b_path.display());
                        return Err(
                            InputError::new(origin, format!("{why}; pass --allow-mismatch to compare anyway")).into(),
                        );
                    }
                    eprintln!("warning: --allow-mismatch: {why}");
                }
                let c = crate::analysis::compare::capacities(ca, cb);
                println!("A = {} (baseline)\nB = {}", a_path.display(), b_path.display());
                println!("capacity at {}:", ca.slo.join(", "));
                let table = crate::report::compare::capacity_table(&c, args.fail_if_capacity_drops);
                println!(
                    "\n{}",
                    if args.markdown {
                        table.to_markdown()
                    } else {
                        table.to_text()
                    }
                );
                for (side, ids) in [("A", &c.only_a), ("B", &c.only_b)] {
                    ids.iter().for_each(|id| println!("only in {side}: {id}"));
                }
                if let Some(pct) = args.fail_if_capacity_drops {
                    let failing = c.rows.iter().filter(|r| r.dropped_more_than(pct));
                    dropped.extend(failing.map(|r| format!("{} ({})", r.id, b_path.display())));
                }
                continue;
            }
            (None, None) => {}
            (ca, _) => {
                let kind = |c: bool| if c { "a capacity report" } else { "a run report" };
                let origin = format!("{} vs {}", a_path.display(), b_path.display());
                let message = format!(
                    "A is {} and B is {}: compare capacities with capacities, runs with runs",
                    kind(ca.is_some()),
                    kind(ca.is_none())
                );
                return Err(InputError::new(origin, message).into());
            }
        }
        if args.fail_if_capacity_drops.is_some() {
            let origin = format!("--fail-if-capacity-drops (with {})", b_path.display());
            return Err(InputError::new(origin, "these are run reports; the gate is for capacity reports").into());
        }
        let c = crate::analysis::compare::compare(&a, &b, args.noise)?;
        compared_runs = true;
        // Runs that FAILED or were cut short are reported, never silently dropped.
        let mut failed = Vec::new();
        for (side, report, path) in [("A", &a, a_path), ("B", &b, b_path)] {
            for run in &report.runs {
                match run.status {
                    RunStatus::Failed => {
                        let why = run.error.as_deref().unwrap_or("no error recorded");
                        println!("FAILED in {side}: {}: {}", run.id, crate::report::format::one_line(why));
                        failed.push(format!("{} FAILED in {side} ({})", run.id, path.display()));
                    }
                    RunStatus::Interrupted => eprintln!(
                        "warning: run {} in {side} ({}) was interrupted: its figures cover part of the run",
                        run.id,
                        path.display()
                    ),
                    RunStatus::Completed | RunStatus::Partial => {}
                }
            }
        }
        if args.fail_if_slower.is_some() || args.fail_if_p99_worse.is_some() {
            failed_runs.extend(failed.iter().cloned());
        }
        if c.rows.is_empty() && !failed.is_empty() {
            continue;
        }
        if c.rows.is_empty() {
            let origin = format!("{} vs {}", a_path.display(), b_path.display());
            return Err(InputError::new(
                origin,
                "no configuration has results in both reports (runs are matched by id)",
            )
            .into());
        }
        println!("A = {} (baseline)\nB = {}", a_path.display(), b_path.display());
        c.warnings.iter().for_each(|w| println!("warning: {w}"));
        let gate = crate::analysis::compare::Gate {
            slower: args.fail_if_slower,
            p99_worse: args.fail_if_p99_worse,
        };
        let table = crate::report::compare::table(&c, gate);
        println!(
            "\n{}",
            if args.markdown {
                table.to_markdown()
            } else {
                table.to_text()
            }
        );
        for (side, ids) in [("A", &c.only_a), ("B", &c.only_b)] {
            ids.iter().for_each(|id| println!("only in {side}: {id}"));
        }
        if let Some(pct) = args.fail_if_slower {
            let failing = c.rows.iter().filter(|r| r.slower_than(pct));
            slower.extend(failing.map(|r| format!("{} {} ({})", r.id, r.group, b_path.display())));
        }
        if let Some(pct) = args.fail_if_p99_worse {
            let failing = c.rows.iter().filter(|r| r.p99_worse_than(pct));
            worse.extend(failing.map(|r| format!("{} {} ({})", r.id, r.group, b_path.display())));
        }
    }
    if compared_runs {
        println!(
            "~ marks a ratio within noise: not significant by Welch's t-test at 95 % when both reports have \
         repeats, else within ±{}%.",
            args.noise
        );
    }
    if !failed_runs.is_empty() {
        eprintln!("runs failed: {}", failed_runs.join("; "));
    }
    if slower.is_empty() && worse.is_empty() && failed_runs.is_empty() && dropped.is_empty() {
        return Ok(Status::Ok);
    }
    if !dropped.is_empty() {
        eprintln!(
            "capacity dropped by more than {}% in: {}",
            args.fail_if_capacity_drops.unwrap_or_default(),
            dropped.join("; ")
        );
    }
    if !slower.is_empty() {
        eprintln!(
            "throughput dropped by more than {}% in: {}",
            args.fail_if_slower.unwrap_or_default(),
            slower.join("; ")
        );
    }
    if !worse.is_empty() {
        eprintln!(
            "p99 grew by more than {}% in: {}",
            args.fail_if_p99_worse.unwrap_or_default(),
            worse.join("; ")
        );
    }
    Ok(Status::Failed)
}
