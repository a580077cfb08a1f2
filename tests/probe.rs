mod common;

use common::*;
use serde_json::Value;

const JOURNAL_MODES: [&str; 3] = ["wal", "delete", "truncate"];
const SYNC_LEVELS: [&str; 4] = ["off", "normal", "full", "extra"];

fn positive(v: &Value, what: &str) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x > 0.0 && x.is_finite(), "{what} = {x}");
    x
}

#[test]
fn probe_prints_and_stores_rates_and_a_ceiling_row_per_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("probe.json");
    let assert = bin()
        .args(["probe", "--quick", "--db-dir"])
        .arg(dir.path())
        .arg("--output")
        .arg(&out)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();

    let report = read_json(&out);
    assert_eq!(report["schema"], "litehammer.probe/1");
    let fsync = positive(&report["fsync_per_sec"], "fsync_per_sec");
    positive(&report["fdatasync_per_sec"], "fdatasync_per_sec");
    assert_eq!(report["environment"]["fsync_per_sec"], report["fsync_per_sec"]);
    assert!(report["warnings"].is_array());
    let rows = report["commit_ceiling"].as_array().unwrap();
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let commits = positive(&r["commits_per_sec"], "commits_per_sec");
            let ratio = positive(&r["ratio_to_fsync"], "ratio_to_fsync");
            assert!((ratio - commits / fsync).abs() <= 1e-9 * ratio.max(1.0), "{r}");
            (
                r["journal_mode"].as_str().unwrap().to_string(),
                r["synchronous"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = JOURNAL_MODES
        .iter()
        .flat_map(|j| SYNC_LEVELS.iter().map(|s| (j.to_string(), s.to_string())))
        .collect();
    assert_eq!(pairs, expected);

    // The text: the sync rates, then one table row per journal_mode × synchronous.
    assert!(stdout.contains("fsync ") && stdout.contains("fdatasync "), "{stdout}");
    let header = stdout
        .lines()
        .position(|l| l.starts_with("journal_mode"))
        .unwrap_or_else(|| panic!("no table header:\n{stdout}"));
    let header_line = stdout.lines().nth(header).unwrap();
    assert!(
        header_line.contains("commits/s") && header_line.contains("× fsync"),
        "{header_line}"
    );
    let table_rows: Vec<Vec<&str>> = stdout
        .lines()
        .skip(header + 1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(table_rows.len(), expected.len(), "{stdout}");
    for (row, (j, s)) in table_rows.iter().zip(&expected) {
        assert_eq!((row[0], row[1]), (j.as_str(), s.as_str()), "{stdout}");
        assert!(row[2].replace(',', "").parse::<f64>().unwrap() > 0.0, "{row:?}");
        assert!(row[3].parse::<f64>().unwrap() >= 0.0, "{row:?}");
    }
    // Only the report is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

fn tiny_run_environment(extra: &[&str]) -> Value {
    let args: Vec<&str> = SHORT_WAL
        .iter()
        .copied()
        .chain(["-q"])
        .chain(extra.iter().copied())
        .collect();
    run_tiny(&args).1["environment"].clone()
}

#[test]
fn run_stores_the_fsync_rate_unless_no_probe() {
    let probed = tiny_run_environment(&[]);
    positive(&probed["fsync_per_sec"], "fsync_per_sec");
    let skipped = tiny_run_environment(&["--no-probe"]);
    assert!(skipped.get("fsync_per_sec").is_none(), "{skipped}");
}
