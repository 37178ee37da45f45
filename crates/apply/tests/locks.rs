//! Job locks as marker containers, against `FakeEngine`: who gets a lock,
//! what the one refused is told, and what is left on the hosts after.

mod support;

use std::sync::Arc;

use drover_apply::lock::{self, acquire, force_unlock, is_stale, Holder, LockError};
use drover_engine::fake::FakeEngine;
use drover_engine::Engine;
use drover_plan::views::LockInfo;
use drover_plan::{labels, MARKER_IMAGE};

use support::{containers, list, ENV};

fn fake(host: &str) -> Arc<FakeEngine> {
    Arc::new(FakeEngine::new(host))
}

fn hosts(engines: &[&Arc<FakeEngine>]) -> Vec<(String, Arc<dyn Engine>)> {
    engines
        .iter()
        .map(|e| {
            let engine: Arc<dyn Engine> = Arc::clone(e) as Arc<dyn Engine>;
            (support::host_name(e), engine)
        })
        .collect()
}

/// A command run by `by`, as process `pid`.
fn holder(by: &str, reason: &str, pid: Option<u32>) -> Holder {
    Holder {
        by: by.to_string(),
        at: "2026-03-01T12:00:00Z".to_string(),
        reason: reason.to_string(),
        command: "update web --image reg/web:2".to_string(),
        pid,
    }
}

/// Someone on another machine, mid-rollout.
fn alice() -> Holder {
    holder("alice@elsewhere", "", Some(4242))
}

fn bob() -> Holder {
    holder("bob@laptop", "", Some(std::process::id()))
}

/// `user@this-machine`.
fn here(user: &str) -> String {
    format!("{user}@{}", lock::machine())
}

/// A process ID of this machine that no longer runs.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true")
        .spawn()
        .expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait for true");
    pid
}

fn lock_info(by: &str, pid: Option<u32>) -> LockInfo {
    LockInfo {
        job: "web".to_string(),
        host: "h1".to_string(),
        container: "prod.web.h1.lock".to_string(),
        by: by.to_string(),
        at: "2026-03-01T12:00:00Z".to_string(),
        reason: String::new(),
        command: "up".to_string(),
        pid,
    }
}

#[tokio::test]
async fn a_second_acquire_of_a_held_job_is_refused_naming_the_holder() {
    let h1 = fake("h1");
    let _held = acquire(ENV, "web", &hosts(&[&h1]), &alice()).await.unwrap();

    let refused = acquire(ENV, "web", &hosts(&[&h1]), &bob()).await;

    let Err(error) = refused else {
        panic!("a held lock was taken again")
    };
    assert_eq!(
        error.to_string(),
        "job web is locked by alice@elsewhere since 2026-03-01T12:00:00Z on host h1 \
         (update web --image reg/web:2, pid 4242): wait for it to finish, or if it is gone, \
         run `drover unlock web`"
    );
    let LockError::Held { held, .. } = error else {
        unreachable!()
    };
    assert_eq!(
        (held.by.as_str(), held.pid, held.container.as_str()),
        ("alice@elsewhere", Some(4242), "prod.web.h1.lock")
    );
    assert_eq!(
        containers(&h1),
        list(&[("prod.web.h1.lock", "created")]),
        "the holder's lock stays"
    );
}

#[tokio::test]
async fn a_lock_held_with_a_reason_says_the_reason() {
    let h1 = fake("h1");
    let _held = acquire(
        ENV,
        "web",
        &hosts(&[&h1]),
        &holder("carol@desk", "db migration", None),
    )
    .await
    .unwrap();

    let error = acquire(ENV, "web", &hosts(&[&h1]), &bob())
        .await
        .err()
        .unwrap();

    assert_eq!(
        error.to_string(),
        "job web is locked by carol@desk since 2026-03-01T12:00:00Z on host h1 \
         (reason: db migration): wait for it to finish, or if it is gone, \
         run `drover unlock web`"
    );
}

#[tokio::test]
async fn other_jobs_are_not_held_by_a_jobs_lock() {
    let h1 = fake("h1");
    let _web = acquire(ENV, "web", &hosts(&[&h1]), &alice()).await.unwrap();

    let api = acquire(ENV, "api", &hosts(&[&h1]), &bob()).await;

    assert!(api.is_ok());
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.api.h1.lock", "created"),
            ("prod.web.h1.lock", "created")
        ])
    );
}

#[tokio::test]
async fn hosts_are_locked_in_name_order() {
    let (h1, h2) = (fake("h1"), fake("h2"));
    let _alice = acquire(ENV, "web", &hosts(&[&h1]), &alice()).await.unwrap();
    h1.clear_calls();

    // Listed h2 first: h1 still comes first, and refuses.
    let refused = acquire(ENV, "web", &hosts(&[&h2, &h1]), &bob()).await;

    assert!(matches!(refused, Err(LockError::Held { ref held, .. }) if held.host == "h1"));
    assert_eq!(h2.calls(), Vec::<String>::new(), "h2 is never asked");
}

#[tokio::test]
async fn a_lock_refused_on_a_later_host_gives_back_the_earlier_ones() {
    let (h1, h2) = (fake("h1"), fake("h2"));
    let _alice = acquire(ENV, "web", &hosts(&[&h2]), &alice()).await.unwrap();

    let refused = acquire(ENV, "web", &hosts(&[&h2, &h1]), &bob()).await;

    assert!(matches!(refused, Err(LockError::Held { ref held, .. }) if held.host == "h2"));
    assert_eq!(
        h1.calls(),
        [
            format!("inspect-image {MARKER_IMAGE}"),
            format!("import {MARKER_IMAGE}"),
            "create prod.web.h1.lock".to_string(),
            "remove prod.web.h1.lock".to_string(),
        ]
    );
    assert_eq!(containers(&h1), list(&[]));
    assert_eq!(containers(&h2), list(&[("prod.web.h2.lock", "created")]));
}

#[tokio::test]
async fn a_lock_records_its_holder_on_every_host() {
    let (h1, h2) = (fake("h1"), fake("h2"));

    let guard = acquire(ENV, "web", &hosts(&[&h2, &h1]), &alice())
        .await
        .unwrap();

    assert_eq!(guard.hosts(), ["h1", "h2"]);
    for (engine, host) in [(&h1, "h1"), (&h2, "h2")] {
        let lock = engine.container(&format!("prod.web.{host}.lock")).unwrap();
        assert_eq!(
            lock.runs.state,
            drover_plan::RunState::Created,
            "a marker is never started"
        );
        assert_eq!(lock.config.image, MARKER_IMAGE);
        let label = |name: &str| lock.labels.get(name).map(String::as_str);
        assert_eq!(label(labels::ENV), Some(ENV));
        assert_eq!(label(labels::JOB), Some("web"));
        assert_eq!(label(labels::HOST), Some(host));
        assert_eq!(label(labels::ROLE), Some("lock"));
        assert_eq!(label(labels::DEPLOYED_BY), Some("alice@elsewhere"));
        assert_eq!(label(labels::COMMAND), Some("update web --image reg/web:2"));
        assert_eq!(label(labels::PID), Some("4242"));
        assert_eq!(label(labels::TASK), None, "a lock is no task");
    }
}

#[tokio::test]
async fn release_removes_only_the_locks_it_created() {
    let (h1, h2) = (fake("h1"), fake("h2"));
    let guard = acquire(ENV, "web", &hosts(&[&h1, &h2]), &alice())
        .await
        .unwrap();
    // Meanwhile someone unlocks h1 by hand and takes it.
    force_unlock(ENV, "web", &hosts(&[&h1])).await.unwrap();
    let _bob = acquire(ENV, "web", &hosts(&[&h1]), &bob()).await.unwrap();
    let bobs = h1.container("prod.web.h1.lock").unwrap().id;

    let errors = guard.release().await;

    assert_eq!(errors, Vec::new());
    assert_eq!(containers(&h2), list(&[]));
    assert_eq!(containers(&h1), list(&[("prod.web.h1.lock", "created")]));
    assert_eq!(
        h1.container("prod.web.h1.lock").unwrap().id,
        bobs,
        "bob's lock stays"
    );
}

#[tokio::test]
async fn a_lock_whose_holder_died_on_this_machine_is_taken_over() {
    let h1 = fake("h1");
    let crashed = holder(&here("ops"), "", Some(dead_pid()));
    let _gone = acquire(ENV, "web", &hosts(&[&h1]), &crashed).await.unwrap();
    h1.clear_calls();

    let guard = acquire(ENV, "web", &hosts(&[&h1]), &bob()).await;

    assert!(guard.is_ok(), "{:?}", guard.err());
    assert_eq!(
        h1.calls(),
        [
            format!("inspect-image {MARKER_IMAGE}"),
            "create prod.web.h1.lock".to_string(),
            "inspect prod.web.h1.lock".to_string(),
            "remove prod.web.h1.lock".to_string(),
            format!("inspect-image {MARKER_IMAGE}"),
            "create prod.web.h1.lock".to_string(),
        ]
    );
    let lock = h1.container("prod.web.h1.lock").unwrap();
    assert_eq!(lock.labels[labels::DEPLOYED_BY], "bob@laptop");
}

#[tokio::test]
async fn a_lock_whose_holder_still_runs_is_not_taken_over() {
    let h1 = fake("h1");
    let running = holder(&here("ops"), "", Some(std::process::id()));
    let _held = acquire(ENV, "web", &hosts(&[&h1]), &running).await.unwrap();

    let refused = acquire(ENV, "web", &hosts(&[&h1]), &bob()).await;

    assert!(matches!(refused, Err(LockError::Held { .. })));
}

#[tokio::test]
async fn a_lock_of_another_machine_is_never_taken_over() {
    let h1 = fake("h1");
    // Its pid means nothing here, even if no such process runs here.
    let remote = holder("ops@another-machine", "", Some(dead_pid()));
    let _held = acquire(ENV, "web", &hosts(&[&h1]), &remote).await.unwrap();

    let refused = acquire(ENV, "web", &hosts(&[&h1]), &bob()).await;

    assert!(matches!(refused, Err(LockError::Held { .. })));
}

#[tokio::test]
async fn a_lock_taken_by_drover_lock_is_never_taken_over() {
    let h1 = fake("h1");
    let by_hand = holder(&here("ops"), "incident 42", None);
    let _held = acquire(ENV, "web", &hosts(&[&h1]), &by_hand).await.unwrap();

    let refused = acquire(ENV, "web", &hosts(&[&h1]), &bob()).await;

    assert!(matches!(refused, Err(LockError::Held { ref held, .. }) if held.pid.is_none()));
    assert_eq!(
        h1.container("prod.web.h1.lock").unwrap().labels[labels::REASON],
        "incident 42"
    );
}

#[test]
fn only_a_dead_process_of_this_machine_makes_a_lock_stale() {
    let dead = dead_pid();
    assert!(is_stale(&lock_info(&here("ops"), Some(dead))));
    assert!(!is_stale(&lock_info(
        &here("ops"),
        Some(std::process::id())
    )));
    assert!(!is_stale(&lock_info(&here("ops"), None)));
    assert!(!is_stale(&lock_info("ops@another-machine", Some(dead))));
    assert!(!is_stale(&lock_info("unknown", Some(dead))));
}

#[tokio::test]
async fn the_marker_image_is_imported_once_and_reused() {
    let h1 = fake("h1");

    let first = acquire(ENV, "web", &hosts(&[&h1]), &alice()).await.unwrap();
    first.release().await;
    let _second = acquire(ENV, "web", &hosts(&[&h1]), &alice()).await.unwrap();

    assert_eq!(
        h1.calls(),
        [
            format!("inspect-image {MARKER_IMAGE}"),
            format!("import {MARKER_IMAGE}"),
            "create prod.web.h1.lock".to_string(),
            "remove prod.web.h1.lock".to_string(),
            format!("inspect-image {MARKER_IMAGE}"),
            "create prod.web.h1.lock".to_string(),
        ]
    );
}

#[tokio::test]
async fn force_unlock_removes_whoever_holds_the_lock_and_says_who_it_was() {
    let (h1, h2, h3) = (fake("h1"), fake("h2"), fake("h3"));
    let _alice = acquire(ENV, "web", &hosts(&[&h1, &h2]), &alice())
        .await
        .unwrap();

    let removed = force_unlock(ENV, "web", &hosts(&[&h1, &h2, &h3]))
        .await
        .unwrap();

    let who: Vec<(String, String, Option<u32>)> =
        removed.into_iter().map(|l| (l.host, l.by, l.pid)).collect();
    assert_eq!(
        who,
        [
            ("h1".to_string(), "alice@elsewhere".to_string(), Some(4242)),
            ("h2".to_string(), "alice@elsewhere".to_string(), Some(4242)),
        ]
    );
    assert_eq!(containers(&h1), list(&[]));
    assert_eq!(containers(&h2), list(&[]));
    assert!(acquire(ENV, "web", &hosts(&[&h1, &h2]), &bob())
        .await
        .is_ok());
}
