//! Bad input: exit code 2 and one clear message naming file, line and key (or the flag).

mod common;

use common::*;

const GOOD_TAIL: &str = r#"
[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"

[[group]]
name = "w"
workers = 1

[[group.op]]
name = "ins"
sql = "INSERT INTO t(v) VALUES (?1)"
params = ["text(5)"]
"#;

/// Writes `text` as a scenario, validates it, and checks exit 2 and every expected fragment.
fn rejects(text: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", text);
    let out = bin().arg("validate").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("bad.toml"), "names the file: {stderr}");
    for fragment in expected {
        assert!(stderr.contains(fragment), "expected {fragment:?} in: {stderr}");
    }
}

fn with_head(head: &str) -> String {
    format!("name = \"bad\"\n{head}\n{GOOD_TAIL}")
}

#[test]
fn a_good_scenario_passes_so_the_cases_below_test_one_thing_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "good.toml", &with_head("duration = \"1s\""));
    bin().arg("validate").arg(&path).assert().success();
}

#[test]
fn missing_file() {
    let out = bin().args(["validate", "does/not/exist.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("does/not/exist.toml") && stderr.contains("cannot read scenario file"),
        "{stderr}"
    );
}

#[test]
fn toml_syntax_error() {
    rejects(&with_head("duration = \"1s"), &["bad.toml:2:"]);
}

#[test]
fn unknown_key() {
    rejects(
        &with_head("duration = \"1s\"\ndurration = \"2s\""),
        &["bad.toml:3:", "unknown field `durration`"],
    );
}

#[test]
fn wrong_type() {
    rejects(
        &with_head("duration = \"1s\"\nseed = \"abc\""),
        &["bad.toml:3:", "key `seed`", "invalid type"],
    );
}

#[test]
fn unknown_journal_mode_and_synchronous() {
    rejects(
        &with_head("duration = \"1s\"\n[sqlite]\njournal_mode = \"wall\""),
        &["bad.toml:4:", "key `sqlite.journal_mode`", "unknown variant `wall`"],
    );
    rejects(
        &with_head("duration = \"1s\"\n[sqlite]\nsynchronous = \"sometimes\""),
        &["bad.toml:4:", "key `sqlite.synchronous`", "sometimes"],
    );
}

#[test]
fn zero_and_negative_workers() {
    for workers in ["0", "-3"] {
        let text = format!(
            "name = \"bad\"\nduration = \"1s\"\n[[group]]\nname = \"w\"\nworkers = {workers}\n[[group.op]]\nname = \"o\"\nsql = \"SELECT 1\"\n"
        );
        rejects(&text, &["bad.toml:5:", "workers"]);
    }
}

#[test]
fn duration_and_operations_both_or_neither() {
    rejects(
        &with_head("duration = \"1s\"\noperations = 100"),
        &["bad.toml:3:", "not both"],
    );
    rejects(&with_head(""), &["give `duration`"]);
}

#[test]
fn sql_that_does_not_prepare_names_the_op_and_shows_sqlite_message() {
    let text = with_head("duration = \"1s\"").replace("INSERT INTO t(v)", "INSERT INTO tt(v)");
    rejects(&text, &["op `ins` in group `w`", "no such table: tt", "bad.toml:13:"]);
}

#[test]
fn generator_with_wrong_arguments() {
    let text = with_head("duration = \"1s\"").replace("\"text(5)\"", "\"uniform(5)\"");
    rejects(&text, &["bad.toml:14:", "uniform(min, max)"]);
}

#[test]
fn latest_of_a_missing_table() {
    let text = with_head("duration = \"1s\"").replace("\"text(5)\"", "\"latest(nope)\"");
    rejects(&text, &["latest(nope)", "no such table"]);
}

#[test]
fn parameter_count_mismatch() {
    let text = with_head("duration = \"1s\"").replace("params = [\"text(5)\"]", "params = [\"text(5)\", 1]");
    rejects(&text, &["takes 1 parameter", "gives 2"]);
}

#[test]
fn empty_names() {
    let text = with_head("duration = \"1s\"");
    rejects(
        &text.replacen("name = \"bad\"", "name = \" \"", 1),
        &["name is empty", "`name`"],
    );
    rejects(
        &text.replacen("name = \"w\"", "name = \"\"", 1),
        &["group's name is empty", "bad.toml:"],
    );
}

#[test]
fn no_groups() {
    rejects("name = \"bad\"\nduration = \"1s\"\n", &["no worker groups"]);
}

#[test]
fn bad_matrix_value_points_at_the_matrix() {
    rejects(
        &with_head("duration = \"1s\"\n[matrix]\njournal_mode = [\"wal\", \"wall\"]"),
        &["bad.toml:4:", "matrix.journal_mode", "wall"],
    );
}

#[test]
fn setting_sqlite_refuses_is_an_error() {
    rejects(
        &with_head("duration = \"1s\"\n[sqlite]\nmmap_size = 1099511627776"),
        &["mmap_size", "reads back"],
    );
}

#[test]
fn bad_busy_handlers() {
    for (value, why) in [
        ("polite", "unknown busy_handler"),
        ("fixed", "needs an interval"),
        ("fixed(0ms)", "greater than zero"),
        ("fixed(-2ms)", "duration"),
    ] {
        rejects(
            &with_head(&format!("duration = \"1s\"\n[sqlite]\nbusy_handler = \"{value}\"")),
            &["bad.toml:4:", "sqlite.busy_handler", why],
        );
    }
}

#[test]
fn bad_metric_checks() {
    for (expr, why) in [
        ("p99 100ms", "no comparison"),
        ("latency < 5ms", "unknown metric"),
        ("group.nobody.p99 < 5ms", "does not exist"),
    ] {
        let text = format!(
            "{}\n[[check]]\nname = \"c\"\nexpr = \"{expr}\"\n",
            with_head("duration = \"1s\"")
        );
        rejects(&text, &["bad.toml:", "check", why]);
    }
    let both = format!(
        "{}\n[[check]]\nname = \"c\"\nexpr = \"p99 < 1s\"\nsql = \"SELECT 0\"\n",
        with_head("duration = \"1s\"")
    );
    rejects(&both, &["either `sql`"]);
}

#[test]
fn bad_db_dir() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "ok.toml", &with_head("duration = \"1s\""));
    let missing = dir.path().join("nope");
    let out = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--db-dir")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--db-dir"), "{:?}", out);
    let out = bin()
        .arg("run")
        .arg(&scenario)
        .arg("--db-dir")
        .arg(&scenario)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
}

#[test]
fn bad_overrides() {
    for args in [
        vec!["--set", "jurnal_mode=wal"],
        vec!["--set", "group.nobody.workers=2"],
        vec!["--set", "noequals"],
        vec!["--matrix", "journal_mode=wal,wall"],
        vec!["--duration", "soon"],
    ] {
        let out = bin()
            .args(["validate", "wal-vs-rollback"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(args[0]) || stderr.contains("--set duration"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

/// `[[when]]`: a match on a key that is no matrix axis, a set of an axis, an empty match and
/// a factor out of range each name the line and the key.
#[test]
fn when_entries_name_their_line_and_key() {
    let head = "duration = \"1s\"\n[matrix]\njournal_mode = [\"wal\", \"delete\"]\n";
    for (when, line, expected) in [
        (
            "match = { synchronous = \"full\" }\nset = { \"group.w.workers\" = 2 }",
            ":6:",
            "key `when.match.synchronous`: [[when]] number 1: matches on `synchronous`, which is not a matrix axis (axes: journal_mode)",
        ),
        (
            "match = { journal_mode = \"wal\" }\nset = { journal_mode = \"delete\" }",
            ":7:",
            "key `when.set.journal_mode`",
        ),
        (
            "match = { }\nset = { \"group.w.workers\" = 2 }",
            ":6:",
            "`match` is empty",
        ),
        (
            "match = { journal_mode = \"delet\" }\nset = { \"group.w.workers\" = 2 }",
            ":6:",
            "matches journal_mode = delet, which the axis does not list (wal, delete)",
        ),
        (
            "match = { journal_mode = \"delete\" }\nset = { \"group.w.app_time_scale\" = 1000 }",
            ":7:",
            "app_time_scale must be a factor from 0.01 to 100",
        ),
    ] {
        rejects(&with_head(&format!("{head}[[when]]\n{when}\n")), &[line, expected]);
    }
}
