//! The engine simulator stays an engine to drover: the commands
//! `bench/scale` times (`up`, `diff`, `status`) run against three simulated
//! engines as against real ones, with real engines' latencies. Needs no
//! Docker.

use drover_testkit::binary::drover;
use drover_testkit::cli::Env;
use drover_testkit::sim::{SimConfig, Simulator};

#[test]
fn drover_up_diff_and_status_run_against_three_simulated_engines() {
    let dir = tempfile::Builder::new()
        .prefix("engsim")
        .tempdir_in("/tmp")
        .expect("temp dir");
    let sim =
        Simulator::start(SimConfig::new(3, dir.path().join("s"))).expect("start the simulator");
    let toml = format!(
        "name = \"simtest\"\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n[hosts.h3]\ndocker = \"{}\"\n",
        sim.address(1),
        sim.address(2),
        sim.address(3)
    );
    let env = Env::new(&drover())
        .file("drover.toml", &toml)
        .file(
            "jobs/web.toml",
            r#"
            image = "drover-test/busybox:1"
            hosts = ["h1", "h2", "h3"]
            instances = 2
            command = ["sleep", "3600"]
            stop_timeout = "1s"
            "#,
        )
        .file(
            "jobs/checked.toml",
            r#"
            image = "drover-test/busybox:1"
            hosts = ["h3"]
            command = ["sleep", "3600"]
            [health]
            cmd = ["true"]
            interval = "1s"
            timeout = "1s"
            retries = 3
            "#,
        );
    let cache = dir.path().join("cache");
    let cache = cache.to_string_lossy();

    env.drover(&["up", "--yes"])
        .stdout_has("Plan: 7 to create; 0 task(s) unchanged.")
        .stdout_has("Done: 7 step(s) applied.")
        .run();
    env.drover(&["diff"])
        .stdout("No changes: 7 task(s) as specified.\n")
        .run();
    let status = env
        .drover(&["status", "--json"])
        .env("XDG_CACHE_HOME", &cache)
        .run()
        .json();
    let rows = status.as_array().expect("status --json is an array");
    let tasks: Vec<String> = rows
        .iter()
        .map(|r| format!("{} {}/{}", r["job"], r["host"], r["task"]).replace('"', ""))
        .collect();
    assert_eq!(
        tasks,
        [
            "checked h3/0",
            "web h1/0",
            "web h1/1",
            "web h2/0",
            "web h2/1",
            "web h3/0",
            "web h3/1"
        ]
    );
    for row in rows {
        assert_eq!(row["state"], "running", "{row}");
        assert_eq!(row["image"], "drover-test/busybox:1", "{row}");
        assert_eq!(row["restarts"], 0, "{row}");
        assert!(row["memory_bytes"].as_u64().is_some_and(|m| m > 0), "{row}");
        assert!(
            row["cpu_percent"].as_f64().is_some_and(|c| c > 0.0),
            "{row}"
        );
        assert!(
            row["started_at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{row}"
        );
        let health = if row["job"] == "checked" {
            "healthy"
        } else {
            ""
        };
        assert_eq!(row["health"].as_str().unwrap_or_default(), health, "{row}");
    }
}
