//! Delivery against a receiver of the test's own on loopback: the bodies as
//! posted, retries without duplicates, order, the 2-second deadline, the
//! hand-off to a process that outlives the command, and no secret in any
//! note or payload.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use drover_notify::{retry_from, Deploy, Event, HandOff, Notes, Notifier, Options, RetryPolicy};
use drover_spec::{Notify, NotifyClass, NotifyFormat};
use drover_testkit::webhook::{Answer, Receiver};

/// The part of every webhook URL here that must never be printed.
const TOKEN: &str = "T0KEN-5ECRET";

fn notify(receiver: &Receiver, format: NotifyFormat, classes: &[NotifyClass]) -> Notify {
    Notify {
        webhook: receiver
            .url(&format!("/hooks/{TOKEN}"))
            .parse()
            .expect("a valid webhook"),
        format,
        events: classes.iter().copied().collect::<BTreeSet<_>>(),
    }
}

/// Notes, kept for the test to read.
fn recorded() -> (Notes, Arc<Mutex<Vec<String>>>) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&kept);
    let notes: Notes = Arc::new(move |note: &str| sink.lock().unwrap().push(note.to_string()));
    (notes, kept)
}

/// Retries quick enough for a test.
fn quick() -> RetryPolicy {
    RetryPolicy {
        attempt_timeout: Duration::from_millis(500),
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        give_up_after: Duration::from_secs(3),
    }
}

fn notifier(notify: &Notify, options: Options) -> Notifier {
    Notifier::new(notify, "prod", None, options)
}

fn both() -> Vec<NotifyClass> {
    vec![NotifyClass::Deploy, NotifyClass::Incident]
}

/// 2015-10-30T03:12:44Z.
fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_446_174_764)
}

fn succeeded() -> Event {
    Event::deploy(
        Deploy::Succeeded,
        "web",
        Some("registry.example:5000/web:2"),
        "alice@laptop",
        Some("abc1234"),
        "update: 2 tasks replaced",
        at(),
    )
}

#[tokio::test]
async fn slack_posts_one_line_of_text() {
    let receiver = Receiver::start(Answer::Ok);
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    let notifier = notifier(&notify, Options::new("alice@laptop"));
    notifier.post(succeeded());
    let pending = notifier.finish(Duration::from_secs(2)).await;
    assert!(pending.is_empty());
    let posts = receiver.posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].method, "POST");
    assert_eq!(posts[0].path, format!("/hooks/{TOKEN}"));
    assert_eq!(posts[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        posts[0].body,
        r#"{"text":"[prod] web: deploy by alice@laptop succeeded (registry.example:5000/web:2, commit abc1234): update: 2 tasks replaced; run `drover history web`"}"#
    );
}

#[tokio::test]
async fn json_posts_the_event_object() {
    let receiver = Receiver::start(Answer::Ok);
    let notify = notify(&receiver, NotifyFormat::Json, &both());
    let notifier = Notifier::new(&notify, "prod", Some("eu"), Options::new("alice@laptop"));
    notifier.post(succeeded());
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    assert_eq!(
        receiver.bodies(),
        [
            r#"{"event":"deploy.succeeded","env":"prod","job":"web","host":null,"task":null,"time":"2015-10-30T03:12:44Z","message":"web: deploy by alice@laptop succeeded (registry.example:5000/web:2, commit abc1234): update: 2 tasks replaced; run drover -e eu history web","by":"alice@laptop","commit":"abc1234"}"#
        ]
    );
}

#[tokio::test]
async fn deploy_events_carry_the_notifiers_operator_and_the_time_now() {
    let receiver = Receiver::start(Answer::Ok);
    let notify = notify(&receiver, NotifyFormat::Json, &both());
    let notifier = notifier(&notify, Options::new("bob@ci"));
    let before = drover_notify::time::rfc3339(SystemTime::now());
    notifier.deploy(Deploy::Started, "web", None, None, "up");
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    let after = drover_notify::time::rfc3339(SystemTime::now());
    let body: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).unwrap();
    assert_eq!(body["event"], "deploy.started");
    assert_eq!(body["by"], "bob@ci");
    assert_eq!(body["commit"], serde_json::Value::Null);
    assert_eq!(
        body["message"],
        "web: deploy by bob@ci started: up; run drover status web"
    );
    let time = body["time"].as_str().unwrap();
    assert!(before.as_str() <= time && time <= after.as_str(), "{time}");
}

#[tokio::test]
async fn only_the_chosen_classes_are_posted() {
    let receiver = Receiver::start(Answer::Ok);
    let notify = notify(&receiver, NotifyFormat::Json, &[NotifyClass::Incident]);
    let notifier = notifier(&notify, Options::new("alice@laptop"));
    notifier.post(succeeded());
    assert_eq!(notifier.waiting(), 0, "a deploy event is not even queued");
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    assert!(receiver.posts().is_empty());
}

#[tokio::test]
async fn a_webhook_that_never_answers_costs_a_command_under_two_seconds() {
    let receiver = Receiver::start(Answer::Hang);
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    // The default policy: each attempt may take 10 s, far beyond the budget.
    let (notes, kept) = recorded();
    let notifier = notifier(&notify, Options::new("alice@laptop").notes(notes));
    notifier.deploy(Deploy::Started, "web", None, None, "update");
    notifier.post(succeeded());
    let start = Instant::now();
    let pending = notifier.finish(Duration::from_secs(2)).await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "finish took {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "finish gave up early: {took:?}"
    );
    assert_eq!(pending.len(), 2, "the message in flight is still pending");
    assert_eq!(
        receiver.posts().len(),
        1,
        "the second waits behind the first"
    );
    assert!(kept.lock().unwrap().is_empty());
    pending.hand_off(&HandOff::Nobody);
    assert_eq!(
        *kept.lock().unwrap(),
        [format!(
            "2 messages not posted to http://127.0.0.1:{}/…: the command ended before the webhook answered",
            receiver.port
        )]
    );
}

#[tokio::test]
async fn failing_twice_then_succeeding_delivers_once() {
    let receiver = Receiver::start(Answer::Ok);
    receiver.then([Answer::Status(500), Answer::Status(503)]);
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    let (notes, kept) = recorded();
    let notifier = notifier(
        &notify,
        Options::new("alice@laptop").retry(quick()).notes(notes),
    );
    notifier.post(succeeded());
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    std::thread::sleep(Duration::from_millis(300));
    let posts = receiver.posts();
    let answered: Vec<Option<u16>> = posts.iter().map(|p| p.answered).collect();
    assert_eq!(answered, [Some(500), Some(503), Some(200)]);
    assert!(posts.iter().all(|p| p.body == posts[0].body));
    assert!(
        kept.lock().unwrap().is_empty(),
        "a retry that works is no news"
    );
}

#[tokio::test]
async fn messages_arrive_in_the_order_posted_through_retries() {
    let receiver = Receiver::start(Answer::Ok);
    receiver.then([Answer::Status(502)]);
    let notify = notify(&receiver, NotifyFormat::Json, &both());
    let notifier = notifier(&notify, Options::new("alice@laptop").retry(quick()));
    notifier.deploy(Deploy::Started, "web", None, None, "update");
    notifier.deploy(Deploy::Succeeded, "web", None, None, "update");
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    let events: Vec<(String, Option<u16>)> = receiver
        .posts()
        .into_iter()
        .map(|p| {
            let body: serde_json::Value = serde_json::from_str(&p.body).unwrap();
            (body["event"].as_str().unwrap().to_string(), p.answered)
        })
        .collect();
    assert_eq!(
        events,
        [
            ("deploy.started".to_string(), Some(502)),
            ("deploy.started".to_string(), Some(200)),
            ("deploy.succeeded".to_string(), Some(200)),
        ]
    );
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_its_note_hides_the_url() {
    let receiver = Receiver::start(Answer::Echo(404));
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    let (notes, kept) = recorded();
    let notifier = notifier(
        &notify,
        Options::new("alice@laptop").retry(quick()).notes(notes),
    );
    notifier.post(succeeded());
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    assert_eq!(receiver.posts().len(), 1);
    assert_eq!(
        *kept.lock().unwrap(),
        [format!(
            "the webhook http://127.0.0.1:{}/… refused deploy.succeeded for web: 404 Not Found (Cannot POST ***); not retried",
            receiver.port
        )]
    );
}

#[tokio::test]
async fn failing_for_good_gives_up_everything_with_one_note() {
    let receiver = Receiver::start(Answer::Status(500));
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    let (notes, kept) = recorded();
    let policy = RetryPolicy {
        give_up_after: Duration::from_millis(200),
        ..quick()
    };
    let notifier = notifier(
        &notify,
        Options::new("alice@laptop").retry(policy).notes(notes),
    );
    notifier.deploy(Deploy::Started, "web", None, None, "update");
    notifier.deploy(Deploy::Failed, "web", None, None, "a/0 exited");
    let pending = notifier.finish(Duration::from_secs(2)).await;
    assert!(pending.is_empty(), "given up, not pending");
    assert_eq!(
        *kept.lock().unwrap(),
        [format!(
            "gave up posting deploy.started for web and 1 more message to http://127.0.0.1:{}/… after 200ms of failures: 500 Internal Server Error (status 500)",
            receiver.port
        )]
    );
    let tries = receiver.posts().len();
    assert!(
        (3..20).contains(&tries),
        "{tries} tries in 200ms of backoff"
    );
}

#[tokio::test]
async fn no_note_quotes_the_webhook_whatever_fails() {
    // Nothing listens on a port just released: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = Notify {
        webhook: format!("http://127.0.0.1:{port}/hooks/{TOKEN}")
            .parse()
            .unwrap(),
        format: NotifyFormat::Json,
        events: both().into_iter().collect(),
    };
    let hanging = Receiver::start(Answer::Hang);
    let echoing = Receiver::start(Answer::Echo(500));
    let redirecting = Receiver::start(Answer::Echo(301));
    let (notes, kept) = recorded();
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(100),
        give_up_after: Duration::from_millis(300),
        ..quick()
    };
    let mut pending = Vec::new();
    for notify in [
        closed,
        notify(&hanging, NotifyFormat::Json, &both()),
        notify(&echoing, NotifyFormat::Json, &both()),
        notify(&redirecting, NotifyFormat::Json, &both()),
    ] {
        let options = Options::new("alice@laptop")
            .retry(policy.clone())
            .notes(Arc::clone(&notes));
        let notifier = notifier(&notify, options);
        notifier.post(succeeded());
        pending.push(notifier.finish(Duration::from_secs(2)).await);
    }
    let kept = kept.lock().unwrap().clone();
    assert_eq!(kept.len(), 4, "{kept:#?}");
    for note in &kept {
        assert!(!note.contains(TOKEN) && !note.contains("/hooks"), "{note}");
    }
    assert!(kept[0].ends_with(": connection refused"), "{}", kept[0]);
    assert!(kept[1].ends_with(": no answer within 100ms"), "{}", kept[1]);
    assert!(
        kept[2].ends_with(": 500 Internal Server Error (Cannot POST ***)"),
        "{}",
        kept[2]
    );
    assert!(
        kept[3].contains("refused deploy.succeeded for web: 301 Moved Permanently (Cannot POST ***): webhooks are not followed across redirects"),
        "{}",
        kept[3]
    );
    assert!(pending.iter().all(|p| p.is_empty()));
}

#[tokio::test]
async fn secret_values_never_reach_a_payload() {
    let receiver = Receiver::start(Answer::Ok);
    let notify = notify(&receiver, NotifyFormat::Json, &both());
    let notifier = notifier(&notify, Options::new("alice@laptop").secrets(["hunter2"]));
    notifier.deploy(
        Deploy::Failed,
        "web",
        None,
        None,
        &format!(
            "release said: password hunter2 rejected by {}",
            receiver.url(&format!("/hooks/{TOKEN}"))
        ),
    );
    assert!(notifier.finish(Duration::from_secs(2)).await.is_empty());
    let body = &receiver.bodies()[0];
    assert!(!body.contains("hunter2") && !body.contains(TOKEN), "{body}");
    assert!(body.contains("password *** rejected by ***"), "{body}");
}

#[tokio::test]
async fn what_a_command_leaves_is_handed_off_and_delivered_later() {
    let receiver = Receiver::start(Answer::Hang);
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    let (notes, command_notes) = recorded();
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_secs(5),
        ..quick()
    };
    let notifier = notifier(
        &notify,
        Options::new("alice@laptop").retry(policy).notes(notes),
    );
    notifier.post(succeeded());
    let pending = notifier.finish(Duration::from_secs(1)).await;
    assert_eq!(pending.len(), 1);
    let body = pending.bodies()[0].to_string();

    // A stand-in retrier that keeps its standard input.
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("handed-off.json");
    let start = Instant::now();
    pending.hand_off(&HandOff::Process {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), "cat > \"$0\"".into(), kept.clone().into()],
    });
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "a hand-off does not wait"
    );
    let document = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(&kept)
                .ok()
                .filter(|t| t.ends_with('}'))
        })
        .expect("the retrier got the document");
    assert!(
        document.contains(&format!("/hooks/{TOKEN}")),
        "the retrier needs the whole URL"
    );
    // Its stderr is not a terminal here, so the command says what goes on.
    assert_eq!(
        *command_notes.lock().unwrap(),
        [format!(
            "1 message not yet posted to http://127.0.0.1:{}/…; retrying in the background for up to 3s",
            receiver.port
        )]
    );

    // The webhook is back: what the real retrier does with that document.
    receiver.answer(Answer::Ok);
    let (notes, notes_kept) = recorded();
    retry_from(document.as_bytes(), notes).await.unwrap();
    let posts = receiver.posts();
    assert_eq!(posts.len(), 2, "the hung attempt, then the retrier's");
    assert!(posts.iter().all(|p| p.body == body));
    assert_eq!(posts[1].answered, Some(200));
    assert!(notes_kept.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_bad_hand_off_document_is_refused_without_quoting_it() {
    let (notes, _) = recorded();
    let error = retry_from(
        format!("{{\"webhook\": 5, \"x\": \"http://h/hooks/{TOKEN}\"}}").as_bytes(),
        notes,
    )
    .await
    .unwrap_err();
    assert_eq!(
        error,
        "cannot read the messages to retry: not a hand-off document (line 1, column 13)"
    );
}

#[test]
fn posting_outside_a_runtime_waits_for_finish() {
    let receiver = Receiver::start(Answer::Ok);
    let notify = notify(&receiver, NotifyFormat::Slack, &both());
    let notifier = notifier(&notify, Options::new("alice@laptop"));
    notifier.post(succeeded());
    assert_eq!(notifier.waiting(), 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pending = runtime.block_on(notifier.finish(Duration::from_secs(2)));
    assert!(pending.is_empty());
    assert_eq!(receiver.posts().len(), 1);
}
