//! `drover validate` and the errors every command shares: each names the
//! file, line and column, in the words of TOML. No Docker here.

mod support;

use support::{env, fixtures, Env};

/// The suite's standard `drover.toml`, with a job file to go with it.
fn prod() -> Env {
    env().file("drover.toml", fixtures::DROVER_TOML)
}

#[test]
fn accepts_a_correct_environment() {
    prod()
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
            "profile = \"jre8\"\nhosts = [\"app1\"]\ninstances = 2\n",
        )
        .drover(&["validate"])
        .stdout("prod: valid (2 host(s), 2 job(s), 4 task(s))\n")
        .run();
}

#[test]
fn finds_drover_toml_in_a_parent_directory() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .drover(&["validate"])
        .in_dir("jobs/deeper")
        .stdout("prod: valid (2 host(s), 1 job(s), 1 task(s))\n")
        .run();
}

#[test]
fn no_environment_is_a_clear_error() {
    env()
        .drover(&["validate"])
        .in_dir("empty")
        .status(1)
        .stderr_has("no drover.toml in ")
        .stderr_has("(use -C DIR or DROVER_DIR)")
        .run();
}

#[test]
fn toml_syntax_error() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:2:16: unclosed array, expected `]`\n")
        .run();
}

#[test]
fn unknown_key_lists_the_valid_ones() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nimagee = \"y\"\n")
        .drover(&["validate"])
        .status(1)
        .stderr_has("error: jobs/web.toml:3:1: unknown key `imagee`; valid keys here: image, hosts, instances, command, env, secret_env, volumes, ports, memory, profile, network, init, restart, stop_timeout, host_files, log, health, update, release, base, artifact_path, entrypoint, user, workdir, cpus, ulimits, cap_add, cap_drop, labels, extra_hosts, tmpfs, shm_size, privileged, devices\n")
        .run();
}

#[test]
fn unknown_key_in_drover_toml() {
    env()
        .file(
            "drover.toml",
            "name = \"prod\"\n[defaults]\nnetwork = \"host\"\nrestrat = \"no\"\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr_has("error: drover.toml:4:1: unknown key `restrat`")
        .run();
}

#[test]
fn wrong_types_speak_toml() {
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = \"app1\"\ninstances = \"two\"\ninit = 1\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:2:9: expected an array, found the string \"app1\"\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\ninstances = \"two\"\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:13: expected an integer, found the string \"two\"\n")
        .run();
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nenv = { A = [1] }\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:13: expected a string, a number or true/false, found an array\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nhealth = 3\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:10: expected a table, found the integer 3\n")
        .run();
}

#[test]
fn bad_duration_and_size_are_both_reported() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nstop_timeout = \"10x\"\nmemory = \"lots\"\n")
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:16: invalid duration "10x": expected a number and a unit (ms, s, m, h), e.g. "500ms", "1.5s", "5m"
            jobs/web.toml:4:10: invalid size "lots": expected a number with an optional unit (b, k, m, g, t), e.g. "512k", "20m", "1.5g"
            "#,
        )
        .run();
}

/// Fractions are read as Docker reads them; what the engine would refuse
/// is refused here, with its place.
#[test]
fn fractions_are_taken_and_engine_minimums_are_checked() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nmemory = \"1.5g\"\n[health]\ncmd = [\"true\"]\ninterval = \"1.5s\"\n")
        .drover(&["validate"])
        .stdout_has("valid")
        .run();
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nstop_timeout = \"1.5s\"\nmemory = \"5.9m\"\n[health]\ncmd = [\"true\"]\ninterval = \"0.5ms\"\nstart_period = \"0.1ms\"\n")
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:16: stop_timeout "1.5s" is not a whole number of seconds: the engine counts it in seconds (write e.g. "2s")
            jobs/web.toml:4:10: memory "5.9m" is below the engine's minimum of 6m
            jobs/web.toml:7:12: health interval "0.5ms" is below the engine's minimum of 1ms
            jobs/web.toml:8:16: health start_period "0.1ms" is below the engine's minimum of 1ms (0s: none)
            "#,
        )
        .run();
}

#[test]
fn unknown_host() {
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\", \"app3\"]\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr(
            "error: jobs/web.toml:2:18: unknown host \"app3\" (hosts in drover.toml: app1, app2)\n",
        )
        .run();
}

#[test]
fn unknown_profile() {
    prod()
        .file("jobs/web.toml", "profile = \"jre9\"\nhosts = [\"app1\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr(
            "error: jobs/web.toml:1:11: unknown profile \"jre9\" (profiles in drover.toml: jre8)\n",
        )
        .run();
}

#[test]
fn missing_image() {
    prod()
        .file("jobs/web.toml", "hosts = [\"app1\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:1:1: job \"web\" has no image: set `image` here, in its profile or in [defaults]\n")
        .run();
}

#[test]
fn two_jobs_binding_one_port_on_one_host() {
    prod()
        .file("jobs/a.toml", "image = \"x:1\"\nhosts = [\"app1\", \"app2\"]\nports = [8080]\n")
        .file("jobs/b.toml", "image = \"x:1\"\nhosts = [\"app2\"]\nports = [9090, 8080]\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/b.toml:3:9: port 8080 on host \"app2\" is already bound by job \"a\" (task 0)\n")
        .run();
}

#[test]
fn two_instances_binding_one_port() {
    prod()
        .file("jobs/a.toml", "image = \"x:1\"\nhosts = [\"app1\"]\ninstances = 2\nports = [8080]\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/a.toml:4:9: port 8080 on host \"app1\" is bound by two instances of job \"a\" (tasks 0 and 1): with host networking each task on a host needs its own ports\n")
        .run();
}

#[test]
fn same_port_on_different_hosts_is_fine() {
    prod()
        .file(
            "jobs/a.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nports = [8080]\n",
        )
        .file(
            "jobs/b.toml",
            "image = \"x:1\"\nhosts = [\"app2\"]\nports = [8080]\n",
        )
        .drover(&["validate"])
        .stdout("prod: valid (2 host(s), 2 job(s), 2 task(s))\n")
        .run();
}

#[test]
fn bad_volume() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nvolumes = [\"/ok:/ok\", \"data:/data\", \"/a:/b:rx\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:23: invalid volume "data:/data": expected "HOST:CONTAINER" or "HOST:CONTAINER:ro" with absolute paths
            jobs/web.toml:3:37: invalid volume "/a:/b:rx": expected "HOST:CONTAINER" or "HOST:CONTAINER:ro" with absolute paths
            "#,
        )
        .run();
}

#[test]
fn bad_docker_address() {
    env()
        .file("drover.toml", "name = \"prod\"\n[hosts.app1]\ndocker = \"docker.example:2375\"\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: drover.toml:3:10: invalid docker address \"docker.example:2375\": expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]\n")
        .run();
}

#[test]
fn secret_written_in_the_files_is_refused() {
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\nenv = { DB_PASSWORD = \"hunter2\" }\nsecret_env = [\"DB_PASSWORD\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:4:15: \"DB_PASSWORD\" is both in env and in secret_env: a secret's value must not be written in the files\n")
        .run();
}

#[test]
fn stage_overlays_name_and_hosts() {
    prod()
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
        .drover(&["-e", "staging", "validate"])
        .stdout("staging: valid (3 host(s), 1 job(s), 2 task(s))\n")
        .run();
}

#[test]
fn stage_may_not_replace_profiles() {
    prod()
        .file("drover.staging.toml", "[profiles.x]\nimage = \"y\"\n")
        .drover(&["-e", "staging", "validate"])
        .status(1)
        .stderr("error: drover.staging.toml:1:2: unknown key `profiles`; valid keys here: name, hosts, defaults, registry, notify\n")
        .run();
}

#[test]
fn missing_stage_file() {
    prod()
        .drover(&["-e", "qa", "validate"])
        .status(1)
        .stderr_has("stage \"qa\" has no file ")
        .run();
}

#[test]
fn unknown_host_flag() {
    prod()
        .drover(&["--host", "app9", "validate"])
        .status(1)
        .stderr("error: unknown host \"app9\" given to --host (hosts in drover.toml: app1, app2)\n")
        .run();
}

#[test]
fn unknown_job_names_the_jobs_there_are() {
    // Fails before any host is asked: app1 and app2 here are not real engines.
    prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .drover(&["diff", "nosuch"])
        .status(1)
        .stderr_has("error: unknown job \"nosuch\" (jobs in ")
        .stderr_has("/jobs: web)\n")
        .run();
}

/// `drover validate | head`: a closed stdout ends drover without a word.
#[test]
fn a_closed_stdout_ends_drover_quietly() {
    let test = prod().file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(support::BIN)
        .arg("-C")
        .arg(test.path())
        .arg("validate")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run drover");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    assert_eq!(out.status.code(), Some(128 + 13), "{:?}", out.status);
}

/// Exit 2 means "diff found changes": a usage error must not look like one.
#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    prod()
        .drover(&["down"])
        .status(1)
        .stderr_has("required arguments were not provided")
        .run();
    prod()
        .drover(&["frobnicate"])
        .status(1)
        .stderr_has("unrecognized subcommand 'frobnicate'")
        .run();
    prod().drover(&["--help"]).stdout_has("Usage: drover").run();
}
