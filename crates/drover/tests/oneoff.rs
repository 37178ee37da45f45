//! One-off containers against the suite's real engines: `drover run` (exit
//! codes, output, what it leaves behind, Ctrl-C, a terminal), the
//! `[release]` command before a rollout, and the evidence a failed rollout
//! leaves for `logs --failed` and `history`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";
const IMAGE2: &str = "drover-test/busybox:2";

/// A job that sleeps, with an env value, a secret and a host directory.
fn sleeper(image: &str, data: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
        image = "{image}"
        hosts = ["h1", "h2"]
        command = ["sleep", "3600"]
        env = {{ GREETING = "hello" }}
        secret_env = ["TOKEN"]
        volumes = ["{}:/data"]
        stop_timeout = "1s"
        {extra}
        "#,
        data.display()
    )
}

/// This environment's containers on both hosts.
fn all_containers(c: &Cluster) -> Vec<String> {
    let mut names = c.containers("h1");
    names.extend(c.containers("h2"));
    names
}

/// A host directory the tasks bind, writable by the containers.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    dir
}

#[test]
fn run_passes_output_and_exit_code_back_and_leaves_no_container() {
    let data = data_dir();
    let c = cluster("o-run", "").job("web", &sleeper(IMAGE1, data.path(), ""));
    c.drover(&[
        "run",
        "web",
        "--",
        "sh",
        "-c",
        "echo $GREETING $TOKEN on $DROVER_HOST; echo oops >&2; touch /data/was-here; exit 3",
    ])
    .env("TOKEN", "s3cret")
    .status(3)
    .stdout("hello s3cret on h1\n")
    .stderr("oops\n")
    .run();
    assert!(
        data.path().join("was-here").exists(),
        "the job's volumes are bound"
    );
    assert_eq!(all_containers(&c), Vec::<String>::new());

    // Its stdin is the command's.
    c.drover(&["run", "web", "--", "sh", "-c", "tr a-z A-Z"])
        .env("TOKEN", "s3cret")
        .stdin("piped in\n")
        .stdout("PIPED IN\n")
        .run();
    // Another host of the job; the job's configuration, never restarted.
    c.drover(&[
        "--host",
        "h2",
        "run",
        "web",
        "--",
        "sh",
        "-c",
        "echo $DROVER_HOST",
    ])
    .env("TOKEN", "s3cret")
    .stdout("h2\n")
    .run();
    c.drover(&["run", "web", "--image", IMAGE2, "--keep", "--", "true"])
        .env("TOKEN", "s3cret")
        .stderr_has("drover: kept o-run.web.h1.run-")
        .run();
    let kept = c.containers("h1");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("o-run.web.h1.run-"), "{kept:?}");
    assert_eq!(c.inspect("h1", &kept[0], "{{.HostConfig.RestartPolicy.Name}} {{.Config.Image}} {{index .Config.Labels \"drover.role\"}}"), format!("no {IMAGE2} run"));
    // status and diff pass it by; gc removes it.
    c.drover(&["diff", "web"])
        .env("TOKEN", "s3cret")
        .status(2)
        .stdout_lacks("run-")
        .run();
    let gc = c.drover(&["--json", "gc", "--dry-run"]).run().json();
    let items: Vec<String> = gc[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "container")
        .map(|i| {
            format!(
                "{} {}",
                i["name"].as_str().unwrap(),
                i["reason"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        items,
        [format!("{} one-off run of job web: it has ended", kept[0])]
    );
    c.docker("h1", &["rm", &kept[0]]);

    // Clear errors, nothing left behind.
    c.drover(&["--host", "h3", "run", "web", "--", "true"])
        .status(1)
        .stderr("error: unknown host \"h3\" given to --host (hosts in drover.toml: h1, h2)\n")
        .run();
    c.drover(&["run", "web", "--", "true"])
        .status(1)
        .stderr_has("secret TOKEN has no value")
        .run();
    let missing = format!("{}/drover-test/none:1", c.hosts.registry);
    c.drover(&["run", "web", "--image", &missing, "--", "true"])
        .env("TOKEN", "s3cret")
        .status(1)
        .stderr_has(&format!("pulling {missing} failed"))
        .stderr_has("the image is needed to run the command")
        .run();
    assert_eq!(all_containers(&c), Vec::<String>::new());
}

#[test]
fn run_on_a_host_that_does_not_answer_names_it() {
    let dead = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}/docker.sock", dead.path().display());
    let c = cluster("o-dead", &format!("[hosts.h9]\ndocker = \"{socket}\"\n")).job(
        "web",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h9\", \"h1\"]\n"),
    );
    let out = c
        .drover(&["run", "web", "--", "true"])
        .status(1)
        .any_stderr()
        .run();
    assert!(
        out.stderr
            .starts_with(&format!("error: host h9 ({socket}) is unreachable")),
        "{}",
        out.stderr
    );
    c.drover(&["--host", "h1", "run", "web", "--", "echo", "fine"])
        .stdout("fine\n")
        .run();
}

#[test]
fn ctrl_c_stops_and_removes_the_one_off() {
    let c = cluster("o-int", "").job(
        "web",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\nstop_timeout = \"5s\"\n"),
    );
    let mut child = Command::new(support::BIN)
        .arg("-C")
        .arg(c.path())
        .args(["run", "web", "--", "sh", "-c", "echo started; sleep 600"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    assert_eq!(c.containers("h1").len(), 1);
    let started = Instant::now();
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("drover: interrupted: stopped and removed o-int.web.h1.run-"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "sh stops at the first signal: {:?}",
        started.elapsed()
    );
    assert_eq!(c.containers("h1"), Vec::<String>::new());
}

/// An interactive command on a real terminal (tmux): a tty, keys forwarded,
/// the exit code back, nothing left.
#[test]
fn an_interactive_run_has_a_terminal() {
    let c = cluster("o-tty", "").job("web", &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\n"));
    let command = format!(
        "NO_COLOR=1 {} -C {} run web -- sh; echo EXIT=$?; sleep 60",
        support::BIN,
        c.path().display()
    );
    let term = drover_testkit::tmux::Session::start("drover-run-tty", 100, 30, &command);
    term.wait_for("/ #", 20);
    term.send(&["tty; stty size", "Enter"]);
    term.wait_for("30 100", 20);
    assert!(term.screen().contains("/dev/pts/"), "{}", term.screen());
    term.send(&["exit 5", "Enter"]);
    term.wait_for("EXIT=5", 20);
    assert_eq!(c.containers("h1"), Vec::<String>::new());
}

/// Lines of the marker file the release command appends to.
fn marker(data: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(data.join("migrated"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The release writes which configuration it ran with.
const RELEASE: &str = r#"
[release]
command = ["sh", "-c", "echo $V >> /data/migrated; echo migrated"]
"#;

/// `docker inspect` of the task's container: its ID and creation time (ns).
fn task_container(c: &Cluster, host: &str) -> (String, i128) {
    let out = c.inspect(
        host,
        &format!("{}.web.{host}.0", c.env),
        "{{.Id}} {{.Created}}",
    );
    let (id, created) = out.split_once(' ').unwrap();
    let created = drover_plan::time::parse(created).unwrap().as_nanosecond();
    (id.to_string(), created)
}

#[test]
fn a_release_runs_once_before_a_rollout_that_brings_a_new_image() {
    let data = data_dir();
    let job = |image: &str, v: &str, extra: &str| {
        sleeper(
            image,
            data.path(),
            &format!("{extra}\n[update]\nkeep = 2\n{RELEASE}"),
        )
        .replace(
            "GREETING = \"hello\"",
            &format!("GREETING = \"hello\", V = \"{v}\""),
        )
    };
    let c = cluster("o-rel", "").job("web", &job(IMAGE1, "v1", ""));
    let up = |c: &Cluster| {
        c.drover(&["up", "--yes"])
            .env("TOKEN", "s3cret")
            .any_stderr()
            .run()
    };
    // The first deploy brings an image nothing runs: the release runs.
    let out = up(&c);
    assert!(
        out.stderr.contains("release: running `sh -c"),
        "{}",
        out.stderr
    );
    assert_eq!(marker(data.path()).len(), 1);
    // Nothing new: no release. More tasks or another setting of the same image: none either.
    up(&c);
    c.set_job("web", &job(IMAGE1, "v1", "memory = \"64m\""));
    up(&c);
    assert_eq!(marker(data.path()).len(), 1, "{:?}", marker(data.path()));

    // A new image: once, on the first host, before any task is replaced.
    let (old_id, _) = task_container(&c, "h1");
    c.set_job("web", &job(IMAGE2, "v2", "memory = \"64m\""));
    let out = up(&c);
    assert!(out.stderr.contains("succeeded in"), "{}", out.stderr);
    assert_eq!(marker(data.path()), ["v1", "v2"], "the new configuration");
    // Its record, kept stopped: it ended before any task was replaced.
    let mut records: Vec<String> = c
        .containers("h1")
        .into_iter()
        .filter(|n| n.starts_with("o-rel.web.h1.release-"))
        .collect();
    records.sort_by_key(|n| c.inspect("h1", n, "{{.Created}}"));
    let newest = records.last().unwrap();
    let at = drover_plan::time::parse(&c.inspect("h1", newest, "{{.State.FinishedAt}}"))
        .unwrap()
        .as_nanosecond();
    for host in ["h1", "h2"] {
        let (id, created) = task_container(&c, host);
        assert_ne!(id, old_id);
        assert!(
            at < created,
            "the release ran before {host}'s task was created"
        );
    }

    // A failing release: every task stays, exit 1, its last lines shown.
    let before: Vec<(String, i128)> = ["h1", "h2"].iter().map(|h| task_container(&c, h)).collect();
    c.set_job(
        "web",
        &job(IMAGE1, "v3", "memory = \"64m\"").replace(
            "echo migrated\"]",
            "echo step one; echo no database >&2; exit 4\"]",
        ),
    );
    let out = c
        .drover(&["up", "--yes"])
        .env("TOKEN", "s3cret")
        .status(1)
        .any_stderr()
        .run();
    assert!(
        out.stderr
            .contains("on host h1 failed with exit code 4 after")
            && out.stderr.contains("no task was touched; its last lines:")
            && out.stderr.contains("    no database"),
        "{}",
        out.stderr
    );
    let after: Vec<(String, i128)> = ["h1", "h2"].iter().map(|h| task_container(&c, h)).collect();
    assert_eq!(before, after, "no task touched");
    // `update` puts the file back as well.
    let file = std::fs::read_to_string(c.path().join("jobs/web.toml")).unwrap();
    c.drover(&[
        "update",
        "web",
        "--image",
        IMAGE2.replace(":2", ":1").as_str(),
        "--yes",
    ])
    .env("TOKEN", "s3cret")
    .status(1)
    .stderr_has("failed with exit code 4")
    .run();
    assert_eq!(
        std::fs::read_to_string(c.path().join("jobs/web.toml")).unwrap(),
        file
    );

    // A rollback does not run it again.
    let count = marker(data.path()).len();
    c.drover(&["rollback", "web", "--yes"])
        .env("TOKEN", "s3cret")
        .any_stderr()
        .run();
    assert_eq!(marker(data.path()).len(), count, "rollback runs no release");

    // history lists each release run: when, image, how it ended; keep = 2.
    let history = c.drover(&["--json", "history", "web"]).run().json();
    let releases: Vec<(String, String, Option<i64>)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == "release")
        .map(|g| {
            (
                g["image"].as_str().unwrap().to_string(),
                g["outcome"].as_str().unwrap().to_string(),
                g["exit_code"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        releases,
        [
            (
                IMAGE1.to_string(),
                "failed with exit code 4".to_string(),
                Some(4)
            ),
            (
                IMAGE1.to_string(),
                "failed with exit code 4".to_string(),
                Some(4)
            ),
        ],
        "the newest two of four runs"
    );
    let text = c.drover(&["history", "web"]).run().stdout;
    assert!(
        text.contains("h1 release") && text.contains("release: failed with exit code 4"),
        "{text}"
    );
}

#[test]
fn a_release_that_outlives_its_timeout_is_stopped_and_nothing_rolls_out() {
    let data = data_dir();
    let c = cluster("o-slow", "").job(
        "web",
        &sleeper(
            IMAGE1,
            data.path(),
            "[release]\ncommand = [\"sleep\", \"600\"]\ntimeout = \"2s\"\n",
        ),
    );
    let started = Instant::now();
    let out = c
        .drover(&["up", "--yes"])
        .env("TOKEN", "s3cret")
        .status(1)
        .any_stderr()
        .run();
    assert!(
        out.stderr
            .contains("ran into its timeout (2s) and was stopped; no task was touched"),
        "{}",
        out.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let names = all_containers(&c);
    assert_eq!(names.len(), 1, "only the release's record: {names:?}");
    let history = c.drover(&["--json", "history", "web"]).run().json();
    assert_eq!(history[0]["outcome"], "timed out after 2s; stopped");
}

#[test]
fn a_failed_rollout_leaves_its_container_for_logs_and_history() {
    let c = cluster("o-fail", "").job(
        "web",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\ncommand = [\"sh\", \"-c\", \"echo v1 up; sleep 3600\"]\nstop_timeout = \"1s\"\n"),
    );
    c.drover(&["up", "--yes"]).any_stderr().run();
    c.drover(&["logs", "web", "--failed"])
        .stderr("drover: job web has no failed container on the hosts: no rollout failed its gate since the last one was removed\n")
        .run();
    c.set_job(
        "web",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\ncommand = [\"sh\", \"-c\", \"echo v2 starting; echo no config >&2; exit 3\"]\nstop_timeout = \"1s\"\n"),
    );
    c.drover(&["up", "--yes"]).status(1).any_stderr().run();
    assert_eq!(
        c.containers("h1")
            .iter()
            .filter(|n| n.ends_with(".failed"))
            .count(),
        1
    );
    let out = c
        .drover(&["logs", "web", "--failed", "--task", "h1/0"])
        .any_stderr()
        .run();
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(lines, ["h1/0 ! no config", "h1/0 | v2 starting"]);
    assert!(
        out.stderr
            .starts_with("drover: h1/0: o-fail.web.h1.0.failed (drover-test/busybox:1, ")
            && out.stderr.contains("up): crash-looping (")
            && out.stderr.contains("last exit code 3)"),
        "{}",
        out.stderr
    );
    let history = c.drover(&["--json", "history", "web"]).run().json();
    let failed: Vec<&serde_json::Value> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["kind"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{history}");
    assert_eq!(failed[0]["task"], 0);
    assert_eq!(failed[0]["exit_code"], 3);
    assert!(
        failed[0]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("crash-looping ("),
        "{}",
        failed[0]
    );
    // The task is back on its kept generation.
    assert_eq!(
        c.inspect("h1", "o-fail.web.h1.0", "{{.State.Status}}"),
        "running"
    );
}

/// Regression (review): `logs --failed` listed each task's failed container
/// whatever rollout it came from: an old failure on h1 beside today's on
/// h2. It shows the last failed rollout's containers (`--task` any one).
#[test]
fn logs_failed_shows_the_last_failed_rollout_not_an_older_one() {
    let job = |hosts: &str, says: &str| {
        format!("image = \"{IMAGE1}\"\nhosts = [{hosts}]\ncommand = [\"sh\", \"-c\", \"echo {says}; exit 3\"]\nstop_timeout = \"1s\"\n")
    };
    let c = cluster("o-last", "").job("web", &job("\"h1\"", "first failure"));
    c.drover(&["up", "--yes"]).status(1).any_stderr().run();
    c.set_job("web", &job("\"h1\", \"h2\"", "second failure"));
    c.drover(&["up", "--yes", "--host", "h2"])
        .status(1)
        .any_stderr()
        .run();
    let out = c.drover(&["logs", "web", "--failed"]).any_stderr().run();
    assert_eq!(out.stdout, "h2/0 | second failure\n");
    assert!(
        out.stderr
            .starts_with("drover: h2/0: o-last.web.h2.0.failed ("),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("h1/0"), "{}", out.stderr);
    // The older one is still there for a task asked by name.
    c.drover(&["logs", "web", "--failed", "--task", "h1/0"])
        .stdout("h1/0 | first failure\n")
        .any_stderr()
        .run();
}
