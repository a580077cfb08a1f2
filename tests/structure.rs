//! Regression tests for the bugs the restructure (#13) removed: script-step errors that
//! panicked, overrides that were silently ignored, and flag errors that named other flags.

mod common;

use common::*;

const HEAD: &str = r#"
name = "steps"
duration = "1s"

[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"

[[group]]
name = "web"
workers = 1

[[group.op]]
name = "first"
sql = "SELECT 1"
"#;

fn validate(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "steps.toml", text);
    let out = bin().arg("validate").arg(&path).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Every kind of script-step error exits 2 and names the script and the step, for
/// `validate` and `run` alike (it used to index the op list and panic).
#[test]
fn every_kind_of_script_step_error_names_the_script_and_step() {
    let cases = [
        ("SQL typo", r#"{ sql = "SELEC v FROM t" }"#, "syntax error"),
        ("missing table", r#"{ sql = "SELECT v FROM nope" }"#, "no such table"),
        (
            "bad column ref",
            r#"{ sql = "SELECT v FROM t WHERE id = ?1", params = ["$0.nope"] }"#,
            "nope",
        ),
        (
            "step out of range",
            r#"{ sql = "SELECT v FROM t WHERE id = ?1", params = ["$5.id"] }"#,
            "$5.id",
        ),
        (
            "params count",
            r#"{ sql = "SELECT v FROM t WHERE id = ?1", params = [1, 2] }"#,
            "param",
        ),
    ];
    for (what, step, fragment) in cases {
        let text = format!(
            "{HEAD}\n[[group.script]]\nname = \"page\"\nsteps = [\n  {{ sql = \"SELECT id FROM t\" }},\n  {step},\n]\n"
        );
        let (code, stderr) = validate(&text);
        assert_eq!(code, Some(2), "{what}: {stderr}");
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        for needle in [
            "script `page` step 1",
            "group `web`",
            "group.web.script.page.steps[1]",
            fragment,
        ] {
            assert!(stderr.contains(needle), "{what}: expected {needle:?} in {stderr}");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "steps.toml", &text);
        let out = bin().arg("run").arg(&path).arg("--no-probe").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "run, {what}");
    }
}

#[test]
fn an_op_error_still_names_the_op() {
    let text = HEAD.replace("SELECT 1", "SELECT v FROM nope");
    let (code, stderr) = validate(&text);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("op `first` in group `web`") && stderr.contains("group.web.op.first.sql"),
        "{stderr}"
    );
}

/// Every matrix cell is compiled, not only the first: here only the second cell's op has
/// weight 0, which `run` refuses.
#[test]
fn validate_compiles_every_matrix_cell() {
    let text = format!("{HEAD}\n[matrix]\n\"group.web.op.first.weight\" = [1, 0]\n");
    let (code, stderr) = validate(&text);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("every operation has weight 0"), "{stderr}");
    assert!(
        stderr.contains("group.web.op.first.weight=0"),
        "names the run: {stderr}"
    );
}

fn validate_builtin(args: &[&str]) -> (Option<i32>, String, String) {
    let out = bin().arg("validate").args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `--set` on a key that is a matrix axis pins the axis to that value, in validate...
#[test]
fn set_on_a_matrix_axis_pins_it_in_validate() {
    let (code, stdout, stderr) = validate_builtin(&["wal-vs-rollback", "--set", "journal_mode=delete"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("pinned: journal_mode=delete"), "{stdout}");
    assert!(!stdout.contains("journal_mode=wal"), "wal must not run: {stdout}");
    assert_eq!(stdout.matches("  run ").count(), 2, "{stdout}");
    // The `sqlite.` alias is the same key.
    let (_, stdout, _) = validate_builtin(&["wal-vs-rollback", "--set", "sqlite.journal_mode=truncate"]);
    assert!(
        stdout.contains("run journal_mode=truncate,synchronous=normal"),
        "{stdout}"
    );
    assert!(!stdout.contains("journal_mode=delete"), "{stdout}");
}

#[test]
fn set_and_matrix_on_the_same_key_is_an_error() {
    let (code, _, stderr) = validate_builtin(&[
        "wal-vs-rollback",
        "--set",
        "journal_mode=delete",
        "--matrix",
        "journal_mode=wal",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--matrix journal_mode") && stderr.contains("also given with --set"),
        "{stderr}"
    );
}

/// ...in run, where the report says so...
#[test]
fn set_on_a_matrix_axis_pins_it_in_run_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let run = bin()
        .args([
            "run",
            "wal-vs-rollback",
            "--set",
            "journal_mode=delete",
            "--set",
            "synchronous=off",
        ])
        .args(["--duration", "200ms", "--warmup", "0s", "--no-probe", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = read_json(&out);
    assert_schema_valid(&report);
    let ids = run_ids(&report);
    assert_eq!(ids, ["journal_mode=delete,synchronous=off"]);
    let pinned = report["scenario"]["pinned"].as_array().unwrap();
    assert_eq!(pinned.len(), 2, "{pinned:?}");
    assert!(
        pinned[0]
            .as_str()
            .unwrap()
            .starts_with("journal_mode=delete (--set; the matrix had wal, delete)")
    );
    assert_eq!(
        report["scenario"]["resolved"]["matrix"]["journal_mode"],
        serde_json::json!(["delete"])
    );
}

/// ...and in crash, which used to run all four synchronous modes.
#[test]
fn set_on_a_matrix_axis_pins_it_in_crash() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("c.json");
    let run = bin()
        .args([
            "crash",
            "--set",
            "synchronous=normal",
            "--matrix",
            "journal_mode=wal,delete",
        ])
        .args(["--method", "power-loss", "--trials", "2", "-q", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let report = read_json(&out);
    let ids = run_ids(&report);
    assert_eq!(
        ids,
        [
            "journal_mode=wal,synchronous=normal",
            "journal_mode=delete,synchronous=normal"
        ]
    );
}

/// Bad flag values name the flag the user typed, not an internal `--set` key.
#[test]
fn bad_flag_values_name_the_flag() {
    for (args, flag) in [
        (vec!["--rate", "fast"], "'--rate <PER_SECOND>'"),
        (vec!["--rate=-5"], "'--rate <PER_SECOND>'"),
        (vec!["--rate", "inf"], "'--rate <PER_SECOND>'"),
        (vec!["--duration", "5x"], "'--duration <DURATION>'"),
        (vec!["--warmup", "soon"], "'--warmup <DURATION>'"),
        (vec!["--operations", "0"], "'--operations <N>'"),
        (vec!["--operations", "many"], "'--operations <N>'"),
        (vec!["--seed", "x"], "'--seed <N>'"),
        (vec!["--latency-limit", "slow"], "'--latency-limit <DURATION>'"),
        (vec!["--warmup", "-1s"], "'--warmup <DURATION>'"),
        (vec!["--duration", "-5s"], "'--duration <DURATION>'"),
        (vec!["--latency-limit", "-1ms"], "'--latency-limit <DURATION>'"),
    ] {
        let (code, _, stderr) = validate_builtin(&[&["wal-vs-rollback"], args.as_slice()].concat());
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: expected {flag} in {stderr}");
        assert!(!stderr.contains("--set"), "{args:?} must not name --set: {stderr}");
    }
}

/// A negative duration given to any duration flag of another command names that flag too.
#[test]
fn negative_durations_name_the_flag() {
    for (args, flag) in [
        (
            vec!["run", "wal-vs-rollback", "--progress-interval", "-1"],
            "--progress-interval",
        ),
        (vec!["import", "trace.jsonl", "-o", "x.toml", "--gap", "-1s"], "--gap"),
        (vec!["crash", "--kill-within", "-1s"], "--kill-within"),
    ] {
        let out = bin().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: expected {flag} in {stderr}");
        assert!(!stderr.contains("unexpected argument"), "{args:?}: {stderr}");
    }
}

/// An override that cannot apply is an error, never a silent no-op.
#[test]
fn an_override_that_cannot_apply_is_an_error() {
    let (code, _, stderr) = validate_builtin(&["wal-vs-rollback", "--set", "group.nobody.workers=2"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("--set group.nobody.workers=2") && stderr.contains("no group named `nobody`"),
        "{stderr}"
    );
    let out = bin()
        .args(["crash", "--set", "group.ledger.workers=2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not apply to crash tests"));
}
