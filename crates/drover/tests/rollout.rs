//! Changing what runs, safely: update, rolling-update, rollback, history,
//! locks, restart, stop and start, through the real binary against the
//! suite's real engines and registry.

mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";
const IMAGE2: &str = "drover-test/busybox:2";

/// A web job whose health check passes only on image 1 (`/etc/fixture-version`
/// is `1`); `check` = false leaves the health check out and makes image 2
/// exit at once instead.
fn web(image: &str, hosts: &str, instances: u32, port: u16, check: bool) -> String {
    let health = if check {
        format!(
            r#"
            [health]
            cmd = ["sh", "-c", "test $(cat /etc/fixture-version) = 1 && wget -q -O /dev/null http://127.0.0.1:$(({port} + DROVER_TASK))/"]
            interval = "500ms"
            timeout = "1s"
            retries = 2
            "#
        )
    } else {
        String::new()
    };
    let command = if check {
        format!("exec httpd -f -p $(({port} + DROVER_TASK)) -h /www")
    } else {
        format!("test $(cat /etc/fixture-version) = 1 && exec httpd -f -p $(({port} + DROVER_TASK)) -h /www")
    };
    format!(
        r#"
        # the web job
        image = "{image}"   # what runs
        hosts = [{hosts}]
        instances = {instances}
        command = ["sh", "-c", "{command}"]
        stop_timeout = "2s"
        [update]
        parallel = 1
        keep = 2
        {health}
        "#
    )
}

fn image_of(c: &Cluster, host: &str, task: u32) -> String {
    c.inspect(
        host,
        &format!("{}.web.{host}.{task}", c.env),
        "{{.Config.Image}}",
    )
}

fn running(c: &Cluster, host: &str, task: u32) -> bool {
    c.inspect(
        host,
        &format!("{}.web.{host}.{task}", c.env),
        "{{.State.Status}}",
    ) == "running"
}

#[test]
fn an_update_rolls_out_on_every_host_and_writes_the_file() {
    let plain = web(IMAGE1, "\"h1\", \"h2\"", 1, 25000, false)
        .replace("test $(cat /etc/fixture-version) = 1 && ", "");
    let c = cluster("o-update", "").job("web", &plain);
    c.drover(&["up", "--yes"]).run();
    c.drover(&["update", "web", "--image", IMAGE2, "--yes"])
        .stdout_has(&format!(
            "~ write   image = \"{IMAGE2}\" into jobs/web.toml (was \"{IMAGE1}\")"
        ))
        .stdout_has(&format!(
            "wrote image = \"{IMAGE2}\" into jobs/web.toml (was \"{IMAGE1}\")\n"
        ))
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    for host in ["h1", "h2"] {
        assert_eq!(image_of(&c, host, 0), IMAGE2);
    }
    let file = std::fs::read_to_string(c.path().join("jobs/web.toml")).unwrap();
    assert!(
        file.contains(&format!("image = \"{IMAGE2}\"   # what runs\n")),
        "the comment stays:\n{file}"
    );
    assert!(file.starts_with("# the web job\n"), "{file}");
    c.drover(&["diff"]).stdout_has("No changes").run();
}

#[test]
fn an_update_whose_health_check_fails_leaves_the_previous_version_everywhere() {
    let c = cluster("o-unhealthy", "").job("web", &web(IMAGE1, "\"h1\", \"h2\"", 2, 25100, true));
    c.drover(&["up", "--yes"]).run();
    let before: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-unhealthy.web.{h}.0"), "{{.Id}}"))
        .collect();

    c.drover(&["update", "web", "--image", IMAGE2, "--yes"])
        .status(1)
        .stderr_has("FAILED web h1/0 (replace): the new container failed: its health check failed")
        .stderr_has("; the previous container runs again")
        .stderr_has(&format!(
            "nothing rolled out, so jobs/web.toml is back as it was (image = \"{IMAGE1}\")"
        ))
        .run();
    let file = std::fs::read_to_string(c.path().join("jobs/web.toml")).unwrap();
    assert!(file.contains(IMAGE1) && !file.contains(IMAGE2), "{file}");
    for host in ["h1", "h2"] {
        for task in 0..2 {
            assert_eq!(image_of(&c, host, task), IMAGE1);
            assert!(running(&c, host, task));
        }
    }
    let after: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-unhealthy.web.{h}.0"), "{{.Id}}"))
        .collect();
    assert_eq!(before, after, "the very same containers run again");
    // The lock went with the failed rollout.
    c.drover(&["status"]).stdout_lacks("locked").run();
}

#[test]
fn a_crash_looping_image_without_health_check_is_rolled_back_everywhere() {
    let c = cluster("o-crash", "").job("web", &web(IMAGE1, "\"h1\", \"h2\"", 1, 25200, false));
    c.drover(&["up", "--yes"]).run();
    c.drover(&["rolling-update", "web", "--image", IMAGE2, "--yes"])
        .status(1)
        .stderr_has("(replace): the new container failed: it ")
        .stderr_has("; the previous container runs again")
        .run();
    for host in ["h1", "h2"] {
        assert_eq!(image_of(&c, host, 0), IMAGE1, "{host}");
        assert!(running(&c, host, 0));
    }
    // The first host's replacement had passed; it went back too.
    c.drover(&["diff"]).stdout_has("No changes").run();
}

#[test]
fn a_host_whose_pull_fails_stops_the_rollout_before_any_task_stops() {
    let c = cluster("o-pullfail", "");
    let only_h1 = format!(
        "{}/drover-test/busybox:only-h1-{}",
        c.hosts.registry,
        std::process::id()
    );
    c.docker("h1", &["tag", IMAGE2, &only_h1]);
    let c = c.job("web", &web(IMAGE1, "\"h1\", \"h2\"", 1, 25300, false));
    c.drover(&["up", "--yes"]).run();
    let ids: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-pullfail.web.{h}.0"), "{{.Id}}"))
        .collect();
    c.drover(&["rolling-update", "web", "--image", &only_h1, "--yes"])
        .status(1)
        .stderr_has(&format!("host h2: pulling {only_h1} failed: "))
        .stderr_has(" could not be pulled everywhere (h2: ")
        .stderr_has("; no task was touched")
        .run();
    c.drover(&["update", "web", "--image", &only_h1, "--yes"])
        .status(1)
        .any_stderr()
        .stderr_has("could not be pulled on host h2")
        .run();
    let after: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-pullfail.web.{h}.0"), "{{.Id}}"))
        .collect();
    assert_eq!(ids, after, "nothing was stopped on any host");
    let _ = c.docker_raw("h1", &["rmi", &only_h1]);
}

/// With `parallel = 1` and two tasks, one of them serves at every moment.
#[test]
fn an_up_of_a_changed_job_never_takes_both_tasks_down() {
    let port = 25400;
    let c = cluster("o-serving", "").job("web", &web(IMAGE1, "\"h1\"", 2, port, true));
    c.drover(&["up", "--yes"]).run();
    assert!(c.http_get("h1", port).is_some() && c.http_get("h1", port + 1).is_some());
    c.set_job(
        "web",
        &web(IMAGE1, "\"h1\"", 2, port, true)
            .replace("stop_timeout = \"2s\"", "stop_timeout = \"3s\""),
    );

    let done = Arc::new(AtomicBool::new(false));
    let probe = {
        let done = Arc::clone(&done);
        let netns = c.netns("h1").to_string();
        std::thread::spawn(move || {
            let mut rounds = 0;
            let mut both_down = 0;
            while !done.load(Ordering::SeqCst) {
                let up = |p: u16| {
                    Command::new("nsenter")
                        .arg(format!("--net={netns}"))
                        .args([
                            "curl",
                            "-sf",
                            "--max-time",
                            "1",
                            &format!("http://127.0.0.1:{p}/"),
                        ])
                        .stdout(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                };
                if !up(port) && !up(port + 1) {
                    both_down += 1;
                }
                rounds += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (rounds, both_down)
        })
    };
    c.drover(&["up", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    done.store(true, Ordering::SeqCst);
    let (rounds, both_down) = probe.join().unwrap();
    assert!(rounds > 10, "the probe ran ({rounds} rounds)");
    assert_eq!(
        both_down, 0,
        "{both_down} of {rounds} probes found both tasks down"
    );
}

#[test]
fn rollback_history_and_retention() {
    let c = cluster("o-history", "").job("web", &web(IMAGE1, "\"h1\"", 1, 25500, true));
    c.drover(&["up", "--yes"]).run();
    // Three more generations: each is a spec change.
    for n in 1..=3 {
        c.set_job(
            "web",
            &web(IMAGE1, "\"h1\"", 1, 25500, true).replace(
                "instances = 1",
                &format!("instances = 1\nenv = {{ GEN = \"{n}\" }}"),
            ),
        );
        c.drover(&["up", "--yes"]).run();
    }
    let history = c.drover(&["history", "web", "--json"]).run().json();
    let generations = history.as_array().unwrap();
    assert_eq!(
        generations.len(),
        3,
        "the current one and keep = 2 kept: {history}"
    );
    assert_eq!(generations[0]["current"], true);
    assert_eq!(generations[0]["command"], "up");
    assert!(generations[1]["deployed_at"].as_str() < generations[0]["deployed_at"].as_str());
    let kept: Vec<String> = c
        .containers("h1")
        .into_iter()
        .filter(|n| n.contains(".kept-"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    c.drover(&["history", "web"])
        .stdout_has("TASK  DEPLOYED")
        .stdout_has("current, running")
        .stdout_has("kept")
        .run();

    // Back to the generation before: GEN=2.
    let started = Instant::now();
    c.drover(&["rollback", "web", "--yes"])
        .stdout_has("Done: 1 step(s) applied.")
        .run();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "a rollback is a restart, not a deploy: {took:?}"
    );
    let env = c.inspect("h1", "o-history.web.h1.0", "{{json .Config.Env}}");
    assert!(env.contains("GEN=2"), "{env}");
    c.drover(&["diff"])
        .status(2)
        .stdout_has("env.GEN: \"2\" => \"3\"")
        .run();
}

#[test]
fn two_rollouts_of_one_job_one_proceeds_the_other_names_the_holder() {
    let c = cluster("o-race", "").job("web", &web(IMAGE1, "\"h1\"", 3, 25600, true));
    c.drover(&["up", "--yes"]).run();
    c.set_job(
        "web",
        &web(IMAGE1, "\"h1\"", 3, 25600, true)
            .replace("instances = 3", "instances = 3\nenv = { V = \"2\" }"),
    );

    let first = Command::new(support::BIN)
        .arg("-C")
        .arg(c.path())
        .args(["up", "--yes"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first holds the lock.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !c.containers("h1").iter().any(|n| n.ends_with(".lock")) {
        assert!(
            Instant::now() < deadline,
            "the first rollout never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.drover(&["rolling-update", "web", "--yes"])
        .status(1)
        .any_stderr()
        .stderr_has("error: job web is locked by ")
        .stderr_has("(up, pid ")
        .stderr_has("wait for it to finish, or if it is gone, run `drover unlock web`")
        .run();
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !c.containers("h1").iter().any(|n| n.ends_with(".lock")),
        "released after"
    );
}

#[test]
fn a_lock_by_hand_holds_everyone_off_until_unlock() {
    let c = cluster("o-lock", "").job("web", &web(IMAGE1, "\"h1\", \"h2\"", 1, 25700, false));
    c.drover(&["lock", "web", "--reason", "release freeze"])
        .stdout_has("job web locked on h1, h2 by ")
        .stdout_has(": release freeze\n")
        .run();
    c.drover(&["status"])
        .stdout_has("job web is locked on h1 by ")
        .stdout_has("(release freeze)")
        .run();
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr_has("skipped: job web is locked by ")
        .stderr_has("not done: job(s) web locked by someone else")
        .stderr_has("(reason: release freeze)")
        .run();
    assert!(
        c.containers("h1").iter().all(|n| n.ends_with(".lock")),
        "nothing was created"
    );
    c.drover(&["lock", "web", "--reason", "mine"])
        .status(1)
        .stderr_has("is locked by")
        .run();
    c.drover(&["unlock", "web"])
        .stdout_has("unlocked job web on h1 (held by ")
        .run();
    c.drover(&["unlock", "web"])
        .stdout("job web was not locked\n")
        .run();
    c.drover(&["up", "--yes"]).run();
    // A lock, a kept generation or a stop mark is never mistaken for a stray.
    c.drover(&["lock", "web", "--reason", "again"]).run();
    c.drover(&["diff"]).stdout_has("No changes").run();
    c.drover(&["unlock", "web"]).run();
}

#[test]
fn images_lists_registry_and_host_tags_newest_first() {
    let c = cluster("o-images", "");
    let repo = format!(
        "{}/drover-test/images-{}",
        c.hosts.registry,
        std::process::id()
    );
    let local = drover_testkit::hosts::docker_local;
    for (image, tag) in [(IMAGE1, "old"), (IMAGE2, "new")] {
        local(&["tag", image, &format!("{repo}:{tag}")]);
        local(&["push", &format!("{repo}:{tag}")]);
        local(&["rmi", &format!("{repo}:{tag}")]);
    }
    c.docker("h1", &["tag", IMAGE1, &format!("{repo}:local-only")]);
    c.write("drover.toml", &format!("name = \"o-images\"\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n[registry]\nurl = \"http://{}\"\n", c.hosts.h1, c.hosts.h2, c.hosts.registry));
    c.set_job("web", &format!("image = \"{repo}:local-only\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    c.drover(&["up", "--yes"]).run();

    let rows = c.drover(&["images", "web", "--json"]).run().json();
    let tags: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags.len(), 3, "{rows}");
    let row = |tag: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["tag"] == tag)
            .unwrap()
            .clone()
    };
    assert_eq!(row("new")["in_registry"], true);
    assert_eq!(row("local-only")["in_registry"], false);
    assert_eq!(row("local-only")["hosts"], serde_json::json!(["h1"]));
    assert_eq!(row("local-only")["running"], serde_json::json!(["h1/0"]));
    assert_eq!(row("local-only")["in_spec"], true);
    c.drover(&["images", "web"])
        .stdout_has("TAG")
        .stdout_has("local-only (spec)")
        .run();

    // An unreachable registry is an error, and the hosts' tags are still listed.
    c.write("drover.toml", &format!("name = \"o-images\"\n[hosts.h1]\ndocker = \"{}\"\n[hosts.h2]\ndocker = \"{}\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n", c.hosts.h1, c.hosts.h2));
    c.drover(&["images", "web"])
        .status(1)
        .stderr_has("the registry could not be read: cannot reach registry http://127.0.0.1:1")
        .stdout_has("local-only")
        .run();
    let _ = c.docker_raw("h1", &["rm", "-f", "o-images.web.h1.0"]);
    let _ = c.docker_raw("h1", &["rmi", &format!("{repo}:local-only")]);
}

#[test]
fn restart_keeps_containers_and_goes_batch_by_batch() {
    let c = cluster("o-restart", "").job("web", &web(IMAGE1, "\"h1\", \"h2\"", 1, 25800, true));
    c.drover(&["up", "--yes"]).run();
    let ids: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-restart.web.{h}.0"), "{{.Id}}"))
        .collect();
    let started: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-restart.web.{h}.0"), "{{.State.StartedAt}}"))
        .collect();
    c.drover(&["restart", "web", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    let ids_after: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-restart.web.{h}.0"), "{{.Id}}"))
        .collect();
    let started_after: Vec<String> = ["h1", "h2"]
        .iter()
        .map(|h| c.inspect(h, &format!("o-restart.web.{h}.0"), "{{.State.StartedAt}}"))
        .collect();
    assert_eq!(ids, ids_after, "the same containers");
    assert_ne!(started[0], started_after[0]);
    assert_ne!(started[1], started_after[1]);
    // One batch after the other: h2 started after h1 had proved itself.
    assert!(started_after[1] > started_after[0], "{started_after:?}");
}

#[test]
fn a_job_stopped_by_drover_stays_stopped_through_up_until_start() {
    let c = cluster("o-stop", "").job("web", &web(IMAGE1, "\"h1\"", 2, 25900, false));
    c.drover(&["up", "--yes"]).run();
    c.drover(&["stop", "web", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert!(!running(&c, "h1", 0) && !running(&c, "h1", 1));
    c.drover(&["diff"])
        .stdout("No changes: 2 task(s) as specified (2 stopped by `drover stop`).\n")
        .run();
    c.drover(&["up", "--yes"]).stdout_has("No changes").run();
    assert!(!running(&c, "h1", 0));
    let rows = c.drover(&["status", "--json"]).run().json();
    assert_eq!(rows[0]["state"], "stopped");
    assert_eq!(rows[0]["stopped_by_drover"], true);
    c.drover(&["status"])
        .stdout_has("stopped by drover (exit ")
        .run();

    c.drover(&["start", "web", "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    assert!(running(&c, "h1", 0) && running(&c, "h1", 1));
    c.drover(&["diff"])
        .stdout("No changes: 2 task(s) as specified.\n")
        .run();

    // Stopped by hand, it is drift that `up` repairs.
    c.docker("h1", &["stop", "-t", "1", "o-stop.web.h1.0"]);
    c.drover(&["diff"])
        .status(2)
        .stdout_has("> start   web h1/0")
        .run();
    c.drover(&["up", "--yes"]).run();
    assert!(running(&c, "h1", 0));
}

/// A replacement waits the old container's whole stop timeout, however long.
#[test]
fn a_long_stop_timeout_is_respected_by_a_replacement() {
    let job = |v: &str| {
        format!(
            r#"
            image = "{IMAGE1}"
            hosts = ["h2"]
            command = ["sh", "-c", "trap 'sleep 130; exit 0' TERM; while true; do sleep 1; done"]
            env = {{ V = "{v}" }}
            stop_timeout = "150s"
            "#
        )
    };
    let c = cluster("o-longstop", "").job("slow", &job("1"));
    c.drover(&["up", "--yes"]).run();
    let old = c.inspect("h2", "o-longstop.slow.h2.0", "{{.Id}}");
    c.set_job("slow", &job("2"));
    let started = Instant::now();
    c.drover(&["up", "--yes"])
        .stdout_has("Done: 1 step(s) applied.")
        .run();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(125),
        "the old container had 130 s of work left: {took:?}"
    );
    assert_eq!(
        c.inspect("h2", &old, "{{.State.ExitCode}}"),
        "0",
        "it finished its work, it was not killed"
    );
    assert!(c
        .inspect("h2", "o-longstop.slow.h2.0", "{{json .Config.Env}}")
        .contains("V=2"));
    assert_eq!(
        c.inspect("h2", "o-longstop.slow.h2.0", "{{.State.Status}}"),
        "running"
    );
}

/// The picker, on a real terminal: filter, pick, confirm.
#[test]
fn the_update_picker_filters_picks_and_confirms() {
    let c = cluster("o-picker", "");
    let repo = format!(
        "{}/drover-test/picker-{}",
        c.hosts.registry,
        std::process::id()
    );
    for (image, tag) in [(IMAGE1, "v1"), (IMAGE2, "v2")] {
        c.docker("h1", &["tag", image, &format!("{repo}:{tag}")]);
    }
    c.write(
        "drover.toml",
        &format!(
            "name = \"o-picker\"\n[hosts.h1]\ndocker = \"{}\"\n",
            c.hosts.h1
        ),
    );
    c.set_job("web", &format!("# picked by a person\nimage = \"{repo}:v1\"  # keep this comment\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    c.drover(&["up", "--yes"]).run();

    let command = format!(
        "NO_COLOR=1 {} -C {} update web; echo EXIT=$?; sleep 30",
        support::BIN,
        c.path().display()
    );
    let term = drover_testkit::tmux::Session::start("drover-picker", 150, 40, &command);
    term.wait_for("Image for web", 30);
    term.send(&["v2"]);
    // The typed filter shows in the prompt line, and only v2 is left.
    let filtered = term.wait_for("): v2", 30);
    assert!(!filtered.contains(" v1 "), "filtered as typed:\n{filtered}");
    term.send(&["Enter"]);
    term.wait_for("Roll out this update? [y/N]", 30);
    term.send(&["y", "Enter"]);
    term.wait_for("EXIT=0", 30);
    drop(term);

    assert_eq!(
        c.inspect("h1", "o-picker.web.h1.0", "{{.Config.Image}}"),
        format!("{repo}:v2")
    );
    let file = std::fs::read_to_string(c.path().join("jobs/web.toml")).unwrap();
    assert_eq!(file, format!("# picked by a person\nimage = \"{repo}:v2\"  # keep this comment\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    for tag in ["v1", "v2"] {
        let _ = c.docker_raw("h1", &["rmi", &format!("{repo}:{tag}")]);
    }
}

#[test]
fn update_without_a_terminal_needs_image() {
    let c = cluster("o-noterm", "").job("web", &web(IMAGE1, "\"h1\"", 1, 26000, false));
    c.drover(&["update", "web"]).status(1).stderr("error: no terminal to pick an image on: pass --image REF (`drover images web` lists them)\n").run();
    c.drover(&["update", "web", "--image", "Not A Ref"])
        .status(1)
        .stderr_has("error: --image: invalid image reference \"Not A Ref\"")
        .run();
}
