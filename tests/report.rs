//! Reports rendered from saved JSON, `run --repeat` and `run --export-*`, driving the real binary.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/report.json")
}

/// A `litehammer crash --method both --cross-check --trials 5` report of 4 configurations.
fn crash_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crash.json")
}

const DURABILITY_HEADERS: &str = "| configuration | method | trials | acked | trials losing acked | max lost | \
                                  integrity fail | atomicity | silent damage | cross-check |";

#[test]
fn report_renders_the_durability_table_of_a_crash_report() {
    assert_schema_valid(&read_json(&crash_fixture()));
    bin()
        .args(["report", "--format", "md"])
        .arg(crash_fixture())
        .assert()
        .success()
        .stdout(predicate::str::contains("## Durability"))
        .stdout(predicate::str::contains(DURABILITY_HEADERS))
        .stdout(predicate::str::contains(
            "| journal_mode=delete,synchronous=full | kill | 5 |",
        ))
        .stdout(predicate::str::contains("## Results").not());
    let headers = DURABILITY_HEADERS.trim_matches(['|', ' ']).split(" | ");
    let html = bin()
        .args(["report", "--format", "html"])
        .arg(crash_fixture())
        .output()
        .unwrap();
    assert!(html.status.success());
    let html = String::from_utf8(html.stdout).unwrap();
    assert!(
        html.contains("<td>journal_mode=wal,synchronous=off</td><td>kill</td>"),
        "{html}"
    );
    for header in headers {
        assert!(html.contains(&format!(">{header}</th>")), "{header}");
    }
}

#[test]
fn report_renders_markdown_to_stdout() {
    bin()
        .args(["report", "--format", "md"])
        .arg(fixture())
        .assert()
        .success()
        .stdout(predicate::str::contains("## Environment"))
        .stdout(predicate::str::contains(
            "| configuration | tx/s | vs baseline | p50 | p99 | p99.9 | max | errors | verified |",
        ))
        .stdout(predicate::str::contains(
            "| journal_mode=wal,synchronous=normal | 30,911 | baseline |",
        ));
}

#[test]
fn report_json_round_trips_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("copy.json");
    bin()
        .args(["report", "--format", "json", "-o"])
        .arg(&out)
        .arg(fixture())
        .assert()
        .success()
        .stdout("");
    let copy = read_json(&out);
    assert_schema_valid(&copy);
    // The output is the report as the model holds it (fields added to the model since the
    // fixture was made appear with their defaults) and loses nothing the fixture has.
    let model = litehammer::testing::load_report_json(&fixture()).unwrap();
    assert_eq!(copy, model);
    assert_subset(&read_json(&fixture()), &copy, "$");
}

/// Every value of `part` is in `whole` at the same place.
fn assert_subset(part: &Value, whole: &Value, at: &str) {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => {
            for (k, v) in p {
                let inner = w.get(k).unwrap_or_else(|| panic!("{at}.{k} is missing"));
                assert_subset(v, inner, &format!("{at}.{k}"));
            }
        }
        (Value::Array(p), Value::Array(w)) => {
            assert_eq!(p.len(), w.len(), "{at}: length");
            for (i, (a, b)) in p.iter().zip(w).enumerate() {
                assert_subset(a, b, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(part, whole, "{at}"),
    }
}

#[test]
fn report_rejects_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = write(dir.path(), "x.json", "this is not json");
    let mut other = read_json(&fixture());
    other["schema"] = Value::from("someone.else/3");
    let other_schema = write(dir.path(), "other.json", &other.to_string());
    let mut broken = read_json(&fixture());
    broken["runs"][0]["groups"] = Value::from("nope");
    let broken = write(dir.path(), "broken.json", &broken.to_string());
    let cases: [(&Path, &str); 4] = [
        (&dir.path().join("missing.json"), "cannot read"),
        (&not_json, "not JSON"),
        (&other_schema, "schema `someone.else/3` is not `litehammer.report/1`"),
        (&broken, "not a valid litehammer.report/1 report"),
    ];
    for (path, message) in cases {
        bin()
            .arg("report")
            .arg(path)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(message))
            .stderr(predicate::str::contains(path.file_name().unwrap().to_str().unwrap()));
    }
    bin()
        .args(["report", "--baseline", "journal_mode=off"])
        .arg(fixture())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--baseline journal_mode=off: no configuration matches",
        ));
}

#[test]
fn run_repeat_records_each_repetition_and_exports_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    let md = dir.path().join("r.md");
    bin()
        .arg("run")
        .arg(&scenario)
        .args([
            "--duration",
            "300ms",
            "--warmup",
            "0s",
            "--matrix",
            "journal_mode=wal,delete",
        ])
        .args(["--rounds", "2", "-q", "--db-dir"])
        .arg(dir.path())
        .arg("-o")
        .arg(&out)
        .arg("--export-markdown")
        .arg(&md)
        .assert()
        .success();
    let report = read_json(&out);
    assert_schema_valid(&report);
    let runs: Vec<(String, u64)> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["repeat"].as_u64().unwrap()))
        .collect();
    let expected = [
        ("journal_mode=wal", 1),
        ("journal_mode=wal", 2),
        ("journal_mode=delete", 1),
        ("journal_mode=delete", 2),
    ];
    assert_eq!(runs, expected.map(|(id, k)| (id.to_string(), k)));
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| configuration | runs | tx/s | tx/s range |"), "{text}");
    assert!(text.contains("× 2 rounds"), "{text}");
    // Every round ran each configuration once: the execution order (`sequence`) interleaves them.
    let mut order: Vec<(u64, u64)> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["sequence"].as_u64().unwrap(), r["repeat"].as_u64().unwrap()))
        .collect();
    order.sort();
    assert_eq!(
        order.iter().map(|(_, k)| *k).collect::<Vec<_>>(),
        [1, 1, 2, 2],
        "{order:?}"
    );
    assert!(
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["noise"]["cpus"].as_u64().is_some())
    );
    let wal_row = text.lines().find(|l| l.starts_with("| journal_mode=wal")).unwrap();
    assert!(
        wal_row.contains("| 2 |") && wal_row.contains(" ± ") && wal_row.contains("ok ×2"),
        "{wal_row}"
    );
    // The Markdown exported by `run` is what `report` renders from the saved JSON.
    bin().arg("report").arg(&out).assert().success().stdout(text);
}

#[test]
fn run_without_repeat_has_no_repeat_field() {
    let args: Vec<&str> = SHORT_WAL.iter().copied().chain(["-q"]).collect();
    let (_dir, report, _) = run_tiny(&args);
    assert!(report["runs"][0].get("repeat").is_none());
}

#[test]
fn run_rejects_an_unknown_baseline_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    bin()
        .arg("run")
        .arg(&scenario)
        .args(["--baseline", "journal_mode=truncate", "-o"])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("journal_mode=wal; journal_mode=delete"));
    assert!(!out.exists());
}

#[test]
fn report_renders_html_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.html");
    bin()
        .args([
            "report",
            "--format",
            "html",
            "--baseline",
            "journal_mode=delete,synchronous=full",
            "-o",
        ])
        .arg(&out)
        .arg(fixture())
        .assert()
        .success();
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<dt>Baseline</dt><dd><code>journal_mode=delete,synchronous=full</code></dd>"));
}

/// The chromium binary, or None (with the reason printed) when the test must be skipped.
fn chromium() -> Option<PathBuf> {
    let required = std::env::var("LITEHAMMER_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let candidates = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"];
    let found = std::env::var_os("LITEHAMMER_CHROMIUM").map(PathBuf::from).or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| candidates.map(|c| dir.join(c)))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required,
            "LITEHAMMER_REQUIRE_BROWSER=1 but no chromium found (install: apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED html_opens_in_a_headless_browser: no chromium on PATH (apt-get install chromium; CI sets LITEHAMMER_REQUIRE_BROWSER=1)"
        );
    }
    found
}

/// Loads a page in headless chromium; returns (DOM after scripts ran, browser log).
fn load_in_chromium(browser: &Path, page: &Path) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Read both pipes while waiting: a DOM dump or a log larger than a pipe's buffer (64 KiB)
    // would otherwise block chromium in write(2), and it would never exit.
    // (A helper process that outlived the browser could hold a pipe open: the reads are
    // waited for 10 s at most.)
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            let _ = tx.send(bytes);
        });
        rx
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = std::process::Output {
        status,
        stdout: stdout
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_default(),
        stderr: stderr
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_default(),
    };
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Renders `report` to HTML, loads it in Chromium, and checks the page ran without a
/// console message and its inline script finished. Returns the DOM.
fn render_and_load(browser: &Path, report: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    bin()
        .args(["report", "--format", "html", "-o"])
        .arg(&page)
        .arg(report)
        .assert()
        .success();
    let (dom, log) = load_in_chromium(browser, &page);
    // Any console message (an uncaught exception, a failed load) is logged as CONSOLE.
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages:\n{}", console.join("\n"));
    assert!(
        dom.contains("data-ready=\"ok\""),
        "the inline script did not finish: {dom}"
    );
    dom
}

#[test]
fn html_opens_in_a_headless_browser_without_console_errors() {
    let Some(browser) = chromium() else { return };
    let dom = render_and_load(&browser, &fixture());
    // Each chart is an SVG with data paths that have coordinates.
    let charts: Vec<&str> = dom.split("<svg class=\"chart\"").skip(1).collect();
    assert_eq!(charts.len(), 8, "2 throughput, 5 percentile, 1 errors chart");
    for chart in charts {
        let chart = &chart[..chart.find("</svg>").expect("svg closed")];
        let title = chart
            .split("<title>")
            .nth(1)
            .and_then(|t| t.split('<').next())
            .unwrap_or("?");
        let data_paths = chart.split("<path class=\"data ").skip(1);
        let drawn = data_paths
            .filter(|p| p.split(" d=\"").nth(1).is_some_and(|d| d.starts_with('M')))
            .count();
        assert!(drawn > 0, "chart `{title}` has no drawn data path");
    }
    assert!(dom.contains("id=\"no-timeline\""), "the timeline placeholder shows");
}

#[test]
fn crash_html_opens_in_a_headless_browser_without_console_errors() {
    let Some(browser) = chromium() else { return };
    let dom = render_and_load(&browser, &crash_fixture());
    assert_eq!(
        dom.matches("<svg class=\"chart\"").count(),
        1,
        "the durability chart only"
    );
    assert!(dom.contains("<th class=\"num\">trials losing acked</th>"));
}

/// The fixture with every group's throughput multiplied by `factor`.
fn scaled_fixture(factor: f64) -> Value {
    let mut report = read_json(&fixture());
    for run in report["runs"].as_array_mut().unwrap() {
        for group in run["groups"].as_array_mut().unwrap() {
            let tx = &mut group["transactions"]["throughput_per_s"];
            *tx = Value::from(tx.as_f64().unwrap() * factor);
        }
    }
    report
}

/// A report with two repeats of each configuration, at `factors` × the fixture's throughput.
fn repeated_fixture(factors: [f64; 2]) -> Value {
    let (first, second) = (scaled_fixture(factors[0]), scaled_fixture(factors[1]));
    let mut report = first.clone();
    let runs = report["runs"].as_array_mut().unwrap();
    runs.clear();
    for (a, b) in first["runs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(second["runs"].as_array().unwrap())
    {
        for (run, k) in [(a, 1), (b, 2)] {
            let mut run = run.clone();
            run["repeat"] = Value::from(k);
            runs.push(run);
        }
    }
    report
}

#[test]
fn compare_gates_on_a_throughput_drop() {
    let dir = tempfile::tempdir().unwrap();
    let slower = write(dir.path(), "slower.json", &scaled_fixture(0.8).to_string());
    let assert = bin()
        .arg("compare")
        .arg(fixture())
        .arg(&slower)
        .args(["--fail-if-slower", "10"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "throughput dropped by more than 10% in: journal_mode=wal,synchronous=normal writers",
        ));
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    let row = stdout
        .lines()
        .find(|l| l.starts_with("journal_mode=wal,synchronous=normal     writers"))
        .unwrap();
    assert!(row.contains("0.80×") && row.contains("20% slower — FAIL"), "{row}");
    // The same drop passes a looser gate, and a report compared with itself is all noise.
    bin()
        .arg("compare")
        .arg(fixture())
        .arg(&slower)
        .args(["--fail-if-slower", "25"])
        .assert()
        .success();
    bin()
        .arg("compare")
        .arg(fixture())
        .arg(fixture())
        .args(["--fail-if-slower", "1", "--markdown"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "| configuration | group | A tx/s | B tx/s | tx/s B/A |",
        ))
        .stdout(predicate::str::contains("| within noise |"));
}

#[test]
fn compare_uses_the_spread_of_repeats_for_noise() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &repeated_fixture([1.0, 1.3]).to_string());
    // Means 1.175 vs 1.15: inside A's range.
    let close = write(dir.path(), "close.json", &repeated_fixture([1.15, 1.2]).to_string());
    // Means 0.91 vs 1.15, ranges apart, but with two repeats varying by 30% Welch's t-test
    // cannot tell: not significant, and the gate does not fail on it.
    let apart = write(dir.path(), "apart.json", &repeated_fixture([0.9, 0.92]).to_string());
    let out = bin()
        .arg("compare")
        .arg(&a)
        .arg(&close)
        .arg(&apart)
        .args(["--fail-if-slower", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let sections: Vec<&str> = stdout.split("A = ").skip(1).collect();
    assert_eq!(sections.len(), 2, "{stdout}");
    let writers = |section: &str| -> String {
        section
            .lines()
            .find(|l| l.starts_with("journal_mode=wal,synchronous=normal     writers"))
            .unwrap()
            .to_string()
    };
    assert!(writers(sections[0]).contains("within noise"), "{}", sections[0]);
    assert!(writers(sections[0]).contains(" ± "), "repeats show mean ± stddev");
    assert!(
        writers(sections[1]).contains("(95 % interval includes no change)"),
        "{}",
        sections[1]
    );
    assert!(!writers(sections[1]).contains("FAIL"), "{}", sections[1]);
}

#[test]
fn compare_fails_on_a_significant_slowdown_of_tight_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &repeated_fixture([1.0, 1.01]).to_string());
    let same = write(dir.path(), "same.json", &repeated_fixture([1.005, 1.0]).to_string());
    let slower = write(dir.path(), "slower.json", &repeated_fixture([0.8, 0.81]).to_string());
    let out = compare_output(&a, &same, "5");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("within noise (95 % interval includes no change)"));
    let out = compare_output(&a, &slower, "5");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("20% slower (95 % interval excludes no change) — FAIL"),
        "{stdout}"
    );
    assert!(stdout.contains("0.80× [0."), "the ratio with its interval: {stdout}");
    // A drop whose interval reaches past the threshold does not fail: 20 % ± a lot, gate at 15 %.
    let wide = write(dir.path(), "wide.json", &repeated_fixture([0.65, 0.95]).to_string());
    let out = compare_output(&a, &wide, "15");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

/// `compare A B --fail-if-slower PCT`.
fn compare_output(a: &Path, b: &Path, pct: &str) -> std::process::Output {
    bin()
        .arg("compare")
        .arg(a)
        .arg(b)
        .args(["--fail-if-slower", pct])
        .output()
        .unwrap()
}

/// `compare` refuses reports measured on different set-ups (fingerprints) unless
/// `--allow-mismatch`, which warns instead.
#[test]
fn compare_refuses_mismatched_fingerprints_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let sha = "0".repeat(64);
    for (section, field, value) in [
        ("environment", "sqlite_version", "3.0.0"),
        ("environment", "kernel", "0.0-other"),
        ("environment", "filesystem", "tmpfs"),
        ("environment", "litehammer_version", "0.0.1"),
        ("scenario", "sha256", sha.as_str()),
    ] {
        let mut other = read_json(&fixture());
        other[section][field] = Value::from(value);
        let other = write(dir.path(), "other.json", &other.to_string());
        bin()
            .arg("compare")
            .arg(fixture())
            .arg(&other)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("different set-ups").and(predicate::str::contains(value)))
            .stderr(predicate::str::contains("--allow-mismatch"));
        bin()
            .arg("compare")
            .arg(fixture())
            .arg(&other)
            .arg("--allow-mismatch")
            .assert()
            .success()
            .stderr(predicate::str::contains("warning: --allow-mismatch"));
    }
}

#[test]
fn compare_rejects_bad_input_with_exit_2() {
    bin().arg("compare").arg(fixture()).assert().code(2);
    let dir = tempfile::tempdir().unwrap();
    let mut other = read_json(&fixture());
    for run in other["runs"].as_array_mut().unwrap() {
        run["id"] = Value::from(format!("x-{}", run["id"].as_str().unwrap()));
    }
    let other = write(dir.path(), "other.json", &other.to_string());
    bin()
        .arg("compare")
        .arg(fixture())
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no configuration has results in both reports"));
    bin()
        .arg("compare")
        .arg(fixture())
        .arg(fixture())
        .arg("--fail-if-slower=150")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "--fail-if-slower 150: expected a percentage between 0 and 100",
        ));
}

#[test]
fn durability_run_html_opens_in_a_headless_browser_with_the_decision_first() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("d.json");
    bin()
        .arg("run")
        .arg(&scenario)
        .args(["--duration", "200ms", "--warmup", "0s", "--no-probe", "-q"])
        .args(["--durability", "--trials", "1", "--db-dir"])
        .arg(dir.path())
        .arg("-o")
        .arg(&out)
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success();
    let dom = render_and_load(&browser, &out);
    let decision = dom.find("id=\"decision\"").expect("the decision section");
    let apply = dom.find("id=\"apply\"").expect("the apply-it section");
    let environment = dom.find("<h2>Environment</h2>").unwrap();
    assert!(decision < apply && apply < environment);
    assert!(dom.contains("<h2>Crash trials</h2>"));
    assert!(dom.contains("PRAGMA journal_mode="), "the PRAGMA snippet");
}

/// `run --rounds 3` on four configurations: each round runs every configuration once, in an
/// order shuffled by the seed (the same seed gives the same order), and the noise record and
/// the fsync probe after the runs are in the report.
#[test]
fn rounds_interleave_the_configurations_in_a_seeded_order() {
    let order = |seed: &str| {
        let args = [
            "--operations",
            "20",
            "--warmup",
            "0s",
            "--matrix",
            "journal_mode=wal,delete",
            "--matrix",
            "synchronous=normal,off",
            "--rounds",
            "3",
            "--seed",
            seed,
            "-q",
        ];
        let (_dir, report, _) = run_tiny(&args);
        assert!(
            report["environment"]["fsync_per_sec_after"].as_f64().is_some(),
            "{report}"
        );
        let mut runs: Vec<(u64, u64, String)> = report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let noise = &r["noise"];
                assert!(
                    noise["other_cpu_cores"].as_f64().is_some() && noise["load_avg_1m"].is_number(),
                    "{r}"
                );
                (
                    r["sequence"].as_u64().unwrap(),
                    r["repeat"].as_u64().unwrap(),
                    r["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        runs.sort();
        runs
    };
    let first = order("5");
    assert_eq!(
        first.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=12).collect::<Vec<_>>()
    );
    let rounds: Vec<Vec<&str>> = first
        .chunks(4)
        .map(|c| c.iter().map(|r| r.2.as_str()).collect())
        .collect();
    for (k, round) in rounds.iter().enumerate() {
        assert!(first[k * 4..k * 4 + 4].iter().all(|r| r.1 == k as u64 + 1), "{first:?}");
        let mut ids = round.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 4, "round {} runs each configuration once: {round:?}", k + 1);
    }
    let matrix = [
        "journal_mode=wal,synchronous=normal",
        "journal_mode=wal,synchronous=off",
        "journal_mode=delete,synchronous=normal",
        "journal_mode=delete,synchronous=off",
    ];
    assert!(rounds.iter().any(|r| r[..] != matrix[..]), "shuffled: {rounds:?}");
    assert_eq!(order("5"), first, "the same seed gives the same order");
}

/// The noise guard: a run measured on a busy machine (simulated with the test hook
/// `LITEHAMMER_FAULT=busy-machine`: every core recorded busy with other work) is marked
/// `noisy`, a warning comes above the verdict, and `--fail-on-noise` exits 1.
#[test]
fn a_busy_machine_is_warned_about_and_fails_with_fail_on_noise() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = dir.path().join("r.json");
    let run = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.env("LITEHAMMER_FAULT", "busy-machine")
            .arg("run")
            .arg(&scenario)
            .args(["--operations", "20", "--warmup", "0s", "--no-probe", "-q", "--db-dir"])
            .arg(dir.path())
            .arg("-o")
            .arg(&out)
            .args(extra);
        cmd.assert()
    };
    let ok = run(&[]).success();
    let stdout = String::from_utf8_lossy(&ok.get_output().stdout).to_string();
    let warning = stdout
        .find("warning: 2 of 2 runs were measured on a busy machine")
        .expect(&stdout);
    assert!(warning < stdout.find("verdict (").expect(&stdout), "{stdout}");
    assert!(stdout.contains("machine load: other processes up to"), "{stdout}");
    let report = read_json(&out);
    assert_schema_valid(&report);
    assert!(
        report["noise_warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("warning: 2 of 2 runs")
    );
    for r in report["runs"].as_array().unwrap() {
        let why = r["noise"]["noisy"][0].as_str().unwrap();
        assert!(why.starts_with("other processes used"), "{why}");
    }
    // Every view warns above its verdict and says the machine's load in its environment.
    let md = bin().arg("report").arg(&out).output().unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    let warning = md.find("> warning: 2 of 2 runs").expect(&md);
    assert!(warning < md.find("## Verdict").expect(&md), "{md}");
    assert!(md.contains("**Machine load**: other processes up to"), "{md}");
    let html = bin().args(["report", "--format", "html"]).arg(&out).output().unwrap();
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(html.contains("<p class=\"warning\">warning: 2 of 2 runs"), "{html}");
    run(&["--fail-on-noise"])
        .code(1)
        .stderr(predicate::str::contains("--fail-on-noise"));
}

/// With rounds, each progress line names its round (`id #k`), as the notes and the table do.
#[test]
fn progress_lines_name_their_round() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let out = bin()
        .arg("run")
        .arg(&scenario)
        .args([
            "--operations",
            "20",
            "--warmup",
            "0s",
            "--rounds",
            "2",
            "--no-probe",
            "-o",
        ])
        .arg(dir.path().join("r.json"))
        .arg("--db-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 4, "two configurations, two rounds: {stderr}");
    for k in 1..=2 {
        assert!(
            lines.iter().any(|l| l.contains(&format!(" #{k}: "))),
            "no progress line of round {k}:\n{stderr}"
        );
    }
}
