//! The executor against `FakeEngine`: what each step does to a host, in
//! which order, and what the operator is told. Every engine call is one line
//! (`stop prod.web.h1.0`), compared as strings; gates, delays and
//! interruptions run on tokio's paused clock, so waiting costs no real time.

mod support;

use std::sync::Arc;
use std::time::Duration;

use drover_apply::gate::SETTLE;
use drover_apply::{GateFailure, Phase, Restored, RolloutPolicy, StepError};
use drover_engine::fake::{Behaviour, FakeEngine};
use drover_engine::EngineError;
use drover_plan::{labels, ContainerRef, HealthConfig, Pull, Step, TaskKey};

use support::*;

/// A rollout's replacement that proves nothing: it exits at once.
const BROKEN: &str = "reg/web:2-broken";
/// A replacement that takes its time turning healthy.
const SLOW: &str = "reg/web:2-slow";

fn kept_name(task: u32, old: &ContainerRef) -> String {
    TaskKey::new("web", "h1", task).kept_name(ENV, &old.id)
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn injected(what: &str) -> EngineError {
    EngineError::Api {
        status: 500,
        message: format!("injected: {what}"),
    }
}

// ---------------------------------------------------------------- create

#[tokio::test(start_paused = true)]
async fn create_starts_the_task_and_waits_for_it_to_prove_itself() {
    let h1 = host("h1", &[]);
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Create {
            desired: desired("web", "h1", 0, NEW),
        },
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert_eq!(
        h1.calls(),
        [
            "create prod.web.h1.0",
            "start prod.web.h1.0",
            "inspect prod.web.h1.0",
            "inspect prod.web.h1.0",
        ]
    );
    let id = id_of(&h1, "prod.web.h1.0");
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Ok(format!("created {}", &id[..12]))
    );
    assert_eq!(containers(&h1), list(&[("prod.web.h1.0", "running")]));
    let created = h1.container("prod.web.h1.0").unwrap();
    assert_eq!(created.labels[labels::DEPLOYED_BY], BY);
    assert_eq!(created.labels[labels::DEPLOYED_AT], AT);
    assert_eq!(created.labels[labels::COMMAND], COMMAND);
    assert_eq!(created.labels[labels::TASK], "0");
    assert!(
        !created.labels.contains_key(labels::PREVIOUS),
        "a first deployment has no previous generation"
    );
    assert!(run.report.succeeded());
}

#[tokio::test(start_paused = true)]
async fn a_create_whose_start_fails_leaves_no_container_behind() {
    let h1 = host("h1", &[]);
    h1.fail("start prod.web.h1.0", injected("exec format error"));
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Create {
            desired: desired("web", "h1", 0, NEW),
        },
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert_eq!(
        h1.calls(),
        [
            "create prod.web.h1.0",
            "start prod.web.h1.0",
            "remove prod.web.h1.0",
        ]
    );
    assert_eq!(containers(&h1), list(&[]));
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::Engine(injected("exec format error")))
    );
    assert!(!run.report.succeeded());
}

// ---------------------------------------------------------------- replace

#[tokio::test(start_paused = true)]
async fn replace_stops_the_old_container_sets_it_aside_and_starts_the_new_one_under_the_task_name()
{
    let h1 = host("h1", &[]);
    let old = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![replace(old.clone(), desired("web", "h1", 0, NEW))]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    let kept = kept_name(0, &old);
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {kept}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
        ]
    );
    let suffix = kept.strip_prefix("prod.web.h1.0.kept-").unwrap();
    assert!(
        suffix.len() == 12 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "kept name {kept} ends with the old container's short ID"
    );
    assert_eq!(
        containers(&h1),
        list(&[("prod.web.h1.0", "running"), (&kept, "exited")])
    );
    assert_eq!(
        id_of(&h1, &kept),
        old.id,
        "the old container is the kept one"
    );
    let new = h1.container("prod.web.h1.0").unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(new.config.image, NEW);
    assert_eq!(new.labels[labels::DEPLOYED_BY], BY);
    assert_eq!(new.labels[labels::DEPLOYED_AT], AT);
    assert_eq!(new.labels[labels::COMMAND], COMMAND);
    assert_eq!(
        new.labels[labels::PREVIOUS],
        old.record,
        "the new container records the generation it replaced"
    );
    assert!(old.record.contains(OLD));
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Ok(format!(
            "replaced {} with {} (kept {} for rollback)",
            &old.id[..12],
            &new.id[..12],
            &old.id[..12]
        ))
    );
}

/// What every failed replacement must leave: the new container stopped
/// and set aside under the task's `.failed` name (the evidence), the old
/// one back under the task's name and running, and the operator told why
/// with the new container's last words.
async fn replacement_fails(
    behaviour: Behaviour,
    new_config: drover_plan::TaskConfig,
) -> (Arc<FakeEngine>, ContainerRef, Result<String, StepError>) {
    let h1 = host("h1", &[]);
    set_behaviour(&h1, NEW, behaviour);
    let old = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![replace(
        old.clone(),
        desired_with("web", "h1", 0, new_config),
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    let kept = kept_name(0, &old);
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {kept}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
            "stop prod.web.h1.0".to_string(),
            "rename prod.web.h1.0 prod.web.h1.0.failed".to_string(),
            format!("rename {kept} prod.web.h1.0"),
            "start prod.web.h1.0".to_string(),
        ]
    );
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "running"),
            ("prod.web.h1.0.failed", "exited")
        ])
    );
    assert_eq!(
        id_of(&h1, "prod.web.h1.0"),
        old.id,
        "the previous container runs again"
    );
    let result = run.outcome("web", "h1", 0).result.clone();
    match &result {
        Err(StepError::Gate { logs, restored, .. }) => {
            assert_eq!(logs, &["last words of prod.web.h1.0"]);
            assert_eq!(restored, &Restored::Previous);
        }
        other => panic!("expected a gate failure, got {other:?}"),
    }
    (h1, old, result)
}

#[tokio::test(start_paused = true)]
async fn a_replacement_that_exits_is_removed_and_the_previous_container_runs_again() {
    let (h1, _, result) = replacement_fails(Behaviour::Exits(1), config(NEW)).await;

    let Err(StepError::Gate { failure, .. }) = &result else {
        unreachable!()
    };
    assert_eq!(
        failure,
        &GateFailure::Exited {
            code: 1,
            oom: false
        }
    );
    assert_eq!(
        result.unwrap_err().to_string(),
        "the new container failed: it exited with code 1; the previous container runs again; it is kept stopped as prod.web.h1.0.failed for its logs"
    );
    // Its last words are read before it is set aside.
    let calls = h1.calls();
    let logs = calls.iter().position(|c| c == "logs prod.web.h1.0");
    let aside = calls
        .iter()
        .position(|c| c == "rename prod.web.h1.0 prod.web.h1.0.failed");
    assert!(logs < aside, "{calls:#?}");
}

#[tokio::test(start_paused = true)]
async fn a_crash_looping_replacement_is_removed_and_the_previous_container_runs_again() {
    let (_, _, result) = replacement_fails(Behaviour::CrashLoops, config(NEW)).await;

    assert!(
        matches!(
            result,
            Err(StepError::Gate {
                failure: GateFailure::Restarted { .. },
                ..
            })
        ),
        "{result:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_replacement_is_removed_and_the_previous_container_runs_again() {
    let (_, _, result) = replacement_fails(Behaviour::Unhealthy, config(NEW)).await;

    let Err(StepError::Gate { failure, .. }) = &result else {
        unreachable!()
    };
    assert_eq!(
        failure,
        &GateFailure::Unhealthy {
            output: "check failed".to_string()
        }
    );
}

/// A health check whose deadline is 0.8s.
fn quick_health() -> HealthConfig {
    HealthConfig {
        cmd: vec!["true".to_string()],
        interval: Duration::from_millis(200),
        timeout: Duration::from_millis(100),
        retries: 1,
        start_period: Duration::ZERO,
    }
}

#[tokio::test(start_paused = true)]
async fn a_replacement_never_healthy_within_its_deadline_is_removed_and_the_previous_container_runs_again(
) {
    let mut new_config = config(NEW);
    new_config.health = Some(quick_health());

    let (_, _, result) = replacement_fails(Behaviour::HealthyAfter(u32::MAX), new_config).await;

    let Err(StepError::Gate { failure, .. }) = &result else {
        unreachable!()
    };
    assert_eq!(
        failure,
        &GateFailure::Deadline {
            after: quick_health().deadline(),
            health: "starting".to_string(),
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_replacement_that_cannot_start_is_removed_and_the_previous_container_runs_again() {
    let h1 = host("h1", &[]);
    let old = deployed(&h1, "web", 0, OLD, "running");
    // The new container's start fails; the old one's, under the same name, works.
    h1.fail_once("start prod.web.h1.0", injected("port is already allocated"));
    let plan = plan(vec![replace(old.clone(), desired("web", "h1", 0, NEW))]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    let kept = kept_name(0, &old);
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {kept}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
            "remove prod.web.h1.0".to_string(),
            format!("rename {kept} prod.web.h1.0"),
            "start prod.web.h1.0".to_string(),
        ]
    );
    assert_eq!(containers(&h1), list(&[("prod.web.h1.0", "running")]));
    assert_eq!(id_of(&h1, "prod.web.h1.0"), old.id);
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::Undone {
            error: "engine error 500: injected: port is already allocated".to_string(),
            restored: Restored::Previous,
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_stopped_task_whose_replacement_fails_stays_stopped() {
    let h1 = host("h1", &[]);
    set_behaviour(&h1, NEW, Behaviour::Exits(1));
    let old = deployed(&h1, "web", 0, OLD, "exited");
    let plan = plan(vec![replace(old.clone(), desired("web", "h1", 0, NEW))]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    let kept = kept_name(0, &old);
    assert_eq!(
        actions(&h1),
        [
            format!("rename prod.web.h1.0 {kept}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
            "stop prod.web.h1.0".to_string(),
            "rename prod.web.h1.0 prod.web.h1.0.failed".to_string(),
            format!("rename {kept} prod.web.h1.0"),
        ]
    );
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "exited"),
            ("prod.web.h1.0.failed", "exited")
        ])
    );
    assert!(matches!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::Gate {
            restored: Restored::Nothing,
            ..
        })
    ));
}

// ---------------------------------------------------------------- gates in time

#[tokio::test(start_paused = true)]
async fn a_task_without_health_check_must_stay_up_for_the_settle_time() {
    let h1 = host("h1", &[]);
    let mut no_health = config(NEW);
    no_health.health = None;
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Create {
            desired: desired_with("web", "h1", 0, no_health),
        },
    )]);

    let real = std::time::Instant::now();
    let run = Apply::new(&[&h1]).run(&plan).await;

    assert!(run.outcome("web", "h1", 0).result.is_ok());
    let looks = h1
        .calls()
        .iter()
        .filter(|c| c.starts_with("inspect"))
        .count();
    assert!(
        run.took >= SETTLE && run.took < SETTLE + Duration::from_millis(500),
        "the settle time ({SETTLE:?}) is waited on tokio's clock, once: took {:?} of virtual \
         time ({:?} real) and {looks} looks",
        run.took,
        real.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_health_check_that_never_passes_fails_at_its_deadline() {
    let h1 = host("h1", &[]);
    set_behaviour(&h1, NEW, Behaviour::HealthyAfter(u32::MAX));
    let mut slow = config(NEW);
    slow.health = Some(quick_health());
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Create {
            desired: desired_with("web", "h1", 0, slow),
        },
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    let deadline = quick_health().deadline();
    assert!(
        matches!(
            run.outcome("web", "h1", 0).result,
            Err(StepError::Gate {
                failure: GateFailure::Deadline { .. },
                ..
            })
        ),
        "{:?}",
        run.outcome("web", "h1", 0).result
    );
    let looks = h1
        .calls()
        .iter()
        .filter(|c| c.starts_with("inspect"))
        .count();
    assert!(
        run.took >= deadline && run.took < deadline + Duration::from_millis(500),
        "gave up after {:?} of virtual time and {looks} looks, its deadline is {deadline:?}",
        run.took
    );
    // Looked at every 150ms, not in a busy loop.
    assert!(looks <= 20, "{looks} looks in {deadline:?}");
}

#[tokio::test(start_paused = true)]
async fn operators_see_the_wait_for_health_once_a_second() {
    let h1 = host("h1", &[]);
    // Healthy at the 19th look: about 2.5s of polling.
    set_behaviour(&h1, NEW, Behaviour::HealthyAfter(18));
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Create {
            desired: desired("web", "h1", 0, NEW),
        },
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert!(run.outcome("web", "h1", 0).result.is_ok());
    let waiting: Vec<String> = run
        .events
        .iter()
        .filter_map(|(_, e)| match &e.phase {
            Phase::Waiting { health, .. } => Some(format!("{} {}", health, e.phase)),
            _ => None,
        })
        .collect();
    assert_eq!(
        waiting,
        [
            "true waiting for health 0s/14s",
            "true waiting for health 1s/14s",
            "true waiting for health 2s/14s",
        ]
    );
}

// ---------------------------------------------------------------- batches

/// Four tasks of `web` on h1, to be replaced by a slow-to-turn-healthy image.
fn four_slow_tasks() -> (Arc<FakeEngine>, drover_plan::Plan) {
    let h1 = host("h1", &[SLOW]);
    set_behaviour(&h1, SLOW, Behaviour::HealthyAfter(3));
    let changes = (0..4).map(|t| replace_task(&h1, "web", t, SLOW)).collect();
    (h1, plan(changes))
}

#[tokio::test(start_paused = true)]
async fn parallel_1_never_has_two_tasks_down_at_once() {
    let (h1, plan) = four_slow_tasks();

    let run = Apply::new(&[&h1]).policy("web", policy(1)).run(&plan).await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    assert_eq!(most_down_at_once(&h1.calls(), "web", "h1", 4), 1);
    let stopped: Vec<String> = actions(&h1)
        .into_iter()
        .filter(|c| c.starts_with("stop "))
        .collect();
    assert_eq!(
        stopped,
        [
            "stop prod.web.h1.0",
            "stop prod.web.h1.1",
            "stop prod.web.h1.2",
            "stop prod.web.h1.3",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn parallel_2_takes_two_tasks_down_at_a_time() {
    let (h1, plan) = four_slow_tasks();

    let run = Apply::new(&[&h1]).policy("web", policy(2)).run(&plan).await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    assert_eq!(most_down_at_once(&h1.calls(), "web", "h1", 4), 2);
    let stops: Vec<String> = run
        .stopping()
        .into_iter()
        .map(|(at, subject)| format!("{:.2}s {subject}", at.as_secs_f64()))
        .collect();
    // Each gate takes three looks: the first, one more when the engine's
    // event stream turns out to be missing (the fake has none), then 150ms on.
    assert_eq!(
        stops,
        [
            "0.00s web h1/0",
            "0.00s web h1/1",
            "0.15s web h1/2",
            "0.15s web h1/3",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn batches_are_delay_apart() {
    let h1 = host("h1", &[]);
    let changes = (0..4).map(|t| replace_task(&h1, "web", t, NEW)).collect();
    let policy = RolloutPolicy {
        delay: Duration::from_secs(30),
        ..policy(2)
    };

    let run = Apply::new(&[&h1])
        .policy("web", policy)
        .run(&plan(changes))
        .await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    let stops: Vec<String> = run
        .stopping()
        .into_iter()
        .map(|(at, subject)| format!("{} {subject}", secs(at)))
        .collect();
    assert_eq!(
        stops,
        ["0s web h1/0", "0s web h1/1", "30s web h1/2", "30s web h1/3"]
    );
    assert_eq!(secs(run.took), "30s", "no delay after the last batch");
}

#[tokio::test(start_paused = true)]
async fn each_job_rolls_out_by_its_own_policy_and_jobs_run_at_once() {
    let h1 = host("h1", &[]);
    let mut changes: Vec<_> = (0..2).map(|t| replace_task(&h1, "web", t, NEW)).collect();
    changes.extend((0..2).map(|t| replace_task(&h1, "api", t, NEW)));
    let every_10s = RolloutPolicy {
        delay: Duration::from_secs(10),
        ..policy(1)
    };

    let run = Apply::new(&[&h1])
        .policy("web", every_10s)
        .policy("api", policy(2))
        .run(&plan(changes))
        .await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    let mut stops: Vec<String> = run
        .stopping()
        .into_iter()
        .map(|(at, subject)| format!("{} {subject}", secs(at)))
        .collect();
    stops.sort();
    assert_eq!(
        stops,
        ["0s api h1/0", "0s api h1/1", "0s web h1/0", "10s web h1/1"]
    );
}

// ---------------------------------------------------------------- auto rollback

/// web h1/0..2 replaced one at a time; h1/1's new image exits at once.
fn second_of_three_fails() -> (Arc<FakeEngine>, drover_plan::Plan, Vec<ContainerRef>) {
    let h1 = host("h1", &[BROKEN]);
    set_behaviour(&h1, BROKEN, Behaviour::Exits(1));
    let old: Vec<ContainerRef> = (0..3)
        .map(|t| deployed(&h1, "web", t, OLD, "running"))
        .collect();
    let images = [NEW, BROKEN, NEW];
    let changes = (0..3)
        .map(|t| {
            replace(
                old[t as usize].clone(),
                desired("web", "h1", t, images[t as usize]),
            )
        })
        .collect();
    (h1, plan(changes), old)
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_rolls_back_the_batches_before_it() {
    let (h1, plan, old) = second_of_three_fails();

    let run = Apply::new(&[&h1]).policy("web", policy(1)).run(&plan).await;

    let (kept0, kept1) = (kept_name(0, &old[0]), kept_name(1, &old[1]));
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {kept0}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
            "stop prod.web.h1.1".to_string(),
            format!("rename prod.web.h1.1 {kept1}"),
            "create prod.web.h1.1".to_string(),
            "start prod.web.h1.1".to_string(),
            "stop prod.web.h1.1".to_string(),
            "rename prod.web.h1.1 prod.web.h1.1.failed".to_string(),
            format!("rename {kept1} prod.web.h1.1"),
            "start prod.web.h1.1".to_string(),
            // The rollback of h1/0.
            "stop prod.web.h1.0".to_string(),
            "remove prod.web.h1.0".to_string(),
            format!("rename {kept0} prod.web.h1.0"),
            "start prod.web.h1.0".to_string(),
        ]
    );
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "running"),
            ("prod.web.h1.1", "running"),
            ("prod.web.h1.1.failed", "exited"),
            ("prod.web.h1.2", "running"),
        ])
    );
    for (t, old) in old.iter().enumerate() {
        assert_eq!(id_of(&h1, &name("web", "h1", t as u32)), old.id);
    }
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::RolledBack {
            because: "web h1/1 failed".to_string(),
            restored: Restored::Previous,
        })
    );
    assert!(matches!(
        run.outcome("web", "h1", 1).result,
        Err(StepError::Gate {
            failure: GateFailure::Exited { code: 1, .. },
            restored: Restored::Previous,
            ..
        })
    ));
    assert_eq!(
        run.outcome("web", "h1", 2).result,
        Err(StepError::NotStarted {
            why: "the rollout stopped: web h1/1 failed".to_string()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn without_auto_rollback_the_batches_before_a_failure_stay_replaced() {
    let (h1, plan, old) = second_of_three_fails();
    let policy = RolloutPolicy {
        auto_rollback: false,
        ..policy(1)
    };

    let run = Apply::new(&[&h1]).policy("web", policy).run(&plan).await;

    let kept0 = kept_name(0, &old[0]);
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "running"),
            (&kept0, "exited"),
            ("prod.web.h1.1", "running"),
            ("prod.web.h1.1.failed", "exited"),
            ("prod.web.h1.2", "running"),
        ])
    );
    assert_eq!(h1.container("prod.web.h1.0").unwrap().config.image, NEW);
    assert_eq!(id_of(&h1, "prod.web.h1.1"), old[1].id);
    assert_eq!(id_of(&h1, "prod.web.h1.2"), old[2].id);
    assert!(run.outcome("web", "h1", 0).result.is_ok());
    assert!(matches!(
        run.outcome("web", "h1", 1).result,
        Err(StepError::Gate { .. })
    ));
    assert_eq!(
        run.outcome("web", "h1", 2).result,
        Err(StepError::NotStarted {
            why: "the rollout stopped: web h1/1 failed".to_string()
        })
    );
    assert!(
        !actions(&h1).contains(&"stop prod.web.h1.2".to_string()),
        "h1/2 was never touched"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_rolls_back_the_task_that_passed_in_the_same_batch() {
    let h1 = host("h1", &[BROKEN]);
    set_behaviour(&h1, BROKEN, Behaviour::Exits(1));
    let old0 = deployed(&h1, "web", 0, OLD, "running");
    let old1 = deployed(&h1, "web", 1, OLD, "running");
    let plan = plan(vec![
        replace(old0.clone(), desired("web", "h1", 0, NEW)),
        replace(old1.clone(), desired("web", "h1", 1, BROKEN)),
    ]);

    let run = Apply::new(&[&h1]).policy("web", policy(2)).run(&plan).await;

    assert_eq!(id_of(&h1, "prod.web.h1.0"), old0.id);
    assert_eq!(id_of(&h1, "prod.web.h1.1"), old1.id);
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "running"),
            ("prod.web.h1.1", "running"),
            ("prod.web.h1.1.failed", "exited")
        ])
    );
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::RolledBack {
            because: "web h1/1 failed".to_string(),
            restored: Restored::Previous,
        })
    );
}

// ---------------------------------------------------------------- pull first

#[tokio::test(start_paused = true)]
async fn a_failed_pull_on_one_host_leaves_the_job_untouched_on_every_host() {
    let h1 = Arc::new(
        FakeEngine::new("h1")
            .with_image(OLD, "sha256:old")
            .with_registry_image(NEW, "sha256:new"),
    );
    // h2's registry mirror lacks the new web image; the new api image is there.
    let h2 = Arc::new(
        FakeEngine::new("h2")
            .with_image(OLD, "sha256:old")
            .with_registry_image("reg/api:2", "sha256:api2"),
    );
    let mut plan = plan(vec![
        replace_task(&h1, "web", 0, NEW),
        replace_task(&h2, "web", 0, NEW),
        replace_task(&h2, "api", 0, "reg/api:2"),
    ]);
    plan.pulls = vec![
        Pull {
            host: "h1".into(),
            image: NEW.into(),
            pullable: true,
        },
        Pull {
            host: "h2".into(),
            image: NEW.into(),
            pullable: true,
        },
        Pull {
            host: "h2".into(),
            image: "reg/api:2".into(),
            pullable: true,
        },
    ];

    let run = Apply::new(&[&h1, &h2]).run(&plan).await;

    assert_eq!(actions(&h1), ["pull reg/web:2"]);
    let on_h2 = actions(&h2);
    assert_eq!(
        on_h2[..3],
        ["pull reg/web:2", "pull reg/api:2", "stop prod.api.h2.0"]
    );
    assert!(
        !on_h2.iter().any(|c| c.contains("prod.web.")),
        "web is not touched on h2 either: {on_h2:#?}"
    );
    // The pull failed; web's steps were not started (they did not fail).
    for host in ["h1", "h2"] {
        match &run.outcome("web", host, 0).result {
            Err(StepError::NotStarted { why }) => {
                assert_eq!(why, "image reg/web:2 could not be pulled on host h2");
            }
            other => panic!("web {host}/0: expected not started, got {other:?}"),
        }
    }
    let pull = run
        .report
        .outcomes
        .iter()
        .find(|o| o.host == "h2" && o.step == "pull reg/web:2")
        .expect("the pull's own outcome");
    assert_eq!(
        pull.result.clone().unwrap_err().to_string(),
        "image reg/web:2 could not be pulled on host h2: host h2: pulling reg/web:2 failed: manifest unknown"
    );
    assert_eq!(
        containers(&h1),
        list(&[("prod.web.h1.0", "running")]),
        "web on h1 keeps running as it was"
    );
    assert!(
        run.outcome("api", "h2", 0).result.is_ok(),
        "other jobs proceed"
    );
    assert_eq!(
        h2.container("prod.api.h2.0").unwrap().config.image,
        "reg/api:2"
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_id_missing_on_a_host_fails_without_asking_the_engine_to_pull_it() {
    let h1 = host("h1", &[]);
    let image_id = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let mut plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Create {
            desired: desired("web", "h1", 0, image_id),
        },
    )]);
    plan.pulls = vec![Pull {
        host: "h1".into(),
        image: image_id.into(),
        pullable: false,
    }];

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert_eq!(h1.calls(), Vec::<String>::new());
    match &run.outcome("web", "h1", 0).result {
        Err(StepError::NotStarted { why }) => {
            assert_eq!(
                why,
                &format!("image {image_id} could not be pulled on host h1")
            );
        }
        other => panic!("expected not started, got {other:?}"),
    }
    let pull = run
        .report
        .outcomes
        .iter()
        .find(|o| o.step == format!("pull {image_id}"))
        .expect("the pull's own outcome");
    match &pull.result {
        Err(StepError::Pull { image, error, .. }) => {
            assert_eq!(image, image_id);
            assert!(error.contains("docker load"), "{error}");
        }
        other => panic!("expected the pull error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- interruption

#[tokio::test(start_paused = true)]
async fn interrupted_before_the_run_nothing_is_started() {
    let h1 = host("h1", &[]);
    let plan = plan(vec![
        replace_task(&h1, "web", 0, NEW),
        replace_task(&h1, "web", 1, NEW),
        change(
            "api",
            "h1",
            0,
            Step::Create {
                desired: desired("api", "h1", 0, NEW),
            },
        ),
    ]);
    let apply = Apply::new(&[&h1]);
    apply.cancel.cancel();

    let run = apply.run(&plan).await;

    assert_eq!(actions(&h1), Vec::<String>::new());
    for (job, task) in [("web", 0), ("web", 1), ("api", 0)] {
        assert_eq!(
            run.outcome(job, "h1", task).result,
            Err(StepError::NotStarted {
                why: "interrupted".to_string()
            })
        );
    }
    assert!(run.report.interrupted);
    assert!(!run.report.succeeded());
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_run_removes_no_kept_generations() {
    let h1 = host("h1", &[]);
    kept(&h1, "web", 0, OLD, "2026-01-01T00:00:00Z");
    kept(&h1, "web", 0, OLD, "2026-01-02T00:00:00Z");
    let plan = plan(vec![replace_task(&h1, "web", 0, NEW)]);
    let apply = Apply::new(&[&h1]).policy(
        "web",
        RolloutPolicy {
            keep: 1,
            ..policy(1)
        },
    );
    apply.cancel.cancel();

    let run = apply.run(&plan).await;

    assert!(run.report.interrupted);
    assert_eq!(
        actions(&h1),
        Vec::<String>::new(),
        "Ctrl-C before anything ran: nothing on the host may change"
    );
}

/// web h1/0..2 replaced one at a time; h1/1's new image is slow to turn healthy.
fn second_of_three_is_slow() -> (Arc<FakeEngine>, drover_plan::Plan, Vec<ContainerRef>) {
    let h1 = host("h1", &[SLOW]);
    set_behaviour(&h1, SLOW, Behaviour::HealthyAfter(u32::MAX));
    let old: Vec<ContainerRef> = (0..3)
        .map(|t| deployed(&h1, "web", t, OLD, "running"))
        .collect();
    let images = [NEW, SLOW, NEW];
    let changes = (0..3)
        .map(|t| {
            replace(
                old[t as usize].clone(),
                desired("web", "h1", t, images[t as usize]),
            )
        })
        .collect();
    (h1, plan(changes), old)
}

fn cancel_after(apply: &Apply, after: Duration) {
    let cancel = apply.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        cancel.cancel();
    });
}

#[tokio::test(start_paused = true)]
async fn interrupted_while_a_replacement_waits_for_health_the_previous_container_runs_again() {
    let (h1, plan, old) = second_of_three_is_slow();
    let apply = Apply::new(&[&h1]).policy("web", policy(1));
    cancel_after(&apply, Duration::from_secs(5));

    let run = apply.run(&plan).await;

    assert_eq!(secs(run.took), "5s", "the wait ends when interrupted");
    let (kept0, kept1) = (kept_name(0, &old[0]), kept_name(1, &old[1]));
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {kept0}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
            "stop prod.web.h1.1".to_string(),
            format!("rename prod.web.h1.1 {kept1}"),
            "create prod.web.h1.1".to_string(),
            "start prod.web.h1.1".to_string(),
            "remove prod.web.h1.1".to_string(),
            format!("rename {kept1} prod.web.h1.1"),
            "start prod.web.h1.1".to_string(),
        ]
    );
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "running"),
            (&kept0, "exited"),
            ("prod.web.h1.1", "running"),
            ("prod.web.h1.2", "running"),
        ])
    );
    assert_eq!(h1.container("prod.web.h1.0").unwrap().config.image, NEW);
    assert_eq!(id_of(&h1, "prod.web.h1.1"), old[1].id);
    assert_eq!(id_of(&h1, "prod.web.h1.2"), old[2].id);
    assert!(
        run.outcome("web", "h1", 0).result.is_ok(),
        "a batch that passed is not rolled back: {:?}",
        run.outcome("web", "h1", 0).result
    );
    assert_eq!(
        run.outcome("web", "h1", 1).result,
        Err(StepError::Interrupted {
            restored: Restored::Previous
        })
    );
    assert_eq!(
        run.outcome("web", "h1", 2).result,
        Err(StepError::NotStarted {
            why: "interrupted".to_string()
        })
    );
    assert!(run.report.interrupted);
}

#[tokio::test(start_paused = true)]
async fn interrupted_during_the_delay_between_batches_the_passed_batches_stay() {
    let h1 = host("h1", &[]);
    let old: Vec<ContainerRef> = (0..3)
        .map(|t| deployed(&h1, "web", t, OLD, "running"))
        .collect();
    let changes = (0..3)
        .map(|t| replace(old[t as usize].clone(), desired("web", "h1", t, NEW)))
        .collect();
    let apply = Apply::new(&[&h1]).policy(
        "web",
        RolloutPolicy {
            delay: Duration::from_secs(60),
            ..policy(1)
        },
    );
    cancel_after(&apply, Duration::from_secs(10));

    let run = apply.run(&plan(changes)).await;

    assert!(run.report.interrupted);
    assert_eq!(secs(run.took), "10s");
    assert!(
        run.outcome("web", "h1", 0).result.is_ok(),
        "h1/0 was replaced before the interruption and nothing failed: {:?}",
        run.outcome("web", "h1", 0).result
    );
    assert_eq!(h1.container("prod.web.h1.0").unwrap().config.image, NEW);
    for task in [1, 2] {
        assert_eq!(
            run.outcome("web", "h1", task).result,
            Err(StepError::NotStarted {
                why: "interrupted".to_string()
            })
        );
        assert_eq!(id_of(&h1, &name("web", "h1", task)), old[task as usize].id);
    }
}

// ---------------------------------------------------------------- rollback (restore)

/// h1 runs web h1/0 from NEW; the OLD generation is kept aside.
fn new_running_old_kept() -> (Arc<FakeEngine>, ContainerRef, ContainerRef) {
    let h1 = host("h1", &[]);
    let target = kept(&h1, "web", 0, OLD, "2026-01-01T00:00:00Z");
    let current = deployed(&h1, "web", 0, NEW, "running");
    (h1, current, target)
}

fn restore(current: &ContainerRef, target: &ContainerRef) -> drover_plan::Plan {
    plan(vec![change(
        "web",
        "h1",
        0,
        Step::Restore {
            current: Some(current.clone()),
            target: target.clone(),
        },
    )])
}

#[tokio::test(start_paused = true)]
async fn rollback_sets_the_current_container_aside_and_brings_the_kept_one_back() {
    let (h1, current, target) = new_running_old_kept();

    let run = Apply::new(&[&h1]).run(&restore(&current, &target)).await;

    let aside = kept_name(0, &current);
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {aside}"),
            format!("rename {} prod.web.h1.0", target.name),
            "start prod.web.h1.0".to_string(),
        ]
    );
    assert_eq!(
        containers(&h1),
        list(&[("prod.web.h1.0", "running"), (&aside, "exited")])
    );
    assert_eq!(id_of(&h1, "prod.web.h1.0"), target.id);
    assert_eq!(id_of(&h1, &aside), current.id);
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Ok(format!("{} runs again", &target.id[..12]))
    );
    assert_eq!(run.outcome("web", "h1", 0).step, "rollback");
}

#[tokio::test(start_paused = true)]
async fn a_rollback_whose_target_fails_its_gate_puts_everything_back() {
    let (h1, current, target) = new_running_old_kept();
    set_behaviour(&h1, OLD, Behaviour::Exits(3));

    let run = Apply::new(&[&h1]).run(&restore(&current, &target)).await;

    let aside = kept_name(0, &current);
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {aside}"),
            format!("rename {} prod.web.h1.0", target.name),
            "start prod.web.h1.0".to_string(),
            // Undone: the target back under its kept name, the current one back in place.
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {}", target.name),
            format!("rename {aside} prod.web.h1.0"),
            "start prod.web.h1.0".to_string(),
        ]
    );
    assert_eq!(
        containers(&h1),
        list(&[("prod.web.h1.0", "running"), (&target.name, "exited")])
    );
    assert_eq!(id_of(&h1, "prod.web.h1.0"), current.id);
    assert_eq!(id_of(&h1, &target.name), target.id);
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::Gate {
            what: "the generation rolled back to",
            failure: GateFailure::Exited {
                code: 3,
                oom: false
            },
            logs: vec!["last words of prod.web.h1.0".to_string()],
            restored: Restored::Previous,
            evidence: None,
        })
    );
}

// ---------------------------------------------------------------- restart

#[tokio::test(start_paused = true)]
async fn restart_stops_and_starts_the_same_container_and_gates_it() {
    let h1 = host("h1", &[]);
    let current = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Restart {
            current: current.clone(),
        },
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert_eq!(
        h1.calls()
            .into_iter()
            .filter(|c| c != "list")
            .collect::<Vec<_>>(),
        [
            "stop prod.web.h1.0",
            "start prod.web.h1.0",
            "inspect prod.web.h1.0",
            "inspect prod.web.h1.0",
        ]
    );
    assert_eq!(containers(&h1), list(&[("prod.web.h1.0", "running")]));
    assert_eq!(id_of(&h1, "prod.web.h1.0"), current.id);
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Ok(format!("restarted {}", &current.id[..12]))
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_task_that_exits_fails_with_its_last_words() {
    let h1 = host("h1", &[]);
    set_behaviour(&h1, OLD, Behaviour::Exits(137));
    let current = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![
        change(
            "web",
            "h1",
            0,
            Step::Restart {
                current: current.clone(),
            },
        ),
        change(
            "web",
            "h1",
            1,
            Step::Restart {
                current: deployed(&h1, "web", 1, NEW, "running"),
            },
        ),
    ]);

    let run = Apply::new(&[&h1]).policy("web", policy(1)).run(&plan).await;

    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Err(StepError::Gate {
            what: "the restarted container",
            failure: GateFailure::Exited {
                code: 137,
                oom: false
            },
            logs: vec!["last words of prod.web.h1.0".to_string()],
            restored: Restored::Nothing,
            evidence: None,
        })
    );
    assert_eq!(
        run.outcome("web", "h1", 1).result,
        Err(StepError::NotStarted {
            why: "the rollout stopped: web h1/0 failed".to_string()
        })
    );
    assert!(!actions(&h1).contains(&"stop prod.web.h1.1".to_string()));
}

// ---------------------------------------------------------------- prune

#[tokio::test(start_paused = true)]
async fn after_a_replace_the_oldest_kept_generations_beyond_keep_are_removed() {
    let h1 = host("h1", &[]);
    let oldest = kept(&h1, "web", 0, OLD, "2026-01-01T00:00:00Z");
    let older = kept(&h1, "web", 0, OLD, "2026-01-10T00:00:00Z");
    let newer = kept(&h1, "web", 0, OLD, "2026-01-20T00:00:00Z");
    // Another job's generations are its own business.
    let api = kept(&h1, "api", 0, OLD, "2025-01-01T00:00:00Z");
    let current = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![replace(current.clone(), desired("web", "h1", 0, NEW))]);

    let run = Apply::new(&[&h1])
        .policy(
            "web",
            RolloutPolicy {
                keep: 2,
                ..policy(1)
            },
        )
        .run(&plan)
        .await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    let mut removed: Vec<String> = actions(&h1)
        .into_iter()
        .filter(|c| c.starts_with("remove "))
        .collect();
    removed.sort();
    let mut expected = vec![
        format!("remove {}", oldest.name),
        format!("remove {}", older.name),
    ];
    expected.sort();
    assert_eq!(removed, expected);
    assert_eq!(
        containers(&h1),
        list(&[
            ("prod.web.h1.0", "running"),
            (&kept_name(0, &current), "exited"),
            (&newer.name, "exited"),
            (&api.name, "exited"),
        ])
    );
}

#[tokio::test(start_paused = true)]
async fn keep_0_removes_even_the_generation_just_set_aside() {
    let h1 = host("h1", &[]);
    let current = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![replace(current.clone(), desired("web", "h1", 0, NEW))]);

    Apply::new(&[&h1])
        .policy(
            "web",
            RolloutPolicy {
                keep: 0,
                ..policy(1)
            },
        )
        .run(&plan)
        .await;

    let kept = kept_name(0, &current);
    assert_eq!(
        actions(&h1),
        [
            "stop prod.web.h1.0".to_string(),
            format!("rename prod.web.h1.0 {kept}"),
            "create prod.web.h1.0".to_string(),
            "start prod.web.h1.0".to_string(),
            format!("remove {kept}"),
        ]
    );
    assert_eq!(containers(&h1), list(&[("prod.web.h1.0", "running")]));
}

// ---------------------------------------------------------------- remove, stop

#[tokio::test(start_paused = true)]
async fn remove_stops_a_running_container_gracefully_before_removing_it() {
    let h1 = host("h1", &[]);
    let running = deployed(&h1, "web", 0, OLD, "running");
    let exited = deployed(&h1, "web", 1, OLD, "exited");
    let plan = plan(vec![
        change("web", "h1", 0, Step::Remove { current: running }),
        change("web", "h1", 1, Step::Remove { current: exited }),
    ]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    let mut calls = actions(&h1);
    calls.sort();
    assert_eq!(
        calls,
        [
            "remove prod.web.h1.0",
            "remove prod.web.h1.1",
            "stop prod.web.h1.0",
        ]
    );
    let on_h1 = actions(&h1);
    let stop = on_h1.iter().position(|c| c == "stop prod.web.h1.0");
    let remove = on_h1.iter().position(|c| c == "remove prod.web.h1.0");
    assert!(stop < remove, "{on_h1:#?}");
    assert_eq!(containers(&h1), list(&[]));
}

#[tokio::test(start_paused = true)]
async fn stop_stops_the_task_and_keeps_its_container() {
    let h1 = host("h1", &[]);
    let current = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![change(
        "web",
        "h1",
        0,
        Step::Stop {
            current: current.clone(),
        },
    )]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert_eq!(actions(&h1), ["stop prod.web.h1.0"]);
    assert_eq!(containers(&h1), list(&[("prod.web.h1.0", "exited")]));
    assert_eq!(
        run.outcome("web", "h1", 0).result,
        Ok(format!("stopped {}", &current.id[..12]))
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_moving_hosts_is_up_on_the_new_host_before_it_goes_from_the_old_one() {
    let h1 = host("h1", &[]);
    let h2 = host("h2", &[]);
    let old = deployed(&h1, "web", 0, OLD, "running");
    let plan = plan(vec![
        change("web", "h1", 0, Step::Remove { current: old }),
        change(
            "web",
            "h2",
            0,
            Step::Create {
                desired: desired("web", "h2", 0, NEW),
            },
        ),
    ]);

    let run = Apply::new(&[&h1, &h2]).run(&plan).await;

    let lines: Vec<String> = run
        .event_lines()
        .into_iter()
        .filter(|l| !l.contains("done"))
        .collect();
    assert_eq!(
        lines,
        [
            "web h2/0 creating",
            "web h2/0 starting",
            "web h1/0 removing"
        ]
    );
    assert_eq!(containers(&h1), list(&[]));
    assert_eq!(containers(&h2), list(&[("prod.web.h2.0", "running")]));
}

/// A container that serves and goes for good (here a task beyond the
/// job's instances) goes only once the rest of the job has passed.
#[tokio::test(start_paused = true)]
async fn a_serving_container_that_goes_for_good_goes_after_the_rest_of_its_job() {
    let h1 = host("h1", &[]);
    let stray = deployed(&h1, "web", 1, OLD, "running");
    let stopped = deployed(&h1, "web", 0, OLD, "exited");
    let plan = plan(vec![
        change("web", "h1", 0, Step::Start { current: stopped }),
        change("web", "h1", 1, Step::Remove { current: stray }),
    ]);

    let run = Apply::new(&[&h1]).run(&plan).await;

    assert!(run.report.succeeded(), "{:#?}", run.report);
    assert_eq!(
        actions(&h1),
        [
            "start prod.web.h1.0",
            "stop prod.web.h1.1",
            "remove prod.web.h1.1"
        ]
    );
}
