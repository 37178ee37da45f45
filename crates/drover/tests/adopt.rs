//! `drover adopt` and `drover.commit` against the suite's real engines.
//!
//! Containers are started by hand with `docker run`, as the teams drover is
//! for start theirs; `adopt` must write files `validate` accepts, take the
//! containers over without restarting one (same ID, same start time),
//! leave what no job key says untouched, keep a secret's value out of
//! every file but the secrets file and out of every output, and from then
//! on every command must treat each as its task: `diff`, `update`,
//! `rollback`, `status`, `history`.
//!
//! Other tests run containers of their own on the same engines, so every
//! `adopt` here names the containers it adopts.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";
const IMAGE2: &str = "drover-test/busybox:2";

/// Containers started by hand on the suite's hosts, removed when the test ends
/// (they carry no environment's label, so the [`Cluster`] would not).
struct HandRun {
    socket_h1: String,
    socket_h2: String,
    ids: std::cell::RefCell<Vec<(String, String)>>,
}

impl HandRun {
    fn new(c: &Cluster) -> HandRun {
        HandRun {
            socket_h1: c.socket("h1").to_string(),
            socket_h2: c.socket("h2").to_string(),
            ids: Default::default(),
        }
    }

    fn socket(&self, host: &str) -> &str {
        if host == "h1" {
            &self.socket_h1
        } else {
            &self.socket_h2
        }
    }

    /// `docker run -d --name NAME ARGS…` on `host`; its ID.
    #[track_caller]
    fn run(&self, host: &str, name: &str, args: &[&str]) -> String {
        let _ = Command::new("docker")
            .args(["-H", self.socket(host), "rm", "-f", name])
            .output();
        let out = Command::new("docker")
            .args(["-H", self.socket(host), "run", "-d", "--name", name])
            .args(args)
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker run {name} on {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        self.ids.borrow_mut().push((host.to_string(), id.clone()));
        id
    }
}

impl Drop for HandRun {
    fn drop(&mut self) {
        for (host, id) in self.ids.borrow().iter() {
            let _ = Command::new("docker")
                .args(["-H", self.socket(host), "rm", "-f", "-v", id])
                .output();
        }
    }
}

/// What `docker inspect` says of a container (by ID or name): its name, ID,
/// start time and restart count — what adoption must not change but the name.
fn identity(c: &Cluster, host: &str, container: &str) -> String {
    c.inspect(
        host,
        container,
        "{{.Name}} {{.Id}} {{.State.StartedAt}} {{.RestartCount}} {{.State.Status}}",
    )
}

/// Every file under the environment directory, with its text.
fn files(c: &Cluster) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![c.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let relative = path
                    .strip_prefix(c.path())
                    .expect("inside")
                    .display()
                    .to_string();
                out.push((relative, text));
            }
        }
    }
    out.sort();
    out
}

/// `text` with each container's short ID replaced by `<name>` and the
/// files' time stamp by `<at>`, so whole outputs can be compared.
fn normalized(text: &str, ids: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (name, id) in ids {
        text = text.replace(&id[..12], &format!("<{name}>"));
    }
    while let Some(start) = text.find("` at 20") {
        let from = start + "` at ".len();
        let Some(len) = text[from..].find('Z') else {
            break;
        };
        text.replace_range(from..from + len + 1, "<at>");
    }
    text
}

#[test]
fn adopt_takes_a_hand_run_fleet_over_without_a_restart() {
    let c = cluster("adopt-e2e", "");
    let hand = HandRun::new(&c);
    let p = "ae2e";
    let secret = "correct-horse-battery-staple-4417";
    let data = tempfile::tempdir().expect("temp dir");
    let bind = format!("{}:/data", data.path().display());
    let safe = [
        "--init",
        "--log-driver",
        "local",
        "--log-opt",
        "max-size=20m",
        "--log-opt",
        "max-file=5",
    ];
    let web = format!("{p}-web");
    let api = format!("{p}-api");
    let worker = format!("{p}-worker");
    let side = format!("{p}-side");
    let mut web_args: Vec<&str> = safe.to_vec();
    web_args.extend([
        "--restart",
        "unless-stopped",
        "-e",
        "TZ=UTC",
        IMAGE1,
        "sleep",
        "3600",
    ]);
    let web1 = hand.run("h1", &web, &web_args);
    let web2 = hand.run("h2", &web, &web_args);
    // Docker's defaults: no init, an unbounded json-file log.
    let password = format!("DB_PASSWORD={secret}");
    let api1 = hand.run(
        "h1",
        &api,
        &["-e", &password, "-e", "MODE=prod", IMAGE1, "sleep", "3601"],
    );
    let mut worker_args: Vec<&str> = safe.to_vec();
    worker_args.extend([
        "-v",
        &bind,
        "--user",
        "1000:1000",
        "--workdir",
        "/data",
        "--ulimit",
        "nofile=1024:2048",
        "--cap-add",
        "NET_ADMIN",
        IMAGE1,
        "sleep",
        "3602",
    ]);
    let worker1 = hand.run("h1", &worker, &worker_args);
    let network = format!("container:{web}");
    let side1 = hand.run(
        "h1",
        &side,
        &["--network", &network, IMAGE1, "sleep", "3603"],
    );
    let names = [web.as_str(), api.as_str(), worker.as_str(), side.as_str()];
    let ids = [
        ("web1", web1.as_str()),
        ("web2", web2.as_str()),
        ("api1", api1.as_str()),
        ("worker1", worker1.as_str()),
        ("side1", side1.as_str()),
    ];
    let before: Vec<String> = ids
        .iter()
        .map(|(label, id)| identity(&c, if *label == "web2" { "h2" } else { "h1" }, id))
        .collect();
    let files_before = files(&c);

    // --dry-run: the files it would write, secrets masked; nothing changes.
    // What equals drover's defaults (an init, the local log, restart
    // unless-stopped) is left out; what all three jobs say alike goes into
    // [defaults], as no other job exists.
    let mut args = vec!["adopt", "--dry-run"];
    args.extend(names);
    let dry = c.drover(&args).run();
    let data_dir = data.path().display().to_string();
    assert_eq!(
        normalized(&dry.stdout, &ids),
        format!(
            r#"+ would write jobs/ae2e-api.toml:
    # Job ae2e-api, written by `drover adopt` at <at> from the containers
    # ae2e-api on h1.
    image = "drover-test/busybox:1"
    hosts = ["h1"]
    command = ["sleep", "3601"]
    secret_env = ["DB_PASSWORD"]
    restart = "no"
    
    [env]
    MODE = "prod"
+ would write jobs/ae2e-web.toml:
    # Job ae2e-web, written by `drover adopt` at <at> from the containers
    # ae2e-web on h1, h2.
    image = "drover-test/busybox:1"
    hosts = ["h1", "h2"]
    command = ["sleep", "3600"]
    
    [env]
    TZ = "UTC"
+ would write jobs/ae2e-worker.toml:
    # Job ae2e-worker, written by `drover adopt` at <at> from the containers
    # ae2e-worker on h1.
    image = "drover-test/busybox:1"
    hosts = ["h1"]
    command = ["sleep", "3602"]
    user = "1000:1000"
    workdir = "/data"
    volumes = ["{data_dir}:/data"]
    restart = "no"
    ulimits = {{ nofile = "1024:2048" }}
    cap_add = ["CAP_NET_ADMIN"]
~ would set in drover.toml [defaults] (every adopted job says it; no other job changes):
    host_files = []
    network = "bridge"
    stop_timeout = "10s"
+ would create secrets.env (readable by its owner only): DB_PASSWORD=***
would take over (renamed to its task and recorded; never restarted):
  ae2e-api h1/0  ae2e-api (<api1>) -> adopt-e2e.ae2e-api.h1.0
  ae2e-web h1/0  ae2e-web (<web1>) -> adopt-e2e.ae2e-web.h1.0
  ae2e-web h2/0  ae2e-web (<web2>) -> adopt-e2e.ae2e-web.h2.0
  ae2e-worker h1/0  ae2e-worker (<worker1>) -> adopt-e2e.ae2e-worker.h1.0
cannot adopt (no job key says what they run with; left untouched):
  h1 ae2e-side (<side1>):
    --network container:<web1>: it shares another container's network: a job's network is host, bridge or none
the next `up` will change 1 of the adopted tasks (1 replaced; `drover adopt` itself replaced none):
~ replace ae2e-api h1/0  (<api1>, adopted: it runs otherwise than its file says)
    init: false => true
    log.driver: "json-file" => "local"
    log.max-file: (none) => "5"
    log.max-size: (none) => "20m"
Plan: 1 to replace; 3 task(s) unchanged.
dry run: nothing changed
"#
        )
    );
    assert!(!dry.stdout.contains(secret) && !dry.stderr.contains(secret));
    assert_eq!(files(&c), files_before, "--dry-run writes nothing");
    let after_dry: Vec<String> = ids
        .iter()
        .map(|(label, id)| identity(&c, if *label == "web2" { "h2" } else { "h1" }, id))
        .collect();
    assert_eq!(after_dry, before, "--dry-run renames nothing");
    assert_eq!(
        c.containers("h1"),
        Vec::<String>::new(),
        "and records nothing"
    );

    // Without a terminal, only --yes changes anything.
    let mut args = vec!["adopt"];
    args.extend(names);
    c.drover(&args).status(1).stderr_has("pass --yes").run();
    assert_eq!(files(&c), files_before);

    let mut args = vec!["adopt", "--yes"];
    args.extend(names);
    let done = c.drover(&args).run();
    assert!(
        done.stdout.contains("✓ adopted ae2e-web: h1/0, h2/0\n"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("wrote jobs/ae2e-web.toml\n"),
        "{}",
        done.stdout
    );
    assert!(!done.stdout.contains(secret) && !done.stderr.contains(secret));
    c.drover(&["validate"])
        .stdout("adopt-e2e: valid (2 host(s), 3 job(s), 4 task(s))\n")
        .run();

    // Same containers, same start, no restart; only the names are the tasks'.
    let after: Vec<String> = ids
        .iter()
        .map(|(label, id)| identity(&c, if *label == "web2" { "h2" } else { "h1" }, id))
        .collect();
    let renamed = |line: &str, to: &str| {
        let (_, rest) = line.split_once(' ').expect("a name first");
        format!("/{to} {rest}")
    };
    assert_eq!(
        after,
        [
            renamed(&before[0], "adopt-e2e.ae2e-web.h1.0"),
            renamed(&before[1], "adopt-e2e.ae2e-web.h2.0"),
            renamed(&before[2], "adopt-e2e.ae2e-api.h1.0"),
            renamed(&before[3], "adopt-e2e.ae2e-worker.h1.0"),
            before[4].clone(),
        ]
    );
    assert_eq!(
        c.containers("h1"),
        [
            "adopt-e2e.ae2e-api.h1.adopted",
            "adopt-e2e.ae2e-web.h1.adopted",
            "adopt-e2e.ae2e-worker.h1.adopted",
        ],
        "one record per job and host, never started"
    );

    // The secret: in the secrets file (owner only), nowhere else.
    let secrets = c.path().join("secrets.env");
    assert_eq!(
        std::fs::read_to_string(&secrets).expect("secrets.env"),
        format!("DB_PASSWORD={secret}\n")
    );
    assert_eq!(
        std::fs::metadata(&secrets)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    for (file, text) in files(&c) {
        if file != "secrets.env" {
            assert!(!text.contains(secret), "{file} holds the secret");
        }
    }

    // What matched its file is unchanged; what did not, `up` would replace.
    c.drover(&["diff", "ae2e-web", "ae2e-worker"])
        .stdout("No changes: 3 task(s) as specified.\n")
        .run();
    let diff = c.drover(&["diff"]).status(2).run();
    assert!(
        diff.stdout.contains("~ replace ae2e-api h1/0")
            && diff.stdout.contains("    init: false => true\n"),
        "{}",
        diff.stdout
    );
    assert!(!diff.stdout.contains(secret));

    // Every command sees them as their tasks.
    let status = c.drover(&["--json", "status"]).run().json();
    let rows: Vec<(String, String, String)> = status
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                format!(
                    "{} {}/{}",
                    r["job"].as_str().unwrap_or(""),
                    r["host"].as_str().unwrap_or(""),
                    r["task"]
                ),
                r["container"].as_str().unwrap_or("").to_string(),
                r["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "ae2e-api h1/0".to_string(),
                api1[..12].to_string(),
                "running".to_string()
            ),
            (
                "ae2e-web h1/0".to_string(),
                web1[..12].to_string(),
                "running".to_string()
            ),
            (
                "ae2e-web h2/0".to_string(),
                web2[..12].to_string(),
                "running".to_string()
            ),
            (
                "ae2e-worker h1/0".to_string(),
                worker1[..12].to_string(),
                "running".to_string()
            ),
        ]
    );
    let exec = c
        .drover(&[
            "exec",
            "ae2e-worker",
            "--",
            "sh",
            "-c",
            "id -u; pwd; ulimit -Sn; ulimit -Hn",
        ])
        .any_stderr()
        .run();
    assert_eq!(exec.stdout, "1000\n/data\n1024\n2048\n");

    // The side container: named above, and untouched.
    assert_eq!(identity(&c, "h1", &side1), before[4]);

    // `update` rolls the adopted job out as any other; the adopted
    // containers become kept generations, and `rollback` brings them back.
    c.drover(&["update", "ae2e-web", "--image", IMAGE2, "--yes"])
        .any_stderr()
        .run();
    let new_web1 = c.inspect(
        "h1",
        "adopt-e2e.ae2e-web.h1.0",
        "{{.Id}} {{.Config.Image}} {{index .Config.Labels \"drover.env\"}}",
    );
    assert!(
        !new_web1.starts_with(&web1) && new_web1.ends_with(&format!("{IMAGE2} adopt-e2e")),
        "{new_web1}"
    );
    assert_eq!(
        c.inspect("h1", &web1, "{{.Name}} {{.State.Status}}"),
        format!("/adopt-e2e.ae2e-web.h1.0.kept-{} exited", &web1[..12])
    );
    c.drover(&["diff", "ae2e-web"])
        .stdout("No changes: 2 task(s) as specified.\n")
        .run();
    let history = c.drover(&["--json", "history", "ae2e-web"]).run().json();
    let kept: Vec<&str> = history
        .as_array()
        .expect("generations")
        .iter()
        .filter(|g| g["current"] == false)
        .map(|g| g["command"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kept, ["adopt", "adopt"]);

    c.drover(&["rollback", "ae2e-web", "--yes"])
        .any_stderr()
        .run();
    for (host, id) in [("h1", &web1), ("h2", &web2)] {
        assert_eq!(
            c.inspect(host, id, "{{.Name}} {{.State.Status}}"),
            format!("/adopt-e2e.ae2e-web.{host}.0 running")
        );
    }
}

#[test]
fn a_job_file_that_exists_is_never_overwritten() {
    let c = cluster("adopt-clash", "").job(
        "acl-web",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h2\"]\ncommand = [\"sleep\", \"3600\"]\n"),
    );
    let hand = HandRun::new(&c);
    let id = hand.run("h1", "acl-web", &[IMAGE1, "sleep", "3600"]);
    let job_before = std::fs::read_to_string(c.path().join("jobs/acl-web.toml")).expect("job");
    let out = c
        .drover(&["adopt", "--yes", "acl-web"])
        .status(1)
        .stderr_has(
            "jobs/acl-web.toml exists: the containers acl-web (h1) would be adopted as job acl-web",
        )
        .run();
    assert_eq!(out.stdout, "");
    assert_eq!(
        std::fs::read_to_string(c.path().join("jobs/acl-web.toml")).expect("job"),
        job_before
    );
    assert_eq!(c.inspect("h1", &id, "{{.Name}}"), "/acl-web");
    assert_eq!(c.containers("h1"), Vec::<String>::new());
}

#[test]
fn a_stopped_container_is_left_alone_and_a_missing_one_is_an_error() {
    let c = cluster("adopt-idle", "");
    let hand = HandRun::new(&c);
    let id = hand.run("h2", "aid-done", &[IMAGE1, "true"]);
    let wait = Command::new("docker")
        .args(["-H", c.socket("h2"), "wait", &id])
        .output()
        .expect("docker wait");
    assert!(wait.status.success());
    let out = c.drover(&["adopt", "--dry-run", "aid-done"]).run();
    assert_eq!(
        out.stdout,
        format!(
            "left alone:\n  h2 aid-done ({}): it does not run (exited): adopting it would start it at the next `up`; start it by hand first to adopt it\nnothing to adopt\n",
            &id[..12]
        )
    );
    c.drover(&["adopt", "--dry-run", "aid-nothing-of-that-name"])
        .status(1)
        .stderr(
            "error: no container \"aid-nothing-of-that-name\" that no environment manages on the hosts (h1, h2)\n",
        )
        .run();
}

/// `git ARGS…` in `dir`, with an author of its own; its output.
#[track_caller]
fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "drover test")
        .env("GIT_AUTHOR_EMAIL", "test@drover.invalid")
        .env("GIT_COMMITTER_NAME", "drover test")
        .env("GIT_COMMITTER_EMAIL", "test@drover.invalid")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit_label(c: &Cluster, host: &str, name: &str) -> String {
    c.inspect(host, name, "{{index .Config.Labels \"drover.commit\"}}")
}

#[test]
fn every_container_says_which_commit_put_it_there() {
    let job = |command: &str| {
        format!("image = \"{IMAGE1}\"\nhosts = [\"h1\", \"h2\"]\nstop_timeout = \"1s\"\ncommand = [\"sleep\", \"{command}\"]\n")
    };
    let c = cluster("commit-label", "").job("cl-web", &job("3600"));
    git(c.path(), &["init", "-q"]);
    git(c.path(), &["add", "-A"]);
    git(c.path(), &["commit", "-q", "-m", "first"]);
    let first = git(c.path(), &["rev-parse", "HEAD"]);
    let name = "commit-label.cl-web.h1.0";

    // Outside of drover's spec hash: the commit is recorded, the full hash.
    c.drover(&["up", "--yes"]).any_stderr().run();
    assert_eq!(commit_label(&c, "h1", name), first);
    assert_eq!(commit_label(&c, "h2", "commit-label.cl-web.h2.0"), first);
    let status = c.drover(&["--json", "status"]).run().json();
    assert_eq!(status[0]["commit"], first.as_str());
    let table = c.drover(&["status"]).run().stdout;
    assert!(
        table.lines().next().unwrap_or("").ends_with("COMMIT")
            && table.lines().nth(1).unwrap_or("").ends_with(&first[..7]),
        "{table}"
    );
    let history = c.drover(&["--json", "history", "cl-web"]).run().json();
    assert_eq!(history[0]["commit"], first.as_str());

    // A new commit, and changes not committed, alone replace nothing.
    std::fs::write(c.path().join("NOTES"), "a note\n").expect("write");
    git(c.path(), &["add", "-A"]);
    git(c.path(), &["commit", "-q", "-m", "second"]);
    std::fs::write(c.path().join("NOTES"), "a note, edited\n").expect("write");
    let id = c.inspect("h1", name, "{{.Id}}");
    c.drover(&["diff"])
        .stdout(&format!(
            "cl-web: running {} (1 commit behind), files at {}-dirty\nNo changes: 2 task(s) as specified.\n",
            &first[..7],
            &git(c.path(), &["rev-parse", "--short=7", "HEAD"])
        ))
        .run();
    c.drover(&["up", "--yes"]).any_stderr().run();
    assert_eq!(c.inspect("h1", name, "{{.Id}}"), id, "not replaced");

    // A change that replaces: created from a tree with changes not committed.
    c.set_job("cl-web", &job("3601"));
    c.drover(&["up", "--yes"]).any_stderr().run();
    let second = git(c.path(), &["rev-parse", "HEAD"]);
    assert_eq!(commit_label(&c, "h1", name), format!("{second}-dirty"));
    let table = c.drover(&["history", "cl-web"]).run().stdout;
    assert!(
        table.contains(&format!("{}-dirty", &second[..7])) && table.contains(&first[..7]),
        "{table}"
    );

    // Outside git there is no commit to record.
    std::fs::remove_dir_all(c.path().join(".git")).expect("remove .git");
    c.set_job("cl-web", &job("3602"));
    c.drover(&["up", "--yes"]).any_stderr().run();
    assert_eq!(commit_label(&c, "h1", name), "");
    c.drover(&["diff"])
        .stdout("No changes: 2 task(s) as specified.\n")
        .run();
}

/// Regression (review): `adopt` wrote the secrets file into a git work tree
/// and left it untracked and unignored: one `git add -A` committed the
/// token, and the untracked file marked every deploy `-dirty`.
#[test]
fn a_secrets_file_adopt_writes_in_git_is_ignored_there() {
    let c = cluster("adopt-git", "");
    git(c.path(), &["init", "-q"]);
    git(c.path(), &["add", "-A"]);
    git(c.path(), &["commit", "-q", "-m", "first"]);
    let hand = HandRun::new(&c);
    hand.run(
        "h1",
        "agi-api",
        &["-e", "API_TOKEN=s3cr3tvalue", IMAGE1, "sleep", "3600"],
    );
    c.drover(&["adopt", "--yes", "agi-api"])
        .stdout_has(".gitignore (/secrets.env added: secret values stay out of git)")
        .any_stderr()
        .run();
    assert_eq!(
        std::fs::read_to_string(c.path().join(".gitignore")).expect(".gitignore"),
        "/secrets.env\n"
    );
    let status = git(c.path(), &["status", "--porcelain"]);
    assert!(!status.contains("secrets.env"), "{status}");
    // Tracked by git after all (added by force): a second adoption with a
    // secret adds no second line, and warns that the values go into the
    // next commit.
    git(c.path(), &["add", "-f", "secrets.env"]);
    git(c.path(), &["commit", "-q", "-m", "tracked"]);
    hand.run(
        "h1",
        "agi-db",
        &["-e", "DB_PASSWORD=an0ther", IMAGE1, "sleep", "3600"],
    );
    c.drover(&["adopt", "--yes", "agi-db"])
        .stderr_has("warning: git tracks ")
        .stderr_has("run `git rm --cached secrets.env` in ")
        .run();
    assert_eq!(
        std::fs::read_to_string(c.path().join(".gitignore")).expect(".gitignore"),
        "/secrets.env\n"
    );
    c.drover(&["down", "--yes", "agi-api", "agi-db"])
        .any_stderr()
        .run();
}
