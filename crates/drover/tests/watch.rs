//! `drover watch` against the suite's real engines, posting to a receiver
//! of the test's own on loopback: a stop by hand is drift, an exit nobody
//! asked for is `task.exited`, a crash loop is one message and one
//! recovery.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_testkit::webhook::{Answer, Receiver};
use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";

/// `[notify]` posting the incidents as JSON to `receiver` (the deploys
/// of the tests' own `up`s are another file's tests).
fn notify(receiver: &Receiver) -> String {
    format!(
        "[notify]\nwebhook = \"{}\"\nformat = \"json\"\nevents = [\"incident\"]\n",
        receiver.url("/hooks/T0KEN")
    )
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

/// `(event, job/host/task)` of what the receiver got, leaving out the
/// hosts' own incidents (this machine's disk may well be low).
fn tasks_posted(receiver: &Receiver) -> Vec<(String, String)> {
    receiver
        .bodies()
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap())
        .filter(|v| !v["job"].is_null())
        .map(|v| {
            (
                v["event"].as_str().unwrap().to_string(),
                format!(
                    "{} {}/{}",
                    v["job"].as_str().unwrap(),
                    v["host"].as_str().unwrap_or("-"),
                    v["task"]
                ),
            )
        })
        .collect()
}

/// Waits up to `limit` for `check` on what was posted.
fn wait_for(
    receiver: &Receiver,
    limit: Duration,
    check: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let posted = tasks_posted(receiver);
        if check(&posted) || Instant::now() > deadline {
            return posted;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `drover watch` running on `c`, once it has listed the hosts.
struct Watcher {
    child: std::process::Child,
    stdout: std::sync::mpsc::Receiver<String>,
}

impl Watcher {
    fn start(c: &Cluster) -> Watcher {
        let mut child = Command::new(support::BIN)
            .arg("-C")
            .arg(c.path())
            .arg("watch")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Subscribed and listed: a moment is plenty on the suite's hosts.
        std::thread::sleep(Duration::from_secs(2));
        Watcher { child, stdout }
    }

    /// Stops it as Ctrl-C would; it ends cleanly.
    fn stop(mut self) -> Vec<String> {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        self.stdout.try_iter().collect()
    }
}

#[test]
fn a_stop_by_hand_is_drift_and_an_exit_nobody_asked_for_is_exited() {
    let receiver = Receiver::start(Answer::Ok);
    let data = data_dir();
    let c = cluster("w-drift", &notify(&receiver))
        .job(
            "web",
            &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\", \"h2\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"),
        )
        .job(
            "batch",
            &format!(
                "image = \"{IMAGE1}\"\nhosts = [\"h2\"]\nrestart = \"no\"\nvolumes = [\"{}:/data\"]\ncommand = [\"sh\", \"-c\", \"while [ ! -e /data/stop ]; do sleep 0.1; done; exit 7\"]\nstop_timeout = \"1s\"\n",
                data.path().display()
            ),
        );
    c.drover(&["up", "--yes"]).any_stderr().run();
    let watcher = Watcher::start(&c);
    // `up` posted its own news (or not); from here on only the watcher's count.
    let before = tasks_posted(&receiver).len();

    c.docker("h1", &["stop", "-t", "1", "w-drift.web.h1.0"]);
    let posted = wait_for(&receiver, Duration::from_secs(15), |p| p.len() > before);
    assert_eq!(
        posted[before..],
        [("drift.detected".to_string(), "web h1/0".to_string())]
    );
    let body = receiver
        .bodies()
        .into_iter()
        .rev()
        .find(|b| b.contains("drift.detected"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["env"], "w-drift");
    assert!(
        json["message"].as_str().unwrap().starts_with(
            "web h1/0 no longer matches the spec: `drover up` would start it (exited (code "
        ),
        "{json}"
    );
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .ends_with("; run drover diff web"),
        "{json}"
    );

    // `drover up` puts it right: the drift clears.
    c.drover(&["up", "--yes"]).any_stderr().run();
    let posted = wait_for(&receiver, Duration::from_secs(15), |p| p.len() > before + 1);
    assert_eq!(
        posted[before..],
        [
            ("drift.detected".to_string(), "web h1/0".to_string()),
            ("task.recovered".to_string(), "web h1/0".to_string()),
        ]
    );

    // An exit nobody asked for, not restarted.
    std::fs::write(data.path().join("stop"), "").unwrap();
    let posted = wait_for(&receiver, Duration::from_secs(15), |p| p.len() > before + 2);
    assert_eq!(
        posted[before + 2..],
        [("task.exited".to_string(), "batch h2/0".to_string())]
    );
    let lines = watcher.stop();
    assert!(
        lines.iter().any(|l| l.contains(" task.exited batch h2/0 exited with code 7 and is not running; run drover logs batch --task h2/0")),
        "{lines:#?}"
    );
}

/// The watcher in this process, with a recovery after 3 s instead of 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_is_one_message_and_one_recovery() {
    let receiver = Receiver::start(Answer::Ok);
    let data = data_dir();
    // It runs while /data/crash is absent; with it, it exits at once, again and again.
    let job = format!(
        "image = \"{IMAGE1}\"\nhosts = [\"h1\"]\nvolumes = [\"{}:/data\"]\ncommand = [\"sh\", \"-c\", \"while [ ! -e /data/crash ]; do sleep 0.1; done; exit 1\"]\nstop_timeout = \"1s\"\n",
        data.path().display()
    );
    let c = cluster("w-loop", &notify(&receiver)).job("web", &job);
    c.drover(&["up", "--yes"]).any_stderr().run();

    let fleet = drover_fleet::Fleet::load(Some(c.path()), None, &[]).unwrap();
    let notifier =
        drover_notify::Notifier::from_env(&fleet.env, drover_notify::Options::new("ops@watcher"));
    let options = drover_fleet::watch::WatchOptions {
        rules: drover_notify::Rules {
            stable_after: Duration::from_secs(3),
            ..drover_notify::Rules::default()
        },
        ..drover_fleet::watch::WatchOptions::default()
    };
    let sink = drover_fleet::watch::Sink {
        posted: Arc::new(|_: &drover_notify::Event| {}),
        note: Arc::new(|_: &str| {}),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(drover_fleet::watch::run(
        Arc::new(drover_fleet::FleetSource::new(fleet)),
        notifier,
        options,
        sink,
        cancel.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;

    std::fs::write(data.path().join("crash"), "").unwrap();
    let posted = tokio::task::block_in_place(|| {
        wait_for(&receiver, Duration::from_secs(20), |p| !p.is_empty())
    });
    assert_eq!(
        posted,
        [("task.crash_loop".to_string(), "web h1/0".to_string())]
    );
    // Dozens of restarts later, still one message.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restarts: i64 = c
        .inspect("h1", "w-loop.web.h1.0", "{{.RestartCount}}")
        .parse()
        .unwrap();
    assert!(restarts >= 3, "{restarts}");
    assert_eq!(tasks_posted(&receiver).len(), 1);

    // Fixed: it runs again, and after 3 s up, it has recovered.
    std::fs::remove_file(data.path().join("crash")).unwrap();
    let posted = tokio::task::block_in_place(|| {
        wait_for(&receiver, Duration::from_secs(40), |p| p.len() > 1)
    });
    assert_eq!(
        posted,
        [
            ("task.crash_loop".to_string(), "web h1/0".to_string()),
            ("task.recovered".to_string(), "web h1/0".to_string()),
        ]
    );
    cancel.cancel();
    watching.await.unwrap();
}

#[test]
fn drover_web_watches_for_incidents_while_it_serves() {
    let receiver = Receiver::start(Answer::Ok);
    let c = cluster("w-web", &notify(&receiver)).job(
        "web",
        &format!("image = \"{IMAGE1}\"\nhosts = [\"h1\"]\ncommand = [\"sleep\", \"3600\"]\nstop_timeout = \"1s\"\n"),
    );
    c.drover(&["up", "--yes"]).any_stderr().run();
    let mut child = Command::new(support::BIN)
        .arg("-C")
        .arg(c.path())
        .args(["web", "--listen", "127.0.0.1:0"])
        .env(
            "DROVER_WEB_TOKEN",
            "a-token-of-the-tests-own-32-chars-or-more",
        )
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let said = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
                if line.contains(text) {
                    return;
                }
            }
        }
        panic!("drover web never said {text:?}");
    };
    said("watching the hosts for incidents");
    std::thread::sleep(Duration::from_secs(2));
    let before = tasks_posted(&receiver).len();
    c.docker("h1", &["stop", "-t", "1", "w-web.web.h1.0"]);
    let posted = wait_for(&receiver, Duration::from_secs(15), |p| p.len() > before);
    assert_eq!(
        posted[before..],
        [("drift.detected".to_string(), "web h1/0".to_string())]
    );
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// `docker ARGS` on this machine's engine (the one that pushes to the suite's registry).
fn local(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pushes a new image (built now, so newer than any before) as `reference`.
fn push_new_image(reference: &str) {
    let builder = format!("w-img-build-{}", std::process::id());
    local(&[
        "run",
        "--name",
        &builder,
        "--network",
        "none",
        IMAGE1,
        "true",
    ]);
    local(&["commit", &builder, reference]);
    local(&["rm", &builder]);
    local(&["push", reference]);
    local(&["rmi", reference]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_tag_in_the_registry_is_announced_once() {
    let receiver = Receiver::start(Answer::Ok);
    let registry = drover_testkit::hosts::var("DROVER_TEST_REGISTRY");
    let repository = format!("{registry}/w-img-{}/app", std::process::id());
    tokio::task::block_in_place(|| push_new_image(&format!("{repository}:1")));
    let c = cluster(
        "w-img",
        &format!(
            "[registry]\nurl = \"http://{registry}\"\n{}",
            notify(&receiver)
        ),
    )
    .job(
        "web",
        &format!("image = \"{repository}:1\"\nhosts = [\"h1\"]\n"),
    );
    let fleet = drover_fleet::Fleet::load(Some(c.path()), None, &[]).unwrap();
    let notifier =
        drover_notify::Notifier::from_env(&fleet.env, drover_notify::Options::new("ops@watcher"));
    let options = drover_fleet::watch::WatchOptions {
        images_every: Duration::from_millis(500),
        ..drover_fleet::watch::WatchOptions::default()
    };
    let sink = drover_fleet::watch::Sink {
        posted: Arc::new(|_: &drover_notify::Event| {}),
        note: Arc::new(|_: &str| {}),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(drover_fleet::watch::run(
        Arc::new(drover_fleet::FleetSource::new(fleet)),
        notifier,
        options,
        sink,
        cancel.clone(),
    ));
    // What the registry holds at the first look is not news.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks_posted(&receiver), []);

    tokio::task::block_in_place(|| push_new_image(&format!("{repository}:2")));
    let posted = tokio::task::block_in_place(|| {
        wait_for(&receiver, Duration::from_secs(20), |p| !p.is_empty())
    });
    assert_eq!(
        posted,
        [("image.available".to_string(), "web -/null".to_string())]
    );
    let body = receiver
        .bodies()
        .iter()
        .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap())
        .find(|b| b["event"] == "image.available")
        .unwrap();
    assert_eq!(
        body["message"],
        format!("web: a new image is available: {repository}:2; run drover update web --image {repository}:2")
    );
    // Once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks_posted(&receiver).len(), 1);
    cancel.cancel();
    watching.await.unwrap();
}

/// A container started by hand, removed when the test ends (adopted, it
/// carries no environment's label, so the [`Cluster`] would not remove it).
struct HandRun {
    socket: String,
    id: String,
}

impl HandRun {
    /// `docker run -d --name NAME ARGS…` on `host`, with drover's safe
    /// defaults (an init, a bounded local log), so that adopting it leaves
    /// nothing for `up` to change.
    fn start(c: &Cluster, host: &str, name: &str, args: &[&str]) -> HandRun {
        let _ = c.docker_raw(host, &["rm", "-f", name]);
        let mut run = vec![
            "run",
            "-d",
            "--name",
            name,
            "--init",
            "--log-driver",
            "local",
            "--log-opt",
            "max-size=20m",
            "--log-opt",
            "max-file=5",
        ];
        run.extend(args);
        let id = c.docker(host, &run);
        HandRun {
            socket: c.socket(host).to_string(),
            id,
        }
    }
}

impl Drop for HandRun {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["-H", &self.socket, "rm", "-f", "-v", &self.id])
            .output();
    }
}

/// Its events carry none of drover's labels (a running container can be
/// renamed, not relabelled): only its name and the adoption record say it
/// is the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_task_stopped_by_hand_is_drift() {
    let receiver = Receiver::start(Answer::Ok);
    let c = cluster("w-adopt", &notify(&receiver));
    let hand = tokio::task::block_in_place(|| {
        let hand = HandRun::start(
            &c,
            "h1",
            "wad-web",
            &["--restart", "unless-stopped", IMAGE1, "sleep", "3600"],
        );
        c.drover(&["adopt", "--yes", "wad-web"]).run();
        c.drover(&["diff"])
            .stdout("No changes: 1 task(s) as specified.\n")
            .run();
        hand
    });
    assert_eq!(
        c.inspect(
            "h1",
            &hand.id,
            "{{.Name}},{{index .Config.Labels \"drover.env\"}}"
        ),
        "/w-adopt.wad-web.h1.0,"
    );

    let fleet = drover_fleet::Fleet::load(Some(c.path()), None, &[]).unwrap();
    let notifier =
        drover_notify::Notifier::from_env(&fleet.env, drover_notify::Options::new("ops@watcher"));
    let sink = drover_fleet::watch::Sink {
        posted: Arc::new(|_: &drover_notify::Event| {}),
        note: Arc::new(|_: &str| {}),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(drover_fleet::watch::run(
        Arc::new(drover_fleet::FleetSource::new(fleet)),
        notifier,
        drover_fleet::watch::WatchOptions::default(),
        sink,
        cancel.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks_posted(&receiver), []);

    tokio::task::block_in_place(|| c.docker("h1", &["stop", "-t", "1", "w-adopt.wad-web.h1.0"]));
    let posted = tokio::task::block_in_place(|| {
        wait_for(&receiver, Duration::from_secs(15), |p| !p.is_empty())
    });
    assert_eq!(
        posted,
        [("drift.detected".to_string(), "wad-web h1/0".to_string())]
    );
    let body = receiver
        .bodies()
        .into_iter()
        .find(|b| b.contains("drift.detected"))
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        json["message"].as_str().unwrap().starts_with(
            "wad-web h1/0 no longer matches the spec: `drover up` would start it (exited (code "
        ),
        "{json}"
    );
    // One message for the incident, however many events it made.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks_posted(&receiver).len(), 1);
    cancel.cancel();
    watching.await.unwrap();
}
