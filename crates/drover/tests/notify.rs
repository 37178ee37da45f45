//! Notifications a command could not deliver within its budget are handed
//! to `drover notify-retry`, which outlives the command and posts them.
//! No Docker here: a receiver of the test's own on loopback.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use drover_notify::{Deploy, Event, HandOff, Notifier, Options, RetryPolicy, RETRY_COMMAND};
use drover_spec::{Notify, NotifyClass, NotifyFormat};
use drover_testkit::webhook::{Answer, Receiver};

fn notify(receiver: &Receiver) -> Notify {
    Notify {
        webhook: receiver.url("/hooks/T0KEN").parse().unwrap(),
        format: NotifyFormat::Json,
        events: BTreeSet::from([NotifyClass::Deploy, NotifyClass::Incident]),
    }
}

#[tokio::test]
async fn a_hung_webhook_is_retried_by_a_process_that_outlives_the_command() {
    let receiver = Receiver::start(Answer::Hang);
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_secs(5),
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        give_up_after: Duration::from_secs(10),
    };
    let notes: drover_notify::Notes = std::sync::Arc::new(|_: &str| {});
    let options = Options::new("alice@laptop").retry(policy).notes(notes);
    let notifier = Notifier::new(&notify(&receiver), "prod", None, options);
    notifier.post(Event::deploy(
        Deploy::Succeeded,
        "web",
        Some("web:2"),
        "alice@laptop",
        None,
        "update",
        SystemTime::UNIX_EPOCH,
    ));
    let start = Instant::now();
    let pending = notifier.finish(Duration::from_secs(2)).await;
    assert_eq!(pending.len(), 1);
    // The webhook is back by the time the retrier tries.
    receiver.answer(Answer::Ok);
    pending.hand_off(&HandOff::Process {
        program: env!("CARGO_BIN_EXE_drover").into(),
        args: vec![RETRY_COMMAND.into()],
    });
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );

    let posts = receiver.wait_for(2, Duration::from_secs(10));
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[0].answered, None, "the command's attempt, cut off");
    assert_eq!(posts[1].answered, Some(200), "the retrier's");
    assert_eq!(posts[0].body, posts[1].body);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.posts().len(), 2, "delivered once by the retrier");
}

#[test]
fn the_retrier_refuses_what_is_not_a_hand_off() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg(RETRY_COMMAND)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"https://chat.example/hooks/T0KEN")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: cannot read the messages to retry: not a hand-off document (line 1, column 1)\n"
    );
}

#[test]
fn the_retrier_is_not_in_the_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_drover"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("validate"), "{help}");
    assert!(!help.contains(RETRY_COMMAND), "{help}");
}
