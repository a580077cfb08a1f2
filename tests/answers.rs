//! Issue #17's answers: verdict lines, CSV and HdrHistogram exports, completions, the man
//! page and `apply` snippets, each through the real binary.

mod common;

use common::*;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report.json")
}

/// One short run of two configurations, with the CSV exported beside the JSON.
fn short_run(dir: &Path) -> (PathBuf, PathBuf, String) {
    let scenario = write(dir, "tiny.toml", TINY);
    let out = dir.join("r.json");
    let csv = dir.join("r.csv");
    let assert = bin()
        .arg("run")
        .arg(&scenario)
        .args(["--duration", "600ms", "--warmup", "0s", "--no-probe", "-q", "--db-dir"])
        .arg(dir)
        .arg("-o")
        .arg(&out)
        .arg("--export-csv")
        .arg(&csv)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    (out, csv, stdout)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

#[test]
fn run_prints_verdicts_first_and_exports_csv_and_hlog_matching_the_json() {
    let dir = tempfile::tempdir().unwrap();
    let (out, csv_path, stdout) = short_run(dir.path());
    // Verdict lines come before the table.
    let verdict = stdout.find("verdict (single run per configuration").expect(&stdout);
    let table = stdout.find("tx/s").unwrap();
    assert!(verdict < table, "{stdout}");
    assert!(stdout.contains("  writers: journal_mode="), "{stdout}");

    let report = read_json(&out);
    assert_schema_valid(&report);
    // The verdict is stored in the report, and the terminal shows the stored lines.
    let stored = strings(&report, "verdict");
    assert!(
        stored[0].starts_with("verdict (single run per configuration"),
        "{stored:?}"
    );
    assert!(
        stored[1..].iter().all(|l| stdout.contains(&format!("  {l}\n"))),
        "{stored:?}\n{stdout}"
    );
    let runs = report["runs"].as_array().unwrap();
    // CSV: a standard reader parses it; one row per run × group with the JSON's numbers.
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "run");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let groups: Vec<(&Value, &Value)> = runs
        .iter()
        .flat_map(|r| r["groups"].as_array().unwrap().iter().map(move |g| (r, g)))
        .collect();
    assert_eq!(rows.len(), groups.len());
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    for (row, (run, g)) in rows.iter().zip(&groups) {
        assert_eq!(&row[col("run")], run["id"].as_str().unwrap());
        assert_eq!(&row[col("group")], g["name"].as_str().unwrap());
        let num = |c: &str| row[col(c)].parse::<f64>().unwrap();
        let tx = &g["transactions"];
        assert!(close(num("tx_per_s"), tx["throughput_per_s"].as_f64().unwrap()));
        assert!(close(num("p99_us"), tx["latency_us"]["p99"].as_f64().unwrap()));
        assert!(close(num("committed"), tx["committed"].as_f64().unwrap()));
        assert!(close(num("jain_index"), g["fairness"]["jain_index"].as_f64().unwrap()));
    }
    // `report --format csv` renders the same file from the saved JSON.
    let csv_text = std::fs::read_to_string(&csv_path).unwrap();
    bin()
        .arg("report")
        .arg(&out)
        .args(["--format", "csv"])
        .assert()
        .success()
        .stdout(csv_text);

    // HdrHistogram interval logs: one per run × group, read back with the crate's reader.
    let hlog_dir = dir.path().join("hlog");
    bin()
        .arg("report")
        .arg(&out)
        .args(["--format", "hlog", "-o"])
        .arg(&hlog_dir)
        .assert()
        .success();
    let files = std::fs::read_dir(&hlog_dir).unwrap().count();
    assert_eq!(files, groups.len());
    for (run, g) in &groups {
        let name = format!("{}-{}.hlog", run["id"].as_str().unwrap(), g["name"].as_str().unwrap());
        let bytes = std::fs::read(hlog_dir.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut counts = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            if let LogEntry::Interval(h) = entry.expect("the log parses") {
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(h.encoded_histogram())
                    .unwrap();
                let hist: hdrhistogram::Histogram<u64> = Deserializer::new().deserialize(&mut raw.as_slice()).unwrap();
                assert_eq!(h.tag().map(|t| t.as_str()), g["name"].as_str());
                counts.push(hist.len());
            }
        }
        let expected: Vec<u64> = run["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let gi = e["groups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|x| x["name"] == g["name"])
                    .unwrap();
                litehammer::testing::decode_histogram(gi["histogram_v2"].as_str().unwrap())
                    .unwrap()
                    .len()
            })
            .collect();
        assert!(!counts.is_empty(), "{name}");
        assert_eq!(counts, expected, "{name}");
    }
}

#[test]
fn hlog_of_a_report_without_interval_histograms_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    bin()
        .arg("report")
        .arg(fixture())
        .args(["--format", "hlog", "-o"])
        .arg(dir.path().join("h"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no per-interval histograms"));
    bin()
        .arg("report")
        .arg(fixture())
        .args(["--format", "hlog"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("-o DIR"));
}

#[test]
fn completions_and_man_page_generate() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef litehammer"),
        ("fish", "complete -c litehammer"),
    ] {
        bin()
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicates::str::contains(marker))
            .stdout(predicates::str::contains("compare"));
    }
    bin()
        .arg("man")
        .assert()
        .success()
        .stdout(predicates::str::contains(".TH litehammer"))
        .stdout(predicates::str::contains("apply"));
}

fn apply(framework: &str, config: Option<&str>) -> String {
    let mut cmd = bin();
    cmd.arg("apply").arg(fixture()).args(["--for", framework]);
    if let Some(c) = config {
        cmd.args(["--config", c]);
    }
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// Runs python3 with `code`, the snippet on stdin; `None` when python3 (or the module) is missing.
fn python(code: &str, input: &str) -> Option<(bool, String)> {
    let mut child = std::process::Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if stderr.contains("ModuleNotFoundError") {
        return None;
    }
    Some((out.status.success(), stderr))
}

#[test]
fn apply_prints_each_framework_and_the_django_snippet_is_python() {
    let text = apply("django", None);
    assert!(text.contains("\"init_command\""), "{text}");
    assert!(text.contains("PRAGMA journal_mode=wal;"), "{text}");
    assert!(text.contains("\"transaction_mode\": \"IMMEDIATE\""), "{text}");
    assert!(text.contains("connection_created"), "{text}");
    match python("import ast, sys; ast.parse(sys.stdin.read())", &text) {
        Some((ok, err)) => assert!(ok, "the Django snippet is not Python: {err}\n{text}"),
        None => panic!("python3 is needed to check the Django snippet"),
    }
    for framework in ["laravel", "go", "node", "pragma"] {
        let text = apply(framework, Some("journal_mode=delete,synchronous=full"));
        assert!(
            text.contains("per connection") || text.contains("Per connection"),
            "{framework}: {text}"
        );
        assert!(!text.contains("{{"), "{framework}: {text}");
        assert!(text.to_lowercase().contains("delete"), "{framework}: {text}");
    }
}

#[test]
fn apply_rails_snippet_is_yaml() {
    let text = apply("rails", Some("synchronous=full,journal_mode=delete"));
    let check = "import sys, yaml\nd = yaml.safe_load(sys.stdin.read())\n\
                 p = d['production']\nassert p['pragmas']['journal_mode'] == 'delete', p\n\
                 assert p['pragmas']['synchronous'] == 'full', p\nassert p['timeout'] == 2000, p\n\
                 assert p['default_transaction_mode'] == 'IMMEDIATE', p";
    match python(check, &text) {
        Some((ok, err)) => assert!(ok, "the Rails snippet is not the YAML expected: {err}\n{text}"),
        None if std::env::var_os("LITEHAMMER_REQUIRE_YAML").is_some() => {
            panic!("LITEHAMMER_REQUIRE_YAML is set but python3 has no yaml module")
        }
        None => eprintln!("skipped: python3 with PyYAML is not available to parse the Rails snippet"),
    }
}

#[test]
fn apply_says_when_its_pick_is_only_the_fastest_measured() {
    // The fixture: four configurations, one round each, so the best is not confirmed. The
    // snippet stays alone on stdout; the note goes to stderr.
    let out = bin()
        .arg("apply")
        .arg(fixture())
        .args(["--for", "pragma"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("journal_mode=wal,synchronous=normal is the fastest measured, not a confirmed best")
            && stderr.contains("--rounds 3"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-- litehammer apply"));
    // A configuration the user named is theirs: no note.
    bin()
        .arg("apply")
        .arg(fixture())
        .args(["--for", "pragma", "--config", "journal_mode=wal,synchronous=full"])
        .assert()
        .success()
        .stderr(predicates::str::is_empty());
}

#[test]
fn apply_rejects_bad_input_with_exit_2() {
    bin()
        .arg("apply")
        .arg(fixture())
        .args(["--for", "cobol"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("cobol"));
    bin()
        .arg("apply")
        .arg(fixture())
        .args(["--for", "django", "--config", "journal_mode=off"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no configuration matches"))
        .stderr(predicates::str::contains("journal_mode=wal,synchronous=normal"));
}

#[test]
fn run_durability_gives_the_decision_table_and_a_recommendation_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("d.json");
    let md = dir.path().join("d.md");
    let html = dir.path().join("d.html");
    let assert = bin()
        .arg("run")
        .arg(&scenario)
        .args(["--duration", "300ms", "--warmup", "0s", "--no-probe", "-q"])
        .args(["--durability", "--trials", "2", "--db-dir"])
        .arg(dir.path())
        .arg("-o")
        .arg(&out)
        .arg("--export-markdown")
        .arg(&md)
        .arg("--export-html")
        .arg(&html)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let report = read_json(&out);
    assert_schema_valid(&report);
    // Crash trials ran once per journal_mode × synchronous of the run: kill and 3 models, 2 trials each.
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for run in runs {
        let results = run["durability"]["results"]
            .as_array()
            .expect("durability beside the run");
        let labels: Vec<String> = results
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["method"].as_str().unwrap(),
                    r["model"].as_str().unwrap_or("-")
                )
            })
            .collect();
        assert_eq!(
            labels,
            ["kill/-", "power-loss/durable", "power-loss/reorder", "power-loss/torn"]
        );
        assert!(results.iter().all(|r| r["trials"] == 2), "{results:?}");
        assert!(
            !run["groups"].as_array().unwrap().is_empty(),
            "the measured run is kept"
        );
    }
    // The decision: a row per configuration, with the worst trial's losses from the JSON.
    let decision = &report["decision"];
    let rows = decision["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, run) in rows.iter().zip(runs) {
        assert_eq!(row["config"], run["id"]);
        let worst_power = run["durability"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "power-loss")
            .map(|r| r["max_lost"].as_u64().unwrap())
            .max()
            .unwrap();
        assert_eq!(row["power_loss_max_lost"].as_u64(), Some(worst_power));
    }
    let fastest = decision["fastest"].as_str().expect("a fastest configuration");
    if let Some(safe) = decision["safe"].as_str() {
        let row = rows.iter().find(|r| r["config"] == safe).unwrap();
        assert_eq!(row["power_loss_max_lost"], 0, "the safe pick lost nothing: {row}");
    }
    // Terminal: the table and the recommendation naming the configurations.
    let table = stdout.find("speed × durability").expect(&stdout);
    let recommendation = stdout.find("recommendation:").expect(&stdout);
    assert!(table < recommendation, "{stdout}");
    assert!(stdout[recommendation..].contains(fastest), "{stdout}");
    assert!(stdout.contains("lost on power loss"), "{stdout}");
    // Markdown and HTML carry the same table, the recommendation and "apply it".
    let md = std::fs::read_to_string(&md).unwrap();
    for needle in [
        "## Speed × durability",
        "**Recommendation**",
        "## Apply it",
        "~~~sql",
        "~~~python",
    ] {
        assert!(md.contains(needle), "{needle}: {md}");
    }
    let html = std::fs::read_to_string(&html).unwrap();
    for needle in [
        "id=\"decision\"",
        "id=\"recommendation\"",
        "id=\"apply\"",
        "lost on power loss",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    // `report` re-renders the same from the JSON; `apply` defaults to the recommended pick.
    let rendered = bin().arg("report").arg(&out).assert().success();
    let rendered = String::from_utf8_lossy(&rendered.get_output().stdout).to_string();
    assert!(rendered.contains("## Speed × durability"), "{rendered}");
    let pick = decision["safe"].as_str().unwrap_or(fastest);
    let applied = bin()
        .arg("apply")
        .arg(&out)
        .args(["--for", "pragma"])
        .assert()
        .success();
    let applied = String::from_utf8_lossy(&applied.get_output().stdout).to_string();
    assert!(
        applied.starts_with(&format!("-- litehammer apply --for pragma: {pick}\n")),
        "{applied}"
    );
}

#[test]
fn durability_flags_are_checked() {
    bin()
        .args(["run", "--trials", "3"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--durability"));
    bin()
        .args(["run", "--durability", "--kill"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--kill"));
    bin()
        .args(["run", "--durability", "--trials", "0"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--trials"));
}

#[test]
fn apply_config_picks_another_configuration_and_notes_per_connection_settings() {
    let out = bin()
        .arg("apply")
        .arg(fixture())
        .args(["--for", "pragma", "--config", "journal_mode=delete,synchronous=full"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.contains("PRAGMA journal_mode=delete;"), "{text}");
    assert!(text.contains("PRAGMA synchronous=full;"), "{text}");
    assert!(text.contains("run these on EVERY connection"), "{text}");
    assert!(
        !text.contains("journal_mode=delete persists"),
        "only WAL persists in the file: {text}"
    );
}
