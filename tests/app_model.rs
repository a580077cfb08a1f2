//! The application model (issue 15), end to end through the real binary: app time burns
//! CPU and think time does not, per-request connections, the queue, the anatomy, transaction
//! blocks, bad input, and the web-app scenarios' effects. No test asserts a timing.

mod common;

use common::*;
use serde_json::Value;

const HEAD: &str = r#"
name = "app"
operations = 120
warmup = "0s"
seed = 3

[sqlite]
journal_mode = "wal"
synchronous = "normal"

[setup]
sql = "CREATE TABLE s(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE c(id INTEGER PRIMARY KEY, v TEXT);"
populate = [{ table = "s", rows = 100, values = ["text(10)"] }]
"#;

const VIEW: &str = r#"
[[group.script]]
name = "view"
steps = [
  { sql = "SELECT v FROM s WHERE id = ?1", params = ["uniform(1, 100)"] },
  { begin = "immediate" },
  { sql = "UPDATE s SET v = ?2 WHERE id = ?1", params = ["uniform(1, 100)", "text(10)"] },
  { sql = "INSERT INTO c(v) VALUES (?1)", params = ["text(10)"] },
  { commit = true },
]
"#;

fn scenario(group: &str) -> String {
    format!("{HEAD}\n[[group]]\nname = \"web\"\ntransaction = \"none\"\n{group}\n{VIEW}")
}

fn run(text: &str, extra: &[&str]) -> Value {
    run_expecting(text, extra, 0)
}

/// `run`, expecting exit status `code` (1: a group committed nothing because of errors, #14).
fn run_expecting(text: &str, extra: &[&str], code: i32) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "app.toml", text);
    let out = dir.path().join("r.json");
    let output = bin()
        .arg("run")
        .arg(&path)
        .arg("--db-dir")
        .arg(dir.path())
        .arg("-o")
        .arg(&out)
        .args(["--quiet"])
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let report = read_json(&out);
    assert_schema_valid(&report);
    for run in report["runs"].as_array().unwrap() {
        assert_eq!(run["verification"]["ok"], true, "{}", run["verification"]);
    }
    report
}

fn web(run: &Value) -> &Value {
    &run["groups"][0]
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn cpu_per_request(g: &Value) -> f64 {
    let workers = g["per_worker"].as_array().unwrap();
    let cpu: f64 = workers.iter().map(|w| f(&w["cpu_ms"])).sum();
    let requests: f64 = workers.iter().map(|w| f(&w["transactions"])).sum();
    cpu / requests
}

#[test]
fn app_time_burns_the_workers_cpu_and_think_time_does_not() {
    let report = run(
        &scenario("workers = 1\napp_time = \"0ms\"\n"),
        &[
            "--matrix",
            "group.web.app_time=0ms,4ms",
            "--matrix",
            "group.web.think_time=0ms,4ms",
        ],
    );
    let runs = report["runs"].as_array().unwrap();
    let cpu: Vec<f64> = runs.iter().map(|r| cpu_per_request(web(r))).collect();
    let ids: Vec<&str> = runs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "group.web.app_time=0ms,group.web.think_time=0ms",
            "group.web.app_time=0ms,group.web.think_time=4ms",
            "group.web.app_time=4ms,group.web.think_time=0ms",
            "group.web.app_time=4ms,group.web.think_time=4ms",
        ]
    );
    // 4 ms of app time per request: at least a third of it shows up as CPU of the thread...
    assert!(cpu[2] > cpu[0] + 4.0 / 3.0, "{cpu:?}");
    assert!(cpu[3] > cpu[1] + 4.0 / 3.0, "{cpu:?}");
    // ...while 4 ms of think time (a sleep) adds less than half of that.
    assert!(cpu[1] < cpu[0] + 2.0 / 3.0, "{cpu:?}");
    for r in runs {
        let app = &web(r)["app"];
        assert_eq!(app["clients"], 1);
        assert!(app["queue_wait_us"]["max"].as_f64().unwrap() == 0.0, "{app}");
    }
    assert_eq!(web(&runs[1])["app"]["think_time"], "4ms");
    assert_eq!(web(&runs[2])["app"]["app_time"]["view"], "4ms");
}

#[test]
fn per_request_connections_open_one_connection_per_request() {
    let report = run(
        &scenario("workers = 2\n"),
        &["--matrix", "group.web.connection=per-request,persistent"],
    );
    let runs = report["runs"].as_array().unwrap();
    let (per_request, persistent) = (web(&runs[0]), web(&runs[1]));
    let requests = per_request["transactions"]["committed"].as_u64().unwrap()
        + per_request["transactions"]["rolled_back"].as_u64().unwrap();
    assert_eq!(requests, 120);
    assert_eq!(per_request["app"]["connection"], "per-request");
    assert_eq!(per_request["app"]["connections_opened"].as_u64().unwrap(), requests);
    assert!(f(&per_request["app"]["anatomy"]["mean_ms"]["connect"]) > 0.0);
    assert_eq!(persistent["app"]["connection"], "persistent");
    assert_eq!(persistent["app"]["connections_opened"], 0);
    assert_eq!(f(&persistent["app"]["anatomy"]["mean_ms"]["connect"]), 0.0);
}

#[test]
fn queue_wait_appears_only_when_clients_outnumber_workers() {
    let report = run(
        &scenario("workers = 2\napp_time = \"1ms\"\n"),
        &["--matrix", "group.web.clients=2,8"],
    );
    let runs = report["runs"].as_array().unwrap();
    let (equal, more) = (&web(&runs[0])["app"], &web(&runs[1])["app"]);
    assert_eq!(equal["clients"], 2);
    assert_eq!(f(&equal["queue_wait_us"]["max"]), 0.0, "{equal}");
    assert_eq!(f(&equal["anatomy"]["mean_ms"]["queue"]), 0.0);
    assert_eq!(more["clients"], 8);
    assert!(f(&more["queue_wait_us"]["mean"]) > 0.0, "{more}");
    assert!(f(&more["anatomy"]["mean_ms"]["queue"]) > 0.0);
}

/// `-c N` / `--clients N` (wrk's and oha's -c) gives every group N clients; 0 is refused
/// naming the flag.
#[test]
fn the_clients_flag_sets_every_groups_clients() {
    let report = run(&scenario("workers = 2\napp_time = \"1ms\"\n"), &["-c", "3"]);
    assert_eq!(web(&report["runs"][0])["app"]["clients"], 3);
    rejects_with("workers = 1\n", &["--clients", "0"], &["--clients"]);
}

#[test]
fn the_anatomy_adds_up_and_blocks_are_counted() {
    let report = run(
        &scenario("workers = 2\nclients = 4\napp_time = \"uniform(1ms, 2ms)\"\n"),
        &[],
    );
    let g = web(&report["runs"][0]);
    let a = &g["app"]["anatomy"];
    let parts = ["app", "queue", "lock", "execute", "commit", "connect"];
    let mean: f64 = parts.iter().map(|p| f(&a["mean_ms"][*p])).sum();
    let total = f(&a["total_mean_ms"]);
    assert!(
        (mean - total).abs() <= 1e-6 * total.max(1.0) + 1e-5,
        "{mean} vs {total}"
    );
    let share: f64 = parts.iter().map(|p| f(&a["p99_share"][*p])).sum();
    assert!((share - 1.0).abs() < 1e-6, "{share}");
    assert!(f(&a["mean_ms"]["app"]) > 0.0 && f(&a["mean_ms"]["commit"]) > 0.0, "{a}");
    // The mean of the transaction latency is the anatomy's total.
    let latency_mean_ms = f(&g["transactions"]["latency_us"]["mean"]) / 1000.0;
    assert!(
        (latency_mean_ms / total - 1.0).abs() < 0.01,
        "{latency_mean_ms} vs {total}"
    );
    let blocks = g["app"]["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0]["op"], "view");
    assert_eq!(blocks[0]["begin_step"], 1);
    assert_eq!(
        blocks[0]["committed"].as_u64().unwrap(),
        g["transactions"]["committed"].as_u64().unwrap()
    );
    // The block's inserts were acknowledged and verified.
    let v = &report["runs"][0]["verification"];
    assert_eq!(v["writes_acknowledged"].as_u64().unwrap(), 120, "{v}");
}

#[test]
fn a_failing_block_rolls_back_and_is_counted() {
    let text = format!(
        "{HEAD}\n[[group]]\nname = \"web\"\nworkers = 1\ntransaction = \"none\"\n\
         [[group.script]]\nname = \"dup\"\nsteps = [\n  {{ sql = \"BEGIN IMMEDIATE\" }},\n  \
         {{ sql = \"INSERT INTO c(v) VALUES ('x')\" }},\n  {{ sql = \"INSERT INTO s(id, v) VALUES (1, 'dup')\" }},\n  \
         {{ sql = \"COMMIT\" }},\n]\n"
    );
    // Every transaction fails with a constraint error: the run says so with exit 1 (#14).
    let report = run_expecting(&text, &[], 1);
    let g = web(&report["runs"][0]);
    assert_eq!(g["transactions"]["rolled_back"].as_u64().unwrap(), 120);
    let b = &g["app"]["blocks"][0];
    assert_eq!(b["rolled_back"].as_u64().unwrap(), 120);
    assert_eq!(b["errors"]["constraint"].as_u64().unwrap(), 120);
    // Rolled back: the first insert of every block is gone, and none was acknowledged.
    let v = &report["runs"][0]["verification"];
    assert_eq!(v["writes_acknowledged"], 0, "{v}");
}

fn rejects(group: &str, fragments: &[&str]) {
    rejects_with(group, &[], fragments);
}

/// `validate` of a scenario with `group` and the flags `args`: exit 2, naming each fragment.
fn rejects_with(group: &str, args: &[&str], fragments: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", &scenario(group));
    let out = bin().arg("validate").arg(&path).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "expected {f:?} in: {stderr}");
    }
}

#[test]
fn bad_application_model_input_is_exit_2_naming_the_key() {
    rejects("workers = 1\napp_time = \"fast\"\n", &["app_time", "fast"]);
    rejects("workers = 1\nclients = 0\n", &["clients", "nonzero"]);
    rejects("workers = 1\nisolation = \"fork\"\n", &["isolation", "fork"]);
    rejects(
        "workers = 1\napp_time = \"uniform(3ms)\"\n",
        &["app_time", "uniform takes 2"],
    );
    rejects("workers = 1\nthink_time = \"exp(soon)\"\n", &["think_time", "soon"]);
    rejects("workers = 1\nconnection = \"pooled\"\n", &["connection", "pooled"]);
    rejects(
        "workers = 2\nqueue = \"shared\"\n",
        &["queue", "isolation = \"process\""],
    );
    rejects(
        "workers = 2\nisolation = \"process\"\nqueue = \"fifo\"\n",
        &["queue", "fifo"],
    );
    rejects(
        "workers = 2\nisolation = \"process\"\nqueue = \"first-free\"\nrate = 50\n",
        &["queue", "first-free", "rate"],
    );
}

#[test]
fn bad_overrides_of_the_new_keys_name_the_flag() {
    for (set, fragment) in [
        ("group.web.clients=0", "nonzero"),
        ("group.web.isolation=fork", "fork"),
        ("group.web.queue=fifo", "fifo"),
        ("group.web.app_time=fast", "fast"),
        // A group's field named bare, as pgbench's -c: the key it lives under.
        ("clients=32", "use group.web.clients"),
    ] {
        rejects_with(
            "workers = 1\n",
            &["--set", set],
            &[set.split('=').next().unwrap(), fragment],
        );
    }
}

fn run_builtin(name: &str, extra: &[&str]) -> Value {
    run_builtin_out(name, extra).0
}

/// `run_builtin`, with the terminal output too.
fn run_builtin_out(name: &str, extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let output = bin()
        .args(["run", name, "--duration", "1s", "--warmup", "0s", "--quiet", "-o"])
        .arg(&out)
        .arg("--db-dir")
        .arg(dir.path())
        .args(extra)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_json(&out);
    assert_schema_valid(&report);
    for run in report["runs"].as_array().unwrap() {
        assert_eq!(run["verification"]["ok"], true, "{name}: {}", run["verification"]);
    }
    (report, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn django_serves_requests_on_per_request_connections_behind_a_queue() {
    let report = run_builtin("django", &["--matrix", "synchronous=normal", "--rounds", "1"]);
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for r in runs {
        let g = web(r);
        let app = &g["app"];
        let done =
            g["transactions"]["committed"].as_u64().unwrap() + g["transactions"]["rolled_back"].as_u64().unwrap();
        assert!(done > 0, "{}", r["id"]);
        assert_eq!(app["clients"], 16);
        assert_eq!(app["connection"], "per-request");
        assert_eq!(app["isolation"], "process");
        assert_eq!(app["pids"].as_array().unwrap().len(), 4);
        assert_eq!(app["connections_opened"].as_u64().unwrap(), done);
        assert!(f(&app["anatomy"]["mean_ms"]["app"]) > 0.0);
        // 16 clients for 4 workers: requests wait in the queue.
        assert!(f(&app["anatomy"]["mean_ms"]["queue"]) > 0.0);
        // The session save is a transaction block in every request.
        let blocks = app["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 2);
        let committed: u64 = blocks.iter().map(|b| b["committed"].as_u64().unwrap()).sum();
        assert_eq!(committed, g["transactions"]["committed"].as_u64().unwrap());
    }
}

#[test]
fn django_atomic_deferred_fails_to_upgrade_where_immediate_waits() {
    let report = run_builtin(
        "django-atomic",
        &["--matrix", "group.web.transaction=deferred,immediate"],
    );
    let runs = report["runs"].as_array().unwrap();
    let busy = |g: &Value| -> u64 {
        let e = |v: &Value| v["busy"].as_u64().unwrap() + v["busy_snapshot"].as_u64().unwrap();
        e(&g["transactions"]["errors"])
            + g["ops"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| e(&o["errors"]))
                .sum::<u64>()
    };
    let (deferred, immediate) = (web(&runs[0]), web(&runs[1]));
    assert_eq!(deferred["transaction"], "deferred");
    assert!(
        busy(deferred) > 0,
        "deferred read-then-write transactions must hit SQLITE_BUSY"
    );
    assert_eq!(busy(immediate), 0, "immediate transactions wait for the lock instead");
    assert!(immediate["transactions"]["committed"].as_u64().unwrap() > 0);
}

#[test]
fn rails_runs_threads_on_persistent_connections_with_immediate_blocks() {
    let report = run_builtin("rails", &[]);
    let g = web(&report["runs"][0]);
    let app = &g["app"];
    assert_eq!(app["isolation"], "thread");
    assert_eq!(app["connection"], "persistent");
    assert_eq!(app["connections_opened"], 0);
    assert_eq!(app["pids"].as_array().unwrap().len(), 1);
    let block = &app["blocks"][0];
    assert_eq!(block["op"], "create_comment");
    assert!(block["committed"].as_u64().unwrap() > 0);
    assert_eq!(report["runs"][0]["sqlite"]["journal_mode"], "wal");
    // Rails 8: the threads under the GVL, the busy handler releasing it (issue 29).
    assert_eq!(
        (&app["runtime"], &app["busy_wait"]),
        (&Value::from("gvl"), &Value::from("releases-lock"))
    );
    assert_eq!(app["interpreter"]["max_concurrent_app"], 1, "{app}");
}

#[test]
fn rails_7_0_holds_the_gvl_in_the_busy_handler_and_django_gthread_runs_under_the_gil() {
    let (report, stdout) = run_builtin_out("rails-7.0", &[]);
    assert!(stdout.contains("under the GVL, busy waits holding it"), "{stdout}");
    let g = web(&report["runs"][0]);
    assert_eq!(g["workers"], 5);
    let app = &g["app"];
    assert_eq!(
        (&app["runtime"], &app["busy_wait"]),
        (&Value::from("gvl"), &Value::from("holds-lock"))
    );
    assert_eq!(app["interpreter"]["app_slices_during_db_wait"], 0, "{app}");
    let report = run_builtin(
        "django-gthread",
        &[
            "--matrix",
            "journal_mode=wal",
            "--matrix",
            "synchronous=normal",
            "--rounds",
            "1",
        ],
    );
    let app = &web(&report["runs"][0])["app"];
    assert_eq!(
        (&app["runtime"], &app["isolation"]),
        (&Value::from("gil"), &Value::from("thread"))
    );
    assert_eq!(app["busy_wait"], "releases-lock");
    assert_eq!(app["interpreter"]["processes"], 1);
    assert_eq!(app["interpreter"]["max_concurrent_app"], 1, "{app}");
}

#[test]
fn process_workers_have_their_own_pids_and_their_results_merge_exactly() {
    let report = run(
        &scenario("workers = 3\nclients = 6\nisolation = \"process\"\napp_time = \"1ms\"\n"),
        &[],
    );
    let r = &report["runs"][0];
    let g = web(r);
    let app = &g["app"];
    assert_eq!(app["isolation"], "process");
    let workers = g["per_worker"].as_array().unwrap();
    let mut pids: Vec<u64> = workers.iter().map(|w| w["pid"].as_u64().unwrap()).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "{workers:?}");
    assert_eq!(app["pids"].as_array().unwrap().len(), 3);
    let driver_pid = r["groups"][0]["per_worker"][0]["pid"].as_u64().unwrap();
    assert!(driver_pid > 0);
    // Counts are the sums of the processes' parts.
    let committed = g["transactions"]["committed"].as_u64().unwrap();
    let per_worker: u64 = workers.iter().map(|w| w["transactions"].as_u64().unwrap()).sum();
    assert_eq!(committed, per_worker);
    assert_eq!(committed + g["transactions"]["rolled_back"].as_u64().unwrap(), 120);
    assert_eq!(g["ops"][0]["count"].as_u64().unwrap(), committed);
    assert_eq!(app["anatomy"]["requests"].as_u64().unwrap(), committed);
    assert_eq!(app["blocks"][0]["committed"].as_u64().unwrap(), committed);
    assert!(workers.iter().all(|w| w["cpu_ms"].as_f64().unwrap() > 0.0));
    // Every acknowledged insert of every process is in the database.
    let v = &r["verification"];
    assert_eq!(v["writes_acknowledged"].as_u64().unwrap(), committed, "{v}");
}

#[test]
fn ctrl_c_stops_process_workers_and_the_report_is_verified() {
    let dir = tempfile::tempdir().unwrap();
    let text = scenario("workers = 2\nisolation = \"process\"\napp_time = \"1ms\"\n")
        .replace("operations = 120", "duration = \"30s\"");
    let path = write(dir.path(), "app.toml", &text);
    let out = dir.path().join("r.json");
    let args = [
        "run".as_ref(),
        path.as_os_str(),
        "--db-dir".as_ref(),
        dir.path().as_os_str(),
        "--progress-interval".as_ref(),
        "0.5".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
    ];
    let mut child = interrupt_when(&args, |line| line.starts_with("  default"));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let report = read_json(&out);
    assert_schema_valid(&report);
    let run = &report["runs"][0];
    assert_eq!(run["status"], "interrupted");
    assert_eq!(run["verification"]["ok"], true);
    let g = &run["groups"][0];
    assert!(g["transactions"]["committed"].as_u64().unwrap() > 0);
    assert_eq!(g["app"]["pids"].as_array().unwrap().len(), 2);
}

/// A group of fast requests (no app time), so that even 5,000 clients cycle many times in a
/// short run and Little's law can be checked in a steady state.
const FAST: &str = r#"
name = "fast"
duration = "3s"
warmup = "1s"
seed = 5

[sqlite]
journal_mode = "wal"
synchronous = "normal"

[setup]
sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER NOT NULL);"
populate = [{ table = "t", rows = 100, values = ["uniform(0, 9)"] }]

[[group]]
name = "web"
workers = 4
transaction = "none"

[[group.script]]
name = "read"
weight = 9
steps = [{ sql = "SELECT v FROM t WHERE id = ?1", params = ["uniform(1, 100)"] }]

[[group.script]]
name = "bump"
weight = 1
steps = [{ sql = "UPDATE t SET v = v + 1 WHERE id = ?1", params = ["uniform(1, 100)"] }]
"#;

#[test]
fn a_shared_queue_feeds_every_worker_process_and_per_process_queues_keep_their_share() {
    // 4 processes and 2 clients, one queue per process: two processes have no client and
    // serve nothing (keep-alive connections stay where they were accepted).
    let report = run(
        &scenario("workers = 4\nclients = 2\nisolation = \"process\"\napp_time = \"1ms\"\n"),
        &["--duration", "1s", "--no-probe"],
    );
    let g = web(&report["runs"][0]);
    assert_eq!(g["app"]["queue"], "per-process");
    let idle = |g: &Value| {
        g["per_worker"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["transactions"].as_u64().unwrap() == 0)
            .count()
    };
    assert_eq!(idle(g), 2, "{}", g["per_worker"]);
    // 8 clients in one queue for all 4 processes (gunicorn's shared listening socket): more
    // clients than workers, so a request always waits when a process comes free, and every
    // process serves. The counts add up across the processes.
    let report = run(
        &scenario("workers = 4\nclients = 8\nisolation = \"process\"\nqueue = \"shared\"\napp_time = \"1ms\"\n"),
        &["--duration", "1s", "--no-probe"],
    );
    let g = web(&report["runs"][0]);
    assert_eq!(g["app"]["queue"], "shared");
    assert_eq!(g["app"]["clients"], 8);
    assert_eq!(idle(g), 0, "{}", g["per_worker"]);
    let per_worker: u64 = g["per_worker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["transactions"].as_u64().unwrap())
        .sum();
    assert_eq!(g["transactions"]["committed"].as_u64().unwrap(), per_worker);
    // Open loop through the shared queue: the arrivals are served, and verified.
    let report = run(
        &scenario("workers = 4\nisolation = \"process\"\nqueue = \"shared\"\napp_time = \"1ms\"\nrate = 200\n"),
        &["--duration", "1s", "--no-probe"],
    );
    let g = web(&report["runs"][0]);
    assert_eq!(g["app"]["queue"], "shared");
    assert!(g["transactions"]["committed"].as_u64().unwrap() > 0);
}

#[test]
fn first_free_queues_bind_each_client_to_one_process_and_say_how_many() {
    // 16 clients on 4 processes, each client staying with the process that took its first
    // request (Node's cluster, Puma): how many each process got depends on which came free
    // first, but every process gets one before any gets a second, they add up to the
    // clients, and the accounting holds. With keep-alive clients served inline (Puma) too:
    // the workers still come back for the clients nobody has bound yet.
    for extra in ["", "keep_alive_inline = 10\n"] {
        let report = run(
            &scenario(&format!(
                "workers = 4\nclients = 16\nisolation = \"process\"\nqueue = \"first-free\"\napp_time = \"1ms\"\n{extra}"
            )),
            &["--duration", "1s", "--no-probe"],
        );
        let app = &web(&report["runs"][0])["app"];
        assert_eq!(app["queue"], "first-free");
        let counts: Vec<u64> = app["clients_per_process"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        assert_eq!(counts.len(), 4, "{extra}{counts:?}");
        assert_eq!(counts.iter().sum::<u64>(), 16, "{extra}{counts:?}");
        assert!(counts.iter().all(|&c| c >= 1), "{extra}{counts:?}");
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "most first: {counts:?}");
        for i in app["invariants"].as_array().unwrap() {
            assert_eq!(i["ok"], Value::Bool(true), "{extra}{i}");
        }
        // Uneven on purpose: the verdict does not call the workers unfair.
        assert!(
            !report["verdict"].to_string().contains("unfair"),
            "{}",
            report["verdict"]
        );
    }
    // An even share (the default) lists nothing.
    let report = run(
        &scenario("workers = 2\nclients = 4\nisolation = \"process\"\napp_time = \"1ms\"\n"),
        &["--duration", "1s", "--no-probe"],
    );
    assert!(web(&report["runs"][0])["app"].get("clients_per_process").is_none());
}

#[test]
fn invariants_hold_for_threads_and_processes_at_16_500_and_5000_clients() {
    for isolation in ["thread", "process", "process-shared", "process-first-free"] {
        for clients in [16, 500, 5000] {
            let (isolation, queue) = match isolation.split_once('-') {
                Some((i, q)) => (i, q),
                None => (isolation, "per-process"),
            };
            let mut sets = vec![
                format!("group.web.clients={clients}"),
                format!("group.web.isolation={isolation}"),
            ];
            if isolation == "process" {
                sets.push(format!("group.web.queue={queue}"));
            }
            let mut args: Vec<&str> = sets.iter().flat_map(|s| ["--set", s.as_str()]).collect();
            args.push("--no-probe");
            let report = run(FAST, &args);
            let app = &web(&report["runs"][0])["app"];
            let what = format!("{isolation} ({queue}) × {clients}: {}", app["invariants"]);
            assert_eq!(app["clients"], clients, "{what}");
            let invariants = app["invariants"].as_array().unwrap();
            let names: Vec<&str> = invariants.iter().map(|i| i["name"].as_str().unwrap()).collect();
            assert_eq!(
                names,
                ["littles_law", "anatomy_adds_up", "errors_match_rolled_back"],
                "{what}"
            );
            for i in invariants {
                // Never violated. Always checked, but for one documented reason that depends on
                // the machine, not on the accounting: on a loaded machine the latency of
                // thousands of clients can grow until a request in flight at an edge of the
                // 3 s phase is more than 10 % of it, and Little's law is then not checked (the
                // run says "run longer"). At 16 clients it is always checked.
                assert_eq!(i["ok"], Value::Bool(true), "{what}");
                let tail = i["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("the tail is too long for the run");
                assert!(
                    i["checked"] == Value::Bool(true) || (clients >= 500 && i["name"] == "littles_law" && tail),
                    "{what}"
                );
            }
            // The queue holds the clients that are not being served (issue 29: with
            // processes it used to vanish): the mean queue wait is most of the latency.
            if clients >= 500 {
                assert!(
                    f(&app["queue_wait_us"]["mean"]) / 1000.0 > 0.5 * f(&app["mean_latency_ms"]),
                    "{what}: {}",
                    app["queue_wait_us"]
                );
            }
        }
    }
}

#[test]
fn a_failed_request_is_counted_once_in_the_transactions() {
    // Every request fails (a duplicate key): each failure is counted once, by kind, in the
    // group's transactions as under its op, and matches what was rolled back (issue 29).
    let text = format!(
        "{HEAD}\n[[group]]\nname = \"web\"\nworkers = 2\nclients = 4\ntransaction = \"none\"\n\
         [[group.script]]\nname = \"dup\"\nsteps = [\n  {{ begin = \"immediate\" }},\n  \
         {{ sql = \"INSERT INTO s(id, v) VALUES (1, 'dup')\" }},\n  {{ commit = true }},\n]\n"
    );
    let report = run_expecting(&text, &[], 1);
    let g = web(&report["runs"][0]);
    let tx = &g["transactions"];
    assert_eq!(tx["rolled_back"].as_u64().unwrap(), 120);
    assert_eq!(tx["errors"]["constraint"].as_u64().unwrap(), 120, "{tx}");
    let errors = g["app"]["invariants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "errors_match_rolled_back")
        .unwrap();
    assert_eq!(errors["ok"], true, "{errors}");
}
