//! `drover validate`: every kind of spec error names file, line and column.
//! No Docker here: validate touches no host.

mod support;

use support::Test;

const ENV: &str = r#"
    name = "prod"

    [hosts.app1]
    docker = "unix:///var/run/docker.sock"
    [hosts.app2]
    docker = "tcp://10.0.0.12:2376"

    [defaults]
    stop_timeout = "20s"
    env = { TZ = "UTC", LEVEL = "info" }

    [profiles.jre8]
    image = "registry.example:5000/base/jre8"
    env = { JAVA_OPTS = "-Xmx512m" }
"#;

fn env() -> Test {
    Test::new().file("drover.toml", ENV)
}

#[test]
fn accepts_a_correct_environment() {
    env()
        .file(
            "jobs/web.toml",
            r#"
            image = "registry.example:5000/web:1"
            hosts = ["app1", "app2"]
            ports = [8080]
            volumes = ["/data/web:/data", "/etc/web:/etc/web:ro"]
            memory = "1g"
            [health]
            cmd = ["true"]
            interval = "2s"
            "#,
        )
        .file(
            "jobs/api.toml",
            r#"
            profile = "jre8"
            hosts = ["app1"]
            instances = 2
            "#,
        )
        .args(&["validate"])
        .run()
        .status(0)
        .stdout("prod: valid (2 host(s), 2 job(s), 4 task(s))\n");
}

#[test]
fn finds_drover_toml_in_a_parent_directory() {
    env()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .in_dir("jobs/deeper")
        .args(&["validate"])
        .run()
        .status(0)
        .stdout("prod: valid (2 host(s), 1 job(s), 1 task(s))\n");
}

#[test]
fn no_environment_is_a_clear_error() {
    let test = Test::new().in_dir("empty");
    let run = test.args(&["validate"]).run();
    run.status(1)
        .stderr_has("no drover.toml in ")
        .stderr_has("(use -C DIR or DROVER_DIR)");
}

#[test]
fn toml_syntax_error() {
    env()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has("error: jobs/web.toml:2:");
}

#[test]
fn unknown_key() {
    env()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nimagee = \"y\"\n",
        )
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has("error: jobs/web.toml:3:1: unknown field `imagee`");
}

#[test]
fn unknown_key_in_drover_toml() {
    Test::new()
        .file(
            "drover.toml",
            "name = \"prod\"\n[defaults]\nnetwork = \"host\"\nrestrat = \"no\"\n",
        )
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has("error: drover.toml:4:1: unknown field `restrat`");
}

#[test]
fn wrong_type() {
    env()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\ninstances = \"two\"\n",
        )
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has("error: jobs/web.toml:3:13: invalid type: string \"two\", expected i64");
}

#[test]
fn bad_duration_and_size_are_both_reported() {
    env()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nstop_timeout = \"10x\"\nmemory = \"lots\"\n",
        )
        .args(&["validate"])
        .run()
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:16: invalid duration "10x": expected a number and a unit (ms, s, m, h), e.g. "500ms", "10s", "5m"
            jobs/web.toml:4:10: invalid size "lots": expected a number with an optional unit (b, k, m, g, t), e.g. "512k", "20m", "1g"
            "#,
        );
}

#[test]
fn unknown_host() {
    env()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\", \"app3\"]\n",
        )
        .args(&["validate"])
        .run()
        .status(1)
        .stderr(
            "error: jobs/web.toml:2:18: unknown host \"app3\" (hosts in drover.toml: app1, app2)\n",
        );
}

#[test]
fn unknown_profile() {
    env()
        .file("jobs/web.toml", "profile = \"jre9\"\nhosts = [\"app1\"]\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has(
            "error: jobs/web.toml:1:11: unknown profile \"jre9\" (profiles in drover.toml: jre8)",
        );
}

#[test]
fn missing_image() {
    env()
        .file("jobs/web.toml", "hosts = [\"app1\"]\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr("error: jobs/web.toml:1:1: job \"web\" has no image: set `image` here, in its profile or in [defaults]\n");
}

#[test]
fn two_jobs_binding_one_port_on_one_host() {
    env()
        .file("jobs/a.toml", "image = \"x:1\"\nhosts = [\"app1\", \"app2\"]\nports = [8080]\n")
        .file("jobs/b.toml", "image = \"x:1\"\nhosts = [\"app2\"]\nports = [9090, 8080]\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr("error: jobs/b.toml:3:9: port 8080 on host \"app2\" is already bound by job \"a\" (task 0)\n");
}

#[test]
fn two_instances_binding_one_port() {
    env()
        .file("jobs/a.toml", "image = \"x:1\"\nhosts = [\"app1\"]\ninstances = 2\nports = [8080]\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has("error: jobs/a.toml:4:9: port 8080 on host \"app1\" is bound by two instances of job \"a\" (tasks 0 and 1)");
}

#[test]
fn same_port_on_different_hosts_is_fine() {
    env()
        .file(
            "jobs/a.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nports = [8080]\n",
        )
        .file(
            "jobs/b.toml",
            "image = \"x:1\"\nhosts = [\"app2\"]\nports = [8080]\n",
        )
        .args(&["validate"])
        .run()
        .status(0);
}

#[test]
fn bad_volume() {
    env()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nvolumes = [\"/ok:/ok\", \"data:/data\", \"/a:/b:rx\"]\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:23: invalid volume "data:/data": expected "HOST:CONTAINER" or "HOST:CONTAINER:ro" with absolute paths
            jobs/web.toml:3:37: invalid volume "/a:/b:rx": expected "HOST:CONTAINER" or "HOST:CONTAINER:ro" with absolute paths
            "#,
        );
}

#[test]
fn bad_docker_address() {
    Test::new()
        .file("drover.toml", "name = \"prod\"\n[hosts.app1]\ndocker = \"docker.example:2375\"\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr("error: drover.toml:3:10: invalid docker address \"docker.example:2375\": expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]\n");
}

#[test]
fn secret_written_in_the_files_is_refused() {
    env()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nenv = { DB_PASSWORD = \"hunter2\" }\nsecret_env = [\"DB_PASSWORD\"]\n")
        .args(&["validate"])
        .run()
        .status(1)
        .stderr_has("jobs/web.toml:4:15: \"DB_PASSWORD\" is both in env and in secret_env");
}

#[test]
fn stage_overlays_name_and_hosts() {
    env()
        .file(
            "drover.staging.toml",
            r#"
            name = "staging"
            [hosts.app1]
            docker = "unix:///run/staging.sock"
            [hosts.app2]
            docker = "unix:///run/staging2.sock"
            [hosts.app3]
            docker = "unix:///run/staging3.sock"
            "#,
        )
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\", \"app2\"]\n",
        )
        .args(&["-e", "staging", "validate"])
        .run()
        .status(0)
        .stdout("staging: valid (3 host(s), 1 job(s), 2 task(s))\n");
}

#[test]
fn stage_may_not_replace_profiles() {
    env()
        .file("drover.staging.toml", "[profiles.x]\nimage = \"y\"\n")
        .args(&["-e", "staging", "validate"])
        .run()
        .status(1)
        .stderr_has("error: drover.staging.toml:1:2: unknown field `profiles`");
}

#[test]
fn missing_stage_file() {
    env()
        .args(&["-e", "qa", "validate"])
        .run()
        .status(1)
        .stderr_has("stage \"qa\" has no file ");
}

#[test]
fn unknown_host_flag() {
    env()
        .args(&["--host", "app9", "validate"])
        .run()
        .status(1)
        .stderr(
            "error: unknown host \"app9\" given to --host (hosts in the environment: app1, app2)\n",
        );
}

#[test]
fn unknown_job_names_the_jobs_there_are() {
    // Fails before any host is asked: app1 and app2 here are not real engines.
    env()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .args(&["diff", "nosuch"])
        .run()
        .status(1)
        .stderr_has("error: unknown job \"nosuch\" (jobs in ")
        .stderr_has("/jobs: web)\n");
}

/// Regression: `drover status | head` used to panic on the closed pipe.
#[test]
fn a_closed_stdout_ends_drover_quietly() {
    let test = env().file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("-C")
        .arg(test.path())
        .arg("validate")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run drover");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    const SIGPIPE: i32 = 13;
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}", out.status);
}

/// Exit 2 means "diff found changes": a usage error must not look like one.
#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    env()
        .args(&["down"])
        .run()
        .status(1)
        .stderr_has("required arguments were not provided");
    env()
        .args(&["frobnicate"])
        .run()
        .status(1)
        .stderr_has("unrecognized subcommand 'frobnicate'");
    env()
        .args(&["--help"])
        .run()
        .status(0)
        .stdout_has("Usage: drover");
}
