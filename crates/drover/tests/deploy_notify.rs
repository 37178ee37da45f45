//! Every changing command tells the team: `deploy.started`, then how it
//! ended, posted to the `[notify]` webhook — and a webhook that hangs never
//! holds a deploy up by more than 2 s. Real engines, and a receiver of the
//! test's own on loopback.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use drover_testkit::webhook::{Answer, Receiver};
use serde_json::Value;
use support::{cluster, Cluster};

const IMAGE1: &str = "drover-test/busybox:1";
const IMAGE2: &str = "drover-test/busybox:2";

/// A job that serves on image 1 and exits at once on image 2.
fn job(image: &str, port: u16) -> String {
    format!(
        r#"
        image = "{image}"
        hosts = ["h1", "h2"]
        command = ["sh", "-c", "test $(cat /etc/fixture-version) = 1 && exec httpd -f -p {port} -h /www"]
        stop_timeout = "1s"
        "#
    )
}

fn notified(name: &str, receiver: &Receiver) -> Cluster {
    cluster(
        name,
        &format!(
            "[notify]\nwebhook = \"{}\"\nformat = \"json\"\n",
            receiver.url("/hooks/T0KEN")
        ),
    )
}

fn events(receiver: &Receiver, count: usize) -> Vec<Value> {
    receiver
        .wait_for(count, Duration::from_secs(10))
        .iter()
        .map(|p| serde_json::from_str(&p.body).expect("a JSON body"))
        .collect()
}

#[test]
fn an_update_posts_started_then_succeeded_with_who_what_and_the_image() {
    let receiver = Receiver::start(Answer::Ok);
    let c = notified("n-update", &receiver).job("web", &job(IMAGE1, 26100));
    c.drover(&["up", "--yes"]).run();
    let before = receiver.posts().len();
    let plain = job(IMAGE1, 26100).replace("test $(cat /etc/fixture-version) = 1 && ", "");
    c.set_job("web", &plain);
    c.drover(&["update", "web", "--image", IMAGE2, "--yes"])
        .stdout_has("Done: 2 step(s) applied.")
        .run();
    let all = events(&receiver, before + 2);
    let posted: Vec<&Value> = all[before..].iter().collect();
    assert_eq!(posted.len(), 2, "{posted:#?}");
    assert_eq!(posted[0]["event"], "deploy.started");
    assert_eq!(posted[1]["event"], "deploy.succeeded");
    for event in &posted {
        assert_eq!(event["env"], "n-update");
        assert_eq!(event["job"], "web");
        assert_eq!(event["host"], Value::Null);
        assert!(
            event["by"].as_str().is_some_and(|b| b.contains('@')),
            "{event}"
        );
        let message = event["message"].as_str().unwrap_or_default();
        assert!(message.contains(IMAGE2), "{message}");
        assert!(!message.contains("T0KEN"), "{message}");
    }
    let message = posted[1]["message"].as_str().unwrap_or_default();
    assert!(message.contains("update web --image"), "{message}");
}

#[test]
fn a_rollout_that_fails_and_goes_back_posts_rolled_back() {
    let receiver = Receiver::start(Answer::Ok);
    let c = notified("n-rolled", &receiver).job("web", &job(IMAGE1, 26200));
    c.drover(&["up", "--yes"]).run();
    let before = receiver.posts().len();
    c.drover(&["rolling-update", "web", "--image", IMAGE2, "--yes"])
        .status(1)
        .any_stderr()
        .run();
    let all = events(&receiver, before + 2);
    let kinds: Vec<&str> = all[before..]
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(kinds, ["deploy.started", "deploy.rolled_back"]);
    let message = all[before + 1]["message"].as_str().unwrap_or_default();
    assert!(message.contains("web h1/0"), "{message}");
    assert!(
        message.contains("drover logs web --failed"),
        "it says what to run next: {message}"
    );
}

#[test]
fn a_release_command_that_fails_posts_failed_and_touches_no_task() {
    let receiver = Receiver::start(Answer::Ok);
    let plain = job(IMAGE1, 26400).replace("test $(cat /etc/fixture-version) = 1 && ", "");
    let c = notified("n-release", &receiver).job("web", &plain);
    c.drover(&["up", "--yes"]).run();
    let before = receiver.posts().len();
    c.set_job(
        "web",
        &format!(
            "{plain}
[release]
command = [\"sh\", \"-c\", \"echo migration broke; exit 3\"]\n"
        ),
    );
    c.drover(&["update", "web", "--image", IMAGE2, "--yes"])
        .status(1)
        .stderr_has("migration broke")
        .run();
    let all = events(&receiver, before + 2);
    let kinds: Vec<&str> = all[before..]
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(kinds, ["deploy.started", "deploy.failed"]);
    let message = all[before + 1]["message"].as_str().unwrap_or_default();
    assert!(message.contains("release command of job web"), "{message}");
    assert!(message.contains("no task was touched"), "{message}");
    assert!(
        message.contains("drover history web") && !message.contains("--failed"),
        "the next command is one that finds the release run: {message}"
    );
}

#[test]
fn a_webhook_that_never_answers_holds_a_deploy_up_less_than_two_seconds() {
    let receiver = Receiver::start(Answer::Hang);
    let c = notified("n-hang", &receiver).job("web", &job(IMAGE1, 26300));
    let mut child = c
        .drover(&["up", "--yes"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start drover");
    let stdout = child.stdout.take().expect("stdout");
    let mut done = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if line.starts_with("Done:") {
            done = Some(Instant::now());
        }
    }
    let status = child.wait().expect("drover ends");
    let done = done.expect("the deploy finished");
    let tail = done.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        tail < Duration::from_millis(2500),
        "drover took {tail:?} after the deploy to give up on the webhook"
    );
    // The hung attempts were made: the team would have heard.
    assert!(!receiver.posts().is_empty());
}
