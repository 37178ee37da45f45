//! One test per defect found when the core was tried hard (issue 5), each
//! headed by what broke, through the real binary against real engines.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use drover_testkit::endpoints::{HtmlServer, Wedged};
use support::{cluster, env, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";

/// A health-checked web job, `instances` tasks per host, each on `port + task`.
fn web(hosts: &str, instances: u32, port: u16, greeting: &str) -> String {
    format!(
        r#"
        image = "{IMAGE1}"
        hosts = [{hosts}]
        instances = {instances}
        command = ["sh", "-c", "exec httpd -f -p $(({port} + DROVER_TASK)) -h /www"]
        env = {{ GREETING = "{greeting}" }}
        stop_timeout = "2s"
        [health]
        cmd = ["sh", "-c", "wget -q -O /dev/null http://127.0.0.1:$(({port} + DROVER_TASK))/"]
        interval = "1s"
        timeout = "1s"
        [update]
        parallel = 1
        "#
    )
}

/// `(name, state)` of this environment's containers on `host`.
fn states(c: &Cluster, host: &str) -> Vec<(String, String)> {
    let filter = format!("label=drover.env={}", c.env);
    let out = c.docker(
        host,
        &[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}} {{.State}}",
        ],
    );
    let mut list: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect();
    list.sort();
    list
}

/// Every task of `job` on `host` runs under its own name, and every other
/// container of the environment there is a stopped kept generation.
#[track_caller]
fn consistent(c: &Cluster, host: &str, job: &str, tasks: u32) {
    let list = states(c, host);
    for task in 0..tasks {
        let own = format!("{}.{job}.{host}.{task}", c.env);
        let running = list
            .iter()
            .filter(|(n, s)| *n == own && s == "running")
            .count();
        assert_eq!(
            running, 1,
            "{own} is not running under its own name: {list:?}"
        );
    }
    for (name, state) in &list {
        let own = name.matches('.').count() == 3;
        let kept = name.contains(".kept-") && state != "running" && state != "created";
        assert!(
            own || kept,
            "{name} ({state}) is neither a task nor a stopped kept generation: {list:?}"
        );
        assert_ne!(
            state, "created",
            "{name} was created but never started: {list:?}"
        );
    }
}

/// Runs `drover ARGS` with stdout piped; lines arrive on the receiver.
fn spawn(c: &Cluster, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(support::BIN)
        .arg("-C")
        .arg(c.path())
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run drover");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a line containing `part`.
#[track_caller]
fn wait_for(lines: &mpsc::Receiver<String>, part: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) if line.contains(part) => return,
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("no line with {part:?}");
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
}

fn wait(child: Child, within: Duration) -> (i32, String) {
    let started = Instant::now();
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                std::io::Read::read_to_string(&mut err, &mut stderr).ok();
            }
            return (status.code().unwrap_or(-1), stderr);
        }
        assert!(
            started.elapsed() < within,
            "drover did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Defect 1: Ctrl-C a moment into an `up` that replaces many tasks took most of
/// the job down and left `….new-<hash>` containers created but never started.
#[test]
fn ctrl_c_mid_up_leaves_every_task_running_and_the_next_up_finishes() {
    let c = cluster("r-sigint", "").job("web", &web("\"h1\", \"h2\"", 4, 24000, "one"));
    c.drover(&["up", "--yes"]).run();
    c.set_job("web", &web("\"h1\", \"h2\"", 4, 24000, "two"));

    let (child, lines) = spawn(&c, &["up", "--yes"]);
    wait_for(&lines, ": stopping");
    signal(&child, libc::SIGINT);
    let (status, stderr) = wait(child, Duration::from_secs(60));
    assert_eq!(status, 130, "{stderr}");
    assert!(
        stderr.contains("interrupted: no new step starts"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not started (of 8 step(s)); run `drover up` again to finish"),
        "{stderr}"
    );
    for host in ["h1", "h2"] {
        consistent(&c, host, "web", 4);
        // The interrupted command gave its lock back.
        assert!(
            !c.containers(host).iter().any(|n| n.ends_with(".lock")),
            "a lock left on {host}"
        );
    }

    c.drover(&["diff"]).status(2).stdout_has("to replace").run();
    c.drover(&["up", "--yes"]).run();
    c.drover(&["diff"])
        .stdout("No changes: 8 task(s) as specified.\n")
        .run();
    for host in ["h1", "h2"] {
        consistent(&c, host, "web", 4);
    }
}

/// Defect 1: A second Ctrl-C aborts at once; whatever is left, the next `up` repairs.
#[test]
fn a_second_ctrl_c_aborts_and_the_next_up_repairs_everything() {
    let c = cluster("r-abort", "").job("web", &web("\"h1\"", 3, 24100, "one"));
    c.drover(&["up", "--yes"]).run();
    c.set_job("web", &web("\"h1\"", 3, 24100, "two"));

    let (child, lines) = spawn(&c, &["up", "--yes"]);
    wait_for(&lines, ": creating");
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(20));
    signal(&child, libc::SIGINT);
    let (status, stderr) = wait(child, Duration::from_secs(5));
    assert_eq!(status, 130, "{stderr}");
    assert!(stderr.contains("aborting"), "{stderr}");

    // A request the abort cut off may still complete in the engine while
    // the next `up` plans: it then notes that the hosts changed and applies
    // the plan as it stands (so stderr may hold that note).
    c.drover(&["up", "--yes"]).any_stderr().run();
    c.drover(&["diff"])
        .stdout("No changes: 3 task(s) as specified.\n")
        .run();
    consistent(&c, "h1", "web", 3);
    // The lock an abort may leave is stale (its process is gone) and was taken over.
    c.drover(&["status"]).stdout_lacks("is locked").run();
}

/// Defect 1: `drover up --yes | head -1`: a closed pipe did what Ctrl-C did.
#[test]
fn a_closed_stdout_mid_up_is_an_interruption_not_an_outage() {
    let c = cluster("r-pipe", "").job("web", &web("\"h1\"", 3, 24200, "one"));
    c.drover(&["up", "--yes"]).run();
    c.set_job("web", &web("\"h1\"", 3, 24200, "two"));

    let (child, lines) = spawn(&c, &["up", "--yes"]);
    wait_for(&lines, ": stopping");
    drop(lines);
    let (status, stderr) = wait(child, Duration::from_secs(60));
    assert_eq!(status, 128 + 13, "{stderr}");
    assert!(stderr.contains("interrupted:"), "{stderr}");
    consistent(&c, "h1", "web", 3);
    c.drover(&["up", "--yes"]).run();
    c.drover(&["diff"])
        .stdout("No changes: 3 task(s) as specified.\n")
        .run();
}

/// Defect 1: A container under a name that is not its task's own (renamed by hand,
/// or left by an interrupted run) was invisible to `diff`.
#[test]
fn a_task_under_another_name_is_drift_that_up_renames_back() {
    let c = cluster("r-rename", "").job("web", &web("\"h1\"", 2, 24300, "one"));
    c.drover(&["up", "--yes"]).run();
    c.docker("h1", &["rename", "r-rename.web.h1.0", "my-copy"]);
    c.docker("h1", &["stop", "-t", "1", "r-rename.web.h1.1"]);
    c.docker(
        "h1",
        &[
            "rename",
            "r-rename.web.h1.1",
            "r-rename.web.h1.1.new-0123456789ab",
        ],
    );

    let run = c.drover(&["diff", "--json"]).status(2).run();
    let json = run.json();
    let changes = json["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{json}");
    for change in changes {
        assert_eq!(change["action"], "rename");
        assert_eq!(change["step"], "rename");
        assert_eq!(change["fields"][0]["path"], "name");
    }
    c.drover(&["diff"])
        .status(2)
        .stdout_has("~ rename  web h1/0  (")
        .stdout_has("    name: \"my-copy\" => \"r-rename.web.h1.0\"\n")
        .run();

    let before = c.inspect("h1", "my-copy", "{{.Id}}");
    c.drover(&["up", "--yes"]).run();
    assert_eq!(
        c.inspect("h1", "r-rename.web.h1.0", "{{.Id}}"),
        before,
        "renamed back, not recreated"
    );
    consistent(&c, "h1", "web", 2);
    c.drover(&["diff"]).stdout_has("No changes").run();
}

/// Defect 2: A wedged dockerd (answers /_ping, hangs on the rest) held every
/// command for 120 s and then said "timed out after 0s".
#[test]
fn status_with_a_wedged_host_returns_in_time_and_names_it() {
    let wedged = Wedged::start();
    let extra = format!("[hosts.stuck]\ndocker = \"{}\"\n", wedged.address());
    let c = cluster("r-wedged", &extra).job("app", "image = \"drover-test/busybox:1\"\nhosts = [\"h1\", \"stuck\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n");
    c.drover(&["--host", "h1", "up", "--yes"]).run();

    let started = Instant::now();
    let run = c
        .drover(&["status", "--json"])
        .status(1)
        .stderr(&format!(
            "host stuck ({}) is unreachable: no answer to the version request within 10s\n",
            wedged.address()
        ))
        .run();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(12), "status took {took:?}");
    assert!(
        took >= Duration::from_secs(9),
        "the deadline is the host's 10s, not less: {took:?}"
    );
    let rows = run.json();
    let states: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["host"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("h1", "running"), ("stuck", "unreachable")]);
}

/// Defect 2: The host's `timeout` sets the deadline of its ordinary requests.
#[test]
fn a_host_timeout_is_the_deadline_of_its_requests() {
    let wedged = Wedged::start();
    let extra = format!(
        "[hosts.stuck]\ndocker = \"{}\"\ntimeout = \"2s\"\n",
        wedged.address()
    );
    let c = cluster("r-timeout", &extra).job(
        "app",
        "image = \"drover-test/busybox:1\"\nhosts = [\"stuck\"]\n",
    );
    let started = Instant::now();
    c.drover(&["diff"])
        .status(1)
        .stdout_has(&format!(
            "! host stuck ({}) is unreachable: no answer to the version request within 2s\n",
            wedged.address()
        ))
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Defect 2: A pull that stalled hung `up` forever.
#[test]
fn a_stalled_pull_fails_after_the_hosts_pull_stall() {
    // A "registry" inside h1's network namespace that accepts and never answers.
    let port = 24990;
    let c = cluster("r-stall", "");
    let mut silent = Command::new("nsenter")
        .arg(format!("--net={}", c.netns("h1")))
        .args([
            "socat",
            &format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"),
            "EXEC:sleep 600",
        ])
        .spawn()
        .expect("run socat");
    std::thread::sleep(Duration::from_millis(300));
    c.write(
        "drover.toml",
        &format!(
            "name = \"r-stall\"\n[hosts.h1]\ndocker = \"{}\"\npull_stall = \"3s\"\n",
            c.hosts.h1
        ),
    );
    c.set_job(
        "app",
        &format!("image = \"127.0.0.1:{port}/nobody/app:1\"\nhosts = [\"h1\"]\n"),
    );
    let started = Instant::now();
    c.drover(&["up", "--yes"])
        .status(1)
        .any_stderr()
        .stderr_has(&format!("host h1: pulling 127.0.0.1:{port}/nobody/app:1 failed: no progress for 3s (the host's pull_stall)"))
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    let _ = silent.kill();
    let _ = silent.wait();
    assert_eq!(c.containers("h1"), Vec::<String>::new());
}

/// Defect 3: An image pinned by ID was pulled on every create, failing without a registry.
#[test]
fn an_image_pinned_by_id_or_digest_is_never_pulled_when_present() {
    let c = cluster("r-byid", "");
    let id = c.docker("h1", &["image", "inspect", "-f", "{{.Id}}", IMAGE1]);
    let c = c.job("app", &format!("image = \"{id}\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    c.drover(&["diff"]).status(2).stdout_lacks("pull").run();
    c.drover(&["up", "--yes"]).stdout_lacks("pull").run();
    c.drover(&["diff"]).stdout_has("No changes").run();

    // An ID the host lacks cannot be pulled: said at once, nothing touched.
    let missing = format!("sha256:{}", "0".repeat(64));
    c.set_job("app", &format!("image = \"{missing}\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    c.drover(&["up", "--yes"])
        .status(1)
        .stdout_has("(an image ID cannot be pulled: load the image on the host, or name it by tag)")
        .stderr_has("an image ID cannot be pulled: load it there (docker load) or name it by tag")
        .run();
    assert_eq!(
        c.inspect("h1", "r-byid.app.h1.0", "{{.State.Status}}"),
        "running",
        "the previous version still runs"
    );

    // By digest, once the host has it.
    let reference = format!(
        "{}/drover-test/busybox:digest-{}",
        c.hosts.registry,
        std::process::id()
    );
    let local = drover_testkit::hosts::docker_local;
    local(&["tag", IMAGE1, &reference]);
    local(&["push", &reference]);
    let digest = local(&[
        "image",
        "inspect",
        "-f",
        "{{index .RepoDigests 0}}",
        &reference,
    ]);
    local(&["rmi", &reference]);
    c.set_job("app", &format!("image = \"{digest}\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"));
    // Pulled now, unless another test's pull of the same content left the digest on h1.
    c.drover(&["up", "--yes"]).run();
    assert_eq!(
        c.inspect("h1", "r-byid.app.h1.0", "{{.Config.Image}}"),
        digest
    );
    c.drover(&["diff"]).stdout_has("No changes").run();
    c.drover(&["up", "--yes"]).stdout_lacks("pull").run();
}

/// Defect 4: A task left on a host the job no longer lists was invisible to
/// `diff JOB`, `up JOB` and `status JOB`.
#[test]
fn per_job_commands_see_the_job_on_every_host() {
    let c = cluster("r-moved", "").job("app", "image = \"drover-test/busybox:1\"\nhosts = [\"h1\", \"h2\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n");
    c.drover(&["up", "--yes"]).run();
    c.set_job("app", "image = \"drover-test/busybox:1\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n");

    c.drover(&["diff", "app"])
        .status(2)
        .stdout_has("- remove  app h2/0  (")
        .stdout_has(", job app no longer runs on host h2)")
        .run();
    let status = c.drover(&["status", "--json", "app"]).run();
    let rows = status.json();
    let h2 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "h2")
        .expect("a row for h2");
    assert_eq!(h2["in_spec"], false);
    c.drover(&["up", "--yes", "app"]).run();
    assert_eq!(c.containers("h2"), Vec::<String>::new());
}

/// Defect 5: Env `a` + job `x.w` and env `a.x` + job `w` made the same container name.
#[test]
fn names_that_could_collide_are_refused_at_validate() {
    env()
        .file("drover.toml", "name = \"a\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n")
        .file("jobs/x.w.toml", "image = \"x:1\"\nhosts = [\"h\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/x.w.toml:1:1: invalid job name \"x.w\": use up to 63 letters, digits, '_' and '-', starting with a letter or digit (no dots: names join into container names with dots); the job's name is its file name\n")
        .run();
    env()
        .file("drover.toml", "name = \"a.x\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: drover.toml:1:8: invalid environment name \"a.x\": use up to 63 letters, digits, '_' and '-', starting with a letter or digit (no dots: names join into container names with dots)\n")
        .run();
    env()
        .file(
            "drover.toml",
            "name = \"a\"\n[hosts.\"h.1\"]\ndocker = \"unix:///x.sock\"\n",
        )
        .drover(&["validate"])
        .status(1)
        .stderr_has("error: drover.toml:2:1: invalid host name \"h.1\"")
        .run();
}

/// Defect 6: Valid specs that never converged: `on-failure:0` was replaced on every
/// `up`, a huge memory differed forever, `1500ms` silently became 1 s.
#[test]
fn what_validate_accepts_converges() {
    let c = cluster("r-converge", "").job(
        "app",
        r#"
        image = "drover-test/busybox:1"
        hosts = ["h1"]
        command = ["sleep", "3600"]
        restart = "on-failure:0"
        memory = "1024t"
        stop_timeout = "0s"
        [health]
        cmd = ["true"]
        interval = "500ms"
        timeout = "1500ms"
        "#,
    );
    c.drover(&["up", "--yes"]).run();
    c.drover(&["diff"])
        .stdout("No changes: 1 task(s) as specified.\n")
        .run();
    c.drover(&["up", "--yes"])
        .stdout("No changes: 1 task(s) as specified.\n")
        .run();
}

#[test]
fn what_cannot_be_honoured_is_refused_with_its_place() {
    env()
        .file("drover.toml", "name = \"p\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n")
        .file(
            "jobs/app.toml",
            r#"
            image = "x:1"
            hosts = ["h"]
            memory = "9000000t"
            stop_timeout = "1500ms"
            [health]
            cmd = ["true"]
            interval = "0s"
            retries = 0
            "#,
        )
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/app.toml:3:10: memory "9000000t" is too large: the largest allowed is 1024t
            jobs/app.toml:4:16: stop_timeout "1500ms" is not a whole number of seconds: the engine counts it in seconds (write e.g. "2s")
            jobs/app.toml:7:12: health interval must be above 0 (the engine reads 0 as its own default)
            jobs/app.toml:8:11: health retries must be between 1 and 100, got 0 (the engine reads 0 as its default of 3)
            "#,
        )
        .run();
}

/// Defect 7: A command that exits at once: `up` said `created` and exited 0, and
/// `status` showed nothing wrong.
#[test]
fn a_crash_looping_task_fails_up_and_shows_in_status() {
    let c = cluster("r-crash", "").job(
        "app",
        "image = \"drover-test/busybox:1\"\nhosts = [\"h1\"]\ncommand = [\"sh\", \"-c\", \"echo cannot open /etc/app.conf >&2; exit 3\"]\nstop_timeout = \"1s\"\n",
    );
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr_has("FAILED app h1/0 (create): the new container failed: it ")
        .stderr_has("  its last log lines:\n    cannot open /etc/app.conf\n")
        .run();
    // The new container does not keep the task's name: the task is missing,
    // the evidence is kept aside, and status says why, with the exit code.
    let rows = c.drover(&["status", "--json"]).run().json();
    let row = &rows[0];
    assert_eq!(row["state"], "missing", "{row}");
    assert_eq!(row["exit_code"], 3, "{row}");
    assert!(
        row["failing"]
            .as_str()
            .is_some_and(|f| f.contains("kept stopped as r-crash.app.h1.0.failed")),
        "{row}"
    );
    // Not "No changes": the task is still to be created.
    c.drover(&["diff"])
        .status(2)
        .stdout_has("+ create  app h1/0  (missing)")
        .run();
    c.drover(&["up", "--yes"])
        .status(1)
        .any_stderr()
        .stderr_has("FAILED app h1/0 (create)")
        .run();
}

#[test]
fn an_exited_task_and_an_oom_kill_are_named() {
    let c = cluster("r-oom", "").job(
        "hog",
        r#"
        image = "drover-test/busybox:1"
        hosts = ["h1"]
        command = ["sh", "-c", "sh -c 'x=$(head -c 40000000 /dev/zero | tr \"\\0\" x)'; sleep 1; exit 3"]
        memory = "16m"
        restart = "no"
        stop_timeout = "1s"
        "#,
    );
    // A process in the task is killed for memory, and the task then exits:
    // the engine records the kill while the task still runs. (A main
    // process killed outright may exit before the engine hears of the
    // kill; the gate's message for exit code 137 says what it usually means.)
    c.drover(&["up", "--yes"])
        .status(1)
        .stderr_has("a process in it was killed for exceeding its memory limit, and it exited with code 3: raise `memory`")
        .run();
    let rows = c.drover(&["status", "--json"]).run().json();
    assert_eq!(rows[0]["oom_killed"], true, "{rows}");
    assert_eq!(rows[0]["state"], "missing", "{rows}");
    assert_eq!(rows[0]["exit_code"], 3, "{rows}");
    c.drover(&["status"])
        .stdout_has("missing (its last new container failed, exit 3, killed for memory)")
        .run();
    c.drover(&["diff"])
        .status(2)
        .stdout_has("+ create  hog h1/0  (missing)")
        .run();
}

/// Defect 8: `validate` passed what `up` then rejected with an engine message and no place.
#[test]
fn validate_rejects_what_the_engine_would() {
    env()
        .file("drover.toml", "name = \"p\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n")
        .file(
            "jobs/app.toml",
            r#"
            image = "Registry.Example/App"
            hosts = ["h"]
            volumes = ["/a:/data", "/b:/data", "/c:/etc/localtime", "/d:/"]
            network = "mynet"
            log = { driver = "fancy" }
            env = { A = "x\u0000y", DROVER_TASK = "7" }
            "#,
        )
        .drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/app.toml:1:9: invalid image reference "Registry.Example/App": name part "App" must be lowercase letters and digits, joined by '.', '_', '__' or '-' (expected [REGISTRY/]NAME[:TAG][@sha256:DIGEST], or an image ID sha256:<64 hex digits>)
            jobs/app.toml:3:24: two volumes are mounted at "/data" in the container (/a:/data and /b:/data): each container path takes one
            jobs/app.toml:3:57: invalid volume "/d:/": a volume cannot be mounted over the container's root "/"
            jobs/app.toml:4:11: unknown network "mynet": expected "host" (the default), "bridge" or "none"
            jobs/app.toml:5:18: unknown log driver "fancy": expected one of local, json-file, journald, syslog, gelf, fluentd, awslogs, splunk, gcplogs, logentries
            jobs/app.toml:6:13: the value of A contains a NUL character
            jobs/app.toml:6:39: environment variable DROVER_TASK is reserved: drover sets DROVER_ENV, DROVER_JOB, DROVER_HOST and DROVER_TASK in every task, and names starting with DROVER_ are its own
            "#,
        )
        .run();
    env()
        .file("drover.toml", "name = \"p\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n")
        .file("jobs/app.toml", "image = \"x:1\"\nhosts = [\"h\"]\nvolumes = [\"/c:/etc/localtime\"]\nhost_files = [\"/etc/localtime\"]\n")
        .drover(&["validate"])
        .status(1)
        .stderr("error: jobs/app.toml:4:15: \"/etc/localtime\" is both a host file and the container path of volume /c:/etc/localtime: drop one of them\n")
        .run();
}

/// Defect 9: A non-UTF-8 file repeated its error without a place; a job file that
/// is a directory or an editor's lock link broke every command.
#[test]
fn file_hygiene() {
    let test = env()
        .file(
            "drover.toml",
            "name = \"p\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n",
        )
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"h\"]\n");
    std::fs::write(
        test.path().join("jobs/bad.toml"),
        b"image = \"x:1\"\n# caf\xe9\n",
    )
    .unwrap();
    std::fs::create_dir(test.path().join("jobs/dir.toml")).unwrap();
    std::os::unix::fs::symlink(
        "user@host.1234:1700000000",
        test.path().join("jobs/.#web.toml"),
    )
    .unwrap();
    std::fs::write(test.path().join("jobs/web.toml~"), "garbage = [").unwrap();
    test.drover(&["validate"])
        .status(1)
        .stderr(
            r#"
            error: jobs/bad.toml:2:6: not valid UTF-8: TOML files must be UTF-8 text (re-save the file as UTF-8)
            jobs/dir.toml: is a directory, expected a TOML file
            "#,
        )
        .run();
}

#[test]
fn an_unknown_host_names_the_file_the_hosts_came_from() {
    env()
        .file(
            "drover.toml",
            "name = \"p\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n",
        )
        .file(
            "drover.qa.toml",
            "[hosts.qa1]\ndocker = \"unix:///qa.sock\"\n",
        )
        .file("jobs/web.toml", "image = \"x:1\"\nhosts = [\"h\"]\n")
        .drover(&["-e", "qa", "validate"])
        .status(1)
        .stderr("error: jobs/web.toml:2:10: unknown host \"h\" (hosts in drover.qa.toml: qa1)\n")
        .run();
}

#[test]
fn a_web_server_in_place_of_an_engine_gets_a_short_message() {
    let html = HtmlServer::start();
    let extra = format!("[hosts.web]\ndocker = \"tcp://127.0.0.1:{}\"\n", html.port);
    let c = cluster("r-html", &extra).job("app", "image = \"x:1\"\nhosts = [\"web\"]\n");
    let run = c.drover(&["diff"]).status(1).run();
    let line = run.stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with(&format!("! host web (tcp://127.0.0.1:{}) is unreachable: it does not answer as a Docker engine: ", html.port)), "{line}");
    assert!(line.contains("Welcome to nginx!"), "{line}");
    assert!(line.len() < 400 && !line.contains("<p>"), "{line}");
}

/// Defect 10: A wrong `-C` (no `jobs/`) planned to remove every container of the
/// environment; `down typo` exited 0; `docker update --cpus` was not drift.
#[test]
fn dangerous_defaults() {
    env()
        .remove("jobs")
        .file("drover.toml", "name = \"p\"\n[hosts.h]\ndocker = \"unix:///x.sock\"\n")
        .drover(&["diff"])
        .status(1)
        .stderr_has("error: no jobs/ directory in ")
        .stderr_has(": is this the environment directory? (create jobs/, even empty, to declare an environment without jobs)\n")
        .run();

    let c = cluster("r-defaults", "").job("app", "image = \"drover-test/busybox:1\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n");
    c.drover(&["down", "--yes", "ap"])
        .status(1)
        .stderr_has("error: unknown job \"ap\" (jobs in ")
        .stderr_has("app), and no host has containers of it\n")
        .run();
    c.drover(&["up", "--yes"]).run();
    c.docker(
        "h1",
        &[
            "update",
            "--cpus",
            "0.5",
            "--pids-limit",
            "100",
            "--restart",
            "always",
            "r-defaults.app.h1.0",
        ],
    );
    c.drover(&["diff"])
        .status(2)
        .stdout_has("    cpus: 0.5 => (none)\n")
        .stdout_has("    pids_limit: 100 => (none)\n")
        .stdout_has("    restart: \"always\" => \"unless-stopped\"\n")
        .run();
    c.drover(&["up", "--yes"]).run();
    c.drover(&["diff"]).stdout_has("No changes").run();
    assert_eq!(
        c.inspect("h1", "r-defaults.app.h1.0", "{{.HostConfig.NanoCpus}}"),
        "0"
    );
}

/// Defect 11: Observe, apply and status opened up to 32 requests per host with no
/// bound on the total: with a few hundred hosts, thousands of sockets.
#[test]
fn requests_in_flight_to_one_host_are_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // A proxy in front of h1 that counts connections open at once.
    let dir = tempfile::Builder::new()
        .prefix("count")
        .tempdir_in("/tmp")
        .unwrap();
    let path = dir.path().join("d.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let upstream = drover_testkit::hosts::Hosts::get()
        .h1
        .trim_start_matches("unix://")
        .to_string();
    let (open, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, p) = (Arc::clone(&open), Arc::clone(&peak));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (o, p, upstream) = (Arc::clone(&o), Arc::clone(&p), upstream.clone());
            std::thread::spawn(move || {
                let now = o.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                if let Ok(server) = std::os::unix::net::UnixStream::connect(&upstream) {
                    let (mut c1, mut s1) =
                        (client.try_clone().unwrap(), server.try_clone().unwrap());
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c1, &mut s1);
                        let _ = s1.shutdown(std::net::Shutdown::Both);
                    });
                    let (mut s2, mut c2) = (server, client);
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Both);
                    let _ = t.join();
                }
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let extra = format!("[hosts.counted]\ndocker = \"unix://{}\"\n", path.display());
    let c = cluster("r-bound", &extra).job("app", "image = \"drover-test/busybox:1\"\nhosts = [\"counted\"]\ninstances = 40\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\nrestart = \"no\"\n");
    c.drover(&["up", "--yes"]).run();
    peak.store(0, Ordering::SeqCst);
    c.drover(&["diff"]).run();
    let seen = peak.load(Ordering::SeqCst);
    // 16 requests at most. The proxy counts connections, and the client
    // opens a new one when a request starts while one that just finished is
    // not yet back in its pool: a few more connections than requests may be
    // open. Unbounded, the 40 inspections would open about 40.
    assert!(seen <= 24, "{seen} connections open to one host at once");
    assert!(seen >= 4, "the proxy saw the requests ({seen})");

    // Usage samples only wait for the engine's collector: all 40 at once
    // (their own bound is 64), not 16 per collector tick.
    peak.store(0, Ordering::SeqCst);
    c.drover(&["status"]).run();
    let seen = peak.load(Ordering::SeqCst);
    assert!(
        (40..=66).contains(&seen),
        "{seen} connections open to one host at once while sampling 40 containers"
    );
}

/// Issue 12, defect 10: after a tag was pushed again with other contents,
/// `history` showed two generations with the same image and spec hash and
/// no way to tell which ran what: each now shows its image ID.
#[test]
fn history_tells_two_generations_of_a_re_pushed_tag_apart() {
    let c = cluster("r-repush", "");
    let reference = format!(
        "{}/drover-test/repush-{}:live",
        c.hosts.registry,
        std::process::id()
    );
    let job = format!(
        "image = \"{reference}\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"
    );
    let c = c.job("app", &job);
    let push = |image: &str| {
        c.docker("h1", &["tag", image, &reference]);
        c.docker("h1", &["push", &reference]);
        c.docker("h1", &["image", "inspect", "-f", "{{.Id}}", image])
    };
    let first = push(IMAGE1);
    c.drover(&["up", "--yes"]).run();
    let second = push("drover-test/busybox:2");
    assert_ne!(first, second);
    c.drover(&["up", "--yes"]).run();

    let history = c.drover(&["history", "app", "--json"]).run().json();
    let seen: Vec<(&str, &str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["image"].as_str().unwrap(),
                g["spec"].as_str().unwrap(),
                g["image_id"].as_str().unwrap(),
            )
        })
        .collect();
    let spec = seen[0].1;
    assert_eq!(
        seen,
        [
            (reference.as_str(), spec, second.as_str()),
            (reference.as_str(), spec, first.as_str()),
        ]
    );
    let short = |id: &str| id.trim_start_matches("sha256:")[..12].to_string();
    let table = c.drover(&["history", "app"]).run().stdout;
    let rows: Vec<&str> = table.lines().collect();
    assert!(rows[0].contains(" IMAGE ID "), "{table}");
    assert!(
        rows[1].contains(&format!("{reference}  {}  {spec}", short(&second)))
            && rows[2].contains(&format!("{reference}  {}  {spec}", short(&first))),
        "{table}"
    );
    let _ = c.docker_raw("h1", &["rmi", &reference]);
}

// Issue 12, items 13 and 14: what `validate` accepts, every later command
// accepts; what a later command would refuse, `validate` refuses first with
// its place; machine output is JSON, and a foreign answer is quoted short.

/// A sleeping job on `hosts`.
fn sleeping(hosts: &str) -> String {
    format!("image = \"{IMAGE1}\"\nhosts = [{hosts}]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n")
}

/// Issue 12 (13): a job file renamed `jobs/side.tml` was silently ignored, and
/// `diff` then planned to remove the job `side`.
#[test]
fn a_job_file_that_is_not_named_as_one_is_an_error_not_a_removal() {
    let c = cluster("r12-tml", "").job("side", &sleeping("\"h1\""));
    c.drover(&["up", "--yes"]).any_stderr().run();
    std::fs::rename(
        c.path().join("jobs/side.toml"),
        c.path().join("jobs/side.tml"),
    )
    .unwrap();
    let refusal = "error: jobs/side.tml: is not a job file: a job is a file jobs/NAME.toml (rename it to end in .toml, or move it out of jobs/)\n";
    for command in ["validate", "diff", "up"] {
        c.drover(&[command, "--yes"][..if command == "up" { 2 } else { 1 }])
            .status(1)
            .stdout("")
            .stderr(refusal)
            .run();
    }
    assert_eq!(c.containers("h1"), vec!["r12-tml.side.h1.0".to_string()]);
    // An editor's backup beside it is no job and no error.
    std::fs::rename(
        c.path().join("jobs/side.tml"),
        c.path().join("jobs/side.toml"),
    )
    .unwrap();
    std::fs::write(c.path().join("jobs/side.toml~"), "garbage").unwrap();
    c.drover(&["diff"])
        .stdout("No changes: 1 task(s) as specified.\n")
        .run();
}

/// Issue 12 (13): `validate` passed a job whose secret had no value, which
/// `up` then refused; a secrets file that was a directory counted as none.
#[test]
fn validate_and_up_refuse_a_missing_secret_alike() {
    let c = cluster("r12-secret", "").job(
        "app",
        &format!("{}secret_env = [\"R12_SECRET\"]\n", sleeping("\"h1\"")),
    );
    let missing = "error: jobs/app.toml:5:15: job app: secret R12_SECRET has no value: it is not in drover's environment, and there is no secrets.env beside drover.toml: export R12_SECRET=... or add the line R12_SECRET=... to secrets.env\n";
    c.drover(&["validate"]).status(1).stderr(missing).run();
    c.drover(&["up", "--yes"]).status(1).stderr(missing).run();
    assert_eq!(c.containers("h1"), Vec::<String>::new());

    std::fs::create_dir(c.path().join("secrets.env")).unwrap();
    let directory = format!(
        "error: the secrets file {}/secrets.env is a directory: secrets are KEY=VALUE lines in a file\n",
        c.path().display()
    );
    for command in ["validate", "up"] {
        c.drover(&[command, "--yes"][..if command == "up" { 2 } else { 1 }])
            .env("R12_SECRET", "s3")
            .status(1)
            .stderr(&directory)
            .run();
    }
    std::fs::remove_dir(c.path().join("secrets.env")).unwrap();
    std::fs::write(c.path().join("secrets.env"), "R12_SECRET=s3\n").unwrap();
    c.drover(&["validate"])
        .stdout(&format!(
            "{}: valid (2 host(s), 1 job(s), 1 task(s))\n",
            c.env
        ))
        .run();
    c.drover(&["up", "--yes"]).any_stderr().run();
    assert_eq!(c.containers("h1"), vec!["r12-secret.app.h1.0".to_string()]);
}

/// Issue 12 (14): `lock --json` and `unlock --json` printed text.
#[test]
fn lock_and_unlock_print_json() {
    let c = cluster("r12-lockjson", "").job("app", &sleeping("\"h1\", \"h2\""));
    let locked = c
        .drover(&["--json", "lock", "app", "--reason", "looking at the 502s"])
        .run()
        .json();
    assert_eq!(locked["job"], "app");
    assert_eq!(locked["locked"], true);
    assert_eq!(locked["hosts"], serde_json::json!(["h1", "h2"]));
    assert_eq!(locked["holder"]["reason"], "looking at the 502s");
    assert_eq!(locked["holder"]["command"], "lock");
    assert_eq!(locked["unreachable"], serde_json::json!([]));
    let by = locked["holder"]["by"].clone();

    let released = c.drover(&["--json", "unlock", "app"]).run().json();
    assert_eq!(released["job"], "app");
    let released_hosts: Vec<&str> = released["released"]
        .as_array()
        .expect("released is an array")
        .iter()
        .map(|l| {
            assert_eq!(l["reason"], "looking at the 502s");
            assert_eq!(l["by"], by);
            l["host"].as_str().unwrap_or_default()
        })
        .collect();
    assert_eq!(released_hosts, vec!["h1", "h2"]);
    assert_eq!(
        c.drover(&["--json", "unlock", "app"]).run().json(),
        serde_json::json!({"job": "app", "released": [], "unreachable": []})
    );
}

/// Issue 12 (14): `exec --json` printed the command's output as text.
#[test]
fn exec_prints_json() {
    let c = cluster("r12-execjson", "").job("app", &sleeping("\"h1\""));
    c.drover(&["up", "--yes"]).any_stderr().run();
    let out = c
        .drover(&[
            "--json",
            "exec",
            "app",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .status(3)
        .run();
    assert_eq!(
        out.json(),
        serde_json::json!([{"host": "h1", "task": 0, "exit_code": 3, "stdout": "out\n", "stderr": "err\n", "error": null}])
    );
    let out = c
        .drover(&["--json", "exec", "app", "--all", "--", "echo", "hi"])
        .run();
    assert_eq!(out.json()[0]["stdout"], "hi\n");
    c.drover(&["--json", "exec", "app"])
        .status(1)
        .stderr("error: an interactive shell has no JSON form: give a command after --, e.g. `drover exec app --json -- ls /`\n")
        .run();
}

/// A loopback server answering every request with `status` and `body`.
fn foreign_server(status: &'static str, body: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    port
}

/// Issue 12 (14): an unreachable engine's foreign body was dumped into the
/// message (`an HTML page, not a Docker engine answer: 0000…` and binary bytes).
#[test]
fn a_foreign_answer_is_quoted_short_and_printable() {
    let binary: Vec<u8> = b"0000"
        .iter()
        .copied()
        .chain((0u8..=255).cycle().take(8000))
        .chain(b"<html><title>x</title></html>".iter().copied())
        .collect();
    // A page with no title, a few bytes of binary in its text.
    let mut page = b"<!DOCTYPE html><html><body><p>Service\x00\x1b Unavailable</p>".to_vec();
    page.extend((0u8..=40).chain(128..=160));
    page.extend(b"<p>lorem ipsum</p>".repeat(500));
    page.extend(b"</body></html>");
    let (bin, html) = (
        foreign_server("500 Internal Server Error", binary),
        foreign_server("502 Bad Gateway", page),
    );
    let extra = format!("[hosts.bin]\ndocker = \"tcp://127.0.0.1:{bin}\"\n[hosts.page]\ndocker = \"tcp://127.0.0.1:{html}\"\n");
    let c = cluster("r12-foreign", &extra).job("app", &sleeping("\"bin\", \"page\""));
    let run = c.drover(&["diff"]).status(1).run();
    let lines: Vec<&str> = run.stdout.lines().take(2).collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(lines[0].starts_with(&format!("! host bin (tcp://127.0.0.1:{bin}) is unreachable: it does not answer as a Docker engine: engine error 500: an answer that is not text (binary data), not a Docker engine answer: \"0000")), "{}", lines[0]);
    assert!(lines[1].starts_with(&format!("! host page (tcp://127.0.0.1:{html}) is unreachable: it does not answer as a Docker engine: engine error 502: an HTML page, not a Docker engine answer: \"Service Unavailable")), "{}", lines[1]);
    for line in lines {
        assert!(
            !line.chars().any(|c| c.is_control() || c == '\u{fffd}'),
            "{line:?}"
        );
        assert!(line.chars().count() < 250, "{line}");
    }
}
