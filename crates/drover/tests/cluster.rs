//! diff / up / down / status through the real binary, against the suite's
//! real Docker engines h1 and h2 (see `scripts/test-hosts`).
//!
//! Tests run in parallel on the same engines: each has its own environment
//! name and its own ports (hosts share a network namespace across tests).

mod support;

use serde_json::Value;
use support::{cluster, Cluster, Output};

const IMAGE1: &str = "drover-test/busybox:1";

/// A web job served by busybox httpd, one port per task: `port + task`.
fn web(hosts: &str, instances: u32, port: u16) -> String {
    format!(
        r#"
        image = "{IMAGE1}"
        hosts = [{hosts}]
        instances = {instances}
        command = ["sh", "-c", "exec httpd -f -p $(({port} + DROVER_TASK)) -h /www"]
        env = {{ GREETING = "hello" }}
        memory = "64m"
        stop_timeout = "5s"
        "#
    )
}

fn sleeper(hosts: &str) -> String {
    format!(
        r#"
        image = "{IMAGE1}"
        hosts = [{hosts}]
        command = ["sleep", "3600"]
        stop_timeout = "1s"
        "#
    )
}

/// `(job, host, task, action)` of every change in `diff --json`, sorted.
fn changes(run: &Output) -> Vec<(String, String, i64, String)> {
    let json = run.json();
    let mut list: Vec<_> = json["changes"]
        .as_array()
        .expect("changes array")
        .iter()
        .map(|c| {
            (
                c["job"].as_str().unwrap_or_default().to_string(),
                c["host"].as_str().unwrap_or_default().to_string(),
                c["task"].as_i64().unwrap_or(-1),
                c["action"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    list.sort();
    list
}

fn change(job: &str, host: &str, task: i64, action: &str) -> (String, String, i64, String) {
    (job.to_string(), host.to_string(), task, action.to_string())
}

fn ids(c: &Cluster, host: &str) -> String {
    c.docker(
        host,
        &[
            "ps",
            "-aq",
            "--no-trunc",
            "--filter",
            &format!("label=drover.env={}", c.env),
        ],
    )
}

#[test]
fn up_converges_and_a_second_up_changes_nothing() {
    let c = cluster("t-converge", "")
        .job("web", &web("\"h1\", \"h2\"", 2, 21000))
        .job("worker", &sleeper("\"h1\""));

    c.drover(&["diff"])
        .status(2)
        .stdout_has("Plan: 5 to create; 0 task(s) unchanged.")
        .run();
    c.drover(&["up", "--yes"])
        .stdout_has("Done: 5 step(s) applied.")
        .run();

    assert_eq!(
        c.containers("h1"),
        [
            "t-converge.web.h1.0",
            "t-converge.web.h1.1",
            "t-converge.worker.h1.0"
        ]
    );
    assert_eq!(
        c.containers("h2"),
        ["t-converge.web.h2.0", "t-converge.web.h2.1"]
    );
    // Both tasks on a host serve, each on its own port; hosts are separate machines.
    assert_eq!(
        c.http_get("h1", 21001).as_deref(),
        Some("<html><body>drover-test fixture 1</body></html>\n")
    );
    assert!(c.http_get("h2", 21000).is_some());

    let before = ids(&c, "h1");
    c.drover(&["up", "--yes"])
        .stdout("No changes: 5 task(s) as specified.\n")
        .run();
    c.drover(&["diff"])
        .stdout("No changes: 5 task(s) as specified.\n")
        .run();
    assert_eq!(before, ids(&c, "h1"), "a second up recreates nothing");
}

#[test]
fn containers_carry_labels_and_the_pitfall_guards() {
    let c = cluster("t-guards", "").job("web", &web("\"h2\"", 1, 21100));
    c.drover(&["up", "--yes"]).run();
    let name = "t-guards.web.h2.0";
    let labels: Value =
        serde_json::from_str(&c.inspect("h2", name, "{{json .Config.Labels}}")).unwrap();
    assert_eq!(labels["drover.env"], "t-guards");
    assert_eq!(labels["drover.job"], "web");
    assert_eq!(labels["drover.host"], "h2");
    assert_eq!(labels["drover.task"], "0");
    assert_eq!(labels["drover.spec"].as_str().map(str::len), Some(12));
    assert_eq!(labels["drover.command"], "up");
    assert!(
        labels["drover.deployed_by"]
            .as_str()
            .unwrap_or_default()
            .contains('@'),
        "{labels}"
    );

    assert_eq!(c.inspect("h2", name, "{{.HostConfig.NetworkMode}}"), "host");
    assert_eq!(c.inspect("h2", name, "{{.HostConfig.Init}}"), "true");
    assert_eq!(
        c.inspect("h2", name, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    assert_eq!(
        c.inspect(
            "h2",
            name,
            "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}"
        ),
        r#"local {"max-file":"5","max-size":"20m"}"#
    );
    assert_eq!(
        c.inspect(
            "h2",
            name,
            "{{range .HostConfig.Mounts}}{{.Source}}:{{.Target}}:{{.ReadOnly}} {{end}}"
        ),
        "/etc/localtime:/etc/localtime:true"
    );
    assert_eq!(c.inspect("h2", name, "{{.Config.StopTimeout}}"), "5");
    assert_eq!(
        c.inspect(
            "h2",
            name,
            "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}"
        ),
        format!("{0} {0}", 64 << 20),
        "memory, and no swap beyond it"
    );
    let env = c.inspect("h2", name, "{{json .Config.Env}}");
    for var in [
        "GREETING=hello",
        "DROVER_ENV=t-guards",
        "DROVER_JOB=web",
        "DROVER_HOST=h2",
        "DROVER_TASK=0",
    ] {
        assert!(env.contains(var), "{var} missing from {env}");
    }
    // PID 1 is the init process, which reaps zombies.
    let pid1 = c.docker("h2", &["exec", name, "cat", "/proc/1/cmdline"]);
    assert!(
        pid1.contains("docker-init") || pid1.contains("tini"),
        "PID 1 is {pid1:?}"
    );
}

#[test]
fn diff_sees_changes_made_by_hand_and_up_repairs_them() {
    let c = cluster("t-drift", "")
        .job("web", &web("\"h1\"", 3, 21200))
        .job("worker", &sleeper("\"h2\""));
    c.drover(&["up", "--yes"]).run();

    c.docker("h1", &["stop", "-t", "1", "t-drift.web.h1.0"]);
    c.docker(
        "h1",
        &[
            "update",
            "--memory",
            "128m",
            "--memory-swap",
            "256m",
            "t-drift.web.h1.1",
        ],
    );
    c.docker("h1", &["rm", "-f", "t-drift.web.h1.2"]);
    // A drover container of this environment that no job claims.
    c.docker(
        "h2",
        &[
            "run",
            "-d",
            "--name",
            "t-drift.ghost.h2.0",
            "--label",
            "drover.env=t-drift",
            "--label",
            "drover.job=ghost",
            "--label",
            "drover.host=h2",
            "--label",
            "drover.task=0",
            IMAGE1,
            "sleep",
            "3600",
        ],
    );

    let run = c.drover(&["diff", "--json"]).status(2).run();
    assert_eq!(
        changes(&run),
        [
            change("ghost", "h2", 0, "remove"),
            change("web", "h1", 0, "start"),
            change("web", "h1", 1, "replace"),
            change("web", "h1", 2, "create")
        ]
    );
    let json = run.json();
    let replaced = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["action"] == "replace")
        .unwrap();
    assert_eq!(
        replaced["fields"],
        serde_json::json!([{"path": "memory", "old": "128m", "new": "64m"}, {"path": "memory_swap", "old": "256m", "new": "64m"}])
    );

    c.drover(&["diff"])
        .status(2)
        .stdout_has("~ replace web h1/1  (")
        .stdout_has(", changed on the host)\n    memory: \"128m\" => \"64m\"\n    memory_swap: \"256m\" => \"64m\"\n")
        .stdout_has("> start   web h1/0  (")
        .stdout_has(", exited (code 143)")
        .stdout_has("- remove  ghost h2/0  (")
        .run();

    // Scoped to a job, other jobs' leftovers are not touched.
    let scoped = c.drover(&["diff", "--json", "worker"]).run();
    assert_eq!(changes(&scoped), []);

    c.drover(&["up", "--yes"]).any_stderr().run();
    c.drover(&["diff"])
        .stdout("No changes: 4 task(s) as specified.\n")
        .run();
    assert_eq!(c.containers("h2"), ["t-drift.worker.h2.0"]);
    assert_eq!(
        c.inspect("h1", "t-drift.web.h1.1", "{{.HostConfig.Memory}}"),
        (64 << 20).to_string()
    );
    assert_eq!(
        c.inspect("h1", "t-drift.web.h1.0", "{{.State.Status}}"),
        "running"
    );
}

#[test]
fn a_tag_that_moved_to_another_image_is_replaced() {
    let c = cluster("t-tagmove", "").job(
        "app",
        r#"
        image = "drover-test/tagmove:live"
        hosts = ["h1"]
        command = ["sleep", "3600"]
        stop_timeout = "1s"
        "#,
    );
    c.docker(
        "h1",
        &["tag", "drover-test/busybox:1", "drover-test/tagmove:live"],
    );
    c.drover(&["up", "--yes"]).run();
    let v1 = c.docker(
        "h1",
        &["image", "inspect", "-f", "{{.Id}}", "drover-test/busybox:1"],
    );
    let v2 = c.docker(
        "h1",
        &["image", "inspect", "-f", "{{.Id}}", "drover-test/busybox:2"],
    );
    assert_eq!(c.inspect("h1", "t-tagmove.app.h1.0", "{{.Image}}"), v1);

    c.docker(
        "h1",
        &["tag", "drover-test/busybox:2", "drover-test/tagmove:live"],
    );
    c.drover(&["diff"])
        .status(2)
        .stdout_has("tag now names another image")
        .stdout_has(&format!(
            "image_id: \"{}\" => \"{}\"",
            &v1[7..19],
            &v2[7..19]
        ))
        .run();
    c.drover(&["up", "--yes"]).run();
    assert_eq!(c.inspect("h1", "t-tagmove.app.h1.0", "{{.Image}}"), v2);
    c.drover(&["diff"]).stdout_has("No changes").run();
}

#[test]
fn up_pulls_missing_images_from_the_registry_first() {
    let c = cluster("t-pull", "");
    // A tag no host has: pushed from the root engine to the registry just now.
    let reference = format!(
        "{}/drover-test/busybox:pull-{}",
        c.hosts.registry,
        std::process::id()
    );
    let local = drover_testkit::hosts::docker_local;
    local(&["tag", "drover-test/busybox:2", &reference]);
    local(&["push", &reference]);
    local(&["rmi", &reference]);

    let c = c.job("app", &format!("image = \"{reference}\"\nhosts = [\"h1\", \"h2\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    c.drover(&["diff"])
        .status(2)
        .stdout_has(&format!(
            "↓ pull    {reference} on h1\n↓ pull    {reference} on h2\n"
        ))
        .run();
    c.drover(&["up", "--yes"])
        .stdout_has(&format!(" h1: pulled {reference}\n"))
        .run();
    for host in ["h1", "h2"] {
        assert_eq!(
            c.inspect(host, &format!("t-pull.app.{host}.0"), "{{.State.Status}}"),
            "running"
        );
        let _ = c.docker_raw(host, &["rm", "-f", &format!("t-pull.app.{host}.0")]);
        let _ = c.docker_raw(host, &["rmi", &reference]);
    }
}

#[test]
fn down_removes_containers_and_keeps_host_directories() {
    let data = tempfile::tempdir().unwrap();
    let host_dir = data.path().join("created-by-up");
    let c = cluster("t-down", "")
        .job(
            "store",
            &format!(
                r#"
                image = "{IMAGE1}"
                hosts = ["h1", "h2"]
                volumes = ["{}:/data"]
                command = ["sh", "-c", "echo kept > /data/$DROVER_HOST && exec sleep 3600"]
                stop_timeout = "1s"
                "#,
                host_dir.display()
            ),
        )
        .job("other", &sleeper("\"h1\""));
    c.drover(&["up", "--yes"]).run();
    for _ in 0..50 {
        if host_dir.join("h1").exists() && host_dir.join("h2").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::read_to_string(host_dir.join("h1")).unwrap(),
        "kept\n",
        "up created the host directory"
    );

    c.drover(&["down", "store", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert_eq!(c.containers("h1"), ["t-down.other.h1.0"]);
    assert_eq!(c.containers("h2"), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(host_dir.join("h2")).unwrap(),
        "kept\n",
        "host data stays"
    );
    // down again: nothing to do, still success
    c.drover(&["down", "store", "--yes"])
        .stdout_has("No changes")
        .run();
}

#[test]
fn an_unreachable_host_is_named_and_the_others_still_get_their_work() {
    let c = cluster(
        "t-unreach",
        "[hosts.dead]\ndocker = \"unix:///tmp/drover-no-such-engine.sock\"\n",
    )
    .job("app", &sleeper("\"h1\", \"dead\""));
    c.drover(&["up", "--yes"])
        .status(1)
        .stdout_has("! host dead (unix:///tmp/drover-no-such-engine.sock) is unreachable: no socket at /tmp/drover-no-such-engine.sock\n")
        .stderr("1 done (of 1 step(s)); 1 host(s) unreachable\n")
        .run();
    assert_eq!(c.containers("h1"), ["t-unreach.app.h1.0"]);

    c.drover(&["diff"])
        .status(1)
        .stdout_has("host dead (unix:///tmp/drover-no-such-engine.sock) is unreachable")
        .run();
    let status = c.drover(&["status", "--json"]).status(1).stderr("host dead (unix:///tmp/drover-no-such-engine.sock) is unreachable: no socket at /tmp/drover-no-such-engine.sock\n").run();
    let rows = status.json();
    let states: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("dead", "unreachable"), ("h1", "running")]);
}

#[test]
fn status_shows_every_task_with_memory_and_cpu() {
    let c = cluster("t-status", "").job("web", &web("\"h1\", \"h2\"", 1, 21300));
    c.drover(&["up", "--yes"]).run();
    c.docker("h2", &["rm", "-f", "t-status.web.h2.0"]);

    let run = c.drover(&["status", "--json"]).run();
    let rows = run.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let h1 = &rows[0];
    for key in [
        "job",
        "host",
        "task",
        "container",
        "image",
        "state",
        "health",
        "started_at",
        "restarts",
        "memory_bytes",
        "cpu_percent",
        "exit_code",
        "oom_killed",
        "restart_loop",
    ] {
        assert!(h1.get(key).is_some(), "status row lacks {key}: {h1}");
    }
    assert_eq!(
        (h1["job"].as_str(), h1["host"].as_str(), h1["task"].as_u64()),
        (Some("web"), Some("h1"), Some(0))
    );
    assert_eq!(h1["state"], "running");
    assert_eq!(h1["image"], IMAGE1);
    assert!(h1["memory_bytes"].as_u64().unwrap() > 0, "{h1}");
    assert!(h1["cpu_percent"].as_f64().is_some(), "{h1}");
    assert_eq!(rows[1]["state"], "missing");
    assert_eq!(rows[1]["host"], "h2");

    c.drover(&["status"])
        .stdout_has("TASK      CONTAINER     IMAGE                  STATE    HEALTH  UPTIME  RESTARTS  MEMORY")
        .stdout_has("\nweb h2/0  -             -                      missing  -       -       -         -         -     -\n")
        .run();
}

/// `status` measures CPU from the sample its last run held: a second run
/// within a minute asks the engine for one sample per container instead of
/// two (one collector tick instead of two), and a busy container still shows
/// its load. Without a usable cache it takes two, and works the same.
#[test]
fn a_second_status_takes_one_sample_per_container() {
    let proxy =
        drover_testkit::proxy::CountingProxy::start(&drover_testkit::hosts::Hosts::get().h1);
    let extra = format!("[hosts.via]\ndocker = \"{}\"\n", proxy.address());
    let c = cluster("t-held", &extra)
        .job(
            "busy",
            &format!(
                "image = \"{IMAGE1}\"\nhosts = [\"via\"]\ncommand = [\"sh\", \"-c\", \"while :; do :; done\"]\nstop_timeout = \"1s\"\n"
            ),
        )
        .job(
            "idle",
            &format!(
                "image = \"{IMAGE1}\"\nhosts = [\"via\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"
            ),
        );
    c.drover(&["up", "--yes"]).run();
    let cache = tempfile::tempdir().unwrap();
    let status = |cache_dir: &str| {
        proxy.reset();
        let rows = c
            .drover(&["status", "--json"])
            .env("XDG_CACHE_HOME", cache_dir)
            .run()
            .json();
        let samples = proxy
            .requests()
            .iter()
            .filter(|r| r.contains("/stats?"))
            .count();
        let cpu = |job: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .find(|r| r["job"] == job)
                .and_then(|r| r["cpu_percent"].as_f64())
                .unwrap_or_else(|| panic!("no CPU for {job}: {rows:#}"))
        };
        (samples, cpu("busy"), cpu("idle"))
    };
    let cache_dir = cache.path().to_str().unwrap();
    let (samples, busy, idle) = status(cache_dir);
    assert_eq!(samples, 4, "two samples of each container on a first run");
    // A spinning loop gets what the machine spares it; a sleeping one
    // nothing: the two must be told apart, whatever the load.
    assert!(busy > 1.0 && idle < 1.0, "busy {busy}%, idle {idle}%");
    assert!(cache.path().join("drover/usage.json").is_file());

    let (samples, busy, idle) = status(cache_dir);
    assert_eq!(
        samples, 2,
        "one sample of each container, measured from the held one"
    );
    // A spinning loop gets what the machine spares it; a sleeping one
    // nothing: the two must be told apart, whatever the load.
    assert!(busy > 1.0 && idle < 1.0, "busy {busy}%, idle {idle}%");

    // A cache that cannot be written costs a tick, nothing else.
    let (samples, busy, _) = status("/proc/drover-no-cache");
    assert_eq!(samples, 4);
    assert!(busy > 10.0, "busy {busy}%");
}

#[test]
fn secrets_come_from_the_operator_and_are_never_printed() {
    let c = cluster("t-secret", "").job(
        "app",
        r#"
        image = "drover-test/busybox:1"
        hosts = ["h1"]
        command = ["sleep", "3600"]
        secret_env = ["DB_PASSWORD"]
        stop_timeout = "1s"
        "#,
    );
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr("error: jobs/app.toml:4:15: job app: secret DB_PASSWORD has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export DB_PASSWORD=... or add the line DB_PASSWORD=... to secrets.env\n")
        .run();
    assert_eq!(c.containers("h1"), Vec::<String>::new());

    c.drover(&["diff"])
        .env("DB_PASSWORD", "hunter2")
        .status(2)
        .stdout_has("env.DB_PASSWORD: \"***\"")
        .stdout_lacks("hunter2")
        .run();
    c.drover(&["up", "--yes"])
        .env("DB_PASSWORD", "hunter2")
        .stdout_lacks("hunter2")
        .run();
    assert!(c
        .inspect("h1", "t-secret.app.h1.0", "{{json .Config.Env}}")
        .contains("DB_PASSWORD=hunter2"));

    // From the secrets file beside drover.toml, when the environment lacks it.
    std::fs::write(c.path().join("secrets.env"), "DB_PASSWORD=correct-horse\n").unwrap();
    for args in [&["diff"][..], &["diff", "--json"][..]] {
        c.drover(args)
            .status(2)
            .stdout_lacks("hunter2")
            .stdout_lacks("correct-horse")
            .stdout_has("\"***\"")
            .run();
    }
    c.drover(&["diff"])
        .status(2)
        .stdout_has("env.DB_PASSWORD: \"***\" => \"***\"")
        .run();
    c.drover(&["up", "--yes"])
        .stdout_lacks("correct-horse")
        .run();
    assert!(c
        .inspect("h1", "t-secret.app.h1.0", "{{json .Config.Env}}")
        .contains("DB_PASSWORD=correct-horse"));

    // A secret dropped from the spec stays masked while its container still has it.
    c.set_job("app", "image = \"drover-test/busybox:1\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n");
    c.drover(&["diff"])
        .status(2)
        .stdout_has("env.DB_PASSWORD: \"***\" => (none)")
        .stdout_lacks("correct-horse")
        .run();
}

#[test]
fn a_missing_host_file_names_host_and_path() {
    let c = cluster("t-hostfile", "").job(
        "app",
        r#"
        image = "drover-test/busybox:1"
        hosts = ["h1"]
        command = ["sleep", "3600"]
        host_files = ["/etc/localtime", "/etc/drover-test-no-such-file"]
        "#,
    );
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr_has(&format!("FAILED app h1/0 (create): host file /etc/drover-test-no-such-file does not exist on host h1 ({}): create it there or drop it from host_files\n", c.hosts.h1))
        .run();
    assert_eq!(
        c.containers("h1"),
        Vec::<String>::new(),
        "nothing left behind"
    );
}

#[test]
fn a_replacement_that_cannot_start_leaves_the_previous_version_running() {
    let c = cluster("t-rollback", "").job("web", &web("\"h1\"", 1, 21400));
    c.drover(&["up", "--yes"]).run();
    let old_id = c.inspect("h1", "t-rollback.web.h1.0", "{{.Id}}");

    c.set_job(
        "web",
        &web("\"h1\"", 1, 21400).replace(
            "command = [\"sh\", \"-c\"",
            "command = [\"/no/such/binary\", \"-c\"",
        ),
    );
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr_has("FAILED web h1/0 (replace): the new container failed: ")
        .stderr_has("; the previous container runs again; it is kept stopped as t-rollback.web.h1.0.failed for its logs\n  its last log lines:\n")
        .stderr_has("/no/such/binary")
        .run();
    assert_eq!(
        c.containers("h1"),
        ["t-rollback.web.h1.0", "t-rollback.web.h1.0.failed"],
        "the failed new container gave the task its name back and is kept aside"
    );
    assert_eq!(
        c.inspect("h1", "t-rollback.web.h1.0.failed", "{{.State.Status}}"),
        "exited"
    );
    assert_eq!(c.inspect("h1", "t-rollback.web.h1.0", "{{.Id}}"), old_id);
    assert_eq!(
        c.inspect("h1", "t-rollback.web.h1.0", "{{.State.Status}}"),
        "running"
    );
    assert!(
        c.http_get("h1", 21400).is_some(),
        "the previous version still serves"
    );
    c.drover(&["diff"])
        .status(2)
        .stdout_has("~ replace web h1/0")
        .run();
}

#[test]
fn without_a_terminal_changes_need_yes() {
    let c = cluster("t-confirm", "").job("app", &sleeper("\"h1\""));
    c.drover(&["up"]).status(1).stderr("error: not changing anything without confirmation: there is no terminal to ask on; pass --yes\n").run();
    assert_eq!(c.containers("h1"), Vec::<String>::new());
}

#[test]
fn host_flag_restricts_the_work() {
    let c = cluster("t-hostflag", "").job("app", &sleeper("\"h1\", \"h2\""));
    c.drover(&["--host", "h2", "up", "--yes"]).run();
    assert_eq!(c.containers("h1"), Vec::<String>::new());
    assert_eq!(c.containers("h2"), ["t-hostflag.app.h2.0"]);
    c.drover(&["--host", "h2", "diff"])
        .stdout_has("No changes")
        .run();
    c.drover(&["diff"]).status(2).run();
}

#[test]
fn fewer_instances_and_removed_jobs_are_removed() {
    let c = cluster("t-shrink", "")
        .job("web", &web("\"h1\"", 2, 21500))
        .job("old", &sleeper("\"h2\""));
    c.drover(&["up", "--yes"]).run();

    c.remove_job("old");
    c.set_job("web", &web("\"h1\"", 1, 21500));
    let run = c.drover(&["diff", "--json"]).status(2).run();
    assert_eq!(
        changes(&run),
        [
            change("old", "h2", 0, "remove"),
            change("web", "h1", 1, "remove")
        ]
    );
    c.drover(&["up", "--yes"]).run();
    assert_eq!(c.containers("h1"), ["t-shrink.web.h1.0"]);
    assert_eq!(c.containers("h2"), Vec::<String>::new());
}

#[test]
fn hosts_over_plain_tcp() {
    // h1's engine, also offered on a loopback TCP port (as `dockerd -H tcp://…` would).
    let hosts = drover_testkit::hosts::Hosts::get();
    let socket = hosts.h1.trim_start_matches("unix://").to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut socat = std::process::Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg(format!("UNIX-CONNECT:{socket}"))
        .spawn()
        .expect("run socat");
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _socat = Kill(&mut socat);
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let extra = format!("[hosts.tcp1]\ndocker = \"tcp://127.0.0.1:{port}\"\n");
    let c = cluster("t-tcp", &extra).job("app", &sleeper("\"tcp1\""));
    c.drover(&["up", "--yes", "app"]).run();
    assert_eq!(
        c.containers("h1"),
        ["t-tcp.app.tcp1.0"],
        "tcp1 is h1's engine"
    );
    c.drover(&["diff", "app"]).stdout_has("No changes").run();
    let status = c.drover(&["status", "--json", "app"]).run();
    assert_eq!(status.json()[0]["state"], "running");

    // A host that refuses connections is named, with its address.
    c.file("drover.toml", &format!("name = \"t-tcp\"\n[hosts.tcp1]\ndocker = \"tcp://127.0.0.1:{port}\"\n[hosts.refused]\ndocker = \"tcp://127.0.0.1:1\"\n"))
        .drover(&["diff"])
        .status(1)
        .stdout("! host refused (tcp://127.0.0.1:1) is unreachable: Connection refused\nNo changes: 1 task(s) as specified.\n")
        .run();
}

/// Refused as `validate` refuses it, with its place, before any host is asked.
#[test]
fn plain_tcp_to_another_machine_is_refused_without_insecure() {
    let c = cluster(
        "t-insecure",
        "[hosts.far]\ndocker = \"tcp://192.0.2.1:2375\"\n",
    )
    .job("app", &sleeper("\"far\""));
    for command in ["validate", "diff"] {
        c.drover(&[command])
            .status(1)
            .stderr("error: drover.toml:8:10: plain tcp:// to a host other than this machine is refused (unencrypted and unauthenticated): add `tls = { ca = ..., cert = ..., key = ... }` to [hosts.far], or `insecure = true` if the network is trusted\n")
            .run();
    }
}

/// Runs drover on a pseudo-terminal (util-linux `script`), answering `answer`.
fn drover_on_terminal(c: &Cluster, args: &str, answer: &str) -> (i32, String) {
    use std::io::Write;
    let command = format!("{} -C {} {args}", support::BIN, c.path().display());
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run script");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn on_a_terminal_up_asks_first() {
    let c = cluster("t-ask", "").job("app", &sleeper("\"h2\""));
    let (status, out) = drover_on_terminal(&c, "up", "n\n");
    assert_eq!(status, 1, "{out}");
    assert!(
        out.contains("Apply these changes? [y/N] nothing changed"),
        "{out}"
    );
    assert_eq!(c.containers("h2"), Vec::<String>::new());
    let (status, out) = drover_on_terminal(&c, "up", "y\n");
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("Done: 1 step(s) applied."), "{out}");
    assert_eq!(c.containers("h2"), ["t-ask.app.h2.0"]);
    let (status, out) = drover_on_terminal(&c, "down app", "y\n");
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("Remove these containers? [y/N] "), "{out}");
    assert_eq!(c.containers("h2"), Vec::<String>::new());
}
