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

/// `drover validate | head`: a closed stdout ends drover without a word,
/// and a read-only command keeps its own exit code (`drover diff | head`
/// still says 0 or 2).
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
    assert_eq!(out.status.code(), Some(0), "{:?}", out.status);
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

/// Every key given every kind of wrong value: `validate` either accepts it or
/// says what is wrong at its `file:line:col`, in the words of TOML and
/// Docker (never serde's or Rust's: no `i128`, `u64`, `Option`, `struct`),
/// lowercase, without a trailing period, never panicking.
#[test]
fn every_key_mangled_is_refused_in_toml_words_with_its_place() {
    const DROVER: &str = "name = \"p\"\n[hosts.app1]\ndocker = \"unix:///var/run/docker.sock\"\n";
    const JOB: &str = "image = \"x:1\"\nhosts = [\"app1\"]\n";
    // (drover.toml, the job file): {V} in one of them is where the value goes.
    let mut places: Vec<(String, String)> = Vec::new();
    let mut job = |text: String| places.push((DROVER.to_string(), text));
    let job_keys = [
        "image",
        "hosts",
        "instances",
        "command",
        "env",
        "secret_env",
        "volumes",
        "ports",
        "memory",
        "profile",
        "network",
        "init",
        "restart",
        "stop_timeout",
        "host_files",
        "log",
        "health",
        "update",
        "release",
        "base",
        "artifact_path",
        "entrypoint",
        "user",
        "workdir",
        "cpus",
        "ulimits",
        "cap_add",
        "cap_drop",
        "labels",
        "extra_hosts",
        "tmpfs",
        "shm_size",
        "privileged",
        "devices",
    ];
    for key in job_keys {
        let rest: String = JOB
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(|l| format!("{l}\n"))
            .collect();
        job(format!("{rest}{key} = {{V}}\n"));
    }
    let lists = [
        "hosts",
        "command",
        "secret_env",
        "volumes",
        "ports",
        "host_files",
        "entrypoint",
        "cap_add",
        "cap_drop",
        "extra_hosts",
        "tmpfs",
        "devices",
    ];
    for list in lists {
        let base = if list == "hosts" {
            "image = \"x:1\"\n"
        } else {
            JOB
        };
        job(format!("{base}{list} = [{{V}}]\n"));
    }
    for table in ["env", "labels", "ulimits"] {
        job(format!("{JOB}{table} = {{ nofile = {{V}} }}\n"));
    }
    for (table, keys) in [
        ("log", &["driver", "max_size", "max_files"][..]),
        (
            "health",
            &["cmd", "interval", "timeout", "retries", "start_period"][..],
        ),
        (
            "update",
            &["parallel", "delay", "auto_rollback", "keep"][..],
        ),
        ("release", &["command", "timeout"][..]),
    ] {
        for key in keys {
            let first = match table {
                "health" if *key != "cmd" => "cmd = [\"true\"]\n",
                "release" if *key != "command" => "command = [\"m\"]\n",
                _ => "",
            };
            job(format!("{JOB}[{table}]\n{first}{key} = {{V}}\n"));
        }
    }
    job(format!("{JOB}[health]\ncmd = [{{V}}]\n"));
    let mut env = |text: String| places.push((text, JOB.to_string()));
    // [defaults] and a profile are merged as a job is; a few keys show their places.
    for key in [
        "hosts",
        "secret_env",
        "memory",
        "log",
        "health",
        "cpus",
        "release",
    ] {
        env(format!("{DROVER}[defaults]\n{key} = {{V}}\n"));
    }
    for key in ["docker", "tls", "timeout", "insecure", "pull_stall"] {
        let docker = if key == "docker" {
            ""
        } else {
            "docker = \"unix:///var/run/docker.sock\"\n"
        };
        env(format!(
            "name = \"p\"\n[hosts.app1]\n{docker}{key} = {{V}}\n"
        ));
    }
    env("name = \"p\"\n[hosts.app1]\ndocker = \"tcp://10.0.0.1:2376\"\ntls = { ca = {V}, cert = \"c\", key = \"k\" }\n".to_string());
    env("name = {V}\n[hosts.app1]\ndocker = \"unix:///var/run/docker.sock\"\n".to_string());
    env(format!("{DROVER}[registry]\nurl = {{V}}\n"));
    env(format!("{DROVER}[profiles]\np = {{V}}\n"));
    for key in ["webhook", "format", "events"] {
        let webhook = if key == "webhook" {
            ""
        } else {
            "webhook = \"https://chat.example/hooks/x\"\n"
        };
        env(format!("{DROVER}[notify]\n{webhook}{key} = {{V}}\n"));
    }
    places.push((
        format!("{DROVER}[profiles.p]\nmemory = {{V}}\n"),
        format!("{JOB}profile = \"p\"\n"),
    ));

    let long = format!("\"{}\"", "x".repeat(300));
    let values = [
        "\"\"",
        "\"x\"",
        "\"A B\"",
        "\"lots\"",
        "\"../x\"",
        "\"99999999999t\"",
        "\"99999999999h\"",
        "\"99999999999999999999999999999999999999999m\"",
        "\"\\u0000\"",
        "\"\\u001b[31m\"",
        long.as_str(),
        "-1",
        "0",
        "99999999999999999999999",
        "9223372036854775808",
        "-99999999999999999999",
        "1.5",
        "1e999",
        "true",
        "[]",
        "[\"a\", 2]",
        "{ a = 1 }",
        "1979-05-27T07:32:00Z",
    ];
    let rust_words = [
        "i8", "i16", "i32", "i64", "i128", "u8", "u16", "u32", "u64", "u128", "usize", "isize",
        "f32", "f64", "Option", "Some", "None", "struct", "Spanned", "spanned", "String", "Vec",
        "BTreeMap", "serde", "sequence", "variant", "enum",
    ];
    let cases: Vec<(String, String)> = places
        .iter()
        .flat_map(|(drover, job)| {
            values
                .iter()
                .map(move |v| (drover.replace("{V}", v), job.replace("{V}", v)))
        })
        .collect();
    // Values inside a string: tmpfs options and ulimits as the kernel reads them.
    let mut cases = cases;
    for raw in [
        "99999999999999999999999t",
        "18446744073709551616",
        "9e",
        "-1",
        "x",
        "1:2:3",
    ] {
        for option in ["size", "nr_inodes", "nr_blocks", "mode", "uid"] {
            cases.push((
                DROVER.to_string(),
                format!("{JOB}tmpfs = [\"/run:{option}={raw}\"]\n"),
            ));
        }
        cases.push((
            DROVER.to_string(),
            format!("{JOB}ulimits = {{ nofile = \"{raw}\", nproc = \"{raw}\" }}\n"),
        ));
    }
    let refused = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for chunk in cases.chunks(cases.len().div_ceil(4)) {
            let refused = &refused;
            scope.spawn(move || {
                let dir = tempfile::tempdir().expect("temp dir");
                std::fs::create_dir_all(dir.path().join("jobs")).expect("jobs dir");
                for (drover, job) in chunk {
                    std::fs::write(dir.path().join("drover.toml"), drover).expect("write");
                    std::fs::write(dir.path().join("jobs/web.toml"), job).expect("write");
                    let out = std::process::Command::new(support::BIN)
                        .arg("-C")
                        .arg(dir.path())
                        .arg("validate")
                        .env_remove("DROVER_SECRETS_FILE")
                        .env_remove("nofile")
                        .output()
                        .expect("run drover");
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let case = format!(
                        "drover.toml:\n{drover}\njobs/web.toml:\n{job}\n--- stderr:\n{stderr}"
                    );
                    match out.status.code() {
                        Some(0) => {
                            assert!(stderr.is_empty(), "{case}");
                            continue;
                        }
                        Some(1) => {}
                        other => panic!("exit {other:?}: {case}"),
                    }
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    assert!(out.stdout.is_empty(), "{case}");
                    assert!(stderr.starts_with("error: "), "{case}");
                    for line in stderr.trim_start_matches("error: ").lines() {
                        let mut parts = line.splitn(4, ':');
                        let (path, row, col, message) =
                            (parts.next(), parts.next(), parts.next(), parts.next());
                        assert!(
                            matches!(path, Some("drover.toml" | "jobs/web.toml"))
                                && row.is_some_and(|r| r.parse::<usize>().is_ok())
                                && col.is_some_and(|c| c.parse::<usize>().is_ok()),
                            "no file:line:col in {line:?}: {case}"
                        );
                        let message = message.unwrap_or_default().trim();
                        assert!(
                            !message.starts_with(|c: char| c.is_ascii_uppercase()),
                            "not lowercase: {line:?}: {case}"
                        );
                        assert!(
                            !message.ends_with('.') || message.ends_with("..."),
                            "trailing period: {line:?}: {case}"
                        );
                        assert_eq!(
                            message.matches('`').count() % 2,
                            0,
                            "a stray backtick: {line:?}: {case}"
                        );
                        assert!(
                            !message.chars().any(char::is_control),
                            "a control character: {line:?}: {case}"
                        );
                        for word in message.split(|c: char| !c.is_alphanumeric() && c != '_') {
                            assert!(
                                !rust_words.contains(&word),
                                "Rust's word {word:?} in {line:?}: {case}"
                            );
                        }
                        for serde in ["invalid type", "invalid value", "invalid length"] {
                            assert!(
                                !message.contains(serde),
                                "serde's words in {line:?}: {case}"
                            );
                        }
                    }
                }
            });
        }
    });
    // Most of them are wrong; the test must have seen refusals to mean anything.
    assert!(refused.into_inner() > cases.len() / 2, "too few refusals");
}

/// A file in jobs/ that is not a job file was ignored, and `diff` then
/// planned to remove the job it was meant to be. Editors' leftovers and
/// subdirectories stay ignored.
#[test]
fn a_file_in_jobs_that_is_not_a_job_file_is_an_error() {
    let test = prod()
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .file("jobs/side.tml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .file("jobs/README.md", "# jobs\n")
        .file("jobs/web.toml~", "garbage")
        .file("jobs/.#web.toml", "garbage")
        .file("jobs/.web.toml.swp", "garbage")
        .file("jobs/web.toml.orig", "garbage")
        .file("jobs/archive/old.toml", "garbage");
    for command in ["validate", "diff"] {
        test.drover(&[command])
            .status(1)
            .stderr(
                "
                error: jobs/README.md: is not a job file: a job is a file jobs/NAME.toml (rename it to end in .toml, or move it out of jobs/)
                jobs/side.tml: is not a job file: a job is a file jobs/NAME.toml (rename it to end in .toml, or move it out of jobs/)
                ",
            )
            .run();
    }
}

/// `validate` passed a job whose secret had no value; `up` refused it.
#[test]
fn a_secret_with_no_value_is_refused_where_it_is_named() {
    let test = prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nsecret_env = [\"VAL_TEST_PW\", \"VAL_TEST_KEY\"]\n",
        )
        .file(
            "jobs/api.toml",
            "profile = \"jre8\"\nhosts = [\"app1\"]\nports = [9000]\n",
        )
        .file(
            "drover.staging.toml",
            "[defaults]\nsecret_env = [\"VAL_TEST_KEY\"]\n",
        );
    test.drover(&["validate"])
        .status(1)
        .stderr(
            "
            error: jobs/web.toml:3:15: job web: secret VAL_TEST_PW has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export VAL_TEST_PW=... or add the line VAL_TEST_PW=... to secrets.env
            jobs/web.toml:3:30: job web: secret VAL_TEST_KEY has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export VAL_TEST_KEY=... or add the line VAL_TEST_KEY=... to secrets.env
            ",
        )
        .run();
    test.drover(&["validate"])
        .env("VAL_TEST_PW", "x")
        .env("VAL_TEST_KEY", "y")
        .stdout("prod: valid (2 host(s), 2 job(s), 2 task(s))\n")
        .run();
    // A secret named in [defaults] is refused there, for each job that lacks it.
    test.drover(&["-e", "staging", "validate"])
        .env("VAL_TEST_PW", "x")
        .status(1)
        .stderr(
            "
            error: drover.staging.toml:2:15: job api: secret VAL_TEST_KEY has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export VAL_TEST_KEY=... or add the line VAL_TEST_KEY=... to secrets.env
            jobs/web.toml:3:30: job web: secret VAL_TEST_KEY has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export VAL_TEST_KEY=... or add the line VAL_TEST_KEY=... to secrets.env
            ",
        )
        .run();
}

/// The secrets file is read as `up` reads it: present, chosen, broken.
#[test]
fn the_secrets_file_is_checked_as_up_reads_it() {
    let test = prod().file(
        "jobs/web.toml",
        "image = \"x:1\"\nhosts = [\"app1\"]\nsecret_env = [\"VAL_TEST_PW\"]\n",
    );
    std::fs::write(test.path().join("secrets.env"), "# ours\nVAL_TEST_PW=x\n").unwrap();
    test.drover(&["validate"])
        .stdout("prod: valid (2 host(s), 1 job(s), 1 task(s))\n")
        .run();
    std::fs::write(test.path().join("secrets.env"), "OTHER=x\n").unwrap();
    test.drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:15: job web: secret VAL_TEST_PW has no value: it is neither in drover's environment nor in secrets.env: export VAL_TEST_PW=... or add the line VAL_TEST_PW=... to secrets.env\n")
        .run();
    std::fs::write(test.path().join("secrets.env"), "OTHER=x\nVAL_TEST_PW\n").unwrap();
    test.drover(&["validate"])
        .status(1)
        .stderr("error: secrets.env:2:1: expected KEY=VALUE\n")
        .run();
    // A directory was taken for no file at all.
    std::fs::remove_file(test.path().join("secrets.env")).unwrap();
    std::fs::create_dir(test.path().join("secrets.env")).unwrap();
    let dir = test.path().display().to_string();
    test.drover(&["validate"])
        .env("VAL_TEST_PW", "x")
        .status(1)
        .stderr(&format!("error: the secrets file {dir}/secrets.env is a directory: secrets are KEY=VALUE lines in a file\n"))
        .run();
    // A file DROVER_SECRETS_FILE names must exist.
    let chosen = format!("{dir}/elsewhere.env");
    test.drover(&["validate"])
        .env("DROVER_SECRETS_FILE", &chosen)
        .status(1)
        .stderr(&format!(
            "error: DROVER_SECRETS_FILE names {chosen}, which does not exist\n"
        ))
        .run();
    std::fs::write(&chosen, "VAL_TEST_PW=x\n").unwrap();
    test.drover(&["validate"])
        .env("DROVER_SECRETS_FILE", &chosen)
        .stdout("prod: valid (2 host(s), 1 job(s), 1 task(s))\n")
        .run();
}

/// Plain tcp:// to another machine was refused only when connecting.
#[test]
fn plain_tcp_to_another_machine_needs_tls_or_insecure() {
    let hosts = |app2: &str| {
        env()
            .file("drover.toml", &format!("name = \"p\"\n[hosts.app1]\ndocker = \"tcp://127.0.0.1:2375\"\n[hosts.app2]\n{app2}\n"))
            .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\", \"app2\"]\n")
    };
    hosts("docker = \"tcp://10.0.0.12:2375\"")
        .drover(&["validate"])
        .status(1)
        .stderr("error: drover.toml:5:10: plain tcp:// to a host other than this machine is refused (unencrypted and unauthenticated): add `tls = { ca = ..., cert = ..., key = ... }` to [hosts.app2], or `insecure = true` if the network is trusted\n")
        .run();
    for fine in [
        "docker = \"tcp://10.0.0.12:2375\"\ninsecure = true",
        "docker = \"tcp://[::1]:2375\"",
        "docker = \"tcp://localhost:2375\"",
    ] {
        hosts(fine)
            .drover(&["validate"])
            .stdout("p: valid (2 host(s), 1 job(s), 2 task(s))\n")
            .run();
    }
    // The client certificates must be there to be read.
    let test = hosts("docker = \"tcp://10.0.0.12:2376\"\ntls = { ca = \"certs/ca.pem\", cert = \"certs/cert.pem\", key = \"certs\" }")
        .file("certs/ca.pem", "");
    test.drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: drover.toml:6:37: tls cert file "certs/cert.pem" does not exist (a relative path starts at the directory holding drover.toml)
            drover.toml:6:61: tls key file "certs" is a directory (a relative path starts at the directory holding drover.toml)
            "#,
        )
        .run();
}

/// `duplicate key` did not say which.
#[test]
fn a_duplicate_key_is_named() {
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nimage = \"x:2\"\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:1: duplicate key `image`: this key is already set in this table (keep one of them)\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nenv = { A = \"1\", A = \"2\" }\n[health]\ncmd = [\"true\"]\n[health]\nretries = 2\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:18: duplicate key `A`: this key is already set in this table (keep one of them)\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\n[health]\ncmd = [\"true\"]\n[health]\nretries = 2\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:5:2: duplicate key `health`: this table is already defined above (write each table once)\n")
        .run();
}

/// `found the integer … as i128`` (a stray backtick, Rust's words).
#[test]
fn an_integer_too_large_for_toml_says_so() {
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\ninstances = 99999999999999999999999\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:13: the integer 99999999999999999999999 is too large: TOML integers are at most 9223372036854775807\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nports = [-9223372036854775809]\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:10: the integer -9223372036854775809 is too small: TOML integers are at least -9223372036854775808\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nenv = { ID = 18446744073709551615 }\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:14: the integer 18446744073709551615 is too large: TOML integers are at most 9223372036854775807 (quote it to pass it as text: \"18446744073709551615\")\n")
        .run();
}

/// `memory = "99999999999t"` said "expected a number with an optional
/// unit"; every size and duration says when it is too large, and the most.
#[test]
fn sizes_and_durations_too_large_say_so_and_the_largest_allowed() {
    prod()
        .file(
            "jobs/web.toml",
            r#"
            image = "x:1"
            hosts = ["app1"]
            memory = "99999999999t"
            stop_timeout = "25h"
            log = { max_size = "99999999999999999999g" }
            [health]
            cmd = ["true"]
            interval = "99999999999999h"
            [update]
            delay = "999999999999999999999999ms"
            "#,
        )
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:10: memory "99999999999t" is too large: the largest allowed is 1024t
            jobs/web.toml:4:16: stop_timeout "25h" is too large: the largest allowed is 24h
            jobs/web.toml:5:20: log max_size "99999999999999999999g" is too large: the largest allowed is 8388607t
            jobs/web.toml:8:12: health interval "99999999999999h" is too large: the largest allowed is 2562047h
            jobs/web.toml:10:9: update delay "999999999999999999999999ms" is too large: the largest allowed is 2562047h
            "#,
        )
        .run();
    env()
        .file(
            "drover.toml",
            "name = \"p\"\n[hosts.app1]\ndocker = \"unix:///x.sock\"\ntimeout = \"11m\"\npull_stall = \"9999999999h\"\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: drover.toml:4:11: host timeout "11m" is too large: the largest allowed is 10m
            drover.toml:5:14: pull_stall "9999999999h" is too large: the largest allowed is 2562047h
            "#,
        )
        .run();
}

/// One bad docker address also printed "unknown host" for every job that
/// lists the host.
#[test]
fn a_bad_host_is_reported_once_where_it_is_declared() {
    env()
        .file(
            "drover.toml",
            "name = \"p\"\n[hosts.app1]\ndocker = \"docker.example:2375\"\n[hosts.\"app.2\"]\ndocker = \"unix:///x.sock\"\n",
        )
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\", \"app.2\"]\n")
        .file("jobs/api.toml", "image = \"x:1\"\nhosts = [\"app1\", \"app3\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: drover.toml:3:10: invalid docker address "docker.example:2375": expected unix:///PATH, tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]
            drover.toml:4:1: invalid host name "app.2": use up to 63 letters, digits, '_' and '-', starting with a letter or digit (no dots: names join into container names with dots)
            jobs/api.toml:2:18: unknown host "app3" (hosts in drover.toml: none)
            "#,
        )
        .run();
    // A stage file that does not parse: its hosts are unknown, so jobs are not checked against drover.toml's.
    prod()
        .file("drover.qa.toml", "[hosts.qa1]\ndocker = 5\n")
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"qa1\"]\n")
        .drover(&["-e", "qa", "validate"])
        .status(1)
        .stderr("error: drover.qa.toml:2:10: expected a string, found the integer 5\n")
        .run();
}

/// A table written as an array was taken field by field; a date-time was
/// "a table"; a registry URL with a bad port passed.
#[test]
fn values_of_the_wrong_kind_are_named_as_toml_names_them() {
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nlog = [\"local\", \"20m\", 5]\nmemory = 1979-05-27\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:7: expected a table, found an array\n")
        .run();
    prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nmemory = 1979-05-27\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/web.toml:3:10: expected a string, found the date-time 1979-05-27\n")
        .run();
    env()
        .file(
            "drover.toml",
            "name = \"p\"\n[hosts.app1]\ndocker = \"unix:///x.sock\"\n[registry]\nurl = \"http://registry:99999\"\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr("error: drover.toml:5:7: invalid registry url \"http://registry:99999\": expected http://HOST[:PORT] or https://HOST[:PORT]\n")
        .run();
}

/// `validate --json` says what is wrong as data too.
#[test]
fn validate_json_lists_each_problem_with_its_place() {
    let out = prod()
        .file(
            "jobs/web.toml",
            "image = \"x:1\"\nhosts = [\"app1\"]\nmemory = \"lots\"\n",
        )
        .file("jobs/x.yaml", "")
        .drover(&["--json", "validate"])
        .status(1)
        .any_stderr()
        .run();
    assert_eq!(
        out.json(),
        serde_json::json!({"valid": false, "errors": [
            {"file": "jobs/web.toml", "line": 3, "col": 10, "message": "invalid size \"lots\": expected a number with an optional unit (b, k, m, g, t), e.g. \"512k\", \"20m\", \"1.5g\""},
            {"file": "jobs/x.yaml", "line": null, "col": null, "message": "is not a job file: a job is a file jobs/NAME.toml (rename it to end in .toml, or move it out of jobs/)"},
        ]})
    );
}

/// `lock --reason ""` was accepted: the next operator would read nothing.
#[test]
fn a_lock_needs_a_reason() {
    for reason in ["", "  ", "two\nlines"] {
        prod()
            .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
            .drover(&["lock", "web", "--reason", reason])
            .status(1)
            .stderr(if reason.contains('\n') {
                "error: --reason must be one line of text, without control characters\n"
            } else {
                "error: --reason is empty: say why the job is held, e.g. --reason \"investigating the 502s\" (the next operator reads it)\n"
            })
            .run();
    }
}

/// Client certificates that connecting would refuse (not PEM, a key that is
/// not the certificate's) are refused at the host's `tls`.
#[test]
fn tls_files_are_read_as_connecting_reads_them() {
    let pem = |name: &str| {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (cert, key) = pem("engine");
    let (_, other_key) = pem("other");
    let test = env()
        .file(
            "drover.toml",
            "name = \"p\"\n[hosts.app1]\ndocker = \"tcp://10.0.0.1:2376\"\ntls = { ca = \"ca.pem\", cert = \"cert.pem\", key = \"key.pem\" }\n",
        )
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"app1\"]\n")
        .file("ca.pem", &cert)
        .file("cert.pem", &cert)
        .file("key.pem", &key);
    test.drover(&["validate"])
        .stdout("p: valid (1 host(s), 1 job(s), 1 task(s))\n")
        .run();
    let dir = test.path().display().to_string();
    std::fs::write(test.path().join("key.pem"), &other_key).unwrap();
    test.drover(&["validate"])
        .status(1)
        .stderr(&format!("error: drover.toml:4:7: tls of host app1: TLS setup: client certificate {dir}/cert.pem with key {dir}/key.pem: the key is not the certificate's (tls.key must be the private key of tls.cert)\n"))
        .run();
    std::fs::write(test.path().join("ca.pem"), "not a certificate\n").unwrap();
    test.drover(&["validate"])
        .status(1)
        .stderr(&format!(
            "error: drover.toml:4:7: tls of host app1: {dir}/ca.pem holds no PEM certificate\n"
        ))
        .run();
}

/// The container settings' sizes, counts and durations: too large says so,
/// and the largest allowed (a tmpfs size the kernel would wrap round too).
#[test]
fn container_settings_too_large_say_so_and_the_largest_allowed() {
    prod()
        .file(
            "jobs/web.toml",
            r#"
            image = "x:1"
            hosts = ["app1"]
            shm_size = "99999999999t"
            cpus = "99999999999999999999999"
            tmpfs = ["/run:size=99999999999999999999999t"]
            ulimits = { nofile = "99999999999999999999", nproc = "1:99999999999999999999" }
            [release]
            command = ["bin/migrate"]
            timeout = "99999999999h"
            "#,
        )
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/web.toml:3:12: shm_size "99999999999t" is too large: the largest allowed is 1024t
            jobs/web.toml:4:8: cpus "99999999999999999999999" is too large: the largest allowed is 8192 (more CPUs than Linux runs on)
            jobs/web.toml:5:10: invalid tmpfs "/run:size=99999999999999999999999t": tmpfs option size="99999999999999999999999t" is too large: the largest allowed is 8388607t
            jobs/web.toml:6:22: ulimit nofile "99999999999999999999" is above 1048576, the kernel's limit on open files (fs.nr_open), and cannot be unlimited
            jobs/web.toml:6:54: ulimit nproc "1:99999999999999999999" is too large: the largest allowed is 9223372036854775807 (or -1 for unlimited)
            jobs/web.toml:9:11: release timeout "99999999999h" is too large: the largest allowed is 24h
            "#,
        )
        .run();
}
